//! Byte sizes as Prometheus writes them (`128MiB`, `1GB`, `512KB`, `0B`).

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A size in bytes.
///
/// Syntax (Prometheus's `units.ParseBase2Bytes`): one or more `<number><unit>` terms
/// (`1GiB512MiB`), where the number may have a fraction (`1.5GB`) and the unit is one of
/// `B`, `KB`/`KiB`, `MB`/`MiB`, `GB`/`GiB`, `TB`/`TiB`, `PB`/`PiB`, `EB`/`EiB`. Both
/// spellings are powers of 1024, as in Prometheus; units are case-sensitive (`kB`, `mb` are
/// errors). `0` alone is zero. Periscope also accepts a plain YAML integer as a number of
/// bytes (`10485760`).
///
/// Displayed as Prometheus prints one: the exact value in binary units (`128MiB`,
/// `1GiB512MiB`, `0B`), which parses back to the same value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(u64);

/// Binary unit prefixes from the smallest.
const PREFIXES: [&str; 7] = ["", "K", "M", "G", "T", "P", "E"];

/// Why a byte size was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ByteSizeError {
    #[error("invalid byte size {0:?} (expected e.g. 512KiB, 128MiB, 1GB; units B KB KiB MB MiB GB GiB TB TiB PB PiB EB EiB)")]
    Invalid(String),
    #[error("unknown unit {unit:?} in byte size {input:?} (units are B KB KiB MB MiB GB GiB TB TiB PB PiB EB EiB)")]
    UnknownUnit { unit: String, input: String },
    #[error("byte size {0:?} is out of range")]
    OutOfRange(String),
}

impl ByteSize {
    /// Zero bytes.
    pub const ZERO: ByteSize = ByteSize(0);

    /// From bytes.
    pub const fn b(n: u64) -> Self {
        ByteSize(n)
    }

    /// From kibibytes.
    pub const fn kib(n: u64) -> Self {
        ByteSize(n.saturating_mul(1 << 10))
    }

    /// From mebibytes.
    pub const fn mib(n: u64) -> Self {
        ByteSize(n.saturating_mul(1 << 20))
    }

    /// From gibibytes.
    pub const fn gib(n: u64) -> Self {
        ByteSize(n.saturating_mul(1 << 30))
    }

    /// The number of bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// Whether this is zero (often "unlimited"; each key documents it).
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The number of bytes as `usize`, saturating on 32-bit targets.
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

fn unit_multiplier(unit: &str) -> Option<u64> {
    if unit == "B" {
        return Some(1);
    }
    let prefix = unit.strip_suffix("iB").or_else(|| unit.strip_suffix('B'))?;
    let pos = PREFIXES.iter().skip(1).position(|p| *p == prefix)?;
    Some(1u64 << (10 * (pos + 1)))
}

impl FromStr for ByteSize {
    type Err = ByteSizeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "0" {
            return Ok(ByteSize::ZERO);
        }
        let invalid = || ByteSizeError::Invalid(s.to_string());
        if s.is_empty() {
            return Err(invalid());
        }
        let mut rest = s;
        let mut total: u128 = 0;
        while !rest.is_empty() {
            let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let int_part = &rest[..int_len];
            rest = &rest[int_len..];
            let mut frac_part = "";
            if let Some(after) = rest.strip_prefix('.') {
                let n = after.bytes().take_while(u8::is_ascii_digit).count();
                frac_part = &after[..n];
                rest = &after[n..];
            }
            if int_part.is_empty() && frac_part.is_empty() {
                return Err(invalid());
            }
            let unit_len = rest.bytes().take_while(|b| *b != b'.' && !b.is_ascii_digit()).count();
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let mult = unit_multiplier(unit)
                .ok_or_else(|| ByteSizeError::UnknownUnit { unit: unit.to_string(), input: s.to_string() })?;
            let int: u128 = if int_part.is_empty() {
                0
            } else {
                int_part.parse().map_err(|_| ByteSizeError::OutOfRange(s.to_string()))?
            };
            let frac = if frac_part.is_empty() {
                0
            } else {
                // Fractions of a unit round down to whole bytes, as Prometheus's float
                // arithmetic does for the values people write.
                let f: f64 = format!("0.{frac_part}").parse().map_err(|_| invalid())?;
                (f * mult as f64) as u128
            };
            total = int
                .checked_mul(u128::from(mult))
                .and_then(|v| v.checked_add(frac))
                .and_then(|v| v.checked_add(total))
                .ok_or_else(|| ByteSizeError::OutOfRange(s.to_string()))?;
        }
        // Prometheus holds sizes in an int64.
        if total > i64::MAX as u128 {
            return Err(ByteSizeError::OutOfRange(s.to_string()));
        }
        Ok(ByteSize(total as u64))
    }
}

impl fmt::Display for ByteSize {
    /// Prometheus's `units.Base2Bytes.String`: every non-zero binary digit group, largest
    /// first.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0B");
        }
        let mut parts = Vec::new();
        let mut n = self.0;
        for prefix in PREFIXES {
            let r = n % 1024;
            if r != 0 {
                let suffix = if prefix.is_empty() { "B" } else { "iB" };
                parts.push(format!("{r}{prefix}{suffix}"));
            }
            n /= 1024;
            if n == 0 {
                break;
            }
        }
        for p in parts.iter().rev() {
            f.write_str(p)?;
        }
        Ok(())
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte size such as 128MiB, or a number of bytes")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v).map(ByteSize).map_err(|_| E::custom(format!("byte size {v} must not be negative")))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ByteSize, E> {
                Err(E::custom(format!("byte size {v} needs a unit (B, KiB, MiB, ...)")))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    const GIB: u64 = 1024 * MIB;

    #[test]
    fn parses_prometheus_syntax() {
        let table = [
            ("0", 0),
            ("0B", 0),
            ("1B", 1),
            ("512KB", 512 * KIB),
            ("512KiB", 512 * KIB),
            ("128MiB", 128 * MIB),
            ("100MB", 100 * MIB),
            ("1GB", GIB),
            ("1GiB512MiB", GIB + 512 * MIB),
            ("1.5GiB", GIB + 512 * MIB),
            (".5KB", 512),
            ("2TB", 2 * 1024 * GIB),
            ("1EiB", 1 << 60),
        ];
        for (s, n) in table {
            assert_eq!(s.parse::<ByteSize>(), Ok(ByteSize(n)), "{s}");
        }
    }

    #[test]
    fn rejects_what_prometheus_rejects() {
        let table = [
            ("", "invalid byte size"),
            ("100", "unknown unit \"\""),
            ("1kB", "unknown unit \"kB\""),
            ("1mb", "unknown unit \"mb\""),
            ("1 MiB", "unknown unit \" MiB\""),
            ("-1MB", "invalid byte size"),
            ("MB", "invalid byte size"),
            ("8EiB", "out of range"),
        ];
        for (s, want) in table {
            let e = s.parse::<ByteSize>().unwrap_err().to_string();
            assert!(e.contains(want), "{s:?}: {e}");
        }
    }

    #[test]
    fn displays_as_prometheus() {
        let table = [(0, "0B"), (1, "1B"), (128 * MIB, "128MiB"), (GIB + 512 * MIB, "1GiB512MiB"), (1025, "1KiB1B")];
        for (n, s) in table {
            assert_eq!(ByteSize(n).to_string(), s);
        }
    }

    #[test]
    fn yaml_accepts_integers_and_strings() {
        assert_eq!(serde_yaml::from_str::<ByteSize>("10485760").unwrap(), ByteSize(10 * MIB));
        assert_eq!(serde_yaml::from_str::<ByteSize>("64MiB").unwrap(), ByteSize(64 * MIB));
        assert_eq!(serde_yaml::from_str::<ByteSize>("'0'").unwrap(), ByteSize(0));
        assert!(serde_yaml::from_str::<ByteSize>("-1").is_err());
        assert!(serde_yaml::from_str::<ByteSize>("1.5").is_err());
        assert_eq!(serde_yaml::to_string(&ByteSize(128 * MIB)).unwrap().trim(), "128MiB");
    }

    proptest! {
        #[test]
        fn display_round_trips(n in 0u64..=i64::MAX as u64) {
            let b = ByteSize(n);
            prop_assert_eq!(b.to_string().parse::<ByteSize>(), Ok(b));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,16}") {
            let _ = s.parse::<ByteSize>();
        }
    }
}
