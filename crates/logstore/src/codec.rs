//! The binary form of log batches, as WAL records hold them (`docs/format/logs.md`).
//!
//! ```text
//! batch  := uvarint nstreams | stream*
//! stream := uvarint nlabels | (str name | str value)* | uvarint nentries | entry*
//! entry  := varint ts_ns | str line | uvarint nmeta | (str name | str value)*
//! str    := uvarint len | UTF-8 bytes
//! ```
//!
//! Decoding checks every count and length against the bytes left and UTF-8: a damaged record
//! is an error, never a panic or a huge allocation.

use periscope_model::{Labels, LogBatch, LogEntry, LogStream};

pub(crate) fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

pub(crate) fn put_varint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

pub(crate) fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// Appends a label set: `uvarint n | (str name | str value)*`.
pub(crate) fn put_labels(buf: &mut Vec<u8>, labels: &Labels) {
    put_uvarint(buf, labels.len() as u64);
    for l in labels.iter() {
        put_str(buf, &l.name);
        put_str(buf, &l.value);
    }
}

/// Appends the encoding of the streams (with the entries each keeps) to `buf`.
pub(crate) fn encode<'a>(buf: &mut Vec<u8>, streams: &[(&'a Labels, Vec<&'a LogEntry>)]) {
    put_uvarint(buf, streams.len() as u64);
    for (labels, entries) in streams {
        put_labels(buf, labels);
        put_uvarint(buf, entries.len() as u64);
        for e in entries {
            put_varint(buf, e.ts_ns);
            put_str(buf, &e.line);
            put_uvarint(buf, e.metadata.len() as u64);
            for (n, v) in &e.metadata {
                put_str(buf, n);
                put_str(buf, v);
            }
        }
    }
}

/// A malformed log record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed log record: {0}")]
pub struct CodecError(pub &'static str);

/// A reader over encoded bytes (records, block footers and pages); every read is checked
/// against the end.
pub(crate) struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cur<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Cur { b, pos: 0 }
    }

    /// Whether every byte was read.
    pub(crate) fn at_end(&self) -> bool {
        self.pos == self.b.len()
    }

    pub(crate) fn uvarint(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for i in 0..10 {
            let byte = *self.b.get(self.pos).ok_or(CodecError("truncated"))?;
            self.pos += 1;
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError("varint too long"))
    }

    pub(crate) fn varint(&mut self) -> Result<i64, CodecError> {
        let z = self.uvarint()?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, CodecError> {
        u32::try_from(self.uvarint()?).map_err(|_| CodecError("number beyond u32"))
    }

    /// A count of items of at least `min` bytes each.
    pub(crate) fn count(&mut self, min: usize) -> Result<usize, CodecError> {
        let n = self.uvarint()?;
        if n > ((self.b.len() - self.pos) / min.max(1)) as u64 {
            return Err(CodecError("count larger than the record"));
        }
        Ok(n as usize)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let end = self.pos.checked_add(n).ok_or(CodecError("length overflow"))?;
        let s = self.b.get(self.pos..end).ok_or(CodecError("truncated"))?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    pub(crate) fn str(&mut self) -> Result<String, CodecError> {
        let n = self.count(1)?;
        std::str::from_utf8(self.bytes(n)?).map(str::to_owned).map_err(|_| CodecError("invalid utf-8"))
    }

    /// A label set written by [`put_labels`].
    pub(crate) fn labels(&mut self) -> Result<Labels, CodecError> {
        let n = self.count(2)?;
        let mut pairs = Vec::with_capacity(n);
        for _ in 0..n {
            pairs.push((self.str()?, self.str()?));
        }
        Labels::from_pairs(pairs).map_err(|_| CodecError("invalid label set"))
    }
}

/// Decodes a record written by [`encode`].
pub(crate) fn decode(b: &[u8]) -> Result<LogBatch, CodecError> {
    let mut c = Cur::new(b);
    let n = c.count(2)?;
    let mut out = LogBatch { streams: Vec::with_capacity(n) };
    for _ in 0..n {
        let labels = c.labels()?;
        let ne = c.count(3)?;
        let mut entries = Vec::with_capacity(ne);
        for _ in 0..ne {
            let ts_ns = c.varint()?;
            let line = c.str()?;
            let nm = c.count(2)?;
            let mut metadata = Vec::with_capacity(nm);
            for _ in 0..nm {
                metadata.push((c.str()?, c.str()?));
            }
            entries.push(LogEntry { ts_ns, line, metadata });
        }
        out.streams.push(LogStream { labels, entries });
    }
    if !c.at_end() {
        return Err(CodecError("trailing bytes"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn batch() -> LogBatch {
        LogBatch {
            streams: vec![LogStream {
                labels: Labels::from_pairs([("job", "api"), ("env", "prod")]).unwrap_or_default(),
                entries: vec![
                    LogEntry { ts_ns: 1_700_000_000_000_000_001, line: "héllo".into(), metadata: vec![] },
                    LogEntry { ts_ns: -5, line: String::new(), metadata: vec![("trace_id".into(), "ab".into())] },
                ],
            }],
        }
    }

    fn encoded(b: &LogBatch) -> Vec<u8> {
        let streams: Vec<(&Labels, Vec<&LogEntry>)> =
            b.streams.iter().map(|s| (&s.labels, s.entries.iter().collect())).collect();
        let mut buf = Vec::new();
        encode(&mut buf, &streams);
        buf
    }

    #[test]
    fn round_trip() {
        let b = batch();
        let buf = encoded(&b);
        assert_eq!(decode(&buf), Ok(b));
        assert!(decode(&buf[..buf.len() - 1]).is_err());
    }

    proptest! {
        #[test]
        fn garbage_and_mutations_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), flip in any::<usize>()) {
            let _ = decode(&bytes);
            let mut buf = encoded(&batch());
            let i = flip % buf.len();
            buf[i] ^= 0x5a;
            let _ = decode(&buf);
        }
    }
}
