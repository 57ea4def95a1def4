//! The peer conformance suites, run in-process from `shared/peer-tests` (never copied), plus the
//! property tests that feed arbitrary and mutated expositions to every mode.
//!
//! - `openmetrics/`: 211 accept/reject cases, parsed with `strict: true`; accepted cases must also
//!   report one sample per non-`#` line.
//! - `prom-text/`: the 32 rows of `EXPECTED.tsv` (0.0.4 with `strict: true` as the reference
//!   `expfmt` parser, gzip, strict OpenMetrics, and the lenient OpenMetrics row that a strict
//!   validator must reject).
//!
//! Cases that cannot pass are listed, with a reason, in `tests/*_known_failures.txt`; a listed case
//! that passes fails the test too, so the lists only shrink.

#![allow(clippy::print_stdout)] // the suites print their totals, as the peer runners do

use std::collections::BTreeMap;
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use periscope_textparse::{parse, Format, ParseError, ParseOptions, Parsed};

mod proptests;

const STRICT: ParseOptions = ParseOptions { strict: true, default_timestamp_ms: None };
const LENIENT: ParseOptions = ParseOptions { strict: false, default_timestamp_ms: None };

fn peer_dir(sub: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/peer-tests/")).join(sub)
}

/// Parses without letting a panic escape: a panic is reported as a failure of the case.
fn guarded_parse(input: &[u8], format: Format, opts: &ParseOptions) -> Result<Result<Parsed, ParseError>, String> {
    catch_unwind(AssertUnwindSafe(|| parse(input, format, opts))).map_err(|p| {
        let msg = p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned());
        format!("panic: {}", msg.unwrap_or_default())
    })
}

/// Reads a known-failures list: `case reason...` per line, `#` comments.
fn known_failures(file: &str) -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((case, reason)) => (case.to_string(), reason.trim().to_string()),
            None => panic!("{file}: {l:?} has no reason"),
        })
        .collect()
}

/// Compares the failures with the known-failures list and prints the totals.
#[track_caller]
fn judge(suite: &str, total: usize, failures: BTreeMap<String, String>, known: BTreeMap<String, String>) {
    println!("{suite}: {} passed, {} failed", total - failures.len(), failures.len());
    let mut problems = Vec::new();
    for (case, why) in &failures {
        if !known.contains_key(case) {
            problems.push(format!("FAIL {case}: {why}"));
        }
    }
    for case in known.keys() {
        if !failures.contains_key(case) {
            problems.push(format!("{case} is listed as a known failure but passes: remove it from the list"));
        }
    }
    assert!(problems.is_empty(), "{suite}:\n{}", problems.join("\n"));
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OmCase {
    #[serde(rename = "type")]
    kind: String,
    file: String,
    should_parse: bool,
    #[allow(dead_code)]
    comment: Option<String>,
}

#[test]
fn openmetrics_suite() {
    let root = peer_dir("openmetrics/parsers");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("test.json").is_file())
        .collect();
    dirs.sort();
    let mut failures = BTreeMap::new();
    for dir in &dirs {
        let case = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let json = std::fs::read(dir.join("test.json")).unwrap_or_default();
        let meta: OmCase = serde_json::from_slice(&json).unwrap_or_else(|e| panic!("{case}: bad test.json: {e}"));
        assert_eq!(meta.kind, "text", "{case}: harness error: unexpected case type");
        assert_eq!(meta.should_parse, !case.starts_with("bad_"), "{case}: verdict contradicts the name");
        let input = std::fs::read(dir.join(&meta.file)).unwrap_or_else(|e| panic!("{case}: {e}"));
        let outcome = match guarded_parse(&input, Format::OpenMetrics, &STRICT) {
            Err(panic) => Some(panic),
            Ok(Ok(p)) if meta.should_parse => {
                let want = input.split(|&b| b == b'\n').filter(|l| !l.is_empty() && l[0] != b'#').count();
                (p.samples.len() != want).then(|| format!("accepted with {} samples, want {want}", p.samples.len()))
            }
            Ok(Ok(_)) => Some("accepted, want rejected".to_string()),
            Ok(Err(e)) if meta.should_parse => Some(format!("rejected: {e}")),
            Ok(Err(_)) => None,
        };
        if let Some(why) = outcome {
            failures.insert(case, why);
        }
    }
    assert_eq!(dirs.len(), 211, "the suite has 211 cases");
    judge("openmetrics", dirs.len(), failures, known_failures("openmetrics_known_failures.txt"));
}

#[test]
fn prom_text_suite() {
    let root = peer_dir("prom-text");
    let tsv = std::fs::read_to_string(root.join("EXPECTED.tsv")).unwrap_or_else(|e| panic!("EXPECTED.tsv: {e}"));
    let mut rows = 0;
    let mut failures = BTreeMap::new();
    for row in tsv.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        rows += 1;
        let cols: Vec<&str> = row.split('\t').collect();
        let [path, format, verdict, families, samples, ..] = cols[..] else {
            panic!("malformed row {row:?}");
        };
        let mut input = std::fs::read(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        let (fmt, opts) = match format {
            "prom-0.0.4" => (Format::PromText, STRICT),
            "prom-0.0.4 (gzip)" => {
                let mut plain = Vec::new();
                flate2::read::GzDecoder::new(&input[..])
                    .read_to_end(&mut plain)
                    .unwrap_or_else(|e| panic!("{path}: gunzip: {e}"));
                input = plain;
                (Format::PromText, STRICT)
            }
            "openmetrics-1.0" => (Format::OpenMetrics, STRICT),
            "openmetrics-1.0 (lenient)" => (Format::OpenMetrics, LENIENT),
            other => panic!("{path}: unknown format {other:?}"),
        };
        let counts = |p: &Parsed| -> Option<String> {
            let (f, s) = (p.families.to_string(), p.samples.len().to_string());
            (f != families || s != samples)
                .then(|| format!("{f} families and {s} samples, want {families} and {samples}"))
        };
        let outcome = match (verdict, guarded_parse(&input, fmt, &opts)) {
            (_, Err(panic)) => Some(panic),
            ("accept", Ok(Ok(p))) => counts(&p),
            ("accept", Ok(Err(e))) => Some(format!("rejected: {e}")),
            ("reject", Ok(Ok(_))) => Some("accepted, want rejected".to_string()),
            ("reject", Ok(Err(_))) => None,
            ("accept-lenient", Ok(Ok(p))) => counts(&p).or_else(|| match guarded_parse(&input, fmt, &STRICT) {
                Ok(Err(_)) => None,
                Ok(Ok(_)) => Some("strict mode accepted it, want rejected".to_string()),
                Err(panic) => Some(panic),
            }),
            ("accept-lenient", Ok(Err(e))) => Some(format!("lenient mode rejected: {e}")),
            (other, _) => panic!("{path}: unknown verdict {other:?}"),
        };
        if let Some(why) = outcome {
            failures.insert(path.to_string(), why);
        }
    }
    assert_eq!(rows, 32, "EXPECTED.tsv has 32 rows");
    judge("prom-text", rows, failures, known_failures("prom_text_known_failures.txt"));
}

fn read_peer(path: &str) -> Vec<u8> {
    std::fs::read(peer_dir(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[track_caller]
fn parse_ok(path: &str, format: Format, opts: &ParseOptions) -> Parsed {
    match parse(&read_peer(path), format, opts) {
        Ok(p) => p,
        Err(e) => panic!("{path}: {e}"),
    }
}

fn series(p: &Parsed) -> Vec<(String, f64, Option<i64>)> {
    p.samples.iter().map(|s| (s.labels.to_string(), s.value, s.timestamp_ms)).collect()
}

/// The values FORMAT.md spells out for the small accepted 0.0.4 cases.
#[test]
fn prom_text_detailed_expectations() {
    let p = parse_ok("prom-text/expfmt-corpus/from_test_parse_1", Format::PromText, &STRICT);
    assert_eq!(
        series(&p),
        vec![
            (r#"{__name__="minimal_metric"}"#.to_string(), 1.234, None),
            (r#"{__name__="another_metric"}"#.to_string(), -3000.0, Some(103948)),
            (r#"{__name__="no_labels"}"#.to_string(), 3.0, None),
        ]
    );
    assert!(p.metadata.is_empty(), "the HELP for metric \"line\" produces nothing");

    let p = parse_ok("prom-text/expfmt-corpus/from_test_parse_2", Format::PromText, &STRICT);
    let s = series(&p);
    assert_eq!(s[0].0, r#"{__name__="name", basename="basevalue", labelname="val1"}"#);
    assert!(s[0].1.is_nan());
    assert_eq!(p.samples[1].labels.get("basename"), Some("base\"v\\al\nue"));
    assert_eq!((s[1].1, s[1].2), (0.23, Some(1234567890)));
    assert_eq!(
        s[2],
        (r#"{__name__="name2", basename="basevalue2", labelname="val2"}"#.to_string(), f64::INFINITY, Some(54321))
    );
    assert_eq!(s[3], (r#"{__name__="name2", labelname="val1"}"#.to_string(), f64::NEG_INFINITY, None));
    let meta: Vec<_> =
        p.metadata.iter().map(|m| (m.metric_family.as_str(), m.metric_type.as_str(), m.help.as_str())).collect();
    assert_eq!(meta, vec![("name", "counter", "two-line\n doc  str\\ing"), ("name2", "gauge", "doc str\"ing 2")]);

    let p = parse_ok("prom-text/expfmt-corpus/from_test_parse_3", Format::PromText, &STRICT);
    assert_eq!(p.samples.len(), 12);
    assert_eq!(p.families, 4);
    let names: Vec<_> = p.samples.iter().filter_map(|s| s.labels.metric_name()).collect();
    assert_eq!(&names[..4], &["my_summary", "decoy", "my_summary", "my_summary_count"]);
    assert_eq!(series(&p)[1], (r#"{__name__="decoy"}"#.to_string(), -1.0, Some(-2)));
    // quantile is rewritten canonically and not range-checked in 0.0.4; `.3` becomes `0.3`.
    let quantiles: Vec<_> = p.samples.iter().filter_map(|s| s.labels.get("quantile")).collect();
    assert_eq!(quantiles, vec!["0.5", "0.9", "0.3", "0.2", "-12.34"]);
    assert_eq!(p.samples[11].labels.get("n2"), Some("val2"));
    assert_eq!((p.samples[9].value, p.samples[9].timestamp_ms), (8.0, Some(15)));
    let meta: Vec<_> = p.metadata.iter().map(|m| (m.metric_family.as_str(), m.metric_type.as_str())).collect();
    assert_eq!(meta, vec![("my_summary", "summary"), ("another_summary", "summary")]);

    let p = parse_ok("prom-text/expfmt-corpus/from_test_parse_4", Format::PromText, &STRICT);
    let les: Vec<_> = p.samples.iter().filter_map(|s| s.labels.get("le")).collect();
    assert_eq!(les, vec!["100.0", "120.0", "144.0", "172.8", "+Inf"]);
    assert_eq!(p.samples[5].value, 1756047.3);
    assert_eq!(p.metadata[0].help, "The response latency.");
    assert_eq!(p.metadata[0].metric_type.as_str(), "histogram");
}

/// The large realistic exposition, checked as Prometheus's scrape tests check it.
#[test]
fn alltypes_237_families() {
    let p = parse_ok("prom-text/textparse-testdata/alltypes.237mfs.prom.txt", Format::PromText, &LENIENT);
    assert_eq!((p.families, p.samples.len(), p.metadata.len()), (237, 1857, 237));
    assert_eq!(p.metadata[0].metric_family, "go_gc_cycles_automatic_gc_cycles_total");
    assert_eq!(p.metadata[128].metric_family, "prometheus_sd_kuma_fetch_duration_seconds");
    assert_eq!(p.metadata[236].metric_family, "promhttp_metric_handler_requests_total");
    let mut by_type = BTreeMap::new();
    for m in &p.metadata {
        *by_type.entry(m.metric_type.as_str()).or_insert(0) += 1;
    }
    assert_eq!(by_type, BTreeMap::from([("counter", 112), ("gauge", 97), ("histogram", 15), ("summary", 13)]));
    let s = series(&p);
    assert_eq!(s[11], (r#"{__name__="go_gc_gomemlimit_bytes"}"#.to_string(), 9.03676723e+08, None));
    // Periscope rewrites `le` canonically as Prometheus 3 does: `le="120"` is stored as "120.0".
    assert_eq!(
        s[448],
        (
            r#"{__name__="prometheus_http_request_duration_seconds_bucket", handler="/api/v1/query_range", le="120.0"}"#
                .to_string(),
            118157.0,
            None
        )
    );
    assert_eq!(s[1856], (r#"{__name__="promhttp_metric_handler_requests_total", code="503"}"#.to_string(), 0.0, None));

    let nometa = parse_ok("prom-text/textparse-testdata/alltypes.237mfs.nometa.prom.txt", Format::PromText, &LENIENT);
    assert_eq!((nometa.families, nometa.samples.len(), nometa.metadata.len()), (291, 1857, 0));
    // Without TYPE lines nothing is a histogram, so `le` stays as written.
    assert_eq!(nometa.samples[448].labels.get("le"), Some("120"));
}

/// The OpenMetrics benchmark input in the Prometheus-compatible mode: exemplars and `_created`.
#[test]
fn alltypes_5_families_lenient() {
    let p = parse_ok("prom-text/textparse-testdata/alltypes.5mfs.om.txt", Format::OpenMetrics, &LENIENT);
    assert_eq!((p.families, p.samples.len()), (5, 53));
    let ex: Vec<_> = p.samples.iter().filter_map(|s| s.exemplar.as_ref()).collect();
    assert_eq!(ex.len(), 6);
    assert!(ex.iter().all(|e| e.labels.get("dummyID").is_some()));
    assert_eq!(ex[0].v, -0.0003825067330956884);
    assert_eq!(ex[0].t, 1726839814223); // 1.7268398142239082e+09 s, rounded down to ms
    let meta: Vec<_> = p.metadata.iter().map(|m| (m.metric_family.as_str(), m.metric_type.as_str())).collect();
    assert_eq!(
        meta,
        vec![
            ("go_build_info", "gauge"),
            ("promhttp_metric_handler_errors", "counter"),
            ("rpc_durations_histogram_seconds", "histogram"),
            ("rpc_durations_seconds", "summary"),
            ("rpc_requests", "counter"),
        ]
    );
    let strict = parse(&read_peer("prom-text/textparse-testdata/alltypes.5mfs.om.txt"), Format::OpenMetrics, &STRICT);
    assert!(strict.is_err());
}
