//! Any bytes: no panic, bounded output, only legal metric names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use periscope_ingest::decode_expvar;
use periscope_model::{is_legacy_metric_name, Labels};

fuzz_target!(|data: &[u8]| {
    if let Ok((batch, report)) = decode_expvar(data, 0, &Labels::empty(), 10_000) {
        assert_eq!(report.series, batch.series.len());
        assert!(report.series <= data.len());
        for s in &batch.series {
            assert!(is_legacy_metric_name(s.labels.metric_name().unwrap_or_default()));
        }
    }
});
