use periscope_model::{is_stale_nan, Classify, ErrorClass, MetricType};
use proptest::prelude::*;
use serde_json::{json, Value};

use super::model::*;
use super::naming::{metric_name, MetricKind};
use super::*;
use crate::test_util::{arb_mutations, mutate};
use crate::DecodeLimits;

// ---- helpers ----

fn s(v: &str) -> AnyValue {
    AnyValue::String(v.to_owned())
}

fn kv(key: &str, value: AnyValue) -> KeyValue {
    KeyValue { key: key.to_owned(), value }
}

fn attrs(pairs: &[(&str, &str)]) -> Vec<KeyValue> {
    pairs.iter().map(|(k, v)| kv(k, s(v))).collect()
}

/// One resource with `resource` attributes and one scope holding `metrics`.
fn request(resource: &[(&str, &str)], metrics: Vec<Metric>) -> ExportMetricsRequest {
    ExportMetricsRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Resource { attributes: attrs(resource) },
            scope_metrics: vec![ScopeMetrics {
                scope: Scope { name: "lib".into(), version: "1.2".into(), attributes: attrs(&[("scope.attr", "x")]) },
                metrics,
                schema_url: "https://schema/1".into(),
            }],
            schema_url: String::new(),
        }],
    }
}

const SVC: &[(&str, &str)] = &[("service.name", "svc"), ("service.namespace", "ns"), ("service.instance.id", "i-1")];

fn number(t_ms: u64, v: f64, a: &[(&str, &str)]) -> NumberDataPoint {
    NumberDataPoint { attributes: attrs(a), time_unix_nano: t_ms * 1_000_000, as_double: Some(v), ..Default::default() }
}

fn gauge(name: &str, unit: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        description: format!("{name} help"),
        gauge: Some(Gauge { data_points: points }),
        ..Default::default()
    }
}

fn sum(name: &str, unit: &str, monotonic: bool, temporality: i32, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        sum: Some(Sum { data_points: points, aggregation_temporality: temporality, is_monotonic: monotonic }),
        ..Default::default()
    }
}

fn histogram(name: &str, unit: &str, temporality: i32, points: Vec<HistogramDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        histogram: Some(Histogram { data_points: points, aggregation_temporality: temporality }),
        ..Default::default()
    }
}

fn opts() -> TranslateOptions {
    TranslateOptions::default()
}

/// Every sample as `{labels} value @t`, sorted: compact and readable when a case fails.
fn render(batch: &periscope_model::MetricBatch) -> Vec<String> {
    let mut out: Vec<String> = batch
        .series
        .iter()
        .flat_map(|s| {
            s.samples.iter().map(move |x| {
                let v = if is_stale_nan(x.v) { "stale".to_owned() } else { format!("{}", x.v) };
                format!("{} {v} @{}", s.labels, x.t)
            })
        })
        .collect();
    for s in &batch.series {
        for h in &s.histograms {
            out.push(format!("{} {} @{}", s.labels, render_histogram(&h.h), h.t));
        }
    }
    out.sort();
    out
}

/// A native histogram as `{{schema:S count:C sum:S buckets:[(lo,hi]:n ...]}}`, brackets
/// showing which ends belong to each bucket.
fn render_histogram(h: &periscope_model::FloatHistogram) -> String {
    use periscope_model::BoundaryRule;
    if h.is_stale() {
        return "stale".into();
    }
    let buckets: Vec<String> = h
        .buckets()
        .iter()
        .map(|b| {
            let (l, r) = match b.rule {
                BoundaryRule::OpenLeft => ("(", "]"),
                BoundaryRule::OpenRight => ("[", ")"),
                BoundaryRule::OpenBoth => ("(", ")"),
                BoundaryRule::ClosedBoth => ("[", "]"),
            };
            format!("{l}{:?},{:?}{r}:{}", b.lower, b.upper, b.count)
        })
        .collect();
    format!("{{{{schema:{} count:{} sum:{} buckets:[{}]}}}}", h.schema, h.count, h.sum, buckets.join(" "))
}

#[track_caller]
fn check(req: &ExportMetricsRequest, o: &TranslateOptions, want: &[&str]) -> OtlpMetricsReport {
    let (batch, report) = translate(req, o);
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(render(&batch), want, "report: {report:?}");
    // Whatever goes through protobuf translates the same.
    let round = decode_metrics_request(&encode_metrics_request(req), OtlpEncoding::Protobuf).unwrap();
    assert_eq!(&round, req);
    report
}

// ---- the peer example: ../shared/peer-tests/otlp-json/metrics.json ----

fn peer_file(name: &str) -> Vec<u8> {
    let path = format!("{}/../../../shared/peer-tests/otlp-json/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read peer example {path}: {e}"))
}

const T0: u64 = 1_544_712_660_300_000_000;

#[track_caller]
fn check_peer_metrics(req: &ExportMetricsRequest) {
    assert_eq!(req.resource_metrics.len(), 1);
    let rm = &req.resource_metrics[0];
    assert_eq!(rm.resource.attributes, vec![kv("service.name", s("my.service"))]);
    assert_eq!(rm.schema_url, "");
    assert_eq!(rm.scope_metrics.len(), 1);
    let sm = &rm.scope_metrics[0];
    assert_eq!(sm.scope.name, "my.library");
    assert_eq!(sm.scope.version, "1.0.0");
    assert_eq!(sm.scope.attributes, vec![kv("my.scope.attribute", s("some scope attribute"))]);
    let m = &sm.metrics;
    assert_eq!(m.len(), 4);
    for (metric, name, help) in [
        (&m[0], "my.counter", "I am a Counter"),
        (&m[1], "my.gauge", "I am a Gauge"),
        (&m[2], "my.histogram", "I am a Histogram"),
        (&m[3], "my.exponential.histogram", "I am an Exponential Histogram"),
    ] {
        assert_eq!((metric.name.as_str(), metric.description.as_str(), metric.unit.as_str()), (name, help, "1"));
    }
    let counter = m[0].sum.as_ref().unwrap();
    assert_eq!((counter.aggregation_temporality, counter.is_monotonic), (temporality::DELTA, true));
    assert_eq!(
        counter.data_points,
        vec![NumberDataPoint {
            attributes: attrs(&[("my.counter.attr", "some value")]),
            start_time_unix_nano: T0,
            time_unix_nano: T0,
            as_double: Some(5.0),
            ..Default::default()
        }]
    );
    assert_eq!(
        m[1].gauge.as_ref().unwrap().data_points,
        vec![NumberDataPoint {
            attributes: attrs(&[("my.gauge.attr", "some value")]),
            time_unix_nano: T0,
            as_double: Some(10.0),
            ..Default::default()
        }]
    );
    let h = m[2].histogram.as_ref().unwrap();
    assert_eq!(h.aggregation_temporality, temporality::DELTA);
    assert_eq!(
        h.data_points,
        vec![HistogramDataPoint {
            attributes: attrs(&[("my.histogram.attr", "some value")]),
            start_time_unix_nano: T0,
            time_unix_nano: T0,
            count: 2,
            sum: Some(2.0),
            bucket_counts: vec![1, 1],
            explicit_bounds: vec![1.0],
            ..Default::default()
        }]
    );
    let p = &h.data_points[0];
    assert_eq!(p.bucket_counts.iter().sum::<u64>(), p.count);
    assert_eq!(p.bucket_counts.len(), p.explicit_bounds.len() + 1);
    let e = m[3].exponential_histogram.as_ref().unwrap();
    assert_eq!(e.aggregation_temporality, temporality::DELTA);
    assert_eq!(
        e.data_points,
        vec![ExponentialHistogramDataPoint {
            attributes: attrs(&[("my.exponential.histogram.attr", "some value")]),
            start_time_unix_nano: T0,
            time_unix_nano: T0,
            count: 3,
            sum: Some(10.0),
            scale: 0,
            zero_count: 1,
            positive: Buckets { offset: 1, bucket_counts: vec![0, 2] },
            ..Default::default()
        }]
    );
    let p = &e.data_points[0];
    assert_eq!(p.zero_count + p.positive.bucket_counts.iter().sum::<u64>(), p.count);
    for (metric, got) in m.iter().zip([1, 1, 1, 1]) {
        assert_eq!(metric.point_times().count(), got);
    }
}

#[test]
fn peer_metrics_json_decodes_to_the_documented_values() {
    let req = decode_metrics_request(&peer_file("metrics.json"), OtlpEncoding::Json).unwrap();
    check_peer_metrics(&req);
    // Protobuf round trip of the same content.
    let pb = encode_metrics_request(&req);
    assert_eq!(decode_metrics_request(&pb, OtlpEncoding::Protobuf).unwrap(), req);
}

#[test]
fn peer_metrics_json_translates_to_the_documented_names() {
    let req = decode_metrics_request(&peer_file("metrics.json"), OtlpEncoding::Json).unwrap();
    // The names each metric gets (docs/otlp-metrics.md, "Example: the OTLP peer file").
    let names: Vec<_> = req.resource_metrics[0].scope_metrics[0]
        .metrics
        .iter()
        .zip([MetricKind::MonotonicCounter, MetricKind::Gauge, MetricKind::Histogram, MetricKind::ExponentialHistogram])
        .map(|(m, k)| metric_name(&m.name, &m.unit, k).unwrap())
        .collect();
    assert_eq!(names, ["my_counter_total", "my_gauge_ratio", "my_histogram", "my_exponential_histogram"]);
    // As sent, three of the four metrics are DELTA: refused as Prometheus refuses them. The
    // resource has only service.name, so no target_info.
    let (batch, report) = translate(&req, &opts());
    assert_eq!(
        render(&batch),
        [r#"{__name__="my_gauge_ratio", job="my.service", my_gauge_attr="some value"} 10 @1544712660300"#]
    );
    assert_eq!(batch.metadata.len(), 1);
    assert_eq!(
        (batch.metadata[0].metric_family.as_str(), batch.metadata[0].metric_type, batch.metadata[0].help.as_str()),
        ("my_gauge_ratio", MetricType::Gauge, "I am a Gauge")
    );
    assert_eq!((report.data_points, report.rejected_points, report.temporality_points), (4, 3, 3));
    let msg = report.error_message();
    for name in ["my.counter", "my.histogram", "my.exponential.histogram"] {
        assert!(msg.contains(&format!("invalid temporality and type combination for metric \"{name}\"")), "{msg}");
    }
    // The same content with CUMULATIVE temporality: everything, the exponential histogram as a
    // native histogram (OTLP bucket 2 of scale 0, (4, 8], is Prometheus's bucket 3).
    let mut doc: Value = serde_json::from_slice(&peer_file("metrics.json")).unwrap();
    for m in doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"].as_array_mut().unwrap() {
        for kind in ["sum", "histogram", "exponentialHistogram"] {
            if let Some(d) = m.get_mut(kind) {
                d["aggregationTemporality"] = json!(2);
            }
        }
    }
    let req = decode_metrics_request(&serde_json::to_vec(&doc).unwrap(), OtlpEncoding::Json).unwrap();
    let report = check(
        &req,
        &opts(),
        &[
            r#"{__name__="my_counter_total", job="my.service", my_counter_attr="some value"} 5 @1544712660300"#,
            r#"{__name__="my_gauge_ratio", job="my.service", my_gauge_attr="some value"} 10 @1544712660300"#,
            r#"{__name__="my_histogram_bucket", job="my.service", le="1", my_histogram_attr="some value"} 1 @1544712660300"#,
            r#"{__name__="my_histogram_bucket", job="my.service", le="+Inf", my_histogram_attr="some value"} 2 @1544712660300"#,
            r#"{__name__="my_histogram_count", job="my.service", my_histogram_attr="some value"} 2 @1544712660300"#,
            r#"{__name__="my_histogram_sum", job="my.service", my_histogram_attr="some value"} 2 @1544712660300"#,
            r#"{__name__="my_exponential_histogram", job="my.service", my_exponential_histogram_attr="some value"} {{schema:0 count:3 sum:10 buckets:[[-1e-128,1e-128]:1 (4.0,8.0]:2]}} @1544712660300"#,
        ],
    );
    assert_eq!((report.rejected_points, report.exponential_histogram_points), (0, 0));
    let (batch, _) = translate(&req, &opts());
    let e = batch.series.iter().find(|s| !s.histograms.is_empty()).unwrap();
    let h = &e.histograms[0].h;
    assert_eq!((h.zero_threshold, h.zero_count), (1e-128, 1.0));
    assert_eq!(h.positive_spans, vec![periscope_model::BucketSpan { offset: 3, length: 1 }]);
    assert_eq!(h.validate(), Ok(()));
    assert!(batch
        .metadata
        .iter()
        .any(|m| m.metric_family == "my_exponential_histogram" && m.metric_type == MetricType::Histogram));
}

/// Rewrites every JSON object and string of a document.
fn rewrite(v: &mut Value, f: &mut impl FnMut(&mut Value)) {
    f(v);
    match v {
        Value::Object(m) => m.values_mut().for_each(|x| rewrite(x, f)),
        Value::Array(a) => a.iter_mut().for_each(|x| rewrite(x, f)),
        _ => {}
    }
}

#[test]
fn peer_metrics_json_leniency_probes() {
    let original: Value = serde_json::from_slice(&peer_file("metrics.json")).unwrap();
    let decode = |v: &Value| decode_metrics_request(&serde_json::to_vec(v).unwrap(), OtlpEncoding::Json);
    let want = decode(&original).unwrap();
    // 64-bit integers as JSON numbers instead of strings.
    let mut numbers = original.clone();
    let as_number = |v: &mut Value| {
        if let Some(n) = v.as_str().and_then(|s| s.parse::<u64>().ok()) {
            *v = json!(n);
        }
    };
    let mut converted = 0;
    rewrite(&mut numbers, &mut |v| {
        if let Value::Object(m) = v {
            for (k, x) in m.iter_mut() {
                if ["startTimeUnixNano", "timeUnixNano", "count", "zeroCount", "bucketCounts"].contains(&k.as_str()) {
                    converted += 1;
                    match x {
                        Value::Array(items) => items.iter_mut().for_each(as_number),
                        x => as_number(x),
                    }
                }
            }
        }
    });
    assert_eq!(converted, 12);
    assert_eq!(decode(&numbers).unwrap(), want);
    // An unknown key in every object, and snake_case names (unknown too).
    let mut unknown = original.clone();
    rewrite(&mut unknown, &mut |v| {
        if let Value::Object(m) = v {
            if !m.contains_key("marker") {
                m.insert("someFutureField".into(), json!({"marker": [1, "x", null, {"marker": 2}]}));
                m.insert("time_unix_nano".into(), json!("999"));
            }
        }
    });
    assert_eq!(decode(&unknown).unwrap(), want);
    // Decision: the enum's name is tolerated for aggregationTemporality...
    let mut names = original.clone();
    rewrite(&mut names, &mut |v| {
        if let Some(t) = v.get_mut("aggregationTemporality") {
            *t = json!("AGGREGATION_TEMPORALITY_DELTA");
        }
    });
    assert_eq!(decode(&names).unwrap(), want);
    // ...but any other string is refused.
    let mut bad = original.clone();
    bad["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["sum"]["aggregationTemporality"] = json!("DELTA");
    assert_eq!(decode(&bad).unwrap_err().class(), ErrorClass::InvalidInput);
}

#[test]
fn other_peer_files_are_not_metrics_but_decode_to_nothing() {
    // Unknown keys are ignored, so a traces body read as metrics is an empty request.
    for f in ["trace.json", "logs.json", "events.json"] {
        let req = decode_metrics_request(&peer_file(f), OtlpEncoding::Json).unwrap();
        assert!(req.resource_metrics.is_empty(), "{f}");
    }
}

// ---- translation rules, table-driven ----

#[test]
fn resource_to_job_instance_and_target_info() {
    let req = request(
        &[
            ("service.name", "svc"),
            ("service.namespace", "ns"),
            ("service.instance.id", "i-1"),
            ("host.name", "h1"),
            ("k8s.pod.name", "p"),
        ],
        vec![sum(
            "http.requests",
            "{request}",
            true,
            temporality::CUMULATIVE,
            vec![number(1000, 3.0, &[("http.method", "GET")])],
        )],
    );
    let report = check(
        &req,
        &opts(),
        &[
            r#"{__name__="http_requests_total", http_method="GET", instance="i-1", job="ns/svc"} 3 @1000"#,
            r#"{__name__="target_info", host_name="h1", instance="i-1", job="ns/svc", k8s_pod_name="p"} 1 @1000"#,
        ],
    );
    assert_eq!(report.rejected_points, 0);
    assert_eq!(report.error_message(), "");
    let (batch, _) = translate(&req, &opts());
    let md: Vec<_> =
        batch.metadata.iter().map(|m| (m.metric_family.as_str(), m.metric_type, m.help.as_str())).collect();
    assert_eq!(
        md,
        [("http_requests_total", MetricType::Counter, ""), ("target_info", MetricType::Gauge, "Target metadata")]
    );

    // Only identifying attributes: no target_info. No job/instance: no target_info either.
    let g = || vec![gauge("g", "", vec![number(1, 1.0, &[])])];
    check(&request(SVC, g()), &opts(), &[r#"{__name__="g", instance="i-1", job="ns/svc"} 1 @1"#]);
    check(&request(&[("host.name", "h")], g()), &opts(), &[r#"{__name__="g"} 1 @1"#]);
    // service.name without namespace; instance alone.
    check(&request(&[("service.name", "a")], g()), &opts(), &[r#"{__name__="g", job="a"} 1 @1"#]);
    check(
        &request(&[("service.instance.id", "x"), ("os", "linux")], g()),
        &opts(),
        &[r#"{__name__="g", instance="x"} 1 @1"#, r#"{__name__="target_info", instance="x", os="linux"} 1 @1"#],
    );
}

#[test]
fn target_info_spans_the_resource_every_150s_and_is_capped() {
    let req = request(
        &[("service.name", "s"), ("a", "b")],
        vec![gauge("g", "", vec![number(0, 1.0, &[]), number(400_000, 2.0, &[])])],
    );
    let (batch, _) = translate(&req, &opts());
    let ti = batch.series.iter().find(|s| s.labels.metric_name() == Some("target_info")).unwrap();
    let times: Vec<i64> = ti.samples.iter().map(|s| s.t).collect();
    assert_eq!(times, [0, 150_000, 300_000, 400_000]);
    // A zero timestamp next to a current one would mean millions of samples: the latest only.
    let req = request(
        &[("service.name", "s"), ("a", "b")],
        vec![gauge("g", "", vec![number(0, 1.0, &[]), number(1_700_000_000_000, 2.0, &[])])],
    );
    let (batch, _) = translate(&req, &opts());
    let ti = batch.series.iter().find(|s| s.labels.metric_name() == Some("target_info")).unwrap();
    assert_eq!(ti.samples.len(), translate::MAX_TARGET_INFO_SAMPLES);
    assert_eq!(ti.samples.last().unwrap().t, 1_700_000_000_000);
}

#[test]
fn sums_gauges_and_suffixes() {
    let c = temporality::CUMULATIVE;
    let p = |v| vec![number(5, v, &[])];
    let cases: Vec<(Metric, &str)> = vec![
        (sum("requests", "1", true, c, p(1.0)), r#"{__name__="requests_total", job="ns/svc", instance="i-1"} 1 @5"#),
        (sum("queue.size", "1", false, c, p(2.0)), r#"{__name__="queue_size"} 2 @5"#),
        (gauge("cpu.utilization", "1", p(0.5)), r#"{__name__="cpu_utilization_ratio"} 0.5 @5"#),
        (gauge("memory.usage", "By", p(3.0)), r#"{__name__="memory_usage_bytes"} 3 @5"#),
        (sum("io", "By/s", false, c, p(4.0)), r#"{__name__="io_bytes_per_second"} 4 @5"#),
        (sum("up.time", "s", true, c, p(6.0)), r#"{__name__="up_time_seconds_total"} 6 @5"#),
    ];
    for (m, want) in cases {
        let (batch, report) = translate(&request(SVC, vec![m]), &opts());
        let got = render(&batch);
        let name = want.split('"').nth(1).unwrap();
        assert!(got.iter().any(|g| g.contains(&format!("__name__=\"{name}\""))), "{want}: {got:?}");
        assert_eq!(report.rejected_points, 0);
    }
    // Non-monotonic sums are gauges, monotonic ones counters.
    let (batch, _) =
        translate(&request(&[], vec![sum("a", "", false, c, p(1.0)), sum("b", "", true, c, p(1.0))]), &opts());
    let types: Vec<_> = batch.metadata.iter().map(|m| (m.metric_family.as_str(), m.metric_type)).collect();
    assert_eq!(types, [("a", MetricType::Gauge), ("b_total", MetricType::Counter)]);
    // Integer values, and a point without a value (stored as 0, as Prometheus does).
    let mut ints = number(1, 0.0, &[]);
    ints.as_double = None;
    ints.as_int = Some(-7);
    let mut none = number(2, 0.0, &[]);
    none.as_double = None;
    check(
        &request(&[], vec![gauge("i", "", vec![ints, none])]),
        &opts(),
        &[r#"{__name__="i"} -7 @1"#, r#"{__name__="i"} 0 @2"#],
    );
}

#[test]
fn delta_and_unspecified_temporality_are_refused_and_counted() {
    for t in [temporality::DELTA, temporality::UNSPECIFIED, 7] {
        let req = request(SVC, vec![sum("d", "", true, t, vec![number(1, 1.0, &[]), number(2, 1.0, &[])])]);
        let (batch, report) = translate(&req, &opts());
        assert!(batch.series.is_empty() && batch.metadata.is_empty(), "{t}");
        assert_eq!((report.rejected_points, report.temporality_points), (2, 2));
        assert_eq!(report.error_message(), "invalid temporality and type combination for metric \"d\"");
    }
}

#[test]
fn histograms_become_classic_buckets() {
    let p = HistogramDataPoint {
        attributes: attrs(&[("route", "/a")]),
        time_unix_nano: 7_000_999_999,
        count: 6,
        sum: Some(1.25),
        bucket_counts: vec![1, 2, 0, 3],
        explicit_bounds: vec![0.005, 0.5, 10.0],
        ..Default::default()
    };
    let mut no_sum = p.clone();
    no_sum.sum = None;
    no_sum.attributes = attrs(&[("route", "/b")]);
    no_sum.bucket_counts = vec![4];
    no_sum.explicit_bounds = vec![];
    no_sum.count = 4;
    let req = request(
        &[("service.name", "s")],
        vec![histogram("http.server.duration", "ms", temporality::CUMULATIVE, vec![p, no_sum])],
    );
    check(
        &req,
        &opts(),
        &[
            r#"{__name__="http_server_duration_milliseconds_bucket", job="s", le="0.005", route="/a"} 1 @7000"#,
            r#"{__name__="http_server_duration_milliseconds_bucket", job="s", le="0.5", route="/a"} 3 @7000"#,
            r#"{__name__="http_server_duration_milliseconds_bucket", job="s", le="10", route="/a"} 3 @7000"#,
            r#"{__name__="http_server_duration_milliseconds_bucket", job="s", le="+Inf", route="/a"} 6 @7000"#,
            r#"{__name__="http_server_duration_milliseconds_sum", job="s", route="/a"} 1.25 @7000"#,
            r#"{__name__="http_server_duration_milliseconds_count", job="s", route="/a"} 6 @7000"#,
            r#"{__name__="http_server_duration_milliseconds_bucket", job="s", le="+Inf", route="/b"} 4 @7000"#,
            r#"{__name__="http_server_duration_milliseconds_count", job="s", route="/b"} 4 @7000"#,
        ],
    );
}

#[test]
fn summaries_and_exponential_histograms() {
    let summary = Metric {
        name: "rpc.latency".into(),
        unit: "s".into(),
        summary: Some(Summary {
            data_points: vec![SummaryDataPoint {
                time_unix_nano: 1_000_000,
                count: 10,
                sum: 2.5,
                quantile_values: vec![
                    ValueAtQuantile { quantile: 0.5, value: 0.2 },
                    ValueAtQuantile { quantile: 0.99, value: 0.9 },
                ],
                ..Default::default()
            }],
        }),
        ..Default::default()
    };
    let point = |t: u64, scale: i32, offset: i32, counts: &[u64], negative: &[u64]| ExponentialHistogramDataPoint {
        time_unix_nano: t * 1_000_000,
        count: counts.iter().chain(negative).sum(),
        sum: Some(1.5),
        scale,
        positive: Buckets { offset, bucket_counts: counts.to_vec() },
        negative: Buckets { offset: 0, bucket_counts: negative.to_vec() },
        ..Default::default()
    };
    let exp = Metric {
        name: "e".into(),
        unit: "s".into(),
        exponential_histogram: Some(ExponentialHistogram {
            data_points: vec![
                // Gaps of up to two empty buckets stay in a span; empty ends are dropped.
                point(1, 1, -2, &[0, 1, 0, 0, 2, 0, 0, 0, 3, 0], &[4]),
                // Scale 10 is merged down to 8: four OTLP buckets per native bucket.
                point(2, 10, 3, &[1, 1, 1, 1, 1, 1], &[]),
                // Scales below -4 cannot be converted.
                point(3, -5, 0, &[1], &[]),
            ],
            aggregation_temporality: temporality::CUMULATIVE,
        }),
        ..Default::default()
    };
    let report = check(
        &request(&[], vec![summary, exp]),
        &opts(),
        &[
            r#"{__name__="rpc_latency_seconds", quantile="0.5"} 0.2 @1"#,
            r#"{__name__="rpc_latency_seconds", quantile="0.99"} 0.9 @1"#,
            r#"{__name__="rpc_latency_seconds_sum"} 2.5 @1"#,
            r#"{__name__="rpc_latency_seconds_count"} 10 @1"#,
            // OTLP bucket -1 of scale 1 is (2^-1/2, 1]: native bucket 0.
            r#"{__name__="e_seconds"} {{schema:1 count:10 sum:1.5 buckets:[[-1.4142135623730951,-1.0):4 (0.7071067811865476,1.0]:1 (2.0,2.8284271247461903]:2 (8.0,11.313708498984761]:3]}} @1"#,
            // OTLP buckets 3..=8 of scale 10 → native buckets (3>>2)+1 = 1 (3), 2 (4..=7), 3 (8).
            r#"{__name__="e_seconds"} {{schema:8 count:6 sum:1.5 buckets:[(1.0,1.0027112750502025]:1 (1.0027112750502025,1.0054299011128027]:4 (1.0054299011128027,1.0081558981184175]:1]}} @2"#,
        ],
    );
    assert_eq!((report.rejected_points, report.exponential_histogram_points), (1, 1));
    assert!(report.error_message().contains("Scale must be >= -4, was -5"), "{}", report.error_message());
    let (batch, _) = translate(&request(&[], vec![]), &opts());
    assert!(batch.series.is_empty());
}

#[test]
fn no_recorded_value_flag_is_the_stale_marker() {
    let mut n = number(1, 5.0, &[]);
    n.flags = FLAG_NO_RECORDED_VALUE;
    let h = HistogramDataPoint {
        time_unix_nano: 1_000_000,
        count: 1,
        sum: Some(1.0),
        bucket_counts: vec![1, 0],
        explicit_bounds: vec![1.0],
        flags: FLAG_NO_RECORDED_VALUE,
        ..Default::default()
    };
    let req = request(&[], vec![gauge("g", "", vec![n]), histogram("h", "", temporality::CUMULATIVE, vec![h])]);
    let (batch, _) = translate(&req, &opts());
    assert_eq!(batch.sample_count(), 5);
    for s in &batch.series {
        assert!(s.samples.iter().all(|x| is_stale_nan(x.v)), "{}", s.labels);
    }
}

#[test]
fn label_names_collisions_and_overrides() {
    let p = number(1, 1.0, &[("a.b", "1"), ("a_b", "2"), ("0day", "z"), ("_x", "y"), ("job", "mine"), ("empty", "")]);
    check(
        &request(&[("service.name", "svc")], vec![gauge("g", "", vec![p])]),
        &opts(),
        // Colliding keys join their values in key order; job from the resource wins.
        &[r#"{__name__="g", a_b="1;2", job="svc", key_0day="z", key_x="y"} 1 @1"#],
    );
    // Without service.name, a `job` attribute stays.
    check(
        &request(&[], vec![gauge("g", "", vec![number(1, 1.0, &[("job", "mine")])])]),
        &opts(),
        &[r#"{__name__="g", job="mine"} 1 @1"#],
    );
}

#[test]
fn attribute_values_as_strings() {
    let p = NumberDataPoint {
        attributes: vec![
            kv("b", AnyValue::Bool(true)),
            kv("i", AnyValue::Int(-3)),
            kv("d", AnyValue::Double(0.5)),
            kv("big", AnyValue::Double(1e21)),
            kv("tiny", AnyValue::Double(1.5e-7)),
            kv("bytes", AnyValue::Bytes(vec![0xde, 0xad, 0xbe, 0xef])),
            kv("arr", AnyValue::Array(vec![s("x"), AnyValue::Int(1), AnyValue::Empty])),
            kv("map", AnyValue::KvList(vec![kv("z", AnyValue::Bool(false)), kv("a", s("<&>"))])),
        ],
        time_unix_nano: 1_000_000,
        as_double: Some(1.0),
        ..Default::default()
    };
    check(
        &request(&[], vec![gauge("g", "", vec![p])]),
        &opts(),
        &[
            r#"{__name__="g", arr="[\"x\",1,null]", b="true", big="1e+21", bytes="3q2+7w==", d="0.5", i="-3", map="{\"a\":\"\\u003c\\u0026\\u003e\",\"z\":false}", tiny="1.5e-7"} 1 @1"#,
        ],
    );
}

#[test]
fn exemplars_carry_trace_and_span_ids() {
    let ex = |v: f64, trace: u8| Exemplar {
        filtered_attributes: attrs(&[("user", "u1")]),
        time_unix_nano: 2_000_000,
        as_double: Some(v),
        trace_id: vec![trace; 16],
        span_id: vec![0xab; 8],
        ..Default::default()
    };
    let mut counter = number(3, 1.0, &[]);
    counter.exemplars = vec![ex(1.0, 1), Exemplar::default()];
    let mut g = number(3, 1.0, &[]);
    g.exemplars = vec![ex(1.0, 2)];
    let h = HistogramDataPoint {
        time_unix_nano: 3_000_000,
        count: 3,
        bucket_counts: vec![1, 1, 1],
        explicit_bounds: vec![1.0, 2.0],
        exemplars: vec![ex(5.0, 5), ex(0.5, 3), ex(1.5, 4)],
        ..Default::default()
    };
    let req = request(
        &[],
        vec![
            sum("c", "", true, temporality::CUMULATIVE, vec![counter]),
            gauge("g", "", vec![g]),
            histogram("h", "", temporality::CUMULATIVE, vec![h]),
        ],
    );
    let (batch, report) = translate(&req, &opts());
    let mut got: Vec<String> = batch
        .series
        .iter()
        .flat_map(|s| s.exemplars.iter().map(move |e| format!("{} {} {} @{}", s.labels, e.labels, e.v, e.t)))
        .collect();
    got.sort();
    let span = "ab".repeat(8);
    let trace = |b: u8| format!("{b:02x}").repeat(16);
    let mut want = vec![
        format!(r#"{{__name__="c_total"}} {{span_id="{span}", trace_id="{}", user="u1"}} 1 @2"#, trace(1)),
        format!(r#"{{__name__="h_bucket", le="1"}} {{span_id="{span}", trace_id="{}", user="u1"}} 0.5 @2"#, trace(3)),
        format!(r#"{{__name__="h_bucket", le="2"}} {{span_id="{span}", trace_id="{}", user="u1"}} 1.5 @2"#, trace(4)),
        format!(r#"{{__name__="h_bucket", le="+Inf"}} {{span_id="{span}", trace_id="{}", user="u1"}} 5 @2"#, trace(5)),
    ];
    want.sort();
    assert_eq!(got, want);
    // The exemplar without a value is dropped; gauges carry none (as in Prometheus).
    assert_eq!((report.exemplars, report.exemplars_dropped), (4, 1));
    // Attributes that would make the labels longer than 128 runes are left out.
    let mut long = ex(1.0, 9);
    long.filtered_attributes = attrs(&[("k", &"v".repeat(100))]);
    let mut p = number(3, 1.0, &[]);
    p.exemplars = vec![long];
    let (batch, _) = translate(&request(&[], vec![sum("c", "", true, temporality::CUMULATIVE, vec![p])]), &opts());
    let labels = &batch.series[0].exemplars[0].labels;
    assert_eq!((labels.len(), labels.get("k")), (2, None));
}

#[test]
fn promotion_and_scope_labels_are_opt_in() {
    let req = request(
        &[("service.name", "s"), ("deployment.environment", "prod"), ("region", "eu")],
        vec![gauge("g", "", vec![number(1, 1.0, &[("region", "attr-wins")])])],
    );
    // Defaults: nothing promoted, no scope labels.
    check(
        &req,
        &opts(),
        &[
            r#"{__name__="g", job="s", region="attr-wins"} 1 @1"#,
            r#"{__name__="target_info", deployment_environment="prod", job="s", region="eu"} 1 @1"#,
        ],
    );
    let o = TranslateOptions {
        promote_resource_attributes: vec!["deployment.environment".into(), "region".into(), "absent".into()],
        promote_scope_metadata: true,
        ..Default::default()
    };
    check(
        &req,
        &o,
        &[
            r#"{__name__="g", deployment_environment="prod", job="s", otel_scope_name="lib", otel_scope_schema_url="https://schema/1", otel_scope_scope_attr="x", otel_scope_version="1.2", region="attr-wins"} 1 @1"#,
            // target_info never gets promoted or scope labels.
            r#"{__name__="target_info", deployment_environment="prod", job="s", region="eu"} 1 @1"#,
        ],
    );
}

#[test]
fn bad_names_refuse_points_and_limits_refuse_series() {
    let req = request(
        &[],
        vec![
            gauge("...", "", vec![number(1, 1.0, &[])]),
            gauge("ok", "", vec![number(1, 1.0, &[]), number(2, 1.0, &[("", "x")]), number(3, 1.0, &[])]),
            gauge("empty", "", vec![]),
            Metric { name: "nodata".into(), ..Default::default() },
        ],
    );
    let (batch, report) = translate(&req, &opts());
    // An empty attribute key abandons the rest of the metric, as Prometheus does.
    assert_eq!(render(&batch), [r#"{__name__="ok"} 1 @1"#]);
    assert_eq!((report.data_points, report.rejected_points, report.invalid_points), (4, 3, 3));
    assert_eq!(report.problems, 4, "{:?}", report.messages);
    let limits = TranslateOptions {
        limits: DecodeLimits { max_labels_per_series: 2, max_label_value_length: 5, ..DecodeLimits::UNLIMITED },
        ..Default::default()
    };
    let req = request(
        &[],
        vec![gauge(
            "g",
            "",
            vec![
                number(1, 1.0, &[("a", "1")]),
                number(2, 1.0, &[("a", "1"), ("b", "2")]),
                number(3, 1.0, &[("a", "toolong")]),
            ],
        )],
    );
    let (batch, report) = translate(&req, &limits);
    assert_eq!(render(&batch), [r#"{__name__="g", a="1"} 1 @1"#]);
    assert_eq!(report.rejected_points, 2);
    assert!(report.error_message().contains("max_labels_per_series"), "{}", report.error_message());
}

#[test]
fn points_of_one_series_merge_and_timestamps_truncate_to_ms() {
    let req = request(&[], vec![gauge("g", "", vec![number(1, 1.0, &[]), number(2, 2.0, &[])])]);
    let (batch, _) = translate(&req, &opts());
    assert_eq!(batch.series.len(), 1);
    assert_eq!(batch.series[0].samples.len(), 2);
    let mut p = number(0, 1.0, &[]);
    p.time_unix_nano = 1_999_999;
    check(&request(&[], vec![gauge("g", "", vec![p])]), &opts(), &[r#"{__name__="g"} 1 @1"#]);
}

// ---- protobuf decoder ----

#[test]
fn protobuf_details() {
    use crate::wire::{put_bytes, put_tag, put_varint};
    use crate::WireType;
    fn field(n: u32, payload: &[u8]) -> Vec<u8> {
        let mut o = Vec::new();
        put_bytes(&mut o, n, payload);
        o
    }
    fn fixed(n: u32, v: u64) -> Vec<u8> {
        let mut o = Vec::new();
        put_tag(&mut o, n, WireType::Fixed64);
        o.extend_from_slice(&v.to_le_bytes());
        o
    }
    fn varint(n: u32, v: u64) -> Vec<u8> {
        let mut o = Vec::new();
        put_tag(&mut o, n, WireType::Varint);
        put_varint(&mut o, v);
        o
    }
    let wrap = |metric: Vec<u8>| field(1, &field(2, &field(2, &metric)));
    // Unpacked bucket counts and bounds, an unknown field, and the oneof's last member wins.
    let point = [fixed(3, 5_000_000), fixed(4, 3), fixed(6, 1), fixed(6, 2), fixed(7, 1.5f64.to_bits()), varint(99, 1)]
        .concat();
    let hist = [field(1, &point), varint(2, 2)].concat();
    let metric = [field(1, b"h"), field(5, &field(1, &fixed(3, 1))), field(9, &hist)].concat();
    let req = decode_metrics_request(&wrap(metric), OtlpEncoding::Protobuf).unwrap();
    let m = &req.resource_metrics[0].scope_metrics[0].metrics[0];
    assert!(m.gauge.is_none());
    let h = m.histogram.as_ref().unwrap();
    assert_eq!(
        (h.aggregation_temporality, &h.data_points[0].bucket_counts, &h.data_points[0].explicit_bounds),
        (2, &vec![1, 2], &vec![1.5])
    );
    // Errors, each of class InvalidInput and naming the problem.
    let bad_utf8 = wrap(field(1, b"\xff"));
    let bad_trace = wrap([field(1, b"s"), field(7, &field(1, &field(5, &field(5, &[1, 2, 3]))))].concat());
    let mut deep = field(1, b"x");
    for _ in 0..40 {
        deep = field(5, &field(1, &deep));
    }
    let deep = field(1, &field(1, &field(1, &[field(1, b"k"), field(2, &deep)].concat())));
    let wrong_type = wrap(varint(1, 3));
    for (body, want) in [
        (bad_utf8, "invalid utf-8 in Metric.name"),
        (bad_trace, "trace_id has 3 bytes, expected 16"),
        (deep, "nested deeper than 32"),
        (wrong_type, "field name has wire type 0"),
        (vec![0x0a, 0x05, 0x01], "exceeds the 1 remaining bytes"),
    ] {
        let err = decode_metrics_request(&body, OtlpEncoding::Protobuf).unwrap_err();
        assert_eq!(err.class(), ErrorClass::InvalidInput);
        assert!(err.to_string().contains(want), "{err} lacks {want:?}");
    }
    assert_eq!(decode_metrics_request(b"", OtlpEncoding::Protobuf).unwrap(), ExportMetricsRequest::default());
}

// ---- OTLP/JSON decoder ----

#[test]
fn json_details() {
    let doc = json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "g", "gauge": {"dataPoints": [
            {"asDouble": "NaN", "timeUnixNano": 5e6, "flags": null, "attributes": null},
            {"asDouble": "-Infinity", "timeUnixNano": "6000000", "exemplars": [
                {"asInt": "3", "traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "eee19b7ec3c1b174"},
                {"asDouble": 1, "traceId": "", "filteredAttributes": [{"key": "b", "value": {"bytesValue": "3q2+7w=="}}]}
            ]}
        ]}},
        {"name": "h", "histogram": {"aggregationTemporality": 2, "dataPoints": [
            {"count": 3, "bucketCounts": ["1", 2], "explicitBounds": ["Infinity"], "sum": null}
        ]}}
    ]}]}]});
    let req = decode_metrics_request(&serde_json::to_vec(&doc).unwrap(), OtlpEncoding::Json).unwrap();
    let m = &req.resource_metrics[0].scope_metrics[0].metrics;
    let points = &m[0].gauge.as_ref().unwrap().data_points;
    assert!(points[0].as_double.unwrap().is_nan());
    assert_eq!((points[0].time_unix_nano, points[1].as_double), (5_000_000, Some(f64::NEG_INFINITY)));
    let e = &points[1].exemplars;
    assert_eq!(e[0].as_int, Some(3));
    assert_eq!(e[0].trace_id[..4], [0x5b, 0x8e, 0xff, 0xf7]);
    assert_eq!(e[0].span_id, [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74]);
    assert!(e[1].trace_id.is_empty());
    assert_eq!(e[1].filtered_attributes[0].value, AnyValue::Bytes(vec![0xde, 0xad, 0xbe, 0xef]));
    let h = &m[1].histogram.as_ref().unwrap().data_points[0];
    assert_eq!((h.count, &h.bucket_counts, h.explicit_bounds[0], h.sum), (3, &vec![1, 2], f64::INFINITY, None));

    for (bad, want) in [
        (
            json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"gauge": {"dataPoints": [{"exemplars": [{"traceId": "W47/95gDgQPSabYzgT/GDA=="}]}]}}]}]}]}),
            "hex",
        ),
        (
            json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"gauge": {"dataPoints": [{"exemplars": [{"spanId": "abcd"}]}]}}]}]}]}),
            "expected 8",
        ),
        (
            json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"gauge": {"dataPoints": [{"timeUnixNano": "-1"}]}}]}]}]}),
            "unsigned",
        ),
        (json!({"resourceMetrics": "nope"}), "invalid type"),
        (json!([1]), "invalid type"),
    ] {
        let err = decode_metrics_request(&serde_json::to_vec(&bad).unwrap(), OtlpEncoding::Json).unwrap_err();
        assert_eq!(err.class(), ErrorClass::InvalidInput);
        assert!(err.to_string().contains(want), "{err} lacks {want:?}");
    }
    // Deep nesting is refused by serde_json's recursion limit, not by the stack.
    let mut v = json!({"stringValue": "x"});
    for _ in 0..200 {
        v = json!({"arrayValue": {"values": [v]}});
    }
    let doc = json!({"resourceMetrics": [{"resource": {"attributes": [{"key": "k", "value": v}]}}]});
    let err = decode_metrics_request(&serde_json::to_vec(&doc).unwrap(), OtlpEncoding::Json).unwrap_err();
    assert!(err.to_string().contains("recursion limit"), "{err}");
}

// ---- property tests: no input panics ----

fn arb_any_value() -> impl Strategy<Value = AnyValue> {
    let leaf = prop_oneof![
        Just(AnyValue::Empty),
        ".{0,6}".prop_map(AnyValue::String),
        any::<bool>().prop_map(AnyValue::Bool),
        any::<i64>().prop_map(AnyValue::Int),
        any::<f64>().prop_map(AnyValue::Double),
        proptest::collection::vec(any::<u8>(), 0..4).prop_map(AnyValue::Bytes),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(AnyValue::Array),
            proptest::collection::vec(("[a-z._]{0,3}", inner).prop_map(|(k, value)| KeyValue { key: k, value }), 0..3)
                .prop_map(AnyValue::KvList),
        ]
    })
}

fn arb_attrs() -> impl Strategy<Value = Vec<KeyValue>> {
    proptest::collection::vec(
        ("[a-z0-9._ ]{0,4}", arb_any_value()).prop_map(|(key, value)| KeyValue { key, value }),
        0..4,
    )
}

fn arb_exemplars() -> impl Strategy<Value = Vec<Exemplar>> {
    proptest::collection::vec(
        (arb_attrs(), any::<u64>(), proptest::option::of(any::<f64>()), any::<bool>()).prop_map(|(a, t, v, ids)| {
            Exemplar {
                filtered_attributes: a,
                time_unix_nano: t,
                as_double: v,
                trace_id: if ids { vec![7; 16] } else { vec![] },
                span_id: if ids { vec![9; 8] } else { vec![] },
                ..Default::default()
            }
        }),
        0..3,
    )
}

fn arb_metric() -> impl Strategy<Value = Metric> {
    let number =
        (arb_attrs(), 0u64..4_000_000_000_000, any::<f64>(), 0u32..3, arb_exemplars()).prop_map(|(a, t, v, f, e)| {
            NumberDataPoint {
                attributes: a,
                time_unix_nano: t,
                as_double: Some(v),
                flags: f,
                exemplars: e,
                ..Default::default()
            }
        });
    let hist = (
        arb_attrs(),
        any::<u64>(),
        proptest::collection::vec(0u64..10, 0..4),
        proptest::collection::vec(any::<f64>(), 0..4),
        arb_exemplars(),
    )
        .prop_map(|(a, t, counts, bounds, e)| HistogramDataPoint {
            attributes: a,
            time_unix_nano: t,
            count: counts.iter().sum(),
            sum: Some(1.0),
            bucket_counts: counts,
            explicit_bounds: bounds,
            exemplars: e,
            ..Default::default()
        });
    let summary = (arb_attrs(), any::<u64>(), proptest::collection::vec((any::<f64>(), any::<f64>()), 0..3)).prop_map(
        |(a, t, q)| SummaryDataPoint {
            attributes: a,
            time_unix_nano: t,
            quantile_values: q.into_iter().map(|(quantile, value)| ValueAtQuantile { quantile, value }).collect(),
            ..Default::default()
        },
    );
    (
        "[a-zA-Z0-9._/ ]{0,8}",
        prop_oneof![
            Just(String::new()),
            Just("1".to_owned()),
            Just("s".to_owned()),
            Just("By/s".to_owned()),
            "[a-z/{}]{0,4}"
        ],
        0u8..5,
        0i32..3,
        any::<bool>(),
        proptest::collection::vec(number, 0..3),
        proptest::collection::vec(hist, 0..2),
        proptest::collection::vec(summary, 0..2),
        proptest::collection::vec(
            (
                -6i32..12,
                -300i32..300,
                proptest::collection::vec(0u64..5, 0..40),
                proptest::collection::vec(0u64..5, 0..10),
                0u32..2,
            )
                .prop_map(|(scale, offset, pos, neg, flags)| ExponentialHistogramDataPoint {
                    time_unix_nano: 1_000_000,
                    count: pos.iter().chain(&neg).sum(),
                    scale,
                    positive: Buckets { offset, bucket_counts: pos },
                    negative: Buckets { offset: -offset, bucket_counts: neg },
                    flags,
                    ..Default::default()
                }),
            0..3,
        ),
    )
        .prop_map(|(name, unit, kind, t, mono, numbers, hists, summaries, exps)| {
            let mut m = Metric { name, unit, ..Default::default() };
            match kind {
                0 => m.gauge = Some(Gauge { data_points: numbers }),
                1 => m.sum = Some(Sum { data_points: numbers, aggregation_temporality: t, is_monotonic: mono }),
                2 => m.histogram = Some(Histogram { data_points: hists, aggregation_temporality: t }),
                3 => m.summary = Some(Summary { data_points: summaries }),
                _ => {
                    m.exponential_histogram =
                        Some(ExponentialHistogram { data_points: exps, aggregation_temporality: t })
                }
            }
            m
        })
}

fn arb_request() -> impl Strategy<Value = ExportMetricsRequest> {
    proptest::collection::vec((arb_attrs(), proptest::collection::vec(arb_metric(), 0..4)), 0..3).prop_map(|rs| {
        ExportMetricsRequest {
            resource_metrics: rs
                .into_iter()
                .map(|(a, metrics)| ResourceMetrics {
                    resource: Resource { attributes: a },
                    scope_metrics: vec![ScopeMetrics { metrics, ..Default::default() }],
                    ..Default::default()
                })
                .collect(),
        }
    })
}

/// Translation invariants that hold for any decoded request.
fn translate_checked(req: &ExportMetricsRequest) {
    for o in [TranslateOptions::default(), TranslateOptions { promote_scope_metadata: true, ..Default::default() }] {
        let (batch, report) = translate(req, &o);
        assert!(report.rejected_points <= report.data_points);
        assert_eq!(report.series, batch.series.len());
        for s in &batch.series {
            assert!(s.labels.metric_name().is_some_and(|n| !n.is_empty()));
            assert!(!s.samples.is_empty() || !s.histograms.is_empty());
            assert!(s.histograms.iter().all(|h| h.h.validate().is_ok()), "{:?}", s.histograms);
            assert!(s.labels.iter().all(|l| !l.name.is_empty() && !l.value.is_empty()));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn valid_requests_round_trip_and_translate(req in arb_request()) {
        let pb = encode_metrics_request(&req);
        let back = decode_metrics_request(&pb, OtlpEncoding::Protobuf).unwrap();
        // NaN != NaN: compare the re-encoding instead.
        prop_assert_eq!(encode_metrics_request(&back), pb);
        translate_checked(&back);
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        for enc in [OtlpEncoding::Protobuf, OtlpEncoding::Json] {
            if let Ok(req) = decode_metrics_request(&body, enc) {
                translate_checked(&req);
            }
        }
    }

    #[test]
    fn mutated_protobuf_never_panics(req in arb_request(), muts in arb_mutations()) {
        let mut body = encode_metrics_request(&req);
        mutate(&mut body, &muts);
        if let Ok(req) = decode_metrics_request(&body, OtlpEncoding::Protobuf) {
            translate_checked(&req);
        }
    }

    #[test]
    fn mutated_json_never_panics(muts in arb_mutations()) {
        let mut body = peer_file("metrics.json");
        mutate(&mut body, &muts);
        if let Ok(req) = decode_metrics_request(&body, OtlpEncoding::Json) {
            translate_checked(&req);
        }
    }
}
