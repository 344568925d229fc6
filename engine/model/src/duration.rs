//! Durations as policy authors write them: `50ms`, `30s`, `30m`, `36h`, `14d`, `2w`.

use std::time::Duration;

/// Parses a duration; the error says what is accepted.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad =
        || format!("bad duration `{text}`: expected a whole number and a unit (ms, s, m, h, d, w), such as `14d`");
    if num.is_empty() {
        return Err(bad());
    }
    let n: u64 = num.parse().map_err(|_| bad())?;
    let ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(bad()),
    };
    n.checked_mul(ms).map(Duration::from_millis).ok_or_else(bad)
}

/// Parses a byte size: `16MiB`, `512KiB`, `1GiB`, or plain bytes.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("bad size `{text}`: expected a whole number and KiB, MiB or GiB, such as `16MiB`");
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("36h").unwrap(), Duration::from_secs(36 * 3600));
        assert_eq!(parse_duration("14d").unwrap(), Duration::from_secs(14 * 86400));
        assert_eq!(parse_duration("2w").unwrap(), Duration::from_secs(14 * 86400));
        assert_eq!(parse_duration("50ms").unwrap(), Duration::from_millis(50));
        for bad in ["14", "d", "14 days", "-3d", "1.5h", ""] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("16MiB").unwrap(), 16 << 20);
        assert!(parse_bytes("16MB").is_err());
    }
}
