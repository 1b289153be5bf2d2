//! glgate's main job on an embedded default, with no GitLab account:
//! the real proxy with the shipped Echoes policy in front of a local fake
//! GitLab, driving allowed and refused calls and printing the audit decisions.
//!
//! ```text
//! cargo run --release --example demo            # scripted tour
//! cargo run --release --example demo -- --serve # keep serving; print URLs and a client token
//! cargo run --release --example demo -- --serve --prefix /gitlab # GitLab under a relative URL
//! ```
//!
//! With `--serve`, the first line on standard output is JSON:
//! `{"glgate_url": …, "client_token": …, "scoped_client_token": …,
//! "gitlab_url": …, "gitlab_prefix": …, "audit_log": …, "oauth_client_id": …,
//! "oauth_client_secret": …, "oauth_redirect_uri": …}`; the demo serves until
//! standard input closes or Ctrl-C. The second client, `other`, has the same
//! policy and a scope ([`DEMO_SCOPE`]). `--prefix` puts the fake GitLab under a
//! relative-URL prefix (glgate itself still answers at its root). The fake
//! GitLab knows one OAuth application ([`TRY_OAUTH_APP`]), so `glgate oauth
//! login` can be tried against it (docs/try-it.md).
//!
//! While serving, each line on standard input is a command to the fake
//! GitLab, answered by one JSON line on standard output (see [`command`]),
//! so interop tests in other languages can make GitLab answer 429 or check
//! what reached it.

// A demo that cannot set itself up has nothing better to do than stop with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/client.rs"]
mod client;
#[path = "../tests/support/sandbox.rs"]
mod sandbox;

use http::Version;
use sandbox::{Sandbox, SandboxOptions};

/// One call of the tour: what it does, and the request.
struct Call {
    what: &'static str,
    method: &'static str,
    target: &'static str,
    body: &'static str,
}

const TOUR: &[Call] = &[
    Call {
        what: "SDK start-up probe",
        method: "GET",
        target: "/api/v4/",
        body: "",
    },
    Call {
        what: "who am I",
        method: "GET",
        target: "/api/v4/user",
        body: "",
    },
    Call {
        what: "top-level groups",
        method: "GET",
        target: "/api/v4/groups?top_level_only=true&min_access_level=40",
        body: "",
    },
    Call {
        what: "a group's projects, page 2",
        method: "GET",
        target: "/api/v4/groups/acme/projects?page=2&per_page=20",
        body: "",
    },
    Call {
        what: "a project by encoded path",
        method: "GET",
        target: "/api/v4/projects/acme%2Fbackend",
        body: "",
    },
    Call {
        what: "open merge requests",
        method: "GET",
        target: "/api/v4/projects/101/merge_requests?state=opened",
        body: "",
    },
    Call {
        what: "set Echoes labels on an MR",
        method: "PUT",
        target: "/api/v4/projects/101/merge_requests/1",
        body: r#"{"add_labels":"echoes/intent: feature,echoes/effort: S"}"#,
    },
    Call {
        what: "create an echoes/ group label",
        method: "POST",
        target: "/api/v4/groups/10/labels",
        body: r##"{"name":"echoes/initiative: Q4","color":"#428BCA"}"##,
    },
    Call {
        what: "register the Echoes webhook",
        method: "POST",
        target: "/api/v4/projects/101/hooks",
        body: r#"{"url":"https://api.echoeshq.com/hooks/gitlab/acme","merge_requests_events":true}"#,
    },
    Call {
        what: "read a repository file",
        method: "GET",
        target: "/api/v4/projects/101/repository/files/.env?ref=main",
        body: "",
    },
    Call {
        what: "delete a project",
        method: "DELETE",
        target: "/api/v4/projects/101",
        body: "",
    },
    Call {
        what: "webhook to another host",
        method: "POST",
        target: "/api/v4/projects/101/hooks",
        body: r#"{"url":"https://attacker.example/collect"}"#,
    },
    Call {
        what: "edit an MR title",
        method: "PUT",
        target: "/api/v4/projects/101/merge_requests/1",
        body: r#"{"title":"pwned"}"#,
    },
    Call {
        what: "a non-echoes label",
        method: "PUT",
        target: "/api/v4/projects/101/merge_requests/1",
        body: r#"{"add_labels":"security-approved"}"#,
    },
    Call {
        what: "impersonation",
        method: "GET",
        target: "/api/v4/user?sudo=root",
        body: "",
    },
    Call {
        what: "dot-segment smuggling",
        method: "GET",
        target: "/api/v4/projects/acme%2F..%2Fsecret%2Fvault",
        body: "",
    },
];

/// The scope of the demo's second client: `acme` without its
/// `secret-stuff` subgroup, the `partners/team` subgroup, and one project of `tools`.
const DEMO_SCOPE: &str = "    scope:\n      groups: [acme, partners/team]\n      projects: [tools/ci-templates]\n      exclude: [acme/secret-stuff]\n";

/// The OAuth application registered on the served fake GitLab: client id,
/// client secret, redirect URI (glgate's default). Published in
/// docs/try-it.md; it opens nothing but the local stand-in.
const TRY_OAUTH_APP: (&str, &str, &str) = (
    "glgate-try",
    "glgate-try-secret",
    "http://127.0.0.1:7171/callback",
);

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let serve = args.iter().any(|a| a == "--serve");
    let path_prefix = args
        .iter()
        .position(|a| a == "--prefix")
        .map(|i| {
            args.get(i + 1)
                .expect("--prefix takes a value, e.g. /gitlab")
        })
        .cloned()
        .unwrap_or_default();
    assert!(
        path_prefix.is_empty() || (path_prefix.starts_with('/') && !path_prefix.ends_with('/')),
        "--prefix must look like /gitlab"
    );
    // The Echoes client's webhooks go through the relay (README, "Webhooks"):
    // its key and its queue live in a folder of their own for the demo's life.
    let relay = tempfile::tempdir().expect("a temporary folder");
    let key = relay.path().join("webhook-key");
    std::fs::write(
        &key,
        "8d3f0c5a1e2b4c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9012a3b4c5d6\n",
    )
    .expect("write the demo's webhook key");
    let sandbox = Sandbox::with(SandboxOptions {
        other_client: Some(DEMO_SCOPE.into()),
        path_prefix,
        config_extra: format!(
            "webhooks:\n  key_file: {}\n  spool: {}\n",
            key.display(),
            relay.path().join("spool").display()
        ),
        client_extra: format!(
            "    webhooks:\n      policy: {}/policies/echoes.webhooks.yaml\n",
            env!("CARGO_MANIFEST_DIR")
        ),
        ..SandboxOptions::default()
    })
    .await;
    if serve {
        serve_forever(sandbox).await;
    } else {
        tour(&sandbox).await;
    }
}

async fn serve_forever(sandbox: Sandbox) {
    let prefix = sandbox
        .fake
        .base_url()
        .trim_start_matches("http://")
        .split_once('/')
        .map(|(_, path)| format!("/{path}"))
        .unwrap_or_default();
    let (client_id, client_secret, redirect_uri) = TRY_OAUTH_APP;
    sandbox
        .fake
        .oauth_client(client_id, client_secret, redirect_uri);
    let line = serde_json::json!({
        "glgate_url": sandbox.base_url(),
        "client_token": sandbox.client_token,
        "scoped_client_token": sandbox.other_token,
        "scope": "groups [acme, partners/team], projects [tools/ci-templates], exclude [acme/secret-stuff]",
        "gitlab_url": sandbox.fake.base_url(),
        "gitlab_prefix": prefix,
        "audit_log": sandbox.audit_path,
        "oauth_client_id": client_id,
        "oauth_client_secret": client_secret,
        "oauth_redirect_uri": redirect_uri,
    });
    println!("{line}");
    // Standard input is read on a blocking thread; its lines come over a
    // channel, which closes when standard input does.
    let (lines_tx, mut lines) = tokio::sync::mpsc::channel::<String>(16);
    tokio::task::spawn_blocking(move || {
        for line in std::io::BufRead::lines(std::io::stdin().lock()) {
            let Ok(line) = line else { break };
            if lines_tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    loop {
        tokio::select! {
            line = lines.recv() => match line {
                Some(line) if line.trim().is_empty() => {}
                Some(line) => println!("{}", command(&sandbox, &prefix, &line)),
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    sandbox.server.shutdown().await;
}

/// Runs one control command read from standard input while serving and
/// returns its JSON answer (`{"ok": true, …}` or `{"ok": false, "error": …}`):
///
/// - `fail <status> <target>`: the next request for `<target>` (path and
///   query as glgate sends it, below the prefix, e.g. `/api/v4/projects/101`)
///   is answered `<status>` by the fake GitLab, e.g. 429.
/// - `rename-project <id> <path>`: renames a project within its namespace
///   (the old path then answers 301, as on GitLab).
/// - `requests`: what the fake GitLab received since the last `clear`:
///   method, target below the prefix, body, and which credential it carried
///   (`"glgate"` for glgate's own GitLab token; never a client token).
/// - `clear`: forgets the requests received so far.
/// - `hooks`: the hooks as GitLab stores them (`id`, `url`, whether it has a
///   secret token): with the relay, glgate's relay URL, not the client's.
fn command(sandbox: &Sandbox, prefix: &str, line: &str) -> serde_json::Value {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["fail", status, target] => match status.parse::<u16>() {
            Ok(status) => {
                sandbox
                    .fake
                    .set_fail_target(&format!("{prefix}{target}"), status);
                serde_json::json!({"ok": true})
            }
            Err(_) => serde_json::json!({"ok": false, "error": "status is not a number"}),
        },
        ["rename-project", id, path] => match id.parse::<u64>() {
            Ok(id) if sandbox.fake.rename_project(id, path) => serde_json::json!({"ok": true}),
            _ => serde_json::json!({"ok": false, "error": "no such project, or the path is taken"}),
        },
        ["requests"] => {
            let clients = [&sandbox.client_token, &sandbox.other_token];
            let requests: Vec<serde_json::Value> = sandbox
                .fake
                .requests()
                .iter()
                .map(|r| {
                    let seen = format!("{:?}{}", r.headers, r.body_text());
                    let credential = match r.header("private-token") {
                        Some(t) if t == sandbox.gitlab_token => "glgate",
                        Some(_) => "other",
                        None => "none",
                    };
                    serde_json::json!({
                        "method": r.method,
                        "target": r.target.strip_prefix(prefix).unwrap_or(&r.target),
                        "under_prefix": !prefix.is_empty() && r.target.starts_with(&format!("{prefix}/")),
                        "body": r.body_text(),
                        "credential": credential,
                        "client_token_seen": clients.iter().any(|t| seen.contains(t.as_str())),
                    })
                })
                .collect();
            serde_json::json!({"ok": true, "requests": requests})
        }
        ["clear"] => {
            sandbox.fake.clear_requests();
            serde_json::json!({"ok": true})
        }
        ["hooks"] => {
            let hooks: Vec<serde_json::Value> = sandbox
                .fake
                .stored_hooks()
                .into_iter()
                .map(|(id, url, token)| {
                    serde_json::json!({"id": id, "url": url, "has_token": token.is_some()})
                })
                .collect();
            serde_json::json!({"ok": true, "hooks": hooks})
        }
        _ => serde_json::json!({"ok": false, "error": format!("unknown command {line:?}")}),
    }
}

async fn tour(sandbox: &Sandbox) {
    println!("glgate demo: the shipped Echoes policy in front of a local fake GitLab");
    println!("  glgate  {}", sandbox.base_url());
    println!("  GitLab  {} (fake, in-process)\n", sandbox.fake.base_url());
    for call in TOUR {
        let mut headers = vec![("private-token", sandbox.client_token.as_str())];
        if !call.body.is_empty() {
            headers.push(("content-type", "application/json"));
        }
        let reply = client::send(
            Version::HTTP_11,
            call.method,
            &sandbox.url(call.target),
            &headers,
            call.body.as_bytes(),
        )
        .await;
        let outcome = if reply.status < 400 {
            "allowed"
        } else {
            "REFUSED"
        };
        println!(
            "{outcome:>8} {} {:<6} {:<34} {}",
            reply.status, call.method, call.what, call.target
        );
        if reply.status >= 400 {
            let message = reply.json()["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            println!("{:>12} {message}", "");
        }
    }
    let events = sandbox.audit_events(TOUR.len()).await;
    println!(
        "\nAudit log ({} lines, one per request; first three shown):",
        events.len()
    );
    for event in events.iter().take(3) {
        println!("  {event}");
    }
    println!("\nDecisions from the audit log:");
    for event in &events {
        println!(
            "  {:<5} {:<22} {:<24} {} {}",
            event["decision"].as_str().unwrap_or_default(),
            event["rule"]
                .as_str()
                .filter(|r| !r.is_empty())
                .unwrap_or("-"),
            event["reason"].as_str().unwrap_or_default(),
            event["status"],
            event["path"].as_str().unwrap_or_default(),
        );
    }
    let reached = sandbox.fake.requests();
    let allowed = events
        .iter()
        .filter(|e| e["decision"] == "allow" && e["reason"] == "allowed")
        .count();
    let local = events
        .iter()
        .filter(|e| e["decision"] == "allow" && e["reason"] != "allowed")
        .count();
    println!(
        "\nGitLab received {} requests: exactly the {allowed} the policy allowed, each with glgate's GitLab token and none with the client's.",
        reached.len()
    );
    if local > 0 {
        println!(
            "({local} more allowed line(s) above were answered by glgate itself: the SDK start-up probe GET /api/v4/ never reaches GitLab.)"
        );
    }
    println!(
        "\nNext: run your own config in front of this stand-in GitLab (docs/try-it.md), or in front of your GitLab (README, \"Running it in front of your GitLab\")."
    );
    assert_eq!(reached.len(), allowed, "only allowed requests reach GitLab");
    for request in &reached {
        assert_eq!(
            request.header("private-token"),
            Some(sandbox.gitlab_token.as_str())
        );
        let seen = format!("{:?}{}", request.headers, request.body_text());
        assert!(
            !seen.contains(&sandbox.client_token),
            "the client token never reaches GitLab"
        );
    }
}
