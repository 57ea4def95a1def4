//! The decoded `ExportMetricsServiceRequest`: plain owned structs that both decoders (protobuf in
//! [`super::proto`], OTLP/JSON in [`super::json`]) fill and the translator reads.
//!
//! Field names and meanings follow `opentelemetry/proto/metrics/v1/metrics.proto`,
//! `common/v1/common.proto`, `resource/v1/resource.proto` (v1.x). What Periscope never reads
//! (dropped-attribute counts, entity refs, metric metadata, `*_strindex`, `min`/`max`,
//! `zero_threshold`) is skipped by the decoders. A protobuf `oneof` is an `Option` per member;
//! the protobuf decoder keeps only the last member seen, as protobuf requires, and the JSON
//! decoder keeps what the document holds (the translator reads them in a fixed order).

use serde::Deserialize;

use super::json;

/// `ExportMetricsServiceRequest`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExportMetricsRequest {
    /// `resource_metrics = 1`.
    #[serde(deserialize_with = "json::nullable")]
    pub resource_metrics: Vec<ResourceMetrics>,
}

/// `ResourceMetrics`: the metrics of one resource (a process, a pod...).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResourceMetrics {
    /// `resource = 1`.
    #[serde(deserialize_with = "json::nullable")]
    pub resource: Resource,
    /// `scope_metrics = 2`.
    #[serde(deserialize_with = "json::nullable")]
    pub scope_metrics: Vec<ScopeMetrics>,
    /// `schema_url = 3`.
    #[serde(deserialize_with = "json::nullable")]
    pub schema_url: String,
}

/// `Resource`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Resource {
    /// `attributes = 1`.
    #[serde(deserialize_with = "json::nullable")]
    pub attributes: Vec<KeyValue>,
}

/// `ScopeMetrics`: the metrics of one instrumentation scope (library).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ScopeMetrics {
    /// `scope = 1`.
    #[serde(deserialize_with = "json::nullable")]
    pub scope: Scope,
    /// `metrics = 2`.
    #[serde(deserialize_with = "json::nullable")]
    pub metrics: Vec<Metric>,
    /// `schema_url = 3`.
    #[serde(deserialize_with = "json::nullable")]
    pub schema_url: String,
}

/// `InstrumentationScope`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Scope {
    /// `name = 1`.
    #[serde(deserialize_with = "json::nullable")]
    pub name: String,
    /// `version = 2`.
    #[serde(deserialize_with = "json::nullable")]
    pub version: String,
    /// `attributes = 3`.
    #[serde(deserialize_with = "json::nullable")]
    pub attributes: Vec<KeyValue>,
}

/// `Metric`: one instrument's name, description, unit and points (`oneof data`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Metric {
    /// `name = 1`.
    #[serde(deserialize_with = "json::nullable")]
    pub name: String,
    /// `description = 2`.
    #[serde(deserialize_with = "json::nullable")]
    pub description: String,
    /// `unit = 3` (UCUM).
    #[serde(deserialize_with = "json::nullable")]
    pub unit: String,
    /// `gauge = 5`.
    pub gauge: Option<Gauge>,
    /// `sum = 7`.
    pub sum: Option<Sum>,
    /// `histogram = 9`.
    pub histogram: Option<Histogram>,
    /// `exponential_histogram = 10`.
    pub exponential_histogram: Option<ExponentialHistogram>,
    /// `summary = 11`.
    pub summary: Option<Summary>,
}

impl Metric {
    /// Clears every member of `oneof data` (the protobuf decoder keeps the last one seen).
    pub(crate) fn clear_data(&mut self) {
        self.gauge = None;
        self.sum = None;
        self.histogram = None;
        self.exponential_histogram = None;
        self.summary = None;
    }

    /// Timestamps (ns) of every data point, whatever its type.
    pub(crate) fn point_times(&self) -> impl Iterator<Item = u64> + '_ {
        let g = self.gauge.iter().flat_map(|g| g.data_points.iter().map(|p| p.time_unix_nano));
        let s = self.sum.iter().flat_map(|s| s.data_points.iter().map(|p| p.time_unix_nano));
        let h = self.histogram.iter().flat_map(|h| h.data_points.iter().map(|p| p.time_unix_nano));
        let e = self.exponential_histogram.iter().flat_map(|h| h.data_points.iter().map(|p| p.time_unix_nano));
        let q = self.summary.iter().flat_map(|s| s.data_points.iter().map(|p| p.time_unix_nano));
        g.chain(s).chain(h).chain(e).chain(q)
    }
}

/// `AggregationTemporality` values.
pub mod temporality {
    /// `AGGREGATION_TEMPORALITY_UNSPECIFIED`.
    pub const UNSPECIFIED: i32 = 0;
    /// `AGGREGATION_TEMPORALITY_DELTA`.
    pub const DELTA: i32 = 1;
    /// `AGGREGATION_TEMPORALITY_CUMULATIVE`.
    pub const CUMULATIVE: i32 = 2;
}

/// `DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK`: the point marks the end of a
/// series (it becomes Prometheus's stale marker).
pub const FLAG_NO_RECORDED_VALUE: u32 = 1;

/// `Gauge`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Gauge {
    /// `data_points = 1`.
    #[serde(deserialize_with = "json::nullable")]
    pub data_points: Vec<NumberDataPoint>,
}

/// `Sum`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Sum {
    /// `data_points = 1`.
    #[serde(deserialize_with = "json::nullable")]
    pub data_points: Vec<NumberDataPoint>,
    /// `aggregation_temporality = 2` (see [`temporality`]).
    #[serde(deserialize_with = "json::temporality")]
    pub aggregation_temporality: i32,
    /// `is_monotonic = 3`.
    #[serde(deserialize_with = "json::nullable")]
    pub is_monotonic: bool,
}

/// `Histogram` (explicit bucket bounds).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Histogram {
    /// `data_points = 1`.
    #[serde(deserialize_with = "json::nullable")]
    pub data_points: Vec<HistogramDataPoint>,
    /// `aggregation_temporality = 2`.
    #[serde(deserialize_with = "json::temporality")]
    pub aggregation_temporality: i32,
}

/// `ExponentialHistogram`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExponentialHistogram {
    /// `data_points = 1`.
    #[serde(deserialize_with = "json::nullable")]
    pub data_points: Vec<ExponentialHistogramDataPoint>,
    /// `aggregation_temporality = 2`.
    #[serde(deserialize_with = "json::temporality")]
    pub aggregation_temporality: i32,
}

/// `Summary`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Summary {
    /// `data_points = 1`.
    #[serde(deserialize_with = "json::nullable")]
    pub data_points: Vec<SummaryDataPoint>,
}

/// `NumberDataPoint`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NumberDataPoint {
    /// `attributes = 7`.
    #[serde(deserialize_with = "json::nullable")]
    pub attributes: Vec<KeyValue>,
    /// `start_time_unix_nano = 2` (read, never used: see the module docs of the translator).
    #[serde(deserialize_with = "json::u64_any")]
    pub start_time_unix_nano: u64,
    /// `time_unix_nano = 3`.
    #[serde(deserialize_with = "json::u64_any")]
    pub time_unix_nano: u64,
    /// `as_double = 4` (oneof value).
    #[serde(deserialize_with = "json::opt_f64_any")]
    pub as_double: Option<f64>,
    /// `as_int = 6` (oneof value).
    #[serde(deserialize_with = "json::opt_i64_any")]
    pub as_int: Option<i64>,
    /// `exemplars = 5`.
    #[serde(deserialize_with = "json::nullable")]
    pub exemplars: Vec<Exemplar>,
    /// `flags = 8`.
    #[serde(deserialize_with = "json::nullable")]
    pub flags: u32,
}

/// `HistogramDataPoint`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HistogramDataPoint {
    /// `attributes = 9`.
    #[serde(deserialize_with = "json::nullable")]
    pub attributes: Vec<KeyValue>,
    /// `start_time_unix_nano = 2`.
    #[serde(deserialize_with = "json::u64_any")]
    pub start_time_unix_nano: u64,
    /// `time_unix_nano = 3`.
    #[serde(deserialize_with = "json::u64_any")]
    pub time_unix_nano: u64,
    /// `count = 4`.
    #[serde(deserialize_with = "json::u64_any")]
    pub count: u64,
    /// `optional double sum = 5`: absent means "no `_sum` series".
    #[serde(deserialize_with = "json::opt_f64_any")]
    pub sum: Option<f64>,
    /// `bucket_counts = 6`: one more than `explicit_bounds`.
    #[serde(deserialize_with = "json::vec_u64_any")]
    pub bucket_counts: Vec<u64>,
    /// `explicit_bounds = 7`: upper bounds, ascending.
    #[serde(deserialize_with = "json::vec_f64_any")]
    pub explicit_bounds: Vec<f64>,
    /// `exemplars = 8`.
    #[serde(deserialize_with = "json::nullable")]
    pub exemplars: Vec<Exemplar>,
    /// `flags = 10`.
    #[serde(deserialize_with = "json::nullable")]
    pub flags: u32,
}

/// `ExponentialHistogramDataPoint` (decoded for counting and timestamps; not translated).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExponentialHistogramDataPoint {
    /// `attributes = 1`.
    #[serde(deserialize_with = "json::nullable")]
    pub attributes: Vec<KeyValue>,
    /// `start_time_unix_nano = 2`.
    #[serde(deserialize_with = "json::u64_any")]
    pub start_time_unix_nano: u64,
    /// `time_unix_nano = 3`.
    #[serde(deserialize_with = "json::u64_any")]
    pub time_unix_nano: u64,
    /// `count = 4`.
    #[serde(deserialize_with = "json::u64_any")]
    pub count: u64,
    /// `optional double sum = 5`.
    #[serde(deserialize_with = "json::opt_f64_any")]
    pub sum: Option<f64>,
    /// `scale = 6`.
    #[serde(deserialize_with = "json::nullable")]
    pub scale: i32,
    /// `zero_count = 7`.
    #[serde(deserialize_with = "json::u64_any")]
    pub zero_count: u64,
    /// `positive = 8`.
    #[serde(deserialize_with = "json::nullable")]
    pub positive: Buckets,
    /// `negative = 9`.
    #[serde(deserialize_with = "json::nullable")]
    pub negative: Buckets,
    /// `flags = 10`.
    #[serde(deserialize_with = "json::nullable")]
    pub flags: u32,
    /// `exemplars = 11`.
    #[serde(deserialize_with = "json::nullable")]
    pub exemplars: Vec<Exemplar>,
}

/// `ExponentialHistogramDataPoint.Buckets`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Buckets {
    /// `offset = 1`.
    #[serde(deserialize_with = "json::nullable")]
    pub offset: i32,
    /// `bucket_counts = 2`.
    #[serde(deserialize_with = "json::vec_u64_any")]
    pub bucket_counts: Vec<u64>,
}

/// `SummaryDataPoint`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SummaryDataPoint {
    /// `attributes = 7`.
    #[serde(deserialize_with = "json::nullable")]
    pub attributes: Vec<KeyValue>,
    /// `start_time_unix_nano = 2`.
    #[serde(deserialize_with = "json::u64_any")]
    pub start_time_unix_nano: u64,
    /// `time_unix_nano = 3`.
    #[serde(deserialize_with = "json::u64_any")]
    pub time_unix_nano: u64,
    /// `count = 4`.
    #[serde(deserialize_with = "json::u64_any")]
    pub count: u64,
    /// `sum = 5`.
    #[serde(deserialize_with = "json::f64_any")]
    pub sum: f64,
    /// `quantile_values = 6`.
    #[serde(deserialize_with = "json::nullable")]
    pub quantile_values: Vec<ValueAtQuantile>,
    /// `flags = 8`.
    #[serde(deserialize_with = "json::nullable")]
    pub flags: u32,
}

/// `SummaryDataPoint.ValueAtQuantile`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ValueAtQuantile {
    /// `quantile = 1`.
    #[serde(deserialize_with = "json::f64_any")]
    pub quantile: f64,
    /// `value = 2`.
    #[serde(deserialize_with = "json::f64_any")]
    pub value: f64,
}

/// `Exemplar`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Exemplar {
    /// `filtered_attributes = 7`.
    #[serde(deserialize_with = "json::nullable")]
    pub filtered_attributes: Vec<KeyValue>,
    /// `time_unix_nano = 2`.
    #[serde(deserialize_with = "json::u64_any")]
    pub time_unix_nano: u64,
    /// `as_double = 3` (oneof value).
    #[serde(deserialize_with = "json::opt_f64_any")]
    pub as_double: Option<f64>,
    /// `as_int = 6` (oneof value).
    #[serde(deserialize_with = "json::opt_i64_any")]
    pub as_int: Option<i64>,
    /// `span_id = 4`: empty or 8 bytes (hex in OTLP/JSON).
    #[serde(deserialize_with = "json::span_id")]
    pub span_id: Vec<u8>,
    /// `trace_id = 5`: empty or 16 bytes (hex in OTLP/JSON).
    #[serde(deserialize_with = "json::trace_id")]
    pub trace_id: Vec<u8>,
}

/// `KeyValue`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KeyValue {
    /// `key = 1`.
    #[serde(deserialize_with = "json::nullable")]
    pub key: String,
    /// `value = 2`; absent is [`AnyValue::Empty`].
    #[serde(deserialize_with = "json::nullable")]
    pub value: AnyValue,
}

/// `AnyValue` (`oneof value`); [`AnyValue::Empty`] when no member is set.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum AnyValue {
    /// No member set.
    #[default]
    Empty,
    /// `string_value = 1`.
    String(String),
    /// `bool_value = 2`.
    Bool(bool),
    /// `int_value = 3`.
    Int(i64),
    /// `double_value = 4`.
    Double(f64),
    /// `array_value = 5`.
    Array(Vec<AnyValue>),
    /// `kvlist_value = 6`.
    KvList(Vec<KeyValue>),
    /// `bytes_value = 7`.
    Bytes(Vec<u8>),
}

/// Deepest nesting of `AnyValue` arrays and maps either decoder follows; deeper input is an
/// error (protobuf-go and prost stop at 100 levels of any message nesting).
pub const MAX_ANY_VALUE_DEPTH: usize = 32;
