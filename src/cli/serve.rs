//! `glgate serve`: start the proxy, reload on SIGHUP, drain on SIGTERM or SIGINT.

use std::path::Path;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

use super::args::LogFormat;
use super::exit::{Exit, Flavour, runtime};
use crate::server::Server;

/// `glgate serve --config FILE [--log-format text|json]`: runs until SIGTERM
/// or SIGINT, then drains in-flight requests; exit 1 when it cannot start.
pub(super) fn run(config: &Path, log_format: LogFormat) -> ExitCode {
    init_logging(log_format);
    let runtime = match runtime(Flavour::MultiThread) {
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
                // Through the logger, so that `--log-format json` stays JSON.
                tracing::error!("cannot start: {}", crate::diagnostic::describe(&error));
                return Exit::Found.into();
            }
        };
        let admin = server
            .admin_addr
            .map_or_else(|| "off".to_owned(), |addr| addr.to_string());
        tracing::info!(listen = %server.addr, %admin, "glgate is serving");
        match wait_for_signals(&server).await {
            Ok(()) => {
                tracing::info!("shutting down: draining in-flight requests");
                server.shutdown().await;
                Exit::Ok.into()
            }
            Err(error) => {
                tracing::error!("cannot install signal handlers: {error}");
                Exit::Found.into()
            }
        }
    })
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
