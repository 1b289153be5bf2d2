//! `METHOD SP target` → `RequestHead::parse`. Never panics; when it accepts,
//! the target round-trips byte for byte, re-parses to the same head, and every
//! segment is decoded exactly once and holds no dot, empty, `%`, backslash or
//! control part; the query is what Rack reads (`reference_router::check_head`).

#![no_main]

use glgate::canonical::RequestHead;
use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../tests/support/reference_router.rs"]
mod reference_router;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (method, target) = text.split_once(' ').unwrap_or(("GET", text));
    let Ok(head) = RequestHead::parse(method, target) else {
        return;
    };
    // hyper (http::Uri) only hands over visible-ASCII targets; a raw space
    // or non-ASCII byte in a query never reaches glgate, so the reference
    // comparison is for those.
    if !target.bytes().all(|b| b.is_ascii_graphic()) {
        return;
    }
    if let Err(problem) = reference_router::check_head(&head, target) {
        panic!("{method} {target:?}: {problem}");
    }
    let again = RequestHead::parse(method, head.target());
    assert_eq!(again.as_ref(), Ok(&head), "re-parsing {target:?}");
});
