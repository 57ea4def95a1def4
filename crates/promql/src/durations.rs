//! Duration arithmetic in ranges, subquery steps and offsets (`[26m+4m]`,
//! `[29s+1s:20*500ms]`, `offset (1h/2)`, `offset -min_of(2m, 1m)`), Prometheus 3's
//! experimental duration expressions, which the parser crate does not accept.
//!
//! [`fold_constant_durations`] evaluates such expressions when they are constant and writes
//! the result back as a plain `<n>ms` duration before the text reaches the parser. Numbers are
//! seconds, durations their length; `+ - * / % ^`, parentheses, unary signs, `min_of` and
//! `max_of`. Expressions that use `step()` or `range()` depend on the query and are left as
//! they are (the parser then refuses them).

/// The query with every constant duration expression replaced by its value.
pub(crate) fn fold_constant_durations(query: &str) -> String {
    if !query.contains('[') && !query.to_ascii_lowercase().contains("offset") {
        return query.to_string();
    }
    let b = query.as_bytes();
    let mut out = String::with_capacity(query.len());
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'"' | b'\'' | b'`') => i = skip_string(b, i, q),
            b'{' => i = skip_to(b, i, b'}'),
            b'[' => {
                let end = skip_to(b, i, b']');
                if end > i + 1 && b[end - 1] == b']' {
                    let inner = &query[i + 1..end - 1];
                    let folded = match inner.split_once(':') {
                        Some((r, s)) => fold_part(r)
                            .zip(if s.trim().is_empty() { Some(String::new()) } else { fold_part(s) })
                            .map(|(r, s)| format!("{r}:{s}")),
                        None => fold_part(inner),
                    };
                    if let Some(f) = folded {
                        if f != inner {
                            out.push_str(&query[copied..i + 1]);
                            out.push_str(&f);
                            copied = end - 1;
                        }
                    }
                }
                i = end;
            }
            c if c.is_ascii_alphabetic() => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                    i += 1;
                }
                if !query[start..i].eq_ignore_ascii_case("offset") {
                    continue;
                }
                let Some((sign_at, j, operand_end)) = offset_operand(b, i) else { continue };
                let negative = b[sign_at] == b'-';
                if let Some(v) = eval(&query[j..operand_end]) {
                    let ms = (if negative { -v } else { v } * 1000.0).round();
                    if ms.is_finite() && ms.abs() < 9.0e15 {
                        out.push_str(&query[copied..sign_at]);
                        out.push_str(&format!("{}ms", ms as i64));
                        copied = operand_end;
                    }
                }
                i = operand_end.max(i);
            }
            _ => i += 1,
        }
    }
    out.push_str(&query[copied..]);
    out
}

/// A reserved matcher added to the label selector of every `info()` call, so that the
/// parser accepts selectors whose matchers all match the empty string (`{data=~".*"}`,
/// which Prometheus allows there); `info()` drops it.
pub(crate) const INFO_SELECTOR_LABEL: &str = "__periscope_info_selector__";

/// Adds [`INFO_SELECTOR_LABEL`] to the `{...}` of each `info(v, {...})`.
pub(crate) fn mark_info_selectors(query: &str) -> String {
    if !query.to_ascii_lowercase().contains("info") {
        return query.to_string();
    }
    let b = query.as_bytes();
    let mut inserts: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'"' | b'\'' | b'`') => i = skip_string(b, i, q),
            b'{' => i = skip_to(b, i, b'}'),
            c if c.is_ascii_alphabetic() => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                    i += 1;
                }
                let open = skip_ws(b, i);
                if !query[start..i].eq_ignore_ascii_case("info") || b.get(open) != Some(&b'(') {
                    continue;
                }
                // Skip the first argument to the comma at depth 0, then find the selector's `{`.
                let mut j = open + 1;
                let mut depth = 0i32;
                while j < b.len() {
                    match b[j] {
                        q @ (b'"' | b'\'' | b'`') => {
                            j = skip_string(b, j, q);
                            continue;
                        }
                        b'{' => {
                            j = skip_to(b, j, b'}');
                            continue;
                        }
                        b'(' | b'[' => depth += 1,
                        b')' | b']' => {
                            if depth == 0 {
                                break;
                            }
                            depth -= 1;
                        }
                        b',' if depth == 0 => break,
                        _ => {}
                    }
                    j += 1;
                }
                if b.get(j) == Some(&b',') {
                    let mut k = skip_ws(b, j + 1);
                    while k < b.len() && (b[k].is_ascii_alphanumeric() || b[k] == b'_' || b[k] == b':') {
                        k += 1;
                    }
                    let k = skip_ws(b, k);
                    if b.get(k) == Some(&b'{') {
                        let close = skip_to(b, k, b'}');
                        if close > k + 1 {
                            inserts.push(close - 1);
                        }
                    }
                }
                i = open + 1;
            }
            _ => i += 1,
        }
    }
    if inserts.is_empty() {
        return query.to_string();
    }
    let mut out = String::with_capacity(query.len() + 48 * inserts.len());
    let mut copied = 0;
    for at in inserts {
        let sep = if query[..at].trim_end().ends_with('{') || query[..at].trim_end().ends_with(',') { "" } else { "," };
        out.push_str(&query[copied..at]);
        out.push_str(&format!("{sep}{INFO_SELECTOR_LABEL}=\"1\""));
        copied = at;
    }
    out.push_str(&query[copied..]);
    out
}

/// Reserved matchers that carry a duration expression depending on the query (`step()`,
/// `range()`) from the text to the evaluator, on the selector it belongs to.
pub(crate) const RANGE_EXPR_LABEL: &str = "__periscope_range_expr__";
pub(crate) const OFFSET_EXPR_LABEL: &str = "__periscope_offset_expr__";

/// Moves duration expressions that use `step()` or `range()` — a selector's `[range]` or
/// its `offset` — into a reserved matcher on that selector, leaving a placeholder duration for
/// the parser. The evaluator computes them with the query's step and range.
pub(crate) fn defer_query_durations(query: &str) -> String {
    let lower = query.to_ascii_lowercase();
    if !lower.contains("step()") && !lower.contains("range()") {
        return query.to_string();
    }
    let b = query.as_bytes();
    // (position, text to insert) and (start, end, replacement), applied at the end.
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let depends = |e: &str| eval(e).is_none() && eval_with(e, Some((1.0, 1.0))).is_some();
    // Where to put a matcher on the selector that ends just before `at`.
    let marker = |at: usize, label: &str, expr: &str| -> Option<(usize, usize, String)> {
        let mut e = at;
        while e > 0 && b[e - 1].is_ascii_whitespace() {
            e -= 1;
        }
        let m = format!("{label}=\"{}\"", expr.trim());
        match b.get(e.checked_sub(1)?)? {
            b'}' => {
                let mut k = e - 1;
                while k > 0 && b[k - 1].is_ascii_whitespace() {
                    k -= 1;
                }
                let sep = if b.get(k.checked_sub(1)?) == Some(&b'{') { "" } else { "," };
                Some((e - 1, e - 1, format!("{sep}{m}")))
            }
            c if c.is_ascii_alphanumeric() || *c == b'_' || *c == b':' => Some((e, e, format!("{{{m}}}"))),
            _ => None,
        }
    };
    let mut i = 0;
    let mut last_selector_end: Option<usize> = None;
    while i < b.len() {
        match b[i] {
            q @ (b'"' | b'\'' | b'`') => i = skip_string(b, i, q),
            b'{' => i = skip_to(b, i, b'}'),
            b'[' => {
                let end = skip_to(b, i, b']');
                let inner = &query[i + 1..end.saturating_sub(1).max(i + 1)];
                if !inner.contains(':') && depends(inner) {
                    if let Some(ins) = marker(i, RANGE_EXPR_LABEL, inner) {
                        edits.push(ins);
                        edits.push((i + 1, end - 1, "1ms".into()));
                    }
                }
                last_selector_end = Some(i);
                i = end;
            }
            c if c.is_ascii_alphabetic() => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                    i += 1;
                }
                if !query[start..i].eq_ignore_ascii_case("offset") {
                    continue;
                }
                let Some((sign_at, _, operand_end)) = offset_operand(b, i) else { continue };
                let operand = &query[sign_at..operand_end];
                if depends(operand) {
                    // The selector is the one before `offset`, or before its `[range]`.
                    let anchor = match last_selector_end {
                        Some(p) if query[p..start].trim_start().starts_with('[') => p,
                        _ => start,
                    };
                    if let Some(ins) = marker(anchor, OFFSET_EXPR_LABEL, operand) {
                        edits.push(ins);
                        edits.push((sign_at, operand_end, "1ms".into()));
                    }
                }
                i = operand_end;
            }
            _ => i += 1,
        }
    }
    if edits.is_empty() {
        return query.to_string();
    }
    edits.sort_by_key(|(s, e, _)| (*s, *e));
    let mut out = String::with_capacity(query.len() + 64);
    let mut copied = 0;
    for (s, e, text) in edits {
        if s < copied {
            continue;
        }
        out.push_str(&query[copied..s]);
        out.push_str(&text);
        copied = e;
    }
    out.push_str(&query[copied..]);
    out
}

/// A bracket part as a duration the parser accepts: unchanged if it is a plain duration or
/// number, folded if it is a constant expression, `None` otherwise.
fn fold_part(s: &str) -> Option<String> {
    let t = s.trim();
    if t.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return Some(s.to_string());
    }
    let v = eval(t)?;
    let ms = (v * 1000.0).round();
    (ms.is_finite() && ms.abs() < 9.0e15).then(|| format!("{}ms", ms as i64))
}

/// After `offset` (ending at `i`): where its operand starts (with its sign), where it starts
/// after the sign, and where it ends — when it is a parenthesised group or a call, the forms
/// a duration expression takes there; a plain duration is left to the parser.
fn offset_operand(b: &[u8], i: usize) -> Option<(usize, usize, usize)> {
    let sign_at = skip_ws(b, i);
    let mut j = sign_at;
    if j < b.len() && (b[j] == b'-' || b[j] == b'+') {
        j = skip_ws(b, j + 1);
    }
    let end = if *b.get(j)? == b'(' {
        skip_to(b, j, b')')
    } else if b[j].is_ascii_alphabetic() {
        let mut k = j;
        while k < b.len() && (b[k].is_ascii_alphanumeric() || b[k] == b'_') {
            k += 1;
        }
        let k2 = skip_ws(b, k);
        if b.get(k2) != Some(&b'(') {
            return None;
        }
        skip_to(b, k2, b')')
    } else {
        return None;
    };
    Some((sign_at, j, end))
}

pub(crate) fn skip_ws(b: &[u8], mut j: usize) -> usize {
    while j < b.len() && b[j].is_ascii_whitespace() {
        j += 1;
    }
    j
}

/// The index after the string starting at `open` (its end of text when unterminated).
pub(crate) fn skip_string(b: &[u8], open: usize, q: u8) -> usize {
    let mut j = open + 1;
    while j < b.len() {
        if b[j] == b'\\' && q != b'`' {
            j += 2;
            continue;
        }
        if b[j] == q {
            return j + 1;
        }
        j += 1;
    }
    j.min(b.len())
}

/// The index after the delimiter closing `b[open]`, skipping strings and nested groups.
fn skip_to(b: &[u8], open: usize, close: u8) -> usize {
    let o = b[open];
    let mut depth = 0;
    let mut j = open;
    while j < b.len() {
        match b[j] {
            q @ (b'"' | b'\'' | b'`') => {
                j = skip_string(b, j, q);
                continue;
            }
            c if c == o => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    j
}

/// A constant duration expression in seconds.
fn eval(s: &str) -> Option<f64> {
    eval_with(s, None)
}

/// A duration expression in seconds; `step()` and `range()` are the query's (seconds) when
/// `query` is given, unknown (no value) otherwise.
pub(crate) fn eval_with(s: &str, query: Option<(f64, f64)>) -> Option<f64> {
    let mut p = P { s: s.as_bytes(), i: 0, query };
    let v = p.expr()?;
    p.ws();
    (p.i == p.s.len()).then_some(v)
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
    query: Option<(f64, f64)>,
}

impl P<'_> {
    fn ws(&mut self) {
        self.i = skip_ws(self.s, self.i);
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expr(&mut self) -> Option<f64> {
        let mut v = self.term()?;
        loop {
            if self.eat(b'+') {
                v += self.term()?;
            } else if self.eat(b'-') {
                v -= self.term()?;
            } else {
                return Some(v);
            }
        }
    }

    fn term(&mut self) -> Option<f64> {
        let mut v = self.unary()?;
        loop {
            if self.eat(b'*') {
                v *= self.unary()?;
            } else if self.eat(b'/') {
                v /= self.unary()?;
            } else if self.eat(b'%') {
                v %= self.unary()?;
            } else {
                return Some(v);
            }
        }
    }

    /// Unary signs bind looser than `^`: `-2 ^ 2` is -4, as in PromQL.
    fn unary(&mut self) -> Option<f64> {
        if self.eat(b'-') {
            return Some(-self.unary()?);
        }
        if self.eat(b'+') {
            return self.unary();
        }
        self.power()
    }

    fn power(&mut self) -> Option<f64> {
        let base = self.primary()?;
        if self.eat(b'^') {
            return Some(base.powf(self.unary()?));
        }
        Some(base)
    }

    fn primary(&mut self) -> Option<f64> {
        self.ws();
        let c = *self.s.get(self.i)?;
        if c == b'(' {
            self.i += 1;
            let v = self.expr()?;
            return self.eat(b')').then_some(v);
        }
        if c.is_ascii_alphabetic() {
            let start = self.i;
            while self.i < self.s.len() && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_') {
                self.i += 1;
            }
            let name = std::str::from_utf8(&self.s[start..self.i]).ok()?.to_ascii_lowercase();
            if name == "step" || name == "range" {
                // Known only when the query runs.
                let (step, range) = self.query?;
                if !(self.eat(b'(') && self.eat(b')')) {
                    return None;
                }
                return Some(if name == "step" { step } else { range });
            }
            if name != "min_of" && name != "max_of" {
                return None;
            }
            if !self.eat(b'(') {
                return None;
            }
            let a = self.expr()?;
            if !self.eat(b',') {
                return None;
            }
            let b = self.expr()?;
            if !self.eat(b')') {
                return None;
            }
            return Some(if a.is_nan() || b.is_nan() {
                f64::NAN
            } else if name == "min_of" {
                a.min(b)
            } else {
                a.max(b)
            });
        }
        // A number (seconds) or a duration: digits and units, e.g. `1.5`, `1h30m`, `8000ms`.
        let start = self.i;
        while self.i < self.s.len() && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'.') {
            self.i += 1;
        }
        let tok = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        if let Ok(n) = tok.parse::<f64>() {
            return n.is_finite().then_some(n);
        }
        duration_seconds(tok)
    }
}

/// A Prometheus duration literal (`1h30m`, `10s53ms`) in seconds.
fn duration_seconds(tok: &str) -> Option<f64> {
    let b = tok.as_bytes();
    let mut i = 0;
    let mut total = 0.0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let n: f64 = tok.get(start..i)?.parse().ok()?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = match &tok[ustart..i] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "w" => 604_800.0,
            "y" => 31_536_000.0,
            _ => return None,
        };
        total += n * unit;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_constant_expressions() {
        assert_eq!(fold_constant_durations("changes(x[26m+4m])"), "changes(x[1800000ms])");
        assert_eq!(fold_constant_durations("x[1h30m % 1h]"), "x[1800000ms]");
        assert_eq!(fold_constant_durations("x[30m1s-30m1s % 1m]"), "x[1800000ms]");
        assert_eq!(fold_constant_durations("s(x[29s+1s:20*500ms])"), "s(x[30000ms:10000ms])");
        assert_eq!(fold_constant_durations("x offset (100 + 2)"), "x offset 102000ms");
        assert_eq!(fold_constant_durations("x offset 100 + 2"), "x offset 100 + 2");
        assert_eq!(fold_constant_durations("x offset (-2 ^ 2)"), "x offset -4000ms");
        assert_eq!(fold_constant_durations("x offset -(2m - 1m)"), "x offset -60000ms");
        assert_eq!(fold_constant_durations("x[5m]"), "x[5m]");
        assert_eq!(fold_constant_durations("x[step()]"), "x[step()]");
        assert_eq!(fold_constant_durations(r#"x{a="[1+1]"}[1m:]"#), r#"x{a="[1+1]"}[1m:]"#);
    }

    #[test]
    fn defers_step_and_range_to_the_selector() {
        assert_eq!(
            defer_query_durations("count_over_time(m[step()+1ms])"),
            r#"count_over_time(m{__periscope_range_expr__="step()+1ms"}[1ms])"#
        );
        assert_eq!(
            defer_query_durations(r#"m{a="b"} offset -min_of(step(), 1s)+8000"#),
            r#"m{a="b",__periscope_offset_expr__="-min_of(step(), 1s)"} offset 1ms+8000"#
        );
        assert_eq!(defer_query_durations("m offset 5m"), "m offset 5m");
    }

    #[test]
    fn info_selectors_get_a_matcher_the_parser_accepts() {
        assert_eq!(
            mark_info_selectors(r#"info(m, {data=~".*"})"#),
            r#"info(m, {data=~".*",__periscope_info_selector__="1"})"#
        );
        assert_eq!(
            mark_info_selectors(r#"info(rate(m{a="x,y"}[5m]), {})"#),
            r#"info(rate(m{a="x,y"}[5m]), {__periscope_info_selector__="1"})"#
        );
        assert_eq!(mark_info_selectors("info(m)"), "info(m)");
        assert_eq!(mark_info_selectors("build_info"), "build_info");
    }
}
