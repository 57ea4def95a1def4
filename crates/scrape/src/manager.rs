//! The scrape manager: one job per scrape config (Prometheus's scrape pool), one tokio task
//! per target, their status for the targets API and the self-metrics.
//!
//! Invariants:
//! - The manager's state sits behind a `std::sync::Mutex` held only for bookkeeping, never
//!   across an `.await`; loops report through their own small mutex.
//! - [`ScrapeManager::stop`] signals every loop (also loops still writing end-of-run stale
//!   markers after a removal) and returns once all have ended: after it, nothing is appended.
//!   Like Prometheus on shutdown, it writes no stale markers.
//! - [`ScrapeManager::apply`] diffs jobs and targets as Prometheus's `ApplyConfig`/`reload`/
//!   `sync`: an unchanged job keeps its loops; a changed job restarts them, handing each
//!   kept target its series cache when the change does not alter the series; a target that
//!   disappears gets end-of-run stale markers; a removed job stops without stale markers.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use periscope_config::{GlobalConfig, ScrapeConfig, ScrapeFormat};
use periscope_model::{Labels, TenantId};
use periscope_storage::Appendable;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::http::Auth;
use crate::metrics::{self, JobMetrics, JobView};
use crate::scrape_append::{LabelLimits, SampleOptions, ScrapeCache};
use crate::scrape_loop::{self, LoopConfig, Signal, TargetState};
use crate::target::{targets_from_config, Fnv64a, Target};
use crate::tls::{TlsClient, TlsSettings};

/// Cap on a scrape body when a job's `body_size_limit` is 0: scrapes are never unbounded.
pub const DEFAULT_BODY_SIZE_LIMIT: usize = 64 << 20;

/// Internal options of the manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeOptions {
    /// Body cap (after decompression) for jobs whose `body_size_limit` is 0.
    pub default_body_size_limit: usize,
    /// Start every target's first scrape at once instead of at its hashed offset in the
    /// interval (tests; Prometheus's `skipOffsetting`).
    pub skip_offset: bool,
}

impl Default for ScrapeOptions {
    fn default() -> Self {
        ScrapeOptions { default_body_size_limit: DEFAULT_BODY_SIZE_LIMIT, skip_offset: false }
    }
}

/// Health of a target after its last scrape, as the targets API names it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum TargetHealth {
    /// Not scraped yet.
    #[default]
    Unknown,
    /// The last scrape succeeded.
    Up,
    /// The last scrape failed.
    Down,
}

impl TargetHealth {
    /// `unknown`, `up` or `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetHealth::Unknown => "unknown",
            TargetHealth::Up => "up",
            TargetHealth::Down => "down",
        }
    }
}

/// One active target, for `/api/v1/targets`.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetStatus {
    /// The scrape config's `job_name` (Prometheus's `scrapePool`).
    pub job: String,
    /// The URL scraped.
    pub url: String,
    /// Labels before relabelling (`discoveredLabels`).
    pub discovered_labels: Labels,
    /// Labels after relabelling, without `__` ones: what every series of the target gets.
    pub labels: Labels,
    pub health: TargetHealth,
    /// The last scrape's error; `None` after a success or before the first scrape.
    pub last_error: Option<String>,
    /// The last scrape's timestamp.
    pub last_scrape: Option<SystemTime>,
    pub last_scrape_duration: Duration,
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
}

/// A target dropped by `relabel_configs`, for the `droppedTargets` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedTarget {
    pub job: String,
    /// Its labels before relabelling.
    pub discovered_labels: Labels,
}

struct LoopHandle {
    target: Arc<Target>,
    status: Arc<Mutex<TargetState>>,
    signal: watch::Sender<Signal>,
    task: JoinHandle<ScrapeCache>,
}

struct Job {
    config: ScrapeConfig,
    metrics: Arc<JobMetrics>,
    loops: Vec<LoopHandle>,
    dropped: Vec<Labels>,
}

#[derive(Default)]
struct State {
    stopped: bool,
    jobs: BTreeMap<String, Job>,
    /// Loops of removed targets still waiting to write end-of-run stale markers.
    retiring: Vec<LoopHandle>,
}

/// Scrapes every target of a set of scrape configs into a store, until stopped.
pub struct ScrapeManager {
    store: Arc<dyn Appendable>,
    tenant: TenantId,
    opts: ScrapeOptions,
    offset_seed: u64,
    state: Mutex<State>,
    apply_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for ScrapeManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapeManager").field("tenant", &self.tenant).field("opts", &self.opts).finish_non_exhaustive()
    }
}

/// Fills what `Config::resolve` fills, so that unresolved configs work too.
fn resolve(mut cfg: ScrapeConfig, global: &GlobalConfig) -> ScrapeConfig {
    let global_interval = if global.scrape_interval.is_zero() {
        periscope_config::defaults::SCRAPE_INTERVAL
    } else {
        global.scrape_interval
    };
    if cfg.scrape_interval.is_zero() {
        cfg.scrape_interval = global_interval;
    }
    if cfg.scrape_timeout.is_zero() {
        let global_timeout = if global.scrape_timeout.is_zero() {
            periscope_config::defaults::SCRAPE_TIMEOUT
        } else {
            global.scrape_timeout
        };
        cfg.scrape_timeout = global_timeout.min(cfg.scrape_interval);
    }
    if cfg.metrics_path.is_empty() {
        cfg.metrics_path = match cfg.format {
            ScrapeFormat::Prometheus => periscope_config::defaults::METRICS_PATH,
            ScrapeFormat::Expvar => periscope_config::defaults::EXPVAR_METRICS_PATH,
        }
        .to_string();
    }
    cfg
}

/// Prometheus's `reusableCache`: whether a config change leaves the series of the kept
/// targets as they were (only interval, timeout, sample limit and HTTP client settings
/// changed).
fn reusable_cache(a: &ScrapeConfig, b: &ScrapeConfig) -> bool {
    let zero = |c: &ScrapeConfig| ScrapeConfig {
        scrape_interval: periscope_config::Duration::ZERO,
        scrape_timeout: periscope_config::Duration::ZERO,
        sample_limit: 0,
        basic_auth: None,
        authorization: None,
        bearer_token: None,
        bearer_token_file: None,
        tls_config: None,
        static_configs: Vec::new(),
        ..c.clone()
    };
    zero(a) == zero(b)
}

/// Prometheus seeds target offsets with the external labels (and host name), so that
/// replicas with different external labels scrape at different phases.
fn offset_seed(global: &GlobalConfig) -> u64 {
    let mut h = Fnv64a::new();
    for (k, v) in &global.external_labels {
        h.write(k.as_bytes());
        h.write(&[0xff]);
        h.write(v.as_bytes());
        h.write(&[0xff]);
    }
    h.finish()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ScrapeManager {
    /// Builds the targets of `configs` and starts one task per target. Configs may be
    /// resolved or not (intervals, timeout and `metrics_path` are filled from `global` as
    /// `Config::resolve` does). A target that cannot be built (bad address after
    /// relabelling, ...) is logged and skipped. A repeated `job_name` keeps the first.
    ///
    /// Must be called inside a tokio runtime (it spawns the tasks there).
    pub fn start(
        configs: Vec<ScrapeConfig>,
        global: &GlobalConfig,
        store: Arc<dyn Appendable>,
        tenant: TenantId,
        opts: ScrapeOptions,
    ) -> ScrapeManager {
        let m = ScrapeManager {
            store,
            tenant,
            opts,
            offset_seed: offset_seed(global),
            state: Mutex::new(State::default()),
            apply_lock: tokio::sync::Mutex::new(()),
        };
        let mut jobs = BTreeMap::new();
        for cfg in configs {
            let cfg = resolve(cfg, global);
            if jobs.contains_key(&cfg.job_name) {
                tracing::warn!(job = %cfg.job_name, "duplicate scrape job name; keeping the first");
                continue;
            }
            let job = m.start_job(cfg, Arc::default(), HashMap::new());
            jobs.insert(job.config.job_name.clone(), job);
        }
        lock(&m.state).jobs = jobs;
        m
    }

    fn start_job(&self, config: ScrapeConfig, metrics: Arc<JobMetrics>, mut caches: HashMap<u64, ScrapeCache>) -> Job {
        let targets = targets_from_config(&config);
        for failure in &targets.failures {
            tracing::warn!(job = %config.job_name, %failure, "cannot create scrape target");
        }
        let body_limit = match config.body_size_limit.as_usize() {
            0 => self.opts.default_body_size_limit,
            n => n,
        };
        let auth = Auth::from_config(&config);
        let tls = Arc::new(TlsClient::new(TlsSettings::from_config(config.tls_config.as_ref())));
        let limits = LabelLimits {
            label_limit: usize::try_from(config.label_limit).unwrap_or(usize::MAX),
            name_length: usize::try_from(config.label_name_length_limit).unwrap_or(usize::MAX),
            value_length: usize::try_from(config.label_value_length_limit).unwrap_or(usize::MAX),
        };
        let loops = targets
            .active
            .into_iter()
            .map(|target| {
                let hash = target.hash();
                let target = Arc::new(target);
                let sample_opts = Arc::new(SampleOptions {
                    target_labels: target.public.clone(),
                    honor_labels: config.honor_labels,
                    honor_timestamps: config.honor_timestamps,
                    metric_relabel: config.metric_relabel_configs.clone(),
                    sample_limit: usize::try_from(config.sample_limit).unwrap_or(usize::MAX),
                    limits,
                });
                let status = Arc::new(Mutex::new(TargetState::default()));
                let (signal, rx) = watch::channel(Signal::Run);
                let cfg = LoopConfig {
                    target: Arc::clone(&target),
                    format: config.format,
                    sample_opts,
                    auth: auth.clone(),
                    tls: Arc::clone(&tls),
                    body_limit,
                    offset_seed: self.offset_seed,
                    skip_offset: self.opts.skip_offset,
                    store: Arc::clone(&self.store),
                    tenant: self.tenant.clone(),
                    metrics: Arc::clone(&metrics),
                    status: Arc::clone(&status),
                };
                let cache = caches.remove(&hash).unwrap_or_default();
                let task = tokio::spawn(scrape_loop::run(cfg, cache, rx));
                LoopHandle { target, status, signal, task }
            })
            .collect();
        Job { config, metrics, loops, dropped: targets.dropped }
    }

    /// Applies a new set of scrape configs (a configuration reload), as described in the
    /// module docs. Returns once every loop that had to stop for a restart has stopped;
    /// end-of-run stale markers of removed targets are written later in the background. A
    /// no-op after [`ScrapeManager::stop`].
    pub async fn apply(&self, configs: Vec<ScrapeConfig>, global: &GlobalConfig) {
        let _serial = self.apply_lock.lock().await;
        let mut old = {
            let mut st = lock(&self.state);
            if st.stopped {
                return;
            }
            st.retiring.retain(|h| !h.task.is_finished());
            std::mem::take(&mut st.jobs)
        };
        let mut new_jobs = BTreeMap::new();
        let mut shutdown: Vec<LoopHandle> = Vec::new();
        let mut retiring: Vec<LoopHandle> = Vec::new();
        for cfg in configs {
            let cfg = resolve(cfg, global);
            if new_jobs.contains_key(&cfg.job_name) {
                continue;
            }
            let name = cfg.job_name.clone();
            let job = match old.remove(&name) {
                Some(job) if job.config == cfg => job,
                Some(job) => {
                    let wanted: std::collections::HashSet<u64> =
                        targets_from_config(&cfg).active.iter().map(Target::hash).collect();
                    let reuse = reusable_cache(&job.config, &cfg);
                    let mut reloading = Vec::new();
                    for h in job.loops {
                        let hash = h.target.hash();
                        if reuse && wanted.contains(&hash) {
                            let _ = h.signal.send(Signal::Reload);
                            reloading.push((hash, h));
                        } else {
                            let _ = h.signal.send(Signal::Remove);
                            retiring.push(h);
                        }
                    }
                    let mut caches = HashMap::new();
                    for (hash, h) in reloading {
                        match h.task.await {
                            Ok(cache) => {
                                caches.insert(hash, cache);
                            }
                            Err(error) => tracing::error!(%error, "scrape loop ended abnormally"),
                        }
                    }
                    self.start_job(cfg, job.metrics, caches)
                }
                None => self.start_job(cfg, Arc::default(), HashMap::new()),
            };
            new_jobs.insert(name, job);
        }
        for (_, job) in old {
            for h in job.loops {
                let _ = h.signal.send(Signal::Shutdown);
                shutdown.push(h);
            }
        }
        {
            let mut st = lock(&self.state);
            if st.stopped {
                // stop() ran meanwhile: it did not see these loops.
                for job in new_jobs.into_values() {
                    for h in job.loops {
                        let _ = h.signal.send(Signal::Shutdown);
                        shutdown.push(h);
                    }
                }
                for h in retiring {
                    let _ = h.signal.send(Signal::Shutdown);
                    shutdown.push(h);
                }
            } else {
                st.jobs = new_jobs;
                st.retiring.extend(retiring);
            }
        }
        for h in shutdown {
            let _ = h.task.await;
        }
    }

    /// Stops every loop without writing stale markers (as Prometheus on shutdown) and waits
    /// for them, including a scrape's append in progress. Idempotent.
    pub async fn stop(&self) {
        let _serial = self.apply_lock.lock().await;
        let handles: Vec<LoopHandle> = {
            let mut st = lock(&self.state);
            st.stopped = true;
            let jobs = std::mem::take(&mut st.jobs);
            let mut v: Vec<LoopHandle> = std::mem::take(&mut st.retiring);
            v.extend(jobs.into_values().flat_map(|j| j.loops));
            v
        };
        for h in &handles {
            let _ = h.signal.send(Signal::Shutdown);
        }
        for h in handles {
            if let Err(error) = h.task.await {
                tracing::error!(%error, "scrape loop ended abnormally");
            }
        }
    }

    /// The state of every active target, by job name then in configuration order.
    pub fn targets(&self) -> Vec<TargetStatus> {
        let st = lock(&self.state);
        let mut out = Vec::new();
        for job in st.jobs.values() {
            for h in &job.loops {
                let s = lock(&h.status).clone();
                out.push(TargetStatus {
                    job: h.target.job.clone(),
                    url: h.target.url.to_string(),
                    discovered_labels: h.target.discovered.clone(),
                    labels: h.target.public.clone(),
                    health: s.health,
                    last_error: s.last_error,
                    last_scrape: s.last_scrape,
                    last_scrape_duration: s.last_duration,
                    scrape_interval: h.target.interval,
                    scrape_timeout: h.target.timeout,
                });
            }
        }
        out
    }

    /// Targets dropped by `relabel_configs`, by job name.
    pub fn dropped_targets(&self) -> Vec<DroppedTarget> {
        let st = lock(&self.state);
        st.jobs
            .values()
            .flat_map(|j| {
                j.dropped.iter().map(|l| DroppedTarget { job: j.config.job_name.clone(), discovered_labels: l.clone() })
            })
            .collect()
    }

    /// Appends the scraper's self-metrics (`periscope_scrape_*`) in Prometheus text format.
    pub fn write_metrics(&self, out: &mut String) {
        let st = lock(&self.state);
        let views: Vec<JobView<'_>> = st
            .jobs
            .values()
            .map(|j| {
                let mut health = [0u64; 3];
                for h in &j.loops {
                    let i = match lock(&h.status).health {
                        TargetHealth::Up => 0,
                        TargetHealth::Down => 1,
                        TargetHealth::Unknown => 2,
                    };
                    health[i] += 1;
                }
                JobView {
                    job: &j.config.job_name,
                    metrics: &j.metrics,
                    health,
                    dropped_targets: j.dropped.len() as u64,
                }
            })
            .collect();
        metrics::write(out, &views);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_fills_defaults() {
        let global = GlobalConfig {
            scrape_interval: periscope_config::Duration::from_secs(5),
            scrape_timeout: periscope_config::Duration::from_secs(10),
            ..Default::default()
        };
        let c =
            resolve(ScrapeConfig { job_name: "j".into(), format: ScrapeFormat::Expvar, ..Default::default() }, &global);
        assert_eq!(c.scrape_interval, periscope_config::Duration::from_secs(5));
        assert_eq!(c.scrape_timeout, periscope_config::Duration::from_secs(5));
        assert_eq!(c.metrics_path, "/debug/vars");
    }

    #[test]
    fn cache_reuse_ignores_timing_and_auth_only() {
        let a = ScrapeConfig { job_name: "j".into(), ..Default::default() };
        let b =
            ScrapeConfig { scrape_interval: periscope_config::Duration::from_secs(1), sample_limit: 3, ..a.clone() };
        assert!(reusable_cache(&a, &b));
        let c = ScrapeConfig { honor_labels: true, ..a.clone() };
        assert!(!reusable_cache(&a, &c));
    }
}
