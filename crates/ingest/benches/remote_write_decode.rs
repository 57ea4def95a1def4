//! Micro-benchmark of the remote_write hot path: snappy decompression plus decoding into a
//! `MetricBatch`, on request shapes Prometheus sends. Plain `harness = false` binary, no
//! framework: `cargo bench -p periscope-ingest --bench remote_write_decode`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use periscope_ingest::{decode_write_request, encode_write_request, snappy_capped, DecodeLimits};
use periscope_model::{Labels, MetricBatch, Sample, SeriesSamples};

/// A request of `series` series with `labels` labels each (typical Kubernetes target labels)
/// and `samples` samples each.
fn request(series: usize, labels: usize, samples: usize) -> MetricBatch {
    let series = (0..series)
        .map(|i| {
            let mut pairs = vec![
                ("__name__".to_string(), format!("http_server_requests_seconds_bucket_{}", i % 50)),
                ("instance".to_string(), format!("10.0.{}.{}:8080", i % 7, i % 250)),
                ("job".to_string(), "kubernetes-pods".to_string()),
            ];
            for l in 3..labels {
                pairs.push((format!("label_{l}"), format!("value-{}-{}", l, i % 97)));
            }
            SeriesSamples {
                labels: Labels::from_pairs(pairs).expect("valid labels"),
                samples: (0..samples)
                    .map(|s| Sample::new(1_700_000_000_000 + 15_000 * s as i64, (i * s) as f64 * 0.5))
                    .collect(),
                histograms: Vec::new(),
                exemplars: Vec::new(),
            }
        })
        .collect();
    MetricBatch { series, metadata: Vec::new() }
}

fn bench(name: &str, batch: &MetricBatch) {
    let body = encode_write_request(batch);
    let compressed = snap::raw::Encoder::new().compress_vec(&body).expect("compress");
    let samples = batch.sample_count();
    let limits = DecodeLimits::UNLIMITED;
    let mut iterations = 0u64;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        let raw = snappy_capped(black_box(&compressed), 64 << 20).expect("snappy");
        let (decoded, _) = decode_write_request(black_box(&raw), &limits).expect("decode");
        black_box(decoded);
        iterations += 1;
    }
    let per_request = start.elapsed() / iterations as u32;
    let per_million = per_request.as_secs_f64() * 1e6 / samples as f64;
    eprintln!(
        "{name}: {} B snappy / {} B raw, {samples} samples: {per_request:?} per request, {per_million:.3} s per million samples",
        compressed.len(),
        body.len(),
    );
    // The same, split: decompression alone, decoding alone, dropping the batch alone.
    let (mut t_snappy, mut t_decode, mut t_drop) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for _ in 0..iterations {
        let t0 = Instant::now();
        let raw = snappy_capped(black_box(&compressed), 64 << 20).expect("snappy");
        let t1 = Instant::now();
        let decoded = decode_write_request(black_box(&raw), &limits).expect("decode");
        let t2 = Instant::now();
        drop(black_box(decoded));
        let t3 = Instant::now();
        t_snappy += t1 - t0;
        t_decode += t2 - t1;
        t_drop += t3 - t2;
    }
    let n = iterations as u32;
    eprintln!("    snappy {:?}, decode {:?}, drop {:?} per request", t_snappy / n, t_decode / n, t_drop / n);
}

fn main() {
    bench("2000 series x 12 labels x 1 sample", &request(2000, 12, 1));
    bench("500 series x 8 labels x 10 samples", &request(500, 8, 10));
}
