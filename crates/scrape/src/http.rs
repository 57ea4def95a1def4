//! The HTTP side of a scrape: one keep-alive HTTP/1.1 connection per target (hyper's
//! connection API over a tokio `TcpStream`, or over a rustls stream for `https`), the request
//! Prometheus sends, and a body read under a size cap.
//!
//! Invariants:
//! - Everything (reading credential and TLS files, connecting, the TLS handshake, sending,
//!   reading the body) happens inside one `scrape_timeout`; on timeout or any error the
//!   connection is dropped and its driver task aborted, so a target that hangs or misbehaves
//!   never holds a task.
//! - The body is never held beyond `body_size_limit` bytes: reading stops at the limit, both
//!   for the raw body and, in [`decode_body`], for the gzip-decompressed one (Prometheus's
//!   rule: reaching the limit fails the scrape).
//! - `http` and `https` share the request and connection code; TLS only wraps the stream
//!   (settings and verification in `tls.rs`).

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{
    HeaderValue, ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HOST, USER_AGENT,
};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use periscope_config::ScrapeConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::AbortHandle;

use crate::error::chain;
use crate::target::ScrapeUrl;
use crate::tls::TlsClient;
use crate::ScrapeError;

/// The `Accept` header of Prometheus 3 with its default `scrape_protocols` (OpenMetrics
/// 1.0.0, OpenMetrics 0.0.1, text 1.0.0, text 0.0.4) and UTF-8 names allowed.
pub const ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

/// The `Accept` header for `format: expvar` targets.
pub const ACCEPT_JSON: &str = "application/json,*/*;q=0.1";

/// `User-Agent` of every scrape.
pub const USER_AGENT_VALUE: &str = concat!("Periscope/", env!("CARGO_PKG_VERSION"));

/// How to authenticate, as configured (files are read at every scrape, as Prometheus does).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Auth {
    #[default]
    None,
    Basic {
        username: Secretish,
        password: Secretish,
    },
    /// `Authorization: <kind> <credentials>` (`bearer_token*` is `Bearer`).
    Header {
        kind: String,
        credentials: Secretish,
    },
}

/// A value given inline or read from a file at each use.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) enum Secretish {
    #[default]
    Empty,
    Inline(String),
    File(std::path::PathBuf),
}

impl std::fmt::Debug for Secretish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secretish::Empty => f.write_str("Empty"),
            Secretish::Inline(_) => f.write_str("Inline(<secret>)"),
            Secretish::File(p) => write!(f, "File({})", p.display()),
        }
    }
}

impl Auth {
    /// The authentication of a scrape config (validated: at most one kind set).
    pub fn from_config(cfg: &ScrapeConfig) -> Auth {
        fn pick(inline: Option<String>, file: Option<&Path>) -> Secretish {
            match (inline, file) {
                (Some(s), _) => Secretish::Inline(s),
                (None, Some(p)) => Secretish::File(p.to_path_buf()),
                (None, None) => Secretish::Empty,
            }
        }
        if let Some(b) = &cfg.basic_auth {
            let username = if b.username.is_empty() {
                pick(None, b.username_file.as_deref())
            } else {
                Secretish::Inline(b.username.clone())
            };
            let password = pick(b.password.as_ref().map(|s| s.expose().to_string()), b.password_file.as_deref());
            return Auth::Basic { username, password };
        }
        if let Some(a) = &cfg.authorization {
            let kind = if a.kind.trim().is_empty() { "Bearer".to_string() } else { a.kind.trim().to_string() };
            let credentials =
                pick(a.credentials.as_ref().map(|s| s.expose().to_string()), a.credentials_file.as_deref());
            return Auth::Header { kind, credentials };
        }
        if cfg.bearer_token.is_some() || cfg.bearer_token_file.is_some() {
            let credentials =
                pick(cfg.bearer_token.as_ref().map(|s| s.expose().to_string()), cfg.bearer_token_file.as_deref());
            return Auth::Header { kind: "Bearer".to_string(), credentials };
        }
        Auth::None
    }

    /// The `Authorization` header value, reading files now.
    async fn header(&self) -> Result<Option<String>, ScrapeError> {
        match self {
            Auth::None => Ok(None),
            Auth::Basic { username, password } => {
                let u = resolve(username, "basic auth username").await?;
                let p = resolve(password, "basic auth password").await?;
                Ok(Some(format!("Basic {}", periscope_ingest::base64_encode(format!("{u}:{p}").as_bytes()))))
            }
            Auth::Header { kind, credentials } => {
                let c = resolve(credentials, "authorization credentials").await?;
                Ok(Some(format!("{kind} {c}")))
            }
        }
    }
}

/// Reads a file-backed secret (trimmed, as Prometheus's `common/config` does).
async fn resolve(s: &Secretish, what: &'static str) -> Result<String, ScrapeError> {
    match s {
        Secretish::Empty => Ok(String::new()),
        Secretish::Inline(v) => Ok(v.clone()),
        Secretish::File(path) => {
            let p = path.clone();
            let read = tokio::task::spawn_blocking(move || std::fs::read_to_string(&p))
                .await
                .map_err(|e| ScrapeError::Internal(e.to_string()))?;
            read.map(|v| v.trim().to_string()).map_err(|source| ScrapeError::Credentials {
                what,
                path: path.clone(),
                source,
            })
        }
    }
}

/// A fetched body, still encoded.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub body: Vec<u8>,
    pub gzip: bool,
    pub content_type: String,
}

/// Decompresses a gzip body under `limit` (reaching it fails, as Prometheus's `LimitReader`
/// check); an identity body is returned as is (its size was checked while reading).
pub(crate) fn decode_body(f: Fetched, limit: usize) -> Result<Vec<u8>, ScrapeError> {
    if !f.gzip {
        return Ok(f.body);
    }
    let mut out = Vec::with_capacity(f.body.len().saturating_mul(4).min(limit));
    let cap = u64::try_from(limit).unwrap_or(u64::MAX);
    flate2::read::MultiGzDecoder::new(f.body.as_slice()).take(cap).read_to_end(&mut out).map_err(ScrapeError::Gzip)?;
    if out.len() >= limit {
        return Err(ScrapeError::BodySizeLimit);
    }
    Ok(out)
}

/// An open connection and the task driving it.
struct Conn {
    sender: SendRequest<Empty<Bytes>>,
    driver: AbortHandle,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Fetches one target's URL, keeping its connection alive between scrapes.
pub(crate) struct HttpClient {
    url: ScrapeUrl,
    url_text: String,
    auth: Auth,
    /// The job's TLS settings, used when the scheme is `https`.
    tls: Arc<TlsClient>,
    accept: &'static str,
    timeout: Duration,
    timeout_header: String,
    body_limit: usize,
    conn: Option<Conn>,
}

impl HttpClient {
    pub fn new(
        url: ScrapeUrl,
        auth: Auth,
        tls: Arc<TlsClient>,
        accept: &'static str,
        timeout: Duration,
        body_limit: usize,
    ) -> Self {
        HttpClient {
            url_text: url.to_string(),
            url,
            auth,
            tls,
            accept,
            timeout,
            timeout_header: format!("{}", timeout.as_secs_f64()),
            body_limit: body_limit.max(1),
            conn: None,
        }
    }

    /// One GET under the scrape timeout.
    pub async fn fetch(&mut self) -> Result<Fetched, ScrapeError> {
        match self.url.scheme.as_str() {
            "http" | "https" => {}
            other => return Err(ScrapeError::BadScheme(other.to_string())),
        }
        match tokio::time::timeout(self.timeout, self.fetch_inner()).await {
            Ok(Ok(f)) => Ok(f),
            Ok(Err(e)) => {
                self.conn = None;
                Err(e)
            }
            Err(_) => {
                self.conn = None;
                Err(ScrapeError::Timeout { url: self.url_text.clone() })
            }
        }
    }

    async fn fetch_inner(&mut self) -> Result<Fetched, ScrapeError> {
        let auth = self.auth.header().await?;
        let req = self.request(auth.as_deref())?;
        let kept = match self.conn.take() {
            Some(mut c) if !c.sender.is_closed() => c.sender.ready().await.is_ok().then_some(c),
            _ => None,
        };
        let (mut conn, reused) = match kept {
            Some(c) => (c, true),
            None => (self.connect().await?, false),
        };
        let resp = match conn.sender.send_request(req).await {
            Ok(r) => r,
            // A kept-alive connection the server closed meanwhile: retry once on a new one,
            // as Go's transport does for idempotent requests.
            Err(e) if reused && (e.is_closed() || e.is_canceled() || e.is_incomplete_message()) => {
                conn = self.connect().await?;
                let req = self.request(auth.as_deref())?;
                conn.sender.send_request(req).await.map_err(|e| self.http_error(&e))?
            }
            Err(e) => return Err(self.http_error(&e)),
        };
        let status = resp.status();
        if status != StatusCode::OK {
            return Err(ScrapeError::Status(match status.canonical_reason() {
                Some(r) => format!("{} {r}", status.as_u16()),
                None => status.as_u16().to_string(),
            }));
        }
        let header = |name| resp.headers().get(name).and_then(|v: &HeaderValue| v.to_str().ok()).unwrap_or_default();
        let content_type = header(CONTENT_TYPE).to_string();
        let gzip = header(CONTENT_ENCODING).trim().eq_ignore_ascii_case("gzip");
        let mut body = resp.into_body();
        let mut buf = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| self.http_error(&e))?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() >= self.body_limit {
                    return Err(ScrapeError::BodySizeLimit);
                }
                buf.extend_from_slice(&data);
            }
        }
        self.conn = Some(conn);
        Ok(Fetched { body: buf, gzip, content_type })
    }

    fn request(&self, auth: Option<&str>) -> Result<Request<Empty<Bytes>>, ScrapeError> {
        let mut b = Request::builder()
            .method(Method::GET)
            .uri(self.url.path_and_query.as_str())
            .header(HOST, self.url.host.as_str())
            .header(ACCEPT, self.accept)
            .header(ACCEPT_ENCODING, "gzip")
            .header(USER_AGENT, USER_AGENT_VALUE)
            .header("X-Prometheus-Scrape-Timeout-Seconds", self.timeout_header.as_str());
        if let Some(a) = auth {
            b = b.header(AUTHORIZATION, a);
        }
        b.body(Empty::new()).map_err(|e| ScrapeError::Request(e.to_string()))
    }

    async fn connect(&self) -> Result<Conn, ScrapeError> {
        // TLS settings first: a bad file fails the scrape before any connection is made.
        let tls = if self.url.scheme == "https" {
            let config = match self.tls.get() {
                Some(c) => c,
                None => {
                    let tls = Arc::clone(&self.tls);
                    tokio::task::spawn_blocking(move || tls.get_or_build())
                        .await
                        .map_err(|e| ScrapeError::Internal(e.to_string()))??
                }
            };
            Some((config, self.tls.server_name(self.url.hostname())?))
        } else {
            None
        };
        let address = self.url.connect_address();
        let stream = TcpStream::connect(address.as_str()).await.map_err(|source| ScrapeError::Connect {
            url: self.url_text.clone(),
            address: address.clone(),
            source,
        })?;
        let _ = stream.set_nodelay(true);
        match tls {
            None => self.handshake(stream).await,
            Some((config, server_name)) => {
                let stream = tokio_rustls::TlsConnector::from(config)
                    .connect(server_name, stream)
                    .await
                    .map_err(|source| ScrapeError::Tls { url: self.url_text.clone(), source })?;
                self.handshake(stream).await
            }
        }
    }

    /// HTTP/1.1 over an open stream, plain or TLS; the connection is driven by its own task.
    async fn handshake<S>(&self, stream: S) -> Result<Conn, ScrapeError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.map_err(|e| self.http_error(&e))?;
        let driver = tokio::spawn(async move {
            if let Err(error) = conn.await {
                tracing::debug!(%error, "scrape connection ended");
            }
        })
        .abort_handle();
        Ok(Conn { sender, driver })
    }

    fn http_error(&self, e: &hyper::Error) -> ScrapeError {
        ScrapeError::Http { url: self.url_text.clone(), message: chain(e) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn base64_matches_rfc4648() {
        for (i, o) in
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("foobar", "Zm9vYmFy")]
        {
            assert_eq!(periscope_ingest::base64_encode(i.as_bytes()), o);
        }
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_is_capped() {
        let body = vec![b'a'; 10_000];
        let f = |b: &[u8]| Fetched { body: gz(b), gzip: true, content_type: String::new() };
        assert_eq!(decode_body(f(&body), 10_001).unwrap().len(), 10_000);
        assert!(matches!(decode_body(f(&body), 10_000), Err(ScrapeError::BodySizeLimit)));
        assert!(matches!(decode_body(f(&body), 100), Err(ScrapeError::BodySizeLimit)));
        let garbage = Fetched { body: b"not gzip".to_vec(), gzip: true, content_type: String::new() };
        assert!(matches!(decode_body(garbage, 100), Err(ScrapeError::Gzip(_))));
    }

    #[test]
    fn auth_from_config() {
        let cfg: ScrapeConfig = serde_yaml::from_str("job_name: j\nbearer_token: abc\n").unwrap();
        assert_eq!(
            Auth::from_config(&cfg),
            Auth::Header { kind: "Bearer".into(), credentials: Secretish::Inline("abc".into()) }
        );
        let cfg: ScrapeConfig =
            serde_yaml::from_str("job_name: j\nbasic_auth: {username: u, password_file: /p}\n").unwrap();
        assert_eq!(
            Auth::from_config(&cfg),
            Auth::Basic { username: Secretish::Inline("u".into()), password: Secretish::File("/p".into()) }
        );
    }
}
