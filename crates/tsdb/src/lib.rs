//! The embedded metrics engine.
//!
//! Layout on disk: `<root>/<tenant>/wal/` per tenant (see `docs/format/wal.md`). Each tenant
//! has its own [`db::Db`]: a write-ahead log and an in-memory head of compressed chunks.
//!
//! Guarantees: an append returns only after its accepted samples are in the WAL (handed to the
//! kernel; with `fsync: always`, on disk); a restart replays the WAL, so every acknowledged
//! sample is there again. Out-of-order and duplicate samples follow Prometheus's rules, with an
//! optional out-of-order window.
//!
//! Only the binary and the test kit name this crate; everyone else sees the
//! `periscope_storage` traits it implements.

mod block;
mod bytes;
pub mod chunkenc;
mod compact;
mod db;
mod error;
mod head;
mod histenc;
mod import;
mod options;
mod packenc;
mod postings;
mod record;

pub use error::TsdbError;
pub use import::ImportReport;
pub use options::{LimitsFn, TenantLimits, TsdbOptions};

use db::Db;
use head::{lock, read, write};
use periscope_model::{Exemplar, Labels, Matcher, MetricBatch, MetricMetadata, TenantId, TimeRange};
use periscope_storage::{
    matchers_select_something, merge_histograms, no_histograms, AppendReport, Appendable, HistogramIter, MergeSamples,
    MetricStore, Prepend, Querier, Queryable, RejectReason, SampleIterator, SelectHints, Series, SeriesExemplars,
    SeriesSet, StoreError, VecSamples,
};
use periscope_wal::Periodic;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Reads one per-tenant figure for self-metrics.
type TenantStat = fn(&Db) -> f64;

/// Engine-wide counters for self-metrics.
#[derive(Debug, Default)]
pub struct TsdbStats {
    pub samples_appended: AtomicU64,
    pub exemplars_appended: AtomicU64,
    pub series_created: AtomicU64,
    pub duplicates_ignored: AtomicU64,
    pub rejected: [AtomicU64; RejectReason::ALL.len()],
    /// Blocks written: cut from a head or merged from other blocks.
    pub compactions: AtomicU64,
    /// Blocks deleted by retention.
    pub blocks_deleted: AtomicU64,
    /// Maintenance runs that failed.
    pub maintenance_failures: AtomicU64,
    /// Microseconds spent replaying WALs since start.
    pub replay_seconds: AtomicU64,
}

impl TsdbStats {
    fn record(&self, r: &AppendReport) {
        self.samples_appended.fetch_add(r.samples_appended, Ordering::Relaxed);
        self.exemplars_appended.fetch_add(r.exemplars_appended, Ordering::Relaxed);
        self.series_created.fetch_add(r.series_created, Ordering::Relaxed);
        self.duplicates_ignored.fetch_add(r.duplicates_ignored, Ordering::Relaxed);
        for (reason, n) in &r.rejected {
            if let Some(i) = RejectReason::ALL.iter().position(|x| x == reason) {
                self.rejected[i].fetch_add(*n, Ordering::Relaxed);
            }
        }
    }
}

/// The multi-tenant embedded metrics store.
pub struct Tsdb {
    root: PathBuf,
    opts: TsdbOptions,
    tenants: Arc<RwLock<HashMap<TenantId, Arc<Db>>>>,
    maintenance: Periodic,
    /// Serialises the opening of new tenants.
    opening: Mutex<()>,
    stats: Arc<TsdbStats>,
    closed: AtomicBool,
}

impl Tsdb {
    /// Opens the store in `root`, replaying the WAL of every tenant found there.
    pub fn open(root: &Path, opts: TsdbOptions) -> Result<Tsdb, TsdbError> {
        std::fs::create_dir_all(root).map_err(|source| TsdbError::Io {
            op: "create",
            path: root.to_path_buf(),
            source,
        })?;
        let stats = Arc::new(TsdbStats::default());
        let mut tenants = HashMap::new();
        let entries =
            std::fs::read_dir(root).map_err(|source| TsdbError::Io { op: "list", path: root.to_path_buf(), source })?;
        for entry in entries {
            let entry = entry.map_err(|source| TsdbError::Io { op: "list", path: root.to_path_buf(), source })?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
            let Ok(tenant) = TenantId::new(&name) else {
                tracing::warn!(dir = %entry.path().display(), "ignoring a directory that is not a tenant id");
                continue;
            };
            if !entry.path().is_dir() {
                continue;
            }
            let db = Db::open(tenant.clone(), &entry.path(), opts.clone(), stats.clone())?;
            tenants.insert(tenant, Arc::new(db));
        }
        let tenants = Arc::new(RwLock::new(tenants));
        let (t, st) = (tenants.clone(), stats.clone());
        let maintenance = Periodic::start("tsdb-maintenance", opts.maintenance_interval, move || {
            let dbs: Vec<Arc<Db>> = read(&t).values().cloned().collect();
            for db in dbs {
                if let Err(error) = db.maintain() {
                    st.maintenance_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(tenant = %db.tenant, error = %error::error_chain(&error), "metrics maintenance failed");
                }
            }
        })
        .map_err(|source| TsdbError::Io { op: "start maintenance thread for", path: root.to_path_buf(), source })?;
        Ok(Tsdb {
            root: root.to_path_buf(),
            opts,
            tenants,
            maintenance,
            opening: Mutex::new(()),
            stats,
            closed: AtomicBool::new(false),
        })
    }

    fn db(&self, tenant: &TenantId) -> Option<Arc<Db>> {
        read(&self.tenants).get(tenant).cloned()
    }

    fn db_or_create(&self, tenant: &TenantId) -> Result<Arc<Db>, TsdbError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(TsdbError::Closed);
        }
        if let Some(db) = self.db(tenant) {
            return Ok(db);
        }
        let _g = lock(&self.opening);
        if let Some(db) = self.db(tenant) {
            return Ok(db);
        }
        let db = Arc::new(Db::open(
            tenant.clone(),
            &self.root.join(tenant.as_str()),
            self.opts.clone(),
            self.stats.clone(),
        )?);
        write(&self.tenants).insert(tenant.clone(), db.clone());
        Ok(db)
    }

    /// Runs maintenance for every tenant now: cuts blocks from heads that span more than 1.5
    /// block ranges, checkpoints the WAL, merges blocks, applies retention. Returns the number
    /// of blocks written. The background thread calls this every `maintenance_interval`.
    pub fn maintain(&self) -> Result<usize, TsdbError> {
        let dbs: Vec<Arc<Db>> = read(&self.tenants).values().cloned().collect();
        let mut n = 0;
        for db in dbs {
            n += db.maintain()?;
        }
        Ok(n)
    }

    /// Backfills historical samples of `tenant` straight into blocks (see `import.rs`).
    pub fn import(
        &self,
        tenant: &TenantId,
        series: BTreeMap<Labels, Vec<periscope_model::Sample>>,
    ) -> Result<ImportReport, TsdbError> {
        self.db_or_create(tenant)?.import(series)
    }

    /// Blocks of `tenant`: (min time, max time, level), oldest first.
    pub fn blocks(&self, tenant: &TenantId) -> Vec<(i64, i64, u32)> {
        self.db(tenant)
            .map(|db| read(&db.blocks).iter().map(|b| (b.meta.min_time, b.meta.max_time, b.meta.level)).collect())
            .unwrap_or_default()
    }

    /// The oldest timestamp `tenant` still accepts (the end of its newest block), if any.
    pub fn min_valid_time(&self, tenant: &TenantId) -> Option<i64> {
        let t = self.db(tenant)?.head.min_valid_t.load(Ordering::Relaxed);
        (t != i64::MIN).then_some(t)
    }

    /// Engine-wide counters.
    pub fn stats(&self) -> &TsdbStats {
        &self.stats
    }

    /// Series in the head of `tenant`.
    pub fn head_series(&self, tenant: &TenantId) -> u64 {
        self.db(tenant).map_or(0, |db| db.head.num_series.load(Ordering::Relaxed))
    }

    /// Appends with an explicit "now" (ms), for tests of the future-timestamp rule.
    pub fn append_at(&self, tenant: &TenantId, batch: &MetricBatch, now_ms: i64) -> Result<AppendReport, TsdbError> {
        self.db_or_create(tenant)?.append(batch, now_ms)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl Appendable for Tsdb {
    fn append(&self, tenant: &TenantId, batch: &MetricBatch) -> Result<AppendReport, StoreError> {
        Ok(self.append_at(tenant, batch, now_ms())?)
    }
}

struct DbQuerier {
    db: Option<Arc<Db>>,
    range: TimeRange,
}

/// Iterates a block series' samples in `[mint, maxt]`, decoding a chunk at a time.
struct BlockSamples {
    block: Arc<block::Block>,
    metas: Vec<block::ChunkMeta>,
    next_chunk: usize,
    buf: Vec<periscope_model::Sample>,
    pos: usize,
    mint: i64,
    maxt: i64,
}

impl SampleIterator for BlockSamples {
    fn next(&mut self) -> Option<periscope_model::Sample> {
        while self.pos >= self.buf.len() {
            let meta = self.metas.get(self.next_chunk)?;
            self.next_chunk += 1;
            self.buf.clear();
            self.pos = 0;
            if let Some(samples) = self.block.chunk(meta.offset) {
                let (mint, maxt) = (self.mint, self.maxt);
                self.buf.extend(samples.into_iter().filter(|s| mint <= s.t && s.t <= maxt));
            }
        }
        let s = self.buf[self.pos];
        self.pos += 1;
        Some(s)
    }
}

impl DbQuerier {
    /// The sources of every matching series when blocks overlap the range: block iterators
    /// and the head's, per series. Sorted by labels when `sorted`; otherwise blocks' series
    /// first, then the head's new ones.
    fn gather(&self, matchers: &[Matcher], mint: i64, maxt: i64, sorted: bool) -> Vec<Sources> {
        let Some(db) = &self.db else { return Vec::new() };
        let blocks: Vec<Arc<block::Block>> =
            read(&db.blocks).iter().filter(|b| b.meta.min_time <= maxt && mint <= b.meta.max_time).cloned().collect();
        let head = db.head.select(matchers, false);
        let mut out: Vec<Sources> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut slot = |out: &mut Vec<Sources>, labels: &Labels| -> usize {
            *index.entry(labels.clone()).or_insert_with(|| {
                out.push(Sources { labels: labels.clone(), floats: Vec::new(), histograms: Vec::new() });
                out.len() - 1
            })
        };
        for b in blocks {
            for id in postings::select(&*b, matchers) {
                let Some((labels, metas)) = b.series(id) else { continue };
                let (hmetas, metas): (Vec<block::ChunkMeta>, Vec<block::ChunkMeta>) = metas
                    .into_iter()
                    .filter(|m| m.mint <= maxt && mint <= m.maxt)
                    .partition(|m| b.is_histogram_chunk(m.offset));
                if metas.is_empty() && hmetas.is_empty() {
                    continue;
                }
                let i = slot(&mut out, &labels);
                if !metas.is_empty() {
                    let it =
                        BlockSamples { block: b.clone(), metas, next_chunk: 0, buf: Vec::new(), pos: 0, mint, maxt };
                    out[i].floats.push(Box::new(it));
                }
                if !hmetas.is_empty() {
                    let block = b.clone();
                    out[i].histograms.push(Box::new(hmetas.into_iter().flat_map(move |m| {
                        block
                            .histogram_chunk(m.offset)
                            .unwrap_or_default()
                            .into_iter()
                            .filter(move |s| mint <= s.t && s.t <= maxt)
                    })));
                }
            }
        }
        for s in head {
            let i = slot(&mut out, &s.labels);
            out[i].floats.push(db.samples(&s, mint, maxt));
            out[i].histograms.push(db.histograms(&s, mint, maxt));
        }
        if sorted {
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
        }
        out
    }
}

/// The sources of one series' samples: blocks' and the head's.
struct Sources {
    labels: Labels,
    floats: Vec<Box<dyn SampleIterator>>,
    histograms: Vec<HistogramIter>,
}

/// A selected series, or `None` when it has no sample of either kind in the range (such
/// series are not part of a result, as in Prometheus).
fn nonempty_series(
    labels: Labels,
    mut samples: Box<dyn SampleIterator>,
    histograms: HistogramIter,
    labels_only: bool,
) -> Option<Series> {
    let first = samples.next();
    let mut histograms = histograms.peekable();
    if first.is_none() && histograms.peek().is_none() {
        return None;
    }
    if labels_only {
        return Some(Series { labels, samples: Box::new(VecSamples::default()), histograms: no_histograms() });
    }
    let samples: Box<dyn SampleIterator> = match first {
        Some(first) => Box::new(Prepend::new(first, samples)),
        None => Box::new(VecSamples::default()),
    };
    Some(Series { labels, samples, histograms: Box::new(histograms) })
}

impl Querier for DbQuerier {
    fn select(&self, matchers: &[Matcher], hints: &SelectHints) -> Result<SeriesSet, StoreError> {
        if !matchers_select_something(matchers) {
            return Err(StoreError::Invalid("vector selector must contain at least one non-empty matcher".into()));
        }
        let mint = hints.range.min.max(self.range.min);
        let maxt = hints.range.max.min(self.range.max);
        let labels_only = hints.labels_only;
        if let Some(db) = self.db.clone() {
            let blocks_overlap = read(&db.blocks).iter().any(|b| b.meta.min_time <= maxt && mint <= b.meta.max_time);
            if !blocks_overlap {
                // Head only: nothing to merge, so each series' samples (a chunk snapshot) and
                // labels are taken only when the caller reaches it, and memory holds one series
                // at a time instead of all of them.
                let head = db.head.select(matchers, hints.sorted);
                return Ok(Box::new(head.into_iter().filter_map(move |s| {
                    let samples = db.samples(&s, mint, maxt);
                    let histograms = db.histograms(&s, mint, maxt);
                    nonempty_series(s.labels.clone(), samples, histograms, labels_only).map(Ok)
                })));
            }
        }
        let series = self.gather(matchers, mint, maxt, hints.sorted);
        Ok(Box::new(series.into_iter().filter_map(move |src| {
            let samples: Box<dyn SampleIterator> = if src.floats.len() == 1 {
                src.floats.into_iter().next()?
            } else {
                Box::new(MergeSamples::new(src.floats))
            };
            nonempty_series(src.labels, samples, merge_histograms(src.histograms), labels_only).map(Ok)
        })))
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StoreError> {
        let Some(db) = &self.db else { return Ok(Vec::new()) };
        let mut names = BTreeSet::new();
        if matchers.is_empty() {
            names.extend(read(&db.head.postings).label_names());
            for b in read(&db.blocks)
                .iter()
                .filter(|b| b.meta.min_time <= self.range.max && self.range.min <= b.meta.max_time)
            {
                names.extend(b.label_names());
            }
            return Ok(names.into_iter().collect());
        }
        for s in self.select(matchers, &SelectHints { range: self.range, labels_only: true, sorted: false })? {
            for l in &s?.labels {
                names.insert(l.name.clone());
            }
        }
        Ok(names.into_iter().collect())
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StoreError> {
        let Some(db) = &self.db else { return Ok(Vec::new()) };
        let mut values = BTreeSet::new();
        if matchers.is_empty() {
            values.extend(read(&db.head.postings).label_values(name));
            for b in read(&db.blocks)
                .iter()
                .filter(|b| b.meta.min_time <= self.range.max && self.range.min <= b.meta.max_time)
            {
                values.extend(b.label_values(name));
            }
            return Ok(values.into_iter().collect());
        }
        for s in self.select(matchers, &SelectHints { range: self.range, labels_only: true, sorted: false })? {
            if let Some(v) = s?.labels.get(name) {
                values.insert(v.to_string());
            }
        }
        Ok(values.into_iter().collect())
    }
}

impl Queryable for Tsdb {
    fn querier(&self, tenant: &TenantId, range: TimeRange) -> Result<Box<dyn Querier>, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        Ok(Box::new(DbQuerier { db: self.db(tenant), range }))
    }

    fn metadata(&self, tenant: &TenantId, metric: Option<&str>) -> Result<Vec<MetricMetadata>, StoreError> {
        let Some(db) = self.db(tenant) else { return Ok(Vec::new()) };
        let md = read(&db.head.metadata);
        let mut out: Vec<MetricMetadata> =
            md.values().filter(|m| metric.is_none_or(|n| m.metric_family == n)).cloned().collect();
        out.sort_by(|a, b| a.metric_family.cmp(&b.metric_family));
        Ok(out)
    }

    fn exemplars(
        &self,
        tenant: &TenantId,
        range: TimeRange,
        matcher_groups: &[Vec<Matcher>],
    ) -> Result<Vec<SeriesExemplars>, StoreError> {
        let Some(db) = self.db(tenant) else { return Ok(Vec::new()) };
        let items: Vec<(u64, Exemplar)> = {
            let ring = lock(&db.head.exemplars);
            ring.items.iter().filter(|(_, e)| range.contains(e.t)).cloned().collect()
        };
        let mut by_series: HashMap<u64, SeriesExemplars> = HashMap::new();
        for (sref, e) in items {
            if let Some(entry) = by_series.get_mut(&sref) {
                entry.exemplars.push(e);
                continue;
            }
            let Some(series) = db.head.by_ref(sref) else { continue };
            let matches =
                matcher_groups.iter().any(|g| g.iter().all(|m| m.matches(series.labels.get(&m.name).unwrap_or(""))));
            if matches {
                by_series.insert(sref, SeriesExemplars { labels: series.labels.clone(), exemplars: vec![e] });
            }
        }
        let mut out: Vec<SeriesExemplars> = by_series.into_values().collect();
        for s in &mut out {
            s.exemplars.sort_by_key(|e| e.t);
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }
}

impl MetricStore for Tsdb {
    fn close(&self) -> Result<(), StoreError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.maintenance.stop();
        let _g = lock(&self.opening);
        let mut first_err = None;
        for (tenant, db) in read(&self.tenants).iter() {
            if let Err(source) = db.wal.close() {
                tracing::error!(%tenant, error = %source, "failed to close write-ahead log");
                first_err.get_or_insert(TsdbError::Wal { tenant: tenant.to_string(), source });
            }
        }
        match first_err {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    fn write_metrics(&self, out: &mut String) {
        let s = &self.stats;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let counters: [(&str, &str, u64); 7] = [
            ("periscope_tsdb_samples_appended_total", "Samples stored.", load(&s.samples_appended)),
            ("periscope_tsdb_exemplars_appended_total", "Exemplars stored.", load(&s.exemplars_appended)),
            ("periscope_tsdb_series_created_total", "Series created in the head.", load(&s.series_created)),
            (
                "periscope_tsdb_compactions_total",
                "Blocks written, cut from a head or merged from blocks.",
                load(&s.compactions),
            ),
            ("periscope_tsdb_blocks_deleted_total", "Blocks deleted by retention.", load(&s.blocks_deleted)),
            ("periscope_tsdb_maintenance_failures_total", "Failed maintenance runs.", load(&s.maintenance_failures)),
            (
                "periscope_tsdb_duplicate_samples_ignored_total",
                "Samples equal to a stored sample, dropped silently.",
                load(&s.duplicates_ignored),
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        }
        let name = "periscope_tsdb_samples_rejected_total";
        let _ = writeln!(out, "# HELP {name} Samples, exemplars or series refused, by reason.\n# TYPE {name} counter");
        for (i, r) in RejectReason::ALL.iter().enumerate() {
            let _ = writeln!(out, "{name}{{reason=\"{}\"}} {}", r.as_str(), load(&s.rejected[i]));
        }
        let name = "periscope_tsdb_wal_replay_seconds_total";
        let _ = writeln!(
            out,
            "# HELP {name} Time spent replaying write-ahead logs.\n# TYPE {name} counter\n{name} {}",
            load(&s.replay_seconds) as f64 / 1e6
        );
        let tenants = read(&self.tenants);
        let mut dbs: Vec<(&TenantId, &Arc<Db>)> = tenants.iter().collect();
        dbs.sort_by(|a, b| a.0.cmp(b.0));
        let per_tenant: [(&str, &str, &str, TenantStat); 10] = [
            ("periscope_tsdb_head_series", "Series in the head.", "gauge", |db| {
                db.head.num_series.load(Ordering::Relaxed) as f64
            }),
            ("periscope_tsdb_blocks", "Persisted blocks.", "gauge", |db| read(&db.blocks).len() as f64),
            ("periscope_tsdb_blocks_bytes", "Bytes of persisted blocks.", "gauge", |db| {
                read(&db.blocks).iter().map(|b| b.size_bytes()).sum::<u64>() as f64
            }),
            ("periscope_tsdb_head_chunk_bytes", "Bytes of compressed samples in the head.", "gauge", |db| {
                db.head.chunk_bytes() as f64
            }),
            ("periscope_wal_bytes_written_total", "Bytes written to write-ahead logs.", "counter", |db| {
                db.wal.stats().bytes_written.load(Ordering::Relaxed) as f64
            }),
            ("periscope_wal_records_written_total", "Records written to write-ahead logs.", "counter", |db| {
                db.wal.stats().records_written.load(Ordering::Relaxed) as f64
            }),
            ("periscope_wal_fsyncs_total", "fdatasync calls on write-ahead logs.", "counter", |db| {
                db.wal.stats().fsyncs.load(Ordering::Relaxed) as f64
            }),
            ("periscope_wal_fsync_seconds_total", "Time spent in fdatasync on write-ahead logs.", "counter", |db| {
                db.wal.stats().fsync_nanos.load(Ordering::Relaxed) as f64 / 1e9
            }),
            ("periscope_wal_write_failures_total", "Failed writes to write-ahead logs.", "counter", |db| {
                db.wal.stats().write_failures.load(Ordering::Relaxed) as f64
            }),
            ("periscope_wal_segment", "Index of the write-ahead log segment being written.", "gauge", |db| {
                db.wal.stats().segment.load(Ordering::Relaxed) as f64
            }),
        ];
        for (name, help, ty, f) in per_tenant {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {ty}");
            for (t, db) in &dbs {
                let _ = writeln!(out, "{name}{{tenant=\"{t}\"}} {}", f(db));
            }
        }
    }
}

impl Drop for Tsdb {
    fn drop(&mut self) {
        let _ = MetricStore::close(self);
    }
}
