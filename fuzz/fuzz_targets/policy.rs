//! A request against the Echoes policy: byte 0 picks the method, byte 1 the
//! `Content-Type`, then the target up to the first `\n`, then the body.
//! When glgate allows it, the reference router reading the forwarded target
//! picks the same template and binds the same decoded values (raw and
//! Mustermann literal matching: Echoes has no literal/param overlap), the
//! head invariants hold, and the Rack-style merged query + body sets no name
//! twice, carries no credential name, and satisfies the rule's constraints.

#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use glgate::canonical::RequestHead;
use glgate::policy::{Decision, Policy, parse_body};
use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../tests/support/reference_router.rs"]
mod reference_router;

use reference_router::{Literals, Route};

static POLICY: LazyLock<Policy> = LazyLock::new(|| {
    Policy::compile(
        Path::new("policies/echoes.yaml"),
        include_str!("../../policies/echoes.yaml"),
    )
    .expect("the Echoes policy compiles")
});
static ROUTES: LazyLock<Vec<Route>> = LazyLock::new(|| reference_router::routes_of(&POLICY));

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    Some("application/json; charset=utf-8"),
    Some("application/x-www-form-urlencoded; charset=UTF-8"),
    Some("text/plain"),
    Some("multipart/form-data; boundary=x"),
    Some("APPLICATION/JSON"),
];

fuzz_target!(|data: &[u8]| {
    let [method, content_type, rest @ ..] = data else {
        return;
    };
    let method = METHODS[usize::from(*method) % METHODS.len()];
    let content_type = CONTENT_TYPES[usize::from(*content_type) % CONTENT_TYPES.len()];
    let split = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
    let body = rest.get(split + 1..).unwrap_or_default();
    let Ok(target) = std::str::from_utf8(&rest[..split]) else {
        return;
    };
    let Ok(head) = RequestHead::parse(method, target) else {
        return;
    };
    let Ok(matched) = POLICY.route(&head) else {
        return;
    };
    // The proxy reads no body at all for a rule without params.
    if !matched.accepts_body() && !body.is_empty() {
        return;
    }
    let Ok(params) = parse_body(content_type, body) else {
        return;
    };
    let Decision::Allow(permit) = matched.check(head.query(), &params) else {
        return;
    };
    if !target.bytes().all(|b| b.is_ascii_graphic()) {
        return; // hyper never delivers such a target.
    }
    let fail = |problem: String| -> ! {
        panic!(
            "{method} {target:?} ({content_type:?}, body {:?}) allowed by {}: {problem}",
            String::from_utf8_lossy(body),
            permit.rule()
        )
    };
    reference_router::check_head(&head, target).unwrap_or_else(|e| fail(e));
    for literals in [Literals::Raw, Literals::Mustermann] {
        reference_router::check_route(&ROUTES, &head, &permit, literals)
            .unwrap_or_else(|e| fail(e));
    }
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let query = reference_router::rack_params(query, "&;").unwrap_or_else(|e| fail(e));
    let body = reference_router::body_params(content_type, body).unwrap_or_else(|e| fail(e));
    reference_router::check_merged(permit.rule(), &query, &body).unwrap_or_else(|e| fail(e));
});
