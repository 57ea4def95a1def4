//! Loki's push API (`POST /loki/api/v1/push`) → [`LogBatch`]: the JSON body and the
//! `logproto.PushRequest` protobuf (snappy-compressed by the server front), as Promtail,
//! Grafana Alloy, Vector and Fluent Bit send them.
//!
//! ```text
//! JSON:     {"streams": [{"stream": {"job": "api"},
//!                         "values": [["<ns since epoch, string>", "<line>", {"<name>": "<value>"}?]]}]}
//! protobuf: PushRequest  { repeated StreamAdapter streams = 1; }
//!           StreamAdapter { string labels = 1 ("{job=\"api\"}"); repeated EntryAdapter entries = 2;
//!                           uint64 hash = 3; }
//!           EntryAdapter { Timestamp timestamp = 1; string line = 2;
//!                          repeated LabelPairAdapter structuredMetadata = 3; }
//!           LabelPairAdapter { string name = 1; string value = 2; }
//!           Timestamp { int64 seconds = 1; int32 nanos = 2; }
//! ```
//!
//! Stream labels must be a non-empty set of legacy (`[a-zA-Z_][a-zA-Z0-9_]*`) names with
//! values, as Loki's `ParseLabels` accepts them; lines and values must be UTF-8. A malformed
//! body or stream is an error naming it, worded as Loki words it; limits on line length,
//! labels and timestamps are the store's and the server's, not the decoder's.

use crate::error::WireType;
use crate::wire::{put_bytes, put_tag, put_varint, Reader};
use crate::IngestError;
use periscope_model::{Labels, LogBatch, LogEntry, LogStream};

fn err(msg: impl Into<String>) -> IngestError {
    IngestError::LokiPush(msg.into())
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Reads a Go string literal (double-quoted with escapes, or back-quoted raw) at the start
/// of `s`; returns the value and the bytes consumed (LogQL's own string rule).
pub use periscope_logql::unquote as unquote_go_string;

/// Parses a stream's label set as Loki's push accepts it: a LogQL stream selector with `=`
/// matchers only, legacy label names, at least one label with a value.
pub fn parse_stream_labels(s: &str) -> Result<Labels, IngestError> {
    let bad = |why: &str| err(format!("error parsing labels {s:?}: {why}"));
    let matchers = periscope_logql::parse_selector(s).map_err(|e| bad(&e.to_string()))?;
    let mut pairs = Vec::with_capacity(matchers.len());
    for m in matchers {
        if m.op != periscope_model::MatchOp::Equal {
            return Err(bad("only = matchers are allowed in a stream's labels"));
        }
        if !m.name.starts_with(is_name_start) || !m.name.chars().all(is_name_char) {
            return Err(bad(&format!("invalid label name {:?}", m.name)));
        }
        pairs.push((m.name, m.value));
    }
    Labels::from_pairs(pairs).map_err(|e| bad(&e.to_string()))
}

fn nanos(s: &str, stream: usize, entry: usize) -> Result<i64, IngestError> {
    s.parse::<i64>()
        .map_err(|_| err(format!("stream {stream} entry {entry}: timestamp {s:?} is not an integer of nanoseconds")))
}

/// Decodes a JSON push body.
pub fn decode_loki_push_json(body: &[u8]) -> Result<LogBatch, IngestError> {
    use serde::Deserialize;
    #[derive(Deserialize)]
    struct Push {
        #[serde(default)]
        streams: Vec<Stream>,
    }
    #[derive(Deserialize)]
    struct Stream {
        #[serde(default)]
        stream: std::collections::BTreeMap<String, String>,
        #[serde(default)]
        values: Vec<Vec<serde_json::Value>>,
    }
    let push: Push = serde_json::from_slice(body).map_err(|e| err(format!("loghttp.PushRequest.Streams: {e}")))?;
    let mut out = LogBatch::default();
    for (si, s) in push.streams.into_iter().enumerate() {
        let labels =
            Labels::from_pairs(s.stream).map_err(|e| err(format!("error parsing labels of stream {si}: {e}")))?;
        if let Some(l) = labels.iter().find(|l| !l.name.starts_with(is_name_start) || !l.name.chars().all(is_name_char))
        {
            return Err(err(format!("error parsing labels of stream {si}: invalid label name {:?}", l.name)));
        }
        if labels.is_empty() {
            return Err(err(format!(
                "error parsing labels of stream {si}: a stream needs at least one label with a value"
            )));
        }
        let mut entries = Vec::with_capacity(s.values.len());
        for (ei, v) in s.values.into_iter().enumerate() {
            let at = |what: &str| err(format!("stream {si} entry {ei}: {what}"));
            let mut it = v.into_iter();
            let ts = match it.next() {
                Some(serde_json::Value::String(t)) => nanos(&t, si, ei)?,
                _ => return Err(at("the timestamp must be a string of nanoseconds")),
            };
            let line = match it.next() {
                Some(serde_json::Value::String(l)) => l,
                _ => return Err(at("the line must be a string")),
            };
            let mut metadata = Vec::new();
            match it.next() {
                None | Some(serde_json::Value::Null) => {}
                Some(serde_json::Value::Object(m)) => {
                    for (k, v) in m {
                        match v {
                            serde_json::Value::String(v) => metadata.push((k, v)),
                            _ => return Err(at(&format!("structured metadata {k:?} must be a string"))),
                        }
                    }
                }
                Some(_) => return Err(at("structured metadata must be an object of strings")),
            }
            if it.next().is_some() {
                return Err(at("an entry has at most three elements"));
            }
            entries.push(LogEntry { ts_ns: ts, line, metadata });
        }
        out.streams.push(LogStream { labels, entries });
    }
    Ok(out)
}

fn utf8(b: &[u8], what: &str) -> Result<String, IngestError> {
    std::str::from_utf8(b).map(str::to_owned).map_err(|_| err(format!("{what} is not valid UTF-8")))
}

/// Decodes a `logproto.PushRequest` (already decompressed).
pub fn decode_loki_push_proto(body: &[u8]) -> Result<LogBatch, IngestError> {
    let mut out = LogBatch::default();
    let mut r = Reader::new(body, 0, "PushRequest");
    while let Some((n, wt)) = r.field()? {
        if n != 1 {
            r.skip(n, wt)?;
            continue;
        }
        r.expect(wt, WireType::Len, "PushRequest.streams")?;
        let (b, base) = r.bytes()?;
        let si = out.streams.len();
        let mut sr = Reader::new(b, base, "StreamAdapter");
        let (mut labels, mut entries) = (None, Vec::new());
        while let Some((n, wt)) = sr.field()? {
            match n {
                1 => {
                    sr.expect(wt, WireType::Len, "StreamAdapter.labels")?;
                    let text = utf8(sr.bytes()?.0, &format!("the labels of stream {si}"))?;
                    labels = Some(parse_stream_labels(&text)?);
                }
                2 => {
                    sr.expect(wt, WireType::Len, "StreamAdapter.entries")?;
                    let (eb, ebase) = sr.bytes()?;
                    entries.push(entry(eb, ebase, si, entries.len())?);
                }
                _ => sr.skip(n, wt)?,
            }
        }
        let labels = labels.ok_or_else(|| err(format!("stream {si} has no labels")))?;
        out.streams.push(LogStream { labels, entries });
    }
    Ok(out)
}

fn entry(b: &[u8], base: usize, si: usize, ei: usize) -> Result<LogEntry, IngestError> {
    let mut r = Reader::new(b, base, "EntryAdapter");
    let mut e = LogEntry::default();
    let (mut secs, mut nanos) = (0i64, 0i64);
    while let Some((n, wt)) = r.field()? {
        match n {
            1 => {
                r.expect(wt, WireType::Len, "EntryAdapter.timestamp")?;
                let (tb, tbase) = r.bytes()?;
                let mut tr = Reader::new(tb, tbase, "Timestamp");
                while let Some((tn, twt)) = tr.field()? {
                    match tn {
                        1 => {
                            tr.expect(twt, WireType::Varint, "Timestamp.seconds")?;
                            secs = tr.varint()? as i64;
                        }
                        2 => {
                            tr.expect(twt, WireType::Varint, "Timestamp.nanos")?;
                            nanos = i64::from(tr.varint()? as i32);
                        }
                        _ => tr.skip(tn, twt)?,
                    }
                }
            }
            2 => {
                r.expect(wt, WireType::Len, "EntryAdapter.line")?;
                e.line = utf8(r.bytes()?.0, &format!("the line of stream {si} entry {ei}"))?;
            }
            3 => {
                r.expect(wt, WireType::Len, "EntryAdapter.structuredMetadata")?;
                let (mb, mbase) = r.bytes()?;
                let mut mr = Reader::new(mb, mbase, "LabelPairAdapter");
                let (mut name, mut value) = (String::new(), String::new());
                while let Some((mn, mwt)) = mr.field()? {
                    match mn {
                        1 | 2 => {
                            mr.expect(mwt, WireType::Len, "LabelPairAdapter")?;
                            let s = utf8(mr.bytes()?.0, &format!("structured metadata of stream {si} entry {ei}"))?;
                            if mn == 1 {
                                name = s;
                            } else {
                                value = s;
                            }
                        }
                        _ => mr.skip(mn, mwt)?,
                    }
                }
                e.metadata.push((name, value));
            }
            _ => r.skip(n, wt)?,
        }
    }
    if !(0..1_000_000_000).contains(&nanos) {
        return Err(err(format!("stream {si} entry {ei}: timestamp nanos {nanos} out of range")));
    }
    e.ts_ns = secs
        .checked_mul(1_000_000_000)
        .and_then(|s| s.checked_add(nanos))
        .ok_or_else(|| err(format!("stream {si} entry {ei}: timestamp out of range")))?;
    Ok(e)
}

/// Encodes a batch as a `logproto.PushRequest` (for tests and load generators).
pub fn encode_loki_push_proto(batch: &LogBatch) -> Vec<u8> {
    let mut out = Vec::new();
    for s in &batch.streams {
        let mut sb = Vec::new();
        let labels: Vec<String> =
            s.labels.iter().map(|l| format!("{}={}", l.name, serde_json::Value::String(l.value.clone()))).collect();
        put_bytes(&mut sb, 1, format!("{{{}}}", labels.join(", ")).as_bytes());
        for e in &s.entries {
            let mut eb = Vec::new();
            let mut tb = Vec::new();
            let (secs, nanos) = (e.ts_ns.div_euclid(1_000_000_000), e.ts_ns.rem_euclid(1_000_000_000));
            if secs != 0 {
                put_tag(&mut tb, 1, WireType::Varint);
                put_varint(&mut tb, secs as u64);
            }
            if nanos != 0 {
                put_tag(&mut tb, 2, WireType::Varint);
                put_varint(&mut tb, nanos as u64);
            }
            put_bytes(&mut eb, 1, &tb);
            put_bytes(&mut eb, 2, e.line.as_bytes());
            for (n, v) in &e.metadata {
                let mut mb = Vec::new();
                put_bytes(&mut mb, 1, n.as_bytes());
                put_bytes(&mut mb, 2, v.as_bytes());
                put_bytes(&mut eb, 3, &mb);
            }
            put_bytes(&mut sb, 2, &eb);
        }
        put_bytes(&mut out, 1, &sb);
    }
    out
}

#[cfg(test)]
#[path = "loki_push_test.rs"]
mod tests;
