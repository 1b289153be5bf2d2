//! glgate: a self-hosted security proxy for the GitLab REST API.
//!
//! A third party calls glgate exactly as it would call GitLab, with a glgate
//! client token. glgate decides each request against a YAML allowlist policy,
//! forwards only what is allowed with the real GitLab token (which never
//! leaves it), and audits every decision. See `ARCHITECTURE.md` for the pipeline.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod audit;
pub mod auth;
pub mod canonical;
pub mod cli;
pub mod config;
pub mod credential;
pub mod diagnostic;
pub mod doctor;
pub mod gateway;
pub mod gitlab;
pub mod labels;
pub mod metrics;
pub mod policy;
pub mod proxy;
pub mod ratelimit;
pub mod review;
pub mod schema;
pub mod scope;
pub mod server;
pub mod tls;
pub mod upstream;
