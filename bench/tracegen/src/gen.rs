//! Realistic traces of a small Go shop: a frontend calling users, auth, cart, checkout,
//! payment, inventory and shipping over HTTP, with PostgreSQL and Redis client spans, the
//! attributes OpenTelemetry Go's instrumentations write, and one resource per service
//! instance. Trace `i` of seed `s` is the same on every run, so a query run can name the ids
//! a load run sent.

use periscope_ingest::otlp_metrics::model::{AnyValue, KeyValue, Resource, Scope};
use periscope_ingest::otlp_traces::{Event, ExportTraceRequest, ResourceSpans, ScopeSpans, Span, Status};

/// splitmix64: ids and draws from (seed, trace index).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64, i: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ i.wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ 0x94d0_49bb_1331_11eb)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn f64(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// A log-normal duration around `median_us`, in ns.
    fn duration(&mut self, median_us: f64) -> u64 {
        let (u1, u2) = (self.f64().max(1e-12), self.f64());
        let n = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        (median_us * (0.6 * n).exp() * 1000.0) as u64
    }
}

/// The trace id of trace `i`.
pub fn trace_id(seed: u64, i: u64) -> [u8; 16] {
    let mut r = Rng::new(seed, i);
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&r.next().to_be_bytes());
    id[8..].copy_from_slice(&r.next().to_be_bytes());
    id
}

pub const SERVICES: [&str; 8] = ["frontend", "users", "auth", "cart", "checkout", "payment", "inventory", "shipping"];
/// Instances (pods) per service.
const INSTANCES: u64 = 3;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue { key: k.into(), value: AnyValue::String(v.into()) }
}

fn kvi(k: &str, v: i64) -> KeyValue {
    KeyValue { key: k.into(), value: AnyValue::Int(v) }
}

/// The resource of a service instance, as OpenTelemetry Go's SDK fills it on Kubernetes.
pub fn resource(service: usize, instance: u64) -> Resource {
    let name = SERVICES[service];
    Resource {
        attributes: vec![
            kv("service.name", name),
            kv("service.namespace", "shop"),
            kv("service.version", &format!("1.{}.{}", service + 3, instance)),
            kv(
                "service.instance.id",
                &format!("{:08x}-7c1e-4b7e-9d1a-{:012x}", service * 7919 + 1, instance * 104_729),
            ),
            kv("host.name", &format!("node-{}", (service as u64 + instance) % 5)),
            kv("k8s.namespace.name", "shop"),
            kv("k8s.pod.name", &format!("{name}-7d9f8c6b5-{}", ["x2kqp", "m8zrt", "c4wlj"][instance as usize % 3])),
            kv("k8s.deployment.name", name),
            kv("telemetry.sdk.name", "opentelemetry"),
            kv("telemetry.sdk.language", "go"),
            kv("telemetry.sdk.version", "1.28.0"),
            kv("process.runtime.name", "go"),
            kv("process.runtime.version", "go1.22.5"),
            kvi("process.pid", 1),
        ],
    }
}

const HTTP_SCOPE: (&str, &str) = ("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", "0.53.0");
const PGX_SCOPE: (&str, &str) = ("github.com/exaring/otelpgx", "0.6.2");
const REDIS_SCOPE: (&str, &str) = ("github.com/redis/go-redis/extra/redisotel", "9.5.1");

/// A generated span with the service instance and scope that emit it.
pub struct GenSpan {
    pub service: usize,
    pub instance: u64,
    pub scope: (&'static str, &'static str),
    pub span: Span,
}

struct Builder<'a> {
    rng: &'a mut Rng,
    trace: [u8; 16],
    spans: Vec<GenSpan>,
    error: bool,
}

impl Builder<'_> {
    fn id(&mut self) -> Vec<u8> {
        self.rng.next().to_be_bytes().to_vec()
    }

    #[allow(clippy::too_many_arguments)]
    fn span(
        &mut self,
        service: usize,
        instance: u64,
        scope: (&'static str, &'static str),
        parent: &[u8],
        name: String,
        kind: i32,
        start: u64,
        dur: u64,
        attributes: Vec<KeyValue>,
    ) -> Vec<u8> {
        let id = self.id();
        self.spans.push(GenSpan {
            service,
            instance,
            scope,
            span: Span {
                trace_id: self.trace.to_vec(),
                span_id: id.clone(),
                parent_span_id: parent.to_vec(),
                flags: 0x101,
                name,
                kind,
                start_time_unix_nano: start,
                end_time_unix_nano: start + dur,
                attributes,
                ..Default::default()
            },
        });
        id
    }

    /// A client span in `from` and the server span it causes in `to`; returns the server
    /// span's id, start and the time left for its children.
    #[allow(clippy::too_many_arguments)]
    fn http_call(
        &mut self,
        from: (usize, u64),
        to: usize,
        parent: &[u8],
        method: &str,
        route: &str,
        path: &str,
        start: u64,
        dur: u64,
        status: i64,
    ) -> (Vec<u8>, u64, u64) {
        let to_inst = self.rng.below(INSTANCES);
        let host = format!("{}.shop.svc.cluster.local", SERVICES[to]);
        let client = self.span(
            from.0,
            from.1,
            HTTP_SCOPE,
            parent,
            format!("{method} {route}"),
            3,
            start,
            dur,
            vec![
                kv("http.request.method", method),
                kv("url.full", &format!("http://{host}:8080{path}")),
                kv("server.address", &host),
                kvi("server.port", 8080),
                kv("network.protocol.version", "1.1"),
                kvi("http.response.status_code", status),
            ],
        );
        let (s_start, s_dur) = (start + dur / 20, dur - dur / 10);
        let server = self.span(
            to,
            to_inst,
            HTTP_SCOPE,
            &client,
            format!("{method} {route}"),
            2,
            s_start,
            s_dur,
            vec![
                kv("http.request.method", method),
                kv("http.route", route),
                kv("url.path", path),
                kv("url.scheme", "http"),
                kv("server.address", &host),
                kvi("server.port", 8080),
                kv("network.peer.address", &format!("10.42.{}.{}", from.0, 10 + from.1)),
                kv("user_agent.original", "Go-http-client/1.1"),
                kv("network.protocol.version", "1.1"),
                kvi("http.response.status_code", status),
            ],
        );
        (server, s_start, s_dur)
    }

    fn db(&mut self, at: (usize, u64), parent: &[u8], start: u64, statement: &str, op: &str, table: &str) -> u64 {
        let dur = self.rng.duration(900.0);
        self.span(
            at.0,
            at.1,
            PGX_SCOPE,
            parent,
            format!("{op} shop.{table}"),
            3,
            start,
            dur,
            vec![
                kv("db.system", "postgresql"),
                kv("db.name", "shop"),
                kv("db.operation", op),
                kv("db.sql.table", table),
                kv("db.statement", statement),
                kv("server.address", "postgres.shop.svc.cluster.local"),
                kvi("server.port", 5432),
            ],
        );
        dur
    }

    fn redis(&mut self, at: (usize, u64), parent: &[u8], start: u64, cmd: &str, key: &str) -> u64 {
        let dur = self.rng.duration(180.0);
        self.span(
            at.0,
            at.1,
            REDIS_SCOPE,
            parent,
            cmd.to_lowercase(),
            3,
            start,
            dur,
            vec![
                kv("db.system", "redis"),
                kv("db.statement", &format!("{cmd} {key}")),
                kv("server.address", "redis.shop.svc.cluster.local"),
                kvi("server.port", 6379),
                kvi("db.redis.database_index", 0),
            ],
        );
        dur
    }
}

/// Trace `i`: its spans, in the order the services would export them.
pub fn trace(seed: u64, i: u64, start: u64) -> Vec<GenSpan> {
    let id = trace_id(seed, i);
    let mut rng = Rng::new(seed ^ 0x5eed, i);
    let error = rng.below(50) == 0;
    let mut b = Builder { rng: &mut rng, trace: id, spans: Vec::new(), error };
    let fe = (0usize, b.rng.below(INSTANCES));
    let user = b.rng.below(100_000);
    let kind = b.rng.below(10);
    let total = b.rng.duration(if kind < 5 { 12_000.0 } else { 45_000.0 });
    let (method, route, path) = match kind {
        0..=4 => ("GET", "/api/users/{id}", format!("/api/users/{user}")),
        5..=7 => ("GET", "/api/products", "/api/products".to_string()),
        _ => ("POST", "/api/checkout", "/api/checkout".to_string()),
    };
    let status = if b.error { 500 } else { 200 };
    let root = b.span(
        fe.0,
        fe.1,
        HTTP_SCOPE,
        &[],
        format!("{method} {route}"),
        2,
        start,
        total,
        vec![
            kv("http.request.method", method),
            kv("http.route", route),
            kv("url.path", &path),
            kv("url.scheme", "https"),
            kv("server.address", "shop.example.com"),
            kv("client.address", &format!("203.0.113.{}", user % 250)),
            kv("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"),
            kvi("http.response.status_code", status),
        ],
    );
    // Every request is authenticated first.
    let t = start + total / 50;
    let (auth, a_start, a_dur) = b.http_call(fe, 2, &root, "POST", "/v1/verify", "/v1/verify", t, total / 8, 200);
    let auth_inst = (2, b.spans.last().map_or(0, |s| s.instance));
    b.redis(auth_inst, &auth, a_start + a_dur / 10, "GET", &format!("session:{user:06}"));
    let mut t = t + total / 8 + total / 50;
    match kind {
        0..=4 => {
            let (srv, s_start, s_dur) =
                b.http_call(fe, 1, &root, "GET", "/users/{id}", &format!("/users/{user}"), t, total / 2, status);
            let at = (1, b.spans.last().map_or(0, |s| s.instance));
            let d = b.redis(at, &srv, s_start + s_dur / 20, "GET", &format!("user:{user}"));
            b.db(
                at,
                &srv,
                s_start + s_dur / 20 + d,
                &format!("SELECT id, name, email, created_at FROM users WHERE id = $1 /* {user} */"),
                "SELECT",
                "users",
            );
            if b.error {
                set_error(&mut b, "pq: canceling statement due to statement timeout");
            }
        }
        5..=7 => {
            let (srv, s_start, s_dur) =
                b.http_call(fe, 6, &root, "GET", "/products", "/products?limit=20", t, total * 2 / 3, status);
            let at = (6, b.spans.last().map_or(0, |s| s.instance));
            let n = 1 + b.rng.below(5);
            let mut tt = s_start + s_dur / 20;
            for q in 0..n {
                tt += b.db(at, &srv, tt, &format!("SELECT p.id, p.name, p.price, s.quantity FROM products p JOIN stock s ON s.product_id = p.id WHERE p.category_id = $1 ORDER BY p.name LIMIT 20 OFFSET {}", q * 20), "SELECT", "products");
            }
            if b.error {
                set_error(&mut b, "inventory: context deadline exceeded");
            }
        }
        _ => {
            let (co, c_start, c_dur) =
                b.http_call(fe, 4, &root, "POST", "/checkout", "/checkout", t, total * 3 / 4, status);
            let at = (4, b.spans.last().map_or(0, |s| s.instance));
            let step = c_dur / 6;
            let mut tt = c_start + step / 4;
            let (cart, cs, _) = b.http_call(at, 3, &co, "GET", "/cart/{user}", &format!("/cart/{user}"), tt, step, 200);
            let cart_at = (3, b.spans.last().map_or(0, |s| s.instance));
            b.redis(cart_at, &cart, cs + step / 10, "HGETALL", &format!("cart:{user}"));
            tt += step;
            let (inv, is, _) = b.http_call(at, 6, &co, "POST", "/reserve", "/reserve", tt, step, 200);
            let inv_at = (6, b.spans.last().map_or(0, |s| s.instance));
            b.db(
                inv_at,
                &inv,
                is + step / 10,
                "UPDATE stock SET quantity = quantity - $1 WHERE product_id = $2 AND quantity >= $1",
                "UPDATE",
                "stock",
            );
            tt += step;
            let (pay, ps, _) = b.http_call(at, 5, &co, "POST", "/charge", "/charge", tt, step * 2, status);
            let pay_at = (5, b.spans.last().map_or(0, |s| s.instance));
            b.db(
                pay_at,
                &pay,
                ps + step / 5,
                "INSERT INTO payments (order_id, amount, currency, status) VALUES ($1, $2, $3, $4)",
                "INSERT",
                "payments",
            );
            if b.error {
                set_error(&mut b, "payment: card declined by issuer");
            }
            tt += step * 2;
            b.http_call(at, 7, &co, "POST", "/shipments", "/shipments", tt, step, 200);
            t = tt;
            let _ = t;
        }
    }
    if b.error {
        if let Some(r) = b.spans.first_mut() {
            r.span.status = Status { code: 2, message: String::new() };
        }
    }
    b.spans
}

/// Marks the last server span failed with an exception event, as otelhttp and
/// `span.RecordError` write it.
fn set_error(b: &mut Builder<'_>, msg: &str) {
    let Some(s) = b.spans.iter_mut().rev().find(|s| s.span.kind == 2) else { return };
    s.span.status = Status { code: 2, message: msg.into() };
    let at = s.span.end_time_unix_nano - 1000;
    s.span.events.push(Event {
        time_unix_nano: at,
        name: "exception".into(),
        attributes: vec![
            kv("exception.type", "*errors.errorString"),
            kv("exception.message", msg),
            kv(
                "exception.stacktrace",
                "goroutine 1 [running]:\nmain.handler(0xc000112000)\n\t/src/shop/handler.go:142 +0x1d4\nnet/http.HandlerFunc.ServeHTTP(...)\n\t/usr/local/go/src/net/http/server.go:2171\ngo.opentelemetry.io/contrib/instrumentation/net/http/otelhttp.(*middleware).serveHTTP(...)\n\t/go/pkg/mod/go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp@v0.53.0/handler.go:218 +0x1202\n",
            ),
        ],
        dropped_attributes_count: 0,
    });
    b.error = true;
}

/// Per service instance, spans wait for their batch as in the SDK's batch span processor
/// (at most `batch` spans per export).
pub struct Batcher {
    pending: Vec<Vec<GenSpan>>,
    batch: usize,
}

impl Batcher {
    pub fn new(batch: usize) -> Batcher {
        Batcher { pending: (0..SERVICES.len() as u64 * INSTANCES).map(|_| Vec::new()).collect(), batch }
    }

    /// Adds a trace's spans; returns the exports that filled up.
    pub fn add(&mut self, spans: Vec<GenSpan>) -> Vec<(ExportTraceRequest, usize)> {
        let mut out = Vec::new();
        for s in spans {
            let k = s.service * INSTANCES as usize + s.instance as usize;
            self.pending[k].push(s);
            if self.pending[k].len() >= self.batch {
                out.push(export(std::mem::take(&mut self.pending[k])));
            }
        }
        out
    }

    /// The partial batches left.
    pub fn flush(&mut self) -> Vec<(ExportTraceRequest, usize)> {
        self.pending.iter_mut().filter(|p| !p.is_empty()).map(|p| export(std::mem::take(p))).collect()
    }
}

/// One export request of one service instance: its spans grouped by scope.
fn export(spans: Vec<GenSpan>) -> (ExportTraceRequest, usize) {
    let n = spans.len();
    let (service, instance) = (spans[0].service, spans[0].instance);
    let mut scopes: Vec<ScopeSpans> = Vec::new();
    for s in spans {
        match scopes.iter_mut().find(|x| x.scope.name == s.scope.0) {
            Some(x) => x.spans.push(s.span),
            None => scopes.push(ScopeSpans {
                scope: Scope { name: s.scope.0.into(), version: s.scope.1.into(), attributes: vec![] },
                spans: vec![s.span],
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            }),
        }
    }
    let req = ExportTraceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(service, instance),
            scope_spans: scopes,
            schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
        }],
    };
    (req, n)
}
