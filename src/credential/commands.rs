//! `glgate token rotate` and `glgate oauth login`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use super::{
    GitlabApi, LoginOutcome, Secret, check_writable, lock_rotation, login, parse_date,
    rotate_token, write_secret_file,
};
use crate::config::{Config, TokenSource};
use crate::gitlab::UpstreamToken;

/// Exit code when the command could not even start (config, arguments).
const EXIT_USAGE: u8 = 2;
/// Exit code when GitLab issued a new secret that could not be saved.
const EXIT_NOT_SAVED: u8 = 3;

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Some(runtime),
        Err(error) => {
            eprintln!("glgate: cannot start the async runtime: {error}");
            None
        }
    }
}

fn load(config_path: &Path) -> Option<Config> {
    match Config::load(config_path) {
        Ok(config) => Some(config),
        Err(problems) => {
            eprintln!("{problems}");
            None
        }
    }
}

/// `glgate token rotate --config FILE [--expires-at YYYY-MM-DD]`.
///
/// GitLab revokes the old token as it answers, so the new one is never
/// lost: the folder is checked for writability first, and if the write
/// still fails the new token is printed with what to do.
pub fn rotate(config_path: &Path, expires_at: Option<&str>) -> ExitCode {
    let Some(config) = load(config_path) else {
        return ExitCode::from(EXIT_USAGE);
    };
    if let Some(date) = expires_at
        && parse_date(date).is_none()
    {
        eprintln!("--expires-at '{date}' is not a date: use YYYY-MM-DD, e.g. 2026-12-31");
        return ExitCode::from(EXIT_USAGE);
    }
    let TokenSource::File(path) = &config.upstream.token else {
        eprintln!(
            "token rotate needs upstream.token_file: the new token must be written somewhere glgate reads it (GitLab revokes the old one at once)"
        );
        return ExitCode::from(EXIT_USAGE);
    };
    let token = match UpstreamToken::read(&config.upstream.token) {
        Ok(token) => token,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // One rotation at a time (another `token rotate`, a glgate with
    // auto_rotate): wait for the lock, then make sure the token is still the
    // one this command read. If not, someone else rotated it meanwhile, and
    // rotating the old one again would make GitLab revoke the whole family.
    let _lock = match lock_rotation(path, true) {
        Ok(Some(lock)) => lock,
        Ok(None) => return ExitCode::FAILURE,
        Err(error) => {
            eprintln!(
                "not rotating: cannot take the rotation lock {}.lock: {error}; fix the folder first",
                path.display()
            );
            return ExitCode::FAILURE;
        }
    };
    match UpstreamToken::read(&config.upstream.token) {
        Ok(on_file) if on_file.same_as(&token) => {}
        Ok(_) => {
            println!(
                "not rotating: the token in {} changed since this command started (another process rotated it); nothing to do.",
                path.display()
            );
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("not rotating: {error}");
            return ExitCode::FAILURE;
        }
    }
    if let Err(error) = check_writable(path, token.expose().len()) {
        eprintln!(
            "not rotating: {error}\nthe new token could not be saved there, and GitLab revokes the old one at once; fix the folder first"
        );
        return ExitCode::FAILURE;
    }
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    let rotated = runtime.block_on(async {
        let api = GitlabApi::new(&config.upstream).map_err(|e| e.to_string())?;
        rotate_token(&api, &Secret::personal(&token), expires_at)
            .await
            .map_err(|e| e.to_string())
    });
    let rotated = match rotated {
        Ok(rotated) => rotated,
        Err(error) => {
            eprintln!("rotation failed: {error}\nthe current token is unchanged");
            return ExitCode::FAILURE;
        }
    };
    let expiry = rotated.expires_at.as_deref().unwrap_or("never");
    match write_secret_file(path, rotated.token.expose()) {
        Ok(()) => {
            println!(
                "rotated: the new token (expires {expiry}) is in {}; GitLab revoked the old one.",
                path.display()
            );
            println!("running glgate instances pick it up within upstream.token_reload_interval.");
            ExitCode::SUCCESS
        }
        Err(error) => {
            // The one place a token is printed: it exists nowhere else now.
            eprintln!("GitLab rotated the token and revoked the old one, but {error}.");
            eprintln!("This is the new token (expires {expiry}); it is shown only here:");
            eprintln!();
            println!("{}", rotated.token.expose());
            eprintln!();
            eprintln!(
                "Save it now, readable only by glgate (mode 0600), as {}\nfor example: umask 077; cat > {} (paste, then Ctrl-D).\nDo not run `token rotate` again with the old token: GitLab would revoke the new one too.",
                path.display(),
                path.display()
            );
            ExitCode::from(EXIT_NOT_SAVED)
        }
    }
}

/// `glgate oauth login --config FILE`: the authorization-code flow with PKCE.
pub fn oauth_login(config_path: &Path, wait: Duration) -> ExitCode {
    let Some(config) = load(config_path) else {
        return ExitCode::from(EXIT_USAGE);
    };
    let TokenSource::OAuth(settings) = &config.upstream.token else {
        eprintln!("oauth login needs upstream.oauth in the config");
        return ExitCode::from(EXIT_USAGE);
    };
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    let outcome = runtime.block_on(login(&config.upstream, wait, |url| {
        println!("Open this URL in a browser signed in to GitLab as glgate's service account:");
        println!();
        println!("  {url}");
        println!();
        println!(
            "Waiting for GitLab to redirect to {} …",
            settings.redirect_uri
        );
    }));
    match outcome {
        Ok(LoginOutcome::Saved) => {
            println!(
                "authorized: the refresh token is in {}; start (or restart) glgate.",
                settings.refresh_token_file.display()
            );
            ExitCode::SUCCESS
        }
        Ok(LoginOutcome::NotSaved(error, token)) => {
            eprintln!("authorized, but {error}. This is the refresh token, shown only here:");
            println!("{}", token.expose());
            eprintln!(
                "Save it, mode 0600, as {} before starting glgate.",
                settings.refresh_token_file.display()
            );
            ExitCode::from(EXIT_NOT_SAVED)
        }
        Err(error) => {
            eprintln!("oauth login failed: {error}");
            ExitCode::FAILURE
        }
    }
}
