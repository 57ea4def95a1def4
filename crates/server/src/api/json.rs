//! Hand-written JSON for the query API, byte for byte as Prometheus writes it
//! (`util/jsonutil/marshal.go` and the `marshal*JSON` encoders of `web/api/v1`): timestamps as
//! JSON numbers of seconds with up to three decimals, sample values as strings in Go's
//! `strconv.FormatFloat` shortest form. Large results are written straight into one `String`,
//! without an intermediate tree.

use periscope_model::{FloatHistogram, Labels};
use periscope_promql::Value;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// Appends `s` as a JSON string, escaped as Go's jsoniter `WriteString` escapes it (quote,
/// backslash and control characters; no HTML escaping).
pub(crate) fn write_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends a millisecond timestamp as Prometheus's `MarshalTimestamp` does: whole seconds,
/// then `.` and three digits when the milliseconds are not zero (`1435781451.781`,
/// `1435781451.700`, `1435781451`).
pub(crate) fn write_timestamp(out: &mut String, t: i64) {
    if t < 0 {
        out.push('-');
    }
    let abs = t.unsigned_abs();
    let _ = write!(out, "{}", abs / 1000);
    let frac = abs % 1000;
    if frac != 0 {
        let _ = write!(out, ".{frac:03}");
    }
}

/// Appends a sample value as a JSON string, as Prometheus's `MarshalFloat`: Go's
/// `strconv.FormatFloat(v, 'f', -1, 64)`, or the `'e'` form when `|v| < 1e-6` or
/// `|v| >= 1e21`; `NaN`, `+Inf`, `-Inf` for the special values.
pub(crate) fn write_float(out: &mut String, v: f64) {
    out.push('"');
    format_float_into(out, v);
    out.push('"');
}

/// The text of [`write_float`] without quotes.
pub(crate) fn format_float_into(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let abs = v.abs();
        if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
            // Rust writes the same shortest digits as Go, but `1e21` / `1.5e-7` where Go
            // writes `1e+21` / `1.5e-07`.
            let s = format!("{v:e}");
            let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            out.push_str(mantissa);
            out.push('e');
            out.push(sign);
            if digits.len() < 2 {
                out.push('0');
            }
            out.push_str(digits);
        } else {
            // Rust's `Display` of f64 is Go's `'f', -1`: shortest round-trip digits, no
            // exponent (`-0` included).
            let _ = write!(out, "{v}");
        }
    }
}

/// Appends a label set as a JSON object in label order.
pub(crate) fn write_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, &l.name);
        out.push(':');
        write_str(out, &l.value);
    }
    out.push('}');
}

/// Appends a list of strings as a JSON array.
pub(crate) fn write_str_array<S: AsRef<str>>(out: &mut String, items: &[S]) {
    out.push('[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, s.as_ref());
    }
    out.push(']');
}

fn write_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    write_timestamp(out, t);
    out.push(',');
    write_float(out, v);
    out.push(']');
}

/// `[<time>, <histogram>]`.
fn write_histogram_point(out: &mut String, t: i64, h: &FloatHistogram) {
    out.push('[');
    write_timestamp(out, t);
    out.push(',');
    write_histogram(out, h);
    out.push(']');
}

/// A native histogram as Prometheus's API writes it: count and sum as float strings, then
/// the non-empty buckets as `[boundary rule, lower, upper, count]` (rule 0: open left,
/// 1: open right, 2: open, 3: closed), the key left out when there are none.
pub(crate) fn write_histogram(out: &mut String, h: &FloatHistogram) {
    out.push_str("{\"count\":");
    write_float(out, h.count);
    out.push_str(",\"sum\":");
    write_float(out, h.sum);
    let buckets = h.buckets();
    if !buckets.is_empty() {
        out.push_str(",\"buckets\":[");
        for (i, b) in buckets.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "[{},", b.rule as u8);
            write_float(out, b.lower);
            out.push(',');
            write_float(out, b.upper);
            out.push(',');
            write_float(out, b.count);
            out.push(']');
        }
        out.push(']');
    }
    out.push('}');
}

/// Appends the `data` object of a query answer: `{"resultType":...,"result":...}`.
pub(crate) fn write_query_data(out: &mut String, value: &Value) {
    out.push_str("{\"resultType\":\"");
    out.push_str(value.type_name());
    out.push_str("\",\"result\":");
    match value {
        Value::Scalar { t, v } => write_point(out, *t, *v),
        Value::String { t, s } => {
            out.push('[');
            write_timestamp(out, *t);
            out.push(',');
            write_str(out, s);
            out.push(']');
        }
        Value::Vector(samples) => {
            out.push('[');
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_labels(out, &s.labels);
                match &s.h {
                    Some(h) => {
                        out.push_str(",\"histogram\":");
                        write_histogram_point(out, s.t, h);
                    }
                    None => {
                        out.push_str(",\"value\":");
                        write_point(out, s.t, s.v);
                    }
                }
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push('[');
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_labels(out, &s.labels);
                // Each list only when it has points, as Prometheus writes series.
                if !s.points.is_empty() || s.histograms.is_empty() {
                    out.push_str(",\"values\":[");
                    for (j, p) in s.points.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        write_point(out, p.t, p.v);
                    }
                    out.push(']');
                }
                if !s.histograms.is_empty() {
                    out.push_str(",\"histograms\":[");
                    for (j, p) in s.histograms.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        write_histogram_point(out, p.t, &p.h);
                    }
                    out.push(']');
                }
                out.push('}');
            }
            out.push(']');
        }
    }
    out.push('}');
}

/// A whole success answer: `{"status":"success","data":<data>}` plus `warnings` and `infos`
/// when there are any, in the field order of Prometheus's `Response`.
pub(crate) fn success_body(data: &str, warnings: &[String], infos: &[String]) -> String {
    let mut out = String::with_capacity(data.len() + 64);
    out.push_str("{\"status\":\"success\",\"data\":");
    out.push_str(data);
    if !warnings.is_empty() {
        out.push_str(",\"warnings\":");
        write_str_array(&mut out, warnings);
    }
    if !infos.is_empty() {
        out.push_str(",\"infos\":");
        write_str_array(&mut out, infos);
    }
    out.push('}');
    out
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number of [`days_from_civil`].
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Seconds and nanoseconds since the epoch as Go's `time.Time` JSON (RFC 3339 with the
/// fraction's trailing zeros removed, always UTC): `2015-07-01T20:10:51.781Z`.
pub(crate) fn format_rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out = String::with_capacity(32);
    if y < 0 {
        let _ = write!(out, "-{:04}", -y);
    } else {
        let _ = write!(out, "{y:04}");
    }
    let _ = write!(out, "-{m:02}-{d:02}T{:02}:{:02}:{:02}", rem / 3600, rem / 60 % 60, rem % 60);
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// A wall-clock time as [`format_rfc3339`]; `None` is Go's zero time
/// (`0001-01-01T00:00:00Z`), which Prometheus shows for a target never scraped.
pub(crate) fn format_system_time(t: Option<SystemTime>) -> String {
    let Some(t) = t else {
        return "0001-01-01T00:00:00Z".to_string();
    };
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => format_rfc3339(d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let (mut secs, mut nanos) = (-(d.as_secs() as i64), d.subsec_nanos());
            if nanos > 0 {
                secs -= 1;
                nanos = 1_000_000_000 - nanos;
            }
            format_rfc3339(secs, nanos)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use periscope_promql::{InstantSample, Point, RangeSeries};

    #[track_caller]
    fn float(v: f64, want: &str) {
        let mut s = String::new();
        format_float_into(&mut s, v);
        assert_eq!(s, want, "{v:?}");
    }

    #[test]
    fn floats_as_go_formats_them() {
        float(1.0, "1");
        float(0.1, "0.1");
        float(-0.0, "-0");
        float(0.0, "0");
        float(1234567.891, "1234567.891");
        float(1e20, "100000000000000000000");
        float(1e21, "1e+21");
        float(-1.5e300, "-1.5e+300");
        float(1e-6, "0.000001");
        float(1.5e-7, "1.5e-07");
        float(5e-324, "5e-324");
        float(f64::MAX, "1.7976931348623157e+308");
        float(0.30000000000000004, "0.30000000000000004");
        float(f64::NAN, "NaN");
        float(f64::INFINITY, "+Inf");
        float(f64::NEG_INFINITY, "-Inf");
    }

    #[track_caller]
    fn ts(t: i64, want: &str) {
        let mut s = String::new();
        write_timestamp(&mut s, t);
        assert_eq!(s, want, "{t}");
    }

    #[test]
    fn timestamps_as_prometheus_writes_them() {
        ts(1_435_781_451_781, "1435781451.781");
        ts(1_435_781_451_000, "1435781451");
        ts(1_435_781_451_700, "1435781451.700");
        ts(1_435_781_451_007, "1435781451.007");
        ts(0, "0");
        ts(-1_500, "-1.500");
        ts(-5, "-0.005");
        ts(i64::MIN, "-9223372036854775.808");
    }

    #[test]
    fn strings_are_escaped() {
        let mut s = String::new();
        write_str(&mut s, "a\"b\\c\nd\u{1}é<");
        assert_eq!(s, r#""a\"b\\c\nd\u0001é<""#);
        let v: String = serde_json::from_str(&s).unwrap();
        assert_eq!(v, "a\"b\\c\nd\u{1}é<");
    }

    #[test]
    fn query_data_shapes() {
        let labels = Labels::from_pairs([("__name__", "up"), ("job", "a")]).unwrap();
        let mut s = String::new();
        write_query_data(
            &mut s,
            &Value::Vector(vec![InstantSample { labels: labels.clone(), t: 1_000_500, v: 1.0, h: None }]),
        );
        assert_eq!(
            s,
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a"},"value":[1000.500,"1"]}]}"#
        );
        s.clear();
        write_query_data(
            &mut s,
            &Value::Matrix(vec![RangeSeries {
                labels: labels.clone(),
                points: vec![Point { t: 1000, v: 0.5 }, Point { t: 2000, v: f64::NAN }],
                histograms: vec![],
            }]),
        );
        assert_eq!(
            s,
            r#"{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a"},"values":[[1,"0.5"],[2,"NaN"]]}]}"#
        );
        s.clear();
        // Native histograms: the bucket rules and bounds of Prometheus's API, empty buckets
        // left out; a series with histograms only has no `values`.
        let h = std::sync::Arc::new(FloatHistogram {
            schema: 0,
            zero_threshold: 0.001,
            zero_count: 2.0,
            count: 9.0,
            sum: 12.5,
            positive_spans: vec![periscope_model::BucketSpan { offset: 0, length: 3 }],
            positive_buckets: vec![1.0, 0.0, 3.0],
            negative_spans: vec![periscope_model::BucketSpan { offset: 0, length: 1 }],
            negative_buckets: vec![3.0],
            ..Default::default()
        });
        write_query_data(
            &mut s,
            &Value::Vector(vec![InstantSample { labels: labels.clone(), t: 1000, v: f64::NAN, h: Some(h.clone()) }]),
        );
        assert_eq!(
            s,
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a"},"histogram":[1,{"count":"9","sum":"12.5","buckets":[[1,"-1","-0.5","3"],[3,"-0.001","0.001","2"],[0,"0.5","1","1"],[0,"2","4","3"]]}]}]}"#
        );
        s.clear();
        write_query_data(
            &mut s,
            &Value::Matrix(vec![RangeSeries {
                labels,
                points: vec![],
                histograms: vec![periscope_promql::HistogramPoint {
                    t: 2000,
                    h: std::sync::Arc::new(FloatHistogram::default()),
                }],
            }]),
        );
        assert_eq!(
            s,
            r#"{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a"},"histograms":[[2,{"count":"0","sum":"0"}]]}]}"#
        );
        s.clear();
        write_query_data(&mut s, &Value::Scalar { t: 1000, v: 2.0 });
        assert_eq!(s, r#"{"resultType":"scalar","result":[1,"2"]}"#);
        s.clear();
        write_query_data(&mut s, &Value::String { t: 1000, s: "x".into() });
        assert_eq!(s, r#"{"resultType":"string","result":[1,"x"]}"#);
        s.clear();
        write_query_data(&mut s, &Value::Vector(vec![]));
        assert_eq!(s, r#"{"resultType":"vector","result":[]}"#);
    }

    #[test]
    fn success_with_annotations() {
        assert_eq!(success_body("[]", &[], &[]), r#"{"status":"success","data":[]}"#);
        assert_eq!(
            success_body("1", &["w".into()], &["i".into()]),
            r#"{"status":"success","data":1,"warnings":["w"],"infos":["i"]}"#
        );
    }

    #[test]
    fn calendar() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for z in [-1_000_000, -1, 0, 1, 11_016, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(format_rfc3339(1_435_781_451, 781_000_000), "2015-07-01T20:10:51.781Z");
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(-1, 500), "1969-12-31T23:59:59.0000005Z");
        assert_eq!(format_system_time(None), "0001-01-01T00:00:00Z");
        assert_eq!(
            format_system_time(Some(UNIX_EPOCH - std::time::Duration::from_millis(1500))),
            "1969-12-31T23:59:58.5Z"
        );
    }
}
