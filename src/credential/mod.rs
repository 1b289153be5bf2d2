//! The GitLab credential as a live value: every request loads it once, and a
//! background task keeps it current — re-reading `token_file` when it
//! changes, refreshing OAuth access tokens before they expire, watching the
//! token's expiry date and, when configured, rotating it.
//!
//! A request keeps the value it loaded, so a swap never disturbs one in
//! flight. The secret never appears in `Debug`, errors, logs or metrics.

mod atomic_write;
mod expiry;
mod file_watch;
mod oauth;
mod rotate;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::HeaderValue;
use tokio::sync::Notify;

pub(crate) use crate::gitlab::{ApiError, GitlabApi, Secret};
pub(crate) use atomic_write::{
    WriteError, check_writable, write_emergency_copy, write_secret_file,
};
pub use expiry::{format_date, now_unix, parse_date};
pub use oauth::{LoginOutcome, OAuthError, login};
pub(crate) use rotate::{lock_rotation, rotate_token};

use crate::config::{TokenSource, UpstreamConfig};
use crate::gitlab::{HttpClient, SetupError, TokenError, UpstreamToken};

/// How long a request waits for the first OAuth access token at start.
const PENDING_WAIT: Duration = Duration::from_secs(10);
/// How often the token's expiry date is read from GitLab.
const EXPIRY_CHECK_INTERVAL: Duration = Duration::from_secs(3600);
/// How soon a failed expiry check is retried.
const EXPIRY_RETRY: Duration = Duration::from_secs(60);
/// How long a request GitLab rejected waits for the token file to change
/// (a rotation whose new token is not saved yet).
pub const ROTATION_GRACE: Duration = Duration::from_secs(2);
/// How long a request GitLab rejected waits for an OAuth refresh in progress.
const OAUTH_REFRESH_WAIT: Duration = Duration::from_secs(5);
/// Longest sleep of the maintenance task (so it notices it is no longer needed).
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// glgate holds no valid GitLab credential right now (an OAuth refresh
/// failed and the access token expired): nothing can be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "glgate has no valid GitLab credential right now (it is being renewed); retry later, and tell the operator if this lasts"
)]
pub(crate) struct SecretUnavailable;

/// What the credential is right now.
enum State {
    /// Usable until `valid_until` (OAuth), to be renewed at `renew_at`.
    Ready {
        secret: Arc<Secret>,
        /// The personal access token itself (for rotation), when it is one.
        token: Option<UpstreamToken>,
        valid_until: Option<Instant>,
        renew_at: Option<Instant>,
    },
    /// The first OAuth access token is being obtained.
    Pending,
    /// No valid credential: requests get 503 until a renewal succeeds.
    Unavailable,
}

/// Whether the credential can be used, for `/ready`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Health {
    /// A valid credential is loaded.
    Usable,
    /// The first OAuth access token is not there yet.
    Pending,
    /// No valid credential (refresh failed and the access token expired).
    Unavailable,
}

/// What decides whether a reload may keep the running credential.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Key {
    source: TokenSource,
    reload: Duration,
    auto_rotate: Option<Duration>,
    url: String,
    ca_file: Option<PathBuf>,
    client_identity: Option<(PathBuf, PathBuf)>,
}

impl Key {
    fn of(config: &UpstreamConfig) -> Key {
        Key {
            source: config.token.clone(),
            reload: config.token_reload_interval,
            auto_rotate: config.auto_rotate,
            url: config.url.to_string(),
            ca_file: config.ca_file.clone(),
            client_identity: config.client_identity.clone(),
        }
    }
}

/// Why the credential could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The token (or OAuth file) could not be read.
    #[error("{0}")]
    Token(#[from] TokenError),
    /// The HTTP client for GitLab could not be set up.
    #[error("{0}")]
    Setup(#[from] SetupError),
}

struct Shared {
    key: Key,
    state: ArcSwap<State>,
    /// Woken whenever `state` changes.
    changed: Notify,
    /// Asks the maintenance task to act now (an OAuth token was found expired).
    wake: Arc<Notify>,
    /// Bumped on every new secret.
    generation: AtomicU64,
    /// The token's expiry, seconds since the epoch; `i64::MIN` when unknown.
    expires_at: AtomicI64,
    api: GitlabApi,
    oauth: Option<oauth::Refresher>,
    /// A rotated token that is in use but not saved to `token_file` yet:
    /// while set, the file holds a revoked token and must never replace it.
    unsaved: Mutex<Option<rotate::Unsaved>>,
    /// One re-read of the token file after a 401 at a time.
    recheck: tokio::sync::Mutex<()>,
    /// The secret last found dead (GitLab rejected it, and the token file
    /// offered no other within the grace), with the file's signature then.
    dead: Mutex<Option<DeadSecret>>,
}

/// A secret GitLab rejected while the token file held nothing newer.
struct DeadSecret {
    value: HeaderValue,
    file: Option<file_watch::Signature>,
}

/// The live GitLab credential, shared by the upstream client and the task
/// that maintains it. Cloning shares it.
#[derive(Clone)]
pub struct Credential {
    shared: Arc<Shared>,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("health", &self.health())
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// Loads the credential `config` names and starts its background task
    /// (file reload, expiry watch, refresh or rotation). On a config reload
    /// that cannot keep `previous`: if `previous` holds a rotated token not saved yet to the
    /// token file `config` still reads, the new credential takes it over (the
    /// file holds the revoked token) and goes on trying to save it. Its own
    /// GitLab calls go over `client`, the pool the proxy uses too.
    pub(crate) fn start_after(
        config: &UpstreamConfig,
        previous: Option<&Credential>,
        client: HttpClient,
    ) -> Result<Credential, CredentialError> {
        let api = GitlabApi::with_client(config, client);
        let inherited = match (&config.token, previous) {
            (TokenSource::File(path), Some(previous)) => {
                // Copied, not taken: should this reload fail, the running
                // credential must still know (both saving it is harmless).
                let unsaved = previous
                    .shared
                    .unsaved
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                unsaved
                    .as_ref()
                    .filter(|u| u.path() == path.as_path())
                    .cloned()
            }
            _ => None,
        };
        let (state, oauth) = match &config.token {
            TokenSource::Env(_) | TokenSource::File(_) => match &inherited {
                Some(unsaved) => (ready_personal(unsaved.token().clone()), None),
                None => {
                    if let TokenSource::File(path) = &config.token {
                        warn_of_emergency_copy(path);
                    }
                    let token = UpstreamToken::read(&config.token)?;
                    (ready_personal(token), None)
                }
            },
            TokenSource::OAuth(settings) => (
                State::Pending,
                Some(oauth::Refresher::new(settings.clone())?),
            ),
        };
        let shared = Arc::new(Shared::new(config, api, state, oauth, inherited));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let plan = Plan {
                file: match &config.token {
                    TokenSource::File(path) => Some(file_watch::FileWatch::new(path.clone())),
                    _ => None,
                },
                reload: config.token_reload_interval,
                auto_rotate: config.auto_rotate,
            };
            runtime.spawn(maintain(Arc::downgrade(&shared), shared.wake.clone(), plan));
        }
        Ok(Credential { shared })
    }

    /// The credential as configured, read once, with no task to keep it
    /// current and no way to renew it: for a one-shot command that must
    /// change nothing (`scope show`). A token (file or variable) is read now.
    /// An OAuth credential is left unavailable: glgate keeps no access token
    /// on disk, and getting one means a refresh, which replaces the refresh
    /// token a running glgate holds (its next refresh would then fail).
    pub(crate) fn read_once(
        config: &UpstreamConfig,
        client: HttpClient,
    ) -> Result<Credential, CredentialError> {
        let state = match &config.token {
            TokenSource::OAuth(_) => State::Unavailable,
            source => ready_personal(UpstreamToken::read(source)?),
        };
        let api = GitlabApi::with_client(config, client);
        Ok(Credential {
            shared: Arc::new(Shared::new(config, api, state, None, None)),
        })
    }

    /// This credential when `config` reads it the same way, so a config
    /// reload keeps the running credential and its task. A token file is
    /// re-read at once, as an operator who sends SIGHUP expects; an unusable
    /// file keeps the current token (and is logged).
    pub(crate) fn reuse_for(&self, config: &UpstreamConfig) -> Option<Credential> {
        if self.shared.key != Key::of(config) {
            return None;
        }
        if let TokenSource::File(path) = &config.token {
            file_watch::FileWatch::new(path.clone()).check(self);
        }
        Some(self.clone())
    }

    /// The value to send now. Waits briefly for the first OAuth token;
    /// fails when no valid credential is available.
    pub(crate) async fn secret(&self) -> Result<Arc<Secret>, SecretUnavailable> {
        // The common case, on every request: one lock-free load.
        if let State::Ready {
            secret,
            valid_until: None,
            ..
        } = &**self.shared.state.load()
        {
            return Ok(secret.clone());
        }
        let deadline = tokio::time::Instant::now() + PENDING_WAIT;
        loop {
            // Registered before the state is read, so no change is missed.
            let changed = self.shared.changed.notified();
            match &**self.shared.state.load() {
                State::Ready {
                    secret,
                    valid_until,
                    ..
                } => {
                    if valid_until.is_none_or(|until| Instant::now() < until) {
                        return Ok(secret.clone());
                    }
                    self.shared.wake.notify_one();
                    return Err(SecretUnavailable);
                }
                State::Unavailable => return Err(SecretUnavailable),
                State::Pending => {}
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(SecretUnavailable);
            }
        }
    }

    /// Whether a rejected request may find a newer credential at once
    /// (a token file that was rotated under us, or an OAuth refresh that
    /// GitLab answered while the request was in flight).
    pub(crate) fn may_change_on_rejection(&self) -> bool {
        matches!(
            self.shared.key.source,
            TokenSource::File(_) | TokenSource::OAuth(_)
        )
    }

    /// After GitLab rejected `used`: re-reads the token file and returns its
    /// token if it is another one (and puts it in place), so the request can
    /// be sent again instead of failing until the next periodic check.
    /// GitLab revokes a rotated token before the new one can be saved, so an
    /// unchanged file is watched for [`ROTATION_GRACE`] before giving up.
    ///
    /// One watch at a time (concurrent rejections wait for its outcome), and
    /// once a secret is found dead the next rejections of it return at once
    /// until the token file changes: a dead token must not make every
    /// request wait (nor poll the file).
    pub(crate) async fn recheck_after_rejection(&self, used: &Secret) -> Option<Arc<Secret>> {
        if let Some(refresher) = &self.shared.oauth {
            // GitLab invalidates the old access token as it answers a
            // refresh: a refresh in progress may be about to install the
            // new one. No refresh in progress: GitLab's 401 stands.
            if let Some(current) = self.shared.newer_secret(used) {
                return Some(current);
            }
            refresher.wait_for_refresh(OAUTH_REFRESH_WAIT).await;
            return self.shared.newer_secret(used);
        }
        let TokenSource::File(path) = &self.shared.key.source else {
            return None;
        };
        if self.shared.has_unsaved() {
            // The file holds the token a rotation revoked (see `rotate`).
            return None;
        }
        if let Some(current) = self.shared.newer_secret(used) {
            return Some(current);
        }
        if self.shared.known_dead(used, path) {
            return None;
        }
        let _flight = self.shared.recheck.lock().await;
        // The watch this one waited for may have settled it.
        if let Some(current) = self.shared.newer_secret(used) {
            return Some(current);
        }
        if self.shared.known_dead(used, path) || self.shared.has_unsaved() {
            return None;
        }
        let deadline = Instant::now() + ROTATION_GRACE;
        loop {
            if let Some(current) = self.shared.newer_secret(used) {
                // The periodic watch picked it up meanwhile.
                return Some(current);
            }
            let file = file_watch::signature(path).ok();
            if let Ok(token) = UpstreamToken::read(&TokenSource::File(path.clone()))
                && Secret::personal(&token).value() != used.value()
            {
                tracing::info!(
                    file = %path.display(),
                    "GitLab rejected the token and the token file holds a new one: using it"
                );
                self.install(ready_personal(token));
                return self.shared.current_secret();
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    file = %path.display(),
                    "GitLab rejects the token and the token file holds no other: GitLab's 401 is passed on at once until the file changes"
                );
                *self
                    .shared
                    .dead
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(DeadSecret {
                    value: used.header_value(),
                    file,
                });
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether a valid credential is loaded.
    pub(crate) fn health(&self) -> Health {
        match &**self.shared.state.load() {
            State::Ready { valid_until, .. }
                if valid_until.is_none_or(|until| Instant::now() < until) =>
            {
                Health::Usable
            }
            State::Pending => Health::Pending,
            _ => Health::Unavailable,
        }
    }

    /// The token's expiry (seconds since the epoch), once read from GitLab.
    pub(crate) fn expires_at(&self) -> Option<i64> {
        let value = self.shared.expires_at.load(Ordering::Relaxed);
        (value != i64::MIN).then_some(value)
    }

    /// Refreshes the OAuth access token. Concurrent calls collapse into one
    /// request to GitLab: the token in use is noted when `refresh` is
    /// called, and a call that finds it already replaced (by a refresh that
    /// ran while it waited) returns at once.
    pub fn refresh(&self) -> impl Future<Output = Result<(), OAuthError>> + Send + '_ {
        let seen = self.shared.generation.load(Ordering::Acquire);
        async move {
            let Some(refresher) = &self.shared.oauth else {
                return Err(OAuthError::NotOAuth);
            };
            refresher.refresh(&self.shared, seen).await
        }
    }

    /// Puts a new secret in place for the next requests.
    fn install(&self, state: State) {
        self.shared.install(state);
    }
}

impl Shared {
    fn new(
        config: &UpstreamConfig,
        api: GitlabApi,
        state: State,
        oauth: Option<oauth::Refresher>,
        unsaved: Option<rotate::Unsaved>,
    ) -> Shared {
        Shared {
            key: Key::of(config),
            state: ArcSwap::from_pointee(state),
            changed: Notify::new(),
            wake: Arc::new(Notify::new()),
            generation: AtomicU64::new(0),
            expires_at: AtomicI64::new(i64::MIN),
            api,
            oauth,
            unsaved: Mutex::new(unsaved),
            recheck: tokio::sync::Mutex::new(()),
            dead: Mutex::new(None),
        }
    }

    fn install(&self, state: State) {
        self.install_arc(Arc::new(state));
    }

    fn install_arc(&self, state: Arc<State>) {
        self.state.store(state);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
    }

    fn set_expires_at(&self, unix: Option<i64>) {
        self.expires_at
            .store(unix.unwrap_or(i64::MIN), Ordering::Relaxed);
    }

    /// Whether a rotated token is in use but not saved yet (the token file
    /// then holds the revoked one).
    fn has_unsaved(&self) -> bool {
        self.unsaved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some()
    }

    /// The current secret, when it is not `used`.
    fn newer_secret(&self, used: &Secret) -> Option<Arc<Secret>> {
        self.current_secret()
            .filter(|current| current.value() != used.value())
    }

    /// Whether `used` was found dead and the token file has not changed since.
    fn known_dead(&self, used: &Secret, path: &std::path::Path) -> bool {
        let file = file_watch::signature(path).ok();
        let dead = self
            .dead
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        dead.as_ref()
            .is_some_and(|dead| dead.value == used.value() && dead.file == file)
    }

    fn current_token(&self) -> Option<UpstreamToken> {
        match &**self.state.load() {
            State::Ready { token, .. } => token.clone(),
            _ => None,
        }
    }

    fn current_secret(&self) -> Option<Arc<Secret>> {
        match &**self.state.load() {
            State::Ready { secret, .. } => Some(secret.clone()),
            _ => None,
        }
    }
}

/// Logs an error when `<token_file>.unsaved` exists: an auto_rotate whose
/// token could not be saved left it, and glgate stopped before saving it, so
/// the token file may hold the revoked token.
fn warn_of_emergency_copy(path: &std::path::Path) {
    let mut copy = path.as_os_str().to_os_string();
    copy.push(".unsaved");
    let copy = PathBuf::from(copy);
    if copy.exists() {
        tracing::error!(
            file = %path.display(),
            copy = %copy.display(),
            "an emergency copy of a rotated GitLab token exists: glgate stopped before saving it, so the token file may hold the revoked token; if GitLab rejects the token, move the copy over the token file (then delete the copy)"
        );
    }
}

fn ready_personal(token: UpstreamToken) -> State {
    State::Ready {
        secret: Arc::new(Secret::personal(&token)),
        token: Some(token),
        valid_until: None,
        renew_at: None,
    }
}

/// What the maintenance task does for this credential.
struct Plan {
    file: Option<file_watch::FileWatch>,
    reload: Duration,
    auto_rotate: Option<Duration>,
}

/// Keeps the credential current until it is dropped.
async fn maintain(weak: Weak<Shared>, wake: Arc<Notify>, mut plan: Plan) {
    let mut warnings = expiry::Warnings::default();
    let mut next_expiry_check = Instant::now();
    let mut checked_generation = u64::MAX;
    let mut oauth_retry = oauth::Backoff::default();
    loop {
        let Some(shared) = weak.upgrade() else { return };
        let credential = Credential { shared };
        let mut sleep = MAX_SLEEP;
        if let Some(watch) = &mut plan.file {
            if let Some(retry_in) = rotate::retry_unsaved(&credential.shared) {
                sleep = sleep.min(retry_in);
            }
            watch.check(&credential);
            sleep = sleep.min(plan.reload);
        }
        if credential.shared.oauth.is_some() {
            sleep = sleep.min(oauth::maintain(&credential, &mut oauth_retry).await);
        }
        // A new secret may have another expiry: read it again at once.
        let generation = credential.shared.generation.load(Ordering::Acquire);
        if generation != checked_generation || Instant::now() >= next_expiry_check {
            let ok = expiry_check(&credential, &mut warnings).await;
            checked_generation = generation;
            next_expiry_check = Instant::now()
                + if ok {
                    EXPIRY_CHECK_INTERVAL
                } else {
                    EXPIRY_RETRY
                };
            if ok && let (Some(before), Some(path)) = (plan.auto_rotate, plan.file.as_ref()) {
                rotate::auto_rotate(&credential, path.path(), before).await;
            }
        }
        sleep = sleep.min(next_expiry_check.saturating_duration_since(Instant::now()));
        if credential.shared.has_unsaved() {
            // `retry_unsaved` acts only when its backoff is due.
            sleep = sleep.min(Duration::from_secs(1));
        }
        drop(credential);
        let woken = wake.notified();
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            () = woken => {}
        }
    }
}

/// Reads the token's expiry from GitLab, updates the gauge value and logs
/// the 30/7/1-day warnings. `false` when it could not be read.
async fn expiry_check(credential: &Credential, warnings: &mut expiry::Warnings) -> bool {
    let shared = &credential.shared;
    if let Some(oauth) = &shared.oauth {
        shared.set_expires_at(oauth.access_expires_at());
        return true;
    }
    let Some(secret) = shared.current_secret() else {
        return false;
    };
    match shared
        .api
        .get("/api/v4/personal_access_tokens/self", &secret)
        .await
    {
        Ok(answer) if answer.status.is_success() => {
            let expires_at = answer.json["expires_at"].as_str().and_then(parse_date);
            shared.set_expires_at(expires_at);
            if let Some(expires_at) = expires_at {
                warnings.check(expires_at, now_unix());
            }
            true
        }
        Ok(answer) if answer.status == http::StatusCode::UNAUTHORIZED => {
            tracing::error!(
                "GitLab rejects the upstream token (401 on /personal_access_tokens/self): replace it or rotate it"
            );
            false
        }
        // Other token kinds (project, group, OAuth) have no such endpoint.
        Ok(_) => true,
        Err(error) => {
            tracing::warn!("cannot read the GitLab token's expiry: {error}");
            false
        }
    }
}
