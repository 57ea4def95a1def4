//! Capped decompression.
//!
//! Invariants:
//! - Nothing is allocated before the decoded length is known and checked against the caller's
//!   cap; a body that would decode past the cap is refused with [`IngestError::DecodedTooLarge`]
//!   (class `TooLarge`).
//! - The decoded length is also checked against what a valid block of the given size can
//!   produce (snappy expands at most ~21.3×: a 3-byte copy element yields 64 bytes), so a tiny
//!   hostile body cannot make us allocate up to the cap before failing.
//! - The output holds exactly the decoded bytes.
//!
//! Snappy: only the block format (what Prometheus remote_write sends), not the framed
//! (streaming) one. Gzip ([`gzip_capped`], what OTLP senders use): one or more members;
//! gzip announces no trustworthy length, so the output is read up to the cap plus one byte
//! and refused past it, never allocating more than the cap.

use crate::IngestError;

/// Upper bound on snappy's expansion ratio, with room to spare: the densest element, a copy
/// with a 2-byte offset, is 3 bytes long and yields 64 bytes; the length header adds 1–5 bytes.
const SNAPPY_MAX_RATIO: usize = 22;

/// Slack for tiny blocks, whose header dominates their length.
const SNAPPY_RATIO_SLACK: usize = 64;

/// Decompresses a snappy block (`snap::raw` format), refusing — before allocating — a body
/// whose header announces more than `max_decoded` bytes.
///
/// Errors: [`IngestError::DecodedTooLarge`] (class `TooLarge`) when the announced length
/// exceeds `max_decoded`; [`IngestError::SnappyImplausibleLength`] when it exceeds what the
/// block could possibly hold; [`IngestError::Snappy`] for any corrupt block.
pub fn snappy_capped(input: &[u8], max_decoded: usize) -> Result<Vec<u8>, IngestError> {
    let decoded = snap::raw::decompress_len(input).map_err(IngestError::Snappy)?;
    if decoded > max_decoded {
        return Err(IngestError::DecodedTooLarge { decoded, limit: max_decoded });
    }
    let plausible = input.len().saturating_mul(SNAPPY_MAX_RATIO).saturating_add(SNAPPY_RATIO_SLACK);
    if decoded > plausible {
        return Err(IngestError::SnappyImplausibleLength { decoded, compressed: input.len() });
    }
    let mut out = vec![0u8; decoded];
    let written = snap::raw::Decoder::new().decompress(input, &mut out).map_err(IngestError::Snappy)?;
    // `decompress` checks that the block fills exactly the announced length; truncate anyway
    // so that the contract ("exactly the decoded bytes") holds whatever the library does.
    out.truncate(written);
    Ok(out)
}

/// Decompresses a gzip body (one or more members), refusing one that decodes to more than
/// `max_decoded` bytes.
///
/// Errors: [`IngestError::GzipTooLarge`] (class `TooLarge`) past the cap;
/// [`IngestError::Gzip`] for a corrupt or truncated body.
pub fn gzip_capped(input: &[u8], max_decoded: usize) -> Result<Vec<u8>, IngestError> {
    use std::io::Read as _;
    let mut out = Vec::with_capacity(input.len().saturating_mul(4).min(max_decoded).min(1 << 20));
    let limit = (max_decoded as u64).saturating_add(1);
    flate2::read::MultiGzDecoder::new(input).take(limit).read_to_end(&mut out).map_err(IngestError::Gzip)?;
    if out.len() > max_decoded {
        return Err(IngestError::GzipTooLarge { limit: max_decoded });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use periscope_model::{Classify, ErrorClass};

    use super::*;

    fn compress(data: &[u8]) -> Vec<u8> {
        snap::raw::Encoder::new().compress_vec(data).unwrap()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_round_trip_cap_and_corruption() {
        let data = vec![42u8; 100_000];
        let g = gzip(&data);
        assert_eq!(gzip_capped(&g, data.len()).unwrap(), data);
        let err = gzip_capped(&g, data.len() - 1).unwrap_err();
        assert_eq!(err.class(), ErrorClass::TooLarge);
        // Two members are one body.
        let two = [gzip(b"ab"), gzip(b"cd")].concat();
        assert_eq!(gzip_capped(&two, 10).unwrap(), b"abcd");
        for bad in [&b"not gzip"[..], &g[..g.len() / 2], b""] {
            assert_eq!(gzip_capped(bad, 1 << 20).unwrap_err().class(), ErrorClass::InvalidInput);
        }
    }

    #[test]
    fn round_trip() {
        let data: Vec<u8> = (0..10_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let c = compress(&data);
        assert_eq!(snappy_capped(&c, data.len()).unwrap(), data);
        assert_eq!(snappy_capped(&compress(b""), 0).unwrap(), b"");
    }

    #[test]
    fn refuses_over_cap_with_too_large() {
        let data = vec![7u8; 1000];
        let err = snappy_capped(&compress(&data), 999).unwrap_err();
        assert_eq!(err.class(), ErrorClass::TooLarge);
        assert!(err.to_string().contains("1000 bytes"), "{err}");
    }

    #[test]
    fn refuses_a_lying_header_before_allocating() {
        // Header claims 2^32 - 1 bytes, body is three bytes: refused without allocating 4 GiB.
        let input = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x01, 0x02];
        let err = snappy_capped(&input, usize::MAX).unwrap_err();
        assert!(matches!(err, IngestError::SnappyImplausibleLength { .. }), "{err}");
        assert_eq!(err.class(), ErrorClass::InvalidInput);
    }

    #[test]
    fn densest_valid_block_is_plausible() {
        // Zeros compress to the densest run of copies the encoder makes.
        let data = vec![0u8; 1 << 20];
        let c = compress(&data);
        assert!(c.len() * SNAPPY_MAX_RATIO >= data.len(), "ratio {}", data.len() / c.len());
        assert_eq!(snappy_capped(&c, data.len()).unwrap().len(), data.len());
    }

    #[test]
    fn corrupt_and_empty_inputs_are_invalid() {
        for input in [&b""[..], &[0x80][..], &[0x05, 0x00][..], &[0x0a, 0xfc, 0xff][..]] {
            let err = snappy_capped(input, 1 << 20).unwrap_err();
            assert_eq!(err.class(), ErrorClass::InvalidInput, "{input:?}: {err}");
        }
    }
}
