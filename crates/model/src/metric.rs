//! Metric samples, exemplars, metadata and the batch every metrics decoder produces.

use crate::{HistogramSample, Labels};

/// The bit pattern of Prometheus's stale marker, a NaN no arithmetic produces.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The stale marker as a float.
pub const STALE_NAN: f64 = f64::from_bits(STALE_NAN_BITS);

/// Whether `v` is the stale marker (compares bits: every NaN compares unequal).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One sample: milliseconds since the epoch and a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub t: i64,
    pub v: f64,
}

impl Sample {
    /// A sample at `t` ms with value `v`.
    pub fn new(t: i64, v: f64) -> Self {
        Sample { t, v }
    }

    /// Bitwise equality (NaNs with the same bits are equal), as duplicate detection needs.
    pub fn bit_eq(&self, other: &Sample) -> bool {
        self.t == other.t && self.v.to_bits() == other.v.to_bits()
    }
}

/// An exemplar: a sample of one event, with labels such as `trace_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// A Prometheus metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MetricType {
    #[default]
    Unknown,
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
}

impl MetricType {
    /// The lowercase name used by the Prometheus HTTP API.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Unknown => "unknown",
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
        }
    }

    /// Parses the API name (also accepts `untyped` for `unknown`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "unknown" | "untyped" => MetricType::Unknown,
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "gaugehistogram" => MetricType::GaugeHistogram,
            "summary" => MetricType::Summary,
            "info" => MetricType::Info,
            "stateset" => MetricType::StateSet,
            _ => return None,
        })
    }
}

/// Metadata of one metric family.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MetricMetadata {
    pub metric_family: String,
    pub metric_type: MetricType,
    pub help: String,
    pub unit: String,
}

/// The samples, native histogram samples and exemplars of one series in a batch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SeriesSamples {
    pub labels: Labels,
    pub samples: Vec<Sample>,
    pub histograms: Vec<HistogramSample>,
    pub exemplars: Vec<Exemplar>,
}

/// What every metrics decoder produces and every metrics store accepts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricBatch {
    pub series: Vec<SeriesSamples>,
    pub metadata: Vec<MetricMetadata>,
}

impl MetricBatch {
    /// Total number of samples, float and histogram.
    pub fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len() + s.histograms.len()).sum()
    }

    /// Number of histogram samples.
    pub fn histogram_count(&self) -> usize {
        self.series.iter().map(|s| s.histograms.len()).sum()
    }

    /// Total number of exemplars.
    pub fn exemplar_count(&self) -> usize {
        self.series.iter().map(|s| s.exemplars.len()).sum()
    }
}

/// A closed time range `[min, max]` in the signal's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub min: i64,
    pub max: i64,
}

impl TimeRange {
    /// `[min, max]`.
    pub fn new(min: i64, max: i64) -> Self {
        TimeRange { min, max }
    }

    /// Every representable time.
    pub fn all() -> Self {
        TimeRange { min: i64::MIN, max: i64::MAX }
    }

    /// Whether `t` lies in the range.
    pub fn contains(&self, t: i64) -> bool {
        self.min <= t && t <= self.max
    }

    /// Whether the range overlaps `[min, max]`.
    pub fn overlaps(&self, min: i64, max: i64) -> bool {
        self.min <= max && min <= self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_marker() {
        assert!(is_stale_nan(STALE_NAN));
        assert!(!is_stale_nan(f64::NAN));
        assert!(STALE_NAN.is_nan());
    }
}
