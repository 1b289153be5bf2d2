//! Shared test support: the sandbox, the HTTP client, misbehaving upstreams,
//! test certificates and log capture.

pub mod binary;
pub mod client;
pub mod logs;
pub mod receiver;
pub mod sandbox;
pub mod tls;
pub mod upstreams;
