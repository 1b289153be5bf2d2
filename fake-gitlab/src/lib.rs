//! An in-process fake GitLab REST API server.
//!
//! [`FakeGitlab::start`] binds `127.0.0.1:0` and serves a small, fixed GitLab
//! dataset (users, groups, projects, merge requests, labels, hooks) over
//! HTTP/1.1 and cleartext HTTP/2. It answers the way GitLab does (status
//! codes, JSON bodies, offset-pagination headers, `301` for a renamed
//! project) and records every request it receives, so tests can assert on
//! exactly what reached "GitLab".
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let gitlab = fake_gitlab::FakeGitlab::start(fake_gitlab::FakeOptions::default()).await?;
//! println!("fake GitLab at {}", gitlab.base_url());
//! // ... send requests ...
//! assert!(gitlab.requests().is_empty());
//! gitlab.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod api;
mod credentials;

pub use credentials::GranularScope;
mod params;
mod reply;
mod server;
mod store;
mod webhooks;

pub use webhooks::Delivery;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::server::Shared;

/// The default (and only accepted) upstream token of [`FakeOptions::default`].
pub const DEFAULT_TOKEN: &str = "glpat-fake-upstream-token-0123456789";

/// Options for [`FakeGitlab::start`].
#[derive(Clone, Debug)]
pub struct FakeOptions {
    /// The only accepted credential, sent as `PRIVATE-TOKEN: <token>` or
    /// `Authorization: Bearer <token>`.
    pub token: String,
    /// `""` or a relative-URL install prefix such as `"/gitlab"`; the API
    /// then lives at `{prefix}/api/v4`. A missing leading slash is added and
    /// a trailing slash is removed.
    pub path_prefix: String,
}

impl Default for FakeOptions {
    fn default() -> Self {
        FakeOptions {
            token: DEFAULT_TOKEN.to_string(),
            path_prefix: String::new(),
        }
    }
}

/// One request as received by the fake server.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The request method, e.g. `"GET"`.
    pub method: String,
    /// The request target exactly as received (path, then `?` and the query
    /// if any), not percent-decoded. For HTTP/2 this is the `:path`.
    pub target: String,
    /// Header names (lowercase) and values (lossily decoded as text). Values
    /// of one name are kept together, names in the order first seen.
    pub headers: Vec<(String, String)>,
    /// The complete request body.
    pub body: Vec<u8>,
    /// `"HTTP/1.1"`, `"HTTP/1.0"` or `"HTTP/2.0"`.
    pub version: String,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8 text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The path part of [`RecordedRequest::target`] (before any `?`).
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

/// A running fake GitLab server.
///
/// Dropping it aborts the server task and every open connection;
/// [`FakeGitlab::shutdown`] stops it gracefully instead.
pub struct FakeGitlab {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeGitlab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGitlab")
            .field("addr", &self.addr)
            .field("base_url", &self.shared.base_url)
            .finish_non_exhaustive()
    }
}

impl FakeGitlab {
    /// Binds `127.0.0.1:0` and serves the fake API in a background tokio task.
    ///
    /// Must be called from within a tokio runtime.
    pub async fn start(opts: FakeOptions) -> std::io::Result<FakeGitlab> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let prefix = normalize_prefix(&opts.path_prefix);
        let shared = Arc::new(Shared::new(opts.token, addr, prefix));
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(server::serve(listener, Arc::clone(&shared), stop_rx));
        Ok(FakeGitlab {
            addr,
            shared,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT{prefix}` without a trailing slash. This is also
    /// the fake's "external URL", used in `Link`, `Location` and `web_url`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The token accepted from the start (more can be added).
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.clear_requests();
    }

    /// Turns request recording off (or back on); useful for benchmarks, where
    /// the log would otherwise grow without bound. On by default.
    pub fn set_recording(&self, on: bool) {
        self.shared.set_recording(on);
    }

    /// Makes the next request (whatever it is) answer `status` with a GitLab
    /// style `{"message":"<status> <reason>"}` body. An invalid status code
    /// (outside 100..=999) is replaced by 500.
    pub fn set_fail_next(&self, status: u16) {
        self.shared.set_fail_next(status);
    }

    /// Makes the next request for exactly `target` (path and query as
    /// received, e.g. `/api/v4/projects/101`) answer `status`, whatever comes
    /// before it; other requests are answered normally.
    pub fn set_fail_target(&self, target: &str, status: u16) {
        self.shared.set_fail_target(target, status);
    }

    /// Makes the next request for exactly `target` answer 200 with `json`
    /// as written, byte for byte (answers GitLab would not normally send:
    /// a key given twice, say); other requests are answered normally.
    pub fn set_answer_target(&self, target: &str, json: &str) {
        self.shared.set_answer_target(target, json);
    }

    /// Renames project `id` within its namespace to `new_path` (e.g.
    /// `backend-v2`); its old path then answers `301` to the new one, as
    /// GitLab does. Returns false if there is no such project or the path is taken.
    pub fn rename_project(&self, id: u64, new_path: &str) -> bool {
        self.shared.with_store(|store| {
            let Some(namespace) = store
                .project(id)
                .and_then(|p| store.group(p.namespace_id))
                .map(|g| g.full_path.clone())
            else {
                return false;
            };
            store.move_project(id, &namespace, new_path)
        })
    }

    /// Transfers project `id` into the group `namespace` (full path), keeping
    /// its path; its old full path then answers `301` to the new one.
    /// Returns false if the project or group does not exist or the path is taken.
    pub fn transfer_project(&self, id: u64, namespace: &str) -> bool {
        self.shared.with_store(|store| {
            let Some(path) = store.project(id).map(|p| p.path.clone()) else {
                return false;
            };
            store.move_project(id, namespace, &path)
        })
    }

    /// Adds a personal access token (scopes `api`, `read_user`) of its own
    /// family; the initial token stays valid until revoked.
    pub fn add_token(&self, token: &str) {
        self.credentials().add_personal(token);
    }

    /// Revokes `token` (it answers 401 from now on).
    pub fn revoke(&self, token: &str) {
        if let Some(t) = self.credentials().find_mut(token) {
            t.revoked = true;
        }
    }

    /// Every credential (personal or OAuth access token) that works now.
    pub fn valid_tokens(&self) -> Vec<String> {
        self.credentials().valid()
    }

    /// Sets the `expires_at` date (`YYYY-MM-DD`) of a personal access token.
    pub fn set_token_expiry(&self, token: &str, expires_at: Option<&str>) {
        if let Some(t) = self.credentials().find_mut(token) {
            t.expires_at = expires_at.map(str::to_owned);
        }
    }

    /// Sets the scopes of a personal access token.
    pub fn set_token_scopes(&self, token: &str, scopes: &[&str]) {
        if let Some(t) = self.credentials().find_mut(token) {
            t.scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        }
    }

    /// Makes a personal access token a fine-grained one (GitLab 18.10+) with
    /// these boundaries and permissions, or a classic one again (`None`).
    pub fn set_token_granular_scopes(&self, token: &str, scopes: Option<Vec<GranularScope>>) {
        if let Some(t) = self.credentials().find_mut(token) {
            t.granular_scopes = scopes;
        }
    }

    /// Makes the token user an administrator (`is_admin`) or not.
    pub fn set_user_admin(&self, admin: bool) {
        self.credentials().is_admin = admin;
    }

    /// Sets the token user's `bot` flag (a service account; off by default).
    pub fn set_user_bot(&self, bot: bool) {
        self.credentials().bot = bot;
    }

    /// The token user's access level in group `group_id` (0: not a member);
    /// groups not set answer Owner (50).
    pub fn set_group_access(&self, group_id: u64, level: u64) {
        self.credentials().group_access.insert(group_id, level);
    }

    /// How many personal access tokens were rotated through the API.
    pub fn rotations(&self) -> u64 {
        self.credentials().rotations
    }

    /// Registers the OAuth application the fake's provider knows.
    pub fn oauth_client(&self, client_id: &str, client_secret: &str, redirect_uri: &str) {
        self.credentials().oauth_app = Some(credentials::OAuthApp {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
        });
    }

    /// Issues an OAuth access token and refresh token for the registered
    /// application, as if a user had authorized it: `(access, refresh)`.
    pub fn oauth_grant(&self) -> (String, String) {
        let mut credentials = self.credentials();
        let client_id = credentials
            .oauth_app
            .as_ref()
            .map(|app| app.client_id.clone())
            .unwrap_or_default();
        credentials.issue_oauth(&client_id)
    }

    /// Lifetime of OAuth access tokens issued from now on (GitLab: 7200 s).
    pub fn set_oauth_expires_in(&self, seconds: u64) {
        self.credentials().oauth_expires_in = seconds;
    }

    /// Invalidates every refresh token (as if the grant were revoked).
    pub fn revoke_refresh_tokens(&self) {
        self.credentials().refresh_tokens.clear();
    }

    /// The refresh tokens that work now.
    pub fn valid_refresh_tokens(&self) -> Vec<String> {
        self.credentials().refresh_tokens.keys().cloned().collect()
    }

    /// Runs `hook` inside every successful token rotation, after GitLab
    /// revoked the old token and before it answers (to make the caller's
    /// save fail, for instance).
    pub fn on_rotate(&self, hook: impl Fn() + Send + Sync + 'static) {
        self.credentials().on_rotate = Some(std::sync::Arc::new(hook));
    }

    /// Makes the next `times` requests to `POST /oauth/token` answer 500,
    /// each after `delay` (a slow, failing token endpoint).
    pub fn fail_oauth_token(&self, times: u32, delay: std::time::Duration) {
        self.shared.fail_oauth_token(times, delay);
    }

    /// How many `grant_type=refresh_token` requests arrived.
    pub fn oauth_refresh_calls(&self) -> u64 {
        self.credentials().refresh_calls
    }

    fn credentials(&self) -> std::sync::MutexGuard<'_, credentials::Credentials> {
        server::lock(&self.shared.credentials)
    }

    /// Fires an event of project `project_id` as GitLab does: `payload` (a
    /// documented webhook payload, its `project` fields set to this project)
    /// is posted to the project's hooks and to the hooks of every group above
    /// it, with `X-Gitlab-Event: event`, the hook's `X-Gitlab-Token`,
    /// `X-Gitlab-Instance`, and fresh event and idempotency UUIDs. Returns
    /// what each receiver answered.
    pub async fn deliver_event(
        &self,
        project_id: u64,
        event: &str,
        payload: serde_json::Value,
    ) -> Vec<Delivery> {
        webhooks::deliver(&self.shared, project_id, event, payload).await
    }

    /// The hooks of a project or group as stored, with their secret `token`
    /// (which GitLab's API never returns): `(id, url, token)`.
    pub fn stored_hooks(&self) -> Vec<(u64, String, Option<String>)> {
        self.shared.with_store(|store| {
            store
                .hooks
                .iter()
                .map(|hook| {
                    let text = |key: &str| {
                        hook.fields
                            .get(key)
                            .and_then(serde_json::Value::as_str)
                            .map(str::to_owned)
                    };
                    (hook.id, text("url").unwrap_or_default(), text("token"))
                })
                .collect()
        })
    }

    /// Stops accepting connections, lets in-flight requests finish (at most
    /// a few seconds), then returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            // The receiver is gone only if the server task already ended.
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            // A JoinError here means the task panicked or was aborted; either
            // way the server is stopped, which is all we want.
            let _ = task.await;
        }
    }
}

impl Drop for FakeGitlab {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// `""`, `"/"` → `""`; `"gitlab/"` → `"/gitlab"`.
fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_normalized() {
        assert_eq!(normalize_prefix(""), "");
        assert_eq!(normalize_prefix("/"), "");
        assert_eq!(normalize_prefix("gitlab/"), "/gitlab");
        assert_eq!(normalize_prefix("/a/b"), "/a/b");
    }

    #[test]
    fn header_lookup_is_case_insensitive() {
        let r = RecordedRequest {
            method: "GET".into(),
            target: "/x?y".into(),
            headers: vec![("private-token".into(), "t".into())],
            body: Vec::new(),
            version: "HTTP/1.1".into(),
        };
        assert_eq!(r.header("PRIVATE-TOKEN"), Some("t"));
        assert_eq!(r.header("other"), None);
        assert_eq!(r.path(), "/x");
    }
}
