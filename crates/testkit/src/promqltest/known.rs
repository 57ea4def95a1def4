//! The checked-in list of evals known to fail (`promqltest-known-failures.txt`).
//!
//! Format: one `<file>:<line> <reason>` per failing non-native-histogram eval, `<line>` being
//! the line of the `eval` command; `#` comments and blank lines are allowed. The list must be
//! exact: an unlisted failure and a listed eval that passes (or does not exist, or is a
//! native-histogram eval) are both errors, so the list shrinks as the engine improves.
//! Blessing rewrites it: the leading comment block is kept, then the entries sorted by file
//! and line (comments between entries are not kept).

use super::exec::FileReport;
use crate::TestkitError;
use std::collections::{BTreeMap, HashSet};

/// Longest reason written by [`KnownFailures::blessed`], in characters.
const MAX_REASON_CHARS: usize = 150;

/// The known-failures list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KnownFailures {
    /// Comment and blank lines before the first entry, kept when blessing.
    pub header: Vec<String>,
    /// `(file, line)` → reason.
    pub entries: BTreeMap<(String, usize), String>,
}

impl KnownFailures {
    /// Parses the list; `name` names it in errors.
    pub fn parse(name: &str, text: &str) -> Result<Self, TestkitError> {
        let mut out = KnownFailures::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                if out.entries.is_empty() {
                    out.header.push(raw.trim_end().to_string());
                }
                continue;
            }
            let err = |message: String| TestkitError::KnownFailures { file: name.to_string(), line: i + 1, message };
            let (key, reason) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let (file, num) =
                key.rsplit_once(':').ok_or_else(|| err(format!("expected '<file>:<line>', got {key:?}")))?;
            let num: usize = num.parse().map_err(|_| err(format!("invalid line number in {key:?}")))?;
            if out.entries.insert((file.to_string(), num), reason.trim().to_string()).is_some() {
                return Err(err(format!("{key} is listed twice")));
            }
        }
        while out.header.last().is_some_and(|l| l.is_empty()) {
            out.header.pop();
        }
        Ok(out)
    }

    /// Number of entries for `file`.
    pub fn listed_in(&self, file: &str) -> usize {
        self.entries.keys().filter(|(f, _)| f == file).count()
    }

    /// Differences between the list and the reports: unlisted non-native-histogram failures,
    /// listed evals that passed, are native-histogram evals or do not exist. Entries of files
    /// not in `reports` are checked only against `all_files` (the file must exist), so a run
    /// of some files does not flag the others.
    pub fn check(&self, reports: &[FileReport], all_files: &[String]) -> Vec<String> {
        let mut problems = Vec::new();
        let run: HashSet<&str> = reports.iter().map(|r| r.file.as_str()).collect();
        for r in reports {
            for e in &r.evals {
                let listed = self.entries.contains_key(&(r.file.clone(), e.line));
                match (&e.failure, e.native_histogram, listed) {
                    (Some(reason), false, false) => problems
                        .push(format!("{}:{} fails and is not listed: {} — {}", r.file, e.line, e.query, reason)),
                    (None, _, true) => problems
                        .push(format!("{}:{} is listed but passes now: remove it ({})", r.file, e.line, e.query)),
                    (Some(_), true, true) => problems.push(format!(
                        "{}:{} is listed but is a native-histogram eval (not listed by design): remove it",
                        r.file, e.line
                    )),
                    _ => {}
                }
            }
        }
        for (file, line) in self.entries.keys() {
            if run.contains(file.as_str()) {
                let report = reports.iter().find(|r| &r.file == file);
                if !report.is_some_and(|r| r.evals.iter().any(|e| e.line == *line)) {
                    problems.push(format!("{file}:{line} is listed but there is no eval at that line"));
                }
            } else if !all_files.iter().any(|f| f == file) {
                problems.push(format!("{file}:{line} is listed but there is no test file {file}"));
            }
        }
        problems
    }

    /// The list rewritten for the current failures of the files in `reports`: reasons of
    /// entries still failing are kept, new ones get the runner's reason (one line, at most
    /// [`MAX_REASON_CHARS`] characters); entries of files not run stay as they are.
    pub fn blessed(&self, reports: &[FileReport]) -> KnownFailures {
        let mut entries: BTreeMap<(String, usize), String> = BTreeMap::new();
        let run: HashSet<&str> = reports.iter().map(|r| r.file.as_str()).collect();
        for (k, v) in &self.entries {
            if !run.contains(k.0.as_str()) {
                entries.insert(k.clone(), v.clone());
            }
        }
        for r in reports {
            for e in &r.evals {
                let (Some(reason), false) = (&e.failure, e.native_histogram) else { continue };
                let key = (r.file.clone(), e.line);
                let reason = match self.entries.get(&key) {
                    Some(old) if !old.is_empty() => old.clone(),
                    _ => one_line(reason),
                };
                entries.insert(key, reason);
            }
        }
        KnownFailures { header: self.header.clone(), entries }
    }

    /// The file text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for h in &self.header {
            out.push_str(h);
            out.push('\n');
        }
        if !self.header.is_empty() && !self.entries.is_empty() {
            out.push('\n');
        }
        for ((file, line), reason) in &self.entries {
            out.push_str(format!("{file}:{line} {reason}").trim_end());
            out.push('\n');
        }
        out
    }
}

/// The first line of `reason`, cut to [`MAX_REASON_CHARS`] characters.
fn one_line(reason: &str) -> String {
    let line = reason.lines().next().unwrap_or("").trim();
    if line.chars().count() <= MAX_REASON_CHARS {
        return line.to_string();
    }
    let cut: String = line.chars().take(MAX_REASON_CHARS - 1).collect();
    format!("{}…", cut.trim_end())
}
