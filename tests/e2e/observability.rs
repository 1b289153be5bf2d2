//! What operators watch: the metrics on `/metrics` of a real server (build
//! info, requests in flight, open connections, request duration, TLS
//! certificate expiry), the `doctor` line for the TLS certificate, and the
//! observability pack in deploy/observability/ (every metric its dashboard
//! and alerting rules name exists on `/metrics`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::client::{get, send};
use crate::support::sandbox::{Sandbox, SandboxOptions};
use crate::support::tls::{Leaf, TestCa};
use crate::support::upstreams::slow_upstream;
use http::Version;

/// Families labelled by client (or by what a request was), which get a
/// series only at their first event.
const LABELLED_ON_FIRST_EVENT: &[&str] = &[
    "glgate_requests",
    "glgate_shadow_disagreements",
    "glgate_scope_hidden_items",
];

/// The client's scope: `acme` but not `acme/secret-stuff` (the fake GitLab
/// has groups outside it, which lists then hide).
const SCOPE: &str = "    scope:\n      groups: [acme]\n      exclude: [acme/secret-stuff]\n";

/// A shadow policy that allows only `/user`: listing groups disagrees.
const SHADOW: &str =
    "version: 1\nname: only-me\nrules:\n  - id: me\n    methods: [GET]\n    paths: [/user]\n";

/// One scrape of `/metrics`: the type of each family, and each sample.
struct Scrape {
    text: String,
    /// Family name (as in `# TYPE`) to its type.
    types: BTreeMap<String, String>,
    /// `name{labels}` (labels as exposed) to value.
    samples: Vec<(String, String, f64)>,
}

impl Scrape {
    fn parse(text: String) -> Scrape {
        let mut types = BTreeMap::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(declaration) = line.strip_prefix("# TYPE ") {
                let (name, kind) = declaration.split_once(' ').unwrap();
                types.insert(name.to_owned(), kind.to_owned());
            } else if !line.starts_with('#') && !line.is_empty() {
                let (series, value) = line.rsplit_once(' ').unwrap();
                let (name, labels) = match series.split_once('{') {
                    Some((name, labels)) => (name, labels.trim_end_matches('}')),
                    None => (series, ""),
                };
                samples.push((name.to_owned(), labels.to_owned(), value.parse().unwrap()));
            }
        }
        Scrape {
            text,
            types,
            samples,
        }
    }

    /// The value of the series `name` whose labels are exactly `labels`.
    fn value(&self, name: &str, labels: &str) -> Option<f64> {
        self.samples
            .iter()
            .find(|(n, l, _)| n == name && l == labels)
            .map(|(_, _, v)| *v)
    }

    /// The value of the unlabelled series `name`, which must exist.
    fn get(&self, name: &str) -> f64 {
        self.value(name, "")
            .unwrap_or_else(|| panic!("no series {name} in:\n{}", self.text))
    }

    /// The sum of every series of `name`.
    fn sum(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, _, v)| v)
            .sum()
    }

    /// The family an exposed sample name belongs to: `_total` of counters,
    /// `_bucket`/`_sum`/`_count` of histograms stripped; `None` when no
    /// family of the right type has that name.
    fn family_of(&self, exposed: &str) -> Option<String> {
        let typed = |base: &str, kind: &str| self.types.get(base).is_some_and(|t| t == kind);
        if let Some(base) = exposed.strip_suffix("_total")
            && typed(base, "counter")
        {
            return Some(base.to_owned());
        }
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = exposed.strip_suffix(suffix)
                && typed(base, "histogram")
            {
                return Some(base.to_owned());
            }
        }
        // Gauges, and a histogram named by its family (in prose).
        self.types
            .get(exposed)
            .filter(|t| *t == "gauge" || *t == "histogram")
            .map(|_| exposed.to_owned())
    }
}

async fn scrape(sb: &Sandbox) -> Scrape {
    let url = format!("http://{}/metrics", sb.server.admin_addr.unwrap());
    let reply = send(Version::HTTP_11, "GET", &url, &[], b"").await;
    assert_eq!(reply.status, 200);
    Scrape::parse(String::from_utf8(reply.body.to_vec()).unwrap())
}

/// Scrapes until `done` holds (5 s at most), returning the last scrape.
async fn scrape_until(sb: &Sandbox, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let scrape = scrape(sb).await;
        if done(&scrape) {
            return scrape;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} never held; last scrape:\n{}",
            scrape.text
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn build_info_labels() -> String {
    format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))
}

#[tokio::test]
async fn operator_metrics_are_there_from_the_start() {
    let sb = Sandbox::start().await;
    let scrape = scrape(&sb).await;
    assert_eq!(
        scrape.value("glgate_build_info", &build_info_labels()),
        Some(1.0),
        "{}",
        scrape.text
    );
    assert_eq!(scrape.get("glgate_requests_in_flight"), 0.0);
    assert_eq!(scrape.get("glgate_request_duration_seconds_count"), 0.0);
    assert_eq!(scrape.get("glgate_request_duration_seconds_sum"), 0.0);
    assert_eq!(
        scrape.value("glgate_open_connections", "listener=\"proxy\""),
        Some(0.0)
    );
    // This scrape's own connection is open.
    assert!(
        scrape
            .value("glgate_open_connections", "listener=\"admin\"")
            .unwrap()
            >= 1.0
    );
    // Without TLS there is no certificate: 0.
    assert_eq!(
        scrape.get("glgate_tls_certificate_expiry_timestamp_seconds"),
        0.0
    );
    // The labelled series whose labels are known in advance.
    for (name, labels) in [
        ("glgate_policy_reloads_total", "result=\"success\""),
        ("glgate_policy_reloads_total", "result=\"failure\""),
        ("glgate_scope_lookups_total", "result=\"hit\""),
        ("glgate_scope_lookups_total", "result=\"miss\""),
        ("glgate_webhook_deliveries_total", "outcome=\"delivered\""),
        ("glgate_webhook_deliveries_total", "outcome=\"retry\""),
        ("glgate_webhook_deliveries_total", "outcome=\"dead_letter\""),
        ("glgate_webhook_deliveries_total", "outcome=\"drop\""),
        ("glgate_webhooks_received_total", "outcome=\"accepted\""),
        ("glgate_webhooks_received_total", "outcome=\"dropped\""),
        ("glgate_webhooks_received_total", "outcome=\"refused\""),
        ("glgate_webhooks_dropped_total", "reason=\"out_of_scope\""),
    ] {
        assert_eq!(scrape.value(name, labels), Some(0.0), "{name}{{{labels}}}");
    }
    for name in [
        "glgate_webhook_queue_depth",
        "glgate_webhook_queue_bytes",
        "glgate_webhook_queue_oldest_age_seconds",
        "glgate_webhook_dead_letters",
        "glgate_webhook_delivery_duration_seconds_count",
    ] {
        assert_eq!(scrape.get(name), 0.0, "{name}");
    }
    // Every family has a series from the start, but those whose labels
    // come from events.
    for family in scrape.types.keys() {
        let has_series = scrape
            .samples
            .iter()
            .any(|(name, _, _)| scrape.family_of(name).as_deref() == Some(family.as_str()));
        assert!(
            has_series || LABELLED_ON_FIRST_EVENT.contains(&family.as_str()),
            "{family} has no series at start:\n{}",
            scrape.text
        );
    }
}

#[tokio::test]
async fn in_flight_connections_and_duration_follow_the_requests() {
    let sb = Sandbox::start().await;
    let allowed = 3;
    for _ in 0..allowed {
        assert_eq!(
            get(&sb.url("/api/v4/user"), &sb.client_token).await.status,
            200
        );
    }
    let refused = 2;
    for _ in 0..refused {
        assert_eq!(
            get(&sb.url("/api/v4/user"), "not-a-token").await.status,
            401
        );
    }
    let requests = f64::from(allowed + refused);
    // Each request's client is gone: its connection closes, and nothing is
    // in flight any more.
    let scrape = scrape_until(&sb, "no request in flight, no proxy connection", |s| {
        s.get("glgate_requests_in_flight") == 0.0
            && s.value("glgate_open_connections", "listener=\"proxy\"") == Some(0.0)
    })
    .await;
    assert_eq!(
        scrape.get("glgate_request_duration_seconds_count"),
        requests,
        "{}",
        scrape.text
    );
    assert_eq!(scrape.sum("glgate_requests_total"), requests);
    assert!(scrape.get("glgate_request_duration_seconds_sum") > 0.0);
    // Only the allowed ones went to GitLab.
    assert_eq!(
        scrape.get("glgate_upstream_latency_seconds_count"),
        f64::from(allowed)
    );
    let inf = scrape
        .value("glgate_request_duration_seconds_bucket", "le=\"+Inf\"")
        .unwrap();
    assert_eq!(inf, requests);
}

#[tokio::test]
async fn a_request_waiting_on_gitlab_is_in_flight_on_an_open_connection() {
    let upstream = slow_upstream(Duration::from_millis(800)).await;
    let sb = Sandbox::with(SandboxOptions {
        upstream_url: Some(format!("http://{upstream}")),
        ..SandboxOptions::default()
    })
    .await;
    let url = sb.url("/api/v4/user");
    let token = sb.client_token.clone();
    let request = tokio::spawn(async move { get(&url, &token).await.status });
    scrape_until(&sb, "one request in flight on one proxy connection", |s| {
        s.get("glgate_requests_in_flight") == 1.0
            && s.value("glgate_open_connections", "listener=\"proxy\"") == Some(1.0)
    })
    .await;
    assert_eq!(request.await.unwrap(), 200);
    let scrape = scrape_until(&sb, "nothing in flight", |s| {
        s.get("glgate_requests_in_flight") == 0.0
            && s.value("glgate_open_connections", "listener=\"proxy\"") == Some(0.0)
    })
    .await;
    assert_eq!(scrape.get("glgate_request_duration_seconds_count"), 1.0);
    assert!(scrape.get("glgate_request_duration_seconds_sum") >= 0.8);
}

/// When a DER certificate stops being valid, in Unix seconds.
fn not_after(leaf: &Leaf) -> i64 {
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.cert.as_ref()).unwrap();
    parsed.validity().not_after.timestamp()
}

fn install(dir: &Path, leaf: &Leaf) {
    // Key first: a reload in between sees a mismatched pair and keeps the old one.
    std::fs::write(dir.join("server.key"), &leaf.key_pem).unwrap();
    std::fs::write(dir.join("server.crt"), &leaf.cert_pem).unwrap();
}

fn tls_config(dir: &Path) -> String {
    format!(
        "tls:\n  cert_file: {}\n  key_file: {}\n  reload_interval: 50ms\n",
        dir.join("server.crt").display(),
        dir.join("server.key").display()
    )
}

#[tokio::test]
async fn the_tls_certificate_expiry_is_exposed_and_follows_a_reload() {
    let ca = TestCa::new("glgate server CA");
    let pki = tempfile::tempdir().unwrap();
    let first = ca.leaf(&["localhost"], false);
    install(pki.path(), &first);
    let sb = Sandbox::with(SandboxOptions {
        config_extra: tls_config(pki.path()),
        ..SandboxOptions::default()
    })
    .await;
    let scrape = scrape(&sb).await;
    assert_eq!(
        scrape.get("glgate_tls_certificate_expiry_timestamp_seconds"),
        not_after(&first) as f64,
        "{}",
        scrape.text
    );
    // A renewed certificate (here an expired one, which glgate serves with
    // an error in its log) moves the gauge to its end.
    let renewed = ca.leaf(&["localhost"], true);
    // Past the file systems' timestamp granularity, so the change is seen.
    tokio::time::sleep(Duration::from_millis(20)).await;
    install(pki.path(), &renewed);
    let want = not_after(&renewed) as f64;
    scrape_until(&sb, "the renewed certificate's end", |s| {
        s.get("glgate_tls_certificate_expiry_timestamp_seconds") == want
    })
    .await;
}

/// Every `glgate_…` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    regex::Regex::new(r"glgate_[a-z0-9_]+")
        .unwrap()
        .find_iter(text)
        .map(|m| m.as_str().to_owned())
        .collect()
}

/// Every string in a JSON value, depth first.
fn strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

fn observability_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/observability")
        .join(name)
}

/// The dashboard: valid JSON, each panel querying glgate's metrics; returns
/// every string in it.
fn dashboard_strings() -> Vec<String> {
    let text = std::fs::read_to_string(observability_file("glgate-dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(dashboard["uid"], "glgate");
    let panels = dashboard["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    for panel in panels {
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "panel ids repeat"
        );
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{} has no query", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            assert!(
                !metric_names(expr).is_empty(),
                "{}: {expr} names no glgate metric",
                panel["title"]
            );
        }
    }
    let mut out = Vec::new();
    strings(&dashboard, &mut out);
    out
}

/// The alerting rules: valid YAML in Prometheus's rule-file shape, each rule
/// with an expression on glgate's metrics, a severity and a summary; returns
/// every string in them.
fn rules_strings() -> Vec<String> {
    let text = std::fs::read_to_string(observability_file("glgate-rules.yaml")).unwrap();
    let rules: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let mut alerts = BTreeSet::new();
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let alert = rule["alert"].as_str().unwrap();
            assert!(alerts.insert(alert.to_owned()), "{alert} twice");
            let expr = rule["expr"].as_str().unwrap();
            assert!(!metric_names(expr).is_empty(), "{alert}: no glgate metric");
            assert!(
                rule["labels"]["severity"].is_string(),
                "{alert}: no severity"
            );
            assert!(
                rule["annotations"]["summary"].is_string(),
                "{alert}: no summary"
            );
        }
    }
    // The alerts issue 17 asks for.
    for metric in [
        "glgate_upstream_token_expiry_timestamp_seconds",
        "glgate_upstream_credential_rejections_total",
        "glgate_audit_events_dropped_total",
        "glgate_policy_reloads_total",
        "glgate_tls_certificate_expiry_timestamp_seconds",
        "glgate_restart_pending",
        "glgate_requests_total",
        "glgate_webhook_dead_letters",
        "glgate_webhook_queue_oldest_age_seconds",
    ] {
        assert!(text.contains(metric), "no rule on {metric}");
    }
    let mut out = Vec::new();
    strings(&rules, &mut out);
    out
}

#[tokio::test]
async fn every_metric_the_dashboard_and_rules_name_is_on_metrics() {
    // A scoped client with a shadow policy: one list of groups gives every
    // family a series (families without one are not on /metrics at all).
    let dir = tempfile::tempdir().unwrap();
    let shadow = dir.path().join("shadow.yaml");
    std::fs::write(&shadow, SHADOW).unwrap();
    let sb = Sandbox::with(SandboxOptions {
        client_extra: format!("{SCOPE}    shadow_policy: {}\n", shadow.display()),
        ..SandboxOptions::default()
    })
    .await;
    let reply = get(&sb.url("/api/v4/groups?per_page=100"), &sb.client_token).await;
    assert_eq!(reply.status, 200);
    let scrape = scrape_until(&sb, "the request is counted", |s| {
        s.get("glgate_requests_in_flight") == 0.0
    })
    .await;
    for family in LABELLED_ON_FIRST_EVENT {
        assert!(
            scrape.types.contains_key(*family),
            "{family} is not on /metrics:\n{}",
            scrape.text
        );
    }
    let mut missing = Vec::new();
    let mut used = BTreeSet::new();
    for (file, texts) in [
        ("glgate-dashboard.json", dashboard_strings()),
        ("glgate-rules.yaml", rules_strings()),
    ] {
        for name in texts.iter().flat_map(|t| metric_names(t)) {
            match scrape.family_of(&name) {
                Some(family) => {
                    used.insert(family);
                }
                None => missing.push(format!("{file}: {name}")),
            }
        }
    }
    assert!(
        missing.is_empty(),
        "named but not on /metrics: {missing:?}\n{}",
        scrape.text
    );
    // And the dashboard or a rule shows every family glgate exposes.
    let unused: Vec<_> = scrape
        .types
        .keys()
        .filter(|family| !used.contains(*family))
        .collect();
    assert!(
        unused.is_empty(),
        "not on the dashboard or in a rule: {unused:?}"
    );
}

/// A config for the fake GitLab at `url` serving the TLS pair in `dir`.
fn doctor_setup(dir: &Path, url: &str, token: &str) -> PathBuf {
    std::fs::write(
        dir.join("policy.yaml"),
        crate::support::sandbox::ECHOES_POLICY,
    )
    .unwrap();
    std::fs::write(dir.join("gitlab-token"), format!("{token}\n")).unwrap();
    let config = dir.join("glgate.yaml");
    std::fs::write(
        &config,
        format!(
            "version: 1\nlisten: 127.0.0.1:0\nupstream:\n  url: {url}\n  token_file: gitlab-token\n  connect_timeout: 2s\nclients:\n  - name: echoes\n    token_sha256: \"{}\"\n    policy: policy.yaml\n{}",
            "a".repeat(64),
            tls_config(dir)
        ),
    )
    .unwrap();
    config
}

async fn doctor(config: &Path) -> (i32, String) {
    let config = config.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_glgate"))
            .arg("doctor")
            .arg("--config")
            .arg(config)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

/// A self-signed certificate for localhost ending in `days` days.
fn leaf_ending_in(days: i64) -> (Leaf, String) {
    let end = glgate::credential::now_unix() + days * 86_400 + 3_600;
    let date = glgate::credential::format_date(end);
    let parts: Vec<u16> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_after = rcgen::date_time_ymd(
        i32::from(parts[0]),
        u8::try_from(parts[1]).unwrap(),
        u8::try_from(parts[2]).unwrap(),
    );
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let leaf = Leaf {
        cert: cert.der().clone(),
        key: rustls_pki_types::PrivateKeyDer::Pkcs8(rustls_pki_types::PrivatePkcs8KeyDer::from(
            key.serialize_der(),
        )),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    };
    (leaf, date)
}

#[tokio::test]
async fn doctor_reports_how_long_the_tls_certificate_is_valid() {
    let gitlab = fake_gitlab::FakeGitlab::start(fake_gitlab::FakeOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = doctor_setup(dir.path(), &gitlab.base_url(), gitlab.token());

    let valid = TestCa::new("ca").leaf(&["localhost"], false);
    install(dir.path(), &valid);
    let end = glgate::credential::format_date(not_after(&valid));
    let (code, out) = doctor(&config).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("✓ TLS certificate: valid until {end}, in ")),
        "{out}"
    );

    let (soon, date) = leaf_ending_in(10);
    install(dir.path(), &soon);
    let (code, out) = doctor(&config).await;
    assert_eq!(code, 0, "a warning does not fail doctor: {out}");
    assert!(
        out.contains(&format!("! TLS certificate: expires {date}, in ")),
        "{out}"
    );
    assert!(out.contains("renew it before then"), "{out}");

    let expired = TestCa::new("ca").leaf(&["localhost"], true);
    install(dir.path(), &expired);
    let (code, out) = doctor(&config).await;
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("✗ TLS certificate: expired 2020-12-31, "),
        "{out}"
    );
    assert!(out.contains("clients refuse the handshake"), "{out}");
}
