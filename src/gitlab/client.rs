//! The HTTP client glgate talks to GitLab with, and its TLS configuration:
//! system roots plus an optional CA file, SNI and hostname verification always
//! on, and a client certificate when GitLab requires mutual TLS.

use std::time::Duration;

use bytes::Bytes;
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

/// The pooled HTTP client glgate talks to GitLab with.
pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The pooled client for `config`: system roots plus `ca_file`, SNI and
/// hostname verification always on.
pub(crate) fn http_client(config: &UpstreamConfig) -> Result<HttpClient, SetupError> {
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
    // Only requests that were never written to a connection are retried
    // (a pooled connection closed under us): GitLab never sees a request twice.
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .retry_canceled_requests(true)
        .build(connector))
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
