//! LogQL tokens. Strings are Go literals (double-quoted with escapes, or back-quoted raw);
//! numbers, durations (`5m`, `1h30m`, `250ms`) and byte sizes (`10KB`, `1MiB`) are told
//! apart by their suffix; positions are 1-based line and column, as Loki reports them.

use crate::ParseError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    Str(String),
    Number(f64),
    /// Nanoseconds.
    Duration(i64),
    Bytes(u64),
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    /// `=`
    Eq,
    /// `!=`
    Neq,
    /// `=~`
    Re,
    /// `!~`
    Nre,
    /// `==`
    EqEq,
    Gt,
    Gte,
    Lt,
    Lte,
    /// `|=`
    PipeExact,
    /// `|~`
    PipeMatch,
    /// `|>`
    PipePattern,
    /// `!>`
    NotPattern,
    Pipe,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eof,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub line: usize,
    pub col: usize,
}

fn duration_unit(u: &str) -> Option<i64> {
    Some(match u {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        "w" => 604_800_000_000_000,
        "y" => 31_536_000_000_000_000,
        _ => return None,
    })
}

fn byte_unit(u: &str) -> Option<u64> {
    Some(match u {
        "B" | "b" => 1,
        "kB" | "KB" | "kb" => 1_000,
        "KiB" | "kiB" | "Ki" => 1 << 10,
        "MB" | "mb" => 1_000_000,
        "MiB" | "Mi" => 1 << 20,
        "GB" | "gb" => 1_000_000_000,
        "GiB" | "Gi" => 1 << 30,
        "TB" | "tb" => 1_000_000_000_000,
        "TiB" | "Ti" => 1 << 40,
        "PB" => 1_000_000_000_000_000,
        "PiB" => 1 << 50,
        _ => return None,
    })
}

/// A number with a unit suffix: a duration made of one or more `<n><unit>` parts, or a
/// byte size.
fn with_unit(text: &str) -> Option<Tok> {
    if let Some(b) = (|| {
        let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (n, u) = text.split_at(split);
        let n: f64 = n.parse().ok()?;
        Some(Tok::Bytes((n * byte_unit(u)? as f64) as u64))
    })() {
        return Some(b);
    }
    let mut total: i64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let split = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (n, tail) = rest.split_at(split);
        let n: f64 = n.parse().ok()?;
        let ulen = tail.find(|c: char| c.is_ascii_digit()).unwrap_or(tail.len());
        let (u, next) = tail.split_at(ulen);
        total = total.checked_add((n * duration_unit(u)? as f64) as i64)?;
        rest = next;
    }
    Some(Tok::Duration(total))
}

pub(crate) fn lex(input: &str) -> Result<Vec<Token>, ParseError> {
    let mut out = Vec::new();
    let (mut line, mut col) = (1usize, 1usize);
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    let err = |line, col, msg: String| ParseError { line, col, msg };
    while i < chars.len() {
        let c = chars[i];
        let (tl, tc) = (line, col);
        let advance = |n: usize, i: &mut usize, col: &mut usize| {
            *i += n;
            *col += n;
        };
        if c == '\n' {
            i += 1;
            line += 1;
            col = 1;
            continue;
        }
        if c.is_whitespace() {
            advance(1, &mut i, &mut col);
            continue;
        }
        if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let tok2 = match two.as_str() {
            "!=" => Some(Tok::Neq),
            "=~" => Some(Tok::Re),
            "!~" => Some(Tok::Nre),
            "==" => Some(Tok::EqEq),
            ">=" => Some(Tok::Gte),
            "<=" => Some(Tok::Lte),
            "|=" => Some(Tok::PipeExact),
            "|~" => Some(Tok::PipeMatch),
            "|>" => Some(Tok::PipePattern),
            "!>" => Some(Tok::NotPattern),
            _ => None,
        };
        if let Some(t) = tok2 {
            out.push(Token { tok: t, line: tl, col: tc });
            advance(2, &mut i, &mut col);
            continue;
        }
        let tok1 = match c {
            '{' => Some(Tok::LBrace),
            '}' => Some(Tok::RBrace),
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            ',' => Some(Tok::Comma),
            '=' => Some(Tok::Eq),
            '>' => Some(Tok::Gt),
            '<' => Some(Tok::Lt),
            '|' => Some(Tok::Pipe),
            '+' => Some(Tok::Add),
            '-' if chars.get(i + 1).is_none_or(|n| *n != '-') => Some(Tok::Sub),
            '*' => Some(Tok::Mul),
            '/' => Some(Tok::Div),
            '%' => Some(Tok::Mod),
            '^' => Some(Tok::Pow),
            _ => None,
        };
        if let Some(t) = tok1 {
            out.push(Token { tok: t, line: tl, col: tc });
            advance(1, &mut i, &mut col);
            continue;
        }
        if c == '"' || c == '`' {
            let rest: String = chars[i..].iter().collect();
            let (s, used_bytes) = unquote(&rest).map_err(|m| err(tl, tc, format!("syntax error: {m}")))?;
            let used = rest[..used_bytes].chars().count();
            for ch in &chars[i..i + used] {
                if *ch == '\n' {
                    line += 1;
                    col = 1;
                } else {
                    col += 1;
                }
            }
            i += used;
            out.push(Token { tok: Tok::Str(s), line: tl, col: tc });
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == 'µ') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            col += i - start;
            let tok = if let Ok(n) = text.parse::<f64>() {
                Tok::Number(n)
            } else if let Some(t) = text.strip_prefix("0x").and_then(|h| i64::from_str_radix(h, 16).ok()) {
                Tok::Number(t as f64)
            } else {
                with_unit(&text).ok_or_else(|| err(tl, tc, format!("syntax error: invalid number {text:?}")))?
            };
            out.push(Token { tok, line: tl, col: tc });
            continue;
        }
        if c.is_alphabetic() || c == '_' || (c == '-' && chars.get(i + 1) == Some(&'-')) {
            // Identifiers, keywords and flags such as `--strict`; dots allowed inside (as
            // in `json` parameters' expressions Loki keeps in strings, and label names do not).
            let start = i;
            if c == '-' {
                i += 2;
            }
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '-' && c == '-') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            col += i - start;
            out.push(Token { tok: Tok::Ident(text), line: tl, col: tc });
            continue;
        }
        return Err(err(tl, tc, format!("syntax error: unexpected character {c:?}")));
    }
    out.push(Token { tok: Tok::Eof, line, col });
    Ok(out)
}

/// A Go string literal at the start of `s`: its value and the bytes it took.
pub fn unquote(s: &str) -> Result<(String, usize), String> {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, '`')) => {
            let end = s[1..].find('`').ok_or("unterminated raw string")?;
            Ok((s[1..1 + end].to_string(), end + 2))
        }
        Some((_, '"')) => {
            let mut out = String::new();
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => return Ok((out, i + 1)),
                    '\n' => return Err("newline in string".into()),
                    '\\' => {
                        let (_, e) = chars.next().ok_or("unterminated string")?;
                        let mut hex = |n: usize| -> Result<u32, String> {
                            let mut v = 0u32;
                            for _ in 0..n {
                                let (_, d) = chars.next().ok_or("unterminated escape")?;
                                v = v * 16 + d.to_digit(16).ok_or("invalid escape")?;
                            }
                            Ok(v)
                        };
                        out.push(match e {
                            'a' => '\u{7}',
                            'b' => '\u{8}',
                            'f' => '\u{c}',
                            'n' => '\n',
                            'r' => '\r',
                            't' => '\t',
                            'v' => '\u{b}',
                            '\\' => '\\',
                            '"' => '"',
                            '\'' => '\'',
                            'x' => char::from_u32(hex(2)?).ok_or("invalid escape")?,
                            'u' => char::from_u32(hex(4)?).ok_or("invalid unicode escape")?,
                            'U' => char::from_u32(hex(8)?).ok_or("invalid unicode escape")?,
                            '0'..='7' => {
                                let mut v = e.to_digit(8).unwrap_or(0);
                                for _ in 0..2 {
                                    let (_, d) = chars.next().ok_or("unterminated escape")?;
                                    v = v * 8 + d.to_digit(8).ok_or("invalid octal escape")?;
                                }
                                char::from_u32(v).ok_or("invalid octal escape")?
                            }
                            other => return Err(format!("unknown escape sequence \\{other}")),
                        });
                    }
                    c => out.push(c),
                }
            }
            Err("unterminated string".into())
        }
        _ => Err("expected a string".into()),
    }
}
