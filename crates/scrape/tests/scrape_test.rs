#![allow(clippy::unwrap_used)]
//! End-to-end scraping: real HTTP servers on 127.0.0.1 (raw tokio TCP, so that a test can
//! hang, close the connection, gzip the body or look at the request headers; the same server
//! behind a tokio-rustls acceptor with certificates made at test time for `https`) scraped by
//! a real `ScrapeManager` into a recording store (a test double of the storage trait: the
//! tests look at the exact batches, stale markers included).

use std::collections::BTreeMap;
use std::future::poll_fn;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use periscope_config::{GlobalConfig, ScrapeConfig};
use periscope_model::{is_stale_nan, Labels, MetricBatch, MetricType, TenantId};
use periscope_scrape::{ScrapeManager, ScrapeOptions, TargetHealth, ACCEPT_HEADER};
use periscope_storage::{AppendReport, Appendable, StoreError};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

// ---------------------------------------------------------------- test store

#[derive(Default)]
struct RecordingStore {
    batches: Mutex<Vec<MetricBatch>>,
}

impl Appendable for RecordingStore {
    fn append(&self, _tenant: &TenantId, batch: &MetricBatch) -> Result<AppendReport, StoreError> {
        self.batches.lock().unwrap().push(batch.clone());
        Ok(AppendReport { samples_appended: batch.sample_count() as u64, ..Default::default() })
    }
}

impl RecordingStore {
    /// Every sample (t, v) of series named `name` whose labels include `with`, in order.
    fn samples(&self, name: &str, with: &[(&str, &str)]) -> Vec<(i64, f64)> {
        let mut out = Vec::new();
        for b in self.batches.lock().unwrap().iter() {
            for s in &b.series {
                if s.labels.metric_name() == Some(name) && with.iter().all(|(k, v)| s.labels.get(k) == Some(v)) {
                    out.extend(s.samples.iter().map(|x| (x.t, x.v)));
                }
            }
        }
        out
    }

    /// Label sets of every series named `name`.
    fn series(&self, name: &str) -> Vec<Labels> {
        let mut out: Vec<Labels> = Vec::new();
        for b in self.batches.lock().unwrap().iter() {
            for s in &b.series {
                if s.labels.metric_name() == Some(name) && !out.contains(&s.labels) {
                    out.push(s.labels.clone());
                }
            }
        }
        out
    }

    fn batch_count(&self) -> usize {
        self.batches.lock().unwrap().len()
    }

    fn all(&self) -> Vec<MetricBatch> {
        self.batches.lock().unwrap().clone()
    }
}

// ---------------------------------------------------------------- test server

#[derive(Clone)]
enum Reply {
    Ok { body: Vec<u8>, content_type: &'static str, gzip: bool },
    Status(u16),
    Hang,
    Close,
}

impl Reply {
    fn text(body: &str) -> Reply {
        Reply::Ok { body: body.as_bytes().to_vec(), content_type: "text/plain; version=0.0.4", gzip: false }
    }
}

#[derive(Debug, Clone)]
struct Recorded {
    target: String,
    headers: BTreeMap<String, String>,
}

struct TestServer {
    addr: SocketAddr,
    reply: Arc<Mutex<Reply>>,
    requests: Arc<Mutex<Vec<Recorded>>>,
    connections: Arc<std::sync::atomic::AtomicUsize>,
    /// TLS servers: each handshake, `Ok("sni=<name or -> alpn=<protocol or ->")` or the
    /// server's error.
    handshakes: Arc<Mutex<Vec<Result<String, String>>>>,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    async fn start(reply: Reply) -> TestServer {
        Self::start_with(reply, None).await
    }

    /// The same server speaking TLS with `config`.
    async fn start_tls(reply: Reply, config: Arc<ServerConfig>) -> TestServer {
        Self::start_with(reply, Some(TlsAcceptor::from(config))).await
    }

    async fn start_with(reply: Reply, tls: Option<TlsAcceptor>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reply = Arc::new(Mutex::new(reply));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let handshakes = Arc::new(Mutex::new(Vec::new()));
        let (r, q, c, h) =
            (Arc::clone(&reply), Arc::clone(&requests), Arc::clone(&connections), Arc::clone(&handshakes));
        let task = tokio::spawn(async move {
            // Dropping the set (when this task is aborted) aborts every connection.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (r, q, h) = (Arc::clone(&r), Arc::clone(&q), Arc::clone(&h));
                match tls.clone() {
                    None => {
                        conns.spawn(serve(stream, r, q));
                    }
                    Some(acceptor) => {
                        conns.spawn(async move {
                            match acceptor.accept(stream).await {
                                Ok(stream) => {
                                    let conn = stream.get_ref().1;
                                    let alpn = conn.alpn_protocol().map(|p| String::from_utf8_lossy(p).to_string());
                                    let info = format!(
                                        "sni={} alpn={}",
                                        conn.server_name().unwrap_or("-"),
                                        alpn.as_deref().unwrap_or("-")
                                    );
                                    h.lock().unwrap().push(Ok(info));
                                    serve(stream, r, q).await;
                                }
                                Err(e) => h.lock().unwrap().push(Err(e.to_string())),
                            }
                        });
                    }
                }
            }
        });
        TestServer { addr, reply, requests, connections, handshakes, task }
    }

    fn set(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    fn address(&self) -> String {
        self.addr.to_string()
    }
}

// tokio's `io-util` is not enabled in the workspace; the poll methods of the stream traits do.
async fn read_some<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut [u8]) -> std::io::Result<usize> {
    poll_fn(|cx| {
        let mut rb = ReadBuf::new(&mut *buf);
        match Pin::new(&mut *stream).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

async fn write_all<S: AsyncWrite + Unpin>(stream: &mut S, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        let n = poll_fn(|cx| Pin::new(&mut *stream).poll_write(cx, data)).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        data = &data[n..];
    }
    poll_fn(|cx| Pin::new(&mut *stream).poll_flush(cx)).await
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    reply: Arc<Mutex<Reply>>,
    requests: Arc<Mutex<Vec<Recorded>>>,
) {
    let mut buf = Vec::new();
    loop {
        // Read one request head (GET: no body).
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match read_some(&mut stream, &mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        buf.drain(..end);
        let mut lines = head.split("\r\n");
        let target = lines.next().unwrap_or_default().split(' ').nth(1).unwrap_or_default().to_string();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        requests.lock().unwrap().push(Recorded { target, headers });
        let r = reply.lock().unwrap().clone();
        let response = match r {
            Reply::Ok { body, content_type, gzip } => {
                let (body, enc) = if gzip {
                    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                    e.write_all(&body).unwrap();
                    (e.finish().unwrap(), "Content-Encoding: gzip\r\n")
                } else {
                    (body, "")
                };
                let mut r = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n{enc}Content-Length: {}\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                r.extend_from_slice(&body);
                r
            }
            Reply::Status(code) => format!("HTTP/1.1 {code} Whatever\r\nContent-Length: 5\r\n\r\noops\n").into_bytes(),
            Reply::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            Reply::Close => return,
        };
        if write_all(&mut stream, &response).await.is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------- helpers

fn job(yaml: &str) -> ScrapeConfig {
    serde_yaml::from_str(yaml).unwrap()
}

fn start(configs: Vec<ScrapeConfig>, store: &Arc<RecordingStore>) -> ScrapeManager {
    let store: Arc<dyn Appendable> = Arc::clone(store) as Arc<dyn Appendable>;
    ScrapeManager::start(
        configs,
        &GlobalConfig::default(),
        store,
        TenantId::default_tenant(),
        ScrapeOptions { skip_offset: true, ..Default::default() },
    )
}

#[track_caller]
fn assert_eventually(what: &str, mut cond: impl FnMut() -> bool) -> impl std::future::Future<Output = ()> {
    let ok = cond();
    let loc = std::panic::Location::caller();
    let what = what.to_string();
    async move {
        if ok {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if cond() {
                return;
            }
        }
        panic!("{loc}: timed out waiting for {what}");
    }
}

fn values(samples: &[(i64, f64)]) -> Vec<f64> {
    samples.iter().map(|s| s.1).collect()
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_series_metadata_exemplars_and_request_headers() {
    let body = "# TYPE req counter\n# HELP req Requests served.\nreq_total{code=\"200\"} 5 # {trace_id=\"abc\"} 1 1700000000.5\n# EOF\n";
    let server = TestServer::start(Reply::Ok {
        body: body.as_bytes().to_vec(),
        content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8",
        gzip: false,
    })
    .await;
    let store = Arc::new(RecordingStore::default());
    let m = start(
        vec![job(&format!(
            "job_name: web\nscrape_interval: 200ms\nscrape_timeout: 150ms\nparams: {{module: [a b]}}\nstatic_configs: [{{targets: ['{}'], labels: {{env: prod}}}}]\n",
            server.address()
        ))],
        &store,
    );
    let inst = server.address();
    let target = [("job", "web"), ("instance", inst.as_str()), ("env", "prod")];
    assert_eventually("two scrapes", || store.samples("up", &target).len() >= 2).await;
    m.stop().await;

    assert_eq!(values(&store.samples("up", &target))[..2], [1.0, 1.0]);
    assert_eq!(values(&store.samples("scrape_samples_scraped", &target))[0], 1.0);
    assert_eq!(values(&store.samples("scrape_samples_post_metric_relabeling", &target))[0], 1.0);
    assert_eq!(values(&store.samples("scrape_series_added", &target))[..2], [1.0, 0.0]);
    let d = store.samples("scrape_duration_seconds", &target)[0].1;
    assert!(d > 0.0 && d < 1.0, "{d}");

    // Samples, report series and stale markers of one scrape share its timestamp.
    let up = store.samples("up", &target);
    let req = store.samples("req_total", &[("code", "200"), ("job", "web"), ("env", "prod")]);
    assert_eq!(req[0], (up[0].0, 5.0));
    assert_eq!(store.series("req_total")[0].len(), 5, "{:?}", store.series("req_total"));

    let batches = store.all();
    let first = &batches[0];
    let meta: Vec<_> = first.metadata.iter().map(|m| (m.metric_family.as_str(), m.metric_type)).collect();
    assert!(meta.contains(&("req", MetricType::Counter)), "{meta:?}");
    assert!(meta.contains(&("up", MetricType::Gauge)), "{meta:?}");
    let ex = &first.series.iter().find(|s| s.labels.metric_name() == Some("req_total")).unwrap().exemplars;
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].labels.get("trace_id"), Some("abc"));
    assert_eq!(ex[0].t, 1_700_000_000_500);

    let reqs = server.requests();
    assert_eq!(reqs[0].target, "/metrics?module=a+b");
    let h = &reqs[0].headers;
    assert_eq!(h["accept"], ACCEPT_HEADER);
    assert_eq!(h["accept-encoding"], "gzip");
    assert!(h["user-agent"].starts_with("Periscope/"), "{h:?}");
    assert_eq!(h["x-prometheus-scrape-timeout-seconds"], "0.15");
    assert_eq!(h["host"], inst);
    assert!(!h.contains_key("authorization"));
    // One kept-alive connection serves every scrape.
    assert!(reqs.len() >= 2);
    assert_eq!(server.connections.load(std::sync::atomic::Ordering::SeqCst), 1);

    let targets = m.targets();
    assert!(targets.is_empty(), "stopped manager lists no targets");
    let mut text = String::new();
    m.write_metrics(&mut text);
    assert!(text.contains("# TYPE periscope_scrape_scrapes_total counter"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_status_and_self_metrics() {
    let server = TestServer::start(Reply::text("m 1\n")).await;
    let store = Arc::new(RecordingStore::default());
    let m = start(
        vec![job(&format!(
            "job_name: j\nscrape_interval: 200ms\nscrape_timeout: 200ms\nrelabel_configs: [{{source_labels: [__address__], regex: 'nope.*', action: drop}}]\nstatic_configs: [{{targets: ['{}', 'nope:1']}}]\n",
            server.address()
        ))],
        &store,
    );
    assert_eventually("a scrape", || !store.samples("up", &[]).is_empty()).await;
    let t = m.targets();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].health, TargetHealth::Up);
    assert_eq!(t[0].last_error, None);
    assert!(t[0].last_scrape.is_some());
    assert_eq!(t[0].url, format!("http://{}/metrics", server.address()));
    assert_eq!(t[0].labels.to_string(), format!("{{instance=\"{}\", job=\"j\"}}", server.address()));
    assert_eq!(t[0].discovered_labels.get("__scrape_interval__"), Some("200ms"));
    assert_eq!(t[0].scrape_interval, Duration::from_millis(200));
    let dropped = m.dropped_targets();
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].discovered_labels.get("__address__"), Some("nope:1"));
    let mut text = String::new();
    m.write_metrics(&mut text);
    assert!(text.contains("periscope_scrape_scrapes_total{job=\"j\",result=\"success\"}"), "{text}");
    assert!(text.contains("periscope_scrape_targets{job=\"j\",health=\"up\"} 1"), "{text}");
    assert!(text.contains("periscope_scrape_dropped_targets{job=\"j\"} 1"), "{text}");
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_markers_when_a_series_vanishes_and_when_the_target_fails() {
    let server = TestServer::start(Reply::text("a 1\nb 2\n")).await;
    let store = Arc::new(RecordingStore::default());
    let m = start(
        vec![job(&format!(
            "job_name: s\nscrape_interval: 200ms\nscrape_timeout: 200ms\nstatic_configs: [{{targets: ['{}']}}]\n",
            server.address()
        ))],
        &store,
    );
    assert_eventually("b scraped", || !store.samples("b", &[]).is_empty()).await;
    server.set(Reply::text("a 1\n"));
    assert_eventually("b stale", || store.samples("b", &[]).iter().any(|s| is_stale_nan(s.1))).await;
    let b = store.samples("b", &[]);
    let stale_t = b.iter().find(|s| is_stale_nan(s.1)).unwrap().0;
    // The marker carries the timestamp of the scrape that no longer had b.
    assert!(store.samples("up", &[]).iter().any(|s| s.0 == stale_t && s.1 == 1.0));
    assert!(store.samples("a", &[]).contains(&(stale_t, 1.0)));

    server.set(Reply::Status(500));
    assert_eventually("a stale", || store.samples("a", &[]).iter().any(|s| is_stale_nan(s.1))).await;
    let a_stale_t = store.samples("a", &[]).iter().find(|s| is_stale_nan(s.1)).unwrap().0;
    assert!(store.samples("up", &[]).contains(&(a_stale_t, 0.0)));
    let t = &m.targets()[0];
    assert_eq!(t.health, TargetHealth::Down);
    assert_eq!(t.last_error.as_deref(), Some("server returned HTTP status 500 Internal Server Error"));
    // Exactly one marker per vanished series.
    let n = store.batch_count();
    assert_eventually("two more scrapes", || store.batch_count() >= n + 2).await;
    m.stop().await;
    assert_eq!(store.samples("a", &[]).iter().filter(|s| is_stale_nan(s.1)).count(), 1);
    assert_eq!(store.samples("b", &[]).iter().filter(|s| is_stale_nan(s.1)).count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honor_labels_both_ways() {
    let server = TestServer::start(Reply::text("m{job=\"exp\",instance=\"x\",k=\"v\"} 1\n")).await;
    let store = Arc::new(RecordingStore::default());
    let addr = server.address();
    let m = start(
        vec![
            job(&format!("job_name: plain\nscrape_interval: 200ms\nscrape_timeout: 200ms\nstatic_configs: [{{targets: ['{addr}']}}]\n")),
            job(&format!("job_name: honor\nhonor_labels: true\nscrape_interval: 200ms\nscrape_timeout: 200ms\nstatic_configs: [{{targets: ['{addr}']}}]\n")),
        ],
        &store,
    );
    assert_eventually("both jobs", || store.series("m").len() >= 2).await;
    m.stop().await;
    let series: Vec<String> = store.series("m").iter().map(ToString::to_string).collect();
    assert!(
        series.contains(&format!(
            "{{__name__=\"m\", exported_instance=\"x\", exported_job=\"exp\", instance=\"{addr}\", job=\"plain\", k=\"v\"}}"
        )),
        "{series:?}"
    );
    assert!(series.contains(&"{__name__=\"m\", instance=\"x\", job=\"exp\", k=\"v\"}".to_string()), "{series:?}");
    // Report series always carry the target's own labels.
    assert!(!store.samples("up", &[("job", "honor"), ("instance", addr.as_str())]).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_relabel_drop_and_sample_limit() {
    let server = TestServer::start(Reply::text("keep_a 1\nkeep_b 2\ndrop_c 3\n")).await;
    let store = Arc::new(RecordingStore::default());
    let addr = server.address();
    let relabel = "metric_relabel_configs: [{source_labels: [__name__], regex: 'drop_.*', action: drop}]";
    let m = start(
        vec![
            job(&format!("job_name: fits\nsample_limit: 2\n{relabel}\nscrape_interval: 200ms\nscrape_timeout: 200ms\nstatic_configs: [{{targets: ['{addr}']}}]\n")),
            job(&format!("job_name: over\nsample_limit: 1\n{relabel}\nscrape_interval: 200ms\nscrape_timeout: 200ms\nstatic_configs: [{{targets: ['{addr}']}}]\n")),
        ],
        &store,
    );
    assert_eventually("both jobs report", || {
        !store.samples("up", &[("job", "fits")]).is_empty() && !store.samples("up", &[("job", "over")]).is_empty()
    })
    .await;
    let over = m.targets().into_iter().find(|t| t.job == "over").unwrap();
    m.stop().await;
    assert_eq!(store.samples("up", &[("job", "fits")])[0].1, 1.0);
    assert_eq!(store.samples("scrape_samples_scraped", &[("job", "fits")])[0].1, 3.0);
    assert_eq!(store.samples("scrape_samples_post_metric_relabeling", &[("job", "fits")])[0].1, 2.0);
    assert!(store.samples("drop_c", &[]).is_empty());
    assert!(!store.samples("keep_a", &[("job", "fits")]).is_empty());

    assert_eq!(store.samples("up", &[("job", "over")])[0].1, 0.0);
    assert_eq!(store.samples("scrape_samples_scraped", &[("job", "over")])[0].1, 3.0);
    assert_eq!(store.samples("scrape_samples_post_metric_relabeling", &[("job", "over")])[0].1, 2.0);
    assert!(store.samples("keep_a", &[("job", "over")]).is_empty(), "a failed scrape stores no samples");
    assert_eq!(over.health, TargetHealth::Down);
    assert_eq!(over.last_error.as_deref(), Some("sample limit exceeded"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_target_times_out_and_stop_is_prompt() {
    let server = TestServer::start(Reply::Hang).await;
    let store = Arc::new(RecordingStore::default());
    let m = start(
        vec![job(&format!(
            "job_name: h\nscrape_interval: 300ms\nscrape_timeout: 100ms\nstatic_configs: [{{targets: ['{}']}}]\n",
            server.address()
        ))],
        &store,
    );
    assert_eventually("up=0", || !store.samples("up", &[]).is_empty()).await;
    assert_eq!(store.samples("up", &[])[0].1, 0.0);
    let d = store.samples("scrape_duration_seconds", &[])[0].1;
    assert!((0.09..0.3).contains(&d), "{d}");
    let t = &m.targets()[0];
    assert_eq!(t.health, TargetHealth::Down);
    let e = t.last_error.clone().unwrap();
    assert!(e.ends_with("context deadline exceeded"), "{e}");
    assert!(e.contains(&server.address()), "{e}");
    // Stop while the next scrape hangs: it is aborted, not waited for.
    tokio::time::sleep(Duration::from_millis(320)).await;
    let started = Instant::now();
    m.stop().await;
    assert!(started.elapsed() < Duration::from_millis(150), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_body_basic_auth_and_bearer_token_file() {
    let server = TestServer::start(Reply::Ok {
        body: b"g 42\n".to_vec(),
        content_type: "text/plain; version=0.0.4",
        gzip: true,
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let store = Arc::new(RecordingStore::default());
    let addr = server.address();
    let m = start(
        vec![
            job(&format!("job_name: basic\nbasic_auth: {{username: u, password: p}}\nscrape_interval: 200ms\nscrape_timeout: 200ms\nstatic_configs: [{{targets: ['{addr}']}}]\n")),
            job(&format!("job_name: bearer\nbearer_token_file: {}\nscrape_interval: 200ms\nscrape_timeout: 200ms\nstatic_configs: [{{targets: ['{addr}']}}]\n", token.display())),
        ],
        &store,
    );
    assert_eventually("both scraped", || store.series("g").len() >= 2).await;
    m.stop().await;
    assert_eq!(store.samples("g", &[("job", "basic")])[0].1, 42.0);
    let auths: Vec<String> = server.requests().iter().filter_map(|r| r.headers.get("authorization").cloned()).collect();
    assert!(auths.contains(&"Basic dTpw".to_string()), "{auths:?}");
    assert!(auths.contains(&"Bearer s3cret".to_string()), "{auths:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_targets_fail_cleanly() {
    let garbage = TestServer::start(Reply::text("this is {{{ not an exposition\n")).await;
    let closing = TestServer::start(Reply::Close).await;
    let huge = TestServer::start(Reply::text(&"x 1\n".repeat(4096))).await;
    let bomb = TestServer::start(Reply::Ok { body: vec![b'#'; 4 << 20], content_type: "text/plain", gzip: true }).await;
    // Nothing listens on a port just released.
    let refused = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().to_string();
    let store = Arc::new(RecordingStore::default());
    let m = start(
        vec![job(&format!(
            "job_name: hostile\nbody_size_limit: 8KiB\nscheme: http\nscrape_interval: 200ms\nscrape_timeout: 200ms\nstatic_configs: [{{targets: ['{}', '{}', '{}', '{}', '{refused}']}}]\n",
            garbage.address(),
            closing.address(),
            huge.address(),
            bomb.address()
        ))],
        &store,
    );
    assert_eventually("every target scraped", || m.targets().iter().all(|t| t.health != TargetHealth::Unknown)).await;
    let t = m.targets();
    let mut text = String::new();
    m.write_metrics(&mut text);
    m.stop().await;
    let err = |addr: &str| t.iter().find(|t| t.url.contains(addr)).unwrap().last_error.clone().unwrap();
    assert!(t.iter().all(|t| t.health == TargetHealth::Down), "{t:?}");
    assert!(err(&garbage.address()).contains("line 1"), "{}", err(&garbage.address()));
    assert!(err(&closing.address()).starts_with(&format!("Get \"http://{}/metrics\": ", closing.address())));
    assert_eq!(err(&huge.address()), "body size limit exceeded");
    assert_eq!(err(&bomb.address()), "body size limit exceeded");
    assert!(err(&refused).contains("dial tcp"), "{}", err(&refused));
    assert!(store.samples("up", &[]).iter().all(|s| s.1 == 0.0));
    assert!(text.contains("periscope_scrape_exceeded_body_size_limit_total{job=\"hostile\"}"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expvar_target() {
    let body = r#"{"cmdline": ["/bin/app"], "memstats": {"Alloc": 1234, "TotalAlloc": 5678, "NumGC": 3, "PauseNs": [1, 2]}, "requests": {"GET": 3}, "version": "v1.2"}"#;
    let server =
        TestServer::start(Reply::Ok { body: body.as_bytes().to_vec(), content_type: "application/json", gzip: false })
            .await;
    let store = Arc::new(RecordingStore::default());
    let m = start(
        vec![job(&format!(
            "job_name: goapp\nformat: expvar\nscrape_interval: 200ms\nscrape_timeout: 200ms\nstatic_configs: [{{targets: ['{}']}}]\n",
            server.address()
        ))],
        &store,
    );
    let inst = server.address();
    let target = [("job", "goapp"), ("instance", inst.as_str())];
    assert_eventually("memstats", || !store.samples("go_memstats_alloc_bytes", &target).is_empty()).await;
    let mut text = String::new();
    m.write_metrics(&mut text);
    m.stop().await;
    assert_eq!(store.samples("go_memstats_alloc_bytes", &target)[0].1, 1234.0);
    assert_eq!(store.samples("go_memstats_alloc_bytes_total", &target)[0].1, 5678.0);
    assert_eq!(store.samples("expvar_requests", &[("key", "GET")])[0].1, 3.0);
    assert_eq!(store.samples("up", &target)[0].1, 1.0);
    assert_eq!(server.requests()[0].target, "/debug/vars");
    assert!(
        text.contains("periscope_scrape_expvar_values_skipped_total{job=\"goapp\",reason=\"non_numeric\"} 1"),
        "{text}"
    );
    let meta = &store.all()[0].metadata;
    assert!(meta
        .iter()
        .any(|m| m.metric_family == "go_memstats_alloc_bytes_total" && m.metric_type == MetricType::Counter));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_target_gets_end_of_run_stale_markers_but_stop_writes_none() {
    let one = TestServer::start(Reply::text("m 1\n")).await;
    let two = TestServer::start(Reply::text("m 2\n")).await;
    let store = Arc::new(RecordingStore::default());
    let cfg = |targets: &str| {
        job(&format!(
            "job_name: r\nscrape_interval: 200ms\nscrape_timeout: 200ms\nstatic_configs: [{{targets: [{targets}]}}]\n"
        ))
    };
    let both = format!("'{}', '{}'", one.address(), two.address());
    let m = start(vec![cfg(&both)], &store);
    let (a1, a2) = (one.address(), two.address());
    assert_eventually("both scraped", || store.series("m").len() == 2).await;

    // Remove target two: after two more of its intervals it gets stale markers for its
    // series and its report series, at the time of its first missed scrape.
    let removed_at = periscope_now_ms();
    m.apply(vec![cfg(&format!("'{}'", one.address()))], &GlobalConfig::default()).await;
    assert_eq!(m.targets().len(), 1);
    assert_eventually("end-of-run markers", || {
        store.samples("m", &[("instance", a2.as_str())]).iter().any(|s| is_stale_nan(s.1))
    })
    .await;
    let stale = store.samples("m", &[("instance", a2.as_str())]).into_iter().find(|s| is_stale_nan(s.1)).unwrap();
    assert!(stale.0 >= removed_at && stale.0 <= removed_at + 400, "{stale:?} vs {removed_at}");
    assert!(store.samples("up", &[("instance", a2.as_str())]).iter().any(|s| s.0 == stale.0 && is_stale_nan(s.1)));
    assert!(periscope_now_ms() - removed_at >= 200, "markers came before the second missed tick");

    // Target one kept scraping, with its series cache: nothing of it went stale.
    assert!(store.samples("m", &[("instance", a1.as_str())]).iter().all(|s| !is_stale_nan(s.1)));
    m.stop().await;
    let n = store.batch_count();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store.batch_count(), n, "nothing is written after stop");
    assert!(store.samples("m", &[("instance", a1.as_str())]).iter().all(|s| !is_stale_nan(s.1)));
}

fn periscope_now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

// ---------------------------------------------------------------- https

/// A CA made at test time, the certificates it signs, and their PEM files.
struct TestPki {
    dir: tempfile::TempDir,
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

/// A certificate and its key, as a TLS server or client uses them.
struct Leaf {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl TestPki {
    fn new(name: &str) -> TestPki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
        let ca = params.self_signed(&ca_key).unwrap();
        let pki = TestPki { dir: tempfile::tempdir().unwrap(), ca, ca_key };
        std::fs::write(pki.path("ca.pem"), pki.ca.pem()).unwrap();
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A certificate for `names` (DNS names or IP addresses) signed by the CA; with `files`,
    /// also written as `<files>.pem` and `<files>-key.pem`.
    fn leaf(&self, names: &[&str], usage: rcgen::ExtendedKeyUsagePurpose, files: Option<&str>) -> Leaf {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(ToString::to_string).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, names.first().copied().unwrap_or("client"));
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        if let Some(name) = files {
            std::fs::write(self.path(&format!("{name}.pem")), cert.pem()).unwrap();
            std::fs::write(self.path(&format!("{name}-key.pem")), key.serialize_pem()).unwrap();
        }
        Leaf {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }

    /// A server configuration presenting a certificate for `names`, speaking `versions`,
    /// requiring a client certificate signed by the CA when `client_auth`.
    fn server(
        &self,
        names: &[&str],
        versions: &[&'static SupportedProtocolVersion],
        client_auth: bool,
    ) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder =
            ServerConfig::builder_with_provider(Arc::clone(&provider)).with_protocol_versions(versions).unwrap();
        let builder = if client_auth {
            let mut roots = RootCertStore::empty();
            roots.add(self.ca.der().clone()).unwrap();
            builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap(),
            )
        } else {
            builder.with_no_client_auth()
        };
        let leaf = self.leaf(names, rcgen::ExtendedKeyUsagePurpose::ServerAuth, None);
        let mut config = builder.with_single_cert(leaf.chain, leaf.key).unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// A server presenting the CA's certificate for `names` without holding its key: it
    /// signs the handshake with another key.
    fn impostor(&self, names: &[&str]) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let presented = self.leaf(names, rcgen::ExtendedKeyUsagePurpose::ServerAuth, None);
        let held = self.leaf(names, rcgen::ExtendedKeyUsagePurpose::ServerAuth, None);
        let key = provider.key_provider.load_private_key(held.key).unwrap();
        let resolver = rustls::sign::SingleCertAndKey::from(rustls::sign::CertifiedKey::new(presented.chain, key));
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(BOTH)
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

const BOTH: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

fn https_job(name: &str, address: &str, tls_config: &str) -> ScrapeConfig {
    job(&format!(
        "job_name: {name}\nscheme: https\ntls_config: {tls_config}\nscrape_interval: 200ms\nscrape_timeout: 200ms\nstatic_configs: [{{targets: ['{address}']}}]\n"
    ))
}

/// The error of the target of job `job`.
fn last_error(m: &ScrapeManager, job: &str) -> String {
    let t = m.targets().into_iter().find(|t| t.job == job).unwrap();
    t.last_error.unwrap_or_else(|| format!("no error, health {:?}", t.health))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_verifies_the_server_as_prometheus_does() {
    let pki = TestPki::new("Periscope test CA");
    let ca = pki.path("ca.pem").display().to_string();
    let local = &["localhost", "127.0.0.1"];
    let good = TestServer::start_tls(Reply::text("m 1\n"), pki.server(local, BOTH, false)).await;
    let untrusted = TestServer::start_tls(Reply::text("m 2\n"), pki.server(local, BOTH, false)).await;
    let insecure = TestServer::start_tls(Reply::text("m 3\n"), pki.server(local, BOTH, false)).await;
    // Valid for another name only: fails unless server_name says that name.
    let named = TestServer::start_tls(Reply::text("m 4\n"), pki.server(&["scrape.test"], BOTH, false)).await;
    let renamed = TestServer::start_tls(Reply::text("m 5\n"), pki.server(&["scrape.test"], BOTH, false)).await;
    // insecure_skip_verify still checks that the server holds the key of what it presents.
    let impostor = TestServer::start_tls(Reply::text("m 6\n"), pki.impostor(local)).await;
    // Nothing listens here: a TLS file error comes before any connection.
    let refused = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().to_string();
    let missing = pki.path("missing.pem").display().to_string();
    let store = Arc::new(RecordingStore::default());
    let m = start(
        vec![
            https_job("ca", &good.address(), &format!("{{ca_file: '{ca}'}}")),
            https_job("system_roots", &untrusted.address(), "{}"),
            https_job("insecure", &insecure.address(), "{insecure_skip_verify: true}"),
            https_job("wrong_name", &named.address(), &format!("{{ca_file: '{ca}'}}")),
            https_job("server_name", &renamed.address(), &format!("{{ca_file: '{ca}', server_name: scrape.test}}")),
            https_job("missing_ca", &refused, &format!("{{ca_file: '{missing}'}}")),
            https_job("impostor", &impostor.address(), "{insecure_skip_verify: true}"),
        ],
        &store,
    );
    assert_eventually("two scrapes of every job", || {
        ["ca", "system_roots", "insecure", "wrong_name", "server_name", "missing_ca", "impostor"]
            .iter()
            .all(|j| store.samples("up", &[("job", j)]).len() >= 2)
    })
    .await;
    let targets = m.targets();
    let errors: BTreeMap<&str, String> =
        ["ca", "system_roots", "insecure", "wrong_name", "server_name", "missing_ca", "impostor"]
            .map(|j| (j, last_error(&m, j)))
            .into();
    m.stop().await;

    // Trusted through ca_file: samples stored, up=1, one kept-alive TLS connection.
    let up = |job: &str| values(&store.samples("up", &[("job", job)]));
    assert_eq!(up("ca")[..2], [1.0, 1.0]);
    assert_eq!(values(&store.samples("m", &[("job", "ca")]))[0], 1.0);
    let t = targets.iter().find(|t| t.job == "ca").unwrap();
    assert_eq!(t.health, TargetHealth::Up);
    assert_eq!(t.url, format!("https://{}/metrics", good.address()));
    assert_eq!(good.connections.load(std::sync::atomic::Ordering::SeqCst), 1);
    // HTTP/1.1 chosen by ALPN; an IP address sends no SNI (as Go).
    assert_eq!(*good.handshakes.lock().unwrap(), [Ok("sni=- alpn=http/1.1".to_string())]);
    let reqs = good.requests();
    assert!(reqs.len() >= 2);
    assert_eq!(reqs[0].headers["host"], good.address());
    assert!(reqs[0].headers["user-agent"].starts_with("Periscope/"));

    // Without the test CA the system's roots do not trust it.
    assert!(up("system_roots").iter().all(|v| *v == 0.0));
    assert!(store.samples("m", &[("job", "system_roots")]).is_empty());
    assert_eq!(
        errors["system_roots"],
        format!("Get \"https://{}/metrics\": tls: invalid peer certificate: UnknownIssuer", untrusted.address())
    );

    // insecure_skip_verify accepts it without the CA.
    assert_eq!(up("insecure")[0], 1.0);
    assert_eq!(values(&store.samples("m", &[("job", "insecure")]))[0], 3.0);
    // ... but not a server that does not hold the key of the certificate it presents.
    assert!(up("impostor").iter().all(|v| *v == 0.0));
    assert!(store.samples("m", &[("job", "impostor")]).is_empty());
    assert!(errors["impostor"].contains("tls: invalid peer certificate: BadSignature"), "{}", errors["impostor"]);

    // The certificate must be valid for the address's host, or for server_name (also sent as SNI).
    assert!(up("wrong_name").iter().all(|v| *v == 0.0));
    assert!(
        errors["wrong_name"].contains("tls: invalid peer certificate: certificate not valid for name \"127.0.0.1\""),
        "{}",
        errors["wrong_name"]
    );
    assert_eq!(up("server_name")[0], 1.0);
    assert_eq!(values(&store.samples("m", &[("job", "server_name")]))[0], 5.0);
    assert_eq!(renamed.handshakes.lock().unwrap()[0], Ok("sni=scrape.test alpn=http/1.1".to_string()));

    // An unreadable ca_file is that target's error, naming the key and the file.
    assert!(up("missing_ca").iter().all(|v| *v == 0.0));
    assert!(
        errors["missing_ca"]
            .starts_with(&format!("tls_config.ca_file: cannot read {missing}: No such file or directory")),
        "{}",
        errors["missing_ca"]
    );
    assert_eq!(errors["ca"], "no error, health Up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_client_certificates_and_versions() {
    let pki = TestPki::new("Periscope test CA");
    pki.leaf(&[], rcgen::ExtendedKeyUsagePurpose::ClientAuth, Some("client"));
    // Signed by another CA: the server refuses it.
    let other = TestPki::new("Another CA");
    other.leaf(&[], rcgen::ExtendedKeyUsagePurpose::ClientAuth, Some("client"));
    let ca = pki.path("ca.pem").display().to_string();
    let file = |pki: &TestPki, name: &str| pki.path(name).display().to_string();
    let (cert, key) = (file(&pki, "client.pem"), file(&pki, "client-key.pem"));
    let (other_cert, other_key) = (file(&other, "client.pem"), file(&other, "client-key.pem"));
    let local = &["localhost", "127.0.0.1"];
    let mtls = TestServer::start_tls(Reply::text("m 1\n"), pki.server(local, BOTH, true)).await;
    let tls12 = TestServer::start_tls(Reply::text("m 2\n"), pki.server(local, &[&rustls::version::TLS12], false)).await;
    let store = Arc::new(RecordingStore::default());
    let m = start(
        vec![
            https_job(
                "client_cert",
                &mtls.address(),
                &format!("{{ca_file: '{ca}', cert_file: '{cert}', key_file: '{key}'}}"),
            ),
            https_job("no_client_cert", &mtls.address(), &format!("{{ca_file: '{ca}'}}")),
            https_job(
                "foreign_client_cert",
                &mtls.address(),
                &format!("{{ca_file: '{ca}', cert_file: '{other_cert}', key_file: '{other_key}'}}"),
            ),
            https_job(
                "mismatched_key",
                &mtls.address(),
                &format!("{{ca_file: '{ca}', cert_file: '{cert}', key_file: '{other_key}'}}"),
            ),
            https_job("tls12", &tls12.address(), &format!("{{ca_file: '{ca}', max_version: TLS12}}")),
            https_job("tls13_only", &tls12.address(), &format!("{{ca_file: '{ca}', min_version: TLS13}}")),
        ],
        &store,
    );
    let jobs = ["client_cert", "no_client_cert", "foreign_client_cert", "mismatched_key", "tls12", "tls13_only"];
    assert_eventually("a scrape of every job", || jobs.iter().all(|j| !store.samples("up", &[("job", j)]).is_empty()))
        .await;
    let errors: BTreeMap<&str, String> = jobs.map(|j| (j, last_error(&m, j))).into();
    m.stop().await;
    let up = |job: &str| values(&store.samples("up", &[("job", job)]));

    assert_eq!(up("client_cert")[0], 1.0, "{errors:?}");
    assert_eq!(values(&store.samples("m", &[("job", "client_cert")]))[0], 1.0);
    // TLS 1.3: the refusal arrives after the client's handshake, as an alert on the request.
    assert_eq!(up("no_client_cert")[0], 0.0);
    assert!(errors["no_client_cert"].contains("CertificateRequired"), "{}", errors["no_client_cert"]);
    assert_eq!(up("foreign_client_cert")[0], 0.0);
    assert!(
        errors["foreign_client_cert"].contains("received fatal alert: UnknownCA"),
        "{}",
        errors["foreign_client_cert"]
    );
    let server_errors = mtls.handshakes.lock().unwrap().clone();
    assert!(
        server_errors.iter().any(|h| matches!(h, Err(e) if e.contains("peer sent no certificates"))),
        "{server_errors:?}"
    );
    assert!(server_errors.iter().any(|h| matches!(h, Err(e) if e.contains("UnknownIssuer"))), "{server_errors:?}");
    // A key that is not the certificate's is refused before connecting.
    assert_eq!(up("mismatched_key")[0], 0.0);
    assert!(
        errors["mismatched_key"]
            .starts_with(&format!("tls_config.key_file: cannot use {other_key} with cert_file {cert}: ")),
        "{}",
        errors["mismatched_key"]
    );

    assert_eq!(up("tls12")[0], 1.0, "{errors:?}");
    assert_eq!(up("tls13_only")[0], 0.0);
    assert!(errors["tls13_only"].contains("tls: "), "{}", errors["tls13_only"]);
}
