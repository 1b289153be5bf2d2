//! `glgate scope show`: list, via GitLab, what each client's scope reaches
//! (the lookups and the listing are `crate::scope::show`).

use std::path::Path;
use std::process::ExitCode;

use super::exit::{Exit, Flavour, runtime};
use crate::config::{ClientConfig, Config};
use crate::scope::show::{reach, render};

/// `glgate scope show --config FILE [--client NAME]`: exit 0 when every
/// scope entry exists, 1 when one is unknown to GitLab, 2 when the config is
/// invalid or GitLab cannot be asked.
pub fn show(config_path: &Path, client: Option<&str>) -> ExitCode {
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
    let bound = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let upstream_url = config.upstream.url.to_string();
    let snapshot = match crate::gateway::Snapshot::build(config.clone(), bound) {
        Ok(snapshot) => snapshot,
        Err(error) => {
            eprintln!("{error}");
            return Exit::Error.into();
        }
    };
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
        match runtime.block_on(reach(&snapshot.upstream, scope)) {
            Ok(reach) => {
                missing |= !reach.missing.is_empty();
                print!("{}", render(&client.name, scope, &reach));
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
