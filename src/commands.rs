//! The commands behind the CLI. Each returns the process exit code.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use crate::auth::token_digest_hex;
use crate::canonical::RequestHead;
use crate::cli::exit::{Exit, Flavour};
use crate::config::Config;
use crate::gitlab::UpstreamToken;
use crate::policy::{Decision, Policy, parse_body};
use crate::tools::normalize_target;

/// `glgate check`: validate, report every problem, summarize.
pub fn check(config_path: &Path) -> ExitCode {
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
    if let crate::config::TokenSource::OAuth(oauth) = &config.upstream.token
        && let Err(error) = UpstreamToken::read_file(
            &oauth.client_secret_file,
            "upstream.oauth.client_secret_file",
        )
    {
        println!("  warning: {error} (serve needs it)");
    }
    Exit::Ok.into()
}

/// `glgate policy explain`.
pub fn explain(
    policy_path: &Path,
    method: &str,
    target: &str,
    body_path: Option<&Path>,
    content_type: Option<&str>,
) -> ExitCode {
    let policy = match Policy::load(policy_path) {
        Ok(policy) => policy,
        Err(problems) => {
            eprintln!("{problems}");
            return Exit::Error.into();
        }
    };
    let body = match body_path.map(read_body).transpose() {
        Ok(body) => body.unwrap_or_default(),
        Err(error) => {
            eprintln!("cannot read the body: {error}");
            return Exit::Error.into();
        }
    };
    let target = normalize_target(target);
    let head = match RequestHead::parse(&method.to_ascii_uppercase(), &target) {
        Ok(head) => head,
        Err(error) => {
            println!("decision: deny");
            println!("reason:   {}: {error}", error.code());
            return Exit::Found.into();
        }
    };
    let content_type = content_type.or((!body.is_empty()).then_some("application/json"));
    let decision = match parse_body(content_type, &body) {
        Ok(params) => policy.evaluate(&head, &params),
        Err(reason) => match policy.route(&head) {
            Ok(matched) => Decision::Deny(matched.refuse(reason)),
            Err(denial) => Decision::Deny(denial),
        },
    };
    match decision {
        Decision::Allow(permit) => {
            println!("decision: allow");
            println!("rule:     {}", permit.rule());
            println!("template: {}", permit.template());
            let bound: Vec<String> = permit
                .bindings()
                .iter()
                .map(|b| format!("{}={}", b.name, b.value))
                .collect();
            println!("params:   {}", bound.join(" "));
            if let Some(condition) = permit.owned_if() {
                println!(
                    "then:     glgate reads the existing resource and forwards only if its {condition}"
                );
            }
            if let Some(condition) = permit.response_filter() {
                println!("then:     list items are relayed only if their {condition}");
            }
            println!("reason:   allowed");
            Exit::Ok.into()
        }
        Decision::Deny(denial) => {
            println!("decision: deny");
            println!("rule:     {}", denial.rule.as_deref().unwrap_or("-"));
            println!("template: {}", denial.template.as_deref().unwrap_or("-"));
            println!("reason:   {}: {}", denial.reason.code(), denial.reason);
            Exit::Found.into()
        }
    }
}

fn read_body(path: &Path) -> std::io::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut body = Vec::new();
        std::io::stdin().read_to_end(&mut body)?;
        Ok(body)
    } else {
        std::fs::read(path)
    }
}

/// `glgate probe URL`: GET the URL (plain HTTP, 5 s); exit 0 on a 2xx answer.
pub fn probe(url: &str) -> ExitCode {
    let Ok(uri) = url.parse::<http::Uri>() else {
        eprintln!("'{url}' is not a URL");
        return Exit::Error.into();
    };
    let runtime = match crate::cli::exit::runtime(Flavour::CurrentThread) {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{error}");
            return Exit::Found.into();
        }
    };
    let status = runtime.block_on(async {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Empty<bytes::Bytes>>();
        tokio::time::timeout(std::time::Duration::from_secs(5), client.get(uri)).await
    });
    match status {
        Ok(Ok(response)) if response.status().is_success() => Exit::Ok.into(),
        Ok(Ok(response)) => {
            eprintln!("{url}: {}", response.status());
            Exit::Found.into()
        }
        Ok(Err(error)) => {
            eprintln!("{url}: {error}");
            Exit::Found.into()
        }
        Err(_) => {
            eprintln!("{url}: no answer within 5 s");
            Exit::Found.into()
        }
    }
}

/// `glgate client new NAME [--replacing DIGEST]`.
pub fn client_new(name: &str, replacing: Option<&str>) -> ExitCode {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        eprintln!("invalid client name '{name}': use letters, digits, '-', '_' and '.'");
        return Exit::Error.into();
    }
    let mut secret = [0u8; 32];
    if let Err(error) = getrandom::fill(&mut secret) {
        eprintln!("the operating system gave no randomness: {error}");
        return Exit::Found.into();
    }
    let token = format!("glg_{}", hex::encode(secret));
    let digest = token_digest_hex(&token);
    if let Some(old) = replacing {
        let old = old.trim().trim_matches('"');
        if old.len() != 64 || !old.bytes().all(|b| b.is_ascii_hexdigit()) {
            eprintln!("--replacing takes the current token_sha256 (64 hex characters)");
            return Exit::Error.into();
        }
        println!(
            "New client token for '{name}' (shown once: hand it to the client, keep no copy):"
        );
        println!();
        println!("  {token}");
        println!();
        println!("1. List both digests for client '{name}' and reload glgate (SIGHUP):");
        println!();
        println!("    token_sha256:");
        println!("      - \"{old}\"  # current token");
        println!("      - \"{digest}\"  # new token");
        println!();
        println!("2. Once the client uses the new token, keep only the new digest and reload:");
        println!();
        println!("    token_sha256: \"{digest}\"");
        return Exit::Ok.into();
    }
    println!("Client token for '{name}' (shown once: hand it to the client, keep no copy):");
    println!();
    println!("  {token}");
    println!();
    println!("Add the client to the `clients:` list of your config:");
    println!();
    println!("  - name: {name}");
    println!("    token_sha256: \"{digest}\"");
    println!("    policy: ../policies/{name}.yaml");
    println!();
    println!(
        "To rotate an existing client's token instead: glgate client new {name} --replacing <its current token_sha256>"
    );
    Exit::Ok.into()
}
