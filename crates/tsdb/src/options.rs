//! Engine options (internal; the server maps the user's config onto them).

use periscope_model::TenantId;
use periscope_wal::WalOptions;
use std::sync::Arc;

/// Per-tenant limits the engine enforces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantLimits {
    /// Series in the head; 0 means unlimited.
    pub max_series: u64,
    /// Samples more than this far ahead of the wall clock are rejected, ms.
    pub creation_grace_ms: i64,
    /// Exemplars kept (a ring: the newest replace the oldest); read when the tenant's
    /// database opens.
    pub max_exemplars: usize,
}

impl Default for TenantLimits {
    fn default() -> Self {
        TenantLimits { max_series: 0, creation_grace_ms: 10 * 60 * 1000, max_exemplars: 100_000 }
    }
}

/// Looks up a tenant's limits (the server passes its config's `tenants` overrides).
pub type LimitsFn = Arc<dyn Fn(&TenantId) -> TenantLimits + Send + Sync>;

/// How the engine is opened.
#[derive(Clone)]
pub struct TsdbOptions {
    pub wal: WalOptions,
    /// Length of a block's time range, ms; chunks never cross a multiple of it.
    pub block_range_ms: i64,
    /// How far behind the head's newest sample an out-of-order sample is still accepted, ms;
    /// 0 rejects every out-of-order sample as Prometheus does by default.
    pub out_of_order_window_ms: i64,
    /// Blocks whose newest sample is older than this behind the newest data are deleted, ms;
    /// 0 keeps everything.
    pub retention_ms: i64,
    /// The oldest blocks are deleted while all blocks together are larger; 0 means no limit.
    pub retention_bytes: u64,
    /// How often maintenance (cutting blocks, compaction, retention) runs.
    pub maintenance_interval: std::time::Duration,
    pub limits: LimitsFn,
}

impl Default for TsdbOptions {
    fn default() -> Self {
        TsdbOptions {
            wal: WalOptions::default(),
            block_range_ms: 2 * 3600 * 1000,
            out_of_order_window_ms: 0,
            retention_ms: 15 * 86_400_000,
            retention_bytes: 0,
            maintenance_interval: std::time::Duration::from_secs(60),
            limits: Arc::new(|_| TenantLimits::default()),
        }
    }
}

impl std::fmt::Debug for TsdbOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsdbOptions")
            .field("wal", &self.wal)
            .field("block_range_ms", &self.block_range_ms)
            .field("out_of_order_window_ms", &self.out_of_order_window_ms)
            .field("retention_ms", &self.retention_ms)
            .field("retention_bytes", &self.retention_bytes)
            .field("maintenance_interval", &self.maintenance_interval)
            .finish_non_exhaustive()
    }
}
