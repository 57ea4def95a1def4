//! Case mapping with the semantics of Go's `strings.ToLower`/`strings.ToUpper`, which map each
//! character by its simple (one-to-one) Unicode case mapping. Rust's `str::to_uppercase` uses
//! the full mappings (`ß` → `SS`) and context (final sigma), so we map per character and, where
//! Rust's full mapping has several characters, use the simple mapping instead.

/// Go's `strings.ToLower`.
pub(crate) fn to_lower(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    s.chars().map(lower).collect()
}

/// Go's `strings.ToUpper`.
pub(crate) fn to_upper(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_uppercase();
    }
    s.chars().map(upper).collect()
}

fn lower(c: char) -> char {
    let mut full = c.to_lowercase();
    match (full.next(), full.next()) {
        (Some(l), None) => l,
        // Only U+0130 (İ) lowers to several characters; its simple mapping is `i`.
        _ if c == '\u{130}' => 'i',
        _ => c,
    }
}

fn upper(c: char) -> char {
    let mut full = c.to_uppercase();
    match (full.next(), full.next()) {
        (Some(u), None) => u,
        // Characters whose full uppercase has several characters: most have no simple
        // mapping (ß, ŉ, ǰ, ﬀ, ...) and stay as they are; Greek letters with ypogegrammeni map
        // to their titlecase forms.
        _ => match c {
            '\u{1F80}'..='\u{1F87}' | '\u{1F90}'..='\u{1F97}' | '\u{1FA0}'..='\u{1FA7}' => {
                char::from_u32(c as u32 + 8).unwrap_or(c)
            }
            '\u{1FB3}' => '\u{1FBC}',
            '\u{1FC3}' => '\u{1FCC}',
            '\u{1FF3}' => '\u{1FFC}',
            _ => c,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii() {
        assert_eq!(to_lower("bAr123Foo"), "bar123foo");
        assert_eq!(to_upper("bAr123Foo"), "BAR123FOO");
    }

    #[test]
    fn simple_mappings_as_go() {
        assert_eq!(to_upper("straße"), "STRAßE");
        assert_eq!(to_upper("ﬁ"), "ﬁ");
        assert_eq!(to_upper("ᾳ"), "ᾼ");
        assert_eq!(to_upper("ᾀ"), "ᾈ");
        assert_eq!(to_upper("ǆ"), "Ǆ");
        assert_eq!(to_lower("İ"), "i");
        assert_eq!(to_lower("ΟΔΟΣ"), "οδοσ");
        assert_eq!(to_lower("ÀÉ"), "àé");
        assert_eq!(to_upper("ı"), "I");
    }
}
