//! `storage`: where and how the embedded engines keep data.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::check::Errors;
use crate::{defaults, ByteSize, Duration};

/// When the write-ahead log is flushed to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncMode {
    /// Every `fsync_interval`: an acknowledged write survives a crash of the process, and a
    /// power cut loses at most the last interval.
    Interval,
    /// Before every acknowledgement: an acknowledged write survives a power cut.
    Always,
}

/// The `storage` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Directory of every embedded engine's files, relative to the working directory.
    pub data_dir: PathBuf,
    /// The write-ahead log.
    pub wal: WalConfig,
    /// The embedded metrics engine.
    pub metrics: MetricsStorageConfig,
    /// The embedded trace engine.
    pub traces: TracesStorageConfig,
    /// The embedded log engine.
    pub logs: LogsStorageConfig,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: PathBuf::from(defaults::DATA_DIR),
            wal: WalConfig::default(),
            metrics: MetricsStorageConfig::default(),
            traces: TracesStorageConfig::default(),
            logs: LogsStorageConfig::default(),
        }
    }
}

/// `storage.wal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalConfig {
    /// `interval` or `always`.
    pub fsync: FsyncMode,
    /// Time between flushes with `fsync: interval`; must be positive then.
    pub fsync_interval: Duration,
    /// Size at which a segment file is closed and a new one started.
    pub segment_size: ByteSize,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            fsync: defaults::WAL_FSYNC,
            fsync_interval: defaults::WAL_FSYNC_INTERVAL,
            segment_size: defaults::WAL_SEGMENT_SIZE,
        }
    }
}

/// `storage.metrics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsStorageConfig {
    /// Time range of the blocks cut from the head.
    pub block_duration: Duration,
    /// Blocks older than this are deleted; `0s` keeps everything.
    pub retention_time: Duration,
    /// Oldest blocks are deleted while the total is larger; `0B` means no limit.
    pub retention_size: ByteSize,
    /// How far behind the newest sample of the tenant a sample older than its series' newest
    /// may still be accepted; `0s` refuses out-of-order samples.
    pub out_of_order_window: Duration,
    /// How often the engine cuts blocks from the head, compacts blocks and applies retention.
    pub maintenance_interval: Duration,
}

impl Default for MetricsStorageConfig {
    fn default() -> Self {
        MetricsStorageConfig {
            block_duration: defaults::BLOCK_DURATION,
            retention_time: defaults::RETENTION_TIME,
            retention_size: defaults::RETENTION_SIZE,
            out_of_order_window: defaults::OUT_OF_ORDER_WINDOW,
            maintenance_interval: defaults::MAINTENANCE_INTERVAL,
        }
    }
}

/// `storage.traces`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracesStorageConfig {
    /// A trace with no new span for this long is written to the next block (Tempo's
    /// `trace_idle_period`).
    pub trace_idle_period: Duration,
    /// Idle traces wait at most this long for their block.
    pub max_block_age: Duration,
    /// A block is written at once when this many idle spans wait.
    pub max_block_spans: u64,
    /// Blocks older than this (behind the tenant's newest span) are deleted; `0s` keeps all.
    pub retention_time: Duration,
    /// Oldest blocks are deleted while the total is larger; `0B` means no limit.
    pub retention_size: ByteSize,
    /// How often blocks are written and retention applied.
    pub maintenance_interval: Duration,
}

impl Default for TracesStorageConfig {
    fn default() -> Self {
        TracesStorageConfig {
            trace_idle_period: defaults::TRACE_IDLE_PERIOD,
            max_block_age: defaults::TRACE_MAX_BLOCK_AGE,
            max_block_spans: defaults::TRACE_MAX_BLOCK_SPANS,
            retention_time: defaults::RETENTION_TIME,
            retention_size: defaults::RETENTION_SIZE,
            maintenance_interval: defaults::TRACE_MAINTENANCE_INTERVAL,
        }
    }
}

/// `storage.logs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogsStorageConfig {
    /// How far behind its stream's newest entry an entry is still accepted (Loki 3: 1h).
    pub out_of_order_window: Duration,
    /// Longest line accepted (Loki's `max_line_size`); `0B`: no limit.
    pub max_line_size: ByteSize,
    /// Most streams per tenant (Loki's `max_global_streams_per_user`); 0: no limit.
    pub max_streams_per_tenant: u64,
    /// A stream without new entries for this long has all its entries cut into a block.
    pub idle_period: Duration,
    /// Entries wait at most this long for their block.
    pub max_block_age: Duration,
    /// A block is written at once when this many entries wait.
    pub max_block_entries: u64,
    /// Blocks older than this (behind the tenant's newest entry) are deleted; `0s` keeps all.
    pub retention_time: Duration,
    /// Oldest blocks are deleted while the total is larger; `0B` means no limit.
    pub retention_size: ByteSize,
    /// How often blocks are cut and retention applied.
    pub maintenance_interval: Duration,
}

impl Default for LogsStorageConfig {
    fn default() -> Self {
        LogsStorageConfig {
            out_of_order_window: Duration::from_hours(1),
            max_line_size: ByteSize::kib(256),
            max_streams_per_tenant: 5000,
            idle_period: Duration::from_mins(30),
            max_block_age: Duration::from_mins(5),
            max_block_entries: 200_000,
            retention_time: defaults::RETENTION_TIME,
            retention_size: defaults::RETENTION_SIZE,
            maintenance_interval: Duration::from_secs(10),
        }
    }
}

impl StorageConfig {
    pub(crate) fn validate(&self, errs: &mut Errors) {
        if self.data_dir.as_os_str().is_empty() {
            errs.add("storage.data_dir", "must not be empty");
        }
        let wal = &self.wal;
        if wal.fsync == FsyncMode::Interval && wal.fsync_interval.is_zero() {
            errs.add("storage.wal.fsync_interval", "must be greater than 0s when storage.wal.fsync is interval");
        }
        if wal.segment_size < defaults::WAL_SEGMENT_SIZE_MIN || wal.segment_size > defaults::WAL_SEGMENT_SIZE_MAX {
            errs.add(
                "storage.wal.segment_size",
                format!(
                    "must be between {} and {} (is {})",
                    defaults::WAL_SEGMENT_SIZE_MIN,
                    defaults::WAL_SEGMENT_SIZE_MAX,
                    wal.segment_size
                ),
            );
        }
        let m = &self.metrics;
        if m.block_duration.is_zero() {
            errs.add("storage.metrics.block_duration", "must be greater than 0s");
        }
        if m.maintenance_interval.is_zero() {
            errs.add("storage.metrics.maintenance_interval", "must be greater than 0s");
        }
        let l = &self.logs;
        if l.maintenance_interval.is_zero() {
            errs.add("storage.logs.maintenance_interval", "must be greater than 0s");
        }
        if l.max_block_entries == 0 {
            errs.add("storage.logs.max_block_entries", "must be greater than 0");
        }
        let t = &self.traces;
        if t.maintenance_interval.is_zero() {
            errs.add("storage.traces.maintenance_interval", "must be greater than 0s");
        }
        if t.max_block_spans == 0 {
            errs.add("storage.traces.max_block_spans", "must be greater than 0");
        }
        if !m.retention_time.is_zero() && m.retention_time < m.block_duration {
            errs.add(
                "storage.metrics.retention_time",
                format!(
                    "must not be shorter than storage.metrics.block_duration ({}), or 0s for no limit",
                    m.block_duration
                ),
            );
        }
    }
}
