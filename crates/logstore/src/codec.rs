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

use periscope_model::{Label, Labels, LogBatch, LogEntry, LogStream};

fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// Appends the encoding of the streams (with the entries each keeps) to `buf`.
pub(crate) fn encode<'a>(buf: &mut Vec<u8>, streams: &[(&'a Labels, Vec<&'a LogEntry>)]) {
    put_uvarint(buf, streams.len() as u64);
    for (labels, entries) in streams {
        put_uvarint(buf, labels.len() as u64);
        for l in labels.iter() {
            put_str(buf, &l.name);
            put_str(buf, &l.value);
        }
        put_uvarint(buf, entries.len() as u64);
        for e in entries {
            put_uvarint(buf, ((e.ts_ns << 1) ^ (e.ts_ns >> 63)) as u64);
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

struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cur<'_> {
    fn uvarint(&mut self) -> Result<u64, CodecError> {
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

    /// A count of items of at least `min` bytes each.
    fn count(&mut self, min: usize) -> Result<usize, CodecError> {
        let n = self.uvarint()?;
        if n > ((self.b.len() - self.pos) / min) as u64 {
            return Err(CodecError("count larger than the record"));
        }
        Ok(n as usize)
    }

    fn str(&mut self) -> Result<String, CodecError> {
        let n = self.count(1)?;
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        std::str::from_utf8(s).map(str::to_owned).map_err(|_| CodecError("invalid utf-8"))
    }
}

/// Decodes a record written by [`encode`].
pub(crate) fn decode(b: &[u8]) -> Result<LogBatch, CodecError> {
    let mut c = Cur { b, pos: 0 };
    let n = c.count(2)?;
    let mut out = LogBatch { streams: Vec::with_capacity(n) };
    for _ in 0..n {
        let nl = c.count(2)?;
        let mut labels = Vec::with_capacity(nl);
        for _ in 0..nl {
            labels.push(Label::new(c.str()?, c.str()?));
        }
        let labels = Labels::from_pairs(labels.into_iter().map(|l| (l.name, l.value)))
            .map_err(|_| CodecError("invalid label set"))?;
        let ne = c.count(3)?;
        let mut entries = Vec::with_capacity(ne);
        for _ in 0..ne {
            let z = c.uvarint()?;
            let ts_ns = ((z >> 1) as i64) ^ -((z & 1) as i64);
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
    if c.pos != b.len() {
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
