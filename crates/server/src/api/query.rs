//! `/api/v1/query`, `/api/v1/query_range`, `/api/v1/query_exemplars`, `/api/v1/format_query`
//! and `/api/v1/parse_query`, with Prometheus's parameter checks in Prometheus's order.

use super::params::{parse_duration, parse_limit, parse_time, Params, MAX_TIME_MS, MIN_TIME_MS};
use super::{blocking, json, now_ms, success, success_value, tenant, AsQueryable, CancelOnDrop, PromError, TRUNCATED};
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use periscope_promql::promql_parser::parser::value::ValueType;
use periscope_promql::promql_parser::parser::Expr;
use periscope_promql::{CancelToken, Engine, QueryError, QueryOutput, Value};
use periscope_storage::Queryable;
use serde_json::json;
use std::sync::Arc;

/// Most points a range query may return per series (Prometheus's fixed limit).
const MAX_POINTS_PER_SERIES: i128 = 11_000;

/// `GET|POST /api/v1/query`: `query`, `time` (default now), `timeout`, `limit`,
/// `lookback_delta`.
pub(super) async fn instant(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, PromError> {
    let tenant = tenant(&headers)?;
    let limit = parse_limit(params.get("limit")).map_err(|e| PromError::invalid_param("limit", e))?;
    let t = time_param(&params, "time", now_ms())?;
    let engine = engine_for(&state, &params)?;
    let text = params.get("query").to_string();
    let expr = Engine::parse(&text).map_err(|e| PromError::invalid_param("query", e))?;
    execute(&state, limit, move |store, cancel| engine.instant_with_source(store, &tenant, &expr, &text, t, cancel))
        .await
}

/// `GET|POST /api/v1/query_range`: `query`, `start`, `end`, `step`, `timeout`, `limit`,
/// `lookback_delta`.
pub(super) async fn range(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, PromError> {
    let tenant = tenant(&headers)?;
    let limit = parse_limit(params.get("limit")).map_err(|e| PromError::invalid_param("limit", e))?;
    let start = parse_time(params.get("start")).map_err(|e| PromError::invalid_param("start", e))?;
    let end = parse_time(params.get("end")).map_err(|e| PromError::invalid_param("end", e))?;
    if end < start {
        return Err(PromError::bad_data("end timestamp must not be before start time"));
    }
    let step = parse_duration(params.get("step")).map_err(|e| PromError::invalid_param("step", e))?;
    if step <= 0 {
        return Err(PromError::bad_data(
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    // Go's `end.Sub(start)` saturates at the longest `time.Duration`.
    let span_ns = ((i128::from(end) - i128::from(start)) * 1_000_000).min(i128::from(i64::MAX));
    if span_ns / i128::from(step) > MAX_POINTS_PER_SERIES {
        return Err(PromError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let engine = engine_for(&state, &params)?;
    let expr = Engine::parse(params.get("query")).map_err(|e| PromError::invalid_param("query", e))?;
    let vt = expr.value_type();
    if vt != ValueType::Vector && vt != ValueType::Scalar {
        return Err(PromError::invalid_param(
            "query",
            format!(
                "invalid expression type {:?} for range query, must be Scalar or instant Vector",
                documented_type(vt)
            ),
        ));
    }
    let step_ms = step / 1_000_000;
    let text = params.get("query").to_string();
    execute(&state, limit, move |store, cancel| {
        engine.range_with_source(store, &tenant, &expr, &text, start, end, step_ms, cancel)
    })
    .await
}

/// `GET|POST /api/v1/query_exemplars`: `query`, `start`, `end`. The exemplars of every series
/// any selector of the query selects, as Prometheus's `ExemplarQuerier` answers them.
pub(super) async fn exemplars(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, PromError> {
    let tenant = tenant(&headers)?;
    let start = time_param(&params, "start", MIN_TIME_MS)?;
    let end = time_param(&params, "end", MAX_TIME_MS)?;
    if end < start {
        return Err(PromError::bad_data("end timestamp must not be before start timestamp"));
    }
    let expr = Engine::parse(params.get("query")).map_err(|e| PromError::invalid_param("query", e))?;
    let groups = periscope_promql::expr_matcher_groups(&expr).map_err(|e| PromError::invalid_param("query", e))?;
    let store = state.store.clone();
    let body = blocking(move || {
        let found = store
            .exemplars(&tenant, periscope_model::TimeRange::new(start, end), &groups)
            .map_err(|e| PromError::from_store(&e))?;
        let mut data = String::from("[");
        for (i, s) in found.iter().enumerate() {
            if i > 0 {
                data.push(',');
            }
            data.push_str("{\"seriesLabels\":");
            json::write_labels(&mut data, &s.labels);
            data.push_str(",\"exemplars\":[");
            for (j, e) in s.exemplars.iter().enumerate() {
                if j > 0 {
                    data.push(',');
                }
                data.push_str("{\"labels\":");
                json::write_labels(&mut data, &e.labels);
                data.push_str(",\"value\":");
                json::write_float(&mut data, e.v);
                data.push_str(",\"timestamp\":");
                json::write_timestamp(&mut data, e.t);
                data.push('}');
            }
            data.push_str("]}");
        }
        data.push(']');
        Ok(json::success_body(&data, &[], &[]))
    })
    .await?;
    Ok(super::json_response(body))
}

/// `GET|POST /api/v1/format_query`: the query pretty-printed.
pub(super) async fn format(params: Params) -> Result<Response, PromError> {
    let expr = Engine::parse(params.get("query")).map_err(|e| PromError::invalid_param("query", e))?;
    let mut data = String::new();
    json::write_str(&mut data, &expr.prettify());
    Ok(success(&data, &[], &[]))
}

/// `GET|POST /api/v1/parse_query`: the query's syntax tree as JSON, in the shape of
/// Prometheus's `translateAST` for the node types and their main fields.
pub(super) async fn parse(params: Params) -> Result<Response, PromError> {
    let expr = Engine::parse(params.get("query")).map_err(|e| PromError::invalid_param("query", e))?;
    Ok(success_value(&ast_json(&expr)))
}

/// A time parameter with a default when absent, as Prometheus's `parseTimeParam` words its
/// errors.
pub(super) fn time_param(params: &Params, name: &str, default: i64) -> Result<i64, PromError> {
    match params.get(name) {
        "" => Ok(default),
        s => parse_time(s).map_err(|e| PromError::invalid_param(name, format!("invalid time value for '{name}': {e}"))),
    }
}

/// The engine for one request: the server's, with `timeout` (which may only shorten the
/// configured one) and `lookback_delta` applied.
fn engine_for(state: &AppState, params: &Params) -> Result<Arc<Engine>, PromError> {
    let timeout = match params.get("timeout") {
        "" => None,
        s => Some(parse_duration(s).map_err(|e| PromError::invalid_param("timeout", e))?),
    };
    let lookback = match params.get("lookback_delta") {
        "" => None,
        s => Some(
            parse_duration(s)
                .map_err(|e| PromError::bad_data(format!("error parsing lookback delta duration: {e}")))?,
        ),
    };
    if timeout.is_none() && lookback.is_none_or(|l| l / 1_000_000 <= 0) {
        return Ok(state.engine.clone());
    }
    let mut opts = state.engine.options().clone();
    if let Some(ns) = timeout {
        let t = std::time::Duration::from_nanos(u64::try_from(ns).unwrap_or(0));
        opts.timeout = opts.timeout.min(t);
    }
    if let Some(ms) = lookback.map(|ns| ns / 1_000_000).filter(|ms| *ms > 0) {
        opts.lookback_delta_ms = ms;
    }
    Ok(Arc::new(Engine::new(opts)))
}

/// Runs a query on a blocking thread, cancelled if the request is dropped, and renders the
/// answer there.
async fn execute<F>(state: &AppState, limit: usize, run: F) -> Result<Response, PromError>
where
    F: FnOnce(&dyn Queryable, &CancelToken) -> Result<QueryOutput, QueryError> + Send + 'static,
{
    let cancel = CancelToken::new();
    let _guard = CancelOnDrop(cancel.clone());
    let store = state.store.clone();
    let body = blocking(move || {
        let mut out = run(&AsQueryable(store.as_ref()), &cancel).map_err(|e| PromError::from_query(&e))?;
        if limit > 0 && truncate(&mut out.value, limit) {
            out.warnings.push(TRUNCATED.to_string());
        }
        let mut data = String::with_capacity(256);
        json::write_query_data(&mut data, &out.value);
        Ok(json::success_body(&data, &out.warnings, &out.infos))
    })
    .await?;
    Ok(super::json_response(body))
}

/// Keeps the first `limit` samples or series (Prometheus's `truncateResults`); whether any
/// were dropped.
fn truncate(value: &mut Value, limit: usize) -> bool {
    match value {
        Value::Vector(v) if v.len() > limit => v.truncate(limit),
        Value::Matrix(m) if m.len() > limit => m.truncate(limit),
        _ => return false,
    }
    true
}

/// The type names of Prometheus's `parser.DocumentedType`.
fn documented_type(vt: ValueType) -> &'static str {
    match vt {
        ValueType::Vector => "instant vector",
        ValueType::Matrix => "range vector",
        ValueType::Scalar => "scalar",
        ValueType::String => "string",
    }
}

/// The syntax tree as JSON in the shape of Prometheus's `translateAST`: every node has
/// `type` and its fields; durations and offsets in milliseconds, `@` times in milliseconds
/// (`timestamp`) or `startOrEnd`.
fn ast_json(expr: &Expr) -> serde_json::Value {
    use periscope_promql::promql_parser::parser::{AtModifier, LabelModifier, Offset, VectorMatchCardinality};
    let offset_ms = |o: &Option<Offset>| match o {
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
        None => 0,
    };
    let at = |a: &Option<AtModifier>| -> (serde_json::Value, serde_json::Value) {
        match a {
            Some(AtModifier::At(t)) => {
                let ms = match t.duration_since(std::time::UNIX_EPOCH) {
                    Ok(d) => d.as_millis() as i64,
                    Err(e) => -(e.duration().as_millis() as i64),
                };
                (json!(ms), serde_json::Value::Null)
            }
            Some(AtModifier::Start) => (serde_json::Value::Null, json!("start")),
            Some(AtModifier::End) => (serde_json::Value::Null, json!("end")),
            None => (serde_json::Value::Null, serde_json::Value::Null),
        }
    };
    let labels = |l: Option<&periscope_promql::promql_parser::label::Labels>| -> Vec<String> {
        l.map(|l| l.labels.clone()).unwrap_or_default()
    };
    let selector = |vs: &periscope_promql::promql_parser::parser::VectorSelector, kind: &str| {
        let mut matchers: Vec<serde_json::Value> = vs
            .matchers
            .matchers
            .iter()
            .map(|m| json!({"name": m.name, "value": m.value, "type": m.op.to_string()}))
            .collect();
        if let Some(name) = &vs.name {
            if !vs.matchers.matchers.iter().any(|m| m.name == periscope_model::METRIC_NAME) {
                matchers.push(json!({"name": periscope_model::METRIC_NAME, "value": name, "type": "="}));
            }
        }
        let (timestamp, start_or_end) = at(&vs.at);
        json!({
            "type": kind,
            "name": vs.name.clone().unwrap_or_default(),
            "offset": offset_ms(&vs.offset),
            "matchers": matchers,
            "timestamp": timestamp,
            "startOrEnd": start_or_end,
        })
    };
    let value_type = |vt: ValueType| vt.to_string();
    match expr {
        Expr::Aggregate(a) => json!({
            "type": "aggregation",
            "op": a.op.to_string(),
            "expr": ast_json(&a.expr),
            "param": a.param.as_deref().map(ast_json),
            "grouping": labels(a.modifier.as_ref().map(LabelModifier::labels)),
            "without": matches!(a.modifier, Some(LabelModifier::Exclude(_))),
        }),
        Expr::Unary(u) => json!({"type": "unaryExpr", "op": "-", "expr": ast_json(&u.expr)}),
        Expr::Binary(b) => {
            let both_vectors = b.lhs.value_type() == ValueType::Vector && b.rhs.value_type() == ValueType::Vector;
            let matching = b.modifier.as_ref().filter(|_| both_vectors).map(|m| {
                let card = match &m.card {
                    VectorMatchCardinality::OneToOne => "one-to-one",
                    VectorMatchCardinality::ManyToOne(_) => "many-to-one",
                    VectorMatchCardinality::OneToMany(_) => "one-to-many",
                    VectorMatchCardinality::ManyToMany => "many-to-many",
                };
                json!({
                    "card": card,
                    "labels": labels(m.matching.as_ref().map(LabelModifier::labels)),
                    "on": m.matching.as_ref().is_some_and(LabelModifier::is_include),
                    "include": labels(m.card.labels()),
                })
            });
            json!({
                "type": "binaryExpr",
                "op": b.op.to_string(),
                "lhs": ast_json(&b.lhs),
                "rhs": ast_json(&b.rhs),
                "matching": matching,
                "bool": b.modifier.as_ref().is_some_and(|m| m.return_bool),
            })
        }
        Expr::Paren(p) => json!({"type": "parenExpr", "expr": ast_json(&p.expr)}),
        Expr::Subquery(sq) => {
            let (timestamp, start_or_end) = at(&sq.at);
            json!({
                "type": "subquery",
                "expr": ast_json(&sq.expr),
                "range": sq.range.as_millis() as i64,
                "offset": offset_ms(&sq.offset),
                "step": sq.step.map(|d| d.as_millis() as i64).unwrap_or(0),
                "timestamp": timestamp,
                "startOrEnd": start_or_end,
            })
        }
        Expr::NumberLiteral(n) => {
            // Go's `FormatFloat(v, 'f', -1, 64)`: never an exponent.
            let val = if n.val.is_finite() {
                n.val.to_string()
            } else {
                let mut v = String::new();
                json::format_float_into(&mut v, n.val);
                v
            };
            json!({"type": "numberLiteral", "val": val})
        }
        Expr::StringLiteral(s) => json!({"type": "stringLiteral", "val": s.val}),
        Expr::VectorSelector(vs) => selector(vs, "vectorSelector"),
        Expr::MatrixSelector(ms) => {
            let mut v = selector(&ms.vs, "matrixSelector");
            v["range"] = json!(ms.range.as_millis() as i64);
            v
        }
        Expr::Call(c) => json!({
            "type": "call",
            "func": {
                "name": c.func.name,
                "argTypes": c.func.arg_types.iter().map(|t| value_type(*t)).collect::<Vec<_>>(),
                "variadic": c.func.variadic,
                "returnType": value_type(c.func.return_type),
            },
            "args": c.args.args.iter().map(|a| ast_json(a)).collect::<Vec<_>>(),
        }),
        Expr::Extension(_) => json!({"type": "extension"}),
    }
}
