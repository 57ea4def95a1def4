//! `/api/v1/status/*` and `/api/v1/targets`: what Grafana and Prometheus's own UI read to
//! learn who they talk to.

use super::json::{format_system_time, write_labels};
use super::params::Params;
use super::{blocking, now_ms, success, success_value, tenant, PromError};
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use periscope_model::{Labels, MatchOp, Matcher, TimeRange, METRIC_NAME};
use periscope_storage::SelectHints;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The version Grafana is told (it enables features by Prometheus version); Periscope's own is
/// in `periscopeVersion`.
const PROMETHEUS_COMPATIBLE_VERSION: &str = "3.0.0";

/// Window of `/api/v1/status/tsdb`: the head block of a Prometheus with default settings.
const TSDB_STATUS_WINDOW_MS: i64 = 2 * 60 * 60 * 1000;

/// One scrape target as `/api/v1/targets` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveTarget {
    /// The scrape config's `job_name`.
    pub scrape_pool: String,
    pub scrape_url: String,
    /// Labels before relabelling.
    pub discovered_labels: Labels,
    /// Labels after relabelling: what every series of the target gets.
    pub labels: Labels,
    /// `up`, `down` or `unknown`.
    pub health: &'static str,
    /// The last scrape's error; empty after a success.
    pub last_error: String,
    /// When the last scrape started; `None` before the first.
    pub last_scrape: Option<SystemTime>,
    pub last_scrape_duration: Duration,
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
}

/// A target dropped by relabelling.
#[derive(Debug, Clone, PartialEq)]
pub struct DroppedTarget {
    pub scrape_pool: String,
    /// Labels before relabelling.
    pub discovered_labels: Labels,
}

/// Every target at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetsSnapshot {
    pub active: Vec<ActiveTarget>,
    pub dropped: Vec<DroppedTarget>,
}

/// Lists the targets of the scraper; set by the binary, which owns the scrape manager.
pub type TargetsSource = Arc<dyn Fn() -> TargetsSnapshot + Send + Sync>;

/// `GET /api/v1/status/buildinfo`.
pub(super) async fn buildinfo() -> Response {
    success_value(&json!({
        "version": PROMETHEUS_COMPATIBLE_VERSION,
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
        "periscopeVersion": env!("CARGO_PKG_VERSION"),
    }))
}

/// `GET /api/v1/status/config`: the loaded configuration as YAML, secrets redacted.
pub(super) async fn config(State(state): State<AppState>) -> Result<Response, PromError> {
    let yaml =
        state.config.to_yaml().map_err(|e| PromError::internal(format!("cannot render the configuration: {e}")))?;
    Ok(success_value(&json!({ "yaml": yaml })))
}

/// `GET /api/v1/status/flags`: our settings under the names of Prometheus's flags.
pub(super) async fn flags(State(state): State<AppState>) -> Response {
    let c = &state.config;
    success_value(&json!({
        "storage.tsdb.path": c.storage.data_dir.join("metrics").display().to_string(),
        "storage.tsdb.retention.time": c.storage.metrics.retention_time.to_string(),
        "storage.tsdb.retention.size": c.storage.metrics.retention_size.to_string(),
        "web.listen-address": c.server.http_listen_address,
        "query.lookback-delta": c.query.lookback_delta.to_string(),
        "query.max-samples": c.query.max_samples.to_string(),
        "query.timeout": c.query.timeout.to_string(),
    }))
}

/// `GET /api/v1/status/runtimeinfo`.
pub(super) async fn runtimeinfo(State(state): State<AppState>) -> Response {
    let started = format_system_time(Some(state.started_at));
    let m = &state.config.storage.metrics;
    let retention = match (m.retention_time.is_zero(), m.retention_size.is_zero()) {
        (false, true) => m.retention_time.to_string(),
        (true, false) => m.retention_size.to_string(),
        (false, false) => format!("{} or {}", m.retention_time, m.retention_size),
        (true, true) => "unlimited".to_string(),
    };
    let hostname =
        std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    success_value(&json!({
        "startTime": started,
        "CWD": cwd,
        "hostname": hostname,
        "serverTime": format_system_time(Some(SystemTime::now())),
        "reloadConfigSuccess": true,
        "lastConfigTime": started,
        "corruptionCount": 0,
        "goroutineCount": 0,
        "GOMAXPROCS": threads,
        "GOMEMLIMIT": i64::MAX,
        "GOGC": "",
        "GODEBUG": "",
        "storageRetention": retention,
    }))
}

/// `GET /api/v1/status/tsdb`: cardinality of the tenant's series of the last two hours, top
/// `limit` (10) of each list.
pub(super) async fn tsdb(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, PromError> {
    let tenant = tenant(&headers)?;
    let limit = match params.get("limit") {
        "" => 10,
        s => s
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| PromError::bad_data("limit must be a positive number"))?,
    };
    let store = state.store.clone();
    let now = now_ms();
    let range = TimeRange::new(now - TSDB_STATUS_WINDOW_MS, now);
    let data = blocking(move || {
        let querier = store.querier(&tenant, range).map_err(|e| PromError::from_store(&e))?;
        let all = Matcher::new(MatchOp::Regex, METRIC_NAME, ".+").map_err(|e| PromError::internal(e.to_string()))?;
        let set = querier.select(&[all], &SelectHints::labels(range)).map_err(|e| PromError::from_store(&e))?;
        let mut stats = CardinalityStats::default();
        for s in set {
            stats.add(&s.map_err(|e| PromError::from_store(&e))?.labels);
        }
        Ok(stats.to_json(range, limit))
    })
    .await?;
    Ok(success_value(&data))
}

/// Counts per metric name, label name and label pair, as Prometheus's `PostingsStats`.
#[derive(Default)]
struct CardinalityStats {
    series: u64,
    by_metric: HashMap<String, u64>,
    /// Label name → value → series.
    pairs: HashMap<String, HashMap<String, u64>>,
}

impl CardinalityStats {
    fn add(&mut self, labels: &Labels) {
        self.series += 1;
        if let Some(name) = labels.metric_name() {
            *self.by_metric.entry(name.to_string()).or_default() += 1;
        }
        for l in labels.iter() {
            *self.pairs.entry(l.name.clone()).or_default().entry(l.value.clone()).or_default() += 1;
        }
    }

    fn to_json(&self, range: TimeRange, limit: usize) -> serde_json::Value {
        let top = |mut v: Vec<(String, u64)>| -> serde_json::Value {
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v.truncate(limit);
            v.into_iter().map(|(name, value)| json!({"name": name, "value": value})).collect()
        };
        let by_metric = self.by_metric.iter().map(|(k, v)| (k.clone(), *v)).collect();
        let value_counts = self.pairs.iter().map(|(k, vals)| (k.clone(), vals.len() as u64)).collect();
        let memory = self
            .pairs
            .iter()
            .map(|(k, vals)| (k.clone(), vals.iter().map(|(v, n)| v.len() as u64 * n).sum()))
            .collect();
        let pairs =
            self.pairs.iter().flat_map(|(k, vals)| vals.iter().map(move |(v, n)| (format!("{k}={v}"), *n))).collect();
        let num_pairs: usize = self.pairs.values().map(HashMap::len).sum();
        let (min_time, max_time) = if self.series > 0 { (range.min, range.max) } else { (i64::MAX, i64::MIN) };
        json!({
            "headStats": {
                "numSeries": self.series,
                "numLabelPairs": num_pairs,
                "chunkCount": 0,
                "minTime": min_time,
                "maxTime": max_time,
            },
            "seriesCountByMetricName": top(by_metric),
            "labelValueCountByLabelName": top(value_counts),
            "memoryInBytesByLabelName": top(memory),
            "seriesCountByLabelValuePair": top(pairs),
        })
    }
}

/// `GET /api/v1/targets`: `state` (`active`, `dropped`, `any`), `scrapePool`.
pub(super) async fn targets(State(state): State<AppState>, params: Params) -> Result<Response, PromError> {
    let which = params.get("state").to_ascii_lowercase();
    let show_active = matches!(which.as_str(), "" | "any" | "active");
    let show_dropped = matches!(which.as_str(), "" | "any" | "dropped");
    let pool = params.get("scrapePool");
    let snapshot = match &state.targets {
        Some(source) => {
            let source = source.clone();
            blocking(move || Ok(source())).await?
        }
        None => TargetsSnapshot::default(),
    };
    let in_pool = |p: &str| pool.is_empty() || p == pool;
    let mut data = String::from("{\"activeTargets\":[");
    let mut first = true;
    for t in snapshot.active.iter().filter(|t| show_active && in_pool(&t.scrape_pool)) {
        if !first {
            data.push(',');
        }
        first = false;
        write_active_target(&mut data, t);
    }
    data.push_str("],\"droppedTargets\":[");
    let mut dropped_counts: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    let mut first = true;
    for t in &snapshot.dropped {
        *dropped_counts.entry(&t.scrape_pool).or_default() += 1;
        if !show_dropped || !in_pool(&t.scrape_pool) {
            continue;
        }
        if !first {
            data.push(',');
        }
        first = false;
        data.push_str("{\"discoveredLabels\":");
        write_labels(&mut data, &t.discovered_labels);
        data.push_str(",\"scrapePool\":");
        super::json::write_str(&mut data, &t.scrape_pool);
        data.push('}');
    }
    data.push_str("],\"droppedTargetCounts\":");
    data.push_str(&serde_json::to_string(&dropped_counts).map_err(|e| PromError::internal(e.to_string()))?);
    data.push('}');
    Ok(success(&data, &[], &[]))
}

fn write_active_target(out: &mut String, t: &ActiveTarget) {
    use super::json::write_str;
    out.push_str("{\"discoveredLabels\":");
    write_labels(out, &t.discovered_labels);
    out.push_str(",\"labels\":");
    write_labels(out, &t.labels);
    out.push_str(",\"scrapePool\":");
    write_str(out, &t.scrape_pool);
    out.push_str(",\"scrapeUrl\":");
    write_str(out, &t.scrape_url);
    out.push_str(",\"globalUrl\":");
    write_str(out, &t.scrape_url);
    out.push_str(",\"lastError\":");
    write_str(out, &t.last_error);
    out.push_str(",\"lastScrape\":");
    write_str(out, &format_system_time(t.last_scrape));
    out.push_str(",\"lastScrapeDuration\":");
    out.push_str(&serde_json::Value::from(t.last_scrape_duration.as_secs_f64()).to_string());
    out.push_str(",\"health\":");
    write_str(out, t.health);
    out.push_str(",\"scrapeInterval\":");
    write_str(out, &prom_duration(t.scrape_interval));
    out.push_str(",\"scrapeTimeout\":");
    write_str(out, &prom_duration(t.scrape_timeout));
    out.push('}');
}

/// A duration as Prometheus prints one (`15s`, `1m`, `1h30m`).
fn prom_duration(d: Duration) -> String {
    periscope_config::Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cardinality() {
        let mut s = CardinalityStats::default();
        for (name, job) in [("up", "a"), ("up", "b"), ("x", "a")] {
            s.add(&Labels::from_pairs([("__name__", name), ("job", job)]).unwrap());
        }
        let v = s.to_json(TimeRange::new(1, 2), 1);
        assert_eq!(v["headStats"]["numSeries"], 3);
        assert_eq!(v["headStats"]["numLabelPairs"], 4);
        assert_eq!(v["seriesCountByMetricName"], json!([{"name": "up", "value": 2}]));
        assert_eq!(v["labelValueCountByLabelName"], json!([{"name": "__name__", "value": 2}]));
        // __name__: "up" × 2 + "x" × 1 = 5 bytes; job: 3 × 1.
        assert_eq!(v["memoryInBytesByLabelName"], json!([{"name": "__name__", "value": 5}]));
        // Ties in name order.
        assert_eq!(v["seriesCountByLabelValuePair"], json!([{"name": "__name__=up", "value": 2}]));
        assert_eq!(prom_duration(Duration::from_secs(90 * 60)), "1h30m");
    }
}
