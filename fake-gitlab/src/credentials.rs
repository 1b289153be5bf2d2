//! The credentials the fake accepts: personal access tokens (with GitLab's
//! rotation and family-revocation rules), OAuth access and refresh tokens,
//! and the token user's profile. Tests change them through
//! [`crate::FakeGitlab`]'s controls.

use std::collections::HashMap;

/// What kind of credential a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A personal access token (`glpat-…`).
    Personal,
    /// An OAuth access token.
    OAuth,
}

/// One token and its metadata, as `GET /personal_access_tokens/self` shows it.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub id: u64,
    pub secret: String,
    pub kind: Kind,
    pub name: String,
    pub scopes: Vec<String>,
    pub revoked: bool,
    /// `YYYY-MM-DD`, or none for a token that never expires.
    pub expires_at: Option<String>,
    /// Milliseconds since the epoch after which an OAuth token no longer works.
    pub expires_unix_ms: Option<u64>,
    pub user_id: u64,
    /// Rotations keep the family: rotating a revoked member revokes them all.
    pub family: u64,
    /// For a fine-grained token (GitLab 18.10+), its boundaries and
    /// permissions; `None` for a classic one.
    pub granular_scopes: Option<Vec<GranularScope>>,
}

/// One boundary of a fine-grained personal access token and the
/// permissions granted at it, as `GET /personal_access_tokens/self` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GranularScope {
    /// `user`, `instance`, `all_memberships`, `personal_projects` or
    /// `selected_memberships`.
    pub access: String,
    /// Assignable permission names, e.g. `read_merge_request`.
    pub permissions: Vec<String>,
    /// The project a `selected_memberships` boundary names.
    pub project_id: Option<u64>,
    /// The group a `selected_memberships` boundary names.
    pub group_id: Option<u64>,
}

impl Token {
    fn usable(&self, now: u64) -> bool {
        !self.revoked && self.expires_unix_ms.is_none_or(|deadline| now < deadline)
    }
}

/// A registered OAuth application.
#[derive(Clone, Debug)]
pub(crate) struct OAuthApp {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
}

/// An issued authorization code, waiting to be exchanged.
#[derive(Clone, Debug)]
pub(crate) struct Grant {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
}

/// A test's hook run inside a rotation.
pub(crate) type Hook = std::sync::Arc<dyn Fn() + Send + Sync>;

/// Every credential the fake knows.
pub(crate) struct Credentials {
    pub on_rotate: Option<Hook>,
    pub tokens: Vec<Token>,
    next_id: u64,
    pub is_admin: bool,
    pub bot: bool,
    /// Access level of the token user per group id (default: Owner, 50).
    pub group_access: HashMap<u64, u64>,
    pub oauth_app: Option<OAuthApp>,
    /// Valid refresh tokens and the app they belong to.
    pub refresh_tokens: HashMap<String, String>,
    pub grants: HashMap<String, Grant>,
    /// Lifetime of issued OAuth access tokens, in seconds (GitLab: 7200).
    pub oauth_expires_in: u64,
    pub refresh_calls: u64,
    pub rotations: u64,
    counter: u64,
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Seconds since the epoch.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Credentials {
    /// One personal access token, `initial`, with scopes `api` and `read_user`.
    pub(crate) fn new(initial: &str) -> Credentials {
        let mut credentials = Credentials {
            on_rotate: None,
            tokens: Vec::new(),
            next_id: 42,
            is_admin: false,
            bot: false,
            group_access: HashMap::new(),
            oauth_app: None,
            refresh_tokens: HashMap::new(),
            grants: HashMap::new(),
            oauth_expires_in: 7200,
            refresh_calls: 0,
            rotations: 0,
            counter: 0,
        };
        credentials.add_personal(initial);
        credentials
    }

    /// Adds a personal access token of its own family.
    pub(crate) fn add_personal(&mut self, secret: &str) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.tokens.push(Token {
            id,
            secret: secret.to_owned(),
            kind: Kind::Personal,
            name: "glgate".into(),
            scopes: vec!["api".into(), "read_user".into()],
            revoked: false,
            expires_at: Some("2027-06-30".into()),
            expires_unix_ms: None,
            user_id: 1,
            family: id,
            granular_scopes: None,
        });
        id
    }

    /// The token with this secret, whatever its state.
    pub(crate) fn find(&self, secret: &str) -> Option<&Token> {
        self.tokens.iter().find(|t| t.secret == secret)
    }

    pub(crate) fn find_mut(&mut self, secret: &str) -> Option<&mut Token> {
        self.tokens.iter_mut().find(|t| t.secret == secret)
    }

    /// The usable token with this secret.
    pub(crate) fn authenticate(&self, secret: &str) -> Option<&Token> {
        let now = now_ms();
        self.find(secret).filter(|t| t.usable(now))
    }

    /// Every secret that authenticates right now.
    pub(crate) fn valid(&self) -> Vec<String> {
        let now = now_ms();
        self.tokens
            .iter()
            .filter(|t| t.usable(now))
            .map(|t| t.secret.clone())
            .collect()
    }

    /// A fresh random-looking secret with `prefix`.
    pub(crate) fn mint(&mut self, prefix: &str) -> String {
        self.counter += 1;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{prefix}{:016x}{:08x}", nanos as u64, self.counter)
    }

    /// GitLab's rotation: the old token is revoked at once and a new one of
    /// the same family, name and scopes is returned. Rotating a token that
    /// is already revoked revokes the whole family (reuse detection).
    pub(crate) fn rotate(&mut self, secret: &str, expires_at: Option<String>) -> Option<Token> {
        let old = self.find(secret)?.clone();
        if old.revoked {
            for token in self.tokens.iter_mut().filter(|t| t.family == old.family) {
                token.revoked = true;
            }
            return None;
        }
        if let Some(token) = self.find_mut(secret) {
            token.revoked = true;
        }
        let fresh = self.mint("glpat-");
        let id = self.next_id;
        self.next_id += 1;
        let token = Token {
            id,
            secret: fresh,
            revoked: false,
            // GitLab defaults a rotated token to one week when no date is given.
            expires_at: expires_at.or_else(|| Some(date_in_days(7))),
            ..old
        };
        self.tokens.push(token.clone());
        self.rotations += 1;
        if let Some(hook) = &self.on_rotate {
            hook();
        }
        Some(token)
    }

    /// Issues a new OAuth access token and refresh token for `client_id`.
    pub(crate) fn issue_oauth(&mut self, client_id: &str) -> (String, String) {
        let access = self.mint("oauth-access-");
        let refresh = self.mint("oauth-refresh-");
        let id = self.next_id;
        self.next_id += 1;
        self.tokens.push(Token {
            id,
            secret: access.clone(),
            kind: Kind::OAuth,
            name: "oauth".into(),
            scopes: vec!["api".into(), "read_user".into()],
            revoked: false,
            expires_at: None,
            expires_unix_ms: Some(now_ms() + self.oauth_expires_in * 1000),
            user_id: 1,
            family: id,
            granular_scopes: None,
        });
        self.refresh_tokens
            .insert(refresh.clone(), format!("{client_id}\n{access}"));
        (access, refresh)
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("tokens", &self.tokens.len())
            .finish_non_exhaustive()
    }
}

/// `YYYY-MM-DD`, `days` from today (UTC).
pub(crate) fn date_in_days(days: u64) -> String {
    civil_date(now() / 86_400 + days)
}

/// The proleptic Gregorian date of a day number since 1970-01-01.
pub(crate) fn civil_date(day: u64) -> String {
    // Howard Hinnant's days-to-civil algorithm.
    let z = day as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(20_454), "2026-01-01");
    }

    #[test]
    fn rotating_a_revoked_token_revokes_the_family() {
        let mut c = Credentials::new("a");
        let b = c.rotate("a", None).unwrap();
        assert!(c.authenticate("a").is_none());
        assert!(c.authenticate(&b.secret).is_some());
        assert!(c.rotate("a", None).is_none());
        assert!(c.authenticate(&b.secret).is_none());
    }
}
