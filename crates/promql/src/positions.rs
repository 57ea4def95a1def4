//! Where each node of a query starts in its text, for the `(line:col)` Prometheus appends to
//! annotations. The parser crate keeps no positions, so they are recovered here: walking the
//! AST in text order, each node's first token is the next such token of the text at or after
//! the previous node's start (strings and label-matcher braces are skipped while searching).

use promql_parser::parser::Expr;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    Word,
    Number,
    Str,
    Brace,
    Punct(u8),
}

/// The tokens of `text`: kind, start and end byte offsets.
fn tokens(text: &str) -> Vec<(Tok, usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let kind = match c {
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' | b'`' => {
                i = crate::durations::skip_string(b, i, c);
                Tok::Str
            }
            b'{' => {
                while i < b.len() && b[i] != b'}' {
                    if matches!(b[i], b'"' | b'\'' | b'`') {
                        i = crate::durations::skip_string(b, i, b[i]);
                    } else {
                        i += 1;
                    }
                }
                i += 1;
                Tok::Brace
            }
            c if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_') {
                    i += 1;
                }
                Tok::Number
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' || c >= 0x80 => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':' || b[i] >= 0x80) {
                    i += 1;
                }
                let w = &text[start..i];
                if w.eq_ignore_ascii_case("nan") || w.eq_ignore_ascii_case("inf") {
                    Tok::Number
                } else {
                    Tok::Word
                }
            }
            _ => {
                i += 1;
                Tok::Punct(c)
            }
        };
        out.push((kind, start, i.min(b.len())));
    }
    out
}

struct Finder<'a> {
    text: &'a str,
    toks: Vec<(Tok, usize, usize)>,
    /// Index of the first token a node may start at.
    cursor: usize,
    map: HashMap<usize, usize>,
}

impl Finder<'_> {
    /// The index of the next token at or after the cursor that satisfies `pred`.
    fn find(&self, pred: impl Fn(Tok, &str) -> bool) -> Option<usize> {
        (self.cursor..self.toks.len()).find(|&i| {
            let (k, s, e) = self.toks[i];
            pred(k, &self.text[s..e])
        })
    }

    fn record(&mut self, e: &Expr, tok: Option<usize>) -> Option<usize> {
        let i = tok?;
        self.map.insert(e as *const Expr as usize, self.toks[i].1);
        self.cursor = i;
        Some(i)
    }

    fn walk(&mut self, e: &Expr) {
        match e {
            Expr::Binary(b) => {
                self.walk(&b.lhs);
                if let Some(&p) = self.map.get(&(&*b.lhs as *const Expr as usize)) {
                    self.map.insert(e as *const Expr as usize, p);
                }
                // Past the lhs's first token, so the rhs is searched after it.
                self.cursor += 1;
                self.walk(&b.rhs);
            }
            Expr::Paren(p) => {
                let t = self.find(|k, _| k == Tok::Punct(b'('));
                if self.record(e, t).is_some() {
                    self.cursor += 1;
                }
                self.walk(&p.expr);
            }
            Expr::Unary(u) => {
                let t = self.find(|k, _| k == Tok::Punct(b'-'));
                if self.record(e, t).is_some() {
                    self.cursor += 1;
                }
                self.walk(&u.expr);
            }
            Expr::Call(c) => {
                let name = c.func.name;
                let t = self.find(|k, w| k == Tok::Word && w.eq_ignore_ascii_case(name));
                if self.record(e, t).is_some() {
                    self.cursor += 1;
                }
                for a in &c.args.args {
                    self.walk(a);
                    self.cursor += 1;
                }
            }
            Expr::Aggregate(a) => {
                let op = a.op.to_string();
                let t = self.find(|k, w| k == Tok::Word && w.eq_ignore_ascii_case(&op));
                if let Some(i) = self.record(e, t) {
                    self.cursor = i + 1;
                    // `by (...)` / `without (...)` before the arguments: label names, skip them.
                    if let Some((Tok::Word, s, en)) = self.toks.get(self.cursor).copied() {
                        let w = &self.text[s..en];
                        if w.eq_ignore_ascii_case("by") || w.eq_ignore_ascii_case("without") {
                            if let Some(close) = self.find(|k, _| k == Tok::Punct(b')')) {
                                self.cursor = close + 1;
                            }
                        }
                    }
                }
                if let Some(p) = &a.param {
                    self.walk(p);
                    self.cursor += 1;
                }
                self.walk(&a.expr);
            }
            Expr::NumberLiteral(_) => {
                let t = self.find(|k, _| k == Tok::Number);
                self.record(e, t);
            }
            Expr::StringLiteral(_) => {
                let t = self.find(|k, _| k == Tok::Str);
                self.record(e, t);
            }
            Expr::VectorSelector(vs) => {
                let t = match &vs.name {
                    Some(n) => self.find(|k, w| (k == Tok::Word && w == n) || k == Tok::Str),
                    None => self.find(|k, _| k == Tok::Brace),
                };
                self.record(e, t);
            }
            Expr::MatrixSelector(ms) => {
                let t = match &ms.vs.name {
                    Some(n) => self.find(|k, w| (k == Tok::Word && w == n) || k == Tok::Brace),
                    None => self.find(|k, _| k == Tok::Brace),
                };
                self.record(e, t);
            }
            Expr::Subquery(sq) => {
                self.walk(&sq.expr);
                if let Some(&p) = self.map.get(&(&*sq.expr as *const Expr as usize)) {
                    self.map.insert(e as *const Expr as usize, p);
                }
            }
            Expr::Extension(_) => {}
        }
    }
}

/// The `(line:col)` of every node of `expr` found in `text`, by node address.
pub(crate) fn positions(expr: &Expr, text: &str) -> HashMap<usize, String> {
    if text.is_empty() {
        return HashMap::new();
    }
    let mut f = Finder { text, toks: tokens(text), cursor: 0, map: HashMap::new() };
    f.walk(expr);
    f.map
        .into_iter()
        .map(|(node, off)| {
            let before = &text[..off];
            let line = before.bytes().filter(|&c| c == b'\n').count() + 1;
            let col = off - before.rfind('\n').map_or(0, |n| n + 1) + 1;
            (node, format!(" ({line}:{col})"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos_of(q: &str, pick: impl Fn(&Expr) -> &Expr) -> String {
        let e = promql_parser::parser::parse(q).unwrap_or_else(|err| panic!("{q}: {err}"));
        let map = positions(&e, q);
        map.get(&(pick(&e) as *const Expr as usize)).cloned().unwrap_or_default()
    }

    #[test]
    fn finds_nodes() {
        assert_eq!(pos_of("sort(series)", |e| e), " (1:1)");
        assert_eq!(
            pos_of("sum(sort(series))", |e| match e {
                Expr::Aggregate(a) => &a.expr,
                _ => e,
            }),
            " (1:5)"
        );
        assert_eq!(
            pos_of("histogram_quantile(0.8, series)", |e| match e {
                Expr::Call(c) => &c.args.args[1],
                _ => e,
            }),
            " (1:25)"
        );
        assert_eq!(
            pos_of("quantile without(point)(NaN, data)", |e| match e {
                Expr::Aggregate(a) => a.param.as_deref().unwrap_or(e),
                _ => e,
            }),
            " (1:25)"
        );
        assert_eq!(
            pos_of("foo{a=\"bar\"} + bar", |e| match e {
                Expr::Binary(b) => &b.rhs,
                _ => e,
            }),
            " (1:16)"
        );
    }
}
