//! Segment files: `<dir>/<8-digit index>`, each starting with an 8-byte header.

use crate::WalError;
use std::path::{Path, PathBuf};

/// The first four bytes of every segment.
pub const SEGMENT_MAGIC: &[u8; 4] = b"PSWL";
/// Format version written after the magic (u32 LE).
pub const SEGMENT_VERSION: u32 = 1;
/// Magic plus version.
pub const SEGMENT_HEADER_LEN: u64 = 8;

/// The path of segment `index` in `dir`.
pub fn segment_path(dir: &Path, index: u32) -> PathBuf {
    dir.join(format!("{index:08}"))
}

/// The segments in `dir`, sorted by index. Files that are not named by eight digits are ignored.
pub fn list_segments(dir: &Path) -> Result<Vec<(u32, PathBuf)>, WalError> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(WalError::io("list", dir, e)),
    };
    for entry in rd {
        let entry = entry.map_err(|e| WalError::io("list", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() != 8 || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(i) = name.parse::<u32>() {
            out.push((i, entry.path()));
        }
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out)
}

pub(crate) fn header() -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..4].copy_from_slice(SEGMENT_MAGIC);
    h[4..].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h
}

/// Makes a new directory entry durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    let d = std::fs::File::open(dir).map_err(|e| WalError::io("open directory", dir, e))?;
    d.sync_all().map_err(|e| WalError::io("fsync directory", dir, e))
}
