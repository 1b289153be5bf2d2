//! `glgate client new`: generate a client token and print the config lines
//! that hold its digest.

use std::process::ExitCode;

use super::exit::Exit;
use crate::auth::token_digest_hex;

/// `glgate client new NAME [--replacing DIGEST]`.
pub(super) fn new(name: &str, replacing: Option<&str>) -> ExitCode {
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
