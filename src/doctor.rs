//! `glgate doctor`: a checklist of everything glgate needs from GitLab, one
//! line per check (✓ ok, ! warning, ✗ failure), each failure saying what to
//! do. `src/cli/doctor.rs` prints it and exits non-zero when a check fails.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use crate::config::{Config, TlsSettings, TokenSource, UpstreamConfig};
use crate::credential::{GitlabApi, Secret, format_date, now_unix, parse_date};
use crate::gitlab::{UpstreamToken, client_tls_config};
use crate::review::permissions::Report as Needs;
use crate::tls::{Expiry, certificate_not_after};

mod fine_grained;

/// Days before expiry under which doctor warns.
const EXPIRY_WARNING_DAYS: i64 = 30;
/// GitLab's Maintainer access level: needed to register webhooks.
const MAINTAINER: u64 = 40;

/// How a check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mark {
    /// Fine.
    Pass,
    /// Works, but should be looked at.
    Warn,
    /// Broken: glgate will not work (or not safely) until fixed.
    Fail,
}

impl Mark {
    fn symbol(self) -> &'static str {
        match self {
            Mark::Pass => "✓",
            Mark::Warn => "!",
            Mark::Fail => "✗",
        }
    }
}

/// One line of the checklist.
#[derive(Clone, Debug)]
pub(crate) struct Check {
    /// The outcome.
    pub mark: Mark,
    /// What was checked and what was found.
    pub line: String,
    /// For a warning or failure: why it matters and what to do.
    pub advice: Option<String>,
}

/// The whole checklist.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// The checks, in order.
    pub checks: Vec<Check>,
}

impl Report {
    fn pass(&mut self, line: impl Into<String>) {
        self.push(Mark::Pass, line.into(), None);
    }

    fn warn(&mut self, line: impl Into<String>, advice: impl Into<String>) {
        self.push(Mark::Warn, line.into(), Some(advice.into()));
    }

    fn fail(&mut self, line: impl Into<String>, advice: impl Into<String>) {
        self.push(Mark::Fail, line.into(), Some(advice.into()));
    }

    fn push(&mut self, mark: Mark, line: String, advice: Option<String>) {
        self.checks.push(Check { mark, line, advice });
    }

    /// Whether any check failed.
    pub(crate) fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.mark == Mark::Fail)
    }

    /// The checklist as printed.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        for check in &self.checks {
            let _ = writeln!(out, "{} {}", check.mark.symbol(), check.line);
            if let Some(advice) = &check.advice {
                for line in advice.lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
        }
        let failed = self.checks.iter().filter(|c| c.mark == Mark::Fail).count();
        let warned = self.checks.iter().filter(|c| c.mark == Mark::Warn).count();
        let _ = writeln!(
            out,
            "\n{} check(s): {failed} failed, {warned} warning(s)",
            self.checks.len()
        );
        out
    }
}

/// Runs every check for the config at `config_path`; the token must manage
/// (webhooks need Maintainer) every group of every client's `scope.groups`,
/// plus `extra_groups`.
pub(crate) async fn run(config_path: &Path, extra_groups: &[String]) -> Report {
    let mut report = Report::default();
    let config = match Config::load(config_path) {
        Ok(config) => {
            report.pass(format!(
                "config and {} policy file(s) compile ({})",
                config.policies().len(),
                config_path.display()
            ));
            // What each policy needs of the token, so the token can be as
            // narrow as the policy (`glgate policy permissions`).
            for policy in config.policies() {
                let needs = crate::review::permissions::report(policy);
                report.pass(format!(
                    "policy {}: narrowest classic token scope {} ({}); fine-grained permissions: \
                     `glgate policy permissions {}`",
                    policy.name(),
                    needs.classic.as_str(),
                    needs.classic_reason,
                    policy.source().display()
                ));
            }
            config
        }
        Err(problems) => {
            report.fail(
                format!("config does not compile ({})", config_path.display()),
                format!(
                    "{problems}\nfix these, then run `glgate check --config {}`",
                    config_path.display()
                ),
            );
            return report;
        }
    };
    if let Some(tls) = &config.tls {
        serving_certificate(tls, &mut report);
    }
    if !reachable(&config.upstream, &mut report).await {
        return report;
    }
    let Some(secret) = credential(&config.upstream, &mut report) else {
        return report;
    };
    let api = match GitlabApi::new(&config.upstream) {
        Ok(api) => api,
        Err(error) => {
            report.fail(
                format!("upstream client: {error}"),
                "fix upstream.ca_file / client_cert_file",
            );
            return report;
        }
    };
    let groups = checked_groups(&config, extra_groups);
    let needs: Vec<Needs> = config
        .policies()
        .iter()
        .map(|policy| crate::review::permissions::report(policy))
        .collect();
    token_checks(&api, &secret, &groups, &needs, &mut report).await;
    report
}

/// The groups whose access level is checked: each scoped group of the
/// config (once), then the ones given on the command line.
fn checked_groups(config: &Config, extra: &[String]) -> Vec<String> {
    let mut groups: Vec<String> = Vec::new();
    let scoped = config
        .clients
        .iter()
        .filter_map(|client| client.scope.as_deref())
        .flat_map(|scope| scope.groups().iter().map(|g| g.as_str().to_owned()));
    for group in scoped.chain(extra.iter().cloned()) {
        if !groups.iter().any(|g| g.eq_ignore_ascii_case(&group)) {
            groups.push(group);
        }
    }
    groups
}

/// How long the certificate glgate serves (`tls.cert_file`) stays valid.
fn serving_certificate(tls: &TlsSettings, report: &mut Report) {
    let file = tls.cert_file.display();
    let not_after = match certificate_not_after(&tls.cert_file) {
        Ok(not_after) => not_after,
        Err(error) => {
            report.fail(
                format!("TLS certificate: {error}"),
                "fix tls.cert_file: it must hold the PEM certificate glgate serves",
            );
            return;
        }
    };
    let date = format_date(not_after);
    match Expiry::at(not_after, now_unix()) {
        Expiry::Valid { days_left } => report.pass(format!(
            "TLS certificate: valid until {date}, in {days_left} day(s) ({file})"
        )),
        Expiry::Expiring { days_left } => report.warn(
            format!("TLS certificate: expires {date}, in {days_left} day(s) ({file})"),
            "renew it before then; glgate reloads the files when they change",
        ),
        Expiry::Expired { days_ago } => report.fail(
            format!("TLS certificate: expired {date}, {days_ago} day(s) ago ({file})"),
            "clients refuse the handshake: renew it; glgate reloads the files when they change",
        ),
    }
}

/// DNS, TCP and TLS (with the configured CA) to the upstream.
async fn reachable(upstream: &UpstreamConfig, report: &mut Report) -> bool {
    let url = &upstream.url;
    let host = url
        .authority()
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url
        .authority()
        .port_u16()
        .unwrap_or(if url.is_https() { 443 } else { 80 });
    let addresses: Vec<std::net::SocketAddr> = match tokio::time::timeout(
        upstream.connect_timeout,
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(found)) => found.collect(),
        Ok(Err(error)) => {
            report.fail(
                format!("DNS: {host} does not resolve: {error}"),
                "check upstream.url and this host's resolver",
            );
            return false;
        }
        Err(_) => {
            report.fail(
                format!("DNS: no answer for {host}"),
                "check this host's resolver",
            );
            return false;
        }
    };
    if addresses.is_empty() {
        report.fail(format!("DNS: {host} has no address"), "check upstream.url");
        return false;
    }
    let listed: Vec<String> = addresses.iter().map(ToString::to_string).collect();
    report.pass(format!("DNS: {host} resolves to {}", listed.join(", ")));
    // Like the proxy's client, try every address until one connects.
    let mut failure = String::new();
    let mut connected = None;
    for address in &addresses {
        match tokio::time::timeout(
            upstream.connect_timeout,
            tokio::net::TcpStream::connect(address),
        )
        .await
        {
            Ok(Ok(stream)) => {
                connected = Some((*address, stream));
                break;
            }
            Ok(Err(error)) => failure = format!("cannot connect to {address}: {error}"),
            Err(_) => {
                failure = format!(
                    "no connection to {address} within {:?}",
                    upstream.connect_timeout
                )
            }
        }
    }
    let Some((first, stream)) = connected else {
        report.fail(
            format!("TCP: {failure}"),
            "is GitLab up, and does a firewall allow this host to reach it?",
        );
        return false;
    };
    report.pass(format!("TCP: connected to {first}"));
    if !url.is_https() {
        report.warn(
            "TLS: upstream.url is plain http",
            "the GitLab token crosses the network unencrypted; use https:// unless GitLab is on this host",
        );
        return true;
    }
    tls_check(upstream, &host, stream, report).await
}

async fn tls_check(
    upstream: &UpstreamConfig,
    host: &str,
    stream: tokio::net::TcpStream,
    report: &mut Report,
) -> bool {
    let trust = match &upstream.ca_file {
        Some(path) => format!("the system roots and ca_file {}", path.display()),
        None => "the system roots".to_owned(),
    };
    let config = match client_tls_config(
        upstream.ca_file.as_deref(),
        upstream.client_identity.as_ref(),
    ) {
        Ok(config) => config,
        Err(error) => {
            report.fail(
                format!("TLS: {error}"),
                "upstream.ca_file must hold PEM certificates",
            );
            return false;
        }
    };
    let Ok(name) = rustls_pki_types::ServerName::try_from(host.to_owned()) else {
        report.fail(
            format!("TLS: '{host}' is not a valid server name"),
            "check upstream.url",
        );
        return false;
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    match tokio::time::timeout(upstream.connect_timeout, connector.connect(name, stream)).await {
        Ok(Ok(_)) => {
            report.pass(format!("TLS: {host}'s certificate is valid for {trust}"));
            true
        }
        Ok(Err(error)) => {
            report.fail(
                format!("TLS: handshake with {host} failed: {error}"),
                format!("glgate trusts {trust}: if GitLab uses a private CA, set upstream.ca_file to it (PEM)"),
            );
            false
        }
        Err(_) => {
            report.fail(
                format!("TLS: no handshake with {host} in time"),
                "is this port really GitLab's HTTPS port?",
            );
            false
        }
    }
}

/// Reads the configured credential.
fn credential(upstream: &UpstreamConfig, report: &mut Report) -> Option<Secret> {
    match &upstream.token {
        TokenSource::OAuth(settings) => {
            match UpstreamToken::read(&upstream.token) {
                Ok(_) => report.warn(
                    format!("OAuth: refresh token file {} is readable", settings.refresh_token_file.display()),
                    "doctor does not refresh it: a refresh invalidates the refresh token the running glgate holds.\nThe token checks below are skipped; /ready on the admin listener shows whether GitLab accepts glgate.",
                ),
                Err(error) => report.fail(format!("OAuth: {error}"), "run `glgate oauth login --config FILE`"),
            }
            None
        }
        source => match UpstreamToken::read(source) {
            Ok(token) => Some(Secret::personal(&token)),
            Err(error) => {
                report.fail(
                    format!("token: {error}"),
                    "create a personal access token of a service account with scopes api and read_user, and put it there",
                );
                None
            }
        },
    }
}

async fn token_checks(
    api: &GitlabApi,
    secret: &Secret,
    groups: &[String],
    needs: &[Needs],
    report: &mut Report,
) {
    match api.get("/api/v4/version", secret).await {
        Ok(answer) if answer.status.is_success() => report.pass(format!(
            "GitLab {} (revision {})",
            answer.json["version"].as_str().unwrap_or("?"),
            answer.json["revision"].as_str().unwrap_or("?")
        )),
        Ok(answer) if answer.status == http::StatusCode::UNAUTHORIZED => {}
        Ok(answer) => report.warn(
            format!("GitLab version: unexpected answer {}", answer.status),
            "is upstream.url GitLab's base URL (with its relative URL prefix, if any)?",
        ),
        Err(error) => {
            report.fail(format!("GitLab API: {error}"), "check upstream.url");
            return;
        }
    }
    let user = match api.get("/api/v4/user", secret).await {
        Ok(answer) if answer.status.is_success() => {
            report.pass("token accepted by GitLab");
            answer.json
        }
        Ok(answer) if answer.status == http::StatusCode::UNAUTHORIZED => {
            report.fail(
                "token rejected by GitLab (401)",
                "the token is revoked, expired or mistyped: create a new one (scopes api, read_user) and replace it",
            );
            return;
        }
        Ok(answer) => {
            report.fail(
                format!("GET /user answered {}", answer.status),
                "is upstream.url GitLab's base URL?",
            );
            return;
        }
        Err(error) => {
            report.fail(format!("GitLab API: {error}"), "check upstream.url");
            return;
        }
    };
    personal_token(api, secret, needs, report).await;
    user_checks(&user, report);
    if let Some(user_id) = user["id"].as_u64() {
        group_checks(api, secret, user_id, groups, report).await;
    }
}

/// The token kind, state, scopes (or, for a fine-grained token, its
/// boundaries and permissions against what each policy needs) and expiry.
async fn personal_token(api: &GitlabApi, secret: &Secret, needs: &[Needs], report: &mut Report) {
    let answer = match api.get("/api/v4/personal_access_tokens/self", secret).await {
        Ok(answer) if answer.status.is_success() => answer.json,
        Ok(_) => {
            report.warn(
                "token kind: not a personal, project or group access token",
                "scopes and expiry cannot be checked for this kind of token",
            );
            return;
        }
        Err(error) => {
            report.fail(
                format!("GET /personal_access_tokens/self: {error}"),
                "retry",
            );
            return;
        }
    };
    let fine_grained = fine_grained::is_fine_grained(&answer);
    report.pass(format!(
        "token kind: {}personal access token '{}' (id {})",
        if fine_grained { "fine-grained " } else { "" },
        answer["name"].as_str().unwrap_or("?"),
        answer["id"]
    ));
    if answer["active"] == true && answer["revoked"] == false {
        report.pass("token is active and not revoked");
    } else {
        report.fail(
            "token is inactive or revoked",
            "create a new token (scopes api, read_user) and replace the old one",
        );
    }
    if fine_grained {
        // Its `scopes` say only "granular": what it may do is in its
        // boundaries, checked against the policies instead.
        fine_grained::check(&answer, needs, report);
    } else {
        classic_scopes(&answer, report);
    }
    expiry(&answer, report);
}

/// A classic token's scopes: `api` (and `read_user`, which `api` covers).
fn classic_scopes(answer: &serde_json::Value, report: &mut Report) {
    let scopes: Vec<&str> = answer["scopes"]
        .as_array()
        .map(|s| s.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    // `api` grants everything `read_user` does (GET /user, /users).
    let missing: Vec<&str> = ["api", "read_user"]
        .into_iter()
        .filter(|needed| {
            let covered = *needed == "read_user" && scopes.contains(&"api");
            !scopes.contains(needed) && !covered
        })
        .collect();
    if missing.is_empty() {
        report.pass(format!("scopes: {}", scopes.join(", ")));
    } else {
        let mut why = Vec::new();
        if missing.contains(&"api") {
            why.push("api: glgate forwards the writes the policy allows (labels, webhooks, merge request updates) and rotates the token");
        }
        if missing.contains(&"read_user") {
            why.push("read_user: clients read /user and /users through glgate");
        }
        report.fail(
            format!(
                "scopes: missing {} (has: {})",
                missing.join(", "),
                scopes.join(", ")
            ),
            format!(
                "{}\ncreate a token with the missing scopes (scopes cannot be added to a token)",
                why.join("\n")
            ),
        );
    }
}

/// The token's expiry date, against today.
fn expiry(answer: &serde_json::Value, report: &mut Report) {
    match answer["expires_at"].as_str().and_then(parse_date) {
        None => report.warn(
            "expiry: the token never expires",
            "GitLab recommends expiring tokens; rotate with `glgate token rotate --expires-at YYYY-MM-DD`",
        ),
        Some(expires_at) => {
            let days = (expires_at - now_unix()).div_euclid(86_400);
            let date = format_date(expires_at);
            if expires_at <= now_unix() {
                report.fail(format!("expiry: expired on {date}"), "create a new token and replace the old one");
            } else if days < EXPIRY_WARNING_DAYS {
                report.warn(
                    format!("expiry: {date}, in {days} day(s)"),
                    "rotate it now: `glgate token rotate --config FILE`, or set upstream.auto_rotate",
                );
            } else {
                report.pass(format!("expiry: {date}, in {days} days"));
            }
        }
    }
}

/// Whether the token's user is an administrator or looks like a person.
fn user_checks(user: &serde_json::Value, report: &mut Report) {
    let username = user["username"].as_str().unwrap_or("?");
    if user["is_admin"] == true {
        report.warn(
            format!("user {username} is an administrator"),
            "a token of an administrator can do anything on the instance; glgate's policy limits what clients ask, but a leaked token would not be limited.\nUse a dedicated non-admin service account that is a member of exactly the groups it needs.",
        );
    }
    let hints = [
        "bot",
        "service",
        "svc",
        "glgate",
        "automation",
        "integration",
    ];
    let looks_like_service = user["bot"] == true
        || hints
            .iter()
            .any(|hint| username.to_ascii_lowercase().contains(hint));
    if looks_like_service {
        report.pass(format!("user {username} is a dedicated account"));
    } else {
        report.warn(
            format!("user {username} looks like a person's account"),
            "a service account is recommended: it does not leave with an employee, its activity is clearly the integration's,\nand its group memberships give exactly the access glgate needs",
        );
    }
}

/// The user's access level in each group (Maintainer or above registers webhooks).
pub(crate) async fn group_checks(
    api: &GitlabApi,
    secret: &Secret,
    user_id: u64,
    groups: &[String],
    report: &mut Report,
) {
    for group in groups {
        let path = format!(
            "/api/v4/groups/{}/members/all/{user_id}",
            crate::canonical::encode_component(group)
        );
        match api.get(&path, secret).await {
            Ok(answer) if answer.status.is_success() => {
                let level = answer.json["access_level"].as_u64().unwrap_or(0);
                let name = access_level_name(level);
                if level >= MAINTAINER {
                    report.pass(format!("group {group}: {name} ({level})"));
                } else {
                    report.fail(
                        format!("group {group}: {name} ({level})"),
                        "registering webhooks needs Maintainer (40) or above: raise the service account's role in this group",
                    );
                }
            }
            Ok(answer) if answer.status == http::StatusCode::NOT_FOUND => report.fail(
                format!(
                    "group {group}: the token's user is not a member (or the group does not exist)"
                ),
                "add the service account to the group as Maintainer",
            ),
            Ok(answer) => report.fail(
                format!("group {group}: unexpected answer {}", answer.status),
                "retry; check the group path",
            ),
            Err(error) => report.fail(format!("group {group}: {error}"), "retry"),
        }
    }
}

fn access_level_name(level: u64) -> &'static str {
    match level {
        50.. => "Owner",
        40..50 => "Maintainer",
        30..40 => "Developer",
        20..30 => "Reporter",
        15..20 => "Planner",
        10..15 => "Guest",
        5..10 => "Minimal access",
        _ => "No access",
    }
}
