//! A log pipeline compiled from its stages and run entry by entry, as Loki runs it: the
//! labels an entry carries through the pipeline are its stream's labels, its structured
//! metadata and what parsers extract; a parser's failure sets `__error__` (and
//! `__error_details__`) and keeps the entry, so `| __error__=""` drops it.

use crate::ast::*;
use crate::template::{Ctx, Template};
use regex::Regex;
use serde_json::Value;
use std::collections::BTreeMap;

/// Error label names and values, as Loki's.
pub const ERROR_LABEL: &str = "__error__";
pub const ERROR_DETAILS_LABEL: &str = "__error_details__";

/// An entry going through the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub ts_ns: i64,
    pub line: String,
    pub labels: BTreeMap<String, String>,
}

enum Compiled {
    LineFilter { op: LineFilterOp, values: Vec<String>, regexes: Vec<Regex>, patterns: Vec<Pattern> },
    Json(Vec<(String, Vec<PathPart>)>),
    Logfmt { strict: bool, keep_empty: bool, params: Vec<(String, String)> },
    Regexp(Regex),
    Pattern(Pattern),
    Unpack,
    LabelFilter(CompiledFilter),
    LineFormat(Template),
    LabelFormat(Vec<(String, Result<String, Template>)>),
    Drop(Vec<CompiledNamed>),
    Keep(Vec<CompiledNamed>),
    Decolorize,
}

struct CompiledNamed {
    name: String,
    matcher: Option<(StrOp, String, Option<Regex>)>,
}

enum CompiledFilter {
    Str { name: String, op: StrOp, value: String, re: Option<Regex> },
    Cmp { name: String, op: CmpOp, value: CmpValue },
    And(Box<CompiledFilter>, Box<CompiledFilter>),
    Or(Box<CompiledFilter>, Box<CompiledFilter>),
}

#[derive(Debug, Clone, PartialEq)]
enum PathPart {
    Key(String),
    Index(usize),
}

/// A pattern: literals and named captures (`<name>`, `<_>` ignored).
struct Pattern(Vec<Result<String, String>>);

/// Why a pipeline cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CompileError(pub String);

fn anchored(re: &str) -> Result<Regex, CompileError> {
    Regex::new(&format!("^(?s:{re})$")).map_err(|e| CompileError(format!("invalid regexp {re:?}: {e}")))
}

fn template(t: &str) -> Result<Template, CompileError> {
    Template::parse(t).map_err(|e| CompileError(format!("invalid template {t:?}: {e}")))
}

fn pattern(p: &str) -> Result<Pattern, CompileError> {
    let mut parts = Vec::new();
    let mut rest = p;
    while let Some(i) = rest.find('<') {
        let Some(end) = rest[i..].find('>') else { break };
        let name = &rest[i + 1..i + end];
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            parts.push(Ok(rest[..i + end + 1].to_string()));
            rest = &rest[i + end + 1..];
            continue;
        }
        if i > 0 {
            parts.push(Ok(rest[..i].to_string()));
        }
        if matches!(parts.last(), Some(Err(_))) {
            return Err(CompileError(format!("pattern {p:?}: two captures must be separated by literal text")));
        }
        parts.push(Err(name.to_string()));
        rest = &rest[i + end + 1..];
    }
    if !rest.is_empty() {
        parts.push(Ok(rest.to_string()));
    }
    if !parts.iter().any(|x| matches!(x, Err(n) if n != "_")) && !parts.iter().any(Result::is_ok) {
        return Err(CompileError(format!("pattern {p:?}: at least one capture or literal is needed")));
    }
    Ok(Pattern(parts))
}

impl Pattern {
    /// The captures when the line matches (literals found in order; text before the first
    /// literal belongs to a leading capture).
    fn captures<'a>(&self, line: &'a str) -> Option<Vec<(&str, &'a str)>> {
        let mut out = Vec::new();
        let mut pos = 0;
        let mut pending: Option<&str> = None;
        for part in &self.0 {
            match part {
                Err(name) => pending = Some(name),
                Ok(lit) => {
                    let i = line[pos..].find(lit.as_str())?;
                    if let Some(n) = pending.take() {
                        out.push((n, &line[pos..pos + i]));
                    } else if i != 0 {
                        return None;
                    }
                    pos += i + lit.len();
                }
            }
        }
        if let Some(n) = pending {
            out.push((n, &line[pos..]));
        }
        Some(out)
    }
}

fn json_path(expr: &str) -> Result<Vec<PathPart>, CompileError> {
    let bad = || CompileError(format!("invalid json expression {expr:?}"));
    let mut out = Vec::new();
    let mut rest = expr.trim();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(bad)?;
            let inner = r[..end].trim();
            if let Some(q) = inner.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
                out.push(PathPart::Key(q.to_string()));
            } else {
                out.push(PathPart::Index(inner.parse().map_err(|_| bad())?));
            }
            rest = &r[end + 1..];
        } else {
            let r = rest.strip_prefix('.').unwrap_or(rest);
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err(bad());
            }
            out.push(PathPart::Key(r[..end].to_string()));
            rest = &r[end..];
        }
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

fn compile_filter(f: &LabelFilter) -> Result<CompiledFilter, CompileError> {
    Ok(match f {
        LabelFilter::Str { name, op, value } => CompiledFilter::Str {
            name: name.clone(),
            op: *op,
            value: value.clone(),
            re: if matches!(op, StrOp::Re | StrOp::Nre) { Some(anchored(value)?) } else { None },
        },
        LabelFilter::Cmp { name, op, value } => CompiledFilter::Cmp { name: name.clone(), op: *op, value: *value },
        LabelFilter::And(a, b) => CompiledFilter::And(Box::new(compile_filter(a)?), Box::new(compile_filter(b)?)),
        LabelFilter::Or(a, b) => CompiledFilter::Or(Box::new(compile_filter(a)?), Box::new(compile_filter(b)?)),
    })
}

fn compile_named(v: &[NamedLabel]) -> Result<Vec<CompiledNamed>, CompileError> {
    v.iter()
        .map(|n| {
            Ok(CompiledNamed {
                name: n.name.clone(),
                matcher: match &n.matcher {
                    None => None,
                    Some((op, value)) => Some((
                        *op,
                        value.clone(),
                        if matches!(op, StrOp::Re | StrOp::Nre) { Some(anchored(value)?) } else { None },
                    )),
                },
            })
        })
        .collect()
}

/// A compiled pipeline.
pub struct Pipeline(Vec<Compiled>);

impl Pipeline {
    pub fn new(stages: &[Stage]) -> Result<Pipeline, CompileError> {
        let mut out = Vec::with_capacity(stages.len());
        for s in stages {
            out.push(match s {
                Stage::LineFilter { op, values } => Compiled::LineFilter {
                    op: *op,
                    values: values.clone(),
                    regexes: if matches!(op, LineFilterOp::Match | LineFilterOp::NotMatch) {
                        values
                            .iter()
                            .map(|v| Regex::new(v).map_err(|e| CompileError(format!("invalid regexp {v:?}: {e}"))))
                            .collect::<Result<_, _>>()?
                    } else {
                        Vec::new()
                    },
                    patterns: if matches!(op, LineFilterOp::Pattern | LineFilterOp::NotPattern) {
                        values.iter().map(|v| pattern(v)).collect::<Result<_, _>>()?
                    } else {
                        Vec::new()
                    },
                },
                Stage::Json { params } => Compiled::Json(
                    params.iter().map(|(n, e)| Ok((n.clone(), json_path(e)?))).collect::<Result<_, CompileError>>()?,
                ),
                Stage::Logfmt { strict, keep_empty, params } => {
                    Compiled::Logfmt { strict: *strict, keep_empty: *keep_empty, params: params.clone() }
                }
                Stage::Regexp(re) => {
                    Compiled::Regexp(Regex::new(re).map_err(|e| CompileError(format!("invalid regexp {re:?}: {e}")))?)
                }
                Stage::Pattern(p) => Compiled::Pattern(pattern(p)?),
                Stage::Unpack => Compiled::Unpack,
                Stage::LabelFilter(f) => Compiled::LabelFilter(compile_filter(f)?),
                Stage::LineFormat(t) => Compiled::LineFormat(template(t)?),
                Stage::LabelFormat(ops) => Compiled::LabelFormat(
                    ops.iter()
                        .map(|o| match o {
                            LabelFormatOp::Rename { dst, src } => Ok((dst.clone(), Ok(src.clone()))),
                            LabelFormatOp::Template { dst, template: t } => Ok((dst.clone(), Err(template(t)?))),
                        })
                        .collect::<Result<_, CompileError>>()?,
                ),
                Stage::Drop(v) => Compiled::Drop(compile_named(v)?),
                Stage::Keep(v) => Compiled::Keep(compile_named(v)?),
                Stage::Decolorize => Compiled::Decolorize,
            });
        }
        Ok(Pipeline(out))
    }

    /// Whether the pipeline only filters lines (no labels change).
    pub fn line_filters_only(&self) -> bool {
        self.0.iter().all(|s| matches!(s, Compiled::LineFilter { .. }))
    }

    /// Runs the pipeline; `None` when a stage drops the entry.
    pub fn process(&self, mut row: Row) -> Option<Row> {
        for s in &self.0 {
            match s {
                Compiled::LineFilter { op, values, regexes, patterns } => {
                    let hit = match op {
                        LineFilterOp::Contains | LineFilterOp::NotContains => {
                            values.iter().any(|v| row.line.contains(v.as_str()))
                        }
                        LineFilterOp::Match | LineFilterOp::NotMatch => regexes.iter().any(|r| r.is_match(&row.line)),
                        LineFilterOp::Pattern | LineFilterOp::NotPattern => {
                            patterns.iter().any(|p| p.captures(&row.line).is_some())
                        }
                    };
                    let keep = match op {
                        LineFilterOp::Contains | LineFilterOp::Match | LineFilterOp::Pattern => hit,
                        _ => !hit,
                    };
                    if !keep {
                        return None;
                    }
                }
                Compiled::Json(params) => json_stage(&mut row, params),
                Compiled::Logfmt { strict, keep_empty, params } => logfmt_stage(&mut row, *strict, *keep_empty, params),
                Compiled::Regexp(re) => {
                    if let Some(c) = re.captures(&row.line) {
                        let found: Vec<(String, String)> = re
                            .capture_names()
                            .flatten()
                            .filter_map(|n| c.name(n).map(|m| (n.to_string(), m.as_str().to_string())))
                            .collect();
                        for (n, v) in found {
                            add_extracted(&mut row.labels, &n, v);
                        }
                    }
                }
                Compiled::Pattern(p) => {
                    let line = row.line.clone();
                    if let Some(caps) = p.captures(&line) {
                        for (n, v) in caps {
                            if n != "_" {
                                add_extracted(&mut row.labels, n, v.to_string());
                            }
                        }
                    }
                }
                Compiled::Unpack => unpack_stage(&mut row),
                Compiled::LabelFilter(f) => match eval_filter(f, &row.labels) {
                    Ok(true) => {}
                    Ok(false) => return None,
                    Err(details) => {
                        row.labels.insert(ERROR_LABEL.into(), "LabelFilterErr".into());
                        row.labels.insert(ERROR_DETAILS_LABEL.into(), details);
                    }
                },
                Compiled::LineFormat(t) => {
                    let ctx = Ctx { labels: &row.labels, line: &row.line, ts_ns: row.ts_ns };
                    match t.render(&ctx) {
                        Ok(line) => row.line = line,
                        Err(e) => set_error(&mut row, "TemplateFormatErr", e),
                    }
                }
                Compiled::LabelFormat(ops) => {
                    let before = row.labels.clone();
                    for (dst, op) in ops {
                        match op {
                            Ok(src) => {
                                let v = before.get(src).cloned().unwrap_or_default();
                                row.labels.remove(src);
                                row.labels.insert(dst.clone(), v);
                            }
                            Err(t) => {
                                let ctx = Ctx { labels: &before, line: &row.line, ts_ns: row.ts_ns };
                                match t.render(&ctx) {
                                    Ok(v) => {
                                        row.labels.insert(dst.clone(), v);
                                    }
                                    Err(e) => set_error(&mut row, "TemplateFormatErr", e),
                                }
                            }
                        }
                    }
                }
                Compiled::Drop(v) => row.labels.retain(|k, val| !v.iter().any(|n| named_matches(n, k, val))),
                Compiled::Keep(v) => row.labels.retain(|k, val| v.iter().any(|n| named_matches(n, k, val))),
                Compiled::Decolorize => row.line = decolorize(&row.line),
            }
        }
        Some(row)
    }
}

fn named_matches(n: &CompiledNamed, k: &str, v: &str) -> bool {
    n.name == k
        && match &n.matcher {
            None => true,
            Some((op, value, re)) => str_matches(*op, value, re.as_ref(), v),
        }
}

fn str_matches(op: StrOp, value: &str, re: Option<&Regex>, v: &str) -> bool {
    match op {
        StrOp::Eq => v == value,
        StrOp::Neq => v != value,
        StrOp::Re => re.is_some_and(|r| r.is_match(v)),
        StrOp::Nre => !re.is_some_and(|r| r.is_match(v)),
    }
}

/// A label name as Loki sanitises extracted keys: characters outside `[a-zA-Z0-9_]` become
/// `_`, a leading digit gets a `_` in front.
pub fn sanitize(key: &str) -> String {
    let mut s: String = key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// Adds an extracted label; a name the entry already has gets `_extracted` appended, as Loki
/// does.
fn add_extracted(labels: &mut BTreeMap<String, String>, name: &str, value: String) {
    let name = sanitize(name);
    if labels.contains_key(&name) {
        labels.insert(format!("{name}_extracted"), value);
    } else {
        labels.insert(name, value);
    }
}

fn set_error(row: &mut Row, err: &str, details: String) {
    row.labels.insert(ERROR_LABEL.into(), err.into());
    row.labels.insert(ERROR_DETAILS_LABEL.into(), details);
}

fn json_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some(String::new()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() { sanitize(k) } else { format!("{prefix}_{}", sanitize(k)) };
                flatten(&key, v, out);
            }
        }
        Value::Array(_) => {}
        other => {
            if let Some(t) = json_text(other) {
                out.push((prefix.to_string(), t));
            }
        }
    }
}

fn json_stage(row: &mut Row, params: &[(String, Vec<PathPart>)]) {
    let parsed = match serde_json::from_str::<Value>(&row.line) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return set_error(row, "JSONParserErr", "the line is not a JSON object".into()),
        Err(e) => return set_error(row, "JSONParserErr", e.to_string()),
    };
    if params.is_empty() {
        let mut out = Vec::new();
        flatten("", &parsed, &mut out);
        for (k, v) in out {
            add_extracted(&mut row.labels, &k, v);
        }
        return;
    }
    for (name, path) in params {
        let mut cur = Some(&parsed);
        for p in path {
            cur = match (cur, p) {
                (Some(Value::Object(m)), PathPart::Key(k)) => m.get(k),
                (Some(Value::Array(a)), PathPart::Index(i)) => a.get(*i),
                _ => None,
            };
        }
        let value = match cur {
            Some(v) => json_text(v).unwrap_or_else(|| v.to_string()),
            None => String::new(),
        };
        add_extracted(&mut row.labels, name, value);
    }
}

fn unpack_stage(row: &mut Row) {
    let parsed = match serde_json::from_str::<Value>(&row.line) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return set_error(row, "JSONParserErr", "unpack needs a JSON object".into()),
        Err(e) => return set_error(row, "JSONParserErr", e.to_string()),
    };
    let mut line = None;
    for (k, v) in parsed {
        if let Value::String(s) = v {
            if k == "_entry" {
                line = Some(s);
            } else {
                add_extracted(&mut row.labels, &k, s);
            }
        }
    }
    if let Some(l) = line {
        row.line = l;
    }
}

/// logfmt: `key=value`, `key="quoted value"`, bare `key` (empty value).
fn logfmt_stage(row: &mut Row, strict: bool, keep_empty: bool, params: &[(String, String)]) {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let b = row.line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b' ' {
            i += 1;
        }
        let key = &row.line[ks..i];
        if key.is_empty() {
            if i < b.len() {
                if strict {
                    return set_error(
                        row,
                        "LogfmtParserErr",
                        format!("logfmt syntax error at pos {}: unexpected '='", i + 1),
                    );
                }
                i += 1;
            }
            continue;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut closed = false;
                while i < b.len() {
                    match b[i] {
                        b'\\' if i + 1 < b.len() => {
                            let c = b[i + 1];
                            value.push(match c {
                                b'n' => '\n',
                                b't' => '\t',
                                b'r' => '\r',
                                other => other as char,
                            });
                            i += 2;
                        }
                        b'"' => {
                            closed = true;
                            i += 1;
                            break;
                        }
                        _ => {
                            let ch_len = row.line[i..].chars().next().map_or(1, char::len_utf8);
                            value.push_str(&row.line[i..i + ch_len]);
                            i += ch_len;
                        }
                    }
                }
                if !closed && strict {
                    return set_error(row, "LogfmtParserErr", "logfmt syntax error: unterminated quoted value".into());
                }
            } else {
                let vs = i;
                while i < b.len() && b[i] != b' ' {
                    i += 1;
                }
                value = row.line[vs..i].to_string();
            }
        }
        if !value.is_empty() || keep_empty {
            pairs.push((key.to_string(), value));
        }
    }
    if params.is_empty() {
        for (k, v) in pairs {
            add_extracted(&mut row.labels, &k, v);
        }
    } else {
        for (name, key) in params {
            let v = pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default();
            add_extracted(&mut row.labels, name, v);
        }
    }
}

/// The fields a line yields to the `json` parser (when it is a JSON object) or else to
/// `logfmt`, with the parser's name — what Loki's `detected_fields` reports.
pub fn detect_fields(line: &str) -> (&'static str, Vec<(String, String)>) {
    let mut row = Row { ts_ns: 0, line: line.to_string(), labels: BTreeMap::new() };
    if line.trim_start().starts_with('{') {
        json_stage(&mut row, &[]);
        if !row.labels.contains_key(ERROR_LABEL) {
            return ("json", row.labels.into_iter().collect());
        }
        row.labels.clear();
    }
    logfmt_stage(&mut row, true, false, &[]);
    if row.labels.contains_key(ERROR_LABEL) {
        return ("logfmt", Vec::new());
    }
    ("logfmt", row.labels.into_iter().collect())
}

pub use periscope_model::parse_go_duration;

/// A byte size (`10KB`, `1.5MiB`, `42`) in bytes.
pub fn parse_bytes(s: &str) -> Option<f64> {
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let n: f64 = s[..split].parse().ok()?;
    let mult = match s[split..].trim() {
        "" | "B" | "b" => 1.0,
        "kB" | "KB" | "kb" => 1e3,
        "KiB" | "Ki" => 1024.0,
        "MB" | "mb" => 1e6,
        "MiB" | "Mi" => 1_048_576.0,
        "GB" | "gb" => 1e9,
        "GiB" | "Gi" => 1_073_741_824.0,
        "TB" => 1e12,
        "TiB" => 1_099_511_627_776.0,
        _ => return None,
    };
    Some(n * mult)
}

fn eval_filter(f: &CompiledFilter, labels: &BTreeMap<String, String>) -> Result<bool, String> {
    Ok(match f {
        CompiledFilter::Str { name, op, value, re } => {
            str_matches(*op, value, re.as_ref(), labels.get(name).map_or("", String::as_str))
        }
        CompiledFilter::Cmp { name, op, value } => {
            let raw = labels.get(name).map_or("", String::as_str);
            let (got, want) = match value {
                CmpValue::Number(n) => {
                    (raw.parse::<f64>().map_err(|_| format!("{name}: {raw:?} is not a number"))?, *n)
                }
                CmpValue::Duration(d) => (
                    parse_go_duration(raw).ok_or_else(|| format!("{name}: {raw:?} is not a duration"))? as f64,
                    *d as f64,
                ),
                CmpValue::Bytes(b) => {
                    (parse_bytes(raw).ok_or_else(|| format!("{name}: {raw:?} is not a byte size"))?, *b as f64)
                }
            };
            match op {
                CmpOp::Eq => got == want,
                CmpOp::Neq => got != want,
                CmpOp::Gt => got > want,
                CmpOp::Gte => got >= want,
                CmpOp::Lt => got < want,
                CmpOp::Lte => got <= want,
            }
        }
        CompiledFilter::And(a, b) => eval_filter(a, labels)? && eval_filter(b, labels)?,
        CompiledFilter::Or(a, b) => eval_filter(a, labels)? || eval_filter(b, labels)?,
    })
}

/// Removes ANSI escape sequences (colours) from a line.
pub fn decolorize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
#[path = "pipeline_test.rs"]
mod tests;
