//! The command tree: every command and flag, as clap parses them. What each
//! command does is in its own file beside this one.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use super::environment;

/// glgate: a security proxy for the GitLab REST API.
#[derive(Debug, Parser)]
#[command(name = "glgate", version, about, long_about = None, after_help = environment::ALL)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the proxy.
    #[command(after_help = environment::SERVE)]
    Serve {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Log format on standard error (audit lines go where the config says).
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Validate a config file and every policy it names, and run the start-time checks of
    /// `serve` (TLS pair and expiry, audit output, secret file modes); print all errors at once.
    #[command(after_help = environment::CHECK)]
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
    /// The webhook relay: make its key, check a payload policy against a GitLab delivery, list
    /// what it passes, inspect the durable queue and replay its dead letters.
    Webhooks {
        /// What to do.
        #[command(subcommand)]
        command: WebhooksCommand,
    },
    /// Print the JSON Schema of the config, policy or webhook payload policy file format (for editors).
    Schema {
        /// Which format.
        #[arg(value_enum)]
        kind: SchemaChoice,
    },
    /// Health probe for containers without curl: exit 0 when URL answers 2xx.
    Probe {
        /// An http:// URL, e.g. http://127.0.0.1:9090/live.
        url: String,
    },
    /// Review client scopes against GitLab.
    Scope {
        /// What to do.
        #[command(subcommand)]
        command: ScopeCommand,
    },
    /// Check everything glgate needs from GitLab: a checklist, exit 1 if a check fails.
    #[command(after_help = environment::GITLAB_WITH_TOKEN)]
    Doctor {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        /// A group the token's user must manage (Maintainer or above), by full path, beyond
        /// the groups of every client's scope (always checked); repeatable.
        #[arg(long = "group")]
        groups: Vec<String>,
    },
    /// Manage the GitLab token.
    Token {
        /// What to do.
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Obtain OAuth credentials.
    Oauth {
        /// What to do.
        #[command(subcommand)]
        command: OAuthCommand,
    },
    /// Manage client credentials.
    Client {
        /// What to do.
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// CI job: check that a merge request carries the labels Echoes reads, from
    /// CI_MERGE_REQUEST_LABELS (exit 0 ok, 1 missing or invalid, 2 not a merge request pipeline).
    #[command(after_help = environment::CHECK_LABELS)]
    CheckLabels {
        /// Prefix of intent labels (at least one intent or initiative label is required).
        #[arg(long, default_value = crate::labels::DEFAULT_INTENT_PREFIX)]
        intent_prefix: String,
        /// Prefix of initiative labels.
        #[arg(long, default_value = crate::labels::DEFAULT_INITIATIVE_PREFIX)]
        initiative_prefix: String,
        /// Prefix of effort labels, whose value must be XS, S, M, L or XL (e.g. `echoes/effort: S`).
        #[arg(long, default_value = crate::labels::DEFAULT_EFFORT_PREFIX)]
        effort_prefix: String,
        /// Require exactly one effort label (`--require-effort` or `--require-effort=true|false`).
        #[arg(
            long,
            num_args = 0..=1,
            default_value_t = false,
            default_missing_value = "true",
            action = clap::ArgAction::Set
        )]
        require_effort: bool,
        /// Where the failure message points for what the labels mean
        /// [default: https://docs.echoeshq.com/].
        #[arg(long)]
        docs_url: Option<String>,
    },
    /// Print a shell completion script on standard output, e.g.
    /// `glgate completions bash > /etc/bash_completion.d/glgate`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on standard output, e.g. `glgate man | man -l -`; with
    /// --out-dir, write glgate.1 and one page per command (glgate-serve.1, …) there.
    Man {
        /// Write the pages into this folder instead (for packagers).
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

/// `glgate policy …`
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
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
    /// Run policy test files: print each failing case, then `N passed, M failed`
    /// (exit 0 all pass, 1 failures, 2 a file error).
    Test {
        /// Test files (e.g. policies/echoes.tests.yaml); each names its policy.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print every rule of a policy as a table: methods, paths, params and their
    /// constraints, conditions.
    Show {
        /// The policy file.
        file: PathBuf,
    },
    /// Compare two policies by (method, path template): what becomes allowed, what
    /// becomes refused, what changes (exit 0 same, 1 different, 2 error).
    Diff {
        /// The policy in force.
        old: PathBuf,
        /// The candidate policy.
        new: PathBuf,
    },
    /// Evaluate the requests of a glgate audit log (method and path only) against a
    /// policy; report the decisions that would change (exit 0 none, 1 some, 2 error).
    Replay {
        /// The policy to evaluate.
        #[arg(long, short)]
        policy: PathBuf,
        /// The audit log: one JSON line per request (`-` for standard input).
        audit_log: PathBuf,
        /// Only the requests of this client (others are counted as skipped).
        #[arg(long)]
        client: Option<String>,
    },
    /// Print the narrowest GitLab token the policy needs: the classic scope (read_api
    /// when it only reads, api when it writes) and, per rule, GitLab's fine-grained
    /// permissions where its documentation maps them.
    Permissions {
        /// The policy file.
        policy: PathBuf,
    },
}

/// `glgate webhooks …`
#[derive(Debug, Subcommand)]
pub(crate) enum WebhooksCommand {
    // Payload policy commands (printing in src/cli/webhooks_policy.rs).
    /// Show what a webhook payload policy does to one GitLab delivery: pass or drop (with
    /// the reason), the project or group it belongs to, the fields removed and the payload
    /// delivered (exit 0 pass, 1 drop, 2 error).
    Test {
        /// The webhook payload policy file (e.g. policies/echoes.webhooks.yaml).
        #[arg(long, short)]
        policy: PathBuf,
        /// The delivery's JSON body, as GitLab posts it (`-` for standard input).
        #[arg(long, value_name = "PAYLOAD.json")]
        event_file: PathBuf,
        /// The delivery's X-Gitlab-Event header, e.g. "Push Hook" [default: the header
        /// GitLab sends with the body's object_kind or event_name].
        #[arg(long, value_name = "HEADER")]
        event: Option<String>,
        /// Print nothing; only the exit code tells.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Print what a webhook payload policy passes, and what it removes or keeps from each
    /// event kind (exit 0, 2 when it does not load).
    Show {
        /// The webhook payload policy file.
        #[arg(long, short)]
        policy: PathBuf,
    },
    /// Print a new webhook key (64 hex digits: 32 random bytes) for webhooks.key_file.
    /// To rotate, put the new key on the first line and keep the old one below it until
    /// every relay hook has been registered again.
    NewKey,
    // The spool's commands (status, dead-letters, replay) stay together.
    /// Show the queue: deliveries waiting, their bytes, the oldest one's age, dead letters.
    /// Reads the spool file, or asks the running server on admin.listen when it holds the spool.
    Status {
        /// Where the spool is.
        #[command(flatten)]
        spool: SpoolArgs,
    },
    /// List the dead letters: deliveries given up after webhooks.max_age (id, client, event,
    /// object, when received, attempts, last error).
    DeadLetters {
        /// Where the spool is.
        #[command(flatten)]
        spool: SpoolArgs,
    },
    /// Move dead letters back to the queue: attempts start again, with a new
    /// webhooks.max_age (exit 1 when no dead letter has that id).
    Replay {
        /// The delivery id, as `dead-letters` lists it.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Every dead letter.
        #[arg(long)]
        all: bool,
        /// Where the spool is.
        #[command(flatten)]
        spool: SpoolArgs,
    },
}

/// `glgate scope …`
#[derive(Debug, Subcommand)]
pub(crate) enum ScopeCommand {
    /// List, via GitLab, the groups and projects each client's scope reaches
    /// (and those excluded), so they can be reviewed before going live.
    #[command(after_help = environment::GITLAB_WITH_TOKEN)]
    Show {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Only this client.
        #[arg(long)]
        client: Option<String>,
    },
    /// List the webhook relay's hooks on projects and groups outside their
    /// client's scope (exit 1 when there are some); delete them with --delete.
    #[command(name = "prune-hooks", after_help = environment::GITLAB_WITH_TOKEN)]
    PruneHooks {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Delete them (default: only list them).
        #[arg(long)]
        delete: bool,
    },
}

/// `glgate client …`
#[derive(Debug, Subcommand)]
pub(crate) enum ClientCommand {
    /// Generate a client token; print it once, with the config lines holding its digest.
    New {
        /// The client's name, e.g. echoes.
        name: String,
        /// The digest of the client's current token, when this new token replaces
        /// it: both are printed, to list during the rotation.
        #[arg(long, value_name = "SHA256")]
        replacing: Option<String>,
    },
}

/// Where a `webhooks` command finds the spool.
#[derive(Debug, clap::Args)]
pub(crate) struct SpoolArgs {
    /// The config file: its webhooks.spool folder, and its admin.listen to ask the running
    /// server when it holds the spool.
    #[arg(
        long,
        short,
        required_unless_present = "spool",
        conflicts_with = "spool"
    )]
    pub(crate) config: Option<PathBuf>,
    /// The spool folder (webhooks.spool), instead of --config: read only while no server
    /// holds it.
    #[arg(long, value_name = "DIR")]
    pub(crate) spool: Option<PathBuf>,
}

/// `glgate token …`
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Rotate the personal access token in upstream.token_file (GitLab revokes
    /// the old one at once); the new one is written to the file atomically.
    #[command(after_help = environment::GITLAB_TLS)]
    Rotate {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        /// The new token's expiry date, YYYY-MM-DD (GitLab's default: one week).
        #[arg(long, value_name = "YYYY-MM-DD")]
        expires_at: Option<String>,
    },
}

/// `glgate oauth …`
#[derive(Debug, Subcommand)]
pub(crate) enum OAuthCommand {
    /// Authorize glgate with the OAuth application (authorization code + PKCE,
    /// loopback redirect) and save the refresh token.
    #[command(after_help = environment::GITLAB_TLS)]
    Login {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        /// How long to wait for the browser's redirect, e.g. 5m.
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        wait: std::time::Duration,
    },
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Which file format's schema to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum SchemaChoice {
    /// The config file (`glgate.yaml`).
    Config,
    /// A policy file.
    Policy,
    /// A webhook payload policy file (`clients[].webhooks.policy`).
    WebhookPolicy,
}
