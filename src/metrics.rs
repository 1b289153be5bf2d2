//! Prometheus metrics. Labels are bounded: client names and rule ids come from
//! the config, statuses and reasons from fixed sets; never a path or a token.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of `glgate_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Client name, or `-`.
    pub client: String,
    /// Rule id, or empty.
    pub rule: String,
    /// `allow` or `deny` (static: no allocation per request).
    pub decision: &'static str,
    /// Reason code.
    pub reason: String,
    /// HTTP status sent.
    pub status: u16,
}

/// Labels of `glgate_policy_reloads_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `success` or `failure`.
    pub result: String,
}

/// Labels of `glgate_shadow_disagreements_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShadowLabels {
    /// Client name.
    pub client: String,
    /// The enforced decision.
    pub decision: String,
    /// The shadow policy's decision.
    pub shadow_decision: String,
}

/// Labels of `glgate_scope_lookups_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LookupLabels {
    /// `hit` (from the cache) or `miss` (asked GitLab).
    pub result: String,
}

/// Labels of `glgate_scope_hidden_items_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClientLabels {
    /// Client name.
    pub client: String,
}

/// Labels of `glgate_open_connections`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    /// `proxy` or `admin`.
    pub listener: String,
}

/// Labels of `glgate_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct BuildLabels {
    /// The crate version glgate was built from.
    pub(crate) version: String,
}

/// Labels of `glgate_webhook_deliveries_total` and `glgate_webhooks_received_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabels {
    /// A fixed word: `delivered`, `retry`, `dead_letter`, `drop` (attempts);
    /// `accepted`, `dropped`, `refused` (received).
    pub(crate) outcome: String,
}

/// Labels of `glgate_webhooks_dropped_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DropLabels {
    /// A reason code.
    pub(crate) reason: String,
}

/// Outcomes of one attempt to deliver a webhook to a client's receiver.
const DELIVERY_OUTCOMES: [&str; 4] = ["delivered", "retry", "dead_letter", "drop"];
/// Outcomes of a delivery GitLab posted to glgate.
const RECEIVED_OUTCOMES: [&str; 3] = ["accepted", "dropped", "refused"];
/// Drop reasons of the relay itself whose series exist from the start,
/// beside the payload policy's (`webhooks::payload::DROP_REASONS`); refusals
/// (a wrong secret, a full queue) appear at their first occurrence.
const RELAY_DROP_REASONS: [&str; 2] = ["out_of_scope", "event_object_unknown"];

/// The webhook relay's metrics: handles the spool's worker keeps (each a
/// clone sharing the registered series).
#[derive(Clone, Debug)]
pub(crate) struct WebhookMetrics {
    /// Deliveries queued.
    pub(crate) queue_depth: Gauge,
    /// Bytes of deliveries queued.
    pub(crate) queue_bytes: Gauge,
    /// Age of the oldest queued delivery.
    pub(crate) queue_oldest_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Dead letters stored.
    pub(crate) dead_letters: Gauge,
    /// Attempts by outcome.
    pub(crate) deliveries: Family<OutcomeLabels, Counter>,
    /// Time of one attempt (connect to the end of the receiver's answer).
    pub(crate) delivery_duration: Histogram,
    /// Deliveries GitLab posted, by outcome.
    pub(crate) received: Family<OutcomeLabels, Counter>,
    /// Deliveries dropped at reception, by reason.
    pub(crate) dropped: Family<DropLabels, Counter>,
}

impl WebhookMetrics {
    fn register(registry: &mut Registry) -> WebhookMetrics {
        let metrics = WebhookMetrics {
            queue_depth: Gauge::default(),
            queue_bytes: Gauge::default(),
            queue_oldest_age: Gauge::default(),
            dead_letters: Gauge::default(),
            deliveries: Family::default(),
            delivery_duration: Histogram::new(REQUEST_DURATION_BUCKETS),
            received: Family::default(),
            dropped: Family::default(),
        };
        // Every outcome exists from the start, at 0.
        for outcome in DELIVERY_OUTCOMES {
            metrics
                .deliveries
                .get_or_create(&outcome_labels(outcome))
                .inc_by(0);
        }
        for outcome in RECEIVED_OUTCOMES {
            metrics
                .received
                .get_or_create(&outcome_labels(outcome))
                .inc_by(0);
        }
        for reason in RELAY_DROP_REASONS
            .iter()
            .chain(crate::webhooks::payload::DROP_REASONS)
        {
            metrics
                .dropped
                .get_or_create(&DropLabels {
                    reason: (*reason).into(),
                })
                .inc_by(0);
        }
        registry.register(
            "webhook_queue_depth",
            "Webhook deliveries queued in the spool, waiting for the client's receiver",
            metrics.queue_depth.clone(),
        );
        registry.register(
            "webhook_queue_bytes",
            "Bytes of webhook deliveries queued in the spool",
            metrics.queue_bytes.clone(),
        );
        registry.register(
            "webhook_queue_oldest_age_seconds",
            "Age of the oldest webhook delivery queued (0 when empty)",
            metrics.queue_oldest_age.clone(),
        );
        registry.register(
            "webhook_dead_letters",
            "Webhook deliveries in the dead-letter store (list and replay with glgate webhooks)",
            metrics.dead_letters.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Attempts to deliver a webhook to a client's receiver, by outcome (delivered, retry, dead_letter, drop)",
            metrics.deliveries.clone(),
        );
        registry.register(
            "webhook_delivery_duration_seconds",
            "Time of one attempt to deliver a webhook to a client's receiver",
            metrics.delivery_duration.clone(),
        );
        registry.register(
            "webhooks_received",
            "Webhook deliveries GitLab posted to glgate, by outcome (accepted, dropped, refused)",
            metrics.received.clone(),
        );
        registry.register(
            "webhooks_dropped",
            "Webhook deliveries glgate dropped at reception (answered 2xx, not relayed), by reason",
            metrics.dropped.clone(),
        );
        metrics
    }

    /// Counts one delivery attempt's `outcome` and how long it took.
    pub(crate) fn attempted(&self, outcome: &str, seconds: f64) {
        self.deliveries
            .get_or_create(&outcome_labels(outcome))
            .inc();
        self.delivery_duration.observe(seconds);
    }
}

fn outcome_labels(outcome: &str) -> OutcomeLabels {
    OutcomeLabels {
        outcome: outcome.into(),
    }
}

/// Buckets of `glgate_request_duration_seconds`: from a refusal answered
/// in microseconds to a long download.
const REQUEST_DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Every metric glgate exposes.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Requests by client, rule, decision, reason and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Time to GitLab's response headers.
    pub upstream_latency: Histogram,
    /// Config and policy reloads by result.
    pub reloads: Family<ReloadLabels, Counter>,
    /// Connections closed at once because `limits.max_connections` were open.
    pub connections_refused: Counter,
    /// Admin connections refused because `admin.max_connections` were open.
    pub admin_connections_refused: Counter,
    /// Requests where a client's shadow policy decided otherwise.
    pub shadow_disagreements: Family<ShadowLabels, Counter>,
    /// Scope resolutions of projects and groups, by cache result.
    pub scope_lookups: Family<LookupLabels, Counter>,
    /// Items removed from GitLab's answers (scope, `response_filter`), by client.
    pub hidden_items: Family<ClientLabels, Counter>,
    /// When the GitLab token expires (seconds since the epoch; 0: unknown or never).
    pub upstream_token_expiry: Gauge,
    /// 1 when the config file changes a start-only setting that a reload
    /// could not apply (see the log for which), 0 otherwise.
    pub restart_pending: Gauge,
    /// Forwarded requests GitLab answered 401 to glgate's own token (after
    /// the retry with a newer one): the client got 503
    /// `upstream_credential_rejected`.
    pub upstream_credential_rejections: Counter,
    /// Requests received whose audit event is not completed yet.
    pub requests_in_flight: Gauge,
    /// Time from a request's arrival to the end of its response body.
    pub request_duration: Histogram,
    /// Connections open, by listener (`proxy`, `admin`).
    pub open_connections: Family<ListenerLabels, Gauge>,
    /// When the serving TLS certificate expires (seconds since the epoch;
    /// 0 without TLS).
    pub tls_certificate_expiry: Gauge,
    /// The webhook relay's queue, attempts and receptions.
    pub(crate) webhooks: WebhookMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("glgate");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests by client, rule, decision, reason and status",
            requests.clone(),
        );
        let upstream_latency = Histogram::new([
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ]);
        registry.register(
            "upstream_latency_seconds",
            "Time to GitLab's response headers",
            upstream_latency.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        // Both results exist from the start, at 0, so that an alert on
        // `increase(…{result="failure"}[…])` sees the first failure too.
        for result in ["success", "failure"] {
            reloads
                .get_or_create(&ReloadLabels {
                    result: result.into(),
                })
                .inc_by(0);
        }
        registry.register(
            "policy_reloads",
            "Config and policy reloads by result",
            reloads.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "connections_refused",
            "Connections closed at once because limits.max_connections were open",
            connections_refused.clone(),
        );
        let admin_connections_refused = Counter::default();
        registry.register(
            "admin_connections_refused",
            "Admin connections closed at once because admin.max_connections were open",
            admin_connections_refused.clone(),
        );
        let shadow_disagreements = Family::<ShadowLabels, Counter>::default();
        registry.register(
            "shadow_disagreements",
            "Requests where a client's shadow policy decided otherwise than its policy",
            shadow_disagreements.clone(),
        );
        let scope_lookups = Family::<LookupLabels, Counter>::default();
        for result in ["hit", "miss"] {
            scope_lookups
                .get_or_create(&LookupLabels {
                    result: result.into(),
                })
                .inc_by(0);
        }
        registry.register(
            "scope_lookups",
            "Scope resolutions of projects and groups: hit (cache) or miss (asked GitLab)",
            scope_lookups.clone(),
        );
        let hidden_items = Family::<ClientLabels, Counter>::default();
        registry.register(
            "scope_hidden_items",
            "Items removed from GitLab's answers because a client may not see them",
            hidden_items.clone(),
        );
        let upstream_token_expiry = Gauge::default();
        registry.register(
            "upstream_token_expiry_timestamp_seconds",
            "When the GitLab token expires, in seconds since the epoch (0: unknown or never)",
            upstream_token_expiry.clone(),
        );
        let restart_pending = Gauge::default();
        registry.register(
            "restart_pending",
            "1 when the config file changes a setting only a restart applies (listen, admin.listen, tls, connection limits)",
            restart_pending.clone(),
        );
        let upstream_credential_rejections = Counter::default();
        registry.register(
            "upstream_credential_rejections",
            "Forwarded requests GitLab refused with 401 because it rejected glgate's own GitLab token",
            upstream_credential_rejections.clone(),
        );
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").into(),
            })
            .set(1);
        registry.register(
            "build_info",
            "Always 1; the version label says which glgate is running",
            build_info,
        );
        let requests_in_flight = Gauge::default();
        registry.register(
            "requests_in_flight",
            "Requests received whose response has not ended yet",
            requests_in_flight.clone(),
        );
        let request_duration = Histogram::new(REQUEST_DURATION_BUCKETS);
        registry.register(
            "request_duration_seconds",
            "Time from a request's arrival to the end of its response body",
            request_duration.clone(),
        );
        let open_connections = Family::<ListenerLabels, Gauge>::default();
        // Both listeners' series exist from the start, at 0.
        for listener in ["proxy", "admin"] {
            open_connections
                .get_or_create(&ListenerLabels {
                    listener: listener.into(),
                })
                .set(0);
        }
        registry.register(
            "open_connections",
            "Connections open, by listener (proxy, admin)",
            open_connections.clone(),
        );
        let tls_certificate_expiry = Gauge::default();
        registry.register(
            "tls_certificate_expiry_timestamp_seconds",
            "When the serving TLS certificate expires, in seconds since the epoch (0: no TLS)",
            tls_certificate_expiry.clone(),
        );
        let webhooks = WebhookMetrics::register(&mut registry);
        Metrics {
            webhooks,
            upstream_credential_rejections,
            requests_in_flight,
            request_duration,
            open_connections,
            tls_certificate_expiry,
            restart_pending,
            scope_lookups,
            hidden_items,
            upstream_token_expiry,
            shadow_disagreements,
            registry,
            requests,
            upstream_latency,
            reloads,
            connections_refused,
            admin_connections_refused,
        }
    }

    /// Every metric, plus the count of audit events `audit` had to drop
    /// (`glgate_audit_events_dropped_total`).
    pub(crate) fn with_audit(audit: &crate::audit::AuditSink) -> Metrics {
        let mut metrics = Metrics::new();
        metrics.registry.register(
            "audit_events_dropped",
            "Audit events dropped because the audit output could not keep up",
            audit.dropped().clone(),
        );
        metrics
    }

    /// The open-connections gauge of `listener` (`proxy`, `admin`).
    pub(crate) fn open_connections_of(&self, listener: &str) -> Gauge {
        self.open_connections
            .get_or_create(&ListenerLabels {
                listener: listener.into(),
            })
            .clone()
    }

    /// Counts a reload.
    pub(crate) fn reloaded(&self, success: bool) {
        let result = if success { "success" } else { "failure" };
        self.reloads
            .get_or_create(&ReloadLabels {
                result: result.into(),
            })
            .inc();
    }

    /// Counts `count` scope resolutions with `result` (`hit` or `miss`).
    pub(crate) fn record_scope_lookups(&self, result: &str, count: u64) {
        self.scope_lookups
            .get_or_create(&LookupLabels {
                result: result.into(),
            })
            .inc_by(count);
    }

    /// Counts items hidden from `client`.
    pub(crate) fn record_hidden_items(&self, client: &str, count: u64) {
        self.hidden_items
            .get_or_create(&ClientLabels {
                client: client.into(),
            })
            .inc_by(count);
    }

    /// Counts a webhook delivery GitLab posted: `accepted` (queued),
    /// `dropped` (answered 2xx, not relayed: also call
    /// [`Metrics::webhook_dropped`]) or `refused` (not verified, or the
    /// queue was full).
    pub(crate) fn webhook_received(&self, outcome: &str) {
        self.webhooks
            .received
            .get_or_create(&outcome_labels(outcome))
            .inc();
    }

    /// Counts a webhook delivery dropped at reception for `reason` (a
    /// reason code from a fixed set: never a path or a project).
    pub(crate) fn webhook_dropped(&self, reason: &str) {
        self.webhooks
            .dropped
            .get_or_create(&DropLabels {
                reason: reason.into(),
            })
            .inc();
    }

    /// The Prometheus text exposition.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
