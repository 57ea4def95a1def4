//! Maintenance of one tenant's database: cutting blocks from the head, checkpointing and
//! truncating the WAL, merging blocks into longer ranges, and retention.
//!
//! Order of events when the head spans more than 1.5 block ranges (Prometheus's trigger):
//! 1. under the append lock, raise the head's lower bound to the end of the oldest range (later
//!    samples before it are refused as too old) and copy that range's chunks;
//! 2. write the block (temp dir, fsync, rename) and add it to the queryable set;
//! 3. under the append lock, drop the copied data from the head, drop empty series, cut the WAL
//!    and snapshot the head;
//! 4. write the snapshot as `wal/checkpoint.NNNNNNNN` (temp dir, fsync, rename), then delete
//!    the WAL segments it covers and older checkpoints.
//!
//! A crash between any two steps leaves either the old state (WAL + head) or the new one
//! (block + checkpoint + newer segments): replay reads the newest checkpoint and the segments
//! after it, and a block that exists is never also replayed into the head beyond its range
//! because replayed samples older than the block's end are dropped when the head's lower bound
//! is restored from the blocks.

use crate::block::{sync_dir, write_block, Block, BlockError, ChunkData, ChunkMeta};
use crate::db::Db;
use crate::error::TsdbError;
use crate::head::{
    decode, encode_hist_chunks, lock, read, split_chunks, split_runs, write, ClosedChunk, SAMPLES_PER_CHUNK,
};
use crate::record;
use periscope_model::{HistogramSample, Labels, Sample};
use periscope_wal::{FsyncMode, Wal, WalOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Most series per checkpoint record, to keep records far below the WAL's record limit.
const CHECKPOINT_SERIES_PER_RECORD: usize = 4096;

/// A new block id: sortable by creation time and unique within a process.
pub(crate) fn new_block_id() -> String {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("b{:020x}{:06x}", nanos, SEQ.fetch_add(1, Ordering::Relaxed) & 0xff_ffff)
}

fn chunk_data(c: &ClosedChunk) -> ChunkData {
    ChunkData::Floats(decode(&c.bytes).collect())
}

/// Histogram samples as block chunks of at most 120 samples within block ranges.
fn histogram_chunk_data(samples: &[HistogramSample], block_range: i64) -> impl Iterator<Item = ChunkData> + '_ {
    split_runs(samples, |s| s.t, block_range, SAMPLES_PER_CHUNK as usize)
        .into_iter()
        .map(|c| ChunkData::Histograms(c.to_vec()))
}

/// The checkpoint directories in `wal_dir`, sorted by the last segment they cover.
pub(crate) fn list_checkpoints(wal_dir: &Path) -> Vec<(u32, PathBuf)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(wal_dir) {
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(n) = name.strip_prefix("checkpoint.") {
                if n.len() == 8 {
                    if let Ok(i) = n.parse::<u32>() {
                        out.push((i, e.path()));
                    }
                } else if n.ends_with(".tmp") {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out
}

impl Db {
    /// Runs every maintenance step that is due. Returns how many blocks were written.
    pub(crate) fn maintain(&self) -> Result<usize, TsdbError> {
        let _g = lock(&self.maintenance);
        let mut written = 0;
        loop {
            let before = self.head.min_t.load(Ordering::Relaxed);
            if !self.compact_head()? {
                break;
            }
            written += 1;
            // A cut that did not move the head's start would repeat forever.
            if self.head.min_t.load(Ordering::Relaxed) <= before {
                tracing::error!(tenant = %self.tenant, min_t = before, "head compaction made no progress");
                break;
            }
        }
        if written > 0 {
            self.checkpoint()?;
        }
        written += self.compact_blocks()?;
        self.apply_retention()?;
        Ok(written)
    }

    fn block_err(&self, e: BlockError) -> TsdbError {
        TsdbError::Block { tenant: self.tenant.to_string(), source: e }
    }

    /// Cuts the oldest block range out of the head if the head spans more than 1.5 ranges.
    pub(crate) fn compact_head(&self) -> Result<bool, TsdbError> {
        let head = &self.head;
        let range = self.opts.block_range_ms;
        let (min_t, max_t) = (head.min_t.load(Ordering::Relaxed), head.max_t.load(Ordering::Relaxed));
        if min_t == i64::MAX || max_t.saturating_sub(min_t) <= range / 2 * 3 {
            return Ok(false);
        }
        let start = min_t.div_euclid(range) * range;
        let end = start.saturating_add(range);
        let mut series: Vec<(Labels, Vec<ClosedChunk>, Vec<HistogramSample>)> = {
            let _g = lock(&self.append_lock);
            head.min_valid_t.fetch_max(end, Ordering::AcqRel);
            head.cut_end.store(end, Ordering::Release);
            head.all_series()
                .iter()
                .map(|s| {
                    let d = lock(&s.data);
                    (s.labels.clone(), d.peek_before(end, range), d.histograms_before(end))
                })
                .filter(|(_, c, h)| !c.is_empty() || !h.is_empty())
                .collect()
        };
        series.sort_by(|a, b| a.0.cmp(&b.0));
        if !series.is_empty() {
            let written = self.write_new_block(
                1,
                Vec::new(),
                series.into_iter().map(|(l, c, h)| {
                    let mut chunks: Vec<ChunkData> = c.iter().map(chunk_data).collect();
                    chunks.extend(histogram_chunk_data(&h, range));
                    (l, chunks)
                }),
            );
            let block = match written {
                Ok(b) => b,
                Err(e) => {
                    // The data stays in the head for the next attempt.
                    head.cut_end.store(i64::MIN, Ordering::Release);
                    return Err(e);
                }
            };
            let meta = &block.meta;
            tracing::info!(tenant = %self.tenant, block = %meta.id, min_time = meta.min_time, max_time = meta.max_time,
                series = meta.num_series, samples = meta.num_samples, "wrote block from head");
            self.add_block(block);
            self.stats.compactions.fetch_add(1, Ordering::Relaxed);
        }
        {
            let _g = lock(&self.append_lock);
            for s in head.all_series() {
                lock(&s.data).take_before(end, range);
            }
            head.cut_end.store(i64::MIN, Ordering::Release);
            let dropped = head.gc();
            let new_min = head.all_series().iter().filter_map(|s| lock(&s.data).min_t()).min();
            // The newest time stays: the out-of-order window is measured from it.
            head.min_t.store(new_min.unwrap_or(i64::MAX), Ordering::Relaxed);
            tracing::debug!(tenant = %self.tenant, dropped_series = dropped, "truncated head");
        }
        Ok(true)
    }

    /// Writes a new block into `<tenant>/blocks` (atomically, see `block.rs`) and opens it;
    /// the caller makes it queryable.
    pub(crate) fn write_new_block(
        &self,
        level: u32,
        sources: Vec<String>,
        series: impl Iterator<Item = (Labels, Vec<ChunkData>)>,
    ) -> Result<Arc<Block>, TsdbError> {
        let blocks_dir = self.dir.join("blocks");
        std::fs::create_dir_all(&blocks_dir).map_err(|source| TsdbError::Io {
            op: "create",
            path: blocks_dir.clone(),
            source,
        })?;
        let id = new_block_id();
        write_block(&blocks_dir, &id, level, sources, series).map_err(|e| self.block_err(e))?;
        let block = Block::open(&blocks_dir.join(&id)).map_err(|e| self.block_err(e))?;
        Ok(Arc::new(block))
    }

    pub(crate) fn add_block(&self, block: Arc<Block>) {
        let mut blocks = write(&self.blocks);
        blocks.push(block);
        blocks.sort_by_key(|b| (b.meta.min_time, b.meta.max_time));
    }

    /// Writes the head as a checkpoint and deletes the WAL segments it replaces.
    pub(crate) fn checkpoint(&self) -> Result<(), TsdbError> {
        let wal_err = |source| TsdbError::Wal { tenant: self.tenant.to_string(), source };
        let (seg, series, metadata, exemplars, old_samples) = {
            let _g = lock(&self.append_lock);
            let seg = self.wal.cut().map_err(wal_err)?;
            let range = self.opts.block_range_ms;
            // Out-of-order samples below the head's lower bound go in as such (replay keeps
            // them whatever the blocks hold), not inside chunks (replay drops chunks that end
            // before the lower bound, as the blocks hold those).
            let floor = self.head.min_valid_t.load(Ordering::Relaxed);
            let mut old_samples: Vec<record::RefSample> = Vec::new();
            let series: Vec<(u64, Labels, Vec<ClosedChunk>, Vec<ClosedChunk>)> = self
                .head
                .all_series()
                .iter()
                .map(|s| {
                    let d = lock(&s.data);
                    let hist = encode_hist_chunks(&d.histograms_before(i64::MAX), range);
                    old_samples.extend(d.ooo.iter().take_while(|x| x.t < floor).map(|x| record::RefSample {
                        sref: s.sref,
                        t: x.t,
                        v: x.v,
                    }));
                    (s.sref, s.labels.clone(), d.peek_between(floor, i64::MAX, range), hist)
                })
                .collect();
            let metadata: Vec<_> = read(&self.head.metadata).values().cloned().collect();
            let exemplars: Vec<record::RefExemplar> = lock(&self.head.exemplars)
                .items
                .iter()
                .map(|(r, e)| record::RefExemplar { sref: *r, t: e.t, v: e.v, labels: e.labels.clone() })
                .collect();
            (seg, series, metadata, exemplars, old_samples)
        };
        let wal_dir = self.dir.join("wal");
        let name = format!("checkpoint.{:08}", seg - 1);
        let tmp = wal_dir.join(format!("{name}.tmp"));
        let _ = std::fs::remove_dir_all(&tmp);
        {
            let cp = Wal::open(
                &tmp,
                WalOptions { segment_size: 256 << 20, fsync: FsyncMode::Interval(Duration::from_secs(3600)) },
            )
            .map_err(wal_err)?;
            if !metadata.is_empty() {
                cp.log(|b| record::encode_metadata(b, &metadata)).map_err(wal_err)?;
            }
            for part in series.chunks(CHECKPOINT_SERIES_PER_RECORD) {
                cp.log(|b| {
                    // Chunks hold the in-order data with the out-of-order samples merged in
                    // (peek_before), so only labels and chunks are needed.
                    record::encode_series(b, part.iter().map(|(r, l, _, _)| (*r, l)));
                    let chunks: Vec<(u64, Vec<ClosedChunk>)> =
                        part.iter().map(|(r, _, c, _)| (*r, c.clone())).collect();
                    record::encode_chunks(b, &chunks);
                    let hist: Vec<(u64, Vec<ClosedChunk>)> =
                        part.iter().filter(|p| !p.3.is_empty()).map(|(r, _, _, h)| (*r, h.clone())).collect();
                    if !hist.is_empty() {
                        record::encode_histogram_chunks(b, &hist);
                    }
                })
                .map_err(wal_err)?;
            }
            if !exemplars.is_empty() {
                cp.log(|b| record::encode_exemplars(b, &exemplars)).map_err(wal_err)?;
            }
            for part in old_samples.chunks(CHECKPOINT_SERIES_PER_RECORD * 16) {
                cp.log(|b| record::encode_old_samples(b, part)).map_err(wal_err)?;
            }
            cp.close().map_err(wal_err)?;
        }
        let final_path = wal_dir.join(&name);
        std::fs::rename(&tmp, &final_path).map_err(|source| TsdbError::Io {
            op: "rename",
            path: tmp.clone(),
            source,
        })?;
        sync_dir(&wal_dir).map_err(|e| self.block_err(e))?;
        let removed = self.wal.remove_segments_before(seg).map_err(wal_err)?;
        for (i, path) in list_checkpoints(&wal_dir) {
            if i < seg - 1 {
                let _ = std::fs::remove_dir_all(path);
            }
        }
        tracing::info!(tenant = %self.tenant, checkpoint = %name, removed_segments = removed, "checkpointed write-ahead log");
        Ok(())
    }

    /// Merges blocks that fill an aligned window of 3× their range into one block, up to
    /// ranges of 10 % of the retention time (31 days without retention), as Prometheus does.
    pub(crate) fn compact_blocks(&self) -> Result<usize, TsdbError> {
        let base = self.opts.block_range_ms;
        let max_range = if self.opts.retention_ms > 0 { self.opts.retention_ms / 10 } else { 31 * 86_400_000 };
        let min_valid = self.head.min_valid_t.load(Ordering::Relaxed);
        let mut written = 0;
        let mut range = base.saturating_mul(3);
        while range <= max_range {
            let blocks = read(&self.blocks).clone();
            let mut i = 0;
            while i < blocks.len() {
                let w_start = blocks[i].meta.min_time.div_euclid(range) * range;
                let w_end = w_start.saturating_add(range);
                let group: Vec<Arc<Block>> = blocks[i..]
                    .iter()
                    .take_while(|b| b.meta.min_time < w_end)
                    .filter(|b| b.meta.max_time < w_end)
                    .cloned()
                    .collect();
                let n_window = blocks[i..].iter().take_while(|b| b.meta.min_time < w_end).count();
                if group.len() >= 2 && group.len() == n_window && w_end <= min_valid {
                    self.merge_blocks(&group)?;
                    written += 1;
                }
                i += n_window.max(1);
            }
            range = range.saturating_mul(3);
        }
        Ok(written)
    }

    fn merge_blocks(&self, group: &[Arc<Block>]) -> Result<(), TsdbError> {
        let level = group.iter().map(|b| b.meta.level).max().unwrap_or(1) + 1;
        let sources: Vec<String> = group.iter().flat_map(|b| b.meta.sources.iter().cloned()).collect();
        let block = self.write_new_block(level, sources, MergedSeries::new(group, self.opts.block_range_ms))?;
        let meta = block.meta.clone();
        {
            let mut blocks = write(&self.blocks);
            blocks.retain(|b| !group.iter().any(|g| g.meta.id == b.meta.id));
            blocks.push(block);
            blocks.sort_by_key(|b| (b.meta.min_time, b.meta.max_time));
        }
        for b in group {
            delete_block_dir(&b.dir);
        }
        self.stats.compactions.fetch_add(1, Ordering::Relaxed);
        tracing::info!(tenant = %self.tenant, block = %meta.id, level, min_time = meta.min_time, max_time = meta.max_time,
            merged = group.len(), "compacted blocks");
        Ok(())
    }

    /// Deletes blocks older than the retention time (measured from the newest data) and the
    /// oldest blocks while their total size exceeds the retention size.
    pub(crate) fn apply_retention(&self) -> Result<(), TsdbError> {
        let blocks = read(&self.blocks).clone();
        let newest = blocks
            .iter()
            .map(|b| b.meta.max_time)
            .chain([self.head.max_t.load(Ordering::Relaxed)])
            .max()
            .unwrap_or(i64::MIN);
        let mut doomed: Vec<Arc<Block>> = Vec::new();
        if self.opts.retention_ms > 0 && newest != i64::MIN {
            let cutoff = newest.saturating_sub(self.opts.retention_ms);
            doomed.extend(blocks.iter().filter(|b| b.meta.max_time < cutoff).cloned());
        }
        if self.opts.retention_bytes > 0 {
            let mut total: u64 =
                blocks.iter().filter(|b| !doomed.iter().any(|d| d.meta.id == b.meta.id)).map(|b| b.size_bytes()).sum();
            for b in &blocks {
                if total <= self.opts.retention_bytes {
                    break;
                }
                if !doomed.iter().any(|d| d.meta.id == b.meta.id) {
                    total -= b.size_bytes();
                    doomed.push(b.clone());
                }
            }
        }
        if doomed.is_empty() {
            return Ok(());
        }
        write(&self.blocks).retain(|b| !doomed.iter().any(|d| d.meta.id == b.meta.id));
        for b in &doomed {
            tracing::info!(tenant = %self.tenant, block = %b.meta.id, max_time = b.meta.max_time, "deleting block past retention");
            delete_block_dir(&b.dir);
            self.stats.blocks_deleted.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Renames a block out of the way first, so that a crash mid-deletion never leaves a partial
/// block under a valid name; queries holding the block keep their mappings.
fn delete_block_dir(dir: &Path) {
    let trash = dir.with_extension("deleted");
    if std::fs::rename(dir, &trash).is_ok() {
        let _ = std::fs::remove_dir_all(&trash);
    }
}

/// Series of several blocks merged by labels, for compaction; chunks of one series from
/// different blocks are concatenated, or re-encoded when their times overlap.
/// Most samples in one chunk of a merged block (the head and level-1 blocks keep 120).
const MERGED_CHUNK_SAMPLES: usize = 480;

struct MergedSeries {
    blocks: Vec<Arc<Block>>,
    block_range: i64,
    /// Next series id per block, and its decoded head.
    next: Vec<u64>,
    heads: Vec<Option<(Labels, Vec<ChunkMeta>)>>,
}

impl MergedSeries {
    fn new(blocks: &[Arc<Block>], block_range: i64) -> Self {
        let blocks = blocks.to_vec();
        let heads = blocks.iter().map(|b| b.series(0)).collect();
        MergedSeries { next: vec![1; blocks.len()], blocks, heads, block_range }
    }
}

impl Iterator for MergedSeries {
    type Item = (Labels, Vec<ChunkData>);

    fn next(&mut self) -> Option<Self::Item> {
        let labels = self.heads.iter().flatten().map(|(l, _)| l).min()?.clone();
        let mut chunks: Vec<Vec<Sample>> = Vec::new();
        let mut histograms: Vec<HistogramSample> = Vec::new();
        for i in 0..self.blocks.len() {
            if self.heads[i].as_ref().is_some_and(|(l, _)| *l == labels) {
                if let Some((_, metas)) = self.heads[i].take() {
                    for m in &metas {
                        match self.blocks[i].read_chunk(m.offset) {
                            Some(ChunkData::Floats(c)) if !c.is_empty() => chunks.push(c),
                            Some(ChunkData::Histograms(h)) => histograms.extend(h),
                            _ => {}
                        }
                    }
                }
                self.heads[i] = self.blocks[i].series(self.next[i]);
                self.next[i] += 1;
            }
        }
        chunks.sort_by_key(|c| c.first().map_or(i64::MIN, |s| s.t));
        let overlapping = chunks.windows(2).any(|w| match (w[0].last(), w[1].first()) {
            (Some(a), Some(b)) => b.t <= a.t,
            _ => false,
        });
        let mut chunks: Vec<ChunkData> = if overlapping {
            let mut samples: Vec<Sample> = chunks.concat();
            samples.sort_by_key(|s| s.t);
            samples.dedup_by_key(|s| s.t);
            split_chunks(&samples, self.block_range).into_iter().map(|c| ChunkData::Floats(c.to_vec())).collect()
        } else {
            // Merged blocks hold longer chunks than the head's 120 samples: every chunk costs
            // its header, length, checksum and index entry (~30 bytes), so joining the sources'
            // chunks up to MERGED_CHUNK_SAMPLES takes most of that off each sample.
            let mut joined: Vec<Vec<Sample>> = Vec::new();
            for samples in chunks {
                match joined.last_mut() {
                    Some(last) if last.len() + samples.len() <= MERGED_CHUNK_SAMPLES => last.extend(samples),
                    _ => joined.push(samples),
                }
            }
            joined.into_iter().map(ChunkData::Floats).collect()
        };
        if !histograms.is_empty() {
            histograms.sort_by_key(|s| s.t);
            histograms.dedup_by_key(|s| s.t);
            chunks.extend(histogram_chunk_data(&histograms, self.block_range));
        }
        Some((labels, chunks))
    }
}
