//! Trace blocks: immutable files of whole traces, columnar and zstd-compressed
//! (`docs/format/traces.md`).
//!
//! A block holds traces sorted by trace id, cut into groups of about [`GROUP_SPANS`] spans
//! (a trace never spans two groups). Each group stores eight columns, each compressed on its
//! own, so a search reads only the columns its filters need: trace ids and span counts; span
//! and parent ids; origin (resource + scope) index; span-name index; kind and status; start
//! and duration; attributes; the rest (trace state, flags, events, links, dropped counts,
//! status message). The footer holds the block's dictionaries (origins, services, span
//! names, operations), a bloom filter over its trace ids and, per group, its first and last
//! trace id, time and duration bounds and services: a lookup by id reads one group of the
//! blocks whose filter admits the id; a search skips blocks and groups whose dictionaries or
//! bounds exclude it.
//!
//! Invariants: a block is written to a temporary name, fsynced and renamed, so a crash never
//! leaves a partial block; every read checks the footer's and each group's CRC and bounds
//! every length, so a damaged file is an error, never a panic or a huge allocation.

use crate::codec::{put_origin, put_parent, put_str, put_uvarint, put_varint, CodecError, Cur, SpanRead};
use crate::headspan::{attr_pairs, attr_tag_bits, HeadSpan};
use periscope_model::{Attribute, Span, SpanKind, SpanOrigin, StatusCode, TraceId};
pub use periscope_wal::block_file::BlockError;
use periscope_wal::block_file::{io, MAX_RAW, ZSTD_LEVEL};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// First and last 8 bytes of every block file.
const MAGIC: &[u8; 8] = b"PSCTRB01";
/// Spans per group, about: a group is closed at the first trace boundary past this.
pub(crate) const GROUP_SPANS: usize = 1024;
/// Bloom filter: bits per trace and probes.
const BLOOM_BITS_PER_TRACE: usize = 10;
const BLOOM_PROBES: u32 = 7;
/// Attribute filter per group: bits per distinct (key, value) pair and probes.
const ATTR_BLOOM_BITS: usize = 8;
const ATTR_BLOOM_PROBES: u32 = 5;

const NCOLS: usize = 8;
const C_TRACES: usize = 0;
const C_IDS: usize = 1;
const C_ORIGIN: usize = 2;
const C_NAME: usize = 3;
const C_KIND_STATUS: usize = 4;
const C_TIMES: usize = 5;
const C_ATTRS: usize = 6;
const C_REST: usize = 7;

/// One group's place in the file and what it holds.
#[derive(Debug, Clone)]
pub(crate) struct GroupMeta {
    offset: u64,
    /// Compressed and raw length of each column.
    lens: [(u32, u32); NCOLS],
    first: TraceId,
    last: TraceId,
    pub(crate) min_start: i64,
    pub(crate) max_start: i64,
    min_duration: i64,
    max_duration: i64,
    nspans: u32,
    /// Indexes into `BlockMeta::services`, sorted.
    services: Vec<u32>,
    /// Bloom filter of the span attributes' (key, value as text) pairs.
    attr_bloom: Vec<u64>,
    /// CRC-32 of the group's compressed bytes.
    crc: u32,
}

/// A block's footer, held in memory while the block is open.
#[derive(Debug)]
pub(crate) struct BlockMeta {
    pub(crate) min_start: i64,
    pub(crate) max_start: i64,
    pub(crate) max_end: i64,
    pub(crate) nspans: u64,
    pub(crate) ntraces: u64,
    min_duration: i64,
    max_duration: i64,
    origins: Vec<Arc<SpanOrigin>>,
    /// Service index of each origin.
    origin_service: Vec<u32>,
    pub(crate) services: Vec<String>,
    names: Vec<String>,
    /// (service index, name index, kind).
    pub(crate) operations: Vec<(u32, u32, SpanKind)>,
    bloom: Vec<u64>,
    groups: Vec<GroupMeta>,
}

impl BlockMeta {
    pub(crate) fn name(&self, i: u32) -> &str {
        self.names.get(i as usize).map_or("", String::as_str)
    }
}

fn probes(h: u64, bits: u64, k: u32) -> impl Iterator<Item = u64> {
    let (h1, h2) = (h & 0xffff_ffff, (h >> 32) | 1);
    (0..u64::from(k)).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % bits)
}

fn bloom_probes(id: &TraceId, bits: u64) -> impl Iterator<Item = u64> {
    probes(xxhash_rust::xxh3::xxh3_64(id), bits, BLOOM_PROBES)
}

/// The hash of an attribute pair in the groups' attribute filters.
pub(crate) fn attr_hash(key: &str, value: &str) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(key.as_bytes());
    h.update(&[0xff]);
    h.update(value.as_bytes());
    h.digest()
}

/// An open block: its file and footer.
pub(crate) struct Block {
    pub(crate) path: PathBuf,
    file: File,
    pub(crate) size: u64,
    pub(crate) meta: BlockMeta,
}

/// The dictionaries of a block being written.
#[derive(Default)]
struct Dicts {
    /// Origins by encoded content, and by pointer (spans of one batch share theirs).
    by_content: HashMap<Vec<u8>, u32>,
    by_ptr: HashMap<*const SpanOrigin, u32>,
    origins: Vec<Arc<SpanOrigin>>,
    origin_service: Vec<u32>,
    services: Vec<String>,
    service_index: HashMap<String, u32>,
    names: Vec<String>,
    name_index: HashMap<String, u32>,
    operations: Vec<(u32, u32, SpanKind)>,
    op_seen: std::collections::HashSet<(u32, u32, SpanKind)>,
}

impl Dicts {
    /// The span's origin index and service index.
    fn origin(&mut self, s: &HeadSpan) -> (u32, u32) {
        let i = match self.by_ptr.get(&Arc::as_ptr(&s.origin)) {
            Some(i) => *i,
            None => {
                let mut key = Vec::new();
                put_origin(&mut key, &s.origin);
                let i = match self.by_content.get(&key) {
                    Some(i) => *i,
                    None => {
                        let i = self.origins.len() as u32;
                        self.origins.push(s.origin.clone());
                        let svc = s.service_name();
                        let si = match self.service_index.get(svc) {
                            Some(si) => *si,
                            None => {
                                self.services.push(svc.to_string());
                                let si = (self.services.len() - 1) as u32;
                                self.service_index.insert(svc.to_string(), si);
                                si
                            }
                        };
                        self.origin_service.push(si);
                        self.by_content.insert(key, i);
                        i
                    }
                };
                self.by_ptr.insert(Arc::as_ptr(&s.origin), i);
                i
            }
        };
        (i, self.origin_service[i as usize])
    }

    /// The span's name index; records its operation.
    fn name(&mut self, s: &HeadSpan, service: u32) -> u32 {
        let ni = match self.name_index.get(&*s.name) {
            Some(i) => *i,
            None => {
                self.names.push(s.name.to_string());
                let i = (self.names.len() - 1) as u32;
                self.name_index.insert(s.name.to_string(), i);
                i
            }
        };
        if self.op_seen.insert((service, ni, s.kind)) {
            self.operations.push((service, ni, s.kind));
        }
        ni
    }
}

/// Writes `traces` (each a trace's spans) as a block in `dir` and opens it. Traces are sorted
/// by id here; spans within a trace by start.
pub(crate) fn write_block(dir: &Path, mut traces: Vec<(TraceId, Vec<Arc<HeadSpan>>)>) -> Result<Block, BlockError> {
    traces.sort_by_key(|t| t.0);
    for (_, spans) in &mut traces {
        spans.sort_by_key(|s| (s.start_ns, s.span_id));
    }
    let mut d = Dicts::default();
    let (mut min_start, mut max_start, mut max_end) = (i64::MAX, i64::MIN, i64::MIN);
    let (mut min_duration, mut max_duration) = (i64::MAX, i64::MIN);
    let mut nspans = 0u64;
    let mut file_bytes = periscope_wal::block_file::start(MAGIC);
    let mut groups = Vec::new();
    let mut start = 0;
    while start < traces.len() {
        let mut end = start;
        let mut n = 0;
        while end < traces.len() && (n < GROUP_SPANS || end == start) {
            n += traces[end].1.len();
            end += 1;
        }
        let part = &traces[start..end];
        let mut cols: [Vec<u8>; NCOLS] = Default::default();
        let g_min = part.iter().flat_map(|(_, s)| s.iter().map(|s| s.start_ns)).min().unwrap_or(0);
        let mut g = GroupMeta {
            offset: file_bytes.len() as u64,
            lens: [(0, 0); NCOLS],
            first: part[0].0,
            last: part[part.len() - 1].0,
            min_start: i64::MAX,
            max_start: i64::MIN,
            min_duration: i64::MAX,
            max_duration: i64::MIN,
            nspans: 0,
            services: Vec::new(),
            attr_bloom: Vec::new(),
            crc: 0,
        };
        let mut pairs = std::collections::HashSet::new();
        put_uvarint(&mut cols[C_TRACES], part.len() as u64);
        for (id, spans) in part {
            cols[C_TRACES].extend_from_slice(id);
            put_uvarint(&mut cols[C_TRACES], spans.len() as u64);
            for s in spans {
                let (o, svc) = d.origin(s);
                if let Err(i) = g.services.binary_search(&svc) {
                    g.services.insert(i, svc);
                }
                let ni = d.name(s, svc);
                let d = s.duration_ns().max(0);
                g.min_start = g.min_start.min(s.start_ns);
                g.max_start = g.max_start.max(s.start_ns);
                g.min_duration = g.min_duration.min(d);
                g.max_duration = g.max_duration.max(d);
                max_end = max_end.max(s.end_ns);
                g.nspans += 1;

                cols[C_IDS].extend_from_slice(&s.span_id);
                put_parent(&mut cols[C_IDS], s.parent);
                put_uvarint(&mut cols[C_ORIGIN], o.into());
                put_uvarint(&mut cols[C_NAME], ni.into());
                cols[C_KIND_STATUS].push(s.kind.otlp_code() as u8 | (s.status.otlp_code() as u8) << 4);
                put_varint(&mut cols[C_TIMES], s.start_ns.wrapping_sub(g_min));
                put_uvarint(&mut cols[C_TIMES], d as u64);
                cols[C_ATTRS].extend_from_slice(s.attrs_bytes());
                // The head encoded these bytes itself: they parse.
                let _ = attr_pairs(s.attrs_bytes(), |k, v| {
                    pairs.insert(attr_hash(k, v));
                });
                cols[C_REST].extend_from_slice(s.rest_bytes());
            }
        }
        let mut crc = crc32fast::Hasher::new();
        for (i, c) in cols.iter().enumerate() {
            let z = zstd::bulk::compress(c, ZSTD_LEVEL).map_err(io("compress a column for", dir))?;
            crc.update(&z);
            g.lens[i] = (z.len() as u32, c.len() as u32);
            file_bytes.extend_from_slice(&z);
        }
        g.crc = crc.finalize();
        let words = (pairs.len() * ATTR_BLOOM_BITS).div_ceil(64).max(1);
        g.attr_bloom = vec![0u64; words];
        for h in pairs {
            for bit in probes(h, (words * 64) as u64, ATTR_BLOOM_PROBES) {
                g.attr_bloom[(bit / 64) as usize] |= 1 << (bit % 64);
            }
        }
        min_start = min_start.min(g.min_start);
        max_start = max_start.max(g.max_start);
        min_duration = min_duration.min(g.min_duration);
        max_duration = max_duration.max(g.max_duration);
        nspans += u64::from(g.nspans);
        groups.push(g);
        start = end;
    }
    let words = (traces.len() * BLOOM_BITS_PER_TRACE).div_ceil(64).max(1);
    let mut bloom = vec![0u64; words];
    for (id, _) in &traces {
        for bit in bloom_probes(id, (words * 64) as u64) {
            bloom[(bit / 64) as usize] |= 1 << (bit % 64);
        }
    }
    let meta = BlockMeta {
        min_start,
        max_start,
        max_end,
        nspans,
        ntraces: traces.len() as u64,
        min_duration,
        max_duration,
        origins: d.origins,
        origin_service: d.origin_service,
        services: d.services,
        names: d.names,
        operations: d.operations,
        bloom,
        groups,
    };
    let mut raw = Vec::new();
    encode_meta(&mut raw, &meta);
    let (path, file, size) = periscope_wal::block_file::seal(dir, "tblk", MAGIC, file_bytes, &raw)?;
    Ok(Block { path, file, size, meta })
}

fn encode_meta(b: &mut Vec<u8>, m: &BlockMeta) {
    put_uvarint(b, 1); // version
    put_varint(b, m.min_start);
    put_varint(b, m.max_start);
    put_varint(b, m.max_end);
    put_uvarint(b, m.nspans);
    put_uvarint(b, m.ntraces);
    put_uvarint(b, m.min_duration as u64);
    put_uvarint(b, m.max_duration as u64);
    put_uvarint(b, m.origins.len() as u64);
    for (o, s) in m.origins.iter().zip(&m.origin_service) {
        put_origin(b, o);
        put_uvarint(b, (*s).into());
    }
    put_uvarint(b, m.services.len() as u64);
    for s in &m.services {
        put_str(b, s);
    }
    put_uvarint(b, m.names.len() as u64);
    for s in &m.names {
        put_str(b, s);
    }
    put_uvarint(b, m.operations.len() as u64);
    for (s, n, k) in &m.operations {
        put_uvarint(b, (*s).into());
        put_uvarint(b, (*n).into());
        b.push(k.otlp_code() as u8);
    }
    put_uvarint(b, m.bloom.len() as u64);
    for w in &m.bloom {
        b.extend_from_slice(&w.to_le_bytes());
    }
    put_uvarint(b, m.groups.len() as u64);
    for g in &m.groups {
        put_uvarint(b, g.offset);
        for (z, r) in g.lens {
            put_uvarint(b, z.into());
            put_uvarint(b, r.into());
        }
        b.extend_from_slice(&g.first);
        b.extend_from_slice(&g.last);
        put_varint(b, g.min_start);
        put_varint(b, g.max_start);
        put_uvarint(b, g.min_duration as u64);
        put_uvarint(b, g.max_duration as u64);
        put_uvarint(b, g.nspans.into());
        put_uvarint(b, g.services.len() as u64);
        for s in &g.services {
            put_uvarint(b, (*s).into());
        }
        put_uvarint(b, g.attr_bloom.len() as u64);
        for w in &g.attr_bloom {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(&g.crc.to_le_bytes());
    }
}

fn decode_meta(b: &[u8]) -> Result<BlockMeta, CodecError> {
    let mut c = Cur::new(b);
    if c.uvarint()? != 1 {
        return Err(CodecError("unknown block version"));
    }
    let dur = |c: &mut Cur<'_>| i64::try_from(c.uvarint()?).map_err(|_| CodecError("duration too large"));
    let (min_start, max_start, max_end) = (c.varint()?, c.varint()?, c.varint()?);
    let (nspans, ntraces) = (c.uvarint()?, c.uvarint()?);
    let (min_duration, max_duration) = (dur(&mut c)?, dur(&mut c)?);
    let n = c.count(7)?;
    let (mut origins, mut origin_service) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        origins.push(Arc::new(c.origin()?));
        origin_service.push(c.u32()?);
    }
    let n = c.count(1)?;
    let services = (0..n).map(|_| c.str()).collect::<Result<Vec<_>, _>>()?;
    if origin_service.iter().any(|s| *s as usize >= services.len()) {
        return Err(CodecError("origin of an unknown service"));
    }
    let n = c.count(1)?;
    let names = (0..n).map(|_| c.str()).collect::<Result<Vec<_>, _>>()?;
    let n = c.count(3)?;
    let mut operations = Vec::with_capacity(n);
    for _ in 0..n {
        let (s, nm) = (c.u32()?, c.u32()?);
        let k = SpanKind::from_otlp(c.u8()?.into()).ok_or(CodecError("unknown span kind"))?;
        operations.push((s, nm, k));
    }
    let n = c.count(8)?;
    let bloom = (0..n).map(|_| c.array::<8>().map(u64::from_le_bytes)).collect::<Result<Vec<_>, _>>()?;
    if bloom.is_empty() {
        return Err(CodecError("empty bloom filter"));
    }
    let n = c.count(60)?;
    let mut groups = Vec::with_capacity(n);
    for _ in 0..n {
        let offset = c.uvarint()?;
        let mut lens = [(0u32, 0u32); NCOLS];
        for l in &mut lens {
            *l = (c.u32()?, c.u32()?);
        }
        let (first, last) = (c.array::<16>()?, c.array::<16>()?);
        let (gmin, gmax) = (c.varint()?, c.varint()?);
        let (dmin, dmax) = (dur(&mut c)?, dur(&mut c)?);
        let nspans = c.u32()?;
        let ns = c.count(1)?;
        let services = (0..ns).map(|_| c.u32()).collect::<Result<Vec<_>, _>>()?;
        let nw = c.count(8)?;
        let attr_bloom = (0..nw).map(|_| c.array::<8>().map(u64::from_le_bytes)).collect::<Result<Vec<_>, _>>()?;
        if attr_bloom.is_empty() {
            return Err(CodecError("empty attribute bloom filter"));
        }
        let crc = u32::from_le_bytes(c.array::<4>()?);
        groups.push(GroupMeta {
            offset,
            lens,
            first,
            last,
            min_start: gmin,
            max_start: gmax,
            min_duration: dmin,
            max_duration: dmax,
            nspans,
            services,
            attr_bloom,
            crc,
        });
    }
    if c.left() != 0 {
        return Err(CodecError("trailing bytes"));
    }
    Ok(BlockMeta {
        min_start,
        max_start,
        max_end,
        nspans,
        ntraces,
        min_duration,
        max_duration,
        origins,
        origin_service,
        services,
        names,
        operations,
        bloom,
        groups,
    })
}

/// The columns of one group, decompressed as needed.
pub(crate) struct Group<'b> {
    block: &'b Block,
    g: &'b GroupMeta,
    raw: Vec<u8>,
    cols: [Option<Vec<u8>>; NCOLS],
}

/// The small columns of a group, parsed: enough to filter spans and build the service graph.
pub(crate) struct Rows {
    /// (trace id, first span, end span) per trace.
    pub(crate) traces: Vec<(TraceId, usize, usize)>,
    pub(crate) span_ids: Vec<[u8; 8]>,
    pub(crate) parents: Vec<Option<[u8; 8]>>,
    pub(crate) origin: Vec<u32>,
    pub(crate) name: Vec<u32>,
    pub(crate) kind: Vec<SpanKind>,
    pub(crate) status: Vec<StatusCode>,
    pub(crate) start: Vec<i64>,
    pub(crate) duration: Vec<i64>,
}

impl Block {
    /// Opens a block file, reading and checking its footer.
    pub(crate) fn open(path: &Path) -> Result<Block, BlockError> {
        let periscope_wal::block_file::Opened { file, size, footer: raw, data_end } =
            periscope_wal::block_file::open(path, MAGIC)?;
        let corrupt = |what: &str| BlockError::Corrupt { path: path.to_path_buf(), what: what.to_string() };
        let meta = decode_meta(&raw).map_err(|e| corrupt(&format!("footer: {e}")))?;
        for g in &meta.groups {
            let len: u64 = g.lens.iter().map(|(z, _)| u64::from(*z)).sum();
            if g.offset < 8 || g.offset.checked_add(len).is_none_or(|e| e > data_end) {
                return Err(corrupt("group outside the file"));
            }
        }
        Ok(Block { path: path.to_path_buf(), file, size, meta })
    }

    /// Whether the block may hold trace `id`.
    pub(crate) fn may_contain(&self, id: &TraceId) -> bool {
        let bits = (self.meta.bloom.len() * 64) as u64;
        bloom_probes(id, bits).all(|b| self.meta.bloom[(b / 64) as usize] & (1 << (b % 64)) != 0)
    }

    fn corrupt(&self, what: impl Into<String>) -> BlockError {
        BlockError::Corrupt { path: self.path.clone(), what: what.into() }
    }

    /// Reads a group's compressed bytes and checks them.
    fn group<'a>(&'a self, g: &'a GroupMeta) -> Result<Group<'a>, BlockError> {
        let len: u64 = g.lens.iter().map(|(z, _)| u64::from(*z)).sum();
        let mut raw = vec![0u8; len as usize];
        self.file.read_exact_at(&mut raw, g.offset).map_err(io("read", &self.path))?;
        if crc32fast::hash(&raw) != g.crc {
            return Err(self.corrupt(format!("group at byte {} fails its checksum", g.offset)));
        }
        Ok(Group { block: self, g, raw, cols: Default::default() })
    }

    /// Groups that may hold `id`.
    fn groups_with(&self, id: TraceId) -> impl Iterator<Item = &GroupMeta> {
        let i = self.meta.groups.partition_point(|g| g.last < id);
        self.meta.groups[i..].iter().take_while(move |g| g.first <= id)
    }

    /// The spans of trace `id` in this block (none when it has none).
    pub(crate) fn trace(&self, id: &TraceId) -> Result<Vec<Span>, BlockError> {
        if !self.may_contain(id) {
            return Ok(Vec::new());
        }
        for g in self.groups_with(*id) {
            let mut group = self.group(g)?;
            let rows = group.rows()?;
            if let Some(&(_, from, to)) = rows.traces.iter().find(|t| t.0 == *id) {
                return group.spans(&rows, from, to);
            }
        }
        Ok(Vec::new())
    }

    /// Groups overlapping the span-start range `[start, end]`.
    pub(crate) fn groups_in(&self, start: i64, end: i64) -> impl Iterator<Item = &GroupMeta> {
        self.meta.groups.iter().filter(move |g| g.max_start >= start && g.min_start <= end)
    }

    /// Calls `f` with each group (in the time range, holding service `service` if set, with
    /// spans in the duration range, whose attribute filter admits every pair hash of
    /// `must_hold`) and its rows.
    pub(crate) fn scan(
        &self,
        start: i64,
        end: i64,
        service: Option<u32>,
        duration: (Option<i64>, Option<i64>),
        must_hold: &[u64],
        mut f: impl FnMut(&mut Group<'_>, &Rows) -> Result<(), BlockError>,
    ) -> Result<(), BlockError> {
        for g in self.groups_in(start, end) {
            let bits = (g.attr_bloom.len() * 64) as u64;
            let absent = |h: &u64| {
                probes(*h, bits, ATTR_BLOOM_PROBES).any(|b| g.attr_bloom[(b / 64) as usize] & (1 << (b % 64)) == 0)
            };
            if service.is_some_and(|s| g.services.binary_search(&s).is_err())
                || duration.0.is_some_and(|d| g.max_duration < d)
                || duration.1.is_some_and(|d| g.min_duration > d)
                || must_hold.iter().any(absent)
            {
                continue;
            }
            let mut group = self.group(g)?;
            let rows = group.rows()?;
            f(&mut group, &rows)?;
        }
        Ok(())
    }

    pub(crate) fn service_index(&self, name: &str) -> Option<u32> {
        self.meta.services.iter().position(|s| s == name).map(|i| i as u32)
    }

    pub(crate) fn name_index(&self, name: &str) -> Option<u32> {
        self.meta.names.iter().position(|s| s == name).map(|i| i as u32)
    }

    pub(crate) fn origin(&self, i: u32) -> Option<&Arc<SpanOrigin>> {
        self.meta.origins.get(i as usize)
    }

    pub(crate) fn origin_service(&self, i: u32) -> u32 {
        self.meta.origin_service.get(i as usize).copied().unwrap_or(u32::MAX)
    }

    /// Whether the block's durations can satisfy the bounds.
    pub(crate) fn durations_overlap(&self, min: Option<i64>, max: Option<i64>) -> bool {
        !(min.is_some_and(|d| self.meta.max_duration < d) || max.is_some_and(|d| self.meta.min_duration > d))
    }
}

impl Group<'_> {
    /// Column `i`, decompressed once.
    fn col(&mut self, i: usize) -> Result<&[u8], BlockError> {
        if self.cols[i].is_none() {
            let from: usize = self.g.lens[..i].iter().map(|(z, _)| *z as usize).sum();
            let (z, raw) = self.g.lens[i];
            if raw as usize > MAX_RAW {
                return Err(self.block.corrupt("column longer than allowed"));
            }
            let src =
                self.raw.get(from..from + z as usize).ok_or_else(|| self.block.corrupt("column outside group"))?;
            let d = zstd::bulk::decompress(src, raw as usize)
                .map_err(|e| self.block.corrupt(format!("column {i} at byte {}: {e}", self.g.offset)))?;
            if d.len() != raw as usize {
                return Err(self.block.corrupt(format!("column {i} at byte {} has the wrong length", self.g.offset)));
            }
            self.cols[i] = Some(d);
        }
        Ok(self.cols[i].as_deref().unwrap_or(&[]))
    }

    fn bad(&self, e: CodecError) -> BlockError {
        self.block.corrupt(format!("group at byte {}: {e}", self.g.offset))
    }

    /// Parses the small columns.
    pub(crate) fn rows(&mut self) -> Result<Rows, BlockError> {
        let n = self.g.nspans as usize;
        let g_min = self.g.min_start;
        let norigins = self.block.meta.origins.len() as u32;
        let nnames = self.block.meta.names.len() as u32;
        let mut r = Rows {
            traces: Vec::new(),
            span_ids: Vec::with_capacity(n),
            parents: Vec::with_capacity(n),
            origin: Vec::with_capacity(n),
            name: Vec::with_capacity(n),
            kind: Vec::with_capacity(n),
            status: Vec::with_capacity(n),
            start: Vec::with_capacity(n),
            duration: Vec::with_capacity(n),
        };
        let parsed = (|| -> Result<(), CodecError> {
            let mut c = Cur::new(self.col(C_TRACES).map_err(|_| CodecError("unreadable"))?);
            let nt = c.count(17)?;
            let mut at = 0usize;
            for _ in 0..nt {
                let id = c.array::<16>()?;
                let k = usize::try_from(c.uvarint()?).map_err(|_| CodecError("span count too large"))?;
                if k > n - at {
                    return Err(CodecError("span counts disagree"));
                }
                r.traces.push((id, at, at + k));
                at += k;
            }
            if at != n {
                return Err(CodecError("span counts disagree"));
            }
            Ok(())
        })();
        parsed.map_err(|e| self.bad(e))?;
        let parsed = (|| -> Result<(), CodecError> {
            let mut c = Cur::new(self.col(C_IDS).map_err(|_| CodecError("unreadable"))?);
            for _ in 0..n {
                r.span_ids.push(c.array::<8>()?);
                r.parents.push(c.parent()?);
            }
            let mut c = Cur::new(self.col(C_ORIGIN).map_err(|_| CodecError("unreadable"))?);
            for _ in 0..n {
                let o = c.u32()?;
                if o >= norigins {
                    return Err(CodecError("unknown origin"));
                }
                r.origin.push(o);
            }
            let mut c = Cur::new(self.col(C_NAME).map_err(|_| CodecError("unreadable"))?);
            for _ in 0..n {
                let nm = c.u32()?;
                if nm >= nnames {
                    return Err(CodecError("unknown span name"));
                }
                r.name.push(nm);
            }
            let mut c = Cur::new(self.col(C_KIND_STATUS).map_err(|_| CodecError("unreadable"))?);
            for _ in 0..n {
                let b = c.u8()?;
                r.kind.push(SpanKind::from_otlp((b & 0x0f).into()).ok_or(CodecError("unknown span kind"))?);
                r.status.push(StatusCode::from_otlp((b >> 4).into()).ok_or(CodecError("unknown status"))?);
            }
            let mut c = Cur::new(self.col(C_TIMES).map_err(|_| CodecError("unreadable"))?);
            for _ in 0..n {
                let s = g_min.checked_add(c.varint()?).ok_or(CodecError("start overflows"))?;
                let d = i64::try_from(c.uvarint()?).map_err(|_| CodecError("duration too large"))?;
                s.checked_add(d).ok_or(CodecError("end overflows"))?;
                r.start.push(s);
                r.duration.push(d);
            }
            Ok(())
        })();
        parsed.map_err(|e| self.bad(e))?;
        Ok(r)
    }

    /// The attributes of every span of the group.
    pub(crate) fn attributes(&mut self) -> Result<Vec<Vec<Attribute>>, BlockError> {
        let n = self.g.nspans as usize;
        let col = self.col(C_ATTRS)?;
        let mut c = Cur::new(col);
        let parsed: Result<Vec<_>, CodecError> = (0..n).map(|_| c.attrs(0)).collect();
        parsed.map_err(|e| self.bad(e))
    }

    /// For each span of the group, a bit per tag: bit `t` is set when the span's own
    /// attributes hold `tags[t]` (at most 64 tags; value compared as text). Reads the
    /// attribute column in place: only values of a wanted key are looked at.
    pub(crate) fn tag_bits(&mut self, tags: &[(String, String)]) -> Result<Vec<u64>, BlockError> {
        let n = self.g.nspans as usize;
        let col = self.col(C_ATTRS)?.to_vec();
        let mut c = Cur::new(&col);
        let parsed: Result<Vec<u64>, CodecError> = (0..n).map(|_| attr_tag_bits(&mut c, tags)).collect();
        parsed.map_err(|e| self.bad(e))
    }

    /// Spans `from..to` of the group, whole.
    pub(crate) fn spans(&mut self, rows: &Rows, from: usize, to: usize) -> Result<Vec<Span>, BlockError> {
        let attrs = self.attributes()?;
        let block = self.block;
        let names = &block.meta.names;
        let col = self.col(C_REST)?.to_vec();
        let mut c = Cur::new(&col);
        let mut out = Vec::with_capacity(to.saturating_sub(from));
        for (i, attributes) in attrs.into_iter().enumerate().take(to) {
            let rest = c.rest().map_err(|e| self.bad(e))?;
            if i < from {
                continue;
            }
            let trace = rows.traces.iter().find(|t| t.1 <= i && i < t.2).map(|t| t.0).unwrap_or_default();
            let origin = block.meta.origins[rows.origin[i] as usize].clone();
            out.push(Span {
                trace_id: trace,
                span_id: rows.span_ids[i],
                parent_span_id: rows.parents[i],
                trace_state: rest.trace_state,
                flags: rest.flags,
                name: names[rows.name[i] as usize].clone(),
                kind: rows.kind[i],
                start_ns: rows.start[i],
                end_ns: rows.start[i] + rows.duration[i],
                attributes,
                dropped_attributes: rest.dropped_attributes,
                events: rest.events,
                dropped_events: rest.dropped_events,
                links: rest.links,
                dropped_links: rest.dropped_links,
                status: rows.status[i],
                status_message: rest.status_message,
                origin,
            });
        }
        Ok(out)
    }
}
