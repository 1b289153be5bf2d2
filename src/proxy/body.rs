//! Bodies: the bounded read of a request body, and the response body that
//! records the audit event when it ends (or is dropped), so that every request
//! has exactly one audit line with the bytes actually sent.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use prometheus_client::metrics::gauge::Gauge;

use super::BoxError;
use super::error::ProxyError;
use crate::audit::AuditEvent;
use crate::gateway::Gateway;
use crate::metrics::RequestLabels;

/// Reads a request body of at most `limit` bytes within `timeout`. A declared
/// `Content-Length` over the limit is refused before anything is read.
pub(crate) async fn read_limited(
    headers: &HeaderMap,
    body: Incoming,
    limit: u64,
    timeout: Duration,
) -> Result<Bytes, ProxyError> {
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(ProxyError::BodyTooLarge(limit));
    }
    let limited = http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    match tokio::time::timeout(timeout, limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            Err(ProxyError::BodyTooLarge(limit))
        }
        Ok(Err(_)) => Err(ProxyError::BodyRead),
        Err(_) => Err(ProxyError::BodyTimeout),
    }
}

/// A request's audit event before its response body has ended, with what
/// it takes to complete and record it then.
pub(crate) struct AuditDraft {
    /// The event, complete but for duration, bytes out and stream errors.
    pub event: AuditEvent,
    /// When the request arrived.
    pub started: Instant,
    /// Where to record it.
    pub gateway: Arc<Gateway>,
    /// Counts the request in flight until the event is completed.
    pub in_flight: InFlight,
}

/// One request counted in `glgate_requests_in_flight`, from when
/// [`super::handle`] starts it until it is dropped: when its audit event is
/// completed, or when the request is abandoned before it has one (the
/// connection closed while GitLab was being asked).
pub(crate) struct InFlight(Gauge);

impl InFlight {
    /// Counts one more request in `gauge`.
    pub(crate) fn start(gauge: &Gauge) -> InFlight {
        gauge.inc();
        InFlight(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl AuditDraft {
    /// Completes the event and counts it in the metrics; the event is then
    /// for the audit sink.
    fn complete(
        mut self,
        bytes_out: u64,
        error: Option<&'static str>,
    ) -> (AuditEvent, Arc<Gateway>) {
        self.event.bytes_out = bytes_out;
        self.event.error = error;
        let elapsed = self.started.elapsed();
        self.event.duration_ms = millis(elapsed);
        self.gateway
            .metrics
            .request_duration
            .observe(elapsed.as_secs_f64());
        if let Some(shadow) = self
            .event
            .shadow_decision
            .filter(|s| *s != self.event.decision)
        {
            self.gateway
                .metrics
                .shadow_disagreements
                .get_or_create(&crate::metrics::ShadowLabels {
                    client: self.event.client.clone(),
                    decision: self.event.decision.into(),
                    shadow_decision: shadow.into(),
                })
                .inc();
        }
        if let Some(upstream_ms) = self.event.upstream_ms {
            self.gateway
                .metrics
                .upstream_latency
                .observe(upstream_ms / 1000.0);
        }
        // The labels borrow the event's strings for the lookup and give them
        // back: the family clones a label set only the first time it sees it,
        // so a request costs no allocation here (three clones before).
        let labels = RequestLabels {
            client: std::mem::take(&mut self.event.client),
            rule: std::mem::take(&mut self.event.rule),
            decision: self.event.decision,
            reason: std::mem::take(&mut self.event.reason),
            status: self.event.status,
        };
        self.gateway.metrics.requests.get_or_create(&labels).inc();
        let RequestLabels {
            client,
            rule,
            reason,
            ..
        } = labels;
        (self.event.client, self.event.rule, self.event.reason) = (client, rule, reason);
        drop(self.in_flight);
        (self.event, self.gateway)
    }
}

/// An audit event waiting for room in the audit queue.
struct Pending {
    event: Box<AuditEvent>,
    gateway: Arc<Gateway>,
    room: Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
}

/// Milliseconds with microsecond precision, for audit lines.
pub(super) fn millis(duration: Duration) -> f64 {
    (duration.as_micros() as f64) / 1000.0
}

/// A response body that counts what it sends and records the audit event
/// when the stream ends, fails, or is dropped (client gone).
///
/// When the audit queue is full, the end of the stream waits until the
/// event is queued: a slow audit output slows responses down instead of
/// losing lines.
pub(crate) struct AuditedBody {
    inner: http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>,
    sent: u64,
    draft: Option<AuditDraft>,
    pending: Option<Pending>,
    /// Dropped because the client took none of its bytes for
    /// `limits.send_timeout` (audited `send_stalled`, not `client_gone`).
    stalled: bool,
}

impl AuditedBody {
    /// Wraps `inner`; `draft` is completed and recorded exactly once.
    pub(crate) fn new(
        inner: http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>,
        draft: AuditDraft,
    ) -> AuditedBody {
        AuditedBody {
            inner,
            sent: 0,
            draft: Some(draft),
            pending: None,
            stalled: false,
        }
    }

    /// Wraps `inner` with no audit event: for answers whose audit line is
    /// recorded before they are sent (webhook deliveries from GitLab).
    pub(crate) fn unaudited(
        inner: http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>,
    ) -> AuditedBody {
        AuditedBody {
            inner,
            sent: 0,
            draft: None,
            pending: None,
            stalled: false,
        }
    }

    /// Marks the body as given up on because the client stalled; it is
    /// about to be dropped.
    pub(crate) fn stalled(&mut self) {
        self.stalled = true;
    }

    /// Records the event: queued at once, or kept to wait for room.
    fn done(&mut self, error: Option<&'static str>) {
        if let Some(draft) = self.draft.take() {
            let (event, gateway) = draft.complete(self.sent, error);
            if let Err(event) = gateway.audit.try_record(event) {
                let room = Box::pin(gateway.audit.room());
                self.pending = Some(Pending {
                    event,
                    gateway,
                    room,
                });
            }
        }
    }

    /// Polls a waiting event into the queue; ready once it is queued.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while let Some(pending) = &mut self.pending {
            if pending.room.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let Some(Pending { event, gateway, .. }) = self.pending.take() else {
                break;
            };
            if let Err(event) = gateway.audit.try_record(*event) {
                let room = Box::pin(gateway.audit.room());
                self.pending = Some(Pending {
                    event,
                    gateway,
                    room,
                });
            }
        }
        Poll::Ready(())
    }
}

impl Body for AuditedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.pending.is_some() {
            // The stream is over; it ends once its audit event is queued.
            return self.poll_pending(cx).map(|()| None);
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.sent += data.len() as u64;
                }
                if self.inner.is_end_stream() {
                    self.done(None);
                }
            }
            Poll::Ready(Some(Err(error))) => {
                let code = error
                    .downcast_ref::<crate::upstream::StreamError>()
                    .map_or("stream_error", |e| e.code());
                self.done(Some(code));
            }
            Poll::Ready(None) => {
                self.done(None);
                if self.pending.is_some() {
                    return self.poll_pending(cx).map(|()| None);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        // Not over while an audit event waits for room in the queue.
        self.inner.is_end_stream() && self.pending.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for AuditedBody {
    fn drop(&mut self) {
        let error = match (self.inner.is_end_stream(), self.stalled) {
            (true, _) => None,
            (false, true) => Some("send_stalled"),
            (false, false) => Some("client_gone"),
        };
        if let Some(draft) = self.draft.take() {
            let (event, gateway) = draft.complete(self.sent, error);
            gateway.audit.record(event);
        }
        // The client is gone: what waited for room cannot wait any longer.
        if let Some(Pending { event, gateway, .. }) = self.pending.take() {
            gateway.audit.record(*event);
        }
    }
}
