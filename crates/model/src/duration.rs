//! Go's duration syntax (`time.ParseDuration`), which Jaeger's query parameters and LogQL's
//! `duration` conversions use: signed decimal numbers each with a unit.

/// A Go duration (`1.5s`, `250ms`, `1h2m`, `-300µs`, `0`) in nanoseconds; `None` when it is
/// not one or does not fit in an `i64`.
pub fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let (mut rest, mut total) = (s, 0f64);
    while !rest.is_empty() {
        let n_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..n_end].parse().ok()?;
        let after = &rest[n_end..];
        let u_end = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let mult = match &after[..u_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * mult;
        rest = &after[u_end..];
    }
    (total.is_finite() && total < 9.2e18).then(|| if neg { -(total as i64) } else { total as i64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1h2m3.5s"), Some(3_723_500_000_000));
        assert_eq!(parse_go_duration("-300µs"), Some(-300_000));
        assert_eq!(parse_go_duration("+0"), Some(0));
        for bad in ["", "5", "x", "1d", "s", "-", "9999999999h"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }
}
