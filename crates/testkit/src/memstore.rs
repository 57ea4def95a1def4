//! An in-memory [`Queryable`] for tests: series → samples sorted by time, one data set for
//! every tenant.
//!
//! Invariants: the samples of a series are sorted by time without duplicate timestamps (adding
//! a sample at a stored timestamp replaces it); stale markers are ordinary samples here — the
//! query engine interprets them. Queriers take a snapshot (an `Arc` of the data), so a querier
//! never sees later changes and adding after a query copies nothing once the querier is gone.

use periscope_model::{HistogramSample, Labels, Matcher, MetricMetadata, Sample, TenantId, TimeRange};
use periscope_storage::{Querier, Queryable, SelectHints, Series, SeriesSet, StoreError, VecSamples};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One series: float samples and native histogram samples, each sorted by time.
#[derive(Debug, Clone, Default)]
struct Stored {
    samples: Vec<Sample>,
    histograms: Vec<HistogramSample>,
}

type Data = BTreeMap<Labels, Stored>;

/// Inserts `item` keeping `items` sorted by `t`, replacing an item with the same time.
fn insert_sorted<T>(items: &mut Vec<T>, item: T, t: impl Fn(&T) -> i64) {
    let at = t(&item);
    match items.last() {
        Some(last) if t(last) < at => items.push(item),
        None => items.push(item),
        Some(_) => match items.binary_search_by_key(&at, &t) {
            Ok(i) => items[i] = item,
            Err(i) => items.insert(i, item),
        },
    }
}

/// An in-memory metrics store. Tenants are ignored: every tenant sees the same data.
#[derive(Debug, Clone, Default)]
pub struct MemStore {
    data: Arc<Data>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `sample` in the series `labels`, replacing a sample with the same timestamp.
    /// Appending in time order costs O(1); an earlier timestamp costs a binary search and an
    /// insertion.
    pub fn add(&mut self, labels: &Labels, sample: Sample) {
        insert_sorted(&mut self.series_mut(labels).samples, sample, |s| s.t);
    }

    /// Stores a native histogram sample in the series `labels`, replacing one with the same
    /// timestamp.
    pub fn add_histogram(&mut self, labels: &Labels, sample: HistogramSample) {
        insert_sorted(&mut self.series_mut(labels).histograms, sample, |s| s.t);
    }

    fn series_mut(&mut self, labels: &Labels) -> &mut Stored {
        let data = Arc::make_mut(&mut self.data);
        if !data.contains_key(labels) {
            data.insert(labels.clone(), Stored::default());
        }
        data.get_mut(labels).expect("inserted above")
    }

    /// Drops every series.
    pub fn clear(&mut self) {
        self.data = Arc::default();
    }

    /// Number of series.
    pub fn series_count(&self) -> usize {
        self.data.len()
    }

    /// Number of samples over all series.
    pub fn sample_count(&self) -> usize {
        self.data.values().map(|s| s.samples.len() + s.histograms.len()).sum()
    }

    /// The samples of series `labels`, in time order (empty when the series does not exist).
    pub fn samples(&self, labels: &Labels) -> &[Sample] {
        self.data.get(labels).map_or(&[], |s| s.samples.as_slice())
    }
}

impl Queryable for MemStore {
    fn querier(&self, _tenant: &TenantId, range: TimeRange) -> Result<Box<dyn Querier>, StoreError> {
        Ok(Box::new(MemQuerier { data: Arc::clone(&self.data), range }))
    }

    fn metadata(&self, _tenant: &TenantId, _metric: Option<&str>) -> Result<Vec<MetricMetadata>, StoreError> {
        Ok(Vec::new())
    }
}

/// A snapshot of a [`MemStore`] limited to one time range.
struct MemQuerier {
    data: Arc<Data>,
    range: TimeRange,
}

fn matches_all(labels: &Labels, matchers: &[Matcher]) -> bool {
    matchers.iter().all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
}

impl MemQuerier {
    fn matching<'a>(&'a self, matchers: &'a [Matcher]) -> impl Iterator<Item = (&'a Labels, &'a Stored)> + 'a {
        self.data.iter().filter(move |(l, _)| matches_all(l, matchers))
    }
}

impl Querier for MemQuerier {
    fn select(&self, matchers: &[Matcher], hints: &SelectHints) -> Result<SeriesSet, StoreError> {
        // Samples must lie in both the querier's range and the hinted one.
        let min = self.range.min.max(hints.range.min);
        let max = self.range.max.min(hints.range.max);
        let mut out = Vec::new();
        for (labels, stored) in self.matching(matchers) {
            let (picked, hists) = if hints.labels_only || min > max {
                (Vec::new(), Vec::new())
            } else {
                let s = &stored.samples;
                let h = &stored.histograms;
                let (from, to) = (s.partition_point(|s| s.t < min), s.partition_point(|s| s.t <= max));
                let (hfrom, hto) = (h.partition_point(|s| s.t < min), h.partition_point(|s| s.t <= max));
                (s[from..to].to_vec(), h[hfrom..hto].to_vec())
            };
            out.push(Ok(Series {
                labels: labels.clone(),
                samples: Box::new(VecSamples::new(picked)),
                histograms: Box::new(hists.into_iter()),
            }));
        }
        Ok(Box::new(out.into_iter()))
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> =
            self.matching(matchers).flat_map(|(l, _)| l.iter().map(|p| p.name.clone())).collect();
        names.sort_unstable();
        names.dedup();
        Ok(names)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StoreError> {
        let mut values: Vec<String> =
            self.matching(matchers).filter_map(|(l, _)| l.get(name).map(str::to_string)).collect();
        values.sort_unstable();
        values.dedup();
        Ok(values)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use periscope_model::{is_stale_nan, MatchOp, STALE_NAN};

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    fn collect(set: SeriesSet) -> Vec<(Labels, Vec<(i64, f64)>)> {
        set.map(|s| {
            let mut s = s.unwrap();
            let mut pts = vec![];
            while let Some(x) = s.samples.next() {
                pts.push((x.t, x.v));
            }
            (s.labels, pts)
        })
        .collect()
    }

    #[test]
    fn add_keeps_order_and_replaces_same_timestamp() {
        let mut st = MemStore::new();
        let a = labels(&[("__name__", "a")]);
        st.add(&a, Sample::new(20, 2.0));
        st.add(&a, Sample::new(10, 1.0));
        st.add(&a, Sample::new(30, 3.0));
        st.add(&a, Sample::new(20, 22.0));
        let got: Vec<_> = st.samples(&a).iter().map(|s| (s.t, s.v)).collect();
        assert_eq!(got, vec![(10, 1.0), (20, 22.0), (30, 3.0)]);
        st.clear();
        assert_eq!(st.series_count(), 0);
    }

    #[test]
    fn select_filters_sorts_and_limits_range() {
        let mut st = MemStore::new();
        let b = labels(&[("__name__", "m"), ("job", "b")]);
        let a = labels(&[("__name__", "m"), ("job", "a")]);
        let other = labels(&[("__name__", "other")]);
        for t in 0..5 {
            st.add(&b, Sample::new(t * 10, t as f64));
            st.add(&a, Sample::new(t * 10, -(t as f64)));
            st.add(&other, Sample::new(t * 10, 0.0));
        }
        st.add(&a, Sample::new(50, STALE_NAN));
        let t = TenantId::default_tenant();
        let q = st.querier(&t, TimeRange::new(0, 100)).unwrap();
        let m = [Matcher::equal("__name__", "m")];
        let got = collect(q.select(&m, &SelectHints::range(TimeRange::new(10, 50))).unwrap());
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, a);
        assert_eq!(got[0].1.len(), 5);
        assert!(is_stale_nan(got[0].1[4].1));
        assert_eq!(got[1].1, vec![(10, 1.0), (20, 2.0), (30, 3.0), (40, 4.0)]);

        let re = [Matcher::new(MatchOp::Regex, "job", "a|c").unwrap()];
        assert_eq!(collect(q.select(&re, &SelectHints::range(TimeRange::all())).unwrap()).len(), 1);
        assert_eq!(q.label_names(&[]).unwrap(), vec!["__name__", "job"]);
        assert_eq!(q.label_values("job", &m).unwrap(), vec!["a", "b"]);
        assert!(st.metadata(&t, None).unwrap().is_empty());
    }

    #[test]
    fn querier_is_a_snapshot() {
        let mut st = MemStore::new();
        let a = labels(&[("__name__", "a")]);
        st.add(&a, Sample::new(1, 1.0));
        let q = st.querier(&TenantId::default_tenant(), TimeRange::all()).unwrap();
        st.add(&a, Sample::new(2, 2.0));
        let got = collect(q.select(&[Matcher::equal("__name__", "a")], &SelectHints::range(TimeRange::all())).unwrap());
        assert_eq!(got[0].1, vec![(1, 1.0)]);
        assert_eq!(st.sample_count(), 2);
    }
}
