//! Feeds arbitrary bytes to both formats in both modes: nothing may panic, and whatever strict
//! mode accepts, lenient mode must accept with the same samples (the property tests in
//! `tests/proptests.rs` check the same thing, bounded, on stable).
#![no_main]

use libfuzzer_sys::fuzz_target;
use periscope_textparse::{parse, Format, ParseOptions};

fuzz_target!(|data: &[u8]| {
    for format in [Format::PromText, Format::OpenMetrics] {
        let strict = parse(data, format, &ParseOptions { strict: true, default_timestamp_ms: None });
        let lenient = parse(data, format, &ParseOptions { strict: false, default_timestamp_ms: None });
        if let Ok(s) = strict {
            let l = lenient.expect("strict accepted what lenient refused");
            assert_eq!(format!("{:?}", s.samples), format!("{:?}", l.samples));
        }
    }
});
