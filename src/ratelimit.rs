//! Per-client request rate limits: one token bucket per client name.
//!
//! A bucket holds up to `burst` tokens and refills at `per_second`; each
//! request takes one. When it is empty the caller learns how long until the
//! next token, which becomes a whole-second `Retry-After` (python-gitlab
//! reads it with `int()`). Buckets are keyed by client name, so they survive
//! a reload, and a changed limit applies at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::RateLimit;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets for every client.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<Arc<str>, Bucket>>,
}

impl RateLimiter {
    /// Takes one token for `client` at `now`, or says how long to wait for one.
    pub(crate) fn acquire(
        &self,
        client: &Arc<str>,
        limit: RateLimit,
        now: Instant,
    ) -> Result<(), Duration> {
        // A poisoned lock only means another request panicked mid-update; the
        // bucket state is still a valid number.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let capacity = f64::from(limit.burst);
        let bucket = buckets.entry(client.clone()).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * limit.per_second).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / limit.per_second,
            ))
        }
    }
}

/// `Retry-After` in whole seconds, never 0.
pub(crate) fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_sustained_rate() {
        let limiter = RateLimiter::default();
        let client: Arc<str> = "echoes".into();
        let limit = RateLimit {
            per_second: 2.0,
            burst: 3,
        };
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.acquire(&client, limit, start).is_ok());
        }
        let wait = limiter.acquire(&client, limit, start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert_eq!(retry_after_seconds(wait), 1);
        assert!(
            limiter
                .acquire(&client, limit, start + Duration::from_millis(500))
                .is_ok()
        );
        assert!(
            limiter
                .acquire(&client, limit, start + Duration::from_millis(500))
                .is_err()
        );
        let other: Arc<str> = "other".into();
        assert!(
            limiter.acquire(&other, limit, start).is_ok(),
            "buckets are per client"
        );
    }

    #[test]
    fn slow_rates_round_up() {
        let limiter = RateLimiter::default();
        let client: Arc<str> = "c".into();
        let limit = RateLimit {
            per_second: 0.1,
            burst: 1,
        };
        let now = Instant::now();
        limiter.acquire(&client, limit, now).unwrap();
        assert_eq!(
            retry_after_seconds(limiter.acquire(&client, limit, now).unwrap_err()),
            10
        );
    }
}
