//! The templates of `line_format` and `label_format`: Go's `text/template` syntax with the
//! functions Loki documents. Supported: text and `{{ pipeline }}` actions with `{{-`/`-}}`
//! trimming; operands `.label` (missing labels are empty), `.` (all labels), string, number
//! and boolean literals, parenthesised pipelines; pipes (`x | f a` calls `f a x`);
//! `if`/`else if`/`else`/`end`; and the functions below. Anything else is a parse error
//! naming it.

use std::collections::BTreeMap;

/// A template value.
#[derive(Debug, Clone, PartialEq)]
enum V {
    S(String),
    N(f64),
    B(bool),
}

impl V {
    fn text(&self) -> String {
        match self {
            V::S(s) => s.clone(),
            V::N(n) => {
                if n.fract() == 0.0 && n.abs() < 1e15 {
                    format!("{}", *n as i64)
                } else {
                    format!("{n}")
                }
            }
            V::B(b) => b.to_string(),
        }
    }
    fn num(&self) -> Result<f64, String> {
        match self {
            V::N(n) => Ok(*n),
            V::B(b) => Ok(f64::from(u8::from(*b))),
            V::S(s) => s.trim().parse().map_err(|_| format!("{s:?} is not a number")),
        }
    }
    fn truthy(&self) -> bool {
        match self {
            V::S(s) => !s.is_empty(),
            V::N(n) => *n != 0.0,
            V::B(b) => *b,
        }
    }
}

#[derive(Debug, Clone)]
enum Arg {
    Field(String),
    Dot,
    Lit(V),
    Ident(String),
    Sub(Vec<Cmd>),
}

#[derive(Debug, Clone)]
struct Cmd(Vec<Arg>);

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Vec<Cmd>),
    If { branches: Vec<(Vec<Cmd>, Vec<Node>)>, otherwise: Vec<Node> },
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template(Vec<Node>);

/// What a template sees: the entry's labels, line and time.
pub struct Ctx<'a> {
    pub labels: &'a BTreeMap<String, String>,
    pub line: &'a str,
    pub ts_ns: i64,
}

// ---- parsing ----

fn lex_action(src: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let c: Vec<char> = src.chars().collect();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '|' || ch == '(' || ch == ')' {
            out.push(ch.to_string());
            i += 1;
        } else if ch == '"' || ch == '`' {
            let rest: String = c[i..].iter().collect();
            let (s, used) = crate::lexer::unquote(&rest)?;
            out.push(format!("\u{0}{s}"));
            i += rest[..used].chars().count();
        } else {
            let start = i;
            while i < c.len() && !c[i].is_whitespace() && !matches!(c[i], '|' | '(' | ')' | '"' | '`') {
                i += 1;
            }
            out.push(c[start..i].iter().collect());
        }
    }
    Ok(out)
}

/// Deepest nesting of parentheses and `if` blocks in a template.
const MAX_DEPTH: usize = 64;

fn parse_pipe(toks: &[String], pos: &mut usize, depth: usize) -> Result<Vec<Cmd>, String> {
    if depth > MAX_DEPTH {
        return Err(format!("the template nests deeper than {MAX_DEPTH} levels"));
    }
    let mut cmds = vec![Cmd(Vec::new())];
    while *pos < toks.len() {
        let t = &toks[*pos];
        *pos += 1;
        let last = cmds.last_mut().ok_or("empty pipeline")?;
        match t.as_str() {
            "|" => cmds.push(Cmd(Vec::new())),
            "(" => last.0.push(Arg::Sub(parse_pipe(toks, pos, depth + 1)?)),
            ")" => return finish(cmds),
            "." => last.0.push(Arg::Dot),
            "true" => last.0.push(Arg::Lit(V::B(true))),
            "false" => last.0.push(Arg::Lit(V::B(false))),
            s if s.starts_with('\u{0}') => last.0.push(Arg::Lit(V::S(s[1..].to_string()))),
            s if s.starts_with('.') => last.0.push(Arg::Field(s[1..].to_string())),
            s if s.starts_with(|c: char| c.is_ascii_digit() || c == '-') => {
                last.0.push(Arg::Lit(V::N(s.parse().map_err(|_| format!("bad number {s:?}"))?)))
            }
            s => {
                if FUNCS.contains(&s) {
                    last.0.push(Arg::Ident(s.to_string()))
                } else {
                    return Err(format!("function {s:?} not defined"));
                }
            }
        }
    }
    finish(cmds)
}

fn finish(cmds: Vec<Cmd>) -> Result<Vec<Cmd>, String> {
    if cmds.iter().any(|c| c.0.is_empty()) {
        return Err("missing value for command".into());
    }
    Ok(cmds)
}

/// Splits the source into text and actions (`{{- x -}}` trims the whitespace around).
fn split(src: &str) -> Result<Vec<Result<String, String>>, String> {
    let mut out: Vec<Result<String, String>> = Vec::new();
    let mut rest = src;
    while let Some(i) = rest.find("{{") {
        let mut text = rest[..i].to_string();
        let after = &rest[i + 2..];
        let end = after.find("}}").ok_or("unclosed action")?;
        let mut action = &after[..end];
        if let Some(a) = action.strip_prefix('-') {
            text = text.trim_end().to_string();
            action = a;
        }
        let mut trim_next = false;
        if let Some(a) = action.strip_suffix('-') {
            trim_next = true;
            action = a;
        }
        if !text.is_empty() {
            out.push(Ok(text));
        }
        out.push(Err(action.trim().to_string()));
        rest = &after[end + 2..];
        if trim_next {
            rest = rest.trim_start();
        }
    }
    if !rest.is_empty() {
        out.push(Ok(rest.to_string()));
    }
    Ok(out)
}

fn parse_nodes(
    parts: &[Result<String, String>],
    pos: &mut usize,
    stop: &[&str],
    depth: usize,
) -> Result<(Vec<Node>, Option<String>), String> {
    if depth > MAX_DEPTH {
        return Err(format!("the template nests deeper than {MAX_DEPTH} levels"));
    }
    let mut nodes = Vec::new();
    while *pos < parts.len() {
        let p = &parts[*pos];
        *pos += 1;
        match p {
            Ok(text) => nodes.push(Node::Text(text.clone())),
            Err(action) => {
                let word = action.split_whitespace().next().unwrap_or("");
                if stop.contains(&word) {
                    return Ok((nodes, Some(action.clone())));
                }
                if word == "if" {
                    let mut branches = Vec::new();
                    let mut cond = action["if".len()..].to_string();
                    let otherwise;
                    loop {
                        let toks = lex_action(&cond)?;
                        let pipe = parse_pipe(&toks, &mut 0, 0)?;
                        let (body, end) = parse_nodes(parts, pos, &["else", "end"], depth + 1)?;
                        branches.push((pipe, body));
                        match end.as_deref() {
                            Some("end") => {
                                otherwise = Vec::new();
                                break;
                            }
                            Some(e) if e.starts_with("else") => {
                                let rest = e["else".len()..].trim();
                                if let Some(c) = rest.strip_prefix("if") {
                                    cond = c.to_string();
                                    continue;
                                }
                                let (body, end) = parse_nodes(parts, pos, &["end"], depth + 1)?;
                                if end.is_none() {
                                    return Err("unexpected EOF: missing {{end}}".into());
                                }
                                otherwise = body;
                                break;
                            }
                            _ => return Err("unexpected EOF: missing {{end}}".into()),
                        }
                    }
                    nodes.push(Node::If { branches, otherwise });
                } else if matches!(word, "range" | "with" | "define" | "template" | "block" | "else" | "end") {
                    return Err(format!("{{{{{word}}}}} is not supported here"));
                } else if action.starts_with("/*") || action.is_empty() {
                } else {
                    let toks = lex_action(action)?;
                    nodes.push(Node::Action(parse_pipe(&toks, &mut 0, 0)?));
                }
            }
        }
    }
    Ok((nodes, None))
}

impl Template {
    /// Parses a template.
    pub fn parse(src: &str) -> Result<Template, String> {
        let parts = split(src)?;
        let (nodes, stop) = parse_nodes(&parts, &mut 0, &[], 0)?;
        if let Some(s) = stop {
            return Err(format!("unexpected {{{{{s}}}}}"));
        }
        Ok(Template(nodes))
    }

    /// Renders the template.
    pub fn render(&self, ctx: &Ctx<'_>) -> Result<String, String> {
        let mut out = String::new();
        render_nodes(&self.0, ctx, &mut out)?;
        Ok(out)
    }
}

fn render_nodes(nodes: &[Node], ctx: &Ctx<'_>, out: &mut String) -> Result<(), String> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => out.push_str(&eval_pipe(p, ctx)?.text()),
            Node::If { branches, otherwise } => {
                let mut done = false;
                for (cond, body) in branches {
                    if eval_pipe(cond, ctx)?.truthy() {
                        render_nodes(body, ctx, out)?;
                        done = true;
                        break;
                    }
                }
                if !done {
                    render_nodes(otherwise, ctx, out)?;
                }
            }
        }
    }
    Ok(())
}

// ---- evaluation ----

fn eval_arg(a: &Arg, ctx: &Ctx<'_>) -> Result<V, String> {
    Ok(match a {
        Arg::Field(f) => V::S(ctx.labels.get(f).cloned().unwrap_or_default()),
        Arg::Dot => V::S(format!("{:?}", ctx.labels)),
        Arg::Lit(v) => v.clone(),
        Arg::Ident(f) => call(f, &[], ctx)?,
        Arg::Sub(p) => eval_pipe(p, ctx)?,
    })
}

fn eval_pipe(p: &[Cmd], ctx: &Ctx<'_>) -> Result<V, String> {
    let mut prev: Option<V> = None;
    for cmd in p {
        let v = match &cmd.0[0] {
            Arg::Ident(f) => {
                let mut args = cmd.0[1..].iter().map(|a| eval_arg(a, ctx)).collect::<Result<Vec<_>, _>>()?;
                if let Some(pv) = prev.take() {
                    args.push(pv);
                }
                call(f, &args, ctx)?
            }
            other => {
                if cmd.0.len() > 1 || prev.is_some() {
                    return Err("can't give argument to non-function".into());
                }
                eval_arg(other, ctx)?
            }
        };
        prev = Some(v);
    }
    prev.ok_or_else(|| "empty pipeline".into())
}

/// Every function name templates may call.
const FUNCS: &[&str] = &[
    "__line__",
    "__timestamp__",
    "ToLower",
    "ToUpper",
    "lower",
    "upper",
    "title",
    "Title",
    "Replace",
    "replace",
    "Trim",
    "TrimLeft",
    "TrimRight",
    "TrimPrefix",
    "TrimSuffix",
    "TrimSpace",
    "trim",
    "trimAll",
    "trimPrefix",
    "trimSuffix",
    "trunc",
    "substr",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "repeat",
    "default",
    "count",
    "regexReplaceAll",
    "regexReplaceAllLiteral",
    "printf",
    "add",
    "sub",
    "mul",
    "div",
    "mod",
    "addf",
    "subf",
    "mulf",
    "divf",
    "max",
    "min",
    "maxf",
    "minf",
    "ceil",
    "floor",
    "round",
    "int",
    "float64",
    "unixEpoch",
    "unixEpochMillis",
    "unixEpochNanos",
    "alignLeft",
    "alignRight",
    "len",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "and",
    "or",
    "not",
    "b64enc",
    "b64dec",
    "urlencode",
    "urldecode",
    "indent",
    "nindent",
    "quote",
    "squote",
];

fn want(args: &[V], n: usize, f: &str) -> Result<(), String> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!("wrong number of args for {f}: want {n} got {}", args.len()))
    }
}

fn s(args: &[V], i: usize) -> String {
    args.get(i).map(V::text).unwrap_or_default()
}

fn n(args: &[V], i: usize) -> Result<f64, String> {
    args.get(i).ok_or("missing argument")?.num()
}

fn printf(args: &[V]) -> Result<String, String> {
    let fmt = s(args, 0);
    let mut out = String::new();
    let mut it = args.iter().skip(1);
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        while let Some(&d) = chars.peek() {
            chars.next();
            if d.is_ascii_alphabetic() || d == '%' {
                spec.push(d);
                break;
            }
            spec.push(d);
        }
        let verb = spec.chars().last().unwrap_or('v');
        if verb == '%' {
            out.push('%');
            continue;
        }
        let v = it.next().ok_or("printf: missing argument")?;
        let prec: Option<usize> =
            spec.split_once('.').and_then(|(_, p)| p.trim_end_matches(char::is_alphabetic).parse().ok());
        out.push_str(&match verb {
            'd' => format!("{}", v.num()? as i64),
            'f' => format!("{:.*}", prec.unwrap_or(6), v.num()?),
            'q' => format!("{:?}", v.text()),
            _ => v.text(),
        });
    }
    Ok(out)
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match s.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16)).unwrap_or(Ok(b'%')) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn call(f: &str, args: &[V], ctx: &Ctx<'_>) -> Result<V, String> {
    use base64::Engine as _;
    let str1 = |g: fn(&str) -> String| -> Result<V, String> {
        want(args, 1, f)?;
        Ok(V::S(g(&s(args, 0))))
    };
    Ok(match f {
        "__line__" => V::S(ctx.line.to_string()),
        "__timestamp__" => V::N((ctx.ts_ns / 1_000_000_000) as f64),
        "unixEpoch" => V::N((ctx.ts_ns / 1_000_000_000) as f64),
        "unixEpochMillis" => V::N((ctx.ts_ns / 1_000_000) as f64),
        "unixEpochNanos" => V::N(ctx.ts_ns as f64),
        "ToLower" | "lower" => str1(|x| x.to_lowercase())?,
        "ToUpper" | "upper" => str1(|x| x.to_uppercase())?,
        "title" | "Title" => str1(|x| {
            x.split(' ')
                .map(|w| {
                    let mut c = w.chars();
                    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join(" ")
        })?,
        "TrimSpace" | "trim" => str1(|x| x.trim().to_string())?,
        "b64enc" => str1(|x| base64::engine::general_purpose::STANDARD.encode(x))?,
        "b64dec" => str1(|x| {
            base64::engine::general_purpose::STANDARD
                .decode(x)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        })?,
        "urlencode" => str1(|x| {
            x.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect()
        })?,
        "urldecode" => str1(url_decode)?,
        "quote" => str1(|x| format!("{x:?}"))?,
        "squote" => str1(|x| format!("'{x}'"))?,
        "len" => {
            want(args, 1, f)?;
            V::N(s(args, 0).chars().count() as f64)
        }
        // Loki's (Go's) argument order: Replace(s, old, new, n); sprig's: replace old new s.
        "Replace" => {
            want(args, 4, f)?;
            let count = n(args, 3)? as i64;
            let (src, old, new) = (s(args, 0), s(args, 1), s(args, 2));
            V::S(if count < 0 { src.replace(&old, &new) } else { src.replacen(&old, &new, count as usize) })
        }
        "replace" => {
            want(args, 3, f)?;
            V::S(s(args, 2).replace(&s(args, 0), &s(args, 1)))
        }
        "Trim" | "trimAll" => {
            want(args, 2, f)?;
            let (a, b) = if f == "Trim" { (s(args, 0), s(args, 1)) } else { (s(args, 1), s(args, 0)) };
            V::S(a.trim_matches(|c| b.contains(c)).to_string())
        }
        "TrimLeft" => {
            want(args, 2, f)?;
            let cut = s(args, 1);
            V::S(s(args, 0).trim_start_matches(|c| cut.contains(c)).to_string())
        }
        "TrimRight" => {
            want(args, 2, f)?;
            let cut = s(args, 1);
            V::S(s(args, 0).trim_end_matches(|c| cut.contains(c)).to_string())
        }
        "TrimPrefix" | "trimPrefix" => {
            want(args, 2, f)?;
            let (x, p) = if f == "TrimPrefix" { (s(args, 0), s(args, 1)) } else { (s(args, 1), s(args, 0)) };
            V::S(x.strip_prefix(p.as_str()).unwrap_or(&x).to_string())
        }
        "TrimSuffix" | "trimSuffix" => {
            want(args, 2, f)?;
            let (x, p) = if f == "TrimSuffix" { (s(args, 0), s(args, 1)) } else { (s(args, 1), s(args, 0)) };
            V::S(x.strip_suffix(p.as_str()).unwrap_or(&x).to_string())
        }
        "trunc" => {
            want(args, 2, f)?;
            let (k, x) = (n(args, 0)? as i64, s(args, 1));
            let chars: Vec<char> = x.chars().collect();
            V::S(if k >= 0 {
                chars.iter().take(k as usize).collect()
            } else {
                chars[chars.len().saturating_sub((-k) as usize)..].iter().collect()
            })
        }
        "substr" => {
            want(args, 3, f)?;
            let chars: Vec<char> = s(args, 2).chars().collect();
            let a = (n(args, 0)?.max(0.0) as usize).min(chars.len());
            let b = if n(args, 1)? < 0.0 { chars.len() } else { (n(args, 1)? as usize).clamp(a, chars.len()) };
            V::S(chars[a..b].iter().collect())
        }
        "contains" => {
            want(args, 2, f)?;
            V::B(s(args, 1).contains(&s(args, 0)))
        }
        "hasPrefix" => {
            want(args, 2, f)?;
            V::B(s(args, 1).starts_with(&s(args, 0)))
        }
        "hasSuffix" => {
            want(args, 2, f)?;
            V::B(s(args, 1).ends_with(&s(args, 0)))
        }
        "repeat" => {
            want(args, 2, f)?;
            V::S(s(args, 1).repeat(n(args, 0)?.clamp(0.0, 10_000.0) as usize))
        }
        "count" => {
            want(args, 2, f)?;
            let re = regex::Regex::new(&s(args, 0)).map_err(|e| e.to_string())?;
            V::N(re.find_iter(&s(args, 1)).count() as f64)
        }
        "default" => {
            want(args, 2, f)?;
            if args[1].truthy() {
                args[1].clone()
            } else {
                args[0].clone()
            }
        }
        "regexReplaceAll" | "regexReplaceAllLiteral" => {
            want(args, 3, f)?;
            let re = regex::Regex::new(&s(args, 0)).map_err(|e| e.to_string())?;
            // sprig's order: regex, source, replacement.
            let (src, rep) = (s(args, 1), s(args, 2));
            V::S(if f == "regexReplaceAll" {
                re.replace_all(&src, rep.as_str()).into_owned()
            } else {
                re.replace_all(&src, regex::NoExpand(&rep)).into_owned()
            })
        }
        "printf" => V::S(printf(args)?),
        "indent" | "nindent" => {
            want(args, 2, f)?;
            let pad = " ".repeat(n(args, 0)?.clamp(0.0, 1000.0) as usize);
            let body = s(args, 1).lines().map(|l| format!("{pad}{l}")).collect::<Vec<_>>().join("\n");
            V::S(if f == "nindent" { format!("\n{body}") } else { body })
        }
        "alignLeft" | "alignRight" => {
            want(args, 2, f)?;
            let w = n(args, 0)?.clamp(0.0, 10_000.0) as usize;
            let x: String = s(args, 1).chars().take(w).collect();
            V::S(if f == "alignLeft" { format!("{x:<w$}") } else { format!("{x:>w$}") })
        }
        "add" | "sub" | "mul" | "div" | "mod" | "max" | "min" => {
            want(args, 2, f)?;
            let (a, b) = (n(args, 0)?.trunc(), n(args, 1)?.trunc());
            V::N(match f {
                "add" => a + b,
                "sub" => a - b,
                "mul" => a * b,
                "div" if b == 0.0 => return Err("division by zero".into()),
                "div" => (a / b).trunc(),
                "mod" if b == 0.0 => return Err("division by zero".into()),
                "mod" => a % b,
                "max" => a.max(b),
                _ => a.min(b),
            })
        }
        "addf" | "subf" | "mulf" | "divf" | "maxf" | "minf" => {
            want(args, 2, f)?;
            let (a, b) = (n(args, 0)?, n(args, 1)?);
            V::N(match f {
                "addf" => a + b,
                "subf" => a - b,
                "mulf" => a * b,
                "divf" => a / b,
                "maxf" => a.max(b),
                _ => a.min(b),
            })
        }
        "ceil" | "floor" | "round" | "int" | "float64" => {
            want(args, 1, f)?;
            let x = n(args, 0)?;
            V::N(match f {
                "ceil" => x.ceil(),
                "floor" => x.floor(),
                "round" => x.round(),
                "int" => x.trunc(),
                _ => x,
            })
        }
        "eq" | "ne" | "lt" | "le" | "gt" | "ge" => {
            want(args, 2, f)?;
            let ord = match (args[0].num(), args[1].num()) {
                (Ok(a), Ok(b)) => a.partial_cmp(&b),
                _ => Some(s(args, 0).cmp(&s(args, 1))),
            };
            let o = ord.ok_or("incomparable values")?;
            V::B(match f {
                "eq" => o.is_eq(),
                "ne" => o.is_ne(),
                "lt" => o.is_lt(),
                "le" => o.is_le(),
                "gt" => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        "and" => args.iter().find(|a| !a.truthy()).or(args.last()).cloned().unwrap_or(V::B(false)),
        "or" => args.iter().find(|a| a.truthy()).or(args.last()).cloned().unwrap_or(V::B(false)),
        "not" => {
            want(args, 1, f)?;
            V::B(!args[0].truthy())
        }
        other => return Err(format!("function {other:?} not defined")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: &str, labels: &[(&str, &str)]) -> Result<String, String> {
        let labels: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Template::parse(t)?.render(&Ctx { labels: &labels, line: "the line", ts_ns: 1_700_000_000_123_000_000 })
    }

    #[test]
    fn loki_template_functions() {
        let l = [("level", "warn"), ("path", "/api/users/42"), ("ms", "1532"), ("empty", "")];
        for (t, want) in [
            ("{{.level | ToUpper}} {{ .path }}", "WARN /api/users/42"),
            ("{{ToUpper .level}}", "WARN"),
            (r#"{{ regexReplaceAll "/\\d+" .path "/:id" }}"#, "/api/users/:id"),
            (r#"{{ .path | replace "users" "u" }}"#, "/api/u/42"),
            (r#"{{ Replace .path "/" "." -1 }}"#, ".api.users.42"),
            ("{{ div .ms 1000 }}s {{ divf .ms 1000 | printf \"%.1f\" }}", "1s 1.5"),
            (r#"{{ .empty | default "none" }}"#, "none"),
            (r#"{{ if eq .level "warn" }}W{{ else if eq .level "error" }}E{{ else }}-{{ end }}"#, "W"),
            (r#"{{ if .empty }}x{{ else }}y{{ end }}"#, "y"),
            ("{{ __line__ | trunc 3 }} at {{ __timestamp__ }}", "the at 1700000000"),
            ("a  {{- .level -}}  b", "awarnb"),
            (r#"{{ printf "%s=%d" .level 7 }}"#, "warn=7"),
            (r#"{{ alignLeft 6 .level }}|"#, "warn  |"),
            (r#"{{ .level | b64enc | b64dec }}"#, "warn"),
            (r#"{{ if and (gt .ms 1000) (contains "users" .path) }}slow{{ end }}"#, "slow"),
        ] {
            assert_eq!(render(t, &l).as_deref(), Ok(want), "{t}");
        }
        for (t, want) in [
            ("{{ nosuch .x }}", "not defined"),
            ("{{ if .x }}a", "missing {{end}}"),
            ("{{ range .x }}{{ end }}", "not supported"),
            ("{{ .x", "unclosed"),
            ("{{ ToUpper .a .b }}", "wrong number of args"),
            ("{{ div 1 0 }}", "division by zero"),
            (&format!("{{{{ {}.x{} }}}}", "(".repeat(10_000), ")".repeat(10_000)), "deeper than"),
            (&"{{ if .x }}".repeat(10_000), "deeper than"),
        ] {
            let e = render(t, &[]).unwrap_err();
            assert!(e.contains(want), "{t}: {want:?} not in {e:?}");
        }
    }
}
