//! The command line: the clap tree (`args.rs`), [`run`] which dispatches a
//! parsed command line, and one file per command or command group that
//! reads the arguments, prints, and returns the exit code ([`exit`]). What a
//! command computes lives in its domain module; the files here only turn it
//! into output.

mod args;
mod check;
mod client;
mod completions;
mod credential;
mod doctor;
mod environment;
pub(crate) mod exit;
mod labels;
mod man;
mod policy;
mod probe;
mod schema;
mod scope;
mod serve;
mod webhooks;
mod webhooks_policy;

use std::process::ExitCode;

pub use args::Cli;
pub(crate) use args::{
    ClientCommand, Command, OAuthCommand, PolicyCommand, ScopeCommand, TokenCommand,
    WebhooksCommand,
};

/// Runs a parsed command line; the result is the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve { config, log_format } => serve::run(&config, log_format),
        Command::Check { config } => check::run(&config),
        Command::Policy { command } => match command {
            PolicyCommand::Explain {
                policy,
                method,
                target,
                body,
                content_type,
            } => policy::explain(
                &policy,
                &method,
                &target,
                body.as_deref(),
                content_type.as_deref(),
            ),
            PolicyCommand::Test { files } => policy::test(&files),
            PolicyCommand::Show { file } => policy::show(&file),
            PolicyCommand::Diff { old, new } => policy::diff(&old, &new),
            PolicyCommand::Replay {
                policy,
                audit_log,
                client,
            } => policy::replay(&policy, &audit_log, client.as_deref()),
            PolicyCommand::Permissions { policy } => policy::permissions(&policy),
        },
        Command::CheckLabels {
            intent_prefix,
            initiative_prefix,
            effort_prefix,
            require_effort,
            docs_url,
        } => labels::run(
            &crate::labels::LabelRules {
                intent_prefix,
                initiative_prefix,
                effort_prefix,
                require_effort,
            },
            docs_url.as_deref(),
        ),
        Command::Probe { url } => probe::run(&url),
        Command::Scope {
            command: ScopeCommand::Show { config, client },
        } => scope::show(&config, client.as_deref()),
        Command::Scope {
            command: ScopeCommand::PruneHooks { config, delete },
        } => scope::prune_hooks(&config, delete),
        Command::Webhooks { command } => match command {
            WebhooksCommand::Test {
                policy,
                event_file,
                event,
                quiet,
            } => webhooks_policy::test(&policy, &event_file, event.as_deref(), quiet),
            WebhooksCommand::Show { policy } => webhooks_policy::show(&policy),
            WebhooksCommand::NewKey => webhooks::new_key(),
            WebhooksCommand::Status { spool } => webhooks::status(&spool),
            WebhooksCommand::DeadLetters { spool } => webhooks::dead_letters(&spool),
            WebhooksCommand::Replay { id, all: _, spool } => {
                webhooks::replay(id.as_deref(), &spool)
            }
        },
        Command::Schema { kind } => schema::run(kind),
        Command::Client {
            command: ClientCommand::New { name, replacing },
        } => client::new(&name, replacing.as_deref()),
        Command::Doctor { config, groups } => doctor::run(&config, &groups),
        Command::Token {
            command: TokenCommand::Rotate { config, expires_at },
        } => credential::token_rotate(&config, expires_at.as_deref()),
        Command::Oauth {
            command: OAuthCommand::Login { config, wait },
        } => credential::oauth_login(&config, wait),
        Command::Completions { shell } => completions::run(shell),
        Command::Man { out_dir } => man::run(out_dir.as_deref()),
    }
}
