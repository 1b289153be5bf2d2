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
    pub(crate) async fn warn_daily_on_expiry(self, stopped: watch::Receiver<bool>) {
        const DAY: Duration = Duration::from_secs(86_400);
        self.warn_on_expiry_every(DAY, stopped).await;
    }

    /// [`TlsServer::warn_daily_on_expiry`] with its period as a parameter,
    /// so a test can drive it without waiting a day.
    async fn warn_on_expiry_every(self, period: Duration, mut stopped: watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// Log lines written into memory, for this thread only.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn count(&self, part: &str) -> usize {
            String::from_utf8_lossy(&self.0.lock().unwrap())
                .lines()
                .filter(|line| line.contains(part))
                .count()
        }
    }

    /// A self-signed certificate and key ending `days` from now, as files.
    fn certificate_ending_in(dir: &Path, days: i64) -> TlsSettings {
        let date = crate::credential::format_date(crate::credential::now_unix() + days * 86_400);
        let ymd: Vec<i32> = date.split('-').map(|n| n.parse().unwrap()).collect();
        let mut params = rcgen::CertificateParams::new(vec!["glgate.test".to_owned()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(ymd[0], ymd[1] as u8, ymd[2] as u8);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        TlsSettings {
            cert_file: dir.join("cert.pem"),
            key_file: dir.join("key.pem"),
            client_ca_file: None,
            require_client_cert: false,
            reload_interval: Duration::from_secs(3600),
        }
    }

    /// Runs the periodic check every `period` until `warnings` lines saying
    /// `part` were logged in all (the one at load included), or 10 s pass;
    /// the count logged then.
    async fn run_until(
        tls: TlsServer,
        period: Duration,
        log: &Captured,
        part: &str,
        warnings: usize,
    ) -> usize {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(tls.warn_on_expiry_every(period, stopped));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while log.count(part) < warnings && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the check stops when told")
            .unwrap();
        log.count(part)
    }

    /// A certificate 5 days from its end is warned about when loaded and
    /// again at every period (daily in production); one past its end is an
    /// error each time; one far from it, never.
    #[tokio::test(flavor = "current_thread")]
    async fn the_periodic_check_warns_again_about_a_certificate_near_its_end() {
        let log = Captured::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish();
        // The test's runtime runs on this thread, so the check's task logs here.
        let _guard = tracing::subscriber::set_default(subscriber);
        let soon = "the TLS certificate expires soon";
        let expired = "the TLS certificate has expired";

        let dir = tempfile::tempdir().unwrap();
        let tls = TlsServer::new(&certificate_ending_in(dir.path(), 5)).unwrap();
        assert_eq!(log.count(soon), 1, "the warning at load");
        let seen = run_until(tls, Duration::from_millis(20), &log, soon, 3).await;
        assert!(
            seen >= 3,
            "warned {seen} time(s): at load and at two periods"
        );
        assert_eq!(log.count(expired), 0);

        let past = tempfile::tempdir().unwrap();
        let tls = TlsServer::new(&certificate_ending_in(past.path(), -2)).unwrap();
        let seen = run_until(tls, Duration::from_millis(20), &log, expired, 3).await;
        assert!(seen >= 3, "an error {seen} time(s)");

        let far = tempfile::tempdir().unwrap();
        let before = (log.count(soon), log.count(expired));
        let tls = TlsServer::new(&certificate_ending_in(far.path(), 200)).unwrap();
        // Ten periods, then stopped: nothing to say about a valid certificate.
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(tls.warn_on_expiry_every(Duration::from_millis(5), stopped));
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.send(true).unwrap();
        task.await.unwrap();
        assert_eq!((log.count(soon), log.count(expired)), before);
    }
}
