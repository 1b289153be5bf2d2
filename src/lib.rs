//! glgate: a self-hosted security proxy for the GitLab REST API.
//!
//! A third party calls glgate exactly as it would call GitLab, with a glgate
//! client token. glgate decides each request against a YAML allowlist policy,
//! forwards only what is allowed with the real GitLab token (which never
//! leaves it), and audits every decision. See `ARCHITECTURE.md` for the pipeline.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(unreachable_pub)]

pub(crate) mod admin;
pub mod audit;
pub mod auth;
pub mod canonical;
pub mod cli;
pub mod config;
pub mod credential;
pub(crate) mod diagnostic;
pub(crate) mod doctor;
pub(crate) mod gateway;
pub(crate) mod gitlab;
pub(crate) mod labels;
pub(crate) mod listener;
pub(crate) mod metrics;
pub mod policy;
pub mod proxy;
pub(crate) mod ratelimit;
pub(crate) mod review;
pub(crate) mod schema;
pub(crate) mod scope;
pub mod server;
pub(crate) mod tls;
pub(crate) mod upstream;
pub(crate) mod webhooks;

/// The spool's enqueue benchmark (`benches/spool.rs`); not an API.
#[doc(hidden)]
pub use webhooks::spool::{EnqueueFigures, measure_enqueue};
