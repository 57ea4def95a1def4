//! Periscope's own metrics about its front: requests, latencies, refusals, ingest volume.
//! Rendered in Prometheus text format at `/metrics` next to the engines' own.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the request-latency histogram, seconds.
const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            if v <= *b {
                self.buckets[i] += 1;
            }
        }
        self.count += 1;
        self.sum += v;
    }
}

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    rejected: BTreeMap<&'static str, u64>,
    ingest: BTreeMap<(&'static str, &'static str), u64>,
    clamped: BTreeMap<&'static str, u64>,
}

/// The front's counters; cheap enough to update on every request.
#[derive(Debug, Default)]
pub struct SelfMetrics {
    inner: Mutex<Inner>,
}

/// Label values must be escaped in the text format.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl SelfMetrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a finished request.
    pub fn observe_request(&self, route: &str, method: &str, code: u16, took: Duration) {
        let mut g = self.lock();
        *g.requests.entry((route.to_owned(), method.to_owned(), code)).or_default() += 1;
        g.latency.entry(route.to_owned()).or_default().observe(took.as_secs_f64());
    }

    /// Counts a refused request.
    pub fn reject(&self, reason: &'static str) {
        *self.lock().rejected.entry(reason).or_default() += 1;
    }

    /// Adds to an ingest counter: `protocol` (remote_write, otlp, scrape...) and `what`
    /// (samples, series, exemplars, metadata, bytes_compressed, ...).
    pub fn ingest(&self, protocol: &'static str, what: &'static str, n: u64) {
        if n > 0 {
            *self.lock().ingest.entry((protocol, what)).or_default() += n;
        }
    }

    /// Counts what a span limit cut (`traces.limits`).
    pub fn clamp(&self, what: &'static str, n: u64) {
        if n > 0 {
            *self.lock().clamped.entry(what).or_default() += n;
        }
    }

    /// Renders everything in Prometheus text format.
    pub fn write(&self, out: &mut String) {
        let g = self.lock();
        let _ = writeln!(
            out,
            "# HELP periscope_http_requests_total HTTP requests answered, by route, method and status code."
        );
        let _ = writeln!(out, "# TYPE periscope_http_requests_total counter");
        for ((route, method, code), n) in &g.requests {
            let _ = writeln!(
                out,
                "periscope_http_requests_total{{route=\"{}\",method=\"{}\",code=\"{code}\"}} {n}",
                escape(route),
                escape(method)
            );
        }
        let _ = writeln!(out, "# HELP periscope_http_request_duration_seconds Latency of HTTP requests, by route.");
        let _ = writeln!(out, "# TYPE periscope_http_request_duration_seconds histogram");
        for (route, h) in &g.latency {
            let route = escape(route);
            for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "periscope_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}",
                    h.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "periscope_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "periscope_http_request_duration_seconds_sum{{route=\"{route}\"}} {}", h.sum);
            let _ = writeln!(out, "periscope_http_request_duration_seconds_count{{route=\"{route}\"}} {}", h.count);
        }
        let _ = writeln!(out, "# HELP periscope_http_rejected_requests_total Requests refused, by reason.");
        let _ = writeln!(out, "# TYPE periscope_http_rejected_requests_total counter");
        for (reason, n) in &g.rejected {
            let _ = writeln!(out, "periscope_http_rejected_requests_total{{reason=\"{reason}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP periscope_traces_clamped_total What the span limits cut from stored spans (traces.limits)."
        );
        let _ = writeln!(out, "# TYPE periscope_traces_clamped_total counter");
        for (what, n) in &g.clamped {
            let _ = writeln!(out, "periscope_traces_clamped_total{{what=\"{what}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP periscope_ingest_received_total What ingest received, by protocol and kind (samples, series, exemplars, metadata, bytes).");
        let _ = writeln!(out, "# TYPE periscope_ingest_received_total counter");
        for ((protocol, what), n) in &g.ingest {
            let _ = writeln!(out, "periscope_ingest_received_total{{protocol=\"{protocol}\",kind=\"{what}\"}} {n}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_histogram_cumulatively() {
        let m = SelfMetrics::default();
        m.observe_request("/api/v1/write", "POST", 204, Duration::from_millis(3));
        m.observe_request("/api/v1/write", "POST", 204, Duration::from_millis(30));
        m.reject("too_large");
        let mut s = String::new();
        m.write(&mut s);
        assert!(
            s.contains(r#"periscope_http_request_duration_seconds_bucket{route="/api/v1/write",le="0.005"} 1"#),
            "{s}"
        );
        assert!(s.contains(r#"periscope_http_request_duration_seconds_bucket{route="/api/v1/write",le="0.05"} 2"#));
        assert!(s.contains(r#"periscope_http_requests_total{route="/api/v1/write",method="POST",code="204"} 2"#));
        assert!(s.contains(r#"periscope_http_rejected_requests_total{reason="too_large"} 1"#));
    }
}
