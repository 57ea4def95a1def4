//! Immutable on-disk blocks: the samples of one time range, with an inverted index.
//!
//! A block is a directory `<tenant>/blocks/<id>/` holding `meta.json`, `index` and `chunks`
//! (byte layouts in `docs/format/block.md`). Invariants:
//! - A block is written under a temporary name, every file and the directory are synced, then
//!   it is renamed into place: a crash never leaves a half block under a block's name.
//! - Series in the index are sorted by labels; a series' id is its position, so postings lists
//!   of ids are sorted too. Every chunk of the block lies inside `[min_time, max_time]`.
//! - Readers map both files and verify the index checksum on open; chunk checksums are verified
//!   when a chunk is read. A malformed file yields errors, never a panic.

use crate::bytes::{put_uvarint, put_varint, Cur};
use crate::chunkenc::{XorAppender, XorIter};
use crate::packenc;
use crate::postings::{union, PostingsSource};
use memmap2::Mmap;
use periscope_model::{HistogramSample, Label, Labels, MatchOp, Matcher, Sample};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

const INDEX_MAGIC: &[u8; 4] = b"PSIX";
const CHUNKS_MAGIC: &[u8; 4] = b"PSCK";
/// Version of `meta.json`.
const FORMAT_VERSION: u32 = 1;
/// Version of `index`: 1 = absolute chunk times and offsets, u64 series table, symbols sorted;
/// 2 = a base time, chunk times and offsets relative to it and to the previous chunk, a series
/// table of 4- or 8-byte offsets, symbols ordered by use (frequent ones get one-byte refs).
const INDEX_VERSION: u32 = 2;
/// Version of `chunks`: 1 = Gorilla XOR chunks; 2 = an encoding byte before each chunk
/// ([`ENC_XOR`] or [`ENC_PACKED`]).
const CHUNKS_VERSION: u32 = 3;
const ENC_XOR: u8 = 0;
const ENC_PACKED: u8 = 1;
/// A native histogram chunk (`histenc`), from chunks format 3 on.
const ENC_HISTOGRAM: u8 = 2;
/// Offsets of the three tables, the checksum and the magic.
const TOC_LEN: usize = 8 * 3 + 4 + 4;

/// A block's `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlockMeta {
    pub version: u32,
    pub id: String,
    /// Inclusive bounds of the samples, ms.
    pub min_time: i64,
    pub max_time: i64,
    pub num_series: u64,
    pub num_chunks: u64,
    pub num_samples: u64,
    /// 1 for a block cut from the head; one more than its sources' for a compacted block.
    pub level: u32,
    /// Ids of the blocks merged into this one (itself for a level-1 block).
    pub sources: Vec<String>,
}

/// A chunk to write or read: its samples, sorted by time without repeated timestamps.
#[derive(Debug, Clone)]
pub(crate) enum ChunkData {
    Floats(Vec<Sample>),
    Histograms(Vec<HistogramSample>),
}

impl ChunkData {
    pub(crate) fn len(&self) -> usize {
        match self {
            ChunkData::Floats(s) => s.len(),
            ChunkData::Histograms(s) => s.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first and last timestamps.
    pub(crate) fn time_range(&self) -> Option<(i64, i64)> {
        match self {
            ChunkData::Floats(s) => Some((s.first()?.t, s.last()?.t)),
            ChunkData::Histograms(s) => Some((s.first()?.t, s.last()?.t)),
        }
    }
}

/// The smaller of the packed and the XOR encoding of `samples`, with its encoding byte;
/// exception lists in the packed form from chunks format 3 on.
fn encode_chunk(samples: &[Sample], out: &mut Vec<u8>, chunks_version: u32) {
    let mut xor = XorAppender::new();
    for s in samples {
        xor.append(s.t, s.v);
    }
    match packenc::encode(samples, chunks_version >= 3) {
        Some(p) if p.len() < xor.bytes().len() => {
            out.push(ENC_PACKED);
            out.extend_from_slice(&p);
        }
        _ => {
            out.push(ENC_XOR);
            out.extend_from_slice(xor.bytes());
        }
    }
}

/// Errors reading or writing blocks.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("block {path} is malformed: {reason}")]
    Malformed { path: PathBuf, reason: &'static str },
    #[error("cannot encode meta of block {path}")]
    Meta {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BlockError + 'a {
    move |source| BlockError::Io { op, path: path.to_path_buf(), source }
}

/// Syncs a directory so that entries created or renamed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), BlockError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io("fsync directory", dir))
}

/// Writes a block from series sorted by labels. `dir` is the parent (`<tenant>/blocks`).
pub(crate) fn write_block(
    dir: &Path,
    id: &str,
    level: u32,
    sources: Vec<String>,
    series: impl Iterator<Item = (Labels, Vec<ChunkData>)>,
) -> Result<BlockMeta, BlockError> {
    write_block_version(dir, id, level, sources, series, INDEX_VERSION, CHUNKS_VERSION)
}

/// [`write_block`] with a chosen `chunks` format version (1 is kept for the test that reads
/// blocks of the old format).
fn write_block_version(
    dir: &Path,
    id: &str,
    level: u32,
    sources: Vec<String>,
    series: impl Iterator<Item = (Labels, Vec<ChunkData>)>,
    index_version: u32,
    chunks_version: u32,
) -> Result<BlockMeta, BlockError> {
    let tmp = dir.join(format!("{id}.tmp"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io("create", &tmp))?;

    // Chunks file, streamed; the index needs every series in memory only as symbol refs.
    let chunks_path = tmp.join("chunks");
    let mut chunks = BufWriter::new(File::create(&chunks_path).map_err(io("create", &chunks_path))?);
    let mut pos: u64 = 0;
    let put = |w: &mut BufWriter<File>, b: &[u8], pos: &mut u64| -> Result<(), BlockError> {
        w.write_all(b).map_err(io("write", &chunks_path))?;
        *pos += b.len() as u64;
        Ok(())
    };
    let mut header = CHUNKS_MAGIC.to_vec();
    header.extend_from_slice(&chunks_version.to_le_bytes());
    put(&mut chunks, &header, &mut pos)?;

    struct SeriesEntry {
        labels: Labels,
        chunks: Vec<(i64, i64, u64)>,
    }
    let mut entries: Vec<SeriesEntry> = Vec::new();
    let (mut min_time, mut max_time) = (i64::MAX, i64::MIN);
    let (mut num_chunks, mut num_samples) = (0u64, 0u64);
    let mut buf = Vec::new();
    let mut encoded = Vec::new();
    for (labels, list) in series {
        let list: Vec<ChunkData> = list.into_iter().filter(|c| !c.is_empty()).collect();
        if list.is_empty() {
            continue;
        }
        let mut metas = Vec::with_capacity(list.len());
        for c in list {
            let Some((mint, maxt)) = c.time_range() else { continue };
            encoded.clear();
            match &c {
                ChunkData::Floats(samples) if chunks_version == 1 => {
                    let mut xor = XorAppender::new();
                    for s in samples {
                        xor.append(s.t, s.v);
                    }
                    encoded.extend_from_slice(xor.bytes());
                }
                ChunkData::Floats(samples) => encode_chunk(samples, &mut encoded, chunks_version),
                ChunkData::Histograms(_) if chunks_version < 3 => {
                    return Err(BlockError::Malformed { path: tmp, reason: "histogram chunks need chunks format 3" });
                }
                ChunkData::Histograms(samples) => {
                    encoded.push(ENC_HISTOGRAM);
                    encoded.extend_from_slice(&crate::histenc::encode(samples));
                }
            }
            buf.clear();
            put_uvarint(&mut buf, encoded.len() as u64);
            buf.extend_from_slice(&encoded);
            buf.extend_from_slice(&crc32fast::hash(&encoded).to_le_bytes());
            metas.push((mint, maxt, pos));
            put(&mut chunks, &buf, &mut pos)?;
            min_time = min_time.min(mint);
            max_time = max_time.max(maxt);
            num_chunks += 1;
            num_samples += c.len() as u64;
        }
        entries.push(SeriesEntry { labels, chunks: metas });
    }
    let file = chunks.into_inner().map_err(|e| BlockError::Io {
        op: "flush",
        path: chunks_path.clone(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io("fsync", &chunks_path))?;
    drop(file);

    // Index.
    let mut uses: HashMap<&str, u64> = HashMap::new();
    for l in entries.iter().flat_map(|e| e.labels.iter()) {
        *uses.entry(l.name.as_str()).or_default() += 1;
        *uses.entry(l.value.as_str()).or_default() += 1;
    }
    let mut symbols: Vec<(&str, u64)> = uses.into_iter().collect();
    if index_version == 1 {
        symbols.sort_unstable();
    } else {
        symbols.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    }
    let symbols: Vec<&str> = symbols.into_iter().map(|(s, _)| s).collect();
    let sym_ref: HashMap<&str, u64> = symbols.iter().enumerate().map(|(i, s)| (*s, i as u64)).collect();
    let mut ix: Vec<u8> = INDEX_MAGIC.to_vec();
    ix.extend_from_slice(&index_version.to_le_bytes());
    let base_time = if min_time == i64::MAX { 0 } else { min_time };
    if index_version >= 2 {
        put_varint(&mut ix, base_time);
    }
    let symbols_off = ix.len() as u64;
    put_uvarint(&mut ix, symbols.len() as u64);
    for s in &symbols {
        put_uvarint(&mut ix, s.len() as u64);
        ix.extend_from_slice(s.as_bytes());
    }
    let mut series_offsets = Vec::with_capacity(entries.len());
    let mut postings: BTreeMap<(&str, &str), Vec<u64>> = BTreeMap::new();
    for (id, e) in entries.iter().enumerate() {
        series_offsets.push(ix.len() as u64);
        put_uvarint(&mut ix, e.labels.len() as u64);
        for l in &e.labels {
            put_uvarint(&mut ix, sym_ref[l.name.as_str()]);
            put_uvarint(&mut ix, sym_ref[l.value.as_str()]);
            postings.entry((l.name.as_str(), l.value.as_str())).or_default().push(id as u64);
        }
        put_uvarint(&mut ix, e.chunks.len() as u64);
        let (mut prev_t, mut prev_off) = (base_time, 0u64);
        for (mint, maxt, off) in &e.chunks {
            if index_version == 1 {
                put_varint(&mut ix, *mint);
                put_uvarint(&mut ix, (*maxt - *mint) as u64);
                put_uvarint(&mut ix, *off);
            } else {
                put_varint(&mut ix, mint.wrapping_sub(prev_t));
                put_uvarint(&mut ix, (*maxt - *mint) as u64);
                put_uvarint(&mut ix, off - prev_off);
                (prev_t, prev_off) = (*maxt, *off);
            }
        }
    }
    let mut table = Vec::with_capacity(postings.len());
    for ((name, value), ids) in &postings {
        table.push((sym_ref[name], sym_ref[value], ix.len() as u64));
        put_uvarint(&mut ix, ids.len() as u64);
        let mut prev = 0;
        for id in ids {
            put_uvarint(&mut ix, id - prev);
            prev = *id;
        }
    }
    let postings_table_off = ix.len() as u64;
    put_uvarint(&mut ix, table.len() as u64);
    for (n, v, off) in &table {
        put_uvarint(&mut ix, *n);
        put_uvarint(&mut ix, *v);
        put_uvarint(&mut ix, *off);
    }
    let series_table_off = ix.len() as u64;
    put_uvarint(&mut ix, series_offsets.len() as u64);
    let width: usize = if index_version == 1 || series_table_off > u32::MAX as u64 { 8 } else { 4 };
    if index_version >= 2 {
        ix.push(width as u8);
    }
    for off in &series_offsets {
        ix.extend_from_slice(&off.to_le_bytes()[..width]);
    }
    ix.extend_from_slice(&symbols_off.to_le_bytes());
    ix.extend_from_slice(&postings_table_off.to_le_bytes());
    ix.extend_from_slice(&series_table_off.to_le_bytes());
    let crc = crc32fast::hash(&ix);
    ix.extend_from_slice(&crc.to_le_bytes());
    ix.extend_from_slice(INDEX_MAGIC);
    let index_path = tmp.join("index");
    write_synced(&index_path, &ix)?;

    let meta = BlockMeta {
        version: FORMAT_VERSION,
        id: id.to_string(),
        min_time,
        max_time,
        num_series: entries.len() as u64,
        num_chunks,
        num_samples,
        level,
        sources: if sources.is_empty() { vec![id.to_string()] } else { sources },
    };
    let meta_path = tmp.join("meta.json");
    let json =
        serde_json::to_vec_pretty(&meta).map_err(|source| BlockError::Meta { path: meta_path.clone(), source })?;
    write_synced(&meta_path, &json)?;
    sync_dir(&tmp)?;
    let final_path = dir.join(id);
    std::fs::rename(&tmp, &final_path).map_err(io("rename", &tmp))?;
    sync_dir(dir)?;
    Ok(meta)
}

fn write_synced(path: &Path, data: &[u8]) -> Result<(), BlockError> {
    let mut f = File::create(path).map_err(io("create", path))?;
    f.write_all(data).map_err(io("write", path))?;
    f.sync_all().map_err(io("fsync", path))
}

/// Reads a little-endian u64 at `off`.
fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

/// A chunk's place in a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkMeta {
    pub mint: i64,
    pub maxt: i64,
    pub offset: u64,
}

/// An open, memory-mapped block.
pub(crate) struct Block {
    pub meta: BlockMeta,
    pub dir: PathBuf,
    index: Mmap,
    chunks: Mmap,
    chunks_version: u32,
    index_version: u32,
    /// Base of the chunk times of index version 2.
    base_time: i64,
    /// Bytes per entry of the series table.
    series_width: usize,
    /// Offsets of the symbols in `index`.
    symbols: Vec<(u32, u32)>,
    /// Label name → value → offset of its postings list.
    postings: HashMap<String, BTreeMap<String, u64>>,
    series_table: usize,
    num_series: usize,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block").field("meta", &self.meta).finish_non_exhaustive()
    }
}

impl Block {
    /// Opens and verifies the block in `dir`.
    pub(crate) fn open(dir: &Path) -> Result<Block, BlockError> {
        let bad = |reason| BlockError::Malformed { path: dir.to_path_buf(), reason };
        let meta_path = dir.join("meta.json");
        let meta_bytes = std::fs::read(&meta_path).map_err(io("read", &meta_path))?;
        let meta: BlockMeta = serde_json::from_slice(&meta_bytes).map_err(|_| bad("meta.json does not parse"))?;
        if meta.version != FORMAT_VERSION {
            return Err(bad("unknown format version"));
        }
        let map = |name: &str| -> Result<Mmap, BlockError> {
            let p = dir.join(name);
            let f = File::open(&p).map_err(io("open", &p))?;
            // SAFETY: block files are immutable once renamed into place; nothing writes to them
            // while they are mapped (deletion only unlinks, the mapping stays valid).
            unsafe { Mmap::map(&f) }.map_err(io("map", &p))
        };
        let index = map("index")?;
        let chunks = map("chunks")?;
        if chunks.get(..4) != Some(CHUNKS_MAGIC.as_slice()) {
            return Err(bad("chunks file has a bad header"));
        }
        let chunks_version = u64_at(&chunks, 0).map(|v| (v >> 32) as u32).ok_or(bad("chunks file has a bad header"))?;
        if !(1..=CHUNKS_VERSION).contains(&chunks_version) {
            return Err(bad("unknown chunks format version"));
        }
        let n = index.len();
        if n < 8 + TOC_LEN
            || index.get(..4) != Some(INDEX_MAGIC.as_slice())
            || index.get(n - 4..) != Some(INDEX_MAGIC.as_slice())
        {
            return Err(bad("index has a bad header or trailer"));
        }
        let index_version = u64_at(&index, 0).map(|v| (v >> 32) as u32).ok_or(bad("index header"))?;
        let base_time = match index_version {
            1 => 0,
            2 => Cur::at(&index, 8).varint().ok_or(bad("index header"))?,
            _ => return Err(bad("unknown index format version")),
        };
        let body_end = n - 8;
        let crc = u32::from_le_bytes([index[body_end], index[body_end + 1], index[body_end + 2], index[body_end + 3]]);
        if crc32fast::hash(&index[..body_end]) != crc {
            return Err(bad("index checksum mismatch"));
        }
        let toc = n - TOC_LEN;
        let symbols_off = u64_at(&index, toc).ok_or(bad("toc"))? as usize;
        let postings_off = u64_at(&index, toc + 8).ok_or(bad("toc"))? as usize;
        let series_off = u64_at(&index, toc + 16).ok_or(bad("toc"))? as usize;

        let mut c = Cur::at(&index, symbols_off);
        let count = c.uvarint().ok_or(bad("symbols"))? as usize;
        if count > index.len() {
            return Err(bad("symbol count"));
        }
        let mut symbols = Vec::with_capacity(count);
        for _ in 0..count {
            let len = c.uvarint().ok_or(bad("symbols"))? as usize;
            let start = c.pos;
            let s = c.bytes(len).ok_or(bad("symbols"))?;
            std::str::from_utf8(s).map_err(|_| bad("symbol is not utf-8"))?;
            symbols.push((start as u32, len as u32));
        }
        let sym = |r: u64| -> Option<&str> {
            let (o, l) = *symbols.get(r as usize)?;
            std::str::from_utf8(index.get(o as usize..(o + l) as usize)?).ok()
        };
        let mut c = Cur::at(&index, postings_off);
        let count = c.uvarint().ok_or(bad("postings table"))? as usize;
        if count > index.len() {
            return Err(bad("postings count"));
        }
        let mut postings: HashMap<String, BTreeMap<String, u64>> = HashMap::new();
        for _ in 0..count {
            let name = sym(c.uvarint().ok_or(bad("postings table"))?).ok_or(bad("postings symbol"))?;
            let value = sym(c.uvarint().ok_or(bad("postings table"))?).ok_or(bad("postings symbol"))?;
            let off = c.uvarint().ok_or(bad("postings table"))?;
            postings.entry(name.to_owned()).or_default().insert(value.to_owned(), off);
        }
        let mut c = Cur::at(&index, series_off);
        let num_series = c.uvarint().ok_or(bad("series table"))? as usize;
        let series_width = if index_version == 1 { 8 } else { c.u8().ok_or(bad("series table"))? as usize };
        if series_width != 4 && series_width != 8 {
            return Err(bad("series table width"));
        }
        if c.pos
            .checked_add(num_series.checked_mul(series_width).ok_or(bad("series table"))?)
            .is_none_or(|end| end > toc)
        {
            return Err(bad("series table"));
        }
        let series_table = c.pos;
        Ok(Block {
            meta,
            dir: dir.to_path_buf(),
            index,
            chunks,
            chunks_version,
            index_version,
            base_time,
            series_width,
            symbols,
            postings,
            series_table,
            num_series,
        })
    }

    fn symbol(&self, r: u64) -> Option<&str> {
        let (o, l) = *self.symbols.get(r as usize)?;
        std::str::from_utf8(self.index.get(o as usize..(o + l) as usize)?).ok()
    }

    fn postings_at(&self, off: u64) -> Vec<u64> {
        let mut c = Cur::at(&self.index, off as usize);
        let Some(n) = c.uvarint() else { return Vec::new() };
        let mut out = Vec::with_capacity((n as usize).min(self.num_series));
        let mut prev = 0u64;
        for _ in 0..n {
            let Some(d) = c.uvarint() else { break };
            prev = prev.wrapping_add(d);
            out.push(prev);
        }
        out
    }

    /// The labels and chunk metas of series `id`.
    pub(crate) fn series(&self, id: u64) -> Option<(Labels, Vec<ChunkMeta>)> {
        if id as usize >= self.num_series {
            return None;
        }
        let at = self.series_table + id as usize * self.series_width;
        let off = match self.series_width {
            4 => {
                let b = self.index.get(at..at + 4)?;
                u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
            }
            _ => u64_at(&self.index, at)? as usize,
        };
        let mut c = Cur::at(&self.index, off);
        let nl = c.uvarint()? as usize;
        let mut labels = Vec::with_capacity(nl.min(256));
        for _ in 0..nl {
            let name = self.symbol(c.uvarint()?)?.to_owned();
            let value = self.symbol(c.uvarint()?)?.to_owned();
            labels.push(Label { name, value });
        }
        let nc = c.uvarint()? as usize;
        let mut metas = Vec::with_capacity(nc.min(1 << 16));
        let (mut prev_t, mut prev_off) = (self.base_time, 0u64);
        for _ in 0..nc {
            let (mint, maxt, offset) = if self.index_version == 1 {
                let mint = c.varint()?;
                (mint, mint.checked_add(c.uvarint()? as i64)?, c.uvarint()?)
            } else {
                let mint = prev_t.checked_add(c.varint()?)?;
                let maxt = mint.checked_add(c.uvarint()? as i64)?;
                let offset = prev_off.checked_add(c.uvarint()?)?;
                (prev_t, prev_off) = (maxt, offset);
                (mint, maxt, offset)
            };
            metas.push(ChunkMeta { mint, maxt, offset });
        }
        if !labels.windows(2).all(|w| w[0].name < w[1].name) {
            return None;
        }
        Some((Labels::from_sorted_unchecked(labels), metas))
    }

    /// The float samples of the chunk at `offset`, checksum verified; `None` if it is damaged
    /// or holds histograms.
    pub(crate) fn chunk(&self, offset: u64) -> Option<Vec<Sample>> {
        match self.read_chunk(offset)? {
            ChunkData::Floats(s) => Some(s),
            ChunkData::Histograms(_) => None,
        }
    }

    /// Whether the chunk at `offset` holds histograms (read without decoding it).
    pub(crate) fn is_histogram_chunk(&self, offset: u64) -> bool {
        let mut c = Cur::at(&self.chunks, offset as usize);
        self.chunks_version >= 3 && c.uvarint().is_some() && c.u8() == Some(ENC_HISTOGRAM)
    }

    /// The histogram samples of the chunk at `offset`, when it is a healthy histogram chunk.
    pub(crate) fn histogram_chunk(&self, offset: u64) -> Option<Vec<HistogramSample>> {
        match self.read_chunk(offset)? {
            ChunkData::Histograms(s) => Some(s),
            ChunkData::Floats(_) => None,
        }
    }

    /// The samples of the chunk at `offset`, checksum verified; `None` if it is damaged.
    pub(crate) fn read_chunk(&self, offset: u64) -> Option<ChunkData> {
        let mut c = Cur::at(&self.chunks, offset as usize);
        let len = c.uvarint()? as usize;
        let bytes = c.bytes(len)?;
        let crc = c.bytes(4)?;
        if crc32fast::hash(bytes).to_le_bytes() != crc {
            return None;
        }
        let xor = |b: &[u8]| {
            let mut it = XorIter::new(b);
            let v: Vec<Sample> = it.by_ref().map(|(t, v)| Sample::new(t, v)).collect();
            (!it.err()).then_some(v)
        };
        if self.chunks_version == 1 {
            return xor(bytes).map(ChunkData::Floats);
        }
        match bytes.split_first()? {
            (&ENC_XOR, rest) => xor(rest).map(ChunkData::Floats),
            (&ENC_PACKED, rest) => packenc::decode(rest).map(ChunkData::Floats),
            (&ENC_HISTOGRAM, rest) if self.chunks_version >= 3 => {
                crate::histenc::decode(rest).map(ChunkData::Histograms)
            }
            _ => None,
        }
    }

    /// Label names in the block.
    pub(crate) fn label_names(&self) -> Vec<String> {
        self.postings.keys().cloned().collect()
    }

    /// Values of a label in the block, sorted.
    pub(crate) fn label_values(&self, name: &str) -> Vec<String> {
        self.postings.get(name).map(|m| m.keys().cloned().collect()).unwrap_or_default()
    }

    /// Bytes of the block's files.
    pub(crate) fn size_bytes(&self) -> u64 {
        (self.index.len() + self.chunks.len()) as u64
    }
}

impl PostingsSource for Block {
    fn matching(&self, m: &Matcher, want: bool) -> Vec<u64> {
        let Some(values) = self.postings.get(m.name.as_str()) else { return Vec::new() };
        let lists: Vec<Vec<u64>> = if want && m.op == MatchOp::Equal {
            values.get(m.value.as_str()).map(|o| vec![self.postings_at(*o)]).unwrap_or_default()
        } else if let (true, Some(set)) = (want, m.set_matches()) {
            set.iter().filter_map(|v| values.get(*v)).map(|o| self.postings_at(*o)).collect()
        } else {
            values.iter().filter(|(v, _)| m.matches(v) == want).map(|(_, o)| self.postings_at(*o)).collect()
        };
        union(lists.iter().map(|v| v.as_slice()).collect())
    }

    fn all(&self) -> Vec<u64> {
        (0..self.num_series as u64).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series() -> Vec<(Labels, Vec<ChunkData>)> {
        (0..20)
            .map(|i| {
                let labels = Labels::from_pairs([("__name__", "m".to_string()), ("i", format!("{i:02}"))]).unwrap();
                let samples: Vec<Sample> = (0..100).map(|j| Sample::new(j * 1000, (i * j) as f64 * 0.5)).collect();
                (labels, vec![ChunkData::Floats(samples[..60].to_vec()), ChunkData::Floats(samples[60..].to_vec())])
            })
            .collect()
    }

    fn read_back(b: &Block) -> Vec<(Labels, Vec<Sample>)> {
        (0..b.meta.num_series)
            .map(|id| {
                let (labels, metas) = b.series(id).unwrap();
                (labels, metas.iter().flat_map(|m| b.chunk(m.offset).unwrap()).collect())
            })
            .collect()
    }

    /// Blocks of the earlier formats (index v1 with XOR chunks v1; chunks v2 without exception
    /// lists) still read.
    #[test]
    fn reads_both_format_versions() {
        let dir = tempfile::tempdir().unwrap();
        let want: Vec<(Labels, Vec<Sample>)> = series()
            .into_iter()
            .map(|(l, c)| {
                let samples = c.into_iter().flat_map(|c| match c {
                    ChunkData::Floats(s) => s,
                    ChunkData::Histograms(_) => Vec::new(),
                });
                (l, samples.collect())
            })
            .collect();
        write_block_version(dir.path(), "v1", 1, vec![], series().into_iter(), 1, 1).unwrap();
        write_block_version(dir.path(), "c2", 1, vec![], series().into_iter(), 2, 2).unwrap();
        write_block(dir.path(), "v2", 1, vec![], series().into_iter()).unwrap();
        let v1 = Block::open(&dir.path().join("v1")).unwrap();
        let c2 = Block::open(&dir.path().join("c2")).unwrap();
        let v2 = Block::open(&dir.path().join("v2")).unwrap();
        assert_eq!((v1.index_version, v1.chunks_version), (1, 1));
        assert_eq!((c2.index_version, c2.chunks_version), (2, 2));
        assert_eq!((v2.index_version, v2.chunks_version), (2, 3));
        assert_eq!(read_back(&v1), want);
        assert_eq!(read_back(&c2), want);
        assert_eq!(read_back(&v2), want);
        // The packed encoding pays off on these regular, decimal series.
        assert!(v2.size_bytes() < v1.size_bytes(), "{} vs {}", v2.size_bytes(), v1.size_bytes());
        assert_eq!(v2.meta.num_samples, 2000);
    }

    #[test]
    fn histogram_chunks_sit_beside_float_chunks() {
        use periscope_model::{BucketSpan, FloatHistogram};
        let dir = tempfile::tempdir().unwrap();
        let labels = Labels::from_pairs([("__name__", "h".to_string())]).unwrap();
        let hist: Vec<HistogramSample> = (0..10)
            .map(|i| HistogramSample {
                t: 100_000 + i * 1000,
                h: std::sync::Arc::new(FloatHistogram {
                    count: i as f64,
                    sum: i as f64 * 2.5,
                    positive_spans: vec![BucketSpan { offset: 1, length: 1 }],
                    positive_buckets: vec![i as f64],
                    ..Default::default()
                }),
            })
            .collect();
        let floats: Vec<Sample> = (0..5).map(|j| Sample::new(j * 1000, j as f64)).collect();
        let series = vec![(labels, vec![ChunkData::Floats(floats.clone()), ChunkData::Histograms(hist.clone())])];
        write_block(dir.path(), "b", 1, vec![], series.into_iter()).unwrap();
        let b = Block::open(&dir.path().join("b")).unwrap();
        assert_eq!(b.meta.num_samples, 15);
        assert_eq!((b.meta.min_time, b.meta.max_time), (0, 109_000));
        let (_, metas) = b.series(0).unwrap();
        assert_eq!(metas.len(), 2);
        assert!(!b.is_histogram_chunk(metas[0].offset));
        assert!(b.is_histogram_chunk(metas[1].offset));
        assert_eq!(b.chunk(metas[0].offset), Some(floats));
        assert_eq!(b.chunk(metas[1].offset), None);
        assert_eq!(b.histogram_chunk(metas[1].offset), Some(hist));
        // Older chunk formats cannot hold histograms: writing one is an error, not a loss.
        let series = vec![(
            Labels::from_pairs([("__name__", "h".to_string())]).unwrap(),
            vec![ChunkData::Histograms(vec![HistogramSample {
                t: 1,
                h: std::sync::Arc::new(FloatHistogram::default()),
            }])],
        )];
        assert!(write_block_version(dir.path(), "old", 1, vec![], series.into_iter(), 2, 2).is_err());
    }

    #[test]
    fn damaged_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        write_block(dir.path(), "b", 1, vec![], series().into_iter()).unwrap();
        let index = dir.path().join("b").join("index");
        let mut bytes = std::fs::read(&index).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x55;
        std::fs::write(&index, &bytes).unwrap();
        assert!(matches!(Block::open(&dir.path().join("b")), Err(BlockError::Malformed { .. })));
    }
}
