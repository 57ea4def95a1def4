//! The appending side: one open segment, rotation by size, group commit.

use crate::segment::{header, list_segments, segment_path, sync_dir, SEGMENT_HEADER_LEN};
use crate::{WalError, MAX_RECORD_LEN};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// When the log calls `fdatasync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncMode {
    /// In the background at this interval: an acknowledged record survives `kill -9`; a power
    /// cut may lose up to one interval.
    Interval(Duration),
    /// Before every append returns (shared by concurrent appenders): survives a power cut.
    Always,
}

/// How a log is opened.
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// A segment that reaches this size is closed and a new one started.
    pub segment_size: u64,
    pub fsync: FsyncMode,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions { segment_size: 128 << 20, fsync: FsyncMode::Interval(Duration::from_secs(1)) }
    }
}

/// Counters for self-metrics; all monotonic except `segment`.
#[derive(Debug, Default)]
pub struct WalStats {
    pub bytes_written: AtomicU64,
    pub records_written: AtomicU64,
    pub fsyncs: AtomicU64,
    pub fsync_nanos: AtomicU64,
    pub write_failures: AtomicU64,
    pub segments_created: AtomicU64,
    /// Index of the segment being written.
    pub segment: AtomicU64,
}

struct Writer {
    file: Arc<File>,
    segment: u32,
    /// Bytes in the current segment, header included.
    seg_len: u64,
    /// Total bytes appended since open: the log sequence number of the end of the last record.
    lsn: u64,
    /// Reused buffers: the payload the caller encodes, and the framed record.
    body: Vec<u8>,
    frame: Vec<u8>,
}

struct SyncState {
    synced_lsn: u64,
    syncing: bool,
    failed: Option<String>,
}

struct Inner {
    dir: PathBuf,
    opts: WalOptions,
    writer: Mutex<Option<Writer>>,
    sync: Mutex<SyncState>,
    sync_cv: Condvar,
    stats: WalStats,
    closing: AtomicBool,
}

/// An open write-ahead log. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Wal {
    inner: Arc<Inner>,
    syncer: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves the state consistent (every mutation is a
    // single assignment after the I/O succeeded), so poisoning is not a reason to stop logging.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Wal {
    /// Opens the log in `dir` (created if missing) and starts a new segment after the last
    /// existing one. Replay existing segments with [`crate::replay`] before calling this.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<Wal, WalError> {
        std::fs::create_dir_all(dir).map_err(|e| WalError::io("create directory", dir, e))?;
        let next = list_segments(dir)?.last().map(|(i, _)| i + 1).unwrap_or(0);
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            opts,
            writer: Mutex::new(None),
            sync: Mutex::new(SyncState { synced_lsn: 0, syncing: false, failed: None }),
            sync_cv: Condvar::new(),
            stats: WalStats::default(),
            closing: AtomicBool::new(false),
        });
        let w = inner.create_segment(next, 0)?;
        *lock(&inner.writer) = Some(w);
        let syncer = match inner.opts.fsync {
            FsyncMode::Interval(every) => {
                let bg = inner.clone();
                let handle = std::thread::Builder::new()
                    .name("wal-fsync".into())
                    .spawn(move || bg.background_sync(every))
                    .map_err(|e| WalError::io("start fsync thread for", dir, e))?;
                Some(handle)
            }
            FsyncMode::Always => None,
        };
        Ok(Wal { inner, syncer: Mutex::new(syncer) })
    }

    /// Appends one record whose payload `encode` writes into the buffer it is given (the buffer
    /// is empty on entry). Returns `encode`'s result once the record is durable by the
    /// configured rule; an empty payload writes nothing. `encode` runs under the log's lock, so
    /// records appear in the log in the order their `encode` ran.
    pub fn log<R>(&self, encode: impl FnOnce(&mut Vec<u8>) -> R) -> Result<R, WalError> {
        self.log_checked(|buf| Ok::<R, std::convert::Infallible>(encode(buf))).map(|r| match r {
            Ok(r) => r,
            Err(never) => match never {},
        })
    }

    /// As [`Wal::log`], but `encode` may refuse; its error is returned as `Ok(Err(..))` and
    /// nothing is written.
    pub fn log_checked<R, E>(
        &self,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<R, E>,
    ) -> Result<Result<R, E>, WalError> {
        match self.write_checked(encode)? {
            Ok((r, lsn)) => {
                self.wait_durable(lsn)?;
                Ok(Ok(r))
            }
            Err(e) => Ok(Err(e)),
        }
    }

    /// Waits until the record ending at `lsn` (from [`Wal::write_checked`]) is durable by the
    /// configured rule: at once for [`FsyncMode::Interval`], after a shared `fdatasync` for
    /// [`FsyncMode::Always`].
    pub fn wait_durable(&self, lsn: u64) -> Result<(), WalError> {
        if self.inner.opts.fsync == FsyncMode::Always {
            self.inner.sync_to(lsn)?;
        }
        Ok(())
    }

    /// Writes one record whose encoding cannot fail, without waiting for durability; returns
    /// the log position to pass to [`Wal::wait_durable`] (see [`Wal::write_checked`]).
    pub fn write(&self, encode: impl FnOnce(&mut Vec<u8>)) -> Result<u64, WalError> {
        let checked = |buf: &mut Vec<u8>| {
            encode(buf);
            Ok::<(), std::convert::Infallible>(())
        };
        match self.write_checked(checked)? {
            Ok(((), lsn)) => Ok(lsn),
            Err(never) => match never {},
        }
    }

    /// Writes one record as [`Wal::log_checked`] does, without waiting for durability; returns
    /// `encode`'s result and the log position to pass to [`Wal::wait_durable`]. A caller that
    /// must apply the record's effects in log order does so between the two calls, under a lock
    /// of its own, so that concurrent appenders still share one `fdatasync`.
    pub fn write_checked<R, E>(
        &self,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<R, E>,
    ) -> Result<Result<(R, u64), E>, WalError> {
        let inner = &self.inner;
        if inner.closing.load(Ordering::Acquire) {
            return Err(WalError::Closed);
        }
        if let Some(msg) = &lock(&inner.sync).failed {
            return Err(WalError::SyncFailed(msg.clone()));
        }
        let end_lsn;
        let result;
        {
            let mut guard = lock(&inner.writer);
            let w = guard.as_mut().ok_or(WalError::Closed)?;
            let mut body = std::mem::take(&mut w.body);
            body.clear();
            result = match encode(&mut body) {
                Ok(r) => r,
                Err(e) => {
                    w.body = body;
                    return Ok(Err(e));
                }
            };
            if body.is_empty() || body.len() > MAX_RECORD_LEN {
                let len = body.len();
                w.body = body;
                if len == 0 {
                    return Ok(Ok((result, w.lsn)));
                }
                return Err(WalError::RecordTooLarge { len, max: MAX_RECORD_LEN });
            }
            let mut frame = std::mem::take(&mut w.frame);
            frame.clear();
            frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
            frame.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
            frame.extend_from_slice(&body);
            w.body = body;
            let rec_len = frame.len() as u64;
            if w.seg_len > SEGMENT_HEADER_LEN && w.seg_len + rec_len > inner.opts.segment_size {
                if let Err(e) = inner.rotate(w) {
                    w.frame = frame;
                    return Err(e);
                }
            }
            let written = w.file.write_all_at(&frame, w.seg_len);
            w.frame = frame;
            if let Err(e) = written {
                inner.stats.write_failures.fetch_add(1, Ordering::Relaxed);
                // Cut off whatever part of the record reached the file, so that the next record
                // follows the last good one.
                let _ = w.file.set_len(w.seg_len);
                return Err(WalError::io("write", segment_path(&inner.dir, w.segment), e));
            }
            w.seg_len += rec_len;
            w.lsn += rec_len;
            end_lsn = w.lsn;
            inner.stats.bytes_written.fetch_add(rec_len, Ordering::Relaxed);
            inner.stats.records_written.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Ok((result, end_lsn)))
    }

    /// Closes the current segment and starts a new one; returns the new segment's index. Every
    /// record logged before the call is in a segment with a smaller index.
    pub fn cut(&self) -> Result<u32, WalError> {
        let mut guard = lock(&self.inner.writer);
        let w = guard.as_mut().ok_or(WalError::Closed)?;
        self.inner.rotate(w)?;
        Ok(w.segment)
    }

    /// Deletes every segment with an index below `index` (their records are persisted
    /// elsewhere). The segment being written is never deleted.
    pub fn remove_segments_before(&self, index: u32) -> Result<usize, WalError> {
        let current = lock(&self.inner.writer).as_ref().map(|w| w.segment).unwrap_or(u32::MAX);
        let mut removed = 0;
        for (i, path) in list_segments(&self.inner.dir)? {
            if i >= index || i >= current {
                break;
            }
            std::fs::remove_file(&path).map_err(|e| WalError::io("remove segment", &path, e))?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Forces an `fdatasync` of everything logged so far.
    pub fn sync(&self) -> Result<(), WalError> {
        let lsn = lock(&self.inner.writer).as_ref().map(|w| w.lsn).unwrap_or(0);
        self.inner.sync_to(lsn)
    }

    /// The directory of the log.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Counters for self-metrics.
    pub fn stats(&self) -> &WalStats {
        &self.inner.stats
    }

    /// Syncs everything and stops the background thread; later appends fail with
    /// [`WalError::Closed`]. Called by `Drop` too.
    pub fn close(&self) -> Result<(), WalError> {
        {
            let _st = lock(&self.inner.sync);
            if self.inner.closing.swap(true, Ordering::AcqRel) {
                return Ok(());
            }
            self.inner.sync_cv.notify_all();
        }
        if let Some(h) = lock(&self.syncer).take() {
            let _ = h.join();
        }
        let lsn = lock(&self.inner.writer).as_ref().map(|w| w.lsn).unwrap_or(0);
        let r = self.inner.sync_to(lsn);
        *lock(&self.inner.writer) = None;
        r
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Err(error) = self.close() {
            tracing::error!(%error, "failed to sync the write-ahead log on close");
        }
    }
}

impl Inner {
    fn create_segment(&self, index: u32, lsn: u64) -> Result<Writer, WalError> {
        let path = segment_path(&self.dir, index);
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .read(true)
            .open(&path)
            .map_err(|e| WalError::io("create segment", &path, e))?;
        file.write_all_at(&header(), 0).map_err(|e| WalError::io("write header of", &path, e))?;
        file.sync_all().map_err(|e| WalError::io("fsync segment", &path, e))?;
        sync_dir(&self.dir)?;
        self.stats.segments_created.fetch_add(1, Ordering::Relaxed);
        self.stats.segment.store(index as u64, Ordering::Relaxed);
        Ok(Writer {
            file: Arc::new(file),
            segment: index,
            seg_len: SEGMENT_HEADER_LEN,
            lsn,
            body: Vec::new(),
            frame: Vec::new(),
        })
    }

    /// Syncs the full segment and moves to the next. Holding the writer lock keeps the old file
    /// consistent with `lsn`: everything before the new segment is on disk when it returns.
    fn rotate(&self, w: &mut Writer) -> Result<(), WalError> {
        let path = segment_path(&self.dir, w.segment);
        let t = Instant::now();
        w.file.sync_data().map_err(|e| WalError::io("fsync segment", &path, e))?;
        self.count_fsync(t);
        {
            let mut s = lock(&self.sync);
            s.synced_lsn = s.synced_lsn.max(w.lsn);
        }
        let mut next = self.create_segment(w.segment + 1, w.lsn)?;
        next.body = std::mem::take(&mut w.body);
        *w = next;
        Ok(())
    }

    fn count_fsync(&self, started: Instant) {
        self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.stats.fsync_nanos.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    /// Waits until everything up to `lsn` is synced, syncing itself if nobody else is (one
    /// `fdatasync` then covers every appender that wrote before it started).
    fn sync_to(&self, lsn: u64) -> Result<(), WalError> {
        let mut st = lock(&self.sync);
        loop {
            if let Some(msg) = &st.failed {
                return Err(WalError::SyncFailed(msg.clone()));
            }
            if st.synced_lsn >= lsn {
                return Ok(());
            }
            if st.syncing {
                st = self.sync_cv.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            st.syncing = true;
            drop(st);
            let target = {
                let g = lock(&self.writer);
                g.as_ref().map(|w| (w.file.clone(), w.lsn, w.segment))
            };
            let result = match &target {
                Some((file, _, segment)) => {
                    let t = Instant::now();
                    let r = file.sync_data();
                    self.count_fsync(t);
                    r.map_err(|e| WalError::io("fsync segment", segment_path(&self.dir, *segment), e))
                }
                None => Ok(()),
            };
            st = lock(&self.sync);
            st.syncing = false;
            match (&result, target) {
                (Ok(()), Some((_, synced, _))) => st.synced_lsn = st.synced_lsn.max(synced),
                (Ok(()), None) => st.synced_lsn = st.synced_lsn.max(lsn),
                // After a failed fsync the kernel may have dropped the dirty pages: nothing
                // written since the last good sync can be promised any more (PostgreSQL's
                // "fsyncgate" lesson), so the log refuses further appends.
                (Err(e), _) => st.failed = Some(e.to_string()),
            }
            self.sync_cv.notify_all();
            result?;
        }
    }

    fn background_sync(&self, every: Duration) {
        loop {
            {
                // `close` sets `closing` and notifies while holding this lock, so checking it
                // under the lock before waiting cannot miss the wake-up.
                let st = lock(&self.sync);
                if self.closing.load(Ordering::Acquire) {
                    return;
                }
                let (_st, _) = self.sync_cv.wait_timeout(st, every).unwrap_or_else(|p| p.into_inner());
            }
            if self.closing.load(Ordering::Acquire) {
                return;
            }
            let lsn = lock(&self.writer).as_ref().map(|w| w.lsn).unwrap_or(0);
            if lsn > lock(&self.sync).synced_lsn {
                if let Err(error) = self.sync_to(lsn) {
                    tracing::error!(%error, "background fsync of the write-ahead log failed");
                }
            }
        }
    }
}
