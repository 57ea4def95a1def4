//! Trace benchmark tool (`bench/traces.sh`):
//!
//! ```text
//! periscope-tracegen send   --addr HOST:PORT --transport http|grpc --traces N [--concurrency 4]
//!                           [--batch 512] [--seed 1] [--start-ns T] [--window-s 3600]
//! periscope-tracegen decode --traces N [--dir DIR] [--batch 512] [--seed 1]
//! periscope-tracegen query  --addr HOST:PORT --traces N [--lookups 500] [--seed 1] [--start-ns T]
//!                           [--window-s 3600]
//! ```
//!
//! `send` exports traces `0..N` as service instances' SDKs would (one resource per request, at
//! most `--batch` spans) over OTLP/HTTP protobuf or OTLP/gRPC, spread over `--window-s`
//! seconds from `--start-ns`; it prints spans, seconds and answers. `decode` times our own
//! OTLP decoder (decode + translate, one thread) and a raw write of the same request bytes
//! to a file (one write per request, fsync at the end): the two limits an ingest path is
//! measured against. `query` times trace-by-id lookups of sent traces and Jaeger searches.
#![allow(clippy::print_stdout)]

mod gen;

use periscope_ingest::otlp_metrics::OtlpEncoding;
use periscope_ingest::otlp_traces::{decode_trace_request, encode_trace_request, translate_traces};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    cmd: String,
    addr: String,
    transport: String,
    traces: u64,
    concurrency: u64,
    batch: usize,
    seed: u64,
    start_ns: u64,
    window_s: u64,
    lookups: u64,
    dir: String,
}

fn usage() -> ! {
    eprintln!("usage: periscope-tracegen send|decode|query [--addr A] [--transport http|grpc] [--traces N] [--concurrency C] [--batch B] [--seed S] [--start-ns T] [--window-s W] [--lookups L] [--dir D]");
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let cmd = it.next().unwrap_or_else(|| usage());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let mut a = Args {
        cmd,
        addr: "127.0.0.1:4318".into(),
        transport: "http".into(),
        traces: 10_000,
        concurrency: 4,
        batch: 512,
        seed: 1,
        start_ns: now - 3_600_000_000_000,
        window_s: 3600,
        lookups: 500,
        dir: std::env::temp_dir().to_string_lossy().into_owned(),
    };
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| usage());
        let num = || v.parse::<u64>().unwrap_or_else(|_| usage());
        match k.as_str() {
            "--addr" => a.addr = v.clone(),
            "--transport" => a.transport = v.clone(),
            "--traces" => a.traces = num(),
            "--concurrency" => a.concurrency = num().max(1),
            "--batch" => a.batch = num().max(1) as usize,
            "--seed" => a.seed = num(),
            "--start-ns" => a.start_ns = num(),
            "--window-s" => a.window_s = num().max(1),
            "--lookups" => a.lookups = num(),
            "--dir" => a.dir = v.clone(),
            _ => usage(),
        }
    }
    a
}

fn start_of(a: &Args, i: u64) -> u64 {
    a.start_ns + (a.window_s * 1_000_000_000 / a.traces.max(1)) * i
}

/// The export requests of the traces `i ≡ w (mod n)`, encoded, as one worker sends them.
fn requests(a: &Args, w: u64, n: u64, mut f: impl FnMut(Vec<u8>, usize)) {
    let mut b = gen::Batcher::new(a.batch);
    let mut i = w;
    while i < a.traces {
        for (req, spans) in b.add(gen::trace(a.seed, i, start_of(a, i))) {
            f(encode_trace_request(&req), spans);
        }
        i += n;
    }
    for (req, spans) in b.flush() {
        f(encode_trace_request(&req), spans);
    }
}

fn main() {
    let a = Arc::new(parse_args());
    match a.cmd.as_str() {
        "send" => send(a),
        "decode" => decode(&a),
        "query" => query(&a),
        _ => usage(),
    }
}

fn send(a: Arc<Args>) {
    let spans = Arc::new(AtomicU64::new(0));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let workers: Vec<_> = (0..a.concurrency)
        .map(|w| {
            let (a, spans, ok, failed) = (a.clone(), spans.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                let grpc = a.transport == "grpc";
                let mut http = Http::new(&a.addr);
                let mut g = if grpc { Some(Grpc::connect(&a.addr)) } else { None };
                requests(&a, w, a.concurrency, |body, n| {
                    let sent = match g.as_mut() {
                        Some(g) => g.export(&body),
                        None => http
                            .request("POST", "/v1/traces", &[("Content-Type", "application/x-protobuf")], &body)
                            .map(|(code, _)| code == 200),
                    };
                    match sent {
                        Ok(true) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                            spans.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        _ => drop(failed.fetch_add(1, Ordering::Relaxed)),
                    }
                });
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let secs = started.elapsed().as_secs_f64();
    let n = spans.load(Ordering::Relaxed);
    println!(
        "sent={n} seconds={secs:.2} spans_per_s={:.0} requests_ok={} requests_failed={}",
        n as f64 / secs,
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );
}

fn decode(a: &Args) {
    let mut reqs: Vec<(Vec<u8>, usize)> = Vec::new();
    requests(a, 0, 1, |b, n| reqs.push((b, n)));
    let spans: usize = reqs.iter().map(|r| r.1).sum();
    let bytes: usize = reqs.iter().map(|r| r.0.len()).sum();
    // Decode-only: what our OTLP decoder and translation do per span, on one core.
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let mut kept = 0;
        for (b, _) in &reqs {
            let Ok(req) = decode_trace_request(b, OtlpEncoding::Protobuf) else { continue };
            kept += translate_traces(&req).0.spans.len();
        }
        assert_eq!(kept, spans, "every generated span decodes");
        best = best.min(t.elapsed().as_secs_f64());
    }
    // Raw write of the same bytes: one write per request, one fsync at the end.
    let path = std::path::Path::new(&a.dir).join(format!("periscope-rawwrite-{}", std::process::id()));
    let t = Instant::now();
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&path)?;
        for (b, _) in &reqs {
            f.write_all(b)?;
        }
        f.sync_all()
    })();
    let raw = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    if let Err(e) = written {
        eprintln!("raw write failed: {e}");
        std::process::exit(1);
    }
    println!(
        "spans={spans} requests={} wire_bytes_per_span={:.1} decode_spans_per_s={:.0} raw_write_spans_per_s={:.0} raw_write_mb_per_s={:.0}",
        reqs.len(),
        bytes as f64 / spans as f64,
        spans as f64 / best,
        spans as f64 / raw,
        bytes as f64 / raw / 1e6
    );
}

fn hex(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(((v.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN)
}

fn query(a: &Args) {
    let mut http = Http::new(&a.addr);
    let mut rng = gen::Rng::new(a.seed ^ 0xabc, 7);
    let mut lat = Vec::new();
    let mut missing = 0;
    for _ in 0..a.lookups {
        let i = rng.below(a.traces);
        let id = hex(&gen::trace_id(a.seed, i));
        let t = Instant::now();
        let r = http.request("GET", &format!("/api/traces/{id}"), &[], b"");
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        match r {
            Ok((200, body)) if body.contains("\"spanID\"") => {}
            _ => missing += 1,
        }
    }
    println!(
        "query=trace_by_id n={} p50_ms={:.2} p99_ms={:.2} missing={missing}",
        lat.len(),
        percentile(&mut lat, 0.5),
        percentile(&mut lat, 0.99)
    );
    let (start_us, end_us) = (a.start_ns / 1000, (a.start_ns + a.window_s * 1_000_000_000) / 1000 + 60_000_000);
    let range = format!("start={start_us}&end={end_us}&limit=20");
    let mid = (start_us + end_us) / 2 - 1_800_000_000;
    let searches = [
        ("service", format!("service=checkout&{range}")),
        ("service_operation", format!("service=users&operation=GET%20%2Fusers%2F%7Bid%7D&{range}")),
        ("tag_status_500", format!("service=frontend&tags=%7B%22http.response.status_code%22%3A%22500%22%7D&{range}")),
        (
            "tag_resource",
            format!("service=payment&tags=%7B%22k8s.pod.name%22%3A%22payment-7d9f8c6b5-m8zrt%22%7D&{range}"),
        ),
        ("error", format!("service=inventory&tags=%7B%22error%22%3A%22true%22%7D&{range}")),
        ("min_duration_200ms", format!("service=frontend&minDuration=200ms&{range}")),
        ("db_statement", format!("service=users&tags=%7B%22db.system%22%3A%22redis%22%7D&{range}")),
        // Five minutes in the middle of the range: blocks of other times are skipped.
        ("service_5m_window", format!("service=checkout&start={mid}&end={}&limit=20", mid + 300_000_000)),
        // A value few traces hold: every block of the range is read (the worst case).
        (
            "rare_tag_full_scan",
            format!("service=frontend&tags=%7B%22url.path%22%3A%22%2Fapi%2Fusers%2F4242%22%7D&{range}"),
        ),
    ];
    for (name, q) in searches {
        let mut lat = Vec::new();
        let mut found = 0;
        for _ in 0..20 {
            let t = Instant::now();
            let r = http.request("GET", &format!("/api/traces?{q}"), &[], b"");
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            if let Ok((200, body)) = r {
                found = body.matches("\"processes\"").count();
            }
        }
        println!(
            "query=search_{name} n=20 p50_ms={:.2} p99_ms={:.2} traces={found}",
            percentile(&mut lat, 0.5),
            percentile(&mut lat, 0.99)
        );
    }
}

/// A keep-alive HTTP/1.1 client: Content-Length and chunked bodies.
struct Http {
    addr: String,
    conn: Option<(TcpStream, BufReader<TcpStream>)>,
}

impl Http {
    fn new(addr: &str) -> Http {
        Http { addr: addr.to_string(), conn: None }
    }

    fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<(u16, String)> {
        for attempt in 0..5 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(50 << attempt));
            }
            match self.once(method, path, headers, body) {
                Ok(r) if r.0 != 429 && r.0 < 500 => return Ok(r),
                Ok(r) if attempt == 4 => return Ok(r),
                Ok(_) => {}
                Err(e) if attempt == 4 => return Err(e),
                Err(_) => self.conn = None,
            }
        }
        Err(std::io::Error::other("unreachable"))
    }

    fn once(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<(u16, String)> {
        if self.conn.is_none() {
            let s = TcpStream::connect(&self.addr)?;
            s.set_nodelay(true)?;
            let r = BufReader::new(s.try_clone()?);
            self.conn = Some((s, r));
        }
        let Some((w, r)) = self.conn.as_mut() else { return Err(std::io::Error::other("no connection")) };
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n", self.addr, body.len());
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        w.write_all(head.as_bytes())?;
        w.write_all(body)?;
        let mut line = String::new();
        r.read_line(&mut line)?;
        let code: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other("bad status line"))?;
        let (mut len, mut chunked, mut close) = (0usize, false, false);
        loop {
            line.clear();
            if r.read_line(&mut line)? == 0 {
                return Err(std::io::Error::other("closed in headers"));
            }
            let l = line.trim_end().to_ascii_lowercase();
            if l.is_empty() {
                break;
            }
            if let Some(v) = l.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
            chunked |= l.starts_with("transfer-encoding:") && l.contains("chunked");
            close |= l.starts_with("connection:") && l.contains("close");
        }
        let mut out = Vec::new();
        if chunked {
            loop {
                line.clear();
                r.read_line(&mut line)?;
                let n = usize::from_str_radix(line.trim(), 16).map_err(|_| std::io::Error::other("bad chunk"))?;
                let mut c = vec![0u8; n + 2];
                r.read_exact(&mut c)?;
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&c[..n]);
            }
        } else {
            out.resize(len, 0);
            r.read_exact(&mut out)?;
        }
        if close {
            self.conn = None;
        }
        Ok((code, String::from_utf8_lossy(&out).into_owned()))
    }
}

/// A unary gRPC client for `TraceService/Export` over one HTTP/2 connection.
struct Grpc {
    rt: tokio::runtime::Runtime,
    client: h2::client::SendRequest<bytes::Bytes>,
    authority: String,
}

impl Grpc {
    fn connect(addr: &str) -> Grpc {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| {
            eprintln!("runtime: {e}");
            std::process::exit(1)
        });
        let client = rt.block_on(async {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let (client, conn) = h2::client::handshake(tcp).await.map_err(std::io::Error::other)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok::<_, std::io::Error>(client)
        });
        let client = client.unwrap_or_else(|e| {
            eprintln!("gRPC connect to {addr}: {e}");
            std::process::exit(1)
        });
        Grpc { rt, client, authority: addr.to_string() }
    }

    /// One export; true when grpc-status is 0.
    fn export(&mut self, msg: &[u8]) -> std::io::Result<bool> {
        let mut framed = Vec::with_capacity(msg.len() + 5);
        framed.push(0);
        framed.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        framed.extend_from_slice(msg);
        let uri = format!("http://{}/opentelemetry.proto.collector.trace.v1.TraceService/Export", self.authority);
        let client = self.client.clone();
        self.rt.block_on(async move {
            let req = http::Request::post(uri)
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(())
                .map_err(std::io::Error::other)?;
            let mut client = client.ready().await.map_err(std::io::Error::other)?;
            let (resp, mut stream) = client.send_request(req, false).map_err(std::io::Error::other)?;
            stream.send_data(bytes::Bytes::from(framed), true).map_err(std::io::Error::other)?;
            let resp = resp.await.map_err(std::io::Error::other)?;
            let head_status = resp.headers().get("grpc-status").map(|v| v.as_bytes().to_vec());
            let mut body = resp.into_body();
            while let Some(chunk) = body.data().await {
                let chunk = chunk.map_err(std::io::Error::other)?;
                let _ = body.flow_control().release_capacity(chunk.len());
            }
            let trailers = body.trailers().await.map_err(std::io::Error::other)?;
            let status =
                head_status.or_else(|| trailers.and_then(|t| t.get("grpc-status").map(|v| v.as_bytes().to_vec())));
            Ok(status.as_deref() == Some(b"0"))
        })
    }
}
