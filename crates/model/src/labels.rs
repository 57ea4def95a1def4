//! Label sets: the identity of a series (metrics) or a stream (logs).

use std::fmt;

/// The label that carries a metric's name.
pub const METRIC_NAME: &str = "__name__";

/// One label pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    pub name: String,
    pub value: String,
}

impl Label {
    /// A label pair from anything string-like.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Label { name: name.into(), value: value.into() }
    }
}

/// A label set sorted by name, without duplicate names and without empty values.
///
/// Build one with [`Labels::from_pairs`] (checks) or [`LabelsBuilder`].
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<Label>);

/// Why a label set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("label name is empty")]
    EmptyName,
    #[error("duplicate label name {0:?}")]
    Duplicate(String),
    #[error("invalid label name {0:?}")]
    InvalidName(String),
    #[error("invalid metric name {0:?}")]
    InvalidMetricName(String),
    #[error("label set is empty")]
    EmptySet,
    #[error("series has no metric name (__name__)")]
    MissingName,
}

impl crate::Classify for LabelError {
    fn class(&self) -> crate::ErrorClass {
        crate::ErrorClass::InvalidInput
    }
}

/// Checks a label name. Periscope follows Prometheus 3: any non-empty UTF-8 string is a valid
/// name (the quoting syntax lets PromQL address it). Names are `&str`, so UTF-8 is given.
pub fn validate_label_name(name: &str) -> Result<(), LabelError> {
    if name.is_empty() {
        return Err(LabelError::EmptyName);
    }
    Ok(())
}

/// Checks a metric name: non-empty UTF-8, as Prometheus 3's UTF-8 validation scheme.
pub fn validate_metric_name(name: &str) -> Result<(), LabelError> {
    if name.is_empty() {
        return Err(LabelError::InvalidMetricName(name.to_string()));
    }
    Ok(())
}

/// Whether `name` matches the legacy `[a-zA-Z_:][a-zA-Z0-9_:]*` metric-name pattern.
pub fn is_legacy_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

impl Labels {
    /// The empty label set.
    pub fn empty() -> Self {
        Labels(Vec::new())
    }

    /// Builds a label set from pairs in any order. Empty values are dropped; a repeated name
    /// or an empty name is an error.
    pub fn from_pairs<N, V, I>(pairs: I) -> Result<Self, LabelError>
    where
        N: Into<String>,
        V: Into<String>,
        I: IntoIterator<Item = (N, V)>,
    {
        let mut v: Vec<Label> =
            pairs.into_iter().map(|(n, v)| Label::new(n, v)).filter(|l| !l.value.is_empty()).collect();
        Self::from_vec(&mut v).map(|()| Labels(v))
    }

    fn from_vec(v: &mut [Label]) -> Result<(), LabelError> {
        v.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        for w in v.windows(2) {
            if w[0].name == w[1].name {
                return Err(LabelError::Duplicate(w[0].name.clone()));
            }
        }
        for l in v.iter() {
            validate_label_name(&l.name)?;
            if l.name == METRIC_NAME {
                validate_metric_name(&l.value)?;
            }
        }
        Ok(())
    }

    /// Builds a label set from labels already known to be sorted, unique and non-empty
    /// (read back from our own storage). Checked in debug builds.
    pub fn from_sorted_unchecked(v: Vec<Label>) -> Self {
        debug_assert!(v.windows(2).all(|w| w[0].name < w[1].name), "labels not sorted: {v:?}");
        Labels(v)
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.binary_search_by(|l| l.name.as_str().cmp(name)).ok().map(|i| self.0[i].value.as_str())
    }

    /// The metric name, if any.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// The labels in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The underlying sorted slice.
    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    /// Consumes the set into its sorted vector.
    pub fn into_vec(self) -> Vec<Label> {
        self.0
    }

    /// A stable 64-bit hash of the set (xxh3 over `name 0xff value 0xff` ...). Equal sets have
    /// equal hashes on every platform and in every version of the on-disk formats.
    pub fn stable_hash(&self) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for l in &self.0 {
            h.update(l.name.as_bytes());
            h.update(&[0xff]);
            h.update(l.value.as_bytes());
            h.update(&[0xff]);
        }
        h.digest()
    }

    /// A builder starting from this set.
    pub fn builder(&self) -> LabelsBuilder {
        LabelsBuilder { labels: self.0.clone() }
    }

    /// Approximate bytes held by this set, for memory accounting.
    pub fn byte_size(&self) -> usize {
        self.0.iter().map(|l| l.name.len() + l.value.len() + 2 * std::mem::size_of::<String>()).sum()
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Prometheus's notation: `{__name__="up", job="x"}`.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Edits a label set: set, delete, then [`LabelsBuilder::build`] re-establishes the invariants.
#[derive(Debug, Clone, Default)]
pub struct LabelsBuilder {
    labels: Vec<Label>,
}

impl LabelsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value`; an empty value deletes the label.
    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        match self.labels.iter_mut().find(|l| l.name == name) {
            Some(l) if value.is_empty() => {
                let n = l.name.clone();
                self.labels.retain(|l| l.name != n);
            }
            Some(l) => l.value = value.to_string(),
            None if value.is_empty() => {}
            None => self.labels.push(Label::new(name, value)),
        }
        self
    }

    /// Deletes `name`.
    pub fn del(&mut self, name: &str) -> &mut Self {
        self.labels.retain(|l| l.name != name);
        self
    }

    /// Keeps only the labels for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Label) -> bool) -> &mut Self {
        self.labels.retain(|l| keep(l));
        self
    }

    /// The current value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|l| l.name == name).map(|l| l.value.as_str())
    }

    /// The labels as they stand, in no particular order.
    pub fn labels(&self) -> &[Label] {
        &self.labels
    }

    /// The finished, sorted set. Names were unique by construction; only name validity is
    /// checked.
    pub fn build(&self) -> Labels {
        let mut v = self.labels.clone();
        v.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Labels(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_deduplicated() {
        let l = Labels::from_pairs([("job", "a"), ("__name__", "up"), ("empty", "")]).unwrap();
        assert_eq!(l.to_string(), r#"{__name__="up", job="a"}"#);
        assert_eq!(l.get("job"), Some("a"));
        assert_eq!(l.get("empty"), None);
        assert_eq!(Labels::from_pairs([("a", "1"), ("a", "2")]), Err(LabelError::Duplicate("a".to_string())));
        assert_eq!(Labels::from_pairs([("", "1")]), Err(LabelError::EmptyName));
    }

    #[test]
    fn hash_is_order_independent_and_separates_pairs() {
        let a = Labels::from_pairs([("a", "1"), ("b", "2")]).unwrap();
        let b = Labels::from_pairs([("b", "2"), ("a", "1")]).unwrap();
        let c = Labels::from_pairs([("a", "12")]).unwrap();
        assert_eq!(a.stable_hash(), b.stable_hash());
        assert_ne!(a.stable_hash(), c.stable_hash());
    }

    #[test]
    fn builder_sets_and_deletes() {
        let l = Labels::from_pairs([("a", "1"), ("b", "2")]).unwrap();
        let mut b = l.builder();
        b.set("c", "3").set("a", "").del("b");
        assert_eq!(b.build().to_string(), r#"{c="3"}"#);
    }

    #[test]
    fn legacy_names() {
        assert!(is_legacy_metric_name("http_requests_total"));
        assert!(is_legacy_metric_name(":a"));
        assert!(!is_legacy_metric_name("1a"));
        assert!(!is_legacy_metric_name("a.b"));
        assert!(!is_legacy_metric_name(""));
    }
}
