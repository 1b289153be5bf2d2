//! GitLab's response body, relayed under bounds: at most `limit` bytes, and
//! never a pause longer than `idle` between frames. Past either bound the
//! stream ends with an error, so the client sees a cleanly truncated
//! response instead of glgate holding memory or a connection forever.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};

/// Why a relayed response stream was cut.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StreamError {
    /// More bytes than `upstream.max_response_bytes`.
    #[error("GitLab's response is larger than {0} bytes")]
    TooLarge(u64),
    /// No data for `upstream.body_idle_timeout`.
    #[error("GitLab stopped sending the response body")]
    Idle,
    /// The connection failed mid-body.
    #[error("GitLab's response body was interrupted")]
    Interrupted(#[source] hyper::Error),
}

impl StreamError {
    /// A stable short code for the audit line's `error` field.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            StreamError::TooLarge(_) => "response_too_large",
            StreamError::Idle => "upstream_body_timeout",
            StreamError::Interrupted(_) => "upstream_body_error",
        }
    }
}

/// A bounded view of GitLab's response body.
#[derive(Debug)]
pub(crate) struct BoundedBody {
    inner: Incoming,
    limit: u64,
    seen: u64,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    done: bool,
}

impl BoundedBody {
    /// Bounds `inner` to `limit` bytes and `idle` pauses.
    pub(crate) fn new(inner: Incoming, limit: u64, idle: Duration) -> BoundedBody {
        BoundedBody {
            inner,
            limit,
            seen: 0,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
            done: false,
        }
    }

    fn fail(&mut self, error: StreamError) -> Poll<Option<Result<Frame<Bytes>, StreamError>>> {
        self.done = true;
        Poll::Ready(Some(Err(error)))
    }
}

impl Body for BoundedBody {
    type Data = Bytes;
    type Error = StreamError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.seen += data.len() as u64;
                    if self.seen > self.limit {
                        let limit = self.limit;
                        return self.fail(StreamError::TooLarge(limit));
                    }
                }
                let next = Instant::now() + self.idle;
                self.deadline.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => self.fail(StreamError::Interrupted(error)),
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => self.fail(StreamError::Idle),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
