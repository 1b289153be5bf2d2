//! Audit events: one JSON line per request, whatever happened.
//!
//! Field names are fixed (they are the same in logs, metrics labels and
//! `policy explain`). An event never holds a credential, a query string or a
//! body. Lines are written by a dedicated task so that a slow disk applies
//! back-pressure through a bounded queue instead of blocking request handling.

use std::io::Write;
use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::AuditOutput;

/// Longest path recorded; longer ones are cut (they are refused anyway).
const MAX_PATH_CHARS: usize = 512;
/// Events queued before writers wait.
const QUEUE_DEPTH: usize = 8192;

/// One request's audit event.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct AuditEvent {
    /// RFC 3339 time the request arrived.
    pub time: String,
    /// glgate's id for the request (also sent to GitLab and the client as `X-Request-Id`).
    pub request_id: String,
    /// The client's name, or `-` when not authenticated.
    pub client: String,
    /// Peer address.
    pub remote: String,
    /// The method as received.
    pub method: String,
    /// The raw path as received (no query), bounded.
    pub path: String,
    /// The template that matched, or empty.
    pub template: String,
    /// The rule that decided, or empty.
    pub rule: String,
    /// `allow` or `deny`.
    pub decision: &'static str,
    /// Short reason code (`allowed`, `no_rule`, `unknown_token`…).
    pub reason: String,
    /// Status sent to the client.
    pub status: u16,
    /// Time spent with GitLab, in milliseconds: scope and ownership checks,
    /// then the request to its response headers, then reading an answer that
    /// is filtered (absent when nothing reached GitLab).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_ms: Option<f64>,
    /// Total time until the response body ended, in milliseconds.
    pub duration_ms: f64,
    /// Request body bytes read.
    pub bytes_in: u64,
    /// Response body bytes sent.
    pub bytes_out: u64,
    /// List items (or nested entries) removed from GitLab's answer because
    /// they lie outside the client's scope or fail the rule's `response_filter`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden_items: Option<u64>,
    /// Set when the response stream ended abnormally (client gone, upstream reset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    /// The client's shadow policy's decision, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow_decision: Option<&'static str>,
    /// The rule the shadow policy matched, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow_rule: Option<String>,
    /// The shadow policy's reason code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow_reason: Option<String>,
}

impl AuditEvent {
    /// A new event stamped now, with the path bounded.
    pub fn start(request_id: String, remote: String, method: &str, path: &str) -> AuditEvent {
        AuditEvent {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            request_id,
            client: "-".into(),
            remote,
            method: method.chars().take(16).collect(),
            path: path.chars().take(MAX_PATH_CHARS).collect(),
            decision: "deny",
            ..AuditEvent::default()
        }
    }
}

/// Sends events to the writer task.
#[derive(Clone, Debug)]
pub struct AuditSink {
    queue: mpsc::Sender<AuditEvent>,
}

impl AuditSink {
    /// Starts the writer task for `output`. Must run inside a tokio runtime.
    pub fn start(output: &AuditOutput) -> std::io::Result<AuditSink> {
        let writer: Box<dyn Write + Send> = match output {
            AuditOutput::Stdout => Box::new(std::io::stdout()),
            AuditOutput::Stderr => Box::new(std::io::stderr()),
            AuditOutput::File(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
        };
        let (queue, mut events) = mpsc::channel::<AuditEvent>(QUEUE_DEPTH);
        tokio::task::spawn_blocking(move || {
            let mut writer = std::io::LineWriter::new(writer);
            while let Some(event) = events.blocking_recv() {
                let written = serde_json::to_writer(&mut writer, &event)
                    .map_err(std::io::Error::from)
                    .and_then(|()| writer.write_all(b"\n"));
                if let Err(error) = written {
                    tracing::error!(%error, "cannot write the audit log");
                }
            }
        });
        Ok(AuditSink { queue })
    }

    /// Records an event. Waits only when the queue is full.
    pub fn record(&self, event: AuditEvent) {
        match self.queue.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => {
                let queue = self.queue.clone();
                tokio::spawn(async move {
                    let _ = queue.send(event).await;
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("the audit writer has stopped; an event was lost");
            }
        }
    }
}
