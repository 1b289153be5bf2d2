//! Micro-benchmarks of glgate's per-request work, through the library's
//! public API (criterion; `cargo bench --bench micro`):
//!
//! - `policy/echoes/*`: the decision (route + parameter check) for the shipped
//!   Echoes policy, on an allowed request and on a refused one;
//! - `policy/synthetic/N`: the same on generated policies of 10 to 10,000
//!   rules (the matcher is a trie: its cost must not grow with N);
//! - `canonical/*`: reading a request target into a `RequestHead`;
//! - `rewrite/link`: rewriting a paginated response's `Link` header;
//! - `body/hook-create`: parsing and checking a webhook creation body.

// Benchmarks: a setup that fails stops the run with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use glgate::canonical::RequestHead;
use glgate::config::BaseUrl;
use glgate::policy::{Decision, Policy, parse_body};
use glgate::proxy::rewrite::UrlRewriter;

const ECHOES: &str = include_str!("../policies/echoes.yaml");

fn echoes() -> Policy {
    Policy::compile(Path::new("policies/echoes.yaml"), ECHOES).unwrap()
}

/// A policy of `rules` read rules, each with two templates below a project
/// (`/projects/{project}/resN` and `/projects/{project}/resN/{iid}`), plus one
/// write rule with body parameters every tenth rule.
fn synthetic(rules: usize) -> Policy {
    let mut yaml = String::from("version: 1\nname: synthetic\nrules:\n");
    for n in 0..rules {
        if n % 10 == 9 {
            yaml.push_str(&format!(
                "  - id: r{n}\n    methods: [PUT]\n    paths:\n      - /projects/{{project}}/res{n}/{{iid}}\n    \
                 params:\n      title: {{ type: any, max_length: 255 }}\n      labels: {{ pattern: 'x/.+', list: true }}\n"
            ));
        } else {
            yaml.push_str(&format!(
                "  - id: r{n}\n    methods: [GET]\n    paths:\n      - /projects/{{project}}/res{n}\n      - /projects/{{project}}/res{n}/{{iid}}\n"
            ));
        }
    }
    Policy::compile(Path::new("synthetic.yaml"), &yaml).unwrap()
}

fn allowed(decision: &Decision) -> bool {
    matches!(decision, Decision::Allow(_))
}

fn policy(c: &mut Criterion) {
    let echoes = echoes();
    let mr_list = RequestHead::parse(
        "GET",
        "/api/v4/projects/acme%2Fbackend/merge_requests?state=opened&per_page=20",
    )
    .unwrap();
    let refused = RequestHead::parse("GET", "/api/v4/projects/101/repository/files/a").unwrap();
    assert!(allowed(&echoes.evaluate(&mr_list, &[])));
    assert!(!allowed(&echoes.evaluate(&refused, &[])));
    let mut group = c.benchmark_group("policy/echoes");
    group.bench_function("allowed-mr-list", |b| {
        b.iter(|| allowed(&echoes.evaluate(black_box(&mr_list), &[])))
    });
    group.bench_function("refused-file", |b| {
        b.iter(|| allowed(&echoes.evaluate(black_box(&refused), &[])))
    });
    group.finish();

    let mut group = c.benchmark_group("policy/synthetic");
    for rules in [10, 100, 1_000, 10_000] {
        let policy = synthetic(rules);
        // A rule from the middle of the file, with a param and a query.
        let target = format!(
            "/api/v4/projects/acme%2Fbackend/res{}/42?per_page=20",
            rules / 2
        );
        let head = RequestHead::parse("GET", &target).unwrap();
        assert!(allowed(&policy.evaluate(&head, &[])), "{target}");
        group.bench_with_input(BenchmarkId::from_parameter(rules), &head, |b, head| {
            b.iter(|| allowed(&policy.evaluate(black_box(head), &[])))
        });
    }
    group.finish();
}

fn canonical(c: &mut Criterion) {
    let mut group = c.benchmark_group("canonical");
    for (name, target) in [
        ("project-id", "/api/v4/projects/101"),
        ("project-path", "/api/v4/projects/acme%2Fbackend"),
        (
            "mr-list-query",
            "/api/v4/projects/101/merge_requests?state=opened&per_page=20&order_by=updated_at&labels[]=a&labels[]=b",
        ),
    ] {
        RequestHead::parse("GET", target).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| RequestHead::parse("GET", black_box(target)).is_ok())
        });
    }
    group.finish();
}

fn rewrite(c: &mut Criterion) {
    let upstream = BaseUrl::parse("https://gitlab.acme.com").unwrap();
    let public = BaseUrl::parse("https://glgate.acme.com").unwrap();
    let rewriter = UrlRewriter::new([&upstream, &upstream], &public);
    let base = "https://gitlab.acme.com/api/v4/projects/101/merge_requests?id=101&order_by=created_at&page";
    let link = format!(
        "<{base}=1&per_page=20&sort=desc&state=opened>; rel=\"prev\", <{base}=3&per_page=20&sort=desc&state=opened>; rel=\"next\", \
         <{base}=1&per_page=20&sort=desc&state=opened>; rel=\"first\", <{base}=9&per_page=20&sort=desc&state=opened>; rel=\"last\""
    );
    assert!(
        rewriter
            .link(&link)
            .contains("https://glgate.acme.com/api/v4/")
    );
    c.bench_function("rewrite/link", |b| {
        b.iter(|| rewriter.link(black_box(&link)))
    });
}

fn body(c: &mut Criterion) {
    let echoes = echoes();
    let head = RequestHead::parse("POST", "/api/v4/projects/101/hooks").unwrap();
    let hook = br#"{"url":"https://api.echoeshq.com/hooks/gitlab/6f1c2a","token":"s3cr3t-delivery-token","push_events":false,"merge_requests_events":true,"note_events":true,"pipeline_events":true,"tag_push_events":false,"releases_events":true,"enable_ssl_verification":true}"#;
    let check = || {
        let matched = echoes.route(&head).unwrap();
        let params = parse_body(Some("application/json"), black_box(hook)).unwrap();
        allowed(&matched.check(head.query(), &params))
    };
    assert!(check());
    c.bench_function("body/hook-create", |b| b.iter(check));
}

criterion_group!(benches, policy, canonical, rewrite, body);
criterion_main!(benches);
