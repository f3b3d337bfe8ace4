//! [`Value`] as PostgreSQL parameters and columns (binary format).
//!
//! A value becomes the parameter type the server asks for: `Integer` →
//! `int2`/`int4`/`int8`/`oid` (range-checked), or a float when it holds
//! the integer exactly; `Real` → `float8`, or `float4` when it fits;
//! `Text` → any text type, an enum, `json`, `jsonb`; `Blob` → `bytea`;
//! `Bool` → `boolean`; a domain takes what its base type takes. Anything
//! else is [`ParamRefused`], which says the type and the cast. Columns read
//! back the same way; [`readable`] says which types `Value` holds.

use std::error::Error as StdError;

use postgres::types::{FromSql, IsNull, Kind, ToSql, Type};

use crate::value::Value;

type BoxError = Box<dyn StdError + Sync + Send>;

/// A parameter this value cannot be, in words. Its own type, so the
/// connection can tell a refusal made before anything was sent.
#[derive(Debug)]
pub(super) struct ParamRefused(String);

impl std::fmt::Display for ParamRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for ParamRefused {}

fn refused(why: String) -> BoxError {
    Box::new(ParamRefused(why))
}

/// The type a domain stands for (domains of domains too); `ty` itself
/// otherwise. A domain's values travel in its base type's format.
fn base_type(ty: &Type) -> &Type {
    match ty.kind() {
        Kind::Domain(inner) => base_type(inner),
        _ => ty,
    }
}

/// Whether values of `ty` travel as UTF-8 text: the text types
/// (`text`, `varchar`, `bpchar`, `name`, `unknown`, `citext` …) and enums.
fn is_text(ty: &Type) -> bool {
    <&str as ToSql>::accepts(ty) || matches!(ty.kind(), Kind::Enum(_))
}

/// Whether `Value` can hold a column of type `ty`.
pub(super) fn readable(ty: &Type) -> bool {
    let ty = base_type(ty);
    matches!(
        *ty,
        Type::BOOL
            | Type::INT2
            | Type::INT4
            | Type::INT8
            | Type::OID
            | Type::FLOAT4
            | Type::FLOAT8
            | Type::BYTEA
            | Type::JSON
            | Type::JSONB
    ) || is_text(ty)
}

fn cannot_take(value: &Value, ty: &Type) -> BoxError {
    let (kind, cast) = match value {
        Value::Null => ("NULL", "$1::text"),
        Value::Bool(_) => ("a Bool", "$1::boolean"),
        Value::Integer(_) => ("an Integer", "$1::int8"),
        Value::Real(_) => ("a Real", "$1::float8"),
        Value::Text(_) => ("a Text", "$1::text"),
        Value::Blob(_) => ("a Blob", "$1::bytea"),
    };
    refused(format!(
        "{kind} value cannot be a parameter of type {ty}: pass a Value of that type, or \
         give the parameter the value's type in the SQL (e.g. {cast}) and convert it there"
    ))
}

/// `n` as a float of `bits` bits, when that float holds it exactly.
fn exact_float(n: i64, bits: u32) -> Option<f64> {
    let x = if bits == 32 {
        f64::from(n as f32)
    } else {
        n as f64
    };
    // Compared in i128: `x as i64` would saturate 2^63 back to i64::MAX.
    (x as i128 == i128::from(n)).then_some(x)
}

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        let base = base_type(ty);
        let out_of_range =
            |n: &i64| refused(format!("the Integer {n} does not fit a {ty} parameter"));
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Bool(b) if *base == Type::BOOL => b.to_sql(base, out),
            Value::Integer(n) => match *base {
                Type::INT8 => n.to_sql(base, out),
                Type::INT4 => i32::try_from(*n)
                    .map_err(|_| out_of_range(n))?
                    .to_sql(base, out),
                Type::INT2 => i16::try_from(*n)
                    .map_err(|_| out_of_range(n))?
                    .to_sql(base, out),
                Type::OID => u32::try_from(*n)
                    .map_err(|_| out_of_range(n))?
                    .to_sql(base, out),
                Type::FLOAT8 | Type::FLOAT4 => {
                    let bits = if *base == Type::FLOAT4 { 32 } else { 64 };
                    match exact_float(*n, bits) {
                        Some(x) if bits == 32 => (x as f32).to_sql(base, out),
                        Some(x) => x.to_sql(base, out),
                        None => Err(refused(format!(
                            "the Integer {n} is not exactly a {ty}: pass it as a Real"
                        ))),
                    }
                }
                _ => Err(cannot_take(self, ty)),
            },
            Value::Real(x) => match *base {
                Type::FLOAT8 => x.to_sql(base, out),
                Type::FLOAT4 if !x.is_finite() || x.abs() <= f64::from(f32::MAX) => {
                    (*x as f32).to_sql(base, out)
                }
                Type::FLOAT4 => Err(refused(format!(
                    "the Real {x} is out of range for a {ty} parameter"
                ))),
                _ => Err(cannot_take(self, ty)),
            },
            Value::Text(s) => match *base {
                Type::JSON => {
                    out.extend_from_slice(s.as_bytes());
                    Ok(IsNull::No)
                }
                // jsonb's binary form: a version byte, then the text.
                Type::JSONB => {
                    out.extend_from_slice(&[1]);
                    out.extend_from_slice(s.as_bytes());
                    Ok(IsNull::No)
                }
                _ if is_text(base) => {
                    out.extend_from_slice(s.as_bytes());
                    Ok(IsNull::No)
                }
                _ => Err(cannot_take(self, ty)),
            },
            Value::Blob(b) if *base == Type::BYTEA => b.as_slice().to_sql(base, out),
            _ => Err(cannot_take(self, ty)),
        }
    }

    /// Every type: each value checks its own in `to_sql`, with an error
    /// that names the parameter's type and the cast.
    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Value, BoxError> {
        let base = base_type(ty);
        Ok(match *base {
            Type::BOOL => Value::Bool(bool::from_sql(base, raw)?),
            Type::INT2 => Value::Integer(i16::from_sql(base, raw)?.into()),
            Type::INT4 => Value::Integer(i32::from_sql(base, raw)?.into()),
            Type::INT8 => Value::Integer(i64::from_sql(base, raw)?),
            Type::OID => Value::Integer(u32::from_sql(base, raw)?.into()),
            Type::FLOAT4 => Value::Real(f32::from_sql(base, raw)?.into()),
            Type::FLOAT8 => Value::Real(f64::from_sql(base, raw)?),
            Type::BYTEA => Value::Blob(raw.to_vec()),
            Type::JSON => Value::Text(std::str::from_utf8(raw)?.to_owned()),
            Type::JSONB => match raw.split_first() {
                Some((1, text)) => Value::Text(std::str::from_utf8(text)?.to_owned()),
                _ => return Err("a jsonb value in an unknown binary version".into()),
            },
            _ => Value::Text(std::str::from_utf8(raw)?.to_owned()),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Value, BoxError> {
        Ok(Value::Null)
    }

    fn accepts(ty: &Type) -> bool {
        readable(ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_integer_is_a_float_only_when_the_float_holds_it_exactly() {
        assert_eq!(exact_float(1 << 53, 64), Some(9007199254740992.0));
        assert_eq!(exact_float((1 << 53) + 1, 64), None);
        assert_eq!(exact_float(i64::MAX, 64), None);
        assert_eq!(exact_float(i64::MIN, 64), Some(i64::MIN as f64));
        assert_eq!(exact_float(1 << 24, 32), Some(16777216.0));
        assert_eq!(exact_float((1 << 24) + 1, 32), None);
    }

    fn refusal(v: Value, ty: &Type) -> BoxError {
        match v.to_sql(ty, &mut bytes::BytesMut::new()) {
            Err(e) => e,
            Ok(_) => panic!("{v:?} was taken as a {ty}"),
        }
    }

    #[test]
    fn values_refuse_types_they_are_not_in_words() {
        let mut out = bytes::BytesMut::new();
        let e = refusal(Value::Text("x".into()), &Type::INT4);
        assert!(e.is::<ParamRefused>());
        assert!(
            e.to_string()
                .starts_with("a Text value cannot be a parameter of type int4"),
            "{e}"
        );
        let e = refusal(Value::Real(1e39), &Type::FLOAT4);
        assert_eq!(e.to_string(), "the Real 1000000000000000000000000000000000000000 is out of range for a float4 parameter");
        assert!(Value::Real(f64::INFINITY)
            .to_sql(&Type::FLOAT4, &mut out)
            .is_ok());
        let e = refusal(Value::Integer(70_000), &Type::INT2);
        assert_eq!(
            e.to_string(),
            "the Integer 70000 does not fit a int2 parameter"
        );
        let e = refusal(Value::Integer(-1), &Type::OID);
        assert_eq!(e.to_string(), "the Integer -1 does not fit a oid parameter");
    }

    #[test]
    fn a_short_or_odd_column_value_is_an_error_not_a_panic() {
        assert!(Value::from_sql(&Type::INT8, &[1, 2, 3]).is_err());
        assert!(Value::from_sql(&Type::JSONB, &[]).is_err());
        assert!(Value::from_sql(&Type::JSONB, &[2, b'{', b'}']).is_err());
        assert!(Value::from_sql(&Type::TEXT, &[0xff]).is_err());
        assert_eq!(
            Value::from_sql(&Type::JSONB, &[1, b'{', b'}']).unwrap(),
            Value::Text("{}".into())
        );
    }
}
