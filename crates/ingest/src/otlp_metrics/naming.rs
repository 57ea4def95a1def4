//! Metric, label and unit names: Prometheus's OTLP translation with its default
//! `translation_strategy: UnderscoreEscapingWithSuffixes` and its default label sanitization
//! (`label_name_underscore_sanitization: true`, `label_name_preserve_multiple_underscores:
//! true`). Read from github.com/prometheus/otlptranslator (`metric_namer.go`,
//! `label_namer.go`, `unit_namer.go`, `strconv.go`) as used by Prometheus 3.x, and written
//! anew; `docs/otlp-metrics.md` states the rules with examples.

/// What the translator needs to know about a metric to name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// OTLP Gauge.
    Gauge,
    /// OTLP Sum with `is_monotonic`.
    MonotonicCounter,
    /// OTLP Sum without `is_monotonic`.
    NonMonotonicCounter,
    /// OTLP Histogram.
    Histogram,
    /// OTLP ExponentialHistogram.
    ExponentialHistogram,
    /// OTLP Summary.
    Summary,
}

/// UCUM unit → Prometheus unit word (otlptranslator's `unitMap`). `1` maps to nothing.
fn unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        _ => return None,
    })
}

/// UCUM unit after `/` → singular word (otlptranslator's `perUnitMap`).
fn per_unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}

/// `[a-zA-Z0-9:]`: what survives in a metric name token (`_` separates tokens).
fn is_metric_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ':'
}

/// The main and `per_` unit suffixes of a UCUM unit, before clean-up: `"By/s"` →
/// `("bytes", "per_second")`. Parts that are blank or hold `{…}` annotations give nothing;
/// unknown units are kept as written.
fn unit_suffixes(unit: &str) -> (String, String) {
    let mut parts = unit.splitn(2, '/');
    let main_part = parts.next().unwrap_or_default().trim();
    let per_part = parts.next().unwrap_or_default();
    let mut main = String::new();
    if !main_part.is_empty() && !main_part.contains(['{', '}']) {
        main = unit_word(main_part).map_or_else(|| main_part.to_owned(), str::to_owned);
    }
    let mut per = String::new();
    if !per_part.is_empty() {
        let p = per_part.trim();
        if !p.is_empty() && !p.contains(['{', '}']) {
            per = per_unit_word(p).map_or_else(|| p.to_owned(), str::to_owned);
        }
        if !per.is_empty() {
            per.insert_str(0, "per_");
        }
    }
    (main, per)
}

/// Invalid characters → `_`, runs of `_` → one, one leading `_` dropped.
fn clean_up_unit(unit: &str) -> String {
    let mut out = String::with_capacity(unit.len());
    for c in unit.chars() {
        let c = if is_metric_char(c) { c } else { '_' };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    match out.strip_prefix('_') {
        Some(rest) => rest.to_owned(),
        None => out,
    }
}

/// Builds the Prometheus metric family name of an OTLP metric.
///
/// Rules (otlptranslator `normalizeName`): split the name into tokens at every character
/// outside `[a-zA-Z0-9:]` (so `_` runs collapse and leading/trailing `_` vanish); append the
/// unit's word and its `per_` word unless already a token; for monotonic sums move `total` to
/// the end; for gauges of unit `1` move `ratio` to the end; join with `_`; prefix `_` if the
/// result starts with a digit. A name that ends up empty, or only underscores although it
/// changed, is an error (the metric is dropped).
pub fn metric_name(name: &str, unit: &str, kind: MetricKind) -> Result<String, String> {
    let mut tokens: Vec<&str> = name.split(|c: char| !is_metric_char(c)).filter(|t| !t.is_empty()).collect();
    let (main, per) = unit_suffixes(unit);
    let (mut main, mut per) = (clean_up_unit(&main), clean_up_unit(&per));
    if tokens.contains(&main.as_str()) {
        main.clear();
    }
    if per == "per_" {
        per.clear();
    } else {
        if per.ends_with('_') {
            per.pop();
        }
        if tokens.contains(&per.as_str()) {
            per.clear();
        }
    }
    if !per.is_empty() && main.ends_with('_') {
        main.pop();
    }
    if !main.is_empty() {
        tokens.push(&main);
    }
    if !per.is_empty() {
        tokens.push(&per);
    }
    if kind == MetricKind::MonotonicCounter {
        tokens.retain(|t| *t != "total");
        tokens.push("total");
    }
    if unit == "1" && kind == MetricKind::Gauge {
        tokens.retain(|t| *t != "ratio");
        tokens.push("ratio");
    }
    let mut out = tokens.join("_");
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    if out.is_empty() {
        return Err(format!("normalization for metric {name:?} resulted in empty name"));
    }
    if out != name && out.bytes().all(|b| b == b'_') {
        return Err(format!("normalization for metric {name:?} resulted in invalid name {out:?}"));
    }
    Ok(out)
}

/// Builds a Prometheus label name from an OTLP attribute key.
///
/// Rules (otlptranslator `LabelNamer` with Prometheus's default settings): every character
/// outside `[a-zA-Z0-9_]` becomes `_` (runs are kept); a name starting with a digit gets the
/// prefix `key_`; a name starting with exactly one `_` gets the prefix `key` (`__x` is kept).
/// An empty key, or a result of only underscores that differs from the key, is an error.
pub fn label_name(key: &str) -> Result<String, String> {
    if key.is_empty() {
        return Err("normalization for label name \"\" resulted in empty name".to_owned());
    }
    let mut out: String = key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    } else if out.starts_with('_') && !out.starts_with("__") {
        out.insert_str(0, "key");
    }
    if out != key && out.bytes().all(|b| b == b'_') {
        return Err(format!("normalization for label name {key:?} resulted in invalid name {out:?}"));
    }
    Ok(out)
}

/// The unit as stored in metadata (otlptranslator `UnitNamer`): `s` → `seconds`,
/// `By/s` → `bytes_per_second`, `1` → empty, `{request}` → empty.
pub fn unit_name(unit: &str) -> String {
    let (main, per) = unit_suffixes(unit);
    let (main, per) = (clean_up_unit(&main), clean_up_unit(&per));
    let mut u = match (main.is_empty(), per.is_empty()) {
        (false, false) => format!("{main}_{per}"),
        (false, true) => main,
        _ => per,
    };
    if u.starts_with('_') {
        u.remove(0);
    }
    if u.ends_with('_') {
        u.pop();
    }
    u
}

#[cfg(test)]
mod tests {
    use super::MetricKind::*;
    use super::*;

    #[track_caller]
    fn name(n: &str, unit: &str, kind: MetricKind, want: &str) {
        assert_eq!(metric_name(n, unit, kind).as_deref(), Ok(want), "metric {n:?} unit {unit:?} {kind:?}");
    }

    #[test]
    fn metric_names() {
        // (name, unit, kind, expected)
        let cases: &[(&str, &str, MetricKind, &str)] = &[
            ("http.server.duration", "ms", Histogram, "http_server_duration_milliseconds"),
            ("http.server.request.duration", "s", Histogram, "http_server_request_duration_seconds"),
            ("system.memory.usage", "By", Gauge, "system_memory_usage_bytes"),
            ("requests", "1", MonotonicCounter, "requests_total"),
            ("requests.total", "1", MonotonicCounter, "requests_total"),
            ("total.requests", "", MonotonicCounter, "requests_total"),
            ("requests", "{request}", MonotonicCounter, "requests_total"),
            ("http.client.requests", "{request}/s", Gauge, "http_client_requests_per_second"),
            ("cpu.utilization", "1", Gauge, "cpu_utilization_ratio"),
            ("cpu.ratio.utilization", "1", Gauge, "cpu_utilization_ratio"),
            ("queue.size", "1", NonMonotonicCounter, "queue_size"),
            ("queue.size", "1", Histogram, "queue_size"),
            ("network.io", "By/s", Gauge, "network_io_bytes_per_second"),
            ("throughput", "KiBy/min", Gauge, "throughput_kibibytes_per_min"),
            ("speed", "m/s", Gauge, "speed_meters_per_second"),
            ("temp", "Cel", Gauge, "temp_celsius"),
            ("disk", "%", Gauge, "disk_percent"),
            ("foo.bytes", "By", Gauge, "foo_bytes"),
            ("foo_seconds_total", "s", MonotonicCounter, "foo_seconds_total"),
            ("foo", "s", MonotonicCounter, "foo_seconds_total"),
            ("foo__bar", "", Gauge, "foo_bar"),
            ("_foo_", "", Gauge, "foo"),
            ("ünicode.name", "", Gauge, "nicode_name"),
            ("0start", "", Gauge, "_0start"),
            ("a:b.c", "", Gauge, "a:b_c"),
            ("foo", "unknown.unit", Gauge, "foo_unknown_unit"),
            ("foo", "By/{x}", Gauge, "foo_bytes"),
            ("foo", "/s", Gauge, "foo_per_second"),
            ("foo", " s ", Gauge, "foo_seconds"),
            ("", "", MonotonicCounter, "total"),
            ("my.counter", "1", MonotonicCounter, "my_counter_total"),
            ("my.gauge", "1", Gauge, "my_gauge_ratio"),
            ("my.histogram", "1", Histogram, "my_histogram"),
            ("my.exponential.histogram", "1", ExponentialHistogram, "my_exponential_histogram"),
        ];
        for (n, u, k, want) in cases {
            name(n, u, *k, want);
        }
        assert!(metric_name("", "", Gauge).is_err());
        assert!(metric_name("...", "", Gauge).is_err());
        assert!(metric_name("é", "", Summary).is_err());
    }

    #[test]
    fn label_names() {
        let cases = [
            ("http.method", "http_method"),
            ("service.instance.id", "service_instance_id"),
            ("123invalid", "key_123invalid"),
            ("_private", "key_private"),
            ("__reserved__", "__reserved__"),
            ("a..b", "a__b"),
            ("ünicode", "key_nicode"),
            ("le", "le"),
            ("_", "key_"),
            ("__", "__"),
            ("k8s.pod.name", "k8s_pod_name"),
        ];
        for (key, want) in cases {
            assert_eq!(label_name(key).as_deref(), Ok(want), "{key:?}");
        }
        assert!(label_name("").is_err());
        assert!(label_name("..").is_err());
        assert!(label_name("...").is_err());
    }

    #[test]
    fn unit_names() {
        for (unit, want) in [
            ("s", "seconds"),
            ("By/s", "bytes_per_second"),
            ("1", ""),
            ("{request}", ""),
            ("ms", "milliseconds"),
            ("", ""),
        ] {
            assert_eq!(unit_name(unit), want, "{unit:?}");
        }
    }
}
