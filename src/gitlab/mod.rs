//! The bottom floor for talking to GitLab: the HTTP client and its TLS
//! configuration, the token type and the header it travels in, and the small
//! GitLab API that the credential, `doctor` and `scope show` call on glgate's
//! own account.
//!
//! `upstream` (the proxy's forwarder), `credential` and `scope` use this
//! module; it imports none of them, so the GitLab side has no import cycle.

mod api;
mod client;
mod token;

pub(crate) use api::{ApiError, GitlabApi, form_encode};
pub(crate) use client::{HttpClient, SetupError, client_tls_config, http_client, pool_per_thread};
pub(crate) use token::{Secret, TokenError, UpstreamToken};
