//! Any bytes: no panic; whatever decodes re-encodes and decodes to the same batch.
#![no_main]

use libfuzzer_sys::fuzz_target;
use periscope_ingest::{decode_write_request, encode_write_request, DecodeLimits};

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits { max_labels_per_series: 64, ..DecodeLimits::UNLIMITED };
    if let Ok((batch, report)) = decode_write_request(data, &limits) {
        assert_eq!(report.series, batch.series.len());
        assert!(report.series <= data.len());
        let again = encode_write_request(&batch);
        let (batch2, _) = decode_write_request(&again, &limits).expect("a re-encoded batch decodes");
        assert_eq!(batch.series.len(), batch2.series.len());
        for (a, b) in batch.series.iter().zip(&batch2.series) {
            assert_eq!(a.labels, b.labels);
            assert!(a.samples.iter().zip(&b.samples).all(|(x, y)| x.bit_eq(y)));
        }
        assert_eq!(batch.metadata, batch2.metadata);
    }
});
