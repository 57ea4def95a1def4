//! The embedded log engine, first stage: entries go through a per-tenant write-ahead log (the
//! metrics engine's `periscope-wal`, records in `codec`'s format) into an in-memory head of
//! streams, each holding its entries in time order. An acknowledged entry survives `kill -9`
//! (replay on open).
//!
//! Rules, as Loki 3 applies them: an entry older than its stream's newest by more than the
//! out-of-order window, newer than the server's clock plus the grace period, or longer than
//! the line limit is refused (the rest of the batch is stored); a new stream beyond the
//! tenant's stream limit is refused; an entry equal to a stored one (same stream, time and
//! line) is dropped as a duplicate.
//!
//! Invariants: an entry is in the head only after its WAL record was written (only accepted
//! entries are logged, so replay applies records without checking them again); a stream's
//! entries are sorted by time, equal times in arrival order.
//!
//! Blocks (`block`): every maintenance pass, a stream's entries that can no longer be joined
//! by an out-of-order entry (older than its newest minus the window), and all entries of
//! streams idle for `idle`, move to `flushing` and are written as a block once
//! `max_block_entries` wait or the last block is `max_block_age` old; then the head as it was
//! at the WAL cut is written as `wal/checkpoint.N` and older segments deleted (as in the trace
//! engine). Readers take head, flushing, blocks in that order and drop duplicates (same
//! stream, time and line). Retention deletes blocks by time and size.

mod block;
mod codec;

use periscope_model::{Labels, LogBatch, LogEntry, Matcher, TenantId};
use periscope_storage::{Direction, LogAppendReport, LogQuery, LogRejectReason, LogStore, StoreError, StreamEntries};
use periscope_wal::{
    expire_blocks, remove_unfinished_checkpoints, replay_checkpointed, tenant_dirs, write_checkpoint, Periodic,
    TenantMap, Wal, WalOptions,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct LogDbOptions {
    pub wal: WalOptions,
    /// How far behind its stream's newest entry an entry may be (Loki 3: half of
    /// `max_chunk_age`, 1 h).
    pub out_of_order_window_ns: i64,
    /// Longest line accepted (Loki's `max_line_size`, 256 KiB); 0: no limit.
    pub max_line_bytes: usize,
    /// Most streams per tenant (Loki's `max_global_streams_per_user`, 5000); 0: no limit.
    pub max_streams_per_tenant: usize,
    /// How far ahead of the server's clock an entry may be (Loki's `creation_grace_period`).
    pub creation_grace_ns: i64,
    /// A stream without new entries for this long has all its entries cut into the next block.
    pub idle: std::time::Duration,
    /// Entries wait at most this long for their block.
    pub max_block_age: std::time::Duration,
    /// A block is written at once when this many entries wait.
    pub max_block_entries: usize,
    /// Blocks whose newest entry is older than this behind the tenant's newest are deleted;
    /// zero keeps everything.
    pub retention_time: std::time::Duration,
    /// Oldest blocks are deleted while a tenant's blocks take more bytes; zero: no limit.
    pub retention_size: u64,
    /// How often the background thread cuts blocks and applies retention; zero: never.
    pub maintenance_interval: std::time::Duration,
}

impl Default for LogDbOptions {
    fn default() -> Self {
        LogDbOptions {
            wal: WalOptions::default(),
            out_of_order_window_ns: 3_600_000_000_000,
            max_line_bytes: 256 << 10,
            max_streams_per_tenant: 5000,
            creation_grace_ns: 600_000_000_000,
            idle: std::time::Duration::from_secs(30 * 60),
            max_block_age: std::time::Duration::from_secs(5 * 60),
            max_block_entries: 200_000,
            retention_time: std::time::Duration::ZERO,
            retention_size: 0,
            maintenance_interval: std::time::Duration::ZERO,
        }
    }
}

/// Errors opening the engine.
#[derive(Debug, thiserror::Error)]
pub enum LogDbError {
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("log write-ahead log of tenant {tenant}")]
    Wal {
        tenant: String,
        #[source]
        source: periscope_wal::WalError,
    },
    #[error("log write-ahead log of tenant {tenant}, segment {segment}")]
    Replay {
        tenant: String,
        segment: u32,
        #[source]
        source: codec::CodecError,
    },
    #[error("log write-ahead log checkpoint of tenant {tenant}")]
    Checkpoint {
        tenant: String,
        #[source]
        source: periscope_wal::CheckpointError,
    },
    #[error("log blocks of tenant {tenant}")]
    Block {
        tenant: String,
        #[source]
        source: block::BlockError,
    },
}

struct HeadStream {
    labels: Labels,
    entries: Vec<LogEntry>,
    /// The newest entry ever accepted (entries may have moved to blocks since).
    newest: Option<i64>,
    /// When an entry last arrived.
    touched: std::time::Instant,
}

impl HeadStream {
    fn newest(&self) -> Option<i64> {
        self.newest
    }

    /// Inserts in time order; false for a duplicate (same time and line).
    fn insert(&mut self, e: LogEntry) -> bool {
        let from = self.entries.partition_point(|x| x.ts_ns < e.ts_ns);
        let to = from + self.entries[from..].iter().take_while(|x| x.ts_ns == e.ts_ns).count();
        if self.entries[from..to].iter().any(|x| x.line == e.line) {
            return false;
        }
        self.newest = Some(self.newest.map_or(e.ts_ns, |n| n.max(e.ts_ns)));
        self.touched = std::time::Instant::now();
        self.entries.insert(to, e);
        true
    }

    /// The entries with `start <= ts < end`.
    fn range(&self, start: i64, end: i64) -> &[LogEntry] {
        let a = self.entries.partition_point(|x| x.ts_ns < start);
        let b = self.entries.partition_point(|x| x.ts_ns < end);
        &self.entries[a..b.max(a)]
    }
}

#[derive(Default)]
struct Head {
    streams: Vec<HeadStream>,
    index: HashMap<Labels, usize>,
}

impl Head {
    fn stream(&mut self, labels: &Labels) -> &mut HeadStream {
        let i = match self.index.get(labels) {
            Some(i) => *i,
            None => {
                self.streams.push(HeadStream {
                    labels: labels.clone(),
                    entries: Vec::new(),
                    newest: None,
                    touched: std::time::Instant::now(),
                });
                self.index.insert(labels.clone(), self.streams.len() - 1);
                self.streams.len() - 1
            }
        };
        &mut self.streams[i]
    }

    fn add(&mut self, labels: &Labels, e: LogEntry) -> bool {
        self.stream(labels).insert(e)
    }

    fn entries(&self) -> usize {
        self.streams.iter().map(|s| s.entries.len()).sum()
    }

    fn matching<'a>(&'a self, matchers: &'a [Matcher]) -> impl Iterator<Item = &'a HeadStream> + 'a {
        self.streams.iter().filter(move |s| matchers.iter().all(|m| m.matches(s.labels.get(&m.name).unwrap_or(""))))
    }
}

struct Db {
    tenant: TenantId,
    dir: PathBuf,
    wal: Wal,
    head: RwLock<Head>,
    /// Entries being written to a block, served until the block is open.
    flushing: RwLock<Head>,
    /// Open blocks, oldest first (by newest entry).
    blocks: RwLock<Vec<Arc<block::Block>>>,
    /// Serialises appends so the head applies records in WAL order.
    append: Mutex<()>,
    /// Serialises maintenance; holds when the last block was written.
    maintain: Mutex<std::time::Instant>,
}

fn lock<T>(l: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    l.lock().unwrap_or_else(|p| p.into_inner())
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// Counters of the engine, for `/metrics`.
#[derive(Debug, Default)]
pub struct LogDbStats {
    pub blocks_written: std::sync::atomic::AtomicU64,
    pub blocks_deleted: std::sync::atomic::AtomicU64,
    pub maintenance_failures: std::sync::atomic::AtomicU64,
}

/// The log engine of every tenant under one directory.
pub struct LogDb {
    root: PathBuf,
    opts: LogDbOptions,
    dbs: Arc<TenantMap<Db>>,
    stats: Arc<LogDbStats>,
    maintenance: Periodic,
}

impl LogDb {
    /// Opens (and replays) every tenant under `root`; starts the maintenance thread when
    /// `maintenance_interval` is set.
    pub fn open(root: &Path, opts: LogDbOptions) -> Result<LogDb, LogDbError> {
        let dirs = tenant_dirs(root).map_err(|source| LogDbError::Io { op: "list", path: root.into(), source })?;
        let dbs = Arc::new(TenantMap::default());
        for (tenant, dir) in dirs {
            let d = Db::open(&tenant, &dir, &opts)?;
            dbs.insert(tenant, d);
        }
        let stats = Arc::new(LogDbStats::default());
        let (d, st, o) = (dbs.clone(), stats.clone(), opts.clone());
        let maintenance = Periodic::start("log-maintenance", opts.maintenance_interval, move || {
            for (tenant, db) in d.all() {
                if let Err(e) = db.maintain(&o, &st, false) {
                    st.maintenance_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::error!(%tenant, error = %periscope_model::error_chain(&e), "log maintenance failed");
                }
            }
        })
        .map_err(|source| LogDbError::Io { op: "start maintenance thread for", path: root.into(), source })?;
        Ok(LogDb { root: root.to_path_buf(), opts, dbs, stats, maintenance })
    }

    /// Runs maintenance for every tenant now: cuts a block when one is due (with `force`, of
    /// every entry in the head), then applies retention.
    pub fn maintain(&self, force: bool) -> Result<(), LogDbError> {
        for (_, db) in self.dbs.all() {
            db.maintain(&self.opts, &self.stats, force)?;
        }
        Ok(())
    }

    /// The engine's own metrics in Prometheus text format.
    pub fn write_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        use std::sync::atomic::Ordering::Relaxed;
        let (mut blocks, mut bytes, mut entries, mut head) = (0u64, 0u64, 0u64, 0u64);
        for (_, d) in self.dbs.all() {
            for b in read(&d.blocks).iter() {
                blocks += 1;
                bytes += b.size;
                entries += b.entries;
            }
            head += (read(&d.head).entries() + read(&d.flushing).entries()) as u64;
        }
        for (name, kind, help, v) in [
            ("periscope_logs_blocks", "gauge", "Log blocks on disk.", blocks),
            ("periscope_logs_block_bytes", "gauge", "Bytes of the log blocks on disk.", bytes),
            ("periscope_logs_block_entries", "gauge", "Entries in log blocks.", entries),
            ("periscope_logs_head_entries", "gauge", "Entries in memory, not yet in a block.", head),
            (
                "periscope_logs_blocks_written_total",
                "counter",
                "Log blocks written.",
                self.stats.blocks_written.load(Relaxed),
            ),
            (
                "periscope_logs_blocks_deleted_total",
                "counter",
                "Log blocks deleted by retention.",
                self.stats.blocks_deleted.load(Relaxed),
            ),
            (
                "periscope_logs_maintenance_failures_total",
                "counter",
                "Failed log maintenance runs.",
                self.stats.maintenance_failures.load(Relaxed),
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        }
    }

    fn db(&self, tenant: &TenantId) -> Option<Arc<Db>> {
        self.dbs.get(tenant)
    }

    fn db_or_create(&self, tenant: &TenantId) -> Result<Arc<Db>, LogDbError> {
        self.dbs.get_or_try_insert(tenant, || Db::open(tenant, &self.root.join(tenant.as_str()), &self.opts))
    }

    /// Stops maintenance, flushes and closes every tenant's log.
    pub fn close(&self) -> Result<(), LogDbError> {
        self.maintenance.stop();
        for (tenant, d) in self.dbs.all() {
            d.wal.close().map_err(|source| LogDbError::Wal { tenant: tenant.to_string(), source })?;
        }
        Ok(())
    }
}

impl Db {
    fn open(tenant: &TenantId, dir: &Path, opts: &LogDbOptions) -> Result<Db, LogDbError> {
        let wal_dir = dir.join("wal");
        let blocks_dir = dir.join("blocks");
        for d in [&wal_dir, &blocks_dir] {
            std::fs::create_dir_all(d).map_err(|source| LogDbError::Io { op: "create", path: d.clone(), source })?;
        }
        let block_err = |source| LogDbError::Block { tenant: tenant.to_string(), source };
        let mut blocks = Vec::new();
        for p in periscope_wal::block_file::list(&blocks_dir, "lblk").map_err(block_err)? {
            blocks.push(Arc::new(block::Block::open(&p).map_err(block_err)?));
        }
        blocks.sort_by_key(|b| (b.max_ts, b.min_ts));
        remove_unfinished_checkpoints(&wal_dir);
        let mut head = Head::default();
        // Streams that live only in blocks still count, with their newest entry.
        for b in &blocks {
            for s in &b.streams {
                if let Some(max) = s.pages.iter().map(|p| p.max_ts).max() {
                    let st = head.stream(&s.labels);
                    st.newest = Some(st.newest.map_or(max, |n| n.max(max)));
                }
            }
        }
        let wal_err = |source| LogDbError::Wal { tenant: tenant.to_string(), source };
        let replayed = replay_checkpointed(&wal_dir, |_, segment, payload| {
            for s in codec::decode(payload).map_err(|e| (segment, e))?.streams {
                for e in s.entries {
                    head.add(&s.labels, e);
                }
            }
            Ok(())
        })
        .map_err(wal_err)?;
        if let Err((segment, source)) = replayed {
            return Err(LogDbError::Replay { tenant: tenant.to_string(), segment, source });
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
            maintain: Mutex::new(std::time::Instant::now()),
        })
    }

    fn maintain(&self, opts: &LogDbOptions, stats: &LogDbStats, force: bool) -> Result<(), LogDbError> {
        let mut last = lock(&self.maintain);
        let now = std::time::Instant::now();
        let sealed = |s: &HeadStream| -> usize {
            if force || now.duration_since(s.touched) >= opts.idle {
                return s.entries.len();
            }
            let cut = s.newest.unwrap_or(i64::MIN).saturating_sub(opts.out_of_order_window_ns);
            s.entries.partition_point(|e| e.ts_ns <= cut)
        };
        let waiting: usize = read(&self.head).streams.iter().map(sealed).sum();
        let due = force || waiting >= opts.max_block_entries || now.duration_since(*last) >= opts.max_block_age;
        if waiting > 0 && due {
            self.cut(sealed, stats)?;
            *last = now;
        }
        self.apply_retention(opts, stats)
    }

    /// Moves the sealed entries of every stream into a block, then checkpoints the WAL.
    fn cut(&self, sealed: impl Fn(&HeadStream) -> usize, stats: &LogDbStats) -> Result<(), LogDbError> {
        let wal_err = |source| LogDbError::Wal { tenant: self.tenant.to_string(), source };
        let (seg, remaining) = {
            let _a = lock(&self.append);
            let seg = self.wal.cut().map_err(wal_err)?;
            let mut head = write(&self.head);
            let mut flushing = write(&self.flushing);
            for s in head.streams.iter_mut() {
                let n = sealed(s);
                if n > 0 {
                    let moved: Vec<LogEntry> = s.entries.drain(..n).collect();
                    let f = flushing.stream(&s.labels);
                    f.entries.extend(moved);
                }
            }
            let remaining: Vec<(Labels, Vec<LogEntry>)> = head
                .streams
                .iter()
                .filter(|s| !s.entries.is_empty())
                .map(|s| (s.labels.clone(), s.entries.clone()))
                .collect();
            (seg, remaining)
        };
        // Written from the flushing streams in place (only this thread changes them).
        let written = {
            let f = read(&self.flushing);
            let streams: Vec<(&Labels, &[LogEntry])> =
                f.streams.iter().filter(|s| !s.entries.is_empty()).map(|s| (&s.labels, s.entries.as_slice())).collect();
            block::write_block(&self.dir.join("blocks"), &streams)
        };
        match written {
            Ok(b) => {
                tracing::info!(tenant = %self.tenant, block = %b.path.display(), entries = b.entries, bytes = b.size, "wrote log block");
                let mut blocks = write(&self.blocks);
                blocks.push(Arc::new(b));
                blocks.sort_by_key(|b| (b.max_ts, b.min_ts));
                *write(&self.flushing) = Head::default();
                stats.blocks_written.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Err(source) => {
                let back = std::mem::take(&mut *write(&self.flushing));
                let mut head = write(&self.head);
                for s in back.streams {
                    for e in s.entries {
                        head.add(&s.labels, e);
                    }
                }
                return Err(LogDbError::Block { tenant: self.tenant.to_string(), source });
            }
        }
        self.checkpoint(seg, &remaining)
    }

    fn checkpoint(&self, seg: u32, streams: &[(Labels, Vec<LogEntry>)]) -> Result<(), LogDbError> {
        write_checkpoint(&self.wal, seg, |cp| {
            for (labels, entries) in streams {
                for part in entries.chunks(2000) {
                    let rec = [(labels, part.iter().collect::<Vec<_>>())];
                    cp.log(|b| codec::encode(b, &rec))?;
                }
            }
            Ok(())
        })
        .map_err(|source| LogDbError::Checkpoint { tenant: self.tenant.to_string(), source })
    }

    fn apply_retention(&self, opts: &LogDbOptions, stats: &LogDbStats) -> Result<(), LogDbError> {
        let doomed = {
            let mut blocks = write(&self.blocks);
            let newest = blocks
                .iter()
                .map(|b| b.max_ts)
                .chain(read(&self.head).streams.iter().filter_map(|s| s.newest))
                .max()
                .unwrap_or(i64::MIN);
            let retention_ns = opts.retention_time.as_nanos().min(i64::MAX as u128) as i64;
            expire_blocks(&mut blocks, newest, retention_ns, opts.retention_size, |b| b.max_ts, |b| b.size)
        };
        for b in doomed {
            std::fs::remove_file(&b.path).map_err(|source| LogDbError::Io {
                op: "delete",
                path: b.path.clone(),
                source,
            })?;
            stats.blocks_deleted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Counts a refusal, keeping the first message of each reason.
fn refuse(report: &mut LogAppendReport, reason: LogRejectReason, msg: impl FnOnce() -> String) {
    match report.rejected.iter_mut().find(|r| r.0 == reason) {
        Some(r) => r.1 += 1,
        None => report.rejected.push((reason, 1, msg())),
    }
}

impl LogStore for LogDb {
    fn append_logs(&self, tenant: &TenantId, batch: &LogBatch) -> Result<LogAppendReport, StoreError> {
        let mut report = LogAppendReport::default();
        if batch.entries() == 0 {
            return Ok(report);
        }
        let db = self.db_or_create(tenant).map_err(|e| StoreError::internal("open log store", e))?;
        let guard = db.append.lock().unwrap_or_else(|p| p.into_inner());
        let o = &self.opts;
        let now = now_ns();
        // Decide what is accepted against the head as it is (appends are serialised).
        let accepted: Vec<(&Labels, Vec<&LogEntry>)> = {
            let head = read(&db.head);
            let mut new_streams: HashMap<&Labels, i64> = HashMap::new();
            let mut out = Vec::new();
            for s in &batch.streams {
                let known = head.index.get(&s.labels).map(|i| &head.streams[*i]);
                let mut newest = known.and_then(HeadStream::newest).or_else(|| new_streams.get(&s.labels).copied());
                if known.is_none() && !new_streams.contains_key(&s.labels) {
                    let count = head.streams.len() + new_streams.len();
                    if o.max_streams_per_tenant > 0 && count >= o.max_streams_per_tenant {
                        for _ in &s.entries {
                            refuse(&mut report, LogRejectReason::StreamLimit, || {
                                format!(
                                    "Maximum active stream limit exceeded, reduce the number of active streams (reduce labels or reduce label values), or contact your Loki administrator to see if the limit can be increased, user: '{tenant}'"
                                )
                            });
                        }
                        continue;
                    }
                    new_streams.insert(&s.labels, i64::MIN);
                    report.streams_created += 1;
                }
                let mut keep = Vec::with_capacity(s.entries.len());
                for e in &s.entries {
                    if o.max_line_bytes > 0 && e.line.len() > o.max_line_bytes {
                        refuse(&mut report, LogRejectReason::LineTooLong, || {
                            format!(
                                "Max entry size '{}' bytes exceeded for stream '{}' while adding an entry with length '{}' bytes",
                                o.max_line_bytes,
                                s.labels,
                                e.line.len()
                            )
                        });
                    } else if e.ts_ns > now.saturating_add(o.creation_grace_ns) {
                        refuse(&mut report, LogRejectReason::TooFarInFuture, || {
                            format!("entry for stream '{}' has timestamp too new: {}", s.labels, e.ts_ns)
                        });
                    } else if newest.is_some_and(|n| e.ts_ns < n.saturating_sub(o.out_of_order_window_ns)) {
                        refuse(&mut report, LogRejectReason::TooOld, || {
                            format!(
                                "entry too far behind, entry timestamp is: {}, oldest acceptable timestamp is: {}",
                                e.ts_ns,
                                newest.unwrap_or(0).saturating_sub(o.out_of_order_window_ns)
                            )
                        });
                    } else {
                        newest = Some(newest.map_or(e.ts_ns, |n| n.max(e.ts_ns)));
                        keep.push(e);
                    }
                }
                if let Some(n) = newest {
                    if let Some(v) = new_streams.get_mut(&s.labels) {
                        *v = n;
                    }
                }
                if !keep.is_empty() {
                    out.push((&s.labels, keep));
                }
            }
            out
        };
        if accepted.is_empty() {
            return Ok(report);
        }
        let lsn = db
            .wal
            .write(|buf| codec::encode(buf, &accepted))
            .map_err(|e| StoreError::internal("log write-ahead log", e))?;
        {
            let mut head = write(&db.head);
            for (labels, entries) in &accepted {
                for e in entries {
                    if head.add(labels, (*e).clone()) {
                        report.entries_appended += 1;
                    } else {
                        report.duplicates_ignored += 1;
                    }
                }
            }
        }
        drop(guard);
        db.wal.wait_durable(lsn).map_err(|e| StoreError::internal("log write-ahead log", e))?;
        Ok(report)
    }

    fn select_logs(&self, tenant: &TenantId, q: &LogQuery) -> Result<Vec<StreamEntries>, StoreError> {
        let Some(db) = self.db(tenant) else { return Ok(Vec::new()) };
        let keep = |e: &LogEntry| {
            q.line_filters.iter().all(|f| f.matches(&e.line))
                && q.trace_id.as_deref().is_none_or(|id| e.metadata("trace_id") == Some(id))
        };
        // Head, then flushing, then blocks (see the invariants); entries per stream.
        let mut by_stream: std::collections::BTreeMap<Labels, Vec<LogEntry>> = std::collections::BTreeMap::new();
        for h in [&db.head, &db.flushing] {
            let h = read(h);
            for s in h.matching(&q.matchers) {
                let picked: Vec<LogEntry> = s.range(q.start_ns, q.end_ns).iter().filter(|e| keep(e)).cloned().collect();
                if !picked.is_empty() {
                    by_stream.entry(s.labels.clone()).or_default().extend(picked);
                }
            }
        }
        // Pages that cannot hold a `|=` needle's whole tokens are skipped unread.
        let required: Vec<u64> = q
            .line_filters
            .iter()
            .filter_map(|f| match f {
                periscope_storage::LineFilter::Contains(n) => Some(block::needle_tokens(n)),
                _ => None,
            })
            .flatten()
            .map(block::token_hash)
            .chain(q.trace_id.as_deref().map(block::trace_hash))
            .collect();
        let blocks: Vec<Arc<block::Block>> = read(&db.blocks).clone();
        for b in blocks.iter().filter(|b| b.max_ts >= q.start_ns && b.min_ts < q.end_ns) {
            for st in &b.streams {
                if !q.matchers.iter().all(|m| m.matches(st.labels.get(&m.name).unwrap_or(""))) {
                    continue;
                }
                for p in st.pages.iter().filter(|p| p.max_ts >= q.start_ns && p.min_ts < q.end_ns) {
                    if !p.may_hold(&required) {
                        continue;
                    }
                    let entries = b.page(p).map_err(|e| StoreError::internal("log block", e))?;
                    let picked: Vec<LogEntry> = entries
                        .into_iter()
                        .filter(|e| e.ts_ns >= q.start_ns && e.ts_ns < q.end_ns && keep(e))
                        .collect();
                    if !picked.is_empty() {
                        by_stream.entry(st.labels.clone()).or_default().extend(picked);
                    }
                }
            }
        }
        // Per stream: time order, duplicates (same time and line) once.
        let mut streams: Vec<(Labels, Vec<LogEntry>)> = by_stream.into_iter().collect();
        for (_, entries) in streams.iter_mut() {
            entries.sort_by(|a, b| a.ts_ns.cmp(&b.ts_ns).then_with(|| a.line.cmp(&b.line)));
            entries.dedup_by(|a, b| a.ts_ns == b.ts_ns && a.line == b.line);
        }
        // (ts, stream, entry) of every candidate, then the first `limit` in the direction.
        let mut picked: Vec<(i64, usize, usize)> = Vec::new();
        for (si, (_, entries)) in streams.iter().enumerate() {
            picked.extend(entries.iter().enumerate().map(|(ei, e)| (e.ts_ns, si, ei)));
        }
        match q.direction {
            Direction::Forward => picked.sort_by_key(|p| (p.0, p.1, p.2)),
            Direction::Backward => picked.sort_by_key(|p| (std::cmp::Reverse(p.0), p.1, std::cmp::Reverse(p.2))),
        }
        if q.limit > 0 {
            picked.truncate(q.limit);
        }
        let mut out: Vec<StreamEntries> = Vec::new();
        let mut slot: HashMap<usize, usize> = HashMap::new();
        for (_, si, ei) in picked {
            let i = *slot.entry(si).or_insert_with(|| {
                out.push(StreamEntries { labels: streams[si].0.clone(), entries: Vec::new() });
                out.len() - 1
            });
            out[i].entries.push(streams[si].1[ei].clone());
        }
        Ok(out)
    }

    fn log_streams(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<Labels>, StoreError> {
        let Some(db) = self.db(tenant) else { return Ok(Vec::new()) };
        let mut out: std::collections::BTreeSet<Labels> = std::collections::BTreeSet::new();
        for h in [&db.head, &db.flushing] {
            let h = read(h);
            out.extend(
                h.matching(matchers).filter(|s| !s.range(start_ns, end_ns).is_empty()).map(|s| s.labels.clone()),
            );
        }
        for b in read(&db.blocks).iter().filter(|b| b.max_ts >= start_ns && b.min_ts < end_ns) {
            out.extend(
                b.streams
                    .iter()
                    .filter(|st| matchers.iter().all(|m| m.matches(st.labels.get(&m.name).unwrap_or(""))))
                    .filter(|st| st.pages.iter().any(|p| p.max_ts >= start_ns && p.min_ts < end_ns))
                    .map(|st| st.labels.clone()),
            );
        }
        Ok(out.into_iter().collect())
    }
}
