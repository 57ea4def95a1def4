//! One tenant's database: its WAL and its head.
//!
//! Write path: `append` takes the database's append lock, resolves or creates series, checks
//! and applies every sample to the head while encoding the accepted ones into one WAL record,
//! writes that record, releases the lock and waits for durability by the configured rule
//! (group commit). A sample is acknowledged only after its record reached the kernel.

use crate::block::Block;
use crate::compact::list_checkpoints;
use crate::error::TsdbError;
use crate::head::{lock, read, series_samples, write, Head, MemSeries};
use crate::record::{self, Decoder, RefExemplar, RefHistogram, RefSample, Section};
use crate::{TsdbOptions, TsdbStats};
use periscope_model::{MetricBatch, TenantId};
use periscope_storage::{AppendReport, RejectReason};
use periscope_wal::{replay, Wal};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

pub(crate) struct Db {
    pub tenant: TenantId,
    pub dir: PathBuf,
    pub head: Head,
    pub wal: Wal,
    /// Persisted blocks, sorted by time.
    pub blocks: RwLock<Vec<Arc<Block>>>,
    pub opts: TsdbOptions,
    pub append_lock: Mutex<Scratch>,
    /// Serialises maintenance (compaction, checkpoint, retention).
    pub maintenance: Mutex<()>,
    pub stats: Arc<TsdbStats>,
}

/// Buffers reused across appends.
#[derive(Default)]
pub(crate) struct Scratch {
    samples: Vec<RefSample>,
    /// Out-of-order samples older than the head's lower bound (their range is in a block).
    old_samples: Vec<RefSample>,
    histograms: Vec<RefHistogram>,
    exemplars: Vec<RefExemplar>,
    new_series: Vec<Arc<MemSeries>>,
}

impl Db {
    /// Opens (and replays) the database of `tenant` in `dir`.
    pub(crate) fn open(
        tenant: TenantId,
        dir: &Path,
        opts: TsdbOptions,
        stats: Arc<TsdbStats>,
    ) -> Result<Db, TsdbError> {
        let wal_dir = dir.join("wal");
        std::fs::create_dir_all(&wal_dir).map_err(|source| TsdbError::Io {
            op: "create",
            path: wal_dir.clone(),
            source,
        })?;
        let head = Head::new((opts.limits)(&tenant).max_exemplars);
        let blocks = open_blocks(&tenant, &dir.join("blocks"))?;
        // Samples older than the newest block are in blocks already: a WAL not yet truncated
        // after the block was written still holds them, and replay must not take them again.
        let min_valid = blocks.iter().map(|b| b.meta.max_time.saturating_add(1)).max().unwrap_or(i64::MIN);
        head.min_valid_t.store(min_valid, Ordering::Relaxed);
        let started = Instant::now();
        let mut unknown_refs = 0u64;
        let mut samples = 0u64;
        let checkpoint = list_checkpoints(&wal_dir).pop();
        let mut replay_dir = |dir: &Path, from: u32| -> Result<periscope_wal::ReplayStats, TsdbError> {
            let replayed = replay(dir, from, |segment, payload| {
                let mut d = Decoder::new(payload);
                loop {
                    match d.section() {
                        Ok(Some(section)) => apply_replayed(
                            &head,
                            section,
                            opts.block_range_ms,
                            min_valid,
                            &mut unknown_refs,
                            &mut samples,
                        ),
                        Ok(None) => return Ok(()),
                        Err(source) => return Err((segment, source)),
                    }
                }
            })
            .map_err(|source| TsdbError::Wal { tenant: tenant.to_string(), source })?;
            replayed.map_err(|(segment, source)| TsdbError::Replay { path: dir.to_path_buf(), segment, source })
        };
        let mut replay_stats = periscope_wal::ReplayStats::default();
        let from = match &checkpoint {
            Some((last, path)) => {
                let s = replay_dir(path, 0)?;
                replay_stats.records += s.records;
                last + 1
            }
            None => 0,
        };
        let s = replay_dir(&wal_dir, from)?;
        replay_stats.records += s.records;
        replay_stats.segments += s.segments;
        replay_stats.repaired_segments += s.repaired_segments;
        let secs = started.elapsed().as_secs_f64();
        stats.replay_seconds.fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
        tracing::info!(
            tenant = %tenant,
            segments = replay_stats.segments,
            records = replay_stats.records,
            series = head.num_series.load(Ordering::Relaxed),
            samples,
            unknown_refs,
            repaired_segments = replay_stats.repaired_segments,
            blocks = blocks.len(),
            checkpoint = checkpoint.as_ref().map(|c| c.0),
            seconds = secs,
            "replayed write-ahead log"
        );
        let wal = Wal::open(&wal_dir, opts.wal.clone())
            .map_err(|source| TsdbError::Wal { tenant: tenant.to_string(), source })?;
        Ok(Db {
            tenant,
            dir: dir.to_path_buf(),
            head,
            wal,
            blocks: RwLock::new(blocks),
            opts,
            append_lock: Mutex::new(Scratch::default()),
            maintenance: Mutex::new(()),
            stats,
        })
    }

    /// Appends a batch; see the module docs for the order of events.
    pub(crate) fn append(&self, batch: &MetricBatch, now_ms: i64) -> Result<AppendReport, TsdbError> {
        let head = &self.head;
        let hashes: Vec<u64> = batch.series.iter().map(|s| s.labels.stable_hash()).collect();
        let mut resolved: Vec<Option<Arc<MemSeries>>> =
            batch.series.iter().zip(&hashes).map(|(s, h)| head.get(&s.labels, *h)).collect();
        let limits = (self.opts.limits)(&self.tenant);
        let max_future = now_ms.saturating_add(limits.creation_grace_ms);
        let ooo_window = self.opts.out_of_order_window_ms;
        let block_range = self.opts.block_range_ms;

        let mut guard = lock(&self.append_lock);
        let scratch = &mut *guard;
        scratch.samples.clear();
        scratch.old_samples.clear();
        scratch.histograms.clear();
        scratch.exemplars.clear();
        scratch.new_series.clear();
        let mut report = AppendReport::default();
        let head_max = head.max_t.load(Ordering::Relaxed);
        let ooo_min =
            if ooo_window > 0 && head_max != i64::MIN { head_max.saturating_sub(ooo_window) } else { i64::MAX };
        let mut batch_max = i64::MIN;
        let mut batch_min = i64::MAX;

        let min_valid = head.min_valid_t.load(Ordering::Relaxed);
        // Out-of-order samples below the head's bound reach only ranges no cut is copying.
        let ooo_min_old = ooo_min.max(head.cut_end.load(Ordering::Acquire));
        for (i, ss) in batch.series.iter().enumerate() {
            let series = match resolved[i].take().filter(|s| !s.removed.load(Ordering::Acquire)) {
                Some(s) => s,
                None => {
                    if limits.max_series > 0 && head.num_series.load(Ordering::Relaxed) >= limits.max_series {
                        let n = (ss.samples.len() + ss.histograms.len()) as u64;
                        report.reject(RejectReason::SeriesLimit, n, || {
                            format!("series {} (limit {})", ss.labels, limits.max_series)
                        });
                        continue;
                    }
                    let (s, created) = head.create(ss.labels.clone(), hashes[i], None);
                    if created {
                        report.series_created += 1;
                    }
                    s
                }
            };
            if !series.logged.swap(true, Ordering::AcqRel) {
                scratch.new_series.push(series.clone());
            }
            let mut d = lock(&series.data);
            for s in &ss.samples {
                let reason = if s.t > max_future {
                    Some(RejectReason::TooFarInFuture)
                } else if s.t < min_valid {
                    // A range already in a block: only the out-of-order window reaches it, as
                    // in Prometheus; the sample waits in the head's out-of-order buffer and is
                    // written to a block of its own range at the next cut (queries and block
                    // merges take overlapping blocks' samples once).
                    if s.t >= ooo_min_old {
                        // The range is in a block: a sample there at `t` is a duplicate too.
                        match self.value_in_blocks(&ss.labels, s.t) {
                            Some(bits) if bits == s.v.to_bits() => {
                                report.duplicates_ignored += 1;
                                None
                            }
                            Some(_) => Some(RejectReason::DuplicateTimestamp),
                            None => insert_out_of_order(&mut d, series.sref, s, &mut scratch.old_samples, &mut report),
                        }
                    } else {
                        Some(RejectReason::TooOld)
                    }
                } else if s.t > d.last_t {
                    d.append_in_order(s.t, s.v, block_range);
                    scratch.samples.push(RefSample { sref: series.sref, t: s.t, v: s.v });
                    None
                } else if s.t == d.last_t {
                    if !d.last_is_hist && d.last_v_bits == s.v.to_bits() {
                        report.duplicates_ignored += 1;
                        None
                    } else {
                        Some(RejectReason::DuplicateTimestamp)
                    }
                } else if s.t >= ooo_min {
                    insert_out_of_order(&mut d, series.sref, s, &mut scratch.samples, &mut report)
                } else {
                    Some(RejectReason::OutOfOrder)
                };
                match reason {
                    Some(r) => report.reject(r, 1, || format!("series {} timestamp {} value {}", ss.labels, s.t, s.v)),
                    None => {
                        batch_max = batch_max.max(s.t);
                        batch_min = batch_min.min(s.t);
                    }
                }
            }
            for hs in &ss.histograms {
                // Out-of-order histograms are not supported yet: refused as out of order.
                let reason = if hs.t > max_future {
                    Some(RejectReason::TooFarInFuture)
                } else if hs.t < min_valid {
                    Some(RejectReason::TooOld)
                } else if hs.t > d.last_t {
                    d.append_histogram(hs.t, hs.h.clone(), block_range);
                    scratch.histograms.push(RefHistogram { sref: series.sref, t: hs.t, h: hs.h.clone() });
                    None
                } else if hs.t == d.last_t {
                    if d.last_histogram().is_some_and(|h| h.bit_eq(&hs.h)) {
                        report.duplicates_ignored += 1;
                        None
                    } else {
                        Some(RejectReason::DuplicateTimestamp)
                    }
                } else {
                    Some(RejectReason::OutOfOrder)
                };
                match reason {
                    Some(r) => report.reject(r, 1, || format!("series {} timestamp {} (histogram)", ss.labels, hs.t)),
                    None => {
                        batch_max = batch_max.max(hs.t);
                        batch_min = batch_min.min(hs.t);
                    }
                }
            }
            for e in &ss.exemplars {
                if e.t < d.last_exemplar_t {
                    report.reject(RejectReason::ExemplarOutOfOrder, 1, || {
                        format!("series {} exemplar at {}", ss.labels, e.t)
                    });
                    continue;
                }
                d.last_exemplar_t = e.t;
                scratch.exemplars.push(RefExemplar { sref: series.sref, t: e.t, v: e.v, labels: e.labels.clone() });
            }
        }
        let changed_metadata: Vec<_> = {
            let current = read(&head.metadata);
            batch.metadata.iter().filter(|m| current.get(&m.metric_family) != Some(*m)).cloned().collect()
        };

        let written = self.wal.write_checked(|buf| {
            if !scratch.new_series.is_empty() {
                record::encode_series(buf, scratch.new_series.iter().map(|s| (s.sref, &s.labels)));
            }
            if !scratch.samples.is_empty() {
                record::encode_samples(buf, &scratch.samples);
            }
            if !scratch.old_samples.is_empty() {
                record::encode_old_samples(buf, &scratch.old_samples);
            }
            if !scratch.histograms.is_empty() {
                record::encode_histograms(buf, &scratch.histograms);
            }
            if !scratch.exemplars.is_empty() {
                record::encode_exemplars(buf, &scratch.exemplars);
            }
            if !changed_metadata.is_empty() {
                record::encode_metadata(buf, &changed_metadata);
            }
            Ok::<(), std::convert::Infallible>(())
        });
        let lsn = match written {
            Ok(Ok(((), lsn))) => lsn,
            Ok(Err(never)) => match never {},
            Err(source) => {
                // The samples are in memory but not in the log: they were not acknowledged, and
                // a retry finds them as duplicates. The series are logged again next time.
                for s in &scratch.new_series {
                    s.logged.store(false, Ordering::Release);
                }
                return Err(TsdbError::Wal { tenant: self.tenant.to_string(), source });
            }
        };
        if batch_max != i64::MIN {
            head.note_time(batch_min);
            head.note_time(batch_max);
        }
        report.samples_appended = (scratch.samples.len() + scratch.old_samples.len() + scratch.histograms.len()) as u64;
        report.exemplars_appended = scratch.exemplars.len() as u64;
        if !scratch.exemplars.is_empty() {
            let mut ring = lock(&head.exemplars);
            for e in scratch.exemplars.drain(..) {
                ring.push(e.sref, periscope_model::Exemplar { labels: e.labels, t: e.t, v: e.v });
            }
        }
        if !changed_metadata.is_empty() {
            let mut md = write(&head.metadata);
            for m in changed_metadata {
                md.insert(m.metric_family.clone(), m);
            }
        }
        // Release the append lock before waiting for fsync so that concurrent appenders share it.
        drop(guard);
        self.stats.record(&report);
        self.wal.wait_durable(lsn).map_err(|source| TsdbError::Wal { tenant: self.tenant.to_string(), source })?;
        Ok(report)
    }

    /// The value bits a block holds for the series `labels` at exactly `t`.
    fn value_in_blocks(&self, labels: &periscope_model::Labels, t: i64) -> Option<u64> {
        let matchers: Vec<periscope_model::Matcher> =
            labels.iter().map(|l| periscope_model::Matcher::equal(&l.name, &l.value)).collect();
        let blocks = read(&self.blocks).clone();
        for b in blocks.iter().filter(|b| b.meta.min_time <= t && t <= b.meta.max_time) {
            for id in crate::postings::select(&**b, &matchers) {
                let Some((l, metas)) = b.series(id) else { continue };
                if l != *labels {
                    continue;
                }
                for m in metas.iter().filter(|m| m.mint <= t && t <= m.maxt) {
                    if let Some(found) = b.chunk(m.offset).and_then(|c| c.into_iter().find(|x| x.t == t)) {
                        return Some(found.v.to_bits());
                    }
                }
            }
        }
        None
    }

    /// Samples of a series in a range.
    pub(crate) fn samples(&self, s: &MemSeries, mint: i64, maxt: i64) -> Box<dyn periscope_storage::SampleIterator> {
        series_samples(s, mint, maxt)
    }

    /// Histogram samples of a series in a range.
    pub(crate) fn histograms(&self, s: &MemSeries, mint: i64, maxt: i64) -> periscope_storage::HistogramIter {
        crate::head::series_histograms(s, mint, maxt)
    }
}

/// Stores an out-of-order sample and logs it in `log`, unless a sample is stored at its
/// time: the same value is a duplicate (ignored and counted), another one is refused.
fn insert_out_of_order(
    d: &mut crate::head::SeriesData,
    sref: u64,
    s: &periscope_model::Sample,
    log: &mut Vec<RefSample>,
    report: &mut AppendReport,
) -> Option<RejectReason> {
    match d.value_at(s.t) {
        Some(bits) if bits == s.v.to_bits() => {
            report.duplicates_ignored += 1;
            None
        }
        Some(_) => Some(RejectReason::DuplicateTimestamp),
        None => {
            d.insert_ooo(s.t, s.v);
            log.push(RefSample { sref, t: s.t, v: s.v });
            None
        }
    }
}

/// Opens every block in `dir`, removing what a crash left half-done (`.tmp`, `.deleted`).
fn open_blocks(tenant: &TenantId, dir: &Path) -> Result<Vec<Arc<Block>>, TsdbError> {
    let mut blocks = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return Ok(blocks) };
    for e in rd.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if name.ends_with(".tmp") || name.ends_with(".deleted") {
            let _ = std::fs::remove_dir_all(&path);
            continue;
        }
        match Block::open(&path) {
            Ok(b) => blocks.push(Arc::new(b)),
            Err(source) => return Err(TsdbError::Block { tenant: tenant.to_string(), source }),
        }
    }
    blocks.sort_by_key(|b| (b.meta.min_time, b.meta.max_time));
    Ok(blocks)
}

fn apply_replayed(
    head: &Head,
    section: Section,
    block_range: i64,
    min_valid: i64,
    unknown_refs: &mut u64,
    samples: &mut u64,
) {
    match section {
        Section::Series(list) => {
            for (sref, labels) in list {
                let hash = labels.stable_hash();
                let (s, _) = head.create(labels, hash, Some(sref));
                s.logged.store(true, Ordering::Relaxed);
            }
        }
        Section::Samples(list) => {
            let mut cur: Option<Arc<MemSeries>> = None;
            for rs in list {
                if cur.as_ref().is_none_or(|c| c.sref != rs.sref) {
                    cur = head.by_ref(rs.sref);
                }
                let Some(series) = &cur else {
                    *unknown_refs += 1;
                    continue;
                };
                if rs.t < min_valid {
                    continue;
                }
                let mut d = lock(&series.data);
                if rs.t > d.last_t {
                    d.append_in_order(rs.t, rs.v, block_range);
                } else if d.value_at(rs.t).is_none() {
                    d.insert_ooo(rs.t, rs.v);
                } else {
                    continue;
                }
                *samples += 1;
                head.note_time(rs.t);
            }
        }
        Section::OldSamples(list) => {
            // Out-of-order samples below the head's lower bound: not in a block unless a cut
            // wrote them before a crash cut the WAL short of its checkpoint; then they are
            // taken twice, which reads and block merges deduplicate.
            for rs in list {
                let Some(series) = head.by_ref(rs.sref) else {
                    *unknown_refs += 1;
                    continue;
                };
                let mut d = lock(&series.data);
                if d.value_at(rs.t).is_none() {
                    d.insert_ooo(rs.t, rs.v);
                    *samples += 1;
                    head.note_time(rs.t);
                }
            }
        }
        Section::Histograms(list) => {
            for rh in list {
                let Some(series) = head.by_ref(rh.sref) else {
                    *unknown_refs += 1;
                    continue;
                };
                if rh.t < min_valid {
                    continue;
                }
                let mut d = lock(&series.data);
                if rh.t > d.last_t {
                    d.append_histogram(rh.t, rh.h, block_range);
                    *samples += 1;
                    head.note_time(rh.t);
                }
            }
        }
        Section::HistogramChunks(list) => {
            restore_chunks(head, list, min_valid, unknown_refs, samples, true);
        }
        Section::Exemplars(list) => {
            let mut ring = lock(&head.exemplars);
            for e in list {
                if let Some(s) = head.by_ref(e.sref) {
                    let mut d = lock(&s.data);
                    d.last_exemplar_t = d.last_exemplar_t.max(e.t);
                }
                ring.push(e.sref, periscope_model::Exemplar { labels: e.labels, t: e.t, v: e.v });
            }
        }
        Section::Chunks(list) => {
            restore_chunks(head, list, min_valid, unknown_refs, samples, false);
        }
        Section::Metadata(list) => {
            let mut md = write(&head.metadata);
            for m in list {
                md.insert(m.metric_family.clone(), m);
            }
        }
    }
}

/// Restores whole chunks of a checkpoint (float chunks, or histogram chunks when
/// `histograms`) into the head, dropping those that end before `min_valid`.
fn restore_chunks(
    head: &Head,
    list: Vec<(u64, Vec<crate::head::ClosedChunk>)>,
    min_valid: i64,
    unknown_refs: &mut u64,
    samples: &mut u64,
    histograms: bool,
) {
    for (sref, chunks) in list {
        let Some(series) = head.by_ref(sref) else {
            *unknown_refs += 1;
            continue;
        };
        let chunks: Vec<_> = chunks.into_iter().filter(|c| c.maxt >= min_valid).collect();
        if let (Some(first), Some(last)) = (chunks.first(), chunks.last()) {
            head.note_time(first.mint);
            head.note_time(last.maxt);
        }
        let mut d = lock(&series.data);
        if histograms {
            *samples += chunks.iter().map(|c| crate::head::decode_hist(&c.bytes).len() as u64).sum::<u64>();
            d.restore_histograms(chunks);
        } else {
            *samples += chunks.iter().map(|c| crate::chunkenc::XorIter::new(&c.bytes).len() as u64).sum::<u64>();
            d.restore(chunks);
        }
    }
}
