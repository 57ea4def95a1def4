//! The embedded trace engine, first stage: spans go through a per-tenant write-ahead log (the
//! metrics engine's `periscope-wal`, records in `codec`'s format) into an in-memory head
//! indexed by trace id, by trace start time and by service → operations. An acknowledged span
//! survives `kill -9` (replay on open).
//!
//! Invariants:
//! - A span is in the head only after its WAL record was written; replay rebuilds the same
//!   head (exact duplicates — same trace, span id and content — are stored once).
//! - A trace's spans are kept in start-time order; a trace's start is its earliest span's.
//!
//! Not yet (see `docs/STATUS.md`): columnar blocks on disk, retention, limits; memory holds
//! every span received since the data dir was created.

mod codec;

use periscope_model::{Span, SpanBatch, SpanKind, StatusCode, TenantId, TraceId};
use periscope_storage::{DependencyLink, SpanAppendReport, StoreError, TraceQuery, TraceStore};
use periscope_wal::{replay, Wal, WalOptions};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

/// Traces a search returns when the query sets no limit (Jaeger's default is 20).
pub const DEFAULT_SEARCH_LIMIT: usize = 20;

/// How the engine runs.
#[derive(Debug, Clone, Default)]
pub struct TraceDbOptions {
    pub wal: WalOptions,
}

/// Errors opening the engine.
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
}

/// The trace engine of every tenant under one directory.
pub struct TraceDb {
    root: PathBuf,
    opts: TraceDbOptions,
    dbs: RwLock<HashMap<TenantId, Arc<Db>>>,
}

struct Trace {
    start: i64,
    spans: Vec<Arc<Span>>,
}

#[derive(Default)]
struct Head {
    traces: HashMap<TraceId, Trace>,
    /// (trace start, trace id) of every trace.
    by_start: BTreeSet<(i64, TraceId)>,
    operations: BTreeMap<String, BTreeSet<(String, SpanKind)>>,
}

impl Head {
    /// Adds a span; false when an equal span is already stored.
    fn add(&mut self, span: Arc<Span>) -> bool {
        let t = self.traces.entry(span.trace_id).or_insert_with(|| Trace { start: span.start_ns, spans: Vec::new() });
        if t.spans.iter().any(|s| s.span_id == span.span_id && **s == *span) {
            return false;
        }
        if t.spans.is_empty() || span.start_ns < t.start {
            self.by_start.remove(&(t.start, span.trace_id));
            t.start = if t.spans.is_empty() { span.start_ns } else { t.start.min(span.start_ns) };
        }
        self.by_start.insert((t.start, span.trace_id));
        let i = t.spans.partition_point(|s| s.start_ns <= span.start_ns);
        self.operations.entry(span.service_name().to_string()).or_default().insert((span.name.clone(), span.kind));
        t.spans.insert(i, span);
        true
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

impl TraceDb {
    /// Opens (and replays) every tenant under `root`.
    pub fn open(root: &Path, opts: TraceDbOptions) -> Result<TraceDb, TraceDbError> {
        std::fs::create_dir_all(root).map_err(|source| TraceDbError::Io { op: "create", path: root.into(), source })?;
        let db = TraceDb { root: root.to_path_buf(), opts, dbs: RwLock::new(HashMap::new()) };
        let entries =
            std::fs::read_dir(root).map_err(|source| TraceDbError::Io { op: "list", path: root.into(), source })?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Ok(tenant) = TenantId::new(&name) {
                let d = Db::open(&tenant, &e.path(), &db.opts)?;
                write(&db.dbs).insert(tenant, Arc::new(d));
            }
        }
        Ok(db)
    }

    fn db(&self, tenant: &TenantId) -> Option<Arc<Db>> {
        read(&self.dbs).get(tenant).cloned()
    }

    fn db_or_create(&self, tenant: &TenantId) -> Result<Arc<Db>, TraceDbError> {
        if let Some(d) = self.db(tenant) {
            return Ok(d);
        }
        let mut dbs = write(&self.dbs);
        if let Some(d) = dbs.get(tenant) {
            return Ok(d.clone());
        }
        let d = Arc::new(Db::open(tenant, &self.root.join(tenant.as_str()), &self.opts)?);
        dbs.insert(tenant.clone(), d.clone());
        Ok(d)
    }

    /// Flushes and closes every tenant's log.
    pub fn close(&self) -> Result<(), TraceDbError> {
        for (tenant, d) in read(&self.dbs).iter() {
            d.wal.close().map_err(|source| TraceDbError::Wal { tenant: tenant.to_string(), source })?;
        }
        Ok(())
    }
}

impl Db {
    fn open(tenant: &TenantId, dir: &Path, opts: &TraceDbOptions) -> Result<Db, TraceDbError> {
        let wal_dir = dir.join("wal");
        std::fs::create_dir_all(&wal_dir).map_err(|source| TraceDbError::Io {
            op: "create",
            path: wal_dir.clone(),
            source,
        })?;
        let mut head = Head::default();
        let wal_err = |source| TraceDbError::Wal { tenant: tenant.to_string(), source };
        let replayed = replay(&wal_dir, 0, |segment, payload| {
            for s in codec::decode(payload).map_err(|e| (segment, e))? {
                head.add(Arc::new(s));
            }
            Ok(())
        })
        .map_err(wal_err)?;
        if let Err((segment, source)) = replayed {
            return Err(TraceDbError::Replay { tenant: tenant.to_string(), segment, source });
        }
        let wal = Wal::open(&wal_dir, opts.wal.clone()).map_err(wal_err)?;
        Ok(Db { wal, head: RwLock::new(head), append: Mutex::new(()) })
    }
}

/// Whether a span satisfies the span filters of `q`.
fn span_matches(s: &Span, q: &TraceQuery) -> bool {
    if q.service.as_deref().is_some_and(|x| x != s.service_name())
        || q.operation.as_deref().is_some_and(|x| x != s.name)
        || q.kind.is_some_and(|k| k != s.kind)
        || q.error.is_some_and(|e| e != (s.status == StatusCode::Error))
        || q.min_duration_ns.is_some_and(|d| s.duration_ns() < d)
        || q.max_duration_ns.is_some_and(|d| s.duration_ns() > d)
        || s.start_ns < q.start_ns
        || s.start_ns > q.end_ns
    {
        return false;
    }
    q.tags.iter().all(|(k, v)| {
        let has = |attrs: &[periscope_model::Attribute]| {
            attrs.iter().any(|a| a.key == *k && a.value.as_text().as_deref() == Some(v.as_str()))
        };
        has(&s.attributes) || has(&s.origin.resource)
    })
}

impl TraceStore for TraceDb {
    fn append_spans(&self, tenant: &TenantId, batch: &SpanBatch) -> Result<SpanAppendReport, StoreError> {
        let mut report = SpanAppendReport::default();
        if batch.spans.is_empty() {
            return Ok(report);
        }
        let db = self.db_or_create(tenant).map_err(|e| StoreError::internal("open trace store", e))?;
        let guard = db.append.lock().unwrap_or_else(|p| p.into_inner());
        let spans: Vec<&Span> = batch.spans.iter().collect();
        let written = db.wal.write_checked(|buf| {
            codec::encode(buf, &spans);
            Ok::<(), std::convert::Infallible>(())
        });
        let lsn = match written {
            Ok(Ok(((), lsn))) => lsn,
            Ok(Err(never)) => match never {},
            Err(e) => return Err(StoreError::internal("trace write-ahead log", e)),
        };
        {
            let mut head = write(&db.head);
            for s in &batch.spans {
                if head.add(Arc::new(s.clone())) {
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
        let head = read(&db.head);
        Ok(head.traces.get(id).map(|t| t.spans.iter().map(|s| (**s).clone()).collect()).unwrap_or_default())
    }

    fn search(&self, tenant: &TenantId, q: &TraceQuery) -> Result<Vec<TraceId>, StoreError> {
        let Some(db) = self.db(tenant) else { return Ok(Vec::new()) };
        let limit = if q.limit == 0 { DEFAULT_SEARCH_LIMIT } else { q.limit };
        let head = read(&db.head);
        let mut out = Vec::new();
        // Newest traces first; a trace that starts after the range cannot match.
        for (_, id) in head.by_start.range(..=(q.end_ns, [0xff; 16])).rev() {
            let Some(t) = head.traces.get(id) else { continue };
            if t.spans.iter().any(|s| span_matches(s, q)) {
                out.push(*id);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn services(&self, tenant: &TenantId) -> Result<Vec<String>, StoreError> {
        let Some(db) = self.db(tenant) else { return Ok(Vec::new()) };
        let head = read(&db.head);
        Ok(head.operations.keys().cloned().collect())
    }

    fn operations(&self, tenant: &TenantId, service: &str) -> Result<Vec<(String, SpanKind)>, StoreError> {
        let Some(db) = self.db(tenant) else { return Ok(Vec::new()) };
        let head = read(&db.head);
        Ok(head.operations.get(service).map(|o| o.iter().cloned().collect()).unwrap_or_default())
    }

    fn dependencies(&self, tenant: &TenantId, start_ns: i64, end_ns: i64) -> Result<Vec<DependencyLink>, StoreError> {
        let Some(db) = self.db(tenant) else { return Ok(Vec::new()) };
        let head = read(&db.head);
        let mut edges: BTreeMap<(String, String), DependencyLink> = BTreeMap::new();
        for (_, id) in head.by_start.range(..=(end_ns, [0xff; 16])) {
            let Some(t) = head.traces.get(id) else { continue };
            let by_id: HashMap<[u8; 8], &Span> = t.spans.iter().map(|s| (s.span_id, &**s)).collect();
            for s in t.spans.iter().filter(|s| start_ns <= s.start_ns && s.start_ns <= end_ns) {
                let Some(parent) = s.parent_span_id.and_then(|p| by_id.get(&p)) else { continue };
                let (from, to) = (parent.service_name(), s.service_name());
                if from == to {
                    continue;
                }
                let e = edges.entry((from.to_string(), to.to_string())).or_insert_with(|| DependencyLink {
                    parent: from.to_string(),
                    child: to.to_string(),
                    call_count: 0,
                    error_count: 0,
                    duration_sum_ns: 0,
                });
                e.call_count += 1;
                e.error_count += u64::from(s.status == StatusCode::Error);
                e.duration_sum_ns += s.duration_ns().max(0) as u64;
            }
        }
        Ok(edges.into_values().collect())
    }
}
