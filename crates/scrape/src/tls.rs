//! TLS for `https` targets: the rustls client configuration of a target, built from its job's
//! `tls_config` as Prometheus's `common/config.NewTLSConfig` builds Go's `tls.Config`.
//!
//! Invariants and decisions:
//! - Crypto is `ring`, passed explicitly to every config (no process-wide default provider is
//!   installed); TLS 1.2 and 1.3 only, narrowed by `min_version`/`max_version`. ALPN offers
//!   `http/1.1` alone: the HTTP code above is the same hyper HTTP/1.1 connection as for `http`.
//! - PEM comes from files (`ca_file`, `cert_file`, `key_file`) or inline (`ca`, `cert`, `key`).
//! - Roots: every `CERTIFICATE` of `ca`/`ca_file` (at least one, as Go's `AppendCertsFromPEM`), else
//!   the system's store (`rustls-native-certs`: `SSL_CERT_FILE`/`SSL_CERT_DIR`, else the
//!   distribution's bundle, as Go's `SystemCertPool`), loaded once per process and shared.
//! - [`TlsSettings::build`] reads the files (blocking: call it from the blocking pool). Every
//!   failure is a [`ScrapeError`] naming the key and the file; nothing here panics on file
//!   contents.
//! - The name verified (and sent as SNI) is `server_name`, else the host of `__address__`; an
//!   IP address is verified against the certificate's IP SANs and sends no SNI (Go does the
//!   same).
//! - `insecure_skip_verify` accepts any chain, name and validity period, but still checks the
//!   handshake signature with the presented leaf key, as Go's `InsecureSkipVerify`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use periscope_config::{TlsConfig, TlsVersion};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme, SupportedProtocolVersion};

use crate::ScrapeError;

/// A job's `tls_config`, as the scrape loops need it (shared by its targets).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsSettings {
    ca: Option<Pem>,
    /// Client certificate and key (validated: both or neither).
    client_auth: Option<(Pem, Pem)>,
    server_name: String,
    insecure_skip_verify: bool,
    min_version: Option<TlsVersion>,
    max_version: Option<TlsVersion>,
}

/// Where a PEM comes from: a file (`ca_file`, ...) or the config itself (`ca`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pem {
    File(PathBuf),
    Inline(String),
}

impl Pem {
    /// From a config's `<key>` (inline) and `<key>_file` pair; inline wins if both were set
    /// (validation refuses that).
    fn of(inline: &str, file: &Option<PathBuf>) -> Option<Pem> {
        if !inline.is_empty() {
            return Some(Pem::Inline(inline.to_string()));
        }
        file.clone().map(Pem::File)
    }

    /// The bytes, and the config key and place to name in errors (`ca_file` and the path, or
    /// `ca` and "inline PEM").
    fn load(&self, key: &'static str) -> Result<(Vec<u8>, &'static str, String), ScrapeError> {
        match self {
            Pem::File(path) => {
                let file_key = match key {
                    "ca" => "ca_file",
                    "cert" => "cert_file",
                    _ => "key_file",
                };
                Ok((read(file_key, path)?, file_key, path.display().to_string()))
            }
            Pem::Inline(pem) => Ok((pem.clone().into_bytes(), key, "inline PEM".to_string())),
        }
    }
}

/// A job's TLS client configuration, built from its [`TlsSettings`] on first use by any of its
/// targets and then shared by all of them (Prometheus builds one HTTP client per scrape pool).
/// The files are checked at every scrape (modification time and size, as cheap as a `stat`):
/// when one changed — a rotated certificate — the configuration is built again from them, as
/// Prometheus re-reads its TLS files. A build that fails is tried again at the next scrape.
#[derive(Debug)]
pub(crate) struct TlsClient {
    settings: TlsSettings,
    built: Mutex<Option<(Arc<ClientConfig>, FilesStamp)>>,
}

/// Modification time and length of each TLS file (`None`: not readable).
type FilesStamp = Vec<Option<(SystemTime, u64)>>;

impl TlsClient {
    pub fn new(settings: TlsSettings) -> TlsClient {
        TlsClient { settings, built: Mutex::new(None) }
    }

    fn stamp(&self) -> FilesStamp {
        self.settings
            .files()
            .map(|p| std::fs::metadata(p).ok().and_then(|m| Some((m.modified().ok()?, m.len()))))
            .collect()
    }

    /// The configuration if built and its files did not change since.
    pub fn get(&self) -> Option<Arc<ClientConfig>> {
        let built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        let (config, stamp) = built.as_ref()?;
        (*stamp == self.stamp()).then(|| Arc::clone(config))
    }

    /// The configuration, built (reading files: blocking) when not built yet or when a file
    /// changed. Two targets building at once both read the files; the last result is kept.
    pub fn get_or_build(&self) -> Result<Arc<ClientConfig>, ScrapeError> {
        if let Some(c) = self.get() {
            return Ok(c);
        }
        // The stamp before reading: a file that changes while it is read is read again.
        let stamp = self.stamp();
        let config = self.settings.build()?;
        *self.built.lock().unwrap_or_else(|p| p.into_inner()) = Some((Arc::clone(&config), stamp));
        Ok(config)
    }

    /// See [`TlsSettings::server_name`].
    pub fn server_name(&self, host: &str) -> Result<ServerName<'static>, ScrapeError> {
        self.settings.server_name(host)
    }
}

/// The ring provider, built once.
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())))
}

/// The system's CA certificates, loaded on first use and kept for the life of the process.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    Arc::clone(ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        for error in &loaded.errors {
            tracing::warn!(%error, "cannot load some of the system's CA certificates");
        }
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(loaded.certs);
        if added == 0 {
            tracing::warn!(
                "no system CA certificate found: https targets without tls_config.ca_file will fail verification"
            );
        }
        tracing::debug!(added, ignored, "loaded the system's CA certificates");
        Arc::new(roots)
    }))
}

impl TlsSettings {
    /// The files the configuration is read from.
    fn files(&self) -> impl Iterator<Item = &PathBuf> {
        self.ca.iter().chain(self.client_auth.iter().flat_map(|(c, k)| [c, k])).filter_map(|p| match p {
            Pem::File(path) => Some(path),
            Pem::Inline(_) => None,
        })
    }

    /// The settings of a job; `None` means the defaults (system roots, verification on).
    pub fn from_config(cfg: Option<&TlsConfig>) -> TlsSettings {
        let Some(c) = cfg else { return TlsSettings::default() };
        TlsSettings {
            ca: Pem::of(&c.ca, &c.ca_file),
            client_auth: Pem::of(&c.cert, &c.cert_file).zip(Pem::of(c.key.expose(), &c.key_file)),
            server_name: c.server_name.clone(),
            insecure_skip_verify: c.insecure_skip_verify,
            min_version: c.min_version,
            max_version: c.max_version,
        }
    }

    /// The TLS versions to offer: 1.2 and 1.3, within `min_version..=max_version` (TLS10 and
    /// TLS11 as a minimum mean TLS 1.2, the oldest spoken).
    fn versions(&self) -> Result<Vec<&'static SupportedProtocolVersion>, ScrapeError> {
        let min = self.min_version.unwrap_or(TlsVersion::Tls12);
        let max = self.max_version.unwrap_or(TlsVersion::Tls13);
        let versions: Vec<_> =
            [(TlsVersion::Tls13, &rustls::version::TLS13), (TlsVersion::Tls12, &rustls::version::TLS12)]
                .into_iter()
                .filter(|(v, _)| (min..=max).contains(v))
                .map(|(_, v)| v)
                .collect();
        if versions.is_empty() {
            return Err(ScrapeError::TlsSetting {
                key: "max_version",
                message: format!("no TLS version between {min} and {max} is supported (TLS12 and TLS13 are)"),
            });
        }
        Ok(versions)
    }

    /// Reads the files and builds the client configuration. Blocking.
    pub fn build(&self) -> Result<Arc<ClientConfig>, ScrapeError> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&self.versions()?)
            .map_err(|e| ScrapeError::TlsSetting { key: "min_version", message: e.to_string() })?;
        let builder = if self.insecure_skip_verify {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            }))
        } else {
            let roots = match &self.ca {
                Some(pem) => Arc::new(read_roots(pem)?),
                None => system_roots(),
            };
            builder.with_root_certificates(roots)
        };
        let mut config = match &self.client_auth {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let (chain, cert_name, cert_at) = read_certs(cert, "cert")?;
                let (key, key_name, key_at) = read_key(key)?;
                builder.with_client_auth_cert(chain, key).map_err(|e| ScrapeError::TlsSetting {
                    key: key_name,
                    message: format!("cannot use {key_at} with {cert_name} {cert_at}: {e}"),
                })?
            }
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// The name to verify and send as SNI for a target whose `__address__` has host `host`
    /// (no port, no brackets).
    pub fn server_name(&self, host: &str) -> Result<ServerName<'static>, ScrapeError> {
        let (name, key) =
            if self.server_name.is_empty() { (host, None) } else { (self.server_name.as_str(), Some("server_name")) };
        ServerName::try_from(name.to_string()).map_err(|e| match key {
            Some(key) => ScrapeError::TlsSetting { key, message: format!("{name:?}: {e}") },
            None => ScrapeError::Request(format!("{name:?} is not a valid TLS server name: {e}")),
        })
    }
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, ScrapeError> {
    std::fs::read(path).map_err(|source| ScrapeError::TlsFile { key, path: path.to_path_buf(), source })
}

fn invalid(key: &'static str, at: &str, what: impl std::fmt::Display) -> ScrapeError {
    ScrapeError::TlsSetting { key, message: format!("{at}: {what}") }
}

/// Every `CERTIFICATE` block, in order; with the config key and place errors name.
fn read_certs(
    pem: &Pem,
    key: &'static str,
) -> Result<(Vec<CertificateDer<'static>>, &'static str, String), ScrapeError> {
    let (bytes, key, at) = pem.load(key)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(key, &at, format!("invalid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(key, &at, "no PEM certificate found"));
    }
    Ok((certs, key, at))
}

fn read_roots(pem: &Pem) -> Result<RootCertStore, ScrapeError> {
    let mut roots = RootCertStore::empty();
    let (certs, key, at) = read_certs(pem, "ca")?;
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(invalid(key, &at, "no usable CA certificate found"));
    }
    Ok(roots)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1), as Go's `X509KeyPair`.
fn read_key(pem: &Pem) -> Result<(PrivateKeyDer<'static>, &'static str, String), ScrapeError> {
    let (bytes, key, at) = pem.load("key")?;
    let k = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => invalid(key, &at, "no PEM private key found"),
        e => invalid(key, &at, format!("invalid PEM: {e}")),
    })?;
    Ok((k, key, at))
}

/// `insecure_skip_verify: true`: any certificate is accepted, the handshake signature is still
/// verified with the leaf's public key (so the peer holds the key of what it presented).
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(yaml: &str) -> TlsSettings {
        let c: TlsConfig = serde_yaml::from_str(yaml).unwrap();
        TlsSettings::from_config(Some(&c))
    }

    #[track_caller]
    fn build_error(s: &TlsSettings) -> String {
        match s.build() {
            Ok(_) => panic!("built: {s:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn versions_follow_min_and_max() {
        let v = |yaml: &str| settings(yaml).versions().map(|v| v.iter().map(|v| v.version).collect::<Vec<_>>());
        use rustls::ProtocolVersion::{TLSv1_2, TLSv1_3};
        assert_eq!(v("{}").unwrap(), [TLSv1_3, TLSv1_2]);
        assert_eq!(v("min_version: TLS10").unwrap(), [TLSv1_3, TLSv1_2]);
        assert_eq!(v("min_version: TLS13").unwrap(), [TLSv1_3]);
        assert_eq!(v("max_version: TLS12").unwrap(), [TLSv1_2]);
        // Unvalidated configs fail per target, never panic.
        let e = v("{min_version: TLS13, max_version: TLS12}").unwrap_err().to_string();
        assert_eq!(
            e,
            "tls_config.max_version: no TLS version between TLS13 and TLS12 is supported (TLS12 and TLS13 are)"
        );
    }

    #[test]
    fn file_errors_name_the_key_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = build_error(&settings(&format!("ca_file: {}", missing.display())));
        assert!(e.starts_with(&format!("tls_config.ca_file: cannot read {}: ", missing.display())), "{e}");
        assert!(e.contains("No such file"), "{e}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem at all\n").unwrap();
        let e = build_error(&settings(&format!("ca_file: {}", empty.display())));
        assert_eq!(e, format!("tls_config.ca_file: {}: no PEM certificate found", empty.display()));

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
        let e = build_error(&settings(&format!("ca_file: {}", garbage.display())));
        assert_eq!(e, format!("tls_config.ca_file: {}: no usable CA certificate found", garbage.display()));

        let truncated = dir.path().join("truncated.pem");
        std::fs::write(&truncated, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
        let e = build_error(&settings(&format!("ca_file: {}", truncated.display())));
        assert!(e.starts_with(&format!("tls_config.ca_file: {}: invalid PEM: ", truncated.display())), "{e}");

        let e = build_error(&settings(&format!("{{cert_file: {}, key_file: {}}}", missing.display(), empty.display())));
        assert!(e.starts_with(&format!("tls_config.cert_file: cannot read {}", missing.display())), "{e}");

        let e = build_error(&settings(&format!(
            "{{insecure_skip_verify: true, cert_file: {}, key_file: {}}}",
            garbage.display(),
            empty.display()
        )));
        assert_eq!(e, format!("tls_config.key_file: {}: no PEM private key found", empty.display()));
    }

    #[test]
    fn server_name_defaults_to_the_host() {
        let s = settings("{}");
        assert_eq!(s.server_name("node.example").unwrap().to_str(), "node.example");
        assert!(matches!(s.server_name("127.0.0.1").unwrap(), ServerName::IpAddress(_)));
        assert!(matches!(s.server_name("::1").unwrap(), ServerName::IpAddress(_)));
        let s = settings("server_name: scrape.test");
        assert_eq!(s.server_name("127.0.0.1").unwrap().to_str(), "scrape.test");
        let e = settings("server_name: 'bad name'").server_name("h").unwrap_err().to_string();
        assert!(e.starts_with("tls_config.server_name: \"bad name\": "), "{e}");
    }

    #[test]
    fn inline_pem_builds_and_errors_name_the_key() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["node.test".to_string()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        let yaml = serde_yaml::to_string(&serde_yaml::Mapping::from_iter([
            ("ca".into(), cert.pem().into()),
            ("cert".into(), cert.pem().into()),
            ("key".into(), key.serialize_pem().into()),
        ]))
        .unwrap();
        let s = settings(&yaml);
        assert_eq!(s.files().count(), 0, "inline PEM has no file to watch");
        s.build().unwrap();
        let e = build_error(&settings("ca: not pem"));
        assert_eq!(e, "tls_config.ca: inline PEM: no PEM certificate found");
        let e = build_error(&settings(&format!("{{cert: {:?}, key: 'nope'}}", cert.pem())));
        assert_eq!(e, "tls_config.key: inline PEM: no PEM private key found");
    }

    #[test]
    fn rotated_files_are_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let pem = |name: &str| {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params.distinguished_name.push(rcgen::DnType::CommonName, name);
            params.self_signed(&key).unwrap().pem()
        };
        std::fs::write(&ca, pem("first")).unwrap();
        let client = TlsClient::new(settings(&format!("ca_file: {}", ca.display())));
        assert!(client.get().is_none());
        let first = client.get_or_build().unwrap();
        assert!(Arc::ptr_eq(&first, &client.get().unwrap()), "unchanged files: the same configuration");
        // A rotated CA file (another size) is noticed at the next scrape and read again.
        std::fs::write(&ca, pem("second, rotated")).unwrap();
        assert!(client.get().is_none(), "a changed file makes the configuration stale");
        let second = client.get_or_build().unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
        // A broken rotation fails the scrape (and is retried), as Prometheus's does.
        std::fs::write(&ca, "garbage").unwrap();
        assert!(client.get_or_build().is_err());
    }

    #[test]
    fn system_roots_and_insecure_configs_build() {
        let c = settings("{}").build().unwrap();
        assert_eq!(c.alpn_protocols, [b"http/1.1".to_vec()]);
        settings("insecure_skip_verify: true").build().unwrap();
    }
}
