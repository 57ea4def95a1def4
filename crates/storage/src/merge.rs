//! Helpers engines share: sample iterators over vectors and k-way merges of sorted sources.

use crate::SampleIterator;
use periscope_model::Sample;

/// Samples held in a vector, already sorted by time.
#[derive(Debug, Default)]
pub struct VecSamples {
    samples: Vec<Sample>,
    pos: usize,
}

impl VecSamples {
    /// Iterates `samples`, which must be sorted by time without duplicates.
    pub fn new(samples: Vec<Sample>) -> Self {
        VecSamples { samples, pos: 0 }
    }
}

impl SampleIterator for VecSamples {
    fn next(&mut self) -> Option<Sample> {
        let s = self.samples.get(self.pos).copied()?;
        self.pos += 1;
        Some(s)
    }

    fn seek(&mut self, t: i64) -> Option<Sample> {
        let rest = self.samples.get(self.pos..)?;
        self.pos += rest.partition_point(|s| s.t < t);
        self.next()
    }
}

/// A sample already read from `rest`, then `rest` (how a select puts back the sample it read
/// to see that a series is not empty).
pub struct Prepend {
    first: Option<Sample>,
    rest: Box<dyn SampleIterator>,
}

impl Prepend {
    /// `first`, then everything of `rest` (whose samples all come after `first`).
    pub fn new(first: Sample, rest: Box<dyn SampleIterator>) -> Self {
        Prepend { first: Some(first), rest }
    }
}

impl SampleIterator for Prepend {
    #[inline]
    fn next(&mut self) -> Option<Sample> {
        match self.first.take() {
            Some(s) => Some(s),
            None => self.rest.next(),
        }
    }

    fn seek(&mut self, t: i64) -> Option<Sample> {
        if let Some(s) = self.first.take() {
            if s.t >= t {
                return Some(s);
            }
        }
        self.rest.seek(t)
    }

    fn collect_until(&mut self, max_t: i64, out: &mut Vec<Sample>) {
        if let Some(s) = self.first.take() {
            if s.t > max_t {
                return;
            }
            out.push(s);
        }
        self.rest.collect_until(max_t, out);
    }
}

/// Merges sample iterators sorted by time; on equal timestamps the source listed first wins
/// (engines list newer data first so an overwrite-free merge keeps the authoritative sample).
pub struct MergeSamples {
    sources: Vec<Box<dyn SampleIterator>>,
    heads: Vec<Option<Sample>>,
}

impl MergeSamples {
    /// Merges `sources`.
    pub fn new(mut sources: Vec<Box<dyn SampleIterator>>) -> Self {
        let heads = sources.iter_mut().map(|s| s.next()).collect();
        MergeSamples { sources, heads }
    }
}

impl SampleIterator for MergeSamples {
    fn next(&mut self) -> Option<Sample> {
        let mut best: Option<(usize, i64)> = None;
        for (i, h) in self.heads.iter().enumerate() {
            if let Some(s) = h {
                if best.is_none_or(|(_, t)| s.t < t) {
                    best = Some((i, s.t));
                }
            }
        }
        let (i, t) = best?;
        let out = self.heads[i];
        for (j, h) in self.heads.iter_mut().enumerate() {
            if h.is_some_and(|s| s.t == t) {
                *h = self.sources[j].next();
            }
        }
        out
    }

    fn seek(&mut self, t: i64) -> Option<Sample> {
        for (j, h) in self.heads.iter_mut().enumerate() {
            if h.is_some_and(|s| s.t < t) {
                *h = self.sources[j].seek(t);
            }
        }
        self.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: i64, v: f64) -> Sample {
        Sample::new(t, v)
    }

    #[test]
    fn merge_prefers_first_source_on_ties() {
        let a = VecSamples::new(vec![s(1, 1.0), s(3, 3.0), s(5, 5.0)]);
        let b = VecSamples::new(vec![s(2, 20.0), s(3, 30.0), s(6, 60.0)]);
        let mut m = MergeSamples::new(vec![Box::new(a), Box::new(b)]);
        let mut got = vec![];
        while let Some(x) = m.next() {
            got.push((x.t, x.v));
        }
        assert_eq!(got, vec![(1, 1.0), (2, 20.0), (3, 3.0), (5, 5.0), (6, 60.0)]);
    }

    #[test]
    fn seek_skips() {
        let mut v = VecSamples::new(vec![s(1, 1.0), s(3, 3.0), s(5, 5.0)]);
        assert_eq!(v.seek(2).map(|x| x.t), Some(3));
        assert_eq!(v.seek(2).map(|x| x.t), Some(5));
        assert_eq!(v.seek(9), None);
    }
}
