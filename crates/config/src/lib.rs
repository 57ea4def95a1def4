//! The configuration of `periscope serve`: one YAML file, every key optional.
//!
//! Design constraints:
//! - Every struct is `#[serde(default, deny_unknown_fields)]`: a missing key, section or file
//!   means the defaults in [`defaults`]; an unknown key is an error naming its path, line and
//!   column.
//! - Loading is parse → resolve → validate. Resolving fills inherited values the way
//!   Prometheus does (a scrape config's `scrape_interval` from `global`, `scrape_timeout` as
//!   `min(global timeout, interval)`), so consumers read plain values.
//! - [`Config::validate`] reports every problem, each naming its key path
//!   (`scrape_configs[2].scrape_timeout: ...`); a parse error stops at the first, since
//!   nothing after it can be trusted.
//! - The syntax of the parts Prometheus also has (`global`, `scrape_configs`, relabelling,
//!   durations, byte sizes) is Prometheus's, so its configs can be pasted in.
//! - No I/O except [`Config::load`] reading its file, and the environment lookup for
//!   `global.external_labels` that Prometheus also does.
//!
//! `docs/configuration.md` documents every key in the order of
//! `config/periscope.example.yaml`; a test parses the example.

mod bytesize;
mod check;
pub mod defaults;
mod duration;
mod env;
mod error;
mod global;
mod limits;
mod logs;
mod otlp;
mod query;
mod scrape;
mod secret;
mod server;
mod storage;
mod traces;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use bytesize::{ByteSize, ByteSizeError};
pub use duration::{Duration, DurationError};
pub use error::{ConfigError, ConfigErrors};
pub use global::GlobalConfig;
pub use limits::{Limits, LimitsOverride};
pub use logs::LogsConfig;
pub use otlp::OtlpConfig;
pub use periscope_relabel::RelabelConfig;
pub use query::QueryConfig;
pub use scrape::{Authorization, BasicAuth, Scheme, ScrapeConfig, ScrapeFormat, StaticConfig, TlsConfig, TlsVersion};
pub use secret::{Secret, REDACTED};
pub use server::{LogFormat, LogLevel, ServerConfig};
pub use storage::{FsyncMode, LogsStorageConfig, MetricsStorageConfig, StorageConfig, TracesStorageConfig, WalConfig};
pub use traces::{SpanLimitsConfig, SpanMetricsConfig, TracesConfig};

use check::{index, map_key, Errors};

/// The whole configuration file. `Config::default()` is what an empty file means.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Defaults shared by other sections.
    pub global: GlobalConfig,
    /// Listeners, request limits, logging.
    pub server: ServerConfig,
    /// Data directory and the embedded engines.
    pub storage: StorageConfig,
    /// The PromQL engine's limits.
    pub query: QueryConfig,
    /// Limits for every tenant.
    pub limits: Limits,
    /// Per-tenant overrides of `limits`, by tenant id.
    pub tenants: BTreeMap<String, LimitsOverride>,
    /// Targets to scrape.
    pub scrape_configs: Vec<ScrapeConfig>,
    /// How OTLP metrics are translated.
    pub otlp: OtlpConfig,
    /// What the trace pipeline derives from spans.
    pub traces: TracesConfig,
    /// The log pipeline.
    pub logs: LogsConfig,
}

impl Config {
    /// Parses, resolves and validates a configuration. Environment variables in
    /// `global.external_labels` values are expanded. Relative file paths stay relative to the
    /// working directory (use [`Config::load`] to make them relative to the file).
    pub fn from_yaml_str(yaml: &str) -> Result<Config, ConfigErrors> {
        Self::parse(yaml, None, &|name| std::env::var(name).ok())
    }

    /// Reads, parses, resolves and validates the file at `path`. Relative file paths in it
    /// (`password_file`, `bearer_token_file`, TLS files...) are taken relative to the file's
    /// directory, as Prometheus does; `storage.data_dir` stays relative to the working
    /// directory.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigErrors> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let dir = path.parent().unwrap_or(Path::new(""));
        Self::parse(&text, Some(dir), &|name| std::env::var(name).ok())
    }

    fn parse(yaml: &str, dir: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
        let mut c: Config = serde_yaml::from_str(yaml).map_err(|e| ConfigError::Parse(e.to_string()))?;
        for v in c.global.external_labels.values_mut() {
            *v = env::expand(v, env);
        }
        c.resolve();
        if let Some(dir) = dir {
            for sc in &mut c.scrape_configs {
                sc.set_directory(dir);
            }
        }
        c.validate()?;
        Ok(c)
    }

    /// Fills inherited and unset values as Prometheus does: `global.scrape_interval` `0s` →
    /// 1m, `global.scrape_timeout` unset → `min(10s, interval)`, each scrape config's
    /// interval and timeout from `global`, its `metrics_path` from its `format`. Idempotent;
    /// [`Config::from_yaml_str`] and [`Config::load`] call it.
    pub fn resolve(&mut self) {
        self.global.resolve();
        for sc in &mut self.scrape_configs {
            sc.resolve(&self.global);
        }
    }

    /// Checks the configuration and returns every problem found. Works on a resolved or an
    /// unresolved configuration (it judges the resolved values).
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut c = self.clone();
        c.resolve();
        let mut errs = Errors::default();
        c.global.validate(&mut errs);
        c.server.validate(&mut errs);
        c.storage.validate(&mut errs);
        c.query.validate(&mut errs);
        c.otlp.validate(&mut errs);
        c.traces.validate(&mut errs);
        c.logs.validate(&mut errs);
        for id in c.tenants.keys() {
            if let Err(e) = periscope_model::TenantId::new(id) {
                errs.add(map_key("tenants", id), e.to_string());
            }
        }
        let mut jobs: HashMap<&str, usize> = HashMap::new();
        for (i, sc) in c.scrape_configs.iter().enumerate() {
            let at = index("scrape_configs", i);
            sc.validate(&at, &mut errs);
            if sc.job_name.is_empty() {
                continue;
            }
            if let Some(first) = jobs.get(sc.job_name.as_str()) {
                errs.add(
                    format!("{at}.job_name"),
                    format!("{:?} is already used by {}", sc.job_name, index("scrape_configs", *first)),
                );
            } else {
                jobs.insert(&sc.job_name, i);
            }
        }
        if errs.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errs.0))
        }
    }

    /// The limits of `tenant`: `limits` with that tenant's overrides from `tenants` applied.
    pub fn tenant_limits(&self, tenant: &str) -> Limits {
        match self.tenants.get(tenant) {
            Some(o) => o.apply_to(&self.limits),
            None => self.limits.clone(),
        }
    }

    /// The configuration as YAML, secrets shown as `<secret>`.
    pub fn to_yaml(&self) -> Result<String, ConfigError> {
        serde_yaml::to_string(self).map_err(|e| ConfigError::Parse(e.to_string()))
    }
}

#[cfg(test)]
#[path = "config_test.rs"]
mod tests;
