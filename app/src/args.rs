//! Flag values every app and command shares: shard placement, the log
//! format, and the parsers for counts, sizes, durations and switches (one
//! rule for every duration flag: zero turns off what can be turned off).

use std::time::Duration;

use clap::{Args, ValueEnum};

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; ANSI colours only when stderr is a terminal.
    Text,
    /// One JSON object per line.
    Json,
}

/// Shard placement flags shared by every command that runs shards.
#[derive(Debug, Args, Clone)]
pub struct PlacementArgs {
    /// Number of shards (default: one per CPU in the process's affinity mask).
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count, value_name = "N")]
    pub shards: Option<usize>,

    /// Cores to run shards on, one shard each (e.g. 0,2,3 or 0-3).
    #[arg(long, value_name = "LIST")]
    pub cores: Option<String>,
}

/// Parses a count: a whole number, at least 1 (negative numbers get this
/// message too, not clap's hint about `--`).
pub fn parse_count(s: &str) -> Result<usize, String> {
    match s.trim().parse::<i128>() {
        Ok(n) if n >= 1 => usize::try_from(n).map_err(|_| format!("{s} is too large")),
        Ok(_) => Err(format!(
            "{s} is not allowed: must be a whole number, at least 1"
        )),
        Err(_) => Err(format!(
            "invalid number \"{s}\" (expected a whole number, at least 1)"
        )),
    }
}

/// Parses byte sizes: `65536`, `64KiB`, `1MiB`, `2M`, `512k`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("invalid size \"{s}\" (expected e.g. 4096, 64KiB, 1MiB)"))?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => {
            return Err(format!(
                "invalid size unit in \"{s}\" (use B, KiB, MiB or GiB)"
            ))
        }
    };
    let bytes = n
        .checked_mul(mult)
        .ok_or_else(|| format!("size \"{s}\" is too large"))?;
    if bytes == 0 {
        return Err(format!("size \"{s}\" must be greater than zero"));
    }
    Ok(bytes)
}

/// The longest duration any flag takes.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The shortest non-zero duration any flag takes.
pub const MIN_DURATION: Duration = Duration::from_millis(1);

/// Parses a duration that must not be zero (`5s`, `250ms`, `1m`): 1ms to
/// 365d. The rule every duration flag follows: zero turns off what the
/// flag times where that can be turned off ([`parse_duration_or_off`]),
/// and is refused where it cannot (a run's length, a connect timeout).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration_or_off(s)?;
    if d.is_zero() {
        return Err(format!(
            "duration \"{s}\" must be at least 1ms (this flag cannot be turned off; range 1ms to 365d)"
        ));
    }
    Ok(d)
}

/// Parses a switch: `on` or `off`.
pub fn parse_on_off(s: &str) -> Result<bool, String> {
    match s.trim() {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("expected on or off, not \"{s}\"")),
    }
}

/// Parses a duration where zero (`0`, `0s` or `off`) turns the thing off;
/// otherwise 1ms to 365d.
pub fn parse_duration_or_off(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t == "off" || t == "0" {
        return Ok(Duration::ZERO);
    }
    let d = humantime::parse_duration(t).map_err(|e| {
        format!("invalid duration \"{s}\": {e} (expected e.g. 500ms, 30s, 5m; range 1ms to 365d)")
    })?;
    if d > MAX_DURATION {
        return Err(format!("duration \"{s}\" is out of range (1ms to 365d)"));
    }
    if !d.is_zero() && d < MIN_DURATION {
        return Err(format!(
            "duration \"{s}\" is below 1ms (range 1ms to 365d; 0 turns it off where that is allowed)"
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_whole_and_positive() {
        assert_eq!(parse_count("3"), Ok(3));
        for bad in ["0", "-1", "1.5", "many", ""] {
            assert!(parse_count(bad).is_err(), "{bad}");
        }
        assert!(parse_count("-1").unwrap_err().contains("at least 1"));
    }

    #[test]
    fn durations_follow_one_rule() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1ms"), Ok(Duration::from_millis(1)));
        assert_eq!(parse_duration("365d"), Ok(MAX_DURATION));
        for off in ["0", "0s", "0ms", "off"] {
            assert_eq!(parse_duration_or_off(off), Ok(Duration::ZERO), "{off}");
            assert!(parse_duration(off).is_err(), "{off}");
        }
        for bad in ["18446744073709551615s", "366d", "500us", "-1s", "soon", ""] {
            assert!(parse_duration(bad).is_err(), "{bad}");
            assert!(parse_duration_or_off(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("18446744073709551615s")
            .unwrap_err()
            .contains("1ms to 365d"));
    }

    #[test]
    fn sizes_parse_with_units_and_reject_nonsense() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("2m"), Ok(2 << 20));
        for bad in [
            "",
            "0",
            "MiB",
            "1.5MiB",
            "-3",
            "10 parsecs",
            "99999999999999999999G",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
