//! Inbound TLS: the rustls server config, certificate reload without dropping
//! connections, and the identity of a client certificate.
//!
//! TLS 1.2 and 1.3 only (rustls speaks nothing older), ALPN `h2` and
//! `http/1.1`. The certificate and key are re-read when their files change
//! (cert-manager, certbot); a new pair that does not load, or whose key does
//! not match its certificate, is refused and the current one stays.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use prometheus_client::metrics::gauge::Gauge;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::watch;

use crate::config::TlsSettings;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate, key or CA file could not be used.
    #[error("{path}: {detail}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// rustls refused the configuration.
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client CA could not be turned into a verifier.
    #[error("tls.client_ca_file: {0}")]
    Verifier(String),
}

fn file_error(path: &Path, detail: impl ToString) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        detail: detail.to_string(),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The identity a client certificate carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ClientIdentity {
    /// Subject common names.
    pub common_names: Vec<String>,
    /// DNS and URI subject alternative names.
    pub alt_names: Vec<String>,
}

impl ClientIdentity {
    /// Reads the identity of a (verified) DER certificate.
    pub(crate) fn of(cert: &CertificateDer<'_>) -> Option<ClientIdentity> {
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
        let common_names = parsed
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
            .collect();
        let alt_names = parsed
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|name| match name {
                        x509_parser::extensions::GeneralName::DNSName(dns) => Some(dns.to_string()),
                        x509_parser::extensions::GeneralName::URI(uri) => Some(uri.to_string()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(ClientIdentity {
            common_names,
            alt_names,
        })
    }
}

/// Serves the current certificate to every new handshake.
#[derive(Debug)]
struct ReloadingCert {
    current: ArcSwap<CertifiedKey>,
    cert_file: PathBuf,
    key_file: PathBuf,
    stamps: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
    /// `glgate_tls_certificate_expiry_timestamp_seconds`: the current
    /// certificate's end, set at every load.
    expiry: Gauge,
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// Days before its end from which a serving certificate is reported as
/// expiring (`check`, and a warning when it is loaded).
pub(crate) const EXPIRY_WARNING_DAYS: i64 = 21;

/// How the serving certificate's validity stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// Valid for more than [`EXPIRY_WARNING_DAYS`].
    Valid {
        /// Whole days left.
        days_left: i64,
    },
    /// Valid for [`EXPIRY_WARNING_DAYS`] or fewer.
    Expiring {
        /// Whole days left.
        days_left: i64,
    },
    /// Past its end: clients refuse the handshake.
    Expired {
        /// Whole days since.
        days_ago: i64,
    },
}

impl Expiry {
    /// Where a certificate ending at `not_after` stands at `now` (both Unix seconds).
    pub(crate) fn at(not_after: i64, now: i64) -> Expiry {
        const DAY: i64 = 86_400;
        if not_after <= now {
            Expiry::Expired {
                days_ago: (now - not_after) / DAY,
            }
        } else if not_after - now <= EXPIRY_WARNING_DAYS * DAY {
            Expiry::Expiring {
                days_left: (not_after - now) / DAY,
            }
        } else {
            Expiry::Valid {
                days_left: (not_after - now) / DAY,
            }
        }
    }
}

/// When the certificate glgate serves (the first of `cert_file`'s chain)
/// stops being valid, in Unix seconds.
pub(crate) fn certificate_not_after(cert_file: &Path) -> Result<i64, TlsError> {
    let first = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| file_error(cert_file, e))?
        .next()
        .ok_or_else(|| file_error(cert_file, "no PEM certificate found"))?
        .map_err(|e| file_error(cert_file, e))?;
    leaf_not_after(&first).ok_or_else(|| file_error(cert_file, "the certificate cannot be read"))
}

fn leaf_not_after(cert: &CertificateDer<'_>) -> Option<i64> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    Some(parsed.validity().not_after.timestamp())
}

/// Records the end of the certificate just loaded in `expiry`, and logs how
/// it stands when it is near or past that end.
fn note_expiry(cert_file: &Path, pair: &CertifiedKey, expiry: &Gauge) {
    let Some(not_after) = pair.cert.first().and_then(leaf_not_after) else {
        return;
    };
    expiry.set(not_after);
    warn_on_expiry(cert_file, not_after);
}

/// Logs how a certificate ending at `not_after` stands, when it is near or
/// past its end.
fn warn_on_expiry(cert_file: &Path, not_after: i64) {
    match Expiry::at(not_after, crate::credential::now_unix()) {
        Expiry::Valid { .. } => {}
        Expiry::Expiring { days_left } => tracing::warn!(
            cert = %cert_file.display(),
            days_left,
            "the TLS certificate expires soon: renew it (glgate reloads the files when they change)"
        ),
        Expiry::Expired { days_ago } => tracing::error!(
            cert = %cert_file.display(),
            days_ago,
            "the TLS certificate has expired: clients refuse the handshake; renew it (glgate reloads the files when they change)"
        ),
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Loads a certificate chain and its key, and checks that they belong together.
fn load_pair(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| file_error(cert_file, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(cert_file, e))?;
    if chain.is_empty() {
        return Err(file_error(cert_file, "no PEM certificate found"));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| file_error(key_file, e))?;
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| file_error(key_file, e))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|e| {
        file_error(
            key_file,
            format!("the key does not match the certificate ({e})"),
        )
    })?;
    Ok(certified)
}

impl ReloadingCert {
    /// Re-reads the pair if a file changed; keeps the current pair on any error.
    fn refresh(&self) {
        let stamps = (modified(&self.cert_file), modified(&self.key_file));
        // A poisoned lock only holds two timestamps; reuse them.
        let mut seen = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
        if *seen == stamps {
            return;
        }
        match load_pair(&self.cert_file, &self.key_file) {
            Ok(pair) => {
                note_expiry(&self.cert_file, &pair, &self.expiry);
                self.current.store(Arc::new(pair));
                *seen = stamps;
                tracing::info!(cert = %self.cert_file.display(), "TLS certificate reloaded");
            }
            Err(error) => {
                // Keep the stamps unchanged so that a half-written pair is retried.
                tracing::error!(%error, "new TLS certificate refused; still serving the previous one");
            }
        }
    }
}

/// A TLS acceptor whose certificate follows its files.
#[derive(Clone)]
pub(crate) struct TlsServer {
    acceptor: tokio_rustls::TlsAcceptor,
    cert: Arc<ReloadingCert>,
    reload_interval: Duration,
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer")
            .field("cert", &self.cert.cert_file)
            .finish_non_exhaustive()
    }
}

impl TlsServer {
    /// Loads the pair (and the client CA) and builds the acceptor.
    pub(crate) fn new(settings: &TlsSettings) -> Result<TlsServer, TlsError> {
        TlsServer::with_expiry_metric(settings, Gauge::default())
    }

    /// As [`TlsServer::new`], keeping `expiry` set to the serving
    /// certificate's end (Unix seconds) at load and at every reload.
    pub(crate) fn with_expiry_metric(
        settings: &TlsSettings,
        expiry: Gauge,
    ) -> Result<TlsServer, TlsError> {
        let pair = load_pair(&settings.cert_file, &settings.key_file)?;
        note_expiry(&settings.cert_file, &pair, &expiry);
        let cert = Arc::new(ReloadingCert {
            expiry,
            current: ArcSwap::from_pointee(pair),
            cert_file: settings.cert_file.clone(),
            key_file: settings.key_file.clone(),
            stamps: Mutex::new((modified(&settings.cert_file), modified(&settings.key_file))),
        });
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
        let builder = match &settings.client_ca_file {
            Some(ca_file) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in
                    CertificateDer::pem_file_iter(ca_file).map_err(|e| file_error(ca_file, e))?
                {
                    roots
                        .add(cert.map_err(|e| file_error(ca_file, e))?)
                        .map_err(|e| file_error(ca_file, e))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
                // Without `require_client_cert`, a certificate is optional at the
                // handshake, and each client's config says whether it needs one.
                let verifier = if settings.require_client_cert {
                    verifier
                } else {
                    verifier.allow_unauthenticated()
                };
                builder.with_client_cert_verifier(
                    verifier
                        .build()
                        .map_err(|e| TlsError::Verifier(e.to_string()))?,
                )
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(cert.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsServer {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            cert,
            reload_interval: settings.reload_interval,
        })
    }

    /// The acceptor for new connections.
    pub(crate) fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }

    /// Once a day until `stopped` changes, logs a warning while the serving
    /// certificate is within [`EXPIRY_WARNING_DAYS`] of its end (an error
    /// once past it). Loading it logs the same, so the first check is a day
    /// after the start.
    pub(crate) async fn warn_daily_on_expiry(self, mut stopped: watch::Receiver<bool>) {
        const DAY: Duration = Duration::from_secs(86_400);
        let mut days = tokio::time::interval_at(tokio::time::Instant::now() + DAY, DAY);
        days.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = days.tick() => {
                    if let Some(not_after) = self.cert.current.load().cert.first().and_then(leaf_not_after) {
                        warn_on_expiry(&self.cert.cert_file, not_after);
                    }
                }
                _ = stopped.changed() => return,
            }
        }
    }

    /// Checks the files every `reload_interval` until `stopped` changes.
    pub(crate) async fn watch_files(self, mut stopped: watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval(self.reload_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    let cert = self.cert.clone();
                    let _ = tokio::task::spawn_blocking(move || cert.refresh()).await;
                }
                _ = stopped.changed() => return,
            }
        }
    }
}
