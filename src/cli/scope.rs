//! `glgate scope show`: list, via GitLab, what each client's scope reaches
//! (the lookups and the listing are `crate::scope::show`).

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
    let runtime = match runtime(Flavour::CurrentThread) {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{error}");
            return Exit::Error.into();
        }
    };
    // Only what the lookups need: a connection pool and the token read once.
    // No `Snapshot`, no credential task: this command changes nothing (an
    // OAuth refresh would replace the refresh token a running glgate holds).
    let upstream_url = config.upstream.url.to_string();
    let pool = match http_client(&config.upstream) {
        Ok(pool) => pool,
        Err(error) => {
            eprintln!("{error}");
            return Exit::Error.into();
        }
    };
    let credential = match Credential::read_once(&config.upstream, pool.clone()) {
        Ok(credential) => credential,
        Err(error) => {
            eprintln!("{error}");
            return Exit::Error.into();
        }
    };
    let upstream = Upstream::with_client(&config.upstream, credential, pool);
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
