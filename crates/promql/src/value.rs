//! The values a query returns, as Prometheus's API models them.

use periscope_model::{FloatHistogram, Labels};
use std::sync::Arc;

/// One point of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Milliseconds since the epoch.
    pub t: i64,
    pub v: f64,
}

/// One native histogram point of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramPoint {
    /// Milliseconds since the epoch.
    pub t: i64,
    pub h: Arc<FloatHistogram>,
}

/// One element of an instant vector: a float, or a native histogram when `h` is set (then
/// `v` means nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
    pub h: Option<Arc<FloatHistogram>>,
}

/// One series of a range vector (matrix): float points and native histogram points, each in
/// time order (never both at one time).
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    pub labels: Labels,
    pub points: Vec<Point>,
    pub histograms: Vec<HistogramPoint>,
}

/// The result of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number at the evaluation time.
    Scalar { t: i64, v: f64 },
    /// A string at the evaluation time.
    String { t: i64, s: String },
    /// An instant vector, in the engine's order (sorted by labels unless the query sorts it).
    Vector(Vec<InstantSample>),
    /// A range vector: the result of a range query, or of an instant query of a range
    /// selector or subquery; series sorted by labels.
    Matrix(Vec<RangeSeries>),
}

impl Value {
    /// The `resultType` of Prometheus's API.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}
