//! The settings a running glgate reads once, at start: its listeners,
//! inbound TLS and the connection-level limits. A reload (`SIGHUP`) swaps in
//! everything else (and reopens the audit output, wherever it now points);
//! for these it can only say, field by field, what it did not apply, so an
//! operator is never silently ignored.

use std::fmt::Debug;
use std::net::SocketAddr;
use std::time::Duration;

use super::{Config, TlsSettings};

/// What needs a restart to change.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StartupSettings {
    listen: SocketAddr,
    admin_listen: Option<SocketAddr>,
    admin_max_connections: usize,
    tls: Option<TlsSettings>,
    max_connections: usize,
    max_header_bytes: usize,
    header_read_timeout: Duration,
    idle_timeout: Duration,
    send_timeout: Duration,
    shutdown_grace: Duration,
    http2_max_concurrent_streams: u32,
    http2_max_pending_reset_streams: usize,
    workers: Option<usize>,
    /// The webhook relay's queue folder (whether the relay runs at all).
    webhook_spool: Option<std::path::PathBuf>,
    /// Its bounds: bytes and deliveries.
    webhook_queue: Option<(u64, u64, u64)>,
    /// The delivery worker's settings: max_age, retry_initial, retry_max,
    /// delivery_timeout, ca_file.
    webhook_delivery: Option<(
        Duration,
        Duration,
        Duration,
        Duration,
        Option<std::path::PathBuf>,
    )>,
}

/// One start-only setting a reload found changed and did not apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StartupChange {
    /// The config key, as written in the file (`admin.listen`, `limits.idle_timeout`).
    pub key: &'static str,
    /// The running value.
    pub running: String,
    /// The value in the file.
    pub in_file: String,
}

impl StartupSettings {
    /// The start-only part of `config`.
    pub(crate) fn of(config: &Config) -> StartupSettings {
        let limits = &config.limits;
        StartupSettings {
            listen: config.listen,
            admin_listen: config.admin_listen,
            admin_max_connections: config.admin_max_connections,
            tls: config.tls.clone(),
            max_connections: limits.max_connections,
            max_header_bytes: limits.max_header_bytes,
            header_read_timeout: limits.header_read_timeout,
            idle_timeout: limits.idle_timeout,
            send_timeout: limits.send_timeout,
            shutdown_grace: limits.shutdown_grace,
            http2_max_concurrent_streams: limits.http2_max_concurrent_streams,
            http2_max_pending_reset_streams: limits.http2_max_pending_reset_streams,
            workers: limits.workers,
            webhook_spool: config.webhooks.as_ref().map(|w| w.spool.clone()),
            webhook_queue: config
                .webhooks
                .as_ref()
                .map(|w| (w.max_queue_bytes, w.max_queued, w.max_client_share_percent)),
            webhook_delivery: config.webhooks.as_ref().map(|w| {
                (
                    w.max_age,
                    w.retry_initial,
                    w.retry_max,
                    w.delivery_timeout,
                    w.ca_file.clone(),
                )
            }),
        }
    }

    /// Every setting that differs between these (running) settings and
    /// `in_file`'s, in the order the config reference lists them.
    pub(crate) fn changes(&self, in_file: &StartupSettings) -> Vec<StartupChange> {
        let mut changes = Vec::new();
        let mut compare = |key: &'static str, running: &dyn Debug, new: &dyn Debug| {
            let (running, in_file) = (format!("{running:?}"), format!("{new:?}"));
            if running != in_file {
                changes.push(StartupChange {
                    key,
                    running,
                    in_file,
                });
            }
        };
        compare("listen", &self.listen, &in_file.listen);
        compare("admin.listen", &self.admin_listen, &in_file.admin_listen);
        compare(
            "admin.max_connections",
            &self.admin_max_connections,
            &in_file.admin_max_connections,
        );
        compare("tls", &self.tls, &in_file.tls);
        compare(
            "limits.max_connections",
            &self.max_connections,
            &in_file.max_connections,
        );
        compare(
            "limits.max_header_bytes",
            &self.max_header_bytes,
            &in_file.max_header_bytes,
        );
        compare(
            "limits.header_read_timeout",
            &self.header_read_timeout,
            &in_file.header_read_timeout,
        );
        compare(
            "limits.idle_timeout",
            &self.idle_timeout,
            &in_file.idle_timeout,
        );
        compare(
            "limits.send_timeout",
            &self.send_timeout,
            &in_file.send_timeout,
        );
        compare(
            "limits.shutdown_grace",
            &self.shutdown_grace,
            &in_file.shutdown_grace,
        );
        compare(
            "limits.http2_max_concurrent_streams",
            &self.http2_max_concurrent_streams,
            &in_file.http2_max_concurrent_streams,
        );
        compare(
            "limits.http2_max_pending_reset_streams",
            &self.http2_max_pending_reset_streams,
            &in_file.http2_max_pending_reset_streams,
        );
        compare("limits.workers", &self.workers, &in_file.workers);
        compare(
            "webhooks.spool",
            &self.webhook_spool,
            &in_file.webhook_spool,
        );
        compare(
            "webhooks.max_queue_bytes, max_queued, max_client_share_percent",
            &self.webhook_queue,
            &in_file.webhook_queue,
        );
        compare(
            "webhooks.max_age, retry_initial, retry_max, delivery_timeout, ca_file",
            &self.webhook_delivery,
            &in_file.webhook_delivery,
        );
        changes
    }
}
