//! Environment variable expansion in `global.external_labels` values, as Prometheus's
//! `config.Load` does with Go's `os.Expand`: `$VAR` and `${VAR}` are replaced by the variable
//! (empty if unset), `$$` is a literal `$`.

/// Expands `$VAR`/`${VAR}` in `s` with `lookup` (Go's `os.Expand` rules).
pub(crate) fn expand(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0; // s[copied..i] is pending literal text
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            out.push_str(&s[copied..i]);
            let (name, width) = shell_name(&s[i + 1..]);
            match name {
                // Bad syntax (`${`, `${}`): the characters are dropped.
                None if width > 0 => {}
                // `$` not followed by a name: kept.
                None => out.push('$'),
                Some("$") => out.push('$'),
                Some(n) => out.push_str(&lookup(n).unwrap_or_default()),
            }
            i += width + 1;
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&s[copied..]);
    out
}

fn is_special(c: u8) -> bool {
    matches!(c, b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-' | b'0'..=b'9')
}

fn is_alnum(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}

/// Go's `getShellName`: the name after `$` and how many bytes it spans.
fn shell_name(s: &str) -> (Option<&str>, usize) {
    let b = s.as_bytes();
    if b[0] == b'{' {
        if b.len() > 2 && is_special(b[1]) && b[2] == b'}' {
            return (Some(&s[1..2]), 3);
        }
        for i in 1..b.len() {
            if b[i] == b'}' {
                if i == 1 {
                    return (None, 2);
                }
                return (Some(&s[1..i]), i + 1);
            }
        }
        return (None, 1);
    }
    if is_special(b[0]) {
        return (Some(&s[0..1]), 1);
    }
    let n = b.iter().take_while(|c| is_alnum(**c)).count();
    if n == 0 {
        (None, 0)
    } else {
        (Some(&s[..n]), n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("h1".to_string()),
            "REGION" => Some("eu".to_string()),
            _ => None,
        }
    }

    #[test]
    fn go_os_expand() {
        let table = [
            ("plain", "plain"),
            ("$HOST", "h1"),
            ("${HOST}-${REGION}", "h1-eu"),
            ("$HOST.x", "h1.x"),
            ("$UNSET", ""),
            ("a$$b", "a$b"),
            ("cost: 5$", "cost: 5$"),
            ("$ x", "$ x"),
            ("${}", ""),
            ("a${", "a"),
            ("${HOST", "HOST"),
            ("é$HOST", "éh1"),
            ("$1", ""),
        ];
        for (s, want) in table {
            assert_eq!(expand(s, &env), want, "{s:?}");
        }
    }
}
