//! Go `expvar` JSON (`/debug/vars`) → [`MetricBatch`] at one timestamp.
//!
//! Invariants:
//! - The body must be one JSON object; anything else is an error. serde_json's recursion limit
//!   (128) stays on, so hostile nesting is a parse error, never a stack overflow.
//! - Every series gets the caller's base labels (job, instance, ...) and the given timestamp.
//!   A base label named `__name__` is replaced; a base label that collides with a `key` label
//!   below makes the latter `exported_key`, as Prometheus does for scraped labels.
//! - At most `max_series` series (0 = unlimited), else [`IngestError::ExpvarTooManySeries`]
//!   (class `TooLarge`), as a scrape's sample limit fails the whole scrape. Nothing in the
//!   output is larger than a small multiple of the input.
//! - Names match `[a-zA-Z_:][a-zA-Z0-9_:]*`: a variable name is turned to snake_case
//!   (`numForcedGC` → `num_forced_gc`, `HTTPRequests` → `http_requests`) and every other
//!   character becomes `_`. Object keys are visited in byte order of the original keys, whatever
//!   their order in the document (and whatever serde_json's map type), so the output is
//!   deterministic: when two values end up as the same series the one whose key sorts first is
//!   kept and the others are counted in [`ExpvarReport::skipped_duplicates`].
//!
//! The mapping:
//! - `memstats` (Go's `runtime.MemStats`): fields with a client_golang equivalent get its name,
//!   type and unit (`Alloc` → `go_memstats_alloc_bytes` gauge, `TotalAlloc` →
//!   `go_memstats_alloc_bytes_total` counter, `LastGC` ns → `go_memstats_last_gc_time_seconds`,
//!   `PauseTotalNs`/`NumGC` → `go_gc_duration_seconds_sum`/`_count` of a summary, ...); other
//!   fields become gauges `go_memstats_<snake_case>` (`NumForcedGC` →
//!   `go_memstats_num_forced_gc`). The arrays `PauseNs`, `PauseEnd` and `BySize` are skipped
//!   and counted.
//! - `cmdline` is skipped silently.
//! - Any other variable `v`: a number is a gauge `expvar_<snake_case v>`; a boolean is 0 or 1;
//!   an object is flattened, one label per nesting level: the first level's keys go in label
//!   `key`, the second's in `key2`, the third's in `key3`, and so on, so
//!   `{"requests": {"GET": 3, "POST": 1}}` gives `expvar_requests{key="GET"} 3` and
//!   `expvar_requests{key="POST"} 1`. An empty key gives no label (empty values are absent).
//!   Objects that would need more than [`MAX_EXPVAR_DEPTH`] key labels are skipped and counted
//!   in [`ExpvarReport::skipped_too_deep`]; arrays in [`ExpvarReport::skipped_arrays`];
//!   strings and nulls in [`ExpvarReport::skipped_non_numeric`].
//! - Each family gets one [`MetricMetadata`] entry (gauge unless stated above).

use std::collections::HashSet;

use periscope_model::{Labels, MetricBatch, MetricMetadata, MetricType, Sample, SeriesSamples, METRIC_NAME};
use serde_json::{Map, Value};

use crate::IngestError;

/// Most `key` labels one series gets from nested objects.
pub const MAX_EXPVAR_DEPTH: usize = 8;

/// What one expvar decode produced and skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpvarReport {
    /// Series in the returned batch.
    pub series: usize,
    /// Values that are neither numbers, booleans, objects nor arrays (strings, nulls).
    pub skipped_non_numeric: usize,
    /// Arrays (`memstats.PauseNs`, `PauseEnd`, `BySize`, any array variable), each counted once.
    pub skipped_arrays: usize,
    /// Objects nested deeper than [`MAX_EXPVAR_DEPTH`] levels, each counted once.
    pub skipped_too_deep: usize,
    /// Values whose series (name and labels after sanitising) was already produced.
    pub skipped_duplicates: usize,
}

/// How a memstats field converts to its client_golang equivalent.
#[derive(Clone, Copy)]
enum Scale {
    One,
    NanosToSeconds,
}

/// `runtime.MemStats` fields with a client_golang name: (Go field, series name, metric
/// family, type, scale).
const MEMSTATS: &[(&str, &str, &str, MetricType, Scale)] = {
    use MetricType::{Counter, Gauge, Summary};
    use Scale::{NanosToSeconds, One};
    &[
        ("Alloc", "go_memstats_alloc_bytes", "go_memstats_alloc_bytes", Gauge, One),
        ("TotalAlloc", "go_memstats_alloc_bytes_total", "go_memstats_alloc_bytes_total", Counter, One),
        ("Sys", "go_memstats_sys_bytes", "go_memstats_sys_bytes", Gauge, One),
        ("Lookups", "go_memstats_lookups_total", "go_memstats_lookups_total", Counter, One),
        ("Mallocs", "go_memstats_mallocs_total", "go_memstats_mallocs_total", Counter, One),
        ("Frees", "go_memstats_frees_total", "go_memstats_frees_total", Counter, One),
        ("HeapAlloc", "go_memstats_heap_alloc_bytes", "go_memstats_heap_alloc_bytes", Gauge, One),
        ("HeapSys", "go_memstats_heap_sys_bytes", "go_memstats_heap_sys_bytes", Gauge, One),
        ("HeapIdle", "go_memstats_heap_idle_bytes", "go_memstats_heap_idle_bytes", Gauge, One),
        ("HeapInuse", "go_memstats_heap_inuse_bytes", "go_memstats_heap_inuse_bytes", Gauge, One),
        ("HeapReleased", "go_memstats_heap_released_bytes", "go_memstats_heap_released_bytes", Gauge, One),
        ("HeapObjects", "go_memstats_heap_objects", "go_memstats_heap_objects", Gauge, One),
        ("StackInuse", "go_memstats_stack_inuse_bytes", "go_memstats_stack_inuse_bytes", Gauge, One),
        ("StackSys", "go_memstats_stack_sys_bytes", "go_memstats_stack_sys_bytes", Gauge, One),
        ("MSpanInuse", "go_memstats_mspan_inuse_bytes", "go_memstats_mspan_inuse_bytes", Gauge, One),
        ("MSpanSys", "go_memstats_mspan_sys_bytes", "go_memstats_mspan_sys_bytes", Gauge, One),
        ("MCacheInuse", "go_memstats_mcache_inuse_bytes", "go_memstats_mcache_inuse_bytes", Gauge, One),
        ("MCacheSys", "go_memstats_mcache_sys_bytes", "go_memstats_mcache_sys_bytes", Gauge, One),
        ("BuckHashSys", "go_memstats_buck_hash_sys_bytes", "go_memstats_buck_hash_sys_bytes", Gauge, One),
        ("GCSys", "go_memstats_gc_sys_bytes", "go_memstats_gc_sys_bytes", Gauge, One),
        ("OtherSys", "go_memstats_other_sys_bytes", "go_memstats_other_sys_bytes", Gauge, One),
        ("NextGC", "go_memstats_next_gc_bytes", "go_memstats_next_gc_bytes", Gauge, One),
        ("LastGC", "go_memstats_last_gc_time_seconds", "go_memstats_last_gc_time_seconds", Gauge, NanosToSeconds),
        ("GCCPUFraction", "go_memstats_gc_cpu_fraction", "go_memstats_gc_cpu_fraction", Gauge, One),
        ("PauseTotalNs", "go_gc_duration_seconds_sum", "go_gc_duration_seconds", Summary, NanosToSeconds),
        ("NumGC", "go_gc_duration_seconds_count", "go_gc_duration_seconds", Summary, One),
    ]
};

/// Decodes a Go expvar document into series at `timestamp_ms`, each carrying `base_labels`.
///
/// `max_series` caps the series produced (0 = unlimited). See the module docs for the naming
/// and flattening rules. Errors: [`IngestError::ExpvarJson`], [`IngestError::ExpvarNotObject`],
/// [`IngestError::ExpvarTooManySeries`].
pub fn decode_expvar(
    body: &[u8],
    timestamp_ms: i64,
    base_labels: &Labels,
    max_series: usize,
) -> Result<(MetricBatch, ExpvarReport), IngestError> {
    let doc: Value = serde_json::from_slice(body).map_err(IngestError::ExpvarJson)?;
    let Value::Object(vars) = doc else {
        return Err(IngestError::ExpvarNotObject);
    };
    let mut out = Output {
        batch: MetricBatch::default(),
        report: ExpvarReport::default(),
        base: base_labels,
        t: timestamp_ms,
        max_series,
        seen_series: HashSet::new(),
        seen_families: HashSet::new(),
    };
    for (name, value) in sorted(&vars) {
        match (name.as_str(), value) {
            ("cmdline", _) => {}
            ("memstats", Value::Object(fields)) => memstats(fields, &mut out)?,
            _ => {
                let metric = format!("expvar_{}", snake_case(name));
                let help = format!("Go expvar variable {name:?}.");
                flatten(&metric, &help, value, &mut Vec::new(), &mut out)?;
            }
        }
    }
    out.report.series = out.batch.series.len();
    Ok((out.batch, out.report))
}

struct Output<'a> {
    batch: MetricBatch,
    report: ExpvarReport,
    base: &'a Labels,
    t: i64,
    max_series: usize,
    seen_series: HashSet<Labels>,
    seen_families: HashSet<String>,
}

impl Output<'_> {
    fn push(
        &mut self,
        name: &str,
        keys: &[&str],
        v: f64,
        family: &str,
        metric_type: MetricType,
        help: &str,
    ) -> Result<(), IngestError> {
        let mut b = self.base.builder();
        b.set(METRIC_NAME, name);
        for (i, key) in keys.iter().enumerate() {
            let label = key_label(i);
            if self.base.get(&label).is_some() {
                b.set(&format!("exported_{label}"), key);
            } else {
                b.set(&label, key);
            }
        }
        let labels = b.build();
        if self.seen_series.contains(&labels) {
            self.report.skipped_duplicates += 1;
            return Ok(());
        }
        if self.max_series != 0 && self.batch.series.len() >= self.max_series {
            return Err(IngestError::ExpvarTooManySeries { max: self.max_series });
        }
        self.seen_series.insert(labels.clone());
        self.batch.series.push(SeriesSamples {
            labels,
            samples: vec![Sample::new(self.t, v)],
            histograms: Vec::new(),
            exemplars: Vec::new(),
        });
        if !self.seen_families.contains(family) {
            self.seen_families.insert(family.to_owned());
            self.batch.metadata.push(MetricMetadata {
                metric_family: family.to_owned(),
                metric_type,
                help: help.to_owned(),
                unit: String::new(),
            });
        }
        Ok(())
    }
}

/// The entries of `map` in byte order of their keys. serde_json's map is sorted already unless
/// some crate in the build turns on its `preserve_order` feature; this makes sure.
fn sorted(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    if !entries.windows(2).all(|w| w[0].0 <= w[1].0) {
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    }
    entries
}

/// The label holding the keys of nesting level `i` (0-based): `key`, `key2`, `key3`, ...
fn key_label(i: usize) -> String {
    if i == 0 {
        "key".to_owned()
    } else {
        format!("key{}", i + 1)
    }
}

fn memstats(fields: &Map<String, Value>, out: &mut Output<'_>) -> Result<(), IngestError> {
    for (field, value) in sorted(fields) {
        let known = MEMSTATS.iter().find(|m| m.0 == field);
        match (known, value) {
            (Some(&(_, name, family, metric_type, scale)), Value::Number(n)) => {
                let Some(v) = n.as_f64() else {
                    out.report.skipped_non_numeric += 1;
                    continue;
                };
                let v = match scale {
                    Scale::One => v,
                    Scale::NanosToSeconds => v / 1e9,
                };
                let help = format!("Go runtime.MemStats.{field}, read from expvar.");
                out.push(name, &[], v, family, metric_type, &help)?;
            }
            _ => {
                let metric = format!("go_memstats_{}", snake_case(field));
                let help = format!("Go runtime.MemStats.{field}, read from expvar.");
                flatten(&metric, &help, value, &mut Vec::new(), out)?;
            }
        }
    }
    Ok(())
}

/// Emits `value` as series named `name`, with the keys of the enclosing objects in `keys`.
/// Recursion is bounded by [`MAX_EXPVAR_DEPTH`].
fn flatten<'v>(
    name: &str,
    help: &str,
    value: &'v Value,
    keys: &mut Vec<&'v str>,
    out: &mut Output<'_>,
) -> Result<(), IngestError> {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(v) => out.push(name, keys, v, name, MetricType::Gauge, help)?,
            None => out.report.skipped_non_numeric += 1,
        },
        Value::Bool(b) => out.push(name, keys, if *b { 1.0 } else { 0.0 }, name, MetricType::Gauge, help)?,
        Value::Object(map) => {
            if keys.len() >= MAX_EXPVAR_DEPTH {
                out.report.skipped_too_deep += 1;
                return Ok(());
            }
            for (k, v) in sorted(map) {
                keys.push(k);
                let r = flatten(name, help, v, keys, out);
                keys.pop();
                r?;
            }
        }
        Value::Array(_) => out.report.skipped_arrays += 1,
        Value::String(_) | Value::Null => out.report.skipped_non_numeric += 1,
    }
    Ok(())
}

/// camelCase → snake_case, other characters outside `[a-zA-Z0-9_:]` → `_`. An underscore
/// goes before an upper-case letter that follows a lower-case letter or digit, or that starts
/// a word after an acronym (`HTTPServer` → `http_server`). The result is valid after a
/// prefix such as `expvar_`; it may itself start with a digit.
pub(crate) fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + name.len() / 4);
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).and_then(|p| chars.get(p)).copied();
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    out
}

#[cfg(test)]
#[path = "expvar_test.rs"]
mod tests;
