//! Byte-level scanning shared by both formats: lines, a cursor over one line, name character
//! classes and quoted strings.
//!
//! Invariants:
//! - Everything works on borrowed `&[u8]`; the only allocations are the owned strings handed
//!   out (one per name, label value or help text), each no larger than the bytes it came from.
//! - Nothing here indexes out of bounds: all reads go through `get`, so no input can panic.
//! - A line never contains `\n`, so a quoted string can never span lines: a raw line feed in
//!   a label value shows up as an unterminated quote.

use std::borrow::Cow;

/// One line of the input, without its `\n`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line<'a> {
    pub text: &'a [u8],
    /// 1-based.
    pub number: usize,
    /// Whether the line ended with `\n` (only the last line of an input may not).
    pub terminated: bool,
}

/// Splits an input into lines.
pub(crate) struct Lines<'a> {
    rest: &'a [u8],
    number: usize,
}

impl<'a> Lines<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Lines { rest: input, number: 0 }
    }

    /// The bytes not yet returned.
    pub fn remaining(&self) -> &'a [u8] {
        self.rest
    }

    /// The number of the last line returned (0 before the first).
    pub fn number(&self) -> usize {
        self.number
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    fn next(&mut self) -> Option<Line<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        self.number += 1;
        let line = match self.rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let text = self.rest.get(..i).unwrap_or_default();
                self.rest = self.rest.get(i + 1..).unwrap_or_default();
                Line { text, number: self.number, terminated: true }
            }
            None => {
                let text = self.rest;
                self.rest = &[];
                Line { text, number: self.number, terminated: false }
            }
        };
        Some(line)
    }
}

/// A read position inside one line.
pub(crate) struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Cursor { b, pos: 0 }
    }

    pub fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    pub fn is_end(&self) -> bool {
        self.pos >= self.b.len()
    }

    pub fn bump(&mut self) {
        self.advance(1);
    }

    /// Moves `n` bytes on, stopping at the end of the line.
    pub fn advance(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n).min(self.b.len());
    }

    /// Consumes `c` if it is next.
    pub fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consumes `s` if it comes next.
    pub fn eat_str(&mut self, s: &[u8]) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    /// Everything from the position to the end of the line.
    pub fn rest(&self) -> &'a [u8] {
        self.b.get(self.pos..).unwrap_or_default()
    }

    pub fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// Consumes bytes while `f` holds and returns them.
    pub fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !f(c) {
                break;
            }
            self.pos += 1;
        }
        self.b.get(start..self.pos).unwrap_or_default()
    }
}

pub(crate) fn is_metric_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

pub(crate) fn is_metric_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

pub(crate) fn is_label_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

pub(crate) fn is_label_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Reads an unquoted legacy metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`); empty if none starts here.
pub(crate) fn metric_name<'a>(cur: &mut Cursor<'a>) -> &'a str {
    if !cur.peek().is_some_and(is_metric_name_start) {
        return "";
    }
    ascii(cur.take_while(is_metric_name_char))
}

/// Reads an unquoted legacy label name (`[a-zA-Z_][a-zA-Z0-9_]*`); empty if none starts here.
pub(crate) fn label_name<'a>(cur: &mut Cursor<'a>) -> &'a str {
    if !cur.peek().is_some_and(is_label_name_start) {
        return "";
    }
    ascii(cur.take_while(is_label_name_char))
}

/// A slice known to hold only ASCII name characters as `&str`.
fn ascii(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or_default()
}

/// How backslash sequences other than `\\`, `\"` and `\n` are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnknownEscape {
    /// Refused (Prometheus 0.0.4 label values and quoted names).
    Reject,
    /// Kept literally, backslash included (OpenMetrics, and HELP text in both formats).
    Keep,
}

/// Why a quoted string could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QuotedError {
    /// No closing quote before the end of the line.
    Unterminated,
    /// A backslash sequence that [`UnknownEscape::Reject`] refuses; the byte after `\`.
    BadEscape(u8),
    /// The unescaped bytes are not UTF-8.
    InvalidUtf8,
}

impl QuotedError {
    /// A message fragment: "unterminated quoted string", ...
    pub fn describe(self) -> String {
        match self {
            QuotedError::Unterminated => "unterminated quoted string".to_string(),
            QuotedError::BadEscape(c) => format!("invalid escape sequence \"\\{}\"", char::from(c).escape_default()),
            QuotedError::InvalidUtf8 => "quoted string is not valid utf-8".to_string(),
        }
    }
}

/// Reads a `"`-quoted string starting at the cursor (which must be on the opening quote) and
/// returns its unescaped content; the cursor ends after the closing quote.
pub(crate) fn quoted<'a>(cur: &mut Cursor<'a>, unknown: UnknownEscape) -> Result<Cow<'a, str>, QuotedError> {
    if !cur.eat(b'"') {
        return Err(QuotedError::Unterminated);
    }
    let body = cur.rest();
    // Fast path: no backslash before the closing quote, so the content is a plain slice.
    match body.iter().position(|&b| b == b'"' || b == b'\\') {
        None => return Err(QuotedError::Unterminated),
        Some(i) if body.get(i) == Some(&b'"') => {
            let s = std::str::from_utf8(body.get(..i).unwrap_or_default()).map_err(|_| QuotedError::InvalidUtf8)?;
            cur.advance(i + 1);
            return Ok(Cow::Borrowed(s));
        }
        Some(_) => {}
    }
    // No capacity from the rest of the line: a line with many escaped values would otherwise
    // reserve (and keep) the line's length once per value.
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let Some(&c) = body.get(i) else {
            return Err(QuotedError::Unterminated);
        };
        i += 1;
        match c {
            b'"' => break,
            b'\\' => {
                let Some(&e) = body.get(i) else {
                    return Err(QuotedError::Unterminated);
                };
                i += 1;
                match e {
                    b'\\' => out.push(b'\\'),
                    b'"' => out.push(b'"'),
                    b'n' => out.push(b'\n'),
                    _ if unknown == UnknownEscape::Keep => {
                        out.push(b'\\');
                        out.push(e);
                    }
                    _ => return Err(QuotedError::BadEscape(e)),
                }
            }
            _ => out.push(c),
        }
    }
    cur.advance(i);
    String::from_utf8(out).map(Cow::Owned).map_err(|_| QuotedError::InvalidUtf8)
}

/// Unescapes HELP text: `\\`, `\"` and `\n`; other sequences (and a trailing backslash) are
/// kept literally. Borrows when there is nothing to unescape.
pub(crate) fn unescape_help(text: &[u8]) -> Cow<'_, [u8]> {
    if !text.contains(&b'\\') {
        return Cow::Borrowed(text);
    }
    let mut out = Vec::with_capacity(text.len());
    let mut it = text.iter().copied();
    while let Some(c) = it.next() {
        if c != b'\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some(b'\\') => out.push(b'\\'),
            Some(b'"') => out.push(b'"'),
            Some(b'n') => out.push(b'\n'),
            Some(other) => {
                out.push(b'\\');
                out.push(other);
            }
            None => out.push(b'\\'),
        }
    }
    Cow::Owned(out)
}

/// Quotes a byte token for an error message, cut to a readable length.
pub(crate) fn show(tok: &[u8]) -> String {
    const MAX: usize = 64;
    let s = String::from_utf8_lossy(tok.get(..MAX.min(tok.len())).unwrap_or_default()).into_owned();
    if tok.len() > MAX {
        format!("{:?}...", s)
    } else {
        format!("{s:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str, unknown: UnknownEscape) -> Result<String, QuotedError> {
        let mut c = Cursor::new(s.as_bytes());
        quoted(&mut c, unknown).map(|v| v.into_owned())
    }

    #[test]
    fn lines_report_termination() {
        let l: Vec<_> = Lines::new(b"a\n\nb").map(|l| (l.text.to_vec(), l.number, l.terminated)).collect();
        assert_eq!(l, vec![(b"a".to_vec(), 1, true), (vec![], 2, true), (b"b".to_vec(), 3, false)]);
        assert_eq!(Lines::new(b"").count(), 0);
        assert_eq!(Lines::new(b"\n").count(), 1);
    }

    #[test]
    fn quoted_strings() {
        assert_eq!(q(r#""abc" x"#, UnknownEscape::Reject).as_deref(), Ok("abc"));
        assert_eq!(q(r#""a\"b\\c\nd""#, UnknownEscape::Reject).as_deref(), Ok("a\"b\\c\nd"));
        assert_eq!(q(r#""b\\a\z""#, UnknownEscape::Keep).as_deref(), Ok("b\\a\\z"));
        assert_eq!(q(r#""b\\a\z""#, UnknownEscape::Reject), Err(QuotedError::BadEscape(b'z')));
        assert_eq!(q(r#""abc"#, UnknownEscape::Keep), Err(QuotedError::Unterminated));
        assert_eq!(q(r#""abc\""#, UnknownEscape::Keep), Err(QuotedError::Unterminated));
        assert_eq!(q("\"a # }{\"", UnknownEscape::Keep).as_deref(), Ok("a # }{"));
        let mut c = Cursor::new(b"\"\xff\"");
        assert_eq!(quoted(&mut c, UnknownEscape::Keep), Err(QuotedError::InvalidUtf8));
    }

    #[test]
    fn cursor_ends_after_closing_quote() {
        let mut c = Cursor::new(br#""a\"b"} 1"#);
        assert!(quoted(&mut c, UnknownEscape::Keep).is_ok());
        assert_eq!(c.rest(), b"} 1");
        let mut c = Cursor::new(br#""ab"} 1"#);
        assert!(quoted(&mut c, UnknownEscape::Keep).is_ok());
        assert_eq!(c.rest(), b"} 1");
    }

    #[test]
    fn help_unescaping() {
        assert_eq!(&*unescape_help(br"he\n\\l\tp"), b"he\n\\l\\tp");
        assert_eq!(&*unescape_help(br#"\""#), b"\"");
        assert_eq!(&*unescape_help(br"a\"), b"a\\");
    }
}
