//! Targets: from `static_configs` to scrape targets, as Prometheus 3's `scrape/target.go`.
//!
//! Invariants:
//! - A target's label set is built exactly as `PopulateLabels`: the static target's
//!   `__address__`, then its group's labels, then (only where absent) `job`,
//!   `__scrape_interval__`, `__scrape_timeout__`, `__metrics_path__`, `__scheme__` and the
//!   first value of each `params` entry as `__param_<name>`; then `relabel_configs`. A target
//!   dropped by relabelling is kept aside (for the dropped-targets list), never scraped.
//! - After relabelling: `__address__` must be set and contain no `/`; interval and timeout are
//!   read back from their labels (relabelling may change them) and must be non-zero with
//!   timeout ≤ interval; `__meta_*` labels are deleted; `instance` defaults to `__address__`.
//!   As in Prometheus 3 no default port is added to the address.
//! - The labels series get ([`Target::public_labels`]) are those not starting with `__`; the
//!   `__` ones only shape the URL.
//! - The URL is `__scheme__://__address____metrics_path__?query`, the query being the config's
//!   `params` with the first value of each overridden by `__param_<name>` labels, encoded as
//!   Go's `url.Values.Encode` (sorted keys, `QueryEscape`).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use periscope_config::ScrapeConfig;
use periscope_model::{Labels, LabelsBuilder};

/// `__address__`: `host:port` to scrape.
pub const ADDRESS_LABEL: &str = "__address__";
/// `__scheme__`: `http` or `https`.
pub const SCHEME_LABEL: &str = "__scheme__";
/// `__metrics_path__`: the HTTP path.
pub const METRICS_PATH_LABEL: &str = "__metrics_path__";
/// `__scrape_interval__`: the target's interval, in Prometheus's duration syntax.
pub const SCRAPE_INTERVAL_LABEL: &str = "__scrape_interval__";
/// `__scrape_timeout__`: the target's timeout, in Prometheus's duration syntax.
pub const SCRAPE_TIMEOUT_LABEL: &str = "__scrape_timeout__";
/// Prefix of the labels that become URL query parameters.
pub const PARAM_LABEL_PREFIX: &str = "__param_";
/// Prefix of the labels that never reach a series.
pub const RESERVED_LABEL_PREFIX: &str = "__";
/// Prefix of service-discovery labels, deleted right after relabelling.
pub const META_LABEL_PREFIX: &str = "__meta_";
/// `job`.
pub const JOB_LABEL: &str = "job";
/// `instance`.
pub const INSTANCE_LABEL: &str = "instance";

/// One target to scrape, after relabelling.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Target {
    /// The scrape config's `job_name` (the scrape pool), whatever the `job` label became.
    pub job: String,
    /// Every label after relabelling, the `__` ones included.
    pub labels: Labels,
    /// The labels before relabelling.
    pub discovered: Labels,
    /// The labels series get: `labels` without the `__` ones.
    pub public: Labels,
    pub url: ScrapeUrl,
    pub interval: Duration,
    pub timeout: Duration,
}

impl Target {
    /// Prometheus's `Target.hash`: FNV-1a over the label hash (16 decimal digits at least)
    /// and the URL. Identifies a target within its job and seeds its scrape offset.
    pub fn hash(&self) -> u64 {
        let mut h = Fnv64a::new();
        h.write(format!("{:016}", self.labels.stable_hash()).as_bytes());
        h.write(self.url.to_string().as_bytes());
        h.finish()
    }

    /// Prometheus's `Target.offset`: time until this target's first scrape, pinned to
    /// absolute time (`now_ns` since the epoch) so that every restart scrapes the target at
    /// the same phase of its interval, and spread over the interval by the target's hash.
    pub fn offset(&self, now_ns: u128, seed: u64) -> Duration {
        let interval = self.interval.as_nanos().max(1);
        let base = interval - now_ns % interval;
        let offset = u128::from(self.hash() ^ seed) % interval;
        let mut next = base + offset;
        if next > interval {
            next -= interval;
        }
        Duration::from_nanos(u64::try_from(next).unwrap_or(u64::MAX))
    }
}

/// What became of one static target.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Populated {
    /// To be scraped.
    Target(Box<Target>),
    /// Dropped by `relabel_configs`; the labels before relabelling.
    Dropped(Labels),
}

/// Every target of one scrape config, in config order, duplicates (same hash) removed; the
/// dropped ones; and one error per target that could not be built.
pub(crate) struct Targets {
    pub active: Vec<Target>,
    pub dropped: Vec<Labels>,
    pub failures: Vec<String>,
}

/// Builds the targets of `cfg` (a resolved config: interval, timeout and metrics path set).
pub(crate) fn targets_from_config(cfg: &ScrapeConfig) -> Targets {
    let mut out = Targets { active: Vec::new(), dropped: Vec::new(), failures: Vec::new() };
    let mut seen = std::collections::HashSet::new();
    for (g, group) in cfg.static_configs.iter().enumerate() {
        for (i, address) in group.targets.iter().enumerate() {
            match populate_labels(cfg, address, &group.labels) {
                Ok(Populated::Target(t)) => {
                    if seen.insert(t.hash()) {
                        out.active.push(*t);
                    }
                }
                Ok(Populated::Dropped(l)) => out.dropped.push(l),
                Err(e) => out.failures.push(format!("static_configs[{g}].targets[{i}] ({address:?}): {e}")),
            }
        }
    }
    out
}

/// Prometheus's `PopulateDiscoveredLabels`: the labels of one static target before
/// relabelling.
pub(crate) fn discovered_labels(cfg: &ScrapeConfig, address: &str, group: &BTreeMap<String, String>) -> LabelsBuilder {
    let mut lb = LabelsBuilder::new();
    lb.set(ADDRESS_LABEL, address);
    for (name, value) in group {
        if name != ADDRESS_LABEL {
            lb.set(name, value);
        }
    }
    let interval = cfg.scrape_interval.to_string();
    let timeout = cfg.scrape_timeout.to_string();
    let defaults = [
        (JOB_LABEL, cfg.job_name.as_str()),
        (SCRAPE_INTERVAL_LABEL, interval.as_str()),
        (SCRAPE_TIMEOUT_LABEL, timeout.as_str()),
        (METRICS_PATH_LABEL, cfg.metrics_path.as_str()),
        (SCHEME_LABEL, cfg.scheme.as_str()),
    ];
    for (name, value) in defaults {
        if lb.get(name).is_none() {
            lb.set(name, value);
        }
    }
    for (name, values) in &cfg.params {
        let label = format!("{PARAM_LABEL_PREFIX}{name}");
        if let Some(first) = values.first() {
            if lb.get(&label).is_none() {
                lb.set(&label, first);
            }
        }
    }
    lb
}

/// Prometheus's `PopulateLabels` for one static target.
pub(crate) fn populate_labels(
    cfg: &ScrapeConfig,
    address: &str,
    group: &BTreeMap<String, String>,
) -> Result<Populated, String> {
    let mut lb = discovered_labels(cfg, address, group);
    let discovered = lb.build();
    if !periscope_relabel::relabel_builder(&mut lb, &cfg.relabel_configs) {
        return Ok(Populated::Dropped(discovered));
    }
    let Some(addr) = lb.get(ADDRESS_LABEL).map(str::to_string) else {
        return Err("no address".to_string());
    };
    if addr.contains('/') {
        return Err(format!("{addr:?} is not a valid hostname"));
    }
    let interval = parse_duration_label(&lb, SCRAPE_INTERVAL_LABEL, "scrape interval")?;
    let timeout = parse_duration_label(&lb, SCRAPE_TIMEOUT_LABEL, "scrape timeout")?;
    if timeout > interval {
        return Err(format!(
            "scrape timeout cannot be greater than scrape interval ({:?} > {:?})",
            lb.get(SCRAPE_TIMEOUT_LABEL).unwrap_or_default(),
            lb.get(SCRAPE_INTERVAL_LABEL).unwrap_or_default()
        ));
    }
    lb.retain(|l| !l.name.starts_with(META_LABEL_PREFIX));
    if lb.get(INSTANCE_LABEL).is_none() {
        lb.set(INSTANCE_LABEL, &addr);
    }
    let labels = lb.build();
    let url = ScrapeUrl::from_labels(&labels, &cfg.params);
    let public = Labels::from_sorted_unchecked(
        labels.iter().filter(|l| !l.name.starts_with(RESERVED_LABEL_PREFIX)).cloned().collect(),
    );
    Ok(Populated::Target(Box::new(Target {
        job: cfg.job_name.clone(),
        labels,
        discovered,
        public,
        url,
        interval,
        timeout,
    })))
}

fn parse_duration_label(lb: &LabelsBuilder, name: &str, what: &str) -> Result<Duration, String> {
    let text = lb.get(name).unwrap_or_default();
    let d: periscope_config::Duration = text.parse().map_err(|e| format!("error parsing {what}: {e}"))?;
    if d.is_zero() {
        return Err(format!("{what} cannot be 0"));
    }
    Ok(d.as_std())
}

/// A scrape URL, kept in parts: the connection needs the address, the request line the path
/// and query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScrapeUrl {
    pub scheme: String,
    /// `__address__` as is: the `Host` header and what to connect to.
    pub host: String,
    /// Escaped path, then `?query` when there is one; always starts with `/`.
    pub path_and_query: String,
}

impl ScrapeUrl {
    /// Go's `Target.URL()` from the final labels and the config's `params`.
    pub fn from_labels(labels: &Labels, params: &BTreeMap<String, Vec<String>>) -> ScrapeUrl {
        let mut query: BTreeMap<String, Vec<String>> = params.clone();
        for l in labels {
            if let Some(name) = l.name.strip_prefix(PARAM_LABEL_PREFIX) {
                match query.get_mut(name) {
                    Some(values) if !values.is_empty() => values[0] = l.value.clone(),
                    _ => {
                        query.insert(name.to_string(), vec![l.value.clone()]);
                    }
                }
            }
        }
        let mut path_and_query = escape_path(labels.get(METRICS_PATH_LABEL).unwrap_or_default());
        if !path_and_query.starts_with('/') {
            path_and_query.insert(0, '/');
        }
        let encoded = encode_query(&query);
        if !encoded.is_empty() {
            path_and_query.push('?');
            path_and_query.push_str(&encoded);
        }
        ScrapeUrl {
            scheme: labels.get(SCHEME_LABEL).unwrap_or_default().to_string(),
            host: labels.get(ADDRESS_LABEL).unwrap_or_default().to_string(),
            path_and_query,
        }
    }

    /// `host:port` to connect to: the address, with the scheme's default port when it has
    /// none (Go's HTTP client does the same; the label keeps the address as written).
    pub fn connect_address(&self) -> String {
        let has_port = if let Some(rest) = self.host.strip_prefix('[') {
            rest.find("]:").is_some()
        } else {
            self.host.contains(':')
        };
        if has_port {
            self.host.clone()
        } else {
            let port = if self.scheme == "https" { 443 } else { 80 };
            format!("{}:{port}", self.host)
        }
    }
}

impl ScrapeUrl {
    /// The host of the address without port or brackets (`[::1]:9` → `::1`): the TLS server
    /// name by default, as Go's `URL.Hostname()`.
    pub fn hostname(&self) -> &str {
        if let Some(rest) = self.host.strip_prefix('[') {
            return rest.split_once(']').map_or(rest, |(h, _)| h);
        }
        self.host.rsplit_once(':').map_or(self.host.as_str(), |(h, _)| h)
    }
}

impl fmt::Display for ScrapeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.host, self.path_and_query)
    }
}

/// Go's `url.Values.Encode`: keys sorted, `k=v` pairs joined by `&`, both `QueryEscape`d.
fn encode_query(query: &BTreeMap<String, Vec<String>>) -> String {
    let mut out = String::new();
    for (k, values) in query {
        for v in values {
            if !out.is_empty() {
                out.push('&');
            }
            query_escape(k, &mut out);
            out.push('=');
            query_escape(v, &mut out);
        }
    }
    out
}

/// Go's `url.QueryEscape`: unreserved bytes kept, space as `+`, the rest `%XX`.
fn query_escape(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => push_pct(b, out),
        }
    }
}

/// Go's path escaping (`url.PathEscape` rules for a whole path: `/` kept).
fn escape_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'/'
            | b'$'
            | b'&'
            | b'+'
            | b','
            | b';'
            | b'='
            | b':'
            | b'@' => out.push(char::from(b)),
            _ => push_pct(b, &mut out),
        }
    }
    out
}

fn push_pct(b: u8, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 15)]));
}

/// 64-bit FNV-1a, as Go's `hash/fnv.New64a`.
pub(crate) struct Fnv64a(u64);

impl Fnv64a {
    pub fn new() -> Self {
        Fnv64a(0xcbf2_9ce4_8422_2325)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use periscope_config::{Scheme, StaticConfig};

    fn cfg(yaml_relabel: &str) -> ScrapeConfig {
        let relabel_configs =
            if yaml_relabel.is_empty() { Vec::new() } else { serde_yaml::from_str(yaml_relabel).unwrap() };
        ScrapeConfig {
            job_name: "node".into(),
            scrape_interval: periscope_config::Duration::from_secs(15),
            scrape_timeout: periscope_config::Duration::from_secs(10),
            metrics_path: "/metrics".into(),
            relabel_configs,
            ..Default::default()
        }
    }

    fn target(p: Populated) -> Target {
        match p {
            Populated::Target(t) => *t,
            Populated::Dropped(l) => panic!("dropped: {l}"),
        }
    }

    #[test]
    fn default_labels_and_url() {
        let mut c = cfg("");
        c.params.insert("module".into(), vec!["http 2xx".into(), "b".into()]);
        let group = BTreeMap::from([("env".to_string(), "prod".to_string())]);
        let t = target(populate_labels(&c, "10.0.0.1:9100", &group).unwrap());
        assert_eq!(
            t.discovered.to_string(),
            r#"{__address__="10.0.0.1:9100", __metrics_path__="/metrics", __param_module="http 2xx", __scheme__="http", __scrape_interval__="15s", __scrape_timeout__="10s", env="prod", job="node"}"#
        );
        assert_eq!(t.public.to_string(), r#"{env="prod", instance="10.0.0.1:9100", job="node"}"#);
        assert_eq!(t.url.to_string(), "http://10.0.0.1:9100/metrics?module=http+2xx&module=b");
        assert_eq!(t.interval, Duration::from_secs(15));
        assert_eq!(t.timeout, Duration::from_secs(10));
    }

    #[test]
    fn group_labels_do_not_override_defaults_set_by_target_but_override_config_defaults() {
        let c = cfg("");
        let group = BTreeMap::from([
            ("job".to_string(), "other".to_string()),
            ("__metrics_path__".to_string(), "/probe".to_string()),
            ("__address__".to_string(), "ignored:1".to_string()),
        ]);
        let t = target(populate_labels(&c, "h:1", &group).unwrap());
        assert_eq!(t.public.get("job"), Some("other"));
        assert_eq!(t.url.to_string(), "http://h:1/probe");
        assert_eq!(t.job, "node");
    }

    #[test]
    fn relabelling_rewrites_address_instance_params_and_drops() {
        let c = cfg(r#"
- source_labels: [__address__]
  target_label: __param_target
- target_label: __address__
  replacement: blackbox:9115
- source_labels: [__param_target]
  target_label: instance
- target_label: __tmp_x
  replacement: y
- source_labels: [__param_target]
  regex: "drop.*"
  action: drop
"#);
        let t = target(populate_labels(&c, "example.com", &BTreeMap::new()).unwrap());
        assert_eq!(t.url.to_string(), "http://blackbox:9115/metrics?target=example.com");
        assert_eq!(t.public.to_string(), r#"{instance="example.com", job="node"}"#);
        assert_eq!(t.url.connect_address(), "blackbox:9115");
        match populate_labels(&c, "drop.me", &BTreeMap::new()).unwrap() {
            Populated::Dropped(l) => assert_eq!(l.get("__address__"), Some("drop.me")),
            Populated::Target(t) => panic!("not dropped: {t:?}"),
        }
    }

    #[test]
    fn interval_and_timeout_come_from_labels() {
        let c = cfg(r#"
- target_label: __scrape_interval__
  replacement: 1m
- target_label: __scrape_timeout__
  replacement: 30s
"#);
        let t = target(populate_labels(&c, "h:1", &BTreeMap::new()).unwrap());
        assert_eq!((t.interval, t.timeout), (Duration::from_secs(60), Duration::from_secs(30)));
        let bad = cfg(r#"
- target_label: __scrape_timeout__
  replacement: 1m
"#);
        let e = populate_labels(&bad, "h:1", &BTreeMap::new()).unwrap_err();
        assert!(e.contains("scrape timeout cannot be greater than scrape interval"), "{e}");
        let zero = cfg(r#"
- target_label: __scrape_interval__
  replacement: "0"
"#);
        assert_eq!(populate_labels(&zero, "h:1", &BTreeMap::new()).unwrap_err(), "scrape interval cannot be 0");
    }

    #[test]
    fn bad_addresses() {
        let c = cfg(r#"
- target_label: __address__
  replacement: ""
"#);
        assert_eq!(populate_labels(&c, "h:1", &BTreeMap::new()).unwrap_err(), "no address");
        assert!(populate_labels(&cfg(""), "http://h:1", &BTreeMap::new())
            .unwrap_err()
            .contains("not a valid hostname"));
    }

    #[test]
    fn no_default_port_in_labels_but_in_connection() {
        let mut c = cfg("");
        let t = target(populate_labels(&c, "host", &BTreeMap::new()).unwrap());
        assert_eq!(t.public.get("instance"), Some("host"));
        assert_eq!(t.url.connect_address(), "host:80");
        c.scheme = Scheme::Https;
        let t = target(populate_labels(&c, "[::1]", &BTreeMap::new()).unwrap());
        assert_eq!(t.url.connect_address(), "[::1]:443");
        let t = target(populate_labels(&c, "[::1]:9", &BTreeMap::new()).unwrap());
        assert_eq!(t.url.connect_address(), "[::1]:9");
        assert_eq!(t.url.hostname(), "::1");
        for (address, host) in [("[::1]", "::1"), ("node:9100", "node"), ("node", "node"), ("10.0.0.1:1", "10.0.0.1")] {
            let t = target(populate_labels(&c, address, &BTreeMap::new()).unwrap());
            assert_eq!(t.url.hostname(), host, "{address}");
        }
    }

    #[test]
    fn path_escaping_and_leading_slash() {
        let c = cfg(r#"
- target_label: __metrics_path__
  replacement: "metrics x%"
"#);
        let t = target(populate_labels(&c, "h:1", &BTreeMap::new()).unwrap());
        assert_eq!(t.url.to_string(), "http://h:1/metrics%20x%25");
    }

    #[test]
    fn duplicates_are_scraped_once_and_offset_is_within_interval() {
        let mut c = cfg("");
        c.static_configs = vec![
            StaticConfig { targets: vec!["a:1".into(), "a:1".into(), "b:1".into()], labels: BTreeMap::new() },
            StaticConfig { targets: vec!["x/y".into()], labels: BTreeMap::new() },
        ];
        let ts = targets_from_config(&c);
        assert_eq!(ts.active.len(), 2);
        assert_eq!(ts.failures.len(), 1);
        assert!(ts.failures[0].starts_with("static_configs[1].targets[0]"), "{:?}", ts.failures);
        let t = &ts.active[0];
        assert_eq!(t.hash(), t.clone().hash());
        for now in [0u128, 1, 14_999_999_999, 1_700_000_000_123_456_789] {
            let o = t.offset(now, 42);
            assert!(o <= t.interval, "{o:?}");
            // Pinned to absolute time: the first scrape lands on the same phase.
            assert_eq!(
                (now + o.as_nanos()) % t.interval.as_nanos(),
                (u128::from(t.hash() ^ 42)) % t.interval.as_nanos()
            );
        }
    }

    #[test]
    fn fnv_matches_go() {
        let mut h = Fnv64a::new();
        h.write(b"hello");
        assert_eq!(h.finish(), 0xa430_d846_80aa_bd0b);
    }
}
