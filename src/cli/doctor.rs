//! `glgate doctor`: print the checklist `crate::doctor` builds; exit 1 when a
//! check failed or the checks took too long.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use super::exit::{Exit, Flavour, runtime};
use crate::doctor;

/// `glgate doctor --config FILE [--group PATH…]`: prints the checklist; exit
/// 1 when a check failed.
pub(super) fn run(config_path: &Path, groups: &[String]) -> ExitCode {
    let runtime = match runtime(Flavour::CurrentThread) {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("glgate: {error}");
            return Exit::Error.into();
        }
    };
    let report = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(120), doctor::run(config_path, groups)).await
    });
    match report {
        Ok(report) => {
            print!("{}", report.render());
            if report.failed() {
                Exit::Found.into()
            } else {
                Exit::Ok.into()
            }
        }
        Err(_) => {
            eprintln!("glgate doctor: gave up after 120 s");
            Exit::Found.into()
        }
    }
}
