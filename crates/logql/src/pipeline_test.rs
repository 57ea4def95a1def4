#![allow(clippy::unwrap_used)]

use super::*;
use crate::{ast::Expr, parse};

fn pipeline(q: &str) -> Pipeline {
    match parse(q).unwrap() {
        Expr::Log(l) => Pipeline::new(&l.stages).unwrap(),
        Expr::Metric(_) => panic!("{q}"),
    }
}

fn row(line: &str) -> Row {
    Row { ts_ns: 1, line: line.into(), labels: BTreeMap::from([("app".to_string(), "api".to_string())]) }
}

fn labels(r: &Row) -> Vec<(&str, &str)> {
    r.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[test]
fn line_filters() {
    let p = pipeline(r#"{a="b"} |= "GET" != "health" |~ "5\\d\\d" |> "<_> /users/<_>""#);
    assert!(p.process(row("GET /users/1 500")).is_some());
    assert!(p.process(row("GET /health 500")).is_none());
    assert!(p.process(row("GET /users/1 200")).is_none());
    assert!(p.process(row("GET /orders/1 503")).is_none());
    let p = pipeline(r#"{a="b"} |= "x" or "y""#);
    assert!(p.process(row("y")).is_some() && p.process(row("z")).is_none());
}

#[test]
fn parsers_and_label_filters() {
    let p = pipeline(r#"{a="b"} | json | status >= 500 and duration > 1s | app_extracted="web""#);
    let r = p
        .process(row(r#"{"status":503,"duration":"1.5s","app":"web","req":{"path":"/x","ids":[1]},"ok":false}"#))
        .unwrap();
    assert_eq!(
        labels(&r),
        vec![
            ("app", "api"),
            ("app_extracted", "web"),
            ("duration", "1.5s"),
            ("ok", "false"),
            ("req_path", "/x"),
            ("status", "503")
        ]
    );
    assert!(p.process(row(r#"{"status":200,"duration":"2s","app":"web"}"#)).is_none());
    // Bad JSON: an error label, kept unless filtered.
    let p = pipeline(r#"{a="b"} | json"#);
    let r = p.process(row("not json")).unwrap();
    assert_eq!(r.labels.get(ERROR_LABEL).map(String::as_str), Some("JSONParserErr"));
    let p = pipeline(r#"{a="b"} | json | __error__="""#);
    assert!(p.process(row("not json")).is_none());
    let p = pipeline(r#"{a="b"} | json code="resp.code", first=`items[0].id`"#);
    let r = p.process(row(r#"{"resp":{"code":"E1"},"items":[{"id":7}]}"#)).unwrap();
    assert_eq!((r.labels["code"].as_str(), r.labels["first"].as_str()), ("E1", "7"));

    let p = pipeline(r#"{a="b"} | logfmt | level="error" | size > 1KB"#);
    let r = p.process(row(r#"level=error msg="disk \"full\"" size=2KB empty="#)).unwrap();
    assert_eq!(r.labels["msg"], "disk \"full\"");
    assert!(!r.labels.contains_key("empty"));
    assert!(p.process(row("level=info size=2KB")).is_none());

    let p = pipeline(r#"{a="b"} | regexp "(?P<method>\\w+) (?P<path>\\S+)" | pattern "<_> <_> <code>""#);
    let r = p.process(row("GET /x 404")).unwrap();
    assert_eq!(
        (r.labels["method"].as_str(), r.labels["path"].as_str(), r.labels["code"].as_str()),
        ("GET", "/x", "404")
    );
    // A filter on a value that is not a number: an error label, the entry kept.
    let p = pipeline(r#"{a="b"} | logfmt | n > 1"#);
    let r = p.process(row("n=abc")).unwrap();
    assert_eq!(r.labels.get(ERROR_LABEL).map(String::as_str), Some("LabelFilterErr"));
}

#[test]
fn formats_drop_keep_unpack_decolorize() {
    let p = pipeline(
        r#"{a="b"} | logfmt | line_format "{{.level}}: {{ .msg }}" | label_format lvl=level, where="{{.app}}-x" | drop msg | keep lvl, where, app"#,
    );
    let r = p.process(row("level=warn msg=slow")).unwrap();
    assert_eq!(r.line, "warn: slow");
    assert_eq!(labels(&r), vec![("app", "api"), ("lvl", "warn"), ("where", "api-x")]);
    let p = pipeline(r#"{a="b"} | unpack"#);
    let r = p.process(row(r#"{"_entry":"original line","pod":"p1"}"#)).unwrap();
    assert_eq!((r.line.as_str(), r.labels["pod"].as_str()), ("original line", "p1"));
    let p = pipeline(r#"{a="b"} | decolorize"#);
    assert_eq!(p.process(row("\u{1b}[31mred\u{1b}[0m text")).unwrap().line, "red text");
    // Template functions; an unknown one is a compile error.
    let p = pipeline(r#"{a="b"} | logfmt | line_format "{{ .level | ToUpper }} {{ __line__ | len }}""#);
    assert_eq!(p.process(row("level=warn")).unwrap().line, "WARN 10");
    let e = match parse(r#"{a="b"} | line_format "{{nosuch .x}}""#).unwrap() {
        Expr::Log(l) => Pipeline::new(&l.stages).err().unwrap(),
        Expr::Metric(_) => unreachable!(),
    };
    assert!(e.0.contains("not defined"), "{e}");
}

#[test]
fn durations_and_bytes() {
    assert_eq!(parse_go_duration("1h2m3.5s"), Some(3_723_500_000_000));
    assert_eq!(parse_go_duration("250ms"), Some(250_000_000));
    assert_eq!(parse_go_duration("x"), None);
    assert_eq!(parse_bytes("1.5KiB"), Some(1536.0));
    assert_eq!(parse_bytes("10"), Some(10.0));
}
