//! Decoded OTLP request → [`MetricBatch`], with the rules of Prometheus 3.x's OTLP receiver
//! (`storage/remote/otlptranslator/prometheusremotewrite`: `metrics_to_prw.go`, `helper.go`,
//! `number_data_points.go`, `otlp_to_openmetrics_metadata.go`) at its defaults. The rules are
//! stated with examples in `docs/otlp-metrics.md`; what follows are the invariants.
//!
//! - Nothing here fails: what cannot be translated is counted in [`OtlpMetricsReport`] and
//!   described in its messages (the OTLP `partial_success`), the rest is kept.
//! - Refused whole metrics (every point counted as rejected): delta or unspecified temporality
//!   (Prometheus accepts only cumulative sums and histograms unless an experimental flag is
//!   set), names that normalize to nothing. A metric without points is
//!   reported with no point counted. A bad attribute key refuses the point and the metric's
//!   later points, as Prometheus abandons the metric there.
//! - Exponential histograms become native histograms as Prometheus converts them
//!   (`histograms.go`): scales above 8 are merged down to 8, scales below -4 refuse the point,
//!   OTLP bucket `i` becomes bucket `i + 1` (OTLP buckets are closed below, Prometheus's
//!   above), the zero threshold is Prometheus's default 1e-128 (OTLP's field is ignored, as
//!   Prometheus ignores it), the counter reset hint is "unknown".
//! - Ignored on purpose: start timestamps (Prometheus's `_created` series are off by
//!   default, and so are created-timestamp zero injections), histogram `min`/`max`, metric
//!   `metadata`, dropped-attribute counts, schema URLs (except as `otel_scope_schema_url`).
//! - Samples of one label set are merged into one series in point order; the batch holds one
//!   metadata entry per distinct (family, type, help, unit).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use periscope_model::{
    BucketSpan, CounterResetHint, Exemplar as PromExemplar, FloatHistogram, HistogramSample, Label, Labels,
    MetricBatch, MetricMetadata, MetricType, Sample, SeriesSamples, MAX_SCHEMA, MIN_SCHEMA, STALE_NAN,
};
use std::sync::Arc;

use super::model::*;
use super::naming::{label_name, metric_name, unit_name, MetricKind};
use crate::DecodeLimits;

/// Resource attribute that names the service (→ `job`).
pub const SERVICE_NAME: &str = "service.name";
/// Resource attribute that groups services (→ `job` prefix).
pub const SERVICE_NAMESPACE: &str = "service.namespace";
/// Resource attribute that names the instance (→ `instance`).
pub const SERVICE_INSTANCE_ID: &str = "service.instance.id";
/// Name of the series that carries the remaining resource attributes.
pub const TARGET_INFO: &str = "target_info";

/// Prometheus's default lookback delta (5 m); `target_info` gets a sample every half of it.
const TARGET_INFO_INTERVAL_NS: u64 = 150_000_000_000;
/// Most `target_info` samples per resource. Prometheus writes one per 2.5 min from the
/// earliest to the latest point of the resource, without bound; a point with a zero
/// timestamp would make that millions. We keep the latest ones only.
pub const MAX_TARGET_INFO_SAMPLES: usize = 64;
/// Most runes of exemplar labels before the filtered attributes are left out (OpenMetrics).
const MAX_EXEMPLAR_RUNES: usize = 128;
/// Most distinct messages kept for the `partial_success` error message.
const MAX_MESSAGES: usize = 8;

/// Translation settings (Prometheus's `otlp:` configuration section, the subset we support).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TranslateOptions {
    /// Resource attributes copied onto every series of the resource (`promote_resource_attributes`);
    /// empty by default, as in Prometheus.
    pub promote_resource_attributes: Vec<String>,
    /// Adds `otel_scope_name`, `otel_scope_version`, `otel_scope_schema_url` and
    /// `otel_scope_<attribute>` labels (`promote_scope_metadata`, off by default in Prometheus).
    pub promote_scope_metadata: bool,
    /// Label limits; a point whose series would break one is rejected. 0 = unlimited.
    pub limits: DecodeLimits,
}

/// What one translation produced and refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtlpMetricsReport {
    /// Metrics in the request.
    pub metrics: usize,
    /// Data points in the request.
    pub data_points: usize,
    /// Series in the batch.
    pub series: usize,
    /// Samples in the batch.
    pub samples: usize,
    /// Exemplars in the batch.
    pub exemplars: usize,
    /// Metadata entries in the batch.
    pub metadata: usize,
    /// Exemplars left out: no value, or labels that do not form a valid set.
    pub exemplars_dropped: usize,
    /// Data points refused, all reasons: the `rejected_data_points` of the OTLP answer.
    pub rejected_points: usize,
    /// Of which: delta or unspecified aggregation temporality.
    pub temporality_points: usize,
    /// Of which: exponential histograms that cannot be converted (scale below -4).
    pub exponential_histogram_points: usize,
    /// Of which: invalid metric or label names, or label limits.
    pub invalid_points: usize,
    /// Problems found, in request order (at most a few kept; see [`Self::problems`]).
    pub messages: Vec<String>,
    /// Problems found, all counted.
    pub problems: usize,
}

impl OtlpMetricsReport {
    fn problem(&mut self, msg: impl FnOnce() -> String) {
        self.problems += 1;
        if self.messages.len() < MAX_MESSAGES {
            self.messages.push(msg());
        }
    }

    /// One line for the OTLP `partial_success.error_message`, empty when nothing was wrong.
    pub fn error_message(&self) -> String {
        let mut s = self.messages.join("; ");
        if self.problems > self.messages.len() {
            let _ = write!(s, "; and {} more", self.problems - self.messages.len());
        }
        s
    }
}

/// Translates a decoded request into a batch.
pub fn translate(req: &ExportMetricsRequest, opts: &TranslateOptions) -> (MetricBatch, OtlpMetricsReport) {
    let mut t = Translator { opts, out: Output::default(), report: OtlpMetricsReport::default() };
    for rm in &req.resource_metrics {
        t.resource(rm);
    }
    let Translator { out, mut report, .. } = t;
    let batch = MetricBatch { series: out.series, metadata: out.metadata };
    report.series = batch.series.len();
    report.samples = batch.sample_count();
    report.exemplars = batch.exemplar_count();
    report.metadata = batch.metadata.len();
    (batch, report)
}

#[derive(Default)]
struct Output {
    series: Vec<SeriesSamples>,
    index: HashMap<Labels, usize>,
    metadata: Vec<MetricMetadata>,
    seen_metadata: HashSet<MetricMetadata>,
}

impl Output {
    fn series_of(&mut self, labels: Labels) -> usize {
        if let Some(&i) = self.index.get(&labels) {
            return i;
        }
        let i = self.series.len();
        self.index.insert(labels.clone(), i);
        self.series.push(SeriesSamples { labels, samples: Vec::new(), histograms: Vec::new(), exemplars: Vec::new() });
        i
    }

    fn add(&mut self, labels: Labels, sample: Sample, exemplars: Vec<PromExemplar>) {
        let i = self.series_of(labels);
        let s = &mut self.series[i];
        s.samples.push(sample);
        s.exemplars.extend(exemplars);
    }

    fn add_histogram(&mut self, labels: Labels, sample: HistogramSample, exemplars: Vec<PromExemplar>) {
        let i = self.series_of(labels);
        let s = &mut self.series[i];
        s.histograms.push(sample);
        s.exemplars.extend(exemplars);
    }

    fn metadata(&mut self, m: MetricMetadata) {
        if self.seen_metadata.insert(m.clone()) {
            self.metadata.push(m);
        }
    }
}

/// Label names and values being assembled, sorted; never holds an empty value (setting one
/// deletes the label, as Prometheus's label builder does).
type LabelMap = BTreeMap<String, String>;

fn set(map: &mut LabelMap, name: String, value: String) {
    if value.is_empty() {
        map.remove(&name);
    } else {
        map.insert(name, value);
    }
}

/// The first value of attribute `key` (pdata's `Map.Get`).
fn get<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs.iter().find(|kv| kv.key == key).map(|kv| &kv.value)
}

struct Translator<'o> {
    opts: &'o TranslateOptions,
    out: Output,
    report: OtlpMetricsReport,
}

/// One metric's data, whatever its type.
enum Points<'a> {
    Number(&'a [NumberDataPoint]),
    Histogram(&'a [HistogramDataPoint]),
    Exponential(&'a [ExponentialHistogramDataPoint]),
    Summary(&'a [SummaryDataPoint]),
}

impl Points<'_> {
    fn len(&self) -> usize {
        match self {
            Points::Number(p) => p.len(),
            Points::Histogram(p) => p.len(),
            Points::Exponential(p) => p.len(),
            Points::Summary(p) => p.len(),
        }
    }
}

impl Translator<'_> {
    fn resource(&mut self, rm: &ResourceMetrics) {
        let (mut earliest, mut latest) = (u64::MAX, 0u64);
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                for t in m.point_times() {
                    earliest = earliest.min(t);
                    latest = latest.max(t);
                }
                self.metric(&rm.resource, sm, m);
            }
        }
        if earliest <= latest {
            self.target_info(&rm.resource, earliest, latest);
        }
    }

    fn metric(&mut self, resource: &Resource, sm: &ScopeMetrics, m: &Metric) {
        self.report.metrics += 1;
        // Data of the first member set (a protobuf body never has two; a JSON one may).
        let (kind, temporality, points) = if let Some(g) = &m.gauge {
            (MetricKind::Gauge, None, Points::Number(&g.data_points))
        } else if let Some(s) = &m.sum {
            let kind = if s.is_monotonic { MetricKind::MonotonicCounter } else { MetricKind::NonMonotonicCounter };
            (kind, Some(s.aggregation_temporality), Points::Number(&s.data_points))
        } else if let Some(h) = &m.histogram {
            (MetricKind::Histogram, Some(h.aggregation_temporality), Points::Histogram(&h.data_points))
        } else if let Some(h) = &m.exponential_histogram {
            (MetricKind::ExponentialHistogram, Some(h.aggregation_temporality), Points::Exponential(&h.data_points))
        } else if let Some(s) = &m.summary {
            (MetricKind::Summary, None, Points::Summary(&s.data_points))
        } else {
            self.report.problem(|| format!("metric {:?} has no data (empty metric type)", m.name));
            return;
        };
        let n = points.len();
        self.report.data_points += n;
        if temporality.is_some_and(|t| t != temporality::CUMULATIVE) {
            self.report.temporality_points += n;
            self.report.rejected_points += n;
            self.report.problem(|| format!("invalid temporality and type combination for metric {:?}", m.name));
            return;
        }
        let family = match metric_name(&m.name, &m.unit, kind) {
            Ok(f) => f,
            Err(e) => {
                self.reject_invalid(n, e);
                return;
            }
        };
        if n == 0 {
            self.report.problem(|| format!("empty data points. {} is dropped", m.name));
            return;
        }
        let metric_type = match kind {
            MetricKind::Gauge | MetricKind::NonMonotonicCounter => MetricType::Gauge,
            MetricKind::MonotonicCounter => MetricType::Counter,
            MetricKind::Histogram | MetricKind::ExponentialHistogram => MetricType::Histogram,
            MetricKind::Summary => MetricType::Summary,
        };
        let ctx = PointContext { resource, sm, family: &family };
        match points {
            Points::Exponential(points) => {
                for (i, p) in points.iter().enumerate() {
                    if !self.exponential_point(&ctx, p, n - i) {
                        break;
                    }
                }
            }
            Points::Number(points) => {
                let with_exemplars = kind != MetricKind::Gauge;
                for (i, p) in points.iter().enumerate() {
                    if !self.number_point(&ctx, p, with_exemplars, n - i) {
                        break;
                    }
                }
            }
            Points::Histogram(points) => {
                for (i, p) in points.iter().enumerate() {
                    if !self.histogram_point(&ctx, p, n - i) {
                        break;
                    }
                }
            }
            Points::Summary(points) => {
                for (i, p) in points.iter().enumerate() {
                    if !self.summary_point(&ctx, p, n - i) {
                        break;
                    }
                }
            }
        }
        self.out.metadata(MetricMetadata {
            metric_family: family,
            metric_type,
            help: m.description.clone(),
            unit: unit_name(&m.unit),
        });
    }

    fn reject_invalid(&mut self, n: usize, msg: String) {
        self.report.invalid_points += n;
        self.report.rejected_points += n;
        self.report.problem(|| msg);
    }

    /// The labels every series of a point shares (Prometheus's `createAttributes`): the
    /// point's attributes, promoted resource attributes, scope labels, `job`, `instance`.
    fn base_labels(
        &self,
        resource: &Resource,
        sm: Option<&ScopeMetrics>,
        attrs: &[KeyValue],
        ignore: &[&str],
    ) -> Result<LabelMap, String> {
        let mut sorted: Vec<&KeyValue> = attrs.iter().filter(|kv| !ignore.contains(&kv.key.as_str())).collect();
        sorted.sort_by(|a, b| a.key.cmp(&b.key));
        let mut map = LabelMap::new();
        for kv in sorted {
            let name = label_name(&kv.key)?;
            let value = any_value_string(&kv.value);
            match map.get_mut(&name) {
                // Keys that collide once sanitized: values joined in key order.
                Some(existing) => {
                    existing.push(';');
                    existing.push_str(&value);
                }
                None => set(&mut map, name, value),
            }
        }
        if let Some(sm) = sm {
            let mut promoted: Vec<&KeyValue> = resource
                .attributes
                .iter()
                .filter(|kv| self.opts.promote_resource_attributes.contains(&kv.key))
                .collect();
            promoted.sort_by(|a, b| a.key.cmp(&b.key));
            for kv in promoted {
                let name = label_name(&kv.key)?;
                if !map.contains_key(&name) {
                    set(&mut map, name, any_value_string(&kv.value));
                }
            }
            if self.opts.promote_scope_metadata && !sm.scope.name.is_empty() {
                for kv in &sm.scope.attributes {
                    let name = label_name(&format!("otel_scope_{}", kv.key))?;
                    set(&mut map, name, any_value_string(&kv.value));
                }
                set(&mut map, "otel_scope_name".into(), sm.scope.name.clone());
                set(&mut map, "otel_scope_version".into(), sm.scope.version.clone());
                set(&mut map, "otel_scope_schema_url".into(), sm.schema_url.clone());
            }
        }
        let attrs = &resource.attributes;
        if let Some(name) = get(attrs, SERVICE_NAME) {
            let mut job = any_value_string(name);
            if let Some(ns) = get(attrs, SERVICE_NAMESPACE) {
                job = format!("{}/{job}", any_value_string(ns));
            }
            set(&mut map, "job".into(), job);
        }
        if let Some(instance) = get(attrs, SERVICE_INSTANCE_ID) {
            set(&mut map, "instance".into(), any_value_string(instance));
        }
        Ok(map)
    }

    /// Base labels of a data point. A bad attribute key rejects the point and the
    /// `remaining - 1` points after it (Prometheus abandons the metric at the first bad point);
    /// a label limit rejects only the point.
    fn point_labels(
        &mut self,
        ctx: &PointContext<'_>,
        attrs: &[KeyValue],
        extra: Option<&str>,
        remaining: usize,
    ) -> PointLabels {
        let base = match self.base_labels(ctx.resource, Some(ctx.sm), attrs, &[]) {
            Ok(b) => b,
            Err(e) => {
                self.reject_invalid(remaining, e);
                return PointLabels::Abandon;
            }
        };
        match check_limits(&self.opts.limits, &base, ctx.family, extra) {
            Ok(()) => PointLabels::Ok(base),
            Err(e) => {
                self.reject_invalid(1, format!("metric {:?}: {e}", ctx.family));
                PointLabels::Refused
            }
        }
    }

    fn number_point(
        &mut self,
        ctx: &PointContext<'_>,
        p: &NumberDataPoint,
        with_exemplars: bool,
        remaining: usize,
    ) -> bool {
        let base = match self.point_labels(ctx, &p.attributes, None, remaining) {
            PointLabels::Ok(b) => b,
            PointLabels::Refused => return true,
            PointLabels::Abandon => return false,
        };
        let v = match (p.as_double, p.as_int) {
            (Some(d), _) => d,
            (None, Some(i)) => i as f64,
            // Prometheus stores a point without a value as 0.
            (None, None) => 0.0,
        };
        let sample = Sample::new(to_ms(p.time_unix_nano), stale_or(p.flags, v));
        let exemplars = if with_exemplars { self.exemplars(&p.exemplars) } else { Vec::new() };
        self.out.add(series_labels(&base, ctx.family, None), sample, exemplars);
        true
    }

    fn histogram_point(&mut self, ctx: &PointContext<'_>, p: &HistogramDataPoint, remaining: usize) -> bool {
        let base = match self.point_labels(ctx, &p.attributes, Some("le"), remaining) {
            PointLabels::Ok(b) => b,
            PointLabels::Refused => return true,
            PointLabels::Abandon => return false,
        };
        let t = to_ms(p.time_unix_nano);
        if let Some(sum) = p.sum {
            self.out.add(
                series_labels(&base, &format!("{}_sum", ctx.family), None),
                Sample::new(t, stale_or(p.flags, sum)),
                vec![],
            );
        }
        let count = stale_or(p.flags, p.count as f64);
        self.out.add(series_labels(&base, &format!("{}_count", ctx.family), None), Sample::new(t, count), vec![]);
        // Exemplars go to the first bucket whose bound is at least their value, in value order.
        let mut exemplars = self.exemplars(&p.exemplars);
        exemplars.sort_by(|a, b| a.v.total_cmp(&b.v));
        let mut exemplars = exemplars.into_iter().peekable();
        let bucket = format!("{}_bucket", ctx.family);
        let mut cumulative = 0u64;
        for (bound, n) in p.explicit_bounds.iter().zip(&p.bucket_counts) {
            cumulative = cumulative.wrapping_add(*n);
            let mut mine = Vec::new();
            while let Some(e) = exemplars.next_if(|e| e.v <= *bound || e.v.is_nan()) {
                mine.push(e);
            }
            let le = format_float(*bound);
            let sample = Sample::new(t, stale_or(p.flags, cumulative as f64));
            self.out.add(series_labels(&base, &bucket, Some(("le", &le))), sample, mine);
        }
        let sample = Sample::new(t, count);
        self.out.add(series_labels(&base, &bucket, Some(("le", "+Inf"))), sample, exemplars.collect());
        true
    }

    fn exponential_point(
        &mut self,
        ctx: &PointContext<'_>,
        p: &ExponentialHistogramDataPoint,
        remaining: usize,
    ) -> bool {
        let base = match self.point_labels(ctx, &p.attributes, None, remaining) {
            PointLabels::Ok(b) => b,
            PointLabels::Refused => return true,
            PointLabels::Abandon => return false,
        };
        let Some(h) = exponential_to_native(p) else {
            self.report.exponential_histogram_points += 1;
            self.report.rejected_points += 1;
            self.report.problem(|| {
                format!(
                    "cannot convert exponential to native histogram. Scale must be >= {MIN_SCHEMA}, was {} (metric {:?})",
                    p.scale, ctx.family
                )
            });
            return true;
        };
        let exemplars = self.exemplars(&p.exemplars);
        let sample = HistogramSample { t: to_ms(p.time_unix_nano), h: Arc::new(h) };
        self.out.add_histogram(series_labels(&base, ctx.family, None), sample, exemplars);
        true
    }

    fn summary_point(&mut self, ctx: &PointContext<'_>, p: &SummaryDataPoint, remaining: usize) -> bool {
        let base = match self.point_labels(ctx, &p.attributes, Some("quantile"), remaining) {
            PointLabels::Ok(b) => b,
            PointLabels::Refused => return true,
            PointLabels::Abandon => return false,
        };
        let t = to_ms(p.time_unix_nano);
        self.out.add(
            series_labels(&base, &format!("{}_sum", ctx.family), None),
            Sample::new(t, stale_or(p.flags, p.sum)),
            vec![],
        );
        let count = Sample::new(t, stale_or(p.flags, p.count as f64));
        self.out.add(series_labels(&base, &format!("{}_count", ctx.family), None), count, vec![]);
        for q in &p.quantile_values {
            let quantile = format_float(q.quantile);
            let sample = Sample::new(t, stale_or(p.flags, q.value));
            self.out.add(series_labels(&base, ctx.family, Some(("quantile", &quantile))), sample, vec![]);
        }
        true
    }

    fn exemplars(&mut self, exemplars: &[Exemplar]) -> Vec<PromExemplar> {
        let mut out = Vec::with_capacity(exemplars.len());
        for e in exemplars {
            match convert_exemplar(e) {
                Some(x) => out.push(x),
                None => self.report.exemplars_dropped += 1,
            }
        }
        out
    }

    /// `target_info{job, instance, <other resource attributes>} 1`, from the earliest to the
    /// latest point of the resource, one sample per 2.5 minutes and one at the latest.
    fn target_info(&mut self, resource: &Resource, earliest: u64, latest: u64) {
        const IDENTIFYING: [&str; 3] = [SERVICE_NAMESPACE, SERVICE_NAME, SERVICE_INSTANCE_ID];
        let attrs = &resource.attributes;
        let identifying = IDENTIFYING.iter().filter(|k| get(attrs, k).is_some()).count();
        if attrs.len() <= identifying {
            return;
        }
        let labels = match self.base_labels(resource, None, attrs, &IDENTIFYING) {
            Ok(l) => l,
            Err(e) => {
                self.report.problem(|| format!("target_info: {e}"));
                return;
            }
        };
        if !labels.contains_key("job") && !labels.contains_key("instance") {
            return;
        }
        let labels = series_labels(&labels, TARGET_INFO, None);
        let steps = (latest - earliest).div_ceil(TARGET_INFO_INTERVAL_NS);
        let skip = steps.saturating_sub(MAX_TARGET_INFO_SAMPLES as u64 - 1);
        let mut times: Vec<i64> = (skip..steps).map(|k| to_ms(earliest + k * TARGET_INFO_INTERVAL_NS)).collect();
        times.push(to_ms(latest));
        times.dedup();
        for t in times {
            self.out.add(labels.clone(), Sample::new(t, 1.0), vec![]);
        }
        self.out.metadata(MetricMetadata {
            metric_family: TARGET_INFO.to_owned(),
            metric_type: MetricType::Gauge,
            help: "Target metadata".to_owned(),
            unit: String::new(),
        });
    }
}

struct PointContext<'a> {
    resource: &'a Resource,
    sm: &'a ScopeMetrics,
    family: &'a str,
}

/// What [`Translator::point_labels`] decided.
enum PointLabels {
    /// The point's base labels.
    Ok(LabelMap),
    /// This point is refused; go on with the next.
    Refused,
    /// This point and the rest of the metric are refused.
    Abandon,
}

fn check_limits(limits: &DecodeLimits, base: &LabelMap, family: &str, extra: Option<&str>) -> Result<(), String> {
    // __name__ plus `le`/`quantile`; the longest name suffix is `_bucket`/`_count`.
    let count = base.len() + 1 + usize::from(extra.is_some());
    if limits.max_labels_per_series != 0 && count > limits.max_labels_per_series {
        return Err(format!("limit max_labels_per_series exceeded: {count} > {}", limits.max_labels_per_series));
    }
    let name_len = family.len() + if extra.is_some() { "_bucket".len() } else { 0 };
    for (n, v) in base.iter().map(|(n, v)| (n.as_str(), v.len())).chain([("__name__", name_len)]) {
        if limits.max_label_name_length != 0 && n.len() > limits.max_label_name_length {
            return Err(format!(
                "limit max_label_name_length exceeded by {n:?}: {} > {}",
                n.len(),
                limits.max_label_name_length
            ));
        }
        if limits.max_label_value_length != 0 && v > limits.max_label_value_length {
            return Err(format!(
                "limit max_label_value_length exceeded by label {n:?}: {v} > {}",
                limits.max_label_value_length
            ));
        }
    }
    Ok(())
}

/// `base` plus `__name__` and one optional extra label, as a sorted label set.
fn series_labels(base: &LabelMap, name: &str, extra: Option<(&str, &str)>) -> Labels {
    let mut v: Vec<Label> = Vec::with_capacity(base.len() + 2);
    let mut pending: Vec<(&str, &str)> = vec![("__name__", name)];
    if let Some(e) = extra {
        pending.push(e);
    }
    pending.sort_unstable();
    let mut pending = pending.into_iter().peekable();
    for (n, val) in base {
        while let Some((pn, pv)) = pending.next_if(|(pn, _)| *pn <= n.as_str()) {
            v.push(Label::new(pn, pv));
        }
        // An extra label overrides a base label of the same name.
        if v.last().is_some_and(|l| l.name == *n) {
            continue;
        }
        v.push(Label::new(n.as_str(), val.as_str()));
    }
    v.extend(pending.map(|(n, val)| Label::new(n, val)));
    Labels::from_sorted_unchecked(v)
}

/// Prometheus's zero threshold for converted exponential histograms.
const DEFAULT_ZERO_THRESHOLD: f64 = 1e-128;

/// An OTLP exponential histogram point as a native histogram; `None` when its scale is below
/// the coarsest schema.
fn exponential_to_native(p: &ExponentialHistogramDataPoint) -> Option<FloatHistogram> {
    if p.scale < MIN_SCHEMA {
        return None;
    }
    let scale_down = (p.scale - MAX_SCHEMA).max(0) as u32;
    let (positive_spans, positive_buckets) = native_buckets(&p.positive, scale_down);
    let (negative_spans, negative_buckets) = native_buckets(&p.negative, scale_down);
    if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
        return Some(FloatHistogram { schema: p.scale.min(MAX_SCHEMA), ..FloatHistogram::stale() });
    }
    Some(FloatHistogram {
        counter_reset_hint: CounterResetHint::Unknown,
        schema: p.scale.min(MAX_SCHEMA),
        zero_threshold: DEFAULT_ZERO_THRESHOLD,
        zero_count: p.zero_count as f64,
        count: p.count as f64,
        sum: p.sum.unwrap_or(0.0),
        positive_spans,
        negative_spans,
        positive_buckets,
        negative_buckets,
        custom_values: Vec::new(),
    })
}

/// OTLP buckets (`offset`, dense counts; bucket `i` covers `(base^i, base^(i+1)]`) as
/// Prometheus spans and absolute counts (bucket `i` covers `(base^(i-1), base^i]`), merging
/// `2^scale_down` neighbours. Empty buckets at the ends are dropped; gaps of up to two empty
/// buckets stay inside a span, longer ones start a new span (client_golang's rule).
fn native_buckets(b: &Buckets, scale_down: u32) -> (Vec<BucketSpan>, Vec<f64>) {
    let mut merged: Vec<(i64, u64)> = Vec::new();
    for (i, &c) in b.bucket_counts.iter().enumerate() {
        let idx = ((b.offset as i64 + i as i64) >> scale_down) + 1;
        match merged.last_mut() {
            Some((last, n)) if *last == idx => *n = n.saturating_add(c),
            _ => merged.push((idx, c)),
        }
    }
    let (mut spans, mut counts): (Vec<BucketSpan>, Vec<f64>) = (Vec::new(), Vec::new());
    let mut next = 0i64; // index after the last bucket written
    for (idx, c) in merged.into_iter().filter(|(_, c)| *c != 0) {
        let gap = idx - next;
        match spans.last_mut() {
            Some(span) if gap <= 2 => {
                span.length += gap as u32 + 1;
                counts.extend(std::iter::repeat_n(0.0, gap as usize));
            }
            _ => {
                let offset = if spans.is_empty() { idx } else { gap };
                spans.push(BucketSpan { offset: offset.clamp(i32::MIN as i64, i32::MAX as i64) as i32, length: 1 });
            }
        }
        counts.push(c as f64);
        next = idx + 1;
    }
    (spans, counts)
}

/// Nanoseconds → milliseconds, as Prometheus (`int64(ns) / 1e6`).
fn to_ms(ns: u64) -> i64 {
    (ns as i64) / 1_000_000
}

fn stale_or(flags: u32, v: f64) -> f64 {
    if flags & FLAG_NO_RECORDED_VALUE != 0 {
        STALE_NAN
    } else {
        v
    }
}

fn convert_exemplar(e: &Exemplar) -> Option<PromExemplar> {
    let v = match (e.as_double, e.as_int) {
        (Some(d), _) => d,
        (None, Some(i)) => i as f64,
        (None, None) => return None,
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut runes = 0usize;
    for (key, id) in [("trace_id", &e.trace_id), ("span_id", &e.span_id)] {
        if !id.is_empty() {
            let hex = hex_lower(id);
            runes += key.len() + hex.len();
            pairs.push((key.to_owned(), hex));
        }
    }
    let attrs: Vec<(String, String)> =
        e.filtered_attributes.iter().map(|kv| (kv.key.clone(), any_value_string(&kv.value))).collect();
    runes += attrs.iter().map(|(k, v)| k.chars().count() + v.chars().count()).sum::<usize>();
    if runes <= MAX_EXEMPLAR_RUNES {
        pairs.extend(attrs);
    }
    let labels = Labels::from_pairs(pairs).ok()?;
    Some(PromExemplar { labels, t: to_ms(e.time_unix_nano), v })
}

fn hex_lower(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// A float as Go's `strconv.FormatFloat(f, 'f', -1, 64)` writes it (`le`, `quantile`):
/// shortest round-trip digits, no exponent; `+Inf`, `-Inf`, `NaN`.
pub(crate) fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{f}")
    }
}

/// An attribute value as a label value (pdata's `Value.AsString`): strings as they are,
/// booleans and integers in decimal, doubles as ECMAScript writes numbers, bytes in base64,
/// arrays and maps as JSON (keys sorted, Go's escaping), nothing for an empty value.
pub(crate) fn any_value_string(v: &AnyValue) -> String {
    match v {
        AnyValue::Empty => String::new(),
        AnyValue::String(s) => s.clone(),
        AnyValue::Bool(b) => b.to_string(),
        AnyValue::Int(i) => i.to_string(),
        AnyValue::Double(d) if !d.is_finite() => {
            let g = if d.is_nan() {
                "NaN"
            } else if *d > 0.0 {
                "+Inf"
            } else {
                "-Inf"
            };
            format!("json: unsupported value: {g}")
        }
        AnyValue::Double(d) => es6_number(*d),
        AnyValue::Bytes(b) => super::json::base64_encode(b),
        AnyValue::Array(_) | AnyValue::KvList(_) => {
            let mut s = String::new();
            // Go's json.Marshal fails on NaN/Inf, and AsString then yields "".
            if write_json(&mut s, v) {
                s
            } else {
                String::new()
            }
        }
    }
}

/// ECMAScript's number-to-string (what Go's encoding/json does): plain decimal for
/// 1e-6 ≤ |d| < 1e21, else exponent form `1e+21`, `1.5e-7`.
fn es6_number(d: f64) -> String {
    let abs = d.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{d:e}");
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        }
    } else {
        format!("{d}")
    }
}

/// Writes `v` as Go's `json.Marshal(value.AsRaw())` would; false on NaN/Inf.
fn write_json(out: &mut String, v: &AnyValue) -> bool {
    match v {
        AnyValue::Empty => out.push_str("null"),
        AnyValue::String(s) => json_string(out, s),
        AnyValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        AnyValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        AnyValue::Double(d) => {
            if !d.is_finite() {
                return false;
            }
            out.push_str(&es6_number(*d));
        }
        AnyValue::Bytes(b) => json_string(out, &super::json::base64_encode(b)),
        AnyValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if !write_json(out, item) {
                    return false;
                }
            }
            out.push(']');
        }
        AnyValue::KvList(kvs) => {
            // A Go map: keys sorted, the last duplicate wins.
            let mut map: BTreeMap<&str, &AnyValue> = BTreeMap::new();
            for kv in kvs {
                map.insert(&kv.key, &kv.value);
            }
            out.push('{');
            for (i, (k, val)) in map.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, k);
                out.push(':');
                if !write_json(out, val) {
                    return false;
                }
            }
            out.push('}');
        }
    }
    true
}

/// A JSON string with Go's escaping (HTML-safe: `<`, `>`, `&` as `\u003c`...).
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
