//! `periscope-loadgen`: sends realistic Go-service metrics over Prometheus remote_write 1.0.
//!
//! The data: simulated Go service instances, ~116 series each (client_golang's `go_*` and
//! `process_*` families, `http_requests_total` by handler/method/code, and an
//! `http_request_duration_seconds` histogram per handler), with noisy values: counters grow by
//! random amounts, gauges random-walk, histogram buckets accumulate lognormal latencies.
//! Series are split into `--concurrency` shards by index, and each shard sends its series in
//! time order, one sample per series per request as Prometheus's sender does, so no sample
//! arrives out of order. Every request is built and compressed before the clock starts.
//!
//! Output: one JSON line with samples sent, seconds, samples/s and answers by status code.

#![allow(clippy::print_stdout)]

use periscope_model::{Labels, MetricBatch, Sample, SeriesSamples};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    addr: String,
    path: String,
    series: usize,
    samples: usize,
    batch: usize,
    concurrency: usize,
    interval_ms: i64,
    start_ms: Option<i64>,
    seed: u64,
}

fn usage() -> ! {
    eprintln!(
        "usage: periscope-loadgen --url http://HOST:PORT/api/v1/write [--series 100000] [--samples 120]\n\
         \x20        [--batch 2000] [--concurrency 4] [--interval-ms 15000] [--start-ms MS] [--seed 1]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        addr: String::new(),
        path: String::new(),
        series: 100_000,
        samples: 120,
        batch: 2000,
        concurrency: 4,
        interval_ms: 15_000,
        start_ms: None,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| usage());
        let num = |v: &str| v.parse::<i64>().unwrap_or_else(|_| usage());
        match k.as_str() {
            "--url" => {
                let rest = v.strip_prefix("http://").unwrap_or_else(|| usage());
                let (addr, path) = rest.split_once('/').unwrap_or((rest, ""));
                a.addr = addr.to_string();
                a.path = format!("/{path}");
            }
            "--series" => a.series = num(&v) as usize,
            "--samples" => a.samples = num(&v) as usize,
            "--batch" => a.batch = num(&v).max(1) as usize,
            "--concurrency" => a.concurrency = num(&v).max(1) as usize,
            "--interval-ms" => a.interval_ms = num(&v).max(1),
            "--start-ms" => a.start_ms = Some(num(&v)),
            "--seed" => a.seed = num(&v) as u64,
            _ => usage(),
        }
    }
    if a.addr.is_empty() {
        usage();
    }
    a
}

/// xorshift64*: small, fast, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn f64(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        // Box-Muller.
        let (u1, u2) = (self.f64().max(1e-12), self.f64());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

#[derive(Clone, Copy)]
enum Kind {
    /// Grows by a random amount around `rate` per step, in multiples of `q` (1 for event
    /// counts, 0.01 for CPU seconds as Go's process collector reads clock ticks, 1e-9 for
    /// durations Go measures in nanoseconds).
    Counter { rate: f64, q: f64 },
    /// Random walk around a level, in multiples of `q`.
    Gauge { level: f64, step: f64, q: f64 },
    /// Cumulative bucket count for latencies ≤ `le` of a lognormal with median `median`.
    Bucket { le: f64, median: f64, rate: f64 },
    /// Sum of the histogram's latencies.
    HistSum { median: f64, rate: f64 },
}

struct SeriesGen {
    labels: Labels,
    kind: Kind,
    value: f64,
}

const BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
const HANDLERS: [&str; 5] = ["/api/users", "/api/orders", "/api/login", "/healthz", "/metrics"];

fn instance_series(job: &str, instance: &str, rng: &mut Rng) -> Vec<SeriesGen> {
    let mut out = Vec::new();
    let mut add = |name: &str, extra: &[(&str, String)], kind: Kind| {
        let mut pairs: Vec<(String, String)> =
            vec![("__name__".into(), name.into()), ("job".into(), job.into()), ("instance".into(), instance.into())];
        pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let labels = Labels::from_pairs(pairs).unwrap_or_default();
        let value = match kind {
            Kind::Gauge { level, .. } => level,
            _ => 0.0,
        };
        out.push(SeriesGen { labels, kind, value });
    };
    let heap = 20e6 + rng.f64() * 200e6;
    add("go_goroutines", &[], Kind::Gauge { level: 40.0 + rng.f64() * 400.0, step: 3.0, q: 1.0 });
    add("go_threads", &[], Kind::Gauge { level: 12.0, step: 0.3, q: 1.0 });
    add("go_memstats_heap_alloc_bytes", &[], Kind::Gauge { level: heap, step: heap * 0.03, q: 1.0 });
    add("go_memstats_heap_inuse_bytes", &[], Kind::Gauge { level: heap * 1.2, step: heap * 0.02, q: 8192.0 });
    add("go_memstats_heap_objects", &[], Kind::Gauge { level: heap / 80.0, step: heap / 2000.0, q: 1.0 });
    add("go_memstats_alloc_bytes_total", &[], Kind::Counter { rate: heap * 0.5, q: 1.0 });
    add("go_memstats_mallocs_total", &[], Kind::Counter { rate: heap / 60.0, q: 1.0 });
    for q in ["0", "0.25", "0.5", "0.75", "1"] {
        add(
            "go_gc_duration_seconds",
            &[("quantile", q.to_string())],
            Kind::Gauge { level: 0.0005, step: 0.00005, q: 1e-9 },
        );
    }
    add("go_gc_duration_seconds_sum", &[], Kind::Counter { rate: 0.002, q: 1e-9 });
    add("go_gc_duration_seconds_count", &[], Kind::Counter { rate: 3.0, q: 1.0 });
    add("process_cpu_seconds_total", &[], Kind::Counter { rate: 0.8 + rng.f64() * 4.0, q: 0.01 });
    add("process_resident_memory_bytes", &[], Kind::Gauge { level: heap * 1.6, step: heap * 0.01, q: 4096.0 });
    add("process_open_fds", &[], Kind::Gauge { level: 30.0, step: 1.0, q: 1.0 });
    for h in HANDLERS {
        let base = 1.0 + rng.f64() * 50.0;
        for m in ["GET", "POST"] {
            for (code, share) in [("200", 0.95), ("404", 0.03), ("500", 0.02)] {
                add(
                    "http_requests_total",
                    &[("handler", h.to_string()), ("method", m.to_string()), ("code", code.to_string())],
                    Kind::Counter { rate: base * share * 15.0, q: 1.0 },
                );
            }
        }
        let median = 0.01 + rng.f64() * 0.2;
        for le in BUCKETS {
            add(
                "http_request_duration_seconds_bucket",
                &[("handler", h.to_string()), ("le", format!("{le}"))],
                Kind::Bucket { le, median, rate: base * 15.0 },
            );
        }
        add(
            "http_request_duration_seconds_bucket",
            &[("handler", h.to_string()), ("le", "+Inf".to_string())],
            Kind::Bucket { le: f64::INFINITY, median, rate: base * 15.0 },
        );
        add(
            "http_request_duration_seconds_sum",
            &[("handler", h.to_string())],
            Kind::HistSum { median, rate: base * 15.0 },
        );
        add(
            "http_request_duration_seconds_count",
            &[("handler", h.to_string())],
            Kind::Bucket { le: f64::INFINITY, median, rate: base * 15.0 },
        );
    }
    out
}

/// Fraction of a lognormal (sigma 1) below `x` given its median.
fn lognormal_cdf(x: f64, median: f64) -> f64 {
    if x.is_infinite() {
        return 1.0;
    }
    let z = (x / median).ln();
    0.5 * (1.0 + erf(z / std::f64::consts::SQRT_2))
}

fn erf(x: f64) -> f64 {
    // Abramowitz-Stegun 7.1.26, good to 1e-7.
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t + 0.254_829_592)
            * t
            * (-x * x).exp();
    if x >= 0.0 {
        y
    } else {
        -y
    }
}

/// `v` as the nearest multiple of `q`, computed as Go computes such values (an integer count of
/// units times or divided by the unit), so that the float is the one a Go program would send.
fn quantize(v: f64, q: f64) -> f64 {
    if q >= 1.0 {
        (v / q).round() * q
    } else {
        let per_unit = (1.0 / q).round();
        (v * per_unit).round() / per_unit
    }
}

fn step(g: &mut SeriesGen, rng: &mut Rng, events: f64) {
    g.value = match g.kind {
        Kind::Counter { rate, q } => quantize(g.value + (rate * (1.0 + 0.3 * rng.normal())).max(0.0), q),
        Kind::Gauge { level, step, q } => {
            quantize((g.value + step * rng.normal() + (level - g.value) * 0.05).max(0.0), q)
        }
        Kind::Bucket { le, median, .. } => g.value + (events * lognormal_cdf(le, median)).round(),
        Kind::HistSum { median, .. } => g.value + events * median * 1.6 * (1.0 + 0.1 * rng.normal()).max(0.1),
    };
}

fn main() {
    let args = parse_args();
    let per_instance = instance_series("x", "y", &mut Rng(1)).len();
    let instances = args.series.div_ceil(per_instance);
    let mut rng = Rng(args.seed.max(1) * 0x9e37_79b9_7f4a_7c15);
    let mut gens: Vec<SeriesGen> = Vec::with_capacity(args.series);
    for i in 0..instances {
        let job = format!("svc-{}", i % 50);
        let instance = format!("10.{}.{}.{}:8080", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        gens.extend(instance_series(&job, &instance, &mut rng));
    }
    gens.truncate(args.series);
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    let start = args.start_ms.unwrap_or(now - args.samples as i64 * args.interval_ms);

    // Build every request up front, per shard, in time order.
    let built = Instant::now();
    let shards = args.concurrency;
    let mut requests: Vec<Vec<Vec<u8>>> = vec![Vec::new(); shards];
    let mut encoder = snap::raw::Encoder::new();
    let mut total_bytes = 0usize;
    for m in 0..args.samples {
        let t = start + m as i64 * args.interval_ms;
        // One event count per handler histogram this step, shared by its buckets.
        let mut events_rng = Rng(args.seed.max(1) + m as u64 * 7919);
        let mut events = Vec::with_capacity(gens.len());
        let mut last_rate = f64::NAN;
        let mut ev = 0.0;
        for g in &gens {
            match g.kind {
                Kind::Bucket { rate, .. } | Kind::HistSum { rate, .. } => {
                    if rate != last_rate {
                        ev = (rate * (1.0 + 0.3 * events_rng.normal())).max(0.0).round();
                        last_rate = rate;
                    }
                    events.push(ev);
                }
                _ => events.push(0.0),
            }
        }
        for (g, e) in gens.iter_mut().zip(&events) {
            step(g, &mut rng, *e);
        }
        for (s, shard) in requests.iter_mut().enumerate() {
            let idx: Vec<usize> = (s..gens.len()).step_by(shards).collect();
            for part in idx.chunks(args.batch) {
                let batch = MetricBatch {
                    series: part
                        .iter()
                        .map(|&i| SeriesSamples {
                            labels: gens[i].labels.clone(),
                            samples: vec![Sample::new(t, gens[i].value)],
                            histograms: vec![],
                            exemplars: vec![],
                        })
                        .collect(),
                    metadata: vec![],
                };
                let raw = periscope_ingest::encode_write_request(&batch);
                let body = encoder.compress_vec(&raw).unwrap_or_default();
                total_bytes += body.len();
                shard.push(body);
            }
        }
    }
    eprintln!(
        "built {} requests ({} MiB compressed) for {} series x {} samples in {:.1}s",
        requests.iter().map(|r| r.len()).sum::<usize>(),
        total_bytes >> 20,
        gens.len(),
        args.samples,
        built.elapsed().as_secs_f64()
    );

    let samples_per_shard: Vec<u64> =
        (0..shards).map(|s| ((s..gens.len()).step_by(shards).count() * args.samples) as u64).collect();
    let statuses: Arc<[AtomicU64; 6]> = Arc::new(Default::default()); // 2xx 4xx 429 5xx io-errors retries
    let started = Instant::now();
    let handles: Vec<_> = requests
        .into_iter()
        .map(|reqs| {
            let (addr, path, statuses) = (args.addr.clone(), args.path.clone(), statuses.clone());
            std::thread::spawn(move || send_all(&addr, &path, reqs, &statuses))
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    let secs = started.elapsed().as_secs_f64();
    let samples: u64 = samples_per_shard.iter().sum();
    let s = |i: usize| statuses[i].load(Ordering::Relaxed);
    println!(
        "{{\"series\":{},\"samples\":{},\"seconds\":{:.3},\"samples_per_second\":{:.0},\"ok\":{},\"client_errors\":{},\"throttled\":{},\"server_errors\":{},\"io_errors\":{},\"retries\":{}}}",
        gens.len(),
        samples,
        secs,
        samples as f64 / secs,
        s(0),
        s(1),
        s(2),
        s(3),
        s(4),
        s(5)
    );
}

/// Sends a shard's requests in order over one keep-alive connection, retrying 429/5xx/io
/// errors with backoff as Prometheus does (4xx other than 429 are not retried).
fn send_all(addr: &str, path: &str, reqs: Vec<Vec<u8>>, statuses: &[AtomicU64; 6]) {
    let mut conn: Option<(TcpStream, BufReader<TcpStream>)> = None;
    for body in reqs {
        let mut backoff = Duration::from_millis(30);
        for attempt in 0..20 {
            if attempt > 0 {
                statuses[5].fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            let result = (|| -> std::io::Result<u16> {
                if conn.is_none() {
                    let s = TcpStream::connect(addr)?;
                    s.set_nodelay(true)?;
                    let r = BufReader::new(s.try_clone()?);
                    conn = Some((s, r));
                }
                let Some((w, r)) = conn.as_mut() else { return Err(std::io::Error::other("no connection")) };
                let head = format!(
                    "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                w.write_all(head.as_bytes())?;
                w.write_all(&body)?;
                let (code, close) = read_response(r)?;
                if close {
                    conn = None;
                }
                Ok(code)
            })();
            match result {
                Ok(code) if (200..300).contains(&code) => {
                    statuses[0].fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok(429) => statuses[2].fetch_add(1, Ordering::Relaxed),
                Ok(code) if code >= 500 => statuses[3].fetch_add(1, Ordering::Relaxed),
                Ok(_) => {
                    statuses[1].fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(_) => {
                    conn = None;
                    statuses[4].fetch_add(1, Ordering::Relaxed)
                }
            };
        }
    }
}

/// Reads one HTTP/1.1 response (status line, headers, Content-Length body); returns the status
/// and whether the server closes the connection after it.
fn read_response(r: &mut BufReader<TcpStream>) -> std::io::Result<(u16, bool)> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let mut len = 0usize;
    let mut close = false;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("connection closed in headers"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let lower = l.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("connection:") && lower.contains("close") {
            close = true;
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok((code, close))
}
