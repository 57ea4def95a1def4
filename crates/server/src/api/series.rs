//! `/api/v1/series`, `/api/v1/labels`, `/api/v1/label/<name>/values` and `/api/v1/metadata`:
//! lookups straight on a querier, no engine.

use super::params::{parse_limit, unescape_name, Params, MAX_TIME_MS, MIN_TIME_MS};
use super::query::time_param;
use super::{blocking, json, success, tenant, PromError, TRUNCATED};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use periscope_model::{Labels, Matcher, TimeRange};
use periscope_promql::promql_parser::parser::Expr;
use periscope_promql::Engine;
use periscope_storage::SelectHints;
use std::collections::{BTreeMap, BTreeSet};

/// `GET|POST /api/v1/series`: `match[]` (one or more, required), `start`, `end`, `limit`.
/// The union of the series every selector selects, sorted by labels.
pub(super) async fn series(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, PromError> {
    let tenant = tenant(&headers)?;
    let matches = params.all("match[]");
    if matches.is_empty() {
        return Err(PromError::bad_data("no match[] parameter provided"));
    }
    let limit = parse_limit(params.get("limit")).map_err(|e| PromError::invalid_param("limit", e))?;
    let range = time_range(&params)?;
    let sets = parse_match_params(&matches).map_err(|e| PromError::invalid_param("match[]", e))?;
    let store = state.store.clone();
    let body = blocking(move || {
        let querier = store.querier(&tenant, range).map_err(|e| PromError::from_store(&e))?;
        let hints = SelectHints::labels(range);
        let mut all: BTreeSet<Labels> = BTreeSet::new();
        for set in &sets {
            for s in querier.select(set, &hints).map_err(|e| PromError::from_store(&e))? {
                all.insert(s.map_err(|e| PromError::from_store(&e))?.labels);
            }
        }
        let mut warnings = Vec::new();
        if limit > 0 && all.len() > limit {
            warnings.push(TRUNCATED.to_string());
        }
        let take = if limit > 0 { limit } else { usize::MAX };
        let mut data = String::with_capacity(2 + 64 * all.len().min(take));
        data.push('[');
        for (i, labels) in all.iter().take(take).enumerate() {
            if i > 0 {
                data.push(',');
            }
            json::write_labels(&mut data, labels);
        }
        data.push(']');
        Ok(json::success_body(&data, &warnings, &[]))
    })
    .await?;
    Ok(super::json_response(body))
}

/// `GET|POST /api/v1/labels`: `match[]` (optional), `start`, `end`, `limit`. Sorted names.
pub(super) async fn label_names(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, PromError> {
    let tenant = tenant(&headers)?;
    let limit = parse_limit(params.get("limit")).map_err(|e| PromError::invalid_param("limit", e))?;
    let range = time_range(&params)?;
    let sets = parse_match_params(&params.all("match[]")).map_err(|e| PromError::invalid_param("match[]", e))?;
    let store = state.store.clone();
    let names = blocking(move || {
        let querier = store.querier(&tenant, range).map_err(|e| PromError::from_store(&e))?;
        if sets.is_empty() {
            return querier.label_names(&[]).map_err(|e| PromError::from_store(&e));
        }
        let mut all = BTreeSet::new();
        for set in &sets {
            all.extend(querier.label_names(set).map_err(|e| PromError::from_store(&e))?);
        }
        Ok(all.into_iter().collect())
    })
    .await?;
    Ok(string_list(names, limit))
}

/// `GET /api/v1/label/<name>/values`: `match[]` (optional), `start`, `end`, `limit`. Sorted
/// values; `<name>` may be `U__`-escaped (Prometheus 3).
pub(super) async fn label_values(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, PromError> {
    let tenant = tenant(&headers)?;
    let name = unescape_name(&name);
    if name.is_empty() {
        return Err(PromError::bad_data(format!("invalid label name: {name:?}")));
    }
    let limit = parse_limit(params.get("limit")).map_err(|e| PromError::invalid_param("limit", e))?;
    let range = time_range(&params)?;
    let sets = parse_match_params(&params.all("match[]")).map_err(|e| PromError::invalid_param("match[]", e))?;
    let store = state.store.clone();
    let values = blocking(move || {
        let querier = store.querier(&tenant, range).map_err(|e| PromError::from_store(&e))?;
        if sets.is_empty() {
            return querier.label_values(&name, &[]).map_err(|e| PromError::from_store(&e));
        }
        let mut all = BTreeSet::new();
        for set in &sets {
            all.extend(querier.label_values(&name, set).map_err(|e| PromError::from_store(&e))?);
        }
        Ok(all.into_iter().collect())
    })
    .await?;
    Ok(string_list(values, limit))
}

/// `GET /api/v1/metadata`: `metric`, `limit` (metrics), `limit_per_metric`.
/// `{"<family>":[{"type":..,"help":..,"unit":..}]}`.
pub(super) async fn metadata(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, PromError> {
    let tenant = tenant(&headers)?;
    let number = |name: &str| -> Result<Option<i64>, PromError> {
        match params.get(name) {
            "" => Ok(None),
            s => s.parse().map(Some).map_err(|_| PromError::bad_data(format!("{name} must be a number"))),
        }
    };
    // Prometheus: a negative `limit` is no limit, 0 an empty answer; `limit_per_metric` only
    // applies when positive.
    let limit = number("limit")?.and_then(|n| usize::try_from(n).ok());
    let per_metric = number("limit_per_metric")?.and_then(|n| usize::try_from(n).ok()).filter(|n| *n > 0);
    let metric = params.get("metric").to_string();
    let store = state.store.clone();
    let all = blocking(move || {
        let metric = (!metric.is_empty()).then_some(metric.as_str());
        store.metadata(&tenant, metric).map_err(|e| PromError::from_store(&e))
    })
    .await?;
    let mut by_family: BTreeMap<&str, Vec<&periscope_model::MetricMetadata>> = BTreeMap::new();
    for m in &all {
        let entries = by_family.entry(&m.metric_family).or_default();
        let duplicate = entries.iter().any(|e| e.metric_type == m.metric_type && e.help == m.help && e.unit == m.unit);
        if !duplicate && per_metric.is_none_or(|n| entries.len() < n) {
            entries.push(m);
        }
    }
    let mut data = String::from("{");
    for (i, (family, entries)) in by_family.iter().take(limit.unwrap_or(usize::MAX)).enumerate() {
        if i > 0 {
            data.push(',');
        }
        json::write_str(&mut data, family);
        data.push_str(":[");
        for (j, m) in entries.iter().enumerate() {
            if j > 0 {
                data.push(',');
            }
            data.push_str("{\"type\":");
            json::write_str(&mut data, m.metric_type.as_str());
            data.push_str(",\"help\":");
            json::write_str(&mut data, &m.help);
            data.push_str(",\"unit\":");
            json::write_str(&mut data, &m.unit);
            data.push('}');
        }
        data.push(']');
    }
    data.push('}');
    Ok(success(&data, &[], &[]))
}

/// `start` and `end`, by default all time.
fn time_range(params: &Params) -> Result<TimeRange, PromError> {
    let start = time_param(params, "start", MIN_TIME_MS)?;
    let end = time_param(params, "end", MAX_TIME_MS)?;
    Ok(TimeRange::new(start, end))
}

/// A sorted list of strings as `data`, cut at `limit` with Prometheus's warning.
fn string_list(mut items: Vec<String>, limit: usize) -> Response {
    let mut warnings = Vec::new();
    if limit > 0 && items.len() > limit {
        items.truncate(limit);
        warnings.push(TRUNCATED.to_string());
    }
    let mut data = String::with_capacity(items.iter().map(|s| s.len() + 3).sum::<usize>() + 2);
    json::write_str_array(&mut data, &items);
    success(&data, &warnings, &[])
}

/// Parses `match[]` values as Prometheus's `parseMatchersParam`: each must be a series
/// selector; `{a="1" or b="2"}` gives one matcher set per alternative; every set must have a
/// matcher that does not match the empty string.
pub(super) fn parse_match_params(values: &[&str]) -> Result<Vec<Vec<Matcher>>, String> {
    let mut sets = Vec::new();
    for v in values {
        let expr = Engine::parse(v).map_err(|e| e.to_string())?;
        let Expr::VectorSelector(vs) = expr else {
            return Err(format!("{v:?} is not a series selector"));
        };
        sets.extend(periscope_promql::selector_matchers(&vs).map_err(|e| match e {
            // Prometheus words this one for match[].
            periscope_promql::QueryError::Parse(m) if m.contains("non-empty matcher") => {
                "match[] must contain at least one non-empty matcher".to_string()
            }
            other => other.to_string(),
        })?);
    }
    Ok(sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_params() {
        let sets = parse_match_params(&["up", r#"{__name__=~"a.*", job!="x"}"#, r#"{a="1" or b=~"2|3"}"#]).unwrap();
        let shown: Vec<String> = sets.iter().map(|s| format!("{s:?}")).collect();
        assert_eq!(shown.len(), 4, "{shown:?}");
        assert!(shown[0].contains(r#"__name__="up""#), "{shown:?}");
        assert!(shown[1].contains(r#"job!="x""#), "{shown:?}");
        assert!(shown[3].contains(r#"b=~"2|3""#), "{shown:?}");
        assert_eq!(parse_match_params(&["up + 1"]).unwrap_err(), r#""up + 1" is not a series selector"#);
        assert!(parse_match_params(&["{"]).is_err());
        assert!(parse_match_params(&[r#"{job=~".*"}"#]).is_err());
    }
}
