//! Replay: reads segments in order, checks every record, repairs a torn tail.

use crate::segment::{header, list_segments, SEGMENT_HEADER_LEN};
use crate::{WalError, MAX_RECORD_LEN, RECORD_HEADER_LEN};
use std::path::Path;

/// What a replay read and repaired.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayStats {
    pub segments: usize,
    pub records: u64,
    pub bytes: u64,
    /// Segments cut at a bad record (a torn tail after a crash, or corruption).
    pub repaired_segments: usize,
    /// Bytes discarded by those repairs.
    pub discarded_bytes: u64,
}

/// Replays every record of the segments with index `>= from`, in order, calling
/// `f(segment, payload)`. A segment whose records stop being valid is truncated at the first bad
/// record (a torn write after `kill -9` leaves exactly this) and replay goes on with the next
/// segment; such repairs are counted and logged. An error from `f` stops the replay.
pub fn replay<E>(
    dir: &Path,
    from: u32,
    mut f: impl FnMut(u32, &[u8]) -> Result<(), E>,
) -> Result<Result<ReplayStats, E>, WalError> {
    let mut stats = ReplayStats::default();
    for (index, path) in list_segments(dir)? {
        if index < from {
            continue;
        }
        let data = std::fs::read(&path).map_err(|e| WalError::io("read segment", &path, e))?;
        stats.segments += 1;
        if data.len() < SEGMENT_HEADER_LEN as usize || data[..SEGMENT_HEADER_LEN as usize] != header() {
            // A segment that died before its header was complete holds no record.
            if data.len() < SEGMENT_HEADER_LEN as usize && header().starts_with(&data) {
                truncate(&path, 0, data.len() as u64, &mut stats)?;
                continue;
            }
            return Err(WalError::BadHeader { path });
        }
        let mut pos = SEGMENT_HEADER_LEN as usize;
        while pos < data.len() {
            match record_at(&data, pos) {
                Some(payload) => {
                    if let Err(e) = f(index, payload) {
                        return Ok(Err(e));
                    }
                    stats.records += 1;
                    stats.bytes += payload.len() as u64;
                    pos += RECORD_HEADER_LEN + payload.len();
                }
                None => {
                    tracing::warn!(segment = %path.display(), offset = pos, discarded = data.len() - pos,
                        "write-ahead log segment ends in a torn or corrupt record; truncating it");
                    truncate(&path, pos as u64, (data.len() - pos) as u64, &mut stats)?;
                    break;
                }
            }
        }
    }
    Ok(Ok(stats))
}

fn truncate(path: &Path, len: u64, discarded: u64, stats: &mut ReplayStats) -> Result<(), WalError> {
    let file = std::fs::OpenOptions::new().write(true).open(path).map_err(|e| WalError::io("open segment", path, e))?;
    let len = len.max(if len == 0 { 0 } else { SEGMENT_HEADER_LEN });
    file.set_len(len).map_err(|e| WalError::io("truncate segment", path, e))?;
    file.sync_all().map_err(|e| WalError::io("fsync segment", path, e))?;
    stats.repaired_segments += 1;
    stats.discarded_bytes += discarded;
    Ok(())
}

/// The payload of the record starting at `pos`, if it is whole and its checksum matches.
fn record_at(data: &[u8], pos: usize) -> Option<&[u8]> {
    let head = data.get(pos..pos + RECORD_HEADER_LEN)?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if len == 0 || len > MAX_RECORD_LEN {
        return None;
    }
    let payload = data.get(pos + RECORD_HEADER_LEN..pos + RECORD_HEADER_LEN + len)?;
    (crc32fast::hash(payload) == crc).then_some(payload)
}
