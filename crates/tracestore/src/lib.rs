//! The embedded trace engine: spans go through a per-tenant write-ahead log (the metrics
//! engine's `periscope-wal`, records in `codec`'s format) into an in-memory head indexed by
//! trace id, by trace start time and by service → operations. Traces that have had no new
//! span for `trace_idle` are written, whole, into columnar blocks (`block`); the WAL is then
//! checkpointed to what is left in the head. An acknowledged span survives `kill -9`.
//!
//! Invariants:
//! - A span is in the head only after its WAL record was written; replay (newest checkpoint,
//!   then the segments after it) rebuilds the head of every span not yet in a block.
//! - A trace moves head → `flushing` → block with the locks held so that a reader taking them
//!   in that order (head, flushing, blocks) sees every span at least once; readers merge the
//!   three and drop exact duplicates (same span id and content), which also covers a crash
//!   between a block's rename and the checkpoint (the WAL replays spans the block holds).
//! - A trace's spans are returned in start-time order; a trace's start is its earliest span's.
//! - Spans of one trace that arrive after it was written to a block start a new head entry
//!   and land in a later block; reads merge them.

mod block;
mod codec;
mod headspan;

pub use block::BlockError;
use block::{write_block, Block, Rows};
use headspan::{attr_tag_bits, HeadSpan};
use periscope_model::{Attribute, Span, SpanBatch, SpanKind, StatusCode, TenantId, TraceId};
use periscope_storage::{DependencyLink, SpanAppendReport, StoreError, TraceQuery, TraceStore};
use periscope_wal::{
    expire_blocks, remove_unfinished_checkpoints, replay_checkpointed, tenant_dirs, write_checkpoint, Periodic,
    TenantMap, Wal, WalOptions,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Traces a search returns when the query sets no limit (Jaeger's default is 20).
pub const DEFAULT_SEARCH_LIMIT: usize = 20;

/// Spans per checkpoint record, far below the WAL's record limit.
const CHECKPOINT_SPANS_PER_RECORD: usize = 2000;

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct TraceDbOptions {
    pub wal: WalOptions,
    /// A trace with no new span for this long is complete enough to be written to a block
    /// (Tempo's `trace_idle_period`).
    pub trace_idle: Duration,
    /// Idle traces wait at most this long for a block (a block is written sooner when
    /// `max_block_spans` idle spans are waiting).
    pub max_block_age: Duration,
    /// Idle spans that make a block at once.
    pub max_block_spans: usize,
    /// Blocks whose newest span ended more than this before the tenant's newest span are
    /// deleted; zero keeps everything.
    pub retention_time: Duration,
    /// Oldest blocks are deleted while a tenant's blocks take more bytes; zero: no limit.
    pub retention_size: u64,
    /// How often the background thread writes blocks and applies retention; zero: never
    /// (call [`TraceDb::maintain`]).
    pub maintenance_interval: Duration,
}

impl Default for TraceDbOptions {
    fn default() -> Self {
        TraceDbOptions {
            wal: WalOptions::default(),
            trace_idle: Duration::from_secs(10),
            max_block_age: Duration::from_secs(300),
            max_block_spans: 200_000,
            retention_time: Duration::ZERO,
            retention_size: 0,
            maintenance_interval: Duration::ZERO,
        }
    }
}

/// Errors of the engine.
#[derive(Debug, thiserror::Error)]
pub enum TraceDbError {
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("trace write-ahead log of tenant {tenant}")]
    Wal {
        tenant: String,
        #[source]
        source: periscope_wal::WalError,
    },
    #[error("trace write-ahead log of tenant {tenant}, segment {segment}")]
    Replay {
        tenant: String,
        segment: u32,
        #[source]
        source: codec::CodecError,
    },
    #[error("trace write-ahead log checkpoint of tenant {tenant}")]
    Checkpoint {
        tenant: String,
        #[source]
        source: periscope_wal::CheckpointError,
    },
    #[error("trace blocks of tenant {tenant}")]
    Block {
        tenant: String,
        #[source]
        source: BlockError,
    },
}

/// Counters and gauges of the engine, for `/metrics`.
#[derive(Debug, Default)]
pub struct TraceDbStats {
    pub blocks_written: AtomicU64,
    pub blocks_deleted: AtomicU64,
    pub maintenance_failures: AtomicU64,
}

/// The trace engine of every tenant under one directory.
pub struct TraceDb {
    root: PathBuf,
    opts: TraceDbOptions,
    dbs: Arc<TenantMap<Db>>,
    stats: Arc<TraceDbStats>,
    maintenance: Periodic,
}

struct Trace {
    start: i64,
    /// When a span of the trace last arrived.
    touched: Instant,
    spans: Vec<Arc<HeadSpan>>,
}

#[derive(Default)]
struct Head {
    traces: HashMap<TraceId, Trace>,
    /// (trace start, trace id) of every trace.
    by_start: BTreeSet<(i64, TraceId)>,
    operations: BTreeMap<String, BTreeSet<(String, SpanKind)>>,
    nspans: usize,
}

impl Head {
    /// Adds a span; false when an equal span is already stored.
    fn add(&mut self, trace_id: TraceId, span: Arc<HeadSpan>, now: Instant) -> bool {
        let t = self.traces.entry(trace_id).or_insert_with(|| Trace {
            start: span.start_ns,
            touched: now,
            spans: Vec::new(),
        });
        // Spans are in start order: an equal span can only be among those of the same start.
        let from = t.spans.partition_point(|s| s.start_ns < span.start_ns);
        if t.spans[from..].iter().take_while(|s| s.start_ns == span.start_ns).any(|s| **s == *span) {
            return false;
        }
        t.touched = now;
        if t.spans.is_empty() || span.start_ns < t.start {
            self.by_start.remove(&(t.start, trace_id));
            t.start = if t.spans.is_empty() { span.start_ns } else { t.start.min(span.start_ns) };
        }
        self.by_start.insert((t.start, trace_id));
        let i = t.spans.partition_point(|s| s.start_ns <= span.start_ns);
        self.operations.entry(span.service_name().to_string()).or_default().insert((span.name.to_string(), span.kind));
        t.spans.insert(i, span);
        self.nspans += 1;
        true
    }

    /// Spans of traces untouched since `cutoff`.
    fn idle_spans(&self, cutoff: Instant) -> usize {
        self.traces.values().filter(|t| t.touched <= cutoff).map(|t| t.spans.len()).sum()
    }

    /// Moves the traces untouched since `cutoff` into a head of their own.
    fn take_idle(&mut self, cutoff: Instant) -> Head {
        let ids: Vec<TraceId> = self.traces.iter().filter(|(_, t)| t.touched <= cutoff).map(|(id, _)| *id).collect();
        let mut out = Head::default();
        for id in ids {
            if let Some(t) = self.traces.remove(&id) {
                self.by_start.remove(&(t.start, id));
                self.nspans -= t.spans.len();
                out.by_start.insert((t.start, id));
                out.nspans += t.spans.len();
                for s in &t.spans {
                    out.operations
                        .entry(s.service_name().to_string())
                        .or_default()
                        .insert((s.name.to_string(), s.kind));
                }
                out.traces.insert(id, t);
            }
        }
        out
    }

    /// Removes a trace.
    fn remove(&mut self, id: &TraceId) {
        if let Some(t) = self.traces.remove(id) {
            self.by_start.remove(&(t.start, *id));
            self.nspans -= t.spans.len();
        }
    }

    /// Puts traces of `other` back (a block write failed).
    fn merge(&mut self, other: Head, now: Instant) {
        for (id, t) in other.traces {
            for s in t.spans {
                self.add(id, s, now);
            }
        }
    }

    /// The newest `limit` traces with a span matching `q`: (start, id).
    fn search(&self, q: &TraceQuery, limit: usize) -> Vec<(i64, TraceId)> {
        let mut out = Vec::new();
        // Newest traces first; a trace that starts after the range cannot match.
        for (start, id) in self.by_start.range(..=(q.end_ns, [0xff; 16])).rev() {
            let Some(t) = self.traces.get(id) else { continue };
            if t.spans.iter().any(|s| span_matches(s, q)) {
                out.push((*start, *id));
                if out.len() >= limit {
                    break;
                }
            }
        }
        out
    }

    fn dependencies(&self, start_ns: i64, end_ns: i64, edges: &mut Edges) {
        for (_, id) in self.by_start.range(..=(end_ns, [0xff; 16])) {
            let Some(t) = self.traces.get(id) else { continue };
            let by_id: HashMap<[u8; 8], &HeadSpan> = t.spans.iter().map(|s| (s.span_id, &**s)).collect();
            for s in t.spans.iter().filter(|s| start_ns <= s.start_ns && s.start_ns <= end_ns) {
                let Some(parent) = s.parent.and_then(|p| by_id.get(&p)) else { continue };
                edges.add(parent.service_name(), s.service_name(), s.status == StatusCode::Error, s.duration_ns());
            }
        }
    }
}

/// Service-graph edges being summed.
#[derive(Default)]
struct Edges(BTreeMap<(String, String), DependencyLink>);

impl Edges {
    fn add(&mut self, from: &str, to: &str, error: bool, duration_ns: i64) {
        if from == to {
            return;
        }
        let e = self.0.entry((from.to_string(), to.to_string())).or_insert_with(|| DependencyLink {
            parent: from.to_string(),
            child: to.to_string(),
            call_count: 0,
            error_count: 0,
            duration_sum_ns: 0,
        });
        e.call_count += 1;
        e.error_count += u64::from(error);
        e.duration_sum_ns += duration_ns.max(0) as u64;
    }
}

struct Db {
    tenant: TenantId,
    dir: PathBuf,
    wal: Wal,
    head: RwLock<Head>,
    /// Traces being written to a block, served until the block is open.
    flushing: RwLock<Head>,
    /// Open blocks, oldest first (by newest span start).
    blocks: RwLock<Vec<Arc<Block>>>,
    /// Serialises appends so the head applies records in WAL order.
    append: Mutex<()>,
    /// Serialises maintenance; holds when the last block was written.
    maintain: Mutex<Instant>,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

fn lock<T>(l: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    l.lock().unwrap_or_else(|p| p.into_inner())
}

impl TraceDb {
    /// Opens (and replays) every tenant under `root`; starts the maintenance thread when
    /// `maintenance_interval` is set.
    pub fn open(root: &Path, opts: TraceDbOptions) -> Result<TraceDb, TraceDbError> {
        let dirs = tenant_dirs(root).map_err(|source| TraceDbError::Io { op: "list", path: root.into(), source })?;
        let dbs = Arc::new(TenantMap::default());
        for (tenant, dir) in dirs {
            let d = Db::open(&tenant, &dir, &opts)?;
            dbs.insert(tenant, d);
        }
        let stats = Arc::new(TraceDbStats::default());
        let (d, st, o) = (dbs.clone(), stats.clone(), opts.clone());
        let maintenance = Periodic::start("trace-maintenance", opts.maintenance_interval, move || {
            for (tenant, db) in d.all() {
                if let Err(e) = db.maintain(&o, &st, false) {
                    st.maintenance_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(%tenant, error = %periscope_model::error_chain(&e), "trace maintenance failed");
                }
            }
        })
        .map_err(|source| TraceDbError::Io {
            op: "start maintenance thread for",
            path: root.into(),
            source,
        })?;
        Ok(TraceDb { root: root.to_path_buf(), opts, dbs, stats, maintenance })
    }

    fn db(&self, tenant: &TenantId) -> Option<Arc<Db>> {
        self.dbs.get(tenant)
    }

    fn db_or_create(&self, tenant: &TenantId) -> Result<Arc<Db>, TraceDbError> {
        self.dbs.get_or_try_insert(tenant, || Db::open(tenant, &self.root.join(tenant.as_str()), &self.opts))
    }

    /// Runs maintenance for every tenant now: writes a block of idle traces when one is due
    /// (always, with `force`, of every trace in the head), then applies retention.
    pub fn maintain(&self, force: bool) -> Result<(), TraceDbError> {
        for (_, db) in self.dbs.all() {
            db.maintain(&self.opts, &self.stats, force)?;
        }
        Ok(())
    }

    /// Stops maintenance, flushes and closes every tenant's log.
    pub fn close(&self) -> Result<(), TraceDbError> {
        self.maintenance.stop();
        for (tenant, d) in self.dbs.all() {
            d.wal.close().map_err(|source| TraceDbError::Wal { tenant: tenant.to_string(), source })?;
        }
        Ok(())
    }

    /// The engine's own metrics in Prometheus text format.
    pub fn write_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let (mut blocks, mut bytes, mut block_spans, mut head_spans) = (0u64, 0u64, 0u64, 0u64);
        for (_, d) in self.dbs.all() {
            for b in read(&d.blocks).iter() {
                blocks += 1;
                bytes += b.size;
                block_spans += b.meta.nspans;
            }
            head_spans += (read(&d.head).nspans + read(&d.flushing).nspans) as u64;
        }
        let s = &self.stats;
        for (name, kind, help, v) in [
            ("periscope_traces_blocks", "gauge", "Trace blocks on disk.", blocks),
            ("periscope_traces_block_bytes", "gauge", "Bytes of the trace blocks on disk.", bytes),
            ("periscope_traces_block_spans", "gauge", "Spans in trace blocks.", block_spans),
            ("periscope_traces_head_spans", "gauge", "Spans in memory, not yet in a block.", head_spans),
            (
                "periscope_traces_blocks_written_total",
                "counter",
                "Trace blocks written.",
                s.blocks_written.load(Ordering::Relaxed),
            ),
            (
                "periscope_traces_blocks_deleted_total",
                "counter",
                "Trace blocks deleted by retention.",
                s.blocks_deleted.load(Ordering::Relaxed),
            ),
            (
                "periscope_traces_maintenance_failures_total",
                "counter",
                "Failed trace maintenance runs.",
                s.maintenance_failures.load(Ordering::Relaxed),
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        }
    }
}

impl Db {
    fn open(tenant: &TenantId, dir: &Path, opts: &TraceDbOptions) -> Result<Db, TraceDbError> {
        let wal_dir = dir.join("wal");
        let blocks_dir = dir.join("blocks");
        for d in [&wal_dir, &blocks_dir] {
            std::fs::create_dir_all(d).map_err(|source| TraceDbError::Io { op: "create", path: d.clone(), source })?;
        }
        let block_err = |source| TraceDbError::Block { tenant: tenant.to_string(), source };
        let mut blocks = Vec::new();
        for p in periscope_wal::block_file::list(&blocks_dir, "tblk").map_err(block_err)? {
            blocks.push(Arc::new(Block::open(&p).map_err(block_err)?));
        }
        blocks.sort_by_key(|b| (b.meta.max_start, b.meta.min_start));
        remove_unfinished_checkpoints(&wal_dir);
        let mut head = Head::default();
        let now = Instant::now();
        let wal_err = |source| TraceDbError::Wal { tenant: tenant.to_string(), source };
        // Checkpoints hold head spans as they are; WAL segments hold appended batches.
        let replayed = replay_checkpointed(&wal_dir, |checkpoint, segment, payload| {
            if checkpoint {
                for (id, s) in headspan::decode_checkpoint(payload).map_err(|e| (segment, e))? {
                    head.add(id, Arc::new(s), now);
                }
            } else {
                for s in codec::decode(payload).map_err(|e| (segment, e))? {
                    head.add(s.trace_id, Arc::new(HeadSpan::new(&s)), now);
                }
            }
            Ok(())
        })
        .map_err(wal_err)?;
        if let Err((segment, source)) = replayed {
            return Err(TraceDbError::Replay { tenant: tenant.to_string(), segment, source });
        }
        let wal = Wal::open(&wal_dir, opts.wal.clone()).map_err(wal_err)?;
        Ok(Db {
            tenant: tenant.clone(),
            dir: dir.to_path_buf(),
            wal,
            head: RwLock::new(head),
            flushing: RwLock::new(Head::default()),
            blocks: RwLock::new(blocks),
            append: Mutex::new(()),
            maintain: Mutex::new(now),
        })
    }

    fn maintain(&self, opts: &TraceDbOptions, stats: &TraceDbStats, force: bool) -> Result<(), TraceDbError> {
        let mut last_block = lock(&self.maintain);
        let now = Instant::now();
        let cutoff = if force { now } else { now.checked_sub(opts.trace_idle).unwrap_or(now) };
        let idle = read(&self.head).idle_spans(cutoff);
        let due = force || idle >= opts.max_block_spans || now.duration_since(*last_block) >= opts.max_block_age;
        if idle > 0 && due {
            self.write_block(cutoff, opts.max_block_spans.max(1), stats)?;
            *last_block = now;
        }
        self.apply_retention(opts, stats)
    }

    /// Moves the traces idle since `cutoff` into blocks of at most about `max_spans` spans,
    /// then checkpoints the WAL to what is left in the head.
    fn write_block(&self, cutoff: Instant, max_spans: usize, stats: &TraceDbStats) -> Result<(), TraceDbError> {
        let wal_err = |source| TraceDbError::Wal { tenant: self.tenant.to_string(), source };
        let (seg, remaining) = {
            let _a = lock(&self.append);
            let seg = self.wal.cut().map_err(wal_err)?;
            let mut head = write(&self.head);
            let idle = head.take_idle(cutoff);
            *write(&self.flushing) = idle;
            let remaining: Vec<(TraceId, Arc<HeadSpan>)> =
                head.traces.iter().flat_map(|(id, t)| t.spans.iter().map(|s| (*id, s.clone()))).collect();
            (seg, remaining)
        };
        // Oldest traces first, at most `max_spans` spans per block, each block served as soon
        // as it is open.
        let order: Vec<(TraceId, usize)> = {
            let f = read(&self.flushing);
            f.by_start.iter().map(|(_, id)| (*id, f.traces.get(id).map_or(0, |t| t.spans.len()))).collect()
        };
        let mut chunk_start = 0;
        while chunk_start < order.len() {
            let (mut end, mut n) = (chunk_start, 0);
            while end < order.len() && (n < max_spans || end == chunk_start) {
                n += order[end].1;
                end += 1;
            }
            let ids = &order[chunk_start..end];
            let traces: Vec<(TraceId, Vec<Arc<HeadSpan>>)> = {
                let f = read(&self.flushing);
                ids.iter().filter_map(|(id, _)| f.traces.get(id).map(|t| (*id, t.spans.clone()))).collect()
            };
            match write_block(&self.dir.join("blocks"), traces) {
                Ok(b) => {
                    tracing::info!(tenant = %self.tenant, block = %b.path.display(), traces = ids.len(), spans = n, bytes = b.size, "wrote trace block");
                    let mut blocks = write(&self.blocks);
                    blocks.push(Arc::new(b));
                    blocks.sort_by_key(|b| (b.meta.max_start, b.meta.min_start));
                    let mut f = write(&self.flushing);
                    for (id, _) in ids {
                        f.remove(id);
                    }
                    stats.blocks_written.fetch_add(1, Ordering::Relaxed);
                }
                Err(source) => {
                    // The WAL still holds the spans; serve them from the head again.
                    let back = std::mem::take(&mut *write(&self.flushing));
                    write(&self.head).merge(back, Instant::now());
                    return Err(TraceDbError::Block { tenant: self.tenant.to_string(), source });
                }
            }
            chunk_start = end;
        }
        *write(&self.flushing) = Head::default();
        self.checkpoint(seg, &remaining)
    }

    /// Writes `spans` as `wal/checkpoint.<seg-1>` and deletes the segments before `seg` and
    /// older checkpoints.
    fn checkpoint(&self, seg: u32, spans: &[(TraceId, Arc<HeadSpan>)]) -> Result<(), TraceDbError> {
        write_checkpoint(&self.wal, seg, |cp| {
            for part in spans.chunks(CHECKPOINT_SPANS_PER_RECORD) {
                cp.log(|b| headspan::encode_checkpoint(b, part))?;
            }
            Ok(())
        })
        .map_err(|source| TraceDbError::Checkpoint { tenant: self.tenant.to_string(), source })
    }

    fn apply_retention(&self, opts: &TraceDbOptions, stats: &TraceDbStats) -> Result<(), TraceDbError> {
        let doomed = {
            let mut blocks = write(&self.blocks);
            let newest = blocks
                .iter()
                .map(|b| b.meta.max_end)
                .chain(read(&self.head).by_start.last().map(|(t, _)| *t))
                .max()
                .unwrap_or(i64::MIN);
            // Oldest first by newest data, then back in search order.
            blocks.sort_by_key(|b| (b.meta.max_end, b.meta.min_start));
            let retention_ns = opts.retention_time.as_nanos().min(i64::MAX as u128) as i64;
            let doomed =
                expire_blocks(&mut blocks, newest, retention_ns, opts.retention_size, |b| b.meta.max_end, |b| b.size);
            blocks.sort_by_key(|b| (b.meta.max_start, b.meta.min_start));
            doomed
        };
        for b in doomed {
            std::fs::remove_file(&b.path).map_err(|source| TraceDbError::Io {
                op: "delete",
                path: b.path.clone(),
                source,
            })?;
            stats.blocks_deleted.fetch_add(1, Ordering::Relaxed);
            tracing::info!(tenant = %self.tenant, block = %b.path.display(), "deleted trace block (retention)");
        }
        Ok(())
    }

    /// Every block, newest first.
    fn blocks_newest_first(&self) -> Vec<Arc<Block>> {
        read(&self.blocks).iter().rev().cloned().collect()
    }
}

/// Whether a head span satisfies the span filters of `q`.
fn span_matches(s: &HeadSpan, q: &TraceQuery) -> bool {
    if q.service.as_deref().is_some_and(|x| x != s.service_name())
        || q.operation.as_deref().is_some_and(|x| x != &*s.name)
        || q.kind.is_some_and(|k| k != s.kind)
        || q.error.is_some_and(|e| e != (s.status == StatusCode::Error))
        || q.min_duration_ns.is_some_and(|d| s.duration_ns() < d)
        || q.max_duration_ns.is_some_and(|d| s.duration_ns() > d)
        || s.start_ns < q.start_ns
        || s.start_ns > q.end_ns
    {
        return false;
    }
    if q.tags.is_empty() {
        return true;
    }
    let span_bits = attr_tag_bits(&mut codec::Cur::new(s.attrs_bytes()), &q.tags).unwrap_or(0);
    q.tags.iter().enumerate().all(|(t, (k, v))| {
        (t < 64 && span_bits & (1 << t) != 0)
            || has_tag(&s.origin.resource, k, v)
            || (t >= 64 && has_tag(&s.to_span(TraceId::default()).attributes, k, v))
    })
}

fn has_tag(attrs: &[Attribute], k: &str, v: &str) -> bool {
    attrs.iter().any(|a| a.key == k && a.value.as_text().as_deref() == Some(v))
}

/// The newest `limit` traces of a block with a span matching `q`: (start in this block, id).
fn search_block(b: &Block, q: &TraceQuery, limit: usize) -> Result<Vec<(i64, TraceId)>, BlockError> {
    let mut out = Vec::new();
    if b.meta.max_start < q.start_ns || b.meta.min_start > q.end_ns {
        return Ok(out);
    }
    let service = match &q.service {
        Some(name) => match b.service_index(name) {
            Some(i) => Some(i),
            None => return Ok(out),
        },
        None => None,
    };
    let name = match &q.operation {
        Some(n) => match b.name_index(n) {
            Some(i) => Some(i),
            None => return Ok(out),
        },
        None => None,
    };
    if !b.durations_overlap(q.min_duration_ns, q.max_duration_ns) {
        return Ok(out);
    }
    // Tags held by each origin's resource; the rest must be in the span's attributes.
    let ntags = q.tags.len().min(64);
    let all_tags = if ntags == 64 { u64::MAX } else { (1u64 << ntags) - 1 };
    let origin_bits: Vec<u64> = (0..)
        .map_while(|o| b.origin(o))
        .map(|o| {
            q.tags
                .iter()
                .take(64)
                .enumerate()
                .filter(|(_, (k, v))| has_tag(&o.resource, k, v))
                .fold(0, |m, (t, _)| m | 1 << t)
        })
        .collect();
    // A tag no resource of the block holds must be in some span's attributes of the group.
    let any_origin = origin_bits.iter().fold(0, |m, b| m | b);
    let must_hold: Vec<u64> = q
        .tags
        .iter()
        .take(64)
        .enumerate()
        .filter(|(t, _)| any_origin & (1 << t) == 0)
        .map(|(_, (k, v))| block::attr_hash(k, v))
        .collect();
    b.scan(q.start_ns, q.end_ns, service, (q.min_duration_ns, q.max_duration_ns), &must_hold, |group, rows| {
        let span_bits = if q.tags.is_empty() { None } else { Some(group.tag_bits(&q.tags)?) };
        // Beyond 64 tags, the rest are checked on whole attributes.
        let attrs = if q.tags.len() > 64 { Some(group.attributes()?) } else { None };
        let matches = |i: usize| {
            let (st, d) = (rows.start[i], rows.duration[i]);
            if service.is_some_and(|x| x != b.origin_service(rows.origin[i]))
                || name.is_some_and(|x| x != rows.name[i])
                || q.kind.is_some_and(|k| k != rows.kind[i])
                || q.error.is_some_and(|e| e != (rows.status[i] == StatusCode::Error))
                || q.min_duration_ns.is_some_and(|m| d < m)
                || q.max_duration_ns.is_some_and(|m| d > m)
                || st < q.start_ns
                || st > q.end_ns
            {
                return false;
            }
            let bits =
                span_bits.as_ref().map_or(0, |s| s[i]) | origin_bits.get(rows.origin[i] as usize).copied().unwrap_or(0);
            bits & all_tags == all_tags
                && q.tags.iter().skip(64).all(|(k, v)| {
                    attrs.as_ref().is_some_and(|a| has_tag(&a[i], k, v))
                        || b.origin(rows.origin[i]).is_some_and(|o| has_tag(&o.resource, k, v))
                })
        };
        for &(id, from, to) in &rows.traces {
            if (from..to).any(matches) {
                let start = rows.start[from..to].iter().copied().min().unwrap_or(i64::MAX);
                out.push((start, id));
            }
        }
        Ok(())
    })?;
    out.sort_unstable_by(|a, b| b.cmp(a));
    out.truncate(limit);
    Ok(out)
}

/// Adds the service-graph edges of a block's spans starting in `[start_ns, end_ns]`.
fn block_dependencies(b: &Block, start_ns: i64, end_ns: i64, edges: &mut Edges) -> Result<(), BlockError> {
    let services = &b.meta.services;
    b.scan(start_ns, end_ns, None, (None, None), &[], |_, rows: &Rows| {
        for &(_, from, to) in &rows.traces {
            let by_id: HashMap<[u8; 8], usize> = (from..to).map(|i| (rows.span_ids[i], i)).collect();
            for i in from..to {
                if rows.start[i] < start_ns || rows.start[i] > end_ns {
                    continue;
                }
                let Some(&p) = rows.parents[i].as_ref().and_then(|p| by_id.get(p)) else { continue };
                let svc = |j: usize| services.get(b.origin_service(rows.origin[j]) as usize).map_or("", String::as_str);
                edges.add(svc(p), svc(i), rows.status[i] == StatusCode::Error, rows.duration[i]);
            }
        }
        Ok(())
    })
}

fn block_store_err(e: BlockError) -> StoreError {
    StoreError::internal("trace block", e)
}

impl TraceStore for TraceDb {
    fn append_spans(&self, tenant: &TenantId, batch: &SpanBatch) -> Result<SpanAppendReport, StoreError> {
        let mut report = SpanAppendReport::default();
        if batch.spans.is_empty() {
            return Ok(report);
        }
        let db = self.db_or_create(tenant).map_err(|e| StoreError::internal("open trace store", e))?;
        let guard = lock(&db.append);
        let spans: Vec<&Span> = batch.spans.iter().collect();
        let lsn = db
            .wal
            .write(|buf| codec::encode(buf, &spans))
            .map_err(|e| StoreError::internal("trace write-ahead log", e))?;
        {
            let now = Instant::now();
            let mut head = write(&db.head);
            for s in &batch.spans {
                if head.add(s.trace_id, Arc::new(HeadSpan::new(s)), now) {
                    report.spans_appended += 1;
                } else {
                    report.duplicates_ignored += 1;
                }
            }
        }
        drop(guard);
        db.wal.wait_durable(lsn).map_err(|e| StoreError::internal("trace write-ahead log", e))?;
        Ok(report)
    }

    fn trace(&self, tenant: &TenantId, id: &TraceId) -> Result<Vec<Span>, StoreError> {
        let Some(db) = self.db(tenant) else { return Ok(Vec::new()) };
        // Head, then flushing, then blocks (see the invariants).
        let mut spans: Vec<Span> = Vec::new();
        for h in [&db.head, &db.flushing] {
            if let Some(t) = read(h).traces.get(id) {
                spans.extend(t.spans.iter().map(|s| s.to_span(*id)));
            }
        }
        for b in db.blocks_newest_first() {
            spans.extend(b.trace(id).map_err(block_store_err)?);
        }
        spans.sort_by_key(|s| (s.start_ns, s.span_id));
        spans.dedup();
        Ok(spans)
    }

    fn search(&self, tenant: &TenantId, q: &TraceQuery) -> Result<Vec<TraceId>, StoreError> {
        let Some(db) = self.db(tenant) else { return Ok(Vec::new()) };
        let limit = if q.limit == 0 { DEFAULT_SEARCH_LIMIT } else { q.limit };
        let mut found: HashMap<TraceId, i64> = HashMap::new();
        let take = |hits: Vec<(i64, TraceId)>, found: &mut HashMap<TraceId, i64>| {
            for (start, id) in hits {
                let e = found.entry(id).or_insert(start);
                *e = (*e).min(start);
            }
        };
        take(read(&db.head).search(q, limit), &mut found);
        take(read(&db.flushing).search(q, limit), &mut found);
        for b in db.blocks_newest_first() {
            if found.len() >= limit {
                // A block whose spans all start before the limit-th newest found cannot
                // change the answer.
                let mut starts: Vec<i64> = found.values().copied().collect();
                starts.sort_unstable_by(|a, b| b.cmp(a));
                if b.meta.max_start < starts[limit - 1] {
                    break;
                }
            }
            take(search_block(&b, q, limit).map_err(block_store_err)?, &mut found);
        }
        let mut all: Vec<(i64, TraceId)> = found.into_iter().map(|(id, s)| (s, id)).collect();
        all.sort_unstable_by(|a, b| b.cmp(a));
        Ok(all.into_iter().take(limit).map(|(_, id)| id).collect())
    }

    fn services(&self, tenant: &TenantId) -> Result<Vec<String>, StoreError> {
        let Some(db) = self.db(tenant) else { return Ok(Vec::new()) };
        let mut out: BTreeSet<String> = BTreeSet::new();
        for h in [&db.head, &db.flushing] {
            out.extend(read(h).operations.keys().cloned());
        }
        for b in read(&db.blocks).iter() {
            out.extend(b.meta.services.iter().cloned());
        }
        Ok(out.into_iter().collect())
    }

    fn operations(&self, tenant: &TenantId, service: &str) -> Result<Vec<(String, SpanKind)>, StoreError> {
        let Some(db) = self.db(tenant) else { return Ok(Vec::new()) };
        let mut out: BTreeSet<(String, SpanKind)> = BTreeSet::new();
        for h in [&db.head, &db.flushing] {
            if let Some(ops) = read(h).operations.get(service) {
                out.extend(ops.iter().cloned());
            }
        }
        for b in read(&db.blocks).iter() {
            let Some(si) = b.service_index(service) else { continue };
            out.extend(
                b.meta.operations.iter().filter(|o| o.0 == si).map(|(_, n, k)| (b.meta.name(*n).to_string(), *k)),
            );
        }
        Ok(out.into_iter().collect())
    }

    fn dependencies(&self, tenant: &TenantId, start_ns: i64, end_ns: i64) -> Result<Vec<DependencyLink>, StoreError> {
        let Some(db) = self.db(tenant) else { return Ok(Vec::new()) };
        let mut edges = Edges::default();
        read(&db.head).dependencies(start_ns, end_ns, &mut edges);
        read(&db.flushing).dependencies(start_ns, end_ns, &mut edges);
        for b in db.blocks_newest_first() {
            if b.meta.max_start >= start_ns && b.meta.min_start <= end_ns {
                block_dependencies(&b, start_ns, end_ns, &mut edges).map_err(block_store_err)?;
            }
        }
        Ok(edges.0.into_values().collect())
    }
}
