//! What every handler shares.

use crate::{SelfMetrics, TargetsSource};
use periscope_config::Config;
use periscope_model::TenantId;
use periscope_promql::{Engine, EngineOptions};
use periscope_storage::MetricStoreRef;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::SystemTime;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct AppState {
    pub store: MetricStoreRef,
    pub config: Arc<Config>,
    pub metrics: Arc<SelfMetrics>,
    /// Set once start-up is complete; `/-/ready` answers 503 before.
    pub ready: Arc<AtomicBool>,
    /// Per-tenant ingestion-rate buckets.
    pub limiter: Arc<crate::admission::IngestLimiter>,
    /// More self-metrics to render at `/metrics` (the scrape manager's, ...), in order.
    pub metrics_sources: Arc<Vec<MetricsSource>>,
    /// The PromQL engine, with the options of the `query` section.
    pub engine: Arc<Engine>,
    /// The scraper's targets for `/api/v1/targets`; none when nothing scrapes.
    pub targets: Option<TargetsSource>,
    /// When the server started (`/api/v1/status/runtimeinfo`).
    pub started_at: SystemTime,
    /// The trace store; `None` when traces are not served (OTLP traces are then refused).
    pub traces: Option<Arc<dyn periscope_storage::TraceStore>>,
    /// The log store; `None` when this server stores no logs.
    pub logs: Option<Arc<dyn periscope_storage::LogStore>>,
    /// Span metrics of stored spans; `None` when `traces.span_metrics.enabled` is off.
    pub span_metrics: Option<Arc<crate::spanmetrics::SpanMetrics>>,
}

/// Appends Prometheus text-format self-metrics of one component.
pub type MetricsSource = Arc<dyn Fn(&mut String) + Send + Sync>;

impl AppState {
    /// State over `store` with `config`.
    pub fn new(store: MetricStoreRef, config: Arc<Config>) -> Self {
        AppState {
            store,
            metrics: Arc::new(SelfMetrics::default()),
            ready: Arc::new(AtomicBool::new(false)),
            limiter: Arc::default(),
            metrics_sources: Arc::new(Vec::new()),
            engine: Arc::new(Engine::new(engine_options(&config))),
            targets: None,
            started_at: SystemTime::now(),
            traces: None,
            logs: None,
            span_metrics: config
                .traces
                .span_metrics
                .enabled
                .then(|| Arc::new(crate::spanmetrics::SpanMetrics::new(&config.traces.span_metrics))),
            config,
        }
    }
}

/// The engine options of a configuration's `query` section.
pub fn engine_options(config: &Config) -> EngineOptions {
    let q = &config.query;
    EngineOptions {
        lookback_delta_ms: i64::try_from(q.lookback_delta.as_millis()).unwrap_or(i64::MAX),
        max_samples: usize::try_from(q.max_samples).unwrap_or(usize::MAX),
        timeout: q.timeout.as_std(),
        max_series: usize::try_from(q.max_series).unwrap_or(usize::MAX),
        ..EngineOptions::default()
    }
}

/// The tenant of a request: `X-Scope-OrgID`, or `default` when absent.
pub(crate) fn tenant_of(headers: &axum::http::HeaderMap) -> Result<TenantId, crate::ApiError> {
    match headers.get("x-scope-orgid") {
        None => Ok(TenantId::default_tenant()),
        Some(v) => {
            let s = v.to_str().map_err(|_| {
                crate::ApiError::from_class(
                    periscope_model::ErrorClass::InvalidInput,
                    "bad_tenant",
                    "header X-Scope-OrgID is not visible ASCII",
                )
            })?;
            TenantId::new(s).map_err(|e| crate::ApiError::from_error("bad_tenant", &e))
        }
    }
}
