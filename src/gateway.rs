//! The running gateway's shared state: the current [`Snapshot`] (swapped
//! atomically on reload), the audit sink and the metrics.
//!
//! Every request loads the snapshot once and sees one consistent config,
//! policy set and upstream for its whole life.

use crate::webhooks::spool::Spool;
use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::audit::{AuditSink, OpenOutput};
use crate::auth::ClientTable;
use crate::config::{AuditOutput, BaseUrl, Config, StartupSettings};
use crate::credential::{Credential, CredentialError};
use crate::diagnostic::Diagnostics;
use crate::gitlab::{SetupError, http_client};
use crate::metrics::Metrics;
use crate::proxy::rewrite::UrlRewriter;
use crate::ratelimit::RateLimiter;
use crate::scope::resolve::Resolver;
use crate::upstream::Upstream;

/// Everything a request needs, compiled and ready.
#[derive(Debug)]
pub struct Snapshot {
    /// The config it was built from.
    pub config: Config,
    /// Client authentication.
    pub clients: ClientTable,
    /// The GitLab client.
    pub upstream: Upstream,
    /// `Link`/`Location` rewriting to the public URL.
    pub rewriter: UrlRewriter,
    /// The public URL in effect.
    pub public_url: BaseUrl,
    /// Scope resolutions (project and group lookups). A reload starts a
    /// fresh cache, so a new scope or upstream never reuses old answers.
    pub resolver: Resolver,
    /// Where relay URLs point (`webhooks.receive_url`, else the public URL),
    /// without a trailing slash.
    pub(crate) receive_url: String,
}

/// Why a snapshot could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The config or a policy is invalid.
    #[error("{0}")]
    Config(#[from] Diagnostics),
    /// The GitLab credential is missing or invalid.
    #[error("{0}")]
    Credential(#[from] CredentialError),
    /// The upstream client could not be set up.
    #[error("{0}")]
    Upstream(#[from] SetupError),
    /// glgate's own URL could not be formed from the bound address (when
    /// `public_url` is not set); a socket address always makes a valid one.
    #[error("cannot form glgate's own URL from its listening address: {0}; set public_url")]
    OwnUrl(String),
    /// The audit output named by the config cannot be opened (at reload).
    #[error("cannot open the audit log {path}: {source}")]
    Audit {
        /// The output: a file's path, `stdout` or `stderr`.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

impl Snapshot {
    /// `client`'s view of relay hooks, whenever the relay is configured:
    /// every client sees its own relay hooks as it registered them and never
    /// another's; only a client whose hooks are relayed (`relays_webhooks`)
    /// has its registrations rewritten.
    pub(crate) fn relay_view<'a>(
        &'a self,
        client: &'a str,
        relays_webhooks: bool,
    ) -> Option<crate::webhooks::relay::RelayView<'a>> {
        let webhooks = self.config.webhooks.as_ref()?;
        Some(crate::webhooks::relay::RelayView {
            sealer: &webhooks.sealer,
            receive_url: &self.receive_url,
            client,
            relays: relays_webhooks,
        })
    }

    /// Builds a snapshot from a compiled config: reads the token and sets up
    /// the upstream client. `bound` is the proxy's actual listen address, used
    /// as the public URL when none is configured.
    pub(crate) fn build(config: Config, bound: SocketAddr) -> Result<Snapshot, SnapshotError> {
        Snapshot::build_after(config, bound, None)
    }

    /// Like [`Snapshot::build`], keeping `previous`'s live credential (and
    /// the task that maintains it) when the new config reads it the same way.
    pub(crate) fn build_after(
        config: Config,
        bound: SocketAddr,
        previous: Option<&Snapshot>,
    ) -> Result<Snapshot, SnapshotError> {
        // One connection pool per snapshot, for the proxy and the credential's own calls.
        let client = http_client(&config.upstream)?;
        let credential =
            match previous.and_then(|p| p.upstream.credential().reuse_for(&config.upstream)) {
                Some(credential) => credential,
                None => Credential::start_after(
                    &config.upstream,
                    previous.map(|p| p.upstream.credential()),
                    client.clone(),
                )?,
            };
        let upstream = Upstream::with_client(&config.upstream, credential, client);
        let public_url = match &config.public_url {
            Some(url) => url.clone(),
            None => {
                BaseUrl::for_address(bound, config.tls.is_some()).map_err(SnapshotError::OwnUrl)?
            }
        };
        let rewriter = UrlRewriter::new(
            [&config.upstream.url, &config.upstream.external_url],
            &public_url,
        );
        let receive_url = config
            .webhooks
            .as_ref()
            .and_then(|webhooks| webhooks.receive_url.as_ref())
            .unwrap_or(&public_url)
            .to_string()
            .trim_end_matches('/')
            .to_owned();
        Ok(Snapshot {
            receive_url,
            clients: ClientTable::new(config.clients.clone()),
            resolver: Resolver::new(config.scope_cache),
            upstream,
            rewriter,
            public_url,
            config,
        })
    }
}

/// The gateway's shared state.
#[derive(Debug)]
pub struct Gateway {
    snapshot: ArcSwap<Snapshot>,
    /// Where audit events go.
    pub audit: AuditSink,
    /// Counters and histograms.
    pub metrics: Metrics,
    /// Per-client rate limits.
    pub limiter: RateLimiter,
    /// The proxy's bound address.
    pub bound: SocketAddr,
    /// What the server was started with and a reload cannot change.
    startup: StartupSettings,
    /// The webhook relay's durable queue, held (and locked) for the
    /// server's life when `webhooks:` is configured.
    pub(crate) webhook_spool: Option<Spool>,
}

impl Gateway {
    /// A gateway serving `snapshot`.
    pub(crate) fn new(
        snapshot: Snapshot,
        audit: AuditSink,
        bound: SocketAddr,
        webhook_spool: Option<Spool>,
    ) -> Gateway {
        Gateway {
            webhook_spool,
            startup: StartupSettings::of(&snapshot.config),
            snapshot: ArcSwap::from_pointee(snapshot),
            metrics: Metrics::with_audit(&audit),
            audit,
            limiter: RateLimiter::default(),
            bound,
        }
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Re-reads the config file; swaps in the new snapshot only if it is
    /// entirely valid, otherwise keeps the current one and returns why.
    ///
    /// The audit output is reopened (a file moved away by log rotation is
    /// created anew at the configured path, which may itself have changed).
    /// It is opened before the snapshot is built, so a snapshot whose
    /// credential task has started is never thrown away for it, and switched
    /// to only once the snapshot is ready.
    pub(crate) fn reload(&self) -> Result<(), SnapshotError> {
        let current = self.snapshot();
        let result = Config::load(&current.config.source)
            .map_err(SnapshotError::from)
            .and_then(|config| {
                let audit = OpenOutput::open(&config.audit).map_err(|source| {
                    let path = match &config.audit {
                        AuditOutput::File(path) => path.display().to_string(),
                        AuditOutput::Stdout => "stdout".into(),
                        AuditOutput::Stderr => "stderr".into(),
                    };
                    SnapshotError::Audit { path, source }
                })?;
                let next = Snapshot::build_after(config, self.bound, Some(&current))?;
                Ok((next, audit))
            });
        self.metrics.reloaded(result.is_ok());
        let (next, audit) = result?;
        self.audit.switch_to(audit);
        let changes = self.startup.changes(&StartupSettings::of(&next.config));
        for change in &changes {
            tracing::warn!(
                key = change.key,
                running = %change.running,
                in_file = %change.in_file,
                "'{}' changed in the config file but is read only at start: the running value stays until glgate restarts",
                change.key
            );
        }
        self.metrics
            .restart_pending
            .set(i64::from(!changes.is_empty()));
        self.snapshot.store(Arc::new(next));
        Ok(())
    }

    /// Whether the last reload found a start-only setting changed (and so a
    /// restart is needed to apply it); `glgate_restart_pending` says the same.
    pub(crate) fn restart_pending(&self) -> bool {
        self.metrics.restart_pending.get() != 0
    }
}
