//! The admin listener: `/live`, `/ready` and `/metrics`; with the webhook
//! relay, `GET /webhooks/status`, `GET /webhooks/dead-letters` and
//! `POST /webhooks/replay` (the running server holds the spool's lock, so
//! `glgate webhooks …` asks here).
//!
//! `/ready` asks GitLab for the token's user (`GET /api/v4/user`) and caches
//! the answer briefly, so probes never hammer GitLab.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, watch};

use crate::gateway::Gateway;
use crate::listener;
use crate::proxy::Connection;

/// How long a readiness answer is reused.
const READY_CACHE: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct Readiness {
    checked: Instant,
    ready: bool,
    detail: String,
}

/// Serves the admin endpoints until `stopped` changes, bounded like the
/// proxy's listener (`limits:`) but with its own cap, `admin.max_connections`:
/// a flood of the admin port never takes the proxy's slots.
pub(crate) async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    stopped: watch::Receiver<bool>,
) {
    let config = &gateway.snapshot().config;
    let settings = listener::Settings {
        name: "admin",
        max_connections: config.admin_max_connections,
        limits: config.limits.clone(),
        refused: gateway.metrics.admin_connections_refused.clone(),
        open: gateway.metrics.open_connections_of("admin"),
        workers: None,
    };
    let handler = Arc::new(Admin {
        gateway: gateway.clone(),
        cache: Arc::new(Mutex::new(None)),
    });
    listener::serve(listener, settings, handler, None, stopped).await;
}

/// The admin endpoints, with the readiness cache they share.
struct Admin {
    gateway: Arc<Gateway>,
    cache: Arc<Mutex<Option<Readiness>>>,
}

impl listener::Handler for Admin {
    type Body = Full<Bytes>;

    fn handle(
        &self,
        _connection: &Arc<Connection>,
        request: Request<Incoming>,
    ) -> Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>> {
        Box::pin(answer(self.gateway.clone(), self.cache.clone(), request))
    }
}

/// The webhook queue's fill ratio from which `/ready` says it is near full.
const WEBHOOK_QUEUE_NEAR_FULL: f64 = 0.9;

async fn answer(
    gateway: Arc<Gateway>,
    cache: Arc<Mutex<Option<Readiness>>>,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    match request.uri().path() {
        "/live" => text(StatusCode::OK, "text/plain", "ok\n".into()),
        "/ready" => {
            let readiness = ready(&gateway, &cache).await;
            let status = if readiness.ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            let expires_at = gateway
                .snapshot()
                .upstream
                .credential()
                .expires_at()
                .map(crate::credential::format_date);
            let mut body = serde_json::json!({
                "ready": readiness.ready,
                "upstream": readiness.detail,
                "token_expires_at": expires_at,
                // Still ready: the running settings serve; a restart applies the new ones.
                "restart_pending": gateway.restart_pending(),
            });
            if let Some(spool) = &gateway.webhook_spool {
                // Still ready (API requests are served), but degraded: a full
                // queue answers GitLab 503, and GitLab disables a hook that fails.
                let fill = spool.stats().fill_ratio();
                body["webhook_queue"] = serde_json::json!({
                    "fill_ratio": (fill * 1000.0).round() / 1000.0,
                    "near_full": fill >= WEBHOOK_QUEUE_NEAR_FULL,
                });
                if fill >= WEBHOOK_QUEUE_NEAR_FULL {
                    body["degraded"] = serde_json::Value::from("webhook_queue_near_full");
                }
            }
            text(status, "application/json", body.to_string())
        }
        "/metrics" => {
            let expiry = gateway.snapshot().upstream.credential().expires_at();
            gateway
                .metrics
                .upstream_token_expiry
                .set(expiry.unwrap_or(0));
            text(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                gateway.metrics.encode(),
            )
        }
        path if path.starts_with("/webhooks/") => webhooks(&gateway, request).await,
        _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

/// Largest `POST /webhooks/replay` body read.
const MAX_REPLAY_BODY: usize = 4096;

/// The webhook spool's endpoints.
async fn webhooks(gateway: &Gateway, request: Request<Incoming>) -> Response<Full<Bytes>> {
    use http::Method;
    use http_body_util::{BodyExt, Limited};

    use crate::webhooks::spool;

    let message = |status: StatusCode, said: &str| {
        let body = serde_json::json!({ "message": said });
        text(status, "application/json", body.to_string())
    };
    let Some(spool) = &gateway.webhook_spool else {
        return message(
            StatusCode::NOT_FOUND,
            "the webhook relay is not configured (no webhooks: section)",
        );
    };
    let json =
        |value: serde_json::Value| text(StatusCode::OK, "application/json", value.to_string());
    match (request.method().clone(), request.uri().path()) {
        (Method::GET, "/webhooks/status") => json(spool::admin_status(spool)),
        (Method::GET, "/webhooks/dead-letters") => match spool.dead_letters().await {
            Ok(list) => json(serde_json::json!({ "dead_letters": list })),
            Err(error) => message(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
        },
        (Method::POST, "/webhooks/replay") => {
            let Ok(body) = Limited::new(request.into_body(), MAX_REPLAY_BODY)
                .collect()
                .await
            else {
                return message(
                    StatusCode::BAD_REQUEST,
                    "the body could not be read (at most 4096 bytes)",
                );
            };
            match spool::admin_replay(spool, &body.to_bytes()).await {
                Ok(answer) => json(answer),
                Err(spool::AdminReplayError::Request) => message(
                    StatusCode::BAD_REQUEST,
                    &spool::AdminReplayError::Request.to_string(),
                ),
                Err(error) => message(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
            }
        }
        (_, "/webhooks/status" | "/webhooks/dead-letters" | "/webhooks/replay") => message(
            StatusCode::METHOD_NOT_ALLOWED,
            "GET /webhooks/status, GET /webhooks/dead-letters, POST /webhooks/replay",
        ),
        _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

async fn ready(gateway: &Gateway, cache: &Mutex<Option<Readiness>>) -> Readiness {
    let mut cached = cache.lock().await;
    if let Some(readiness) = cached
        .as_ref()
        .filter(|r| r.checked.elapsed() < READY_CACHE)
    {
        return readiness.clone();
    }
    let snapshot = gateway.snapshot();
    let credential = snapshot.upstream.credential();
    let expired = credential
        .expires_at()
        .is_some_and(|at| at <= crate::credential::now_unix());
    let (ready, detail) = if credential.health() == crate::credential::Health::Unavailable {
        (false, "no valid GitLab credential".to_owned())
    } else if expired && credential.health() == crate::credential::Health::Usable {
        // An expired OAuth access token is never Usable, so this is a token
        // past its expiry date: GitLab refuses it.
        (false, "token expired".to_owned())
    } else {
        // The admin listener is the operator's: the cause is named in words.
        match snapshot.upstream.send_own("/api/v4/user").await {
            Ok(response) if response.status().is_success() => (true, "token accepted".to_owned()),
            Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
                (false, "token rejected".to_owned())
            }
            Ok(response) => (
                false,
                format!(
                    "unexpected answer from GitLab: HTTP {}",
                    response.status().as_u16()
                ),
            ),
            Err(crate::upstream::UpstreamError::CredentialUnavailable(_)) => {
                (false, "no valid GitLab credential".to_owned())
            }
            Err(error) => (
                false,
                format!("unreachable: {}", crate::diagnostic::describe(&error)),
            ),
        }
    };
    let readiness = Readiness {
        checked: Instant::now(),
        ready,
        detail,
    };
    *cached = Some(readiness.clone());
    readiness
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
