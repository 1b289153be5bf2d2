//! The proxy's workers: threads that each run a single-threaded event loop
//! (a current-thread tokio runtime) and serve the connections handed to them.
//!
//! Why not one multi-threaded runtime: there a request's tasks (its
//! connection, the GitLab connection it borrows from the pool) wake each
//! other across threads, and every such wake-up is a signal to another
//! thread; work-stealing adds its own synchronisation. Here a connection is
//! placed once, on the worker serving the fewest connections, and
//! everything it starts stays on that worker's thread: its HTTP/2 streams,
//! its timers, and its requests' connections to GitLab (each worker keeps
//! its own pool, [`crate::gitlab::pool_per_thread`]). The only cross-thread
//! step is the hand-over of each accepted connection.
//!
//! One listening socket is accepted from by the listener's task and its
//! connections dealt out here (nginx's default shares one socket among its
//! workers too). `SO_REUSEPORT` was not used: it would let a second glgate
//! started on the same port by mistake silently take half the connections,
//! instead of failing with "address in use".

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// A running set of workers.
#[derive(Debug)]
pub(crate) struct Workers {
    workers: Vec<Worker>,
}

#[derive(Debug)]
struct Worker {
    /// Its event loop, to place connections on.
    runtime: Handle,
    /// Connections it serves now.
    load: Arc<AtomicUsize>,
}

/// Ends the workers: [`Stopper::stop`], or dropping it.
#[derive(Debug)]
pub(crate) struct Stopper {
    /// One per worker: its event loop runs until this is sent or dropped.
    ends: Vec<oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts `count` workers (at least one), named `glgate-<name>-<i>`.
    pub(crate) fn start(count: usize, name: &str) -> std::io::Result<(Arc<Workers>, Stopper)> {
        let count = count.max(1);
        let mut workers = Vec::with_capacity(count);
        let mut stopper = Stopper {
            ends: Vec::with_capacity(count),
            threads: Vec::with_capacity(count),
        };
        for index in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (end, ended) = oneshot::channel::<()>();
            workers.push(Worker {
                runtime: runtime.handle().clone(),
                load: Arc::new(AtomicUsize::new(0)),
            });
            let thread = std::thread::Builder::new()
                .name(format!("glgate-{name}-{index}"))
                .spawn(move || {
                    crate::gitlab::pool_per_thread();
                    // Sent or dropped: either way the worker ends.
                    let _ = runtime.block_on(ended);
                    // Dropping the runtime drops what it still runs: the
                    // listener has drained its connections (or given up
                    // on them after the shutdown grace) before this.
                    drop(runtime);
                })?;
            stopper.ends.push(end);
            stopper.threads.push(thread);
        }
        Ok((Arc::new(Workers { workers }), stopper))
    }

    /// How many workers there are.
    pub(crate) fn count(&self) -> usize {
        self.workers.len()
    }

    /// Runs `connection` on the worker serving the fewest connections.
    pub(crate) fn place<F>(&self, connection: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Some(worker) = self
            .workers
            .iter()
            .min_by_key(|worker| worker.load.load(Ordering::Relaxed))
        else {
            // `start` makes at least one worker; with none, the connection
            // is dropped (closed) rather than served somewhere unbounded.
            return;
        };
        let load = Load::counted(&worker.load);
        worker.runtime.spawn(async move {
            let _load = load;
            connection.await;
        });
    }
}

impl Stopper {
    /// Ends every worker, dropping what they still run, and waits for their
    /// threads to finish.
    pub(crate) async fn stop(self) {
        let Stopper { ends, threads } = self;
        for end in ends {
            let _ = end.send(());
        }
        // Joining blocks: off the async threads.
        let joined = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        });
        let _ = joined.await;
    }
}

/// One connection counted in a worker's load until it ends, however it ends.
struct Load(Arc<AtomicUsize>);

impl Load {
    fn counted(load: &Arc<AtomicUsize>) -> Load {
        load.fetch_add(1, Ordering::Relaxed);
        Load(load.clone())
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_go_to_the_least_loaded_worker_and_stay_on_its_thread() {
        let (workers, stopper) = Workers::start(2, "test").unwrap();
        assert_eq!(workers.count(), 2);
        let (release, released) = tokio::sync::watch::channel(false);
        let (report, mut reports) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..4 {
            let (report, mut released) = (report.clone(), released.clone());
            workers.place(async move {
                let before = std::thread::current().name().map(str::to_owned);
                // A task spawned by the connection runs on the same thread.
                let inner =
                    tokio::spawn(async { std::thread::current().name().map(str::to_owned) })
                        .await
                        .unwrap();
                assert_eq!(before, inner);
                let _ = report.send(before.unwrap());
                let _ = released.wait_for(|released| *released).await;
            });
        }
        let mut names = Vec::new();
        for _ in 0..4 {
            names.push(reports.recv().await.unwrap());
        }
        names.sort();
        assert_eq!(
            names,
            [
                "glgate-test-0",
                "glgate-test-0",
                "glgate-test-1",
                "glgate-test-1"
            ]
        );
        let loads: Vec<usize> = workers
            .workers
            .iter()
            .map(|worker| worker.load.load(Ordering::Relaxed))
            .collect();
        assert_eq!(loads, [2, 2]);
        release.send(true).unwrap();
        stopper.stop().await;
    }

    #[tokio::test]
    async fn stopping_drops_what_the_workers_still_run() {
        let (workers, stopper) = Workers::start(1, "test").unwrap();
        let (held, mut dropped) = tokio::sync::mpsc::channel::<()>(1);
        workers.place(async move {
            let _held = held;
            std::future::pending::<()>().await;
        });
        stopper.stop().await;
        // The sender was dropped with the task: the channel is closed.
        assert!(dropped.recv().await.is_none());
        assert_eq!(workers.workers[0].load.load(Ordering::Relaxed), 0);
    }
}
