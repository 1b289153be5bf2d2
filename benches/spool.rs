//! The webhook spool's durable enqueue alone (`cargo bench --locked --bench
//! spool`): N concurrent producers, each enqueue returning only once its
//! delivery is committed and fsynced (redb, group commit), as the receiver
//! waits before answering GitLab. Reported per N: enqueues per second,
//! commits (fsyncs) taken, and the p50/p99/max time of one enqueue.
//!
//! The spool is written under `target/` (the file system to be measured,
//! not a tmpfs); `GLGATE_BENCH_SPOOL_DELIVERIES` sets the deliveries per
//! run (default 20,000) and the body is 5 KiB, a documented merge-request
//! payload's size.

// Benchmarks: a setup that fails stops the run with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

const BODY_BYTES: usize = 5 * 1024;

fn main() {
    // `cargo bench` passes `--bench`; a filter picks producer counts.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let deliveries: usize = std::env::var("GLGATE_BENCH_SPOOL_DELIVERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&root).unwrap();
    println!(
        "{:>9}  {:>10}  {:>12}  {:>8}  {:>9}  {:>9}  {:>9}",
        "producers", "deliveries", "enqueues/s", "commits", "p50", "p99", "max"
    );
    for producers in [1, 8, 64, 256] {
        if !filter.is_empty() && !filter.iter().any(|f| *f == producers.to_string()) {
            continue;
        }
        let dir = tempfile::Builder::new()
            .prefix("bench-spool-")
            .tempdir_in(&root)
            .unwrap();
        let figures = glgate::measure_enqueue(
            &dir.path().join("spool"),
            2,
            producers,
            deliveries,
            BODY_BYTES,
        )
        .unwrap();
        assert_eq!(figures.deliveries, deliveries, "every enqueue returned");
        let ms = |d: std::time::Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
        println!(
            "{:>9}  {:>10}  {:>12.0}  {:>8}  {:>9}  {:>9}  {:>9}",
            producers,
            figures.deliveries,
            figures.deliveries as f64 / figures.elapsed.as_secs_f64(),
            figures.commits,
            ms(figures.p50),
            ms(figures.p99),
            ms(figures.max),
        );
    }
}
