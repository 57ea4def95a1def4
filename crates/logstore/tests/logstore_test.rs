#![allow(clippy::unwrap_used)]
//! The log engine through the `LogStore` trait: append, select in both directions with
//! limits and line filters, Loki's acceptance rules, and the same answers after a restart.

use periscope_logstore::{LogDb, LogDbOptions};
use periscope_model::{Labels, LogBatch, LogEntry, LogStream, MatchOp, Matcher, TenantId};
use periscope_storage::{Direction, LineFilter, LogQuery, LogRejectReason, LogStore};

const S: i64 = 1_000_000_000;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64
}

fn stream(job: &str, entries: &[(i64, &str)]) -> LogStream {
    LogStream {
        labels: Labels::from_pairs([("job", job), ("env", "prod")]).unwrap(),
        entries: entries.iter().map(|(t, l)| LogEntry { ts_ns: *t, line: l.to_string(), metadata: vec![] }).collect(),
    }
}

#[test]
fn entries_are_stored_selected_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let t = TenantId::default_tenant();
    let opts = LogDbOptions { max_streams_per_tenant: 2, max_line_bytes: 20, ..Default::default() };
    let db = LogDb::open(dir.path(), opts.clone()).unwrap();
    let t0 = now() - 3600 * S;
    let batch = LogBatch {
        streams: vec![
            stream("api", &[(t0, "GET /a 200"), (t0 + 2 * S, "GET /b 500 error"), (t0 + S, "GET /c 200")]),
            stream("db", &[(t0 + 3 * S, "slow query error")]),
        ],
    };
    let r = db.append_logs(&t, &batch).unwrap();
    assert_eq!((r.entries_appended, r.streams_created), (4, 2));
    // Duplicates, refusals: too long, too far behind, in the future, a third stream.
    let r = db
        .append_logs(
            &t,
            &LogBatch {
                streams: vec![
                    stream(
                        "api",
                        &[(t0, "GET /a 200"), (t0 + 4 * S, "x".repeat(21).as_str()), (t0 - 2 * 3600 * S, "old")],
                    ),
                    stream("api", &[(now() + 3600 * S, "future")]),
                    stream("web", &[(t0, "new stream")]),
                ],
            },
        )
        .unwrap();
    assert_eq!((r.entries_appended, r.duplicates_ignored), (0, 1));
    let reasons: Vec<(LogRejectReason, u64)> = r.rejected.iter().map(|x| (x.0, x.1)).collect();
    assert_eq!(
        reasons,
        vec![
            (LogRejectReason::LineTooLong, 1),
            (LogRejectReason::TooOld, 1),
            (LogRejectReason::TooFarInFuture, 1),
            (LogRejectReason::StreamLimit, 1)
        ]
    );
    assert!(r.rejected[3].2.contains("Maximum active stream limit exceeded"), "{}", r.rejected[3].2);
    let check = |db: &LogDb| {
        let all = LogQuery { start_ns: t0, end_ns: t0 + 10 * S, limit: 100, ..Default::default() };
        let got = db.select_logs(&t, &all).unwrap();
        let lines: Vec<&str> = got.iter().flat_map(|s| s.entries.iter().map(|e| e.line.as_str())).collect();
        assert_eq!(lines, vec!["slow query error", "GET /b 500 error", "GET /c 200", "GET /a 200"], "newest first");
        let q = LogQuery {
            matchers: vec![Matcher::new(MatchOp::Equal, "job", "api").unwrap()],
            direction: Direction::Forward,
            limit: 2,
            ..all.clone()
        };
        let got = db.select_logs(&t, &q).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].entries.iter().map(|e| e.line.as_str()).collect::<Vec<_>>(),
            vec!["GET /a 200", "GET /c 200"]
        );
        let q = LogQuery { line_filters: vec![LineFilter::Contains("error".into())], ..all.clone() };
        let got = db.select_logs(&t, &q).unwrap();
        assert_eq!(got.iter().map(|s| s.entries.len()).sum::<usize>(), 2);
        let q = LogQuery { start_ns: t0 + S, end_ns: t0 + 2 * S, ..all.clone() };
        let got = db.select_logs(&t, &q).unwrap();
        assert_eq!(got[0].entries[0].line, "GET /c 200", "end is exclusive");
        let streams =
            db.log_streams(&t, &[Matcher::new(MatchOp::Regex, "job", "d.*").unwrap()], t0, t0 + 10 * S).unwrap();
        assert_eq!(streams, vec![Labels::from_pairs([("job", "db"), ("env", "prod")]).unwrap()]);
        assert!(db.log_streams(&t, &[], t0 + 20 * S, t0 + 30 * S).unwrap().is_empty());
    };
    check(&db);
    db.close().unwrap();
    drop(db);
    let db = LogDb::open(dir.path(), opts.clone()).unwrap();
    check(&db);
    // Into a block: the same answers, and after a restart from the block alone.
    db.maintain(true).unwrap();
    check(&db);
    let mut m = String::new();
    db.write_metrics(&mut m);
    assert!(m.contains("periscope_logs_block_entries 4\n") && m.contains("periscope_logs_head_entries 0\n"), "{m}");
    // The stream limit still counts streams that live only in blocks; a late entry within
    // the window joins its stream on read; a too-old one is still refused.
    let r = db
        .append_logs(
            &t,
            &LogBatch { streams: vec![stream("api", &[(t0 + 2 * S + 1, "late"), (t0 - 2 * 3600 * S, "old")])] },
        )
        .unwrap();
    assert_eq!(r.entries_appended, 1);
    assert_eq!(r.rejected.iter().map(|x| x.0).collect::<Vec<_>>(), vec![LogRejectReason::TooOld]);
    let r = db.append_logs(&t, &LogBatch { streams: vec![stream("web", &[(t0, "new stream")])] }).unwrap();
    assert_eq!(r.rejected[0].0, LogRejectReason::StreamLimit);
    let q =
        LogQuery { start_ns: t0, end_ns: t0 + 10 * S, direction: Direction::Forward, limit: 100, ..Default::default() };
    let lines: Vec<String> =
        db.select_logs(&t, &q).unwrap().into_iter().flat_map(|s| s.entries.into_iter().map(|e| e.line)).collect();
    assert_eq!(lines.len(), 5);
    assert!(lines.contains(&"late".to_string()));
    db.close().unwrap();
    drop(db);
    let db = LogDb::open(dir.path(), opts).unwrap();
    assert_eq!(
        db.select_logs(&t, &LogQuery { line_filters: vec![LineFilter::Contains("late".into())], ..q.clone() })
            .unwrap()
            .len(),
        1
    );
    db.maintain(true).unwrap();
    // Token filters: a needle no page holds reads no page; one that some do finds them.
    let f = |n: &str| {
        db.select_logs(&t, &LogQuery { line_filters: vec![LineFilter::Contains(n.into())], ..q.clone() })
            .unwrap()
            .iter()
            .map(|s| s.entries.len())
            .sum::<usize>()
    };
    assert_eq!(f(" 500 "), 1);
    assert_eq!(f("/c "), 1);
    assert_eq!(f("error"), 2);
    assert_eq!(f(" nowhere "), 0);
    db.close().unwrap();
}

/// Retention by size deletes the oldest log blocks.
#[test]
fn log_retention_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let t = TenantId::default_tenant();
    let t0 = now() - 3600 * S;
    let db = LogDb::open(dir.path(), LogDbOptions::default()).unwrap();
    for i in 0..3 {
        db.append_logs(&t, &LogBatch { streams: vec![stream("api", &[(t0 + i * S, &format!("line {i}"))])] }).unwrap();
        db.maintain(true).unwrap();
    }
    db.close().unwrap();
    drop(db);
    let blocks = dir.path().join("default").join("blocks");
    let sizes: Vec<u64> = std::fs::read_dir(&blocks).unwrap().flatten().map(|e| e.metadata().unwrap().len()).collect();
    assert_eq!(sizes.len(), 3);
    let total: u64 = sizes.iter().sum();
    let opts = LogDbOptions { retention_size: total - 1, ..Default::default() };
    let db = LogDb::open(dir.path(), opts).unwrap();
    db.maintain(false).unwrap();
    let q = LogQuery { start_ns: t0, end_ns: t0 + 10 * S, direction: Direction::Forward, ..Default::default() };
    let lines: Vec<String> =
        db.select_logs(&t, &q).unwrap().into_iter().flat_map(|s| s.entries.into_iter().map(|e| e.line)).collect();
    assert_eq!(lines, vec!["line 1", "line 2"], "the oldest block went");
    db.close().unwrap();
}

/// Selection by trace id, from the head and from blocks (where the page filters hold the ids).
#[test]
fn select_by_trace_id() {
    let dir = tempfile::tempdir().unwrap();
    let t = TenantId::default_tenant();
    let t0 = now() - 3600 * S;
    let db = LogDb::open(dir.path(), LogDbOptions::default()).unwrap();
    let entry = |i: i64, id: &str| LogEntry {
        ts_ns: t0 + i * S,
        line: format!("line {i}"),
        metadata: vec![("trace_id".to_string(), id.to_string())],
    };
    let batch = |from: i64| LogBatch {
        streams: vec![LogStream {
            labels: Labels::from_pairs([("job", "api")]).unwrap(),
            entries: (from..from + 4).map(|i| entry(i, if i % 2 == 0 { "aa" } else { "bb" })).collect(),
        }],
    };
    db.append_logs(&t, &batch(0)).unwrap();
    db.maintain(true).unwrap();
    db.append_logs(&t, &batch(4)).unwrap();
    let q = LogQuery {
        start_ns: t0,
        end_ns: t0 + 100 * S,
        direction: Direction::Forward,
        trace_id: Some("bb".into()),
        ..Default::default()
    };
    let lines: Vec<String> =
        db.select_logs(&t, &q).unwrap().into_iter().flat_map(|s| s.entries.into_iter().map(|e| e.line)).collect();
    assert_eq!(lines, vec!["line 1", "line 3", "line 5", "line 7"], "from the block and the head");
    let q = LogQuery { trace_id: Some("cc".into()), ..q };
    assert!(db.select_logs(&t, &q).unwrap().is_empty());
    db.close().unwrap();
}

/// A busy stream: its entries read back whole and in order, a late entry joins them, and they
/// go through a restart and into a block unchanged.
#[test]
fn busy_stream_with_a_late_entry() {
    let dir = tempfile::tempdir().unwrap();
    let t = TenantId::default_tenant();
    let t0 = now() - 3600 * S;
    let db = LogDb::open(dir.path(), LogDbOptions::default()).unwrap();
    let n = 5000i64;
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let entries: Vec<(i64, String)> = chunk.iter().map(|i| (t0 + i * 1_000_000, format!("line {i:05}"))).collect();
        let refs: Vec<(i64, &str)> = entries.iter().map(|(t, l)| (*t, l.as_str())).collect();
        db.append_logs(&t, &LogBatch { streams: vec![stream("api", &refs)] }).unwrap();
    }
    // A late entry, before the frozen pages' times end.
    db.append_logs(&t, &LogBatch { streams: vec![stream("api", &[(t0 + 1_500_000, "late")])] }).unwrap();
    let q = LogQuery { start_ns: t0, end_ns: t0 + 100 * S, direction: Direction::Forward, ..Default::default() };
    let check = |db: &LogDb| {
        let lines: Vec<String> =
            db.select_logs(&t, &q).unwrap().into_iter().flat_map(|s| s.entries.into_iter().map(|e| e.line)).collect();
        assert_eq!(lines.len(), n as usize + 1);
        assert_eq!(&lines[..4], &["line 00000", "line 00001", "late", "line 00002"]);
        assert_eq!(lines.last().map(String::as_str), Some("line 04999"));
        let win = LogQuery { start_ns: t0 + 4000 * 1_000_000, end_ns: t0 + 4002 * 1_000_000, ..q.clone() };
        let got: Vec<String> =
            db.select_logs(&t, &win).unwrap().into_iter().flat_map(|s| s.entries.into_iter().map(|e| e.line)).collect();
        assert_eq!(got, vec!["line 04000", "line 04001"]);
        assert_eq!(db.log_streams(&t, &[], t0 + 10 * 1_000_000, t0 + 11 * 1_000_000).unwrap().len(), 1);
    };
    check(&db);
    let mut m = String::new();
    db.write_metrics(&mut m);
    assert!(m.contains(&format!("periscope_logs_head_entries {}\n", n + 1)), "{m}");
    db.close().unwrap();
    drop(db);
    let db = LogDb::open(dir.path(), LogDbOptions::default()).unwrap();
    check(&db);
    db.maintain(true).unwrap();
    check(&db);
    db.close().unwrap();
    drop(db);
    let db = LogDb::open(dir.path(), LogDbOptions::default()).unwrap();
    check(&db);
    db.close().unwrap();
}

/// A damaged page is an error when read; a cut or damaged footer refuses the open. Neither
/// panics.
#[test]
fn damaged_blocks_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let t = TenantId::default_tenant();
    let t0 = now() - 3600 * S;
    let db = LogDb::open(dir.path(), LogDbOptions::default()).unwrap();
    db.append_logs(&t, &LogBatch { streams: vec![stream("api", &[(t0, "GET /a 200"), (t0 + S, "GET /b 500")])] })
        .unwrap();
    db.maintain(true).unwrap();
    db.close().unwrap();
    drop(db);
    let blocks = dir.path().join("default").join("blocks");
    let path = std::fs::read_dir(&blocks).unwrap().flatten().map(|e| e.path()).next().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[12] ^= 0xff; // inside the first page
    std::fs::write(&path, &bytes).unwrap();
    let db = LogDb::open(dir.path(), LogDbOptions::default()).unwrap();
    let q = LogQuery { start_ns: t0, end_ns: t0 + 10 * S, ..Default::default() };
    let e = db.select_logs(&t, &q).unwrap_err().to_string();
    assert!(e.contains("log block"), "{e}");
    db.close().unwrap();
    drop(db);
    for cut in [bytes.len() - 3, 10] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let e = LogDb::open(dir.path(), LogDbOptions::default()).err().unwrap();
        let chain = format!("{e}: {}", std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default());
        assert!(chain.contains("damaged"), "{chain}");
    }
}
