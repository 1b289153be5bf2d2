//! Command-line interface: commands and flags only (no file or socket access).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// glgate: a security proxy for the GitLab REST API.
#[derive(Debug, Parser)]
#[command(name = "glgate", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy.
    Serve {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Log format on standard error (audit lines go where the config says).
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Validate a config file and every policy it names; print all errors at once.
    Check {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Work with policy files.
    Policy {
        /// What to do with the policy.
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Health probe for containers without curl: exit 0 when URL answers 2xx.
    Probe {
        /// An http:// URL, e.g. http://127.0.0.1:9090/live.
        url: String,
    },
    /// Manage client credentials.
    Client {
        /// What to do.
        #[command(subcommand)]
        command: ClientCommand,
    },
}

/// `glgate policy …`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Show what a policy decides for one request (exit 0 allow, 1 deny, 2 error).
    Explain {
        /// The policy file.
        #[arg(long, short)]
        policy: PathBuf,
        /// The request method, e.g. GET.
        method: String,
        /// The request target, e.g. /api/v4/projects/acme%2Fbackend (the /api/v4 prefix may be left out).
        target: String,
        /// A file holding the request body (`-` for standard input).
        #[arg(long)]
        body: Option<PathBuf>,
        /// The body's content type (default: application/json when a body is given).
        #[arg(long)]
        content_type: Option<String>,
    },
}

/// `glgate client …`
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Generate a client token; print it once, with the config lines holding its digest.
    New {
        /// The client's name, e.g. echoes.
        name: String,
    },
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}
