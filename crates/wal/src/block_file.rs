//! Sealed block files: the framing the log and trace engines share for their immutable
//! blocks (`docs/format/logs.md`, `docs/format/traces.md`).
//!
//! ```text
//! file   := magic (8) | data | zstd(footer) | u32 raw_len | u32 z_len | u32 crc32(z) | magic (8)
//! ```
//!
//! Invariants: [`seal`] writes to a temporary name, fsyncs and renames, then fsyncs the
//! directory, so a crash never leaves a partial block under a block's name; [`open`] checks
//! both magics, bounds the footer's lengths and checks its CRC before decompressing it, so a
//! damaged file is an error, never a panic or a huge allocation.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// zstd level of footers (and of the engines' pages): 3 is zstd's default, the knee of size
/// per CPU.
pub const ZSTD_LEVEL: i32 = 3;
/// Largest uncompressed footer, page or column read back (a bound on a damaged length).
pub const MAX_RAW: usize = 1 << 30;
/// Bytes after the compressed footer: three u32 and the closing magic.
const TAIL: u64 = 20;

/// Errors of block files.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("block {path} is damaged: {what}")]
    Corrupt { path: PathBuf, what: String },
}

/// Maps an I/O error of `op` on `path` to a [`BlockError`].
pub fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BlockError + 'a {
    move |source| BlockError::Io { op, path: path.to_path_buf(), source }
}

/// A new block's bytes so far: the opening magic, to which the caller appends its data.
pub fn start(magic: &[u8; 8]) -> Vec<u8> {
    magic.to_vec()
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// Appends the compressed `footer` and the tail to `bytes` (begun by [`start`]) and writes
/// them durably to a new file `<time>-<seq>.<ext>` in `dir`. Returns its path, the file
/// opened for reading and its size.
pub fn seal(
    dir: &Path,
    ext: &str,
    magic: &[u8; 8],
    mut bytes: Vec<u8>,
    footer: &[u8],
) -> Result<(PathBuf, File, u64), BlockError> {
    let z = zstd::bulk::compress(footer, ZSTD_LEVEL).map_err(io("compress the footer of", dir))?;
    bytes.extend_from_slice(&z);
    bytes.extend_from_slice(&(footer.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&(z.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&z).to_le_bytes());
    bytes.extend_from_slice(magic);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let name = format!("{now:016x}-{:04x}", SEQ.fetch_add(1, Ordering::Relaxed) & 0xffff);
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(format!("{name}.{ext}"));
    {
        let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
        f.write_all(&bytes).map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("sync", &tmp))?;
    }
    std::fs::rename(&tmp, &path).map_err(io("rename", &tmp))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io("sync", dir))?;
    let file = File::open(&path).map_err(io("open", &path))?;
    Ok((path, file, bytes.len() as u64))
}

/// The block files `*.<ext>` in `dir`, after deleting the `*.tmp` files of writes that did
/// not finish.
pub fn list(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, BlockError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io("list", dir))?.flatten() {
        let p = e.path();
        match p.extension().and_then(|x| x.to_str()) {
            Some(x) if x == ext => out.push(p),
            Some("tmp") => drop(std::fs::remove_file(&p)),
            _ => {}
        }
    }
    Ok(out)
}

/// A block file opened by [`open`].
pub struct Opened {
    pub file: File,
    pub size: u64,
    /// The decompressed footer.
    pub footer: Vec<u8>,
    /// Where the data ends (the compressed footer begins): no page or column may pass it.
    pub data_end: u64,
}

/// Opens a block file written by [`seal`] with `magic`, checking and decompressing its footer.
pub fn open(path: &Path, magic: &[u8; 8]) -> Result<Opened, BlockError> {
    let corrupt = |what: String| BlockError::Corrupt { path: path.to_path_buf(), what };
    let file = File::open(path).map_err(io("open", path))?;
    let size = file.metadata().map_err(io("stat", path))?.len();
    if size < 8 + TAIL + 8 {
        return Err(corrupt("shorter than a header and footer".into()));
    }
    let mut head = [0u8; 8];
    file.read_exact_at(&mut head, 0).map_err(io("read", path))?;
    let mut tail = [0u8; TAIL as usize];
    file.read_exact_at(&mut tail, size - TAIL).map_err(io("read", path))?;
    if &head != magic || &tail[12..] != magic {
        return Err(corrupt("no block magic".into()));
    }
    let word = |i: usize| u32::from_le_bytes([tail[i], tail[i + 1], tail[i + 2], tail[i + 3]]);
    let (raw_len, z_len, crc) = (word(0) as usize, u64::from(word(4)), word(8));
    if 8 + z_len + TAIL > size || raw_len > MAX_RAW {
        return Err(corrupt("footer length out of range".into()));
    }
    let data_end = size - TAIL - z_len;
    let mut z = vec![0u8; z_len as usize];
    file.read_exact_at(&mut z, data_end).map_err(io("read", path))?;
    if crc32fast::hash(&z) != crc {
        return Err(corrupt("footer checksum mismatch".into()));
    }
    let footer = zstd::bulk::decompress(&z, raw_len).map_err(|e| corrupt(format!("footer: {e}")))?;
    Ok(Opened { file, size, footer, data_end })
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &[u8; 8] = b"TESTBLK1";

    #[test]
    fn sealed_file_opens_and_damage_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut bytes = start(M);
        bytes.extend_from_slice(b"data");
        let (path, _, size) = seal(dir.path(), "blk", M, bytes, b"the footer").expect("seal");
        assert_eq!(path.extension().and_then(|e| e.to_str()), Some("blk"));
        let o = open(&path, M).expect("open");
        assert_eq!((o.size, o.data_end, o.footer.as_slice()), (size, 12, &b"the footer"[..]));
        assert!(matches!(open(&path, b"OTHERBLK"), Err(BlockError::Corrupt { .. })));
        let mut raw = std::fs::read(&path).expect("read");
        let n = raw.len();
        raw[n - 22] ^= 0xff; // the last byte of the compressed footer
        std::fs::write(&path, &raw).expect("write");
        let err = open(&path, M).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("footer checksum mismatch"), "{err}");
        std::fs::write(&path, &raw[..n - 1]).expect("write");
        assert!(matches!(open(&path, M), Err(BlockError::Corrupt { .. })));
        assert!(std::fs::read_dir(dir.path())
            .expect("ls")
            .all(|e| { e.map(|e| e.path().extension().and_then(|x| x.to_str()) != Some("tmp")).unwrap_or(false) }));
    }
}
