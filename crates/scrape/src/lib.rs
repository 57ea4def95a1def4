//! Prometheus-compatible scraping: targets from `scrape_configs`, one tokio task per target,
//! samples, stale markers and report series appended to a store.
//!
//! Design constraints and invariants:
//! - Semantics follow Prometheus 3's `scrape/` package where a user can tell: target labels
//!   and URL (`target.rs`), offsets and timestamp alignment, the `Accept` header, body size
//!   limit, `honor_labels`/`honor_timestamps`, metric relabelling, sample and label limits,
//!   report series, staleness markers (`scrape_append.rs`), and what happens on stop and
//!   reload (`manager.rs`). Differences are listed in each module's docs and the README.
//! - The store is synchronous: decoding and `Appendable::append` run in `spawn_blocking`,
//!   never on a runtime worker. One scrape is one `append` call.
//! - Every input is hostile: a target that hangs, closes the connection, answers garbage, a
//!   huge or gzip-bombed body or a non-200 status fails that scrape (`up` 0, `last_error`
//!   set, stale markers for the previous scrape's series) and the loop goes on. Nothing read
//!   from the network panics or grows memory past the body limit.
//! - `ScrapeManager::stop` leaves no task behind and no append in flight.
//!
//! Modules: `target` (labels, URL, hash, offset), `http` (hyper HTTP/1.1 client, auth, gzip),
//! `tls` (rustls client configuration from `tls_config`),
//! `scrape_append` (samples → batch, staleness cache, report series), `scrape_loop` (the task
//! per target), `manager` (jobs, reload, status), `metrics` (self-metrics), `error`.

mod error;
mod http;
mod manager;
mod metrics;
mod scrape_append;
mod scrape_loop;
mod target;
mod tls;

pub use error::ScrapeError;
pub use http::{ACCEPT_HEADER, USER_AGENT_VALUE};
pub use manager::{DroppedTarget, ScrapeManager, ScrapeOptions, TargetHealth, TargetStatus, DEFAULT_BODY_SIZE_LIMIT};
pub use target::{
    ADDRESS_LABEL, INSTANCE_LABEL, JOB_LABEL, METRICS_PATH_LABEL, PARAM_LABEL_PREFIX, SCHEME_LABEL,
    SCRAPE_INTERVAL_LABEL, SCRAPE_TIMEOUT_LABEL,
};
