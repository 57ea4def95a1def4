//! Why a scrape failed. The `Display` text is what `/api/v1/targets` shows as `lastError`, so
//! it follows Prometheus's wording where Prometheus has one (`server returned HTTP status
//! 500 Internal Server Error`, `body size limit exceeded`, `sample limit exceeded`).

use std::path::PathBuf;

use periscope_model::{Classify, ErrorClass};

/// One failed scrape of one target.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// A scheme other than `http`/`https` after relabelling.
    #[error("unsupported scheme {0:?}")]
    BadScheme(String),
    /// The whole request (connect, send, read the body) took longer than `scrape_timeout`.
    #[error("Get \"{url}\": context deadline exceeded")]
    Timeout { url: String },
    /// The TCP connection could not be opened.
    #[error("Get \"{url}\": dial tcp {address}: {source}")]
    Connect {
        url: String,
        address: String,
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed (certificate not trusted or not valid for the name, no
    /// common version, the server refused our client certificate, ...).
    #[error("Get \"{url}\": tls: {source}")]
    Tls {
        url: String,
        #[source]
        source: std::io::Error,
    },
    /// A `tls_config` file could not be read.
    #[error("tls_config.{key}: cannot read {}: {source}", path.display())]
    TlsFile {
        key: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A `tls_config` setting or file is unusable (no certificate in `ca_file`, a key that
    /// does not match `cert_file`, ...); `message` names the file when there is one.
    #[error("tls_config.{key}: {message}")]
    TlsSetting { key: &'static str, message: String },
    /// The HTTP exchange failed (connection closed, malformed response, ...).
    #[error("Get \"{url}\": {message}")]
    Http { url: String, message: String },
    /// A header value could not be built (e.g. a credentials file with a line break inside).
    #[error("cannot build request: {0}")]
    Request(String),
    /// A status other than 200.
    #[error("server returned HTTP status {0}")]
    Status(String),
    /// The body, after decompression, reached `body_size_limit`.
    #[error("body size limit exceeded")]
    BodySizeLimit,
    /// A `Content-Encoding: gzip` body that does not decompress.
    #[error("cannot decompress gzip body: {0}")]
    Gzip(#[source] std::io::Error),
    /// A credentials file could not be read.
    #[error("unable to read {what} file {}: {source}", path.display())]
    Credentials {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The exposition does not parse.
    #[error("{0}")]
    Parse(#[from] periscope_textparse::ParseError),
    /// The expvar document does not decode.
    #[error("{0}")]
    Expvar(#[from] periscope_ingest::IngestError),
    /// More samples (after metric relabelling) than `sample_limit`.
    #[error("sample limit exceeded")]
    SampleLimit,
    /// `label_limit`, `label_name_length_limit` or `label_value_length_limit` exceeded; the
    /// text says which, as Prometheus words it.
    #[error("{0}")]
    LabelLimit(String),
    /// A series has no `__name__` after metric relabelling.
    #[error("missing metric name (__name__ label)")]
    MissingMetricName,
    /// The blocking part of the scrape (decode and append) panicked or was cancelled.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ScrapeError {
    /// Whether the error is the body size limit (Prometheus reports `scrape_body_size_bytes`
    /// -1 for it and counts it apart).
    pub fn is_body_size_limit(&self) -> bool {
        matches!(self, ScrapeError::BodySizeLimit)
    }
}

impl Classify for ScrapeError {
    fn class(&self) -> ErrorClass {
        match self {
            ScrapeError::BadScheme(_) | ScrapeError::Request(_) | ScrapeError::TlsSetting { .. } => {
                ErrorClass::InvalidInput
            }
            ScrapeError::Timeout { .. }
            | ScrapeError::Connect { .. }
            | ScrapeError::Tls { .. }
            | ScrapeError::Http { .. }
            | ScrapeError::Status(_)
            | ScrapeError::Credentials { .. }
            | ScrapeError::TlsFile { .. } => ErrorClass::Unavailable,
            ScrapeError::BodySizeLimit | ScrapeError::SampleLimit | ScrapeError::LabelLimit(_) => ErrorClass::TooLarge,
            ScrapeError::Gzip(_) | ScrapeError::Parse(_) | ScrapeError::Expvar(_) | ScrapeError::MissingMetricName => {
                ErrorClass::InvalidInput
            }
            ScrapeError::Internal(_) => ErrorClass::Internal,
        }
    }
}

/// An error and its causes on one line: `a: b: c`, skipping a cause whose text the message
/// already ends with.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !out.ends_with(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        cur = s.source();
    }
    out
}
