//! The webhook spool through the real binary: `glgate webhooks status`,
//! `dead-letters` and `replay` on a spool file no server holds, the same
//! commands asking a running server on its admin listener, a second server
//! refused on a spool already held, and the admin endpoints.
//!
//! The spool files here are written with redb directly, in the format
//! `src/webhooks/spool.rs` documents (a 4-byte big-endian length, the
//! metadata JSON, the body): that pins the on-disk format, which a later
//! glgate must still read after an upgrade.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use http::Version;
use redb::{Database, TableDefinition};

use crate::support::client::{get, send};
use crate::support::sandbox::{Sandbox, SandboxOptions};

const QUEUE: TableDefinition<&str, &[u8]> = TableDefinition::new("queue");
const DEAD: TableDefinition<&str, &[u8]> = TableDefinition::new("dead_letters");

/// 2026-12-05T12:00:00Z, in ms.
const RECEIVED: u64 = 1_796_472_000_000;

fn glgate(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_glgate"))
        .args(args)
        .output()
        .expect("glgate runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// One stored record: metadata and body, framed as the spool stores them.
fn record(id: &str, attempts: u32, last_error: &str, dead: bool) -> Vec<u8> {
    let mut meta = serde_json::json!({
        "client": "echoes",
        "sealed": "sealed-target",
        "event": "Push Hook",
        "object": format!("acme/{id}"),
        "headers": [["X-Gitlab-Event", "Push Hook"], ["Idempotency-Key", format!("key-{id}")]],
        "received_unix_ms": RECEIVED,
        "attempts": attempts,
        "next_attempt_unix_ms": 0,
        "last_error": last_error,
    });
    if dead {
        meta["dead_unix_ms"] = (RECEIVED + 3_600_000).into();
    }
    let json = serde_json::to_vec(&meta).unwrap();
    let mut out = (json.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&json);
    out.extend_from_slice(br#"{"object_kind":"push"}"#);
    out
}

/// A spool folder (0700) holding `queued` deliveries and `dead` letters.
fn write_spool(dir: &Path, queued: &[&str], dead: &[(&str, &str)]) -> PathBuf {
    let spool = dir.join("spool");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&spool)
        .unwrap();
    let db = Database::create(spool.join("spool.redb")).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut queue = tx.open_table(QUEUE).unwrap();
        for id in queued {
            queue
                .insert(*id, record(id, 0, "", false).as_slice())
                .unwrap();
        }
        let mut dead_letters = tx.open_table(DEAD).unwrap();
        for (id, error) in dead {
            dead_letters
                .insert(*id, record(id, 9, error, true).as_slice())
                .unwrap();
        }
    }
    tx.commit().unwrap();
    spool
}

#[test]
fn the_commands_read_and_replay_a_spool_no_server_holds() {
    let dir = tempfile::tempdir().unwrap();
    let spool = write_spool(
        dir.path(),
        &["q1"],
        &[
            ("d1", "the receiver answered HTTP 500"),
            ("d2", "no answer within 10s"),
        ],
    );
    let spool = spool.to_str().unwrap();

    let (code, out, err) = glgate(&["webhooks", "status", "--spool", spool]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("queued:        1 deliveries"), "{out}");
    assert!(out.contains("dead letters:  2"), "{out}");
    // The oldest was received in 2026-12-05: an age in days or more.
    assert!(!out.contains("oldest:        0s"), "{out}");

    let (code, out, err) = glgate(&["webhooks", "dead-letters", "--spool", spool]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("ID"), "{out}");
    for (id, error) in [
        ("d1", "the receiver answered HTTP 500"),
        ("d2", "no answer within 10s"),
    ] {
        let line = lines.iter().find(|l| l.starts_with(id)).unwrap();
        for cell in [
            "echoes",
            "Push Hook",
            &format!("acme/{id}"),
            "2026-12-05T12:00:00Z",
            " 9 ",
            error,
        ] {
            assert!(line.contains(cell), "{cell} missing in {line}");
        }
    }
    // Never the sealed target or the body.
    assert!(
        !out.contains("sealed-target") && !out.contains("object_kind"),
        "{out}"
    );

    let (code, _, err) = glgate(&["webhooks", "replay", "nope", "--spool", spool]);
    assert_eq!(code, 1);
    assert!(err.contains("no dead letter with id nope"), "{err}");

    let (code, out, err) = glgate(&["webhooks", "replay", "d1", "--spool", spool]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("replayed d1"), "{out}");
    let (_, out, _) = glgate(&["webhooks", "status", "--spool", spool]);
    assert!(out.contains("queued:        2 deliveries"), "{out}");
    assert!(out.contains("dead letters:  1"), "{out}");

    let (code, out, err) = glgate(&["webhooks", "replay", "--all", "--spool", spool]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("replayed d2"), "{out}");
    let (code, out, _) = glgate(&["webhooks", "dead-letters", "--spool", spool]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "no dead letters");
    let (code, _, err) = glgate(&["webhooks", "replay", "--all", "--spool", spool]);
    assert_eq!(code, 1, "{err}");

    // The replayed letters are queued with their attempts reset.
    let db = Database::open(Path::new(spool).join("spool.redb")).unwrap();
    let tx = db.begin_read().unwrap();
    let queue = tx.open_table(QUEUE).unwrap();
    let stored = queue.get("d1").unwrap().unwrap();
    let stored = stored.value();
    let length = u32::from_be_bytes(stored[..4].try_into().unwrap()) as usize;
    let meta: serde_json::Value = serde_json::from_slice(&stored[4..4 + length]).unwrap();
    assert_eq!(meta["attempts"], 0);
    assert_eq!(meta["last_error"], "");
    assert_eq!(&stored[4 + length..], br#"{"object_kind":"push"}"#);
}

#[test]
fn the_commands_say_what_is_wrong_with_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let (code, _, err) = glgate(&["webhooks", "status", "--spool", missing.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("no webhook spool at"), "{err}");

    let spool = write_spool(dir.path(), &[], &[]);
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, _, err) = glgate(&["webhooks", "status", "--spool", spool.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("chmod 700"), "{err}");

    // One of --config and --spool is needed.
    let (code, _, err) = glgate(&["webhooks", "status"]);
    assert_eq!(code, 2);
    assert!(err.contains("--config") || err.contains("--spool"), "{err}");
}

/// The `webhooks:` section for a spool in `spool`, with a key file written beside.
fn webhooks_config(dir: &Path, spool: &Path) -> String {
    let key = dir.join("webhook-keys");
    std::fs::write(&key, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    format!(
        "webhooks:\n  key_file: {}\n  receive_url: https://glgate.example.test\n  spool: {}\n",
        key.display(),
        spool.display()
    )
}

#[tokio::test]
async fn a_running_server_holds_the_spool_and_answers_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let spool = write_spool(dir.path(), &[], &[("d1", "connect_error")]);
    let sb = Sandbox::with(SandboxOptions {
        config_extra: webhooks_config(dir.path(), &spool),
        ..SandboxOptions::default()
    })
    .await;
    let admin = sb.server.admin_addr.unwrap();
    // The sandbox's admin listener was bound to port 0: the commands read
    // the port from a copy of the config that names the bound one, as an
    // operator's config does.
    let text = std::fs::read_to_string(&sb.config_path).unwrap();
    let text = text.replace(
        "admin:\n  listen: 127.0.0.1:0",
        &format!("admin:\n  listen: {admin}"),
    );
    assert!(text.contains(&admin.to_string()), "{text}");
    let config_path = sb.dir.path().join("as-running.yaml");
    std::fs::write(&config_path, text).unwrap();
    let config = config_path.to_str().unwrap().to_owned();

    // The admin endpoints.
    let status = get(&format!("http://{admin}/webhooks/status"), "").await;
    assert_eq!(status.status, 200);
    let figures: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
    assert_eq!(
        (figures["depth"].as_u64(), figures["dead_letters"].as_u64()),
        (Some(0), Some(1))
    );
    let listed = get(&format!("http://{admin}/webhooks/dead-letters"), "").await;
    let listed: serde_json::Value = serde_json::from_slice(&listed.body).unwrap();
    assert_eq!(listed["dead_letters"][0]["id"], "d1");
    let wrong = send(
        Version::HTTP_11,
        "POST",
        &format!("http://{admin}/webhooks/replay"),
        &[("content-type", "application/json")],
        br#"{"everything":true}"#,
    )
    .await;
    assert_eq!(wrong.status, 400);
    let wrong = get(&format!("http://{admin}/webhooks/replay"), "").await;
    assert_eq!(wrong.status, 405);

    // A second server on the same spool stops with a clear error.
    let (code, _, err) = tokio::task::spawn_blocking({
        let config = sb.config_path.to_str().unwrap().to_owned();
        move || glgate(&["serve", "--config", &config])
    })
    .await
    .unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("already open in another process"), "{err}");
    assert!(err.contains(&spool.display().to_string()), "{err}");

    // The commands ask the server with --config…
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            glgate(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
    };
    let args = |words: &[&str]| {
        let mut all: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        all.extend(["--config".to_owned(), config.clone()]);
        all
    };
    let (code, out, err) = run(args(&["webhooks", "dead-letters"])).await.unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("d1") && l.contains("connect_error")),
        "{out}"
    );
    let (code, _, err) = run(args(&["webhooks", "replay", "nope"])).await.unwrap();
    assert_eq!(code, 1, "{err}");
    let (code, out, err) = run(args(&["webhooks", "replay", "--all"])).await.unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("replayed d1"), "{out}");
    let (code, out, err) = run(args(&["webhooks", "status"])).await.unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("dead letters:  0"), "{out}");
    // The replayed delivery is the running worker's again: its relay URL
    // was made with no key of this server's, so its attempt drops it.
    let events = sb.audit_events(1).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut dropped = events
        .iter()
        .any(|e| e["delivery_id"] == "d1" && e["phase"] == "attempt");
    while !dropped && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        dropped = sb
            .audit_events(1)
            .await
            .iter()
            .any(|e| e["delivery_id"] == "d1" && e["reason"] == "relay_url_unknown");
    }
    assert!(dropped, "the replayed delivery went back to the worker");

    // …and with --spool only, say how to reach it.
    let spool_arg = spool.to_str().unwrap().to_owned();
    let (code, _, err) = run(vec![
        "webhooks".into(),
        "status".into(),
        "--spool".into(),
        spool_arg,
    ])
    .await
    .unwrap();
    assert_eq!(code, 2);
    assert!(
        err.contains("already open") && err.contains("--config"),
        "{err}"
    );
}

#[tokio::test]
async fn without_the_relay_the_admin_listener_has_no_webhook_endpoints() {
    let sb = Sandbox::start().await;
    let admin = sb.server.admin_addr.unwrap();
    let answer = get(&format!("http://{admin}/webhooks/status"), "").await;
    assert_eq!(answer.status, 404);
    assert!(String::from_utf8_lossy(&answer.body).contains("not configured"));
}
