//! Audit events: one JSON line per request, whatever happened.
//!
//! Field names are fixed (they are the same in logs, metrics labels and
//! `policy explain`). An event never holds a credential, a query string or a
//! body. Lines are written by a dedicated thread through a bounded queue, so
//! a slow disk never blocks request handling and never grows memory; an event
//! that does not fit is counted and reported, never lost silently. A reload
//! reopens the output, so log rotation needs no restart.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use prometheus_client::metrics::counter::Counter;
use serde::Serialize;

use crate::config::AuditOutput;

/// Longest path recorded; longer ones are cut (they are refused anyway).
const MAX_PATH_CHARS: usize = 512;
/// Events queued for the writer thread; beyond this they are dropped and
/// counted. At a few hundred bytes each, a full queue holds a few MiB.
pub(crate) const QUEUE_DEPTH: usize = 8192;

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
    /// GitLab's `X-Request-Id` of its answer (bounded, printable), to follow
    /// a support case into GitLab's logs; glgate's own id replaces it towards
    /// the client. Absent when GitLab was not asked or did not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_request_id: Option<String>,
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
    /// The hook registration was rewritten for the webhook relay (its `url`
    /// and `token` replaced by glgate's): the one declared exception to
    /// forwarding exactly what was checked.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub webhook_relay: bool,
}

impl AuditEvent {
    /// A new event stamped now, with the path bounded.
    pub fn start(request_id: String, remote: String, method: &str, path: &str) -> AuditEvent {
        AuditEvent {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            request_id,
            client: "-".into(),
            remote,
            method: bounded(method, 16),
            path: bounded(path, MAX_PATH_CHARS),
            decision: "deny",
            ..AuditEvent::default()
        }
    }
}

impl AuditEvent {
    /// Appends the event as one JSON object to `out`: the same bytes as
    /// `serde_json::to_writer` (same field order, same skipped fields, same
    /// escaping and number formatting; `the_json_line_is_serde_json_s` checks
    /// it), written straight into the writer thread's line buffer. The keys
    /// are literals, and a string that needs no escaping (all of them, almost
    /// always) is copied as it is: serde_json escapes every key and value
    /// byte by byte, which was the audit thread's largest cost per request.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"time\":");
        json_str(out, &self.time);
        out.extend_from_slice(b",\"request_id\":");
        json_str(out, &self.request_id);
        out.extend_from_slice(b",\"client\":");
        json_str(out, &self.client);
        out.extend_from_slice(b",\"remote\":");
        json_str(out, &self.remote);
        out.extend_from_slice(b",\"method\":");
        json_str(out, &self.method);
        out.extend_from_slice(b",\"path\":");
        json_str(out, &self.path);
        out.extend_from_slice(b",\"template\":");
        json_str(out, &self.template);
        out.extend_from_slice(b",\"rule\":");
        json_str(out, &self.rule);
        out.extend_from_slice(b",\"decision\":");
        json_str(out, self.decision);
        out.extend_from_slice(b",\"reason\":");
        json_str(out, &self.reason);
        out.extend_from_slice(b",\"status\":");
        json_number(out, &self.status);
        if let Some(upstream_ms) = &self.upstream_ms {
            out.extend_from_slice(b",\"upstream_ms\":");
            json_number(out, upstream_ms);
        }
        out.extend_from_slice(b",\"duration_ms\":");
        json_number(out, &self.duration_ms);
        out.extend_from_slice(b",\"bytes_in\":");
        json_number(out, &self.bytes_in);
        out.extend_from_slice(b",\"bytes_out\":");
        json_number(out, &self.bytes_out);
        if let Some(hidden_items) = &self.hidden_items {
            out.extend_from_slice(b",\"hidden_items\":");
            json_number(out, hidden_items);
        }
        if let Some(id) = &self.upstream_request_id {
            out.extend_from_slice(b",\"upstream_request_id\":");
            json_str(out, id);
        }
        if let Some(error) = self.error {
            out.extend_from_slice(b",\"error\":");
            json_str(out, error);
        }
        if let Some(decision) = self.shadow_decision {
            out.extend_from_slice(b",\"shadow_decision\":");
            json_str(out, decision);
        }
        if let Some(rule) = &self.shadow_rule {
            out.extend_from_slice(b",\"shadow_rule\":");
            json_str(out, rule);
        }
        if let Some(reason) = &self.shadow_reason {
            out.extend_from_slice(b",\"shadow_reason\":");
            json_str(out, reason);
        }
        if self.webhook_relay {
            out.extend_from_slice(b",\"webhook_relay\":true");
        }
        out.push(b'}');
    }
}

/// Appends `text` as a JSON string. JSON escapes only `"`, `\` and control
/// characters (below 0x20); a string with none is copied between quotes, any
/// other goes through serde_json, so the escaping is serde_json's exactly.
fn json_str(out: &mut Vec<u8>, text: &str) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        // Serializing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
    }
}

/// Appends a number as serde_json writes it (itoa, ryu; `null` for a
/// non-finite float).
fn json_number(out: &mut Vec<u8>, number: &impl Serialize) {
    // Serializing a number into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, number);
}

/// `text` cut to at most `max` characters. Copied at once when it has no
/// more bytes than `max` (then it has no more characters either), which is
/// almost always: collecting char by char costs a reallocation every few bytes.
fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        text.to_owned()
    } else {
        text.chars().take(max).collect()
    }
}

/// One webhook delivery's audit event: written when GitLab's delivery is
/// received (accepted, dropped or refused), at each attempt to deliver it to
/// the client's receiver, and when it is dead-lettered or replayed. Like
/// [`AuditEvent`], it never holds a secret (no token, no relay URL, no body).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct WebhookAuditEvent {
    /// RFC 3339 time of this step.
    pub time: String,
    /// Always `"webhook"`: tells these lines from request lines.
    pub kind: &'static str,
    /// `received`, `attempt`, `dead_letter` or `replay`.
    pub phase: &'static str,
    /// glgate's id for the delivery (stable across attempts).
    pub delivery_id: String,
    /// The client whose hook it is (`-` when unknown).
    pub client: String,
    /// Peer address the delivery came from (for `received`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub remote: String,
    /// `X-Gitlab-Event` as GitLab sent it (e.g. `Push Hook`).
    pub event: String,
    /// The project or group the event belongs to (full path), `-` if unknown.
    pub object: String,
    /// `accept`, `drop`, `refuse` (received); `delivered`, `retry`,
    /// `dead_letter`, `drop` (attempts).
    pub decision: &'static str,
    /// Why, as a reason code (empty when delivered).
    pub reason: String,
    /// Payload fields the relay policy removed (paths as matched).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields_removed: Vec<String>,
    /// Delivery attempt number, from 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// HTTP status answered (to GitLab for `received`, by the receiver for attempts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Time taken by this step.
    pub latency_ms: f64,
    /// GitLab's `Idempotency-Key`, the same on every retry of one event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

impl WebhookAuditEvent {
    /// A new event stamped now for `phase` of delivery `delivery_id`.
    pub fn start(phase: &'static str, delivery_id: String) -> WebhookAuditEvent {
        WebhookAuditEvent {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            kind: "webhook",
            phase,
            delivery_id,
            client: "-".into(),
            object: "-".into(),
            decision: "drop",
            ..WebhookAuditEvent::default()
        }
    }
}

/// What the writer thread writes: a request's line or a webhook step's line.
// Requests are the common case: boxing them would cost an allocation per
// request; the rarer webhook event is boxed instead.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum AuditRecord {
    Request(AuditEvent),
    Webhook(Box<WebhookAuditEvent>),
}

/// Sends events to the writer thread.
///
/// The queue is bounded ([`QUEUE_DEPTH`] events) and recording never blocks
/// a thread. When the queue is full, a finished response waits (without
/// blocking: [`AuditSink::room`]) until the writer has caught up, so a slow
/// disk slows clients down rather than losing audit lines, and memory stays
/// bounded by the requests in flight. Only an event whose client went away
/// meanwhile may go over the bound, up to twice [`QUEUE_DEPTH`]; past that it
/// is dropped, **counted** (`glgate_audit_events_dropped_total`, see
/// [`AuditSink::dropped`]) and reported in glgate's own log (at most once a
/// second, with the running total), so a lost line is never silent.
#[derive(Clone, Debug)]
pub struct AuditSink {
    handle: Arc<Handle>,
    dropped: Counter,
    last_report: Arc<AtomicU64>,
}

/// The queue between the request path and the writer thread.
#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    /// Signalled only when the writer is parked on an empty queue.
    wake: Condvar,
    /// Notified when the writer has taken a batch (the queue has room again).
    room: tokio::sync::Notify,
    depth: usize,
}

#[derive(Debug, Default)]
struct Queue {
    events: Vec<AuditRecord>,
    /// A freshly opened output ([`AuditSink::switch_to`]) and how many of
    /// the queued events were recorded before it, which still go to the old one.
    reopened: Option<(usize, OpenOutput)>,
    /// The writer waits on `wake` and must be signalled.
    parked: bool,
    /// Every sink is gone: write what is left and stop.
    closed: bool,
}

/// An audit output, opened: what the writer thread writes to.
///
/// A reload opens the configured output first ([`OpenOutput::open`], which
/// may fail and then changes nothing) and hands it to the sink
/// ([`AuditSink::switch_to`], which cannot fail) only once the rest of the
/// new config is ready too.
pub(crate) struct OpenOutput(Box<dyn Write + Send>);

impl std::fmt::Debug for OpenOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpenOutput")
    }
}

impl OpenOutput {
    /// Opens `output`; a file is created if missing and appended to, so a
    /// file moved away by log rotation is replaced by a new one.
    pub(crate) fn open(output: &AuditOutput) -> std::io::Result<OpenOutput> {
        Ok(OpenOutput(match output {
            AuditOutput::Stdout => Box::new(std::io::stdout()),
            AuditOutput::Stderr => Box::new(std::io::stderr()),
            AuditOutput::File(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
        }))
    }
}

/// Owned by every clone of a sink; the last one dropped stops the writer.
#[derive(Debug)]
struct Handle(Arc<Shared>);

impl Drop for Handle {
    fn drop(&mut self) {
        lock(&self.0.queue).closed = true;
        self.0.wake.notify_one();
    }
}

/// A poisoned lock still holds a usable queue (a panic while holding it
/// cannot leave a `Vec` push half done).
fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    queue
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How long the writer lets events gather after writing a batch. Under load
/// this turns one thread wake-up per request into one per pause; an event
/// arriving while the writer is parked is still written at once.
const BATCH_PAUSE: Duration = Duration::from_millis(2);

impl AuditSink {
    /// Opens `output` and starts the writer thread (`glgate-audit`).
    ///
    /// The thread takes every queued event at once, serializes them into a
    /// buffer and writes it out, then pauses briefly so the next batch can
    /// gather: a busy proxy makes a few large writes a second while an idle
    /// one has every line on disk as soon as it is recorded. It ends, after a
    /// last flush, when every sink is dropped.
    pub(crate) fn start(output: &AuditOutput) -> std::io::Result<AuditSink> {
        AuditSink::with_writer(OpenOutput::open(output)?.0, QUEUE_DEPTH)
    }

    /// Has the writer thread write to `output` from now on (a reload: the
    /// file may have been moved away by log rotation, or the config may name
    /// another output). Events recorded before this call still go to the old
    /// output, every later one to the new; the old one is flushed and closed.
    pub(crate) fn switch_to(&self, output: OpenOutput) {
        let shared = &self.handle.0;
        let mut queue = lock(&shared.queue);
        // A switch the writer has not made yet keeps its split point: the
        // events between the two reopens go to the newest output.
        let before = match queue.reopened.take() {
            Some((before, _superseded)) => before,
            None => queue.events.len(),
        };
        queue.reopened = Some((before, output));
        let wake = std::mem::take(&mut queue.parked);
        drop(queue);
        if wake {
            shared.wake.notify_one();
        }
    }

    fn with_writer(writer: Box<dyn Write + Send>, depth: usize) -> std::io::Result<AuditSink> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            room: tokio::sync::Notify::new(),
            depth,
        });
        let for_writer = shared.clone();
        std::thread::Builder::new()
            .name("glgate-audit".into())
            .spawn(move || write_events(&for_writer, writer))?;
        Ok(AuditSink {
            handle: Arc::new(Handle(shared)),
            dropped: Counter::default(),
            last_report: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Queues an event if the queue has room; otherwise gives it back, and
    /// the caller waits for [`AuditSink::room`] and tries again.
    pub(crate) fn try_record(&self, event: AuditEvent) -> Result<(), Box<AuditEvent>> {
        self.push(event, self.handle.0.depth, AuditRecord::Request)
            .map_err(Box::new)
    }

    /// Records a webhook step, waiting for room when the queue is full
    /// (a webhook line is never dropped for a slow output).
    pub(crate) async fn record_webhook(&self, event: WebhookAuditEvent) {
        let mut event = Box::new(event);
        loop {
            match self.push(event, self.handle.0.depth, AuditRecord::Webhook) {
                Ok(()) => return,
                Err(back) => {
                    event = back;
                    self.room().await;
                }
            }
        }
    }

    /// Queues an event that cannot wait (its client went away): it may go
    /// over the bound up to twice [`QUEUE_DEPTH`]; past that it is dropped,
    /// counted and reported.
    pub(crate) fn record(&self, event: AuditEvent) {
        if self
            .push(event, self.handle.0.depth * 2, AuditRecord::Request)
            .is_err()
        {
            self.lost("the audit queue is full (slow audit output)");
        }
    }

    /// Queues `event` (as `wrap` makes it a record) if fewer than `bound`
    /// are queued; otherwise gives it back.
    fn push<T>(&self, event: T, bound: usize, wrap: fn(T) -> AuditRecord) -> Result<(), T> {
        let shared = &self.handle.0;
        let mut queue = lock(&shared.queue);
        if queue.events.len() >= bound {
            return Err(event);
        }
        queue.events.push(wrap(event));
        let wake = std::mem::take(&mut queue.parked);
        drop(queue);
        if wake {
            shared.wake.notify_one();
        }
        Ok(())
    }

    /// Resolves once the queue has room for an event (it may fill again
    /// before the caller pushes: [`AuditSink::try_record`] says).
    pub(crate) fn room(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let shared = Arc::clone(&self.handle.0);
        async move {
            loop {
                let notified = shared.room.notified();
                tokio::pin!(notified);
                // Registered before the check, so a batch taken in between wakes us.
                notified.as_mut().enable();
                if lock(&shared.queue).events.len() < shared.depth {
                    return;
                }
                notified.await;
            }
        }
    }

    /// Events dropped so far (queue full).
    pub(crate) fn dropped(&self) -> &Counter {
        &self.dropped
    }

    fn lost(&self, why: &'static str) {
        let total = self.dropped.inc() + 1;
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last_report.load(Ordering::Relaxed);
        if now > last
            && self
                .last_report
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::error!(dropped_total = total, "audit events lost: {why}");
        }
    }
}

/// The writer thread's loop: take the whole queue, write it, flush, pause;
/// park when the queue is empty; stop when it is empty and closed.
fn write_events(shared: &Shared, writer: Box<dyn Write + Send>) {
    let buffered = |writer| std::io::BufWriter::with_capacity(64 * 1024, writer);
    let mut writer = buffered(writer);
    let mut line = Vec::with_capacity(1024);
    let mut batch = Vec::new();
    loop {
        let reopened = {
            let mut queue = lock(&shared.queue);
            while queue.events.is_empty() && queue.reopened.is_none() {
                if queue.closed {
                    let _ = writer.flush();
                    return;
                }
                queue.parked = true;
                queue = shared
                    .wake
                    .wait(queue)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
            std::mem::swap(&mut queue.events, &mut batch);
            queue.reopened.take()
        };
        shared.room.notify_waiters();
        let mut events = batch.drain(..);
        if let Some((before, OpenOutput(next))) = reopened {
            write_lines(&mut writer, events.by_ref().take(before), &mut line);
            // Dropping the old writer closes the moved-away file.
            writer = buffered(next);
        }
        write_lines(&mut writer, events, &mut line);
        std::thread::sleep(BATCH_PAUSE);
    }
}

/// Writes `events` as JSON lines and flushes; errors are logged, the writer
/// keeps going (the next batch may succeed).
fn write_lines(
    writer: &mut impl Write,
    events: impl Iterator<Item = AuditRecord>,
    line: &mut Vec<u8>,
) {
    for event in events {
        line.clear();
        // Serializing a struct of strings and numbers into a Vec cannot fail.
        let _ = match &event {
            AuditRecord::Request(event) => {
                event.write_json(line);
                Ok(())
            }
            AuditRecord::Webhook(event) => serde_json::to_writer(&mut *line, event),
        };
        line.push(b'\n');
        if let Err(error) = writer.write_all(line) {
            tracing::error!(%error, "cannot write the audit log");
        }
    }
    if let Err(error) = writer.flush() {
        tracing::error!(%error, "cannot write the audit log");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that holds every write until `gate` lets it through.
    struct Gated {
        gate: Arc<Mutex<()>>,
        out: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gated {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _open = self.gate.lock().unwrap();
            self.out.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What a [`Gated`] writer has let through.
    type Written = Arc<Mutex<Vec<u8>>>;

    /// A sink of `depth` events writing through a [`Gated`] writer; lock the
    /// gate to stall the output.
    fn gated_sink(depth: usize) -> (AuditSink, Arc<Mutex<()>>, Written) {
        let gate = Arc::new(Mutex::new(()));
        let out = Arc::new(Mutex::new(Vec::new()));
        let writer = Gated {
            gate: gate.clone(),
            out: out.clone(),
        };
        let sink = AuditSink::with_writer(Box::new(writer), depth).unwrap();
        (sink, gate, out)
    }

    fn event(n: usize) -> AuditEvent {
        AuditEvent::start(format!("r{n}"), "127.0.0.1:1".into(), "GET", "/api/v4/user")
    }

    /// The hand-written line is serde_json's, byte for byte: every optional
    /// field absent and present, strings that need escaping (quotes,
    /// backslashes, control characters) and ones that do not (non-ASCII
    /// included), whole and fractional and non-finite floats.
    #[test]
    fn the_json_line_is_serde_json_s() {
        let plain = event(1);
        let mut full = AuditEvent::start(
            "r\"2\\".into(),
            "[::1]:9".into(),
            "GET\u{7f}",
            "/api/v4/projects/a%2Fb\n\t\u{1}/é",
        );
        full.client = "ci-bot ☃".into();
        full.template = "/projects/:id".into();
        full.rule = "read-project".into();
        full.decision = "allow";
        full.reason = "allowed".into();
        full.status = 200;
        full.upstream_ms = Some(1.25);
        full.duration_ms = 3.0;
        full.bytes_in = 17;
        full.bytes_out = u64::MAX;
        full.hidden_items = Some(4);
        full.upstream_request_id = Some("01HZY\"?".into());
        full.error = Some("client_gone");
        full.shadow_decision = Some("deny");
        full.shadow_rule = Some("r\u{1f}".into());
        full.shadow_reason = Some("no_rule".into());
        full.webhook_relay = true;
        let mut odd = full.clone();
        odd.upstream_ms = Some(f64::NAN);
        odd.duration_ms = f64::INFINITY;
        odd.webhook_relay = false;
        let mut tiny = plain.clone();
        tiny.duration_ms = 0.000_001;
        tiny.upstream_ms = Some(1e21);
        for event in [plain, full, odd, tiny, AuditEvent::default()] {
            let mut line = Vec::new();
            event.write_json(&mut line);
            let expected = serde_json::to_vec(&event).unwrap();
            assert_eq!(
                String::from_utf8(line).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
    }

    #[test]
    fn audited_method_and_path_are_bounded_in_characters() {
        let long = format!("/{}", "é".repeat(600));
        let event = AuditEvent::start("r".into(), "-".into(), &"M".repeat(40), &long);
        assert_eq!(event.method.chars().count(), 16);
        assert_eq!(event.path.chars().count(), MAX_PATH_CHARS);
        // Bytes over the bound but characters within it: kept whole.
        let short = "é".repeat(300);
        let event = AuditEvent::start("r".into(), "-".into(), "GET", &short);
        assert_eq!(event.path, short);
    }

    fn lines(out: &Mutex<Vec<u8>>) -> usize {
        out.lock().unwrap().iter().filter(|b| **b == b'\n').count()
    }

    #[test]
    fn a_full_queue_makes_callers_wait_for_room_instead_of_losing_lines() {
        let (sink, gate, out) = gated_sink(4);
        let closed = gate.lock().unwrap();
        // The writer takes a first event and blocks writing it...
        sink.try_record(event(0)).unwrap();
        for _ in 0..200 {
            if lock(&sink.handle.0.queue).events.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // ...then the queue fills up.
        let mut accepted = 1;
        let refused = loop {
            match sink.try_record(event(accepted)) {
                Ok(()) => accepted += 1,
                Err(event) => break event,
            }
            assert!(accepted < 20, "the queue is bounded");
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let waited = runtime.block_on(async {
            let room = sink.room();
            tokio::pin!(room);
            let early = tokio::time::timeout(Duration::from_millis(50), room.as_mut()).await;
            assert!(early.is_err(), "no room while the output is stalled");
            drop(closed);
            tokio::time::timeout(Duration::from_secs(5), room).await
        });
        assert!(waited.is_ok(), "room once the writer catches up");
        sink.try_record(*refused).unwrap();
        drop(sink);
        for _ in 0..200 {
            if lines(&out) == accepted + 1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(lines(&out), accepted + 1, "every line written, none lost");
    }

    #[test]
    fn a_stalled_output_drops_and_counts_instead_of_growing() {
        let (sink, gate, out) = gated_sink(4);
        let closed = gate.lock().unwrap();
        for n in 0..100 {
            sink.record(event(n));
        }
        // At most twice the queue (events that cannot wait may overflow it),
        // plus one batch the writer may have taken: the rest was dropped and counted.
        let dropped = sink.dropped().get();
        assert!(dropped >= 100 - 8 - 8, "dropped {dropped}");
        drop(closed);
        drop(sink);
        for _ in 0..200 {
            if lines(&out) as u64 + dropped == 100 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(
            lines(&out) as u64 + dropped,
            100,
            "every event is written or counted"
        );
    }

    /// The request ids of the lines a writer has let through.
    fn ids(out: &Mutex<Vec<u8>>) -> Vec<String> {
        String::from_utf8_lossy(&out.lock().unwrap())
            .lines()
            .map(|line| {
                let event: serde_json::Value = serde_json::from_str(line).unwrap();
                event["request_id"].as_str().unwrap().to_owned()
            })
            .collect()
    }

    #[test]
    fn a_switched_output_gets_exactly_the_events_recorded_after_the_switch() {
        let (sink, gate, old) = gated_sink(16);
        // Stall the old output so the events before the switch are still
        // queued (or being written) when it happens.
        let stalled = gate.lock().unwrap();
        sink.record(event(0));
        sink.record(event(1));
        let new = Arc::new(Mutex::new(Vec::new()));
        let writer = Gated {
            gate: Arc::new(Mutex::new(())),
            out: new.clone(),
        };
        sink.switch_to(OpenOutput(Box::new(writer)));
        sink.record(event(2));
        drop(stalled);
        drop(sink);
        for _ in 0..200 {
            if lines(&old) == 2 && lines(&new) == 1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(ids(&old), ["r0", "r1"], "recorded before: the old output");
        assert_eq!(ids(&new), ["r2"], "recorded after: the new output");
    }

    #[test]
    fn lines_are_written_as_soon_as_the_queue_drains() {
        let (sink, _gate, out) = gated_sink(16);
        sink.record(event(1));
        for _ in 0..200 {
            if lines(&out) == 1 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(
            lines(&out),
            1,
            "the line is out while the sink is still open"
        );
        let line: serde_json::Value =
            serde_json::from_slice(out.lock().unwrap().split(|b| *b == b'\n').next().unwrap())
                .unwrap();
        assert_eq!(line["request_id"], "r1");
        assert_eq!(sink.dropped().get(), 0);
    }
}
