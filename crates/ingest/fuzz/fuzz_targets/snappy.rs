//! Any bytes: no panic, the cap holds, and the output equals the snap crate's own decoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use periscope_ingest::snappy_capped;

const CAP: usize = 1 << 24;

fuzz_target!(|data: &[u8]| {
    if let Ok(out) = snappy_capped(data, CAP) {
        assert!(out.len() <= CAP);
        #[allow(clippy::disallowed_methods)] // the reference, on input already known to be capped
        let reference = snap::raw::Decoder::new().decompress_vec(data).expect("snap agrees the block is valid");
        assert_eq!(out, reference);
    }
});
