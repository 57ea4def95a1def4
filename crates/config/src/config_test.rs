//! Whole-config tests: defaults, the example file, good and bad fixtures
//! (`testdata/{good,bad}/*.yaml`, as Prometheus's `config_test.go`), error collection,
//! tenant limits, and the reference doc staying in step with the structs.

use super::*;
use periscope_model::{Classify, ErrorClass};
use std::path::PathBuf;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn repo_file(rel: &str) -> PathBuf {
    manifest_dir().join("../..").join(rel)
}

#[track_caller]
fn parse(yaml: &str) -> Config {
    Config::from_yaml_str(yaml).unwrap_or_else(|e| panic!("{e}\n---\n{yaml}"))
}

#[track_caller]
fn errors(yaml: &str) -> Vec<String> {
    match Config::from_yaml_str(yaml) {
        Ok(_) => panic!("expected errors for:\n{yaml}"),
        Err(e) => e.errors().iter().map(ToString::to_string).collect(),
    }
}

/// Each bad fixture and a substring of the error it must produce.
const BAD: &[(&str, &str)] = &[
    ("otlp_duplicate_promoted.yaml", "otlp.promote_resource_attributes[1]: duplicated promoted OTel resource attribute \"service.version\""),
    ("unknown_key_at_depth.yaml", "storage.wal: unknown field `fsnyc`, expected one of `fsync`, `fsync_interval`, `segment_size` at line 3 column 5"),
    ("bad_duration.yaml", "global.scrape_interval: duration \"1.5m\" has a fraction; use a smaller unit instead"),
    ("bad_duration_order.yaml", "scrape_configs[0].scrape_interval: not a valid duration string: \"30s1m\""),
    ("timeout_greater_than_interval.yaml", "scrape_configs[2].scrape_timeout: must not be greater than scrape_interval (15s)"),
    ("duplicate_job_name.yaml", "scrape_configs[1].job_name: \"node\" is already used by scrape_configs[0]"),
    ("bad_relabel_action.yaml", "scrape_configs[0].relabel_configs[0].action: unknown relabel action \"replace_all\""),
    ("missing_target_label.yaml", "scrape_configs[0].relabel_configs[0].target_label: must be set for action replace"),
    ("empty_job_name.yaml", "scrape_configs[0].job_name: must not be empty"),
    ("target_is_url.yaml", "scrape_configs[0].static_configs[0].targets[0]: \"http://node:9100/metrics\" is not a valid hostname"),
    ("two_auth_methods.yaml", "scrape_configs[0].basic_auth: at most one of basic_auth, authorization and bearer_token"),
    ("listen_address_without_host.yaml", "server.http_listen_address: \":9800\" has no host (write 0.0.0.0:9800"),
    ("fsync_interval_zero.yaml", "storage.wal.fsync_interval: must be greater than 0s when storage.wal.fsync is interval"),
    ("bad_byte_size.yaml", "storage.wal.segment_size: unknown unit \"mb\" in byte size \"128mb\""),
    ("global_timeout_greater_than_interval.yaml", "global.scrape_timeout: must not be greater than global.scrape_interval (5s)"),
    ("bad_tenant_id.yaml", "tenants.\"team a\": tenant id \"team a\" has a character outside"),
    ("unknown_tenant_limit.yaml", "unknown field `max_series`, expected one of `max_series_per_tenant`"),
    ("hashmod_without_modulus.yaml", "scrape_configs[0].metric_relabel_configs[0].modulus: must be set to a non-zero value for action hashmod"),
    ("bad_regex.yaml", "scrape_configs[0].metric_relabel_configs[0].regex: invalid regular expression \"go_(.*\""),
    ("bad_log_level.yaml", "server.log_level: unknown variant `verbose`, expected one of `error`, `warn`, `info`, `debug`, `trace`"),
    ("authorization_basic.yaml", "scrape_configs[0].authorization.type: must not be \"Basic\" (use basic_auth instead)"),
    ("password_and_password_file.yaml", "scrape_configs[0].basic_auth.password_file: at most one of password and password_file"),
    ("bad_scheme.yaml", "scrape_configs[0].scheme: unknown variant `ftp`, expected `http` or `https`"),
    ("segment_size_too_small.yaml", "storage.wal.segment_size: must be between 1MiB and 1GiB (is 64KiB)"),
    ("retention_shorter_than_block.yaml", "storage.metrics.retention_time: must not be shorter than storage.metrics.block_duration (2h)"),
    ("same_listen_address.yaml", "server.otlp_http_listen_address: \"127.0.0.1:9800\" is already used by server.http_listen_address"),
    ("labeldrop_with_source_labels.yaml", "scrape_configs[0].metric_relabel_configs[0].source_labels: must not be set for action labeldrop"),
    ("bad_target_port.yaml", "scrape_configs[0].static_configs[0].targets[0]: \"node:91000\" has an invalid port"),
    ("unknown_top_level_key.yaml", "unknown field `rule_files`, expected one of `global`, `server`"),
    ("yaml_syntax.yaml", "line 3 column"),
    ("zero_request_body.yaml", "server.max_request_body_bytes: must be greater than 0"),
    ("query_timeout_zero.yaml", "query.timeout: must be greater than 0s"),
    (
        "cert_without_key.yaml",
        "scrape_configs[0].tls_config: exactly one of key or key_file must be configured when a client certificate is configured",
    ),
    ("ca_and_ca_file.yaml", "scrape_configs[0].tls_config.ca: at most one of ca and ca_file must be configured"),
    ("tls_max_below_min.yaml", "scrape_configs[0].tls_config.max_version: must not be lower than min_version (TLS13)"),
    ("tls_max_version_too_old.yaml", "scrape_configs[0].tls_config.max_version: TLS11 is not supported (Periscope speaks TLS12 and TLS13)"),
    ("tls_unknown_version.yaml", "scrape_configs[0].tls_config.min_version: unknown variant `TLS14`, expected one of `TLS10`, `TLS11`, `TLS12`, `TLS13`"),
];

#[test]
fn bad_fixtures_fail_with_the_expected_error() {
    let dir = manifest_dir().join("testdata/bad");
    for (file, want) in BAD {
        let err = match Config::load(dir.join(file)) {
            Ok(_) => panic!("{file}: loaded without error"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(want), "{file}:\n  want: {want}\n  got:  {err}");
    }
}

#[test]
fn every_bad_fixture_is_in_the_table() {
    let dir = manifest_dir().join("testdata/bad");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = BAD.iter().map(|(f, _)| f.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed);
    assert!(files.len() >= 12);
}

#[test]
fn good_fixtures_load() {
    let dir = manifest_dir().join("testdata/good");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if let Err(e) = Config::load(&path) {
            panic!("{}: {e}", path.display());
        }
        n += 1;
    }
    assert!(n >= 5);
}

#[test]
fn prometheus_fixture_values() {
    let c = Config::load(manifest_dir().join("testdata/good/prometheus.yaml")).unwrap();
    assert_eq!(c.global.scrape_interval, Duration::from_secs(15));
    assert_eq!(c.global.scrape_timeout, Duration::from_secs(10));
    let [prom, node, svc_x, svc_y] = &c.scrape_configs[..] else { panic!("want 4 jobs") };
    assert_eq!(prom.scrape_interval, Duration::from_secs(5));
    // min(global timeout 10s, interval 5s), as Prometheus.
    assert_eq!(prom.scrape_timeout, Duration::from_secs(5));
    assert_eq!(node.scrape_interval, Duration::from_secs(15));
    assert_eq!(node.params["match[]"], vec!["{job=\"node\"}".to_string()]);
    assert_eq!(node.relabel_configs[3].regex.as_str(), "");
    assert_eq!(node.metric_relabel_configs[2].action, periscope_relabel::Action::LabelKeep);
    assert_eq!(svc_x.body_size_limit, ByteSize::mib(10));
    assert_eq!(svc_x.basic_auth.as_ref().unwrap().password.as_ref().unwrap().expose(), "multiline");
    // Accepted as Prometheus does, although TLS 1.2 is the oldest version Periscope speaks.
    assert_eq!(svc_x.tls_config.as_ref().unwrap().min_version, Some(TlsVersion::Tls10));
    assert_eq!(svc_y.bearer_token.as_ref().unwrap().expose(), "mysecret");
}

#[test]
fn example_file_parses_and_uses_non_default_values() {
    let path = repo_file("config/periscope.example.yaml");
    let c = Config::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(c.server, ServerConfig::default());
    assert_eq!(c.storage, StorageConfig::default());
    assert_eq!(c.query, QueryConfig::default());
    assert_eq!(c.limits, Limits::default());
    assert_eq!(c.global.scrape_interval, defaults::SCRAPE_INTERVAL);
    assert_eq!(c.scrape_configs.len(), 4);
    assert_eq!(c.tenant_limits("team-a").max_series_per_tenant, 100_000);
    let node = &c.scrape_configs[0];
    // Relative secret files are taken relative to the config file.
    let pw = node.basic_auth.as_ref().unwrap().password_file.as_ref().unwrap();
    assert_eq!(pw, &path.parent().unwrap().join("secrets/node-password"));
    assert_eq!(c.scrape_configs[3].metrics_path, defaults::EXPVAR_METRICS_PATH);
    assert_eq!(c.scrape_configs[1].scrape_interval, defaults::SCRAPE_INTERVAL);
}

#[test]
fn no_file_means_defaults() {
    for empty in ["", "# nothing\n", "{}", "global: {}\nserver: {}\nstorage: {wal: {}, metrics: {}}\nlimits: {}\n"] {
        assert_eq!(parse(empty), Config::default(), "{empty:?}");
    }
    let c = Config::default();
    assert_eq!(c.global.scrape_interval, Duration::from_mins(1));
    assert_eq!(c.global.scrape_timeout, Duration::from_secs(10));
    assert_eq!(c.server.http_listen_address, "127.0.0.1:9800");
    assert_eq!(c.server.max_request_body_bytes.bytes(), 10 * 1024 * 1024);
    assert_eq!(c.server.max_decompressed_body_bytes.bytes(), 64 * 1024 * 1024);
    assert_eq!(c.storage.wal.segment_size, ByteSize::mib(128));
    assert_eq!(c.storage.metrics.retention_time.to_string(), "15d");
    assert_eq!(c.query.lookback_delta.to_string(), "5m");
    assert_eq!(c.query.max_samples, 50_000_000);
    assert_eq!(c.query.timeout.to_string(), "2m");
    assert!(c.validate().is_ok());
}

#[test]
fn global_timeout_follows_a_short_interval() {
    let c = parse("global: {scrape_interval: 5s}\nscrape_configs: [{job_name: a}, {job_name: b, scrape_interval: 2s}]");
    assert_eq!(c.global.scrape_timeout, Duration::from_secs(5));
    assert_eq!(c.scrape_configs[0].scrape_interval, Duration::from_secs(5));
    assert_eq!(c.scrape_configs[0].scrape_timeout, Duration::from_secs(5));
    assert_eq!(c.scrape_configs[1].scrape_timeout, Duration::from_secs(2));
    assert_eq!(c.scrape_configs[0].metrics_path, "/metrics");
    assert!(c.scrape_configs[0].honor_timestamps);
}

#[test]
fn validation_reports_every_error() {
    let yaml = r#"
global: {scrape_interval: 5s, scrape_timeout: 6s}
server: {http_listen_address: "nope", max_decompressed_body_bytes: 0}
storage: {wal: {fsync_interval: 0s}}
tenants: {"a/b": {}}
scrape_configs:
  - job_name: x
    scrape_timeout: 1m
    relabel_configs: [{action: uppercase}, {action: hashmod}]
  - job_name: x
"#;
    let errs = errors(yaml);
    let want = [
        "global.scrape_timeout: must not be greater than global.scrape_interval (5s)",
        "server.http_listen_address: \"nope\" has no port",
        "server.max_decompressed_body_bytes: must be greater than 0",
        "storage.wal.fsync_interval: must be greater than 0s",
        "tenants.\"a/b\": tenant id",
        "scrape_configs[0].scrape_timeout: must not be greater than scrape_interval (5s)",
        "scrape_configs[0].relabel_configs[0].target_label: must be set for action uppercase",
        "scrape_configs[0].relabel_configs[1].modulus: must be set",
        "scrape_configs[0].relabel_configs[1].target_label: must be set for action hashmod",
        "scrape_configs[1].job_name: \"x\" is already used by scrape_configs[0]",
    ];
    assert_eq!(errs.len(), want.len(), "{errs:#?}");
    for (got, want) in errs.iter().zip(want) {
        assert!(got.starts_with(want), "want {want:?}, got {got:?}");
    }
    // Display: one per line.
    let e = Config::from_yaml_str(yaml).unwrap_err();
    assert_eq!(e.to_string().lines().count(), want.len());
    assert_eq!(e.class(), ErrorClass::InvalidInput);
    assert_eq!(e.errors()[0].key(), Some("global.scrape_timeout"));
}

#[test]
fn tenant_limits_merge_overrides_onto_defaults() {
    let c = parse(
        "limits: {max_series_per_tenant: 10, max_label_names_per_series: 20}\n\
         tenants: {team-a: {max_series_per_tenant: 5}, team-b: {creation_grace_period: 1h}}",
    );
    let a = c.tenant_limits("team-a");
    assert_eq!(a.max_series_per_tenant, 5);
    assert_eq!(a.max_label_names_per_series, 20);
    assert_eq!(a.max_label_value_length, defaults::MAX_LABEL_VALUE_LENGTH);
    let b = c.tenant_limits("team-b");
    assert_eq!(b.max_series_per_tenant, 10);
    assert_eq!(b.creation_grace_period, Duration::from_hours(1));
    assert_eq!(c.tenant_limits("someone-else"), c.limits);
}

#[test]
fn external_labels_expand_the_environment() {
    let env = |name: &str| (name == "REGION").then(|| "eu-1".to_string());
    let c = Config::parse("global: {external_labels: {region: '${REGION}', cost: '$$5', none: '$UNSET'}}", None, &env)
        .unwrap();
    assert_eq!(c.global.external_labels["region"], "eu-1");
    assert_eq!(c.global.external_labels["cost"], "$5");
    assert_eq!(c.global.external_labels["none"], "");
}

#[test]
fn round_trips_through_yaml() {
    let c = Config::load(manifest_dir().join("testdata/good/prometheus.yaml")).unwrap();
    let mut c = c;
    // Secrets print as <secret>; drop them for the comparison.
    for sc in &mut c.scrape_configs {
        sc.bearer_token = None;
        if let Some(b) = &mut sc.basic_auth {
            b.password = None;
        }
    }
    let yaml = c.to_yaml().unwrap();
    assert!(!yaml.contains("multiline"), "{yaml}");
    let back = parse(&yaml);
    assert_eq!(back, c, "{yaml}");
}

#[test]
fn secrets_are_redacted() {
    let c = parse("scrape_configs: [{job_name: a, basic_auth: {username: u, password: hunter2}}]");
    assert!(!c.to_yaml().unwrap().contains("hunter2"));
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn load_resolves_paths_next_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.yaml");
    std::fs::write(
        &path,
        "scrape_configs: [{job_name: a, bearer_token_file: tok, tls_config: {ca_file: /abs/ca.pem}}]",
    )
    .unwrap();
    let c = Config::load(&path).unwrap();
    assert_eq!(c.scrape_configs[0].bearer_token_file.as_deref(), Some(dir.path().join("tok").as_path()));
    assert_eq!(c.scrape_configs[0].tls_config.as_ref().unwrap().ca_file.as_deref(), Some(Path::new("/abs/ca.pem")));
    // from_yaml_str leaves them relative.
    let c = parse("scrape_configs: [{job_name: a, bearer_token_file: tok}]");
    assert_eq!(c.scrape_configs[0].bearer_token_file.as_deref(), Some(Path::new("tok")));
}

#[test]
fn missing_file_is_not_found() {
    let e = Config::load("/nonexistent/periscope.yaml").unwrap_err();
    assert_eq!(e.class(), ErrorClass::NotFound);
    assert!(e.to_string().contains("cannot read config file /nonexistent/periscope.yaml"), "{e}");
}

#[test]
fn empty_secrets_are_unset_as_in_prometheus() {
    let c = parse("scrape_configs: [{job_name: a, bearer_token: '', basic_auth: {username: u, password: ''}}]");
    assert!(c.scrape_configs[0].bearer_token.is_none());
    assert!(c.scrape_configs[0].basic_auth.as_ref().unwrap().password.is_none());
}

#[test]
fn targets_are_not_checked_when_relabelling_may_rewrite_them() {
    parse(
        "scrape_configs: [{job_name: a, static_configs: [{targets: ['http://x/y']}], \
         relabel_configs: [{source_labels: [__address__], regex: 'http://(.*)/.*', target_label: __address__}]}]",
    );
}

// --- The reference doc and the example stay in step with the structs ---

/// Every key path of a config with every optional part present, as written in the doc:
/// `scrape_configs[].basic_auth.password_file`, `tenants.<id>.max_series_per_tenant`.
fn all_key_paths() -> Vec<String> {
    let mut c = Config::default();
    c.global.external_labels.insert("x".into(), "y".into());
    c.tenants.insert("t".into(), LimitsOverride::default());
    c.scrape_configs.push(ScrapeConfig {
        basic_auth: Some(BasicAuth {
            username_file: Some("f".into()),
            password: Some(Secret::new("p")),
            password_file: Some("f".into()),
            ..Default::default()
        }),
        authorization: Some(Authorization {
            credentials: Some(Secret::new("c")),
            credentials_file: Some("f".into()),
            ..Default::default()
        }),
        bearer_token: Some(Secret::new("t")),
        bearer_token_file: Some("f".into()),
        tls_config: Some(TlsConfig {
            ca_file: Some("f".into()),
            cert_file: Some("f".into()),
            key_file: Some("f".into()),
            server_name: "s".into(),
            min_version: Some(TlsVersion::Tls12),
            max_version: Some(TlsVersion::Tls13),
            ..Default::default()
        }),
        static_configs: vec![StaticConfig::default()],
        relabel_configs: vec![RelabelConfig {
            source_labels: vec!["a".into()],
            modulus: 1,
            target_label: "t".into(),
            ..Default::default()
        }],
        ..Default::default()
    });
    let v = serde_yaml::to_value(&c).unwrap();
    let mut out = Vec::new();
    walk(&v, "", &mut out);
    // LimitsOverride fields are all None above; they are the same keys as `limits`.
    let limit_keys: Vec<String> =
        out.iter().filter_map(|p| p.strip_prefix("limits.")).map(|k| format!("tenants.<id>.{k}")).collect();
    out.extend(limit_keys);
    out
}

fn walk(v: &serde_yaml::Value, path: &str, out: &mut Vec<String>) {
    match v {
        serde_yaml::Value::Mapping(m) => {
            for (k, child) in m {
                let k = k.as_str().unwrap_or_default();
                let p = match path {
                    "" => k.to_string(),
                    // Free-form maps: their keys are user data.
                    "global.external_labels"
                    | "scrape_configs[].params"
                    | "scrape_configs[].static_configs[].labels" => {
                        continue;
                    }
                    "tenants" => "tenants.<id>".to_string(),
                    _ => format!("{path}.{k}"),
                };
                out.push(p.clone());
                walk(child, &p, out);
            }
        }
        serde_yaml::Value::Sequence(s) => {
            for child in s {
                walk(child, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn reference_doc_documents_every_key() {
    let doc = std::fs::read_to_string(repo_file("docs/configuration.md")).unwrap();
    let mut missing = Vec::new();
    for p in all_key_paths() {
        if !doc.contains(&format!("`{p}`")) {
            missing.push(p);
        }
    }
    assert!(missing.is_empty(), "docs/configuration.md lacks: {missing:#?}");
    assert!(doc.contains("periscope validate --config"));
}

#[test]
fn example_mentions_every_key() {
    let example = std::fs::read_to_string(repo_file("config/periscope.example.yaml")).unwrap();
    let mut missing = Vec::new();
    for p in all_key_paths() {
        let leaf = p.rsplit('.').next().unwrap_or(&p).trim_end_matches("[]");
        if leaf == "<id>" {
            continue;
        }
        if !example.contains(&format!("{leaf}:")) {
            missing.push(p);
        }
    }
    assert!(missing.is_empty(), "config/periscope.example.yaml lacks: {missing:#?}");
}

#[test]
fn doc_follows_the_order_of_the_example() {
    let doc = std::fs::read_to_string(repo_file("docs/configuration.md")).unwrap();
    let sections = ["`global`", "`server`", "`storage`", "`query`", "`limits`", "`tenants`", "`scrape_configs`"];
    let pos: Vec<usize> = sections.iter().map(|s| doc.find(&format!("## {s}")).unwrap_or(usize::MAX)).collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "sections out of order or missing: {pos:?}");
}

// --- Loading never panics ---

proptest::proptest! {
    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,64}") {
        let _ = Config::from_yaml_str(&s);
    }

    #[test]
    fn mutated_example_never_panics(line in 0usize..200, replacement in "[ -~]{0,20}") {
        let example = std::fs::read_to_string(repo_file("config/periscope.example.yaml")).unwrap();
        let mut lines: Vec<&str> = example.lines().collect();
        if line < lines.len() {
            lines[line] = &replacement;
        }
        let _ = Config::from_yaml_str(&lines.join("\n"));
    }
}
