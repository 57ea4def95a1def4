//! WAL record payloads of the metrics engine (see `docs/format/wal.md`).
//!
//! One WAL record is a sequence of sections, each `type u8 | body`, so that the new series and
//! the samples of one append land atomically in a single checksummed record.

use periscope_model::{Label, Labels, MetricMetadata, MetricType};

pub(crate) const SECTION_SERIES: u8 = 1;
pub(crate) const SECTION_SAMPLES: u8 = 2;
pub(crate) const SECTION_EXEMPLARS: u8 = 3;
pub(crate) const SECTION_METADATA: u8 = 4;
pub(crate) const SECTION_CHUNKS: u8 = 5;
/// Samples whose values are written as integers when they are whole numbers (section 2 wrote
/// every value as 8 raw bytes; it is still read).
pub(crate) const SECTION_SAMPLES_V2: u8 = 6;
/// Native histogram samples.
pub(crate) const SECTION_HISTOGRAMS: u8 = 7;
/// Whole histogram chunks of series (checkpoints only).
pub(crate) const SECTION_HISTOGRAM_CHUNKS: u8 = 8;
/// Out-of-order samples older than the head's lower bound (body as section 6).
pub(crate) const SECTION_OLD_SAMPLES: u8 = 9;

/// Largest magnitude written as an integer: beyond 2^53 not every integer is a float.
const MAX_EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// A decoded section.
#[derive(Debug, PartialEq)]
pub(crate) enum Section {
    Series(Vec<(u64, Labels)>),
    Samples(Vec<RefSample>),
    Exemplars(Vec<RefExemplar>),
    Metadata(Vec<MetricMetadata>),
    /// Whole head chunks of series (checkpoints only): ref and its chunks, oldest first.
    Chunks(Vec<(u64, Vec<crate::head::ClosedChunk>)>),
    Histograms(Vec<RefHistogram>),
    /// Out-of-order samples below the head's lower bound, applied whatever the blocks hold.
    OldSamples(Vec<RefSample>),
    /// Whole histogram chunks of series (checkpoints only), as `Chunks`.
    HistogramChunks(Vec<(u64, Vec<crate::head::ClosedChunk>)>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RefHistogram {
    pub sref: u64,
    pub t: i64,
    pub h: std::sync::Arc<periscope_model::FloatHistogram>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RefSample {
    pub sref: u64,
    pub t: i64,
    pub v: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RefExemplar {
    pub sref: u64,
    pub t: i64,
    pub v: f64,
    pub labels: Labels,
}

pub(crate) use crate::bytes::{put_uvarint, put_varint};

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

fn put_labels(buf: &mut Vec<u8>, labels: &Labels) {
    put_uvarint(buf, labels.len() as u64);
    for l in labels {
        put_str(buf, &l.name);
        put_str(buf, &l.value);
    }
}

/// Encodes a series section.
pub(crate) fn encode_series<'a>(buf: &mut Vec<u8>, series: impl ExactSizeIterator<Item = (u64, &'a Labels)>) {
    buf.push(SECTION_SERIES);
    put_uvarint(buf, series.len() as u64);
    for (r, l) in series {
        put_uvarint(buf, r);
        put_labels(buf, l);
    }
}

/// Encodes a samples section: refs and timestamps as deltas from the first sample.
pub(crate) fn encode_samples(buf: &mut Vec<u8>, samples: &[RefSample]) {
    encode_samples_section(buf, SECTION_SAMPLES_V2, samples)
}

/// Encodes out-of-order samples older than the head's lower bound (section 9).
pub(crate) fn encode_old_samples(buf: &mut Vec<u8>, samples: &[RefSample]) {
    encode_samples_section(buf, SECTION_OLD_SAMPLES, samples)
}

fn encode_samples_section(buf: &mut Vec<u8>, section: u8, samples: &[RefSample]) {
    buf.push(section);
    put_uvarint(buf, samples.len() as u64);
    let Some(first) = samples.first() else { return };
    put_uvarint(buf, first.sref);
    put_varint(buf, first.t);
    for s in samples {
        put_varint(buf, (s.sref as i64).wrapping_sub(first.sref as i64));
        put_varint(buf, s.t.wrapping_sub(first.t));
        put_value(buf, s.v);
    }
}

/// A whole number as `uvarint(zigzag(i) << 1)`, anything else (fractions, NaNs, the stale
/// marker, -0.0, huge values) as `uvarint(1)` and 8 raw bytes: bit-exact either way.
fn put_value(buf: &mut Vec<u8>, v: f64) {
    let i = v as i64;
    if v.abs() <= MAX_EXACT_INT && (i as f64).to_bits() == v.to_bits() {
        put_uvarint(buf, crate::bytes::zigzag(i) << 1);
    } else {
        buf.push(1);
        buf.extend_from_slice(&v.to_bits().to_le_bytes());
    }
}

/// Encodes an exemplars section.
pub(crate) fn encode_exemplars(buf: &mut Vec<u8>, exemplars: &[RefExemplar]) {
    buf.push(SECTION_EXEMPLARS);
    put_uvarint(buf, exemplars.len() as u64);
    for e in exemplars {
        put_uvarint(buf, e.sref);
        put_varint(buf, e.t);
        buf.extend_from_slice(&e.v.to_bits().to_le_bytes());
        put_labels(buf, &e.labels);
    }
}

/// Encodes a metadata section.
pub(crate) fn encode_metadata(buf: &mut Vec<u8>, metadata: &[MetricMetadata]) {
    buf.push(SECTION_METADATA);
    put_uvarint(buf, metadata.len() as u64);
    for m in metadata {
        put_str(buf, &m.metric_family);
        put_str(buf, m.metric_type.as_str());
        put_str(buf, &m.unit);
        put_str(buf, &m.help);
    }
}

/// Encodes a histogram samples section: each histogram whole (no reference to another).
pub(crate) fn encode_histograms(buf: &mut Vec<u8>, samples: &[RefHistogram]) {
    buf.push(SECTION_HISTOGRAMS);
    put_uvarint(buf, samples.len() as u64);
    for s in samples {
        put_uvarint(buf, s.sref);
        put_varint(buf, s.t);
        crate::histenc::put_histogram(buf, &s.h, None);
    }
}

/// Encodes a chunks section (checkpoints) of float chunks.
pub(crate) fn encode_chunks(buf: &mut Vec<u8>, series: &[(u64, Vec<crate::head::ClosedChunk>)]) {
    encode_chunks_section(buf, SECTION_CHUNKS, series)
}

/// Encodes a chunks section (checkpoints) of histogram chunks.
pub(crate) fn encode_histogram_chunks(buf: &mut Vec<u8>, series: &[(u64, Vec<crate::head::ClosedChunk>)]) {
    encode_chunks_section(buf, SECTION_HISTOGRAM_CHUNKS, series)
}

fn encode_chunks_section(buf: &mut Vec<u8>, section: u8, series: &[(u64, Vec<crate::head::ClosedChunk>)]) {
    buf.push(section);
    put_uvarint(buf, series.len() as u64);
    for (r, chunks) in series {
        put_uvarint(buf, *r);
        put_uvarint(buf, chunks.len() as u64);
        for c in chunks {
            put_varint(buf, c.mint);
            put_varint(buf, c.maxt);
            put_uvarint(buf, c.bytes.len() as u64);
            buf.extend_from_slice(&c.bytes);
        }
    }
}

/// A record that does not decode: corruption that passed the checksum, or a newer format.
#[derive(Debug, thiserror::Error)]
#[error("malformed write-ahead log record: {0}")]
pub struct RecordError(pub &'static str);

pub(crate) struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Decoder { buf, pos: 0 }
    }

    fn uvarint(&mut self) -> Result<u64, RecordError> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = *self.buf.get(self.pos).ok_or(RecordError("truncated varint"))?;
            self.pos += 1;
            v |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(RecordError("varint too long"))
    }

    fn varint(&mut self) -> Result<i64, RecordError> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        let end = self.pos.checked_add(n).ok_or(RecordError("length overflow"))?;
        let b = self.buf.get(self.pos..end).ok_or(RecordError("truncated"))?;
        self.pos = end;
        Ok(b)
    }

    fn f64(&mut self) -> Result<f64, RecordError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_bits(u64::from_le_bytes(a)))
    }

    fn value(&mut self) -> Result<f64, RecordError> {
        let u = self.uvarint()?;
        if u == 1 {
            return self.f64();
        }
        if u & 1 == 1 {
            return Err(RecordError("bad value tag"));
        }
        Ok(crate::bytes::unzigzag(u >> 1) as f64)
    }

    fn string(&mut self) -> Result<String, RecordError> {
        let n = self.uvarint()? as usize;
        let b = self.bytes(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| RecordError("invalid utf-8"))
    }

    /// A count that cannot exceed what the remaining bytes could hold, so that a corrupt count
    /// never drives a huge allocation.
    fn count(&mut self, min_item_len: usize) -> Result<usize, RecordError> {
        let n = self.uvarint()? as usize;
        if n.saturating_mul(min_item_len) > self.buf.len() - self.pos {
            return Err(RecordError("count exceeds record"));
        }
        Ok(n)
    }

    fn labels(&mut self) -> Result<Labels, RecordError> {
        let n = self.count(2)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.string()?;
            let value = self.string()?;
            v.push(Label { name, value });
        }
        if !v.windows(2).all(|w| w[0].name < w[1].name) {
            return Err(RecordError("labels not sorted"));
        }
        Ok(Labels::from_sorted_unchecked(v))
    }

    /// The next section, or `None` at the end.
    pub(crate) fn section(&mut self) -> Result<Option<Section>, RecordError> {
        let Some(&ty) = self.buf.get(self.pos) else { return Ok(None) };
        self.pos += 1;
        Ok(Some(match ty {
            SECTION_SERIES => {
                let n = self.count(2)?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    let r = self.uvarint()?;
                    v.push((r, self.labels()?));
                }
                Section::Series(v)
            }
            SECTION_SAMPLES | SECTION_SAMPLES_V2 | SECTION_OLD_SAMPLES => {
                let v2 = ty != SECTION_SAMPLES;
                let n = self.count(if v2 { 3 } else { 10 })?;
                let mut v = Vec::with_capacity(n);
                if n > 0 {
                    let base_ref = self.uvarint()?;
                    let base_t = self.varint()?;
                    for _ in 0..n {
                        let sref = (base_ref as i64).wrapping_add(self.varint()?) as u64;
                        let t = base_t.wrapping_add(self.varint()?);
                        let v_ = if v2 { self.value()? } else { self.f64()? };
                        v.push(RefSample { sref, t, v: v_ });
                    }
                }
                if ty == SECTION_OLD_SAMPLES {
                    Section::OldSamples(v)
                } else {
                    Section::Samples(v)
                }
            }
            SECTION_EXEMPLARS => {
                let n = self.count(11)?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    let sref = self.uvarint()?;
                    let t = self.varint()?;
                    let val = self.f64()?;
                    v.push(RefExemplar { sref, t, v: val, labels: self.labels()? });
                }
                Section::Exemplars(v)
            }
            SECTION_METADATA => {
                let n = self.count(4)?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    let metric_family = self.string()?;
                    let metric_type = MetricType::parse(&self.string()?).unwrap_or_default();
                    let unit = self.string()?;
                    let help = self.string()?;
                    v.push(MetricMetadata { metric_family, metric_type, help, unit });
                }
                Section::Metadata(v)
            }
            SECTION_HISTOGRAMS => {
                let n = self.count(6)?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    let sref = self.uvarint()?;
                    let t = self.varint()?;
                    let mut c = crate::bytes::Cur::at(self.buf, self.pos);
                    let h = crate::histenc::read_histogram(&mut c, None).ok_or(RecordError("malformed histogram"))?;
                    self.pos = c.pos;
                    v.push(RefHistogram { sref, t, h: std::sync::Arc::new(h) });
                }
                Section::Histograms(v)
            }
            SECTION_CHUNKS | SECTION_HISTOGRAM_CHUNKS => {
                let n = self.count(2)?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    let r = self.uvarint()?;
                    let nc = self.count(4)?;
                    let mut chunks = Vec::with_capacity(nc);
                    for _ in 0..nc {
                        let mint = self.varint()?;
                        let maxt = self.varint()?;
                        let len = self.uvarint()? as usize;
                        let bytes = self.bytes(len)?;
                        chunks.push(crate::head::ClosedChunk { mint, maxt, bytes: std::sync::Arc::from(bytes) });
                    }
                    v.push((r, chunks));
                }
                if ty == SECTION_CHUNKS {
                    Section::Chunks(v)
                } else {
                    Section::HistogramChunks(v)
                }
            }
            _ => return Err(RecordError("unknown section type")),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_round_trip() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a")]).unwrap();
        let mut buf = vec![];
        encode_series(&mut buf, [(7u64, &l)].into_iter());
        let samples =
            vec![RefSample { sref: 7, t: 1000, v: 1.5 }, RefSample { sref: 3, t: 900, v: periscope_model::STALE_NAN }];
        encode_samples(&mut buf, &samples);
        let ex = vec![RefExemplar { sref: 7, t: 5, v: 2.0, labels: Labels::from_pairs([("trace_id", "ab")]).unwrap() }];
        encode_exemplars(&mut buf, &ex);
        let md = vec![MetricMetadata {
            metric_family: "up".into(),
            metric_type: MetricType::Gauge,
            help: "h".into(),
            unit: "".into(),
        }];
        encode_metadata(&mut buf, &md);
        let mut d = Decoder::new(&buf);
        assert_eq!(d.section().unwrap(), Some(Section::Series(vec![(7, l)])));
        match d.section().unwrap() {
            Some(Section::Samples(s)) => {
                assert_eq!(s.len(), 2);
                assert_eq!((s[1].sref, s[1].t), (3, 900));
                assert!(periscope_model::is_stale_nan(s[1].v));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(d.section().unwrap(), Some(Section::Exemplars(ex)));
        assert_eq!(d.section().unwrap(), Some(Section::Metadata(md)));
        assert_eq!(d.section().unwrap(), None);
    }

    #[test]
    fn sample_values_round_trip_bit_exact_and_old_sections_still_read() {
        let values = [
            0.0,
            -0.0,
            1.0,
            -5.0,
            0.5,
            9_007_199_254_740_992.0,
            9_007_199_254_740_994.0,
            1e300,
            f64::NAN,
            periscope_model::STALE_NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            i64::MIN as f64,
            123456789.0,
        ];
        let samples: Vec<RefSample> =
            values.iter().enumerate().map(|(i, v)| RefSample { sref: 1, t: i as i64, v: *v }).collect();
        let decode = |buf: &[u8]| match Decoder::new(buf).section().unwrap() {
            Some(Section::Samples(s)) => s.iter().map(|s| s.v.to_bits()).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        let mut buf = vec![];
        encode_samples(&mut buf, &samples);
        assert_eq!(decode(&buf), values.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        // Section 2 (every value as 8 raw bytes), as the first WAL format wrote it.
        let mut old = vec![SECTION_SAMPLES];
        put_uvarint(&mut old, samples.len() as u64);
        put_uvarint(&mut old, 1);
        put_varint(&mut old, 0);
        for s in &samples {
            put_varint(&mut old, 0);
            put_varint(&mut old, s.t);
            old.extend_from_slice(&s.v.to_bits().to_le_bytes());
        }
        assert_eq!(decode(&old), values.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        // Whole numbers (counters, most gauges) take a few bytes instead of eight.
        let ints: Vec<RefSample> = (0..100).map(|i| RefSample { sref: 1, t: i, v: (i * 37) as f64 }).collect();
        let mut small = vec![];
        encode_samples(&mut small, &ints);
        assert!(small.len() < 100 * 5, "{} bytes for 100 whole-number samples", small.len());
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let mut d = Decoder::new(&bytes);
            while let Ok(Some(_)) = d.section() {}
        }
    }
}
