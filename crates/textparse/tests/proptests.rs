//! Property tests: no input panics the parser, in either format and either mode, and strict mode
//! never accepts what lenient mode refuses. Inputs are arbitrary bytes, grammar-flavoured text,
//! and the accepted peer cases mutated byte by byte (flip, insert, delete), which reach far deeper
//! into the parser than random bytes do. The fuzz target in `fuzz/` runs the same check unbounded.

use std::sync::OnceLock;

use periscope_textparse::{parse, Format, ParseOptions};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use super::peer_dir;

/// Parses `input` in all four combinations; checks that a strict success implies an identical
/// lenient success.
fn check_all(input: &[u8]) -> Result<(), TestCaseError> {
    for format in [Format::PromText, Format::OpenMetrics] {
        let strict = parse(input, format, &ParseOptions { strict: true, default_timestamp_ms: None });
        let lenient = parse(input, format, &ParseOptions { strict: false, default_timestamp_ms: Some(1) });
        if let Ok(s) = &strict {
            let lines = input.split(|&b| b == b'\n').count();
            prop_assert!(s.samples.len() <= lines);
            prop_assert!(s.families <= s.samples.len());
            let Ok(l) = &lenient else {
                return Err(TestCaseError::fail(format!("{format:?}: strict accepted, lenient refused {input:?}")));
            };
            prop_assert_eq!(s.samples.len(), l.samples.len());
            for (a, b) in s.samples.iter().zip(&l.samples) {
                prop_assert_eq!(&a.labels, &b.labels);
                prop_assert_eq!(a.value.to_bits(), b.value.to_bits());
                prop_assert_eq!(a.timestamp_ms.unwrap_or(1), b.timestamp_ms.unwrap_or(-1));
            }
        }
    }
    Ok(())
}

/// The accepted peer inputs under 16 KiB: every accepted OpenMetrics case and the small 0.0.4
/// ones.
fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut out = Vec::new();
        let om = peer_dir("openmetrics/parsers");
        if let Ok(dirs) = std::fs::read_dir(&om) {
            let mut dirs: Vec<_> = dirs.filter_map(|d| d.ok().map(|d| d.path())).collect();
            dirs.sort();
            for d in dirs {
                let accepted = d.file_name().is_some_and(|n| !n.to_string_lossy().starts_with("bad_"));
                if accepted {
                    out.extend(std::fs::read(d.join("metrics")));
                }
            }
        }
        for f in [
            "expfmt-corpus/from_test_parse_1",
            "expfmt-corpus/from_test_parse_2",
            "expfmt-corpus/from_test_parse_3",
            "expfmt-corpus/from_test_parse_4",
            "textparse-testdata/alltypes.5mfs.om.txt",
            "textparse-testdata/1histogram.om.txt",
        ] {
            out.extend(std::fs::read(peer_dir("prom-text").join(f)));
        }
        out.retain(|s| s.len() < 16 * 1024);
        assert!(out.len() > 40, "peer seeds not found");
        out
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // Bytes that matter to the grammar are much likelier than arbitrary ones.
    let byte = prop_oneof![
        3 => prop::sample::select(b" \t\n#{}=,\"\\._-+eE0123456789aNnIf".to_vec()),
        1 => any::<u8>(),
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
    ]
}

fn apply(seed: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for m in muts {
        let len = v.len();
        match *m {
            Mutation::Flip(i, b) if len > 0 => v[i % len] = b,
            Mutation::Insert(i, b) => v.insert(i % (len + 1), b),
            Mutation::Delete(i) if len > 0 => {
                v.remove(i % len);
            }
            _ => {}
        }
    }
    v
}

/// 256 cases per property (a few seconds in all); `PROPTEST_CASES` raises it for a long run.
/// Failures are saved to `proptest-regressions/proptests.txt` (committed) and replayed first.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256);
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/proptests.txt"))),
        ..ProptestConfig::with_cases(cases)
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..512)) {
        check_all(&input)?;
    }

    #[test]
    fn grammar_flavoured_text_never_panics(
        input in "([a-z_]{1,6}(\\{([a-z\"]{1,3}=\"[a-z #{}\\\\\"]{0,4}\",?){0,3}\\})? -?[0-9.eE+]{1,5}( [0-9.]{1,4})?( # \\{[a-z]=\"[a-z]\"\\} [0-9]( [0-9])?)?\n|# (HELP|TYPE|UNIT) [a-z_]{1,4} (counter|gauge|histogram|summary|[a-z ]{0,5})\n|# EOF\n){1,12}"
    ) {
        check_all(input.as_bytes())?;
    }

    #[test]
    fn mutated_peer_cases_never_panic(
        pick in any::<prop::sample::Index>(),
        muts in prop::collection::vec(mutation(), 1..8),
    ) {
        let seeds = seeds();
        let seed = &seeds[pick.index(seeds.len())];
        check_all(&apply(seed, &muts))?;
    }
}

#[test]
fn seeds_themselves_pass_the_property() {
    for s in seeds() {
        if let Err(e) = check_all(s) {
            panic!("{e}");
        }
    }
}
