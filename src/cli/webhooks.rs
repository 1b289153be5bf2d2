//! `glgate webhooks new-key`: a key for `webhooks.key_file`; `glgate
//! webhooks status|dead-letters|replay`: the webhook relay's spool.
//!
//! The spool file is locked by the process that has it open. When no server
//! holds it, these commands open it themselves; when a running server holds
//! it, they ask that server on its admin listener (`admin.listen` from
//! `--config`): `GET /webhooks/status`, `GET /webhooks/dead-letters`,
//! `POST /webhooks/replay`. With `--spool DIR` only, they cannot know where
//! the server listens and say so.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::Deserialize;

use super::args::SpoolArgs;
use super::exit::{Exit, Flavour, runtime};
use crate::config::Config;
use crate::config::{DEFAULT_WEBHOOK_QUEUE_BYTES, DEFAULT_WEBHOOK_QUEUED};
use crate::webhooks::spool::{
    DeadLetter, OpenMode, Replay, Spool, SpoolError, SpoolSettings, admin_status,
};

/// How long the running server may take to answer.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// `glgate webhooks new-key`: prints a new webhook key on standard output
/// (exit 0; 2 without OS randomness).
pub(super) fn new_key() -> ExitCode {
    match crate::webhooks::seal::Sealer::new_key() {
        Ok(key) => {
            print!("{key}");
            Exit::Ok.into()
        }
        Err(error) => {
            eprintln!("cannot read OS randomness for a webhook key: {error}");
            Exit::Error.into()
        }
    }
}

/// `glgate webhooks status`: exit 0 with the figures, 2 when the spool
/// cannot be read.
pub(super) fn status(args: &SpoolArgs) -> ExitCode {
    with_spool(args, async |source| {
        let figures: Figures = match source {
            Source::File(spool) => serde_json::from_value(admin_status(&spool))
                .map_err(|e| format!("the spool's figures: {e}"))?,
            Source::Server(admin) => {
                serde_json::from_value(ask(admin, "GET", "/webhooks/status", None).await?)
                    .map_err(|e| format!("the server's answer: {e}"))?
            }
        };
        println!(
            "queued:        {} deliveries (max {})",
            figures.depth, figures.max_deliveries
        );
        println!(
            "bytes:         {} (max {})",
            figures.bytes, figures.max_bytes
        );
        let oldest = Duration::from_secs(figures.oldest_age_seconds.max(0.0) as u64);
        println!("oldest:        {}", humantime::format_duration(oldest));
        println!("dead letters:  {}", figures.dead_letters);
        Ok(Exit::Ok)
    })
}

/// `glgate webhooks dead-letters`: exit 0 with the list (possibly empty).
pub(super) fn dead_letters(args: &SpoolArgs) -> ExitCode {
    with_spool(args, async |source| {
        let list = match source {
            Source::File(spool) => spool.dead_letters().await.map_err(|e| e.to_string())?,
            Source::Server(admin) => {
                #[derive(Deserialize)]
                struct Answer {
                    dead_letters: Vec<DeadLetter>,
                }
                let answer = ask(admin, "GET", "/webhooks/dead-letters", None).await?;
                serde_json::from_value::<Answer>(answer)
                    .map_err(|e| format!("the server's answer: {e}"))?
                    .dead_letters
            }
        };
        if list.is_empty() {
            println!("no dead letters");
            return Ok(Exit::Ok);
        }
        print!("{}", render_dead_letters(&list));
        Ok(Exit::Ok)
    })
}

/// `glgate webhooks replay ID|--all`: exit 0 when something was replayed,
/// 1 when no dead letter has that id (or there are none).
pub(super) fn replay(id: Option<&str>, args: &SpoolArgs) -> ExitCode {
    let which = id.map_or(Replay::All, |id| Replay::One(id.to_owned()));
    with_spool(args, async |source| {
        let replayed: Vec<String> = match source {
            Source::File(spool) => spool
                .replay(which.clone())
                .await
                .map_err(|e| e.to_string())?,
            Source::Server(admin) => {
                let body = match &which {
                    Replay::One(id) => serde_json::json!({ "id": id }),
                    Replay::All => serde_json::json!({ "all": true }),
                };
                let answer = ask(admin, "POST", "/webhooks/replay", Some(body)).await?;
                serde_json::from_value(answer["replayed"].clone())
                    .map_err(|e| format!("the server's answer: {e}"))?
            }
        };
        if replayed.is_empty() {
            match which {
                Replay::One(id) => eprintln!(
                    "no dead letter with id {id}: `glgate webhooks dead-letters` lists them"
                ),
                Replay::All => eprintln!("no dead letters to replay"),
            }
            return Ok(Exit::Found);
        }
        for id in &replayed {
            println!("replayed {id}");
        }
        println!(
            "{} delivery(ies) queued again; the server delivers them at once",
            replayed.len()
        );
        Ok(Exit::Ok)
    })
}

/// The figures `status` prints, from the file or the server alike.
#[derive(Debug, Deserialize)]
struct Figures {
    depth: u64,
    bytes: u64,
    oldest_age_seconds: f64,
    dead_letters: u64,
    max_deliveries: u64,
    max_bytes: u64,
}

/// Where the spool is read.
enum Source {
    /// Opened here: no server holds it.
    File(Spool),
    /// Held by the server listening on this admin address.
    Server(SocketAddr),
}

/// Finds the spool, runs `work` on it, prints its error: exit 2 when the
/// spool cannot be reached or read.
fn with_spool(
    args: &SpoolArgs,
    work: impl AsyncFnOnce(Source) -> Result<Exit, String>,
) -> ExitCode {
    let runtime = match runtime(Flavour::CurrentThread) {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{error}");
            return Exit::Error.into();
        }
    };
    let result = match locate(args) {
        Ok(source) => runtime.block_on(work(source)),
        Err(error) => Err(error),
    };
    match result {
        Ok(exit) => exit.into(),
        Err(error) => {
            eprintln!("{error}");
            Exit::Error.into()
        }
    }
}

fn locate(args: &SpoolArgs) -> Result<Source, String> {
    let (settings, admin) = match (&args.config, &args.spool) {
        (Some(path), _) => {
            let config = Config::load(path).map_err(|problems| problems.to_string())?;
            let Some(webhooks) = &config.webhooks else {
                return Err(format!(
                    "{}: no `webhooks:` section, so no webhook spool (webhooks.spool names its folder)",
                    path.display()
                ));
            };
            (SpoolSettings::of(webhooks), config.admin_listen)
        }
        (None, Some(dir)) => (
            SpoolSettings {
                dir: dir.clone(),
                max_bytes: DEFAULT_WEBHOOK_QUEUE_BYTES,
                max_deliveries: DEFAULT_WEBHOOK_QUEUED,
                client_share_percent: 100,
            },
            None,
        ),
        // clap requires one of them.
        (None, None) => return Err("give --config FILE or --spool DIR".into()),
    };
    match (Spool::open(&settings, OpenMode::Existing), admin) {
        (Ok(spool), _) => Ok(Source::File(spool)),
        (Err(SpoolError::Locked { .. }), Some(admin)) => Ok(Source::Server(reachable(admin))),
        (Err(error @ SpoolError::Locked { .. }), None) if args.config.is_some() => Err(format!(
            "{error}\n(the config has no admin.listen, so this command cannot ask the server)"
        )),
        (Err(error @ SpoolError::Locked { .. }), None) => Err(format!(
            "{error}\n(give --config FILE instead of --spool so this command asks the server on its admin.listen)"
        )),
        (Err(error), _) => Err(error.to_string()),
    }
}

/// A listener bound to every address is reached on loopback.
fn reachable(admin: SocketAddr) -> SocketAddr {
    let ip = match admin.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    SocketAddr::new(ip, admin.port())
}

/// Asks the running server's admin listener; its JSON answer, or why not.
async fn ask(
    admin: SocketAddr,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, String> {
    let url = format!("http://{admin}{path}");
    let request = http::Request::builder()
        .method(method)
        .uri(&url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(
            body.map(|b| b.to_string()).unwrap_or_default(),
        )))
        .map_err(|e| format!("{url}: {e}"))?;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| crate::diagnostic::describe(&e))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok::<_, String>((status, body))
    };
    let (status, body) = tokio::time::timeout(ADMIN_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("{url}: no answer within 10 s"))?
        .map_err(|e| {
            format!("the spool is held by a running server; asking it at {url} failed: {e}")
        })?;
    let answer: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| format!("{url}: HTTP {}, not a JSON answer", status.as_u16()))?;
    if !status.is_success() {
        return Err(format!(
            "{url}: HTTP {}: {}",
            status.as_u16(),
            answer["message"].as_str().unwrap_or("no message")
        ));
    }
    Ok(answer)
}

/// The dead letters as a table, oldest first.
fn render_dead_letters(list: &[DeadLetter]) -> String {
    let when = |ms: u64| {
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
    };
    let rows: Vec<[String; 7]> = list
        .iter()
        .map(|d| {
            [
                d.id.clone(),
                d.client.clone(),
                d.event.clone(),
                d.object.clone(),
                when(d.received_unix_ms),
                d.attempts.to_string(),
                d.last_error.clone(),
            ]
        })
        .collect();
    let header = [
        "ID",
        "CLIENT",
        "EVENT",
        "OBJECT",
        "RECEIVED",
        "ATTEMPTS",
        "LAST ERROR",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let last = cells.len() - 1;
        for (n, cell) in cells.iter().enumerate() {
            if n == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[n]));
            }
        }
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    out
}
