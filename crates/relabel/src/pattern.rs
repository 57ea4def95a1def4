//! Relabelling regular expressions: Go's RE2 syntax as Prometheus reads it, run by the `regex`
//! crate.
//!
//! Prometheus anchors every relabel regex as `^(?s:...)$`. The `regex` crate and Go's `regexp`
//! accept nearly the same syntax, but a few constructs mean different things; [`go_compatible`]
//! rewrites them before compiling so that a pattern matches exactly what it matches in
//! Prometheus:
//! - `\d \w \s \b` (and their negations) are ASCII-only in Go, Unicode-aware in Rust;
//! - `\Q...\E` quotes a literal in Go and is unknown to Rust;
//! - a `{` that does not start a valid repetition is a literal in Go and an error in Rust;
//! - inside a bracket class, `[` (except `[:name:]`), `&&`, `--` and `~~` are literals in Go
//!   and nested classes or set operations in Rust.
//!
//! What remains different: the `regex` crate accepts a few things Go rejects (`(?x)`,
//! repetitions above 1000), so a config valid here may be refused by Prometheus; and Go
//! allows capture names that start with a digit (`(?P<1a>..)`), which Rust refuses.

use std::fmt;
use std::sync::OnceLock;

use crate::error::RegexError;

/// A compiled relabelling regex that remembers the pattern it was written as.
///
/// Equality and serialization use the pattern as written (without the anchors).
#[derive(Clone)]
pub struct Regex {
    source: String,
    re: regex::Regex,
}

impl Regex {
    /// Compiles `pattern` anchored at both ends (`^(?s:pattern)$`), as Prometheus does.
    pub fn new(pattern: &str) -> Result<Self, RegexError> {
        let anchored = format!("^(?s:{})$", go_compatible(pattern));
        let re = regex::RegexBuilder::new(&anchored)
            .octal(true)
            .build()
            .map_err(|e| RegexError { pattern: pattern.to_string(), reason: short_reason(&e) })?;
        Ok(Regex { source: pattern.to_string(), re })
    }

    /// The pattern as written in the configuration.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the whole of `haystack` matches.
    pub fn is_match(&self, haystack: &str) -> bool {
        self.re.is_match(haystack)
    }

    /// The capture groups of a whole-string match, if `haystack` matches.
    pub fn captures<'h>(&self, haystack: &'h str) -> Option<regex::Captures<'h>> {
        self.re.captures(haystack)
    }
}

impl Default for Regex {
    /// The default relabel regex, `(.*)`, compiled once per process.
    fn default() -> Self {
        static DEFAULT: OnceLock<Regex> = OnceLock::new();
        DEFAULT
            .get_or_init(|| match Regex::new(crate::DEFAULT_REGEX) {
                Ok(r) => r,
                // Invariant: the constant "(.*)" always compiles.
                Err(e) => panic!("the default relabel regex failed to compile: {e}"),
            })
            .clone()
    }
}

impl PartialEq for Regex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Regex {}

impl fmt::Debug for Regex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.source, f)
    }
}

impl fmt::Display for Regex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl serde::Serialize for Regex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl std::str::FromStr for Regex {
    type Err = RegexError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Regex::new(s)
    }
}

impl<'de> serde::Deserialize<'de> for Regex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // `regex: ~` is the empty pattern, as in Prometheus (a nil regex becomes "").
        struct OrNull;
        impl<'de> serde::de::Visitor<'de> for OrNull {
            type Value = Regex;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a regular expression")
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<Regex, E> {
                Regex::new("").map_err(E::custom)
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Regex, E> {
                self.visit_none()
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Regex, D::Error> {
                d.deserialize_str(crate::config::ParseVisitor::<Regex>::new("a regular expression"))
            }
        }
        d.deserialize_option(OrNull)
    }
}

/// The last line of the `regex` crate's multi-line report ("error: ..."), which is the reason.
fn short_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text.lines().last().unwrap_or("");
    last.strip_prefix("error: ").unwrap_or(last).to_string()
}

const ASCII_DIGIT: &str = "0-9";
const ASCII_WORD: &str = "0-9A-Za-z_";
const ASCII_SPACE: &str = r"\t\n\x0C\r ";

/// Rewrites a Go RE2 pattern into one the `regex` crate reads with the same meaning.
/// Anything it does not recognise is passed through for the `regex` crate to judge.
pub fn go_compatible(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => i = escape_outside(&chars, i, &mut out),
            '[' => i = class(&chars, i, &mut out),
            '{' => {
                if repeat_len(&chars[i..]).is_some() {
                    out.push('{');
                } else {
                    out.push_str(r"\{");
                }
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Length of a valid Go repetition `{n}`, `{n,}` or `{n,m}` at the start of `s`.
fn repeat_len(s: &[char]) -> Option<usize> {
    let mut i = 1;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < s.len() && s[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return None;
    }
    if i < s.len() && s[i] == ',' {
        i += 1;
        digits(&mut i);
    }
    (i < s.len() && s[i] == '}').then_some(i + 1)
}

/// Handles an escape outside a class starting at `chars[i] == '\\'`; returns the next index.
fn escape_outside(chars: &[char], i: usize, out: &mut String) -> usize {
    let Some(&next) = chars.get(i + 1) else {
        out.push('\\');
        return i + 1;
    };
    match next {
        'd' => out.push_str("[0-9]"),
        'D' => out.push_str("[^0-9]"),
        'w' => out.push_str("[0-9A-Za-z_]"),
        'W' => out.push_str("[^0-9A-Za-z_]"),
        's' => out.push_str(r"[\t\n\x0C\r ]"),
        'S' => out.push_str(r"[^\t\n\x0C\r ]"),
        'b' => out.push_str(r"(?-u:\b)"),
        'B' => out.push_str(r"(?-u:\B)"),
        'Q' => return quoted(chars, i + 2, out),
        _ => return copy_escape(chars, i, out),
    }
    i + 2
}

/// `\Q...\E` (or to the end of the pattern): every character literal.
fn quoted(chars: &[char], mut i: usize, out: &mut String) -> usize {
    let mut lit = String::new();
    while i < chars.len() {
        if chars[i] == '\\' && chars.get(i + 1) == Some(&'E') {
            i += 2;
            break;
        }
        lit.push(chars[i]);
        i += 1;
    }
    out.push_str(&regex::escape(&lit));
    i
}

/// Copies an escape sequence verbatim, including `\p{..}` and `\x{..}` bodies.
fn copy_escape(chars: &[char], i: usize, out: &mut String) -> usize {
    out.push('\\');
    let Some(&next) = chars.get(i + 1) else {
        return i + 1;
    };
    out.push(next);
    let mut j = i + 2;
    if matches!(next, 'p' | 'P' | 'x') && chars.get(j) == Some(&'{') {
        while j < chars.len() {
            out.push(chars[j]);
            j += 1;
            if chars[j - 1] == '}' {
                break;
            }
        }
    }
    j
}

/// Rewrites a bracket class starting at `chars[i] == '['`; returns the index after it.
fn class(chars: &[char], mut i: usize, out: &mut String) -> usize {
    out.push('[');
    i += 1;
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    // A `]` right after `[` or `[^` is a literal in both dialects.
    if chars.get(i) == Some(&']') {
        out.push(']');
        i += 1;
    }
    let mut prev: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ']' => {
                out.push(']');
                return i + 1;
            }
            '[' if chars.get(i + 1) == Some(&':') => {
                // POSIX class `[:name:]`: copy through the closing `:]`.
                let start = i;
                let mut j = i + 2;
                while j + 1 < chars.len() && !(chars[j] == ':' && chars[j + 1] == ']') {
                    j += 1;
                }
                let end = (j + 2).min(chars.len());
                out.extend(&chars[start..end]);
                i = end;
                prev = None;
                continue;
            }
            '[' | '&' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '-' if prev == Some('-') => out.push_str(r"\-"),
            '\\' => {
                i = escape_inside(chars, i, out);
                prev = None;
                continue;
            }
            _ => out.push(c),
        }
        prev = Some(c);
        i += 1;
    }
    // Unclosed: let the regex crate report it.
    i
}

/// Handles an escape inside a class; returns the next index.
fn escape_inside(chars: &[char], i: usize, out: &mut String) -> usize {
    let Some(&next) = chars.get(i + 1) else {
        out.push('\\');
        return i + 1;
    };
    match next {
        'd' => out.push_str(ASCII_DIGIT),
        'w' => out.push_str(ASCII_WORD),
        's' => out.push_str(ASCII_SPACE),
        'D' => {
            out.push_str("[^");
            out.push_str(ASCII_DIGIT);
            out.push(']');
        }
        'W' => {
            out.push_str("[^");
            out.push_str(ASCII_WORD);
            out.push(']');
        }
        'S' => {
            out.push_str("[^");
            out.push_str(ASCII_SPACE);
            out.push(']');
        }
        _ => return copy_escape(chars, i, out),
    }
    i + 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(pattern: &str, yes: &[&str], no: &[&str]) {
        let re = Regex::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
        for s in yes {
            assert!(re.is_match(s), "{pattern:?} should match {s:?} (as {:?})", go_compatible(pattern));
        }
        for s in no {
            assert!(!re.is_match(s), "{pattern:?} should not match {s:?} (as {:?})", go_compatible(pattern));
        }
    }

    #[test]
    fn anchored_and_dot_matches_newline() {
        check("a.c", &["abc", "a\nc"], &["xabc", "abcx"]);
        check("(.*)", &["", "anything\nat all"], &[]);
        check("f|o", &["f", "o"], &["foo"]);
    }

    #[test]
    fn perl_classes_are_ascii_as_in_go() {
        check(r"\d+", &["0123"], &["٣", "１"]);
        check(r"\w+", &["a_Z9"], &["café", "ж"]);
        check(r"\s", &[" ", "\t", "\n", "\r", "\x0C"], &["\u{a0}", "\x0B"]);
        check(r"\D", &["x", "٣"], &["1"]);
        check(r"\W", &["é", "-"], &["a"]);
        check(r"\S", &["x", "\u{a0}"], &[" "]);
        check(r"[\d.]+", &["1.5"], &["٣"]);
        check(r"[^\w]", &["-", "é"], &["a"]);
        check(r"[\W\d]", &["1", "-"], &["a"]);
        check(r"(?i)\w", &["K", "\u{212A}"], &["é"]);
    }

    #[test]
    fn word_boundary_is_ascii() {
        check(r".*\bx", &["a x", "x", "éx"], &["ax"]);
        check(r"é\Bx", &[], &["éx"]);
    }

    #[test]
    fn go_only_syntax() {
        check(r"\Q.*+\E", &[".*+"], &["abc"]);
        check(r"a\Q(", &["a("], &[]);
        check(r"x{", &["x{"], &["x"]);
        check(r"{", &["{"], &[]);
        check(r"x{a}", &["x{a}"], &[]);
        check(r"x{,5}", &["x{,5}"], &["xx"]);
        check(r"a{2}", &["aa"], &["a{2}"]);
        check(r"a{1,}", &["aaa"], &[]);
        check(r"[[]", &["["], &["]"]);
        check(r"[a&&b]", &["a", "&", "b"], &["c"]);
        check(r"[~~]", &["~"], &[]);
        check(r"[+--]", &["+", ",", "-"], &["a"]);
        check(r"[]a]", &["]", "a"], &["b"]);
        check(r"[^]a]", &["b"], &["]", "a"]);
        check(r"[[:digit:]x]", &["5", "x"], &["a"]);
        check(r"\pL+", &["é"], &["1"]);
        check(r"[\p{Greek}]", &["α"], &["a"]);
        check(r"\x{41}", &["A"], &[]);
        check(r"\101", &["A"], &[]);
    }

    #[test]
    fn errors_name_the_pattern_in_one_line() {
        let e = Regex::new("(").unwrap_err();
        assert_eq!(e.pattern, "(");
        assert!(!e.to_string().contains('\n'), "{e}");
        assert!(e.to_string().contains("\"(\""), "{e}");
    }

    #[test]
    fn equality_and_display_use_the_source() {
        let a = Regex::new("a+").unwrap();
        assert_eq!(a, Regex::new("a+").unwrap());
        assert_ne!(a, Regex::new("a").unwrap());
        assert_eq!(a.to_string(), "a+");
        assert_eq!(Regex::default().as_str(), "(.*)");
    }
}
