//! OTLP logs: `ExportLogsServiceRequest` (protobuf or OTLP/JSON) → [`ExportLogsRequest`]
//! (`opentelemetry/proto/logs/v1/logs.proto`), and [`translate_logs`] → [`LogBatch`] with
//! Loki 3's default OTLP mapping (`docs/logs.md`):
//!
//! - Stream labels: the resource attributes Loki promotes by default ([`STREAM_LABEL_ATTRIBUTES`]),
//!   names normalised as Prometheus labels (`service.name` → `service_name`); a resource
//!   without `service.name` gets `service_name="unknown_service"`.
//! - Structured metadata: the other resource attributes, `scope_name`, `scope_version`,
//!   the scope's attributes, the record's attributes (names normalised the same way),
//!   `severity_text`, `severity_number` (when set), `trace_id` and `span_id` (lower-case hex,
//!   when set), `flags` (when set), `event_name` (when set).
//! - The line: the body; a string as it is, anything else as JSON (bytes as base64), empty
//!   when absent. The time: `time_unix_nano`, else `observed_time_unix_nano`; a record with
//!   neither is refused (counted in the partial success).
//!
//! Common messages and wire rules are the metrics decoder's (`otlp_metrics::{model, proto,
//! json}`).

use serde::Deserialize;

use crate::otlp_metrics::json;
use crate::otlp_metrics::model::{AnyValue, KeyValue, Resource, Scope};
use crate::otlp_metrics::proto::{
    any_value, encode_any, fixed64, fixed64_field, id, key_value, key_values, msg, nested, resource, scope, str_field,
    string, varint32, varint_field, Sub, R,
};
use crate::otlp_metrics::OtlpEncoding;
use crate::otlp_traces::group;
use crate::wire::Reader;
use crate::IngestError;
use periscope_model::{hex_id, Labels, LogBatch, LogEntry, LogStream};
use std::collections::BTreeMap;

/// `ExportLogsServiceRequest`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExportLogsRequest {
    /// `resource_logs = 1`.
    #[serde(deserialize_with = "json::nullable")]
    pub resource_logs: Vec<ResourceLogs>,
}

/// `ResourceLogs`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResourceLogs {
    /// `resource = 1`.
    #[serde(deserialize_with = "json::nullable")]
    pub resource: Resource,
    /// `scope_logs = 2`.
    #[serde(deserialize_with = "json::nullable")]
    pub scope_logs: Vec<ScopeLogs>,
    /// `schema_url = 3`.
    #[serde(deserialize_with = "json::nullable")]
    pub schema_url: String,
}

/// `ScopeLogs`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ScopeLogs {
    /// `scope = 1`.
    #[serde(deserialize_with = "json::nullable")]
    pub scope: Scope,
    /// `log_records = 2`.
    #[serde(deserialize_with = "json::nullable")]
    pub log_records: Vec<LogRecord>,
    /// `schema_url = 3`.
    #[serde(deserialize_with = "json::nullable")]
    pub schema_url: String,
}

/// `LogRecord`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LogRecord {
    /// `time_unix_nano = 1`.
    #[serde(deserialize_with = "json::u64_any")]
    pub time_unix_nano: u64,
    /// `observed_time_unix_nano = 11`.
    #[serde(deserialize_with = "json::u64_any")]
    pub observed_time_unix_nano: u64,
    /// `severity_number = 2`.
    #[serde(deserialize_with = "json::nullable")]
    pub severity_number: i32,
    /// `severity_text = 3`.
    #[serde(deserialize_with = "json::nullable")]
    pub severity_text: String,
    /// `body = 5`.
    #[serde(deserialize_with = "json::nullable")]
    pub body: AnyValue,
    /// `attributes = 6`.
    #[serde(deserialize_with = "json::nullable")]
    pub attributes: Vec<KeyValue>,
    /// `dropped_attributes_count = 7`.
    #[serde(deserialize_with = "json::nullable")]
    pub dropped_attributes_count: u32,
    /// `flags = 8`.
    #[serde(deserialize_with = "json::nullable")]
    pub flags: u32,
    /// `trace_id = 9`: 16 bytes (hex in OTLP/JSON), empty when absent.
    #[serde(deserialize_with = "json::trace_id")]
    pub trace_id: Vec<u8>,
    /// `span_id = 10`: 8 bytes, empty when absent.
    #[serde(deserialize_with = "json::span_id")]
    pub span_id: Vec<u8>,
    /// `event_name = 12`.
    #[serde(deserialize_with = "json::nullable")]
    pub event_name: String,
}

/// Decodes an `ExportLogsServiceRequest` in `encoding`.
pub fn decode_logs_request(body: &[u8], encoding: OtlpEncoding) -> Result<ExportLogsRequest, IngestError> {
    match encoding {
        OtlpEncoding::Protobuf => decode_proto(body),
        OtlpEncoding::Json => serde_json::from_slice(body).map_err(IngestError::OtlpJson),
    }
}

fn decode_proto(body: &[u8]) -> R<ExportLogsRequest> {
    let mut req = ExportLogsRequest::default();
    let mut r = Reader::new(body, 0, "ExportLogsServiceRequest");
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => {
                let (resource, scope_logs, schema_url) = group(
                    msg(&mut r, wt, "resource_logs")?,
                    ["ResourceLogs", "resource", "scope_logs"],
                    resource,
                    scope_logs,
                )?;
                req.resource_logs.push(ResourceLogs { resource, scope_logs, schema_url });
            }
            _ => r.skip(field, wt)?,
        }
    }
    Ok(req)
}

fn scope_logs(sub: Sub<'_>) -> R<ScopeLogs> {
    let (scope, log_records, schema_url) = group(sub, ["ScopeLogs", "scope", "log_records"], scope, record)?;
    Ok(ScopeLogs { scope, log_records, schema_url })
}

fn record((b, off): Sub<'_>) -> R<LogRecord> {
    let mut l = LogRecord::default();
    let mut r = Reader::new(b, off, "LogRecord");
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => l.time_unix_nano = fixed64(&mut r, wt, "time_unix_nano")?,
            11 => l.observed_time_unix_nano = fixed64(&mut r, wt, "observed_time_unix_nano")?,
            2 => l.severity_number = varint32(&mut r, wt, "severity_number")? as i32,
            3 => l.severity_text = string(&mut r, wt, "LogRecord", "severity_text")?,
            5 => any_value(msg(&mut r, wt, "body")?, 0, &mut l.body)?,
            6 => l.attributes.push(key_value(msg(&mut r, wt, "attributes")?, 0)?),
            7 => l.dropped_attributes_count = varint32(&mut r, wt, "dropped_attributes_count")?,
            8 => {
                r.expect(wt, crate::error::WireType::Fixed32, "flags")?;
                l.flags = r.fixed32()?;
            }
            9 => l.trace_id = id(&mut r, wt, "trace_id", 16)?,
            10 => l.span_id = id(&mut r, wt, "span_id", 8)?,
            12 => l.event_name = string(&mut r, wt, "LogRecord", "event_name")?,
            _ => r.skip(field, wt)?,
        }
    }
    Ok(l)
}

/// Encodes a request as protobuf (what an SDK sends; for tests and load generators).
pub fn encode_logs_request(req: &ExportLogsRequest) -> Vec<u8> {
    let mut out = Vec::new();
    for rl in &req.resource_logs {
        nested(&mut out, 1, |o| {
            nested(o, 1, |o| key_values(o, 1, &rl.resource.attributes));
            for sl in &rl.scope_logs {
                nested(o, 2, |o| {
                    nested(o, 1, |o| {
                        str_field(o, 1, &sl.scope.name);
                        str_field(o, 2, &sl.scope.version);
                        key_values(o, 3, &sl.scope.attributes);
                    });
                    for l in &sl.log_records {
                        nested(o, 2, |o| {
                            fixed64_field(o, 1, l.time_unix_nano);
                            varint_field(o, 2, l.severity_number as u64);
                            str_field(o, 3, &l.severity_text);
                            if l.body != AnyValue::Empty {
                                nested(o, 5, |o| encode_any(o, &l.body));
                            }
                            key_values(o, 6, &l.attributes);
                            varint_field(o, 7, l.dropped_attributes_count.into());
                            if l.flags != 0 {
                                crate::wire::put_tag(o, 8, crate::error::WireType::Fixed32);
                                o.extend_from_slice(&l.flags.to_le_bytes());
                            }
                            if !l.trace_id.is_empty() {
                                crate::wire::put_bytes(o, 9, &l.trace_id);
                            }
                            if !l.span_id.is_empty() {
                                crate::wire::put_bytes(o, 10, &l.span_id);
                            }
                            fixed64_field(o, 11, l.observed_time_unix_nano);
                            str_field(o, 12, &l.event_name);
                        });
                    }
                    str_field(o, 3, &sl.schema_url);
                });
            }
            str_field(o, 3, &rl.schema_url);
        });
    }
    out
}

/// Resource attributes Loki 3 turns into stream labels by default (`default_resource_attributes_as_index_labels`).
pub const STREAM_LABEL_ATTRIBUTES: [&str; 17] = [
    "service.name",
    "service.namespace",
    "service.instance.id",
    "deployment.environment",
    "cloud.region",
    "cloud.availability_zone",
    "k8s.cluster.name",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.container.name",
    "container.name",
    "k8s.replicaset.name",
    "k8s.deployment.name",
    "k8s.statefulset.name",
    "k8s.daemonset.name",
    "k8s.cronjob.name",
    "k8s.job.name",
];

/// An attribute name as a Prometheus/Loki label name: every character outside
/// `[a-zA-Z0-9_]` becomes `_`, a leading digit gets a `_` in front.
pub fn normalize_label(name: &str) -> String {
    let mut out: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A value as text: strings as they are, the rest as JSON (bytes as base64, map keys
/// sorted, as Go's `encoding/json` writes pdata's `AsRaw`).
pub fn any_text(v: &AnyValue) -> String {
    match v {
        AnyValue::Empty => String::new(),
        AnyValue::String(s) => s.clone(),
        _ => any_json(v).to_string(),
    }
}

fn any_json(v: &AnyValue) -> serde_json::Value {
    use serde_json::Value;
    match v {
        AnyValue::Empty => Value::Null,
        AnyValue::String(s) => Value::String(s.clone()),
        AnyValue::Bool(b) => Value::Bool(*b),
        AnyValue::Int(i) => Value::from(*i),
        AnyValue::Double(d) => {
            serde_json::Number::from_f64(*d).map_or_else(|| Value::String(d.to_string()), Value::Number)
        }
        AnyValue::Bytes(b) => Value::String(json::base64_encode(b)),
        AnyValue::Array(a) => Value::Array(a.iter().map(any_json).collect()),
        AnyValue::KvList(kvs) => Value::Object(kvs.iter().map(|kv| (kv.key.clone(), any_json(&kv.value))).collect()),
    }
}

/// What [`translate_logs`] kept and refused: the OTLP `partial_success` of the answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtlpLogsReport {
    /// Log records in the request.
    pub records: usize,
    /// Of which refused: the `rejected_log_records` of the answer.
    pub rejected_records: usize,
    /// The first problems (at most 8).
    pub messages: Vec<String>,
}

impl OtlpLogsReport {
    /// One line for the OTLP `partial_success.error_message`, empty when nothing was wrong.
    pub fn error_message(&self) -> String {
        let mut s = self.messages.join("; ");
        if self.rejected_records > self.messages.len() {
            s.push_str(&format!("; and {} more", self.rejected_records - self.messages.len()));
        }
        s
    }
}

/// A decoded request as log streams. Never fails; records without any time are refused and
/// described in the report.
pub fn translate_logs(req: &ExportLogsRequest) -> (LogBatch, OtlpLogsReport) {
    let mut report = OtlpLogsReport::default();
    let mut streams: BTreeMap<Labels, Vec<LogEntry>> = BTreeMap::new();
    for rl in &req.resource_logs {
        let mut labels: Vec<(String, String)> = Vec::new();
        let mut resource_meta: Vec<(String, String)> = Vec::new();
        for kv in &rl.resource.attributes {
            let text = any_text(&kv.value);
            if STREAM_LABEL_ATTRIBUTES.contains(&kv.key.as_str()) {
                labels.push((normalize_label(&kv.key), text));
            } else {
                resource_meta.push((normalize_label(&kv.key), text));
            }
        }
        if !labels.iter().any(|(n, v)| n == "service_name" && !v.is_empty()) {
            labels.retain(|(n, _)| n != "service_name");
            labels.push(("service_name".into(), "unknown_service".into()));
        }
        // Labels::from_pairs refuses only duplicate names, which normalisation can create
        // (`a.b` and `a_b`): the first wins.
        let mut seen = std::collections::HashSet::new();
        labels.retain(|(n, _)| seen.insert(n.clone()));
        let Ok(labels) = Labels::from_pairs(labels) else { continue };
        for sl in &rl.scope_logs {
            let mut scope_meta = resource_meta.clone();
            if !sl.scope.name.is_empty() {
                scope_meta.push(("scope_name".into(), sl.scope.name.clone()));
            }
            if !sl.scope.version.is_empty() {
                scope_meta.push(("scope_version".into(), sl.scope.version.clone()));
            }
            for kv in &sl.scope.attributes {
                scope_meta.push((normalize_label(&kv.key), any_text(&kv.value)));
            }
            for l in &sl.log_records {
                report.records += 1;
                let ts = if l.time_unix_nano != 0 { l.time_unix_nano } else { l.observed_time_unix_nano };
                let Ok(ts_ns) = i64::try_from(ts) else {
                    report.rejected_records += 1;
                    if report.messages.len() < 8 {
                        report.messages.push("log record time is beyond the year 2262".into());
                    }
                    continue;
                };
                if ts_ns == 0 {
                    report.rejected_records += 1;
                    if report.messages.len() < 8 {
                        report
                            .messages
                            .push("log record has neither time_unix_nano nor observed_time_unix_nano".into());
                    }
                    continue;
                }
                let mut metadata = scope_meta.clone();
                for kv in &l.attributes {
                    metadata.push((normalize_label(&kv.key), any_text(&kv.value)));
                }
                if !l.severity_text.is_empty() {
                    metadata.push(("severity_text".into(), l.severity_text.clone()));
                }
                if l.severity_number != 0 {
                    metadata.push(("severity_number".into(), l.severity_number.to_string()));
                }
                if l.trace_id.iter().any(|b| *b != 0) {
                    metadata.push(("trace_id".into(), hex_id(&l.trace_id)));
                }
                if l.span_id.iter().any(|b| *b != 0) {
                    metadata.push(("span_id".into(), hex_id(&l.span_id)));
                }
                if l.flags != 0 {
                    metadata.push(("flags".into(), l.flags.to_string()));
                }
                if !l.event_name.is_empty() {
                    metadata.push(("event_name".into(), l.event_name.clone()));
                }
                streams.entry(labels.clone()).or_default().push(LogEntry { ts_ns, line: any_text(&l.body), metadata });
            }
        }
    }
    let batch =
        LogBatch { streams: streams.into_iter().map(|(labels, entries)| LogStream { labels, entries }).collect() };
    (batch, report)
}

#[cfg(test)]
#[path = "otlp_logs_test.rs"]
mod tests;
