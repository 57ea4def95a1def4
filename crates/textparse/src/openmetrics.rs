//! OpenMetrics 1.0 text format: the line grammar and family tracking, in both modes.
//!
//! What this module validates (both modes, line by line, as Prometheus's scraper does):
//! - Every line ends with `\n`; the exposition ends with `# EOF` (its own `\n` optional) and
//!   nothing follows it. No blank lines, no comments other than `# HELP`, `# TYPE`, `# UNIT`,
//!   `# EOF`, no leading or trailing whitespace, exactly one space between tokens.
//! - `# HELP name text` (text may be empty, valid UTF-8, escapes `\\` `\"` `\n`), `# TYPE name
//!   type` (counter, gauge, histogram, gaugehistogram, stateset, info, summary, unknown),
//!   `# UNIT name unit` (unit may be empty; otherwise the name must end in `_unit`).
//! - Samples: `name[{labels}] value [timestamp] [# {labels} value [timestamp]]`. Names
//!   `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names `[a-zA-Z_][a-zA-Z0-9_]*`, no duplicate label names,
//!   `__name__` reserved. Label values: unknown escapes are kept literally. `#`, `{`, `}` inside
//!   values are plain characters. Values: decimal, `[+-]Inf`, `NaN`; timestamps: decimal seconds.
//!   Exemplar labels: at most 128 code points of names plus values.
//!
//! Lenient mode (`strict: false`) additionally accepts what Prometheus's parser accepts: a
//! trailing comma in a label set, quoted UTF-8 names (`{"my.metric", "a.b"="c"}`, `# TYPE
//! "my.metric" gauge`), and drops (counts) an exemplar whose labels are too long instead of
//! failing. Repeated metadata overwrites, and a family that resumes after another one is merged
//! into the first.
//!
//! Strict mode adds [`crate::openmetrics_validate`].
//!
//! Grouping: metadata lines open the family they name; a sample belongs to the current family if
//! its name is the family name plus a suffix its type allows (`_total`/`_created` for counters,
//! `_bucket`/`_count`/`_sum`/`_created` for histograms, ...), otherwise it opens a family of
//! type unknown named after itself.

use std::borrow::Cow;

use periscope_model::MetricType;

use crate::error::ParseError;
use crate::family::{Family, FamilyTable};
use crate::lex::{
    is_metric_name_char, label_name, metric_name, quoted, show, unescape_help, Cursor, Line, Lines, UnknownEscape,
};
use crate::number::{format_go_float, parse_om_timestamp, parse_om_value, parse_value, OmTimestamp};
use crate::openmetrics_validate::Validator;
use crate::{build_labels, finish_sample, ParseOptions, Parsed, ParsedSample};

/// The most code points exemplar label names and values may have together.
pub(crate) const EXEMPLAR_MAX_CODE_POINTS: usize = 128;

/// The sample-name suffixes each type allows.
pub(crate) fn om_suffixes(t: MetricType) -> &'static [&'static str] {
    match t {
        MetricType::Counter => &["_total", "_created"],
        MetricType::Summary => &["", "_count", "_sum", "_created"],
        MetricType::Histogram => &["_bucket", "_count", "_sum", "_created"],
        MetricType::GaugeHistogram => &["_bucket", "_gcount", "_gsum"],
        MetricType::Info => &["_info"],
        MetricType::Gauge | MetricType::Unknown | MetricType::StateSet => &[""],
    }
}

/// How a suffixed sample name finds an earlier family (lenient resumption, strict detection).
const GROUPING: &[(&str, &[MetricType])] = &[
    ("_total", &[MetricType::Counter]),
    ("_created", &[MetricType::Counter, MetricType::Summary, MetricType::Histogram]),
    ("_count", &[MetricType::Summary, MetricType::Histogram]),
    ("_sum", &[MetricType::Summary, MetricType::Histogram]),
    ("_bucket", &[MetricType::Histogram, MetricType::GaugeHistogram]),
    ("_gcount", &[MetricType::GaugeHistogram]),
    ("_gsum", &[MetricType::GaugeHistogram]),
    ("_info", &[MetricType::Info]),
];

/// The suffix of `name` relative to family `f`, if `f`'s type allows it.
pub(crate) fn suffix_of<'n>(f: &Family, name: &'n str) -> Option<&'n str> {
    let suffix = name.strip_prefix(f.name.as_str())?;
    om_suffixes(f.typ).contains(&suffix).then_some(suffix)
}

/// One sample line, parsed but not yet attached to a family.
pub(crate) struct OmSample<'a> {
    pub name: Cow<'a, str>,
    /// As written (unsorted, escapes resolved, empty values kept).
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub ts: Option<OmTimestamp>,
    pub exemplar: Option<OmExemplar>,
}

/// An exemplar as written.
pub(crate) struct OmExemplar {
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub ts: Option<OmTimestamp>,
}

impl OmExemplar {
    fn code_points(&self) -> usize {
        self.labels.iter().map(|(n, v)| n.chars().count() + v.chars().count()).sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetaKind {
    Help,
    Type,
    Unit,
}

impl MetaKind {
    fn as_str(self) -> &'static str {
        match self {
            MetaKind::Help => "HELP",
            MetaKind::Type => "TYPE",
            MetaKind::Unit => "UNIT",
        }
    }
}

pub(crate) fn parse(input: &[u8], opts: &ParseOptions) -> Result<Parsed, ParseError> {
    let mut p = OmParser {
        fams: FamilyTable::default(),
        cur: None,
        strict: opts.strict,
        validator: opts.strict.then(Validator::default),
        dropped_exemplars: 0,
    };
    let mut samples = Vec::new();
    let mut lines = Lines::new(input);
    let mut eof_line = None;
    while let Some(line) = lines.next() {
        if line.text == b"# EOF" {
            if !lines.remaining().is_empty() {
                return Err(ParseError::family(line.number + 1, "unexpected data after \"# EOF\""));
            }
            eof_line = Some(line.number);
            break;
        }
        match line.text.first() {
            None => return Err(ParseError::syntax(line.number, "empty line")),
            Some(b'#') => p.metadata(line)?,
            Some(_) => samples.push(p.sample(line, opts)?),
        }
    }
    let Some(eof_line) = eof_line else {
        return Err(ParseError::family(lines.number() + 1, "missing \"# EOF\" at the end of the exposition"));
    };
    p.end_family(eof_line)?;
    let (metadata, families) = p.fams.finish();
    Ok(Parsed { samples, metadata, families, dropped_exemplars: p.dropped_exemplars })
}

struct OmParser {
    fams: FamilyTable,
    /// The family the last line belonged to.
    cur: Option<usize>,
    strict: bool,
    validator: Option<Validator>,
    dropped_exemplars: usize,
}

impl OmParser {
    /// Runs the end-of-family checks of the current family (strict mode).
    fn end_family(&mut self, line: usize) -> Result<(), ParseError> {
        if let (Some(v), Some(i)) = (self.validator.as_mut(), self.cur) {
            v.end_family(self.fams.at(i), line)?;
        }
        Ok(())
    }

    fn metadata(&mut self, line: Line<'_>) -> Result<(), ParseError> {
        let n = line.number;
        let mut cur = Cursor::new(line.text);
        let kind = if cur.eat_str(b"# HELP ") {
            MetaKind::Help
        } else if cur.eat_str(b"# TYPE ") {
            MetaKind::Type
        } else if cur.eat_str(b"# UNIT ") {
            MetaKind::Unit
        } else {
            return Err(ParseError::syntax(
                n,
                format!("invalid line {}: the only comments allowed are HELP, TYPE, UNIT and EOF", show(line.text)),
            ));
        };
        let kw = kind.as_str();
        let name = if !self.strict && cur.peek() == Some(b'"') {
            quoted(&mut cur, UnknownEscape::Keep).map_err(|e| {
                ParseError::syntax(n, format!("invalid quoted metric name in {kw} line: {}", e.describe()))
            })?
        } else {
            Cow::Borrowed(metric_name(&mut cur))
        };
        if name.is_empty() {
            return Err(ParseError::syntax(n, format!("missing or invalid metric name in {kw} line")));
        }
        if !cur.eat(b' ') {
            let what = if cur.is_end() { "nothing".to_string() } else { show(cur.rest()) };
            return Err(ParseError::syntax(
                n,
                format!("expected a space after the metric name {name:?} in {kw} line, found {what}"),
            ));
        }
        let text = cur.rest();
        let mut typ = None;
        let mut value = None;
        match kind {
            MetaKind::Help => {
                let help = String::from_utf8(unescape_help(text).into_owned())
                    .map_err(|_| ParseError::syntax(n, format!("help text of {name:?} is not valid utf-8")))?;
                value = Some(help);
            }
            MetaKind::Type => {
                typ = Some(parse_om_type(text).ok_or_else(|| {
                    ParseError::syntax(n, format!("invalid metric type {} for {name:?}", show(text)))
                })?);
            }
            MetaKind::Unit => {
                if !text.iter().all(|&c| is_metric_name_char(c)) {
                    return Err(ParseError::syntax(n, format!("invalid unit {} for {name:?}", show(text))));
                }
                let unit = String::from_utf8_lossy(text).into_owned();
                let suffix_ok = name.strip_suffix(unit.as_str()).is_some_and(|base| base.ends_with('_'));
                if !unit.is_empty() && !suffix_ok {
                    return Err(ParseError::syntax(
                        n,
                        format!("unit {unit:?} is not a suffix of metric family {name:?}"),
                    ));
                }
                value = Some(unit);
            }
        }

        // Attach to the current family if it is the one named; otherwise open (or, leniently,
        // reopen) the named family.
        let idx = match self.cur {
            Some(i) if self.fams.at(i).name == *name => {
                let f = self.fams.at(i);
                if self.strict {
                    if f.samples > 0 {
                        return Err(ParseError::family(n, format!("{kw} line for family {name:?} after its samples")));
                    }
                    let repeated = match kind {
                        MetaKind::Help => f.help.is_some(),
                        MetaKind::Type => f.type_declared,
                        MetaKind::Unit => f.unit.is_some(),
                    };
                    if repeated {
                        return Err(ParseError::family(n, format!("second {kw} line for family {name:?}")));
                    }
                }
                i
            }
            _ => {
                self.end_family(n)?;
                match self.fams.get(&name) {
                    Some(_) if self.strict => {
                        return Err(ParseError::family(
                            n,
                            format!("{kw} line for family {name:?}, which appeared earlier (families must be contiguous and declared once)"),
                        ));
                    }
                    Some(i) => i,
                    None => self.fams.create(&name),
                }
            }
        };
        self.cur = Some(idx);
        let f = self.fams.at_mut(idx);
        match kind {
            MetaKind::Help => f.help = value,
            MetaKind::Unit => f.unit = value,
            MetaKind::Type => {
                if let Some(t) = typ {
                    f.typ = t;
                }
                f.type_fixed = true;
                f.type_declared = true;
            }
        }
        if self.strict
            && matches!(f.typ, MetricType::Info | MetricType::StateSet)
            && f.unit.as_deref().is_some_and(|u| !u.is_empty())
        {
            return Err(ParseError::typ(n, format!("UNIT is not allowed for {} family {name:?}", f.typ.as_str())));
        }
        Ok(())
    }

    fn sample(&mut self, line: Line<'_>, opts: &ParseOptions) -> Result<ParsedSample, ParseError> {
        let n = line.number;
        let mut s = parse_sample_line(line.text, !self.strict).map_err(|m| ParseError::syntax(n, m))?;
        if s.exemplar.as_ref().is_some_and(|e| e.code_points() > EXEMPLAR_MAX_CODE_POINTS) {
            if self.strict {
                return Err(ParseError::syntax(
                    n,
                    format!("exemplar labels of metric {:?} exceed {EXEMPLAR_MAX_CODE_POINTS} code points", s.name),
                ));
            }
            s.exemplar = None;
            self.dropped_exemplars += 1;
        }
        let name: &str = &s.name;
        let idx = match self.cur.filter(|&i| suffix_of(self.fams.at(i), name).is_some()) {
            Some(i) => i,
            None => {
                self.end_family(n)?;
                match self.fams.get(name).or_else(|| self.fams.by_suffix(name, GROUPING)) {
                    Some(i) if self.strict => {
                        let f = self.fams.at(i);
                        let msg = if Some(i) == self.cur {
                            format!("sample name {name:?} is not allowed in {} family {:?}", f.typ.as_str(), f.name)
                        } else {
                            format!(
                                "sample {name:?} of family {:?} after other families (families must be contiguous)",
                                f.name
                            )
                        };
                        return Err(ParseError::family(n, msg));
                    }
                    Some(i) => i,
                    None => self.fams.create(name),
                }
            }
        };
        self.cur = Some(idx);
        let fam = self.fams.at(idx);
        let suffix = suffix_of(fam, name).unwrap_or_default();
        if let Some(v) = self.validator.as_mut() {
            v.check_sample(fam, suffix, &s, n)?;
        }
        let typ = fam.typ;

        let OmSample { name, mut labels, value, ts, exemplar } = s;
        let special = match typ {
            MetricType::Histogram => Some("le"),
            MetricType::Summary => Some("quantile"),
            _ => None,
        };
        if let Some(special) = special {
            for (_, v) in labels.iter_mut().filter(|(k, _)| k == special) {
                if let Some(f) = parse_value(v.as_bytes()) {
                    *v = format_go_float(f);
                }
            }
        }
        let labels = build_labels(&name, labels).map_err(|m| ParseError::syntax(n, m))?;
        let exemplar = match exemplar {
            Some(e) => {
                let el = build_exemplar_labels(e.labels)
                    .map_err(|m| ParseError::syntax(n, format!("{m} in the exemplar of metric {name:?}")))?;
                Some((el, e.value, e.ts.map(|t| t.ms)))
            }
            None => None,
        };
        self.fams.at_mut(idx).samples += 1;
        Ok(finish_sample(labels, value, ts.map(|t| t.ms), exemplar, opts))
    }
}

fn build_exemplar_labels(mut labels: Vec<(String, String)>) -> Result<periscope_model::Labels, String> {
    labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = labels.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!("duplicate label name {:?}", w[0].0));
    }
    periscope_model::Labels::from_pairs(labels).map_err(|e| e.to_string())
}

fn parse_om_type(t: &[u8]) -> Option<MetricType> {
    Some(match t {
        b"counter" => MetricType::Counter,
        b"gauge" => MetricType::Gauge,
        b"histogram" => MetricType::Histogram,
        b"gaugehistogram" => MetricType::GaugeHistogram,
        b"stateset" => MetricType::StateSet,
        b"info" => MetricType::Info,
        b"summary" => MetricType::Summary,
        b"unknown" => MetricType::Unknown,
        _ => return None,
    })
}

/// Whose label set is being read: where a name found in the braces goes, and what messages say.
enum Owner<'s, 'a> {
    /// A sample whose name came before the braces.
    Sample(&'s str),
    /// A sample line starting with `{` (lenient): the first item may be its quoted name.
    Braces(&'s mut Option<Cow<'a, str>>),
    /// The exemplar of a sample.
    Exemplar(&'s str),
}

impl Owner<'_, '_> {
    fn describe(&self) -> String {
        match self {
            Owner::Sample(n) => format!("metric {n:?}"),
            Owner::Braces(Some(n)) => format!("metric {n:?}"),
            Owner::Braces(None) => "metric ?".to_string(),
            Owner::Exemplar(n) => format!("the exemplar of metric {n:?}"),
        }
    }
}

/// Parses a sample line (not starting with `#`) into its parts.
pub(crate) fn parse_sample_line(text: &[u8], lenient: bool) -> Result<OmSample<'_>, String> {
    let mut cur = Cursor::new(text);
    let braces_only = lenient && cur.peek() == Some(b'{');
    let mut name: Option<Cow<'_, str>> = None;
    if !braces_only {
        let n = if lenient && cur.peek() == Some(b'"') {
            quoted(&mut cur, UnknownEscape::Keep)
                .map_err(|e| format!("invalid quoted metric name: {}", e.describe()))?
        } else {
            Cow::Borrowed(metric_name(&mut cur))
        };
        if n.is_empty() {
            return Err(format!("invalid metric name at {}", show(text)));
        }
        name = Some(n);
    }
    let mut labels = Vec::new();
    if cur.eat(b'{') {
        let owner = match name.as_deref() {
            Some(n) => Owner::Sample(n),
            None => Owner::Braces(&mut name),
        };
        read_labels(&mut cur, owner, lenient, &mut labels)?;
    }
    let Some(name) = name else {
        return Err("missing metric name: a line starting with '{' must name the metric first".to_string());
    };
    if !cur.eat(b' ') {
        return Err(if cur.is_end() {
            format!("missing value for metric {name:?}")
        } else {
            format!("expected a space before the value of metric {name:?}, found {}", show(cur.rest()))
        });
    }
    let vtok = cur.take_while(|c| c != b' ');
    let value = parse_om_value(vtok).ok_or_else(|| format!("invalid value {} for metric {name:?}", show(vtok)))?;
    let mut ts = None;
    let mut exemplar = None;
    if cur.eat(b' ') {
        if !cur.rest().starts_with(b"# ") {
            let ttok = cur.take_while(|c| c != b' ');
            ts = Some(
                parse_om_timestamp(ttok)
                    .ok_or_else(|| format!("invalid timestamp {} for metric {name:?}", show(ttok)))?,
            );
            if cur.eat(b' ') && !cur.rest().starts_with(b"# ") {
                return Err(format!("unexpected text {} after the timestamp of metric {name:?}", show(cur.rest())));
            }
        }
        if cur.eat_str(b"# ") {
            exemplar = Some(parse_exemplar(&mut cur, &name)?);
        }
    }
    if !cur.is_end() {
        return Err(format!("unexpected text {} at the end of the line of metric {name:?}", show(cur.rest())));
    }
    Ok(OmSample { name, labels, value, ts, exemplar })
}

/// Parses an exemplar after its `# `.
fn parse_exemplar(cur: &mut Cursor<'_>, name: &str) -> Result<OmExemplar, String> {
    if !cur.eat(b'{') {
        return Err(format!(
            "expected '{{' to start the exemplar labels of metric {name:?}, found {}",
            show(cur.rest())
        ));
    }
    let mut labels = Vec::new();
    read_labels(cur, Owner::Exemplar(name), false, &mut labels)?;
    if !cur.eat(b' ') {
        return Err(format!(
            "expected a space before the exemplar value of metric {name:?}, found {}",
            show(cur.rest())
        ));
    }
    let vtok = cur.take_while(|c| c != b' ');
    let value =
        parse_om_value(vtok).ok_or_else(|| format!("invalid exemplar value {} for metric {name:?}", show(vtok)))?;
    let mut ts = None;
    if cur.eat(b' ') {
        let ttok = cur.take_while(|c| c != b' ');
        ts = Some(
            parse_om_timestamp(ttok)
                .ok_or_else(|| format!("invalid exemplar timestamp {} for metric {name:?}", show(ttok)))?,
        );
    }
    Ok(OmExemplar { labels, value, ts })
}

/// Reads the labels after `{` up to and including `}`.
fn read_labels<'a>(
    cur: &mut Cursor<'a>,
    mut owner: Owner<'_, 'a>,
    lenient: bool,
    labels: &mut Vec<(String, String)>,
) -> Result<(), String> {
    if cur.eat(b'}') {
        return Ok(());
    }
    loop {
        let at = cur.rest();
        let is_quoted = lenient && cur.peek() == Some(b'"');
        let lname: Cow<'a, str> = if is_quoted {
            quoted(cur, UnknownEscape::Keep)
                .map_err(|e| format!("invalid quoted label name for {}: {}", owner.describe(), e.describe()))?
        } else {
            Cow::Borrowed(label_name(cur))
        };
        if lname.is_empty() {
            return Err(format!("invalid label name at {} for {}", show(at), owner.describe()));
        }
        if !cur.eat(b'=') {
            if let Owner::Braces(slot @ None) = &mut owner {
                if is_quoted && matches!(cur.peek(), Some(b',' | b'}')) {
                    **slot = Some(lname);
                    if cur.eat(b'}') {
                        return Ok(());
                    }
                    cur.bump(); // ','
                    continue;
                }
            }
            return Err(format!(
                "expected '=' after label name {lname:?} for {}, found {}",
                owner.describe(),
                show(cur.rest())
            ));
        }
        if lname == periscope_model::METRIC_NAME {
            return Err(format!("label name \"__name__\" is reserved ({})", owner.describe()));
        }
        if cur.peek() != Some(b'"') {
            return Err(format!(
                "expected '\"' to start the value of label {lname:?} for {}, found {}",
                owner.describe(),
                show(cur.rest())
            ));
        }
        let value = quoted(cur, UnknownEscape::Keep)
            .map_err(|e| format!("invalid value of label {lname:?} for {}: {}", owner.describe(), e.describe()))?;
        labels.push((lname.into_owned(), value.into_owned()));
        if cur.eat(b'}') {
            return Ok(());
        }
        if !cur.eat(b',') {
            return Err(format!(
                "expected ',' or '}}' after the value of label {:?} for {}, found {}",
                labels.last().map(|l| l.0.as_str()).unwrap_or_default(),
                owner.describe(),
                show(cur.rest())
            ));
        }
        if cur.peek() == Some(b'}') {
            if lenient {
                cur.bump();
                return Ok(());
            }
            return Err(format!("trailing comma in the label set of {}", owner.describe()));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{parse, Format, ParseError, ParseOptions, Parsed};

    const STRICT: ParseOptions = ParseOptions { strict: true, default_timestamp_ms: None };
    const LENIENT: ParseOptions = ParseOptions { strict: false, default_timestamp_ms: None };

    #[track_caller]
    fn ok_with(input: &str, opts: &ParseOptions) -> Parsed {
        match parse(input.as_bytes(), Format::OpenMetrics, opts) {
            Ok(p) => p,
            Err(e) => panic!("{input:?} rejected: {e}"),
        }
    }

    /// Accepted in both modes, with the same result.
    #[track_caller]
    fn ok(input: &str) -> Parsed {
        let p = ok_with(input, &STRICT);
        assert_eq!(format!("{p:?}"), format!("{:?}", ok_with(input, &LENIENT)));
        p
    }

    #[track_caller]
    fn err_with(input: &str, opts: &ParseOptions) -> ParseError {
        match parse(input.as_bytes(), Format::OpenMetrics, opts) {
            Ok(p) => panic!("{input:?} accepted: {p:?}"),
            Err(e) => e,
        }
    }

    #[track_caller]
    fn strict_only_err(input: &str) -> ParseError {
        ok_with(input, &LENIENT);
        err_with(input, &STRICT)
    }

    #[test]
    fn escapes() {
        let p = ok("# TYPE a counter\n# HELP a he\\n\\\\l\\tp\na_total{foo=\"b\\\\a\\z\",bar=\"q\\\"\\n\"} 2\n# EOF\n");
        assert_eq!(p.samples[0].labels.get("foo"), Some("b\\a\\z"));
        assert_eq!(p.samples[0].labels.get("bar"), Some("q\"\n"));
        assert_eq!(p.metadata[0].help, "he\n\\l\\tp");
    }

    #[test]
    fn hash_inside_label_values_is_not_an_exemplar() {
        let p =
            ok("# TYPE a histogram\na_bucket{le=\"+Inf\",foo=\"bar # \"} 3 # {a=\"d\",foo=\"bar # {}\"} 4\n# EOF\n");
        assert_eq!(p.samples[0].labels.get("foo"), Some("bar # "));
        let e = p.samples[0].exemplar.as_ref().map(|e| e.labels.to_string());
        assert_eq!(e.as_deref(), Some(r#"{a="d", foo="bar # {}"}"#));
    }

    #[test]
    fn exemplar_length_counts_code_points() {
        let line =
            |value: &str| format!("# TYPE a histogram\na_bucket{{le=\"+Inf\"}} 1 # {{a=\"{value}\"}} 1 1\n# EOF\n");
        // 1 (name) + 127 code points = 128, one of them three bytes long.
        let p = ok(&line(&format!("\u{2603}{}", "x".repeat(126))));
        assert!(p.samples[0].exemplar.is_some());
        // 129 code points: strict refuses, lenient keeps the sample and drops the exemplar.
        let long = line(&"x".repeat(128));
        let e = strict_only_err(&long);
        assert!(matches!(e, ParseError::Syntax { line: 2, .. }), "{e}");
        let p = ok_with(&long, &LENIENT);
        assert_eq!((p.samples.len(), p.dropped_exemplars), (1, 1));
        assert!(p.samples[0].exemplar.is_none());
        // Combining characters count one by one.
        err_with(&line(&"e\u{301}".repeat(64)), &STRICT);
    }

    #[test]
    fn exemplar_time() {
        let input = "# TYPE a counter\na_total 1 # {x=\"1\"} 0.5 2.5\na_total 2 3 # {x=\"2\"} 0.5\n# EOF\n";
        let ts = |p: &Parsed| p.samples.iter().map(|s| s.exemplar.as_ref().map(|e| e.t)).collect::<Vec<_>>();
        // Strict mode: one series whose timestamps must be all present or all absent.
        assert!(err_with(input, &STRICT).to_string().contains("with and without timestamps"));
        assert_eq!(ts(&ok_with(input, &LENIENT)), vec![Some(2500), Some(3000)]);
        let input = "# TYPE a counter\na_total 1 # {x=\"1\"} 0.5\n# EOF\n";
        assert_eq!(ts(&ok(input)), vec![Some(0)]);
        let p = ok_with(input, &ParseOptions { strict: true, default_timestamp_ms: Some(9) });
        assert_eq!((ts(&p), p.samples[0].timestamp_ms), (vec![Some(9)], Some(9)));
    }

    #[test]
    fn values_nan_and_inf() {
        let p = ok("a NaN\nb +Inf\nc -Inf\nd 00000001e3\n# EOF\n");
        assert!(p.samples[0].value.is_nan() && !periscope_model::is_stale_nan(p.samples[0].value));
        let v: Vec<_> = p.samples[1..].iter().map(|s| s.value).collect();
        assert_eq!(v, vec![f64::INFINITY, f64::NEG_INFINITY, 1000.0]);
        for bad in ["a 1_2", "a 0x1p3", "a 0b1", "a blah", "a  1", "a 1 ", "a\t1", "a 1\t"] {
            err_with(&format!("{bad}\n# EOF\n"), &LENIENT);
        }
    }

    #[test]
    fn timestamps_are_seconds() {
        let p = ok("a 1 1.5e3\nb 1 -0.0001\nc 1 1.001\n# EOF\n");
        let ts: Vec<_> = p.samples.iter().map(|s| s.timestamp_ms).collect();
        assert_eq!(ts, vec![Some(1_500_000), Some(-1), Some(1001)]);
        for bad in ["NaN", "Inf", "-Inf", "0x1p3", "1_2", "z"] {
            err_with(&format!("a 1 {bad}\n# EOF\n"), &LENIENT);
            err_with(&format!("a_total 1 # {{}} 1 {bad}\n# EOF\n"), &LENIENT);
        }
    }

    #[test]
    fn histograms() {
        let p = ok("# TYPE h histogram\nh_bucket{le=\"1e-04\"} 0\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_count 2\nh_sum 3\n# TYPE g gaugehistogram\ng_bucket{le=\"1\"} 1\ng_bucket{le=\"+Inf\"} 1\n# EOF\n");
        let les: Vec<_> = p.samples.iter().filter_map(|s| s.labels.get("le")).collect();
        // Classic histograms are canonicalised like Prometheus 3; gauge histograms are not.
        assert_eq!(les, vec!["0.0001", "1.0", "+Inf", "1", "+Inf"]);
        assert_eq!(p.families, 2);
        let head = "# TYPE h histogram\n";
        for (body, want) in [
            ("h_bucket{le=\"1\"} 1\nh_count 1\nh_sum 1\n", "no +Inf bucket"),
            ("h_bucket{le=\"+Inf\"} 2\nh_count 1\nh_sum 1\n", "differs from its +Inf bucket"),
            ("h_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\n", "increasing"),
            ("h_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n", "not cumulative"),
            ("h_bucket{le=\"+Inf\"} 1\nh_sum 1\n", "no _count"),
            ("h_bucket{le=\"-1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 1\n", "negative bucket"),
            ("h_bucket{le=\"+INF\"} 1\n", "invalid \"le\""),
            ("h_bucket 1\n", "no \"le\""),
        ] {
            let e = strict_only_err(&format!("{head}{body}# EOF\n"));
            assert!(e.to_string().contains(want), "{body:?}: {e}");
        }
    }

    #[test]
    fn lenient_extras() {
        let p =
            ok_with("{\"my.metric\",\"a.b\"=\"c\",} 1\n# TYPE \"x.y\" gauge\n\"x.y\"{z=\"1\",} 2\n# EOF\n", &LENIENT);
        let s: Vec<_> = p.samples.iter().map(|s| s.labels.to_string()).collect();
        assert_eq!(s, vec![r#"{__name__="my.metric", a.b="c"}"#, r#"{__name__="x.y", z="1"}"#]);
        err_with("{\"my.metric\"} 1\n# EOF\n", &STRICT);
        err_with("a{b=\"c\",} 1\n# EOF\n", &STRICT);
        // A family that resumes is merged; repeated metadata overwrites.
        let p = ok_with("# TYPE a counter\n# HELP a one\na_total 1\nb 1\na_total 2\n# HELP a two\n# EOF\n", &LENIENT);
        assert_eq!(p.families, 2);
        assert_eq!(p.metadata[0].help, "two");
    }

    #[test]
    fn eof_rules() {
        for opts in [STRICT, LENIENT] {
            assert!(matches!(err_with("", &opts), ParseError::Family { line: 1, .. }));
            assert!(err_with("a 1\n", &opts).to_string().contains("missing \"# EOF\""));
            assert!(err_with("a 1\n# EOF\n\n", &opts).to_string().contains("after \"# EOF\""));
            assert!(err_with("a 1\n\n# EOF\n", &opts).to_string().contains("empty line"));
            assert!(err_with("# random comment\n# EOF\n", &opts).to_string().contains("only comments allowed"));
            ok_with("a 1\n# EOF", &opts);
        }
    }

    #[test]
    fn error_kinds_and_lines() {
        let e = err_with("# TYPE a counter\na_total -1\n# EOF\n", &STRICT);
        assert!(matches!(e, ParseError::Type { line: 2, .. }), "{e}");
        let e = err_with("# TYPE a gauge\na 1\n# TYPE a gauge\n# EOF\n", &STRICT);
        assert!(matches!(e, ParseError::Family { line: 3, .. }), "{e}");
        let e = err_with("a{b=\"1\"}1\n# EOF\n", &STRICT);
        assert_eq!(e.to_string(), "line 1: expected a space before the value of metric \"a\", found \"1\"");
    }

    #[test]
    fn metadata_uses_family_names() {
        let p = ok("# HELP cc_seconds A counter\n# TYPE cc_seconds counter\n# UNIT cc_seconds seconds\ncc_seconds_total 1.0\ncc_seconds_created 123.456\n# EOF\n");
        assert_eq!(p.families, 1);
        let m = &p.metadata[0];
        assert_eq!(
            (m.metric_family.as_str(), m.metric_type.as_str(), m.help.as_str(), m.unit.as_str()),
            ("cc_seconds", "counter", "A counter", "seconds")
        );
        let names: Vec<_> = p.samples.iter().filter_map(|s| s.labels.metric_name()).collect();
        assert_eq!(names, vec!["cc_seconds_total", "cc_seconds_created"]);
        err_with("# UNIT a seconds\n# EOF\n", &LENIENT);
    }
}
