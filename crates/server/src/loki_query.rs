//! Loki's query API over the log store: `/loki/api/v1/query_range` (log queries: streams),
//! `/loki/api/v1/query`, `/labels`, `/label/<name>/values`, `/series`. Times are nanosecond
//! integers, float seconds or RFC 3339, as Loki reads them; errors are plain text with `400`
//! as Loki answers them. Metric queries parse but are answered `400` until their evaluation
//! lands (`docs/STATUS.md`).

use crate::api::params::Params;
use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use periscope_logql::ast::Expr;
use periscope_logql::engine::{select_logs, LogParams};
use periscope_model::Matcher;
use periscope_storage::{Direction, LogStore, StreamEntries};
use serde_json::{json, Value};
use std::sync::Arc;

/// Most entries a query may ask for (Loki's `max_entries_limit_per_query`).
const MAX_ENTRIES: usize = 5000;
/// Longest range a query may cover (Loki's `max_query_length`, 721 h).
const MAX_QUERY_LENGTH_NS: i64 = 721 * 3_600_000_000_000;
/// Most series a metric query may return (Loki's `max_query_series`).
const MAX_QUERY_SERIES: usize = 500;

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError { status: StatusCode::BAD_REQUEST, reason: "bad_query", message: msg.into() }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// A time as Loki reads it: an integer of nanoseconds, float seconds, or RFC 3339.
pub(crate) fn parse_loki_time(s: &str) -> Result<i64, String> {
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    if s.contains('.') {
        if let Ok(f) = s.parse::<f64>() {
            return Ok((f * 1e9) as i64);
        }
    }
    crate::api::params::parse_time(s)
        .map(|ms| ms.saturating_mul(1_000_000))
        .map_err(|_| format!("cannot parse {s:?} to a valid timestamp"))
}

struct Range {
    start: i64,
    end: i64,
}

fn range(p: &Params) -> Result<Range, ApiError> {
    let end = match p.get("end") {
        "" => now_ns(),
        s => parse_loki_time(s).map_err(bad)?,
    };
    let start = match (p.get("start"), p.get("since")) {
        ("", "") => end - 3_600_000_000_000,
        ("", since) => end - crate::api::params::parse_duration(since).map_err(bad)? * 1_000_000,
        (s, _) => parse_loki_time(s).map_err(bad)?,
    };
    if end < start {
        return Err(bad("the end timestamp must not be before the start time"));
    }
    if end.saturating_sub(start) > MAX_QUERY_LENGTH_NS {
        return Err(bad(format!(
            "the query time range exceeds the limit (query length: {}h, limit: 721h)",
            end.saturating_sub(start) / 3_600_000_000_000
        )));
    }
    Ok(Range { start, end })
}

fn store(state: &AppState) -> Result<Arc<dyn LogStore>, ApiError> {
    state.logs.clone().ok_or_else(crate::loki::no_log_store)
}

fn streams_json(streams: &[StreamEntries]) -> Value {
    Value::Array(
        streams
            .iter()
            .map(|s| {
                let labels: serde_json::Map<String, Value> =
                    s.labels.iter().map(|l| (l.name.clone(), Value::String(l.value.clone()))).collect();
                let values: Vec<Value> = s.entries.iter().map(|e| json!([e.ts_ns.to_string(), e.line])).collect();
                json!({"stream": labels, "values": values})
            })
            .collect(),
    )
}

fn tenant(headers: &axum::http::HeaderMap) -> Result<periscope_model::TenantId, ApiError> {
    crate::state::tenant_of(headers)
}

/// `GET|POST /loki/api/v1/query_range`.
pub(crate) async fn query_range(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    p: Params,
) -> Result<Response, ApiError> {
    run(state, headers, p, true).await
}

/// `GET|POST /loki/api/v1/query`.
pub(crate) async fn query(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    p: Params,
) -> Result<Response, ApiError> {
    run(state, headers, p, false).await
}

async fn run(state: AppState, headers: axum::http::HeaderMap, p: Params, ranged: bool) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let store = store(&state)?;
    let tenant = tenant(&headers)?;
    let expr = periscope_logql::parse(p.get("query")).map_err(|e| bad(e.to_string()))?;
    let log = match expr {
        Expr::Log(l) if ranged => l,
        Expr::Log(_) => return Err(bad(
            "log queries are not supported as an instant query type, please change your query to a range query type",
        )),
        Expr::Metric(m) => return metric(&state, store, tenant, &p, m, ranged).await,
    };
    let r = range(&p)?;
    let limit = match p.get("limit") {
        "" => 100,
        s => match s.parse::<usize>() {
            Ok(n) if n <= MAX_ENTRIES => n,
            Ok(n) => {
                return Err(bad(format!(
                    "max entries limit per query exceeded, limit > max_entries_limit ({n} > {MAX_ENTRIES})"
                )))
            }
            Err(_) => return Err(bad(format!("invalid limit {s:?}"))),
        },
    };
    let direction = match p.get("direction").to_ascii_lowercase().as_str() {
        "" | "backward" => Direction::Backward,
        "forward" => Direction::Forward,
        other => return Err(bad(format!("invalid direction {other:?}: forward or backward"))),
    };
    // Loki's range is [start, end) for log queries.
    let params = LogParams { start_ns: r.start, end_ns: r.end, direction, limit };
    let streams = tokio::task::spawn_blocking(move || select_logs(store.as_ref(), &tenant, &log, params))
        .await
        .map_err(|e| ApiError::internal(format!("query task failed: {e}")))?
        .map_err(|e| bad(e.to_string()))?;
    let entries: usize = streams.iter().map(|s| s.entries.len()).sum();
    Ok(Json(json!({
        "status": "success",
        "data": {
            "resultType": "streams",
            "result": streams_json(&streams),
            "stats": {"summary": {"execTime": started.elapsed().as_secs_f64(), "totalEntriesReturned": entries}},
        }
    }))
    .into_response())
}

/// A metric query: a matrix over the range's steps, or a vector at `time`.
async fn metric(
    state: &AppState,
    store: Arc<dyn LogStore>,
    tenant: periscope_model::TenantId,
    p: &Params,
    expr: periscope_logql::ast::MetricExpr,
    ranged: bool,
) -> Result<Response, ApiError> {
    let (start, end, step) = if ranged {
        let r = range(p)?;
        // Loki's default step: a 250th of the range, at least a second.
        let step = match p.get("step") {
            "" => ((r.end - r.start) / 250 / 1_000_000_000).max(1) * 1_000_000_000,
            s => match s.parse::<f64>() {
                Ok(secs) => (secs * 1e9) as i64,
                Err(_) => crate::api::params::parse_duration(s).map_err(bad)? * 1_000_000,
            },
        };
        if step <= 0 {
            return Err(bad("zero or negative query resolution step widths are not accepted. Try a positive integer"));
        }
        if (r.end - r.start) / step > 11_000 {
            return Err(bad(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
            ));
        }
        (r.start, r.end, step)
    } else {
        let t = match p.get("time") {
            "" => now_ns(),
            s => parse_loki_time(s).map_err(bad)?,
        };
        (t, t, 1)
    };
    let mut opts = state.engine.options().clone();
    opts.max_series = MAX_QUERY_SERIES;
    let out = tokio::task::spawn_blocking(move || {
        let r = periscope_logql::metric::MetricRange { start, end, step, instant: !ranged };
        periscope_logql::metric::eval_metric(store.as_ref(), &tenant, &expr, r, &opts)
    })
    .await
    .map_err(|e| ApiError::internal(format!("query task failed: {e}")))?
    .map_err(|e| {
        let msg = e.to_string();
        if msg.contains("(query.max_series)") {
            bad(format!("maximum of series ({MAX_QUERY_SERIES}) reached for a single query"))
        } else {
            bad(msg)
        }
    })?;
    let mut data = String::new();
    crate::api::json::write_query_data(&mut data, &out.value);
    let body = crate::api::json::success_body(&data, &out.warnings, &out.infos);
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response())
}

fn selectors(p: &Params, name: &str) -> Result<Vec<Vec<Matcher>>, ApiError> {
    p.all(name).into_iter().map(|s| periscope_logql::parse_selector(s).map_err(|e| bad(e.to_string()))).collect()
}

/// The streams of `match[]` (or `query`) selectors in the request's range.
async fn streams_in(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    p: &Params,
) -> Result<Vec<periscope_model::Labels>, ApiError> {
    let store = store(state)?;
    let tenant = tenant(headers)?;
    let r = range(p)?;
    let mut sets = selectors(p, "match[]")?;
    if sets.is_empty() && !p.get("query").is_empty() {
        sets = selectors(p, "query")?;
    }
    if sets.is_empty() {
        sets.push(Vec::new());
    }
    let found = tokio::task::spawn_blocking(move || -> Result<Vec<periscope_model::Labels>, String> {
        let mut out = Vec::new();
        for m in sets {
            out.extend(store.log_streams(&tenant, &m, r.start, r.end).map_err(|e| e.to_string())?);
        }
        out.sort();
        out.dedup();
        Ok(out)
    })
    .await;
    found.map_err(|e| ApiError::internal(format!("task failed: {e}")))?.map_err(ApiError::internal)
}

/// `GET|POST /loki/api/v1/labels`.
pub(crate) async fn labels(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let streams = streams_in(&state, &headers, &p).await?;
    let mut names: Vec<String> = streams.iter().flat_map(|s| s.iter().map(|l| l.name.clone())).collect();
    names.sort();
    names.dedup();
    Ok(Json(json!({"status": "success", "data": names})))
}

/// `GET|POST /loki/api/v1/label/<name>/values`.
pub(crate) async fn label_values(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let streams = streams_in(&state, &headers, &p).await?;
    let mut values: Vec<String> = streams.iter().filter_map(|s| s.get(&name).map(str::to_owned)).collect();
    values.sort();
    values.dedup();
    Ok(Json(json!({"status": "success", "data": values})))
}

/// `GET|POST /loki/api/v1/series`.
pub(crate) async fn series(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let streams = streams_in(&state, &headers, &p).await?;
    let data: Vec<Value> = streams
        .iter()
        .map(|s| Value::Object(s.iter().map(|l| (l.name.clone(), Value::String(l.value.clone()))).collect()))
        .collect();
    Ok(Json(json!({"status": "success", "data": data})))
}

/// `GET /api/periscope/traces/<traceID>/logs`: every entry whose `trace_id` (structured
/// metadata, from OTLP or found in the line) is the trace's, across streams, oldest first.
/// The range is the trace's span times widened by `pad` (default 5 minutes) when the trace
/// store has it, else `start`/`end` (default the last hour). Each entry carries its stream
/// labels, metadata and span id.
pub(crate) async fn trace_logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let Some(tid) = periscope_model::parse_trace_id(&id) else {
        return Err(bad(format!("malformed trace id {id:?}: 32 hex digits")));
    };
    let hex = periscope_model::hex_id(&tid);
    let store = store(&state)?;
    let tenant = tenant(&headers)?;
    let pad = match p.get("pad") {
        "" => 300_000_000_000,
        s => crate::api::params::parse_duration(s).map_err(bad)? * 1_000_000,
    };
    let explicit = !p.get("start").is_empty() || !p.get("end").is_empty();
    let traces = state.traces.clone();
    let r = range(&p)?;
    let found = tokio::task::spawn_blocking(move || -> Result<Vec<Value>, String> {
        let (mut start, mut end) = (r.start, r.end);
        if !explicit {
            if let Some(t) = &traces {
                let spans = t.trace(&tenant, &tid).map_err(|e| e.to_string())?;
                if let (Some(a), Some(b)) =
                    (spans.iter().map(|s| s.start_ns).min(), spans.iter().map(|s| s.end_ns).max())
                {
                    (start, end) = (a.saturating_sub(pad), b.saturating_add(pad));
                }
            }
        }
        let q = periscope_storage::LogQuery {
            start_ns: start,
            end_ns: end,
            direction: Direction::Forward,
            trace_id: Some(hex.clone()),
            ..Default::default()
        };
        let mut out: Vec<(i64, Value)> = Vec::new();
        for s in store.select_logs(&tenant, &q).map_err(|e| e.to_string())? {
            let labels: serde_json::Map<String, Value> =
                s.labels.iter().map(|l| (l.name.clone(), Value::String(l.value.clone()))).collect();
            for e in s.entries {
                let meta: serde_json::Map<String, Value> =
                    e.metadata.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
                out.push((
                    e.ts_ns,
                    json!({
                        "timestamp": e.ts_ns.to_string(),
                        "line": e.line,
                        "labels": labels,
                        "metadata": meta,
                        "traceID": hex,
                        "spanID": e.metadata("span_id"),
                    }),
                ));
            }
        }
        out.sort_by_key(|x| x.0);
        Ok(out.into_iter().map(|x| x.1).collect())
    })
    .await
    .map_err(|e| ApiError::internal(format!("task failed: {e}")))?
    .map_err(ApiError::internal)?;
    Ok(Json(json!({"status": "success", "data": {"traceID": id.to_ascii_lowercase(), "entries": found}})))
}

/// Entries of the streams matching `query` in the request's range, per stream.
async fn selected(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    p: &Params,
) -> Result<Vec<StreamEntries>, ApiError> {
    let store = store(state)?;
    let tenant = tenant(headers)?;
    let r = range(p)?;
    let matchers = periscope_logql::parse_selector(p.get("query")).map_err(|e| bad(e.to_string()))?;
    let q = periscope_storage::LogQuery { matchers, start_ns: r.start, end_ns: r.end, ..Default::default() };
    tokio::task::spawn_blocking(move || store.select_logs(&tenant, &q))
        .await
        .map_err(|e| ApiError::internal(format!("task failed: {e}")))?
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// `GET|POST /loki/api/v1/index/stats`: streams, chunks, bytes and entries a selector covers
/// in the range (a chunk per stream while entries are in memory).
pub(crate) async fn index_stats(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let streams = selected(&state, &headers, &p).await?;
    let entries: usize = streams.iter().map(|s| s.entries.len()).sum();
    let bytes: usize = streams.iter().flat_map(|s| s.entries.iter().map(|e| e.line.len())).sum();
    Ok(Json(json!({"streams": streams.len(), "chunks": streams.len(), "bytes": bytes, "entries": entries})))
}

/// `GET|POST /loki/api/v1/index/volume`: bytes per stream (`aggregateBy=series`, default) or
/// per value of each label (`aggregateBy=labels`), optionally only `targetLabels`, largest
/// first, at most `limit` (100), as a vector at `end`.
pub(crate) async fn index_volume(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let streams = selected(&state, &headers, &p).await?;
    let end = range(&p)?.end;
    let limit = match p.get("limit") {
        "" => 100,
        s => s.parse::<usize>().map_err(|_| bad(format!("invalid limit {s:?}")))?,
    };
    let targets: Vec<&str> = p.get("targetLabels").split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    let by_labels = match p.get("aggregateBy") {
        "" | "series" => false,
        "labels" => true,
        other => return Err(bad(format!("invalid aggregateBy {other:?}: series or labels"))),
    };
    let mut volumes: std::collections::BTreeMap<Vec<(String, String)>, u64> = std::collections::BTreeMap::new();
    for s in &streams {
        let bytes: u64 = s.entries.iter().map(|e| e.line.len() as u64).sum();
        let keep = |name: &str| targets.is_empty() || targets.contains(&name);
        if by_labels {
            for l in s.labels.iter().filter(|l| keep(&l.name)) {
                *volumes.entry(vec![(l.name.clone(), l.value.clone())]).or_default() += bytes;
            }
        } else {
            let key: Vec<(String, String)> =
                s.labels.iter().filter(|l| keep(&l.name)).map(|l| (l.name.clone(), l.value.clone())).collect();
            *volumes.entry(key).or_default() += bytes;
        }
    }
    let mut sorted: Vec<(Vec<(String, String)>, u64)> = volumes.into_iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    sorted.truncate(limit);
    let t = end as f64 / 1e9;
    let result: Vec<Value> = sorted
        .into_iter()
        .map(|(labels, bytes)| {
            let metric: serde_json::Map<String, Value> =
                labels.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            json!({"metric": metric, "value": [t, bytes.to_string()]})
        })
        .collect();
    Ok(Json(json!({"status": "success", "data": {"resultType": "vector", "result": result}})))
}

/// What `detected_fields` saw of one field.
struct Seen {
    count: usize,
    values: std::collections::BTreeSet<String>,
    ty: &'static str,
    parser: &'static str,
}

/// `GET /loki/api/v1/detected_fields`: the fields the `json` (or else `logfmt`) parser finds in
/// the newest `line_limit` (1000) lines of a selector, with their type (`int`, `float`,
/// `boolean`, `duration`, `bytes`, `string`), distinct values and parser, most frequent
/// first, at most `limit` (1000) — Loki's answer shape.
pub(crate) async fn detected_fields(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let store = store(&state)?;
    let tenant = tenant(&headers)?;
    let r = range(&p)?;
    let matchers = periscope_logql::parse_selector(p.get("query")).map_err(|e| bad(e.to_string()))?;
    let num = |k: &str, d: usize| -> Result<usize, ApiError> {
        match p.get(k) {
            "" => Ok(d),
            s => s.parse().map_err(|_| bad(format!("invalid {k} {s:?}"))),
        }
    };
    let (line_limit, limit) = (num("line_limit", 1000)?, num("limit", 1000)?);
    let q = periscope_storage::LogQuery {
        matchers,
        start_ns: r.start,
        end_ns: r.end,
        direction: Direction::Backward,
        limit: line_limit,
        ..Default::default()
    };
    let streams = tokio::task::spawn_blocking(move || store.select_logs(&tenant, &q))
        .await
        .map_err(|e| ApiError::internal(format!("task failed: {e}")))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    // name → what was seen of it.
    let mut fields: std::collections::BTreeMap<String, Seen> = std::collections::BTreeMap::new();
    for s in &streams {
        for e in &s.entries {
            let (parser, found) = periscope_logql::pipeline::detect_fields(&e.line);
            for (k, v) in found {
                let ty = if v.parse::<i64>().is_ok() {
                    "int"
                } else if v.parse::<f64>().is_ok() {
                    "float"
                } else if v == "true" || v == "false" {
                    "boolean"
                } else if periscope_logql::pipeline::parse_go_duration(&v).is_some() {
                    "duration"
                } else if v.chars().any(|c| c.is_ascii_alphabetic())
                    && periscope_logql::pipeline::parse_bytes(&v).is_some()
                {
                    "bytes"
                } else {
                    "string"
                };
                let f = fields.entry(k).or_insert(Seen { count: 0, values: Default::default(), ty, parser });
                f.count += 1;
                if f.values.len() < 10_000 {
                    f.values.insert(v);
                }
                if f.ty != ty {
                    // Mixed kinds of values are strings.
                    f.ty = if matches!((f.ty, ty), ("int", "float") | ("float", "int")) { "float" } else { "string" };
                }
            }
        }
    }
    let mut list: Vec<(String, Seen)> = fields.into_iter().collect();
    list.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(&b.0)));
    list.truncate(limit);
    let out: Vec<Value> = list
        .into_iter()
        .map(|(label, f)| json!({"label": label, "type": f.ty, "cardinality": f.values.len(), "parsers": [f.parser]}))
        .collect();
    Ok(Json(json!({"fields": out, "limit": limit})))
}
