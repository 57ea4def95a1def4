//! Handler tests: the whole router over a small in-memory store, checking answers byte for
//! byte where Prometheus's shape matters.

use super::status::{ActiveTarget, DroppedTarget, TargetsSnapshot};
use super::{CancelOnDrop, PromError};
use crate::AppState;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use periscope_config::Config;
use periscope_model::{Labels, Matcher, MetricBatch, MetricMetadata, MetricType, Sample, TenantId, TimeRange};
use periscope_promql::{CancelToken, QueryError};
use periscope_storage::{
    AppendReport, Appendable, MetricStore, Querier, Queryable, SampleIterator, SelectHints, Series, SeriesSet,
    StoreError, VecSamples,
};
use std::sync::Arc;
use std::time::Duration;

/// Series of every tenant, kept in memory; selects scan them all.
#[derive(Default)]
struct MemStore {
    series: Vec<(TenantId, Labels, Vec<Sample>)>,
    metadata: Vec<MetricMetadata>,
}

impl MemStore {
    fn add(&mut self, tenant: &str, pairs: &[(&str, &str)], samples: &[(i64, f64)]) {
        let labels = Labels::from_pairs(pairs.iter().copied()).unwrap();
        let samples = samples.iter().map(|&(t, v)| Sample::new(t, v)).collect();
        self.series.push((TenantId::new(tenant).unwrap(), labels, samples));
    }
}

struct MemQuerier {
    series: Vec<(Labels, Vec<Sample>)>,
}

fn matches(labels: &Labels, matchers: &[Matcher]) -> bool {
    matchers.iter().all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
}

impl Querier for MemQuerier {
    fn select(&self, matchers: &[Matcher], hints: &SelectHints) -> Result<SeriesSet, StoreError> {
        let range = hints.range;
        let mut out: Vec<Series> = self
            .series
            .iter()
            .filter(|(l, _)| matches(l, matchers))
            .map(|(l, s)| {
                let samples: Vec<Sample> = s.iter().copied().filter(|s| range.contains(s.t)).collect();
                let it: Box<dyn SampleIterator> = Box::new(VecSamples::new(samples));
                Series { labels: l.clone(), samples: it, histograms: periscope_storage::no_histograms() }
            })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(Box::new(out.into_iter().map(Ok)))
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = self
            .series
            .iter()
            .filter(|(l, _)| matches(l, matchers))
            .flat_map(|(l, _)| l.iter().map(|l| l.name.clone()))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StoreError> {
        let mut values: Vec<String> = self
            .series
            .iter()
            .filter(|(l, _)| matches(l, matchers))
            .filter_map(|(l, _)| l.get(name).map(str::to_string))
            .collect();
        values.sort();
        values.dedup();
        Ok(values)
    }
}

impl Queryable for MemStore {
    fn querier(&self, tenant: &TenantId, range: TimeRange) -> Result<Box<dyn Querier>, StoreError> {
        let series = self
            .series
            .iter()
            .filter(|(t, _, s)| t == tenant && s.iter().any(|s| range.contains(s.t)))
            .map(|(_, l, s)| (l.clone(), s.clone()))
            .collect();
        Ok(Box::new(MemQuerier { series }))
    }

    fn metadata(&self, _tenant: &TenantId, metric: Option<&str>) -> Result<Vec<MetricMetadata>, StoreError> {
        Ok(self.metadata.iter().filter(|m| metric.is_none_or(|n| m.metric_family == n)).cloned().collect())
    }
}

impl Appendable for MemStore {
    fn append(&self, _tenant: &TenantId, _batch: &MetricBatch) -> Result<AppendReport, StoreError> {
        Err(StoreError::Invalid("read-only test store".into()))
    }
}

impl MetricStore for MemStore {
    fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn write_metrics(&self, _out: &mut String) {}
}

/// `up` (two targets, 1 and 0) and a counter every 15 s over 0..10m, plus metadata.
fn store() -> MemStore {
    let mut s = MemStore::default();
    let every = |f: &dyn Fn(i64) -> f64| -> Vec<(i64, f64)> { (0..=40).map(|i| (i * 15_000, f(i))).collect() };
    s.add("default", &[("__name__", "up"), ("job", "a"), ("instance", "1")], &every(&|_| 1.0));
    s.add("default", &[("__name__", "up"), ("job", "b")], &every(&|_| 0.0));
    s.add(
        "default",
        &[("__name__", "http_requests_total"), ("job", "a"), ("code", "200")],
        &every(&|i| i as f64 * 3.0),
    );
    s.add("team-b", &[("__name__", "up"), ("job", "other")], &every(&|_| 1.0));
    s.metadata.push(MetricMetadata {
        metric_family: "http_requests_total".into(),
        metric_type: MetricType::Counter,
        help: "Requests \"served\".".into(),
        unit: String::new(),
    });
    s.metadata.push(MetricMetadata {
        metric_family: "up".into(),
        metric_type: MetricType::Gauge,
        help: "Up.".into(),
        unit: String::new(),
    });
    s
}

fn state_with(store: MemStore, config: Config) -> AppState {
    AppState::new(Arc::new(store), Arc::new(config))
}

fn state() -> AppState {
    state_with(store(), Config::default())
}

/// Sends one request through the whole router: status and body.
async fn send(state: &AppState, req: Request<Body>) -> (StatusCode, String) {
    let mut router = crate::router(state.clone());
    let resp = tower_service::Service::call(&mut router, req).await.unwrap();
    let status = resp.status();
    if status != StatusCode::NOT_FOUND {
        let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
        assert_eq!(ct.as_deref(), Some("application/json"));
    }
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

async fn get(state: &AppState, uri: &str) -> (StatusCode, String) {
    send(state, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn post_form(state: &AppState, uri: &str, body: &str) -> (StatusCode, String) {
    let req = Request::post(uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body.to_string()))
        .unwrap();
    send(state, req).await
}

#[track_caller]
fn bad_data(got: (StatusCode, String), message: &str) {
    assert_eq!(got.0, StatusCode::BAD_REQUEST, "{}", got.1);
    let want = serde_json::json!({"status": "error", "errorType": "bad_data", "error": message});
    assert_eq!(serde_json::from_str::<serde_json::Value>(&got.1).unwrap(), want);
}

#[tokio::test]
async fn instant_query_vector_shape() {
    let s = state();
    let (status, body) = get(&s, "/api/v1/query?query=up&time=300").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","instance":"1","job":"a"},"value":[300,"1"]},{"metric":{"__name__":"up","job":"b"},"value":[300,"0"]}]}}"#
    );
    // POST form body, RFC 3339 time with a fraction, tenant header.
    let req = Request::post("/api/v1/query")
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
        .header("X-Scope-OrgID", "team-b")
        .body(Body::from("query=up&time=1970-01-01T00%3A05%3A00.5Z"))
        .unwrap();
    let (status, body) = send(&s, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"other"},"value":[300.500,"1"]}]}}"#
    );
    // The body wins over the query string, as Go's FormValue.
    let (_, body) = post_form(&s, "/api/v1/query?query=nope&time=300", "query=1%2B1").await;
    assert_eq!(body, r#"{"status":"success","data":{"resultType":"scalar","result":[300,"2"]}}"#);
    let (_, body) = get(&s, "/api/v1/query?query=%22hi%22&time=300").await;
    assert_eq!(body, r#"{"status":"success","data":{"resultType":"string","result":[300,"hi"]}}"#);
    // A range selector at the top gives a matrix.
    let (_, body) = get(&s, "/api/v1/query?query=up%7Bjob%3D%22b%22%7D%5B30s%5D&time=30").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"b"},"values":[[15,"0"],[30,"0"]]}]}}"#
    );
}

#[tokio::test]
async fn lookback_delta_and_timeout_parameters() {
    let s = state();
    // The data ends at 600 s: 400 s later it is outside the default 5m lookback.
    let (_, body) = get(&s, "/api/v1/query?query=up&time=1000").await;
    assert_eq!(body, r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#);
    let (status, body) = get(&s, "/api/v1/query?query=count(up)&time=1000&lookback_delta=10m&timeout=30s").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1000,"2"]}]}}"#
    );
    bad_data(
        get(&s, "/api/v1/query?query=up&lookback_delta=x").await,
        r#"error parsing lookback delta duration: cannot parse "x" to a valid duration"#,
    );
}

#[tokio::test]
async fn instant_query_limit_truncates_with_a_warning() {
    let (status, body) = get(&state(), "/api/v1/query?query=up&time=300&limit=1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","instance":"1","job":"a"},"value":[300,"1"]}]},"warnings":["results truncated due to limit"]}"#
    );
}

#[tokio::test]
async fn range_query_matrix_shape() {
    let s = state();
    let (status, body) =
        get(&s, "/api/v1/query_range?query=sum+by+(job)+(http_requests_total)&start=60&end=120&step=30s").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"job":"a"},"values":[[60,"12"],[90,"18"],[120,"24"]]}]}}"#
    );
    let (status, body) =
        post_form(&s, "/api/v1/query_range", "query=up%7Bjob%3D%22a%22%7D&start=0&end=1&step=0.5").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","instance":"1","job":"a"},"values":[[0,"1"],[0.500,"1"],[1,"1"]]}]}}"#
    );
}

#[tokio::test]
async fn bad_parameters_are_bad_data_with_prometheus_messages() {
    let s = state();
    bad_data(
        get(&s, "/api/v1/query_range?query=up&end=1&step=1").await,
        r#"invalid parameter "start": cannot parse "" to a valid timestamp"#,
    );
    bad_data(
        get(&s, "/api/v1/query_range?query=up&start=x&end=1&step=1").await,
        r#"invalid parameter "start": cannot parse "x" to a valid timestamp"#,
    );
    bad_data(
        get(&s, "/api/v1/query_range?query=up&start=10&end=1&step=1").await,
        "end timestamp must not be before start time",
    );
    bad_data(
        get(&s, "/api/v1/query_range?query=up&start=0&end=1&step=abc").await,
        r#"invalid parameter "step": cannot parse "abc" to a valid duration"#,
    );
    bad_data(
        get(&s, "/api/v1/query_range?query=up&start=0&end=1&step=0").await,
        "zero or negative query resolution step widths are not accepted. Try a positive integer",
    );
    bad_data(
        get(&s, "/api/v1/query_range?query=up&start=0&end=11001&step=1").await,
        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
    );
    // 11 000 points exactly is fine.
    assert_eq!(get(&s, "/api/v1/query_range?query=1&start=0&end=11000&step=1").await.0, StatusCode::OK);
    bad_data(
        get(&s, "/api/v1/query_range?query=up%5B5m%5D&start=0&end=1&step=1").await,
        r#"invalid parameter "query": invalid expression type "range vector" for range query, must be Scalar or instant Vector"#,
    );
    bad_data(
        get(&s, "/api/v1/query_range?query=up&start=0&end=1&step=1&timeout=soon").await,
        r#"invalid parameter "timeout": cannot parse "soon" to a valid duration"#,
    );
    bad_data(
        get(&s, "/api/v1/query?query=up&time=x").await,
        r#"invalid parameter "time": invalid time value for 'time': cannot parse "x" to a valid timestamp"#,
    );
    bad_data(
        get(&s, "/api/v1/query?query=up&limit=-1").await,
        r#"invalid parameter "limit": limit must be non-negative"#,
    );
    let (status, body) = get(&s, "/api/v1/query?query=sum(").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["errorType"], "bad_data");
    assert!(v["error"].as_str().unwrap().starts_with("invalid parameter \"query\": "), "{body}");
    let (status, body) = get(&s, "/api/v1/query?query=up").await;
    assert_eq!(status, StatusCode::OK, "absent time is now: {body}");
    let req = Request::get("/api/v1/query?query=up").header("X-Scope-OrgID", "a b").body(Body::empty()).unwrap();
    assert_eq!(send(&s, req).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn execution_errors_are_422() {
    let mut config = Config::default();
    config.query.max_samples = 5;
    let s = state_with(store(), config);
    let (status, body) = get(&s, "/api/v1/query?query=up%5B10m%5D&time=600").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "error");
    assert_eq!(v["errorType"], "execution");
    assert!(v["error"].as_str().unwrap().contains("too many samples"), "{body}");
}

#[tokio::test]
async fn more_series_than_query_max_series_is_422() {
    let mut config = Config::default();
    config.query.max_series = 1;
    let s = state_with(store(), config);
    let (status, body) = get(&s, "/api/v1/query?query=up&time=600").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("more than the limit of 1 (query.max_series)"), "{body}");
    let (status, body) = get(&s, "/api/v1/query?query=sum(up)&time=600").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[test]
fn query_errors_map_to_prometheus_statuses() {
    for (e, status, typ) in [
        (QueryError::BadData("x".into()), 400, "bad_data"),
        (QueryError::Execution("x".into()), 422, "execution"),
        (QueryError::Timeout("x"), 503, "timeout"),
        (QueryError::Canceled("x"), 499, "canceled"),
        (QueryError::Storage(StoreError::Unavailable("x".into())), 503, "unavailable"),
        (QueryError::Storage(StoreError::internal("x", std::io::Error::other("disk"))), 500, "internal"),
    ] {
        let p = PromError::from_query(&e);
        assert_eq!((p.status.as_u16(), p.error_type), (status, typ), "{e:?}");
    }
}

#[test]
fn dropping_the_guard_cancels_the_query() {
    let token = CancelToken::new();
    let guard = CancelOnDrop(token.clone());
    assert!(!token.is_canceled());
    drop(guard);
    assert!(token.is_canceled());
}

#[tokio::test]
async fn series_union_of_matchers() {
    let s = state();
    let (status, body) =
        get(&s, "/api/v1/series?match[]=up&match%5B%5D=http_requests_total&match[]=up%7Bjob%3D%22b%22%7D").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        r#"{"status":"success","data":[{"__name__":"http_requests_total","code":"200","job":"a"},{"__name__":"up","instance":"1","job":"a"},{"__name__":"up","job":"b"}]}"#
    );
    let (_, body) = post_form(&s, "/api/v1/series", "match[]=up&start=0&end=60&limit=1").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":[{"__name__":"up","instance":"1","job":"a"}],"warnings":["results truncated due to limit"]}"#
    );
    // Outside the data's time range: nothing.
    let (_, body) = get(&s, "/api/v1/series?match[]=up&start=100000&end=200000").await;
    assert_eq!(body, r#"{"status":"success","data":[]}"#);
    bad_data(get(&s, "/api/v1/series").await, "no match[] parameter provided");
    // A selector that would select everything.
    let (status, body) = get(&s, "/api/v1/series?match[]=%7Bjob%3D~%22.*%22%7D").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.starts_with(r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"match[]\": "#),
        "{body}"
    );
    let (status, body) = get(&s, "/api/v1/series?match[]=up%2B1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains(r#"invalid parameter \"match[]\": \"up+1\" is not a series selector"#), "{body}");
}

#[tokio::test]
async fn label_names_and_values() {
    let s = state();
    let (_, body) = get(&s, "/api/v1/labels").await;
    assert_eq!(body, r#"{"status":"success","data":["__name__","code","instance","job"]}"#);
    let (_, body) = post_form(&s, "/api/v1/labels", "match[]=up").await;
    assert_eq!(body, r#"{"status":"success","data":["__name__","instance","job"]}"#);
    let (_, body) = get(&s, "/api/v1/labels?limit=2").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":["__name__","code"],"warnings":["results truncated due to limit"]}"#
    );
    let (_, body) = get(&s, "/api/v1/label/job/values").await;
    assert_eq!(body, r#"{"status":"success","data":["a","b"]}"#);
    let (_, body) = get(&s, "/api/v1/label/__name__/values?match[]=%7Bjob%3D%22a%22%7D").await;
    assert_eq!(body, r#"{"status":"success","data":["http_requests_total","up"]}"#);
    // Prometheus 3's U__ escaping of the name in the path.
    let (_, body) = get(&s, "/api/v1/label/U__j_6f_b/values?match[]=up&match[]=http_requests_total").await;
    assert_eq!(body, r#"{"status":"success","data":["a","b"]}"#);
    let req = Request::get("/api/v1/label/job/values").header("X-Scope-OrgID", "team-b").body(Body::empty()).unwrap();
    assert_eq!(send(&s, req).await.1, r#"{"status":"success","data":["other"]}"#);
    let (_, body) = get(&s, "/api/v1/label/nope/values").await;
    assert_eq!(body, r#"{"status":"success","data":[]}"#);
    bad_data(
        get(&s, "/api/v1/labels?start=yesterday").await,
        r#"invalid parameter "start": invalid time value for 'start': cannot parse "yesterday" to a valid timestamp"#,
    );
}

#[tokio::test]
async fn metadata_by_family() {
    let s = state();
    let (_, body) = get(&s, "/api/v1/metadata").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"http_requests_total":[{"type":"counter","help":"Requests \"served\".","unit":""}],"up":[{"type":"gauge","help":"Up.","unit":""}]}}"#
    );
    let (_, body) = get(&s, "/api/v1/metadata?metric=up").await;
    assert_eq!(body, r#"{"status":"success","data":{"up":[{"type":"gauge","help":"Up.","unit":""}]}}"#);
    let (_, body) = get(&s, "/api/v1/metadata?limit=1").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"http_requests_total":[{"type":"counter","help":"Requests \"served\".","unit":""}]}}"#
    );
    bad_data(get(&s, "/api/v1/metadata?limit=x").await, "limit must be a number");
}

#[tokio::test]
async fn exemplars_format_and_parse() {
    let s = state();
    let (_, body) = get(&s, "/api/v1/query_exemplars?query=up&start=0&end=10").await;
    assert_eq!(body, r#"{"status":"success","data":[]}"#);
    bad_data(
        get(&s, "/api/v1/query_exemplars?query=up&start=10&end=0").await,
        "end timestamp must not be before start timestamp",
    );
    let (_, body) = get(&s, "/api/v1/format_query?query=sum(rate(x%5B5m%5D))by(job)").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"], "sum by (job) (rate(x[5m]))");
    let (status, body) = get(&s, "/api/v1/parse_query?query=sum(rate(x%7Ba%3D%22b%22%7D%5B5m%5D))").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["type"], "aggregation");
    assert_eq!(v["data"]["op"], "sum");
    assert_eq!(v["data"]["expr"]["type"], "call");
    assert_eq!(v["data"]["expr"]["func"]["name"], "rate");
    assert_eq!(v["data"]["expr"]["args"][0]["type"], "matrixSelector");
    assert_eq!(v["data"]["expr"]["args"][0]["range"], 300_000);
    assert_eq!(v["data"]["expr"]["args"][0]["offset"], 0);
    assert_eq!(v["data"]["expr"]["args"][0]["name"], "x");
    assert_eq!(v["data"]["expr"]["func"]["returnType"], "vector");
    assert_eq!(
        v["data"]["expr"]["args"][0]["matchers"][0],
        serde_json::json!({"type": "=", "name": "a", "value": "b"})
    );
    assert_eq!(
        v["data"]["expr"]["args"][0]["matchers"][1],
        serde_json::json!({"type": "=", "name": "__name__", "value": "x"})
    );
    let v: serde_json::Value = serde_json::from_str(
        &get(&s, "/api/v1/parse_query?query=a+%2A+on(b)+group_left(c)+d+offset+1m+%40+start()").await.1,
    )
    .unwrap();
    assert_eq!(
        v["data"]["matching"],
        serde_json::json!({"card": "many-to-one", "labels": ["b"], "on": true, "include": ["c"]})
    );
    assert_eq!(v["data"]["rhs"]["offset"], 60_000);
    assert_eq!(v["data"]["rhs"]["startOrEnd"], "start");
    assert_eq!(get(&s, "/api/v1/parse_query?query=(").await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn status_pages() {
    let mut fresh = store();
    let now = super::now_ms();
    fresh.add("default", &[("__name__", "fresh"), ("job", "a")], &[(now - 1000, 1.0)]);
    fresh.add("default", &[("__name__", "fresh"), ("job", "b")], &[(now - 1000, 1.0)]);
    let s = state_with(fresh, Config::default());
    let json = |body: String| serde_json::from_str::<serde_json::Value>(&body).unwrap();
    let v = json(get(&s, "/api/v1/status/buildinfo").await.1);
    assert_eq!(v["data"]["version"], "3.0.0");
    assert_eq!(v["data"]["periscopeVersion"], env!("CARGO_PKG_VERSION"));
    let v = json(get(&s, "/api/v1/status/config").await.1);
    assert!(v["data"]["yaml"].as_str().unwrap().contains("lookback_delta: 5m"), "{v}");
    let v = json(get(&s, "/api/v1/status/flags").await.1);
    assert_eq!(v["data"]["query.lookback-delta"], "5m");
    assert_eq!(v["data"]["query.timeout"], "2m");
    assert_eq!(v["data"]["query.max-samples"], "50000000");
    assert_eq!(v["data"]["web.listen-address"], "127.0.0.1:9800");
    let v = json(get(&s, "/api/v1/status/runtimeinfo").await.1);
    assert!(v["data"]["startTime"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["data"]["storageRetention"], "15d");
    let v = json(get(&s, "/api/v1/status/tsdb?limit=1").await.1);
    assert_eq!(v["data"]["headStats"]["numSeries"], 2, "{v}");
    assert_eq!(v["data"]["seriesCountByMetricName"], serde_json::json!([{"name": "fresh", "value": 2}]));
    assert_eq!(v["data"]["labelValueCountByLabelName"], serde_json::json!([{"name": "job", "value": 2}]));
    bad_data(get(&s, "/api/v1/status/tsdb?limit=0").await, "limit must be a positive number");
}

#[tokio::test]
async fn targets_from_the_source() {
    let mut s = state();
    let (_, body) = get(&s, "/api/v1/targets").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"activeTargets":[],"droppedTargets":[],"droppedTargetCounts":{}}}"#
    );
    let labels = |pairs: &[(&str, &str)]| Labels::from_pairs(pairs.iter().copied()).unwrap();
    let snapshot = TargetsSnapshot {
        active: vec![ActiveTarget {
            scrape_pool: "node".into(),
            scrape_url: "http://n:9100/metrics".into(),
            discovered_labels: labels(&[("__address__", "n:9100")]),
            labels: labels(&[("instance", "n:9100"), ("job", "node")]),
            health: "up",
            last_error: String::new(),
            last_scrape: Some(std::time::UNIX_EPOCH + Duration::from_millis(1_435_781_451_781)),
            last_scrape_duration: Duration::from_millis(12),
            scrape_interval: Duration::from_secs(15),
            scrape_timeout: Duration::from_secs(10),
        }],
        dropped: vec![DroppedTarget {
            scrape_pool: "node".into(),
            discovered_labels: labels(&[("__address__", "x:1")]),
        }],
    };
    s.targets = Some(Arc::new(move || snapshot.clone()));
    let (_, body) = get(&s, "/api/v1/targets").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"activeTargets":[{"discoveredLabels":{"__address__":"n:9100"},"labels":{"instance":"n:9100","job":"node"},"scrapePool":"node","scrapeUrl":"http://n:9100/metrics","globalUrl":"http://n:9100/metrics","lastError":"","lastScrape":"2015-07-01T20:10:51.781Z","lastScrapeDuration":0.012,"health":"up","scrapeInterval":"15s","scrapeTimeout":"10s"}],"droppedTargets":[{"discoveredLabels":{"__address__":"x:1"},"scrapePool":"node"}],"droppedTargetCounts":{"node":1}}}"#
    );
    let v: serde_json::Value = serde_json::from_str(&get(&s, "/api/v1/targets?state=dropped").await.1).unwrap();
    assert_eq!(v["data"]["activeTargets"], serde_json::json!([]));
    assert_eq!(v["data"]["droppedTargets"].as_array().unwrap().len(), 1);
}
