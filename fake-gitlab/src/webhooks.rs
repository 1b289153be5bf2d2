//! Webhook deliveries, as GitLab makes them: an event of a project goes to
//! the project's hooks and to the hooks of every group above it (group hooks
//! fire for the projects of subgroups too), each a `POST` of the JSON payload
//! with the hook's secret in `X-Gitlab-Token` and GitLab's identifying
//! headers.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::server::Shared;
use crate::store::{Owner, Store};

/// GitLab's own version string in `User-Agent` on deliveries.
const USER_AGENT: &str = "GitLab/18.6.0-fake";

/// One delivery the fake GitLab made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The hook it went to.
    pub hook_id: u64,
    /// The URL it was posted to.
    pub url: String,
    /// The receiver's status, or `None` if it could not be reached.
    pub status: Option<u16>,
}

/// A hook an event goes to: its id, URL and secret.
struct Target {
    hook_id: u64,
    url: String,
    token: Option<String>,
}

/// The hooks that fire for an event of project `project_id`, with the
/// payload's `project` fields set to that project as GitLab would.
fn targets(store: &Store, project_id: u64, payload: &mut Value) -> Vec<Target> {
    let Some(project) = store.project(project_id) else {
        return Vec::new();
    };
    let full = project.path_with_namespace.clone();
    if let Some(object) = payload.get_mut("project").and_then(Value::as_object_mut) {
        object.insert("id".into(), Value::from(project_id));
        object.insert("path_with_namespace".into(), Value::from(full.clone()));
    }
    if payload.get("project_id").is_some() {
        payload["project_id"] = Value::from(project_id);
    }
    store
        .hooks
        .iter()
        .filter(|hook| match hook.owner {
            Owner::Project(id) => id == project_id,
            Owner::Group(id) => store.group(id).is_some_and(|group| {
                full.to_ascii_lowercase()
                    .starts_with(&format!("{}/", group.full_path.to_ascii_lowercase()))
            }),
        })
        .filter_map(|hook| {
            Some(Target {
                hook_id: hook.id,
                url: hook.fields.get("url")?.as_str()?.to_owned(),
                token: hook
                    .fields
                    .get("token")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            })
        })
        .collect()
}

/// Delivers `payload` (an event of `event` kind, e.g. `Push Hook`) for
/// project `project_id` to every hook that fires for it, one after the other.
pub(crate) async fn deliver(
    shared: &Shared,
    project_id: u64,
    event: &str,
    mut payload: Value,
) -> Vec<Delivery> {
    let targets = shared.with_store(|store| targets(store, project_id, &mut payload));
    let body = Bytes::from(payload.to_string());
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut deliveries = Vec::new();
    for target in targets {
        let n = shared.next_delivery_number();
        let mut request = http::Request::post(&target.url)
            .header("content-type", "application/json")
            .header("user-agent", USER_AGENT)
            .header("x-gitlab-event", event)
            .header("x-gitlab-instance", shared.base_url.as_str())
            .header(
                "x-gitlab-webhook-uuid",
                format!("00000000-0000-4000-8000-{:012x}", target.hook_id),
            )
            .header(
                "x-gitlab-event-uuid",
                format!("10000000-0000-4000-8000-{n:012x}"),
            )
            .header(
                "idempotency-key",
                format!("20000000-0000-4000-8000-{n:012x}"),
            );
        if let Some(token) = &target.token {
            request = request.header("x-gitlab-token", token.as_str());
        }
        let status = match request.body(Full::new(body.clone())) {
            Ok(request) => match tokio::time::timeout(
                std::time::Duration::from_secs(10),
                client.request(request),
            )
            .await
            {
                Ok(Ok(response)) => {
                    let status = response.status().as_u16();
                    let _ = response.into_body().collect().await;
                    Some(status)
                }
                _ => None,
            },
            Err(_) => None,
        };
        deliveries.push(Delivery {
            hook_id: target.hook_id,
            url: target.url,
            status,
        });
    }
    deliveries
}
