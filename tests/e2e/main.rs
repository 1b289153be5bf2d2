//! End-to-end tests: a real glgate (in process, or the `glgate` binary as a
//! process) in front of the recording fake GitLab or a misbehaving upstream.
//! One test binary, one module per area, so the library is linked once.
//!
//! Everything here runs in one process and in parallel: a check on something
//! the process shares (the captured log) is tied to the test's own sandbox
//! (its folder, its request ids), never to "some line somewhere".

// Integration tests: a failed step stops the test with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/mod.rs"]
mod support;

mod abuse;
mod cli;
mod cli_conventions;
mod clients;
mod credentials;
mod doctor;
mod faults;
mod first_day;
mod forwarding;
mod hardening;
mod idle;
mod layout;
mod listeners;
mod observability;
mod operations;
mod ownership;
mod scope;
mod shadow;
mod tls;
mod tools;
mod webhook_spool;
mod webhooks;
mod webhooks_policy;
