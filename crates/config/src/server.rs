//! `server`: listeners, request limits, shutdown, logging.

use serde::{Deserialize, Serialize};

use crate::check::{check_listen_address, Errors};
use crate::{defaults, ByteSize, Duration};

/// How much the server logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Only failures.
    Error,
    /// Failures and anything suspicious.
    Warn,
    /// Start-up, shutdown, reloads and other notable events.
    Info,
    /// Per-request detail.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The name as written in YAML (and understood by `tracing`'s filters).
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The `server` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// HTTP API, UI, remote write, Loki push, `/metrics`: `host:port`.
    pub http_listen_address: String,
    /// OTLP over gRPC: `host:port`.
    pub otlp_grpc_listen_address: String,
    /// OTLP over HTTP (`/v1/traces`, `/v1/metrics`, `/v1/logs`): `host:port`.
    pub otlp_http_listen_address: String,
    /// Jaeger's collector port (`POST /api/traces`, Thrift over HTTP; also served on the main
    /// port): `host:port`, or empty for none.
    pub jaeger_collector_listen_address: String,
    /// The Jaeger agent's UDP port for compact-Thrift `emitBatch` datagrams: `host:port`, or
    /// empty for none.
    pub jaeger_agent_compact_listen_address: String,
    /// The Jaeger agent's UDP port for binary-Thrift datagrams: `host:port`, or empty for none.
    pub jaeger_agent_binary_listen_address: String,
    /// Largest request body accepted as sent (compressed or not); larger ones get 413.
    pub max_request_body_bytes: ByteSize,
    /// Largest body after decompression; decompression stops there with 413.
    pub max_decompressed_body_bytes: ByteSize,
    /// How long in-flight requests may run after a shutdown signal before they are cut.
    pub shutdown_timeout: Duration,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub log_level: LogLevel,
    /// `text` or `json`.
    pub log_format: LogFormat,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            http_listen_address: defaults::HTTP_LISTEN_ADDRESS.to_string(),
            otlp_grpc_listen_address: defaults::OTLP_GRPC_LISTEN_ADDRESS.to_string(),
            otlp_http_listen_address: defaults::OTLP_HTTP_LISTEN_ADDRESS.to_string(),
            jaeger_collector_listen_address: defaults::JAEGER_COLLECTOR_LISTEN_ADDRESS.to_string(),
            jaeger_agent_compact_listen_address: defaults::JAEGER_AGENT_COMPACT_LISTEN_ADDRESS.to_string(),
            jaeger_agent_binary_listen_address: defaults::JAEGER_AGENT_BINARY_LISTEN_ADDRESS.to_string(),
            max_request_body_bytes: defaults::MAX_REQUEST_BODY_BYTES,
            max_decompressed_body_bytes: defaults::MAX_DECOMPRESSED_BODY_BYTES,
            shutdown_timeout: defaults::SHUTDOWN_TIMEOUT,
            log_level: defaults::LOG_LEVEL,
            log_format: defaults::LOG_FORMAT,
        }
    }
}

impl ServerConfig {
    pub(crate) fn validate(&self, errs: &mut Errors) {
        // TCP and UDP ports are apart; within each, fixed ports must differ.
        let tcp = [
            ("server.http_listen_address", &self.http_listen_address, false),
            ("server.otlp_grpc_listen_address", &self.otlp_grpc_listen_address, false),
            ("server.otlp_http_listen_address", &self.otlp_http_listen_address, false),
            ("server.jaeger_collector_listen_address", &self.jaeger_collector_listen_address, true),
        ];
        let udp = [
            ("server.jaeger_agent_compact_listen_address", &self.jaeger_agent_compact_listen_address, true),
            ("server.jaeger_agent_binary_listen_address", &self.jaeger_agent_binary_listen_address, true),
        ];
        for listeners in [&tcp[..], &udp[..]] {
            for (i, (key, addr, optional)) in listeners.iter().enumerate() {
                if *optional && addr.is_empty() {
                    continue;
                }
                if let Err(e) = check_listen_address(addr) {
                    errs.add(*key, e);
                    continue;
                }
                // Port 0 picks a free port, so only fixed ports can collide.
                let fixed = !addr.ends_with(":0");
                if let Some((other, ..)) = listeners[..i].iter().find(|(_, a, _)| a == addr) {
                    if fixed {
                        errs.add(*key, format!("{addr:?} is already used by {other}"));
                    }
                }
            }
        }
        if self.max_request_body_bytes.is_zero() {
            errs.add("server.max_request_body_bytes", "must be greater than 0");
        }
        if self.max_decompressed_body_bytes.is_zero() {
            errs.add("server.max_decompressed_body_bytes", "must be greater than 0");
        }
    }
}
