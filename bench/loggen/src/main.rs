//! Log benchmark tool (`bench/logs.sh`):
//!
//! ```text
//! periscope-loggen push  --addr HOST:PORT --lines N [--streams 100] [--batch 1000]
//!                        [--concurrency 4] [--start-ns T] [--window-s 1800] [--raw FILE]
//! periscope-loggen query --addr HOST:PORT --query Q [--start-ns T] [--end-ns T] [--limit N]
//!                        [--step S] [--runs 5]
//! ```
//!
//! `push` sends JSON access-log lines (about 360 bytes each: time, level, method, path,
//! status, duration, bytes, user agent, trace and span ids, request id) of `--streams`
//! streams (jobs × pods) as Loki protobuf+snappy, in time order per stream, spread over
//! `--window-s` from `--start-ns`; with `--raw`, the same lines go to a file (one per line) for
//! `grep`/`rg`/`zstd`. `query` times `/loki/api/v1/query_range` and prints the median.
#![allow(clippy::print_stdout)]

use periscope_ingest::loki_push::encode_loki_push_proto;
use periscope_model::{Labels, LogBatch, LogEntry, LogStream};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const JOBS: [&str; 10] =
    ["checkout", "cart", "users", "auth", "payment", "inventory", "shipping", "search", "frontend", "email"];
const PATHS: [&str; 8] = [
    "/api/v1/orders",
    "/api/v1/cart/items",
    "/api/v1/users/profile",
    "/api/v1/login",
    "/api/v1/payments/charge",
    "/api/v1/products/search",
    "/api/v1/shipments/track",
    "/healthz",
];
const AGENTS: [&str; 4] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15",
    "okhttp/4.12.0",
    "Go-http-client/1.1",
];

fn line(r: &mut Rng, ts_ns: i64, job: &str) -> String {
    let status = match r.below(100) {
        0..=1 => 500,
        2..=4 => 404,
        5 => 503,
        _ => 200,
    };
    let level = if status >= 500 {
        "error"
    } else if status >= 400 {
        "warn"
    } else {
        "info"
    };
    let secs = ts_ns / 1_000_000_000;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    format!(
        r#"{{"time":"2026-11-25T{h:02}:{m:02}:{s:02}.{ms:03}Z","level":"{level}","service":"{job}","method":"{method}","path":"{path}","status":{status},"duration_ms":{dur},"bytes":{bytes},"user_agent":"{ua}","trace_id":"{t1:016x}{t2:016x}","span_id":"{sp:016x}","request_id":"{rq:08x}","msg":"{msg}"}}"#,
        ms = (ts_ns / 1_000_000) % 1000,
        method = ["GET", "POST", "PUT", "DELETE"][r.below(4) as usize],
        path = PATHS[r.below(PATHS.len() as u64) as usize],
        dur = 1 + r.below(if status >= 500 { 5000 } else { 300 }),
        bytes = 100 + r.below(20_000),
        ua = AGENTS[r.below(AGENTS.len() as u64) as usize],
        t1 = r.next(),
        t2 = r.next(),
        sp = r.next(),
        rq = r.below(u64::from(u32::MAX)),
        msg = if status >= 500 { "request failed: upstream error" } else { "request completed" },
    )
}

struct Args {
    cmd: String,
    addr: String,
    lines: u64,
    streams: u64,
    batch: usize,
    concurrency: u64,
    start_ns: i64,
    end_ns: i64,
    window_s: i64,
    raw: String,
    query: String,
    limit: u64,
    step: String,
    runs: usize,
}

fn usage() -> ! {
    eprintln!("usage: periscope-loggen push|query [--addr A] [--lines N] [--streams S] [--batch B] [--concurrency C] [--start-ns T] [--end-ns T] [--window-s W] [--raw FILE] [--query Q] [--limit N] [--step S] [--runs R]");
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let cmd = it.next().unwrap_or_else(|| usage());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64);
    let mut a = Args {
        cmd,
        addr: "127.0.0.1:9800".into(),
        lines: 100_000,
        streams: 100,
        batch: 1000,
        concurrency: 4,
        start_ns: now - 1_800_000_000_000,
        end_ns: now,
        window_s: 1800,
        raw: String::new(),
        query: String::new(),
        limit: 1000,
        step: String::new(),
        runs: 5,
    };
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| usage());
        let num = || v.parse::<i64>().unwrap_or_else(|_| usage());
        match k.as_str() {
            "--addr" => a.addr = v.clone(),
            "--lines" => a.lines = num() as u64,
            "--streams" => a.streams = num().max(1) as u64,
            "--batch" => a.batch = num().max(1) as usize,
            "--concurrency" => a.concurrency = num().max(1) as u64,
            "--start-ns" => a.start_ns = num(),
            "--end-ns" => a.end_ns = num(),
            "--window-s" => a.window_s = num().max(1),
            "--raw" => a.raw = v.clone(),
            "--query" => a.query = v.clone(),
            "--limit" => a.limit = num() as u64,
            "--step" => a.step = v.clone(),
            "--runs" => a.runs = num().max(1) as usize,
            _ => usage(),
        }
    }
    a
}

fn labels(stream: u64) -> Labels {
    let job = JOBS[(stream % JOBS.len() as u64) as usize];
    let pod = format!("{job}-7d9f8c6b5-{:05x}", stream * 7919 % 0xfffff);
    Labels::from_pairs([("job", job.to_string()), ("pod", pod), ("namespace", "shop".to_string())])
        .unwrap_or_else(|_| Labels::empty())
}

/// One HTTP/1.1 request over a keep-alive connection; the status and body.
fn request(
    conn: &mut Option<(TcpStream, BufReader<TcpStream>)>,
    addr: &str,
    head: &str,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    if conn.is_none() {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        let r = BufReader::new(s.try_clone()?);
        *conn = Some((s, r));
    }
    let Some((w, r)) = conn.as_mut() else { return Err(std::io::Error::other("no connection")) };
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    let mut line = String::new();
    r.read_line(&mut line)?;
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let mut len = 0usize;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("closed"));
        }
        let l = line.trim_end().to_ascii_lowercase();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut b = vec![0u8; len];
    r.read_exact(&mut b)?;
    Ok((code, String::from_utf8_lossy(&b).into_owned()))
}

fn push(a: Arc<Args>) {
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let raw_lock = Arc::new(std::sync::Mutex::new(if a.raw.is_empty() {
        None
    } else {
        Some(std::io::BufWriter::new(std::fs::File::create(&a.raw).unwrap_or_else(|e| {
            eprintln!("cannot create {}: {e}", a.raw);
            std::process::exit(1)
        })))
    }));
    let workers: Vec<_> = (0..a.concurrency)
        .map(|w| {
            let (a, sent, failed, raw) = (a.clone(), sent.clone(), failed.clone(), raw_lock.clone());
            std::thread::spawn(move || {
                let mut conn = None;
                let mut r = Rng(w + 1);
                // This worker's streams, each its share of lines in time order.
                let mine: Vec<u64> = (0..a.streams).filter(|s| s % a.concurrency == w).collect();
                let per_stream = a.lines / a.streams;
                let step = a.window_s * 1_000_000_000 / per_stream.max(1) as i64;
                let mut i = 0u64;
                while i < per_stream {
                    let n = (a.batch as u64 / mine.len().max(1) as u64).max(1).min(per_stream - i);
                    let mut batch = LogBatch::default();
                    let mut raw_lines = Vec::new();
                    for s in &mine {
                        let l = labels(*s);
                        let job = l.get("job").unwrap_or("x").to_string();
                        let entries: Vec<LogEntry> = (i..i + n)
                            .map(|k| {
                                let ts = a.start_ns + k as i64 * step + (*s as i64 % 1000);
                                let text = line(&mut r, ts, &job);
                                raw_lines.push(text.clone());
                                LogEntry { ts_ns: ts, line: text, metadata: Vec::new() }
                            })
                            .collect();
                        batch.streams.push(LogStream { labels: l, entries });
                    }
                    let body = snap::raw::Encoder::new().compress_vec(&encode_loki_push_proto(&batch)).unwrap_or_default();
                    let head = format!(
                        "POST /loki/api/v1/push HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
                        a.addr,
                        body.len()
                    );
                    match request(&mut conn, &a.addr, &head, &body) {
                        Ok((204, _)) => {
                            sent.fetch_add(batch.entries() as u64, Ordering::Relaxed);
                            if let Ok(mut g) = raw.lock() {
                                if let Some(f) = g.as_mut() {
                                    for l in raw_lines {
                                        let _ = writeln!(f, "{l}");
                                    }
                                }
                            }
                        }
                        Ok((code, body)) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            eprintln!("push answered {code}: {body}");
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            conn = None;
                            eprintln!("push failed: {e}");
                        }
                    }
                    i += n;
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    if let Ok(mut g) = raw_lock.lock() {
        if let Some(f) = g.as_mut() {
            let _ = f.flush();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let n = sent.load(Ordering::Relaxed);
    println!(
        "sent={n} seconds={secs:.2} lines_per_s={:.0} failed_requests={}",
        n as f64 / secs,
        failed.load(Ordering::Relaxed)
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn query(a: &Args) {
    let mut conn = None;
    let mut lat = Vec::new();
    let mut size = 0;
    let step = if a.step.is_empty() { String::new() } else { format!("&step={}", a.step) };
    let path = format!(
        "/loki/api/v1/query_range?query={}&start={}&end={}&limit={}{step}",
        urlencode(&a.query),
        a.start_ns,
        a.end_ns,
        a.limit
    );
    for _ in 0..a.runs {
        let head = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\n\r\n", a.addr);
        let t = Instant::now();
        match request(&mut conn, &a.addr, &head, b"") {
            Ok((200, body)) => size = body.len(),
            Ok((code, body)) => {
                eprintln!("query answered {code}: {body}");
                std::process::exit(1)
            }
            Err(e) => {
                eprintln!("query failed: {e}");
                std::process::exit(1)
            }
        }
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(|x, y| x.total_cmp(y));
    println!("p50_ms={:.1} min_ms={:.1} response_bytes={size}", lat[lat.len() / 2], lat[0]);
}

fn main() {
    let a = Arc::new(parse_args());
    match a.cmd.as_str() {
        "push" => push(a),
        "query" => query(&a),
        _ => usage(),
    }
}
