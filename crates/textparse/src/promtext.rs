//! Prometheus text format 0.0.4, following the reference parser (prometheus/common `expfmt`)
//! and accepting Prometheus 3's quoted UTF-8 names.
//!
//! What this module validates, line by line:
//! - Blanks and tabs are allowed before `#` and names, between tokens, around `{ } = ,`, and
//!   after the value or timestamp (`expfmt` refuses them after the value; Prometheus's server
//!   does not); blank lines are skipped; a trailing comma in `{...}` is fine.
//! - Names are `[a-zA-Z_:][a-zA-Z0-9_:]*` (labels without `:`), or a `"quoted"` UTF-8 string; a
//!   line may start with `{"name", ...}`. `__name__` inside the braces is reserved.
//! - Label values are quoted, with only `\\`, `\"` and `\n` as escapes, valid UTF-8, no raw line
//!   feed; duplicate label names are refused.
//! - Values are Go floats without hex or `_`; timestamps are integer milliseconds.
//! - `# HELP`/`# TYPE` lines: at most one of each per family, TYPE before the family's first
//!   sample, type one of counter, gauge, summary, histogram, gauge_histogram, untyped (any case,
//!   trailing blanks ignored).
//!   `# HELP name` without text and all other comments are ignored. HELP escapes are `\\`, `\n`
//!   and `\"`; unlike `expfmt` (like Prometheus's server) other backslashes are kept literally
//!   rather than failing the scrape.
//! - Summaries: `quantile` must be a float; histograms: `le` must be a float. Both are
//!   rewritten canonically (see the crate docs).
//!
//! Grouping follows `expfmt`: a line belongs to the family of its exact name; failing that,
//! `X_sum`/`X_count` belong to summary or histogram `X` and `X_bucket` to histogram `X` once `X`
//! is so typed; otherwise the line starts a family of its own. The lines of one family need not
//! be adjacent.

use std::borrow::Cow;

use periscope_model::MetricType;

use crate::error::ParseError;
use crate::family::FamilyTable;
use crate::lex::{label_name, metric_name, quoted, show, unescape_help, Cursor, Lines, UnknownEscape};
use crate::number::{format_go_float, parse_prom_timestamp, parse_value};
use crate::{build_labels, finish_sample, ParseOptions, Parsed, ParsedSample};

/// How `expfmt` attaches suffixed lines to a typed family.
const GROUPING: &[(&str, &[MetricType])] = &[
    ("_count", &[MetricType::Summary, MetricType::Histogram]),
    ("_sum", &[MetricType::Summary, MetricType::Histogram]),
    ("_bucket", &[MetricType::Histogram]),
];

pub(crate) fn parse(input: &[u8], opts: &ParseOptions) -> Result<Parsed, ParseError> {
    let mut p = PromParser { fams: FamilyTable::default(), last_name: String::new(), last_family: None };
    let mut samples = Vec::new();
    for line in Lines::new(input) {
        let mut cur = Cursor::new(line.text);
        cur.skip_blanks();
        if cur.is_end() {
            continue;
        }
        if cur.peek() == Some(b'#') {
            // A TYPE line can change how names group; do not trust the cached lookup across it.
            p.last_family = None;
            p.comment(cur, line.number)?;
        } else {
            samples.push(p.sample(cur, line.number, opts)?);
        }
        // Checked after the line itself, so a broken last line reports what is broken.
        if opts.strict && !line.terminated {
            return Err(ParseError::syntax(line.number, "unexpected end of input: the last line has no line feed"));
        }
    }
    let (metadata, families) = p.fams.finish();
    Ok(Parsed { samples, metadata, families, dropped_exemplars: 0 })
}

struct PromParser {
    fams: FamilyTable,
    /// The name on the previous sample line and its family: consecutive lines of one series
    /// name skip the family lookup.
    last_name: String,
    last_family: Option<usize>,
}

impl PromParser {
    fn resolve(&mut self, name: &str) -> usize {
        if let Some(i) = self.fams.get(name).or_else(|| self.fams.by_suffix(name, GROUPING)) {
            return i;
        }
        self.fams.create(name)
    }

    fn comment(&mut self, mut cur: Cursor<'_>, line: usize) -> Result<(), ParseError> {
        cur.bump(); // '#'
        cur.skip_blanks();
        let keyword = cur.take_while(|c| c != b' ' && c != b'\t');
        let kw = match keyword {
            b"HELP" => "HELP",
            b"TYPE" => "TYPE",
            _ => return Ok(()), // an ordinary comment
        };
        cur.skip_blanks();
        if cur.is_end() {
            return Ok(());
        }
        let name = read_name(&mut cur).map_err(|m| ParseError::syntax(line, format!("{m} in {kw} line")))?;
        if cur.is_end() && !name.is_empty() {
            return Ok(()); // "# HELP name" without text: ignored, as expfmt does
        }
        if name.is_empty() || !matches!(cur.peek(), Some(b' ' | b'\t')) {
            return Err(ParseError::syntax(line, format!("invalid metric name in {kw} line at {}", show(cur.rest()))));
        }
        let idx = self.resolve(&name);
        cur.skip_blanks();
        if cur.is_end() {
            return Ok(());
        }
        let fam = self.fams.at_mut(idx);
        if kw == "HELP" {
            if fam.help.is_some() {
                return Err(ParseError::family(line, format!("second HELP line for metric {:?}", fam.name)));
            }
            fam.help = Some(String::from_utf8_lossy(&unescape_help(cur.rest())).into_owned());
            return Ok(());
        }
        if fam.type_fixed {
            let msg = if fam.samples > 0 {
                format!("TYPE line for metric {:?} after its samples", fam.name)
            } else {
                format!("second TYPE line for metric {:?}", fam.name)
            };
            return Err(ParseError::family(line, msg));
        }
        let tok = cur.rest();
        let tok = tok.get(..tok.len() - tok.iter().rev().take_while(|c| matches!(c, b' ' | b'\t')).count());
        let typ = tok.and_then(parse_prom_type).ok_or_else(|| {
            ParseError::syntax(
                line,
                format!("unknown metric type {} for metric {:?}", show(tok.unwrap_or_default()), fam.name),
            )
        })?;
        fam.typ = typ;
        fam.type_fixed = true;
        fam.type_declared = true;
        Ok(())
    }

    fn sample(&mut self, mut cur: Cursor<'_>, line: usize, opts: &ParseOptions) -> Result<ParsedSample, ParseError> {
        let braces_only = cur.peek() == Some(b'{');
        let mut name: Option<Cow<'_, str>> = None;
        if !braces_only {
            let at = cur.rest();
            let n = read_name(&mut cur).map_err(|m| ParseError::syntax(line, m))?;
            if n.is_empty() {
                return Err(ParseError::syntax(line, format!("invalid metric name at {}", show(at))));
            }
            name = Some(n);
            cur.skip_blanks();
        }
        let mut labels = Vec::new();
        if cur.eat(b'{') {
            read_labels(&mut cur, &mut name, braces_only, &mut labels).map_err(|m| ParseError::syntax(line, m))?;
            cur.skip_blanks();
        }
        let Some(name) = name else {
            return Err(ParseError::syntax(
                line,
                "missing metric name: a line starting with '{' must name the metric first",
            ));
        };

        let vtok = cur.take_while(|c| c != b' ' && c != b'\t');
        if vtok.is_empty() {
            return Err(ParseError::syntax(line, format!("missing value for metric {name:?}")));
        }
        let value = parse_value(vtok)
            .ok_or_else(|| ParseError::syntax(line, format!("invalid value {} for metric {name:?}", show(vtok))))?;
        cur.skip_blanks();
        let mut ts = None;
        if !cur.is_end() {
            let ttok = cur.take_while(|c| c != b' ' && c != b'\t');
            ts = Some(parse_prom_timestamp(ttok).ok_or_else(|| {
                ParseError::syntax(
                    line,
                    format!("invalid timestamp {} for metric {name:?} (integer milliseconds expected)", show(ttok)),
                )
            })?);
            cur.skip_blanks();
            if !cur.is_end() {
                return Err(ParseError::syntax(
                    line,
                    format!("unexpected text {} after the timestamp of metric {name:?}", show(cur.rest())),
                ));
            }
        }

        let idx = match self.last_family {
            Some(i) if self.last_name == *name => i,
            _ => {
                let i = self.resolve(&name);
                self.last_name.clear();
                self.last_name.push_str(&name);
                self.last_family = Some(i);
                i
            }
        };
        let fam = self.fams.at_mut(idx);
        fam.type_fixed = true;
        fam.samples += 1;
        let special = match fam.typ {
            MetricType::Summary => Some("quantile"),
            MetricType::Histogram => Some("le"),
            _ => None,
        };
        if let Some(special) = special {
            for (n, v) in labels.iter_mut().filter(|(n, _)| n == special) {
                let f = parse_value(v.as_bytes()).ok_or_else(|| {
                    ParseError::syntax(
                        line,
                        format!("invalid {n:?} label value {v:?} for metric {name:?}: not a float"),
                    )
                })?;
                *v = format_go_float(f);
            }
        }
        let labels = build_labels(&name, labels).map_err(|m| ParseError::syntax(line, m))?;
        Ok(finish_sample(labels, value, ts, None, opts))
    }
}

/// Reads a metric name, quoted or not; empty if none starts at the cursor.
fn read_name<'a>(cur: &mut Cursor<'a>) -> Result<Cow<'a, str>, String> {
    if cur.peek() != Some(b'"') {
        return Ok(Cow::Borrowed(metric_name(cur)));
    }
    let n = quoted(cur, UnknownEscape::Reject).map_err(|e| format!("invalid quoted metric name: {}", e.describe()))?;
    if n.is_empty() {
        return Err("empty quoted metric name".to_string());
    }
    Ok(n)
}

/// Reads the labels after `{` up to and including `}`. With `braces_only`, the first item may
/// be the metric name (a string without `=`).
fn read_labels<'a>(
    cur: &mut Cursor<'a>,
    name: &mut Option<Cow<'a, str>>,
    braces_only: bool,
    labels: &mut Vec<(String, String)>,
) -> Result<(), String> {
    let metric = |name: &Option<Cow<'_, str>>| name.as_deref().map_or_else(|| "?".to_string(), |n| format!("{n:?}"));
    loop {
        cur.skip_blanks();
        if cur.eat(b'}') {
            return Ok(());
        }
        let at = cur.rest();
        let lname: Cow<'a, str> = if cur.peek() == Some(b'"') {
            quoted(cur, UnknownEscape::Reject).map_err(|e| format!("invalid quoted label name: {}", e.describe()))?
        } else {
            Cow::Borrowed(label_name(cur))
        };
        if lname.is_empty() {
            return Err(format!("invalid label name at {} for metric {}", show(at), metric(name)));
        }
        cur.skip_blanks();
        if !cur.eat(b'=') {
            if braces_only && name.is_none() && matches!(cur.peek(), Some(b',' | b'}')) {
                *name = Some(lname);
                cur.eat(b',');
                continue;
            }
            return Err(format!(
                "expected '=' after label name {lname:?} for metric {}, found {}",
                metric(name),
                show(cur.rest())
            ));
        }
        if lname == periscope_model::METRIC_NAME {
            return Err(format!("label name \"__name__\" is reserved (metric {})", metric(name)));
        }
        cur.skip_blanks();
        if cur.peek() != Some(b'"') {
            return Err(format!(
                "expected '\"' to start the value of label {lname:?} for metric {}, found {}",
                metric(name),
                show(cur.rest())
            ));
        }
        let value = quoted(cur, UnknownEscape::Reject)
            .map_err(|e| format!("invalid value of label {lname:?} for metric {}: {}", metric(name), e.describe()))?;
        labels.push((lname.into_owned(), value.into_owned()));
        cur.skip_blanks();
        if cur.eat(b'}') {
            return Ok(());
        }
        if !cur.eat(b',') {
            return Err(format!(
                "expected ',' or '}}' after the value of label {:?} for metric {}, found {}",
                labels.last().map(|l| l.0.as_str()).unwrap_or_default(),
                metric(name),
                show(cur.rest())
            ));
        }
    }
}

/// `expfmt`'s type names (the protobuf enum, any case).
fn parse_prom_type(t: &[u8]) -> Option<MetricType> {
    const TYPES: &[(&[u8], MetricType)] = &[
        (b"counter", MetricType::Counter),
        (b"gauge", MetricType::Gauge),
        (b"summary", MetricType::Summary),
        (b"untyped", MetricType::Unknown),
        (b"histogram", MetricType::Histogram),
        (b"gauge_histogram", MetricType::GaugeHistogram),
    ];
    TYPES.iter().find(|(n, _)| n.eq_ignore_ascii_case(t)).map(|(_, typ)| *typ)
}

#[cfg(test)]
mod tests {
    use crate::{parse, Format, ParseError, ParseOptions, Parsed};

    #[track_caller]
    fn ok(input: &str) -> Parsed {
        match parse(input.as_bytes(), Format::PromText, &ParseOptions { strict: true, ..Default::default() }) {
            Ok(p) => p,
            Err(e) => panic!("{input:?} rejected: {e}"),
        }
    }

    #[track_caller]
    fn err(input: &str) -> ParseError {
        match parse(input.as_bytes(), Format::PromText, &ParseOptions { strict: true, ..Default::default() }) {
            Ok(p) => panic!("{input:?} accepted: {p:?}"),
            Err(e) => e,
        }
    }

    fn series(p: &Parsed) -> Vec<String> {
        p.samples.iter().map(|s| s.labels.to_string()).collect()
    }

    #[test]
    fn escapes_in_label_values() {
        let p = ok("m{a=\"x\\\"y\\\\z\\nw\"} 1\n");
        assert_eq!(p.samples[0].labels.get("a"), Some("x\"y\\z\nw"));
        let e = err("m{a=\"\\t\"} 1\n");
        assert_eq!(e.line(), 1);
        assert!(e.to_string().contains("invalid escape sequence"), "{e}");
        assert!(err("m{a=\"x\ny\"} 1\n").to_string().contains("unterminated"));
    }

    #[test]
    fn hash_and_braces_inside_values() {
        let p = ok("m{a=\"x # y\",b=\"}{\"} 1\n# a comment with \"quotes\" and {braces}\n");
        assert_eq!(p.samples[0].labels.get("a"), Some("x # y"));
        assert_eq!(p.samples[0].labels.get("b"), Some("}{"));
    }

    #[test]
    fn whitespace_and_trailing_comma() {
        let p = ok("  m { a = \"1\" ,\tb=\"2\", }\t-Inf \t 12 \n\n");
        assert_eq!(series(&p), vec![r#"{__name__="m", a="1", b="2"}"#]);
        assert_eq!(p.samples[0].value, f64::NEG_INFINITY);
        assert_eq!(p.samples[0].timestamp_ms, Some(12));
    }

    #[test]
    fn quoted_utf8_names() {
        let p = ok("# TYPE \"my.metric\" gauge\n{\"my.metric\", \"label.name\"=\"v\"} 1\n\"my.metric\"{a=\"b\"} 2\n");
        assert_eq!(series(&p), vec![r#"{__name__="my.metric", label.name="v"}"#, r#"{__name__="my.metric", a="b"}"#]);
        assert_eq!(p.families, 1);
        assert_eq!(p.metadata[0].metric_family, "my.metric");
        assert!(err("{\"a\", \"b\"} 1\n").to_string().contains("expected '='"));
        assert!(err("{a=\"b\"} 1\n").to_string().contains("missing metric name"));
    }

    #[test]
    fn values_and_timestamps() {
        let p = ok("a NaN\nb +Inf -5\nc 1e3\n");
        assert!(p.samples[0].value.is_nan());
        assert!(!periscope_model::is_stale_nan(p.samples[0].value));
        assert_eq!(p.samples[1].timestamp_ms, Some(-5));
        assert_eq!(p.samples[2].value, 1000.0);
        for bad in ["a 1_2\n", "a 0x1p-3\n", "a 0b1\n", "a 0o1\n", "a 0x1\n", "a blubb\n", "a\n", "a{} \n"] {
            err(bad);
        }
        assert!(err("a 1 2.72\n").to_string().contains("integer milliseconds"));
        assert!(err("a 1 2 3\n").to_string().contains("unexpected text"));
    }

    #[test]
    fn default_timestamp() {
        let opts = ParseOptions { strict: false, default_timestamp_ms: Some(77) };
        let p = parse(b"a 1\nb 1 5\n", Format::PromText, &opts).unwrap_or_default();
        assert_eq!(p.samples.iter().map(|s| s.timestamp_ms).collect::<Vec<_>>(), vec![Some(77), Some(5)]);
    }

    #[test]
    fn final_line_feed_strict_only() {
        err("a 1");
        let p = parse(b"a 1", Format::PromText, &ParseOptions::default()).unwrap_or_default();
        assert_eq!(p.samples.len(), 1);
        ok("a 1\n  \t");
    }

    #[test]
    fn histograms_group_and_canonicalise_le() {
        let p = ok("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"1e-04\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\nh_other 1\n");
        assert_eq!(p.families, 2);
        let les: Vec<_> = p.samples.iter().filter_map(|s| s.labels.get("le")).collect();
        assert_eq!(les, vec!["1.0", "0.0001", "+Inf"]);
        assert!(err("# TYPE h histogram\nh_bucket{le=\"x\"} 1\n").to_string().contains("not a float"));
        // le is not special for other types.
        let p = ok("h_bucket{le=\"x\"} 1\n");
        assert_eq!(p.samples[0].labels.get("le"), Some("x"));
    }

    #[test]
    fn metadata_rules() {
        assert!(err("# HELP m a\n# HELP m b\n").to_string().contains("second HELP"));
        assert!(err("# TYPE m gauge\n# TYPE m gauge\n").to_string().contains("second TYPE"));
        assert!(err("m 1\n# TYPE m gauge\n").to_string().contains("after its samples"));
        assert!(err("# TYPE m bla\n").to_string().contains("unknown metric type"));
        assert!(err("# TYPE m-x gauge\n").to_string().contains("invalid metric name"));
        let p = ok("m 1\n# HELP m late help\n# HELP\n# HELP m\n# TYPE n GAUGE_HISTOGRAM \n# random\n");
        assert_eq!(p.metadata.len(), 1);
        assert_eq!(p.metadata[0].help, "late help");
        assert_eq!(p.families, 1);
    }

    #[test]
    fn reserved_and_duplicate_labels() {
        assert!(err("m{__name__=\"x\"} 1\n").to_string().contains("reserved"));
        assert!(err("m{a=\"1\",a=\"2\"} 1\n").to_string().contains("duplicate label name"));
    }

    #[test]
    fn error_message_names_line_and_metric() {
        let e = err("a 1\nb 2\nfoo abc\n");
        assert_eq!(e.to_string(), "line 3: invalid value \"abc\" for metric \"foo\"");
    }
}
