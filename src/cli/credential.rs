//! `glgate token rotate` and `glgate oauth login`: the commands that obtain a
//! new GitLab secret (the exchanges themselves are in `crate::credential`).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use super::exit::{Exit, Flavour};
use crate::config::{Config, TokenSource};
use crate::credential::{
    GitlabApi, LoginOutcome, Secret, check_writable, lock_rotation, login, parse_date,
    rotate_token, write_secret_file,
};
use crate::gitlab::UpstreamToken;

/// `glgate token rotate --config FILE [--expires-at YYYY-MM-DD]`.
///
/// GitLab revokes the old token as it answers, so the new one is never
/// lost: the folder is checked for writability first, and if the write
/// still fails the new token is printed with what to do.
pub(super) fn token_rotate(config_path: &Path, expires_at: Option<&str>) -> ExitCode {
    let Some(config) = load(config_path) else {
        return Exit::Error.into();
    };
    if let Some(date) = expires_at
        && parse_date(date).is_none()
    {
        eprintln!("--expires-at '{date}' is not a date: use YYYY-MM-DD, e.g. 2026-12-31");
        return Exit::Error.into();
    }
    let TokenSource::File(path) = &config.upstream.token else {
        eprintln!(
            "token rotate needs upstream.token_file: the new token must be written somewhere glgate reads it (GitLab revokes the old one at once)"
        );
        return Exit::Error.into();
    };
    let token = match UpstreamToken::read(&config.upstream.token) {
        Ok(token) => token,
        Err(error) => {
            eprintln!("{error}");
            return Exit::Error.into();
        }
    };
    // One rotation at a time (another `token rotate`, a glgate with
    // auto_rotate): wait for the lock, then make sure the token is still the
    // one this command read. If not, someone else rotated it meanwhile, and
    // rotating the old one again would make GitLab revoke the whole family.
    let _lock = match lock_rotation(path, true) {
        Ok(Some(lock)) => lock,
        Ok(None) => return Exit::Found.into(),
        Err(error) => {
            eprintln!(
                "not rotating: cannot take the rotation lock {}.lock: {error}; fix the folder first",
                path.display()
            );
            return Exit::Found.into();
        }
    };
    match UpstreamToken::read(&config.upstream.token) {
        Ok(on_file) if on_file.same_as(&token) => {}
        Ok(_) => {
            println!(
                "not rotating: the token in {} changed since this command started (another process rotated it); nothing to do.",
                path.display()
            );
            return Exit::Ok.into();
        }
        Err(error) => {
            eprintln!("not rotating: {error}");
            return Exit::Found.into();
        }
    }
    if let Err(error) = check_writable(path, token.expose().len()) {
        eprintln!(
            "not rotating: {error}\nthe new token could not be saved there, and GitLab revokes the old one at once; fix the folder first"
        );
        return Exit::Found.into();
    }
    let Some(runtime) = runtime() else {
        return Exit::Found.into();
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
            return Exit::Found.into();
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
            Exit::Ok.into()
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
            Exit::NotSaved.into()
        }
    }
}

/// `glgate oauth login --config FILE`: the authorization-code flow with PKCE.
pub(super) fn oauth_login(config_path: &Path, wait: Duration) -> ExitCode {
    let Some(config) = load(config_path) else {
        return Exit::Error.into();
    };
    let TokenSource::OAuth(settings) = &config.upstream.token else {
        eprintln!("oauth login needs upstream.oauth in the config");
        return Exit::Error.into();
    };
    let Some(runtime) = runtime() else {
        return Exit::Found.into();
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
            Exit::Ok.into()
        }
        Ok(LoginOutcome::NotSaved(error, token)) => {
            eprintln!("authorized, but {error}. This is the refresh token, shown only here:");
            println!("{}", token.expose());
            eprintln!(
                "Save it, mode 0600, as {} before starting glgate.",
                settings.refresh_token_file.display()
            );
            Exit::NotSaved.into()
        }
        Err(error) => {
            eprintln!("oauth login failed: {error}");
            Exit::Found.into()
        }
    }
}

/// The one-thread runtime, or `None` once its error is printed.
fn runtime() -> Option<tokio::runtime::Runtime> {
    match super::exit::runtime(Flavour::CurrentThread) {
        Ok(runtime) => Some(runtime),
        Err(error) => {
            eprintln!("glgate: {error}");
            None
        }
    }
}

/// The config, or `None` once its problems are printed.
fn load(config_path: &Path) -> Option<Config> {
    match Config::load(config_path) {
        Ok(config) => Some(config),
        Err(problems) => {
            eprintln!("{problems}");
            None
        }
    }
}
