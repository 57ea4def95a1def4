//! Pure wire → model decoders: bytes in, [`MetricBatch`](periscope_model::MetricBatch) out.
//!
//! Invariants every decoder here keeps:
//! - No I/O, no async, no global state: a decoder is a function of its input and its limits,
//!   so it can be fuzzed and property-tested in isolation.
//! - No panic on any input, and no allocation beyond a small multiple of the input: sizes are
//!   capped before decompression ([`decompress::snappy_capped`]) and while decoding
//!   ([`remote_write::DecodeLimits`], the expvar series cap).
//! - Request-level problems (malformed bytes, invalid series labels, limits) are an
//!   [`IngestError`] naming the bad field and its position; per-sample problems never abort a
//!   batch and are counted in the decoder's report.
//!
//! Modules: [`decompress`] (capped snappy and gzip), [`remote_write`] (Prometheus remote_write
//! 1.0, decoder and encoder), [`expvar`] (Go `/debug/vars` JSON), [`otlp_metrics`] (OTLP
//! metrics, protobuf and JSON, translated as Prometheus's OTLP receiver does), [`otlp_traces`]
//! (OTLP traces, protobuf and JSON, the full span model).

#![warn(missing_docs)]

pub mod decompress;
mod error;
pub mod expvar;
pub mod jaeger_thrift;
pub mod log_trace_ids;
pub mod loki_push;
pub mod otlp_logs;
pub mod otlp_metrics;
pub mod otlp_traces;
pub mod remote_write;
pub mod span_limits;
mod wire;
pub mod zipkin;

#[cfg(test)]
mod test_util;

pub use decompress::{gzip_capped, snappy_capped};
pub use error::{IngestError, LabelPart, WireError, WireErrorKind, WireType};
pub use expvar::{decode_expvar, ExpvarReport, MAX_EXPVAR_DEPTH};
pub use otlp_metrics::{base64_encode, decode_otlp_metrics, OtlpEncoding, OtlpMetricsReport, TranslateOptions};
pub use remote_write::{decode_write_request, encode_write_request, DecodeLimits, DecodeReport};
