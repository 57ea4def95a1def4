//! OTLP metrics: `ExportMetricsServiceRequest` (protobuf or OTLP/JSON) → [`MetricBatch`],
//! named and shaped exactly as Prometheus 3.x's own OTLP receiver does with its default
//! configuration (`translation_strategy: UnderscoreEscapingWithSuffixes`). The rules, with
//! examples, are in `docs/otlp-metrics.md`.
//!
//! Two stages, each pure and separately tested:
//! 1. decoding ([`decode_metrics_request`]): bytes → [`model::ExportMetricsRequest`]. Malformed
//!    bytes, invalid UTF-8, bad id lengths, over-deep nesting: an [`IngestError`] (class
//!    `InvalidInput`) that names the place; the server answers 400 / `InvalidArgument`.
//! 2. translation ([`translate`]): request → batch plus an [`OtlpMetricsReport`]. Never fails:
//!    data points it cannot translate (delta temporality, exponential histograms, bad names,
//!    limits) are counted and described, and become the OTLP `partial_success`.
//!
//! Invariants: no I/O, no panic on any input; the decoded request holds only copies of input
//! bytes (its size is a small multiple of the body, itself capped by the caller before and
//! after decompression, see [`crate::decompress::gzip_capped`]); translation output is bounded
//! by the points in the request (a histogram point yields `buckets + 3` samples, a
//! resource at most [`translate::MAX_TARGET_INFO_SAMPLES`] `target_info` samples).
//!
//! Modules: [`model`] (the decoded request), `proto` (protobuf decoder and encoder, over the
//! crate's wire reader), `json` (OTLP/JSON via serde), [`naming`] (metric, label and unit
//! names), [`translate`], and the answers in [`export_response`] / [`rpc_status`].

pub mod model;
pub mod naming;
pub mod translate;

pub(crate) mod json;
pub use json::base64_encode;
pub(crate) mod proto;
mod response;

use periscope_model::MetricBatch;

pub use model::ExportMetricsRequest;
pub use response::{export_response, export_response_for, rpc_status};
pub use translate::{translate, OtlpMetricsReport, TranslateOptions};

use crate::IngestError;

/// The two OTLP encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpEncoding {
    /// Binary protobuf (`application/x-protobuf`, and always on gRPC).
    Protobuf,
    /// OTLP/JSON (`application/json`).
    Json,
}

impl OtlpEncoding {
    /// The HTTP content type of this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            OtlpEncoding::Protobuf => "application/x-protobuf",
            OtlpEncoding::Json => "application/json",
        }
    }
}

/// Decodes a (decompressed) `ExportMetricsServiceRequest` body.
///
/// Errors: [`IngestError::Protobuf`], [`IngestError::OtlpJson`] or [`IngestError::OtlpInvalid`],
/// all of class `InvalidInput`.
pub fn decode_metrics_request(body: &[u8], encoding: OtlpEncoding) -> Result<ExportMetricsRequest, IngestError> {
    match encoding {
        OtlpEncoding::Protobuf => proto::decode(body),
        OtlpEncoding::Json => json::decode(body),
    }
}

/// Encodes a request as protobuf (for tests, benchmarks and load generators).
pub fn encode_metrics_request(req: &ExportMetricsRequest) -> Vec<u8> {
    proto::encode(req)
}

/// Decodes and translates in one call.
pub fn decode_otlp_metrics(
    body: &[u8],
    encoding: OtlpEncoding,
    opts: &TranslateOptions,
) -> Result<(MetricBatch, OtlpMetricsReport), IngestError> {
    let req = decode_metrics_request(body, encoding)?;
    Ok(translate(&req, opts))
}

#[cfg(test)]
#[path = "otlp_metrics_test.rs"]
mod tests;
