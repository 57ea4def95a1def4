//! Checkpoints and block retention shared by the engines that cut their head into blocks
//! (traces, logs): a checkpoint `wal/checkpoint.N` is a WAL directory of its own holding what
//! was left in the head when the log was cut at segment N+1; it is written to a temporary
//! name and renamed, then the segments it replaces and older checkpoints are deleted. Replay
//! reads the newest checkpoint, then the segments after it.

use crate::{replay, FsyncMode, Wal, WalError, WalOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The checkpoint directories in `wal_dir`, sorted by the last segment they cover.
pub fn list_checkpoints(wal_dir: &Path) -> Vec<(u32, PathBuf)> {
    let mut out: Vec<(u32, PathBuf)> = std::fs::read_dir(wal_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            Some((name.strip_prefix("checkpoint.")?.parse().ok()?, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// Deletes checkpoints whose write did not finish.
pub fn remove_unfinished_checkpoints(wal_dir: &Path) {
    for e in std::fs::read_dir(wal_dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with("checkpoint.") && name.ends_with(".tmp") {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Replays the newest checkpoint (`f(true, segment, record)`), then the segments of `wal_dir`
/// after it (`f(false, …)`).
pub fn replay_checkpointed<E>(
    wal_dir: &Path,
    mut f: impl FnMut(bool, u32, &[u8]) -> Result<(), (u32, E)>,
) -> Result<Result<(), (u32, E)>, WalError> {
    let from = match list_checkpoints(wal_dir).pop() {
        Some((last, path)) => {
            if let Err(e) = replay(&path, 0, |seg, payload| f(true, seg, payload))? {
                return Ok(Err(e));
            }
            last + 1
        }
        None => 0,
    };
    Ok(replay(wal_dir, from, |seg, payload| f(false, seg, payload))?.map(drop))
}

/// Why a checkpoint could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Writes `wal/checkpoint.<seg-1>` with the records `write` logs, then deletes the segments of
/// `wal` before `seg` (from [`Wal::cut`]) and older checkpoints.
pub fn write_checkpoint(
    wal: &Wal,
    seg: u32,
    write: impl FnOnce(&Wal) -> Result<(), WalError>,
) -> Result<(), CheckpointError> {
    let wal_dir = wal.dir().to_path_buf();
    let io = |op, path: &Path| {
        let path = path.to_path_buf();
        move |source| CheckpointError::Io { op, path, source }
    };
    let name = format!("checkpoint.{:08}", seg.saturating_sub(1));
    let tmp = wal_dir.join(format!("{name}.tmp"));
    let _ = std::fs::remove_dir_all(&tmp);
    {
        let cp = Wal::open(
            &tmp,
            WalOptions { segment_size: 256 << 20, fsync: FsyncMode::Interval(Duration::from_secs(3600)) },
        )?;
        write(&cp)?;
        cp.close()?;
    }
    let path = wal_dir.join(&name);
    let _ = std::fs::remove_dir_all(&path);
    std::fs::rename(&tmp, &path).map_err(io("rename", &tmp))?;
    std::fs::File::open(&wal_dir).and_then(|d| d.sync_all()).map_err(io("sync", &wal_dir))?;
    wal.remove_segments_before(seg)?;
    for (i, p) in list_checkpoints(&wal_dir) {
        if i < seg.saturating_sub(1) {
            let _ = std::fs::remove_dir_all(p);
        }
    }
    Ok(())
}

/// Takes out of `blocks` those retention deletes: the ones whose newest data (`newest_of`) is
/// more than `retention_ns` (0: no limit) behind `newest`, then the oldest while all together
/// take more than `retention_bytes` (0: no limit). `blocks` must be oldest first.
pub fn expire_blocks<B>(
    blocks: &mut Vec<B>,
    newest: i64,
    retention_ns: i64,
    retention_bytes: u64,
    newest_of: impl Fn(&B) -> i64,
    size_of: impl Fn(&B) -> u64,
) -> Vec<B> {
    let mut doomed = Vec::new();
    if retention_ns > 0 {
        let keep_after = newest.saturating_sub(retention_ns);
        let (old, keep): (Vec<B>, Vec<B>) = blocks.drain(..).partition(|b| newest_of(b) < keep_after);
        doomed.extend(old);
        *blocks = keep;
    }
    if retention_bytes > 0 {
        let mut total: u64 = blocks.iter().map(&size_of).sum();
        while total > retention_bytes && !blocks.is_empty() {
            let b = blocks.remove(0);
            total -= size_of(&b);
            doomed.push(b);
        }
    }
    doomed
}
