//! `Content-Type` (first line; empty = none) and body bytes → `parse_body`.
//! Never panics; when it accepts, every name is non-empty, bracket-free and
//! control-free, every value holds no control character but tab, CR and LF,
//! and the names are those GitLab reads (Rack for forms, the object's members
//! for JSON).

#![no_main]

use glgate::canonical::{ParamSource, ParamValue};
use glgate::policy::parse_body;
use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../tests/support/reference_router.rs"]
mod reference_router;

fn text_ok(value: &str) -> bool {
    !value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let Ok(content_type) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let content_type = (!content_type.is_empty()).then_some(content_type);
    let body = data.get(split + 1..).unwrap_or_default();
    let Ok(params) = parse_body(content_type, body) else {
        return;
    };
    for param in &params {
        let name = &param.name;
        assert!(!name.is_empty(), "empty name from {body:?}");
        assert!(!name.contains(['[', ']']), "bracketed name {name:?}");
        assert!(
            text_ok(name) && !name.contains(['\t', '\n', '\r']),
            "name {name:?}"
        );
        assert_eq!(param.source, ParamSource::Body);
        match &param.value {
            ParamValue::Scalar(value) => assert!(text_ok(value), "value {value:?}"),
            ParamValue::List(items) => assert!(items.iter().all(|v| text_ok(v)), "{items:?}"),
            ParamValue::Null => {}
        }
    }
    // The names GitLab reads are the names glgate checked.
    let reference = reference_router::body_params(content_type, body)
        .unwrap_or_else(|e| panic!("glgate parsed a body GitLab refuses ({e}): {body:?}"));
    let mut expected: Vec<&str> = reference.iter().map(|p| p.name.as_str()).collect();
    let mut actual: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
    expected.sort_unstable();
    expected.dedup();
    actual.sort_unstable();
    actual.dedup();
    assert_eq!(expected, actual, "names of {content_type:?} body {body:?}");
});
