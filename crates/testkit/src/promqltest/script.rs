//! The command language of the `.test` files (FORMAT.md sections 1 and 3): `load`,
//! `load_with_nhcb`, `clear`, `eval instant|range` with their expectation lines.
//!
//! Queries are kept as text: they are parsed when the eval runs, so a query our PromQL parser
//! refuses is a failure of that eval, not of the whole file.

use super::series::{self, SeqValue};
use crate::TestkitError;
use periscope_model::Labels;
use regex::Regex;
use std::sync::LazyLock;

/// Compiles a regex that is a constant of this module.
fn constant_regex(re: &str) -> Regex {
    #[allow(clippy::unwrap_used)] // constant patterns, covered by the unit tests
    Regex::new(re).unwrap()
}

static PAT_SPACE: LazyLock<Regex> = LazyLock::new(|| constant_regex(r"[\t ]+"));
static PAT_LOAD: LazyLock<Regex> = LazyLock::new(|| constant_regex(r"^load(?:_(with_nhcb))?\s+(.+?)$"));
static PAT_EVAL_INSTANT: LazyLock<Regex> =
    LazyLock::new(|| constant_regex(r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$"));
static PAT_EVAL_RANGE: LazyLock<Regex> = LazyLock::new(|| {
    constant_regex(r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$")
});
static PAT_EXPECT: LazyLock<Regex> =
    LazyLock::new(|| constant_regex(r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$"));
static PAT_EXPECT_RANGE: LazyLock<Regex> =
    LazyLock::new(|| constant_regex(r"^expect range vector\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+)$"));

/// A parsed `.test` file.
#[derive(Debug, Clone)]
pub struct Script {
    /// The file name (for messages and the known-failures list).
    pub file: String,
    /// The commands in file order.
    pub commands: Vec<Command>,
}

/// One command of a script.
#[derive(Debug, Clone)]
pub enum Command {
    /// `clear`: drop all data.
    Clear,
    /// `load` / `load_with_nhcb`.
    Load(LoadCmd),
    /// `eval ...`.
    Eval(Box<EvalCmd>),
}

/// A `load` block.
#[derive(Debug, Clone)]
pub struct LoadCmd {
    /// 1-based line of the `load` header.
    pub line: usize,
    /// Distance between elements, ms.
    pub interval_ms: i64,
    /// `load_with_nhcb`: classic histograms would also be stored as NHCB series.
    pub with_nhcb: bool,
    /// The series in order of first appearance; a repeated label set replaced the earlier
    /// line's values.
    pub series: Vec<(Labels, Vec<SeqValue>)>,
}

/// When an eval runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalKind {
    /// `eval instant at <t>` (ms).
    Instant { at: i64 },
    /// `eval range from <start> to <end> step <step>` (ms).
    Range { start: i64, end: i64, step: i64 },
}

/// Steps of a range, ms (`expect range vector from .. to .. step ..`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeSpec {
    /// First step, ms since the epoch.
    pub start: i64,
    /// Last possible step (inclusive), ms since the epoch.
    pub end: i64,
    /// Distance between steps, ms.
    pub step: i64,
}

/// How an annotation or error text is matched.
#[derive(Debug, Clone)]
pub enum TextMatch {
    /// Any text (a bare `expect warn`).
    Any,
    /// Exactly this text (`msg:`, trimmed).
    Exact(String),
    /// An unanchored regex search (`regex:`).
    Regex(Regex),
}

impl TextMatch {
    /// Whether `text` satisfies this matcher.
    pub fn matches(&self, text: &str) -> bool {
        match self {
            TextMatch::Any => true,
            TextMatch::Exact(s) => s == text,
            TextMatch::Regex(r) => r.is_match(text),
        }
    }
}

impl std::fmt::Display for TextMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TextMatch::Any => f.write_str("anything"),
            TextMatch::Exact(s) => write!(f, "message {s:?}"),
            TextMatch::Regex(r) => write!(f, "pattern {:?}", r.as_str()),
        }
    }
}

/// An expected series line.
#[derive(Debug, Clone)]
pub struct ExpectedSeries {
    /// 1-based position among the expected series lines (for `ordered`).
    pub pos: usize,
    /// The exact expected label set.
    pub labels: Labels,
    /// One value (instant vector) or the values at the steps of the range.
    pub values: Vec<SeqValue>,
}

/// An `eval` command with everything its following lines expect.
#[derive(Debug, Clone)]
pub struct EvalCmd {
    /// 1-based line of the `eval` header.
    pub line: usize,
    /// The PromQL text.
    pub query: String,
    /// Instant or range, with its times.
    pub kind: EvalKind,
    /// `expect range vector ...` (instant evals): the expected point times; the eval time
    /// becomes its end.
    pub range_vector: Option<RangeSpec>,
    /// `expect string "..."`.
    pub expected_string: Option<String>,
    /// An error is expected (`eval_fail` or `expect fail`).
    pub fail: bool,
    /// Checks of the error text (`expect fail msg:/regex:`, `expected_fail_message/regexp`).
    pub fail_checks: Vec<TextMatch>,
    /// `eval_warn`: at least one warning.
    pub warn_required: bool,
    /// `eval_info`: at least one info annotation.
    pub info_required: bool,
    /// `eval_ordered` or `expect ordered`.
    pub ordered: bool,
    /// `expect warn` lines.
    pub warn: Vec<TextMatch>,
    /// `expect no_warn`.
    pub no_warn: bool,
    /// `expect info` lines.
    pub info: Vec<TextMatch>,
    /// `expect no_info`.
    pub no_info: bool,
    /// A bare-number line: the result must be this scalar.
    pub expected_scalar: Option<f64>,
    /// Expected series (by label set; a repeated label set replaced the earlier line).
    pub expected: Vec<ExpectedSeries>,
}

impl EvalCmd {
    /// The time an instant eval runs at (the `expect range vector` end when given).
    pub fn eval_time(&self) -> Option<i64> {
        match self.kind {
            EvalKind::Instant { at } => Some(self.range_vector.map_or(at, |r| r.end)),
            EvalKind::Range { .. } => None,
        }
    }

    /// Whether any expected value is a native histogram.
    pub fn expects_histogram(&self) -> bool {
        self.expected.iter().any(|e| e.values.iter().any(SeqValue::is_histogram))
    }
}

fn get_lines(input: &str) -> Vec<&str> {
    input
        .split('\n')
        .map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                ""
            } else {
                l
            }
        })
        .collect()
}

/// Parses a whole script. `file` names it in errors.
pub fn parse_script(file: &str, input: &str) -> Result<Script, TestkitError> {
    let lines = get_lines(input);
    let err = |i: usize, message: String| TestkitError::Script { file: file.to_string(), line: i + 1, message };
    let mut commands = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if l.is_empty() {
            i += 1;
            continue;
        }
        let word = PAT_SPACE.splitn(l, 2).next().unwrap_or("").to_lowercase();
        if word == "clear" {
            commands.push(Command::Clear);
            i += 1;
        } else if word.starts_with("load") {
            let (next, cmd) = parse_load(&lines, i).map_err(|(j, m)| err(j, m))?;
            commands.push(Command::Load(cmd));
            i = next;
        } else if word.starts_with("eval") {
            let (next, cmd) = parse_eval(&lines, i).map_err(|(j, m)| err(j, m))?;
            commands.push(Command::Eval(Box::new(cmd)));
            i = next;
        } else {
            return Err(err(i, format!("invalid command {l:?}")));
        }
    }
    Ok(Script { file: file.to_string(), commands })
}

type LineResult<T> = Result<T, (usize, String)>;

/// Parses a `load` block starting at line `i`; returns the index of the line after it.
fn parse_load(lines: &[&str], i: usize) -> LineResult<(usize, LoadCmd)> {
    let caps = PAT_LOAD
        .captures(lines[i])
        .ok_or((i, "invalid load command (load[_with_nhcb] <step:duration>)".to_string()))?;
    let with_nhcb = caps.get(1).is_some();
    let step = caps.get(2).map_or("", |m| m.as_str());
    let interval_ms = series::parse_duration(step).map_err(|e| (i, format!("invalid step definition: {e}")))?;
    let mut cmd = LoadCmd { line: i + 1, interval_ms, with_nhcb, series: Vec::new() };
    // A pending `@st` line: its labels, element count and line.
    let mut pending_st: Option<(Labels, usize, usize)> = None;
    let mut j = i + 1;
    while j < lines.len() && !lines[j].is_empty() {
        let line = lines[j];
        if series::is_st_line(line) {
            if let Some((_, _, at)) = pending_st {
                return Err((at, "@st line has no following sample line".into()));
            }
            let (labels, count) = series::parse_st_line(line).map_err(|e| (j, e))?;
            if let Some(labels) = labels {
                pending_st = Some((labels, count, j));
            }
            j += 1;
            continue;
        }
        let (labels, values) = series::parse_series_desc(line).map_err(|e| (j, e))?;
        if let Some((st_labels, count, at)) = pending_st.take() {
            if st_labels != labels {
                return Err((at, "@st metric does not match the following sample line metric".into()));
            }
            if count != values.len() {
                return Err((at, format!("@st line has {count} values but sample line has {}", values.len())));
            }
        }
        match cmd.series.iter_mut().find(|(l, _)| *l == labels) {
            Some(entry) => entry.1 = values,
            None => cmd.series.push((labels, values)),
        }
        j += 1;
    }
    if let Some((_, _, at)) = pending_st {
        return Err((at, "@st line has no following sample line".into()));
    }
    Ok((j, cmd))
}

fn parse_expect(line: &str) -> Result<(String, TextMatch), String> {
    let caps = PAT_EXPECT.captures(line).ok_or_else(|| {
        format!("invalid expect statement {line:?}, must match `expect <type> <match_type>: <string>` format")
    })?;
    let kind = caps.get(1).map_or("", |m| m.as_str()).to_string();
    let matcher = match (caps.get(2).map(|m| m.as_str()), caps.get(3)) {
        (Some("msg"), Some(text)) => TextMatch::Exact(text.as_str().trim().to_string()),
        (Some("regex"), Some(text)) => {
            let pattern = text.as_str().trim();
            TextMatch::Regex(Regex::new(pattern).map_err(|e| format!("invalid regex {pattern:?} for {kind}: {e}"))?)
        }
        _ => TextMatch::Any,
    };
    Ok((kind, matcher))
}

/// Parses an `eval` command and its block starting at line `i`; returns the index of the
/// line after it.
fn parse_eval(lines: &[&str], i: usize) -> LineResult<(usize, EvalCmd)> {
    let header = lines[i];
    let dur = |s: &str, what: &str| series::parse_duration(s).map_err(|e| (i, format!("invalid {what}: {e}")));
    let (modifier, query, kind) = if let Some(c) = PAT_EVAL_INSTANT.captures(header) {
        let at = c.get(2).map_or("", |m| m.as_str());
        let at = dur(at, "timestamp definition")?;
        (c.get(1).map(|m| m.as_str()), c.get(3).map_or("", |m| m.as_str()), EvalKind::Instant { at })
    } else if let Some(c) = PAT_EVAL_RANGE.captures(header) {
        let g = |n: usize| c.get(n).map_or("", |m| m.as_str());
        let (start, end) = (dur(g(2), "start timestamp")?, dur(g(3), "end timestamp")?);
        if end < start {
            return Err((i, format!("invalid test definition, end timestamp ({}) is before start ({})", g(3), g(2))));
        }
        let step = dur(g(4), "step definition")?;
        (c.get(1).map(|m| m.as_str()), g(5), EvalKind::Range { start, end, step })
    } else {
        return Err((
            i,
            "invalid evaluation command; must be 'eval[_fail|_warn|_info|_ordered] instant at <time> <query>' \
             or 'eval[_fail|_warn|_info] range from <from> to <to> step <step> <query>'"
                .to_string(),
        ));
    };
    let mut cmd = EvalCmd {
        line: i + 1,
        query: query.to_string(),
        kind,
        range_vector: None,
        expected_string: None,
        fail: modifier == Some("fail"),
        fail_checks: Vec::new(),
        warn_required: modifier == Some("warn"),
        info_required: modifier == Some("info"),
        ordered: modifier == Some("ordered"),
        warn: Vec::new(),
        no_warn: false,
        info: Vec::new(),
        no_info: false,
        expected_scalar: None,
        expected: Vec::new(),
    };
    let eval_fail = cmd.fail;
    let is_instant = matches!(kind, EvalKind::Instant { .. });
    let mut fail_lines = 0;
    let mut pos = 0;
    let mut j = i + 1;
    while j < lines.len() && !lines[j].is_empty() {
        let line = lines[j];
        j += 1;
        if eval_fail {
            if let Some(msg) = line.strip_prefix("expected_fail_message") {
                cmd.fail_checks.push(TextMatch::Exact(msg.trim().to_string()));
                break;
            }
            if let Some(pattern) = line.strip_prefix("expected_fail_regexp") {
                let pattern = pattern.trim();
                let re = Regex::new(pattern).map_err(|e| (j - 1, format!("invalid expected_fail_regexp: {e}")))?;
                cmd.fail_checks.push(TextMatch::Regex(re));
                break;
            }
        }
        if line.starts_with("expect range vector") {
            let c = PAT_EXPECT_RANGE
                .captures(line)
                .ok_or_else(|| (j - 1, format!("invalid range vector definition {line:?}")))?;
            let g = |n: usize| c.get(n).map_or("", |m| m.as_str());
            let start = series::parse_duration(g(1)).map_err(|e| (j - 1, e))?;
            let end = series::parse_duration(g(2)).map_err(|e| (j - 1, e))?;
            let step = series::parse_duration(g(3)).map_err(|e| (j - 1, e))?;
            if end < start {
                return Err((j - 1, "end timestamp is before start timestamp".into()));
            }
            cmd.range_vector = Some(RangeSpec { start, end, step });
            continue;
        }
        if line.starts_with("expect string") {
            let text = line.strip_prefix("expect string ").unwrap_or("");
            if text.is_empty() {
                return Err((j - 1, "expected string literal not valid - a quoted string literal is required".into()));
            }
            let s = series::unquote(text).map_err(|e| (j - 1, format!("expected string literal not valid: {e}")))?;
            cmd.expected_string = Some(s);
            continue;
        }
        if line.split(' ').next() == Some("expect") {
            let (kind, matcher) = parse_expect(line).map_err(|e| (j - 1, e))?;
            match kind.as_str() {
                "ordered" => cmd.ordered = true,
                "fail" => {
                    cmd.fail = true;
                    fail_lines += 1;
                    cmd.fail_checks.push(matcher);
                }
                "warn" => cmd.warn.push(matcher),
                "no_warn" => cmd.no_warn = true,
                "info" => cmd.info.push(matcher),
                "no_info" => cmd.no_info = true,
                _ => return Err((j - 1, format!("invalid expected error/annotation type {kind}"))),
            }
            if !cmd.info.is_empty() && cmd.no_info {
                return Err((j - 1, "invalid expect lines, info and no_info cannot be used together".into()));
            }
            if !cmd.warn.is_empty() && cmd.no_warn {
                return Err((j - 1, "invalid expect lines, warn and no_warn cannot be used together".into()));
            }
            if fail_lines > 1 {
                return Err((j - 1, "invalid expect lines, multiple expect fail lines are not allowed".into()));
            }
            continue;
        }
        if let Some(v) = series::parse_go_number(line) {
            cmd.expected_scalar = Some(v);
            break;
        }
        let (labels, values) = series::parse_series_desc(line).map_err(|e| (j - 1, e))?;
        if values.len() > 1 && is_instant && cmd.range_vector.is_none() {
            return Err((
                j - 1,
                "expecting multiple values in instant evaluation not allowed; use 'expect range vector'".into(),
            ));
        }
        pos += 1;
        match cmd.expected.iter_mut().find(|e| e.labels == labels) {
            Some(e) => {
                e.pos = pos;
                e.values = values;
            }
            None => cmd.expected.push(ExpectedSeries { pos, labels, values }),
        }
    }
    Ok((j, cmd))
}
