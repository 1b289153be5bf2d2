//! The GitLab side: the pooled HTTP client (one pool per proxy worker
//! thread), the base-URL rewrite of the target, and token injection. Only a
//! [`Permit`] gets a request sent.

mod body;

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

pub(crate) use body::{BoundedBody, StreamError};

use crate::canonical::{Method, RequestHead};
use crate::config::{BaseUrl, UpstreamConfig};
use crate::credential::{Credential, Secret, SecretUnavailable};
use crate::gitlab::HttpClient;
use crate::policy::Permit;

/// The `User-Agent` of requests glgate makes on its own account.
pub(crate) const OWN_USER_AGENT: &str =
    concat!("glgate/", env!("CARGO_PKG_VERSION"), " (own check)");

/// Why GitLab could not be used. Messages never name the host or the token.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    /// No response headers within the response timeout.
    #[error("GitLab did not answer in time")]
    Timeout,
    /// Connecting, TLS, or the exchange failed.
    #[error("GitLab could not be reached")]
    Unavailable(#[source] hyper_util::client::legacy::Error),
    /// The request could not be built (should not happen for a checked target).
    #[error("the request to GitLab could not be built")]
    Build(#[from] http::Error),
    /// GitLab's body ended early or went over a bound while glgate read it whole.
    #[error("GitLab's response could not be read whole")]
    Truncated,
    /// GitLab announced a body larger than `upstream.max_response_bytes`.
    #[error("GitLab's response is larger than glgate relays ({0} bytes)")]
    ResponseTooLarge(u64),
    /// glgate holds no valid GitLab credential right now (an OAuth refresh
    /// failed and the access token expired): nothing is sent.
    #[error(transparent)]
    CredentialUnavailable(#[from] SecretUnavailable),
    /// GitLab answered 401 to glgate's own token (after one retry with a
    /// newer token, when the credential had one). Every client library reads
    /// a bare 401 as "your token is wrong"; this one is glgate's.
    #[error(
        "GitLab rejected glgate's own GitLab credential (your token was accepted by glgate): the operator must renew or replace glgate's GitLab token; retry later"
    )]
    CredentialRejected {
        /// GitLab's `X-Request-Id` of the rejected request ([`upstream_request_id`]).
        upstream_request_id: Option<String>,
    },
}

/// GitLab's `X-Request-Id`, parsed once (a `&str` name is parsed at every lookup).
const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// Longest upstream request id kept (GitLab's are 26-character ULIDs).
const MAX_UPSTREAM_REQUEST_ID_CHARS: usize = 64;

/// GitLab's `X-Request-Id` of an answer, for the audit line and the log: a
/// support case is followed into GitLab's logs with it. Printable ASCII only
/// (anything else is replaced by `?`) and at most 64 characters, since it is
/// GitLab's word, not glgate's.
pub(crate) fn upstream_request_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(X_REQUEST_ID)?.as_bytes();
    let id: String = value
        .iter()
        .take(MAX_UPSTREAM_REQUEST_ID_CHARS)
        .map(|&b| {
            if b.is_ascii_graphic() {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect();
    (!id.is_empty()).then_some(id)
}

/// A response to a request glgate made on its own account.
#[derive(Debug)]
pub(crate) struct OwnRead {
    /// GitLab's status.
    pub status: http::StatusCode,
    /// The `Location` header, for redirects.
    pub location: Option<String>,
    /// `X-Next-Page`, for paginated lists.
    pub next_page: Option<u64>,
    /// The whole body.
    pub body: Bytes,
}

/// The GitLab instance glgate forwards to.
#[derive(Debug)]
pub struct Upstream {
    base: BaseUrl,
    /// `Host` of every request, computed once from `base`.
    host: HeaderValue,
    credential: Credential,
    client: HttpClient,
    response_timeout: Duration,
    body_idle_timeout: Duration,
    max_response_bytes: u64,
}

impl Upstream {
    /// The forwarder to `config.url` with `credential`, over an existing
    /// connection pool (shared with the credential's own GitLab calls, so one
    /// snapshot holds one pool).
    pub(crate) fn with_client(
        config: &UpstreamConfig,
        credential: Credential,
        client: HttpClient,
    ) -> Upstream {
        Upstream {
            base: config.url.clone(),
            host: config.url.host_header().clone(),
            credential,
            client,
            response_timeout: config.response_timeout,
            body_idle_timeout: config.body_idle_timeout,
            max_response_bytes: config.max_response_bytes,
        }
    }

    /// The live GitLab credential.
    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// Sends an allowed request: the checked target, byte for byte, under the
    /// upstream base; `headers` already filtered; the GitLab token injected.
    /// The `Permit` is the proof that the policy allowed it. The response body
    /// is bounded in size and in pauses.
    pub(crate) async fn send(
        &self,
        _permit: &Permit,
        head: &RequestHead,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response<BoundedBody>, UpstreamError> {
        // Loaded once: a credential swapped while the request is in flight
        // does not change it (a 401 below may send it again with a newer one).
        let secret = self.credential.secret().await?;
        let retry = self
            .credential
            .may_change_on_rejection()
            .then(|| (headers.clone(), body.clone()));
        let request = self.build(&secret, head.method(), head.target(), headers, body)?;
        let mut response = self.exchange(request).await?;
        // GitLab authenticates before it acts, so a 401 means nothing was
        // done: if the token file holds a newer token (rotated, the old one
        // revoked at once), send the request once more with it.
        if response.status() == http::StatusCode::UNAUTHORIZED
            && let Some((headers, body)) = retry
            && let Some(fresh) = self.credential.recheck_after_rejection(&secret).await
        {
            let request = self.build(&fresh, head.method(), head.target(), headers, body)?;
            response = self.exchange(request).await?;
        }
        drop(secret);
        // No client credential ever reaches GitLab (glgate removes them), so
        // a 401 here is about glgate's own token, not the client's.
        if response.status() == http::StatusCode::UNAUTHORIZED {
            return Err(UpstreamError::CredentialRejected {
                upstream_request_id: upstream_request_id(response.headers()),
            });
        }
        let declared = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.max_response_bytes) {
            return Err(UpstreamError::ResponseTooLarge(self.max_response_bytes));
        }
        let (limit, idle) = (self.max_response_bytes, self.body_idle_timeout);
        Ok(response.map(|body| BoundedBody::new(body, limit, idle)))
    }

    /// Reads `target` on glgate's own account, always with `GET`: ownership
    /// checks (the path a policy allowed, without its query) and scope
    /// resolution (targets glgate builds). The body
    /// is read whole, at most 1 MiB, within the response timeout; redirects
    /// are returned, not followed.
    pub(crate) async fn read_own(&self, target: &str) -> Result<OwnRead, UpstreamError> {
        const MAX_RESOURCE_BYTES: usize = 1024 * 1024;
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        // GitLab's logs tell glgate's own checks from the client requests it relays.
        headers.insert(header::USER_AGENT, HeaderValue::from_static(OWN_USER_AGENT));
        let secret = self.credential.secret().await?;
        let request = self.build(&secret, Method::Get, target, headers, Bytes::new())?;
        let response = self.exchange(request).await?;
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let next_page = response
            .headers()
            .get("x-next-page")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let limited = http_body_util::Limited::new(response.into_body(), MAX_RESOURCE_BYTES);
        let body = tokio::time::timeout(self.response_timeout, limited.collect())
            .await
            .map_err(|_| UpstreamError::Timeout)?
            .map_err(|_| UpstreamError::ResponseTooLarge(MAX_RESOURCE_BYTES as u64))?
            .to_bytes();
        Ok(OwnRead {
            status,
            location,
            next_page,
            body,
        })
    }

    /// A request glgate makes on its own account (readiness checks): `target`
    /// is a fixed API path, never client input.
    pub(crate) async fn send_own(
        &self,
        target: &'static str,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let secret = self.credential.secret().await?;
        let request = self.build(&secret, Method::Get, target, HeaderMap::new(), Bytes::new())?;
        self.exchange(request).await
    }

    /// Deletes the resource at `target` (e.g. `/api/v4/projects/1/hooks/2`)
    /// with glgate's own token: an operator's command (`scope prune-hooks
    /// --delete`), never a client's request. Returns GitLab's status.
    pub(crate) async fn delete_own(&self, target: &str) -> Result<http::StatusCode, UpstreamError> {
        let mut headers = HeaderMap::new();
        headers.insert(header::USER_AGENT, HeaderValue::from_static(OWN_USER_AGENT));
        let secret = self.credential.secret().await?;
        let request = self.build(&secret, Method::Delete, target, headers, Bytes::new())?;
        let response = self.exchange(request).await?;
        Ok(response.status())
    }

    fn build(
        &self,
        secret: &Secret,
        method: Method,
        target: &str,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, UpstreamError> {
        let uri = self.base.uri_for(target)?;
        headers.insert(header::HOST, self.host.clone());
        // The value was loaded once for this request: a credential swapped
        // while it is in flight does not change it.
        headers.insert(secret.header_name(), secret.header_value());
        if !body.is_empty() || !method.is_read() {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        let mut request = Request::builder()
            .method(method.as_str())
            .uri(uri)
            .body(Full::new(body))?;
        *request.headers_mut() = headers;
        Ok(request)
    }

    async fn exchange(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        match tokio::time::timeout(self.response_timeout, self.client.request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => Err(UpstreamError::Unavailable(error)),
            Err(_) => Err(UpstreamError::Timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_request_ids_are_bounded_and_printable() {
        let mut headers = HeaderMap::new();
        assert_eq!(upstream_request_id(&headers), None);
        headers.insert("x-request-id", HeaderValue::from_static("01HZY3Q6V7"));
        assert_eq!(upstream_request_id(&headers).as_deref(), Some("01HZY3Q6V7"));
        headers.insert(
            "x-request-id",
            HeaderValue::from_bytes(b"a b\t\x80\"z").unwrap(),
        );
        assert_eq!(upstream_request_id(&headers).as_deref(), Some("a?b??\"z"));
        let long = "x".repeat(500);
        headers.insert("x-request-id", HeaderValue::from_str(&long).unwrap());
        assert_eq!(upstream_request_id(&headers).unwrap().len(), 64);
    }
}
