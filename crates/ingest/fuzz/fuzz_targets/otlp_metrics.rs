//! Any bytes, as protobuf and as OTLP/JSON: no panic; translation keeps its invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use periscope_ingest::otlp_metrics::{decode_metrics_request, translate, OtlpEncoding, TranslateOptions};

fuzz_target!(|data: &[u8]| {
    for encoding in [OtlpEncoding::Protobuf, OtlpEncoding::Json] {
        if let Ok(req) = decode_metrics_request(data, encoding) {
            let (batch, report) = translate(&req, &TranslateOptions::default());
            assert!(report.rejected_points <= report.data_points);
            assert_eq!(report.series, batch.series.len());
            for s in &batch.series {
                assert!(s.labels.metric_name().is_some_and(|n| !n.is_empty()));
            }
        }
    }
});
