//! Log blocks: immutable files of entries, per stream in time order, cut into pages of at most
//! [`PAGE_ENTRIES`] entries / [`PAGE_BYTES`] bytes of lines, each page zstd-compressed on its
//! own (`docs/format/logs.md`). The footer (held in memory) lists the streams with their
//! labels and, per page, its place, time bounds, entry count and a bloom filter of the page's
//! tokens (alphanumeric runs of its lines) and of its `trace_id` values, so a selection skips
//! streams by labels, pages by time, and pages that cannot hold a `|= "needle"` or a trace id
//! without decompressing them (VictoriaLogs' lesson).
//!
//! Invariants: written to a temporary name, fsynced and renamed; every read checks the
//! footer's and each page's CRC and bounds every length.

use crate::codec::{put_labels, put_str, put_uvarint, put_varint, CodecError, Cur};
use periscope_model::{Labels, LogEntry};
pub(crate) use periscope_wal::block_file::BlockError;
use periscope_wal::block_file::{io, MAX_RAW, ZSTD_LEVEL};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"PSCLOGB1";
/// Entries per page, at most.
pub(crate) const PAGE_ENTRIES: usize = 1024;
/// Bytes of lines per page, about.
pub(crate) const PAGE_BYTES: usize = 256 << 10;
const BLOOM_BITS_PER_TOKEN: usize = 10;
const BLOOM_PROBES: u64 = 6;

/// The alphanumeric runs of `s` (bytes above ASCII count as token characters).
pub(crate) fn tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| c.is_ascii() && !c.is_ascii_alphanumeric()).filter(|t| !t.is_empty())
}

/// The tokens a line holding `needle` must hold whole: the needle's tokens but a first or
/// last one that may continue in the line.
pub(crate) fn needle_tokens(needle: &str) -> Vec<&str> {
    let mut t: Vec<&str> = tokens(needle).collect();
    let tok_char = |c: char| !c.is_ascii() || c.is_ascii_alphanumeric();
    if needle.ends_with(tok_char) {
        t.pop();
    }
    if needle.starts_with(tok_char) && !t.is_empty() {
        t.remove(0);
    }
    t
}

fn hash(s: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(s.as_bytes())
}

/// The hash a page's filter holds for a token.
pub(crate) fn token_hash(t: &str) -> u64 {
    hash(t)
}

/// The hash a page's filter holds for a trace id.
pub(crate) fn trace_hash(id: &str) -> u64 {
    hash(&format!("\u{0}trace_id={id}"))
}

fn probes(h: u64, bits: u64) -> impl Iterator<Item = u64> {
    let (h1, h2) = (h & 0xffff_ffff, (h >> 32) | 1);
    (0..BLOOM_PROBES).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % bits)
}

/// One page's place and summary.
pub(crate) struct PageMeta {
    offset: u64,
    zlen: u32,
    raw_len: u32,
    pub(crate) min_ts: i64,
    pub(crate) max_ts: i64,
    count: u32,
    bloom: Vec<u64>,
    crc: u32,
}

impl PageMeta {
    /// Whether the page may hold every hash of `required`.
    pub(crate) fn may_hold(&self, required: &[u64]) -> bool {
        let bits = (self.bloom.len() * 64) as u64;
        required.iter().all(|h| probes(*h, bits).all(|b| self.bloom[(b / 64) as usize] & (1 << (b % 64)) != 0))
    }
}

/// One stream of a block.
pub(crate) struct StreamMeta {
    pub(crate) labels: Labels,
    pub(crate) pages: Vec<PageMeta>,
}

/// An open block.
pub(crate) struct Block {
    pub(crate) path: PathBuf,
    file: File,
    pub(crate) size: u64,
    pub(crate) streams: Vec<StreamMeta>,
    pub(crate) min_ts: i64,
    pub(crate) max_ts: i64,
    pub(crate) entries: u64,
}

fn encode_page(entries: &[LogEntry], base: i64) -> Vec<u8> {
    let mut b = Vec::new();
    put_uvarint(&mut b, entries.len() as u64);
    let mut prev = base;
    for e in entries {
        put_varint(&mut b, e.ts_ns - prev);
        prev = e.ts_ns;
    }
    for e in entries {
        put_uvarint(&mut b, e.line.len() as u64);
    }
    for e in entries {
        b.extend_from_slice(e.line.as_bytes());
    }
    for e in entries {
        put_uvarint(&mut b, e.metadata.len() as u64);
        for (k, v) in &e.metadata {
            put_str(&mut b, k);
            put_str(&mut b, v);
        }
    }
    b
}

fn decode_page(b: &[u8], base: i64) -> Result<Vec<LogEntry>, CodecError> {
    let mut c = Cur::new(b);
    let n = c.count(2)?;
    let mut ts = Vec::with_capacity(n);
    let mut prev = base;
    for _ in 0..n {
        prev = prev.checked_add(c.varint()?).ok_or(CodecError("timestamp overflow"))?;
        ts.push(prev);
    }
    let mut lens = Vec::with_capacity(n);
    for _ in 0..n {
        lens.push(c.u32()? as usize);
    }
    let mut out = Vec::with_capacity(n);
    for (i, len) in lens.into_iter().enumerate() {
        let line = std::str::from_utf8(c.bytes(len)?).map_err(|_| CodecError("invalid utf-8"))?.to_owned();
        out.push(LogEntry { ts_ns: ts[i], line, metadata: Vec::new() });
    }
    for e in out.iter_mut() {
        let m = c.count(2)?;
        for _ in 0..m {
            e.metadata.push((c.str()?, c.str()?));
        }
    }
    if !c.at_end() {
        return Err(CodecError("trailing bytes"));
    }
    Ok(out)
}

/// Writes the streams (each with its entries sorted by time) as a block in `dir`.
pub(crate) fn write_block(dir: &Path, streams: &[(&Labels, &[LogEntry])]) -> Result<Block, BlockError> {
    let mut file_bytes = periscope_wal::block_file::start(MAGIC);
    let mut metas = Vec::new();
    let (mut min_ts, mut max_ts, mut entries) = (i64::MAX, i64::MIN, 0u64);
    for (labels, all) in streams {
        let mut pages = Vec::new();
        let mut start = 0;
        while start < all.len() {
            let (mut end, mut bytes) = (start, 0);
            while end < all.len() && end - start < PAGE_ENTRIES && (bytes < PAGE_BYTES || end == start) {
                bytes += all[end].line.len();
                end += 1;
            }
            let part = &all[start..end];
            let (pmin, pmax) = (part[0].ts_ns, part[part.len() - 1].ts_ns);
            let raw = encode_page(part, pmin);
            let z = zstd::bulk::compress(&raw, ZSTD_LEVEL).map_err(io("compress a page for", dir))?;
            let mut hashes = std::collections::HashSet::new();
            for e in part {
                for t in tokens(&e.line) {
                    hashes.insert(hash(t));
                }
                if let Some(id) = e.metadata("trace_id") {
                    hashes.insert(trace_hash(id));
                }
            }
            let words = (hashes.len() * BLOOM_BITS_PER_TOKEN).div_ceil(64).max(1);
            let mut bloom = vec![0u64; words];
            for h in hashes {
                for b in probes(h, (words * 64) as u64) {
                    bloom[(b / 64) as usize] |= 1 << (b % 64);
                }
            }
            pages.push(PageMeta {
                offset: file_bytes.len() as u64,
                zlen: z.len() as u32,
                raw_len: raw.len() as u32,
                min_ts: pmin,
                max_ts: pmax,
                count: part.len() as u32,
                bloom,
                crc: crc32fast::hash(&z),
            });
            file_bytes.extend_from_slice(&z);
            min_ts = min_ts.min(pmin);
            max_ts = max_ts.max(pmax);
            entries += part.len() as u64;
            start = end;
        }
        metas.push(StreamMeta { labels: (*labels).clone(), pages });
    }
    let mut footer = Vec::new();
    put_uvarint(&mut footer, 1);
    put_uvarint(&mut footer, metas.len() as u64);
    for s in &metas {
        put_labels(&mut footer, &s.labels);
        put_uvarint(&mut footer, s.pages.len() as u64);
        for p in &s.pages {
            put_uvarint(&mut footer, p.offset);
            put_uvarint(&mut footer, p.zlen.into());
            put_uvarint(&mut footer, p.raw_len.into());
            put_varint(&mut footer, p.min_ts);
            put_varint(&mut footer, p.max_ts);
            put_uvarint(&mut footer, p.count.into());
            put_uvarint(&mut footer, p.bloom.len() as u64);
            for w in &p.bloom {
                footer.extend_from_slice(&w.to_le_bytes());
            }
            footer.extend_from_slice(&p.crc.to_le_bytes());
        }
    }
    let (path, file, size) = periscope_wal::block_file::seal(dir, "lblk", MAGIC, file_bytes, &footer)?;
    Ok(Block { path, file, size, streams: metas, min_ts, max_ts, entries })
}

/// Decodes a footer written by [`write_block`], checking every page lies in the data.
fn decode_footer(raw: &[u8], data_end: u64) -> Result<Vec<StreamMeta>, CodecError> {
    let mut c = Cur::new(raw);
    if c.uvarint()? != 1 {
        return Err(CodecError("unknown block version"));
    }
    let ns = c.count(2)?;
    let mut streams = Vec::with_capacity(ns);
    for _ in 0..ns {
        let labels = c.labels()?;
        let np = c.count(10)?;
        let mut pages = Vec::with_capacity(np);
        for _ in 0..np {
            let offset = c.uvarint()?;
            let zlen = c.u32()?;
            let raw_len = c.u32()?;
            let (min_ts, max_ts) = (c.varint()?, c.varint()?);
            let count = c.u32()?;
            let nw = c.count(8)?;
            let mut bloom = Vec::with_capacity(nw);
            for _ in 0..nw {
                bloom.push(u64::from_le_bytes(c.array()?));
            }
            let crc = u32::from_le_bytes(c.array()?);
            if bloom.is_empty() {
                return Err(CodecError("empty bloom filter"));
            }
            if offset < 8 || offset.checked_add(zlen.into()).is_none_or(|e| e > data_end) {
                return Err(CodecError("page outside the file"));
            }
            if raw_len as usize > MAX_RAW {
                return Err(CodecError("page larger than a block may hold"));
            }
            pages.push(PageMeta { offset, zlen, raw_len, min_ts, max_ts, count, bloom, crc });
        }
        streams.push(StreamMeta { labels, pages });
    }
    if !c.at_end() {
        return Err(CodecError("trailing bytes"));
    }
    Ok(streams)
}

impl Block {
    /// Opens a block, reading and checking its footer.
    pub(crate) fn open(path: &Path) -> Result<Block, BlockError> {
        let corrupt = |what: &str| BlockError::Corrupt { path: path.to_path_buf(), what: what.to_string() };
        let periscope_wal::block_file::Opened { file, size, footer: raw, data_end } =
            periscope_wal::block_file::open(path, MAGIC)?;
        let streams = decode_footer(&raw, data_end).map_err(|e| corrupt(&format!("footer: {e}")))?;
        let pages = || streams.iter().flat_map(|s| s.pages.iter());
        let min_ts = pages().map(|p| p.min_ts).min().unwrap_or(i64::MAX);
        let max_ts = pages().map(|p| p.max_ts).max().unwrap_or(i64::MIN);
        let entries = pages().map(|p| u64::from(p.count)).sum();
        Ok(Block { path: path.to_path_buf(), file, size, streams, min_ts, max_ts, entries })
    }

    /// The entries of a page.
    pub(crate) fn page(&self, p: &PageMeta) -> Result<Vec<LogEntry>, BlockError> {
        let corrupt = |what: String| BlockError::Corrupt { path: self.path.clone(), what };
        let mut z = vec![0u8; p.zlen as usize];
        self.file.read_exact_at(&mut z, p.offset).map_err(io("read", &self.path))?;
        if crc32fast::hash(&z) != p.crc {
            return Err(corrupt(format!("page at byte {} fails its checksum", p.offset)));
        }
        let raw = zstd::bulk::decompress(&z, p.raw_len as usize)
            .map_err(|e| corrupt(format!("page at byte {}: {e}", p.offset)))?;
        decode_page(&raw, p.min_ts).map_err(|e| corrupt(format!("page at byte {}: {e}", p.offset)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needles_and_tokens() {
        assert_eq!(
            tokens("GET /api/users?id=42 500").collect::<Vec<_>>(),
            vec!["GET", "api", "users", "id", "42", "500"]
        );
        assert_eq!(needle_tokens("error"), Vec::<&str>::new(), "may be part of a longer token");
        assert_eq!(needle_tokens(" error "), vec!["error"]);
        assert_eq!(needle_tokens("status=500 path"), vec!["500"]);
        assert_eq!(needle_tokens("/api/users/"), vec!["api", "users"]);
    }
}
