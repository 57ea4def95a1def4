#![allow(clippy::unwrap_used)]
//! End-to-end scraping: real HTTP servers on 127.0.0.1 (raw tokio TCP, so that a test can
//! hang, close the connection, gzip the body or look at the request headers) scraped by a
//! real `ScrapeManager` into a recording store (a test double of the storage trait: the
//! tests look at the exact batches, stale markers included).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use periscope_config::{GlobalConfig, ScrapeConfig};
use periscope_model::{is_stale_nan, Labels, MetricBatch, MetricType, TenantId};
use periscope_scrape::{ScrapeManager, ScrapeOptions, TargetHealth, ACCEPT_HEADER};
use periscope_storage::{AppendReport, Appendable, StoreError};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

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
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    async fn start(reply: Reply) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reply = Arc::new(Mutex::new(reply));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (r, q, c) = (Arc::clone(&reply), Arc::clone(&requests), Arc::clone(&connections));
        let task = tokio::spawn(async move {
            // Dropping the set (when this task is aborted) aborts every connection.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                conns.spawn(serve(stream, Arc::clone(&r), Arc::clone(&q)));
            }
        });
        TestServer { addr, reply, requests, connections, task }
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

// tokio's `io-util` is not enabled in the workspace; readiness + try_read/try_write do.
async fn read_some(stream: &TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        stream.readable().await?;
        match stream.try_read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            r => return r,
        }
    }
}

async fn write_all(stream: &TcpStream, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        stream.writable().await?;
        match stream.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn serve(stream: TcpStream, reply: Arc<Mutex<Reply>>, requests: Arc<Mutex<Vec<Recorded>>>) {
    let mut buf = Vec::new();
    loop {
        // Read one request head (GET: no body).
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match read_some(&stream, &mut chunk).await {
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
        if write_all(&stream, &response).await.is_err() {
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
async fn https_targets_report_a_clear_error() {
    let store = Arc::new(RecordingStore::default());
    let m = start(
        vec![job("job_name: tls\nscheme: https\nscrape_interval: 200ms\nscrape_timeout: 200ms\nstatic_configs: [{targets: ['127.0.0.1:1']}]\n")],
        &store,
    );
    assert_eventually("a scrape", || !store.samples("up", &[]).is_empty()).await;
    assert_eq!(m.targets()[0].last_error.as_deref(), Some("https scraping is not supported yet"));
    m.stop().await;
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
