//! The `webhooks:` section (the relay's keys, queue and delivery bounds) and
//! each client's `webhooks:` (its payload policy). Key and policy files are
//! read here, so `check` finds what `serve` would.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::Compiler;
use crate::config::raw::{RawClientWebhooks, RawWebhooks};
use crate::config::{
    DEFAULT_WEBHOOK_BODY_BYTES, DEFAULT_WEBHOOK_QUEUE_BYTES, DEFAULT_WEBHOOK_QUEUED,
    WebhookSettings,
};
use crate::webhooks::payload::PayloadPolicy;
use crate::webhooks::seal::{Sealer, SigningSecret};

impl Compiler<'_> {
    /// The top-level `webhooks:` section. Relay URLs point at `receive_url`,
    /// else at the public URL (configured, or the bound loopback address:
    /// `public_url` is required beyond loopback).
    pub(super) fn webhooks(&mut self, raw: &Spanned<RawWebhooks>) -> Option<WebhookSettings> {
        let webhooks = &raw.value;
        let key_path = self.resolve(&webhooks.key_file.value);
        let sealer = match Sealer::load(&key_path) {
            Ok(sealer) => Some(Arc::new(sealer)),
            Err(error) => {
                self.problem(
                    &webhooks.key_file,
                    "webhooks.key_file",
                    error.to_string(),
                    Some("create one with `glgate webhooks new-key > FILE` (mode 600)"),
                );
                None
            }
        };
        let receive_url = webhooks
            .receive_url
            .as_ref()
            .and_then(|url| self.base_url(url, "webhooks.receive_url"));
        let signing = webhooks
            .signing_secret_file
            .as_ref()
            .and_then(|file| self.signing_secret(file));
        let max_age = self.duration(
            webhooks.max_age.as_ref(),
            "webhooks.max_age",
            Duration::from_secs(72 * 3600),
        );
        let retry_initial = self.duration(
            webhooks.retry_initial.as_ref(),
            "webhooks.retry_initial",
            Duration::from_secs(10),
        );
        let retry_max = self.duration(
            webhooks.retry_max.as_ref(),
            "webhooks.retry_max",
            Duration::from_secs(15 * 60),
        );
        if retry_max < retry_initial
            && let Some(value) = &webhooks.retry_max
        {
            self.problem(
                value,
                "webhooks.retry_max",
                "retry_max is shorter than retry_initial".into(),
                Some("the delay starts at retry_initial and doubles up to retry_max"),
            );
        }
        let delivery_timeout = self.duration(
            webhooks.delivery_timeout.as_ref(),
            "webhooks.delivery_timeout",
            Duration::from_secs(10),
        );
        let settings = WebhookSettings {
            sealer: sealer?,
            key_file: key_path,
            signing_secret_file: webhooks
                .signing_secret_file
                .as_ref()
                .map(|f| self.resolve(&f.value)),
            receive_url,
            spool: self.resolve(&webhooks.spool.value),
            max_queue_bytes: self.positive(
                webhooks.max_queue_bytes.as_ref(),
                "webhooks.max_queue_bytes",
                DEFAULT_WEBHOOK_QUEUE_BYTES,
            ),
            max_queued: self.positive(
                webhooks.max_queued.as_ref(),
                "webhooks.max_queued",
                DEFAULT_WEBHOOK_QUEUED,
            ),
            max_client_share_percent: self.percent(webhooks.max_client_share_percent.as_ref()),
            max_age,
            retry_initial,
            retry_max,
            delivery_timeout,
            max_body_bytes: self.positive(
                webhooks.max_body_bytes.as_ref(),
                "webhooks.max_body_bytes",
                DEFAULT_WEBHOOK_BODY_BYTES,
            ),
            ca_file: webhooks.ca_file.as_ref().map(|f| self.resolve(&f.value)),
            signing,
        };
        Some(settings)
    }

    /// `webhooks.max_client_share_percent`: 1 to 100, default 75.
    fn percent(&mut self, value: Option<&Spanned<u64>>) -> u64 {
        match value {
            None => 75,
            Some(v) if (1..=100).contains(&v.value) => v.value,
            Some(v) => {
                self.problem(
                    v,
                    "webhooks.max_client_share_percent",
                    format!("{} is not a percentage from 1 to 100", v.value),
                    Some("e.g. 75 (one client fills at most three quarters of the queue), or 100 for no share"),
                );
                75
            }
        }
    }

    fn signing_secret(&mut self, file: &Spanned<String>) -> Option<Arc<SigningSecret>> {
        let path = self.resolve(&file.value);
        let parsed = std::fs::read_to_string(&path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))
            .and_then(|text| {
                SigningSecret::parse(&text).ok_or_else(|| {
                    format!("{} does not hold a whsec_… signing secret", path.display())
                })
            });
        match parsed {
            Ok(secret) => Some(Arc::new(secret)),
            Err(message) => {
                self.problem(
                    file,
                    "webhooks.signing_secret_file",
                    message,
                    Some("the file holds the hook's signing secret as GitLab shows it: whsec_ then base64"),
                );
                None
            }
        }
    }

    /// A client's `webhooks:`: its payload policy, compiled. `relay` says
    /// whether the top-level section exists (the relay needs its keys).
    pub(super) fn client_webhooks(
        &mut self,
        raw: &Spanned<RawClientWebhooks>,
        key: &str,
        relay: bool,
    ) -> Option<Arc<PayloadPolicy>> {
        if !relay {
            self.problem(
                raw,
                &format!("{key}.webhooks"),
                "this client's webhooks are to be relayed, but there is no top-level webhooks: section".into(),
                Some("add webhooks: with key_file and spool (see config/glgate.example.yaml)"),
            );
        }
        let path = self.resolve(&raw.value.policy.value);
        if !Path::new(&path).is_file() {
            self.problem(
                &raw.value.policy,
                &format!("{key}.webhooks.policy"),
                format!("payload policy file {} does not exist", path.display()),
                Some("paths are relative to the config file's folder"),
            );
            return None;
        }
        match PayloadPolicy::load(&path) {
            Ok(policy) => Some(Arc::new(policy)),
            Err(problems) => {
                self.problems.0.extend(problems.0);
                None
            }
        }
    }
}
