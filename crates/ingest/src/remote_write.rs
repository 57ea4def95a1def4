//! Prometheus remote_write 1.0: `WriteRequest` protobuf ⇄ [`MetricBatch`].
//!
//! Invariants (decoder):
//! - Input is the *decompressed* body (see [`crate::decompress::snappy_capped`]); the decoder
//!   does no I/O and never allocates more than a small multiple of the input: vectors are
//!   pre-sized from counts read off the wire, capped by what the input can hold, and every
//!   string it allocates is a copy of input bytes.
//! - Series-level problems reject the whole request with an [`IngestError`] naming the series
//!   position (0-based, in wire order) and the label, as Prometheus's receiver answers 400:
//!   invalid UTF-8 in a label, an empty label name, a duplicate label name, an empty label set,
//!   a missing or empty `__name__`, and violations of [`DecodeLimits`].
//! - Per-sample problems never abort the batch: every float sample is kept bit-exact (NaN,
//!   ±Inf and the stale marker included); an invalid exemplar or metadata entry is dropped and
//!   counted in [`DecodeReport`]. Native histograms (field 4, `histogram.rs`) are kept; one
//!   that breaks the histogram rules fails the request, naming the series and the rule.
//! - Labels need not be sorted on the wire; the output [`Labels`] are sorted, and labels with
//!   empty values are dropped (after the duplicate check, as Prometheus checks the set it
//!   received). A series with neither samples, histograms nor exemplars is validated, counted
//!   in [`DecodeReport::series_without_samples`] and left out of the batch.
//! - Protobuf rules: unknown fields are skipped (groups included); a known field with the wrong
//!   wire type, a truncated or overlong varint, a negative or out-of-bounds length is an error;
//!   repeated scalars keep the last value. Field numbers are those of `prompb/types.proto` and
//!   `prompb/remote.proto`:
//!
//! ```text
//! WriteRequest   { 1: repeated TimeSeries timeseries; 3: repeated MetricMetadata metadata }
//! TimeSeries     { 1: repeated Label labels; 2: repeated Sample samples;
//!                  3: repeated Exemplar exemplars; 4: repeated Histogram histograms }
//! Label          { 1: string name; 2: string value }
//! Sample         { 1: double value; 2: int64 timestamp }
//! Exemplar       { 1: repeated Label labels; 2: double value; 3: int64 timestamp }
//! MetricMetadata { 1: MetricType type; 2: string metric_family_name; 4: string help; 5: string unit }
//! ```
//!
//! Limits are in bytes (label names and values) and counts (labels as sent on the wire, before
//! empty values are dropped); 0 means unlimited. They apply to exemplar labels too, where a
//! violation drops the exemplar instead of failing the request.
//!
//! Speed: this is the hottest ingest path. Everything is borrowed from the body until the
//! final copy into the model's owned `String`s (two allocations per label, which dominate the
//! cost): one UTF-8 validation pass per series message (senders put labels first), a fast path
//! for the canonical `Label` encoding, scratch buffers reused across series, and output vectors
//! allocated once at their final size. `benches/remote_write_decode.rs` measures it.
//!
//! The encoder ([`encode_write_request`]) writes the same wire format, omitting proto3 default
//! values (zero timestamps, +0.0 values, empty strings) as protobuf encoders do.

use periscope_model::{
    Exemplar, HistogramSample, Label, Labels, MetricBatch, MetricMetadata, MetricType, Sample, SeriesSamples,
    METRIC_NAME,
};

mod histogram;

use crate::error::{LabelPart, WireError, WireType};
use crate::wire::{bytes_field_len, put_bytes, put_tag, put_varint, varint_len, Reader};
use crate::IngestError;

/// Smallest encoding of a series that can be valid (a tag and length, then one label
/// `__name__` with a one-byte value): bounds how many series an input can hold.
const MIN_VALID_SERIES_BYTES: usize = 17;

/// Smallest encoding of a metadata entry that is kept (a one-byte family name).
const MIN_VALID_METADATA_BYTES: usize = 5;

/// Longest rendering of a label set inside an error message.
const MAX_LABELS_PREVIEW: usize = 256;

/// Request-size limits enforced while decoding; 0 means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Most series (`timeseries` entries) in one request.
    pub max_series_per_request: usize,
    /// Most labels in one series, counted as sent (before empty values are dropped).
    pub max_labels_per_series: usize,
    /// Longest label name, in bytes.
    pub max_label_name_length: usize,
    /// Longest label value, in bytes.
    pub max_label_value_length: usize,
}

impl DecodeLimits {
    /// No limits at all (the body-size cap still bounds everything).
    pub const UNLIMITED: DecodeLimits = DecodeLimits {
        max_series_per_request: 0,
        max_labels_per_series: 0,
        max_label_name_length: 0,
        max_label_value_length: 0,
    };
}

/// What one decode produced and dropped, for the server's self-metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeReport {
    /// Series in the returned batch.
    pub series: usize,
    /// Float samples in the returned batch.
    pub samples: usize,
    /// Exemplars in the returned batch.
    pub exemplars: usize,
    /// Exemplars dropped: invalid labels (UTF-8, empty or duplicate names) or over a limit.
    pub exemplars_dropped: usize,
    /// Metadata entries in the returned batch.
    pub metadata: usize,
    /// Metadata entries dropped: invalid UTF-8 or an empty metric family name.
    pub metadata_dropped: usize,
    /// Native histogram samples in the returned batch.
    pub histograms: usize,
    /// Valid series left out of the batch because they carried no sample, histogram or
    /// exemplar.
    pub series_without_samples: usize,
}

/// A label as read off the wire, UTF-8 checked, borrowing the body.
#[derive(Debug, Clone, Copy)]
struct RawLabel<'a> {
    name: &'a str,
    value: &'a str,
}

/// Buffers reused from one series to the next, so that the only per-series allocations are
/// the output vectors and strings.
#[derive(Default)]
struct Scratch<'a> {
    labels: Vec<RawLabel<'a>>,
    samples: Vec<Sample>,
    exemplar_labels: Vec<RawLabel<'a>>,
}

/// Decodes a decompressed remote_write 1.0 `WriteRequest` into a batch and a report.
///
/// Errors: [`IngestError::Protobuf`] for malformed wire data; the series-level validation
/// errors listed in the module docs, each naming the series position; never panics.
pub fn decode_write_request(body: &[u8], limits: &DecodeLimits) -> Result<(MetricBatch, DecodeReport), IngestError> {
    let (n_series, n_metadata) = count_top_level(body)?;
    if limits.max_series_per_request != 0 && n_series > limits.max_series_per_request {
        return Err(IngestError::TooManySeries { actual: n_series, max: limits.max_series_per_request });
    }
    let mut batch = MetricBatch {
        series: Vec::with_capacity(n_series.min(body.len() / MIN_VALID_SERIES_BYTES)),
        metadata: Vec::with_capacity(n_metadata.min(body.len() / MIN_VALID_METADATA_BYTES)),
    };
    let mut report = DecodeReport::default();
    let mut scratch = Scratch::default();
    let mut index = 0usize;
    let mut r = Reader::new(body, 0, "WriteRequest");
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => {
                r.expect(wt, WireType::Len, "timeseries")?;
                let (buf, offset) = r.bytes()?;
                decode_series(buf, offset, index, limits, &mut scratch, &mut batch, &mut report)?;
                index += 1;
            }
            3 => {
                r.expect(wt, WireType::Len, "metadata")?;
                let (buf, offset) = r.bytes()?;
                match decode_metadata(buf, offset)? {
                    Some(m) => batch.metadata.push(m),
                    None => report.metadata_dropped += 1,
                }
            }
            _ => r.skip(field, wt)?,
        }
    }
    report.series = batch.series.len();
    report.metadata = batch.metadata.len();
    Ok((batch, report))
}

/// First pass: checks the top-level framing and counts series and metadata entries, so that
/// the series limit is enforced before any decoding and the vectors are allocated once.
fn count_top_level(body: &[u8]) -> Result<(usize, usize), WireError> {
    let mut r = Reader::new(body, 0, "WriteRequest");
    let (mut series, mut metadata) = (0usize, 0usize);
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => {
                r.expect(wt, WireType::Len, "timeseries")?;
                r.bytes()?;
                series += 1;
            }
            3 => {
                r.expect(wt, WireType::Len, "metadata")?;
                r.bytes()?;
                metadata += 1;
            }
            _ => r.skip(field, wt)?,
        }
    }
    Ok((series, metadata))
}

fn decode_series<'a>(
    buf: &'a [u8],
    offset: usize,
    index: usize,
    limits: &DecodeLimits,
    scratch: &mut Scratch<'a>,
    batch: &mut MetricBatch,
    report: &mut DecodeReport,
) -> Result<(), IngestError> {
    scratch.labels.clear();
    scratch.samples.clear();
    let mut exemplars: Vec<Exemplar> = Vec::new();
    let mut histograms: Vec<HistogramSample> = Vec::new();
    let mut bad_histogram: Option<String> = None;
    let text = Utf8Prefix::of(buf, offset);
    let mut r = Reader::new(buf, offset, "TimeSeries");
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => {
                r.expect(wt, WireType::Len, "labels")?;
                let (lb, loff) = r.bytes()?;
                let (name, value) = decode_label(lb, loff)?;
                let position = scratch.labels.len();
                if limits.max_labels_per_series != 0 && position >= limits.max_labels_per_series {
                    return Err(IngestError::SeriesLimit {
                        limit: "max_labels_per_series",
                        series: index,
                        actual: position + 1,
                        max: limits.max_labels_per_series,
                    });
                }
                let label = check_label(name, value, &text, limits).map_err(|p| p.into_error(index, position))?;
                scratch.labels.push(label);
            }
            2 => {
                r.expect(wt, WireType::Len, "samples")?;
                let (sb, soff) = r.bytes()?;
                scratch.samples.push(decode_sample(sb, soff)?);
            }
            3 => {
                r.expect(wt, WireType::Len, "exemplars")?;
                let (eb, eoff) = r.bytes()?;
                match decode_exemplar(eb, eoff, &text, limits, &mut scratch.exemplar_labels)? {
                    Some(e) => exemplars.push(e),
                    None => report.exemplars_dropped += 1,
                }
            }
            4 => {
                r.expect(wt, WireType::Len, "histograms")?;
                let (hb, hoff) = r.bytes()?;
                match histogram::decode(hb, hoff)? {
                    Ok(h) => histograms.push(h),
                    Err(reason) => {
                        bad_histogram.get_or_insert(reason);
                    }
                }
            }
            _ => r.skip(field, wt)?,
        }
    }

    let labels = build_series_labels(&mut scratch.labels, index)?;
    if let Some(reason) = bad_histogram {
        return Err(IngestError::InvalidHistogram { series: index, labels: labels.to_string(), reason });
    }
    if scratch.samples.is_empty() && exemplars.is_empty() && histograms.is_empty() {
        report.series_without_samples += 1;
        return Ok(());
    }
    report.samples += scratch.samples.len();
    report.histograms += histograms.len();
    report.exemplars += exemplars.len();
    batch.series.push(SeriesSamples { labels, samples: scratch.samples.to_vec(), histograms, exemplars });
    Ok(())
}

/// Raw bytes of a string field and their absolute offset in the body.
type RawStr<'a> = (&'a [u8], usize);

/// Decodes a `Label` message into its raw name and value.
#[inline(always)]
fn decode_label(buf: &[u8], offset: usize) -> Result<(RawStr<'_>, RawStr<'_>), WireError> {
    // Fast path for the encoding every sender produces: name then value, each shorter than
    // 128 bytes, nothing else. Anything else goes through the general reader.
    if let [0x0a, name_len, rest @ ..] = buf {
        let name_len = usize::from(*name_len);
        if name_len < 0x80 {
            if let Some((name, [0x12, value_len, value @ ..])) = rest.split_at_checked(name_len) {
                if usize::from(*value_len) == value.len() && value.len() < 0x80 {
                    return Ok(((name, offset + 2), (value, offset + 4 + name_len)));
                }
            }
        }
    }
    let mut r = Reader::new(buf, offset, "Label");
    let (mut name, mut value): (RawStr<'_>, RawStr<'_>) = ((&[], offset), (&[], offset));
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => {
                r.expect(wt, WireType::Len, "name")?;
                name = r.bytes()?;
            }
            2 => {
                r.expect(wt, WireType::Len, "value")?;
                value = r.bytes()?;
            }
            _ => r.skip(field, wt)?,
        }
    }
    Ok((name, value))
}

/// The longest valid UTF-8 prefix of a series message, validated in one pass: a label name or
/// value that lies inside it on character boundaries needs no check of its own. Senders put
/// labels first, so for almost every series this is the only UTF-8 validation.
struct Utf8Prefix<'a> {
    text: &'a str,
    /// Absolute offset of `text` in the body.
    offset: usize,
}

impl<'a> Utf8Prefix<'a> {
    fn of(buf: &'a [u8], offset: usize) -> Self {
        let text = match std::str::from_utf8(buf) {
            Ok(t) => t,
            Err(e) => buf.get(..e.valid_up_to()).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or_default(),
        };
        Utf8Prefix { text, offset }
    }

    /// `bytes` (found at absolute `offset`) as a string, if it is valid UTF-8.
    #[inline]
    fn str(&self, (bytes, offset): RawStr<'a>) -> Option<&'a str> {
        let from = offset.wrapping_sub(self.offset);
        let within = from.checked_add(bytes.len()).and_then(|to| self.text.get(from..to));
        match within {
            Some(s) => Some(s),
            None => std::str::from_utf8(bytes).ok(),
        }
    }
}

/// Why one label is refused; turned into an [`IngestError`] for series labels and into a drop
/// for exemplar labels.
enum LabelProblem {
    Utf8 { part: LabelPart, name: String },
    EmptyName,
    NameLength(usize, usize),
    ValueLength(usize, usize),
}

impl LabelProblem {
    #[cold]
    fn into_error(self, series: usize, label: usize) -> IngestError {
        match self {
            LabelProblem::Utf8 { part, name } => IngestError::InvalidUtf8 { series, label, part, name },
            LabelProblem::EmptyName => IngestError::EmptyLabelName { series, label },
            LabelProblem::NameLength(actual, max) => {
                IngestError::SeriesLimit { limit: "max_label_name_length", series, actual, max }
            }
            LabelProblem::ValueLength(actual, max) => {
                IngestError::SeriesLimit { limit: "max_label_value_length", series, actual, max }
            }
        }
    }
}

#[inline(always)]
fn check_label<'a>(
    name: RawStr<'a>,
    value: RawStr<'a>,
    text: &Utf8Prefix<'a>,
    limits: &DecodeLimits,
) -> Result<RawLabel<'a>, LabelProblem> {
    let (name_len, value_len) = (name.0.len(), value.0.len());
    if name_len == 0 {
        return Err(LabelProblem::EmptyName);
    }
    if limits.max_label_name_length != 0 && name_len > limits.max_label_name_length {
        return Err(LabelProblem::NameLength(name_len, limits.max_label_name_length));
    }
    if limits.max_label_value_length != 0 && value_len > limits.max_label_value_length {
        return Err(LabelProblem::ValueLength(value_len, limits.max_label_value_length));
    }
    let Some(name_str) = text.str(name) else {
        return Err(LabelProblem::Utf8 { part: LabelPart::Name, name: String::from_utf8_lossy(name.0).into_owned() });
    };
    let Some(value) = text.str(value) else {
        return Err(LabelProblem::Utf8 { part: LabelPart::Value, name: name_str.to_owned() });
    };
    Ok(RawLabel { name: name_str, value })
}

/// Sorts `raw` by name and returns the first duplicated name, if any.
fn sort_and_find_duplicate<'a>(raw: &mut [RawLabel<'a>]) -> Option<&'a str> {
    // Senders almost always send sorted labels: check before sorting. Strictly increasing
    // also proves there is no duplicate.
    if raw.windows(2).all(|w| w[0].name < w[1].name) {
        return None;
    }
    raw.sort_unstable_by(|a, b| a.name.cmp(b.name));
    raw.windows(2).find(|w| w[0].name == w[1].name).map(|w| w[0].name)
}

/// Copies sorted raw labels into owned labels, dropping empty values; returns them and whether
/// a non-empty `__name__` was among them.
fn to_owned_labels(raw: &[RawLabel<'_>]) -> (Vec<Label>, bool) {
    let mut out = Vec::with_capacity(raw.len());
    for l in raw {
        if !l.value.is_empty() {
            out.push(Label { name: l.name.to_owned(), value: l.value.to_owned() });
        }
    }
    let has_name = out.binary_search_by(|l| l.name.as_str().cmp(METRIC_NAME)).is_ok();
    (out, has_name)
}

fn build_series_labels(raw: &mut [RawLabel<'_>], series: usize) -> Result<Labels, IngestError> {
    if raw.is_empty() {
        return Err(IngestError::EmptyLabelSet { series });
    }
    if let Some(name) = sort_and_find_duplicate(raw) {
        return Err(IngestError::DuplicateLabel { series, name: name.to_owned() });
    }
    let (labels, has_name) = to_owned_labels(raw);
    if !has_name {
        return Err(IngestError::MissingMetricName { series, labels: preview(raw) });
    }
    Ok(Labels::from_sorted_unchecked(labels))
}

/// `{a="b", ...}`, cut to [`MAX_LABELS_PREVIEW`] bytes, for error messages.
#[cold]
fn preview(raw: &[RawLabel<'_>]) -> String {
    let mut s = String::from("{");
    for (i, l) in raw.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&format!("{}={:?}", l.name, l.value));
        if s.len() > MAX_LABELS_PREVIEW {
            let mut cut = MAX_LABELS_PREVIEW;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            s.push_str("...");
            return s;
        }
    }
    s.push('}');
    s
}

#[inline]
fn decode_sample(buf: &[u8], offset: usize) -> Result<Sample, WireError> {
    let mut r = Reader::new(buf, offset, "Sample");
    let mut s = Sample { t: 0, v: 0.0 };
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => {
                r.expect(wt, WireType::Fixed64, "value")?;
                s.v = f64::from_bits(r.fixed64()?);
            }
            2 => {
                r.expect(wt, WireType::Varint, "timestamp")?;
                s.t = r.varint()? as i64;
            }
            _ => r.skip(field, wt)?,
        }
    }
    Ok(s)
}

/// Decodes an `Exemplar`; wire errors fail the request, invalid labels drop the exemplar
/// (`Ok(None)`).
fn decode_exemplar<'a>(
    buf: &'a [u8],
    offset: usize,
    text: &Utf8Prefix<'a>,
    limits: &DecodeLimits,
    raw: &mut Vec<RawLabel<'a>>,
) -> Result<Option<Exemplar>, WireError> {
    raw.clear();
    let mut valid = true;
    let (mut t, mut v) = (0i64, 0.0f64);
    let mut r = Reader::new(buf, offset, "Exemplar");
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => {
                r.expect(wt, WireType::Len, "labels")?;
                let (lb, loff) = r.bytes()?;
                let (name, value) = decode_label(lb, loff)?;
                if !valid {
                    continue;
                }
                if limits.max_labels_per_series != 0 && raw.len() >= limits.max_labels_per_series {
                    valid = false;
                    continue;
                }
                match check_label(name, value, text, limits) {
                    Ok(l) => raw.push(l),
                    Err(_) => valid = false,
                }
            }
            2 => {
                r.expect(wt, WireType::Fixed64, "value")?;
                v = f64::from_bits(r.fixed64()?);
            }
            3 => {
                r.expect(wt, WireType::Varint, "timestamp")?;
                t = r.varint()? as i64;
            }
            _ => r.skip(field, wt)?,
        }
    }
    if !valid || sort_and_find_duplicate(raw).is_some() {
        return Ok(None);
    }
    let (labels, _) = to_owned_labels(raw);
    Ok(Some(Exemplar { labels: Labels::from_sorted_unchecked(labels), t, v }))
}

/// Decodes a `MetricMetadata`; invalid UTF-8 or an empty family name drops it (`Ok(None)`).
fn decode_metadata(buf: &[u8], offset: usize) -> Result<Option<MetricMetadata>, WireError> {
    let mut r = Reader::new(buf, offset, "MetricMetadata");
    let mut metric_type = MetricType::Unknown;
    let (mut family, mut help, mut unit): (&[u8], &[u8], &[u8]) = (&[], &[], &[]);
    while let Some((field, wt)) = r.field()? {
        match field {
            1 => {
                r.expect(wt, WireType::Varint, "type")?;
                metric_type = metric_type_from_wire(r.varint()?);
            }
            2 => {
                r.expect(wt, WireType::Len, "metric_family_name")?;
                family = r.bytes()?.0;
            }
            4 => {
                r.expect(wt, WireType::Len, "help")?;
                help = r.bytes()?.0;
            }
            5 => {
                r.expect(wt, WireType::Len, "unit")?;
                unit = r.bytes()?.0;
            }
            _ => r.skip(field, wt)?,
        }
    }
    let (Ok(family), Ok(help), Ok(unit)) =
        (std::str::from_utf8(family), std::str::from_utf8(help), std::str::from_utf8(unit))
    else {
        return Ok(None);
    };
    if family.is_empty() {
        return Ok(None);
    }
    Ok(Some(MetricMetadata {
        metric_family: family.to_owned(),
        metric_type,
        help: help.to_owned(),
        unit: unit.to_owned(),
    }))
}

/// The `MetricMetadata.MetricType` enum (an int32 on the wire); unknown values are `Unknown`,
/// as proto3 keeps unrecognised enum values.
fn metric_type_from_wire(v: u64) -> MetricType {
    match v as i32 {
        1 => MetricType::Counter,
        2 => MetricType::Gauge,
        3 => MetricType::Histogram,
        4 => MetricType::GaugeHistogram,
        5 => MetricType::Summary,
        6 => MetricType::Info,
        7 => MetricType::StateSet,
        _ => MetricType::Unknown,
    }
}

fn metric_type_to_wire(t: MetricType) -> u64 {
    match t {
        MetricType::Unknown => 0,
        MetricType::Counter => 1,
        MetricType::Gauge => 2,
        MetricType::Histogram => 3,
        MetricType::GaugeHistogram => 4,
        MetricType::Summary => 5,
        MetricType::Info => 6,
        MetricType::StateSet => 7,
    }
}

// ---- encoder ----

/// Encodes a batch as an uncompressed remote_write 1.0 `WriteRequest` (compress it with
/// `snap::raw::Encoder` to send it). Decoding the result with [`decode_write_request`] gives
/// the batch back, except series that have neither samples nor exemplars.
pub fn encode_write_request(batch: &MetricBatch) -> Vec<u8> {
    let total: usize = batch.series.iter().map(|s| bytes_field_len(series_len(s))).sum::<usize>()
        + batch.metadata.iter().map(|m| bytes_field_len(metadata_len(m))).sum::<usize>();
    let mut out = Vec::with_capacity(total);
    for s in &batch.series {
        put_tag(&mut out, 1, WireType::Len);
        put_varint(&mut out, series_len(s) as u64);
        for l in &s.labels {
            put_label(&mut out, 1, l);
        }
        for sample in &s.samples {
            put_tag(&mut out, 2, WireType::Len);
            put_varint(&mut out, sample_len(sample.t, sample.v) as u64);
            put_value_and_time(&mut out, sample.v, 1, sample.t, 2);
        }
        for e in &s.exemplars {
            put_tag(&mut out, 3, WireType::Len);
            put_varint(&mut out, exemplar_len(e) as u64);
            for l in &e.labels {
                put_label(&mut out, 1, l);
            }
            put_value_and_time(&mut out, e.v, 2, e.t, 3);
        }
        for h in &s.histograms {
            put_bytes(&mut out, 4, &histogram::encode(h));
        }
    }
    for m in &batch.metadata {
        put_tag(&mut out, 3, WireType::Len);
        put_varint(&mut out, metadata_len(m) as u64);
        let t = metric_type_to_wire(m.metric_type);
        if t != 0 {
            put_tag(&mut out, 1, WireType::Varint);
            put_varint(&mut out, t);
        }
        put_string(&mut out, 2, &m.metric_family);
        put_string(&mut out, 4, &m.help);
        put_string(&mut out, 5, &m.unit);
    }
    debug_assert_eq!(out.len(), total);
    out
}

fn string_len(s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        bytes_field_len(s.len())
    }
}

fn put_string(out: &mut Vec<u8>, number: u32, s: &str) {
    if !s.is_empty() {
        put_bytes(out, number, s.as_bytes());
    }
}

fn label_len(l: &Label) -> usize {
    string_len(&l.name) + string_len(&l.value)
}

fn put_label(out: &mut Vec<u8>, number: u32, l: &Label) {
    put_tag(out, number, WireType::Len);
    put_varint(out, label_len(l) as u64);
    put_string(out, 1, &l.name);
    put_string(out, 2, &l.value);
}

fn value_and_time_len(t: i64, v: f64) -> usize {
    let v_len = if v.to_bits() == 0 { 0 } else { 9 };
    let t_len = if t == 0 { 0 } else { 1 + varint_len(t as u64) };
    v_len + t_len
}

fn put_value_and_time(out: &mut Vec<u8>, v: f64, v_field: u32, t: i64, t_field: u32) {
    if v.to_bits() != 0 {
        put_tag(out, v_field, WireType::Fixed64);
        out.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    if t != 0 {
        put_tag(out, t_field, WireType::Varint);
        put_varint(out, t as u64);
    }
}

fn sample_len(t: i64, v: f64) -> usize {
    value_and_time_len(t, v)
}

fn exemplar_len(e: &Exemplar) -> usize {
    e.labels.iter().map(|l| bytes_field_len(label_len(l))).sum::<usize>() + value_and_time_len(e.t, e.v)
}

fn series_len(s: &SeriesSamples) -> usize {
    s.labels.iter().map(|l| bytes_field_len(label_len(l))).sum::<usize>()
        + s.samples.iter().map(|x| bytes_field_len(sample_len(x.t, x.v))).sum::<usize>()
        + s.exemplars.iter().map(|e| bytes_field_len(exemplar_len(e))).sum::<usize>()
        + s.histograms.iter().map(|h| bytes_field_len(histogram::encode(h).len())).sum::<usize>()
}

fn metadata_len(m: &MetricMetadata) -> usize {
    let t = metric_type_to_wire(m.metric_type);
    let t_len = if t == 0 { 0 } else { 1 + varint_len(t) };
    t_len + string_len(&m.metric_family) + string_len(&m.help) + string_len(&m.unit)
}

#[cfg(test)]
#[path = "remote_write_test.rs"]
mod tests;
