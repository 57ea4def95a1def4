//! Template expansion with the semantics of Go's `regexp.Regexp.ExpandString`, which
//! Prometheus uses for `target_label` and `replacement`.
//!
//! - `$1`, `${1}`: group 1; `$name`, `${name}`: the named group; `$$`: a literal `$`.
//! - A name is the longest run of letters, digits and `_`, so `$1x` is the group called `1x`
//!   (which does not exist and expands to nothing) and `${1}x` is group 1 followed by `x`.
//! - Numbers have no leading zeros and fewer than ten digits; otherwise they are names.
//! - A group that did not take part in the match, or does not exist, expands to nothing.
//! - A `$` not followed by a valid reference (`$`, `${`, `${}`, `$-`) is copied literally.
//!
//! Non-ASCII reference names are judged by Rust's `is_alphabetic`/`is_numeric`, which are a
//! little wider than Go's `unicode.IsLetter`/`IsDigit`; no real template is affected.

use regex::Captures;

/// Appends `template`, expanded with the groups of `caps`, to `dst`.
pub(crate) fn expand(caps: &Captures<'_>, template: &str, dst: &mut String) {
    let mut rest = template;
    while let Some(pos) = rest.find('$') {
        dst.push_str(&rest[..pos]);
        rest = &rest[pos + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            dst.push('$');
            rest = after;
            continue;
        }
        let Some((group, after)) = reference(rest) else {
            dst.push('$');
            continue;
        };
        rest = after;
        let m = match group {
            Group::Index(i) => caps.get(i),
            Group::Name(name) => caps.name(name),
        };
        if let Some(m) = m {
            dst.push_str(m.as_str());
        }
    }
    dst.push_str(rest);
}

/// Whether `template` refers to any group at all (contains a `$`), as Prometheus tests it.
pub(crate) fn has_reference(template: &str) -> bool {
    template.contains('$')
}

enum Group<'a> {
    Index(usize),
    Name(&'a str),
}

fn is_name_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric() || (!c.is_ascii() && (c.is_alphabetic() || c.is_numeric()))
}

/// Parses `name` or `{name}` at the start of `s` (the `$` already consumed).
fn reference(s: &str) -> Option<(Group<'_>, &str)> {
    let (brace, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let end = body.char_indices().find(|&(_, c)| !is_name_char(c)).map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let name = &body[..end];
    let mut rest = &body[end..];
    if brace {
        rest = rest.strip_prefix('}')?;
    }
    Some((number(name).map_or(Group::Name(name), Group::Index), rest))
}

/// Go's rule: all ASCII digits, no leading zero, and the value built before each digit is
/// below 1e8 (so at most nine digits).
fn number(name: &str) -> Option<usize> {
    if name.len() > 1 && name.starts_with('0') {
        return None;
    }
    let mut n: usize = 0;
    for b in name.bytes() {
        if !b.is_ascii_digit() || n >= 100_000_000 {
            return None;
        }
        n = n * 10 + usize::from(b - b'0');
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(re: &str, haystack: &str, template: &str, want: &str) {
        let re = regex::Regex::new(re).unwrap();
        let caps = re.captures(haystack).unwrap();
        let mut got = String::new();
        expand(&caps, template, &mut got);
        assert_eq!(got, want, "template {template:?}");
    }

    #[test]
    fn go_expand_semantics() {
        let re = r"^(?P<first>a)(b)?(c)$";
        check(re, "abc", "$1-$2-$3", "a-b-c");
        check(re, "ac", "[$2]", "[]");
        check(re, "abc", "${1}x", "ax");
        check(re, "abc", "$1x", "");
        check(re, "abc", "$first.$3", "a.c");
        check(re, "abc", "${first}", "a");
        check(re, "abc", "$$1", "$1");
        check(re, "abc", "$", "$");
        check(re, "abc", "x$", "x$");
        check(re, "abc", "${", "${");
        check(re, "abc", "${}", "${}");
        check(re, "abc", "${1", "${1");
        check(re, "abc", "$-", "$-");
        check(re, "abc", "$01", "");
        check(re, "abc", "$0", "abc");
        check(re, "abc", "$9", "");
        check(re, "abc", "$1234567890", "");
        check(re, "abc", "$nope", "");
        check(re, "abc", "no refs", "no refs");
        check(re, "abc", "é$1é", "é");
        check(re, "abc", "é${1}é", "éaé");
    }

    #[test]
    fn numbers() {
        assert_eq!(number("0"), Some(0));
        assert_eq!(number("123456789"), Some(123_456_789));
        assert_eq!(number("1234567890"), None);
        assert_eq!(number("01"), None);
        assert_eq!(number("1a"), None);
    }
}
