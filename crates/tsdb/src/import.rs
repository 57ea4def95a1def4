//! Backfill: writing historical samples straight into blocks, bypassing the head and the WAL
//! (as `promtool tsdb create-blocks-from` does). Used by `periscope import`.
//!
//! Samples are grouped by block range and series; each range becomes one level-1 block,
//! written with the same atomic temp-dir-and-rename as every block. Blocks may overlap data
//! already stored: queries merge overlapping sources and compaction re-encodes overlapping
//! chunks, so equal timestamps are kept once.

use crate::block::ChunkData;
use crate::db::Db;
use crate::error::TsdbError;
use crate::head::split_chunks;
use periscope_model::{Labels, Sample};
use std::collections::BTreeMap;

/// What an import stored and dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub blocks: usize,
    pub series: usize,
    pub samples: u64,
    /// Samples of a series repeating an earlier timestamp of that series (the first is kept).
    pub duplicate_timestamps: u64,
}

impl Db {
    /// Writes `series` (any order of samples) into blocks aligned to the block range.
    pub(crate) fn import(&self, series: BTreeMap<Labels, Vec<Sample>>) -> Result<ImportReport, TsdbError> {
        let _g = crate::head::lock(&self.maintenance);
        let range = self.opts.block_range_ms;
        let mut report = ImportReport::default();
        // range start → series → samples
        let mut by_range: BTreeMap<i64, Vec<(Labels, Vec<Sample>)>> = BTreeMap::new();
        for (labels, mut samples) in series {
            samples.sort_by_key(|s| s.t);
            let before = samples.len();
            samples.dedup_by_key(|s| s.t);
            report.duplicate_timestamps += (before - samples.len()) as u64;
            if samples.is_empty() {
                continue;
            }
            report.series += 1;
            report.samples += samples.len() as u64;
            let mut rest = samples.as_slice();
            while let Some(first) = rest.first() {
                let start = first.t.div_euclid(range) * range;
                let end = start.saturating_add(range);
                let n = rest.partition_point(|s| s.t < end);
                by_range.entry(start).or_default().push((labels.clone(), rest[..n].to_vec()));
                rest = &rest[n..];
            }
        }
        for (_, list) in by_range {
            // BTreeMap iteration kept the series sorted by labels within each range.
            let block = self.write_new_block(
                1,
                Vec::new(),
                list.into_iter().map(|(l, s)| {
                    let chunks = split_chunks(&s, range).into_iter().map(|c| ChunkData::Floats(c.to_vec())).collect();
                    (l, chunks)
                }),
            )?;
            self.add_block(block);
            report.blocks += 1;
        }
        Ok(report)
    }
}
