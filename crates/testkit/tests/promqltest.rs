//! Runs Prometheus's PromQL test files (`shared/peer-tests/promql/*.test`) against
//! Periscope's engine and checks the result against `promqltest-known-failures.txt`.
//!
//! Environment:
//! - `PERISCOPE_BLESS=1`: rewrite the known-failures list with the current failures.
//! - `PERISCOPE_PROMQLTEST_FILES=functions,at_modifier`: run only files whose name contains one
//!   of these words (the list is then checked, or blessed, for those files only).
//! - `PERISCOPE_PROMQLTEST_VERBOSE=1`: print every failure, including listed and
//!   native-histogram ones.

#![allow(clippy::unwrap_used)]

use periscope_testkit::promqltest::{run_file, test_files, FileReport, KnownFailures, Runner};
use periscope_testkit::TestkitError;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

const TEST_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/peer-tests/promql");
const KNOWN_FAILURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/promqltest-known-failures.txt");

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Runs `files` on all cores, biggest first; results in the order of `files`.
fn run_all(files: &[PathBuf]) -> Vec<Result<FileReport, TestkitError>> {
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(std::fs::metadata(&files[i]).map(|m| m.len()).unwrap_or(0)));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<FileReport, TestkitError>>>> =
        Mutex::new((0..files.len()).map(|_| None).collect());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).min(files.len()).max(1);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                let runner = Runner::new();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = order.get(k) else { break };
                    let r = run_file(&runner, &files[i]);
                    results.lock().unwrap()[i] = Some(r);
                }
            });
        }
    });
    results.into_inner().unwrap().into_iter().map(|r| r.unwrap()).collect()
}

#[test]
fn promql_test_files() {
    let dir = Path::new(TEST_DIR);
    let all = test_files(dir).unwrap_or_else(|e| panic!("cannot list the PromQL test files: {e} ({e:?})"));
    assert!(!all.is_empty(), "no .test files in {}", dir.display());
    let names = |files: &[PathBuf]| -> Vec<String> {
        files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect()
    };
    let all_names = names(&all);
    let filter: Vec<String> = std::env::var("PERISCOPE_PROMQLTEST_FILES")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let files: Vec<PathBuf> = all
        .iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            filter.is_empty() || filter.iter().any(|f| n.contains(f.as_str()))
        })
        .cloned()
        .collect();
    assert!(!files.is_empty(), "PERISCOPE_PROMQLTEST_FILES={filter:?} matches no file");

    let known_text = std::fs::read_to_string(KNOWN_FAILURES).unwrap_or_default();
    let known = KnownFailures::parse("promqltest-known-failures.txt", &known_text).unwrap_or_else(|e| panic!("{e}"));
    let verbose = env_flag("PERISCOPE_PROMQLTEST_VERBOSE");

    let started = std::time::Instant::now();
    let results = run_all(&files);
    let mut reports = Vec::new();
    let mut script_errors = Vec::new();
    for (path, r) in files.iter().zip(results) {
        match r {
            Ok(r) => reports.push(r),
            Err(e) => script_errors.push(format!("{}: {e}", path.display())),
        }
    }

    let (mut passed, mut failed, mut failed_nh, mut listed) = (0, 0, 0, 0);
    for r in &reports {
        let l = known.listed_in(&r.file);
        eprintln!(
            "{}: {} passed, {} failed ({} native-histogram), {} listed",
            r.file,
            r.passed(),
            r.failed(),
            r.failed_native_histogram(),
            l
        );
        passed += r.passed();
        failed += r.failed();
        failed_nh += r.failed_native_histogram();
        listed += l;
        if verbose {
            let nh = r.evals.iter().filter(|e| e.native_histogram).count();
            eprintln!("  {} evals, {nh} native-histogram", r.evals.len());
            for e in r.evals.iter().filter(|e| e.failure.is_some()) {
                let tag = if e.native_histogram { " [native histogram]" } else { "" };
                eprintln!("  {}:{}{tag} {} — {}", r.file, e.line, e.query, e.failure.as_deref().unwrap_or(""));
            }
        }
    }
    eprintln!(
        "total: {passed} passed, {failed} failed ({failed_nh} native-histogram), {listed} listed, {} files in {:.1?}",
        reports.len(),
        started.elapsed()
    );
    for e in &script_errors {
        eprintln!("SCRIPT PARSE ERROR (a runner bug or a malformed file): {e}");
    }

    if env_flag("PERISCOPE_BLESS") {
        let blessed = known.blessed(&reports);
        std::fs::write(KNOWN_FAILURES, blessed.render()).unwrap();
        eprintln!("blessed {KNOWN_FAILURES}: {} entries", blessed.entries.len());
        assert!(script_errors.is_empty(), "{} files do not parse", script_errors.len());
        return;
    }

    let problems = known.check(&reports, &all_names);
    const SHOWN: usize = 100;
    for p in problems.iter().take(SHOWN) {
        eprintln!("{p}");
    }
    if problems.len() > SHOWN {
        eprintln!("... and {} more (PERISCOPE_PROMQLTEST_VERBOSE=1 lists every failure)", problems.len() - SHOWN);
    }
    assert!(script_errors.is_empty(), "{} files do not parse", script_errors.len());
    assert!(
        problems.is_empty(),
        "{} differences from promqltest-known-failures.txt (fix them, or run with PERISCOPE_BLESS=1 to rewrite the list)",
        problems.len()
    );
}

/// Queries with absurd ranges, steps, offsets and times get a result or an error, never a
/// panic, an overflow or a huge allocation.
#[test]
fn hostile_queries_fail_cleanly() {
    use periscope_model::{Labels, Sample, TenantId};
    use periscope_promql::{CancelToken, Engine, EngineOptions};
    use periscope_testkit::MemStore;

    let mut store = MemStore::new();
    let labels = Labels::from_pairs([("__name__", "up"), ("job", "a")]).unwrap();
    for i in 0..100 {
        store.add(&labels, Sample::new(i * 15_000, 1.0));
    }
    let engine = Engine::new(EngineOptions { max_samples: 100_000, ..EngineOptions::default() });
    let tenant = TenantId::default_tenant();
    let cancel = CancelToken::new();
    let mut parsed = 0;
    for q in [
        "rate(up[100y:1ms])",
        "max_over_time(up[1000y])",
        "up @ 9223372036854775",
        "up @ -9223372036854775",
        "up offset 100000y",
        "up offset -100000y",
        "sum_over_time(up[5m] @ 9223372036854775 offset -100000y)",
        "count_over_time(up[1ms:1ms])",
        "timestamp(up @ -1e15)",
        "predict_linear(up[5m], 1e308)",
        "topk(9223372036854775807, up)",
        "quantile(NaN, up)",
        "label_replace(up, \"a\", \"$999\", \"job\", \"(.*)\")",
    ] {
        let Ok(expr) = Engine::parse(q) else { continue };
        parsed += 1;
        let _ = engine.instant(&store, &tenant, &expr, 1_500_000, &cancel);
        if expr.value_type() != periscope_promql::promql_parser::parser::value::ValueType::Matrix {
            let _ = engine.range(&store, &tenant, &expr, 0, 3_000_000, 15_000, &cancel);
        }
    }
    assert!(parsed >= 10, "only {parsed} of the hostile queries parse");
    // Far more steps than samples a query may hold: refused before anything is allocated.
    let expr = Engine::parse("up").unwrap();
    let err = engine.range(&store, &tenant, &expr, 0, i64::MAX / 2, 1, &cancel).unwrap_err();
    assert_eq!(err.error_type(), "execution", "{err}");
}

mod fuzz {
    use periscope_model::{Labels, Sample, TenantId};
    use periscope_promql::{CancelToken, Engine, EngineOptions};
    use periscope_testkit::MemStore;
    use proptest::prelude::*;

    const SEEDS: &[&str] = &[
        r#"sum by (job) (rate(http_requests_total{job=~"a.*"}[5m] offset 1m))"#,
        r#"histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m] smoothed)))"#,
        r#"info(up, {data=~".*"}) or label_replace(up, "a", "$1", "job", "(.*)")"#,
        r#"max_over_time(up[26m+4m:20*500ms] @ start()) / on(job) group_left(x) vector(1)"#,
        r#"up offset -min_of(step(), 1s)^0 + count_values("v", topk(2, up))"#,
        r#"{"my.metric", a="b"} unless quantile without (x) (0.5, up) > bool 1"#,
    ];

    fn store() -> MemStore {
        let mut s = MemStore::new();
        for (i, job) in ["a", "b"].iter().enumerate() {
            let labels = Labels::from_pairs([("__name__", "up".to_string()), ("job", job.to_string())]).unwrap();
            for k in 0..40 {
                s.add(&labels, Sample::new(k * 15_000, (k as usize * (i + 1)) as f64));
            }
        }
        s
    }

    /// Parses `q` and, if it parses, evaluates it as an instant and a range query: any result
    /// or error is fine, a panic is not.
    fn exercise(store: &MemStore, q: &str) {
        let engine = Engine::new(EngineOptions { max_samples: 50_000, ..EngineOptions::default() });
        let tenant = TenantId::default_tenant();
        let cancel = CancelToken::new();
        if let Ok(expr) = Engine::parse(q) {
            let _ = engine.instant_with_source(store, &tenant, &expr, q, 300_000, &cancel);
            let _ = engine.range_with_source(store, &tenant, &expr, q, 0, 600_000, 30_000, &cancel);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Any text of PromQL-ish characters.
        #[test]
        fn arbitrary_text_never_panics(q in r#"[a-z_{}\[\]()"'`=~!,:@+\-*/%^<> .0-9\\#\n]{0,60}"#) {
            exercise(&store(), &q);
        }

        /// Valid queries with bytes inserted, deleted or replaced.
        #[test]
        fn mutated_queries_never_panic(
            seed in 0..SEEDS.len(),
            edits in proptest::collection::vec((0usize..200, 0u8..4, proptest::char::range(' ', '~')), 1..6),
        ) {
            let mut q: Vec<char> = SEEDS[seed].chars().collect();
            for (pos, op, c) in edits {
                let at = pos % (q.len() + 1);
                match op {
                    0 => q.insert(at, c),
                    1 if at < q.len() => { q.remove(at); }
                    2 if at < q.len() => q[at] = c,
                    _ => q.insert(at, ['"', '[', '(', '{', '\\'][pos % 5]),
                }
            }
            let q: String = q.into_iter().collect();
            exercise(&store(), &q);
        }
    }

    #[test]
    fn seeds_parse() {
        for q in SEEDS {
            assert!(Engine::parse(q).is_ok(), "{q} does not parse");
        }
    }
}
