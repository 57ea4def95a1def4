//! Table-driven tests of every action, with Prometheus's own cases
//! (`model/relabel/relabel_test.go`) and the examples of its documentation.

use super::*;
use crate::{RelabelConfig, ValidationError};
use periscope_model::Labels;
use proptest::prelude::*;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied()).unwrap()
}

/// Parses a YAML list of rules and checks that each one validates.
#[track_caller]
fn rules(yaml: &str) -> Vec<RelabelConfig> {
    let cfgs: Vec<RelabelConfig> = serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    for c in &cfgs {
        if let Err(e) = c.validate() {
            panic!("{c:?} does not validate: {e:?}");
        }
    }
    cfgs
}

struct Case {
    name: &'static str,
    input: &'static [(&'static str, &'static str)],
    rules: &'static str,
    /// `None`: the set is dropped.
    output: Option<&'static [(&'static str, &'static str)]>,
}

#[track_caller]
fn run(case: &Case) {
    let input = labels(case.input);
    let cfgs = rules(case.rules);
    let got = relabel(&input, &cfgs);
    let want = case.output.map(labels);
    assert_eq!(got, want, "case {:?}", case.name);
    // The builder variant agrees.
    let mut b = input.builder();
    let kept = relabel_builder(&mut b, &cfgs);
    assert_eq!(kept, want.is_some(), "case {:?} (builder)", case.name);
    if let Some(w) = want {
        assert_eq!(b.build(), w, "case {:?} (builder)", case.name);
    }
}

const ABC: &[(&str, &str)] = &[("a", "foo"), ("b", "bar"), ("c", "baz")];

const CASES: &[Case] = &[
    // --- Prometheus's TestRelabel ---
    Case {
        name: "replace with ${1} twice",
        input: ABC,
        rules: r#"[{source_labels: [a], regex: "f(.*)", target_label: d, replacement: "ch${1}-ch${1}"}]"#,
        output: Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "choo-choo")]),
    },
    Case {
        name: "chained replaces see earlier results",
        input: ABC,
        rules: r#"
- {source_labels: [a, b], regex: "f(.*);(.*)r", target_label: a, replacement: "b${1}${2}m"}
- {source_labels: [c, a], regex: "(b).*b(.*)ba(.*)", target_label: d, replacement: "$1$2$2$3"}
"#,
        output: Some(&[("a", "boobam"), ("b", "bar"), ("c", "baz"), ("d", "boooom")]),
    },
    Case {
        name: "drop stops processing",
        input: &[("a", "foo")],
        rules: r#"
- {source_labels: [a], regex: ".*o.*", action: drop}
- {source_labels: [a], regex: "f(.*)", target_label: d, replacement: "ch$1-ch$1"}
"#,
        output: None,
    },
    Case {
        name: "drop on match",
        input: &[("a", "foo"), ("b", "bar")],
        rules: r#"[{source_labels: [a], regex: ".*o.*", action: drop}]"#,
        output: None,
    },
    Case {
        name: "replace with a group in the middle",
        input: &[("a", "abc")],
        rules: r#"[{source_labels: [a], regex: ".*(b).*", target_label: d, replacement: "$1"}]"#,
        output: Some(&[("a", "abc"), ("d", "b")]),
    },
    Case {
        name: "drop without match keeps",
        input: &[("a", "foo")],
        rules: r#"[{source_labels: [a], regex: "no-match", action: drop}]"#,
        output: Some(&[("a", "foo")]),
    },
    Case {
        name: "regex is anchored",
        input: &[("a", "foo")],
        rules: r#"[{source_labels: [a], regex: "f|o", action: drop}]"#,
        output: Some(&[("a", "foo")]),
    },
    Case {
        name: "keep without match drops",
        input: &[("a", "foo")],
        rules: r#"[{source_labels: [a], regex: "no-match", action: keep}]"#,
        output: None,
    },
    Case {
        name: "keep on match",
        input: &[("a", "foo")],
        rules: r#"[{source_labels: [a], regex: "f.*", action: keep}]"#,
        output: Some(&[("a", "foo")]),
    },
    Case {
        name: "no replacement without a match",
        input: &[("a", "boo")],
        rules: r#"[{source_labels: [a], regex: "f", target_label: b, replacement: bar}]"#,
        output: Some(&[("a", "boo")]),
    },
    Case {
        name: "hashmod",
        input: ABC,
        rules: r#"[{source_labels: [c], target_label: d, action: hashmod, modulus: 1000}]"#,
        output: Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "976")]),
    },
    Case {
        name: "hashmod over a newline",
        input: &[("a", "foo\nbar")],
        rules: r#"[{source_labels: [a], target_label: b, action: hashmod, modulus: 1000}]"#,
        output: Some(&[("a", "foo\nbar"), ("b", "734")]),
    },
    Case {
        name: "labelmap",
        input: &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
        rules: r#"[{regex: "(b.*)", replacement: "bar_${1}", action: labelmap}]"#,
        output: Some(&[("a", "foo"), ("b1", "bar"), ("b2", "baz"), ("bar_b1", "bar"), ("bar_b2", "baz")]),
    },
    Case {
        name: "labelmap of meta labels",
        input: &[("a", "foo"), ("__meta_my_bar", "aaa"), ("__meta_my_baz", "bbb"), ("__meta_other", "ccc")],
        rules: r#"[{regex: "__meta_(my.*)", replacement: "${1}", action: labelmap}]"#,
        output: Some(&[
            ("a", "foo"),
            ("__meta_my_bar", "aaa"),
            ("__meta_my_baz", "bbb"),
            ("__meta_other", "ccc"),
            ("my_bar", "aaa"),
            ("my_baz", "bbb"),
        ]),
    },
    Case {
        name: "target label from a group",
        input: &[("a", "some-name-value")],
        rules: r#"[{source_labels: [a], regex: "some-([^-]+)-([^,]+)", replacement: "${2}", target_label: "${1}"}]"#,
        output: Some(&[("a", "some-name-value"), ("name", "value")]),
    },
    Case {
        name: "replacement from a missing group deletes nothing that is not there",
        input: &[("a", "some-name-value")],
        rules: r#"[{source_labels: [a], regex: "some-([^-]+)-([^,]+)", replacement: "${3}", target_label: "${1}"}]"#,
        output: Some(&[("a", "some-name-value")]),
    },
    Case {
        name: "target label from a missing group is skipped",
        input: &[("a", "some-name-0")],
        rules: r#"
- {source_labels: [a], regex: "some-([^-]+)-([^,]+)", replacement: "${1}", target_label: "${3}"}
- {source_labels: [a], regex: "some-([^-]+)-([^,]+)", replacement: "${1}", target_label: "${3}"}
- {source_labels: [a], regex: "some-([^-]+)(-[^,]+)", replacement: "${1}", target_label: "${3}"}
"#,
        output: Some(&[("a", "some-name-0")]),
    },
    Case {
        name: "real-life service discovery tags",
        input: &[("__meta_sd_tags", "path:/secret,job:some-job,label:foo=bar")],
        rules: r#"
- {source_labels: [__meta_sd_tags], regex: "(?:.+,|^)path:(/[^,]+).*", replacement: "${1}", target_label: __metrics_path__}
- {source_labels: [__meta_sd_tags], regex: "(?:.+,|^)job:([^,]+).*", replacement: "${1}", target_label: job}
- {source_labels: [__meta_sd_tags], regex: "(?:.+,|^)label:([^=]+)=([^,]+).*", replacement: "${2}", target_label: "${1}"}
"#,
        output: Some(&[
            ("__meta_sd_tags", "path:/secret,job:some-job,label:foo=bar"),
            ("__metrics_path__", "/secret"),
            ("job", "some-job"),
            ("foo", "bar"),
        ]),
    },
    Case {
        name: "prometheus issue 12283: set a label labeldrop removed, then keep on it",
        input: &[
            ("__meta_kubernetes_pod_container_port_name", "foo"),
            ("__meta_kubernetes_pod_annotation_XXX_metrics_port", "9091"),
        ],
        rules: r#"
- {regex: "^__meta_kubernetes_pod_container_port_name$", action: labeldrop}
- {source_labels: [__meta_kubernetes_pod_annotation_XXX_metrics_port], regex: "(.+)", replacement: metrics, target_label: __meta_kubernetes_pod_container_port_name}
- {source_labels: [__meta_kubernetes_pod_container_port_name], regex: "^metrics$", action: keep}
"#,
        output: Some(&[
            ("__meta_kubernetes_pod_annotation_XXX_metrics_port", "9091"),
            ("__meta_kubernetes_pod_container_port_name", "metrics"),
        ]),
    },
    Case {
        name: "labelkeep",
        input: &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
        rules: r#"[{regex: "(b.*)", action: labelkeep}]"#,
        output: Some(&[("b1", "bar"), ("b2", "baz")]),
    },
    Case {
        name: "labeldrop",
        input: &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
        rules: r#"[{regex: "(b.*)", action: labeldrop}]"#,
        output: Some(&[("a", "foo")]),
    },
    Case {
        name: "uppercase and lowercase",
        input: &[("foo", "bAr123Foo")],
        rules: r#"
- {source_labels: [foo], action: uppercase, target_label: foo_uppercase}
- {source_labels: [foo], action: lowercase, target_label: foo_lowercase}
"#,
        output: Some(&[("foo", "bAr123Foo"), ("foo_lowercase", "bar123foo"), ("foo_uppercase", "BAR123FOO")]),
    },
    Case {
        name: "keepequal keeps on equal",
        input: &[("__tmp_port", "1234"), ("__port1", "1234"), ("__port2", "5678")],
        rules: r#"[{source_labels: [__tmp_port], action: keepequal, target_label: __port1}]"#,
        output: Some(&[("__tmp_port", "1234"), ("__port1", "1234"), ("__port2", "5678")]),
    },
    Case {
        name: "dropequal drops on equal",
        input: &[("__tmp_port", "1234"), ("__port1", "1234"), ("__port2", "5678")],
        rules: r#"[{source_labels: [__tmp_port], action: dropequal, target_label: __port1}]"#,
        output: None,
    },
    Case {
        name: "dropequal keeps on different",
        input: &[("__tmp_port", "1234"), ("__port1", "1234"), ("__port2", "5678")],
        rules: r#"[{source_labels: [__tmp_port], action: dropequal, target_label: __port2}]"#,
        output: Some(&[("__tmp_port", "1234"), ("__port1", "1234"), ("__port2", "5678")]),
    },
    Case {
        name: "keepequal drops on different",
        input: &[("__tmp_port", "1234"), ("__port1", "1234"), ("__port2", "5678")],
        rules: r#"[{source_labels: [__tmp_port], action: keepequal, target_label: __port2}]"#,
        output: None,
    },
    // --- Examples from Prometheus's documentation and common configurations ---
    Case {
        name: "docs: drop expensive metrics by name",
        input: &[("__name__", "go_gc_duration_seconds"), ("job", "api")],
        rules: r#"[{source_labels: [__name__], regex: "go_.*", action: drop}]"#,
        output: None,
    },
    Case {
        name: "docs: keep only some jobs (default replacement unused)",
        input: &[("__name__", "up"), ("job", "node")],
        rules: r#"[{source_labels: [job], regex: "node|api", action: keep}]"#,
        output: Some(&[("__name__", "up"), ("job", "node")]),
    },
    Case {
        name: "docs: kubernetes node labels via labelmap",
        input: &[
            ("__meta_kubernetes_node_label_zone", "eu-1"),
            ("__meta_kubernetes_node_name", "n1"),
            ("instance", "n1:9100"),
        ],
        rules: r#"[{action: labelmap, regex: "__meta_kubernetes_node_label_(.+)"}]"#,
        output: Some(&[
            ("__meta_kubernetes_node_label_zone", "eu-1"),
            ("__meta_kubernetes_node_name", "n1"),
            ("instance", "n1:9100"),
            ("zone", "eu-1"),
        ]),
    },
    Case {
        name: "docs: address from host and port annotation",
        input: &[("__address__", "10.0.0.1:80"), ("__meta_kubernetes_pod_annotation_prometheus_io_port", "9102")],
        rules: r#"
- source_labels: [__address__, __meta_kubernetes_pod_annotation_prometheus_io_port]
  action: replace
  regex: '([^:]+)(?::\d+)?;(\d+)'
  replacement: $1:$2
  target_label: __address__
"#,
        output: Some(&[
            ("__address__", "10.0.0.1:9102"),
            ("__meta_kubernetes_pod_annotation_prometheus_io_port", "9102"),
        ]),
    },
    Case {
        name: "docs: hashmod sharding, keep shard 5 of 8",
        input: &[("__address__", "10.0.0.1:9100")],
        rules: r#"
- {source_labels: [__address__], modulus: 8, target_label: __tmp_hash, action: hashmod}
- {source_labels: [__tmp_hash], regex: "^5$", action: keep}
"#,
        output: Some(&[("__address__", "10.0.0.1:9100"), ("__tmp_hash", "5")]),
    },
    Case {
        name: "docs: set a fixed label (fast path, no sources)",
        input: &[("a", "1")],
        rules: r#"[{target_label: env, replacement: prod}]"#,
        output: Some(&[("a", "1"), ("env", "prod")]),
    },
    Case {
        name: "docs: rename a label with replace then labeldrop",
        input: &[("__name__", "m"), ("pod_name", "p1")],
        rules: r#"
- {source_labels: [pod_name], target_label: pod}
- {regex: pod_name, action: labeldrop}
"#,
        output: Some(&[("__name__", "m"), ("pod", "p1")]),
    },
    // --- Edge cases ---
    Case {
        name: "empty result deletes the target",
        input: &[("a", "x"), ("b", "y")],
        rules: r#"[{source_labels: [a], target_label: b, replacement: ""}]"#,
        output: Some(&[("a", "x")]),
    },
    Case {
        name: "missing source joins as empty; default regex copies empty, which deletes",
        input: &[("b", "y")],
        rules: r#"[{source_labels: [missing], target_label: b}]"#,
        output: Some(&[]),
    },
    Case {
        name: "custom separator and multiple sources",
        input: &[("a", "1"), ("c", "3")],
        rules: r#"[{source_labels: [a, b, c], separator: "/", target_label: path}]"#,
        output: Some(&[("a", "1"), ("c", "3"), ("path", "1//3")]),
    },
    Case {
        name: "keep of an absent label with an empty-matching regex",
        input: &[("a", "1")],
        rules: r#"[{source_labels: [nope], regex: "", action: keep}]"#,
        output: Some(&[("a", "1")]),
    },
    Case {
        name: "named groups and $$",
        input: &[("a", "k=v")],
        rules: r#"[{source_labels: [a], regex: "(?P<key>[^=]+)=(?P<val>.*)", target_label: "${key}", replacement: "$$${val}"}]"#,
        output: Some(&[("a", "k=v"), ("k", "$v")]),
    },
    Case {
        name: "lowercase of an absent label deletes the target",
        input: &[("a", "1"), ("t", "x")],
        rules: r#"[{source_labels: [nope], action: lowercase, target_label: t}]"#,
        output: Some(&[("a", "1")]),
    },
    Case {
        name: "keepequal against an absent target compares with empty",
        input: &[("a", "1")],
        rules: r#"[{source_labels: [nope], action: keepequal, target_label: also_nope}]"#,
        output: Some(&[("a", "1")]),
    },
    Case {
        name: "labelmap copies values from the snapshot, overwriting",
        input: &[("x_a", "1"), ("a", "old")],
        rules: r#"[{action: labelmap, regex: "x_(.*)"}]"#,
        output: Some(&[("a", "1"), ("x_a", "1")]),
    },
    Case {
        name: "labelkeep can empty the set",
        input: &[("a", "1")],
        rules: r#"[{regex: "zzz", action: labelkeep}]"#,
        output: Some(&[]),
    },
    Case {
        name: "utf-8 label names",
        input: &[("service.name", "checkout")],
        rules: r#"[{source_labels: [service.name], target_label: "k8s.app", action: uppercase}]"#,
        output: Some(&[("service.name", "checkout"), ("k8s.app", "CHECKOUT")]),
    },
    Case {
        name: "go regex classes are ascii",
        input: &[("v", "٣")],
        rules: r#"[{source_labels: [v], regex: '\d', action: drop}]"#,
        output: Some(&[("v", "٣")]),
    },
];

#[test]
fn prometheus_and_documented_cases() {
    for case in CASES {
        run(case);
    }
}

#[test]
fn no_configs_is_identity() {
    let l = labels(ABC);
    assert_eq!(relabel(&l, &[]), Some(l));
}

#[test]
fn hash_mod_matches_prometheus() {
    // Values from Prometheus's tests, and independent MD5 computations of the same rule.
    assert_eq!(hash_mod("baz", 1000), Some(976));
    assert_eq!(hash_mod("foo\nbar", 1000), Some(734));
    assert_eq!(hash_mod("10.0.0.1:9100", 8), Some(5));
    assert_eq!(hash_mod("", 7), Some(1));
    assert_eq!(hash_mod("a;b", 3), Some(2));
    assert_eq!(hash_mod("x", 0), None);
}

#[test]
fn unvalidated_configs_do_not_panic() {
    let l = labels(ABC);
    let cfgs = [
        RelabelConfig { action: crate::Action::HashMod, source_labels: vec!["a".into()], ..Default::default() },
        RelabelConfig { action: crate::Action::Lowercase, ..Default::default() },
        RelabelConfig { action: crate::Action::LabelMap, replacement: String::new(), ..Default::default() },
        RelabelConfig { target_label: String::new(), ..Default::default() },
    ];
    assert_eq!(relabel(&l, &cfgs), Some(l));
}

// --- Parsing and validation ---

#[test]
fn defaults_from_empty_yaml() {
    let c: RelabelConfig = serde_yaml::from_str("{}").unwrap();
    assert_eq!(c, RelabelConfig::default());
    assert_eq!(c.separator, ";");
    assert_eq!(c.regex.as_str(), "(.*)");
    assert_eq!(c.replacement, "$1");
    assert_eq!(c.action, crate::Action::Replace);
    assert_eq!(c.modulus, 0);
}

#[test]
fn parse_errors() {
    let table = [
        ("{action: frobnicate}", "unknown relabel action \"frobnicate\""),
        ("{regex: '('}", "invalid regular expression \"(\""),
        ("{target: x}", "unknown field `target`"),
        ("{modulus: -1}", "modulus"),
    ];
    for (yaml, want) in table {
        let e = serde_yaml::from_str::<RelabelConfig>(yaml).unwrap_err().to_string();
        assert!(e.contains(want), "{yaml}: {e}");
    }
}

#[test]
fn yaml_scalars_and_nulls() {
    let c: RelabelConfig =
        serde_yaml::from_str("{regex: ~, replacement: 1.10, action: KEEP, source_labels: [a]}").unwrap();
    assert_eq!(c.regex.as_str(), "");
    assert_eq!(c.replacement, "1.10");
    assert_eq!(c.action, crate::Action::Keep);
    assert!(c.regex.is_match(""));
}

#[test]
fn round_trip() {
    let yaml = r#"
- {source_labels: [a, b], separator: "/", regex: "x(.*)", target_label: t, replacement: "${1}", action: replace}
- {source_labels: [a], modulus: 4, target_label: h, action: hashmod}
- {regex: "tmp_.*", action: labeldrop}
"#;
    let cfgs: Vec<RelabelConfig> = serde_yaml::from_str(yaml).unwrap();
    let out = serde_yaml::to_string(&cfgs).unwrap();
    let back: Vec<RelabelConfig> = serde_yaml::from_str(&out).unwrap();
    assert_eq!(cfgs, back, "{out}");
    assert!(!out.contains("modulus: 0"), "{out}");
}

#[track_caller]
fn validation_errors(yaml: &str) -> Vec<ValidationError> {
    let c: RelabelConfig = serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
    c.validate().err().unwrap_or_default()
}

#[test]
fn validation_rules() {
    // (rule, expected "field: message" substrings; empty = valid)
    let table: &[(&str, &[&str])] = &[
        ("{}", &["target_label: must be set for action replace"]),
        ("{action: lowercase}", &["target_label: must be set for action lowercase"]),
        ("{action: uppercase, target_label: x, replacement: y}", &["replacement: must not be set for action uppercase"]),
        ("{action: hashmod, target_label: x}", &["modulus: must be set to a non-zero value for action hashmod"]),
        ("{action: hashmod, modulus: 2}", &["target_label: must be set for action hashmod"]),
        ("{action: keepequal}", &["target_label: must be set for action keepequal"]),
        (
            "{action: keepequal, target_label: x, regex: a, separator: ',', modulus: 3, replacement: r}",
            &["regex: must not be set", "modulus: must not be set", "separator: must not be set", "replacement: must not be set"],
        ),
        ("{action: dropequal, target_label: x, source_labels: [a]}", &[]),
        (
            "{action: labeldrop, regex: a, source_labels: [x], target_label: t, separator: ',', replacement: r, modulus: 1}",
            &[
                "source_labels: must not be set for action labeldrop",
                "target_label: must not be set",
                "separator: must not be set",
                "replacement: must not be set",
                "modulus: must not be set",
            ],
        ),
        ("{action: labelkeep, regex: a}", &[]),
        ("{action: labelmap, regex: a, replacement: ''}", &["replacement: \"\" is not a valid label name for action labelmap"]),
        ("{action: keep, source_labels: ['']}", &["source_labels: label names must not be empty"]),
        ("{source_labels: [a], regex: 'some-([^-]+)-([^,]+)', replacement: '${1}', target_label: '${3}'}", &[]),
        ("{source_labels: [a], target_label: '-${3}'}", &[]),
        ("{action: keep, source_labels: [a], regex: x}", &[]),
        ("{action: drop}", &[]),
    ];
    for (yaml, want) in table {
        let got = validation_errors(yaml);
        let text: Vec<String> = got.iter().map(ToString::to_string).collect();
        assert_eq!(got.len(), want.len(), "{yaml}: {text:?}");
        for w in *want {
            assert!(text.iter().any(|t| t.contains(w)), "{yaml}: want {w:?} in {text:?}");
        }
    }
}

#[test]
fn legacy_scheme_validation() {
    use crate::NameValidationScheme::Legacy;
    let bad = [
        "{source_labels: [a], target_label: '0${3}'}",
        "{source_labels: [a], target_label: '-${3}'}",
        "{source_labels: [a], target_label: 'a.b'}",
        "{source_labels: [a], action: lowercase, target_label: '${3}'}",
        "{action: labelmap, regex: '(.*)', replacement: 'x-$1'}",
    ];
    for yaml in bad {
        let c: RelabelConfig = serde_yaml::from_str(yaml).unwrap();
        assert!(c.validate_with(Legacy).is_err(), "{yaml}");
        if !yaml.contains("lowercase") {
            assert!(c.validate().is_ok(), "{yaml} under utf8");
        }
    }
    let c: RelabelConfig = serde_yaml::from_str("{source_labels: [a], target_label: 'x_${1}'}").unwrap();
    assert!(c.validate_with(Legacy).is_ok());
}

// --- Property tests ---

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("__name__".to_string()),
        Just("a".to_string()),
        Just("b".to_string()),
        Just("job".to_string()),
        Just("$1".to_string()),
        Just("${2}".to_string()),
        Just("${name}".to_string()),
        "[a-c_$\\{\\}1-2]{1,4}",
        "\\PC{1,3}",
    ]
}

fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("(.*)".to_string()),
        Just("".to_string()),
        Just("(a)(b)?".to_string()),
        Just("(?P<name>.)(.*)".to_string()),
        Just("[^;]*;(.*)".to_string()),
        Just(r"\w+|\d".to_string()),
        "[a-c.*+?()|\\[\\]{}^$\\\\dws]{0,8}",
        "\\PC{0,4}",
    ]
}

fn template() -> impl Strategy<Value = String> {
    prop_oneof![Just("$1".to_string()), Just("".to_string()), "[a$\\{\\}12_x]{0,6}", "\\PC{0,4}"]
}

fn config() -> impl Strategy<Value = RelabelConfig> {
    (
        prop::collection::vec(name(), 0..3),
        prop_oneof![Just(";".to_string()), Just("".to_string()), "\\PC{0,2}"],
        pattern(),
        0u64..5,
        prop_oneof![name(), Just(String::new())],
        template(),
        prop::sample::select(crate::Action::ALL.to_vec()),
    )
        .prop_map(|(source_labels, separator, pat, modulus, target_label, replacement, action)| RelabelConfig {
            source_labels,
            separator,
            regex: crate::Regex::new(&pat).unwrap_or_default(),
            modulus,
            target_label,
            replacement,
            action,
        })
}

fn label_set() -> impl Strategy<Value = Labels> {
    prop::collection::btree_map(name(), "\\PC{0,6}", 0..6).prop_map(|m| Labels::from_pairs(m).unwrap_or_default())
}

proptest! {
    #[test]
    fn relabel_never_panics_and_keeps_invariants(l in label_set(), cfgs in prop::collection::vec(config(), 0..5)) {
        let out = relabel(&l, &cfgs);
        let mut b = l.builder();
        let kept = relabel_builder(&mut b, &cfgs);
        prop_assert_eq!(kept, out.is_some());
        if let Some(out) = out {
            let v = out.as_slice();
            prop_assert!(v.windows(2).all(|w| w[0].name < w[1].name), "not sorted/unique: {:?}", out);
            prop_assert!(v.iter().all(|l| !l.name.is_empty() && !l.value.is_empty()), "empty name or value: {:?}", out);
            prop_assert_eq!(b.build(), out);
        }
    }

    #[test]
    fn any_pattern_compiles_or_errors(p in "\\PC{0,12}") {
        let _ = crate::Regex::new(&p);
    }

    #[test]
    fn quoted_literals_match_themselves(s in "\\PC{0,12}") {
        prop_assume!(!s.contains("\\E"));
        let re = crate::Regex::new(&format!("\\Q{s}\\E")).unwrap();
        prop_assert!(re.is_match(&s));
    }
}
