//! The attack suite: threat classes 1 to 13 (docs/threat-model.md), each a table of concrete
//! requests sent to a real glgate in front of the recording fake GitLab.
//!
//! Every row says what the client must get (glgate's refusal and its `reason`
//! code, the HTTP layer's own refusal, glgate's local answer, or GitLab's
//! answer) and, read from the fake's record, what GitLab must receive: nothing
//! for a refusal; for an allowed request exactly the checked method, target
//! bytes and body, glgate's token in `private-token`, the pinned `Host`, only
//! allowlisted headers, and nothing of the client's credentials.
//!
//! Rows travel as raw HTTP/1.1 bytes (nothing normalised), over HTTP/2 with
//! hyper's client (prior knowledge), or as hand-written HTTP/2 frames for what
//! hyper's client refuses to send.
//!
//! `harness/` owns the rows, the transports, the checks and the runners; each
//! `class_NN_*` module holds one class's tables and its test.

// Integration tests: a failed step stops the test with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/mod.rs"]
mod support;

mod harness;

mod class_01_encoded_separators;
mod class_02_dot_segments;
mod class_03_double_encoding;
mod class_04_aliases;
mod class_05_empty_segments;
mod class_06_params_fragments_queries;
mod class_07_control_bytes_and_encodings;
mod class_08_targets_host_forwarding_headers;
mod class_09_request_smuggling;
mod class_10_hop_by_hop_and_overrides;
mod class_11_query_and_body_merge;
mod class_12_credentials_and_impersonation;
mod class_13_responses;
