//! `glgate check`: validate a config file and every policy it names, print
//! every problem at once, or a summary of what would be served.

use std::path::Path;
use std::process::ExitCode;

use super::exit::Exit;
use crate::config::{Config, TokenSource};
use crate::gitlab::UpstreamToken;

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
