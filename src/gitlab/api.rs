//! GitLab calls glgate makes on its own account about its credential:
//! the token's metadata, its user, rotation, and OAuth token exchanges.
//! Used by the running server (expiry watch, auto-rotation, OAuth refresh)
//! and by the `doctor`, `token rotate` and `oauth login` commands.

use crate::canonical::encode_component;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};

use super::client::{HttpClient, SetupError, http_client};
use super::token::Secret;
use crate::config::{BaseUrl, UpstreamConfig};

/// Largest answer read from these endpoints.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Why a call failed. Never holds a credential.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Connecting, TLS or the exchange failed.
    #[error("GitLab could not be reached: {0}")]
    Unreachable(String),
    /// No answer in time.
    #[error("GitLab did not answer in time")]
    Timeout,
    /// The answer was not the JSON expected.
    #[error("GitLab's answer could not be read ({0})")]
    BadAnswer(&'static str),
}

/// One JSON answer.
#[derive(Debug)]
pub(crate) struct Answer {
    /// GitLab's status.
    pub status: StatusCode,
    /// The body, `Null` when empty or not JSON.
    pub json: serde_json::Value,
}

/// A small client for GitLab's credential endpoints.
#[derive(Clone, Debug)]
pub(crate) struct GitlabApi {
    base: BaseUrl,
    client: HttpClient,
    timeout: Duration,
}

impl GitlabApi {
    /// A client for the configured upstream (same CA, client certificate and timeouts).
    pub(crate) fn new(config: &UpstreamConfig) -> Result<GitlabApi, SetupError> {
        Ok(GitlabApi::with_client(config, http_client(config)?))
    }

    /// A client for the configured upstream over an existing connection pool
    /// (the running server shares one pool between the proxy and the credential).
    pub(crate) fn with_client(config: &UpstreamConfig, client: HttpClient) -> GitlabApi {
        GitlabApi {
            base: config.url.clone(),
            client,
            timeout: config.response_timeout.min(Duration::from_secs(30)),
        }
    }

    /// The base URL.
    pub(crate) fn base(&self) -> &BaseUrl {
        &self.base
    }

    /// `GET {base}{path}` with the credential.
    pub(crate) async fn get(&self, path: &str, secret: &Secret) -> Result<Answer, ApiError> {
        let request = Request::get(format!("{}{path}", self.base))
            .header(header::ACCEPT, "application/json")
            .header(secret.header_name(), secret.header_value())
            .body(Full::new(Bytes::new()))
            .map_err(|_| ApiError::BadAnswer("request could not be built"))?;
        self.exchange(request).await
    }

    /// `POST {base}{path}` with a form body, with or without a credential.
    pub(crate) async fn post_form(
        &self,
        path: &str,
        secret: Option<&Secret>,
        form: &[(&str, &str)],
    ) -> Result<Answer, ApiError> {
        let body = form_encode(form);
        let mut builder = Request::post(format!("{}{path}", self.base))
            .header(header::ACCEPT, "application/json")
            .header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            )
            .header(header::CONTENT_LENGTH, body.len());
        if let Some(secret) = secret {
            builder = builder.header(secret.header_name(), secret.header_value());
        }
        let request = builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| ApiError::BadAnswer("request could not be built"))?;
        self.exchange(request).await
    }

    async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<Answer, ApiError> {
        let response = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| ApiError::Timeout)?
            .map_err(|error| ApiError::Unreachable(crate::diagnostic::describe(&error)))?;
        let status = response.status();
        let limited = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES);
        let body = tokio::time::timeout(self.timeout, limited.collect())
            .await
            .map_err(|_| ApiError::Timeout)?
            .map_err(|_| ApiError::BadAnswer("body too large or cut short"))?
            .to_bytes();
        let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        Ok(Answer { status, json })
    }
}

/// `application/x-www-form-urlencoded`.
pub(crate) fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_encoded() {
        assert_eq!(
            form_encode(&[("a", "b c"), ("x/y", "1&2=3~")]),
            "a=b%20c&x%2Fy=1%262%3D3~"
        );
    }
}
