#![allow(clippy::unwrap_used, clippy::print_stdout)]
//! The trace engine through the `TraceStore` trait: append, fetch by id, search by every
//! filter, services and operations, and the same answers after a restart (WAL replay).

use periscope_model::{AttrValue, Attribute, Span, SpanBatch, SpanKind, SpanOrigin, StatusCode, TenantId};
use periscope_storage::{TraceQuery, TraceStore};
use periscope_tracestore::{TraceDb, TraceDbOptions};
use std::sync::Arc;

const T0: i64 = 1_700_000_000_000_000_000;

fn origin(service: &str) -> Arc<SpanOrigin> {
    Arc::new(SpanOrigin {
        resource: vec![Attribute::str("service.name", service), Attribute::str("k8s.pod.name", format!("{service}-0"))],
        ..Default::default()
    })
}

/// A three-service trace: gateway → users → auth, the auth span failing when `fail`.
fn trace(n: u8, at: i64, fail: bool) -> Vec<Span> {
    let (gw, users, auth) = (origin("gateway"), origin("users"), origin("auth"));
    let span = |id: u8, parent: Option<u8>, name: &str, kind, o: &Arc<SpanOrigin>, start: i64, ms: i64| Span {
        trace_id: [n; 16],
        span_id: [id; 8],
        parent_span_id: parent.map(|p| [p; 8]),
        name: name.into(),
        kind,
        start_ns: at + start,
        end_ns: at + start + ms * 1_000_000,
        attributes: vec![
            Attribute::str("http.route", format!("/{name}")),
            Attribute { key: "http.status_code".into(), value: AttrValue::Int(if fail { 500 } else { 200 }) },
        ],
        origin: o.clone(),
        ..Default::default()
    };
    let mut a = span(3, Some(2), "check", SpanKind::Server, &auth, 2_000_000, 5);
    if fail {
        a.status = StatusCode::Error;
        a.status_message = "denied".into();
    }
    vec![
        span(1, None, "GET /api/users", SpanKind::Server, &gw, 0, 40),
        span(2, Some(1), "list", SpanKind::Server, &users, 1_000_000, 30),
        a,
    ]
}

#[test]
fn spans_are_stored_searched_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let t = TenantId::default_tenant();
    let db = TraceDb::open(dir.path(), TraceDbOptions::default()).unwrap();
    // Ten traces a second apart, every third failing; the spans of one trace arrive in two
    // batches, out of order.
    for n in 0..10u8 {
        let mut spans = trace(n + 1, T0 + n as i64 * 1_000_000_000, n % 3 == 0);
        let late = spans.remove(0);
        db.append_spans(&t, &SpanBatch { spans }).unwrap();
        let r = db.append_spans(&t, &SpanBatch { spans: vec![late.clone()] }).unwrap();
        assert_eq!(r.spans_appended, 1);
        let r = db.append_spans(&t, &SpanBatch { spans: vec![late] }).unwrap();
        assert_eq!((r.spans_appended, r.duplicates_ignored), (0, 1));
    }
    let all = TraceQuery { start_ns: T0, end_ns: T0 + 100_000_000_000, limit: 100, ..Default::default() };
    let check = |db: &TraceDb| {
        let got = db.trace(&t, &[4; 16]).unwrap();
        assert_eq!(got.iter().map(|s| s.span_id[0]).collect::<Vec<_>>(), vec![1, 2, 3], "by start time");
        assert_eq!(got[2].status, StatusCode::Error);
        assert_eq!(got[1].parent_span_id, Some([1; 8]));
        assert_eq!(got[0].service_name(), "gateway");
        assert!(db.trace(&t, &[99; 16]).unwrap().is_empty());
        // Newest first.
        let ids = db.search(&t, &all).unwrap();
        assert_eq!(ids.iter().map(|id| id[0]).collect::<Vec<_>>(), (1..=10).rev().collect::<Vec<u8>>());
        let q = |f: fn(&mut TraceQuery)| {
            let mut q = all.clone();
            f(&mut q);
            let mut ids: Vec<u8> = db.search(&t, &q).unwrap().iter().map(|id| id[0]).collect();
            ids.sort();
            ids
        };
        assert_eq!(q(|q| q.error = Some(true)), vec![1, 4, 7, 10]);
        assert_eq!(q(|q| q.tags = vec![("http.status_code".into(), "500".into())]), vec![1, 4, 7, 10]);
        assert_eq!(q(|q| q.tags = vec![("k8s.pod.name".into(), "auth-0".into())]).len(), 10);
        assert_eq!(q(|q| q.min_duration_ns = Some(35_000_000)).len(), 10);
        assert!(q(|q| q.min_duration_ns = Some(41_000_000)).is_empty());
        assert_eq!(
            q(|q| {
                q.service = Some("auth".into());
                q.max_duration_ns = Some(5_000_000);
            })
            .len(),
            10
        );
        assert_eq!(q(|q| q.operation = Some("nope".into())), Vec::<u8>::new());
        assert_eq!(q(|q| q.kind = Some(SpanKind::Client)), Vec::<u8>::new());
        assert_eq!(
            q(|q| {
                q.start_ns = T0 + 2_500_000_000;
                q.end_ns = T0 + 4_500_000_000;
            }),
            vec![4, 5]
        );
        assert_eq!(q(|q| q.limit = 3), vec![8, 9, 10]);
        assert_eq!(db.services(&t).unwrap(), vec!["auth", "gateway", "users"]);
        assert_eq!(db.operations(&t, "users").unwrap(), vec![("list".to_string(), SpanKind::Server)]);
        assert!(db.services(&TenantId::new("other").unwrap()).unwrap().is_empty());
        // The service graph: gateway → users → auth, ten calls each, four failing at auth.
        let deps = db.dependencies(&t, T0, T0 + 100_000_000_000).unwrap();
        let got: Vec<(&str, &str, u64, u64)> =
            deps.iter().map(|d| (d.parent.as_str(), d.child.as_str(), d.call_count, d.error_count)).collect();
        assert_eq!(got, vec![("gateway", "users", 10, 0), ("users", "auth", 10, 4)]);
        assert_eq!(deps[1].duration_sum_ns, 10 * 5_000_000);
        assert!(db.dependencies(&t, 0, T0 - 1).unwrap().is_empty());
    };
    check(&db);
    db.close().unwrap();
    drop(db);
    let db = TraceDb::open(dir.path(), TraceDbOptions::default()).unwrap();
    check(&db);
    // Half the traces into a block, then the rest: the same answers from blocks, and after a
    // restart from blocks and the checkpointed WAL.
    db.maintain(true).unwrap();
    check(&db);
    assert_eq!(blocks(dir.path()), 1);
    for n in 10..12u8 {
        db.append_spans(&t, &SpanBatch { spans: trace(n + 1, T0 + 200_000_000_000, false) }).unwrap();
    }
    check(&db);
    db.close().unwrap();
    drop(db);
    let db = TraceDb::open(dir.path(), TraceDbOptions::default()).unwrap();
    check(&db);
    assert_eq!(db.trace(&t, &[11; 16]).unwrap().len(), 3, "replayed from the WAL after the checkpoint");
    db.maintain(true).unwrap();
    assert_eq!(blocks(dir.path()), 2);
    check(&db);
    // A late span of a trace already in a block joins it on read; an exact duplicate of a
    // span in a block is returned once.
    let mut late = trace(4, T0 + 3_000_000_000, false)[2].clone();
    late.span_id = [9; 8];
    late.start_ns += 10_000_000;
    late.end_ns += 10_000_000;
    let dup = db.trace(&t, &[4; 16]).unwrap()[0].clone();
    db.append_spans(&t, &SpanBatch { spans: vec![late.clone(), dup] }).unwrap();
    let got = db.trace(&t, &[4; 16]).unwrap();
    assert_eq!(got.iter().map(|s| s.span_id[0]).collect::<Vec<_>>(), vec![1, 2, 3, 9]);
    db.maintain(true).unwrap();
    assert_eq!(db.trace(&t, &[4; 16]).unwrap(), got, "the same from two blocks");
    db.close().unwrap();
}

fn blocks(root: &std::path::Path) -> usize {
    let dir = root.join("default").join("blocks");
    std::fs::read_dir(dir).unwrap().flatten().filter(|e| e.path().extension().is_some_and(|x| x == "tblk")).count()
}

fn block_paths(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let dir = root.join("default").join("blocks");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "tblk"))
        .collect();
    v.sort();
    v
}

/// Many traces across several groups: every trace is found by id from the block, searches
/// prune and still find exactly the matches, and the block's size per span is reported.
#[test]
fn blocks_hold_many_traces() {
    let dir = tempfile::tempdir().unwrap();
    let t = TenantId::default_tenant();
    let opts = TraceDbOptions { max_block_spans: 2000, ..Default::default() };
    let db = TraceDb::open(dir.path(), opts).unwrap();
    let n = 3000u32;
    let id = |i: u32| {
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&i.to_be_bytes());
        id[8..12].copy_from_slice(&(i.wrapping_mul(2_654_435_761)).to_le_bytes());
        id
    };
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let mut spans = Vec::new();
        for &i in chunk {
            for mut s in trace(1, T0 + i64::from(i) * 1_000_000, i % 10 == 0) {
                s.trace_id = id(i);
                if i % 1000 == 234 && s.span_id[0] == 2 {
                    s.attributes.push(Attribute::str("user.id", format!("u{i}")));
                }
                spans.push(s);
            }
        }
        db.append_spans(&t, &SpanBatch { spans }).unwrap();
    }
    db.maintain(true).unwrap();
    assert_eq!(blocks(dir.path()), 5, "9000 spans in blocks of at most about 2000");
    let mut m = String::new();
    db.write_metrics(&mut m);
    let get =
        |name: &str| -> f64 { m.lines().find_map(|l| l.strip_prefix(&format!("{name} "))).unwrap().parse().unwrap() };
    assert_eq!(get("periscope_traces_block_spans"), f64::from(n * 3));
    assert_eq!(get("periscope_traces_head_spans"), 0.0);
    println!("bytes per span: {:.1}", get("periscope_traces_block_bytes") / get("periscope_traces_block_spans"));
    for i in (0..n).step_by(7) {
        let spans = db.trace(&t, &id(i)).unwrap();
        assert_eq!(spans.len(), 3, "trace {i}");
        assert_eq!(spans[0].trace_id, id(i));
        assert_eq!(spans[2].status == StatusCode::Error, i % 10 == 0);
    }
    assert!(db.trace(&t, &[0xee; 16]).unwrap().is_empty());
    let q = TraceQuery {
        start_ns: T0,
        end_ns: T0 + 10_000_000_000,
        error: Some(true),
        limit: 10_000,
        ..Default::default()
    };
    assert_eq!(db.search(&t, &q).unwrap().len(), 300);
    let q = TraceQuery { limit: 5, error: None, ..q };
    assert_eq!(db.search(&t, &q).unwrap(), (n - 5..n).rev().map(id).collect::<Vec<_>>(), "newest first");
    let q = TraceQuery {
        tags: vec![("http.status_code".into(), "500".into())],
        start_ns: T0 + 1000 * 1_000_000,
        end_ns: T0 + 1999 * 1_000_000,
        limit: 10_000,
        ..Default::default()
    };
    assert_eq!(db.search(&t, &q).unwrap().len(), 100);
    // A value one span holds: the groups' attribute filters skip the others.
    let q = TraceQuery {
        tags: vec![("user.id".into(), "u1234".into())],
        start_ns: T0,
        end_ns: T0 + 10_000_000_000,
        ..Default::default()
    };
    assert_eq!(db.search(&t, &q).unwrap(), vec![id(1234)]);
    let q = TraceQuery { tags: vec![("user.id".into(), "u9".into())], ..q };
    assert!(db.search(&t, &q).unwrap().is_empty());
    let deps = db.dependencies(&t, T0, T0 + 10_000_000_000).unwrap();
    assert_eq!(deps.iter().map(|d| d.call_count).collect::<Vec<_>>(), vec![u64::from(n); 2]);
    db.close().unwrap();
}

/// Retention by size deletes the oldest blocks; by time, those far behind the newest span.
#[test]
fn retention_by_size_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let t = TenantId::default_tenant();
    let hour = 3_600_000_000_000i64;
    let opts = TraceDbOptions { retention_time: std::time::Duration::from_secs(3 * 3600), ..Default::default() };
    let db = TraceDb::open(dir.path(), opts.clone()).unwrap();
    for h in 0..6u8 {
        db.append_spans(&t, &SpanBatch { spans: trace(h + 1, T0 + i64::from(h) * hour, false) }).unwrap();
        db.maintain(true).unwrap();
    }
    // Blocks ending more than 3 h before the newest span are gone: hours 0, 1 (and 2 ends
    // 40 ms after its start, just inside).
    let left: Vec<u8> = (1..=6u8).filter(|n| !db.trace(&t, &[*n; 16]).unwrap().is_empty()).collect();
    assert_eq!(left, vec![3, 4, 5, 6]);
    assert_eq!(blocks(dir.path()), 4);
    db.close().unwrap();
    drop(db);
    let size: u64 = block_paths(dir.path()).iter().map(|p| std::fs::metadata(p).unwrap().len()).sum();
    let opts = TraceDbOptions { retention_size: size - 1, ..opts };
    let db = TraceDb::open(dir.path(), opts).unwrap();
    db.maintain(false).unwrap();
    assert_eq!(blocks(dir.path()), 3);
    assert!(db.trace(&t, &[3; 16]).unwrap().is_empty(), "the oldest went first");
    assert_eq!(db.trace(&t, &[6; 16]).unwrap().len(), 3);
    db.close().unwrap();
}

/// A damaged block is an error naming it, never a panic; a truncated one fails to open.
#[test]
fn damaged_blocks_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let t = TenantId::default_tenant();
    let db = TraceDb::open(dir.path(), TraceDbOptions::default()).unwrap();
    db.append_spans(&t, &SpanBatch { spans: trace(1, T0, false) }).unwrap();
    db.maintain(true).unwrap();
    db.close().unwrap();
    drop(db);
    let path = block_paths(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[12] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let db = TraceDb::open(dir.path(), TraceDbOptions::default()).unwrap();
    let e = db.trace(&t, &[1; 16]).unwrap_err().to_string();
    assert!(e.contains("trace block"), "{e}");
    db.close().unwrap();
    drop(db);
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    let e = TraceDb::open(dir.path(), TraceDbOptions::default()).err().unwrap();
    let chain = format!("{e}: {}", std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default());
    assert!(chain.contains("damaged"), "{chain}");
}

/// A block cut leaves younger traces in the head; the checkpoint keeps them, whole, through
/// a restart even after the WAL segments before the cut are gone.
#[test]
fn checkpoint_keeps_the_rest_of_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let t = TenantId::default_tenant();
    let opts = TraceDbOptions {
        trace_idle: std::time::Duration::from_millis(200),
        max_block_age: std::time::Duration::ZERO,
        ..Default::default()
    };
    let db = TraceDb::open(dir.path(), opts.clone()).unwrap();
    db.append_spans(&t, &SpanBatch { spans: trace(1, T0, false) }).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let young = trace(2, T0 + 1_000_000_000, true);
    db.append_spans(&t, &SpanBatch { spans: young.clone() }).unwrap();
    db.maintain(false).unwrap();
    assert_eq!(blocks(dir.path()), 1);
    let wal = dir.path().join("default").join("wal");
    let checkpoints: Vec<_> = std::fs::read_dir(&wal)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("checkpoint."))
        .collect();
    assert_eq!(checkpoints.len(), 1);
    db.close().unwrap();
    drop(db);
    let db = TraceDb::open(dir.path(), opts).unwrap();
    assert_eq!(db.trace(&t, &[1; 16]).unwrap().len(), 3, "from the block");
    assert_eq!(db.trace(&t, &[2; 16]).unwrap(), young, "from the checkpoint, whole");
    db.close().unwrap();
}
