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
//! Not yet (`docs/STATUS.md`): compressed blocks on disk with per-block token filters,
//! retention; memory holds every entry received since the data dir was created.

mod codec;

use periscope_model::{Labels, LogBatch, LogEntry, Matcher, TenantId};
use periscope_storage::{Direction, LogAppendReport, LogQuery, LogRejectReason, LogStore, StoreError, StreamEntries};
use periscope_wal::{replay, tenant_dirs, TenantMap, Wal, WalOptions};
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
}

impl Default for LogDbOptions {
    fn default() -> Self {
        LogDbOptions {
            wal: WalOptions::default(),
            out_of_order_window_ns: 3_600_000_000_000,
            max_line_bytes: 256 << 10,
            max_streams_per_tenant: 5000,
            creation_grace_ns: 600_000_000_000,
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
}

struct HeadStream {
    labels: Labels,
    entries: Vec<LogEntry>,
}

impl HeadStream {
    fn newest(&self) -> Option<i64> {
        self.entries.last().map(|e| e.ts_ns)
    }

    /// Inserts in time order; false for a duplicate (same time and line).
    fn insert(&mut self, e: LogEntry) -> bool {
        let from = self.entries.partition_point(|x| x.ts_ns < e.ts_ns);
        let to = from + self.entries[from..].iter().take_while(|x| x.ts_ns == e.ts_ns).count();
        if self.entries[from..to].iter().any(|x| x.line == e.line) {
            return false;
        }
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
    fn add(&mut self, labels: &Labels, e: LogEntry) -> bool {
        let i = match self.index.get(labels) {
            Some(i) => *i,
            None => {
                self.streams.push(HeadStream { labels: labels.clone(), entries: Vec::new() });
                self.index.insert(labels.clone(), self.streams.len() - 1);
                self.streams.len() - 1
            }
        };
        self.streams[i].insert(e)
    }

    fn matching<'a>(&'a self, matchers: &'a [Matcher]) -> impl Iterator<Item = &'a HeadStream> + 'a {
        self.streams.iter().filter(move |s| matchers.iter().all(|m| m.matches(s.labels.get(&m.name).unwrap_or(""))))
    }
}

struct Db {
    wal: Wal,
    head: RwLock<Head>,
    /// Serialises appends so the head applies records in WAL order.
    append: Mutex<()>,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// The log engine of every tenant under one directory.
pub struct LogDb {
    root: PathBuf,
    opts: LogDbOptions,
    dbs: TenantMap<Db>,
}

impl LogDb {
    /// Opens (and replays) every tenant under `root`.
    pub fn open(root: &Path, opts: LogDbOptions) -> Result<LogDb, LogDbError> {
        let dirs = tenant_dirs(root).map_err(|source| LogDbError::Io { op: "list", path: root.into(), source })?;
        let db = LogDb { root: root.to_path_buf(), opts, dbs: TenantMap::default() };
        for (tenant, dir) in dirs {
            let d = Db::open(&tenant, &dir, &db.opts)?;
            db.dbs.insert(tenant, d);
        }
        Ok(db)
    }

    fn db(&self, tenant: &TenantId) -> Option<Arc<Db>> {
        self.dbs.get(tenant)
    }

    fn db_or_create(&self, tenant: &TenantId) -> Result<Arc<Db>, LogDbError> {
        self.dbs.get_or_try_insert(tenant, || Db::open(tenant, &self.root.join(tenant.as_str()), &self.opts))
    }

    /// Flushes and closes every tenant's log.
    pub fn close(&self) -> Result<(), LogDbError> {
        for (tenant, d) in self.dbs.all() {
            d.wal.close().map_err(|source| LogDbError::Wal { tenant: tenant.to_string(), source })?;
        }
        Ok(())
    }
}

impl Db {
    fn open(tenant: &TenantId, dir: &Path, opts: &LogDbOptions) -> Result<Db, LogDbError> {
        let wal_dir = dir.join("wal");
        std::fs::create_dir_all(&wal_dir).map_err(|source| LogDbError::Io {
            op: "create",
            path: wal_dir.clone(),
            source,
        })?;
        let mut head = Head::default();
        let wal_err = |source| LogDbError::Wal { tenant: tenant.to_string(), source };
        let replayed = replay(&wal_dir, 0, |segment, payload| {
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
        Ok(Db { wal, head: RwLock::new(head), append: Mutex::new(()) })
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
        let head = read(&db.head);
        // (ts, stream, entry) of every candidate, then the first `limit` in the direction.
        let streams: Vec<&HeadStream> = head.matching(&q.matchers).collect();
        let mut picked: Vec<(i64, usize, &LogEntry)> = Vec::new();
        for (si, s) in streams.iter().enumerate() {
            for e in s.range(q.start_ns, q.end_ns) {
                if q.line_filters.iter().all(|f| f.matches(&e.line)) {
                    picked.push((e.ts_ns, si, e));
                }
            }
        }
        match q.direction {
            Direction::Forward => picked.sort_by_key(|p| (p.0, p.1)),
            Direction::Backward => picked.sort_by_key(|p| (std::cmp::Reverse(p.0), p.1)),
        }
        if q.limit > 0 {
            picked.truncate(q.limit);
        }
        let mut out: Vec<StreamEntries> = Vec::new();
        let mut slot: HashMap<usize, usize> = HashMap::new();
        for (_, si, e) in picked {
            let i = *slot.entry(si).or_insert_with(|| {
                out.push(StreamEntries { labels: streams[si].labels.clone(), entries: Vec::new() });
                out.len() - 1
            });
            out[i].entries.push(e.clone());
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
        let head = read(&db.head);
        let mut out: Vec<Labels> = head
            .matching(matchers)
            .filter(|s| !s.range(start_ns, end_ns).is_empty())
            .map(|s| s.labels.clone())
            .collect();
        out.sort();
        Ok(out)
    }
}
