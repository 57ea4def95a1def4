//! Strict OpenMetrics validation: the type-level and family-level rules the OpenMetrics
//! conformance suite demands beyond the line grammar. Used only with `strict: true`.
//!
//! Type level (checked per sample, needs the family's declared TYPE):
//! - counter `_total`, histogram `_bucket`/`_count`/`_sum`, gaugehistogram `_bucket`/`_gcount`,
//!   summary `_count`/`_sum`: not NaN, not negative; gaugehistogram `_gsum`: not NaN; summary
//!   quantile samples: not negative (NaN allowed); info: exactly 1; stateset: 0 or 1.
//! - histogram and gaugehistogram `_bucket` need `le` (a number or exactly `+Inf`, never NaN);
//!   summary quantile samples need `quantile` in `[0, 1]`; stateset samples need the label named
//!   after the family.
//! - Exemplars only on counter `_total` and (gauge)histogram `_bucket` samples.
//! - No UNIT on info or stateset families (checked where the metadata is read).
//!
//! Family level (needs state across lines):
//! - Series: a family's samples form groups (its labels without `le`, `quantile` or the stateset
//!   label); a group may not come back once another started; within a group timestamps are all
//!   present or all absent and never decrease (except for info).
//! - Histograms: one MetricPoint per group and timestamp; buckets in increasing `le`, cumulative,
//!   ending in `+Inf`; `_count` equals the `+Inf` bucket; `_sum` and `_count` (`_gsum` and
//!   `_gcount`) come together; no `_sum` with a negative threshold; a negative `_gsum` only with
//!   one.
//! - Names: when a family ends it claims its name and the names its type's samples would have
//!   (`a`, `a_total`, `a_created` for counter `a`); claiming a name twice is a clash. Repeated or
//!   late metadata and families that resume are rejected where the lines are read
//!   ([`crate::openmetrics`]).
//!
//! Memory: one group key per distinct series and one claimed name per family, both bounded by the
//! input.

use std::collections::HashSet;

use periscope_model::MetricType;

use crate::error::ParseError;
use crate::family::Family;
use crate::number::parse_om_label_number;
use crate::openmetrics::{om_suffixes, OmSample};

/// Validation state for one exposition.
#[derive(Debug, Default)]
pub(crate) struct Validator {
    /// Names claimed by finished families.
    claimed: HashSet<String>,
    fam: FamilyState,
}

/// Validation state of the current family.
#[derive(Debug, Default)]
struct FamilyState {
    prev_group: Option<Vec<(String, String)>>,
    prev_ts: Option<f64>,
    seen_groups: HashSet<Vec<(String, String)>>,
    hist: Option<HistPoint>,
}

/// One histogram MetricPoint being read.
#[derive(Debug, Default)]
struct HistPoint {
    /// The last bucket's threshold.
    bucket: Option<f64>,
    /// The last bucket's value.
    value: f64,
    count: Option<f64>,
    has_sum: bool,
    has_gsum: bool,
    negative_buckets: bool,
    negative_gsum: bool,
}

fn label<'s>(s: &'s OmSample<'_>, name: &str) -> Option<&'s str> {
    s.labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

impl Validator {
    /// Checks one sample of family `fam` whose name has `suffix`.
    pub fn check_sample(
        &mut self,
        fam: &Family,
        suffix: &str,
        s: &OmSample<'_>,
        line: usize,
    ) -> Result<(), ParseError> {
        check_type_rules(fam, suffix, s).map_err(|m| ParseError::typ(line, m))?;
        self.check_grouping(fam, suffix, s).map_err(|m| ParseError::family(line, m))
    }

    fn check_grouping(&mut self, fam: &Family, suffix: &str, s: &OmSample<'_>) -> Result<(), String> {
        let typ = fam.typ;
        let exclude = match typ {
            MetricType::Summary => Some("quantile"),
            MetricType::Histogram | MetricType::GaugeHistogram => Some("le"),
            MetricType::StateSet => Some(fam.name.as_str()),
            _ => None,
        };
        let mut key: Vec<(String, String)> =
            s.labels.iter().filter(|(k, _)| Some(k.as_str()) != exclude).cloned().collect();
        key.sort_unstable();
        let ts = s.ts.map(|t| t.secs);
        let st = &mut self.fam;
        let same = st.prev_group.as_ref() == Some(&key);
        if same {
            if st.prev_ts.is_some() != ts.is_some() {
                return Err(format!(
                    "series {} of family {:?} mixes samples with and without timestamps",
                    show_key(&key),
                    fam.name
                ));
            }
            if let (Some(prev), Some(now)) = (st.prev_ts, ts) {
                if now < prev && typ != MetricType::Info {
                    return Err(format!(
                        "timestamp of series {} of family {:?} goes backwards",
                        show_key(&key),
                        fam.name
                    ));
                }
            }
        } else if st.prev_group.is_some() && st.seen_groups.contains(&key) {
            return Err(format!(
                "series {} of family {:?} is interleaved with other series (a series' samples must be contiguous)",
                show_key(&key),
                fam.name
            ));
        }
        if matches!(typ, MetricType::Histogram | MetricType::GaugeHistogram) {
            if !same || ts != st.prev_ts {
                if let Some(point) = st.hist.take() {
                    point.finish(fam)?;
                }
            }
            st.hist.get_or_insert_with(HistPoint::default).add(fam, suffix, s)?;
        }
        if !same {
            st.seen_groups.insert(key.clone());
            st.prev_group = Some(key);
        }
        st.prev_ts = ts;
        Ok(())
    }

    /// Checks what can only be checked once family `fam` is complete; `line` is the line that
    /// ended it.
    pub fn end_family(&mut self, fam: &Family, line: usize) -> Result<(), ParseError> {
        let state = std::mem::take(&mut self.fam);
        if let Some(point) = state.hist {
            point.finish(fam).map_err(|m| ParseError::family(line, m))?;
        }
        let mut claims = vec![fam.name.clone()];
        claims.extend(clash_suffixes(fam.typ).iter().filter(|s| !s.is_empty()).map(|s| format!("{}{s}", fam.name)));
        for name in claims {
            if self.claimed.contains(&name) {
                return Err(ParseError::family(
                    line,
                    format!("metric family {:?} clashes with an earlier family over the name {name:?}", fam.name),
                ));
            }
            self.claimed.insert(name);
        }
        Ok(())
    }
}

/// The sample names a family of type `t` claims besides its own name.
fn clash_suffixes(t: MetricType) -> &'static [&'static str] {
    match t {
        MetricType::StateSet | MetricType::Gauge | MetricType::Unknown => &[],
        _ => om_suffixes(t),
    }
}

fn show_key(key: &[(String, String)]) -> String {
    let parts: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", parts.join(","))
}

/// The rules that need only the family's type.
fn check_type_rules(fam: &Family, suffix: &str, s: &OmSample<'_>) -> Result<(), String> {
    use MetricType::*;
    let (typ, name, v) = (fam.typ, &fam.name, s.value);
    let t = typ.as_str();
    let sample = &s.name;
    let non_negative = match (typ, suffix) {
        (Counter, "_total")
        | (Histogram, "_bucket" | "_count" | "_sum")
        | (GaugeHistogram, "_bucket" | "_gcount")
        | (Summary, "_count" | "_sum") => true,
        (GaugeHistogram, "_gsum") if v.is_nan() => {
            return Err(format!("invalid value NaN for {sample:?} of {t} {name:?}"));
        }
        (Summary, "") if v < 0.0 => {
            return Err(format!("negative quantile value {v} for {sample:?} of summary {name:?}"));
        }
        _ => false,
    };
    if non_negative && (v.is_nan() || v < 0.0) {
        return Err(format!("invalid value {v} for {sample:?} of {t} {name:?}: must be a non-negative number"));
    }
    if typ == Info && v != 1.0 {
        return Err(format!("invalid value {v} for info {name:?}: must be 1"));
    }
    if typ == StateSet && v != 0.0 && v != 1.0 {
        return Err(format!("invalid value {v} for stateset {name:?}: must be 0 or 1"));
    }
    if matches!(typ, Histogram | GaugeHistogram) && suffix == "_bucket" {
        match label(s, "le") {
            None | Some("") => return Err(format!("bucket {sample:?} of {t} {name:?} has no \"le\" label")),
            Some(le) => {
                if parse_om_label_number(le).is_none() {
                    return Err(format!("invalid \"le\" label value {le:?} for {t} {name:?}"));
                }
            }
        }
    }
    if typ == Summary && suffix.is_empty() {
        match label(s, "quantile") {
            None | Some("") => return Err(format!("summary {name:?} sample has no \"quantile\" label")),
            Some(q) => {
                if !parse_om_label_number(q).is_some_and(|q| (0.0..=1.0).contains(&q)) {
                    return Err(format!("invalid \"quantile\" label value {q:?} for summary {name:?}"));
                }
            }
        }
    }
    if typ == StateSet && label(s, name).is_none_or(str::is_empty) {
        return Err(format!("stateset {name:?} sample has no {name:?} label"));
    }
    if s.exemplar.is_some() && !matches!((typ, suffix), (Counter, "_total") | (Histogram | GaugeHistogram, "_bucket")) {
        return Err(format!(
            "exemplar on {sample:?} of {t} {name:?}: exemplars are only allowed on counter _total and histogram _bucket samples"
        ));
    }
    Ok(())
}

impl HistPoint {
    fn add(&mut self, fam: &Family, suffix: &str, s: &OmSample<'_>) -> Result<(), String> {
        let (name, t) = (&fam.name, fam.typ.as_str());
        match suffix {
            "_bucket" => {
                // `le` was checked by the type rules.
                let Some(b) = label(s, "le").and_then(parse_om_label_number) else { return Ok(()) };
                if b < 0.0 {
                    self.negative_buckets = true;
                }
                if self.bucket.is_some_and(|prev| b <= prev) {
                    return Err(format!("buckets of {t} {name:?} are not in increasing \"le\" order"));
                }
                if s.value < self.value {
                    return Err(format!("bucket values of {t} {name:?} are not cumulative"));
                }
                self.bucket = Some(b);
                self.value = s.value;
            }
            "_count" | "_gcount" => self.count = Some(s.value),
            "_sum" => self.has_sum = true,
            "_gsum" => {
                self.has_gsum = true;
                if s.value < 0.0 {
                    self.negative_gsum = true;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(self, fam: &Family) -> Result<(), String> {
        let (name, t) = (&fam.name, fam.typ.as_str());
        let (count, sum) =
            if fam.typ == MetricType::GaugeHistogram { ("_gcount", "_gsum") } else { ("_count", "_sum") };
        if self.bucket != Some(f64::INFINITY) {
            return Err(format!("{t} {name:?} has no +Inf bucket"));
        }
        if self.count.is_some_and(|c| c != self.value) {
            return Err(format!("{count} of {t} {name:?} differs from its +Inf bucket"));
        }
        if (self.has_sum || self.has_gsum) && self.count.is_none() {
            return Err(format!("{t} {name:?} has {sum} but no {count}"));
        }
        if self.count.is_some() && !(self.has_sum || self.has_gsum) {
            return Err(format!("{t} {name:?} has {count} but no {sum}"));
        }
        if self.negative_buckets && self.has_sum {
            return Err(format!("histogram {name:?} has negative bucket thresholds, so it may not have _sum"));
        }
        if self.negative_gsum && !self.negative_buckets {
            return Err(format!("gaugehistogram {name:?} has a negative _gsum but no negative bucket threshold"));
        }
        Ok(())
    }
}
