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

pub use periscope_wal::codec::CodecError;
pub(crate) use periscope_wal::codec::{put_labels, put_str, put_uvarint, put_varint, Cur};

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
