//! Span metrics, as OpenTelemetry Collector's spanmetrics connector makes them, written into
//! the metrics store: per service, span name, span kind, status code (and configured
//! dimensions) a calls counter and a duration histogram in milliseconds, cumulative, flushed
//! as samples every `traces.span_metrics.flush_interval`, with the trace id of a recent span
//! as the exemplar of each bucket it fell in. Names and labels in `docs/traces.md`:
//!
//! ```text
//! traces_span_metrics_calls_total{service_name, span_name, span_kind, status_code, job, instance}
//! traces_span_metrics_duration_milliseconds_bucket{…, le} / _sum / _count
//! ```
//!
//! `span_kind` and `status_code` take the connector's values (`SPAN_KIND_SERVER`,
//! `STATUS_CODE_ERROR`); `job` and `instance` come from the resource as Prometheus's OTLP
//! receiver derives them. At most [`MAX_SERIES_PER_TENANT`] label sets are kept per tenant;
//! spans of further ones are counted and dropped.

use periscope_config::SpanMetricsConfig;
use periscope_model::{
    hex_id, AttrValue, Exemplar, Labels, MetricBatch, MetricMetadata, MetricType, Sample, SeriesSamples, Span,
    SpanBatch, SpanKind, StatusCode, TenantId,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Most distinct label sets per tenant.
pub const MAX_SERIES_PER_TENANT: usize = 10_000;

const CALLS: &str = "traces_span_metrics_calls_total";
const DURATION: &str = "traces_span_metrics_duration_milliseconds";

#[derive(Default)]
struct Acc {
    calls: u64,
    /// Per bucket (the last is +Inf), not cumulative.
    buckets: Vec<u64>,
    sum_ms: f64,
    /// The newest span of each bucket since the last flush: (trace id, span id, ms, end ms).
    exemplars: Vec<Option<(String, String, f64, i64)>>,
}

/// The span metrics of every tenant.
pub struct SpanMetrics {
    bounds_ms: Vec<f64>,
    dimensions: Vec<(String, String)>,
    state: Mutex<HashMap<TenantId, HashMap<Labels, Acc>>>,
    /// Spans left out because their tenant reached [`MAX_SERIES_PER_TENANT`].
    pub dropped_spans: AtomicU64,
}

fn kind_value(k: SpanKind) -> &'static str {
    match k {
        SpanKind::Unspecified => "SPAN_KIND_UNSPECIFIED",
        SpanKind::Internal => "SPAN_KIND_INTERNAL",
        SpanKind::Server => "SPAN_KIND_SERVER",
        SpanKind::Client => "SPAN_KIND_CLIENT",
        SpanKind::Producer => "SPAN_KIND_PRODUCER",
        SpanKind::Consumer => "SPAN_KIND_CONSUMER",
    }
}

fn status_value(s: StatusCode) -> &'static str {
    match s {
        StatusCode::Unset => "STATUS_CODE_UNSET",
        StatusCode::Ok => "STATUS_CODE_OK",
        StatusCode::Error => "STATUS_CODE_ERROR",
    }
}

fn resource_str<'a>(s: &'a Span, key: &str) -> Option<&'a str> {
    s.origin.resource.iter().find(|a| a.key == key).and_then(|a| match &a.value {
        AttrValue::Str(v) if !v.is_empty() => Some(v.as_str()),
        _ => None,
    })
}

impl SpanMetrics {
    /// Span metrics with `cfg`'s buckets and dimensions.
    pub fn new(cfg: &SpanMetricsConfig) -> SpanMetrics {
        let dimensions = cfg
            .dimensions
            .iter()
            .filter_map(|d| periscope_ingest::otlp_metrics::naming::label_name(d).ok().map(|label| (d.clone(), label)))
            .collect();
        SpanMetrics {
            bounds_ms: cfg.histogram_buckets.iter().map(|d| d.as_millis() as f64).collect(),
            dimensions,
            state: Mutex::new(HashMap::new()),
            dropped_spans: AtomicU64::new(0),
        }
    }

    fn labels(&self, s: &Span) -> Labels {
        let mut pairs: Vec<(String, String)> = vec![
            ("service_name".into(), s.service_name().to_string()),
            ("span_name".into(), s.name.clone()),
            ("span_kind".into(), kind_value(s.kind).into()),
            ("status_code".into(), status_value(s.status).into()),
        ];
        if let Some(name) = resource_str(s, periscope_model::SERVICE_NAME) {
            let job = match resource_str(s, "service.namespace") {
                Some(ns) => format!("{ns}/{name}"),
                None => name.to_string(),
            };
            pairs.push(("job".into(), job));
        }
        if let Some(i) = resource_str(s, "service.instance.id") {
            pairs.push(("instance".into(), i.to_string()));
        }
        for (attr, label) in &self.dimensions {
            let v =
                s.attributes.iter().chain(&s.origin.resource).find(|a| a.key == *attr).and_then(|a| a.value.as_text());
            if let Some(v) = v {
                pairs.push((label.clone(), v));
            }
        }
        Labels::from_pairs(pairs).unwrap_or_default()
    }

    /// Counts the spans of a stored batch.
    pub fn record(&self, tenant: &TenantId, batch: &SpanBatch) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let series = state.entry(tenant.clone()).or_default();
        for s in &batch.spans {
            let labels = self.labels(s);
            if !series.contains_key(&labels) && series.len() >= MAX_SERIES_PER_TENANT {
                self.dropped_spans.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let n = self.bounds_ms.len() + 1;
            let acc = series.entry(labels).or_insert_with(|| Acc {
                buckets: vec![0; n],
                exemplars: vec![None; n],
                ..Default::default()
            });
            let ms = s.duration_ns() as f64 / 1e6;
            let b = self.bounds_ms.partition_point(|bound| *bound < ms);
            acc.calls += 1;
            acc.buckets[b] += 1;
            acc.sum_ms += ms;
            acc.exemplars[b] = Some((hex_id(&s.trace_id), hex_id(&s.span_id), ms, s.end_ns / 1_000_000));
        }
    }

    /// The current cumulative values of every tenant's series as samples at `now_ms`, with the
    /// exemplars gathered since the last flush.
    pub fn flush(&self, now_ms: i64) -> Vec<(TenantId, MetricBatch)> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for (tenant, series) in state.iter_mut() {
            let mut batch = MetricBatch::default();
            for (labels, acc) in series.iter_mut() {
                let with = |name: &str, extra: Option<(&str, String)>| {
                    let mut b = labels.builder();
                    b.set(periscope_model::METRIC_NAME, name);
                    if let Some((k, v)) = extra {
                        b.set(k, &v);
                    }
                    b.build()
                };
                let point = |v: f64| vec![Sample::new(now_ms, v)];
                batch.series.push(SeriesSamples {
                    labels: with(CALLS, None),
                    samples: point(acc.calls as f64),
                    ..Default::default()
                });
                let mut cumulative = 0u64;
                for (i, count) in acc.buckets.iter().enumerate() {
                    cumulative += count;
                    let le = self.bounds_ms.get(i).map_or("+Inf".to_string(), |b| {
                        let mut s = String::new();
                        crate::api::json::format_float_into(&mut s, *b);
                        s
                    });
                    let exemplars = acc.exemplars[i]
                        .take()
                        .and_then(|(trace_id, span_id, ms, t)| {
                            let labels = Labels::from_pairs([("trace_id", trace_id), ("span_id", span_id)]).ok()?;
                            Some(Exemplar { labels, t, v: ms })
                        })
                        .into_iter()
                        .collect();
                    batch.series.push(SeriesSamples {
                        labels: with(&format!("{DURATION}_bucket"), Some(("le", le))),
                        samples: point(cumulative as f64),
                        exemplars,
                        ..Default::default()
                    });
                }
                batch.series.push(SeriesSamples {
                    labels: with(&format!("{DURATION}_sum"), None),
                    samples: point(acc.sum_ms),
                    ..Default::default()
                });
                batch.series.push(SeriesSamples {
                    labels: with(&format!("{DURATION}_count"), None),
                    samples: point(acc.calls as f64),
                    ..Default::default()
                });
            }
            if batch.series.is_empty() {
                continue;
            }
            batch.metadata = vec![
                MetricMetadata {
                    metric_family: CALLS.into(),
                    metric_type: MetricType::Counter,
                    help: "Spans received, by service, span name, kind and status.".into(),
                    unit: String::new(),
                },
                MetricMetadata {
                    metric_family: DURATION.into(),
                    metric_type: MetricType::Histogram,
                    help: "Span durations, by service, span name, kind and status.".into(),
                    unit: "milliseconds".into(),
                },
            ];
            out.push((tenant.clone(), batch));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use periscope_model::{Attribute, SpanOrigin};
    use std::sync::Arc;

    #[test]
    fn counts_buckets_exemplars_and_dimensions() {
        let cfg = SpanMetricsConfig {
            dimensions: vec!["http.route".into()],
            histogram_buckets: vec![
                periscope_config::Duration::from_millis(10),
                periscope_config::Duration::from_millis(100),
            ],
            ..Default::default()
        };
        let sm = SpanMetrics::new(&cfg);
        let origin =
            Arc::new(SpanOrigin { resource: vec![Attribute::str("service.name", "users")], ..Default::default() });
        let span = |id: u8, ms: i64, status| Span {
            trace_id: [id; 16],
            span_id: [id; 8],
            name: "GET".into(),
            kind: SpanKind::Server,
            start_ns: 1_000_000_000,
            end_ns: 1_000_000_000 + ms * 1_000_000,
            status,
            attributes: vec![Attribute::str("http.route", "/u")],
            origin: origin.clone(),
            ..Default::default()
        };
        let t = TenantId::default_tenant();
        sm.record(
            &t,
            &SpanBatch {
                spans: vec![
                    span(1, 5, StatusCode::Unset),
                    span(2, 50, StatusCode::Unset),
                    span(3, 500, StatusCode::Error),
                ],
            },
        );
        let out = sm.flush(60_000);
        assert_eq!(out.len(), 1);
        let batch = &out[0].1;
        let find = |name: &str, le: Option<&str>, status: &str| {
            batch
                .series
                .iter()
                .find(|s| {
                    s.labels.metric_name() == Some(name)
                        && s.labels.get("le") == le
                        && s.labels.get("status_code") == Some(status)
                })
                .unwrap_or_else(|| panic!("no {name} {le:?} {status}"))
        };
        let calls = find(CALLS, None, "STATUS_CODE_UNSET");
        assert_eq!(calls.samples, vec![Sample::new(60_000, 2.0)]);
        assert_eq!(calls.labels.get("http_route"), Some("/u"));
        assert_eq!(calls.labels.get("job"), Some("users"));
        assert_eq!(calls.labels.get("span_kind"), Some("SPAN_KIND_SERVER"));
        let b10 = find("traces_span_metrics_duration_milliseconds_bucket", Some("10"), "STATUS_CODE_UNSET");
        let b100 = find("traces_span_metrics_duration_milliseconds_bucket", Some("100"), "STATUS_CODE_UNSET");
        let inf = find("traces_span_metrics_duration_milliseconds_bucket", Some("+Inf"), "STATUS_CODE_ERROR");
        assert_eq!((b10.samples[0].v, b100.samples[0].v, inf.samples[0].v), (1.0, 2.0, 1.0));
        assert_eq!(b100.exemplars[0].labels.get("trace_id"), Some(hex_id(&[2; 16]).as_str()));
        assert_eq!(b100.exemplars[0].v, 50.0);
        assert_eq!(find("traces_span_metrics_duration_milliseconds_sum", None, "STATUS_CODE_UNSET").samples[0].v, 55.0);
        // Cumulative: a second flush repeats the totals, without exemplars.
        let again = sm.flush(75_000);
        let calls: Vec<&SeriesSamples> =
            again[0].1.series.iter().filter(|s| s.labels.metric_name() == Some(CALLS)).collect();
        assert_eq!(calls.iter().map(|s| s.samples[0].v).sum::<f64>(), 3.0);
        assert!(again[0].1.series.iter().all(|s| s.exemplars.is_empty()));
    }
}
