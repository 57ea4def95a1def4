//! Spans: the trace signal's unit, in the OpenTelemetry model (resource, scope, kind, status,
//! attributes, events, links). Ids are kept bit-exact; times are nanoseconds since the epoch.
//!
//! Invariants of a [`Span`] built by a decoder: trace and span ids are not all zero, a parent
//! id is `None` rather than zero, `start_ns <= end_ns`.

use std::sync::Arc;

/// A 16-byte W3C trace id.
pub type TraceId = [u8; 16];
/// An 8-byte W3C span id.
pub type SpanId = [u8; 8];

/// The resource attribute that names a service.
pub const SERVICE_NAME: &str = "service.name";
/// The service name of spans whose resource names none (OpenTelemetry's default).
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// What a span represents in its trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum SpanKind {
    #[default]
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    /// The kind of an OTLP code (0..=5), `None` for any other.
    pub fn from_otlp(code: i32) -> Option<Self> {
        Some(match code {
            0 => SpanKind::Unspecified,
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => return None,
        })
    }

    /// The OTLP code.
    pub fn otlp_code(self) -> i32 {
        self as i32
    }

    /// The lower-case name Jaeger and Grafana use (`server`, `client`, ...; `unspecified`).
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "unspecified",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }
}

/// A span's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum StatusCode {
    #[default]
    Unset,
    Ok,
    Error,
}

impl StatusCode {
    /// The status of an OTLP code (0..=2), `None` for any other.
    pub fn from_otlp(code: i32) -> Option<Self> {
        Some(match code {
            0 => StatusCode::Unset,
            1 => StatusCode::Ok,
            2 => StatusCode::Error,
            _ => return None,
        })
    }

    /// The OTLP code.
    pub fn otlp_code(self) -> i32 {
        self as i32
    }
}

/// An attribute value (OTLP's `AnyValue`).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum AttrValue {
    #[default]
    Empty,
    Str(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Vec<u8>),
    Array(Vec<AttrValue>),
    Map(Vec<Attribute>),
}

impl AttrValue {
    /// The value as text, for a scalar (`true`, `500`, `1.5`); `None` for bytes, arrays, maps
    /// and the empty value. Tag searches and labels compare this text.
    pub fn as_text(&self) -> Option<String> {
        Some(match self {
            AttrValue::Str(s) => s.clone(),
            AttrValue::Bool(b) => b.to_string(),
            AttrValue::Int(i) => i.to_string(),
            AttrValue::Double(d) => d.to_string(),
            _ => return None,
        })
    }
}

/// A key and its value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Attribute {
    pub key: String,
    pub value: AttrValue,
}

impl Attribute {
    /// A string attribute.
    pub fn str(key: impl Into<String>, value: impl Into<String>) -> Self {
        Attribute { key: key.into(), value: AttrValue::Str(value.into()) }
    }
}

/// Something that happened during a span (an exception, a retry...).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpanEvent {
    pub time_ns: i64,
    pub name: String,
    pub attributes: Vec<Attribute>,
    pub dropped_attributes: u32,
}

/// A link to a span of this or another trace.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpanLink {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub trace_state: String,
    pub attributes: Vec<Attribute>,
    pub dropped_attributes: u32,
    pub flags: u32,
}

/// Where spans were reported from: their resource and instrumentation scope, shared by the
/// spans of one batch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpanOrigin {
    pub resource: Vec<Attribute>,
    pub resource_schema_url: String,
    pub scope_name: String,
    pub scope_version: String,
    pub scope_attributes: Vec<Attribute>,
    pub scope_schema_url: String,
}

impl SpanOrigin {
    /// The service name: the resource's `service.name` when it is a string, else
    /// [`UNKNOWN_SERVICE`].
    pub fn service_name(&self) -> &str {
        self.resource
            .iter()
            .find(|a| a.key == SERVICE_NAME)
            .and_then(|a| match &a.value {
                AttrValue::Str(s) if !s.is_empty() => Some(s.as_str()),
                _ => None,
            })
            .unwrap_or(UNKNOWN_SERVICE)
    }
}

/// One span.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    pub trace_state: String,
    pub flags: u32,
    pub name: String,
    pub kind: SpanKind,
    pub start_ns: i64,
    pub end_ns: i64,
    pub attributes: Vec<Attribute>,
    pub dropped_attributes: u32,
    pub events: Vec<SpanEvent>,
    pub dropped_events: u32,
    pub links: Vec<SpanLink>,
    pub dropped_links: u32,
    pub status: StatusCode,
    pub status_message: String,
    pub origin: Arc<SpanOrigin>,
}

impl Span {
    /// Duration in nanoseconds.
    pub fn duration_ns(&self) -> i64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    /// The service that reported the span.
    pub fn service_name(&self) -> &str {
        self.origin.service_name()
    }
}

/// What every trace decoder produces and every trace store accepts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanBatch {
    pub spans: Vec<Span>,
}

/// Lower-case hex of an id.
pub fn hex_id(id: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(id.len() * 2);
    for b in id {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Parses a hex trace id (case-insensitive). Shorter ids are left-padded with zeros, as Jaeger
/// accepts 64-bit trace ids; `None` for non-hex, empty, longer than 32 digits or all-zero ids.
pub fn parse_trace_id(s: &str) -> Option<TraceId> {
    if s.is_empty() || s.len() > 32 || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let padded = format!("{s:0>32}");
    let mut id = [0u8; 16];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(padded.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    (id != [0; 16]).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names() {
        let id = parse_trace_id("5B8EFFF798038103D269B633813FC60C").unwrap();
        assert_eq!(hex_id(&id), "5b8efff798038103d269b633813fc60c");
        assert_eq!(hex_id(&parse_trace_id("abc").unwrap()), "00000000000000000000000000000abc");
        for bad in ["", "0", "00000000000000000000000000000000", "xyz", &"a".repeat(33)] {
            assert_eq!(parse_trace_id(bad), None, "{bad}");
        }
        let origin = SpanOrigin { resource: vec![Attribute::str("service.name", "users")], ..Default::default() };
        assert_eq!(origin.service_name(), "users");
        assert_eq!(SpanOrigin::default().service_name(), UNKNOWN_SERVICE);
        assert_eq!(SpanKind::from_otlp(2), Some(SpanKind::Server));
        assert_eq!(SpanKind::from_otlp(6), None);
        assert_eq!(StatusCode::from_otlp(2).map(StatusCode::otlp_code), Some(2));
    }
}
