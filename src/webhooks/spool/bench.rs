//! The spool alone under load, for `benches/spool.rs`: N producers enqueue
//! deliveries concurrently, each enqueue waiting for its durable commit, as
//! the receiver does before answering GitLab. What it measures is the cost
//! of durability with group commit, without HTTP, TLS or the payload policy
//! (`benches/relay.rs` measures the whole relay).

use std::path::Path;
use std::time::{Duration, Instant};

use super::{OpenMode, Spool, SpoolSettings, now_ms};
use crate::webhooks::QueuedDelivery;

/// What one run measured.
#[derive(Clone, Debug)]
pub struct EnqueueFigures {
    /// Deliveries enqueued (all durable).
    pub deliveries: usize,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Write transactions committed (each one fsync).
    pub commits: u64,
    /// Median time for one enqueue to return.
    pub p50: Duration,
    /// 99th percentile of the same.
    pub p99: Duration,
    /// The slowest enqueue.
    pub max: Duration,
}

/// Enqueues `deliveries` deliveries of `body_bytes` each from `producers`
/// concurrent tasks into a new spool in `dir` (on the file system to be
/// measured), on a runtime of `threads` workers.
pub fn measure_enqueue(
    dir: &Path,
    threads: usize,
    producers: usize,
    deliveries: usize,
    body_bytes: usize,
) -> Result<EnqueueFigures, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let spool = Spool::open(
        &SpoolSettings {
            dir: dir.to_owned(),
            max_bytes: u64::MAX,
            max_deliveries: u64::MAX,
            client_share_percent: 100,
        },
        OpenMode::Create,
    )
    .map_err(|e| e.to_string())?;
    let body = vec![b'x'; body_bytes];
    let producers = producers.max(1);
    runtime.block_on(async {
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for producer in 0..producers {
            let (spool, body) = (spool.clone(), body.clone());
            let share = deliveries / producers + usize::from(producer < deliveries % producers);
            tasks.spawn(async move {
                let mut latencies = Vec::with_capacity(share);
                for n in 0..share {
                    let delivery = QueuedDelivery {
                        id: format!("{producer:04}-{n:08}"),
                        client: "bench".into(),
                        sealed: "sealed".into(),
                        event: "Merge Request Hook".into(),
                        object: "acme/backend".into(),
                        object_kind: "project".into(),
                        headers: vec![("Idempotency-Key".into(), format!("{producer}-{n}"))],
                        body: body.clone(),
                        received_unix_ms: now_ms(),
                    };
                    let one = Instant::now();
                    spool.enqueue(delivery).await.map_err(|e| e.to_string())?;
                    latencies.push(one.elapsed());
                }
                Ok::<_, String>(latencies)
            });
        }
        let mut latencies = Vec::with_capacity(deliveries);
        while let Some(done) = tasks.join_next().await {
            latencies.extend(done.map_err(|e| e.to_string())??);
        }
        let elapsed = started.elapsed();
        latencies.sort_unstable();
        let at = |q: f64| {
            let index = ((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1);
            latencies.get(index).copied().unwrap_or_default()
        };
        Ok(EnqueueFigures {
            deliveries: latencies.len(),
            elapsed,
            commits: spool.commits(),
            p50: at(0.50),
            p99: at(0.99),
            max: latencies.last().copied().unwrap_or_default(),
        })
    })
}
