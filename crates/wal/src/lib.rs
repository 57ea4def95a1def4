//! A segmented, checksummed write-ahead log over opaque records, with group commit.
//!
//! Invariants and guarantees:
//! - Every record is framed as `len u32 LE | crc32 u32 LE | payload`; a record is either read
//!   back whole with a matching checksum or not at all (see `docs/format/wal.md`).
//! - [`Wal::log`] returns only after the record was handed to the kernel with `pwrite`, so a
//!   record whose append returned survives the death of the process (`kill -9`). With
//!   [`FsyncMode::Always`] it returns only after `fdatasync` covered it, so it also survives a
//!   power cut; concurrent appenders share one `fdatasync` (group commit).
//! - Segments are only ever appended to; a failed write is cut back so that no garbage stays
//!   between records. Replay repairs a torn tail by truncating the segment at the first bad
//!   record and reports it.
//! - No async: callers on an async runtime call in from a blocking thread.

pub mod block_file;
mod checkpoint;
pub mod codec;
mod error;
mod periodic;
mod reader;
mod segment;
mod tenants;
mod writer;

pub use checkpoint::{
    expire_blocks, list_checkpoints, remove_unfinished_checkpoints, replay_checkpointed, write_checkpoint,
    CheckpointError,
};
pub use error::WalError;
pub use periodic::Periodic;
pub use reader::{replay, ReplayStats};
pub use segment::{list_segments, segment_path, SEGMENT_HEADER_LEN, SEGMENT_MAGIC};
pub use tenants::{tenant_dirs, TenantMap};
pub use writer::{FsyncMode, Wal, WalOptions, WalStats};

/// Bytes of framing before each record's payload.
pub const RECORD_HEADER_LEN: usize = 8;

/// The largest payload one record may carry; larger ones are refused when written and treated
/// as corruption when read, so that a damaged length never makes replay allocate gigabytes.
pub const MAX_RECORD_LEN: usize = 512 << 20;
