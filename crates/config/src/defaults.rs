//! Every default of the configuration, as named constants, in the order of
//! `config/periscope.example.yaml` and `docs/configuration.md`. A missing key, a missing
//! section and a missing file all mean these values.

use crate::{ByteSize, Duration, FsyncMode, LogFormat, LogLevel, Scheme, ScrapeFormat};

// global
/// `global.scrape_interval` (Prometheus's default).
pub const SCRAPE_INTERVAL: Duration = Duration::from_mins(1);
/// `global.scrape_timeout` (Prometheus's default; never more than the interval).
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

// server
/// `server.http_listen_address`: loopback only; set `0.0.0.0:9800` to expose it.
pub const HTTP_LISTEN_ADDRESS: &str = "127.0.0.1:9800";
/// `server.otlp_grpc_listen_address` (OTLP's standard gRPC port).
pub const OTLP_GRPC_LISTEN_ADDRESS: &str = "127.0.0.1:4317";
/// `server.otlp_http_listen_address` (OTLP's standard HTTP port).
pub const OTLP_HTTP_LISTEN_ADDRESS: &str = "127.0.0.1:4318";
/// `server.jaeger_collector_listen_address` (Jaeger collector's HTTP port, `POST /api/traces`).
pub const JAEGER_COLLECTOR_LISTEN_ADDRESS: &str = "127.0.0.1:14268";
/// `server.jaeger_agent_compact_listen_address` (the Jaeger agent's UDP compact-Thrift port).
pub const JAEGER_AGENT_COMPACT_LISTEN_ADDRESS: &str = "127.0.0.1:6831";
/// `server.jaeger_agent_binary_listen_address` (the Jaeger agent's UDP binary-Thrift port).
pub const JAEGER_AGENT_BINARY_LISTEN_ADDRESS: &str = "127.0.0.1:6832";
/// `server.max_request_body_bytes`: 10 MiB on the wire.
pub const MAX_REQUEST_BODY_BYTES: ByteSize = ByteSize::mib(10);
/// `server.max_decompressed_body_bytes`: 64 MiB after decompression.
pub const MAX_DECOMPRESSED_BODY_BYTES: ByteSize = ByteSize::mib(64);
/// `server.shutdown_timeout`.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// `server.log_level`.
pub const LOG_LEVEL: LogLevel = LogLevel::Info;
/// `server.log_format`.
pub const LOG_FORMAT: LogFormat = LogFormat::Text;

// storage
/// `storage.data_dir`, relative to the working directory.
pub const DATA_DIR: &str = "./data";
/// `storage.wal.fsync`.
pub const WAL_FSYNC: FsyncMode = FsyncMode::Interval;
/// `storage.wal.fsync_interval`.
pub const WAL_FSYNC_INTERVAL: Duration = Duration::from_secs(1);
/// `storage.wal.segment_size`.
pub const WAL_SEGMENT_SIZE: ByteSize = ByteSize::mib(128);
/// Smallest accepted `storage.wal.segment_size`.
pub const WAL_SEGMENT_SIZE_MIN: ByteSize = ByteSize::mib(1);
/// Largest accepted `storage.wal.segment_size`.
pub const WAL_SEGMENT_SIZE_MAX: ByteSize = ByteSize::gib(1);
/// `storage.metrics.block_duration` (Prometheus's minimum block duration).
pub const BLOCK_DURATION: Duration = Duration::from_hours(2);
/// `storage.metrics.retention_time` (Prometheus's default); zero keeps data forever.
pub const RETENTION_TIME: Duration = Duration::from_days(15);
/// `storage.metrics.retention_size`; zero means no size limit.
pub const RETENTION_SIZE: ByteSize = ByteSize::ZERO;
/// `storage.metrics.out_of_order_window`; zero refuses out-of-order samples.
pub const OUT_OF_ORDER_WINDOW: Duration = Duration::ZERO;

/// `storage.traces.trace_idle_period` (Tempo's default).
pub const TRACE_IDLE_PERIOD: Duration = Duration::from_secs(10);
/// `storage.traces.max_block_age`.
pub const TRACE_MAX_BLOCK_AGE: Duration = Duration::from_mins(5);
/// `storage.traces.max_block_spans`.
pub const TRACE_MAX_BLOCK_SPANS: u64 = 200_000;
/// `storage.traces.maintenance_interval`.
pub const TRACE_MAINTENANCE_INTERVAL: Duration = Duration::from_secs(10);

// query
/// `query.lookback_delta` (Prometheus's `--query.lookback-delta`).
pub const QUERY_LOOKBACK_DELTA: Duration = Duration::from_mins(5);
/// `query.max_samples` (Prometheus's `--query.max-samples`).
pub const QUERY_MAX_SAMPLES: u64 = 50_000_000;
/// `query.timeout` (Prometheus's `--query.timeout`).
pub const QUERY_TIMEOUT: Duration = Duration::from_mins(2);

// limits (defaults for every tenant)
/// `limits.max_series_per_tenant`; zero means unlimited.
pub const MAX_SERIES_PER_TENANT: u64 = 0;
/// `limits.max_label_names_per_series` (Mimir uses 30; OTLP resources often bring more).
pub const MAX_LABEL_NAMES_PER_SERIES: usize = 64;
/// `limits.max_label_name_length` in bytes (Mimir's default).
pub const MAX_LABEL_NAME_LENGTH: usize = 1024;
/// `limits.max_label_value_length` in bytes (Mimir uses 2048; URLs and SQL exceed it).
pub const MAX_LABEL_VALUE_LENGTH: usize = 4096;
/// `limits.max_samples_per_request`; zero means unlimited (the body size caps it anyway).
pub const MAX_SAMPLES_PER_REQUEST: u64 = 0;
/// `limits.max_exemplars`: exemplars kept per tenant, the newest replacing the oldest
/// (Prometheus's `storage.exemplars.max_exemplars` default).
pub const MAX_EXEMPLARS: usize = 100_000;
/// `limits.creation_grace_period`: how far in the future a sample may be (Mimir's default).
pub const CREATION_GRACE_PERIOD: Duration = Duration::from_mins(10);

// scrape_configs
/// `scrape_configs[].metrics_path` for `format: prometheus`.
pub const METRICS_PATH: &str = "/metrics";
/// `scrape_configs[].metrics_path` for `format: expvar` (Go's `expvar` handler).
pub const EXPVAR_METRICS_PATH: &str = "/debug/vars";
/// `scrape_configs[].scheme`.
pub const SCHEME: Scheme = Scheme::Http;
/// `scrape_configs[].honor_labels`.
pub const HONOR_LABELS: bool = false;
/// `scrape_configs[].honor_timestamps`.
pub const HONOR_TIMESTAMPS: bool = true;
/// `scrape_configs[].authorization.type`.
pub const AUTHORIZATION_TYPE: &str = "Bearer";
/// `scrape_configs[].format`.
pub const SCRAPE_FORMAT: ScrapeFormat = ScrapeFormat::Prometheus;

/// `limits.ingestion_rate`: unlimited.
pub const INGESTION_RATE: u64 = 0;

/// `limits.ingestion_burst_size`: one second of `ingestion_rate`.
pub const INGESTION_BURST_SIZE: u64 = 0;

/// `storage.metrics.maintenance_interval`: Prometheus checks for compaction every minute too.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_mins(1);
