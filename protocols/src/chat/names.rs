//! Chat names: what is allowed, and which shard owns each.

use std::hash::{Hash, Hasher};

/// Longest name, in bytes of UTF-8.
pub const MAX_NAME_BYTES: usize = 32;

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidName {
    /// Empty.
    #[error("the name is empty")]
    Empty,
    /// Over 32 bytes.
    #[error("the name is longer than {MAX_NAME_BYTES} bytes")]
    TooLong,
    /// Whitespace, a control character, or an invisible format character.
    #[error("the name contains whitespace, a control character or an invisible format character")]
    BadCharacter,
}

/// Checks a name: 1–32 bytes; no whitespace, no control characters, and no
/// format characters (Unicode category Cf: zero-width spaces and joiners,
/// bidi overrides such as U+202E, U+2060, the BOM…), so that `alice` and
/// `alice\u{200b}` — which look the same — cannot both exist, and no name
/// can reverse the text around it.
pub fn validate_name(name: &str) -> Result<(), InvalidName> {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    if name.is_empty() {
        return Err(InvalidName::Empty);
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(InvalidName::TooLong);
    }
    if name.chars().any(|c| {
        c.is_whitespace() || c.is_control() || c.general_category() == GeneralCategory::Format
    }) {
        return Err(InvalidName::BadCharacter);
    }
    Ok(())
}

/// The shard that owns `name` in the partitioned registry. Deterministic
/// across threads and runs (SipHash with fixed keys).
pub(crate) fn owner_shard(name: &str, shards: usize) -> usize {
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new_with_keys(0x746f7273, 0x696f6e21);
    name.hash(&mut h);
    (h.finish() % shards.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert_eq!(validate_name("alice"), Ok(()));
        assert_eq!(validate_name("Zoë_42"), Ok(()));
        assert_eq!(validate_name(&"x".repeat(32)), Ok(()));
        assert_eq!(validate_name(&"x".repeat(33)), Err(InvalidName::TooLong));
        assert_eq!(validate_name(&"é".repeat(17)), Err(InvalidName::TooLong));
        assert_eq!(validate_name(""), Err(InvalidName::Empty));
        assert_eq!(validate_name("a b"), Err(InvalidName::BadCharacter));
        assert_eq!(validate_name("a\tb"), Err(InvalidName::BadCharacter));
        assert_eq!(validate_name("a\u{7}"), Err(InvalidName::BadCharacter));
        assert_eq!(validate_name("a\u{a0}b"), Err(InvalidName::BadCharacter));
        for invisible in [
            '\u{200b}', '\u{202e}', '\u{2060}', '\u{feff}', '\u{200d}', '\u{ad}',
        ] {
            assert_eq!(
                validate_name(&format!("alice{invisible}")),
                Err(InvalidName::BadCharacter),
                "{:?}",
                invisible
            );
        }
        assert_eq!(validate_name("Ελένη"), Ok(()));
        assert_eq!(validate_name("مریم"), Ok(()));
    }

    #[test]
    fn ownership_is_spread_and_stable() {
        let mut counts = [0usize; 4];
        for i in 0..1000 {
            let s = owner_shard(&format!("user{i}"), 4);
            assert_eq!(s, owner_shard(&format!("user{i}"), 4));
            counts[s] += 1;
        }
        assert!(counts.iter().all(|&c| c > 150), "{counts:?}");
        assert_eq!(owner_shard("anyone", 1), 0);
    }
}
