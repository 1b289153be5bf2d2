//! Hook registration through the relay: the one declared exception to
//! "forward exactly what was checked".
//!
//! For a client whose config enables the relay, a request that creates or
//! updates a project or group hook is checked by its policy as sent (the
//! client's own `url` against the rule's pattern), then forwarded with two
//! body fields replaced: `url` becomes a relay URL under glgate's receive
//! URL carrying the client's URL and token sealed ([`super::seal`]), and
//! `token` becomes that hook's secret of glgate's. Every answer about hooks
//! is turned back: the client sees its own URL again, exactly as it
//! registered it, and never sees another client's relay hook.

use bytes::Bytes;
use serde_json::Value;

use super::HookTarget;
use super::seal::{self, Sealer};
use crate::canonical::{Method, Param, ParamSource, ParamValue, parse_query};

/// What a request does to hooks, read from its method and template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HookRoute {
    /// `POST /projects/{project}/hooks` or `POST /groups/{group}/hooks`.
    Create,
    /// `PUT …/hooks/{hook_id}`.
    Update,
    /// A read of the `hooks` collection.
    List,
    /// Any other method on one hook: reads and deletes.
    Item,
}

impl HookRoute {
    /// Whether the route names one existing hook (read before it is
    /// touched, so another client's relay hook is never reached).
    pub(crate) fn names_one_hook(self) -> bool {
        matches!(self, HookRoute::Update | HookRoute::Item)
    }
}

impl HookRoute {
    /// The hook route `template` names for `method`: a project's or
    /// group's `hooks` collection or one of its items, whatever the
    /// template's parameter names.
    pub(crate) fn of(method: Method, template: &str) -> Option<HookRoute> {
        // Asked on every request: read at most five segments, no allocation.
        let mut parts = template.trim_matches('/').split('/');
        let mut segments = [""; 4];
        for slot in &mut segments {
            *slot = parts.next().unwrap_or_default();
        }
        if parts.next().is_some() {
            return None;
        }
        let is_param = |s: &str| s.starts_with('{') && s.ends_with('}');
        let owner = |s: &[&str]| matches!(s[0], "projects" | "groups") && is_param(s[1]);
        match segments {
            ref s @ [_, _, "hooks", ""] if owner(s) => Some(if method == Method::Post {
                HookRoute::Create
            } else {
                HookRoute::List
            }),
            ref s @ [_, _, "hooks", item] if owner(s) && is_param(item) => {
                Some(if method == Method::Put {
                    HookRoute::Update
                } else {
                    HookRoute::Item
                })
            }
            _ => None,
        }
    }
}

/// Why a hook registration cannot go through the relay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RelayError {
    /// `url` or `token` sent in the query string: the relay rewrites the body only.
    #[error(
        "with the webhook relay, send the hook's {0} in the request body, not the query string"
    )]
    InQuery(&'static str),
    /// `url` or `token` is not a plain string (null, a list).
    #[error("with the webhook relay, the hook's {0} must be a string")]
    NotText(&'static str),
    /// A hook registered before the relay is updated without both `url` and
    /// `token`: glgate cannot move it behind the relay (GitLab never returns
    /// a hook's token), and left as it is it would deliver around the relay.
    #[error(
        "this hook was registered before the webhook relay: update it with both its url and its token to move it behind the relay"
    )]
    NeedsMigration,
    /// A creation without `url`.
    #[error("with the webhook relay, a hook is created with its url in the request body")]
    MissingUrl,
    /// `custom_webhook_template` would let the hook rewrite its own payload
    /// (its project, its fields) past the relay's scope and payload checks.
    #[error("custom_webhook_template cannot be used on a hook behind the webhook relay")]
    CustomTemplate,
    /// The rule allowing the registration has no `url` parameter to check
    /// destinations against.
    #[error(
        "the rule allowing this hook registration does not constrain url, so the webhook relay could not check where its events go; add a url pattern to the rule"
    )]
    RuleWithoutUrl,
    /// The client's URL is itself a relay URL: deliveries would loop.
    #[error("a hook's url cannot be one of glgate's own relay URLs")]
    Loop,
    /// The body cannot be rewritten (not a JSON object or a form).
    #[error("the hook registration body cannot be rewritten for the relay")]
    Body,
    /// The sealed URL could not be made (no randomness).
    #[error("cannot seal the relay URL")]
    Seal,
}

/// One client's view of relay hooks: the keys, where GitLab delivers, and
/// who is asking.
pub(crate) struct RelayView<'a> {
    /// The webhook keys.
    pub(crate) sealer: &'a Sealer,
    /// The URL relay URLs start with (GitLab reaches glgate there).
    pub(crate) receive_url: &'a str,
    /// The client making the request.
    pub(crate) client: &'a str,
    /// Whether its hook registrations go through the relay (its config has
    /// `webhooks:`); otherwise the view only keeps other clients' relay
    /// hooks out of its sight and reach.
    pub(crate) relays: bool,
}

/// A hook object in GitLab's answer, seen by the client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Not a relay hook (or no `url`): left as GitLab gave it.
    Direct,
    /// One of this client's relay hooks: its URL was turned back.
    Own,
    /// Another client's relay hook, or one no key opens: never shown.
    Foreign,
}

impl RelayView<'_> {
    /// The hook target behind `url` if it is one of this client's relay URLs;
    /// `Err(())` for a relay URL that is not (another client's, or altered).
    pub(crate) fn own_target(&self, url: &str) -> Result<Option<HookTarget>, ()> {
        let Some(sealed) = seal::sealed_part(self.receive_url, url) else {
            return Ok(None);
        };
        match self.sealer.open(sealed) {
            Ok(target) if target.client == self.client => Ok(Some(target)),
            _ => Err(()),
        }
    }

    /// Turns one hook object back for the client: its own relay URL becomes
    /// the URL it registered.
    pub(crate) fn unseal_hook(&self, hook: &mut Value) -> Seen {
        let Some(url) = hook.get("url").and_then(Value::as_str) else {
            return Seen::Direct;
        };
        match self.own_target(url) {
            Ok(None) => Seen::Direct,
            Ok(Some(target)) => {
                hook["url"] = Value::String(target.url);
                Seen::Own
            }
            Err(()) => Seen::Foreign,
        }
    }

    /// Turns a hook answer back: a list loses other clients' relay hooks
    /// (their count is returned), an object that is one is `Err`. Returns
    /// whether anything changed and how many items were removed.
    pub(crate) fn unseal_answer(&self, value: &mut Value) -> Result<(bool, usize), Seen> {
        match value {
            Value::Array(items) => {
                let before = items.len();
                let mut changed = false;
                items.retain_mut(|item| match self.unseal_hook(item) {
                    Seen::Direct => true,
                    Seen::Own => {
                        changed = true;
                        true
                    }
                    Seen::Foreign => false,
                });
                let removed = before - items.len();
                Ok((changed || removed > 0, removed))
            }
            Value::Object(_) => match self.unseal_hook(value) {
                Seen::Direct => Ok((false, 0)),
                Seen::Own => Ok((true, 0)),
                Seen::Foreign => Err(Seen::Foreign),
            },
            _ => Ok((false, 0)),
        }
    }

    /// The body to forward for a hook create or update allowed by `rule`:
    /// `url` and `token` replaced by the relay URL and its secret. `existing`
    /// is the hook as it stands (updates; `None` for a creation). `None`:
    /// nothing to rewrite (an update of one of this client's relay hooks that
    /// sets neither `url` nor `token`: it stays behind the relay).
    pub(crate) fn registration_body(
        &self,
        rule: &str,
        query: &[Param],
        body_params: &[Param],
        content_type: Option<&str>,
        body: &Bytes,
        existing: Option<&Existing>,
    ) -> Result<Option<Bytes>, RelayError> {
        for field in ["url", "token"] {
            if query.iter().any(|p| p.name == field) {
                return Err(RelayError::InQuery(field));
            }
        }
        if query
            .iter()
            .chain(body_params)
            .any(|p| p.name == "custom_webhook_template")
        {
            return Err(RelayError::CustomTemplate);
        }
        let text = |name: &'static str| -> Result<Option<String>, RelayError> {
            match body_params.iter().find(|p| p.name == name) {
                None => Ok(None),
                Some(Param {
                    value: ParamValue::Scalar(value),
                    ..
                }) => Ok(Some(value.clone())),
                Some(_) => Err(RelayError::NotText(name)),
            }
        };
        let (url, token) = (text("url")?, text("token")?);
        let (target_url, client_token) = match (existing, url, token) {
            (None, None, _) => return Err(RelayError::MissingUrl),
            (None, Some(url), token) => (url, token),
            // A hook from before the relay: GitLab never returns its token,
            // so only an update that gives both can move it behind the relay.
            (Some(Existing::Direct), Some(url), Some(token)) => (url, Some(token)),
            (Some(Existing::Direct), _, _) => return Err(RelayError::NeedsMigration),
            (Some(Existing::Relay(_)), None, None) => return Ok(None),
            (Some(Existing::Relay(current)), url, token) => {
                let url = url.unwrap_or_else(|| current.url.clone());
                // GitLab resets a hook's token when its URL changes and no
                // token is given: the same holds for the client's token.
                let token = token.or_else(|| {
                    (current.url == url)
                        .then(|| current.token.clone())
                        .flatten()
                });
                (url, token)
            }
        };
        if seal::sealed_part(self.receive_url, &target_url).is_some()
            || target_url.contains(seal::RELAY_PATH)
        {
            return Err(RelayError::Loop);
        }
        let target = HookTarget {
            client: self.client.to_owned(),
            rule: rule.to_owned(),
            url: target_url,
            token: client_token.filter(|t| !t.is_empty()),
        };
        let sealed = self.sealer.seal(&target).map_err(|_| RelayError::Seal)?;
        let relay_url = seal::relay_url(self.receive_url, &sealed);
        let secret = self.sealer.hook_secret(&sealed);
        rewrite(content_type, body, &relay_url, &secret).map(Some)
    }
}

/// A hook as it stands at GitLab, as the relay sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Existing {
    /// One of this client's relay hooks.
    Relay(HookTarget),
    /// A hook that does not point at the relay (registered before it).
    Direct,
}

/// `body` with `url` and `token` set, in the body's own format.
fn rewrite(
    content_type: Option<&str>,
    body: &Bytes,
    url: &str,
    token: &str,
) -> Result<Bytes, RelayError> {
    let is_form = content_type.is_some_and(|t| {
        t.trim_start()
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    if is_form {
        let text = std::str::from_utf8(body).map_err(|_| RelayError::Body)?;
        let mut pairs: Vec<String> = Vec::new();
        for piece in text.split('&').filter(|p| !p.is_empty()) {
            // The name as the policy read it (decoded once, `[]` stripped).
            let parsed = parse_query(piece, ParamSource::Body).map_err(|_| RelayError::Body)?;
            let replaced = parsed
                .first()
                .is_some_and(|p| p.name == "url" || p.name == "token");
            if !replaced {
                pairs.push(piece.to_owned());
            }
        }
        pairs.push(format!("url={}", form_encode(url)));
        pairs.push(format!("token={}", form_encode(token)));
        return Ok(Bytes::from(pairs.join("&")));
    }
    let mut object: serde_json::Map<String, Value> = if body.is_empty() {
        serde_json::Map::new()
    } else {
        serde_json::from_slice(body).map_err(|_| RelayError::Body)?
    };
    object.insert("url".into(), Value::String(url.to_owned()));
    object.insert("token".into(), Value::String(token.to_owned()));
    serde_json::to_vec(&object)
        .map(Bytes::from)
        .map_err(|_| RelayError::Body)
}

/// Form encoding of a value: unreserved bytes as they are, the rest `%XX`.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::parse_body;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const RECEIVE: &str = "https://glgate.acme.internal";

    fn sealer() -> Sealer {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, KEY).unwrap();
        Sealer::load(&path).unwrap()
    }

    fn view<'a>(sealer: &'a Sealer, client: &'a str) -> RelayView<'a> {
        RelayView {
            sealer,
            receive_url: RECEIVE,
            client,
            relays: true,
        }
    }

    fn register(view: &RelayView<'_>, content_type: &str, body: &str) -> Bytes {
        let params = parse_body(Some(content_type), body.as_bytes()).unwrap();
        view.registration_body(
            "project-hooks.create",
            &[],
            &params,
            Some(content_type),
            &Bytes::from(body.to_owned()),
            None,
        )
        .unwrap()
        .unwrap()
    }

    #[test]
    fn hook_routes_are_read_from_the_template_shape() {
        use Method::*;
        assert_eq!(
            HookRoute::of(Post, "/projects/{project}/hooks"),
            Some(HookRoute::Create)
        );
        assert_eq!(
            HookRoute::of(Put, "/groups/{id}/hooks/{hook}"),
            Some(HookRoute::Update)
        );
        assert_eq!(
            HookRoute::of(Get, "/groups/{group}/hooks"),
            Some(HookRoute::List)
        );
        assert_eq!(
            HookRoute::of(Delete, "/projects/{project}/hooks/{hook_id}"),
            Some(HookRoute::Item)
        );
        assert_eq!(HookRoute::of(Post, "/projects/{project}/labels"), None);
        assert_eq!(HookRoute::of(Post, "/hooks"), None);
        assert_eq!(HookRoute::of(Post, "/projects/acme/hooks"), None);
    }

    #[test]
    fn a_json_registration_points_at_the_relay_and_reads_back_as_sent() {
        let sealer = sealer();
        let echoes = view(&sealer, "echoes");
        let sent = r#"{"url":"https://api.echoeshq.com/h/1","token":"mine","push_events":true}"#;
        let forwarded = register(&echoes, "application/json", sent);
        let mut hook: Value = serde_json::from_slice(&forwarded).unwrap();
        assert_eq!(hook["push_events"], Value::Bool(true));
        let url = hook["url"].as_str().unwrap().to_owned();
        assert!(url.starts_with("https://glgate.acme.internal/-/webhooks/v1/"));
        assert!(!url.contains("echoeshq") && !forwarded.windows(4).any(|w| w == b"mine"));
        let sealed = seal::sealed_part(RECEIVE, &url).unwrap();
        assert!(
            sealer.verify_secret(sealed, hook["token"].as_str().unwrap().as_bytes()),
            "GitLab gets the hook's secret"
        );
        let target = sealer.open(sealed).unwrap();
        assert_eq!(target.token.as_deref(), Some("mine"));
        assert_eq!(target.rule, "project-hooks.create");
        // What GitLab answers is turned back into what the client sent.
        assert_eq!(echoes.unseal_answer(&mut hook), Ok((true, 0)));
        assert_eq!(hook["url"], "https://api.echoeshq.com/h/1");
        // Another client never sees it.
        let mut again: Value = serde_json::from_slice(&forwarded).unwrap();
        let other = view(&sealer, "other");
        assert_eq!(other.unseal_answer(&mut again), Err(Seen::Foreign));
        let mut list = Value::Array(vec![
            serde_json::from_slice(&forwarded).unwrap(),
            serde_json::json!({"id": 2, "url": "https://elsewhere.example/x"}),
        ]);
        assert_eq!(other.unseal_answer(&mut list), Ok((true, 1)));
        assert_eq!(list.as_array().unwrap().len(), 1);
    }

    #[test]
    fn a_form_registration_is_rewritten_in_place() {
        let sealer = sealer();
        let echoes = view(&sealer, "echoes");
        let sent = "u%72l=https%3A%2F%2Fapi.echoeshq.com%2Fh&note_events=true&token=t";
        let forwarded = register(&echoes, "application/x-www-form-urlencoded", sent);
        let text = std::str::from_utf8(&forwarded).unwrap();
        let params =
            parse_body(Some("application/x-www-form-urlencoded"), text.as_bytes()).unwrap();
        let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["note_events", "url", "token"], "{text}");
        let ParamValue::Scalar(url) = &params[1].value else {
            panic!()
        };
        let target = sealer
            .open(seal::sealed_part(RECEIVE, url).unwrap())
            .unwrap();
        assert_eq!(target.url, "https://api.echoeshq.com/h");
        assert_eq!(target.token.as_deref(), Some("t"));
    }

    #[test]
    fn updates_keep_or_reset_the_client_token_as_gitlab_would() {
        let sealer = sealer();
        let echoes = view(&sealer, "echoes");
        let current = HookTarget {
            client: "echoes".into(),
            rule: "project-hooks.create".into(),
            url: "https://api.echoeshq.com/h/1".into(),
            token: Some("old".into()),
        };
        let update = |body: &str| {
            let params = parse_body(Some("application/json"), body.as_bytes()).unwrap();
            echoes
                .registration_body(
                    "project-hooks.update",
                    &[],
                    &params,
                    Some("application/json"),
                    &Bytes::from(body.to_owned()),
                    Some(&Existing::Relay(current.clone())),
                )
                .unwrap()
                .map(|b| {
                    let v: Value = serde_json::from_slice(&b).unwrap();
                    let url = v["url"].as_str().unwrap().to_owned();
                    sealer
                        .open(seal::sealed_part(RECEIVE, &url).unwrap())
                        .unwrap()
                })
        };
        assert_eq!(update(r#"{"push_events":false}"#), None);
        let same = update(r#"{"url":"https://api.echoeshq.com/h/1"}"#).unwrap();
        assert_eq!(same.token.as_deref(), Some("old"));
        let moved = update(r#"{"url":"https://api.echoeshq.com/h/2"}"#).unwrap();
        assert_eq!(moved.token, None);
        let retokened = update(r#"{"token":"new"}"#).unwrap();
        assert_eq!(
            (retokened.url.as_str(), retokened.token.as_deref()),
            ("https://api.echoeshq.com/h/1", Some("new"))
        );
        assert_eq!(retokened.rule, "project-hooks.update");
    }

    #[test]
    fn a_hook_from_before_the_relay_moves_behind_it_only_with_url_and_token() {
        let sealer = sealer();
        let echoes = view(&sealer, "echoes");
        let update = |body: &str| {
            let params = parse_body(Some("application/json"), body.as_bytes()).unwrap();
            echoes
                .registration_body(
                    "project-hooks.update",
                    &[],
                    &params,
                    Some("application/json"),
                    &Bytes::from(body.to_owned()),
                    Some(&Existing::Direct),
                )
                .map(|b| b.is_some())
        };
        assert_eq!(
            update(r#"{"push_events":true}"#),
            Err(RelayError::NeedsMigration)
        );
        assert_eq!(
            update(r#"{"url":"https://a.example/h"}"#),
            Err(RelayError::NeedsMigration)
        );
        assert_eq!(update(r#"{"token":"t"}"#), Err(RelayError::NeedsMigration));
        assert_eq!(
            update(r#"{"url":"https://a.example/h","token":"t"}"#),
            Ok(true)
        );
        assert_eq!(
            update(r#"{"url":null,"token":"t"}"#),
            Err(RelayError::NotText("url"))
        );
        assert_eq!(
            update(r#"{"url":"https://a.example/h","token":"t","custom_webhook_template":"{}"}"#),
            Err(RelayError::CustomTemplate)
        );
        let create = echoes.registration_body(
            "r",
            &[],
            &parse_body(Some("application/json"), br#"{"push_events":true}"#).unwrap(),
            Some("application/json"),
            &Bytes::from_static(br#"{"push_events":true}"#),
            None,
        );
        assert_eq!(create, Err(RelayError::MissingUrl));
    }

    #[test]
    fn query_fields_and_loops_are_refused() {
        let sealer = sealer();
        let echoes = view(&sealer, "echoes");
        let query = parse_query("url=https%3A%2F%2Fx", ParamSource::Query).unwrap();
        let result = echoes.registration_body("r", &query, &[], None, &Bytes::new(), None);
        assert_eq!(result, Err(RelayError::InQuery("url")));
        let body = r#"{"url":"https://glgate.acme.internal/-/webhooks/v1/abc"}"#;
        let params = parse_body(Some("application/json"), body.as_bytes()).unwrap();
        let result = echoes.registration_body(
            "r",
            &[],
            &params,
            Some("application/json"),
            &Bytes::from(body),
            None,
        );
        assert_eq!(result, Err(RelayError::Loop));
    }
}
