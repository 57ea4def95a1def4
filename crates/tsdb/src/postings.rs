//! The in-memory inverted index of the head: label pair → sorted series refs.

use periscope_model::{Labels, MatchOp, Matcher};
use std::collections::{BTreeMap, HashMap};

/// Label name → value → refs (ascending).
#[derive(Debug, Default)]
pub(crate) struct MemPostings {
    by_label: HashMap<String, BTreeMap<String, Vec<u64>>>,
    all: Vec<u64>,
}

fn insert_sorted(v: &mut Vec<u64>, r: u64) {
    match v.last() {
        Some(&last) if last < r => v.push(r),
        None => v.push(r),
        _ => {
            if let Err(i) = v.binary_search(&r) {
                v.insert(i, r);
            }
        }
    }
}

/// Intersection of two ascending lists.
pub(crate) fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// `a` without the elements of `b`; both ascending.
pub(crate) fn subtract(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut j = 0;
    let mut out = Vec::with_capacity(a.len());
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j < b.len() && b[j] == x {
            continue;
        }
        out.push(x);
    }
    out
}

/// Union of ascending lists.
pub(crate) fn union(lists: Vec<&[u64]>) -> Vec<u64> {
    match lists.len() {
        0 => Vec::new(),
        1 => lists[0].to_vec(),
        _ => {
            let mut out: Vec<u64> = lists.concat();
            out.sort_unstable();
            out.dedup();
            out
        }
    }
}

impl MemPostings {
    pub(crate) fn add(&mut self, r: u64, labels: &Labels) {
        for l in labels {
            let values = self.by_label.entry(l.name.clone()).or_default();
            match values.get_mut(l.value.as_str()) {
                Some(v) => insert_sorted(v, r),
                None => {
                    values.insert(l.value.clone(), vec![r]);
                }
            }
        }
        insert_sorted(&mut self.all, r);
    }

    #[allow(dead_code)] // head garbage collection of series that left the head (with blocks)
    pub(crate) fn remove(&mut self, r: u64, labels: &Labels) {
        for l in labels {
            if let Some(values) = self.by_label.get_mut(l.name.as_str()) {
                if let Some(v) = values.get_mut(l.value.as_str()) {
                    v.retain(|x| *x != r);
                    if v.is_empty() {
                        values.remove(l.value.as_str());
                    }
                }
                if values.is_empty() {
                    self.by_label.remove(l.name.as_str());
                }
            }
        }
        self.all.retain(|x| *x != r);
    }

    pub(crate) fn label_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.by_label.keys().cloned().collect();
        v.sort_unstable();
        v
    }

    pub(crate) fn label_values(&self, name: &str) -> Vec<String> {
        self.by_label.get(name).map(|m| m.keys().cloned().collect()).unwrap_or_default()
    }

    /// Refs of the series having label `m.name` with a value `v` for which `m.matches(v) == want`.
    fn matching_values(&self, m: &Matcher, want: bool) -> Vec<&[u64]> {
        let Some(values) = self.by_label.get(m.name.as_str()) else { return Vec::new() };
        if want && m.op == MatchOp::Equal {
            return values.get(m.value.as_str()).map(|v| vec![v.as_slice()]).unwrap_or_default();
        }
        if want {
            if let Some(set) = m.set_matches() {
                return set.iter().filter_map(|v| values.get(*v).map(|p| p.as_slice())).collect();
            }
        }
        values.iter().filter(|(v, _)| m.matches(v) == want).map(|(_, p)| p.as_slice()).collect()
    }
}

impl PostingsSource for MemPostings {
    fn matching(&self, m: &Matcher, want: bool) -> Vec<u64> {
        union(self.matching_values(m, want))
    }

    fn all(&self) -> Vec<u64> {
        self.all.clone()
    }
}

/// An inverted index a selection can run over: the head's in memory, a block's on disk.
pub(crate) trait PostingsSource {
    /// Ascending ids of the series that have label `m.name` with a value `v` for which
    /// `m.matches(v) == want`.
    fn matching(&self, m: &Matcher, want: bool) -> Vec<u64>;
    /// Every series id, ascending.
    fn all(&self) -> Vec<u64>;
}

/// Ids of the series matching every matcher, ascending. Follows Prometheus's
/// `PostingsForMatchers`: matchers that match the empty string also select series without the
/// label, so they subtract the values they reject instead of intersecting the ones they accept.
pub(crate) fn select(source: &impl PostingsSource, matchers: &[Matcher]) -> Vec<u64> {
    let mut result: Option<Vec<u64>> = None;
    let mut subtract_lists: Vec<Vec<u64>> = Vec::new();
    for m in matchers {
        if m.matches_empty() {
            subtract_lists.push(source.matching(m, false));
        } else {
            let accepted = source.matching(m, true);
            result = Some(match result {
                None => accepted,
                Some(r) => intersect(&r, &accepted),
            });
            if result.as_ref().is_some_and(|r| r.is_empty()) {
                return Vec::new();
            }
        }
    }
    let mut out = result.unwrap_or_else(|| source.all());
    for s in &subtract_lists {
        out = subtract(&out, s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn selects_like_prometheus() {
        let mut p = MemPostings::default();
        p.add(1, &ls(&[("__name__", "up"), ("job", "a")]));
        p.add(2, &ls(&[("__name__", "up"), ("job", "b")]));
        p.add(3, &ls(&[("__name__", "up")]));
        p.add(4, &ls(&[("__name__", "down"), ("job", "a")]));
        let m = |op, n: &str, v: &str| Matcher::new(op, n, v).unwrap();
        assert_eq!(select(&p, &[m(MatchOp::Equal, "__name__", "up")]), vec![1, 2, 3]);
        assert_eq!(select(&p, &[m(MatchOp::Equal, "__name__", "up"), m(MatchOp::NotEqual, "job", "a")]), vec![2, 3]);
        assert_eq!(select(&p, &[m(MatchOp::Equal, "__name__", "up"), m(MatchOp::Equal, "job", "")]), vec![3]);
        assert_eq!(select(&p, &[m(MatchOp::Regex, "job", "a|b")]), vec![1, 2, 4]);
        assert_eq!(select(&p, &[m(MatchOp::Regex, "job", ".+"), m(MatchOp::NotRegex, "__name__", "d.*")]), vec![1, 2]);
        assert_eq!(select(&p, &[m(MatchOp::Equal, "job", "zzz")]), Vec::<u64>::new());
        p.remove(2, &ls(&[("__name__", "up"), ("job", "b")]));
        assert_eq!(p.label_values("job"), vec!["a"]);
        assert_eq!(select(&p, &[m(MatchOp::Equal, "__name__", "up")]), vec![1, 3]);
    }

    #[test]
    fn set_operations() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[3, 4, 5]), vec![3, 5]);
        assert_eq!(subtract(&[1, 3, 5, 7], &[3, 4, 5]), vec![1, 7]);
        assert_eq!(union(vec![&[1, 5], &[2, 5, 9]]), vec![1, 2, 5, 9]);
    }
}
