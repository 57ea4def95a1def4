use periscope_model::{Classify, ErrorClass};
use proptest::prelude::*;

use super::*;
use crate::test_util::{allocated_by, arb_mutations, mutate};

fn base() -> Labels {
    Labels::from_pairs([("job", "app"), ("instance", "host:8080")]).unwrap()
}

fn decode(json: &str) -> (MetricBatch, ExpvarReport) {
    decode_expvar(json.as_bytes(), 1000, &base(), 0).unwrap()
}

/// `name{labels} value` lines, sorted, without the base labels, for compact assertions.
fn lines(batch: &MetricBatch) -> Vec<String> {
    let mut out: Vec<String> = batch
        .series
        .iter()
        .map(|s| {
            let mut b = s.labels.builder();
            b.del("job").del("instance");
            let labels = b.build();
            assert_eq!(s.samples.len(), 1);
            assert_eq!(s.samples[0].t, 1000);
            format!("{labels} {}", s.samples[0].v)
        })
        .collect();
    out.sort();
    out
}

fn metadata_type(batch: &MetricBatch, family: &str) -> Option<MetricType> {
    batch.metadata.iter().find(|m| m.metric_family == family).map(|m| m.metric_type)
}

const GO_VARS: &str = r#"{
"cmdline": ["/usr/bin/app", "-flag"],
"memstats": {"Alloc":1024,"TotalAlloc":4096,"Sys":8192,"Lookups":0,"Mallocs":10,"Frees":4,
  "HeapAlloc":1024,"HeapSys":2048,"HeapIdle":512,"HeapInuse":1536,"HeapReleased":256,"HeapObjects":6,
  "StackInuse":64,"StackSys":64,"MSpanInuse":32,"MSpanSys":48,"MCacheInuse":16,"MCacheSys":16,
  "BuckHashSys":8,"GCSys":128,"OtherSys":96,"NextGC":4194304,"LastGC":1700000000500000000,
  "PauseTotalNs":1500000,"PauseNs":[1000,500000],"PauseEnd":[1,2],"NumGC":3,"NumForcedGC":1,
  "GCCPUFraction":0.0025,"EnableGC":true,"DebugGC":false,
  "BySize":[{"Size":0,"Mallocs":0,"Frees":0},{"Size":8,"Mallocs":5,"Frees":1}]},
"requests": {"GET": 3, "POST": 1},
"httpServerStats": {"api": {"200": 10, "500": 2}, "ok": true},
"uptimeSeconds": 12.5,
"version": "1.2.3",
"nothing": null
}"#;

#[test]
fn go_debug_vars() {
    let (batch, report) = decode(GO_VARS);
    let l = lines(&batch);
    for want in [
        r#"{__name__="go_memstats_alloc_bytes"} 1024"#,
        r#"{__name__="go_memstats_alloc_bytes_total"} 4096"#,
        r#"{__name__="go_memstats_lookups_total"} 0"#,
        r#"{__name__="go_memstats_mspan_inuse_bytes"} 32"#,
        r#"{__name__="go_memstats_mcache_sys_bytes"} 16"#,
        r#"{__name__="go_memstats_next_gc_bytes"} 4194304"#,
        r#"{__name__="go_memstats_last_gc_time_seconds"} 1700000000.5"#,
        r#"{__name__="go_gc_duration_seconds_sum"} 0.0015"#,
        r#"{__name__="go_gc_duration_seconds_count"} 3"#,
        r#"{__name__="go_memstats_gc_cpu_fraction"} 0.0025"#,
        r#"{__name__="go_memstats_num_forced_gc"} 1"#,
        r#"{__name__="go_memstats_enable_gc"} 1"#,
        r#"{__name__="go_memstats_debug_gc"} 0"#,
        r#"{__name__="expvar_requests", key="GET"} 3"#,
        r#"{__name__="expvar_requests", key="POST"} 1"#,
        r#"{__name__="expvar_http_server_stats", key="api", key2="200"} 10"#,
        r#"{__name__="expvar_http_server_stats", key="api", key2="500"} 2"#,
        r#"{__name__="expvar_http_server_stats", key="ok"} 1"#,
        r#"{__name__="expvar_uptime_seconds"} 12.5"#,
    ] {
        assert!(l.contains(&want.to_string()), "missing {want} in {l:#?}");
    }
    assert_eq!(l.len(), 29 + 6, "{l:#?}");
    assert_eq!(
        report,
        ExpvarReport {
            series: 35,
            skipped_non_numeric: 2,
            skipped_arrays: 3,
            skipped_too_deep: 0,
            skipped_duplicates: 0
        }
    );
    assert_eq!(metadata_type(&batch, "go_memstats_alloc_bytes"), Some(MetricType::Gauge));
    assert_eq!(metadata_type(&batch, "go_memstats_alloc_bytes_total"), Some(MetricType::Counter));
    assert_eq!(metadata_type(&batch, "go_memstats_mallocs_total"), Some(MetricType::Counter));
    assert_eq!(metadata_type(&batch, "go_gc_duration_seconds"), Some(MetricType::Summary));
    assert_eq!(metadata_type(&batch, "expvar_requests"), Some(MetricType::Gauge));
    assert_eq!(batch.metadata.iter().filter(|m| m.metric_family == "expvar_requests").count(), 1);
    // Every series carries the base labels.
    assert!(batch.series.iter().all(|s| s.labels.get("job") == Some("app") && s.labels.get("instance").is_some()));
}

#[test]
fn names_are_sanitised() {
    for (input, want) in [
        ("numForcedGC", "num_forced_gc"),
        ("NumForcedGC", "num_forced_gc"),
        ("HTTPServer", "http_server"),
        ("MSpanInuse", "m_span_inuse"),
        ("p99Latency", "p99_latency"),
        ("already_snake", "already_snake"),
        ("a.b-c d", "a_b_c_d"),
        ("ns:sub", "ns:sub"),
        ("Ünïcode", "_n_code"),
        ("", ""),
        ("9lives", "9lives"),
        ("X", "x"),
        ("get_URL", "get_url"),
    ] {
        assert_eq!(snake_case(input), want, "{input}");
    }
    let (batch, _) = decode(r#"{"weird name!": 1, "9lives": 2}"#);
    for s in &batch.series {
        assert!(periscope_model::is_legacy_metric_name(s.labels.metric_name().unwrap()), "{}", s.labels);
    }
}

#[test]
fn collisions_keep_the_first_and_count_the_rest() {
    // "aB" sorts before "a_b" (byte order), wherever it stands in the document.
    let (batch, report) = decode(r#"{"a_b": 1, "aB": 2}"#);
    assert_eq!(lines(&batch), vec![r#"{__name__="expvar_a_b"} 2"#]);
    assert_eq!(report.skipped_duplicates, 1);
}

#[test]
fn base_labels_colliding_with_keys_are_kept_and_keys_exported() {
    let base = Labels::from_pairs([("job", "x"), ("key", "base"), ("__name__", "ignored")]).unwrap();
    let (batch, _) = decode_expvar(br#"{"m": {"k": 1}}"#, 5, &base, 0).unwrap();
    assert_eq!(batch.series[0].labels.to_string(), r#"{__name__="expvar_m", exported_key="k", job="x", key="base"}"#);
}

#[test]
fn nesting_is_capped() {
    let mut json = String::from(r#"{"deep": "#);
    for i in 0..20 {
        json.push_str(&format!(r#"{{"l{i}": 1, "n": "#));
    }
    json.push('1');
    for _ in 0..20 {
        json.push('}');
    }
    json.push('}');
    let (batch, report) = decode(&json);
    assert_eq!(report.skipped_too_deep, 1);
    assert_eq!(batch.series.len(), MAX_EXPVAR_DEPTH);
    let deepest = batch.series.iter().map(|s| s.labels.len()).max().unwrap();
    assert_eq!(deepest, 3 + MAX_EXPVAR_DEPTH); // __name__, job, instance and the keys
    assert!(batch.series.iter().any(|s| s.labels.get("key8").is_some()));
}

#[test]
fn hostile_nesting_is_a_parse_error_not_a_stack_overflow() {
    let json = format!("{{\"a\":{}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let err = decode_expvar(json.as_bytes(), 0, &Labels::empty(), 0).unwrap_err();
    assert!(matches!(err, IngestError::ExpvarJson(_)), "{err}");
    assert!(err.to_string().contains("recursion limit"), "{err}");
    let json = format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
    assert!(decode_expvar(json.as_bytes(), 0, &Labels::empty(), 0).is_err());
}

#[test]
fn series_cap_is_too_large() {
    let err = decode_expvar(br#"{"a": 1, "b": 2, "c": {"x": 1}}"#, 0, &Labels::empty(), 2).unwrap_err();
    assert_eq!(err.class(), ErrorClass::TooLarge);
    assert_eq!(err.to_string(), "expvar document yields more than 2 series");
    assert_eq!(decode_expvar(br#"{"a": 1, "b": 2}"#, 0, &Labels::empty(), 2).unwrap().1.series, 2);
}

#[test]
fn non_objects_and_bad_json_are_invalid_input() {
    for body in [&b"[1]"[..], b"1", b"\"s\"", b"null"] {
        let err = decode_expvar(body, 0, &Labels::empty(), 0).unwrap_err();
        assert!(matches!(err, IngestError::ExpvarNotObject), "{err}");
    }
    for body in [&b""[..], b"{", b"{\"a\":}", b"\xff", b"{\"a\": 1e999}"] {
        let err = decode_expvar(body, 0, &Labels::empty(), 0).unwrap_err();
        assert_eq!(err.class(), ErrorClass::InvalidInput, "{err}");
        assert!(err.to_string().starts_with("invalid expvar json: "), "{err}");
    }
}

#[test]
fn memstats_of_the_wrong_shape_is_generic() {
    let (batch, report) = decode(r#"{"memstats": 5, "other": {"memstats": {"Alloc": 1}}}"#);
    assert_eq!(
        lines(&batch),
        vec![r#"{__name__="expvar_memstats"} 5"#, r#"{__name__="expvar_other", key="memstats", key2="Alloc"} 1"#]
    );
    assert_eq!(report.series, 2);
    let (batch, report) = decode(r#"{"memstats": {"Alloc": "x", "Weird": {"a": 1}}}"#);
    assert_eq!(lines(&batch), vec![r#"{__name__="go_memstats_weird", key="a"} 1"#]);
    assert_eq!(report.skipped_non_numeric, 1);
}

// ---- properties ----

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(serde_json::Value::from),
        (-1e300f64..1e300).prop_map(serde_json::Value::from),
        "\\PC{0,8}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(12, 128, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map("[a-zA-Z_.]{0,8}|\\PC{0,4}|memstats|cmdline|Alloc", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Decodes `body` and checks the invariants that hold for any input.
fn check_any_input(body: &[u8]) {
    let (r, bytes) = allocated_by(|| decode_expvar(body, 7, &Labels::empty(), 10_000));
    // serde_json's tree and one series per value: generous, but linear in the input.
    assert!(bytes <= 256 * body.len() + 1024 * 1024, "allocated {bytes} for {} bytes", body.len());
    if let Ok((batch, report)) = r {
        // Every series needs a value of at least one byte plus a separator or bracket.
        assert!(report.series * 2 <= body.len(), "{report:?} from {} bytes", body.len());
        assert_eq!(report.series, batch.series.len());
        assert!(batch.metadata.len() <= batch.series.len());
        for s in &batch.series {
            let name = s.labels.metric_name().unwrap_or_default();
            assert!(periscope_model::is_legacy_metric_name(name), "{}", s.labels);
            assert_eq!(s.samples.len(), 1);
            assert!(s.labels.len() <= 1 + MAX_EXPVAR_DEPTH);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        check_any_input(&body);
    }

    #[test]
    fn arbitrary_json_never_panics(doc in arb_json()) {
        check_any_input(&serde_json::to_vec(&doc).unwrap());
    }

    #[test]
    fn mutated_json_never_panics(doc in arb_json(), mutations in arb_mutations()) {
        let mut body = serde_json::to_vec(&doc).unwrap();
        mutate(&mut body, &mutations);
        check_any_input(&body);
    }
}
