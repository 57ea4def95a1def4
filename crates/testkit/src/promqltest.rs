//! A runner for Prometheus's PromQL test scripts (`promql/promqltest/testdata/*.test`), as
//! specified in `shared/peer-tests/promql/FORMAT.md`.
//!
//! Pipeline: [`parse_script`] turns a file into [`Command`]s (series descriptions are expanded
//! here; queries stay text), [`Runner::run_script`] executes them in order over a fresh
//! [`crate::MemStore`] and gives one [`EvalReport`] per eval, and [`KnownFailures`] compares
//! the reports with the checked-in list of evals known to fail.
//!
//! What Periscope cannot do is classified, not hidden: native-histogram samples are parsed but
//! not stored, and evals touching them are flagged `native_histogram` (their failures are
//! reported separately and never listed); `@st` start-timestamp lines are parsed and ignored.

mod exec;
mod known;
mod script;
mod series;

pub use exec::{at_rewrite, float_eq, EvalReport, FileReport, Runner, MAX_SAMPLES};
pub use known::KnownFailures;
pub use script::{parse_script, Command, EvalCmd, EvalKind, ExpectedSeries, LoadCmd, RangeSpec, Script, TextMatch};
pub use series::{
    parse_duration, parse_go_number, parse_labels_prefix, parse_series_desc, parse_values, unquote, CounterResetHint,
    HistogramDesc, SeqValue,
};

use crate::TestkitError;
use std::path::{Path, PathBuf};

/// The `*.test` files of `dir`, sorted by name.
pub fn test_files(dir: &Path) -> Result<Vec<PathBuf>, TestkitError> {
    let io = |source| TestkitError::Io { path: dir.to_path_buf(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "test") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads, parses and runs one file.
pub fn run_file(runner: &Runner, path: &Path) -> Result<FileReport, TestkitError> {
    let text = std::fs::read_to_string(path).map_err(|source| TestkitError::Io { path: path.to_path_buf(), source })?;
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let script = parse_script(&name, &text)?;
    Ok(runner.run_script(&script))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use periscope_model::{is_stale_nan, Labels};

    fn floats(s: &str) -> Vec<Option<f64>> {
        parse_values(s)
            .unwrap()
            .into_iter()
            .map(|v| match v {
                SeqValue::Omitted => None,
                SeqValue::Float(f) => Some(f),
                SeqValue::Histogram(_) => panic!("unexpected histogram in {s}"),
            })
            .collect()
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    #[track_caller]
    fn check_values(s: &str, want: &[Option<f64>]) {
        assert_eq!(floats(s), want, "{s}");
    }

    #[test]
    fn series_items_expand() {
        let s = |v: f64| Some(v);
        check_values("0+10x10", &(0..=10).map(|i| s(i as f64 * 10.0)).collect::<Vec<_>>());
        check_values("1 _x3 5", &[s(1.0), None, None, None, s(5.0)]);
        check_values("-2+1x3", &[s(-2.0), s(-1.0), s(0.0), s(1.0)]);
        check_values("10-2x3", &[s(10.0), s(8.0), s(6.0), s(4.0)]);
        check_values("1x2", &[s(1.0), s(1.0), s(1.0)]);
        check_values("_ _x0 _x2", &[None, None, None]);
        check_values(
            "+2 .5 1e3 1e3x1 1.5e-3 1_000 2_000.5",
            &[s(2.0), s(0.5), s(1000.0), s(1000.0), s(1000.0), s(0.0015), s(1000.0), s(2000.5)],
        );
        check_values("Inf -Inf +inf", &[s(f64::INFINITY), s(f64::NEG_INFINITY), s(f64::INFINITY)]);
        check_values("1-1e-1x1", &[s(1.0), s(0.9)]);
        let nans = floats("NaN -NaN nan");
        assert!(nans.iter().all(|v| v.is_some_and(f64::is_nan)));
        let stale = parse_values("1 stale 2").unwrap();
        assert!(matches!(stale[1], SeqValue::Float(f) if is_stale_nan(f)));
        // Repeated addition, as Prometheus computes it (not v + i*d).
        let v = floats("0+0.1x3");
        assert_eq!(v[3], Some(0.1 + 0.1 + 0.1));
        for bad in ["1+", "1+2", "x3", "1x", "1_", "_1", "1__0", "0+1x-1", "abc", "1xx2", "1+2x3+4"] {
            assert!(parse_values(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn histogram_items() {
        let v = parse_values("{{schema:1 sum:3 count:22 buckets:[5 10 7]}}x2 1").unwrap();
        assert_eq!(v.len(), 4);
        let SeqValue::Histogram(h) = &v[0] else { panic!("{v:?}") };
        assert_eq!((h.h.schema, h.h.sum, h.h.count), (1, 3.0, 22.0));
        assert_eq!(h.h.positive_buckets, vec![5.0, 10.0, 7.0]);
        assert_eq!(h.hint, None);
        assert_eq!(v[3], SeqValue::Float(1.0));

        let v = parse_values("{{schema:0 sum:1 count:1}}+{{sum:2 count:2 counter_reset_hint:gauge}}x4").unwrap();
        assert_eq!(v.len(), 5);
        let SeqValue::Histogram(h) = &v[4] else { panic!() };
        assert_eq!((h.h.sum, h.h.count), (9.0, 9.0));
        let v = parse_values(
            "{{schema:-53 sum:1 custom_values:[5 10] buckets:[1] }}-{{schema:-53 custom_values:[5 10] count:1}}x1 _",
        )
        .unwrap();
        assert_eq!(v.len(), 3);
        let SeqValue::Histogram(h) = &v[0] else { panic!() };
        assert_eq!((h.h.schema, h.h.custom_values.clone()), (-53, vec![5.0, 10.0]));
        let v = parse_values(
            "{{schema:0 sum:5 count:4 z_bucket:1 z_bucket_w:0.001 buckets:[1 2] n_buckets:[1] offset:-1 n_offset:2 \
             counter_reset_hint:not_reset}}",
        )
        .unwrap();
        let SeqValue::Histogram(h) = &v[0] else { panic!() };
        assert_eq!(h.h.zero_threshold, 0.001);
        assert_eq!(h.h.positive_spans[0].offset, -1);
        assert_eq!(h.h.negative_spans[0].offset, 2);
        assert_eq!(h.hint, Some(CounterResetHint::NotReset));
        assert_eq!(parse_values("{{}}").unwrap().len(), 1);
        for bad in ["{{sum:1 sum:2}}", "{{foo:1}}", "{{sum:1", "{{sum:1}}+{{sum:1}}", "{{counter_reset_hint:x}}"] {
            assert!(parse_values(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn series_labels() {
        let (l, v) = parse_series_desc(r#"http_requests{job="api", instance='0', group=`canary`} 0+10x2"#).unwrap();
        assert_eq!(l, labels(&[("__name__", "http_requests"), ("job", "api"), ("instance", "0"), ("group", "canary")]));
        assert_eq!(v.len(), 3);
        assert_eq!(parse_series_desc("{} 5").unwrap().0, Labels::empty());
        assert_eq!(parse_series_desc("metric 1").unwrap().0, labels(&[("__name__", "metric")]));
        assert_eq!(parse_series_desc("metric{} 1").unwrap().0, labels(&[("__name__", "metric")]));
        assert_eq!(
            parse_series_desc(r#"{__name__="a", b="c",} 1"#).unwrap().0,
            labels(&[("__name__", "a"), ("b", "c")])
        );
        assert_eq!(
            parse_series_desc(r#"{"my.metric", "a.b"="x"} 1"#).unwrap().0,
            labels(&[("__name__", "my.metric"), ("a.b", "x")])
        );
        assert_eq!(
            parse_series_desc(r#"m{a="q\"\\\n\x41\u00e9\101", b=`raw\n`} 1"#).unwrap().0,
            labels(&[("__name__", "m"), ("a", "q\"\\\nAéA"), ("b", "raw\\n")])
        );
        assert_eq!(
            parse_series_desc("hist_counter {{schema:0 count:1}}x1").unwrap(),
            (labels(&[("__name__", "hist_counter")]), parse_values("{{schema:0 count:1}}x1").unwrap())
        );
        for bad in [
            r#"m{a="1", a="2"} 1"#,
            r#"m{__name__="x"} 1"#,
            r#"m{a!="1"} 1"#,
            r#"m{a="1" 1"#,
            r#"m{a="1\q"} 1"#,
            "1metric 1",
            r#"m{a="1"}x 1"#,
        ] {
            assert!(parse_series_desc(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn durations_and_numbers() {
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("5m"), Ok(300_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("10s53ms"), Ok(10_053));
        assert_eq!(parse_duration("1y1w1d"), Ok((365 + 7 + 1) * 86_400_000));
        for bad in ["", "5", "1m1h", "1m1m", "-1m", "1.5m", "5x"] {
            assert!(parse_duration(bad).is_err(), "{bad} should not parse");
        }
        let n = |s: &str| parse_go_number(s);
        assert_eq!(n("3000"), Some(3000.0));
        assert_eq!(n("-5"), Some(-5.0));
        assert_eq!(n("0x10"), Some(16.0));
        assert_eq!(n("010"), Some(8.0));
        assert_eq!(n("08"), Some(8.0));
        assert_eq!(n("0b11"), Some(3.0));
        assert_eq!(n("0.001"), Some(0.001));
        assert_eq!(n("1e3"), Some(1000.0));
        assert_eq!(n("1_000"), Some(1000.0));
        assert_eq!(n("+Inf"), Some(f64::INFINITY));
        assert_eq!(n("-Inf"), Some(f64::NEG_INFINITY));
        assert!(n("NaN").is_some_and(f64::is_nan));
        for not in ["{} 5", "foo", "1 2", "-NaN", "", "1x2"] {
            assert_eq!(n(not), None, "{not}");
        }
        assert_eq!(unquote("`Foo`").unwrap(), "Foo");
        assert_eq!(unquote(r#"" Foo ""#).unwrap(), " Foo ");
        assert!(unquote(r#""a" b"#).is_err());
    }

    fn script(text: &str) -> Script {
        parse_script("t.test", text).unwrap()
    }

    fn evals(s: &Script) -> Vec<&EvalCmd> {
        s.commands
            .iter()
            .filter_map(|c| match c {
                Command::Eval(e) => Some(&**e),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn commands_and_headers() {
        let s = script(
            "# comment\nload 5m\n  a{x=\"1\"} 0+1x2\n  a{x=\"1\"} 7\n  b 1\n\nload_with_nhcb 1m\n  c_bucket{le=\"1\"} 1\n\n\
             clear\n\neval instant at 50m sum by (x) (a)\n  {x=\"1\"} 7\n\n\
             eval range from 0 to 10m step 5m  a  +  on() b\n  {x=\"1\"} 1 2 _\n\n\
             eval_fail instant at 0 -{job=\"api\"}\n\neval_ordered instant at 1m sort(a)\n\n\
             eval_warn range from 0 to 1m step 1m a\n\neval_info instant at 1s a\n",
        );
        assert_eq!(s.commands.len(), 9);
        let Command::Load(l) = &s.commands[0] else { panic!() };
        assert_eq!((l.line, l.interval_ms, l.with_nhcb, l.series.len()), (2, 300_000, false, 2));
        assert_eq!(l.series[0].1, vec![SeqValue::Float(7.0)], "a later line replaces the same label set");
        let Command::Load(l) = &s.commands[1] else { panic!() };
        assert!(l.with_nhcb);
        assert!(matches!(s.commands[2], Command::Clear));
        let e = evals(&s);
        assert_eq!(
            (e[0].line, e[0].query.as_str(), e[0].kind),
            (12, "sum by (x) (a)", EvalKind::Instant { at: 3_000_000 })
        );
        assert_eq!(e[0].expected[0].labels, labels(&[("x", "1")]));
        assert_eq!(e[1].query, "a  +  on() b");
        assert_eq!(e[1].kind, EvalKind::Range { start: 0, end: 600_000, step: 300_000 });
        assert_eq!(e[1].expected[0].values.len(), 3);
        assert!(e[2].fail && e[2].fail_checks.is_empty());
        assert!(e[3].ordered);
        assert!(e[4].warn_required);
        assert!(e[5].info_required && e[5].kind == EvalKind::Instant { at: 1000 });

        for bad in [
            "foo\n",
            "load\n",
            "load 5x\n",
            "eval instant at 5m\n",
            "eval instant 5m a\n",
            "eval range from 10m to 0 step 1m a\n",
            "eval_ordered range from 0 to 1m step 1m a\n",
            "eval instant at 1m a\n  a 1 2\n",
            "eval instant at 1m a\n  expect bogus\n",
            "eval instant at 1m a\n  expect warn\n  expect no_warn\n",
            "eval instant at 1m a\n  expect info\n  expect no_info\n",
            "eval instant at 1m a\n  expect fail\n  expect fail\n",
            "eval instant at 1m a\n  expect warn regex: (\n",
            "eval instant at 1m a\n  expect string foo\n",
            "load 1m\n  a{b=\"c\"}@st 1m 2m\n  a{b=\"c\"} 1\n",
            "load 1m\n  a{b=\"c\"}@st 1m\n  a{b=\"d\"} 1\n",
            "load 1m\n  a@st 1m\n",
        ] {
            assert!(parse_script("t.test", bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn expectation_lines() {
        let s = script(
            "eval instant at 1m foo\n  expect warn msg: PromQL warning: x (1:1)\n  expect warn regex: y\\s\\d\n  \
             expect no_info\n  expect ordered\n  {a=\"1\"} 1\n  {a=\"2\"} stale\n\n\
             eval instant at 1m bar\n  expect fail regex:many-to-many\n\n\
             eval instant at 1m baz\n  expect info\n  expect fail msg: invalid label name \"a\\xc5z\"\n\n\
             eval instant at 1m some_metric[1m]\n  expect range vector from 10s to 1m step 10s\n  some_metric 2 3 4 5 6\n\n\
             eval instant at 50m (\"Foo\")\n  expect string `Foo`\n\n\
             eval instant at 0 1\n  1\n  clear\n",
        );
        let e = evals(&s);
        assert_eq!(e.len(), 6);
        assert!(matches!(s.commands.last(), Some(Command::Clear)), "a scalar line ends its block");
        assert!(e[0].warn.len() == 2 && e[0].no_info && e[0].ordered && !e[0].fail);
        assert!(e[0].warn[0].matches("PromQL warning: x (1:1)"));
        assert!(!e[0].warn[0].matches("PromQL warning: x (1:2)"));
        assert!(e[0].warn[1].matches("PromQL warning: y 7 (1:1)"), "regexes are unanchored");
        assert_eq!((e[0].expected[0].pos, e[0].expected[1].pos), (1, 2));
        assert!(e[1].fail && e[1].fail_checks[0].matches("found many-to-many matching"));
        assert_eq!(e[2].info.len(), 1);
        assert!(e[2].info[0].matches("anything"));
        assert!(e[2].fail_checks[0].matches("invalid label name \"a\\xc5z\""));
        assert_eq!(e[3].range_vector, Some(RangeSpec { start: 10_000, end: 60_000, step: 10_000 }));
        assert_eq!(e[3].eval_time(), Some(60_000));
        assert_eq!(e[3].expected[0].values.len(), 5);
        assert_eq!(e[4].expected_string.as_deref(), Some("Foo"));
        assert_eq!(e[5].expected_scalar, Some(1.0));
        assert!(parse_script("t.test", "eval instant at 0 1\n  1\n  2\n").is_err());

        // A comment line ends a block like an empty line does.
        let s = script("load 1m\n  a 1\n# c\n  \neval instant at 0 a\n  a 1\n  # c\n\neval_fail instant at 0 a\n  expected_fail_message boom\n");
        let e = evals(&s);
        assert!(matches!(&e[1].fail_checks[0], TextMatch::Exact(m) if m == "boom"));
        assert!(parse_script("t.test", "load 1m\n  a 1\n# c\n  b 1\n").is_err());
    }

    #[test]
    fn start_timestamp_lines_are_checked_and_ignored() {
        let s = script(
            "load 1m\n  cumulative{type=\"st\"}@st       _ _ -30s-1mx2 -1m-1mx2 *\n  cumulative{type=\"st\"} _ _ 0+60x6\n  \
             d{type=\"gcp\"}@st _ _ -59999msx2\n  d{type=\"gcp\"} _ _ 60x2\n  @st 1m\n  e 1\n",
        );
        let Command::Load(l) = &s.commands[0] else { panic!() };
        assert_eq!(l.series.len(), 3);
    }

    #[test]
    fn float_equality() {
        use periscope_model::STALE_NAN;
        assert!(float_eq(1.0, 1.0 + 1e-9));
        assert!(!float_eq(1.0, 1.0001));
        assert!(float_eq(f64::NAN, -f64::NAN));
        assert!(!float_eq(f64::NAN, STALE_NAN));
        assert!(float_eq(STALE_NAN, STALE_NAN));
        assert!(float_eq(f64::INFINITY, f64::INFINITY));
        assert!(!float_eq(f64::INFINITY, f64::NEG_INFINITY));
        assert!(!float_eq(0.0, 1e-300), "an expected zero needs an exact zero");
        assert!(float_eq(0.0, -0.0));
        assert!(float_eq(1e308, 1e308 * (1.0 + 1e-9)));
    }

    #[test]
    fn at_modifier_rewrite() {
        use periscope_promql::promql_parser::parser::{AtModifier, Expr};
        use periscope_promql::Engine;
        let q = |s: &str| Engine::parse(s).unwrap();
        let t = 3_000_000;
        let r =
            at_rewrite(&q("sum(rate(a[5m])) + b @ 100 + sum_over_time(c[10m:1m]) + last_over_time(d[10m:1m] @ 5)"), t)
                .unwrap()
                .to_string();
        assert!(r.contains("a[5m] @ 3000.000"), "{r}");
        assert!(r.contains("b @ 100.000"), "{r}");
        assert!(r.contains("c[10m:1m] @ 3000.000"), "{r}");
        assert!(r.contains("d[10m:1m] @ 5.000"), "{r}");
        let r = at_rewrite(&q("max_over_time(x[5m:1m]) - y offset 1m"), 5).unwrap().to_string();
        assert!(r.contains("max_over_time(x[5m:1m] @ 0.005)"), "selectors inside subqueries stay as they are: {r}");
        assert!(r.contains("y @ 0.005 offset 1m"), "{r}");
        // Negative times (the rewritten queries run at -10t too; `@` may be before the epoch).
        let Some(Expr::VectorSelector(vs)) = at_rewrite(&q("y"), -5) else { panic!() };
        assert_eq!(vs.at, Some(AtModifier::At(std::time::UNIX_EPOCH - std::time::Duration::from_millis(5))));
        assert!(at_rewrite(&q("time() - a"), t).is_none());
        assert!(at_rewrite(&q("timestamp(a)"), t).is_none());
        assert!(at_rewrite(&q("max_over_time(timestamp(a)[5m:1m])"), t).is_some());
    }

    #[test]
    fn known_failures_list() {
        let text = "# header\n# more\n\nfunctions.test:10 old reason\nfunctions.test:20\n# later comment\nat_modifier.test:5 x\n";
        let k = KnownFailures::parse("k.txt", text).unwrap();
        assert_eq!(k.entries.len(), 3);
        assert_eq!(k.listed_in("functions.test"), 2);
        let report = |line, nh, failure: Option<&str>| EvalReport {
            line,
            query: "q".into(),
            native_histogram: nh,
            failure: failure.map(str::to_string),
        };
        let reports = vec![FileReport {
            file: "functions.test".into(),
            evals: vec![
                report(10, false, Some("still failing")),
                report(20, false, None),
                report(30, false, Some("new\nsecond line")),
                report(40, true, Some("histograms")),
            ],
        }];
        let all = vec!["functions.test".to_string(), "at_modifier.test".to_string()];
        let problems = k.check(&reports, &all);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("functions.test:20 is listed but passes"));
        assert!(problems[1].starts_with("functions.test:30 fails and is not listed"));
        assert_eq!(k.check(&reports, &all[..1]).len(), 3, "a listed file that does not exist is flagged");

        let blessed = k.blessed(&reports);
        assert_eq!(
            blessed.render(),
            "# header\n# more\n\nat_modifier.test:5 x\nfunctions.test:10 old reason\nfunctions.test:30 new\n"
        );
        assert!(blessed.check(&reports, &all).is_empty());
        assert!(KnownFailures::parse("k", "functions.test 1\n").is_err());
        assert!(KnownFailures::parse("k", "f.test:1 a\nf.test:1 b\n").is_err());
        let long = "x".repeat(400);
        let r = vec![FileReport { file: "f.test".into(), evals: vec![report(1, false, Some(&long))] }];
        let line = KnownFailures::default().blessed(&r).render();
        assert!(line.chars().count() < 170, "{line}");
    }
}
