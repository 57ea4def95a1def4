//! `global`: defaults shared by other sections (Prometheus's `global` block).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::check::{map_key, Errors};
use crate::{defaults, Duration};

/// The `global` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GlobalConfig {
    /// How often targets are scraped unless a scrape config says otherwise. `0s` means the
    /// default.
    pub scrape_interval: Duration,
    /// Scrape timeout unless a scrape config says otherwise. Unset or `0s` means
    /// `min(10s, scrape_interval)`, as in Prometheus.
    #[serde(default)]
    pub scrape_timeout: Duration,
    /// Labels added to every series, alert and log stream this server sends elsewhere
    /// (remote write, federation, alerts). `$VAR`/`${VAR}` in values are replaced from the
    /// environment when the file is loaded, as Prometheus does.
    pub external_labels: BTreeMap<String, String>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: defaults::SCRAPE_INTERVAL,
            scrape_timeout: defaults::SCRAPE_TIMEOUT,
            external_labels: BTreeMap::new(),
        }
    }
}

impl GlobalConfig {
    /// Fills unset (zero) values, as Prometheus does before validating.
    pub(crate) fn resolve(&mut self) {
        if self.scrape_interval.is_zero() {
            self.scrape_interval = defaults::SCRAPE_INTERVAL;
        }
        if self.scrape_timeout.is_zero() {
            self.scrape_timeout = defaults::SCRAPE_TIMEOUT.min(self.scrape_interval);
        }
    }

    pub(crate) fn validate(&self, errs: &mut Errors) {
        if self.scrape_timeout > self.scrape_interval {
            errs.add(
                "global.scrape_timeout",
                format!("must not be greater than global.scrape_interval ({})", self.scrape_interval),
            );
        }
        for name in self.external_labels.keys() {
            if let Err(e) = periscope_model::validate_label_name(name) {
                errs.add(map_key("global.external_labels", name), e.to_string());
            }
        }
    }
}
