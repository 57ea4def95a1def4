//! Numbers: sample values, timestamps and the `le`/`quantile` label values.
//!
//! Invariants:
//! - Values accept exactly the decimal grammar plus `Inf`/`Infinity`/`NaN` (any case, optional
//!   sign), as the Go reference parsers do after they refuse `_`, `p` and hex: no `_`
//!   separators, no hex, binary or octal literals. A finite literal that overflows `f64` is
//!   refused, as Go's `ErrRange` is. `NaN` parses to the ordinary quiet NaN, never to the stale
//!   marker.
//! - OpenMetrics timestamps are decimal seconds; they are converted to milliseconds exactly from
//!   the decimal digits (not through `f64`, so `1.001` is 1001 ms), rounding toward negative
//!   infinity, and saturating at `i64::MIN`/`i64::MAX` beyond the representable range.
//! - [`format_go_float`] reproduces Go's `strconv.FormatFloat(f, 'g', -1, 64)` plus the `.0`
//!   that Prometheus appends, which is how Prometheus 3 canonicalises `le` and `quantile`.

/// Parses a sample value (both formats).
pub(crate) fn parse_value(tok: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(tok).ok()?;
    let v: f64 = s.parse().ok()?;
    // Rust's grammar is Go's minus hex floats; Go additionally refuses out-of-range literals.
    if v.is_infinite() && !tok.iter().any(|b| b.eq_ignore_ascii_case(&b'i')) {
        return None;
    }
    Some(v)
}

/// Whether `tok` is an OpenMetrics `realnumber`:
/// `[+-]? (DIGIT+ ("." DIGIT*)? | "." DIGIT+) ([eE] [+-]? DIGIT+)?`.
pub(crate) fn is_realnumber(tok: &[u8]) -> bool {
    let mut i = 0;
    if matches!(tok.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    let int_start = i;
    while tok.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let int_digits = i - int_start;
    let mut frac_digits = 0;
    if tok.get(i) == Some(&b'.') {
        i += 1;
        let s = i;
        while tok.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        frac_digits = i - s;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if matches!(tok.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(tok.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let s = i;
        while tok.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == s {
            return false;
        }
    }
    i == tok.len()
}

/// Parses an OpenMetrics `number`: a `realnumber`, `[+-]?(inf|infinity)` or `nan` (any case).
pub(crate) fn parse_om_value(tok: &[u8]) -> Option<f64> {
    let unsigned = match tok.first() {
        Some(b'+' | b'-') => tok.get(1..).unwrap_or_default(),
        _ => tok,
    };
    if unsigned.first().is_some_and(u8::is_ascii_alphabetic) {
        let word_ok = unsigned.eq_ignore_ascii_case(b"inf")
            || unsigned.eq_ignore_ascii_case(b"infinity")
            || (unsigned.eq_ignore_ascii_case(b"nan") && unsigned.len() == tok.len());
        if !word_ok {
            return None;
        }
    } else if !is_realnumber(tok) {
        return None;
    }
    parse_value(tok)
}

/// Parses a label value that must be a number in strict OpenMetrics (`le`, `quantile`): a
/// `realnumber` or exactly `+Inf`/`-Inf`. `NaN` and other spellings of infinity are refused.
pub(crate) fn parse_om_label_number(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ if is_realnumber(s.as_bytes()) => parse_value(s.as_bytes()),
        _ => None,
    }
}

/// An OpenMetrics timestamp: the value in seconds (for ordering checks) and in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct OmTimestamp {
    pub secs: f64,
    pub ms: i64,
}

/// Parses an OpenMetrics timestamp (a `realnumber` of seconds; never NaN or infinite).
pub(crate) fn parse_om_timestamp(tok: &[u8]) -> Option<OmTimestamp> {
    if !is_realnumber(tok) {
        return None;
    }
    let secs = parse_value(tok)?;
    Some(OmTimestamp { secs, ms: decimal_seconds_to_ms(tok)? })
}

/// Parses a 0.0.4 timestamp: a base-10 `i64` of milliseconds with an optional sign.
pub(crate) fn parse_prom_timestamp(tok: &[u8]) -> Option<i64> {
    std::str::from_utf8(tok).ok()?.parse().ok()
}

/// Converts a `realnumber` of seconds to milliseconds, exactly, rounding toward negative
/// infinity and saturating at the `i64` range. `None` only if `tok` is not a `realnumber`.
fn decimal_seconds_to_ms(tok: &[u8]) -> Option<i64> {
    if !is_realnumber(tok) {
        return None;
    }
    let (neg, rest) = match tok.first() {
        Some(b'-') => (true, tok.get(1..)?),
        Some(b'+') => (false, tok.get(1..)?),
        _ => (false, tok),
    };
    let (mant, exp_part) = match rest.iter().position(|&b| b == b'e' || b == b'E') {
        Some(i) => (rest.get(..i)?, rest.get(i + 1..)?),
        None => (rest, &[][..]),
    };
    let (int_part, frac_part) = match mant.iter().position(|&b| b == b'.') {
        Some(i) => (mant.get(..i)?, mant.get(i + 1..)?),
        None => (mant, &[][..]),
    };
    // The exponent saturates far beyond anything that could still fit an i64 of milliseconds,
    // so absurd exponents cost neither time nor overflow.
    const EXP_CAP: i64 = 1 << 40;
    let (exp_neg, exp_digits) = match exp_part.first() {
        Some(b'-') => (true, exp_part.get(1..)?),
        Some(b'+') => (false, exp_part.get(1..)?),
        _ => (false, exp_part),
    };
    let mut exp: i64 = 0;
    for &d in exp_digits {
        exp = (exp * 10 + i64::from(d - b'0')).min(EXP_CAP);
    }
    if exp_neg {
        exp = -exp;
    }
    // value_ms = DIGITS * 10^scale where DIGITS = int_part ++ frac_part.
    let scale = exp - i64::try_from(frac_part.len()).ok()? + 3;
    let total = int_part.len() + frac_part.len();
    let leading_zeros = int_part.iter().chain(frac_part).take_while(|&&d| d == b'0').count();
    if leading_zeros == total {
        return Some(0);
    }
    let saturated = if neg { i64::MIN } else { i64::MAX };
    // Number of digits of the result left of the decimal point.
    let int_digits = i64::try_from(total - leading_zeros).ok()? + scale;
    if int_digits > 19 {
        return Some(saturated);
    }
    let mut acc: u128 = 0;
    let mut has_fraction = false;
    for (k, &d) in (0i64..).zip(int_part.iter().chain(frac_part).skip(leading_zeros)) {
        if k < int_digits {
            acc = acc * 10 + u128::from(d - b'0');
        } else if d != b'0' {
            has_fraction = true;
            break;
        }
    }
    // int_digits <= 19 bounds both this loop and acc (< 10^19).
    for _ in 0..scale {
        acc *= 10;
    }
    let ms = if neg {
        let v = -i128::try_from(acc).ok()? - i128::from(has_fraction);
        i64::try_from(v).unwrap_or(i64::MIN)
    } else {
        i64::try_from(acc).unwrap_or(i64::MAX)
    };
    Some(ms)
}

/// Formats `v` as Go's `strconv.FormatFloat(v, 'g', -1, 64)`, appending `.0` when the result
/// has neither `.` nor `e`, and spelling infinities `+Inf`/`-Inf` and NaN `NaN`.
pub(crate) fn format_go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    // Rust's `{:e}` gives the same shortest round-trip digits Go uses: "-1.2345e-5".
    let sci = format!("{v:e}");
    let (neg, body) = match sci.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, sci.as_str()),
    };
    let Some((mant, exp)) = body.split_once('e') else {
        return v.to_string();
    };
    let Ok(exp) = exp.parse::<i32>() else {
        return v.to_string();
    };
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let mut out = String::with_capacity(digits.len() + 8);
    if neg {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        let mut chars = digits.chars();
        if let Some(first) = chars.next() {
            out.push(first);
        }
        let rest = chars.as_str();
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let abs = exp.unsigned_abs();
        if abs < 10 {
            out.push('0');
        }
        out.push_str(&abs.to_string());
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let dp = usize::try_from(exp).unwrap_or(0) + 1;
        if digits.len() <= dp {
            out.push_str(&digits);
            for _ in digits.len()..dp {
                out.push('0');
            }
        } else {
            let (a, b) = digits.split_at(dp);
            out.push_str(a);
            out.push('.');
            out.push_str(b);
        }
    }
    if !out.contains(['.', 'e']) {
        out.push_str(".0");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_follow_go_grammar() {
        for ok in ["1", "-3e3", "+Inf", "-inf", "Infinity", "NaN", "nan", ".3", "1.", "08", "1E5", "0.0000001"] {
            assert!(parse_value(ok.as_bytes()).is_some(), "{ok}");
        }
        for bad in ["", "a", "1_2", "0x1", "0x1p3", "0b1", "0o1", "1.1.1", "1e", "e1", "1e400", " 1", "1 "] {
            assert!(parse_value(bad.as_bytes()).is_none(), "{bad}");
        }
        assert!(parse_value(b"NaN").is_some_and(|v| v.is_nan() && !periscope_model::is_stale_nan(v)));
        assert_eq!(parse_value(b"9223372036854775808"), Some(9.223372036854776e18));
    }

    #[test]
    fn om_values() {
        for ok in ["1", "-1.5e-3", "+Inf", "-Inf", "inf", "NaN", "00000000001e5", "1."] {
            assert!(parse_om_value(ok.as_bytes()).is_some(), "{ok}");
        }
        for bad in ["-NaN", "+nan", "0x1", "1_2", "Infx", "1p3", "0X1", "0B1", "0O1", ""] {
            assert!(parse_om_value(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    #[test]
    fn om_label_numbers() {
        assert_eq!(parse_om_label_number("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_om_label_number("1e-04"), Some(1e-4));
        assert_eq!(parse_om_label_number("+INF"), None);
        assert_eq!(parse_om_label_number("NaN"), None);
        assert_eq!(parse_om_label_number("Inf"), None);
    }

    #[test]
    fn timestamps_convert_exactly_and_floor() {
        let ms = |s: &str| parse_om_timestamp(s.as_bytes()).map(|t| t.ms);
        assert_eq!(ms("1.001"), Some(1001));
        assert_eq!(ms("1.5e3"), Some(1_500_000));
        assert_eq!(ms("000"), Some(0));
        assert_eq!(ms("0.0"), Some(0));
        assert_eq!(ms("1.1"), Some(1100));
        assert_eq!(ms("0.0000000001"), Some(0));
        assert_eq!(ms("-0.0000000001"), Some(-1));
        assert_eq!(ms("-1.1"), Some(-1100));
        assert_eq!(ms("-1.1001"), Some(-1101));
        assert_eq!(ms("1234567890"), Some(1_234_567_890_000));
        assert_eq!(ms("12345678901234567890.1234567890"), Some(i64::MAX));
        assert_eq!(ms("-12345678901234567890"), Some(i64::MIN));
        // Out of the f64 range: refused as a value would be (Go's ErrRange).
        assert_eq!(ms("1e99999999999999999999"), None);
        assert_eq!(decimal_seconds_to_ms(b"1e99999999999999999999"), Some(i64::MAX));
        assert_eq!(ms("1e-99999999999999999999"), Some(0));
        assert_eq!(ms("9223372036854775.807"), Some(i64::MAX));
        assert_eq!(ms("9223372036854775.808"), Some(i64::MAX));
        assert_eq!(ms("-9223372036854775.808"), Some(i64::MIN));
        assert_eq!(ms("-9223372036854775.8081"), Some(i64::MIN));
        for bad in ["NaN", "Inf", "-Inf", "0x1p3", "1_2", "1.1.1", "z", "1z", ""] {
            assert_eq!(parse_om_timestamp(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn prom_timestamps_are_integers() {
        assert_eq!(parse_prom_timestamp(b"-2"), Some(-2));
        assert_eq!(parse_prom_timestamp(b"+5"), Some(5));
        assert_eq!(parse_prom_timestamp(b"2.72"), None);
        assert_eq!(parse_prom_timestamp(b"99999999999999999999"), None);
    }

    #[test]
    fn go_float_format() {
        let cases = [
            (120.0, "120.0"),
            (0.005, "0.005"),
            (1e-5, "1e-05"),
            (1e-4, "0.0001"),
            (100000.0, "100000.0"),
            (1e6, "1e+06"),
            (1.55555555555552e6, "1.55555555555552e+06"),
            (1e23, "1e+23"),
            (1e100, "1e+100"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (-4.6156147425468016e-05, "-4.6156147425468016e-05"),
            (172.8, "172.8"),
            (123456789.0, "1.23456789e+08"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ];
        for (v, want) in cases {
            assert_eq!(format_go_float(v), want, "{v}");
        }
    }
}
