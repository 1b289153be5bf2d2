//! The HTTP client glgate talks to GitLab with, and its TLS configuration:
//! system roots plus an optional CA file, SNI and hostname verification always
//! on, and a client certificate when GitLab requires mutual TLS.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::config::UpstreamConfig;

/// Why the upstream client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A CA, certificate or key file could not be used.
    #[error("upstream TLS file {path}: {detail}")]
    CaFile {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// rustls refused the configuration.
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
}

/// hyper-util's pooled client, as configured for GitLab.
type PooledClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The pooled HTTP client glgate talks to GitLab with.
///
/// On a proxy worker thread ([`pool_per_thread`]) each request goes through
/// that thread's own pool for this client, so that the connection task
/// serving it runs on the thread that asked: the request never crosses
/// threads, and its hand-offs to the connection task are wake-ups on the
/// same event loop, not signals to another thread. Everywhere else (the
/// admin listener, background tasks, one-shot commands) the shared pool.
#[derive(Clone)]
pub(crate) struct HttpClient {
    shared: PooledClient,
    /// Kept to build each worker thread's pool with the same TLS and timeouts.
    connector: HttpsConnector<HttpConnector>,
    /// Tells this client's per-thread pools from those of earlier snapshots.
    id: u64,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").field("id", &self.id).finish()
    }
}

impl HttpClient {
    /// Sends `request` (through this thread's pool on a worker thread).
    pub(crate) fn request(&self, request: Request<Full<Bytes>>) -> ResponseFuture {
        THREAD_POOLS.with_borrow_mut(|pools| match pools {
            Some(pools) => pool_of(pools, self).request(request),
            None => self.shared.request(request),
        })
    }
}

/// Pools of clients, kept per worker thread: the newest first.
type ThreadPools = Vec<(u64, PooledClient)>;

/// How many clients' pools a worker thread keeps: the running snapshot's
/// and the one before it, whose requests may still be finishing after a
/// reload. An older one is dropped (its idle connections close).
const POOLS_PER_THREAD: usize = 2;

thread_local! {
    /// `Some` on a proxy worker thread ([`pool_per_thread`]).
    static THREAD_POOLS: std::cell::RefCell<Option<ThreadPools>> =
        const { std::cell::RefCell::new(None) };
}

/// Makes every [`HttpClient`] used on the calling thread keep a pool of its
/// own there: for a thread running a single-threaded event loop, whose
/// connections' tasks must stay on it.
pub(crate) fn pool_per_thread() {
    THREAD_POOLS.with_borrow_mut(|pools| *pools = Some(Vec::with_capacity(POOLS_PER_THREAD)));
}

/// `client`'s pool among a worker thread's `pools`, made on first use.
fn pool_of<'a>(pools: &'a mut ThreadPools, client: &HttpClient) -> &'a PooledClient {
    let index = match pools.iter().position(|(id, _)| *id == client.id) {
        Some(index) => index,
        None => {
            pools.truncate(POOLS_PER_THREAD - 1);
            pools.insert(0, (client.id, pooled(client.connector.clone())));
            0
        }
    };
    &pools[index].1
}

/// The future of a response from GitLab.
pub(crate) type ResponseFuture = hyper_util::client::legacy::ResponseFuture;

/// The pooled client for `config`: system roots plus `ca_file`, SNI and
/// hostname verification always on.
pub(crate) fn http_client(config: &UpstreamConfig) -> Result<HttpClient, SetupError> {
    static NEXT_ID: AtomicU64 = AtomicU64::new(0);
    let tls = client_tls_config(config.ca_file.as_deref(), config.client_identity.as_ref())?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(config.connect_timeout));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(HttpClient {
        shared: pooled(connector.clone()),
        connector,
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
    })
}

/// A pool over `connector`. Only requests that were never written to a
/// connection are retried (a pooled connection closed under us): GitLab
/// never sees a request twice.
fn pooled(connector: HttpsConnector<HttpConnector>) -> PooledClient {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .retry_canceled_requests(true)
        .build(connector)
}

/// rustls client config: the system's roots plus the optional extra CA file,
/// and a client certificate when GitLab requires mutual TLS.
pub(crate) fn client_tls_config(
    ca_file: Option<&std::path::Path>,
    client_identity: Option<&(std::path::PathBuf, std::path::PathBuf)>,
) -> Result<rustls::ClientConfig, SetupError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A broken system certificate is skipped, as every TLS client does.
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let ca_error = |detail: String| SetupError::CaFile {
            path: path.display().to_string(),
            detail,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| ca_error(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| ca_error(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_error("no PEM certificate found".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let Some((cert_file, key_file)) = client_identity else {
        return Ok(builder.with_no_client_auth());
    };
    let file_error = |path: &std::path::Path, detail: String| SetupError::CaFile {
        path: path.display().to_string(),
        detail,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| file_error(cert_file, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(cert_file, e.to_string()))?;
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| file_error(key_file, e.to_string()))?;
    Ok(builder.with_client_auth_cert(chain, key)?)
}
