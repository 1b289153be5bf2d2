//! End to end: the holes an outside review found, closed (docs/threat-model.md
//! classes 22 onwards). Every assertion reads the fake GitLab's record, not
//! only the status the client saw.

use crate::support::client::{raw, raw_status, send};
use crate::support::sandbox::{Sandbox, SandboxOptions};
use http::Version;

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

/// A scope that leaves out a group inside an included one.
const SCOPE: &str = "    rate_limit: { per_second: 1000, burst: 1000 }\n    scope:\n      groups: [acme]\n      exclude: [acme/secret-stuff]\n";

async fn scoped() -> Sandbox {
    Sandbox::with(SandboxOptions {
        client_extra: SCOPE.into(),
        ..SandboxOptions::default()
    })
    .await
}

/// A filtered answer carries nothing computed over what was hidden: no
/// validator of GitLab's whole answer, no length of it on a HEAD, and the
/// client cannot ask GitLab whether the whole answer changed.
#[tokio::test]
async fn filtered_answers_carry_no_metadata_of_the_unfiltered_one() {
    let sb = scoped().await;
    let target = "/api/v4/groups/acme/projects?include_subgroups=true&per_page=100";
    // GitLab's own answer has a validator (the fake computes it as Rack does).
    let direct = client_get(&sb, target, &[]).await;
    assert_eq!(direct.status, 200);
    let names: Vec<String> = direct
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path_with_namespace"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with("acme/secret-stuff")),
        "{names:?}"
    );
    assert!(
        direct.header("etag").is_none(),
        "ETag of the unfiltered answer relayed"
    );
    assert!(direct.header("last-modified").is_none());
    let upstream = sb.fake.requests();
    let relayed = upstream
        .iter()
        .rev()
        .find(|r| r.target.starts_with("/api/v4/groups/acme/projects"))
        .unwrap();
    assert!(relayed.header("accept-encoding") == Some("identity"));

    // Conditional headers are not forwarded: a 304 would say whether hidden
    // items changed.
    sb.fake.clear_requests();
    let conditional = client_get(
        &sb,
        target,
        &[
            ("if-none-match", "W/\"anything\""),
            ("if-modified-since", "Sat, 01 Jan 2000 00:00:00 GMT"),
        ],
    )
    .await;
    assert_eq!(conditional.status, 200);
    let relayed: Vec<_> = sb
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.target.starts_with("/api/v4/groups/acme/projects"))
        .collect();
    assert_eq!(relayed.len(), 1);
    assert!(relayed[0].header("if-none-match").is_none());
    assert!(relayed[0].header("if-modified-since").is_none());

    // A HEAD does not relay the length of the unfiltered GET.
    let head = send(
        Version::HTTP_11,
        "HEAD",
        &sb.url(target),
        &[("private-token", &sb.client_token)],
        b"",
    )
    .await;
    assert_eq!(head.status, 200);
    let unfiltered = sb
        .fake
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "HEAD")
        .map(|_| ())
        .is_some();
    assert!(unfiltered, "the HEAD reached GitLab");
    let length = head.header("content-length").map(str::to_owned);
    assert!(
        length.is_none()
            || length.as_deref() == Some(direct.body.len().to_string().as_str())
            || length.as_deref() == Some("0"),
        "a HEAD's Content-Length sizes the unfiltered answer: {length:?}"
    );
    assert!(head.header("etag").is_none());
}

/// The same holds for a rule's `response_filter` without any scope (the
/// hook list shows only the client's own hooks).
#[tokio::test]
async fn a_response_filter_drops_validators_too() {
    let sb = Sandbox::start().await;
    let reply = client_get(&sb, "/api/v4/projects/101/hooks", &[]).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert!(reply.header("etag").is_none());
    // An unfiltered route keeps GitLab's validator.
    let plain = client_get(&sb, "/api/v4/user", &[]).await;
    assert_eq!(plain.status, 200);
    assert!(
        plain.header("etag").is_some(),
        "unfiltered answers keep their ETag"
    );
}

/// Grape reads `format` like a `.json` suffix: refused like the suffixes,
/// in the query and in the body, in any letter case.
#[tokio::test]
async fn a_format_parameter_is_refused_like_a_format_suffix() {
    let sb = Sandbox::start().await;
    for target in [
        "/api/v4/projects/101/merge_requests?format=xml",
        "/api/v4/projects/101/merge_requests?FORMAT=json",
    ] {
        let reply = client_get(&sb, target, &[]).await;
        assert_eq!(reply.status, 400, "{target}");
        assert_eq!(reply.json()["reason"], "forbidden_param", "{target}");
    }
    let reply = send(
        Version::HTTP_11,
        "PUT",
        &sb.url("/api/v4/projects/101/merge_requests/1"),
        &[
            ("private-token", &sb.client_token),
            ("content-type", "application/json"),
        ],
        br#"{"add_labels":"echoes/a","format":"xml"}"#,
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["reason"], "forbidden_param");
    assert!(sb.fake.requests().is_empty());
}

/// On a route whose answer a filter must read, a successful answer that is
/// not JSON is refused rather than relayed unread.
#[tokio::test]
async fn a_filtered_route_answered_in_another_format_is_refused() {
    let upstream = xml_upstream().await;
    let sb = Sandbox::with(SandboxOptions {
        upstream_url: Some(format!("http://{upstream}")),
        client_extra: SCOPE.into(),
        ..SandboxOptions::default()
    })
    .await;
    // `/groups` names no object, so nothing is resolved before GitLab answers.
    let reply = client_get(&sb, "/api/v4/groups", &[]).await;
    assert_eq!(
        reply.status,
        502,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json()["reason"], "response_unfilterable");
    assert!(!String::from_utf8_lossy(&reply.body).contains("secret"));
}

/// GET through glgate with the client token and extra headers.
async fn client_get(
    sb: &Sandbox,
    target: &str,
    extra: &[(&str, &str)],
) -> crate::support::client::Reply {
    let mut headers = vec![("private-token", sb.client_token.as_str())];
    headers.extend_from_slice(extra);
    send(Version::HTTP_11, "GET", &sb.url(target), &headers, b"").await
}

/// An upstream that answers every request with an XML list naming a group
/// out of any scope (and glgate's own token check with 404).
async fn xml_upstream() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buffer = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                let answer: &[u8] = if head.starts_with(b"GET /api/v4/personal_access_tokens/self ")
                {
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                } else {
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/xml\r\ncontent-length: 61\r\nconnection: close\r\n\r\n<groups><group><full_path>secret</full_path></group></groups>"
                };
                let _ = stream.write_all(answer).await;
            });
        }
    });
    addr
}

/// A group hook delivers the events of every project below its group: on a
/// group with something excluded below it, creating or changing one is
/// refused before GitLab; on a group wholly in scope it works; a project
/// hook inside the same group still works, and so does deleting.
#[tokio::test]
async fn group_hooks_only_on_groups_wholly_in_scope() {
    let sb = scoped().await;
    let hook = r#"{"url":"https://api.echoeshq.com/hooks/gitlab/acme","push_events":true}"#;
    let refused = post(&sb, "/api/v4/groups/acme/hooks", hook).await;
    assert_eq!(
        refused.status,
        403,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    assert_eq!(refused.json()["reason"], "group_hook_beyond_scope");
    assert!(
        !String::from_utf8_lossy(&refused.body).contains("secret"),
        "the refusal names nothing outside the scope"
    );
    let relayed = |sb: &Sandbox| {
        sb.fake
            .requests()
            .into_iter()
            .filter(|r| r.method != "GET")
            .map(|r| format!("{} {}", r.method, r.target))
            .collect::<Vec<_>>()
    };
    assert!(relayed(&sb).is_empty(), "{:?}", relayed(&sb));

    // A hook the customer registered on the group: updating it is refused
    // too (it would widen its events), deleting it is not.
    let existing = send(
        Version::HTTP_11,
        "POST",
        &format!("{}/api/v4/groups/10/hooks", sb.fake.base_url()),
        &[
            ("private-token", sb.fake.token()),
            ("content-type", "application/json"),
        ],
        hook.as_bytes(),
    )
    .await;
    assert_eq!(existing.status, 201);
    let id = existing.json()["id"].as_u64().unwrap();
    sb.fake.clear_requests();
    let update = send(
        Version::HTTP_11,
        "PUT",
        &sb.url(&format!("/api/v4/groups/acme/hooks/{id}")),
        &[
            ("private-token", sb.client_token.as_str()),
            ("content-type", "application/json"),
        ],
        br#"{"merge_requests_events":true}"#,
    )
    .await;
    assert_eq!(update.status, 403);
    assert_eq!(update.json()["reason"], "group_hook_beyond_scope");
    assert!(relayed(&sb).is_empty(), "{:?}", relayed(&sb));
    let delete = send(
        Version::HTTP_11,
        "DELETE",
        &sb.url(&format!("/api/v4/groups/acme/hooks/{id}")),
        &[("private-token", sb.client_token.as_str())],
        b"",
    )
    .await;
    assert_eq!(
        delete.status,
        204,
        "{}",
        String::from_utf8_lossy(&delete.body)
    );

    // A group with nothing excluded below it, and a project of acme: fine.
    assert_eq!(
        post(&sb, "/api/v4/groups/acme%2Fplatform/hooks", hook)
            .await
            .status,
        201
    );
    assert_eq!(
        post(&sb, "/api/v4/projects/acme%2Fbackend/hooks", hook)
            .await
            .status,
        201
    );
}

/// POST a JSON body through glgate with the client token.
async fn post(sb: &Sandbox, target: &str, body: &str) -> crate::support::client::Reply {
    send(
        Version::HTTP_11,
        "POST",
        &sb.url(target),
        &[
            ("private-token", sb.client_token.as_str()),
            ("content-type", "application/json"),
        ],
        body.as_bytes(),
    )
    .await
}

/// One request cannot make glgate send dozens of lookups to GitLab: past
/// the bound it is refused before any lookup; below it each distinct object
/// is resolved once.
#[tokio::test]
async fn lookups_per_request_are_bounded() {
    let sb = scoped().await;
    let many: Vec<String> = (1000..1030)
        .map(|id| format!("project_id[]={id}"))
        .collect();
    let reply = client_get(
        &sb,
        &format!("/api/v4/projects/101/merge_requests?{}", many.join("&")),
        &[],
    )
    .await;
    assert_eq!(
        reply.status,
        400,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json()["reason"], "too_many_objects");
    assert!(
        sb.fake.requests().is_empty(),
        "no lookup, nothing forwarded"
    );

    // A few objects, one named twice: one lookup each, then forwarded.
    let reply = client_get(
        &sb,
        "/api/v4/projects/101/merge_requests?project_id[]=102&project_id[]=103&project_id[]=102",
        &[],
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let lookups: Vec<String> = sb
        .fake
        .requests()
        .into_iter()
        .filter(|r| {
            r.header("user-agent")
                .is_some_and(|ua| ua.starts_with("glgate/"))
        })
        .map(|r| r.target)
        .collect();
    assert_eq!(lookups.len(), 3, "{lookups:?}");
}

/// A label whose name holds '%' can be read, changed and deleted by name:
/// its segment `echoes%2F50%25` decodes once to `echoes/50%`, which no
/// second decoding could change. A real double encoding stays refused.
#[tokio::test]
async fn a_label_name_with_a_percent_sign_is_reachable_by_name() {
    let sb = Sandbox::start().await;
    let created = post(
        &sb,
        "/api/v4/groups/acme/labels",
        r##"{"name":"echoes/50%","color":"#ffaa00"}"##,
    )
    .await;
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let read = client_get(&sb, "/api/v4/groups/acme/labels/echoes%2F50%25", &[]).await;
    assert_eq!(read.status, 200, "{}", String::from_utf8_lossy(&read.body));
    assert_eq!(read.json()["name"], "echoes/50%");
    let changed = send(
        Version::HTTP_11,
        "PUT",
        &sb.url("/api/v4/groups/acme/labels/echoes%2F50%25"),
        &[
            ("private-token", sb.client_token.as_str()),
            ("content-type", "application/json"),
        ],
        br##"{"color":"#00aaff"}"##,
    )
    .await;
    assert_eq!(
        changed.status,
        200,
        "{}",
        String::from_utf8_lossy(&changed.body)
    );
    let forwarded = sb
        .fake
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "PUT")
        .unwrap();
    assert_eq!(
        forwarded.target, "/api/v4/groups/acme/labels/echoes%2F50%25",
        "forwarded exactly as checked"
    );
    let deleted = send(
        Version::HTTP_11,
        "DELETE",
        &sb.url("/api/v4/groups/acme/labels/echoes%2F50%25"),
        &[("private-token", sb.client_token.as_str())],
        b"",
    )
    .await;
    assert_eq!(
        deleted.status,
        204,
        "{}",
        String::from_utf8_lossy(&deleted.body)
    );

    sb.fake.clear_requests();
    let doubly = client_get(&sb, "/api/v4/groups/acme/labels/echoes%2F50%252F", &[]).await;
    assert_eq!(doubly.status, 400);
    assert_eq!(doubly.json()["reason"], "ambiguous_target");
    assert!(sb.fake.requests().is_empty());
}

/// Answers computed over a group's whole subtree (statistics, labels of
/// descendant groups) would describe what the scope excludes: refused on a
/// group with anything excluded below it, allowed on a group wholly in scope.
#[tokio::test]
async fn subtree_aggregates_only_on_groups_wholly_in_scope() {
    let sb = scoped().await;
    for target in [
        "/api/v4/groups/acme?statistics=true",
        "/api/v4/groups/acme?Statistics=1",
        "/api/v4/groups?statistics=true",
        "/api/v4/groups/acme/labels?include_descendant_groups=true",
    ] {
        let reply = client_get(&sb, target, &[]).await;
        assert_eq!(
            reply.status,
            403,
            "{target}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.json()["reason"], "aggregate_beyond_scope", "{target}");
    }
    let relayed: Vec<_> = sb
        .fake
        .requests()
        .into_iter()
        .filter(|r| {
            !r.header("user-agent")
                .is_some_and(|ua| ua.starts_with("glgate/"))
        })
        .collect();
    assert!(relayed.is_empty(), "nothing relayed");
    for target in [
        "/api/v4/groups/acme%2Fplatform?statistics=true",
        "/api/v4/groups/acme?statistics=false",
        "/api/v4/groups/acme/labels?include_descendant_groups=false",
        "/api/v4/groups/acme/labels",
    ] {
        let reply = client_get(&sb, target, &[]).await;
        assert_eq!(
            reply.status,
            200,
            "{target}: {}",
            String::from_utf8_lossy(&reply.body)
        );
    }
}

/// Over the real server, for every `Connection` value made of up to two of
/// these options: a request glgate allows reaches GitLab typed and framed as
/// glgate parsed it (the same Content-Type, the same body bytes).
#[tokio::test]
async fn every_allowed_request_reaches_gitlab_typed_as_parsed() {
    let sb = Sandbox::start().await;
    let options = [
        "keep-alive",
        "te",
        "upgrade",
        "accept",
        "user-agent",
        "x-anything",
        "content-type",
        "Content-Length",
        "transfer-encoding",
        "content-encoding",
        "host",
        "private-token",
        "authorization",
        "cookie",
    ];
    let body = r#"{"add_labels":"echoes/a"}"#;
    let mut allowed = 0;
    for (i, first) in options.iter().enumerate() {
        for second in options[i..].iter().map(Some).chain([None]) {
            let connection = match second {
                Some(second) => format!("close, {first}, {second}"),
                None => format!("close, {first}"),
            };
            sb.fake.clear_requests();
            let request = format!(
                "PUT /api/v4/projects/101/merge_requests/1 HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: {}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n{body}",
                sb.client_token,
                body.len()
            );
            let response = raw(sb.server.addr, request.as_bytes()).await;
            let received = sb.fake.requests();
            if raw_status(&response) == 200 {
                allowed += 1;
                assert_eq!(received.len(), 1, "{connection}");
                assert_eq!(
                    received[0].header("content-type"),
                    Some("application/json"),
                    "{connection}"
                );
                assert_eq!(received[0].body, body.as_bytes(), "{connection}");
            } else {
                assert!(received.is_empty(), "{connection}: refused yet forwarded");
            }
        }
    }
    assert!(allowed > 10, "the harmless options are allowed ({allowed})");
}
