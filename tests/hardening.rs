//! End to end: the holes an outside review found, closed (docs/threat-model.md
//! classes 22 onwards). Every assertion reads the fake GitLab's record, not
//! only the status the client saw.

// Integration tests: a failed step stops the test with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::client::{raw, raw_status};
use support::sandbox::Sandbox;

/// A body checked as JSON must reach GitLab typed as JSON: a `Connection`
/// header naming `Content-Type` (or any framing or credential header) would
/// have it dropped as hop-by-hop, so the request is refused before GitLab.
#[tokio::test]
async fn connection_naming_a_checked_header_is_refused() {
    let sb = Sandbox::start().await;
    let body = r#"{"add_labels":"echoes/a"}"#;
    // `close` first, so that the raw read ends with the answer.
    for connection in [
        "close, Content-Type",
        "close,content-type",
        "close, Content-Length",
        "close, Host",
        "close, Transfer-Encoding",
        "close, Private-Token",
    ] {
        let request = format!(
            "PUT /api/v4/projects/101/merge_requests/1 HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n{body}",
            sb.client_token,
            body.len()
        );
        let response = raw(sb.server.addr, request.as_bytes()).await;
        assert_eq!(raw_status(&response), 400, "{connection}: {response}");
        assert!(
            response.contains("end_to_end_header_in_connection"),
            "{connection}: {response}"
        );
    }
    assert!(sb.fake.requests().is_empty());

    // Connection with its ordinary options still works, and GitLab sees the
    // body typed as it was checked.
    let request = format!(
        "PUT /api/v4/projects/101/merge_requests/1 HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        sb.client_token,
        body.len()
    );
    let response = raw(sb.server.addr, request.as_bytes()).await;
    assert_eq!(raw_status(&response), 200, "{response}");
    let received = sb.fake.requests();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].header("content-type"), Some("application/json"));
    assert_eq!(received[0].body, body.as_bytes());
}
