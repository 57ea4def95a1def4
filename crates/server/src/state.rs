//! What every handler shares.

use crate::SelfMetrics;
use periscope_config::Config;
use periscope_model::TenantId;
use periscope_storage::MetricStoreRef;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

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
}

/// Appends Prometheus text-format self-metrics of one component.
pub type MetricsSource = Arc<dyn Fn(&mut String) + Send + Sync>;

impl AppState {
    /// State over `store` with `config`.
    pub fn new(store: MetricStoreRef, config: Arc<Config>) -> Self {
        AppState {
            store,
            config,
            metrics: Arc::new(SelfMetrics::default()),
            ready: Arc::new(AtomicBool::new(false)),
            limiter: Arc::default(),
            metrics_sources: Arc::new(Vec::new()),
        }
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
