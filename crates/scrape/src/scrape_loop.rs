//! One target's scrape loop: a tokio task that waits for the target's offset, then scrapes on
//! every tick of its interval, as Prometheus's `scrapeLoop.run`.
//!
//! Invariants:
//! - The network part runs on the async runtime under the scrape timeout; decompression,
//!   parsing, building the batch and `store.append` run in one `spawn_blocking` call that owns
//!   the target's [`ScrapeCache`] for its duration and hands it back, so nothing CPU-bound or
//!   blocking ever runs on a runtime worker and the cache needs no lock.
//! - One scrape is one batch: scraped samples, stale markers and report series are appended
//!   together.
//! - Stopping: [`Signal::Shutdown`] (server shutdown, job removed) aborts a scrape in flight
//!   and writes no stale markers, as Prometheus (the next start continues the series);
//!   [`Signal::Remove`] (target gone from the configuration) lets the scrape in flight finish,
//!   then waits for the next two ticks plus a tenth of the interval and writes stale markers
//!   for every series of the target and its report series at the first of those ticks (unless
//!   a shutdown comes first); [`Signal::Reload`] stops and hands the cache to a new loop.
//!   A blocking append in progress is always awaited, so after the task ends it writes
//!   nothing more.
//! - Scrape timestamps are wall-clock milliseconds, snapped to the interval grid when within
//!   `min(interval/100, 2ms)` of it (Prometheus's `AlignScrapeTimestamps`), which keeps
//!   timestamp deltas constant for the chunk encoder.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use periscope_config::ScrapeFormat;
use periscope_model::{Labels, TenantId};
use periscope_storage::Appendable;
use periscope_textparse::{Format, ParseOptions};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::http::{decode_body, Auth, Fetched, HttpClient, ACCEPT_HEADER, ACCEPT_JSON};
use crate::metrics::JobMetrics;
use crate::scrape_append::{add_report, RawSample, SampleOptions, ScrapeCache};
use crate::target::Target;
use crate::tls::TlsClient;
use crate::{ScrapeError, TargetHealth};

/// What the manager asks of a loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    Run,
    /// The target left the configuration: end-of-run stale markers.
    Remove,
    /// The job's configuration changed: stop and hand the cache over.
    Reload,
    /// Stop now, write nothing more.
    Shutdown,
}

/// What `/api/v1/targets` shows of a target, updated after every scrape.
#[derive(Debug, Clone, Default)]
pub(crate) struct TargetState {
    pub health: TargetHealth,
    pub last_error: Option<String>,
    pub last_scrape: Option<SystemTime>,
    pub last_duration: Duration,
}

/// Everything one loop needs.
pub(crate) struct LoopConfig {
    pub target: Arc<Target>,
    pub format: ScrapeFormat,
    pub sample_opts: Arc<SampleOptions>,
    pub auth: Auth,
    pub tls: Arc<TlsClient>,
    pub body_limit: usize,
    pub offset_seed: u64,
    pub skip_offset: bool,
    pub store: Arc<dyn Appendable>,
    pub tenant: TenantId,
    pub metrics: Arc<JobMetrics>,
    pub status: Arc<Mutex<TargetState>>,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// Waits until the signal is no longer `Run`; a dropped sender means shutdown.
async fn wait_stop(rx: &mut watch::Receiver<Signal>) -> Signal {
    loop {
        let s = *rx.borrow_and_update();
        if s != Signal::Run {
            return s;
        }
        if rx.changed().await.is_err() {
            return Signal::Shutdown;
        }
    }
}

/// Waits for a shutdown (not a removal or reload).
async fn wait_shutdown(rx: &mut watch::Receiver<Signal>) {
    loop {
        if *rx.borrow_and_update() == Signal::Shutdown {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Runs the loop until stopped; returns the cache (for a reload).
pub(crate) async fn run(cfg: LoopConfig, mut cache: ScrapeCache, mut signal: watch::Receiver<Signal>) -> ScrapeCache {
    let interval = cfg.target.interval.max(Duration::from_millis(1));
    if !cfg.skip_offset {
        let offset = cfg.target.offset(now_ns(), cfg.offset_seed);
        tokio::select! {
            biased;
            _ = wait_stop(&mut signal) => return cache,
            () = tokio::time::sleep(offset) => {}
        }
    }
    let accept = match cfg.format {
        ScrapeFormat::Prometheus => ACCEPT_HEADER,
        ScrapeFormat::Expvar => ACCEPT_JSON,
    };
    let mut client = HttpClient::new(
        cfg.target.url.clone(),
        cfg.auth.clone(),
        Arc::clone(&cfg.tls),
        accept,
        cfg.target.timeout,
        cfg.body_limit,
    );
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let interval_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
    let tolerance_ms = (interval_ms / 100).min(2);
    let mut aligned = now_ms();
    let mut scraped = false;
    let stop = loop {
        tokio::select! {
            biased;
            s = wait_stop(&mut signal) => break s,
            _ = ticker.tick() => {}
        }
        let mut t = now_ms();
        while t - aligned >= interval_ms {
            aligned += interval_ms;
        }
        if t - aligned <= tolerance_ms {
            t = aligned;
        }
        let start = Instant::now();
        let fetched = tokio::select! {
            biased;
            () = wait_shutdown(&mut signal) => break Signal::Shutdown,
            r = client.fetch() => r,
        };
        cache = scrape_and_report(&cfg, cache, fetched, t, start).await;
        scraped = true;
    };
    drop(client);
    if stop == Signal::Remove && scraped {
        end_of_run(&cfg, &mut cache, &mut ticker, interval, &mut signal).await;
    }
    cache
}

/// Decodes, appends and reports one scrape in the blocking pool; returns the cache.
async fn scrape_and_report(
    cfg: &LoopConfig,
    cache: ScrapeCache,
    fetched: Result<Fetched, ScrapeError>,
    t: i64,
    start: Instant,
) -> ScrapeCache {
    let job = BlockingScrape {
        format: cfg.format,
        opts: Arc::clone(&cfg.sample_opts),
        body_limit: cfg.body_limit,
        store: Arc::clone(&cfg.store),
        tenant: cfg.tenant.clone(),
        metrics: Arc::clone(&cfg.metrics),
        status: Arc::clone(&cfg.status),
        url: cfg.target.url.to_string(),
    };
    match tokio::task::spawn_blocking(move || job.run(cache, fetched, t, start)).await {
        Ok(cache) => cache,
        Err(e) => {
            tracing::error!(error = %e, url = %cfg.target.url, "scrape processing panicked; series tracking restarts");
            let mut st = cfg.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            st.health = TargetHealth::Down;
            st.last_error = Some(ScrapeError::Internal(e.to_string()).to_string());
            ScrapeCache::default()
        }
    }
}

/// Prometheus's `endOfRunStaleness`.
async fn end_of_run(
    cfg: &LoopConfig,
    cache: &mut ScrapeCache,
    ticker: &mut tokio::time::Interval,
    interval: Duration,
    signal: &mut watch::Receiver<Signal>,
) {
    let stale_t = tokio::select! {
        biased;
        () = wait_shutdown(signal) => return,
        _ = ticker.tick() => now_ms(),
    };
    tokio::select! {
        biased;
        () = wait_shutdown(signal) => return,
        _ = ticker.tick() => {}
    }
    tokio::select! {
        biased;
        () = wait_shutdown(signal) => return,
        () = tokio::time::sleep(interval / 10) => {}
    }
    let tracked = cache.tracked() as u64;
    let batch = cache.append_end_of_run(stale_t, &cfg.sample_opts.target_labels);
    let (store, tenant, metrics) = (Arc::clone(&cfg.store), cfg.tenant.clone(), Arc::clone(&cfg.metrics));
    let appended = tokio::task::spawn_blocking(move || {
        JobMetrics::add(&metrics.stale_markers, tracked);
        match store.append(&tenant, &batch) {
            Ok(r) => metrics.record_append(&r),
            Err(error) => {
                JobMetrics::add(&metrics.append_failures, 1);
                tracing::warn!(%error, "appending end-of-run stale markers failed");
            }
        }
    })
    .await;
    if let Err(error) = appended {
        tracing::error!(%error, "appending end-of-run stale markers panicked");
    }
}

/// The blocking half of one scrape.
struct BlockingScrape {
    format: ScrapeFormat,
    opts: Arc<SampleOptions>,
    body_limit: usize,
    store: Arc<dyn Appendable>,
    tenant: TenantId,
    metrics: Arc<JobMetrics>,
    status: Arc<Mutex<TargetState>>,
    url: String,
}

impl BlockingScrape {
    fn run(self, mut cache: ScrapeCache, fetched: Result<Fetched, ScrapeError>, t: i64, start: Instant) -> ScrapeCache {
        let m = &self.metrics;
        let decoded = fetched.and_then(|mut f| {
            let content_type = std::mem::take(&mut f.content_type);
            decode_body(f, self.body_limit).map(|body| (body, content_type))
        });
        let parsed = decoded.and_then(|(body, ct)| self.decode(&body, &ct, t));
        let (mut appended, error) = match parsed {
            Ok((samples, metadata)) => match cache.append(samples, metadata, t, now_ms(), &self.opts) {
                Ok(a) => (a, None),
                Err((e, counts)) => {
                    let mut a = cache.append_failed(t);
                    a.counts = counts;
                    (a, Some(e))
                }
            },
            Err(e) => (cache.append_failed(t), Some(e)),
        };
        let duration = start.elapsed();
        add_report(
            &mut appended.batch,
            &mut cache,
            &self.opts.target_labels,
            t,
            error.is_none(),
            duration.as_secs_f64(),
            appended.counts,
        );

        JobMetrics::add(&m.samples_scraped, appended.counts.scraped as u64);
        JobMetrics::add(&m.samples_post_relabel, appended.counts.post_relabel as u64);
        JobMetrics::add(&m.stale_markers, appended.stale_markers);
        for (reason, n) in appended.rejected() {
            m.reject(reason, n);
        }
        match &error {
            None => JobMetrics::add(&m.scrapes_success, 1),
            Some(e) => {
                JobMetrics::add(&m.scrapes_failure, 1);
                match e {
                    ScrapeError::SampleLimit => JobMetrics::add(&m.exceeded_sample_limit, 1),
                    ScrapeError::BodySizeLimit => JobMetrics::add(&m.exceeded_body_size_limit, 1),
                    ScrapeError::LabelLimit(_) => JobMetrics::add(&m.exceeded_label_limits, 1),
                    _ => {}
                }
                tracing::debug!(url = %self.url, error = %e, "scrape failed");
            }
        }
        {
            let mut st = self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            st.health = if error.is_none() { TargetHealth::Up } else { TargetHealth::Down };
            st.last_error = error.map(|e| e.to_string());
            st.last_scrape = Some(UNIX_EPOCH + Duration::from_millis(u64::try_from(t).unwrap_or(0)));
            st.last_duration = duration;
        }

        let batch = appended.batch.build();
        match self.store.append(&self.tenant, &batch) {
            Ok(r) => {
                m.record_append(&r);
                if let Some(first) = &r.first_rejection {
                    tracing::debug!(url = %self.url, rejected = r.rejected_total(), first, "store refused scraped samples");
                }
            }
            Err(error) => {
                JobMetrics::add(&m.append_failures, 1);
                tracing::warn!(url = %self.url, %error, "appending scraped samples failed");
            }
        }
        cache
    }

    /// Body → raw samples and metadata, per format.
    #[allow(clippy::type_complexity)]
    fn decode(
        &self,
        body: &[u8],
        content_type: &str,
        t: i64,
    ) -> Result<(Vec<RawSample>, Vec<periscope_model::MetricMetadata>), ScrapeError> {
        match self.format {
            ScrapeFormat::Prometheus => {
                let opts = ParseOptions { strict: false, default_timestamp_ms: None };
                let parsed = periscope_textparse::parse(body, Format::from_content_type(content_type), &opts)?;
                let samples = parsed
                    .samples
                    .into_iter()
                    .map(|s| RawSample {
                        labels: s.labels,
                        value: s.value,
                        timestamp_ms: s.timestamp_ms,
                        exemplar: s.exemplar,
                    })
                    .collect();
                Ok((samples, parsed.metadata))
            }
            ScrapeFormat::Expvar => {
                let (batch, report) = periscope_ingest::decode_expvar(body, t, &Labels::empty(), 0)?;
                let m = &self.metrics;
                let skipped = [
                    report.skipped_non_numeric,
                    report.skipped_arrays,
                    report.skipped_too_deep,
                    report.skipped_duplicates,
                ];
                for (c, n) in m.expvar_skipped.iter().zip(skipped) {
                    JobMetrics::add(c, n as u64);
                }
                let samples = batch
                    .series
                    .into_iter()
                    .flat_map(|s| {
                        let labels = s.labels;
                        s.samples.into_iter().map(move |x| RawSample {
                            labels: labels.clone(),
                            value: x.v,
                            timestamp_ms: None,
                            exemplar: None,
                        })
                    })
                    .collect();
                Ok((samples, batch.metadata))
            }
        }
    }
}
