//! Captures everything glgate logs in a test process, so tests can check that
//! no token ever reaches a log line.
//!
//! Every test of the process logs into the same capture, in parallel: a check
//! that something was logged looks only at the lines naming the test's own
//! folder, file or request id (`lines_with`).

// Test support: a setup that fails stops the test with its reason.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Mutex, Once, OnceLock};

static CAPTURED: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
static INSTALL: Once = Once::new();

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURED
            .get_or_init(Default::default)
            .lock()
            .unwrap()
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Routes every log event of this test process, at every level, into memory.
pub fn install() {
    INSTALL.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(|| Capture)
            .try_init();
    });
}

/// Everything logged so far.
pub fn captured() -> String {
    String::from_utf8_lossy(&CAPTURED.get_or_init(Default::default).lock().unwrap()).into_owned()
}

/// The captured lines that hold `part` (a test's folder, file or request id),
/// read once: what this test's glgate logged, whatever else runs beside it.
pub fn lines_with(part: &str) -> Vec<String> {
    captured()
        .lines()
        .filter(|line| line.contains(part))
        .map(str::to_owned)
        .collect()
}
