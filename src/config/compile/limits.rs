//! The `limits:` section: size and time bounds, each defaulted when absent.

use serde_saphyr::Spanned;

use super::Compiler;
use crate::config::Limits;
use crate::config::raw::RawLimits;

impl Compiler<'_> {
    pub(super) fn limits(&mut self, raw: Option<&RawLimits>) -> Limits {
        let defaults = Limits::default();
        let Some(raw) = raw else {
            return defaults;
        };
        let max_body_bytes = raw
            .max_body_bytes
            .as_ref()
            .map_or(defaults.max_body_bytes, |v| v.value);
        let max_header_bytes = match &raw.max_header_bytes {
            Some(v) if (8192..=1024 * 1024).contains(&v.value) => v.value as usize,
            Some(v) => {
                self.problem(
                    v,
                    "limits.max_header_bytes",
                    format!("{} is out of range", v.value),
                    Some("from 8192 to 1048576"),
                );
                defaults.max_header_bytes
            }
            None => defaults.max_header_bytes,
        };
        Limits {
            max_body_bytes,
            max_header_bytes,
            header_read_timeout: self.duration(
                raw.header_read_timeout.as_ref(),
                "limits.header_read_timeout",
                defaults.header_read_timeout,
            ),
            idle_timeout: self.duration(
                raw.idle_timeout.as_ref(),
                "limits.idle_timeout",
                defaults.idle_timeout,
            ),
            body_read_timeout: self.duration(
                raw.body_read_timeout.as_ref(),
                "limits.body_read_timeout",
                defaults.body_read_timeout,
            ),
            send_timeout: self.duration(
                raw.send_timeout.as_ref(),
                "limits.send_timeout",
                defaults.send_timeout,
            ),
            shutdown_grace: self.duration(
                raw.shutdown_grace.as_ref(),
                "limits.shutdown_grace",
                defaults.shutdown_grace,
            ),
            max_connections: self.positive(
                raw.max_connections.as_ref(),
                "limits.max_connections",
                defaults.max_connections as u64,
            ) as usize,
            http2_max_concurrent_streams: self.positive(
                raw.http2_max_concurrent_streams.as_ref(),
                "limits.http2_max_concurrent_streams",
                u64::from(defaults.http2_max_concurrent_streams),
            ) as u32,
            http2_max_pending_reset_streams: self.positive(
                raw.http2_max_pending_reset_streams.as_ref(),
                "limits.http2_max_pending_reset_streams",
                defaults.http2_max_pending_reset_streams as u64,
            ) as usize,
            client_rate_limit: match &raw.client_rate_limit {
                Some(rate) => self
                    .rate_limit(rate, "limits.client_rate_limit")
                    .unwrap_or(defaults.client_rate_limit),
                None => defaults.client_rate_limit,
            },
            max_filtered_response_bytes: self.positive(
                raw.max_filtered_response_bytes.as_ref(),
                "limits.max_filtered_response_bytes",
                defaults.max_filtered_response_bytes as u64,
            ) as usize,
            workers: self.workers(raw.workers.as_ref()),
        }
    }

    /// `limits.workers`: at least 1, at most [`MAX_WORKERS`].
    fn workers(&mut self, raw: Option<&Spanned<u32>>) -> Option<usize> {
        let value = raw?;
        match value.value {
            0 => self.problem(value, "limits.workers", "must be at least 1".into(), None),
            count if count > MAX_WORKERS => self.problem(
                value,
                "limits.workers",
                format!("{count} is out of range"),
                Some("from 1 to 256 (leave it out for one per CPU core)"),
            ),
            count => return Some(count as usize),
        }
        None
    }
}

/// Most `limits.workers`: far beyond any core count that helps a proxy.
const MAX_WORKERS: u32 = 256;
