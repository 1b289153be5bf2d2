//! An operator's first day (issue 17): what the tools say is what the proxy
//! does, through the real binary and a real proxy.

// Integration tests: a failed step stops the test with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;

use support::client::{raw, raw_status};
use support::sandbox::Sandbox;

/// `glgate policy explain` with the shipped policy: its decision line and output.
fn explain(method: &str, target: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_glgate"))
        .args([
            "policy",
            "explain",
            "--policy",
            "policies/echoes.yaml",
            method,
            target,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A lower-case method and an absolute-form target: `policy explain` refuses
/// them for the same reason the proxy does, where it used to allow them.
#[tokio::test]
async fn explain_reads_methods_and_targets_as_the_proxy_does() {
    let sb = Sandbox::start().await;
    let cases = [
        ("get", "/api/v4/user", "unsupported_method"),
        (
            "GET",
            "http://gitlab.example.com/api/v4/user",
            "not_origin_form",
        ),
    ];
    for (method, target, reason) in cases {
        let told = explain(method, target);
        assert!(told.contains("decision: deny"), "{method} {target}: {told}");
        assert!(told.contains(reason), "{method} {target}: {told}");
        let request = format!(
            "{method} {target} HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: {}\r\nConnection: close\r\n\r\n",
            sb.client_token
        );
        let response = raw(sb.server.addr, request.as_bytes()).await;
        assert!(
            response.contains(&format!("\"reason\":\"{reason}\"")),
            "{method} {target}: the proxy said {response}"
        );
        assert!(raw_status(&response) >= 400);
    }
    assert!(explain("GET", "/api/v4/user").contains("decision: allow"));
    assert!(
        sb.fake.requests().is_empty(),
        "nothing refused reached GitLab"
    );
}
