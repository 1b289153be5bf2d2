//! `glgate check`: validate a config file and every policy it names, print
//! every problem at once, or a summary of what would be served.

use std::path::Path;
use std::process::ExitCode;

use super::exit::Exit;
use crate::config::{AuditOutput, Config, TokenSource};
use crate::credential::now_unix;
use crate::gitlab::UpstreamToken;
use crate::tls::{Expiry, TlsServer, certificate_not_after};

/// `glgate check`: validate, report every problem, summarize.
pub(super) fn run(config_path: &Path) -> ExitCode {
    let config = match Config::load(config_path) {
        Ok(config) => config,
        Err(problems) => {
            eprintln!("{problems}");
            eprintln!(
                "\n{} problem(s) found; nothing was started.",
                problems.0.len()
            );
            return Exit::Found.into();
        }
    };
    let start = start_checks(&config);
    if !start.problems.is_empty() {
        for problem in &start.problems {
            eprintln!("{}: {problem}", config_path.display());
        }
        eprintln!(
            "\n{} problem(s) found; serve would not start.",
            start.problems.len()
        );
        return Exit::Found.into();
    }
    println!("{}: ok", config_path.display());
    println!("  listen   {}", config.listen);
    println!("  upstream {}", config.upstream.url);
    for policy in config.policies() {
        let clients: Vec<&str> = config
            .clients
            .iter()
            .filter(|c| std::sync::Arc::ptr_eq(&c.policy, policy))
            .map(|c| &*c.name)
            .collect();
        println!(
            "  policy   {} ({}): {} rules, clients: {}",
            policy.name(),
            policy.source().display(),
            policy.rules().len(),
            clients.join(", ")
        );
    }
    if let Some(webhooks) = &config.webhooks {
        let receive = webhooks
            .receive_url
            .as_ref()
            .or(config.public_url.as_ref())
            .map_or_else(
                || format!("http://{}/-/webhooks/ (the listen address)", config.listen),
                |url| format!("{}/-/webhooks/", url.to_string().trim_end_matches('/')),
            );
        println!(
            "  webhooks relay at {receive}, queue {}",
            webhooks.spool.display()
        );
        for client in &config.clients {
            if let Some(payload) = &client.webhooks {
                println!(
                    "  webhooks {} ({}): {} event kind(s) pass",
                    client.name,
                    payload.source().display(),
                    payload.events().len()
                );
            }
        }
    }
    for warning in &start.warnings {
        println!("  warning: {warning}");
    }
    if let Err(error) = UpstreamToken::read(&config.upstream.token) {
        println!("  warning: {error} (serve needs it)");
    }
    if let TokenSource::OAuth(oauth) = &config.upstream.token
        && let Err(error) = UpstreamToken::read_file(
            &oauth.client_secret_file,
            "upstream.oauth.client_secret_file",
        )
    {
        println!("  warning: {error} (serve needs it)");
    }
    Exit::Ok.into()
}

/// What `serve` would find at start beyond the config file itself.
#[derive(Debug, Default)]
struct StartChecks {
    /// What would stop `serve` (or, for an expired certificate, make every
    /// handshake fail).
    problems: Vec<String>,
    /// What `serve` would run with but an operator should fix.
    warnings: Vec<String>,
}

/// Runs the checks `serve` runs at start, without binding a port or
/// creating a file: the TLS certificate and key (loaded, matched, and their
/// validity), the audit output, and the mode of the secret files.
fn start_checks(config: &Config) -> StartChecks {
    let mut checks = StartChecks::default();
    if !config.upstream.url.is_https() {
        checks.warnings.push(
            "upstream.url is plain http: the GitLab token crosses the network unencrypted".into(),
        );
    }
    if let Some(tls) = &config.tls {
        if let Err(error) = TlsServer::new(tls) {
            checks.problems.push(format!("tls: {error}"));
        }
        match certificate_not_after(&tls.cert_file).map(|end| Expiry::at(end, now_unix())) {
            Ok(Expiry::Valid { .. }) | Err(_) => {}
            Ok(Expiry::Expiring { days_left }) => checks.warnings.push(format!(
                "tls.cert_file {} expires in {days_left} day(s): renew it",
                tls.cert_file.display()
            )),
            Ok(Expiry::Expired { days_ago }) => checks.problems.push(format!(
                "tls.cert_file {} expired {days_ago} day(s) ago: clients refuse the handshake; renew it",
                tls.cert_file.display()
            )),
        }
    }
    if let AuditOutput::File(path) = &config.audit
        && let Err(problem) = audit_file_writable(path)
    {
        checks.problems.push(problem);
    }
    let mut secret_files: Vec<(&str, &Path)> = match &config.upstream.token {
        TokenSource::File(path) => vec![("upstream.token_file", path)],
        TokenSource::OAuth(oauth) => vec![
            (
                "upstream.oauth.client_secret_file",
                &oauth.client_secret_file,
            ),
            (
                "upstream.oauth.refresh_token_file",
                &oauth.refresh_token_file,
            ),
        ],
        _ => Vec::new(),
    };
    if let Some(webhooks) = &config.webhooks {
        secret_files.push(("webhooks.key_file", &webhooks.key_file));
        if let Some(path) = &webhooks.signing_secret_file {
            secret_files.push(("webhooks.signing_secret_file", path));
        }
    }
    for (key, path) in secret_files {
        if let Some(warning) = loose_mode(key, path) {
            checks.warnings.push(warning);
        }
    }
    checks
}

/// Whether the audit file can be appended to (or created in its folder),
/// without creating it.
fn audit_file_writable(path: &Path) -> Result<(), String> {
    if path.exists() {
        return std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
            .map_err(|error| {
                format!("audit.output: cannot append to {}: {error}", path.display())
            });
    }
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        return Err(format!(
            "audit.output: the folder of {} does not exist: create it, or point audit.output elsewhere",
            path.display()
        ));
    }
    rustix::fs::access(folder, rustix::fs::Access::WRITE_OK).map_err(|error| {
        format!(
            "audit.output: cannot create {} ({error}): make its folder writable for glgate's user",
            path.display()
        )
    })
}

/// A warning when a secret file is readable or writable by group or others.
fn loose_mode(key: &str, path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "{key} {} is open to group or others (mode {mode:03o}): chmod 600 {}",
            path.display(),
            path.display()
        )
    })
}
