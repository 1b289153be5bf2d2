//! The durable queue of webhook deliveries: what GitLab was told was accepted
//! is on disk, fsynced, before GitLab gets its answer, and stays there until
//! the client's receiver took it or it is moved to the dead-letter store.
//!
//! # The store: redb
//!
//! The spool is one [redb](https://docs.rs/redb) file, `spool.redb`, in the
//! spool folder. redb was chosen over the alternatives because:
//!
//! - **crash safety**: it is an ACID key-value store with copy-on-write
//!   B-trees; a commit either happened entirely or not at all, and a torn
//!   commit is detected by checksums and rolled back to the previous one on
//!   the next open. A `kill -9` or a power cut at any moment leaves the last
//!   committed state.
//! - **fsync semantics**: a write transaction committed with
//!   `Durability::Immediate` (redb's default, set explicitly here) has been
//!   `fsync`ed when `commit` returns, so `enqueue` answers only then.
//! - **one owner**: redb takes an exclusive `flock` on the file, so a second
//!   process (a second `serve`, or a command run while the server holds the
//!   spool) gets a clear "already open" error rather than corrupting it.
//! - **maintenance**: pure Rust (no C toolchain, no `unsafe` reached from
//!   here), a stable file format since 1.0, actively maintained, few
//!   dependencies. sled is unmaintained beta; fjall (an LSM tree) is
//!   maintained but brings a larger surface than a queue needs; rusqlite
//!   would bundle C code.
//!
//! # Writes: one writer, group commit
//!
//! Every write (enqueue, delivered, retry, dead letter, replay) goes to one
//! dedicated thread, `glgate-spool`, through a channel. The thread takes what
//! is waiting, applies it all in **one** write transaction and commits it
//! once (one fsync), then answers each caller. Enqueues that arrive while a
//! commit is in progress wait in the channel and go into the next one, so the
//! throughput is not one fsync per delivery, and no blocking I/O runs on the
//! async runtime's threads (reads go through `spawn_blocking`).
//!
//! # Scheduling
//!
//! Each stored delivery keeps its attempts, its next attempt time and its
//! last error. The schedule itself is kept in memory: on open, everything
//! queued is due at once (at-least-once: a delivery that was in flight when
//! the process stopped is sent again; the receiver de-duplicates with
//! `Idempotency-Key`). [`Spool::take_due`] leases what is due so the worker
//! does not take it twice; a lease that is never settled (the process
//! stopped, a write failed) simply ends and the delivery is due again.
//!
//! # Bounds
//!
//! `max_deliveries` and `max_bytes` bound the queued deliveries (not the dead
//! letters, which an operator lists and replays). Past either,
//! [`Spool::enqueue`] returns [`EnqueueError::Full`] and the receiver answers
//! GitLab 503: GitLab records the failed delivery in the hook's recent
//! events (from where it can be resent; GitLab does not resend by itself)
//! and, after repeated failures, disables the hook for a while. Nothing is
//! dropped silently. A replay may go over the bounds (an operator asked for it); new
//! deliveries are then refused until the queue drains.
//!
//! # Who may read it while a server runs
//!
//! The file lock lets only one process open the spool. The running server
//! answers `GET /webhooks/status` and `POST /webhooks/replay` on its admin
//! listener ([`admin_status`], [`admin_replay`]); `glgate webhooks …` reads the
//! spool file directly when no server holds it and otherwise points the
//! operator at those endpoints.

use std::collections::{BTreeSet, HashMap};
use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{Database, DatabaseError, Durability, ReadableTable, ReadableTableMetadata};
use redb::{TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, oneshot};

use super::QueuedDelivery;
use crate::config::WebhookSettings;

/// The spool's file inside its folder.
const FILE_NAME: &str = "spool.redb";
/// Queued deliveries by id: a framed record (metadata JSON, then the body).
const QUEUE: TableDefinition<&str, &[u8]> = TableDefinition::new("queue");
/// Dead letters by id, framed like the queue's records.
const DEAD: TableDefinition<&str, &[u8]> = TableDefinition::new("dead_letters");
/// At most this many writes go into one commit, so one commit stays short.
const MAX_BATCH: usize = 1024;

/// Where the spool lives and how large it may grow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SpoolSettings {
    /// The spool folder (created 0700 if missing).
    pub(crate) dir: PathBuf,
    /// Most bytes of queued deliveries (records as stored).
    pub(crate) max_bytes: u64,
    /// Most queued deliveries.
    pub(crate) max_deliveries: u64,
    /// The part of each bound one client may fill, in percent (100: no
    /// share; the default 75 leaves the others a quarter).
    pub(crate) client_share_percent: u64,
}

impl SpoolSettings {
    /// The spool of the `webhooks:` section.
    pub(crate) fn of(webhooks: &WebhookSettings) -> SpoolSettings {
        SpoolSettings {
            dir: webhooks.spool.clone(),
            max_bytes: webhooks.max_queue_bytes,
            max_deliveries: webhooks.max_queued,
            client_share_percent: webhooks.max_client_share_percent,
        }
    }
}

/// `percent` of `bound`: one client's share of it (at least 1).
fn share(bound: u64, percent: u64) -> u64 {
    let part = u128::from(bound) * u128::from(percent.min(100)) / 100;
    u64::try_from(part).unwrap_or(bound).max(1)
}

/// Whether [`Spool::open`] may create a missing spool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpenMode {
    /// The server: create the folder and file when missing.
    Create,
    /// A command: the spool must exist already.
    Existing,
}

/// Why the spool could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpoolError {
    /// The folder could not be created or read.
    #[error("cannot create the webhook spool folder {path}: {source}")]
    Folder {
        /// The folder.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The folder is open to other users.
    #[error(
        "the webhook spool folder {path} is accessible to other users (mode {mode:o}): \
         it holds webhook payloads; make it private with `chmod 700 {path}`"
    )]
    Permissions {
        /// The folder.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// [`OpenMode::Existing`] and there is no spool there.
    #[error("no webhook spool at {path} (no {FILE_NAME} in it): check the spool folder")]
    Missing {
        /// The folder.
        path: String,
    },
    /// Another process holds the spool.
    #[error(
        "the webhook spool {path} is already open in another process (a running glgate?): \
         only one process may use a spool folder; ask the running server on its admin \
         listener (GET /webhooks/status, POST /webhooks/replay) or read its metrics"
    )]
    Locked {
        /// The spool file.
        path: String,
    },
    /// The store failed.
    #[error("webhook spool {path}: {detail}")]
    Storage {
        /// The spool file.
        path: String,
        /// redb's error.
        detail: String,
    },
    /// The writer thread is gone (the spool is closing).
    #[error("the webhook spool is closed")]
    Closed,
}

/// Why a delivery was not queued.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EnqueueError {
    /// This delivery's client already fills its share of the bounds
    /// (`client_share_percent`): answer GitLab 503 on its hooks only.
    #[error("this client's share of the webhook spool is full")]
    ClientFull,
    /// The queue is at `max_deliveries` or `max_bytes`: answer GitLab 503,
    /// which records the delivery as failed (it can be resent from there).
    #[error("the webhook spool is full")]
    Full,
    /// The store failed: the delivery is not durable.
    #[error("{0}")]
    Storage(#[from] SpoolError),
}

/// A queued delivery handed to the worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Due {
    /// The delivery.
    pub(crate) delivery: QueuedDelivery,
    /// Attempts made before this one (0 for a new or replayed delivery).
    pub(crate) attempts: u32,
    /// When its retries started (ms since the epoch): when glgate accepted
    /// it, or when it was last replayed; `max_age` counts from here.
    pub(crate) since_unix_ms: u64,
}

/// One dead letter, as listed (no body, no sealed target).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeadLetter {
    /// glgate's delivery id.
    pub(crate) id: String,
    /// The client whose hook it is.
    pub(crate) client: String,
    /// `X-Gitlab-Event`.
    pub(crate) event: String,
    /// The project or group.
    pub(crate) object: String,
    /// When GitLab's delivery was accepted (ms since the epoch).
    pub(crate) received_unix_ms: u64,
    /// Attempts made.
    pub(crate) attempts: u32,
    /// The last attempt's error.
    pub(crate) last_error: String,
    /// When it was dead-lettered (ms since the epoch).
    pub(crate) dead_unix_ms: u64,
}

/// Which dead letters to replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Replay {
    /// The one with this id.
    One(String),
    /// All of them.
    All,
}

/// The spool's figures, from memory (cheap: metrics and `/ready` read them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct SpoolStats {
    /// Queued deliveries.
    pub(crate) depth: u64,
    /// Bytes of queued deliveries.
    pub(crate) bytes: u64,
    /// When the oldest queued delivery was accepted (ms since the epoch).
    pub(crate) oldest_received_unix_ms: Option<u64>,
    /// Dead letters.
    pub(crate) dead: u64,
    /// `max_deliveries`.
    pub(crate) max_deliveries: u64,
    /// `max_bytes`.
    pub(crate) max_bytes: u64,
}

impl SpoolStats {
    /// Age of the oldest queued delivery at `now_ms`.
    pub(crate) fn oldest_age(&self, now_ms: u64) -> Duration {
        self.oldest_received_unix_ms.map_or(Duration::ZERO, |at| {
            Duration::from_millis(now_ms.saturating_sub(at))
        })
    }

    /// The fuller of the two bounds, from 0.0 (empty) to 1.0 (full), for
    /// `/ready` to say the queue is nearly full.
    pub(crate) fn fill_ratio(&self) -> f64 {
        let ratio = |used: u64, max: u64| {
            if max == 0 {
                1.0
            } else {
                used as f64 / max as f64
            }
        };
        ratio(self.depth, self.max_deliveries).max(ratio(self.bytes, self.max_bytes))
    }
}

/// The durable queue. Cheap to clone; the last clone dropped stops the
/// writer thread and closes the file.
#[derive(Clone)]
pub(crate) struct Spool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

struct Inner {
    db: Arc<Database>,
    path: PathBuf,
    settings: SpoolSettings,
    index: Mutex<Index>,
    /// `None` once closing.
    writer: Mutex<Option<mpsc::Sender<Command>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    enqueued: Notify,
    /// Transactions committed by the writer (the tests check the grouping).
    commits: Arc<AtomicU64>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel ends the writer's loop; joining it releases
        // the file (and its lock) before the drop returns, so the spool can
        // be opened again at once.
        lock(&self.writer).take();
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

/// Where each queued delivery stands, in memory.
#[derive(Debug, Default)]
struct Index {
    entries: HashMap<String, Entry>,
    /// (next attempt ms, id): what is due first.
    schedule: BTreeSet<(u64, String)>,
    /// (received ms, id): the oldest first.
    by_age: BTreeSet<(u64, String)>,
    bytes: u64,
    /// Enqueues being written: counted against the bounds already.
    reserved_count: u64,
    reserved_bytes: u64,
    dead: u64,
    /// Deliveries and bytes queued per client (for its share of the bounds).
    clients: HashMap<String, (u64, u64)>,
}

#[derive(Clone, Debug)]
struct Entry {
    client: String,
    received: u64,
    bytes: u64,
    next: u64,
}

impl Index {
    fn insert(&mut self, id: &str, client: &str, received: u64, bytes: u64, next: u64) {
        self.remove(id);
        let used = self.clients.entry(client.to_owned()).or_default();
        used.0 += 1;
        used.1 += bytes;
        self.entries.insert(
            id.to_owned(),
            Entry {
                client: client.to_owned(),
                received,
                bytes,
                next,
            },
        );
        self.schedule.insert((next, id.to_owned()));
        self.by_age.insert((received, id.to_owned()));
        self.bytes += bytes;
    }

    fn remove(&mut self, id: &str) -> bool {
        let Some(entry) = self.entries.remove(id) else {
            return false;
        };
        self.schedule.remove(&(entry.next, id.to_owned()));
        self.by_age.remove(&(entry.received, id.to_owned()));
        self.bytes = self.bytes.saturating_sub(entry.bytes);
        if let Some(used) = self.clients.get_mut(&entry.client) {
            used.0 = used.0.saturating_sub(1);
            used.1 = used.1.saturating_sub(entry.bytes);
        }
        true
    }

    /// What `client` has queued: deliveries and bytes.
    fn used_by(&self, client: &str) -> (u64, u64) {
        self.clients.get(client).copied().unwrap_or_default()
    }

    fn reschedule(&mut self, id: &str, next: u64) {
        if let Some(entry) = self.entries.get_mut(id) {
            self.schedule.remove(&(entry.next, id.to_owned()));
            entry.next = next;
            self.schedule.insert((next, id.to_owned()));
        }
    }
}

impl Spool {
    /// Opens (or, with [`OpenMode::Create`], creates) the spool in
    /// `settings.dir`. Fails with [`SpoolError::Locked`] when another
    /// process holds it. Everything queued is due at once.
    pub(crate) fn open(settings: &SpoolSettings, mode: OpenMode) -> Result<Spool, SpoolError> {
        let dir = &settings.dir;
        let path = dir.join(FILE_NAME);
        match mode {
            OpenMode::Create => private_folder(dir)?,
            OpenMode::Existing => {
                if !path.is_file() {
                    return Err(SpoolError::Missing {
                        path: dir.display().to_string(),
                    });
                }
                check_private(dir)?;
            }
        }
        let db = Database::builder()
            .create(&path)
            .map_err(|error| match error {
                DatabaseError::DatabaseAlreadyOpen => SpoolError::Locked {
                    path: path.display().to_string(),
                },
                other => storage_error(&path)(other.to_string()),
            })?;
        let index = load_index(&db).map_err(storage_error(&path))?;
        let db = Arc::new(db);
        let (sender, receiver) = mpsc::channel();
        let commits = Arc::new(AtomicU64::new(0));
        let for_writer = (db.clone(), path.clone(), commits.clone());
        let thread = std::thread::Builder::new()
            .name("glgate-spool".into())
            .spawn(move || write_loop(&for_writer.0, &for_writer.1, &for_writer.2, &receiver))
            .map_err(|source| SpoolError::Folder {
                path: dir.display().to_string(),
                source,
            })?;
        Ok(Spool {
            inner: Arc::new(Inner {
                db,
                path,
                settings: settings.clone(),
                index: Mutex::new(index),
                writer: Mutex::new(Some(sender)),
                thread: Mutex::new(Some(thread)),
                enqueued: Notify::new(),
                commits,
            }),
        })
    }

    /// Queues `delivery` and returns once it is on disk (committed and
    /// fsynced), or [`EnqueueError::Full`] at once when over a bound.
    pub(crate) async fn enqueue(&self, delivery: QueuedDelivery) -> Result<(), EnqueueError> {
        let meta = Meta::of(&delivery, 0, 0, String::new(), None);
        let value = encode(&meta, &delivery.body);
        let bytes = record_size(&delivery.id, &value);
        {
            let mut index = self.index();
            let settings = &self.inner.settings;
            let count = index.entries.len() as u64 + index.reserved_count;
            if count >= settings.max_deliveries
                || index.bytes + index.reserved_bytes + bytes > settings.max_bytes
            {
                return Err(EnqueueError::Full);
            }
            // One client may fill only its share, so a client whose receiver
            // stays down does not get every other client's hooks refused.
            let (client_count, client_bytes) = index.used_by(&delivery.client);
            let percent = settings.client_share_percent;
            if client_count >= share(settings.max_deliveries, percent)
                || client_bytes + bytes > share(settings.max_bytes, percent)
            {
                return Err(EnqueueError::ClientFull);
            }
            index.reserved_count += 1;
            index.reserved_bytes += bytes;
        }
        let result = self
            .write(Op::Put {
                id: delivery.id.clone(),
                value,
            })
            .await;
        {
            let mut index = self.index();
            index.reserved_count -= 1;
            index.reserved_bytes -= bytes;
            if result.is_ok() {
                index.insert(
                    &delivery.id,
                    &delivery.client,
                    delivery.received_unix_ms,
                    bytes,
                    0,
                );
            }
        }
        result?;
        self.inner.enqueued.notify_one();
        Ok(())
    }

    /// Up to `limit` deliveries due at `now_ms`, each leased for `lease`
    /// (not handed out again until then unless settled).
    pub(crate) async fn take_due(
        &self,
        now_ms: u64,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Due>, SpoolError> {
        let ids: Vec<String> = {
            let mut index = self.index();
            let ids: Vec<String> = index
                .schedule
                .iter()
                .take_while(|(next, _)| *next <= now_ms)
                .take(limit)
                .map(|(_, id)| id.clone())
                .collect();
            let until = now_ms.saturating_add(millis(lease));
            for id in &ids {
                index.reschedule(id, until);
            }
            ids
        };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let (db, path) = (self.inner.db.clone(), &self.inner.path);
        blocking(path, move || {
            let tx = db.begin_read().text()?;
            let queue = tx.open_table(QUEUE).text()?;
            let mut due = Vec::with_capacity(ids.len());
            for id in ids {
                // Settled since it was leased: nothing to do.
                let Some(value) = queue.get(id.as_str()).text()? else {
                    continue;
                };
                let (meta, body) =
                    decode(value.value()).map_err(|detail| format!("record {id}: {detail}"))?;
                due.push(Due {
                    attempts: meta.attempts,
                    since_unix_ms: meta.replayed_unix_ms.unwrap_or(meta.received_unix_ms),
                    delivery: meta.into_delivery(id, body.to_vec()),
                });
            }
            Ok(due)
        })
        .await
    }

    /// Gives back a delivery taken by [`Spool::take_due`] without attempting
    /// it: due again at `at_ms`. Memory only, like the lease it replaces
    /// (nothing about the delivery changed on disk).
    pub(crate) fn defer(&self, id: &str, at_ms: u64) {
        self.index().reschedule(id, at_ms);
    }

    /// When the next delivery is due (ms since the epoch), if any is queued.
    pub(crate) fn next_due_ms(&self) -> Option<u64> {
        self.index().schedule.first().map(|(next, _)| *next)
    }

    /// Woken after each enqueue (and replay): the worker waits on it.
    pub(crate) fn enqueued(&self) -> &Notify {
        &self.inner.enqueued
    }

    /// The receiver took `id`: it leaves the queue.
    pub(crate) async fn delivered(&self, id: &str) -> Result<(), SpoolError> {
        self.remove(id).await
    }

    /// `id` must not be delivered any more (its client or rule is gone, its
    /// object left the scope): it leaves the queue (the caller audits why).
    pub(crate) async fn discard(&self, id: &str) -> Result<(), SpoolError> {
        self.remove(id).await
    }

    /// `id` failed its `attempts`-th attempt with `last_error`: try again at
    /// `next_at_ms`.
    pub(crate) async fn retry_later(
        &self,
        id: &str,
        next_at_ms: u64,
        attempts: u32,
        last_error: &str,
    ) -> Result<(), SpoolError> {
        self.write(Op::Retry {
            id: id.to_owned(),
            next_at_ms,
            attempts,
            last_error: last_error.to_owned(),
        })
        .await?;
        self.index().reschedule(id, next_at_ms);
        Ok(())
    }

    /// `id` is past its age after `attempts` attempts: it moves to the
    /// dead-letter store with `reason`.
    pub(crate) async fn dead_letter(
        &self,
        id: &str,
        attempts: u32,
        reason: &str,
    ) -> Result<(), SpoolError> {
        let moved = self
            .write(Op::DeadLetter {
                id: id.to_owned(),
                attempts,
                reason: reason.to_owned(),
                now_ms: now_ms(),
            })
            .await?;
        let mut index = self.index();
        index.remove(id);
        if matches!(moved, Written::Count(1)) {
            index.dead += 1;
        }
        Ok(())
    }

    /// The dead letters, oldest id order (ids are random: sort as needed).
    pub(crate) async fn dead_letters(&self) -> Result<Vec<DeadLetter>, SpoolError> {
        let (db, path) = (self.inner.db.clone(), &self.inner.path);
        blocking(path, move || {
            let tx = db.begin_read().text()?;
            let dead = tx.open_table(DEAD).text()?;
            let mut list = Vec::new();
            for row in dead.iter().text()? {
                let (key, value) = row.text()?;
                let (meta, _) = decode(value.value())
                    .map_err(|detail| format!("dead letter {}: {detail}", key.value()))?;
                list.push(DeadLetter {
                    id: key.value().to_owned(),
                    client: meta.client,
                    event: meta.event,
                    object: meta.object,
                    received_unix_ms: meta.received_unix_ms,
                    attempts: meta.attempts,
                    last_error: meta.last_error,
                    dead_unix_ms: meta.dead_unix_ms.unwrap_or(0),
                });
            }
            list.sort_by(|a, b| (a.dead_unix_ms, &a.id).cmp(&(b.dead_unix_ms, &b.id)));
            Ok(list)
        })
        .await
    }

    /// Moves dead letters back to the queue, attempts reset, due at once,
    /// with a new `max_age` window from now; returns the ids replayed
    /// (empty: no such dead letter).
    pub(crate) async fn replay(&self, which: Replay) -> Result<Vec<String>, SpoolError> {
        let Written::Replayed(replayed) = self
            .write(Op::Replay {
                which,
                now_ms: now_ms(),
            })
            .await?
        else {
            return Ok(Vec::new());
        };
        let ids = {
            let mut index = self.index();
            for (id, client, received, bytes) in &replayed {
                index.insert(id, client, *received, *bytes, 0);
            }
            index.dead = index.dead.saturating_sub(replayed.len() as u64);
            replayed
                .into_iter()
                .map(|(id, _, _, _)| id)
                .collect::<Vec<_>>()
        };
        if !ids.is_empty() {
            self.inner.enqueued.notify_one();
        }
        Ok(ids)
    }

    /// Depth, bytes, oldest and dead count, from memory.
    pub(crate) fn stats(&self) -> SpoolStats {
        let index = self.index();
        SpoolStats {
            depth: index.entries.len() as u64,
            bytes: index.bytes,
            oldest_received_unix_ms: index.by_age.first().map(|(at, _)| *at),
            dead: index.dead,
            max_deliveries: self.inner.settings.max_deliveries,
            max_bytes: self.inner.settings.max_bytes,
        }
    }

    /// Write transactions committed since open.
    pub(crate) fn commits(&self) -> u64 {
        self.inner.commits.load(Ordering::Relaxed)
    }

    async fn remove(&self, id: &str) -> Result<(), SpoolError> {
        self.write(Op::Remove { id: id.to_owned() }).await?;
        self.index().remove(id);
        Ok(())
    }

    /// Hands `op` to the writer thread and waits for its commit.
    async fn write(&self, op: Op) -> Result<Written, SpoolError> {
        let (reply, answer) = oneshot::channel();
        {
            let writer = lock(&self.inner.writer);
            let sender = writer.as_ref().ok_or(SpoolError::Closed)?;
            sender
                .send(Command { op, reply })
                .map_err(|_| SpoolError::Closed)?;
        }
        match answer.await {
            Ok(Ok(written)) => Ok(written),
            Ok(Err(detail)) => Err(SpoolError::Storage {
                path: self.inner.path.display().to_string(),
                detail,
            }),
            Err(_) => Err(SpoolError::Closed),
        }
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        lock(&self.inner.index)
    }
}

/// Creates both tables if missing (so reads never meet a missing table)
/// and reads what is queued into the in-memory index, all due at once.
fn load_index(db: &Database) -> Result<Index, String> {
    let mut tx = db.begin_write().text()?;
    tx.set_durability(Durability::Immediate);
    tx.open_table(QUEUE).text()?;
    tx.open_table(DEAD).text()?;
    tx.commit().text()?;
    let mut index = Index::default();
    let tx = db.begin_read().text()?;
    let queue = tx.open_table(QUEUE).text()?;
    for row in queue.iter().text()? {
        let (key, value) = row.text()?;
        let value = value.value();
        let (meta, _) =
            decode(value).map_err(|detail| format!("record {}: {detail}", key.value()))?;
        index.insert(
            key.value(),
            &meta.client,
            meta.received_unix_ms,
            record_size(key.value(), value),
            0,
        );
    }
    index.dead = tx.open_table(DEAD).text()?.len().text()?;
    Ok(index)
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A poisoned lock still holds consistent data here (every critical
/// section is a few map updates that cannot panic half-way): take it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn storage_error(path: &Path) -> impl Fn(String) -> SpoolError + '_ {
    move |detail| SpoolError::Storage {
        path: path.display().to_string(),
        detail,
    }
}

/// redb's errors as text: the spool reports them with its path.
trait Text<T> {
    fn text(self) -> Result<T, String>;
}

impl<T, E: Into<redb::Error>> Text<T> for Result<T, E> {
    fn text(self) -> Result<T, String> {
        self.map_err(|error| error.into().to_string())
    }
}

/// Runs a read of the store off the async runtime's threads.
async fn blocking<T: Send + 'static>(
    path: &Path,
    read: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, SpoolError> {
    tokio::task::spawn_blocking(read)
        .await
        .map_err(|_| SpoolError::Closed)?
        .map_err(storage_error(path))
}

/// Creates `dir` 0700 when missing; refuses one open to other users.
fn private_folder(dir: &Path) -> Result<(), SpoolError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| SpoolError::Folder {
            path: dir.display().to_string(),
            source,
        })?;
    check_private(dir)
}

fn check_private(dir: &Path) -> Result<(), SpoolError> {
    let mode = std::fs::metadata(dir)
        .map_err(|source| SpoolError::Folder {
            path: dir.display().to_string(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(SpoolError::Permissions {
            path: dir.display().to_string(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Records

/// What is stored of a delivery besides its body.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    client: String,
    sealed: String,
    event: String,
    object: String,
    #[serde(default)]
    object_kind: String,
    headers: Vec<(String, String)>,
    received_unix_ms: u64,
    attempts: u32,
    next_attempt_unix_ms: u64,
    last_error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dead_unix_ms: Option<u64>,
    /// Set by a replay: a new `max_age` window starts then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replayed_unix_ms: Option<u64>,
}

impl Meta {
    fn of(
        delivery: &QueuedDelivery,
        attempts: u32,
        next_attempt_unix_ms: u64,
        last_error: String,
        dead_unix_ms: Option<u64>,
    ) -> Meta {
        Meta {
            client: delivery.client.clone(),
            sealed: delivery.sealed.clone(),
            event: delivery.event.clone(),
            object: delivery.object.clone(),
            object_kind: delivery.object_kind.clone(),
            headers: delivery.headers.clone(),
            received_unix_ms: delivery.received_unix_ms,
            attempts,
            next_attempt_unix_ms,
            last_error,
            dead_unix_ms,
            replayed_unix_ms: None,
        }
    }

    fn into_delivery(self, id: String, body: Vec<u8>) -> QueuedDelivery {
        QueuedDelivery {
            id,
            client: self.client,
            sealed: self.sealed,
            event: self.event,
            object: self.object,
            object_kind: self.object_kind,
            headers: self.headers,
            body,
            received_unix_ms: self.received_unix_ms,
        }
    }
}

/// A record: the metadata's JSON length (4 bytes, big-endian), the JSON,
/// then the body as is (JSON would triple a byte array's size).
fn encode(meta: &Meta, body: &[u8]) -> Vec<u8> {
    // Serializing strings, numbers and lists of pairs cannot fail.
    let json = serde_json::to_vec(meta).unwrap_or_default();
    let mut out = Vec::with_capacity(4 + json.len() + body.len());
    out.extend_from_slice(&u32::try_from(json.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(body);
    out
}

fn decode(record: &[u8]) -> Result<(Meta, &[u8]), String> {
    let (length, rest) = record
        .split_first_chunk::<4>()
        .ok_or("shorter than its header")?;
    let length = u32::from_be_bytes(*length) as usize;
    if rest.len() < length {
        return Err("shorter than its metadata".into());
    }
    let (json, body) = rest.split_at(length);
    let meta = serde_json::from_slice(json).map_err(|e| format!("metadata: {e}"))?;
    Ok((meta, body))
}

fn record_size(id: &str, value: &[u8]) -> u64 {
    (id.len() + value.len()) as u64
}

// ---------------------------------------------------------------------------
// The writer thread

struct Command {
    op: Op,
    reply: oneshot::Sender<Result<Written, String>>,
}

enum Op {
    Put {
        id: String,
        value: Vec<u8>,
    },
    Remove {
        id: String,
    },
    Retry {
        id: String,
        next_at_ms: u64,
        attempts: u32,
        last_error: String,
    },
    DeadLetter {
        id: String,
        attempts: u32,
        reason: String,
        now_ms: u64,
    },
    Replay {
        which: Replay,
        now_ms: u64,
    },
}

/// What one write did.
enum Written {
    /// Rows moved or changed.
    Count(u64),
    /// Replayed dead letters: (id, received ms, record bytes).
    /// Each replayed delivery: id, client, received ms, bytes.
    Replayed(Vec<(String, String, u64, u64)>),
}

/// Takes every command waiting, applies them in one transaction, commits
/// once (fsync), answers each; until every sender is gone.
fn write_loop(db: &Database, path: &Path, commits: &AtomicU64, commands: &mpsc::Receiver<Command>) {
    while let Ok(first) = commands.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match commands.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        match apply(db, &batch) {
            Ok(results) => {
                commits.fetch_add(1, Ordering::Relaxed);
                for (command, written) in batch.into_iter().zip(results) {
                    let _ = command.reply.send(Ok(written));
                }
            }
            Err(detail) => {
                tracing::error!(spool = %path.display(), "webhook spool write failed: {detail}");
                for command in batch {
                    let _ = command.reply.send(Err(detail.clone()));
                }
            }
        }
    }
}

fn apply(db: &Database, batch: &[Command]) -> Result<Vec<Written>, String> {
    let mut tx = db.begin_write().text()?;
    tx.set_durability(Durability::Immediate);
    let mut results = Vec::with_capacity(batch.len());
    for command in batch {
        results.push(apply_one(&tx, &command.op)?);
    }
    tx.commit().text()?;
    Ok(results)
}

fn apply_one(tx: &WriteTransaction, op: &Op) -> Result<Written, String> {
    let mut queue = tx.open_table(QUEUE).text()?;
    match op {
        Op::Put { id, value } => {
            queue.insert(id.as_str(), value.as_slice()).text()?;
            Ok(Written::Count(1))
        }
        Op::Remove { id } => {
            let removed = queue.remove(id.as_str()).text()?;
            Ok(Written::Count(u64::from(removed.is_some())))
        }
        Op::Retry {
            id,
            next_at_ms,
            attempts,
            last_error,
        } => {
            let Some(old) = queue
                .get(id.as_str())
                .text()?
                .map(|value| value.value().to_vec())
            else {
                return Ok(Written::Count(0));
            };
            let (mut meta, body) = decode(&old)?;
            meta.attempts = *attempts;
            meta.next_attempt_unix_ms = *next_at_ms;
            meta.last_error.clone_from(last_error);
            let value = encode(&meta, body);
            queue.insert(id.as_str(), value.as_slice()).text()?;
            Ok(Written::Count(1))
        }
        Op::DeadLetter {
            id,
            attempts,
            reason,
            now_ms,
        } => {
            let Some(old) = queue
                .remove(id.as_str())
                .text()?
                .map(|value| value.value().to_vec())
            else {
                return Ok(Written::Count(0));
            };
            let (mut meta, body) = decode(&old)?;
            meta.attempts = *attempts;
            meta.last_error.clone_from(reason);
            meta.dead_unix_ms = Some(*now_ms);
            let value = encode(&meta, body);
            let mut dead = tx.open_table(DEAD).text()?;
            dead.insert(id.as_str(), value.as_slice()).text()?;
            Ok(Written::Count(1))
        }
        Op::Replay { which, now_ms } => {
            let mut dead = tx.open_table(DEAD).text()?;
            let ids: Vec<String> = match which {
                Replay::One(id) => vec![id.clone()],
                Replay::All => {
                    let mut ids = Vec::new();
                    for row in dead.iter().text()? {
                        let (key, _) = row.text()?;
                        ids.push(key.value().to_owned());
                    }
                    ids
                }
            };
            let mut replayed = Vec::new();
            for id in ids {
                let Some(old) = dead
                    .remove(id.as_str())
                    .text()?
                    .map(|value| value.value().to_vec())
                else {
                    continue;
                };
                let (mut meta, body) = decode(&old)?;
                meta.attempts = 0;
                meta.next_attempt_unix_ms = 0;
                meta.last_error.clear();
                meta.dead_unix_ms = None;
                meta.replayed_unix_ms = Some(*now_ms);
                let value = encode(&meta, body);
                queue.insert(id.as_str(), value.as_slice()).text()?;
                let bytes = record_size(&id, &value);
                replayed.push((
                    id.clone(),
                    meta.client.clone(),
                    meta.received_unix_ms,
                    bytes,
                ));
            }
            Ok(Written::Replayed(replayed))
        }
    }
}

// ---------------------------------------------------------------------------
// The admin listener's view (the running server holds the file lock)

/// `GET /webhooks/status` on the admin listener: the spool's figures as JSON.
pub(crate) fn admin_status(spool: &Spool) -> serde_json::Value {
    let stats = spool.stats();
    let now = now_ms();
    serde_json::json!({
        "depth": stats.depth,
        "bytes": stats.bytes,
        "oldest_age_seconds": stats.oldest_age(now).as_secs_f64(),
        "dead_letters": stats.dead,
        "max_deliveries": stats.max_deliveries,
        "max_bytes": stats.max_bytes,
    })
}

/// `POST /webhooks/replay` on the admin listener, body `{"id": "…"}` or
/// `{"all": true}`: the ids replayed, or why the request is wrong.
pub(crate) async fn admin_replay(
    spool: &Spool,
    body: &[u8],
) -> Result<serde_json::Value, AdminReplayError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Asked {
        id: Option<String>,
        #[serde(default)]
        all: bool,
    }
    let asked: Asked = serde_json::from_slice(body).map_err(|_| AdminReplayError::Request)?;
    let which = match (asked.id, asked.all) {
        (Some(id), false) => Replay::One(id),
        (None, true) => Replay::All,
        _ => return Err(AdminReplayError::Request),
    };
    let replayed = spool.replay(which).await?;
    Ok(serde_json::json!({ "replayed": replayed }))
}

/// Why `POST /webhooks/replay` failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AdminReplayError {
    /// Not `{"id": "…"}` nor `{"all": true}`.
    #[error(r#"expected a JSON body {{"id": "<delivery id>"}} or {{"all": true}}"#)]
    Request,
    /// The spool failed.
    #[error("{0}")]
    Spool(#[from] SpoolError),
}

mod bench;
pub use bench::{EnqueueFigures, measure_enqueue};

#[cfg(test)]
mod tests;
