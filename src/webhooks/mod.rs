//! The webhook relay: GitLab's deliveries come back through glgate.
//!
//! When a client registers a hook through glgate and its config enables the
//! relay, glgate registers instead a hook pointing at its own receiving
//! endpoint (`/-/webhooks/…`), with a secret of its own, and keeps the
//! client's URL and token sealed into that relay URL ([`seal`]), so any
//! replica can deliver and nothing needs a shared database. Each delivery
//! GitLab posts there is verified, checked against the client's scope,
//! minimized by the client's payload policy ([`payload`]), written to a
//! durable queue before GitLab gets its answer ([`spool`]), and delivered to
//! the client's own URL with its own token, with retries ([`deliver`]).

pub(crate) mod deliver;
pub(crate) mod destinations;
pub(crate) mod payload;
pub(crate) mod prune;
pub(crate) mod receive;
pub(crate) mod relay;
pub(crate) mod seal;
pub(crate) mod spool;

use serde::{Deserialize, Serialize};

/// The hook a relay URL stands for, as sealed into it when the client
/// registered it. Never logged: `token` is the client's secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HookTarget {
    /// The client that registered the hook.
    pub(crate) client: String,
    /// The policy rule that allowed the registration; its `url` pattern must
    /// still match at delivery time.
    pub(crate) rule: String,
    /// The client's receiver, exactly as it registered it.
    pub(crate) url: String,
    /// The client's own secret for `X-Gitlab-Token`, if it gave one.
    pub(crate) token: Option<String>,
}

impl std::fmt::Debug for HookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookTarget")
            .field("client", &self.client)
            .field("rule", &self.rule)
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// One delivery accepted from GitLab, already scoped and minimized, waiting
/// to go to the client's receiver. This is what the spool stores: the
/// client's URL and token stay sealed at rest and are opened at each attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct QueuedDelivery {
    /// glgate's id for this delivery (random, hex), stable across attempts.
    pub(crate) id: String,
    /// The client whose hook it is.
    pub(crate) client: String,
    /// The relay URL's sealed part: opened with the webhook key at each
    /// attempt into a [`HookTarget`].
    pub(crate) sealed: String,
    /// `X-Gitlab-Event` as GitLab sent it (e.g. `Push Hook`).
    pub(crate) event: String,
    /// The project or group the event belongs to (full path), for the audit
    /// and the scope check at each attempt.
    pub(crate) object: String,
    /// `project` or `group`: what `object` names.
    #[serde(default)]
    pub(crate) object_kind: String,
    /// The identifying headers kept from GitLab's delivery, in order
    /// (`X-Gitlab-Event`, `X-Gitlab-Event-UUID`, `X-Gitlab-Webhook-UUID`,
    /// `Idempotency-Key`, `User-Agent`); never `X-Gitlab-Token` or
    /// `X-Gitlab-Instance`.
    pub(crate) headers: Vec<(String, String)>,
    /// The minimized JSON body to deliver.
    pub(crate) body: Vec<u8>,
    /// When glgate accepted it, in milliseconds since the Unix epoch.
    pub(crate) received_unix_ms: u64,
}

impl QueuedDelivery {
    /// GitLab's `Idempotency-Key`, the same on every retry of one event.
    pub(crate) fn idempotency_key(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("idempotency-key"))
            .map(|(_, value)| value.as_str())
    }
}
