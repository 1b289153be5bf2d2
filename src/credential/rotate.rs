//! Rotating a personal access token: `POST /personal_access_tokens/self/rotate`.
//!
//! GitLab revokes the old token the moment it answers, and revokes the whole
//! token family if a token that was already rotated is rotated again. So a
//! rotation first checks that the new token can be saved, and exactly one
//! process may rotate a given token.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::expiry::{DAY, format_date, now_unix, parse_date};
use super::{
    Credential, GitlabApi, Secret, Shared, check_writable, ready_personal, write_emergency_copy,
    write_secret_file,
};
use crate::gitlab::UpstreamToken;

/// A rotated token.
#[derive(Debug)]
pub(crate) struct Rotated {
    /// The new token (GitLab already revoked the old one).
    pub token: UpstreamToken,
    /// Its expiry date, `YYYY-MM-DD`, as GitLab reports it.
    pub expires_at: Option<String>,
}

/// Why a rotation failed. Never holds a token.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RotateError {
    /// GitLab could not be asked.
    #[error("{0}")]
    Api(#[from] super::ApiError),
    /// GitLab refused.
    #[error("GitLab refused the rotation ({status}): {message}")]
    Refused {
        /// GitLab's status.
        status: http::StatusCode,
        /// What GitLab or glgate says about it.
        message: String,
    },
}

/// Asks GitLab for a new token in place of the one `secret` carries.
pub(crate) async fn rotate_token(
    api: &GitlabApi,
    secret: &Secret,
    expires_at: Option<&str>,
) -> Result<Rotated, RotateError> {
    let form: Vec<(&str, &str)> = expires_at.map(|d| ("expires_at", d)).into_iter().collect();
    let answer = api
        .post_form(
            "/api/v4/personal_access_tokens/self/rotate",
            Some(secret),
            &form,
        )
        .await?;
    if !answer.status.is_success() {
        let hint = match answer.status.as_u16() {
            401 => "the token is not valid (already rotated or revoked?)",
            403 => "the token needs the api or self_rotate scope",
            400 => "only personal access tokens can rotate themselves",
            _ => "unexpected answer",
        };
        let message = answer.json["message"]
            .as_str()
            .or(answer.json["error"].as_str())
            .map_or_else(|| hint.to_owned(), |m| format!("{m}; {hint}"));
        return Err(RotateError::Refused {
            status: answer.status,
            message,
        });
    }
    let token = answer.json["token"]
        .as_str()
        .and_then(|text| UpstreamToken::from_text(text, "GitLab's rotation answer").ok())
        .ok_or(RotateError::Refused {
            status: answer.status,
            message: "the answer holds no new token".into(),
        })?;
    Ok(Rotated {
        token,
        expires_at: answer.json["expires_at"].as_str().map(str::to_owned),
    })
}

/// An exclusive advisory lock (`flock`) on `<token_file>.lock`, held while
/// a rotation runs: two processes rotating the same token would make GitLab
/// revoke the whole token family. Released when dropped.
#[derive(Debug)]
pub(crate) struct RotationLock {
    _file: std::fs::File,
}

/// Takes the rotation lock of `token_file`: waits for it when `wait`,
/// otherwise returns `Ok(None)` when another process holds it. The lock file
/// (mode 0600, empty) is left in place: removing it would let two processes
/// lock two different files.
pub(crate) fn lock_rotation(
    token_file: &Path,
    wait: bool,
) -> std::io::Result<Option<RotationLock>> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut name = token_file.as_os_str().to_os_string();
    name.push(".lock");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(PathBuf::from(name))?;
    let operation = if wait {
        rustix::fs::FlockOperation::LockExclusive
    } else {
        rustix::fs::FlockOperation::NonBlockingLockExclusive
    };
    match rustix::fs::flock(&file, operation) {
        Ok(()) => Ok(Some(RotationLock { _file: file })),
        Err(rustix::io::Errno::WOULDBLOCK) if !wait => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// The lifetime asked for a token rotated by `auto_rotate`.
const AUTO_ROTATE_LIFETIME_DAYS: i64 = 90;

/// Rotates the running token when it expires within `before`, writes it to
/// `path` and uses it at once.
pub(super) async fn auto_rotate(credential: &Credential, path: &Path, before: Duration) {
    let Some(expires_at) = credential.expires_at() else {
        return;
    };
    let before = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
    if expires_at - now_unix() > before {
        return;
    }
    let shared = &credential.shared;
    if shared.has_unsaved() {
        return;
    }
    let Some(secret) = shared.current_secret() else {
        return;
    };
    // One rotation at a time across processes (replicas, `token rotate`).
    let _lock = match lock_rotation(path, false) {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            tracing::info!(
                file = %path.display(),
                "auto_rotate: another process is rotating the GitLab token; not rotating"
            );
            return;
        }
        Err(error) => {
            tracing::error!(
                file = %path.display(),
                "auto_rotate: not rotating the GitLab token: cannot take the rotation lock: {error}"
            );
            return;
        }
    };
    // Under the lock: if the file holds another token than the one in use,
    // someone else rotated it; adopt theirs (rotating ours again would make
    // GitLab revoke the whole family).
    match UpstreamToken::read(&crate::config::TokenSource::File(path.to_path_buf())) {
        Ok(on_file) if Secret::personal(&on_file).header_value() != secret.header_value() => {
            tracing::info!(
                file = %path.display(),
                "auto_rotate: the token file holds a newer token (rotated by another process): using it instead of rotating"
            );
            credential.install(ready_personal(on_file));
            return;
        }
        Ok(_) => {}
        Err(error) => {
            tracing::error!("auto_rotate: not rotating the GitLab token: {error}");
            return;
        }
    }
    // The old token dies with GitLab's answer: never ask for a new one that
    // could not be saved.
    if let Err(error) = check_writable(path, secret.header_value().len()) {
        tracing::error!("auto_rotate: not rotating the GitLab token: {error}");
        return;
    }
    let lifetime = std::cmp::max(AUTO_ROTATE_LIFETIME_DAYS * DAY, 2 * before);
    let new_expiry = format_date(now_unix() + lifetime);
    match rotate_token(&shared.api, &secret, Some(&new_expiry)).await {
        Ok(rotated) => {
            // GitLab revoked the old token with this answer: the new one goes
            // into use before the file is written, or requests in between
            // would be sent with a dead token.
            credential.install(ready_personal(rotated.token.clone()));
            let saved = write_secret_file(path, rotated.token.expose());
            shared.set_expires_at(rotated.expires_at.as_deref().and_then(parse_date));
            match saved {
                Ok(()) => tracing::info!(
                    file = %path.display(),
                    expires_at = rotated.expires_at.as_deref().unwrap_or("never"),
                    "auto_rotate: the GitLab token was rotated and saved"
                ),
                Err(error) => {
                    // GitLab already revoked the token the file holds: from
                    // now on the file must never replace the one in memory
                    // until the new token is saved.
                    let (copy, copy_path) = match write_emergency_copy(path, rotated.token.expose())
                    {
                        Ok(copy) => (
                            format!("an emergency copy (mode 0600) is in {}; ", copy.display()),
                            Some(copy),
                        ),
                        Err(copy_error) => (
                            format!("an emergency copy failed too ({copy_error}); "),
                            None,
                        ),
                    };
                    tracing::error!(
                        file = %path.display(),
                        "auto_rotate: the GitLab token was rotated (GitLab revoked the old one) but could not be saved ({error}); the new token is in use in memory only; {copy}glgate retries the save with backoff and ignores the token file meanwhile: fix the folder (writable, space left) and do NOT restart glgate or run `glgate token rotate` before it logs that the token is saved"
                    );
                    *shared
                        .unsaved
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Unsaved {
                        path: path.to_path_buf(),
                        token: rotated.token.clone(),
                        copy: copy_path,
                        delay: SAVE_RETRY_START,
                        retry_at: Instant::now() + SAVE_RETRY_START,
                    });
                }
            }
        }
        Err(error) => tracing::error!("auto_rotate: rotation failed: {error}"),
    }
}

/// First and longest wait between attempts to save a rotated token.
const SAVE_RETRY_START: Duration = Duration::from_secs(1);
const SAVE_RETRY_MAX: Duration = Duration::from_secs(60);

/// A rotated token in use but not saved to the token file yet.
#[derive(Clone)]
pub(super) struct Unsaved {
    path: PathBuf,
    token: UpstreamToken,
    /// The emergency copy, removed once the token is saved.
    copy: Option<PathBuf>,
    delay: Duration,
    retry_at: Instant,
}

impl Unsaved {
    /// The token file it is to be saved to.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The token in use.
    pub(super) fn token(&self) -> &UpstreamToken {
        &self.token
    }
}

/// Retries saving an unsaved rotated token when due. Returns how long until
/// the next attempt, `None` when nothing is left to save.
pub(super) fn retry_unsaved(shared: &Shared) -> Option<Duration> {
    let mut guard = shared
        .unsaved
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let unsaved = guard.as_mut()?;
    let now = Instant::now();
    if now < unsaved.retry_at {
        return Some(unsaved.retry_at - now);
    }
    match write_secret_file(&unsaved.path, unsaved.token.expose()) {
        Ok(()) => {
            // The copy is one more place holding the secret: gone once saved
            // (if it still holds this token).
            if let Some(copy) = &unsaved.copy
                && std::fs::read_to_string(copy)
                    .is_ok_and(|text| text.trim() == unsaved.token.expose())
            {
                let _ = std::fs::remove_file(copy);
            }
            tracing::info!(
                file = %unsaved.path.display(),
                "auto_rotate: the rotated GitLab token is now saved to the token file (emergency copy removed); the token file is watched again"
            );
            *guard = None;
            None
        }
        Err(error) => {
            unsaved.delay = (unsaved.delay * 2).min(SAVE_RETRY_MAX);
            unsaved.retry_at = now + unsaved.delay;
            tracing::error!(
                "auto_rotate: the rotated GitLab token is still not saved ({error}); retrying in {}s; the token file holds a revoked token and is ignored until then: fix the folder, do not restart glgate",
                unsaved.delay.as_secs()
            );
            Some(unsaved.delay)
        }
    }
}
