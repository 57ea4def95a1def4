//! Self-metrics of the scraper (`periscope_scrape_*`), counted per job with atomics and
//! rendered in the Prometheus text format by [`crate::ScrapeManager::write_metrics`].

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use periscope_storage::{AppendReport, RejectReason};

/// Why expvar values were skipped (label values of `periscope_scrape_expvar_values_skipped_total`).
pub(crate) const EXPVAR_SKIP_REASONS: [&str; 4] = ["non_numeric", "array", "too_deep", "duplicate"];

/// Counters of one job.
#[derive(Debug, Default)]
pub(crate) struct JobMetrics {
    pub scrapes_success: AtomicU64,
    pub scrapes_failure: AtomicU64,
    pub samples_scraped: AtomicU64,
    pub samples_post_relabel: AtomicU64,
    pub samples_appended: AtomicU64,
    pub stale_markers: AtomicU64,
    pub rejected: [AtomicU64; RejectReason::ALL.len()],
    pub exceeded_sample_limit: AtomicU64,
    pub exceeded_body_size_limit: AtomicU64,
    pub exceeded_label_limits: AtomicU64,
    pub append_failures: AtomicU64,
    pub expvar_skipped: [AtomicU64; EXPVAR_SKIP_REASONS.len()],
}

impl JobMetrics {
    pub fn add(c: &AtomicU64, n: u64) {
        if n > 0 {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn reject(&self, reason: RejectReason, n: u64) {
        if let Some(i) = RejectReason::ALL.iter().position(|r| *r == reason) {
            Self::add(&self.rejected[i], n);
        }
    }

    pub fn record_append(&self, r: &AppendReport) {
        Self::add(&self.samples_appended, r.samples_appended);
        for (reason, n) in &r.rejected {
            self.reject(*reason, *n);
        }
    }
}

/// Picks one counter of a job.
type Counter = fn(&JobMetrics) -> &AtomicU64;

/// One job's figures for rendering.
pub(crate) struct JobView<'a> {
    pub job: &'a str,
    pub metrics: &'a JobMetrics,
    /// Active targets by health: up, down, unknown.
    pub health: [u64; 3],
    pub dropped_targets: u64,
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Renders every job's counters.
pub(crate) fn write(out: &mut String, jobs: &[JobView<'_>]) {
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let simple: [(&str, &str, Counter); 8] = [
        ("periscope_scrape_samples_scraped_total", "Samples in scraped expositions.", |m| &m.samples_scraped),
        (
            "periscope_scrape_samples_post_metric_relabeling_total",
            "Scraped samples left after metric relabelling.",
            |m| &m.samples_post_relabel,
        ),
        ("periscope_scrape_samples_appended_total", "Scraped samples the store accepted.", |m| &m.samples_appended),
        ("periscope_scrape_stale_markers_total", "Stale markers written for vanished series.", |m| &m.stale_markers),
        ("periscope_scrape_exceeded_sample_limit_total", "Scrapes failed because they exceeded sample_limit.", |m| {
            &m.exceeded_sample_limit
        }),
        (
            "periscope_scrape_exceeded_body_size_limit_total",
            "Scrapes failed because the body reached body_size_limit.",
            |m| &m.exceeded_body_size_limit,
        ),
        (
            "periscope_scrape_exceeded_label_limits_total",
            "Scrapes failed because of label_limit or a label length limit.",
            |m| &m.exceeded_label_limits,
        ),
        ("periscope_scrape_append_failures_total", "Scrape batches the store failed to take as a whole.", |m| {
            &m.append_failures
        }),
    ];

    family(out, "periscope_scrape_scrapes_total", "counter", "Scrapes, by job and result.");
    for j in jobs {
        let job = escape(j.job);
        let _ = writeln!(
            out,
            "periscope_scrape_scrapes_total{{job=\"{job}\",result=\"success\"}} {}",
            load(&j.metrics.scrapes_success)
        );
        let _ = writeln!(
            out,
            "periscope_scrape_scrapes_total{{job=\"{job}\",result=\"failure\"}} {}",
            load(&j.metrics.scrapes_failure)
        );
    }
    for (name, help, get) in simple {
        family(out, name, "counter", help);
        for j in jobs {
            let _ = writeln!(out, "{name}{{job=\"{}\"}} {}", escape(j.job), load(get(j.metrics)));
        }
    }
    family(
        out,
        "periscope_scrape_samples_rejected_total",
        "counter",
        "Scraped samples refused, by reason (duplicates and samples too far in the future here, the rest by the store).",
    );
    for j in jobs {
        for (i, reason) in RejectReason::ALL.iter().enumerate() {
            let _ = writeln!(
                out,
                "periscope_scrape_samples_rejected_total{{job=\"{}\",reason=\"{}\"}} {}",
                escape(j.job),
                reason.as_str(),
                load(&j.metrics.rejected[i])
            );
        }
    }
    family(
        out,
        "periscope_scrape_expvar_values_skipped_total",
        "counter",
        "Expvar values that are not numbers (strings, nulls, arrays, too deep, duplicate names), by reason.",
    );
    for j in jobs {
        for (i, reason) in EXPVAR_SKIP_REASONS.iter().enumerate() {
            let _ = writeln!(
                out,
                "periscope_scrape_expvar_values_skipped_total{{job=\"{}\",reason=\"{reason}\"}} {}",
                escape(j.job),
                load(&j.metrics.expvar_skipped[i])
            );
        }
    }
    family(out, "periscope_scrape_targets", "gauge", "Active targets, by job and health of the last scrape.");
    for j in jobs {
        for (i, health) in ["up", "down", "unknown"].iter().enumerate() {
            let _ = writeln!(
                out,
                "periscope_scrape_targets{{job=\"{}\",health=\"{health}\"}} {}",
                escape(j.job),
                j.health[i]
            );
        }
    }
    family(out, "periscope_scrape_dropped_targets", "gauge", "Targets dropped by relabel_configs, by job.");
    for j in jobs {
        let _ = writeln!(out, "periscope_scrape_dropped_targets{{job=\"{}\"}} {}", escape(j.job), j.dropped_targets);
    }
}
