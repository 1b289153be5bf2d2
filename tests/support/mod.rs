//! Shared test support: the sandbox and the HTTP client.

pub mod client;
pub mod sandbox;
pub mod upstreams;
