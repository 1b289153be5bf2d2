//! The delivery worker: takes what the spool says is due, posts it to the
//! client's receiver with the client's own token, and settles it in the
//! spool: delivered (removed), retried later with exponential back-off and
//! jitter, dead-lettered once past its age, or dropped when it must not go
//! any more.
//!
//! Where a delivery goes is asked again before every attempt
//! ([`Destinations::resolve`]): a client removed, a relay disabled, a rule
//! that no longer allows the URL or an object that left the scope stops the
//! delivery at once. Only `https` destinations are reached (system roots plus
//! the optional `ca_file`; SNI and hostname verification always on), plain
//! `http` only on loopback, never a URL with credentials in it; redirects
//! are not followed; the receiver's answer body is read up to a bound and
//! discarded.
//!
//! Delivery is at-least-once: a receiver that answered but whose answer was
//! not recorded (a crash, a spool write that failed) gets the delivery again,
//! with the same `Idempotency-Key` to de-duplicate it.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::QueuedDelivery;
use super::spool::{Due, Spool, now_ms};
use crate::audit::{AuditSink, WebhookAuditEvent};
use crate::config::WebhookSettings;
use crate::gitlab::{SetupError, client_tls_config};
use crate::metrics::WebhookMetrics;

/// GitLab's headers a delivery carries to the receiver (lower case), when
/// the spool kept them. Everything else GitLab sent stays behind, above all
/// `X-Gitlab-Instance` (the internal GitLab URL) and GitLab's `X-Gitlab-Token`
/// (glgate's own secret): the client's token is set from its registration.
const RELAYED_HEADERS: [&str; 4] = [
    "x-gitlab-event",
    "x-gitlab-event-uuid",
    "x-gitlab-webhook-uuid",
    "idempotency-key",
];

/// Counts an ended attempt out of its client's attempts in flight. An
/// attempt does not panic (it settles every outcome); one that did would
/// keep its slot counted until restart, never more.
fn release(
    in_flight: &mut std::collections::HashMap<String, usize>,
    done: Result<String, tokio::task::JoinError>,
) {
    if let Ok(client) = done
        && let Some(count) = in_flight.get_mut(&client)
    {
        *count = count.saturating_sub(1);
    }
}

/// How long a delivery waits when its client already has its share of
/// attempts in flight.
const DEFER_MS: u64 = 200;

/// How much of a receiver's answer is read (then discarded) so the
/// connection can be reused; a longer answer closes the connection.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// How long after an attempt's timeout a leased delivery comes back by
/// itself if its attempt never settled.
const LEASE_MARGIN: Duration = Duration::from_secs(60);

/// The figures on `/metrics` are refreshed at least this often (the oldest
/// delivery's age grows without any event).
const GAUGE_REFRESH: Duration = Duration::from_secs(5);

/// How deliveries are attempted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DeliverySettings {
    /// A delivery not delivered this long after glgate accepted it goes to
    /// the dead-letter store.
    pub(crate) max_age: Duration,
    /// The wait after a first failed attempt; it doubles at each failure…
    pub(crate) initial_backoff: Duration,
    /// …up to this (each wait is jittered between half and all of it).
    pub(crate) max_backoff: Duration,
    /// One attempt, from connecting to the end of the receiver's answer.
    pub(crate) timeout: Duration,
    /// An extra CA for the receivers' certificates, besides the system's.
    pub(crate) ca_file: Option<PathBuf>,
    /// Attempts in flight at once.
    pub(crate) concurrency: usize,
    /// Attempts in flight at once for one client: a client whose receiver
    /// hangs holds at most this many, and the others keep the rest.
    pub(crate) per_client: usize,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            max_age: Duration::from_secs(3 * 24 * 3600),
            initial_backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(15 * 60),
            timeout: Duration::from_secs(10),
            ca_file: None,
            concurrency: 16,
            per_client: 12,
        }
    }
}

impl DeliverySettings {
    /// The delivery settings of the `webhooks:` section.
    pub(crate) fn of(webhooks: &WebhookSettings) -> DeliverySettings {
        DeliverySettings {
            max_age: webhooks.max_age,
            initial_backoff: webhooks.retry_initial,
            max_backoff: webhooks.retry_max,
            timeout: webhooks.delivery_timeout,
            ca_file: webhooks.ca_file.clone(),
            ..DeliverySettings::default()
        }
    }
}

/// Where deliveries go: asked before each attempt.
pub(crate) trait Destinations: Send + Sync + 'static {
    /// Where this delivery goes now, or why it must not go at all any more
    /// (client removed, relay disabled, destination no longer allowed by its
    /// rule, object out of scope).
    fn resolve(&self, delivery: &QueuedDelivery) -> Result<Destination, Undeliverable>;
}

/// A client's receiver, opened from the sealed registration.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Destination {
    /// The client's receiver URL.
    pub(crate) url: String,
    /// The client's secret for `X-Gitlab-Token`.
    pub(crate) token: Option<String>,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Why a delivery must not go any more: it is dropped and audited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Undeliverable {
    /// A reason code (`client_removed`, `out_of_scope`, …).
    pub(crate) reason: &'static str,
}

/// The HTTP client for receivers.
type ReceiverClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The worker: one per server, for one spool.
pub(crate) struct Worker {
    spool: Spool,
    destinations: Arc<dyn Destinations>,
    client: ReceiverClient,
    settings: DeliverySettings,
    audit: AuditSink,
    metrics: WebhookMetrics,
}

/// How one attempt ended.
#[derive(Debug)]
enum Attempt {
    /// The receiver answered 2xx.
    Delivered(u16),
    /// Must not go any more.
    Drop(&'static str),
    /// Try again later: a reason code, the receiver's status if it
    /// answered, and what happened in words (for the dead-letter list).
    Failed {
        reason: &'static str,
        status: Option<u16>,
        detail: String,
    },
}

impl Worker {
    /// A worker for `spool`, its HTTP client set up (fails on a bad `ca_file`).
    pub(crate) fn new(
        spool: Spool,
        destinations: Arc<dyn Destinations>,
        settings: DeliverySettings,
        audit: AuditSink,
        metrics: WebhookMetrics,
    ) -> Result<Worker, SetupError> {
        let tls = client_tls_config(settings.ca_file.as_deref(), None)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(settings.timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Worker {
            spool,
            destinations,
            client,
            settings,
            audit,
            metrics,
        })
    }

    /// Delivers until `stopped` turns true; then lets the attempts in flight
    /// finish (each is bounded by the timeout) and returns.
    pub(crate) async fn run(self, mut stopped: watch::Receiver<bool>) {
        let worker = Arc::new(self);
        let concurrency = worker.settings.concurrency.max(1);
        let lease = worker.settings.timeout + LEASE_MARGIN;
        let per_client = worker.settings.per_client.clamp(1, concurrency);
        let mut running = JoinSet::new();
        // Attempts in flight by client; a task gives its client back on its end.
        let mut in_flight: std::collections::HashMap<String, usize> =
            std::collections::HashMap::new();
        loop {
            if *stopped.borrow() {
                break;
            }
            // Attempts that ended since the last turn give their client back.
            while let Some(done) = running.try_join_next() {
                release(&mut in_flight, done);
            }
            let free = concurrency.saturating_sub(running.len());
            if free > 0 {
                match worker.spool.take_due(now_ms(), free, lease).await {
                    Ok(due) => {
                        for due in due {
                            let count = in_flight.entry(due.delivery.client.clone()).or_default();
                            if *count >= per_client {
                                // This client's receiver has all its share:
                                // due again shortly, others go first.
                                worker
                                    .spool
                                    .defer(&due.delivery.id, now_ms().saturating_add(DEFER_MS));
                                continue;
                            }
                            *count += 1;
                            let client = due.delivery.client.clone();
                            let attempt = worker.clone().attempt(due);
                            running.spawn(async move {
                                attempt.await;
                                client
                            });
                        }
                    }
                    Err(error) => {
                        tracing::error!("webhook delivery: cannot read the spool: {error}");
                    }
                }
            }
            worker.publish_gauges();
            let wait = if running.len() >= concurrency {
                // Full: only a finished attempt makes room.
                GAUGE_REFRESH
            } else {
                worker
                    .spool
                    .next_due_ms()
                    .map_or(GAUGE_REFRESH, |next| {
                        Duration::from_millis(next.saturating_sub(now_ms()))
                    })
                    .min(GAUGE_REFRESH)
            };
            tokio::select! {
                changed = stopped.changed() => {
                    // The sender gone is a stop too.
                    if changed.is_err() {
                        break;
                    }
                }
                () = worker.spool.enqueued().notified() => {}
                Some(done) = running.join_next(), if !running.is_empty() => {
                    release(&mut in_flight, done);
                }
                () = tokio::time::sleep(wait) => {}
            }
        }
        let drain = async { while running.join_next().await.is_some() {} };
        if tokio::time::timeout(worker.settings.timeout + Duration::from_secs(1), drain)
            .await
            .is_err()
        {
            // Delivered again after the restart (at-least-once).
            running.abort_all();
        }
        worker.publish_gauges();
    }

    /// One attempt of `due`, settled in the spool, audited and counted.
    async fn attempt(self: Arc<Self>, due: Due) {
        let started = Instant::now();
        let delivery = &due.delivery;
        let number = due.attempts.saturating_add(1);
        let outcome = match self.destinations.resolve(delivery) {
            Err(undeliverable) => Attempt::Drop(undeliverable.reason),
            Ok(destination) => match destination_uri(&destination.url) {
                None => Attempt::Drop("destination_not_allowed"),
                Some(uri) => self.post(uri, &destination, delivery).await,
            },
        };
        let elapsed = started.elapsed();
        let mut event = WebhookAuditEvent::start("attempt", delivery.id.clone());
        event.client.clone_from(&delivery.client);
        event.event.clone_from(&delivery.event);
        event.object.clone_from(&delivery.object);
        event.attempt = Some(number);
        event.latency_ms = elapsed.as_secs_f64() * 1000.0;
        event.idempotency_key = delivery.idempotency_key().map(str::to_owned);
        let settled = match outcome {
            Attempt::Delivered(status) => {
                event.decision = "delivered";
                event.status = Some(status);
                self.spool.delivered(&delivery.id).await
            }
            // Out of scope is the customer's decision: the event is gone.
            Attempt::Drop(reason) if reason == "out_of_scope" => {
                event.decision = "drop";
                event.reason = reason.to_owned();
                self.spool.discard(&delivery.id).await
            }
            // Anything else follows a configuration change (a key, a client,
            // a rule removed or renamed): GitLab was told the event would be
            // delivered, so it is kept as a dead letter, to replay once the
            // configuration is right again.
            Attempt::Drop(reason) => {
                event.decision = "dead_letter";
                event.reason = reason.to_owned();
                self.spool
                    .dead_letter(&delivery.id, number, &format!("undeliverable: {reason}"))
                    .await
            }
            Attempt::Failed {
                reason,
                status,
                detail,
            } => {
                event.status = status;
                event.reason = reason.to_owned();
                let now = now_ms();
                let deadline = due
                    .since_unix_ms
                    .saturating_add(millis(self.settings.max_age));
                if now >= deadline {
                    event.decision = "dead_letter";
                    self.spool.dead_letter(&delivery.id, number, &detail).await
                } else {
                    event.decision = "retry";
                    let next = now
                        .saturating_add(millis(backoff(&self.settings, number)))
                        .min(deadline);
                    self.spool
                        .retry_later(&delivery.id, next, number, &detail)
                        .await
                }
            }
        };
        if let Err(error) = settled {
            // The lease ends and the delivery is due again: nothing is lost,
            // a delivered one may go twice (Idempotency-Key).
            tracing::error!(
                delivery = %delivery.id,
                "webhook delivery: cannot record the attempt in the spool: {error}"
            );
        }
        self.metrics
            .attempted(event.decision, elapsed.as_secs_f64());
        self.audit.record_webhook(event).await;
    }

    /// POSTs `delivery` to `uri` within the timeout.
    async fn post(
        &self,
        uri: Uri,
        destination: &Destination,
        delivery: &QueuedDelivery,
    ) -> Attempt {
        let request = match build_request(uri, destination, delivery) {
            Ok(request) => request,
            // A header value that is not a valid header (the token, as the
            // client registered it): it cannot go, now or later.
            Err(_) => return Attempt::Drop("invalid_destination_header"),
        };
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            // Read a bounded part of the answer and discard it; a longer or
            // broken answer only costs the connection, the status stands.
            let _ = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await;
            Ok::<_, hyper_util::client::legacy::Error>(status)
        };
        match tokio::time::timeout(self.settings.timeout, exchange).await {
            Err(_) => Attempt::Failed {
                reason: "timeout",
                status: None,
                detail: format!(
                    "no answer within {}",
                    humantime::format_duration(self.settings.timeout)
                ),
            },
            Ok(Err(error)) => Attempt::Failed {
                reason: if error.is_connect() {
                    "connect_error"
                } else {
                    "request_error"
                },
                status: None,
                detail: crate::diagnostic::describe(&error),
            },
            Ok(Ok(status)) if status.is_success() => Attempt::Delivered(status.as_u16()),
            Ok(Ok(status)) => Attempt::Failed {
                reason: "receiver_status",
                status: Some(status.as_u16()),
                detail: format!("the receiver answered HTTP {}", status.as_u16()),
            },
        }
    }

    fn publish_gauges(&self) {
        let stats = self.spool.stats();
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.metrics.queue_depth.set(clamp(stats.depth));
        self.metrics.queue_bytes.set(clamp(stats.bytes));
        self.metrics.dead_letters.set(clamp(stats.dead));
        self.metrics
            .queue_oldest_age
            .set(stats.oldest_age(now_ms()).as_secs_f64());
    }
}

/// The request for one attempt: the body as JSON, GitLab's identifying
/// headers, the client's token.
fn build_request(
    uri: Uri,
    destination: &Destination,
    delivery: &QueuedDelivery,
) -> Result<Request<Full<Bytes>>, http::Error> {
    let mut builder = Request::post(uri).header(CONTENT_TYPE, "application/json");
    for (name, value) in &delivery.headers {
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        if !RELAYED_HEADERS.contains(&name.as_str()) {
            continue;
        }
        if let Ok(value) = HeaderValue::from_str(value) {
            builder = builder.header(name, value);
        }
    }
    if let Some(token) = &destination.token {
        let mut value = HeaderValue::from_str(token)?;
        value.set_sensitive(true);
        builder = builder.header("x-gitlab-token", value);
    }
    builder.body(Full::new(Bytes::from(delivery.body.clone())))
}

/// The receiver URL as a URI glgate may post to: `https`, or `http` on a
/// loopback address; never with credentials in the authority.
fn destination_uri(url: &str) -> Option<Uri> {
    let uri: Uri = url.parse().ok()?;
    let authority = uri.authority()?;
    if authority.as_str().contains('@') {
        return None;
    }
    match uri.scheme_str()? {
        "https" => Some(uri),
        "http" if is_loopback(authority.host()) => Some(uri),
        _ => None,
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    host.eq_ignore_ascii_case("localhost")
        || bare
            .unwrap_or(host)
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The wait after the `attempt`-th failure: `initial_backoff` doubled per
/// failure up to `max_backoff`, then between half of it and all of it
/// (jitter spreads the retries of many deliveries that failed together).
fn backoff(settings: &DeliverySettings, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(32);
    let full = settings
        .initial_backoff
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(settings.max_backoff);
    let half = full / 2;
    let spread = u64::try_from((full - half).as_micros()).unwrap_or(u64::MAX);
    // Without randomness the wait is the whole back-off: still bounded.
    let random = getrandom::u64().unwrap_or(u64::MAX);
    half + Duration::from_micros(random % spread.saturating_add(1))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
