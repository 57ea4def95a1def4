//! Series descriptions (`metric{a="b"} 0+10x10 _ stale {{schema:1 sum:3}}x2`), durations,
//! Go string literals and the number forms of the script format (FORMAT.md sections 2 and 4).
//!
//! Everything here returns `Err(String)` with a short message; the script parser adds the
//! file and line.

use periscope_model::{BucketSpan, FloatHistogram, Labels, METRIC_NAME, STALE_NAN};

/// One element of an expanded value sequence.
#[derive(Debug, Clone, PartialEq)]
pub enum SeqValue {
    /// `_`: no sample (load) or no point expected (range result).
    Omitted,
    /// A float; `stale` is [`periscope_model::STALE_NAN`].
    Float(f64),
    /// A native histogram.
    Histogram(Box<HistValue>),
}

/// A native histogram value of a sequence, and the counter-reset hint its description spelled
/// (compared only then, FORMAT.md 5.5).
#[derive(Debug, Clone, PartialEq)]
pub struct HistValue {
    pub h: FloatHistogram,
    pub hint: Option<CounterResetHint>,
}

impl SeqValue {
    /// Whether this is a native histogram.
    pub fn is_histogram(&self) -> bool {
        matches!(self, SeqValue::Histogram(_))
    }
}

/// The counter-reset hint of a native histogram description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterResetHint {
    /// `unknown`
    Unknown,
    /// `reset`
    Reset,
    /// `not_reset`
    NotReset,
    /// `gauge`
    Gauge,
}

/// A native histogram as written between `{{` and `}}`; absent keys keep their defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramDesc {
    /// Resolution (−4…8), or −53 for custom buckets.
    pub schema: i32,
    /// Sum of observations.
    pub sum: f64,
    /// Number of observations.
    pub count: f64,
    /// Count in the zero bucket.
    pub z_bucket: f64,
    /// Zero threshold (width of the zero bucket).
    pub z_bucket_w: f64,
    /// Positive bucket counts (absolute), from index `offset`.
    pub buckets: Vec<f64>,
    /// Index of the first positive bucket.
    pub offset: i32,
    /// Negative bucket counts (absolute), from index `n_offset`.
    pub n_buckets: Vec<f64>,
    /// Index of the first negative bucket.
    pub n_offset: i32,
    /// Upper bounds of custom buckets (schema −53); `+Inf` is implied.
    pub custom_values: Vec<f64>,
    /// `None` when the description does not spell the hint (then it is not compared).
    pub counter_reset_hint: Option<CounterResetHint>,
}

impl CounterResetHint {
    /// The model's hint.
    pub fn to_model(self) -> periscope_model::CounterResetHint {
        match self {
            CounterResetHint::Unknown => periscope_model::CounterResetHint::Unknown,
            CounterResetHint::Reset => periscope_model::CounterResetHint::CounterReset,
            CounterResetHint::NotReset => periscope_model::CounterResetHint::NotCounterReset,
            CounterResetHint::Gauge => periscope_model::CounterResetHint::Gauge,
        }
    }
}

impl HistogramDesc {
    /// The histogram described: one span per side.
    pub fn to_value(&self) -> HistValue {
        let span = |offset: i32, n: usize| {
            if n == 0 {
                Vec::new()
            } else {
                vec![BucketSpan { offset, length: n as u32 }]
            }
        };
        HistValue {
            h: FloatHistogram {
                counter_reset_hint: self.counter_reset_hint.map_or(Default::default(), CounterResetHint::to_model),
                schema: self.schema,
                zero_threshold: self.z_bucket_w,
                zero_count: self.z_bucket,
                count: self.count,
                sum: self.sum,
                positive_spans: span(self.offset, self.buckets.len()),
                negative_spans: span(self.n_offset, self.n_buckets.len()),
                positive_buckets: self.buckets.clone(),
                negative_buckets: self.n_buckets.clone(),
                custom_values: self.custom_values.clone(),
            },
            hint: self.counter_reset_hint,
        }
    }
}

/// Parses a Prometheus duration (`5m`, `1h30m`, `10s53ms`, `0`) into milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let bad = || format!("invalid duration {s:?}");
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut next_unit = 0; // index into UNITS of the largest unit still allowed
    let mut total: i64 = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
        let n: i64 = s[start..i].parse().map_err(|_| bad())?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[ustart..i];
        let pos = UNITS.iter().position(|(u, _)| *u == unit).ok_or_else(bad)?;
        if pos < next_unit {
            return Err(bad());
        }
        next_unit = pos + 1;
        total = n.checked_mul(UNITS[pos].1).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
    }
    Ok(total)
}

/// Parses a bare number line the way Go's `strconv.ParseInt(s, 0, 64)` and then
/// `strconv.ParseFloat(s, 64)` do (base prefixes, a leading `0` meaning octal, `Inf`, `NaN`).
pub fn parse_go_number(s: &str) -> Option<f64> {
    parse_go_int(s).map(|n| n as f64).or_else(|| parse_go_float(s))
}

fn underscores_ok(digits: &str, has_prefix: bool) -> bool {
    // Go: underscores only between digits, or between a base prefix and a digit.
    let b = digits.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'_' {
            let prev_ok = if i == 0 { has_prefix } else { b[i - 1].is_ascii_alphanumeric() };
            let next_ok = b.get(i + 1).is_some_and(|n| n.is_ascii_alphanumeric());
            if !prev_ok || !next_ok {
                return false;
            }
        }
    }
    true
}

fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d, true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d, true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d, true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..], true)
    } else {
        (10, lower.as_str(), false)
    };
    if digits.is_empty() || !underscores_ok(digits, prefixed) {
        return None;
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if clean.is_empty() || !clean.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i64::from_str_radix(&clean, radix).ok()?;
    Some(if neg { -v } else { v })
}

fn parse_go_float(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(if s.starts_with('-') { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    if lower == "nan" {
        // Go accepts no sign on NaN.
        return (body.len() == s.len()).then_some(f64::NAN);
    }
    if !body.bytes().all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-' | b'_')) {
        return None;
    }
    if !underscores_ok(body, false) {
        return None;
    }
    let clean: String = s.chars().filter(|&c| c != '_').collect();
    clean.parse().ok()
}

/// Reads a number at the start of a series item: optional sign, digits with `_` separators,
/// fraction, exponent, or the words `Inf`/`NaN` (any case). Returns the value and the rest.
pub fn parse_number_prefix(s: &str) -> Result<(f64, &str), String> {
    let b = s.as_bytes();
    let mut i = 0;
    let neg = match b.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    let sign = if neg { -1.0 } else { 1.0 };
    let word = |w: &str| s.get(i..i + w.len()).is_some_and(|x| x.eq_ignore_ascii_case(w));
    if word("inf") {
        return Ok((sign * f64::INFINITY, &s[i + 3..]));
    }
    if word("nan") {
        return Ok((f64::NAN, &s[i + 3..]));
    }
    let start = i;
    let mut digits = 0;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        digits += usize::from(b[i] != b'_');
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            digits += usize::from(b[i] != b'_');
            i += 1;
        }
    }
    if digits == 0 {
        return Err(format!("expected a number at {s:?}"));
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        let exp_start = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > exp_start {
            i = j;
        }
    }
    let text = &s[start..i];
    if !underscores_ok(text, false) || text.contains("._") || text.contains("_.") {
        return Err(format!("misplaced '_' in number {text:?}"));
    }
    let clean: String = text.chars().filter(|&c| c != '_').collect();
    let v: f64 = clean.parse().map_err(|_| format!("invalid number {text:?}"))?;
    Ok((sign * v, &s[i..]))
}

fn parse_count(s: &str) -> Result<usize, String> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("invalid repeat count {s:?}"));
    }
    s.parse().map_err(|_| format!("invalid repeat count {s:?}"))
}

/// Splits a value sequence into items at whitespace outside `{...}` and `[...]`.
pub fn split_items(s: &str) -> Result<Vec<&str>, String> {
    let mut items = Vec::new();
    let mut depth: i32 = 0;
    let mut start: Option<usize> = None;
    for (i, c) in s.char_indices() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("unbalanced {c:?} in {s:?}"));
                }
            }
            _ => {}
        }
        if c.is_whitespace() && depth == 0 {
            if let Some(st) = start.take() {
                items.push(&s[st..i]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if depth != 0 {
        return Err(format!("unclosed brace or bracket in {s:?}"));
    }
    if let Some(st) = start {
        items.push(&s[st..]);
    }
    Ok(items)
}

/// Expands one item (`_`, `_xN`, `v`, `vxN`, `v+dxN`, `v-dxN`, `stale`, `{{..}}`, `{{..}}xN`,
/// `{{A}}+{{B}}xN`, `{{A}}-{{B}}xN`) into its elements, appending to `out`.
///
/// `v+dxN` is computed by repeated addition, as Prometheus does, so values match bit for bit;
/// `{{A}}±{{B}}xN` by repeated histogram addition or subtraction.
pub fn expand_item(item: &str, out: &mut Vec<SeqValue>) -> Result<(), String> {
    if item == "_" {
        out.push(SeqValue::Omitted);
        return Ok(());
    }
    if let Some(n) = item.strip_prefix("_x") {
        let n = parse_count(n)?;
        out.extend(std::iter::repeat_n(SeqValue::Omitted, n));
        return Ok(());
    }
    if item.eq_ignore_ascii_case("stale") {
        out.push(SeqValue::Float(STALE_NAN));
        return Ok(());
    }
    if item.starts_with("{{") {
        let (a, rest) = parse_histogram_prefix(item)?;
        let a = a.to_value();
        if rest.is_empty() {
            out.push(SeqValue::Histogram(Box::new(a)));
        } else if let Some(n) = rest.strip_prefix('x') {
            let n = parse_count(n)?;
            out.extend(std::iter::repeat_n(SeqValue::Histogram(Box::new(a)), n + 1));
        } else if let Some(b) = rest.strip_prefix(['+', '-']) {
            let minus = rest.starts_with('-');
            let (inc, rest) = parse_histogram_prefix(b)?;
            let inc = inc.to_value().h;
            let n = rest.strip_prefix('x').ok_or_else(|| format!("expected 'x<count>' after {item:?}"))?;
            let n = parse_count(n)?;
            let mut cur = a;
            for i in 0..=n {
                out.push(SeqValue::Histogram(Box::new(cur.clone())));
                if i < n {
                    let next = if minus {
                        periscope_promql::nhist::sub(&cur.h, &inc)
                    } else {
                        periscope_promql::nhist::add(&cur.h, &inc)
                    };
                    cur.h = next.map_err(|e| format!("cannot combine histograms in {item:?}: {e:?}"))?;
                    cur.h.counter_reset_hint = cur.hint.map_or(Default::default(), CounterResetHint::to_model);
                }
            }
        } else {
            return Err(format!("unexpected {rest:?} after histogram"));
        }
        return Ok(());
    }
    let (v, rest) = parse_number_prefix(item)?;
    if rest.is_empty() {
        out.push(SeqValue::Float(v));
        return Ok(());
    }
    if let Some(n) = rest.strip_prefix('x') {
        let n = parse_count(n)?;
        out.extend(std::iter::repeat_n(SeqValue::Float(v), n + 1));
        return Ok(());
    }
    let neg = match rest.as_bytes()[0] {
        b'+' => false,
        b'-' => true,
        _ => return Err(format!("unexpected {rest:?} in item {item:?}")),
    };
    let (d, rest) = parse_number_prefix(&rest[1..])?;
    if rest.starts_with(['+', '-']) {
        return Err(format!("unexpected sign in item {item:?}"));
    }
    let n = rest.strip_prefix('x').ok_or_else(|| format!("expected 'x<count>' in item {item:?}"))?;
    let n = parse_count(n)?;
    let d = if neg { -d } else { d };
    let mut cur = v;
    out.reserve(n + 1);
    for _ in 0..=n {
        out.push(SeqValue::Float(cur));
        cur += d;
    }
    Ok(())
}

/// Expands a whole value sequence.
pub fn parse_values(s: &str) -> Result<Vec<SeqValue>, String> {
    let mut out = Vec::new();
    for item in split_items(s)? {
        expand_item(item, &mut out)?;
    }
    Ok(out)
}

/// Parses a native histogram `{{key:value ...}}` at the start of `s`; returns it and the rest.
pub fn parse_histogram_prefix(s: &str) -> Result<(HistogramDesc, &str), String> {
    let body = s.strip_prefix("{{").ok_or_else(|| format!("expected '{{{{' at {s:?}"))?;
    let end = body.find("}}").ok_or_else(|| format!("unclosed histogram in {s:?}"))?;
    let (content, rest) = (&body[..end], &body[end + 2..]);
    let mut h = HistogramDesc::default();
    let mut seen: Vec<&str> = Vec::new();
    let mut p = content.trim_start();
    while !p.is_empty() {
        let colon = p.find(':').ok_or_else(|| format!("expected 'key:value' in histogram at {p:?}"))?;
        let key = p[..colon].trim();
        p = p[colon + 1..].trim_start();
        let value;
        if let Some(list) = p.strip_prefix('[') {
            let close = list.find(']').ok_or_else(|| format!("unclosed '[' in histogram {content:?}"))?;
            value = &list[..close];
            p = &list[close + 1..];
        } else {
            let stop = p.find(char::is_whitespace).unwrap_or(p.len());
            value = &p[..stop];
            p = &p[stop..];
        }
        p = p.trim_start();
        if seen.contains(&key) {
            return Err(format!("duplicate key {key:?} in histogram"));
        }
        seen.push(key);
        let num = |v: &str| -> Result<f64, String> {
            match parse_number_prefix(v)? {
                (f, "") => Ok(f),
                _ => Err(format!("invalid number {v:?} for {key}")),
            }
        };
        let int =
            |v: &str| -> Result<i32, String> { v.parse().map_err(|_| format!("invalid integer {v:?} for {key}")) };
        let list = |v: &str| -> Result<Vec<f64>, String> { v.split_whitespace().map(num).collect() };
        match key {
            "schema" => h.schema = int(value)?,
            "sum" => h.sum = num(value)?,
            "count" => h.count = num(value)?,
            "z_bucket" => h.z_bucket = num(value)?,
            "z_bucket_w" => h.z_bucket_w = num(value)?,
            "offset" => h.offset = int(value)?,
            "n_offset" => h.n_offset = int(value)?,
            "buckets" => h.buckets = list(value)?,
            "n_buckets" => h.n_buckets = list(value)?,
            "custom_values" => h.custom_values = list(value)?,
            "counter_reset_hint" => {
                h.counter_reset_hint = Some(match value {
                    "unknown" => CounterResetHint::Unknown,
                    "reset" => CounterResetHint::Reset,
                    "not_reset" => CounterResetHint::NotReset,
                    "gauge" => CounterResetHint::Gauge,
                    _ => return Err(format!("invalid counter_reset_hint {value:?}")),
                })
            }
            _ => return Err(format!("unknown histogram key {key:?}")),
        }
    }
    Ok((h, rest))
}

/// Decodes the Go-style quoted string (`"..."`, `'...'` or `` `...` ``) at the start of `s`.
/// Returns the text and the number of bytes consumed.
pub fn unquote_prefix(s: &str) -> Result<(String, usize), String> {
    let mut chars = s.char_indices();
    let quote = match chars.next() {
        Some((_, q @ ('"' | '\'' | '`'))) => q,
        _ => return Err(format!("expected a quoted string at {s:?}")),
    };
    let mut out: Vec<u8> = Vec::new();
    let unterminated = || format!("unterminated string {s:?}");
    loop {
        let (i, c) = chars.next().ok_or_else(unterminated)?;
        if c == quote {
            let text = String::from_utf8(out).map_err(|_| format!("string {s:?} is not valid UTF-8"))?;
            return Ok((text, i + 1));
        }
        if quote == '`' || c != '\\' {
            if c == '\n' && quote != '`' {
                return Err(unterminated());
            }
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let (_, e) = chars.next().ok_or_else(unterminated)?;
        let mut hex = |n: usize| -> Result<u32, String> {
            let mut v = 0u32;
            for _ in 0..n {
                let (_, h) = chars.next().ok_or_else(unterminated)?;
                v = v * 16 + h.to_digit(16).ok_or_else(|| format!("invalid escape in {s:?}"))?;
            }
            Ok(v)
        };
        match e {
            'a' => out.push(7),
            'b' => out.push(8),
            'f' => out.push(12),
            'n' => out.push(b'\n'),
            'r' => out.push(b'\r'),
            't' => out.push(b'\t'),
            'v' => out.push(11),
            '\\' => out.push(b'\\'),
            q if q == quote => out.push(q as u8),
            'x' => out.push(hex(2)? as u8),
            'u' | 'U' => {
                let v = hex(if e == 'u' { 4 } else { 8 })?;
                let c = char::from_u32(v).ok_or_else(|| format!("invalid unicode escape in {s:?}"))?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    let (_, d) = chars.next().ok_or_else(unterminated)?;
                    v = v * 8 + d.to_digit(8).ok_or_else(|| format!("invalid octal escape in {s:?}"))?;
                }
                if v > 255 {
                    return Err(format!("octal escape out of range in {s:?}"));
                }
                out.push(v as u8);
            }
            _ => return Err(format!("unknown escape sequence \\{e} in {s:?}")),
        }
    }
}

/// Decodes a whole Go string literal (Go's `strconv.Unquote` for the forms the files use).
pub fn unquote(s: &str) -> Result<String, String> {
    let (text, n) = unquote_prefix(s)?;
    if n != s.len() {
        return Err(format!("unexpected text after string literal in {s:?}"));
    }
    Ok(text)
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Parses the label part of a series description (`name`, `name{...}`, `{...}`,
/// `{"utf8.name", a="b"}`) at the start of `s`; returns the labels and the rest.
pub fn parse_labels_prefix(s: &str) -> Result<(Labels, &str), String> {
    let b = s.as_bytes();
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    if b.first() != Some(&b'{') {
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'{' {
            i += 1;
        }
        let name = &s[..i];
        if !periscope_model::is_legacy_metric_name(name) {
            return Err(format!("invalid metric name {name:?}"));
        }
        pairs.push((METRIC_NAME.to_string(), name.to_string()));
    }
    if b.get(i) == Some(&b'{') {
        i += 1;
        loop {
            i = skip_ws(b, i);
            match b.get(i) {
                None => return Err(format!("unclosed '{{' in {s:?}")),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => {}
            }
            let (name, quoted) = if matches!(b[i], b'"' | b'\'' | b'`') {
                let (name, n) = unquote_prefix(&s[i..])?;
                i += n;
                (name, true)
            } else {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                if i == start || b[start].is_ascii_digit() {
                    return Err(format!("expected a label name at {:?}", &s[start..]));
                }
                (s[start..i].to_string(), false)
            };
            i = skip_ws(b, i);
            match b.get(i) {
                Some(b'=') if b.get(i + 1) != Some(&b'~') => {
                    i = skip_ws(b, i + 1);
                    let (value, n) = unquote_prefix(&s[i..])?;
                    i += n;
                    pairs.push((name, value));
                }
                Some(b',' | b'}') if quoted => pairs.push((METRIC_NAME.to_string(), name)),
                _ => return Err(format!("expected '=' after label name {name:?} in {s:?}")),
            }
            i = skip_ws(b, i);
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => {}
                _ => return Err(format!("expected ',' or '}}' in {s:?}")),
            }
        }
    }
    if i == 0 {
        return Err(format!("expected labels at {s:?}"));
    }
    let labels = Labels::from_pairs(pairs).map_err(|e| format!("{e} in {s:?}"))?;
    Ok((labels, &s[i..]))
}

/// Parses a series description: labels, whitespace, value sequence.
pub fn parse_series_desc(s: &str) -> Result<(Labels, Vec<SeqValue>), String> {
    let (labels, rest) = parse_labels_prefix(s.trim())?;
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return Err(format!("expected whitespace after labels at {rest:?}"));
    }
    Ok((labels, parse_values(rest)?))
}

/// Whether a load line is a start-timestamp line (`metric{...}@st  <offsets>`): its first
/// whitespace-separated token ends in `@st`.
pub fn is_st_line(line: &str) -> bool {
    line.split_whitespace().next().is_some_and(|t| t.ends_with("@st")) && line.contains(char::is_whitespace)
}

/// Parses a start-timestamp line; returns its labels (`None` for a standalone `@st` line that
/// sets defaults) and the number of elements of its offset sequence. The offsets themselves
/// are checked but not kept: Periscope has no start timestamps.
pub fn parse_st_line(line: &str) -> Result<(Option<Labels>, usize), String> {
    let line = line.trim();
    let split = line.find(char::is_whitespace).ok_or("invalid @st line: missing value sequence")?;
    let metric = line[..split].strip_suffix("@st").ok_or("invalid @st line")?;
    let mut count = 0;
    for item in line[split..].split_whitespace() {
        count += st_item_len(item).map_err(|e| format!("invalid @st item {item:?}: {e}"))?;
    }
    if metric.is_empty() {
        return Ok((None, count));
    }
    let (labels, rest) = parse_labels_prefix(metric)?;
    if !rest.is_empty() {
        return Err(format!("invalid @st line metric {metric:?}"));
    }
    Ok((Some(labels), count))
}

/// Number of elements of one start-timestamp item (`_`, `_xN`, `*`, `*xN`, `<dur>`,
/// `<dur>xN`, `<dur>±<dur>xN`; durations may be signed).
fn st_item_len(item: &str) -> Result<usize, String> {
    if item == "_" || item == "*" {
        return Ok(1);
    }
    if let Some(n) = item.strip_prefix("_x") {
        let n = parse_count(n)?;
        return if n == 0 { Err("invalid repeat count".into()) } else { Ok(n) };
    }
    if let Some(n) = item.strip_prefix("*x") {
        return Ok(parse_count(n)? + 1);
    }
    let rest = st_duration_prefix(item)?;
    if rest.is_empty() {
        return Ok(1);
    }
    if let Some(n) = rest.strip_prefix('x') {
        return Ok(parse_count(n)? + 1);
    }
    let step = rest.strip_prefix(['+', '-']).ok_or_else(|| format!("unexpected {rest:?} after duration"))?;
    let rest = st_duration_prefix(step)?;
    let n = rest.strip_prefix('x').ok_or("expected 'x<count>' after step duration")?;
    Ok(parse_count(n)? + 1)
}

/// Checks a signed duration at the start of `s` (letters up to an `x`); returns the rest.
fn st_duration_prefix(s: &str) -> Result<&str, String> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let b = body.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i == 0 {
        return Err(format!("expected digits in duration {s:?}"));
    }
    while i < b.len() && (b[i].is_ascii_alphanumeric()) && b[i] != b'x' {
        i += 1;
    }
    parse_duration(&body[..i])?;
    Ok(&body[i..])
}
