//! From one scrape's samples to one [`MetricBatch`]: target labels, metric relabelling,
//! limits, staleness bookkeeping and the report series. Pure: no I/O, no clock (the caller
//! passes the scrape time and "now").
//!
//! Follows Prometheus's `scrapeLoop.append`/`report` (`scrape/scrape.go`):
//! - Each sample's labels get the target's labels: with `honor_labels: false` a scraped label
//!   that clashes with a target label is renamed `exported_<name>` (`exported_exported_<name>`
//!   if that is taken too, shortest names first), with `honor_labels: true` the scraped value
//!   wins. Then `metric_relabel_configs`; a dropped or emptied series is skipped.
//! - A series without `__name__` after relabelling, or breaking `label_limit`,
//!   `label_name_length_limit` or `label_value_length_limit`, fails the whole scrape.
//! - `sample_limit` counts the samples that reach the appender (after relabelling); beyond it
//!   the scrape fails, but counting goes on so the report tells the real totals.
//! - A sample without a timestamp whose series already has one in this scrape is a duplicate
//!   (counted, skipped); one with an explicit timestamp more than 10 minutes ahead of now is
//!   out of bounds (counted, skipped).
//! - Staleness: series that had no explicit timestamp in the previous successful scrape and
//!   are absent (or have an explicit timestamp) now get a stale marker at this scrape's time.
//!   A failed scrape marks every such series of the previous scrape stale and forgets them.
//! - Report series (`up`, `scrape_duration_seconds`, `scrape_samples_scraped`,
//!   `scrape_samples_post_metric_relabeling`, `scrape_series_added`) carry the target labels
//!   and the scrape time.
//!
//! Known differences: staleness is tracked by final label set rather than by storage
//! reference; a sample the store refuses still counts as seen (Prometheus forgets it); on a
//! failed scrape every series of the previous scrape is marked stale (Prometheus spares the
//! series appended before the failing line, a side effect of its streaming parser).

use std::collections::{HashMap, HashSet};

use periscope_model::{
    Exemplar, Labels, MetricBatch, MetricMetadata, MetricType, Sample, SeriesSamples, METRIC_NAME, STALE_NAN,
};
use periscope_relabel::RelabelConfig;
use periscope_storage::RejectReason;

use crate::ScrapeError;

/// Samples with explicit timestamps further ahead than this are refused (Prometheus's
/// `maxAheadTime`).
pub(crate) const MAX_AHEAD_MS: i64 = 10 * 60 * 1000;

/// Prefix given to scraped labels that clash with target labels.
const EXPORTED_PREFIX: &str = "exported_";

/// Label limits of one scrape config; 0 = no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LabelLimits {
    pub label_limit: usize,
    pub name_length: usize,
    pub value_length: usize,
}

/// How one target's samples are turned into series.
#[derive(Debug, Clone)]
pub(crate) struct SampleOptions {
    /// The target's public labels (no `__` ones).
    pub target_labels: Labels,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub metric_relabel: Vec<RelabelConfig>,
    /// 0 = no limit.
    pub sample_limit: usize,
    pub limits: LabelLimits,
}

/// One scraped sample, before target labels and relabelling.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawSample {
    pub labels: Labels,
    pub value: f64,
    /// The exposition's own timestamp (ms), if any.
    pub timestamp_ms: Option<i64>,
    /// Its exemplar; `t == 0` means "no timestamp of its own".
    pub exemplar: Option<Exemplar>,
}

/// The counts a scrape reports about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Samples in the exposition (`scrape_samples_scraped`).
    pub scraped: usize,
    /// Samples left after metric relabelling (`scrape_samples_post_metric_relabeling`).
    pub post_relabel: usize,
    /// Series not seen in the previous scrapes (`scrape_series_added`).
    pub series_added: usize,
}

/// What one scrape produced.
#[derive(Debug, Default)]
pub(crate) struct Appended {
    pub batch: BatchBuilder,
    pub counts: Counts,
    /// Samples refused here, before the store saw them.
    pub duplicates: u64,
    pub out_of_bounds: u64,
    pub stale_markers: u64,
}

impl Appended {
    /// The local refusals, by the store's reason names.
    pub fn rejected(&self) -> [(RejectReason, u64); 2] {
        [(RejectReason::DuplicateTimestamp, self.duplicates), (RejectReason::TooFarInFuture, self.out_of_bounds)]
    }
}

/// A batch with one entry per series, in first-seen order.
#[derive(Debug, Default)]
pub(crate) struct BatchBuilder {
    series: Vec<SeriesSamples>,
    index: HashMap<Labels, usize>,
    pub metadata: Vec<MetricMetadata>,
}

impl BatchBuilder {
    /// Adds a sample; `false` (and nothing added) when the series already has one at `t`.
    fn push(&mut self, labels: &Labels, sample: Sample) -> bool {
        match self.index.get(labels) {
            Some(&i) => {
                let s = &mut self.series[i];
                if s.samples.iter().any(|x| x.t == sample.t) {
                    return false;
                }
                s.samples.push(sample);
            }
            None => {
                self.index.insert(labels.clone(), self.series.len());
                self.series.push(SeriesSamples {
                    labels: labels.clone(),
                    samples: vec![sample],
                    histograms: Vec::new(),
                    exemplars: Vec::new(),
                });
            }
        }
        true
    }

    fn push_exemplar(&mut self, labels: &Labels, e: Exemplar) {
        if let Some(&i) = self.index.get(labels) {
            self.series[i].exemplars.push(e);
        }
    }

    /// Number of samples so far.
    #[cfg(test)]
    pub fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }

    /// The finished batch.
    pub fn build(self) -> MetricBatch {
        MetricBatch { series: self.series, metadata: self.metadata }
    }
}

/// Per-target bookkeeping across scrapes (Prometheus's `scrapeCache`, keyed by final label
/// set).
#[derive(Debug, Default)]
pub(crate) struct ScrapeCache {
    iter: u64,
    /// Series seen, with the iteration they were last seen in: what makes a series "added".
    series: HashMap<Labels, u64>,
    /// Series of the previous scrape that take part in staleness (no explicit timestamp).
    prev: HashSet<Labels>,
    /// The same for the scrape in progress.
    cur: HashSet<Labels>,
    successful_count: usize,
    /// Whether the report series' metadata was sent already.
    pub report_metadata_sent: bool,
}

impl ScrapeCache {
    /// Series that would be marked stale if the target vanished now.
    pub fn tracked(&self) -> usize {
        self.prev.len()
    }

    /// Processes one successful fetch. On error the caller must call
    /// [`ScrapeCache::append_failed`]; the counts are still reported.
    pub fn append(
        &mut self,
        samples: impl IntoIterator<Item = RawSample>,
        metadata: Vec<MetricMetadata>,
        t: i64,
        now_ms: i64,
        opts: &SampleOptions,
    ) -> Result<Appended, (ScrapeError, Counts)> {
        let mut out = Appended::default();
        let mut failure: Option<ScrapeError> = None;
        let mut limit_hit = false;
        let mut appended = 0usize;
        let mut names: HashSet<String> = HashSet::new();
        self.cur.clear();
        for s in samples {
            out.counts.scraped += 1;
            if failure.is_some() {
                continue;
            }
            let explicit = if opts.honor_timestamps { s.timestamp_ms } else { None };
            let st = explicit.unwrap_or(t);
            let Some(lset) = mutate_sample_labels(&s.labels, opts) else {
                continue;
            };
            if lset.metric_name().is_none() {
                failure = Some(ScrapeError::MissingMetricName);
                continue;
            }
            if let Err(e) = verify_label_limits(&lset, &opts.limits) {
                failure = Some(e);
                continue;
            }
            out.counts.post_relabel += 1;
            if opts.sample_limit > 0 {
                appended += 1;
                if appended > opts.sample_limit {
                    limit_hit = true;
                    continue;
                }
            }
            if explicit.is_some_and(|ts| ts > now_ms.saturating_add(MAX_AHEAD_MS)) {
                out.out_of_bounds += 1;
                continue;
            }
            if !out.batch.push(&lset, Sample::new(st, s.value)) {
                out.duplicates += 1;
                continue;
            }
            if let Some(mut e) = s.exemplar {
                if e.t == 0 {
                    e.t = st;
                }
                out.batch.push_exemplar(&lset, e);
            }
            if let Some(name) = lset.metric_name().filter(|n| !names.contains(*n)) {
                names.insert(name.to_string());
            }
            let known = self.series.insert(lset.clone(), self.iter).is_some();
            if !known && !limit_hit {
                out.counts.series_added += 1;
            }
            if explicit.is_none() {
                self.cur.insert(lset);
            }
        }
        if failure.is_none() && limit_hit {
            failure = Some(ScrapeError::SampleLimit);
        }
        if let Some(e) = failure {
            return Err((e, out.counts));
        }
        out.batch.metadata = metadata.into_iter().filter(|m| family_has_series(m, &names)).collect();
        out.stale_markers = self.mark_stale(&mut out.batch, t);
        self.iter_done(true);
        Ok(out)
    }

    /// A failed scrape: every series of the previous scrape gets a stale marker at `t`.
    pub fn append_failed(&mut self, t: i64) -> Appended {
        let mut out = Appended::default();
        self.cur.clear();
        out.stale_markers = self.mark_stale(&mut out.batch, t);
        self.iter_done(false);
        out
    }

    /// The end of a target (removed from the configuration): stale markers for every series
    /// of the last scrape and for the report series.
    pub fn append_end_of_run(&mut self, t: i64, target_labels: &Labels) -> MetricBatch {
        let mut out = self.append_failed(t);
        for (name, _) in REPORT_SERIES {
            out.batch.push(&report_labels(name, target_labels), Sample::new(t, STALE_NAN));
        }
        out.batch.build()
    }

    fn mark_stale(&self, batch: &mut BatchBuilder, t: i64) -> u64 {
        let mut n = 0;
        for l in self.prev.difference(&self.cur) {
            if batch.push(l, Sample::new(t, STALE_NAN)) {
                n += 1;
            }
        }
        n
    }

    /// Prometheus's `iterDone`: forget series not seen lately, swap current and previous.
    fn iter_done(&mut self, flush: bool) {
        let count = self.series.len();
        let flush = flush || count > self.successful_count.saturating_mul(2).saturating_add(1000);
        if flush {
            let iter = self.iter;
            self.series.retain(|_, last| *last == iter);
            self.successful_count = self.series.len();
        }
        std::mem::swap(&mut self.prev, &mut self.cur);
        self.cur.clear();
        self.iter += 1;
    }
}

/// The report series, with their metadata.
pub(crate) const REPORT_SERIES: [(&str, &str); 5] = [
    ("up", "Health of the scrape target. 1 means the target is healthy, 0 if the scrape failed."),
    ("scrape_duration_seconds", "Duration of the last scrape in seconds."),
    ("scrape_samples_scraped", "Number of samples last scraped."),
    ("scrape_samples_post_metric_relabeling", "Number of samples remaining after metric relabeling was applied."),
    ("scrape_series_added", "Number of series in the last scrape."),
];

/// Prometheus's `mutateReportSampleLabels`: the target labels and the name.
fn report_labels(name: &str, target_labels: &Labels) -> Labels {
    let mut lb = target_labels.builder();
    lb.set(METRIC_NAME, name);
    lb.build()
}

/// Adds the report series of a scrape to `batch` (and their metadata the first time).
pub(crate) fn add_report(
    batch: &mut BatchBuilder,
    cache: &mut ScrapeCache,
    target_labels: &Labels,
    t: i64,
    healthy: bool,
    duration_seconds: f64,
    counts: Counts,
) {
    let values = [
        if healthy { 1.0 } else { 0.0 },
        duration_seconds,
        counts.scraped as f64,
        counts.post_relabel as f64,
        counts.series_added as f64,
    ];
    for ((name, help), v) in REPORT_SERIES.iter().zip(values) {
        batch.push(&report_labels(name, target_labels), Sample::new(t, v));
        if !cache.report_metadata_sent {
            batch.metadata.push(MetricMetadata {
                metric_family: (*name).to_string(),
                metric_type: MetricType::Gauge,
                help: (*help).to_string(),
                unit: String::new(),
            });
        }
    }
    cache.report_metadata_sent = true;
}

/// Prometheus's `mutateSampleLabels`: target labels per `honor_labels`, then metric
/// relabelling. `None` when the series is dropped.
pub(crate) fn mutate_sample_labels(lset: &Labels, opts: &SampleOptions) -> Option<Labels> {
    let mut lb = lset.builder();
    if opts.honor_labels {
        for l in &opts.target_labels {
            if lset.get(&l.name).is_none() {
                lb.set(&l.name, &l.value);
            }
        }
    } else {
        let mut conflicting: Vec<(&str, &str)> = Vec::new();
        for l in &opts.target_labels {
            if let Some(v) = lset.get(&l.name) {
                conflicting.push((&l.name, v));
            }
            lb.set(&l.name, &l.value);
        }
        conflicting.sort_by_key(|(name, _)| name.len());
        for (name, value) in conflicting {
            let mut new_name = name.to_string();
            loop {
                new_name.insert_str(0, EXPORTED_PREFIX);
                if lb.get(&new_name).is_none() {
                    lb.set(&new_name, value);
                    break;
                }
            }
        }
    }
    if !periscope_relabel::relabel_builder(&mut lb, &opts.metric_relabel) {
        return None;
    }
    let out = lb.build();
    (!out.is_empty()).then_some(out)
}

/// Go's `%.50s`: at most 50 characters.
fn trunc50(s: &str) -> &str {
    match s.char_indices().nth(50) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Prometheus's `verifyLabelLimits`, with its messages.
fn verify_label_limits(lset: &Labels, limits: &LabelLimits) -> Result<(), ScrapeError> {
    let met = trunc50(lset.metric_name().unwrap_or_default());
    if limits.label_limit > 0 && lset.len() > limits.label_limit {
        return Err(ScrapeError::LabelLimit(format!(
            "label_limit exceeded (metric: {met}, number of labels: {}, limit: {})",
            lset.len(),
            limits.label_limit
        )));
    }
    for l in lset {
        if limits.name_length > 0 && l.name.len() > limits.name_length {
            return Err(ScrapeError::LabelLimit(format!(
                "label_name_length_limit exceeded (metric: {met}, label name: {}, length: {}, limit: {})",
                trunc50(&l.name),
                l.name.len(),
                limits.name_length
            )));
        }
        if limits.value_length > 0 && l.value.len() > limits.value_length {
            return Err(ScrapeError::LabelLimit(format!(
                "label_value_length_limit exceeded (metric: {met}, label name: {}, value: {:?}, length: {}, limit: {})",
                trunc50(&l.name),
                trunc50(&l.value),
                l.value.len(),
                limits.value_length
            )));
        }
    }
    Ok(())
}

/// Whether any kept series belongs to the family of `m`: looks up the few names a family's
/// series can have instead of testing every series name against every family.
fn family_has_series(m: &MetricMetadata, names: &HashSet<String>) -> bool {
    let f = m.metric_family.as_str();
    let mut candidates = vec![f.to_string()];
    for suffix in ["_total", "_bucket", "_sum", "_count", "_gsum", "_gcount", "_info"] {
        candidates.push(format!("{f}{suffix}"));
    }
    for suffix in ["_total", "_info"] {
        if let Some(stem) = f.strip_suffix(suffix) {
            candidates.push(stem.to_string());
        }
    }
    candidates.iter().any(|n| names.contains(n) && is_series_part_of_family(n, m))
}

/// Prometheus's `isSeriesPartOfFamily`: whether series name `name` belongs to the family of
/// `m`, so that metadata of families dropped whole by relabelling is not stored.
fn is_series_part_of_family(name: &str, m: &MetricMetadata) -> bool {
    let family = m.metric_family.as_str();
    if !name.starts_with(family) {
        return false;
    }
    let cut =
        |suffixes: &[&str]| -> bool { suffixes.iter().any(|s| name.strip_suffix(s) == Some(family)) || name == family };
    match m.metric_type {
        MetricType::Counter => {
            let fam = family.strip_suffix("_total").unwrap_or(family);
            name.strip_suffix("_total").unwrap_or(name) == fam
        }
        MetricType::Histogram => cut(&["_bucket", "_sum", "_count"]),
        MetricType::GaugeHistogram => cut(&["_bucket", "_gsum", "_gcount"]),
        MetricType::Summary => cut(&["_sum", "_count"]),
        MetricType::Info => {
            let fam = family.strip_suffix("_info").unwrap_or(family);
            name.strip_suffix("_info").unwrap_or(name) == fam
        }
        MetricType::StateSet | MetricType::Gauge | MetricType::Unknown => name == family,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use periscope_model::is_stale_nan;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    fn opts() -> SampleOptions {
        SampleOptions {
            target_labels: l(&[("instance", "h:1"), ("job", "j")]),
            honor_labels: false,
            honor_timestamps: true,
            metric_relabel: Vec::new(),
            sample_limit: 0,
            limits: LabelLimits::default(),
        }
    }

    fn raw(name: &str, extra: &[(&str, &str)], v: f64, ts: Option<i64>) -> RawSample {
        let mut pairs = vec![("__name__", name)];
        pairs.extend_from_slice(extra);
        RawSample { labels: l(&pairs), value: v, timestamp_ms: ts, exemplar: None }
    }

    fn series(b: &MetricBatch) -> Vec<(String, Vec<(i64, String)>)> {
        b.series
            .iter()
            .map(|s| {
                let samples = s
                    .samples
                    .iter()
                    .map(|x| (x.t, if is_stale_nan(x.v) { "stale".to_string() } else { x.v.to_string() }))
                    .collect();
                (s.labels.to_string(), samples)
            })
            .collect()
    }

    #[test]
    fn honor_labels_false_renames_conflicts() {
        let o = opts();
        let got =
            mutate_sample_labels(&l(&[("__name__", "m"), ("job", "scraped"), ("exported_job", "x")]), &o).unwrap();
        assert_eq!(
            got.to_string(),
            r#"{__name__="m", exported_exported_job="scraped", exported_job="x", instance="h:1", job="j"}"#
        );
    }

    #[test]
    fn honor_labels_true_keeps_scraped() {
        let o = SampleOptions { honor_labels: true, ..opts() };
        let got = mutate_sample_labels(&l(&[("__name__", "m"), ("job", "scraped")]), &o).unwrap();
        assert_eq!(got.to_string(), r#"{__name__="m", instance="h:1", job="scraped"}"#);
    }

    #[test]
    fn metric_relabel_drops() {
        let o = SampleOptions {
            metric_relabel: serde_yaml::from_str("- source_labels: [__name__]\n  regex: drop_.*\n  action: drop\n")
                .unwrap(),
            ..opts()
        };
        assert!(mutate_sample_labels(&l(&[("__name__", "drop_me")]), &o).is_none());
        assert!(mutate_sample_labels(&l(&[("__name__", "keep_me")]), &o).is_some());
    }

    #[test]
    fn staleness_across_scrapes() {
        let o = opts();
        let mut c = ScrapeCache::default();
        let a = c.append(vec![raw("a", &[], 1.0, None), raw("b", &[], 2.0, None)], vec![], 1000, 1000, &o).unwrap();
        assert_eq!(a.counts, Counts { scraped: 2, post_relabel: 2, series_added: 2 });
        assert_eq!(a.stale_markers, 0);
        // b disappears: stale at the scrape time.
        let a = c.append(vec![raw("a", &[], 1.0, None)], vec![], 2000, 2000, &o).unwrap();
        assert_eq!(a.counts.series_added, 0);
        let got = series(&a.batch.build());
        assert!(got.contains(&(r#"{__name__="b", instance="h:1", job="j"}"#.into(), vec![(2000, "stale".into())])));
        // Failed scrape: a goes stale; then nothing more.
        let f = c.append_failed(3000);
        assert_eq!(f.stale_markers, 1);
        assert_eq!(c.append_failed(4000).stale_markers, 0);
        // a comes back: it was seen before, so not "added".
        let a = c.append(vec![raw("a", &[], 1.0, None)], vec![], 5000, 5000, &o).unwrap();
        assert_eq!(a.counts.series_added, 0);
        assert_eq!(c.tracked(), 1);
    }

    #[test]
    fn explicit_timestamps_are_not_tracked_unless_ignored() {
        let o = opts();
        let mut c = ScrapeCache::default();
        c.append(vec![raw("a", &[], 1.0, Some(500))], vec![], 1000, 1000, &o).unwrap();
        let a = c.append(vec![], vec![], 2000, 2000, &o).unwrap();
        assert_eq!(a.stale_markers, 0);
        let o = SampleOptions { honor_timestamps: false, ..opts() };
        let a = c.append(vec![raw("a", &[], 1.0, Some(500))], vec![], 3000, 3000, &o).unwrap();
        assert_eq!(series(&a.batch.build())[0].1, vec![(3000, "1".to_string())]);
        let a = c.append(vec![], vec![], 4000, 4000, &o).unwrap();
        assert_eq!(a.stale_markers, 1);
    }

    #[test]
    fn duplicates_and_future_samples_are_counted() {
        let o = opts();
        let mut c = ScrapeCache::default();
        let a = c
            .append(
                vec![
                    raw("a", &[], 1.0, None),
                    raw("a", &[], 2.0, None),
                    raw("f", &[], 1.0, Some(1000 + MAX_AHEAD_MS + 1)),
                ],
                vec![],
                1000,
                1000,
                &o,
            )
            .unwrap();
        assert_eq!((a.duplicates, a.out_of_bounds), (1, 1));
        assert_eq!(a.counts.post_relabel, 3);
        assert_eq!(a.batch.sample_count(), 1);
    }

    #[test]
    fn sample_limit_fails_with_full_counts() {
        let o = SampleOptions { sample_limit: 2, ..opts() };
        let mut c = ScrapeCache::default();
        let three = || (0..3).map(|i| raw("m", &[("i", &i.to_string())], 1.0, None)).collect::<Vec<_>>();
        let (e, counts) = c.append(three(), vec![], 1000, 1000, &o).unwrap_err();
        assert!(matches!(e, ScrapeError::SampleLimit));
        assert_eq!(counts, Counts { scraped: 3, post_relabel: 3, series_added: 2 });
        let o = SampleOptions { sample_limit: 3, ..opts() };
        assert!(c.append(three(), vec![], 2000, 2000, &o).is_ok());
    }

    #[test]
    fn label_limits_and_missing_name() {
        let mut c = ScrapeCache::default();
        let o = SampleOptions { limits: LabelLimits { label_limit: 3, ..Default::default() }, ..opts() };
        let (e, _) = c.append(vec![raw("m", &[("a", "1")], 1.0, None)], vec![], 1, 1, &o).unwrap_err();
        assert_eq!(e.to_string(), "label_limit exceeded (metric: m, number of labels: 4, limit: 3)");
        let o = SampleOptions { limits: LabelLimits { value_length: 2, ..Default::default() }, ..opts() };
        let (e, _) = c.append(vec![raw("m", &[("a", "123")], 1.0, None)], vec![], 1, 1, &o).unwrap_err();
        assert!(e.to_string().starts_with("label_value_length_limit exceeded (metric: m, label name: a"), "{e}");
        let o = SampleOptions {
            metric_relabel: serde_yaml::from_str("- action: labeldrop\n  regex: __name__\n").unwrap(),
            ..opts()
        };
        let (e, _) = c.append(vec![raw("m", &[], 1.0, None)], vec![], 1, 1, &o).unwrap_err();
        assert!(matches!(e, ScrapeError::MissingMetricName));
    }

    #[test]
    fn report_and_end_of_run() {
        let o = opts();
        let mut c = ScrapeCache::default();
        let mut a = c.append(vec![raw("a", &[], 1.0, None)], vec![], 1000, 1000, &o).unwrap();
        add_report(&mut a.batch, &mut c, &o.target_labels, 1000, true, 0.5, a.counts);
        let b = a.batch.build();
        assert_eq!(b.series.len(), 6);
        assert_eq!(b.metadata.len(), 5);
        assert!(series(&b).contains(&(r#"{__name__="up", instance="h:1", job="j"}"#.into(), vec![(1000, "1".into())])));
        let end = c.append_end_of_run(2000, &o.target_labels);
        assert_eq!(end.series.len(), 6);
        assert!(end.series.iter().all(|s| s.samples.len() == 1 && is_stale_nan(s.samples[0].v)));
    }

    #[test]
    fn metadata_follows_kept_families() {
        let m = |f: &str, t| MetricMetadata {
            metric_family: f.into(),
            metric_type: t,
            help: String::new(),
            unit: String::new(),
        };
        assert!(is_series_part_of_family("http_requests_total", &m("http_requests", MetricType::Counter)));
        assert!(is_series_part_of_family("h_bucket", &m("h", MetricType::Histogram)));
        assert!(!is_series_part_of_family("hx", &m("h", MetricType::Histogram)));
        assert!(is_series_part_of_family("g", &m("g", MetricType::Gauge)));
        let names: HashSet<String> = ["req_total".to_string(), "h_sum".to_string()].into();
        assert!(family_has_series(&m("req", MetricType::Counter), &names));
        assert!(family_has_series(&m("req_total", MetricType::Counter), &names));
        assert!(family_has_series(&m("h", MetricType::Summary), &names));
        assert!(!family_has_series(&m("h", MetricType::Gauge), &names));
        assert!(!family_has_series(&m("other", MetricType::Counter), &names));
    }
}
