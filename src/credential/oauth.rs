//! OAuth: refreshing the access token before it expires (one refresh at a
//! time, the new refresh token saved before the new access token is used),
//! and `glgate oauth login`, the authorization-code flow with PKCE (S256)
//! and a loopback redirect that obtains the first refresh token.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{Credential, GitlabApi, Secret, Shared, State, now_unix, write_secret_file};
use crate::config::{OAuthSettings, TokenSource, UpstreamConfig};
use crate::gitlab::form_encode;
use crate::gitlab::{TokenError, UpstreamToken};

/// Shortest and longest wait between failed refreshes.
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Why an OAuth exchange failed. Never holds a token or the client secret.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The credential is not an OAuth one.
    #[error("upstream.oauth is not configured")]
    NotOAuth,
    /// GitLab could not be asked.
    #[error("{0}")]
    Api(#[from] super::ApiError),
    /// GitLab refused the grant (e.g. `invalid_grant`: the refresh token was
    /// revoked or already used).
    #[error("GitLab refused the OAuth grant ({status}): {error}")]
    Refused {
        /// GitLab's status.
        status: http::StatusCode,
        /// GitLab's `error` code and description.
        error: String,
    },
    /// The login flow failed.
    #[error("{0}")]
    Login(String),
}

/// Tokens from `POST /oauth/token`.
#[derive(Debug)]
pub(crate) struct TokenGrant {
    /// The access token (sent as `Authorization: Bearer`).
    pub access_token: UpstreamToken,
    /// The refresh token (saved to `refresh_token_file`).
    pub refresh_token: UpstreamToken,
    /// Seconds the access token lives (GitLab: 7200).
    pub expires_in: u64,
}

/// The refreshing side of an OAuth credential.
pub(super) struct Refresher {
    settings: OAuthSettings,
    client_secret: UpstreamToken,
    /// Held for the whole refresh: one refresh at a time.
    refresh_token: tokio::sync::Mutex<UpstreamToken>,
    access_expires_at: AtomicI64,
}

impl Refresher {
    pub(super) fn new(settings: OAuthSettings) -> Result<Refresher, TokenError> {
        let client_secret = UpstreamToken::read_file(
            &settings.client_secret_file,
            "upstream.oauth.client_secret_file",
        )?;
        let refresh_token = UpstreamToken::read(&TokenSource::OAuth(settings.clone()))?;
        Ok(Refresher {
            settings,
            client_secret,
            refresh_token: tokio::sync::Mutex::new(refresh_token),
            access_expires_at: AtomicI64::new(i64::MIN),
        })
    }

    /// Waits (at most `limit`) for a refresh in progress to end.
    pub(super) async fn wait_for_refresh(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.refresh_token.lock()).await;
    }

    pub(super) fn access_expires_at(&self) -> Option<i64> {
        let value = self.access_expires_at.load(Ordering::Relaxed);
        (value != i64::MIN).then_some(value)
    }

    /// Refreshes unless another refresh completed since the caller looked
    /// (generation `seen`): concurrent callers collapse into one request.
    pub(super) async fn refresh(&self, shared: &Shared, seen: u64) -> Result<(), OAuthError> {
        let mut refresh_token = self.refresh_token.lock().await;
        if shared.generation.load(Ordering::Acquire) != seen {
            return Ok(());
        }
        // The current access token stays in use during the exchange: it is
        // still valid, and if the exchange fails it is all there is. GitLab
        // invalidates it as it answers (gitlab-org/gitlab#372358); a request
        // that it rejects meanwhile is sent again with the new token
        // (`Credential::recheck_after_rejection` waits for this lock).
        // GitLab counts the lifetime from when it issued the token: count
        // from before the request, never later.
        let asked = Instant::now();
        let grant = exchange(
            &shared.api,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.expose()),
                ("client_id", &self.settings.client_id),
                ("client_secret", self.client_secret.expose()),
                ("redirect_uri", &self.settings.redirect_uri),
            ],
        )
        .await?;
        // GitLab has already invalidated the old refresh token: save the new
        // one before anything uses the new access token, so a crash never
        // leaves glgate with no way back in.
        if let Err(error) = write_secret_file(
            &self.settings.refresh_token_file,
            grant.refresh_token.expose(),
        ) {
            tracing::error!(
                "{error}: the new OAuth refresh token is kept in memory only; fix the folder or glgate will need `glgate oauth login` after a restart"
            );
        }
        *refresh_token = grant.refresh_token;
        let lifetime = Duration::from_secs(grant.expires_in.max(1));
        let now = asked;
        self.access_expires_at.store(
            now_unix().saturating_add(i64::try_from(grant.expires_in).unwrap_or(i64::MAX)),
            Ordering::Relaxed,
        );
        shared.install(State::Ready {
            secret: std::sync::Arc::new(Secret::bearer(&grant.access_token)),
            token: None,
            valid_until: Some(now + lifetime),
            // Renew after four fifths of the lifetime (GitLab's two hours:
            // 24 minutes ahead), leaving room for retries.
            renew_at: Some(now + lifetime.mul_f64(0.8)),
        });
        shared.set_expires_at(self.access_expires_at());
        tracing::info!(
            expires_in = grant.expires_in,
            "OAuth access token refreshed; the new refresh token is saved"
        );
        Ok(())
    }
}

/// Waits between failed refreshes: 1 s, 2 s, 4 s… up to a minute.
#[derive(Debug, Default)]
pub(super) struct Backoff {
    delay: Option<Duration>,
    retry_at: Option<Instant>,
}

impl Backoff {
    fn fail(&mut self) -> Duration {
        let delay = self
            .delay
            .map_or(BACKOFF_START, |d| (d * 2).min(BACKOFF_MAX));
        self.delay = Some(delay);
        self.retry_at = Some(Instant::now() + delay);
        delay
    }

    fn reset(&mut self) {
        *self = Backoff::default();
    }
}

/// One step of the maintenance task for an OAuth credential: refreshes when
/// due. Returns how long until the next step is needed.
pub(super) async fn maintain(credential: &Credential, backoff: &mut Backoff) -> Duration {
    let now = Instant::now();
    let due = match &**credential.shared.state.load() {
        State::Ready { renew_at, .. } => renew_at.unwrap_or(now + super::MAX_SLEEP),
        State::Pending | State::Unavailable => now,
    };
    let due = backoff.retry_at.map_or(due, |retry| due.max(retry));
    if now < due {
        return due - now;
    }
    match credential.refresh().await {
        Ok(()) => {
            backoff.reset();
            match &**credential.shared.state.load() {
                State::Ready {
                    renew_at: Some(at), ..
                } => at.saturating_duration_since(Instant::now()),
                _ => BACKOFF_START,
            }
        }
        Err(error) => {
            let delay = backoff.fail();
            let usable = credential.health() == super::Health::Usable;
            if !usable {
                credential.install(State::Unavailable);
            }
            tracing::error!(
                "OAuth refresh failed: {error}; retrying in {}s{}",
                delay.as_secs(),
                if usable {
                    ""
                } else {
                    "; requests to GitLab are refused with 503 until it succeeds (if the refresh token was revoked, run `glgate oauth login`)"
                }
            );
            delay
        }
    }
}

/// `POST {base}/oauth/token` with `form`.
async fn exchange(api: &GitlabApi, form: &[(&str, &str)]) -> Result<TokenGrant, OAuthError> {
    let answer = api.post_form("/oauth/token", None, form).await?;
    if !answer.status.is_success() {
        let code = answer.json["error"].as_str().unwrap_or("unknown error");
        let description = answer.json["error_description"].as_str().unwrap_or("");
        return Err(OAuthError::Refused {
            status: answer.status,
            error: format!("{code} {description}").trim().to_owned(),
        });
    }
    let read = |key: &str| {
        answer.json[key]
            .as_str()
            .and_then(|text| UpstreamToken::from_text(text, "GitLab's OAuth answer").ok())
    };
    let (Some(access_token), Some(refresh_token)) = (read("access_token"), read("refresh_token"))
    else {
        return Err(OAuthError::Refused {
            status: answer.status,
            error: "the answer holds no access_token and refresh_token".into(),
        });
    };
    Ok(TokenGrant {
        access_token,
        refresh_token,
        expires_in: answer.json["expires_in"].as_u64().unwrap_or(7200),
    })
}

/// URL-safe base64 of 32 random bytes.
fn random_text() -> Result<String, OAuthError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| OAuthError::Login(format!("no randomness: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The PKCE S256 challenge of `verifier`.
pub(crate) fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The result of a login: where the refresh token went.
#[derive(Debug)]
pub enum LoginOutcome {
    /// Saved to `refresh_token_file`.
    Saved,
    /// Could not be saved: it must be saved by hand (the caller prints it).
    NotSaved(super::WriteError, UpstreamToken),
}

/// The authorization-code flow with PKCE: listens on the loopback redirect
/// URI, hands the URL to open to `announce`, waits for the callback (checking
/// `state`), exchanges the code and saves the refresh token.
pub async fn login(
    config: &UpstreamConfig,
    wait: Duration,
    announce: impl FnOnce(&str),
) -> Result<LoginOutcome, OAuthError> {
    let TokenSource::OAuth(settings) = &config.token else {
        return Err(OAuthError::NotOAuth);
    };
    let client_secret = UpstreamToken::read_file(
        &settings.client_secret_file,
        "upstream.oauth.client_secret_file",
    )
    .map_err(|e| OAuthError::Login(e.to_string()))?;
    let api = GitlabApi::new(config).map_err(|e| OAuthError::Login(e.to_string()))?;
    let address = settings
        .redirect_uri
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .ok_or_else(|| OAuthError::Login("redirect_uri is not http://127.0.0.1:PORT/…".into()))?;
    let path = settings
        .redirect_uri
        .strip_prefix("http://")
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("/");
    let listener = TcpListener::bind(address).await.map_err(|e| {
        OAuthError::Login(format!("cannot listen on {address} for the redirect: {e}"))
    })?;
    let verifier = random_text()?;
    let state = random_text()?;
    let url = format!(
        "{}/oauth/authorize?{}",
        api.base(),
        form_encode(&[
            ("client_id", &settings.client_id),
            ("redirect_uri", &settings.redirect_uri),
            ("response_type", "code"),
            ("scope", "api read_user"),
            ("state", &state),
            ("code_challenge", &pkce_challenge(&verifier)),
            ("code_challenge_method", "S256"),
        ])
    );
    announce(&url);
    let code = tokio::time::timeout(wait, callback(&listener, path, &state))
        .await
        .map_err(|_| OAuthError::Login("no redirect arrived in time".into()))??;
    let grant = exchange(
        &api,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &settings.redirect_uri),
            ("client_id", &settings.client_id),
            ("client_secret", client_secret.expose()),
            ("code_verifier", &verifier),
        ],
    )
    .await?;
    Ok(
        match write_secret_file(&settings.refresh_token_file, grant.refresh_token.expose()) {
            Ok(()) => LoginOutcome::Saved,
            Err(error) => LoginOutcome::NotSaved(error, grant.refresh_token),
        },
    )
}

/// How long a connection to the redirect listener may take to send its
/// request (a browser's idle preconnect must not hold up the callback).
const CALLBACK_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves the redirect: answers each request, returns the code once a
/// request carries the expected `state`. Each connection is served on its
/// own task, with a read timeout, so an idle one blocks nothing.
async fn callback(listener: &TcpListener, path: &str, state: &str) -> Result<String, OAuthError> {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted
                    .map_err(|e| OAuthError::Login(format!("redirect listener: {e}")))?;
                let (path, state) = (path.to_owned(), state.to_owned());
                connections.spawn(async move {
                    tokio::time::timeout(
                        CALLBACK_READ_TIMEOUT,
                        serve_callback(stream, &path, &state),
                    )
                    .await
                    .ok()
                    .flatten()
                });
            }
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                if let Ok(Some(outcome)) = done {
                    return outcome;
                }
            }
        }
    }
}

/// Answers one connection to the redirect listener: `Some` when it was
/// glgate's redirect (right path and `state`), with the code or GitLab's
/// refusal; `None` for anything else, which is refused and ignored.
async fn serve_callback(
    mut stream: tokio::net::TcpStream,
    path: &str,
    state: &str,
) -> Option<Result<String, OAuthError>> {
    let mut buffer = vec![0u8; 8192];
    let mut read = 0;
    while read < buffer.len() && !buffer[..read].windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer[read..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    let head = String::from_utf8_lossy(&buffer[..read]).into_owned();
    let target = head
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("GET "))
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or("");
    let (request_path, query) = target.split_once('?').unwrap_or((target, ""));
    let params: Vec<(String, String)> = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect();
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    if request_path != path {
        let _ = respond(&mut stream, 404, "not found").await;
        return None;
    }
    if get("state").as_deref() != Some(state) {
        // Not our redirect (possibly a forged one), whatever it carries
        // (`code` or `error`): refuse it and keep waiting.
        let _ = respond(
            &mut stream,
            400,
            "state mismatch: this is not glgate's login",
        )
        .await;
        return None;
    }
    if let Some(error) = get("error") {
        let _ = respond(&mut stream, 400, "authorization refused").await;
        return Some(Err(OAuthError::Login(format!(
            "GitLab refused the authorization: {error}"
        ))));
    }
    let Some(code) = get("code") else {
        let _ = respond(&mut stream, 400, "no code in the redirect").await;
        return None;
    };
    let _ = respond(
        &mut stream,
        200,
        "glgate is authorized. You can close this window.",
    )
    .await;
    Some(Ok(code))
}

async fn respond(
    stream: &mut tokio::net::TcpStream,
    status: u16,
    text: &str,
) -> std::io::Result<()> {
    let reason = if status == 200 { "OK" } else { "Error" };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match text
                    .get(i + 1..i + 3)
                    .map(|hex| u8::from_str_radix(hex, 16))
                {
                    Some(Ok(byte)) => {
                        out.push(byte);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc_7636_example() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn decodes() {
        assert_eq!(percent_decode("a%2Fb+c"), "a/b c");
        assert_eq!(percent_decode("%zz%"), "%zz%");
    }
}
