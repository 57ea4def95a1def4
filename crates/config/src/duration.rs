//! Durations in Prometheus's syntax: `1h30m`, `15d`, `1w`, `1y`, `500ms`, `0`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative duration with millisecond resolution, written as Prometheus writes one.
///
/// Syntax (Prometheus's `model.ParseDuration`): one or more `<integer><unit>` terms with
/// units `y` (365d), `w`, `d`, `h`, `m`, `s`, `ms`, each at most once and from the largest
/// to the smallest; no fractions, no sign, no spaces; `0` alone is zero. The longest duration
/// is the one Go's `time.Duration` can hold (about 292 years), as in Prometheus.
///
/// Displayed in the same canonical form Prometheus prints (`90m` → `1h30m`, `14d` → `2w`,
/// `0` → `0s`), which parses back to the same value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(u64);

const MS_PER_SECOND: u64 = 1_000;
const MS_PER_MINUTE: u64 = 60 * MS_PER_SECOND;
const MS_PER_HOUR: u64 = 60 * MS_PER_MINUTE;
const MS_PER_DAY: u64 = 24 * MS_PER_HOUR;
const MS_PER_WEEK: u64 = 7 * MS_PER_DAY;
const MS_PER_YEAR: u64 = 365 * MS_PER_DAY;

/// Go's `time.Duration` limit (`1<<63 - 1` ns), in whole milliseconds.
const MAX_MS: u64 = (i64::MAX as u64) / 1_000_000;

/// Units in the order they must appear.
const UNITS: [(&str, u64); 7] = [
    ("y", MS_PER_YEAR),
    ("w", MS_PER_WEEK),
    ("d", MS_PER_DAY),
    ("h", MS_PER_HOUR),
    ("m", MS_PER_MINUTE),
    ("s", MS_PER_SECOND),
    ("ms", 1),
];

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration string")]
    Empty,
    #[error("not a valid duration string: {0:?} (expected e.g. 30s, 1h30m, 15d; units y w d h m s ms, largest first)")]
    Invalid(String),
    #[error("unknown unit {unit:?} in duration {input:?} (units are y w d h m s ms)")]
    UnknownUnit { unit: String, input: String },
    #[error("duration {0:?} has a fraction; use a smaller unit instead (1.5h is 1h30m)")]
    Fraction(String),
    #[error("duration {0:?} is out of range")]
    OutOfRange(String),
}

impl Duration {
    /// Zero.
    pub const ZERO: Duration = Duration(0);

    /// From milliseconds (clamped to the largest representable duration).
    pub const fn from_millis(ms: u64) -> Self {
        Duration(if ms > MAX_MS { MAX_MS } else { ms })
    }

    /// From seconds.
    pub const fn from_secs(s: u64) -> Self {
        Self::from_millis(s.saturating_mul(MS_PER_SECOND))
    }

    /// From minutes.
    pub const fn from_mins(m: u64) -> Self {
        Self::from_millis(m.saturating_mul(MS_PER_MINUTE))
    }

    /// From hours.
    pub const fn from_hours(h: u64) -> Self {
        Self::from_millis(h.saturating_mul(MS_PER_HOUR))
    }

    /// From days.
    pub const fn from_days(d: u64) -> Self {
        Self::from_millis(d.saturating_mul(MS_PER_DAY))
    }

    /// Whole milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Whether this is zero (often "unset" or "unlimited"; each key documents which).
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// As a standard library duration.
    pub const fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0)
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.as_std()
    }
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "" => return Err(DurationError::Empty),
            "0" => return Ok(Duration::ZERO),
            _ => {}
        }
        let invalid = || DurationError::Invalid(s.to_string());
        let mut rest = s;
        let mut total: u64 = 0;
        let mut next_unit = 0;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(invalid());
            }
            let value: u64 = rest[..digits].parse().map_err(|_| DurationError::OutOfRange(s.to_string()))?;
            rest = &rest[digits..];
            let unit_len = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
            if unit_len == 0 {
                return Err(invalid());
            }
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            if unit.starts_with('.') {
                return Err(DurationError::Fraction(s.to_string()));
            }
            let Some(pos) = UNITS.iter().position(|(u, _)| *u == unit) else {
                return Err(DurationError::UnknownUnit { unit: unit.to_string(), input: s.to_string() });
            };
            if pos < next_unit {
                return Err(invalid());
            }
            next_unit = pos + 1;
            total = value
                .checked_mul(UNITS[pos].1)
                .and_then(|v| total.checked_add(v))
                .filter(|&t| t <= MAX_MS)
                .ok_or_else(|| DurationError::OutOfRange(s.to_string()))?;
        }
        Ok(Duration(total))
    }
}

impl fmt::Display for Duration {
    /// Prometheus's `model.Duration.String`: years and weeks only when they divide evenly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0;
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, mult) in UNITS {
            let exact_only = unit == "y" || unit == "w";
            if exact_only && ms % mult != 0 {
                continue;
            }
            let v = ms / mult;
            if v > 0 {
                write!(f, "{v}{unit}")?;
                ms -= v * mult;
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The raw scalar text, so that a bare `0` (a YAML integer) reads as "0". Parsing in
        // the visitor lets the YAML error name this key's path and position.
        d.deserialize_str(crate::check::ParseVisitor::<Duration>::new("a duration such as 30s, 1h30m or 15d"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_prometheus_syntax() {
        let table = [
            ("0", 0),
            ("0s", 0),
            ("500ms", 500),
            ("1s", 1_000),
            ("15s", 15_000),
            ("1m", 60_000),
            ("1h30m", 5_400_000),
            ("2h", 7_200_000),
            ("15d", 15 * MS_PER_DAY),
            ("1w", MS_PER_WEEK),
            ("1y", MS_PER_YEAR),
            (
                "1y2w3d4h5m6s7ms",
                MS_PER_YEAR + 2 * MS_PER_WEEK + 3 * MS_PER_DAY + 4 * MS_PER_HOUR + 5 * MS_PER_MINUTE + 6_007,
            ),
            ("90m", 90 * MS_PER_MINUTE),
            ("292y", 292 * MS_PER_YEAR),
        ];
        for (s, ms) in table {
            assert_eq!(s.parse::<Duration>(), Ok(Duration(ms)), "{s}");
        }
    }

    #[test]
    fn rejects_what_prometheus_rejects() {
        let table = [
            ("", "empty duration string"),
            ("1", "not a valid duration string"),
            ("1.5h", "has a fraction"),
            ("-1s", "not a valid duration string"),
            ("1m1h", "not a valid duration string"),
            ("1s1s", "not a valid duration string"),
            ("s", "not a valid duration string"),
            ("1 s", "unknown unit \" s\""),
            ("1x", "unknown unit \"x\""),
            ("1M", "unknown unit \"M\""),
            ("300y", "out of range"),
            ("99999999999999999999s", "out of range"),
        ];
        for (s, want) in table {
            let e = s.parse::<Duration>().unwrap_err().to_string();
            assert!(e.contains(want), "{s:?}: {e}");
        }
    }

    #[test]
    fn displays_as_prometheus() {
        let table = [
            (0, "0s"),
            (500, "500ms"),
            (90 * MS_PER_MINUTE, "1h30m"),
            (15 * MS_PER_DAY, "15d"),
            (14 * MS_PER_DAY, "2w"),
            (MS_PER_YEAR, "1y"),
            (MS_PER_YEAR + MS_PER_DAY, "366d"),
            (61_001, "1m1s1ms"),
        ];
        for (ms, s) in table {
            assert_eq!(Duration(ms).to_string(), s);
        }
    }

    #[test]
    fn yaml() {
        let d: Duration = serde_yaml::from_str("0").unwrap();
        assert_eq!(d, Duration::ZERO);
        let d: Duration = serde_yaml::from_str("1h30m").unwrap();
        assert_eq!(serde_yaml::to_string(&d).unwrap().trim(), "1h30m");
        assert!(serde_yaml::from_str::<Duration>("10").is_err());
    }

    proptest! {
        #[test]
        fn display_round_trips(ms in 0u64..=MAX_MS) {
            let d = Duration(ms);
            prop_assert_eq!(d.to_string().parse::<Duration>(), Ok(d));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,16}") {
            let _ = s.parse::<Duration>();
        }
    }
}
