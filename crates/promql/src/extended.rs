//! The `anchored` and `smoothed` modifiers of range and instant selectors (Prometheus 3's
//! experimental extended range selectors), which the parser crate does not know.
//!
//! [`strip_modifiers`] finds the keywords in the query text, notes which selector (by
//! position in the text) each follows, and removes them; after parsing, [`mark`] puts the
//! modifier on that selector as a reserved matcher, which the evaluator reads and removes
//! before selecting ([`take_modifier`]). Walking the AST left to right meets selectors in text
//! order, which is what ties the two together.

use crate::durations::skip_string;
use crate::QueryError;
use promql_parser::label::{MatchOp as PMatchOp, Matcher as PMatcher};
use promql_parser::parser::{Expr, VectorSelector};

/// The reserved matcher name that carries a modifier through the AST.
pub(crate) const MODIFIER_LABEL: &str = "__periscope_range_modifier__";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Modifier {
    Anchored,
    Smoothed,
}

impl Modifier {
    fn name(self) -> &'static str {
        match self {
            Modifier::Anchored => "anchored",
            Modifier::Smoothed => "smoothed",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Prev {
    Start,
    SelectorName,
    CloseBrace,
    CloseBracket,
    CloseParen,
    Number,
    Other,
}

/// Words that never start a selector (aggregators count: `sum by (x) (...)`).
const KEYWORDS: [&str; 31] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "and",
    "or",
    "unless",
    "atan2",
    "inf",
    "nan",
    "fill",
    "fill_left",
    "fill_right",
    "sum",
    "avg",
    "count",
    "min",
    "max",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "count_values",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// The query without the modifier keywords, and for each modifier the index (in text order)
/// of the selector it follows. Queries without the words are returned unchanged.
pub(crate) fn strip_modifiers(query: &str) -> (String, Vec<(usize, Modifier)>) {
    if !query.contains("anchored") && !query.contains("smoothed") {
        return (query.to_string(), Vec::new());
    }
    let b = query.as_bytes();
    let mut out = b.to_vec();
    let mut mods = Vec::new();
    let mut selectors = 0usize;
    let mut prev = Prev::Start;
    let mut i = 0;
    let skip_ws = |mut j: usize| {
        while j < b.len() && (b[j] as char).is_ascii_whitespace() {
            j += 1;
        }
        j
    };
    // Index after the closing delimiter that matches `b[open]`, skipping quoted strings.
    let skip_group = |open: usize, close: u8| -> usize {
        let mut j = open + 1;
        let mut depth = 1;
        while j < b.len() {
            match b[j] {
                q @ (b'"' | b'\'' | b'`') => j = skip_string(b, j, q),
                c if c == b[open] => {
                    depth += 1;
                    j += 1;
                }
                c if c == close => {
                    depth -= 1;
                    j += 1;
                    if depth == 0 {
                        return j;
                    }
                }
                _ => j += 1,
            }
        }
        j
    };
    while i < b.len() {
        let c = b[i];
        match c {
            c if (c as char).is_ascii_whitespace() => i += 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            q @ (b'"' | b'\'' | b'`') => {
                i = skip_string(b, i, q);
                prev = Prev::Other;
            }
            b'{' => {
                if prev != Prev::SelectorName {
                    selectors += 1;
                }
                i = skip_group(i, b'}');
                prev = Prev::CloseBrace;
            }
            b'[' => {
                i = skip_group(i, b']');
                prev = Prev::CloseBracket;
            }
            b')' => {
                i += 1;
                prev = Prev::CloseParen;
            }
            c if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_') {
                    i += 1;
                }
                prev = Prev::Number;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                    i += 1;
                }
                let word = &query[start..i];
                let next = skip_ws(i);
                let called = b.get(next) == Some(&b'(');
                let lower = word.to_ascii_lowercase();
                let modifier = match word {
                    "anchored" => Some(Modifier::Anchored),
                    "smoothed" => Some(Modifier::Smoothed),
                    _ => None,
                };
                let after_selector = matches!(
                    prev,
                    Prev::SelectorName | Prev::CloseBrace | Prev::CloseBracket | Prev::CloseParen | Prev::Number
                );
                if let (Some(m), true, false, true) = (modifier, after_selector, called, selectors > 0) {
                    mods.push((selectors - 1, m));
                    out[start..i].iter_mut().for_each(|x| *x = b' ');
                    continue;
                }
                if called {
                    if matches!(lower.as_str(), "by" | "without" | "on" | "ignoring" | "group_left" | "group_right") {
                        i = skip_group(next, b')');
                        prev = Prev::Other;
                    } else {
                        prev = Prev::Other;
                    }
                } else if KEYWORDS.contains(&lower.as_str()) {
                    prev = Prev::Other;
                } else {
                    selectors += 1;
                    prev = Prev::SelectorName;
                }
            }
            _ => {
                i += 1;
                prev = Prev::Other;
            }
        }
    }
    (String::from_utf8(out).unwrap_or_else(|_| query.to_string()), mods)
}

/// Puts each modifier on the selector it followed in the text.
pub(crate) fn mark(expr: &mut Expr, mods: &[(usize, Modifier)]) -> Result<(), QueryError> {
    fn walk(e: &mut Expr, n: &mut usize, mods: &[(usize, Modifier)]) {
        let tag = |vs: &mut VectorSelector, n: &mut usize| {
            if let Some((_, m)) = mods.iter().find(|(i, _)| i == n) {
                vs.matchers.matchers.push(PMatcher::new(PMatchOp::Equal, MODIFIER_LABEL, m.name()));
            }
            *n += 1;
        };
        match e {
            Expr::VectorSelector(vs) => tag(vs, n),
            Expr::MatrixSelector(ms) => tag(&mut ms.vs, n),
            Expr::Subquery(sq) => walk(&mut sq.expr, n, mods),
            Expr::Paren(p) => walk(&mut p.expr, n, mods),
            Expr::Unary(u) => walk(&mut u.expr, n, mods),
            Expr::Binary(b) => {
                walk(&mut b.lhs, n, mods);
                walk(&mut b.rhs, n, mods);
            }
            Expr::Aggregate(a) => {
                if let Some(p) = a.param.as_mut() {
                    walk(p, n, mods);
                }
                walk(&mut a.expr, n, mods);
            }
            Expr::Call(c) => {
                for a in c.args.args.iter_mut() {
                    walk(a, n, mods);
                }
            }
            _ => {}
        }
    }
    let mut n = 0;
    walk(expr, &mut n, mods);
    if let Some((i, m)) = mods.iter().find(|(i, _)| *i >= n) {
        return Err(QueryError::Parse(format!("unexpected {} modifier after selector {}", m.name(), i + 1)));
    }
    Ok(())
}

/// The modifier a selector carries, if any.
pub(crate) fn modifier_of(vs: &VectorSelector) -> Option<Modifier> {
    vs.matchers.matchers.iter().find(|m| m.name == MODIFIER_LABEL).map(|m| {
        if m.value == "smoothed" {
            Modifier::Smoothed
        } else {
            Modifier::Anchored
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_selector_each_modifier_follows() {
        let (t, m) =
            strip_modifiers("increase(metric[1m] anchored) + sum by (x) (rate(y{a=\"smoothed\"}[5m] smoothed))");
        assert_eq!(m, vec![(0, Modifier::Anchored), (1, Modifier::Smoothed)]);
        assert!(!t.contains("anchored") && t.contains("\"smoothed\""), "{t}");
        let (_, m) = strip_modifiers("metric offset -100 smoothed + 0");
        assert_eq!(m, vec![(0, Modifier::Smoothed)]);
        let (_, m) = strip_modifiers("metric @ start() smoothed");
        assert_eq!(m, vec![(0, Modifier::Smoothed)]);
        let (t, m) = strip_modifiers("anchored + smoothed");
        assert!(m.is_empty(), "metrics named like the keywords: {m:?}");
        assert_eq!(t, "anchored + smoothed");
    }
}
