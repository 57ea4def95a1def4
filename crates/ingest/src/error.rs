//! The one error type of the crate.
//!
//! Every variant names what was wrong and where (byte offset, series position, label, limit),
//! so that the server can hand the message to the client unchanged. Classes: everything the
//! client sent wrong is [`ErrorClass::InvalidInput`]; a body that would decode past a size cap
//! is [`ErrorClass::TooLarge`].
//!
//! Causes from other crates (snappy, JSON) are rendered into the message rather than kept as a
//! `#[source]`: a client only ever sees the top-level message, and it must say what was wrong.

use std::fmt;

use periscope_model::{Classify, ErrorClass};

/// A protobuf wire-format type (the low three bits of a field tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireType {
    /// 0: a base-128 varint.
    Varint,
    /// 1: eight little-endian bytes.
    Fixed64,
    /// 2: a varint length, then that many bytes.
    Len,
    /// 3: start of a (deprecated) group.
    StartGroup,
    /// 4: end of a group.
    EndGroup,
    /// 5: four little-endian bytes.
    Fixed32,
}

impl WireType {
    /// The numeric wire type.
    pub fn code(self) -> u8 {
        match self {
            WireType::Varint => 0,
            WireType::Fixed64 => 1,
            WireType::Len => 2,
            WireType::StartGroup => 3,
            WireType::EndGroup => 4,
            WireType::Fixed32 => 5,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            WireType::Varint => "varint",
            WireType::Fixed64 => "fixed64",
            WireType::Len => "length-delimited",
            WireType::StartGroup => "start-group",
            WireType::EndGroup => "end-group",
            WireType::Fixed32 => "fixed32",
        }
    }
}

impl fmt::Display for WireType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.describe())
    }
}

/// What was wrong with the protobuf bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireErrorKind {
    /// The input ended inside a varint.
    TruncatedVarint,
    /// A varint had more than 64 significant bits (or more than ten bytes).
    VarintOverflow,
    /// The input ended inside a fixed-width value.
    TruncatedFixed,
    /// A length prefix decoded to a negative number.
    NegativeLength,
    /// A length prefix pointed past the end of the enclosing message.
    LengthOutOfBounds {
        /// The length read.
        length: u64,
        /// Bytes left in the enclosing message.
        remaining: usize,
    },
    /// A tag carried wire type 6 or 7.
    InvalidWireType(u8),
    /// A tag carried field number 0.
    FieldNumberZero,
    /// A tag did not fit 32 bits.
    FieldNumberTooLarge,
    /// A known field arrived with the wrong wire type.
    WireTypeMismatch {
        /// The field's name in the `.proto` file.
        field: &'static str,
        /// The wire type the field is declared with.
        expected: WireType,
        /// The wire type the tag carried.
        found: WireType,
    },
    /// An end-group tag without a matching start-group tag.
    UnexpectedEndGroup,
    /// Groups nested deeper than the decoder follows.
    GroupTooDeep,
    /// The message ended inside a group.
    UnterminatedGroup,
}

impl fmt::Display for WireErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireErrorKind::TruncatedVarint => f.write_str("truncated varint"),
            WireErrorKind::VarintOverflow => f.write_str("varint overflows 64 bits"),
            WireErrorKind::TruncatedFixed => f.write_str("truncated fixed-width value"),
            WireErrorKind::NegativeLength => f.write_str("negative length"),
            WireErrorKind::LengthOutOfBounds { length, remaining } => {
                write!(f, "length {length} exceeds the {remaining} remaining bytes")
            }
            WireErrorKind::InvalidWireType(t) => write!(f, "invalid wire type {t}"),
            WireErrorKind::FieldNumberZero => f.write_str("field number 0"),
            WireErrorKind::FieldNumberTooLarge => f.write_str("field number out of range"),
            WireErrorKind::WireTypeMismatch { field, expected, found } => {
                write!(f, "field {field} has wire type {found}, expected {expected}")
            }
            WireErrorKind::UnexpectedEndGroup => f.write_str("end-group tag without a start-group tag"),
            WireErrorKind::GroupTooDeep => f.write_str("groups nested too deep"),
            WireErrorKind::UnterminatedGroup => f.write_str("unterminated group"),
        }
    }
}

/// A protobuf wire-format error: what, in which message, at which byte of the decoded body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{kind} in {message} at byte {offset}")]
pub struct WireError {
    /// What was wrong.
    pub kind: WireErrorKind,
    /// The protobuf message being decoded (`WriteRequest`, `TimeSeries`, `Label`, ...).
    pub message: &'static str,
    /// Offset in the decoded (uncompressed) body where the bad element starts.
    pub offset: usize,
}

/// Which part of a label was bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelPart {
    /// The label's name.
    Name,
    /// The label's value.
    Value,
}

impl fmt::Display for LabelPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LabelPart::Name => "name",
            LabelPart::Value => "value",
        })
    }
}

/// Everything a decoder of this crate can refuse.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The snappy header announces more decoded bytes than the caller allows.
    #[error("snappy body decodes to {decoded} bytes, more than the limit of {limit} bytes")]
    DecodedTooLarge {
        /// Length announced by the header.
        decoded: usize,
        /// The caller's cap.
        limit: usize,
    },

    /// The snappy header announces more bytes than a valid block of this size can produce.
    #[error("snappy header claims {decoded} bytes, impossible for a {compressed}-byte block")]
    SnappyImplausibleLength {
        /// Length announced by the header.
        decoded: usize,
        /// Length of the compressed block.
        compressed: usize,
    },

    /// The body is not a valid snappy block.
    #[error("invalid snappy block: {0}")]
    Snappy(snap::Error),

    /// The body is not valid protobuf for the expected message.
    #[error("malformed protobuf: {0}")]
    Protobuf(#[from] WireError),

    /// A label name or value is not UTF-8.
    #[error("invalid utf-8 in label {part} of series {series} (label {label}, name {name:?})")]
    InvalidUtf8 {
        /// Position of the series in the request (0-based).
        series: usize,
        /// Position of the label in the series, as sent (0-based).
        label: usize,
        /// The bad part.
        part: LabelPart,
        /// The label name, lossily converted.
        name: String,
    },

    /// A label name appears twice in one series.
    #[error("duplicate label name {name:?} in series {series}")]
    DuplicateLabel {
        /// Position of the series in the request (0-based).
        series: usize,
        /// The repeated name.
        name: String,
    },

    /// A label has an empty name.
    #[error("empty label name in series {series} (label {label})")]
    EmptyLabelName {
        /// Position of the series in the request (0-based).
        series: usize,
        /// Position of the label in the series, as sent (0-based).
        label: usize,
    },

    /// A series has no labels at all.
    #[error("series {series} has an empty label set")]
    EmptyLabelSet {
        /// Position of the series in the request (0-based).
        series: usize,
    },

    /// A series has no (or an empty) `__name__` label.
    #[error("series {series} has no metric name (__name__): {labels}")]
    MissingMetricName {
        /// Position of the series in the request (0-based).
        series: usize,
        /// The series' labels, shortened for the message.
        labels: String,
    },

    /// A native histogram of a series breaks the histogram rules.
    #[error("series {series} {labels}: invalid native histogram: {reason}")]
    InvalidHistogram {
        /// Position of the series in the request (0-based).
        series: usize,
        /// The series' labels.
        labels: String,
        /// The rule it breaks.
        reason: String,
    },

    /// The request has more series than allowed.
    #[error("limit max_series_per_request exceeded: {actual} series > {max}")]
    TooManySeries {
        /// Series in the request.
        actual: usize,
        /// The configured limit.
        max: usize,
    },

    /// A series breaks a per-series limit (`max_labels_per_series`, `max_label_name_length`,
    /// `max_label_value_length`).
    #[error("limit {limit} exceeded by series {series}: {actual} > {max}")]
    SeriesLimit {
        /// The limit's configuration name.
        limit: &'static str,
        /// Position of the series in the request (0-based).
        series: usize,
        /// The offending count or length.
        actual: usize,
        /// The configured limit.
        max: usize,
    },

    /// The gzip body decodes to more bytes than the caller allows.
    #[error("gzip body decodes to more than the limit of {limit} bytes")]
    GzipTooLarge {
        /// The caller's cap.
        limit: usize,
    },

    /// The gzip body is corrupt.
    #[error("invalid gzip body: {0}")]
    Gzip(std::io::Error),

    /// The OTLP/JSON body is not a valid `Export*ServiceRequest`.
    #[error("invalid otlp/json: {0}")]
    OtlpJson(serde_json::Error),

    /// The OTLP body is well-formed protobuf or JSON but breaks an OTLP rule (UTF-8, id
    /// lengths, nesting).
    #[error("invalid otlp request: {0}")]
    OtlpInvalid(String),

    /// The Zipkin body is not a JSON array of spans.
    #[error("invalid zipkin json: {0}")]
    ZipkinJson(serde_json::Error),

    /// A Jaeger Thrift batch is malformed or holds an invalid span.
    #[error("invalid jaeger thrift batch: {0}")]
    JaegerThrift(String),

    /// A Loki push body is malformed (JSON, protobuf or a stream's labels); the message is
    /// worded as Loki words it.
    #[error("{0}")]
    LokiPush(String),

    /// A Zipkin span breaks the v2 API's rules.
    #[error("invalid zipkin span: {0}")]
    ZipkinInvalid(String),

    /// The expvar body is not JSON (or nests deeper than serde_json's recursion limit).
    #[error("invalid expvar json: {0}")]
    ExpvarJson(serde_json::Error),

    /// The expvar body is JSON but not an object.
    #[error("expvar document is not a json object")]
    ExpvarNotObject,

    /// The expvar document yields more series than allowed.
    #[error("expvar document yields more than {max} series")]
    ExpvarTooManySeries {
        /// The configured limit.
        max: usize,
    },
}

impl Classify for IngestError {
    fn class(&self) -> ErrorClass {
        match self {
            IngestError::DecodedTooLarge { .. }
            | IngestError::GzipTooLarge { .. }
            | IngestError::ExpvarTooManySeries { .. } => ErrorClass::TooLarge,
            IngestError::SnappyImplausibleLength { .. }
            | IngestError::Snappy(_)
            | IngestError::Protobuf(_)
            | IngestError::InvalidUtf8 { .. }
            | IngestError::DuplicateLabel { .. }
            | IngestError::EmptyLabelName { .. }
            | IngestError::EmptyLabelSet { .. }
            | IngestError::MissingMetricName { .. }
            | IngestError::InvalidHistogram { .. }
            | IngestError::TooManySeries { .. }
            | IngestError::SeriesLimit { .. }
            | IngestError::ExpvarJson(_)
            | IngestError::Gzip(_)
            | IngestError::OtlpJson(_)
            | IngestError::OtlpInvalid(_)
            | IngestError::ZipkinJson(_)
            | IngestError::JaegerThrift(_)
            | IngestError::LokiPush(_)
            | IngestError::ZipkinInvalid(_)
            | IngestError::ExpvarNotObject => ErrorClass::InvalidInput,
        }
    }
}
