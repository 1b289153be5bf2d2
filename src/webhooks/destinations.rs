//! Where a queued delivery goes, decided again before each attempt on the
//! server's current snapshot: a reload that removes the client, its relay,
//! the rule that registered the hook, or the event's object from the scope
//! stops deliveries already queued, not only new ones.

use std::sync::Arc;

use super::QueuedDelivery;
use super::deliver::{Destination, Destinations, Undeliverable};
use super::receive::{destination_allowed, in_scope};
use crate::gateway::Gateway;
use crate::scope::Kind;

/// The running server's answer to "where does this delivery go now?".
pub(crate) struct RelayDestinations(pub(crate) Arc<Gateway>);

impl Destinations for RelayDestinations {
    fn resolve(&self, delivery: &QueuedDelivery) -> Result<Destination, Undeliverable> {
        let undeliverable = |reason| Err(Undeliverable { reason });
        let snapshot = self.0.snapshot();
        let Some(settings) = &snapshot.config.webhooks else {
            return undeliverable("webhook_relay_disabled");
        };
        // A key removed from the key file no longer opens its relay URLs.
        let Ok(target) = settings.sealer.open(&delivery.sealed) else {
            return undeliverable("relay_url_unknown");
        };
        if target.client != delivery.client {
            return undeliverable("relay_url_unknown");
        }
        let Some(client) = snapshot
            .config
            .clients
            .iter()
            .find(|c| *c.name == *target.client)
        else {
            return undeliverable("client_unknown");
        };
        if client.webhooks.is_none() {
            return undeliverable("client_not_relayed");
        }
        if !destination_allowed(client, &target) {
            return undeliverable("destination_not_allowed");
        }
        let kind = if delivery.object_kind == "group" {
            Kind::Group
        } else {
            Kind::Project
        };
        if !in_scope(client, kind, &delivery.object) {
            return undeliverable("out_of_scope");
        }
        Ok(Destination {
            url: target.url,
            token: target.token,
        })
    }
}
