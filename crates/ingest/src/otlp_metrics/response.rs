//! The answers of an OTLP export, in the request's encoding: `ExportMetricsServiceResponse`
//! (with `partial_success` when points were refused) and, for refused requests, a
//! `google.rpc.Status` (OTLP/HTTP requires it as the body of 4xx/5xx answers).
//!
//! ```text
//! ExportMetricsServiceResponse { 1: ExportMetricsPartialSuccess partial_success }
//! ExportMetricsPartialSuccess  { 1: int64 rejected_data_points; 2: string error_message }
//! google.rpc.Status            { 1: int32 code; 2: string message; 3: repeated Any details }
//! ```

use std::fmt::Write as _;

use crate::wire::{put_bytes, put_tag, put_varint};
use crate::WireType;

use super::OtlpEncoding;

/// An `ExportMetricsServiceResponse`. Without refused points and without a message it is the
/// empty message (`{}` in JSON, zero bytes in protobuf), as the specification asks.
pub fn export_response(encoding: OtlpEncoding, rejected_data_points: u64, error_message: &str) -> Vec<u8> {
    export_response_for(encoding, "rejectedDataPoints", rejected_data_points, error_message)
}

/// The export response of any signal: the partial success's count is field 1 in protobuf and
/// `json_key` in JSON (`rejectedDataPoints`, `rejectedSpans`, `rejectedLogRecords`).
pub fn export_response_for(
    encoding: OtlpEncoding,
    json_key: &str,
    rejected_data_points: u64,
    error_message: &str,
) -> Vec<u8> {
    let partial = rejected_data_points != 0 || !error_message.is_empty();
    match encoding {
        OtlpEncoding::Protobuf => {
            let mut out = Vec::new();
            if partial {
                let mut inner = Vec::new();
                if rejected_data_points != 0 {
                    put_tag(&mut inner, 1, WireType::Varint);
                    put_varint(&mut inner, rejected_data_points);
                }
                if !error_message.is_empty() {
                    put_bytes(&mut inner, 2, error_message.as_bytes());
                }
                put_bytes(&mut out, 1, &inner);
            }
            out
        }
        OtlpEncoding::Json => {
            if !partial {
                return b"{}".to_vec();
            }
            // int64 is a decimal string in proto3 JSON.
            let mut s = format!("{{\"partialSuccess\":{{\"{json_key}\":\"{rejected_data_points}\"");
            if !error_message.is_empty() {
                let _ = write!(s, ",\"errorMessage\":{}", json_str(error_message));
            }
            s.push_str("}}");
            s.into_bytes()
        }
    }
}

/// A `google.rpc.Status` with a gRPC status `code` (3 InvalidArgument, 8 ResourceExhausted,
/// 14 Unavailable...) and a message.
pub fn rpc_status(encoding: OtlpEncoding, code: i32, message: &str) -> Vec<u8> {
    match encoding {
        OtlpEncoding::Protobuf => {
            let mut out = Vec::new();
            if code != 0 {
                put_tag(&mut out, 1, WireType::Varint);
                // int32: negative values are sign-extended to ten bytes.
                put_varint(&mut out, i64::from(code) as u64);
            }
            if !message.is_empty() {
                put_bytes(&mut out, 2, message.as_bytes());
            }
            out
        }
        OtlpEncoding::Json => format!("{{\"code\":{code},\"message\":{}}}", json_str(message)).into_bytes(),
    }
}

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_partial_responses() {
        assert!(export_response(OtlpEncoding::Protobuf, 0, "").is_empty());
        assert_eq!(export_response(OtlpEncoding::Json, 0, ""), b"{}");
        assert_eq!(export_response(OtlpEncoding::Protobuf, 3, "x"), [0x0a, 0x05, 0x08, 0x03, 0x12, 0x01, b'x']);
        let json: serde_json::Value =
            serde_json::from_slice(&export_response(OtlpEncoding::Json, 3, "a \"b\"")).unwrap();
        assert_eq!(json["partialSuccess"]["rejectedDataPoints"], "3");
        assert_eq!(json["partialSuccess"]["errorMessage"], "a \"b\"");
    }

    #[test]
    fn status() {
        assert_eq!(rpc_status(OtlpEncoding::Protobuf, 3, "bad"), [0x08, 0x03, 0x12, 0x03, b'b', b'a', b'd']);
        let json: serde_json::Value = serde_json::from_slice(&rpc_status(OtlpEncoding::Json, 14, "down")).unwrap();
        assert_eq!(json, serde_json::json!({"code": 14, "message": "down"}));
    }
}
