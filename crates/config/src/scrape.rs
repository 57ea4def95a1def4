//! `scrape_configs`: Prometheus's scrape config syntax for the part Periscope implements,
//! plus `format`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use periscope_relabel::RelabelConfig;
use serde::{Deserialize, Serialize};

use crate::check::{check_target, index, map_key, Errors};
use crate::{defaults, ByteSize, Duration, GlobalConfig, Secret};

/// URL scheme used to scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS (see `tls_config`).
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// What a target serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScrapeFormat {
    /// Prometheus text or OpenMetrics exposition (negotiated by `Accept`).
    Prometheus,
    /// Go's `expvar` JSON (`/debug/vars`): numeric leaves become gauges, `memstats` is mapped
    /// to the Go runtime's usual metric names. Periscope's addition.
    Expvar,
}

/// One `scrape_configs` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScrapeConfig {
    /// Value of the `job` label of every target; required and unique.
    pub job_name: String,
    /// How often to scrape; `0s` (or unset) inherits `global.scrape_interval`.
    pub scrape_interval: Duration,
    /// Per-scrape timeout; `0s` (or unset) means `min(global.scrape_timeout,
    /// scrape_interval)`. Must not exceed the interval.
    pub scrape_timeout: Duration,
    /// HTTP path of the metrics; empty (or unset) means `/metrics`, or `/debug/vars` for
    /// `format: expvar`.
    pub metrics_path: String,
    /// `http` or `https`.
    pub scheme: Scheme,
    /// URL query parameters (a name may repeat).
    pub params: BTreeMap<String, Vec<String>>,
    /// On a clash between a scraped label and a target label, keep the scraped one (`true`)
    /// or rename it to `exported_<name>` (`false`).
    pub honor_labels: bool,
    /// Use timestamps the target exposes (`true`) or the scrape time (`false`).
    pub honor_timestamps: bool,
    /// HTTP basic authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// `Authorization` header (`type credentials`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// Bearer token (legacy form of `authorization`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<Secret>,
    /// File holding the bearer token, read at every scrape (relative to the config file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<PathBuf>,
    /// TLS settings for `https`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    /// A scrape with more samples than this (after metric relabelling) fails; 0 = no limit.
    pub sample_limit: u64,
    /// A scrape with a series of more labels than this fails; 0 = no limit.
    pub label_limit: u64,
    /// A scrape with a longer label name than this fails; 0 = no limit.
    pub label_name_length_limit: u64,
    /// A scrape with a longer label value than this fails; 0 = no limit.
    pub label_value_length_limit: u64,
    /// A response body (uncompressed) larger than this fails the scrape; 0B = no limit.
    pub body_size_limit: ByteSize,
    /// Fixed targets.
    pub static_configs: Vec<StaticConfig>,
    /// Rules applied to each target's labels before scraping.
    pub relabel_configs: Vec<RelabelConfig>,
    /// Rules applied to each scraped series before storing.
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// `prometheus` or `expvar`.
    pub format: ScrapeFormat,
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        ScrapeConfig {
            job_name: String::new(),
            scrape_interval: Duration::ZERO,
            scrape_timeout: Duration::ZERO,
            metrics_path: String::new(),
            scheme: defaults::SCHEME,
            params: BTreeMap::new(),
            honor_labels: defaults::HONOR_LABELS,
            honor_timestamps: defaults::HONOR_TIMESTAMPS,
            basic_auth: None,
            authorization: None,
            bearer_token: None,
            bearer_token_file: None,
            tls_config: None,
            sample_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            body_size_limit: ByteSize::ZERO,
            static_configs: Vec::new(),
            relabel_configs: Vec::new(),
            metric_relabel_configs: Vec::new(),
            format: defaults::SCRAPE_FORMAT,
        }
    }
}

/// `basic_auth`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// File holding the user name (relative to the config file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username_file: Option<PathBuf>,
    /// Password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// File holding the password, read at every scrape (relative to the config file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
}

/// `authorization`: sends `Authorization: <type> <credentials>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Authorization {
    /// Scheme word; `Bearer` by default; `Basic` is refused (use `basic_auth`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Secret>,
    /// File holding the credentials, read at every scrape (relative to the config file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<PathBuf>,
}

impl Default for Authorization {
    fn default() -> Self {
        Authorization { kind: defaults::AUTHORIZATION_TYPE.to_string(), credentials: None, credentials_file: None }
    }
}

/// `tls_config`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// CA certificates inline (PEM), instead of `ca_file`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ca: String,
    /// CA certificates to verify the target with (PEM); the system roots when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate inline (PEM), instead of `cert_file`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cert: String,
    /// Client key inline (PEM), instead of `key_file`; printed as `<secret>`.
    #[serde(skip_serializing_if = "Secret::is_empty")]
    pub key: Secret,
    /// Client certificate (PEM), with `key_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// Client key (PEM), with `cert_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Name to verify the certificate against, instead of the target host.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub server_name: String,
    /// Skip certificate verification (never in production).
    pub insecure_skip_verify: bool,
    /// Oldest TLS version to accept; TLS 1.2 when unset (Go's default, hence Prometheus's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_version: Option<TlsVersion>,
    /// Newest TLS version to offer; TLS 1.3 when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_version: Option<TlsVersion>,
}

/// A TLS protocol version, spelt as Prometheus spells it (`TLS12`). Periscope speaks TLS 1.2
/// and 1.3: `TLS10` and `TLS11` are accepted as `min_version` (pasted Prometheus configs keep
/// loading; the floor is then TLS 1.2) but refused as `max_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.0 (not spoken).
    #[serde(rename = "TLS10")]
    Tls10,
    /// TLS 1.1 (not spoken).
    #[serde(rename = "TLS11")]
    Tls11,
    /// TLS 1.2.
    #[serde(rename = "TLS12")]
    Tls12,
    /// TLS 1.3.
    #[serde(rename = "TLS13")]
    Tls13,
}

impl TlsVersion {
    /// `TLS10` ... `TLS13`.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls10 => "TLS10",
            TlsVersion::Tls11 => "TLS11",
            TlsVersion::Tls12 => "TLS12",
            TlsVersion::Tls13 => "TLS13",
        }
    }
}

impl std::fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TlsConfig {
    /// Prometheus's `TLSConfig.Validate` and `NewTLSConfig` checks that need no file: files
    /// are read when a target's client is built, as Prometheus does (a missing file fails
    /// that target's scrapes, not the configuration).
    fn validate(&self, at: &str, errs: &mut Errors) {
        for (inline, file, name) in [
            (!self.ca.is_empty(), self.ca_file.is_some(), "ca"),
            (!self.cert.is_empty(), self.cert_file.is_some(), "cert"),
            (!self.key.is_empty(), self.key_file.is_some(), "key"),
        ] {
            if inline && file {
                errs.add(format!("{at}.{name}"), format!("at most one of {name} and {name}_file must be configured"));
            }
        }
        let cert = !self.cert.is_empty() || self.cert_file.is_some();
        let key = !self.key.is_empty() || self.key_file.is_some();
        if cert && !key {
            errs.add(at, "exactly one of key or key_file must be configured when a client certificate is configured");
        }
        if key && !cert {
            errs.add(at, "exactly one of cert or cert_file must be configured when a client key is configured");
        }
        if let Some(max) = self.max_version {
            if max < TlsVersion::Tls12 {
                errs.add(
                    format!("{at}.max_version"),
                    format!("{max} is not supported (Periscope speaks TLS12 and TLS13)"),
                );
            } else if let Some(min) = self.min_version.filter(|min| *min > max) {
                errs.add(format!("{at}.max_version"), format!("must not be lower than min_version ({min})"));
            }
        }
    }
}

/// One `static_configs` entry: targets that share labels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaticConfig {
    /// `host:port` (or `host`, which takes the scheme's default port) of each target.
    pub targets: Vec<String>,
    /// Labels given to every target of this group.
    pub labels: BTreeMap<String, String>,
}

fn empty_secret_is_unset(s: &mut Option<Secret>) {
    if s.as_ref().is_some_and(Secret::is_empty) {
        *s = None;
    }
}

fn empty_path_is_unset(p: &mut Option<PathBuf>) {
    if p.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
        *p = None;
    }
}

fn join_dir(dir: &Path, p: &mut Option<PathBuf>) {
    if let Some(path) = p {
        if path.is_relative() {
            *path = dir.join(&*path);
        }
    }
}

impl ScrapeConfig {
    /// Fills inherited and unset values: intervals from `global`, the default
    /// `metrics_path`, Prometheus's "empty means unset" for secrets and files, and the
    /// default authorization type.
    pub(crate) fn resolve(&mut self, global: &GlobalConfig) {
        if self.scrape_interval.is_zero() {
            self.scrape_interval = global.scrape_interval;
        }
        if self.scrape_timeout.is_zero() {
            self.scrape_timeout = global.scrape_timeout.min(self.scrape_interval);
        }
        if self.metrics_path.is_empty() {
            self.metrics_path = match self.format {
                ScrapeFormat::Prometheus => defaults::METRICS_PATH,
                ScrapeFormat::Expvar => defaults::EXPVAR_METRICS_PATH,
            }
            .to_string();
        }
        empty_secret_is_unset(&mut self.bearer_token);
        empty_path_is_unset(&mut self.bearer_token_file);
        if let Some(b) = &mut self.basic_auth {
            empty_secret_is_unset(&mut b.password);
            empty_path_is_unset(&mut b.password_file);
            empty_path_is_unset(&mut b.username_file);
        }
        if let Some(a) = &mut self.authorization {
            a.kind = a.kind.trim().to_string();
            if a.kind.is_empty() {
                a.kind = defaults::AUTHORIZATION_TYPE.to_string();
            }
            empty_secret_is_unset(&mut a.credentials);
            empty_path_is_unset(&mut a.credentials_file);
        }
        if let Some(t) = &mut self.tls_config {
            empty_path_is_unset(&mut t.ca_file);
            empty_path_is_unset(&mut t.cert_file);
            empty_path_is_unset(&mut t.key_file);
        }
    }

    /// Makes relative file paths relative to `dir` (the config file's directory).
    pub(crate) fn set_directory(&mut self, dir: &Path) {
        join_dir(dir, &mut self.bearer_token_file);
        if let Some(b) = &mut self.basic_auth {
            join_dir(dir, &mut b.password_file);
            join_dir(dir, &mut b.username_file);
        }
        if let Some(a) = &mut self.authorization {
            join_dir(dir, &mut a.credentials_file);
        }
        if let Some(t) = &mut self.tls_config {
            join_dir(dir, &mut t.ca_file);
            join_dir(dir, &mut t.cert_file);
            join_dir(dir, &mut t.key_file);
        }
    }

    /// Validates one resolved scrape config whose key path is `at` (`scrape_configs[2]`).
    pub(crate) fn validate(&self, at: &str, errs: &mut Errors) {
        if self.job_name.is_empty() {
            errs.add(format!("{at}.job_name"), "must not be empty");
        }
        if self.scrape_timeout > self.scrape_interval {
            errs.add(
                format!("{at}.scrape_timeout"),
                format!("must not be greater than scrape_interval ({})", self.scrape_interval),
            );
        }
        self.validate_auth(at, errs);
        if let Some(t) = &self.tls_config {
            t.validate(&format!("{at}.tls_config"), errs);
        }
        for (i, sc) in self.static_configs.iter().enumerate() {
            let sat = index(&format!("{at}.static_configs"), i);
            // As Prometheus: relabelling may rewrite __address__, so targets are only
            // checked when there is none.
            if self.relabel_configs.is_empty() {
                for (j, t) in sc.targets.iter().enumerate() {
                    if let Err(e) = check_target(t) {
                        errs.add(index(&format!("{sat}.targets"), j), e);
                    }
                }
            }
            for name in sc.labels.keys() {
                if let Err(e) = periscope_model::validate_label_name(name) {
                    errs.add(map_key(&format!("{sat}.labels"), name), e.to_string());
                }
            }
        }
        for (list, rules) in
            [("relabel_configs", &self.relabel_configs), ("metric_relabel_configs", &self.metric_relabel_configs)]
        {
            for (i, rule) in rules.iter().enumerate() {
                if let Err(es) = rule.validate() {
                    let rat = index(&format!("{at}.{list}"), i);
                    for e in es {
                        errs.add(format!("{rat}.{}", e.field), e.message);
                    }
                }
            }
        }
    }

    /// Prometheus's `HTTPClientConfig.Validate` rules for the fields we have.
    fn validate_auth(&self, at: &str, errs: &mut Errors) {
        let token = self.bearer_token.is_some();
        let token_file = self.bearer_token_file.is_some();
        if token && token_file {
            errs.add(format!("{at}.bearer_token_file"), "at most one of bearer_token and bearer_token_file may be set");
        }
        let kinds = [self.basic_auth.is_some(), self.authorization.is_some(), token || token_file];
        if kinds.iter().filter(|k| **k).count() > 1 {
            let key = if self.authorization.is_some() { "authorization" } else { "basic_auth" };
            errs.add(
                format!("{at}.{key}"),
                "at most one of basic_auth, authorization and bearer_token (or bearer_token_file) may be set",
            );
        }
        if let Some(b) = &self.basic_auth {
            if b.password.is_some() && b.password_file.is_some() {
                errs.add(
                    format!("{at}.basic_auth.password_file"),
                    "at most one of password and password_file may be set",
                );
            }
            if !b.username.is_empty() && b.username_file.is_some() {
                errs.add(
                    format!("{at}.basic_auth.username_file"),
                    "at most one of username and username_file may be set",
                );
            }
        }
        if let Some(a) = &self.authorization {
            if a.credentials.is_some() && a.credentials_file.is_some() {
                errs.add(
                    format!("{at}.authorization.credentials_file"),
                    "at most one of credentials and credentials_file may be set",
                );
            }
            if a.kind.eq_ignore_ascii_case("basic") {
                errs.add(format!("{at}.authorization.type"), "must not be \"Basic\" (use basic_auth instead)");
            }
            if a.kind.contains(char::is_whitespace) {
                errs.add(format!("{at}.authorization.type"), format!("{:?} must be a single word", a.kind));
            }
        }
    }
}
