//! Trace ids found in log lines: a JSON object line or a logfmt line with a field named as
//! one of the configured names (by default `trace_id`, `traceId`, `traceID`, as Zap, slog
//! and logrus write them when bridged to OpenTelemetry) whose value is 32 hex digits becomes
//! the entry's `trace_id` structured metadata (lower case), unless it has one already.

use periscope_model::{LogBatch, TRACE_ID_METADATA};

/// The field names looked for by default.
pub const DEFAULT_TRACE_ID_FIELDS: [&str; 3] = ["trace_id", "traceId", "traceID"];

fn hex32(v: &str) -> Option<String> {
    (v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()) && v.bytes().any(|b| b != b'0'))
        .then(|| v.to_ascii_lowercase())
}

/// The trace id a line carries in one of the `names` fields. Allocates only the id found.
pub fn find_trace_id(line: &str, names: &[String]) -> Option<String> {
    let t = line.trim_start();
    let json = t.starts_with('{');
    for name in names.iter().filter(|n| !n.is_empty()) {
        let mut from = 0;
        while let Some(i) = t[from..].find(name.as_str()) {
            let at = from + i;
            let after = &t[at + name.len()..];
            from = at + name.len();
            let found = if json {
                // `"name"` then `:` then a string value, anywhere in the object (a nested
                // field of the same name may match too; values are checked to be ids).
                let quoted = at > 0 && t.as_bytes()[at - 1] == b'"';
                let v = after
                    .strip_prefix('"')
                    .filter(|_| quoted)
                    .and_then(|r| r.trim_start().strip_prefix(':'))
                    .and_then(|r| r.trim_start().strip_prefix('"'));
                v.and_then(|v| v.get(..32).filter(|_| v[32..].starts_with('"')).and_then(hex32))
            } else {
                // logfmt: `name=value` or `name="value"` at a token boundary.
                let boundary = at == 0 || t.as_bytes()[at - 1] == b' ';
                after.strip_prefix('=').filter(|_| boundary).and_then(|v| {
                    let v = v.strip_prefix('"').unwrap_or(v);
                    hex32(&v[..v.find([' ', '"']).unwrap_or(v.len())])
                })
            };
            if found.is_some() {
                return found;
            }
        }
    }
    None
}

/// Adds `trace_id` metadata to the entries whose lines carry one and that have none.
/// Returns how many entries got one.
pub fn fill_trace_ids(batch: &mut LogBatch, names: &[String]) -> usize {
    let mut n = 0;
    for s in &mut batch.streams {
        for e in &mut s.entries {
            if e.metadata(TRACE_ID_METADATA).is_none() {
                if let Some(id) = find_trace_id(&e.line, names) {
                    e.metadata.push((TRACE_ID_METADATA.to_string(), id));
                    n += 1;
                }
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        DEFAULT_TRACE_ID_FIELDS.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn json_and_logfmt_lines() {
        let id = "0af7651916cd43dd8448eb211c80319c";
        for line in [
            format!(r#"{{"level":"info","msg":"ok","trace_id":"{id}"}}"#),
            format!(r#"{{"traceId" : "{}", "n": 1}}"#, id.to_uppercase()),
            format!(r#"{{"ctx":{{"traceID":"{id}"}}}}"#),
            format!("level=info msg=\"done\" trace_id={id} span_id=00f067aa0ba902b7"),
            format!("ts=1 traceID=\"{id}\""),
        ] {
            assert_eq!(find_trace_id(&line, &names()).as_deref(), Some(id), "{line}");
        }
        for line in [
            r#"{"trace_id":"xyz"}"#.to_string(),
            format!(r#"{{"trace_id":"{id}0"}}"#),
            format!("mytrace_id={id}"),
            "trace_id=00000000000000000000000000000000".to_string(),
            "plain text".to_string(),
            String::new(),
        ] {
            assert_eq!(find_trace_id(&line, &names()), None, "{line}");
        }
        assert_eq!(find_trace_id(&format!("tid={id}"), &["tid".to_string()]).as_deref(), Some(id));
        assert_eq!(find_trace_id(&format!("={id}"), &[String::new()]), None, "an empty name matches nothing");
    }
}
