#![allow(clippy::unwrap_used)]

use crate::ast::*;
use crate::{parse, parse_selector};
use periscope_model::{MatchOp, Matcher};

fn log(q: &str) -> LogExpr {
    match parse(q).unwrap_or_else(|e| panic!("{q}: {e}")) {
        Expr::Log(l) => l,
        Expr::Metric(m) => panic!("{q}: a metric query {m:?}"),
    }
}

fn metric(q: &str) -> MetricExpr {
    match parse(q).unwrap_or_else(|e| panic!("{q}: {e}")) {
        Expr::Metric(m) => m,
        Expr::Log(l) => panic!("{q}: a log query {l:?}"),
    }
}

#[test]
fn selectors_and_line_filters() {
    let l = log(
        r#"{app="api", env!="dev", pod=~"api-.*", ns!~"kube.*"} |= "error" != "timeout" |~ "5\\d\\d" !~ `debug` |> "<_> GET <_>" !> "x" |= "a" or "b""#,
    );
    assert_eq!(
        l.selector,
        vec![
            Matcher::new(MatchOp::Equal, "app", "api").unwrap(),
            Matcher::new(MatchOp::NotEqual, "env", "dev").unwrap(),
            Matcher::new(MatchOp::Regex, "pod", "api-.*").unwrap(),
            Matcher::new(MatchOp::NotRegex, "ns", "kube.*").unwrap(),
        ]
    );
    let filters: Vec<(LineFilterOp, Vec<&str>)> = l
        .stages
        .iter()
        .map(|s| match s {
            Stage::LineFilter { op, values } => (*op, values.iter().map(String::as_str).collect()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        filters,
        vec![
            (LineFilterOp::Contains, vec!["error"]),
            (LineFilterOp::NotContains, vec!["timeout"]),
            (LineFilterOp::Match, vec!["5\\d\\d"]),
            (LineFilterOp::NotMatch, vec!["debug"]),
            (LineFilterOp::Pattern, vec!["<_> GET <_>"]),
            (LineFilterOp::NotPattern, vec!["x"]),
            (LineFilterOp::Contains, vec!["a", "b"]),
        ]
    );
}

#[test]
fn parsers_filters_and_formats() {
    let l = log(
        r#"{job="x"} | json | json status="response.status", ua=`headers["User-Agent"]` | logfmt --strict --keep-empty
           | regexp "(?P<method>\\w+) (?P<path>\\S+)" | pattern "<ip> - <_>" | unpack
           | status >= 400 and duration > 1.5s or size <= 20KB, method="GET"
           | (a="b" or c!="d") | line_format "{{.status}} {{.path}}"
           | label_format dst=src, msg="{{.level}}" | drop a, b="c" | keep d | decolorize | __error__="""#,
    );
    assert_eq!(l.stages.len(), 14, "{:#?}", l.stages);
    assert_eq!(l.stages[0], Stage::Json { params: vec![] });
    assert_eq!(
        l.stages[1],
        Stage::Json {
            params: vec![("status".into(), "response.status".into()), ("ua".into(), "headers[\"User-Agent\"]".into())]
        }
    );
    assert_eq!(l.stages[2], Stage::Logfmt { strict: true, keep_empty: true, params: vec![] });
    assert!(matches!(&l.stages[3], Stage::Regexp(r) if r == "(?P<method>\\w+) (?P<path>\\S+)"));
    assert_eq!(l.stages[5], Stage::Unpack);
    // `or` binds looser than `and` and `,`.
    match &l.stages[6] {
        Stage::LabelFilter(LabelFilter::Or(a, b)) => {
            assert!(matches!(**a, LabelFilter::And(..)), "{a:?}");
            match &**b {
                LabelFilter::And(x, y) => {
                    assert_eq!(
                        **x,
                        LabelFilter::Cmp { name: "size".into(), op: CmpOp::Lte, value: CmpValue::Bytes(20_000) }
                    );
                    assert_eq!(**y, LabelFilter::Str { name: "method".into(), op: StrOp::Eq, value: "GET".into() });
                }
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        l.stages[9],
        Stage::LabelFormat(vec![
            LabelFormatOp::Rename { dst: "dst".into(), src: "src".into() },
            LabelFormatOp::Template { dst: "msg".into(), template: "{{.level}}".into() },
        ])
    );
    assert_eq!(
        l.stages[10],
        Stage::Drop(vec![
            NamedLabel { name: "a".into(), matcher: None },
            NamedLabel { name: "b".into(), matcher: Some((StrOp::Eq, "c".into())) },
        ])
    );
    assert_eq!(
        l.stages[13],
        Stage::LabelFilter(LabelFilter::Str { name: "__error__".into(), op: StrOp::Eq, value: String::new() })
    );
}

#[test]
fn metric_queries() {
    match metric(r#"sum by (status) (count_over_time({job="checkout"} | json [1m]))"#) {
        MetricExpr::Vector { op: VectorOp::Sum, grouping: Some(g), inner, .. } => {
            assert_eq!(g, Grouping { without: false, labels: vec!["status".into()] });
            match *inner {
                MetricExpr::Range { op: RangeOp::CountOverTime, range, ref log, .. } => {
                    assert_eq!(range, 60_000_000_000);
                    assert_eq!(log.stages, vec![Stage::Json { params: vec![] }]);
                }
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
    match metric(
        r#"quantile_over_time(0.99, {job="api"} | logfmt | unwrap duration(latency) | __error__="" [5m] offset 1h) by (path)"#,
    ) {
        MetricExpr::Range {
            op: RangeOp::QuantileOverTime,
            param: Some(q),
            unwrap: Some(u),
            offset,
            grouping: Some(g),
            ..
        } => {
            assert_eq!(q, 0.99);
            assert_eq!((u.label.as_str(), u.conv, u.post_filters.len()), ("latency", UnwrapConv::Duration, 1));
            assert_eq!(offset, 3_600_000_000_000);
            assert_eq!(g.labels, vec!["path"]);
        }
        other => panic!("{other:?}"),
    }
    // The range right after the selector.
    assert!(matches!(metric(r#"rate({app="x"}[5m] |= "err")"#), MetricExpr::Range { op: RangeOp::Rate, .. }));
    assert!(matches!(
        metric(r#"topk(3, sum without (pod) (rate({app="x"}[1m])))"#),
        MetricExpr::Vector { op: VectorOp::Topk, param: Some(k), .. } if k == 3.0
    ));
    // Precedence: 1 + 2 * 3 ^ 2 ^ 2 and a comparison with bool.
    match metric("1 + 2 * 3 ^ 2 ^ 2") {
        MetricExpr::Binary { op: BinOp::Add, rhs, .. } => match *rhs {
            MetricExpr::Binary { op: BinOp::Mul, rhs, .. } => match *rhs {
                MetricExpr::Binary { op: BinOp::Pow, rhs, .. } => {
                    assert!(matches!(*rhs, MetricExpr::Binary { op: BinOp::Pow, .. }), "right-associative")
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    match metric(r#"sum(rate({a="b"}[1m])) / on (x) group_left (y) sum(rate({a="c"}[1m])) > bool 0.5"#) {
        MetricExpr::Binary { op: BinOp::Gt, bool_modifier: true, lhs, .. } => match *lhs {
            MetricExpr::Binary { op: BinOp::Div, matching, .. } => {
                assert_eq!(matching.on, Some((true, vec!["x".to_string()])));
                assert_eq!(matching.group, Some((true, vec!["y".to_string()])));
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    assert!(matches!(metric("vector(1)"), MetricExpr::VectorLiteral(n) if n == 1.0));
    assert!(matches!(
        metric(r#"label_replace(rate({a="b"}[1m]), "dst", "$1", "src", "(.*)")"#),
        MetricExpr::LabelReplace { .. }
    ));
    assert!(matches!(metric(r#"sum_over_time({a="b"} | unwrap bytes(size) [1h]) by (x)"#), MetricExpr::Range { .. }));
}

#[test]
fn errors_name_the_position_as_loki_does() {
    for (q, want) in [
        (r#"{app="x""#, "parse error at line 1, col 9: syntax error: unexpected end of input, expecting } or ,"),
        (r#"{app=~".*"}"#, "queries require at least one regexp or equality matcher"),
        (r#"{app}"#, "parse error at line 1, col 5: syntax error: unexpected RBrace, expecting =, !=, =~ or !~"),
        (r#"{app="x"} |= 5"#, "col 14: syntax error: unexpected NUMBER 5, expecting STRING"),
        ("rate({app=\"x\"})", "expecting ["),
        (r#"sum_over_time({app="x"}[5m])"#, "without unwrap"),
        (r#"rate({app="x"} | unwrap n [5m])"#, "with unwrap"),
        (r#"{app="x"} | unwrap n"#, "unwrap is only allowed in a range aggregation"),
        (r#"{app="x"} |~ "(""#, "invalid regexp"),
        (r#"{app="x"} | regexp "\\w+""#, "at least one named capture"),
        (r#"{a="b"} + 1"#, "binary operations need metric queries"),
        ("{a=\"b\"}\n | json |", "line 2"),
        (r#"count_over_time({a="b"}[0s])"#, "greater than 0"),
        (r#"{a="b"} | x > "1""#, "a label filter"),
        (r#"{a="\q"}"#, "unknown escape"),
        (&format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000)), "nests deeper than 64"),
        (&format!("{}1", "- ".repeat(100_000)), "nests deeper than 64"),
        (&format!(r#"{{a="b"}} | {}x="1"{}"#, "(".repeat(100_000), ")".repeat(100_000)), "nests deeper than 64"),
        (&format!("{}rate({{a=\"b\"}}[1m]){}", "sum(".repeat(10_000), ")".repeat(10_000)), "nests deeper than 64"),
    ] {
        let e = parse(q).unwrap_err().to_string();
        assert!(e.contains(want), "{q:?}: {want:?} not in {e:?}");
    }
}

/// Nesting just under the limit parses (the guard leaves room on a 2 MiB test-thread stack).
#[test]
fn deep_but_allowed_nesting() {
    assert!(parse(&format!("{}1{}", "(".repeat(60), ")".repeat(60))).is_ok());
    assert!(parse(&format!("{}rate({{a=\"b\"}}[1m]){}", "sum(".repeat(60), ")".repeat(60))).is_ok());
    assert!(parse(&format!(r#"{{a="b"}} | {}x="1"{}"#, "(".repeat(60), ")".repeat(60))).is_ok());
}

#[test]
fn selector_alone() {
    assert_eq!(parse_selector(r#"{job="a"}"#).unwrap(), vec![Matcher::new(MatchOp::Equal, "job", "a").unwrap()]);
    assert!(parse_selector(r#"{job="a"} |= "x""#).is_err());
}

proptest::proptest! {
    #[test]
    fn garbage_never_panics(s in ".{0,60}") {
        let _ = parse(&s);
        let _ = parse_selector(&s);
    }

    #[test]
    fn query_fragments_never_panic(parts in proptest::collection::vec(proptest::sample::select(vec![
        "{", "}", "(", ")", "[", "]", ",", "=", "!=", "=~", "|=", "|", "json", "logfmt", "unwrap", "x",
        "\"v\"", "5m", "1", "sum", "rate", "by", "or", "and", "offset", "10KB", "--strict", "-", "^",
    ]), 0..20)) {
        let _ = parse(&parts.join(" "));
    }
}
