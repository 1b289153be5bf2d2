//! The real `glgate` binary, run as an operator runs it.

// Test support: not every test binary uses every helper.
#![allow(dead_code)]

/// Runs `glgate args…` off the async runtime (so an in-process fake GitLab
/// keeps serving) and returns its exit code, standard output and error.
pub async fn run_glgate(args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_glgate"))
            .args(&args)
            .output()
            .expect("the glgate binary runs")
    })
    .await
    .expect("the blocking task ends");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
