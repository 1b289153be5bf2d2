//! The `glgate` binary: parse the command line, run the command, exit.

#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use glgate::cli::{
    Cli, ClientCommand, Command, Exit, Flavour, LogFormat, OAuthCommand, PolicyCommand,
    SchemaChoice, ScopeCommand, TokenCommand,
};
use glgate::commands;
use glgate::server::Server;
use glgate::tools;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, log_format } => serve(&config, log_format),
        Command::Check { config } => commands::check(&config),
        Command::Policy {
            command:
                PolicyCommand::Explain {
                    policy,
                    method,
                    target,
                    body,
                    content_type,
                },
        } => commands::explain(
            &policy,
            &method,
            &target,
            body.as_deref(),
            content_type.as_deref(),
        ),
        Command::Policy {
            command: PolicyCommand::Test { files },
        } => tools::cases::run(&files),
        Command::Policy {
            command: PolicyCommand::Show { file },
        } => tools::show::run(&file),
        Command::Policy {
            command: PolicyCommand::Diff { old, new },
        } => tools::diff::run(&old, &new),
        Command::Policy {
            command:
                PolicyCommand::Replay {
                    policy,
                    audit_log,
                    client,
                },
        } => tools::replay::run(&policy, &audit_log, client.as_deref()),
        Command::CheckLabels {
            intent_prefix,
            initiative_prefix,
            effort_prefix,
            require_effort,
            docs_url,
        } => tools::labels::run(
            std::env::var_os(tools::labels::LABELS_VARIABLE),
            &tools::labels::LabelRules {
                intent_prefix,
                initiative_prefix,
                effort_prefix,
                require_effort,
            },
            docs_url.as_deref(),
        ),
        Command::Probe { url } => commands::probe(&url),
        Command::Scope {
            command: ScopeCommand::Show { config, client },
        } => glgate::scope::show::run(&config, client.as_deref()),
        Command::Schema { kind } => {
            let kind = match kind {
                SchemaChoice::Config => glgate::schema::SchemaKind::Config,
                SchemaChoice::Policy => glgate::schema::SchemaKind::Policy,
            };
            print!("{}", glgate::schema::render(kind));
            Exit::Ok.into()
        }
        Command::Client {
            command: ClientCommand::New { name, replacing },
        } => commands::client_new(&name, replacing.as_deref()),
        Command::Doctor { config, groups } => glgate::doctor::command(&config, &groups),
        Command::Token {
            command: TokenCommand::Rotate { config, expires_at },
        } => glgate::credential::commands::rotate(&config, expires_at.as_deref()),
        Command::Oauth {
            command: OAuthCommand::Login { config, wait },
        } => glgate::credential::commands::oauth_login(&config, wait),
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("GLGATE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn serve(config: &Path, log_format: LogFormat) -> ExitCode {
    init_logging(log_format);
    let runtime = match glgate::cli::runtime(Flavour::MultiThread) {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("glgate: {error}");
            return Exit::Found.into();
        }
    };
    runtime.block_on(async {
        let server = match Server::start(config).await {
            Ok(server) => server,
            Err(error) => {
                eprintln!("glgate: cannot start:\n{error}");
                return Exit::Found.into();
            }
        };
        tracing::info!(listen = %server.addr, admin = ?server.admin_addr, "glgate is serving");
        match wait_for_signals(&server).await {
            Ok(()) => {
                tracing::info!("shutting down: draining in-flight requests");
                server.shutdown().await;
                Exit::Ok.into()
            }
            Err(error) => {
                eprintln!("glgate: cannot install signal handlers: {error}");
                Exit::Found.into()
            }
        }
    })
}

/// Reloads on SIGHUP until SIGTERM or SIGINT arrives.
async fn wait_for_signals(server: &Server) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = hangup.recv() => match server.reload() {
                Ok(()) => tracing::info!("config reloaded"),
                Err(error) => tracing::error!("reload refused, keeping the running config:\n{error}"),
            },
            _ = terminate.recv() => return Ok(()),
            _ = interrupt.recv() => return Ok(()),
        }
    }
}
