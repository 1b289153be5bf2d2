//! `glgate scope show`: list, via GitLab, what each client's scope reaches
//! (the lookups and the listing are `crate::scope::show`); `glgate scope
//! prune-hooks`: the relay hooks outside their client's scope
//! (`crate::webhooks::prune`), deleted only with `--delete`.

use std::path::Path;
use std::process::ExitCode;

use super::exit::{Exit, Flavour, runtime};
use crate::config::{ClientConfig, Config, TokenSource};
use crate::credential::Credential;
use crate::gitlab::http_client;
use crate::scope::show::{ShowError, reach, render};
use crate::upstream::{Upstream, UpstreamError};

/// Why an OAuth credential cannot be used here. glgate keeps its OAuth
/// access token in memory only, so this command would have to refresh one.
const OAUTH_UNSUPPORTED: &str = "glgate keeps its OAuth access token in memory only, and scope show never refreshes one: a refresh replaces the refresh token the running glgate holds, which then could no longer renew its own";

/// `glgate scope show --config FILE [--client NAME]`: exit 0 when every
/// scope entry exists, 1 when one is unknown to GitLab, 2 when the config is
/// invalid or GitLab cannot be asked.
pub(super) fn show(config_path: &Path, client: Option<&str>) -> ExitCode {
    let config = match Config::load(config_path) {
        Ok(config) => config,
        Err(problems) => {
            eprintln!("{problems}");
            return Exit::Error.into();
        }
    };
    let clients: Vec<&ClientConfig> = config
        .clients
        .iter()
        .filter(|c| client.is_none_or(|name| &*c.name == name))
        .collect();
    if clients.is_empty() {
        let names: Vec<&str> = config.clients.iter().map(|c| &*c.name).collect();
        eprintln!(
            "no client '{}' in {}; clients: {}",
            client.unwrap_or_default(),
            config_path.display(),
            names.join(", ")
        );
        return Exit::Error.into();
    }
    let (runtime, upstream) = match one_shot_upstream(&config) {
        Ok(pair) => pair,
        Err(code) => return code,
    };
    let upstream_url = config.upstream.url.to_string();
    println!("Scope as GitLab ({upstream_url}) sees it now, with glgate's token:");
    let mut missing = false;
    for client in clients {
        println!();
        let Some(scope) = &client.scope else {
            println!(
                "client {}\n  no scope: everything the GitLab token can see",
                client.name
            );
            continue;
        };
        match runtime.block_on(reach(&upstream, scope)) {
            Ok(reach) => {
                missing |= !reach.missing.is_empty();
                print!("{}", render(&client.name, scope, &reach));
            }
            Err(ShowError::Upstream(UpstreamError::CredentialUnavailable(_)))
                if matches!(config.upstream.token, TokenSource::OAuth(_)) =>
            {
                eprintln!(
                    "client {}: cannot read the scope from GitLab: {OAUTH_UNSUPPORTED}",
                    client.name
                );
                return Exit::Error.into();
            }
            Err(error) => {
                eprintln!(
                    "client {}: cannot read the scope from GitLab: {error}",
                    client.name
                );
                return Exit::Error.into();
            }
        }
    }
    if missing {
        Exit::Found.into()
    } else {
        Exit::Ok.into()
    }
}

/// A runtime and only what GitLab lookups need: a connection pool and the
/// token read once. No `Snapshot`, no credential task: these commands never
/// refresh an OAuth token (that would replace the refresh token a running
/// glgate holds). The error is printed and its exit code returned.
fn one_shot_upstream(config: &Config) -> Result<(tokio::runtime::Runtime, Upstream), ExitCode> {
    let fail = |error: &dyn std::fmt::Display| {
        eprintln!("{error}");
        ExitCode::from(Exit::Error)
    };
    let runtime = runtime(Flavour::CurrentThread).map_err(|e| fail(&e))?;
    let pool = http_client(&config.upstream).map_err(|e| fail(&e))?;
    let credential = Credential::read_once(&config.upstream, pool.clone()).map_err(|e| fail(&e))?;
    Ok((
        runtime,
        Upstream::with_client(&config.upstream, credential, pool),
    ))
}

/// `glgate scope prune-hooks --config FILE [--delete]`: lists each relay
/// hook outside its client's scope (exit 1 when there are some, 0 when
/// none); with `--delete`, deletes them (exit 0 when all went, 2 when one
/// could not be deleted or GitLab cannot be asked).
pub(super) fn prune_hooks(config_path: &Path, delete: bool) -> ExitCode {
    let config = match Config::load(config_path) {
        Ok(config) => config,
        Err(problems) => {
            eprintln!("{problems}");
            return Exit::Error.into();
        }
    };
    let Some(webhooks) = &config.webhooks else {
        eprintln!(
            "{} has no webhooks: section, so there are no relay hooks to prune",
            config_path.display()
        );
        return Exit::Error.into();
    };
    let (runtime, upstream) = match one_shot_upstream(&config) {
        Ok(pair) => pair,
        Err(code) => return code,
    };
    let found = runtime.block_on(crate::webhooks::prune::relay_hooks(
        &upstream,
        &webhooks.sealer,
        &config.clients,
    ));
    let hooks = match found {
        Ok(hooks) => hooks,
        Err(error) => {
            eprintln!("cannot list the relay hooks: {error}");
            return Exit::Error.into();
        }
    };
    let outside: Vec<_> = hooks.iter().filter(|hook| !hook.in_scope).collect();
    println!(
        "{} relay hook(s) found, {} outside their client's scope{}",
        hooks.len(),
        outside.len(),
        if outside.is_empty() || delete {
            ""
        } else {
            " (dry run: add --delete to delete them)"
        }
    );
    let mut failed = false;
    for hook in &outside {
        let line = format!(
            "  client {}: {} {} hook {} -> {}",
            hook.client, hook.owner_kind, hook.owner_path, hook.hook_id, hook.url
        );
        if !delete {
            println!("{line}");
            continue;
        }
        match runtime.block_on(crate::webhooks::prune::delete(&upstream, hook)) {
            Ok(()) => println!("{line}: deleted"),
            Err(error) => {
                failed = true;
                println!("{line}: NOT deleted ({error})");
            }
        }
    }
    match (delete, failed, outside.is_empty()) {
        (_, true, _) => Exit::Error.into(),
        (false, false, false) => Exit::Found.into(),
        _ => Exit::Ok.into(),
    }
}
