//! Request parameters as Prometheus reads them (Go's `r.FormValue` / `r.Form`): the
//! `application/x-www-form-urlencoded` body of a POST first, then the query string, every
//! repeated key kept in order; and the time, duration and limit syntaxes of `web/api/v1`.

use super::json::days_from_civil;
use super::PromError;
use crate::AppState;
use axum::extract::{FromRequest, Request};
use axum::http::{header, Method};

/// `-292273086-05-16T16:47:06Z`: Prometheus's `minTime` formatted, which clients send back as
/// the start of "all time" (Go's parser cannot read years beyond four digits).
const MIN_TIME_FORMATTED: &str = "-292273086-05-16T16:47:06Z";
/// `292277025-08-18T07:12:54.999999999Z`: Prometheus's `maxTime` formatted.
const MAX_TIME_FORMATTED: &str = "292277025-08-18T07:12:54.999999999Z";
/// Prometheus's `minTime` in milliseconds: the default `start` of the series and labels APIs.
pub(crate) const MIN_TIME_MS: i64 = (i64::MIN / 1000 + 62_135_596_801) * 1000;
/// Prometheus's `maxTime` in milliseconds: the default `end`.
pub(crate) const MAX_TIME_MS: i64 = (i64::MAX / 1000 - 62_135_596_801) * 1000 + 999;

/// The parameters of one request, body values before query-string values.
#[derive(Debug, Default, Clone)]
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parameters from a query string.
    #[cfg(test)]
    pub(crate) fn from_query(query: &str) -> Self {
        let mut p = Params::default();
        parse_form(query.as_bytes(), &mut p.pairs);
        p
    }

    /// The first value of `name`, or `""` when absent (Go's `FormValue`).
    pub(crate) fn get(&self, name: &str) -> &str {
        self.pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }

    /// Every value of `name` in order (Go's `r.Form[name]`).
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }
}

impl FromRequest<AppState> for Params {
    type Rejection = PromError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let mut p = Params::default();
        let has_body = matches!(parts.method, Method::POST | Method::PUT | Method::PATCH);
        if has_body && is_form(&parts.headers) {
            let limit = state.config.server.max_request_body_bytes.as_usize();
            let bytes = crate::remote_write::read_body(&parts.headers, body, limit)
                .await
                .map_err(|e| PromError::with_status(e.status, "bad_data", e.message))?;
            parse_form(&bytes, &mut p.pairs);
        }
        if let Some(q) = parts.uri.query() {
            parse_form(q.as_bytes(), &mut p.pairs);
        }
        Ok(p)
    }
}

/// Whether the body is `application/x-www-form-urlencoded` (parameters after `;` ignored).
fn is_form(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim())
        .is_some_and(|v| v.eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// Parses `a=1&b=2` as Go's `url.ParseQuery`: `+` is a space, `%XX` a byte; pairs with a
/// bad escape or a `;` are skipped (Go records an error that `FormValue` ignores); a key
/// without `=` has the empty value.
pub(crate) fn parse_form(input: &[u8], out: &mut Vec<(String, String)>) {
    for pair in input.split(|&b| b == b'&') {
        if pair.is_empty() || pair.contains(&b';') {
            continue;
        }
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        if let (Some(k), Some(v)) = (unescape(k), unescape(v)) {
            out.push((k, v));
        }
    }
}

/// Go's `QueryUnescape`; `None` for a `%` not followed by two hex digits. Bytes that are not
/// UTF-8 become U+FFFD.
fn unescape(s: &[u8]) -> Option<String> {
    if !s.iter().any(|&b| b == b'%' || b == b'+') {
        return Some(String::from_utf8_lossy(s).into_owned());
    }
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                let hi = hex(*s.get(i + 1)?)?;
                let lo = hex(*s.get(i + 2)?)?;
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Parses a timestamp as Prometheus's `parseTime`: unix seconds as a float (rounded to the
/// millisecond) or RFC 3339 with an optional fraction and a `Z` or `±hh:mm` offset.
/// Milliseconds since the epoch, or `cannot parse "x" to a valid timestamp`.
pub(crate) fn parse_time(s: &str) -> Result<i64, String> {
    let err = || format!("cannot parse {s:?} to a valid timestamp");
    if let Ok(f) = s.parse::<f64>() {
        // Go's `strconv.ParseFloat` reads the same decimal syntax; Rust also takes `inf` and
        // `nan`, which are no time.
        if !f.is_finite() {
            return Err(err());
        }
        let secs = f.trunc();
        let ms = ((f - secs) * 1000.0).round();
        // Beyond ±2^53 s an f64 holds no millisecond anyway; Go's `int64()` would overflow.
        if secs.abs() > 9.0e15 {
            return Err(err());
        }
        return Ok(secs as i64 * 1000 + ms as i64);
    }
    match s {
        MIN_TIME_FORMATTED => return Ok(MIN_TIME_MS),
        MAX_TIME_FORMATTED => return Ok(MAX_TIME_MS),
        _ => {}
    }
    parse_rfc3339(s).ok_or_else(err)
}

/// `2006-01-02T15:04:05.999999999Z07:00` (Go's `time.RFC3339Nano` as a parse layout: four-digit
/// year, two-digit fields, any number of fraction digits after `.` or `,`).
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0u32, |acc, &d| d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0')))
    };
    let lit = |at: usize, c: u8| b.get(at) == Some(&c);
    let year = num(0, 4)?;
    if !(lit(4, b'-') && lit(7, b'-') && lit(10, b'T') && lit(13, b':') && lit(16, b':')) {
        return None;
    }
    let (month, day, hour, min, sec) = (num(5, 2)?, num(8, 2)?, num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days_in_month || hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if matches!(b.get(i), Some(b'.' | b',')) && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
        let mut scale = 100_000_000;
        while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
            nanos += i64::from(d - b'0') * scale;
            scale /= 10;
            i += 1;
        }
    }
    let offset = match b.get(i)? {
        b'Z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && lit(i + 3, b':') => {
            let (h, m) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = i64::from(h * 3600 + m * 60);
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + min * 60 + sec) - offset;
    Some(secs * 1000 + nanos / 1_000_000)
}

/// Parses a duration as Prometheus's `parseDuration`: seconds as a float, or Prometheus's
/// duration syntax (`5m`, `1h30m`, `10s53ms`). Nanoseconds (Go's `time.Duration`), which may
/// be zero or negative.
pub(crate) fn parse_duration(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        if f.is_finite() {
            let ns = f * 1e9;
            if ns >= i64::MAX as f64 || ns < i64::MIN as f64 {
                return Err(format!("cannot parse {s:?} to a valid duration. It overflows int64"));
            }
            return Ok(ns as i64);
        }
    } else if let Ok(d) = s.parse::<periscope_config::Duration>() {
        return Ok(i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 1_000_000).saturating_mul(1_000_000));
    }
    Err(format!("cannot parse {s:?} to a valid duration"))
}

/// Parses `limit` as Prometheus's `parseLimitParam`: empty is 0 (no limit); otherwise a
/// non-negative integer.
pub(crate) fn parse_limit(s: &str) -> Result<usize, String> {
    if s.is_empty() {
        return Ok(0);
    }
    match s.parse::<i64>() {
        Ok(n) if n < 0 => Err("limit must be non-negative".into()),
        Ok(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        Err(e) => {
            let why = match e.kind() {
                std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => "value out of range",
                _ => "invalid syntax",
            };
            Err(format!("strconv.Atoi: parsing {s:?}: {why}"))
        }
    }
}

/// Decodes a label name escaped as Prometheus 3's `U__` value-encoding (`U__http_2e_status`
/// is `http.status`, `__` is `_`); a name that is not validly escaped is returned as given.
pub(crate) fn unescape_name(name: &str) -> String {
    let Some(escaped) = name.strip_prefix("U__") else {
        return name.to_string();
    };
    let mut out = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        let mut code: u32 = 0;
        let mut digits = 0;
        loop {
            match chars.next() {
                None => return name.to_string(),
                Some('_') if digits == 0 => {
                    out.push('_');
                    break;
                }
                Some('_') => match char::from_u32(code) {
                    Some(ch) => {
                        out.push(ch);
                        break;
                    }
                    None => return name.to_string(),
                },
                Some(h) => match h.to_digit(16) {
                    Some(v) if digits < 6 => {
                        code = code * 16 + v;
                        digits += 1;
                    }
                    _ => return name.to_string(),
                },
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_keeps_repeated_keys_and_decodes() {
        let p = Params::from_query("match[]=up&match%5B%5D=%7Bjob%3D%22a%22%7D&q=a+b%20c&x&bad=%zz&semi=1;2&=v&");
        assert_eq!(p.all("match[]"), vec!["up", "{job=\"a\"}"]);
        assert_eq!(p.get("q"), "a b c");
        assert_eq!(p.get("x"), "");
        assert_eq!(p.get("bad"), "");
        assert_eq!(p.get("semi"), "");
        assert_eq!(p.get(""), "v");
        assert_eq!(p.get("missing"), "");
        let mut pairs = Vec::new();
        parse_form(b"a=%ff", &mut pairs);
        assert_eq!(pairs, vec![("a".to_string(), "\u{fffd}".to_string())]);
    }

    #[track_caller]
    fn time_ok(s: &str, want: i64) {
        assert_eq!(parse_time(s), Ok(want), "{s}");
    }

    #[test]
    fn times() {
        time_ok("1435781451.781", 1_435_781_451_781);
        time_ok("1435781451", 1_435_781_451_000);
        time_ok("1435781451.7816", 1_435_781_451_782);
        time_ok("-1.5", -1_500);
        time_ok("1e3", 1_000_000);
        time_ok("+5", 5_000);
        time_ok("2015-07-01T20:10:51.781Z", 1_435_781_451_781);
        time_ok("2015-07-01T20:10:51Z", 1_435_781_451_000);
        time_ok("2015-07-01T20:10:51.781999999999Z", 1_435_781_451_781);
        time_ok("2015-07-01T22:10:51.781+02:00", 1_435_781_451_781);
        time_ok("2015-07-01T18:40:51,781-01:30", 1_435_781_451_781);
        time_ok("1970-01-01T00:00:00Z", 0);
        time_ok("1969-12-31T23:59:59.5Z", -500);
        time_ok("2024-02-29T00:00:00Z", 1_709_164_800_000);
        time_ok(MIN_TIME_FORMATTED, MIN_TIME_MS);
        time_ok(MAX_TIME_FORMATTED, MAX_TIME_MS);
        for bad in [
            "",
            "x",
            "NaN",
            "inf",
            "1e400",
            "2015-07-01",
            "2015-07-01 20:10:51Z",
            "2015-07-01T20:10:51",
            "2015-07-01t20:10:51Z",
            "2015-13-01T20:10:51Z",
            "2023-02-29T00:00:00Z",
            "2015-07-01T24:00:00Z",
            "2015-07-01T20:10:60Z",
            "2015-07-01T20:10:51.Z",
            "2015-07-01T20:10:51+0200",
            "2015-07-01T20:10:51Zjunk",
        ] {
            assert_eq!(parse_time(bad), Err(format!("cannot parse {bad:?} to a valid timestamp")), "{bad}");
        }
    }

    #[test]
    fn min_and_max_time_are_prometheus_s() {
        // The formatted strings are what Go prints for these instants.
        let secs = MIN_TIME_MS.div_euclid(1000);
        assert_eq!(super::super::json::format_rfc3339(secs, 0), MIN_TIME_FORMATTED);
        let secs = MAX_TIME_MS.div_euclid(1000);
        assert_eq!(super::super::json::format_rfc3339(secs, 999_999_999), MAX_TIME_FORMATTED);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15"), Ok(15_000_000_000));
        assert_eq!(parse_duration("0.5"), Ok(500_000_000));
        assert_eq!(parse_duration("-1"), Ok(-1_000_000_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("5m"), Ok(300_000_000_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("10s53ms"), Ok(10_053_000_000));
        assert_eq!(parse_duration("1e10"), Err("cannot parse \"1e10\" to a valid duration. It overflows int64".into()));
        for bad in ["", "x", "1.5m", "5M", "30s1m", "nan", "-5m"] {
            assert_eq!(parse_duration(bad), Err(format!("cannot parse {bad:?} to a valid duration")), "{bad}");
        }
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit(""), Ok(0));
        assert_eq!(parse_limit("5"), Ok(5));
        assert_eq!(parse_limit("-1"), Err("limit must be non-negative".into()));
        assert_eq!(parse_limit("x"), Err("strconv.Atoi: parsing \"x\": invalid syntax".into()));
        assert_eq!(
            parse_limit("99999999999999999999"),
            Err("strconv.Atoi: parsing \"99999999999999999999\": value out of range".into())
        );
    }

    #[test]
    fn escaped_label_names() {
        assert_eq!(unescape_name("job"), "job");
        assert_eq!(unescape_name("U__http_2e_status"), "http.status");
        assert_eq!(unescape_name("U__a__b"), "a_b");
        assert_eq!(unescape_name("U___1f600_"), "\u{1f600}");
        assert_eq!(unescape_name("U__bad_zz_"), "U__bad_zz_");
        assert_eq!(unescape_name("U__open_2e"), "U__open_2e");
        assert_eq!(unescape_name("U__long_1234567_"), "U__long_1234567_");
        assert_eq!(unescape_name("U__surrogate_d800_"), "U__surrogate_d800_");
    }
}
