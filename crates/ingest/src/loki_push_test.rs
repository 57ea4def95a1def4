#![allow(clippy::unwrap_used)]

use super::*;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied()).unwrap()
}

#[test]
fn json_push_with_structured_metadata() {
    let body = br#"{"streams":[
        {"stream":{"job":"api","env":"prod"},"values":[
            ["1700000000000000001","GET /users 200",{"trace_id":"0af7651916cd43dd8448eb211c80319c"}],
            ["1700000000000000002","GET /users 500"]]},
        {"stream":{"job":"db"},"values":[]}]}"#;
    let b = decode_loki_push_json(body).unwrap();
    assert_eq!(b.streams.len(), 2);
    assert_eq!(b.streams[0].labels, labels(&[("env", "prod"), ("job", "api")]));
    let e = &b.streams[0].entries;
    assert_eq!((e[0].ts_ns, e[0].line.as_str()), (1_700_000_000_000_000_001, "GET /users 200"));
    assert_eq!(e[0].metadata("trace_id"), Some("0af7651916cd43dd8448eb211c80319c"));
    assert!(e[1].metadata.is_empty());
    assert_eq!(b.entries(), 2);
}

#[test]
fn bad_json_pushes_are_errors_naming_the_entry() {
    for (body, want) in [
        (
            &br#"{"streams":[{"stream":{"job":"a"},"values":[[1700000000000000000,"x"]]}]}"#[..],
            "stream 0 entry 0: the timestamp",
        ),
        (br#"{"streams":[{"stream":{"job":"a"},"values":[["17x","x"]]}]}"#, "not an integer"),
        (br#"{"streams":[{"stream":{"job":"a"},"values":[["1",5]]}]}"#, "the line must be a string"),
        (br#"{"streams":[{"stream":{"job":"a"},"values":[["1","x",{"k":1}]]}]}"#, "structured metadata \"k\""),
        (br#"{"streams":[{"stream":{},"values":[]}]}"#, "at least one label"),
        (br#"{"streams":[{"stream":{"a-b":"x"},"values":[]}]}"#, "invalid label name"),
        (br#"{"streams":"#, "loghttp.PushRequest"),
    ] {
        let e = decode_loki_push_json(body).unwrap_err().to_string();
        assert!(e.contains(want), "{want:?} not in {e:?}");
    }
}

#[test]
fn protobuf_round_trip() {
    let batch = LogBatch {
        streams: vec![LogStream {
            labels: labels(&[("job", "api"), ("path", "C:\\logs \"x\"\n")]),
            entries: vec![
                LogEntry {
                    ts_ns: 1_700_000_000_123_456_789,
                    line: "héllo".into(),
                    metadata: vec![("trace_id".into(), "abc".into()), ("level".into(), "info".into())],
                },
                LogEntry { ts_ns: 5, line: String::new(), metadata: vec![] },
            ],
        }],
    };
    let pb = encode_loki_push_proto(&batch);
    assert_eq!(decode_loki_push_proto(&pb).unwrap(), batch);
    // A line that is not UTF-8.
    let mut bad = batch.clone();
    bad.streams[0].entries[0].line = "\u{1}xyz".into();
    let mut pb = encode_loki_push_proto(&bad);
    let i = pb.windows(4).position(|w| w == b"\x01xyz").unwrap();
    pb[i] = 0xff;
    let e = decode_loki_push_proto(&pb).unwrap_err().to_string();
    assert!(e.contains("line of stream 0 entry 0 is not valid UTF-8"), "{e}");
}

#[test]
fn stream_labels_parse_as_loki_parses_them() {
    assert_eq!(
        parse_stream_labels(r#"{job="api", msg="a\"b\\c\n\u00e9\x41", raw=`x\y`}"#).unwrap(),
        labels(&[("job", "api"), ("msg", "a\"b\\c\né\u{41}"), ("raw", "x\\y")])
    );
    assert_eq!(parse_stream_labels(" { job = \"a\" , } ").unwrap(), labels(&[("job", "a")]));
    for (bad, why) in [
        ("{foo}", "col 5: syntax error: unexpected rbrace, expecting =, !=, =~ or !~"),
        (r#"{a=~"x"}"#, "only = matchers"),
        ("{}", "at least one regexp or equality matcher"),
        (r#"{1a="x"}"#, "col 2: syntax error"),
        (r#"{a="x}"#, "unterminated string"),
        (r#"{a="x" b="y"}"#, "expecting } or ,"),
        (r#"job="x""#, "expecting {"),
        (r#"{a="x",a="y"}"#, "duplicate"),
        (r#"{a="\q"}"#, "unknown escape"),
    ] {
        let e = parse_stream_labels(bad).unwrap_err().to_string();
        assert!(e.to_lowercase().contains(&why.to_lowercase()), "{bad}: {why:?} not in {e:?}");
    }
}

proptest::proptest! {
    #[test]
    fn garbage_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), s in ".{0,40}") {
        let _ = decode_loki_push_proto(&body);
        let _ = decode_loki_push_json(&body);
        let _ = parse_stream_labels(&s);
        let _ = unquote_go_string(&s);
    }
}
