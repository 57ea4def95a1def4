//! Parser for the Prometheus text exposition format 0.0.4 and the OpenMetrics 1.0 text format,
//! used by the scraper and by `periscope import`.
//!
//! Design constraints and invariants:
//! - Pure: bytes in, [`Parsed`] out. No I/O, no async, no global state; one call parses one
//!   whole exposition (decompress and cap its size before calling).
//! - Never panics on any input; every rejection is a [`ParseError`] naming the 1-based line.
//!   Parsing is all-or-nothing: an error means no samples.
//! - Allocation is bounded by the input: owned strings are copies of input slices, tables hold
//!   at most one entry per input line.
//! - One [`ParsedSample`] per sample line, in line order; labels are the model's [`Labels`]
//!   (sorted, `__name__` included, empty values dropped).
//! - Timestamps are milliseconds. 0.0.4 timestamps are integer milliseconds; OpenMetrics
//!   timestamps are decimal seconds converted exactly and rounded toward negative infinity
//!   (`-0.0001` is `-1` ms), saturating at the `i64` range.
//! - Like Prometheus 3, the `le` label of classic histograms and the `quantile` label of summaries
//!   are rewritten into Go's canonical float spelling (`le="120"` is stored as `le="120.0"`,
//!   `1e-04` as `0.0001`, `+Inf` stays `+Inf`), so text and other scrape formats agree on series
//!   identity. Gauge histograms keep their `le` as written.
//!
//! Modules: `lex` (lines, cursor, quoted strings), `number` (values, timestamps, float
//! formatting), `family` (family table and metadata), `promtext` (0.0.4), `openmetrics`
//! (OpenMetrics grammar and family tracking), `openmetrics_validate` (the strict type- and
//! family-level rules). The crate's README.md is the map.

mod error;
mod family;
mod lex;
mod number;
mod openmetrics;
mod openmetrics_validate;
mod promtext;

pub use error::ParseError;

use periscope_model::{Exemplar, Labels, MetricMetadata};

/// A text exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    PromText,
    /// OpenMetrics 1.0 text format (`application/openmetrics-text; version=1.0.0`).
    OpenMetrics,
}

impl Format {
    /// The format of a scrape response from its `Content-Type`: `application/openmetrics-text`
    /// (any version and parameters, any case) is OpenMetrics; everything else, including a
    /// missing or unknown type, is the 0.0.4 text format, as Prometheus falls back.
    pub fn from_content_type(ct: &str) -> Format {
        let media = ct.split(';').next().unwrap_or_default().trim();
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::PromText
        }
    }
}

/// How strictly to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParseOptions {
    /// `false` (the scraper's mode) is as lenient as Prometheus's own scraper; `true` adds:
    /// - OpenMetrics: the type-level and family-level validation the OpenMetrics conformance
    ///   suite demands (value ranges per type, `le`/`quantile` presence, where exemplars may be,
    ///   repeated/late metadata, clashing or interleaved families and series, decreasing
    ///   timestamps, histogram consistency), a 128-code-point limit on exemplar labels that fails
    ///   the parse instead of dropping the exemplar, no trailing comma in label sets and no
    ///   quoted UTF-8 names (both accepted leniently, as Prometheus does).
    /// - 0.0.4: the reference `expfmt` parser's requirement that a final non-blank line ends with
    ///   a line feed (Prometheus's server accepts its absence).
    pub strict: bool,
    /// The timestamp given to samples that carry none (e.g. the scrape time); `None` leaves
    /// them without one.
    pub default_timestamp_ms: Option<i64>,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSample {
    /// The series: `__name__` (the name as written on the line, suffix included) and labels.
    pub labels: Labels,
    /// The value; `NaN` is the ordinary quiet NaN, never the stale marker.
    pub value: f64,
    /// Milliseconds since the epoch: the line's own timestamp, else
    /// [`ParseOptions::default_timestamp_ms`], else `None`.
    pub timestamp_ms: Option<i64>,
    /// The OpenMetrics exemplar, if the line has one. Its `t` is the exemplar's own timestamp,
    /// else the sample's `timestamp_ms`, else 0.
    pub exemplar: Option<Exemplar>,
}

/// A parsed exposition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// Every sample, in line order.
    pub samples: Vec<ParsedSample>,
    /// One entry per family that has samples and at least one TYPE, HELP or UNIT line, in order
    /// of first appearance. The family name is the TYPE/HELP/UNIT line's name (for OpenMetrics
    /// that is the name without the `_total`/`_bucket`/... suffixes).
    pub metadata: Vec<MetricMetadata>,
    /// The number of metric families that have samples, after grouping: suffixed lines
    /// (`_sum`, `_count`, `_bucket`, `_total`, ...) count with their family, families that never
    /// get a sample are not counted.
    pub families: usize,
    /// Exemplars dropped in lenient OpenMetrics mode because their labels exceed 128 code points
    /// (as Prometheus drops them); the sample itself is kept.
    pub dropped_exemplars: usize,
}

/// Parses one complete exposition.
pub fn parse(input: &[u8], format: Format, opts: &ParseOptions) -> Result<Parsed, ParseError> {
    match format {
        Format::PromText => promtext::parse(input, opts),
        Format::OpenMetrics => openmetrics::parse(input, opts),
    }
}

/// Builds the model label set from a parsed name and labels, refusing duplicates (also
/// duplicates whose values are empty, which the model would otherwise drop silently).
pub(crate) fn build_labels(name: &str, mut labels: Vec<(String, String)>) -> Result<Labels, String> {
    labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = labels.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!("duplicate label name {:?} for metric {name:?}", w[0].0));
    }
    let pairs = std::iter::once((periscope_model::METRIC_NAME.to_string(), name.to_string())).chain(labels);
    Labels::from_pairs(pairs).map_err(|e| format!("invalid labels for metric {name:?}: {e}"))
}

/// Applies the default timestamp and fills in the exemplar's time.
pub(crate) fn finish_sample(
    labels: Labels,
    value: f64,
    ts: Option<i64>,
    exemplar: Option<(Labels, f64, Option<i64>)>,
    opts: &ParseOptions,
) -> ParsedSample {
    let timestamp_ms = ts.or(opts.default_timestamp_ms);
    let exemplar = exemplar.map(|(labels, v, t)| Exemplar { labels, v, t: t.or(timestamp_ms).unwrap_or(0) });
    ParsedSample { labels, value, timestamp_ms, exemplar }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(
            Format::from_content_type("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            Format::OpenMetrics
        );
        assert_eq!(Format::from_content_type("Application/OpenMetrics-Text"), Format::OpenMetrics);
        assert_eq!(Format::from_content_type("text/plain; version=0.0.4; charset=utf-8"), Format::PromText);
        assert_eq!(Format::from_content_type(""), Format::PromText);
        assert_eq!(Format::from_content_type("application/json"), Format::PromText);
    }

    #[test]
    fn duplicate_labels_are_refused_even_when_empty() {
        assert!(build_labels("m", vec![("a".into(), "".into()), ("a".into(), "1".into())]).is_err());
        let l = build_labels("m", vec![("b".into(), "2".into()), ("a".into(), "".into())]).unwrap_or_default();
        assert_eq!(l.to_string(), r#"{__name__="m", b="2"}"#);
    }
}
