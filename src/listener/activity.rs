//! What one connection is doing, for the timers that close it: how many
//! requests are in flight and since when none has been (the idle timeout),
//! and how long each response has waited on the client to take its bytes
//! (the send timeout).

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Instant;

/// What a connection is doing. Shared by the connection's task, its
/// watcher and its requests' response bodies.
#[derive(Debug)]
pub(super) struct Activity {
    /// When the connection was accepted; the stamps below count from here.
    opened: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `opened` when the last request in flight ended.
    idle_since_ms: AtomicU64,
    /// The send stamp of every response not yet dropped (see [`Tracked`]);
    /// dead entries are pruned as new ones come.
    responses: Mutex<Vec<Weak<AtomicU64>>>,
}

impl Activity {
    pub(super) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            responses: Mutex::new(Vec::new()),
        })
    }

    fn millis_since_open(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Marks a request in flight until the returned guard is dropped (when its
    /// response body has been sent, or the request was abandoned).
    pub(super) fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// Resolves once the connection has had no request in flight for `timeout`.
    pub(super) async fn idle_for(&self, timeout: Duration) {
        self.quiet_since(self.opened, timeout).await;
    }

    /// Resolves once the connection has had no request in flight for `grace`,
    /// counted from now at the earliest.
    pub(super) async fn quiet_for(&self, grace: Duration) {
        self.quiet_since(Instant::now(), grace).await;
    }

    async fn quiet_since(&self, start: Instant, timeout: Duration) {
        let mut deadline = start + timeout;
        loop {
            tokio::time::sleep_until(deadline).await;
            if self.in_flight.load(Ordering::Acquire) > 0 {
                // Busy: look again one timeout later (cheap; one timer per connection).
                deadline = Instant::now() + timeout;
                continue;
            }
            let idle_since = start.max(
                self.opened + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire)),
            );
            if idle_since + timeout <= Instant::now() {
                return;
            }
            deadline = idle_since + timeout;
        }
    }

    /// Resolves once a response has waited `timeout` on the client: handed a
    /// chunk to the connection, and not been asked for the next one since.
    pub(super) async fn stalled_for(&self, timeout: Duration) {
        loop {
            let deadline = match self.oldest_wait() {
                Some(since) if since + timeout <= Instant::now() => return,
                Some(since) => since + timeout,
                // Nothing waits now; whatever starts waiting is seen at the
                // next look, before its own deadline.
                None => Instant::now() + timeout,
            };
            tokio::time::sleep_until(deadline).await;
        }
    }

    /// Since when the response waiting longest on the client has waited.
    fn oldest_wait(&self) -> Option<Instant> {
        let responses = self
            .responses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        responses
            .iter()
            .filter_map(Weak::upgrade)
            .map(|stamp| stamp.load(Ordering::Acquire))
            .filter(|&stamp| stamp != NOT_WAITING)
            .min()
            .map(|stamp| self.opened + Duration::from_millis(stamp - 1))
    }

    /// A new response's send stamp, waiting from now (hyper has it, and will
    /// ask for its body when the client can take bytes).
    fn register(&self) -> Arc<AtomicU64> {
        let stamp = Arc::new(AtomicU64::new(self.millis_since_open() + 1));
        let mut responses = self
            .responses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if responses.len() == responses.capacity() {
            // Prune before growing: the list stays about as long as the
            // number of responses alive at once.
            responses.retain(|stamp| stamp.strong_count() > 0);
        }
        responses.push(Arc::downgrade(&stamp));
        stamp
    }
}

/// A send stamp's value while the response is not waiting on the client
/// (its body is being polled, or has ended). Otherwise the stamp holds
/// milliseconds after `opened`, plus one.
const NOT_WAITING: u64 = 0;

/// One request in flight on a connection (see [`Activity::start`]).
#[derive(Debug)]
pub(super) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let since = self.0.millis_since_open();
        // Stamp before the count can reach zero, so the idle timer never sees
        // "none in flight" with a stale stamp.
        self.0.idle_since_ms.fetch_max(since, Ordering::AcqRel);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted in flight until it ends,
/// and stamps when it last handed a chunk over that the connection has not
/// come back for: hyper asks for the next chunk only once the client has
/// room (HTTP/2 flow-control window, TCP send buffer), so a stamp that gets
/// old means the client takes nothing.
pub(super) struct Tracked<B> {
    inner: B,
    stamp: Arc<AtomicU64>,
    activity: Arc<Activity>,
    send_timeout: Duration,
    /// Tells the body it is dropped because the client stalled.
    on_stall: fn(&mut B),
    _in_flight: InFlight,
}

impl<B> Tracked<B> {
    pub(super) fn new(
        inner: B,
        in_flight: InFlight,
        send_timeout: Duration,
        on_stall: fn(&mut B),
    ) -> Tracked<B> {
        let activity = in_flight.0.clone();
        Tracked {
            inner,
            stamp: activity.register(),
            activity,
            send_timeout,
            on_stall,
            _in_flight: in_flight,
        }
    }

    /// Whether this response has waited on the client for the send timeout.
    fn stalled(&self) -> bool {
        match self.stamp.load(Ordering::Acquire) {
            NOT_WAITING => false,
            stamp => {
                let since = self.activity.opened + Duration::from_millis(stamp - 1);
                since + self.send_timeout <= Instant::now()
            }
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Tracked<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        // Asked again: the client took what it was given. Waiting for the
        // body itself (GitLab streaming slowly) is not the client's doing.
        self.stamp.store(NOT_WAITING, Ordering::Release);
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(_))) = &polled {
            let now = self.activity.millis_since_open() + 1;
            self.stamp.store(now, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for Tracked<B> {
    fn drop(&mut self) {
        if self.stalled() {
            (self.on_stall)(&mut self.inner);
        }
    }
}
