//! The worker against real receivers on 127.0.0.1 (plain http, and https
//! with a certificate made at test time), with a real spool and a real
//! audit file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU16, Ordering};

use http::{HeaderMap, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::*;
use crate::config::AuditOutput;
use crate::metrics::Metrics;
use crate::webhooks::spool::{OpenMode, Replay, SpoolSettings};

/// What a receiver got.
#[derive(Clone, Debug)]
struct Got {
    headers: HeaderMap,
    body: Bytes,
}

/// A receiver that records every request and answers `status`.
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Got>>>,
    status: Arc<AtomicU16>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    async fn start(status: u16) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Receiver::serve(listener, status, None)
    }

    async fn start_on(addr: SocketAddr, status: u16) -> Receiver {
        let listener = TcpListener::bind(addr).await.unwrap();
        Receiver::serve(listener, status, None)
    }

    async fn start_tls(status: u16, tls: tokio_rustls::TlsAcceptor) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Receiver::serve(listener, status, Some(tls))
    }

    fn serve(
        listener: TcpListener,
        status: u16,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Receiver {
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(status));
        let (for_task, status_for_task) = (got.clone(), status.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (got, status, tls) = (for_task.clone(), status_for_task.clone(), tls.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request: http::Request<Incoming>| {
                        let (got, status) = (got.clone(), status.clone());
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body.collect().await.unwrap().to_bytes();
                            got.lock().unwrap().push(Got {
                                headers: parts.headers,
                                body,
                            });
                            let mut response = Response::new(Full::new(Bytes::from("ok")));
                            *response.status_mut() =
                                StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap();
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        Receiver {
            addr,
            got,
            status,
            task,
        }
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }
}

/// Every delivery goes to `url` with `token`, or is undeliverable.
struct Fixed {
    url: Mutex<String>,
    token: Option<String>,
    undeliverable: Option<&'static str>,
}

impl Fixed {
    fn to(url: String) -> Arc<Fixed> {
        Arc::new(Fixed {
            url: Mutex::new(url),
            token: Some("client-secret-7f3a".into()),
            undeliverable: None,
        })
    }
}

impl Destinations for Fixed {
    fn resolve(&self, _delivery: &QueuedDelivery) -> Result<Destination, Undeliverable> {
        if let Some(reason) = self.undeliverable {
            return Err(Undeliverable { reason });
        }
        Ok(Destination {
            url: self.url.lock().unwrap().clone(),
            token: self.token.clone(),
        })
    }
}

/// A spool, an audit file and a running worker over them.
struct Bench {
    dir: tempfile::TempDir,
    spool: Spool,
    metrics: Metrics,
    stop: watch::Sender<bool>,
    worker: tokio::task::JoinHandle<()>,
}

fn quick() -> DeliverySettings {
    DeliverySettings {
        max_age: Duration::from_secs(60),
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        timeout: Duration::from_secs(3),
        ca_file: None,
        concurrency: 4,
        per_client: 4,
    }
}

impl Bench {
    fn start(destinations: Arc<dyn Destinations>, settings: DeliverySettings) -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(
            &SpoolSettings {
                dir: dir.path().join("spool"),
                max_bytes: 1 << 20,
                max_deliveries: 1000,
                client_share_percent: 100,
            },
            OpenMode::Create,
        )
        .unwrap();
        let audit = AuditSink::start(&AuditOutput::File(dir.path().join("audit.log"))).unwrap();
        let metrics = Metrics::new();
        let worker = Worker::new(
            spool.clone(),
            destinations,
            settings,
            audit,
            metrics.webhooks.clone(),
        )
        .unwrap();
        let (stop, stopped) = watch::channel(false);
        let worker = tokio::spawn(worker.run(stopped));
        Bench {
            dir,
            spool,
            metrics,
            stop,
            worker,
        }
    }

    /// The audit lines written so far.
    fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("audit.log"))
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    async fn until(&self, what: &str, done: impl Fn(&Bench) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        self.worker.await.unwrap();
    }
}

fn delivery(id: &str) -> QueuedDelivery {
    QueuedDelivery {
        id: id.to_owned(),
        client: "echoes".into(),
        sealed: "sealed".into(),
        event: "Push Hook".into(),
        object: "acme/backend".into(),
        object_kind: "project".into(),
        headers: vec![
            ("X-Gitlab-Event".into(), "Push Hook".into()),
            ("X-Gitlab-Event-UUID".into(), "ev-1".into()),
            ("X-Gitlab-Webhook-UUID".into(), "wh-1".into()),
            ("Idempotency-Key".into(), format!("idem-{id}")),
            ("User-Agent".into(), "GitLab/18.0.0".into()),
            // Never relayed, even if a bug kept them.
            ("X-Gitlab-Instance".into(), "https://gitlab.internal".into()),
            ("X-Gitlab-Token".into(), "glgate-own-secret".into()),
        ],
        body: br#"{"object_kind":"push"}"#.to_vec(),
        received_unix_ms: now_ms(),
    }
}

fn decisions(audit: &[serde_json::Value]) -> Vec<String> {
    audit
        .iter()
        .map(|line| line["decision"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_delivery_arrives_with_exactly_the_kept_headers_and_the_clients_token() {
    let receiver = Receiver::start(200).await;
    let bench = Bench::start(Fixed::to(receiver.url()), quick());
    bench.spool.enqueue(delivery("d1")).await.unwrap();
    bench
        .until("delivered", |b| {
            b.spool.stats().depth == 0 && b.audit().len() == 1
        })
        .await;
    let got = receiver.got();
    assert_eq!(got.len(), 1);
    let mut names: Vec<&str> = got[0].headers.keys().map(|n| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "content-length",
            "content-type",
            "host",
            "idempotency-key",
            "x-gitlab-event",
            "x-gitlab-event-uuid",
            "x-gitlab-token",
            "x-gitlab-webhook-uuid",
        ]
    );
    let header = |name: &str| got[0].headers[name].to_str().unwrap().to_owned();
    assert_eq!(header("x-gitlab-token"), "client-secret-7f3a");
    assert_eq!(header("content-type"), "application/json");
    assert_eq!(header("idempotency-key"), "idem-d1");
    assert_eq!(header("x-gitlab-event"), "Push Hook");
    // GitLab's User-Agent names its version: kept back.
    assert_eq!(&got[0].body[..], br#"{"object_kind":"push"}"#);

    let audit = bench.audit();
    let line = &audit[0];
    assert_eq!(line["kind"], "webhook");
    assert_eq!(line["phase"], "attempt");
    assert_eq!(line["decision"], "delivered");
    assert_eq!(line["attempt"], 1);
    assert_eq!(line["status"], 200);
    assert_eq!(line["idempotency_key"], "idem-d1");
    assert_eq!(line["client"], "echoes");
    assert_eq!(line["object"], "acme/backend");
    let text = serde_json::to_string(&audit).unwrap();
    assert!(
        !text.contains("client-secret-7f3a"),
        "the token is in the audit: {text}"
    );
    let metrics = bench.metrics.encode();
    assert!(
        metrics.contains("glgate_webhook_deliveries_total{outcome=\"delivered\"} 1"),
        "{metrics}"
    );
    assert!(!metrics.contains("client-secret-7f3a"));
    bench.stop().await;
}

#[tokio::test]
async fn https_receivers_are_reached_with_the_extra_ca() {
    let (acceptor, ca_pem) = tls_receiver_setup();
    let receiver = Receiver::start_tls(204, acceptor).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let url = format!("https://localhost:{}/hook", receiver.addr.port());

    // Without the CA the certificate is not trusted: retried, not delivered.
    let bench = Bench::start(Fixed::to(url.clone()), quick());
    bench.spool.enqueue(delivery("d1")).await.unwrap();
    bench
        .until("an attempt failed", |b| !b.audit().is_empty())
        .await;
    assert_eq!(bench.audit()[0]["decision"], "retry");
    assert!(receiver.got().is_empty());
    bench.stop().await;

    let bench = Bench::start(
        Fixed::to(url),
        DeliverySettings {
            ca_file: Some(ca_file),
            ..quick()
        },
    );
    bench.spool.enqueue(delivery("d2")).await.unwrap();
    bench
        .until("delivered", |b| b.spool.stats().depth == 0)
        .await;
    assert_eq!(receiver.got().len(), 1);
    assert_eq!(
        receiver.got()[0].headers["x-gitlab-token"],
        "client-secret-7f3a"
    );
    bench.stop().await;
}

#[tokio::test]
async fn a_receiver_down_then_up_gets_the_delivery_later() {
    // A port nothing listens on, for now.
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let bench = Bench::start(Fixed::to(format!("http://{addr}/hook")), quick());
    bench.spool.enqueue(delivery("d1")).await.unwrap();
    bench
        .until("two attempts failed", |b| b.audit().len() >= 2)
        .await;
    let audit = bench.audit();
    assert_eq!(audit[0]["decision"], "retry");
    assert_eq!(audit[0]["reason"], "connect_error");
    assert_eq!(audit[1]["attempt"], 2);
    assert_eq!(bench.spool.stats().depth, 1);

    let receiver = Receiver::start_on(addr, 200).await;
    bench
        .until("delivered", |b| b.spool.stats().depth == 0)
        .await;
    assert_eq!(receiver.got().len(), 1);
    let audit = bench.audit();
    let last = audit.last().unwrap();
    assert_eq!(last["decision"], "delivered");
    assert!(last["attempt"].as_u64().unwrap() >= 3);
    bench.stop().await;
}

#[tokio::test]
async fn a_failing_receiver_is_retried_then_dead_lettered_then_replayed() {
    let receiver = Receiver::start(500).await;
    let bench = Bench::start(
        Fixed::to(receiver.url()),
        DeliverySettings {
            max_age: Duration::from_millis(1000),
            ..quick()
        },
    );
    bench.spool.enqueue(delivery("d1")).await.unwrap();
    bench
        .until("dead-lettered", |b| b.spool.stats().dead == 1)
        .await;
    assert_eq!(bench.spool.stats().depth, 0);
    let attempts = receiver.got().len();
    assert!(
        attempts >= 2,
        "only {attempts} attempts before the dead letter"
    );
    bench
        .until("audited", |b| {
            b.audit()
                .last()
                .is_some_and(|l| l["decision"] == "dead_letter")
        })
        .await;
    let audit = bench.audit();
    let decisions = decisions(&audit);
    assert!(
        decisions[..decisions.len() - 1]
            .iter()
            .all(|d| d == "retry"),
        "{decisions:?}"
    );
    let last = audit.last().unwrap();
    assert_eq!(last["status"], 500);
    assert_eq!(last["reason"], "receiver_status");
    assert_eq!(last["attempt"].as_u64().unwrap() as usize, attempts);
    let dead = bench.spool.dead_letters().await.unwrap();
    assert_eq!(dead[0].last_error, "the receiver answered HTTP 500");
    assert_eq!(dead[0].attempts as usize, attempts);

    // The operator replays: the delivery gets a new max_age window (it is
    // retried, not dead-lettered again at once), and once the receiver is
    // fixed it is delivered.
    let before = receiver.got().len();
    assert_eq!(bench.spool.replay(Replay::All).await.unwrap(), ["d1"]);
    bench
        .until("retried after the replay", |b| {
            b.audit()
                .last()
                .is_some_and(|l| l["decision"] == "retry" && l["attempt"] == 1)
        })
        .await;
    receiver.status.store(200, Ordering::SeqCst);
    bench
        .until("delivered after the replay", |b| {
            b.audit()
                .last()
                .is_some_and(|l| l["decision"] == "delivered")
        })
        .await;
    assert!(receiver.got().len() >= before + 2);
    assert_eq!(bench.spool.stats().depth, 0);
    assert_eq!(bench.spool.stats().dead, 0);
    bench.stop().await;
}

#[tokio::test]
async fn undeliverable_is_kept_as_a_dead_letter_and_out_of_scope_is_dropped() {
    // A destination that is no longer allowed (here: plain http beyond
    // loopback) follows a configuration change: kept, to replay.
    let bench = Bench::start(Fixed::to("http://192.0.2.10/hook".into()), quick());
    bench.spool.enqueue(delivery("d1")).await.unwrap();
    bench.until("settled", |b| b.audit().len() == 1).await;
    let line = &bench.audit()[0];
    assert_eq!(line["decision"], "dead_letter");
    assert_eq!(line["reason"], "destination_not_allowed");
    assert_eq!(bench.spool.stats().depth, 0);
    assert_eq!(bench.spool.stats().dead, 1);
    bench.stop().await;

    let gone = Arc::new(Fixed {
        url: Mutex::new("https://example.test/hook".into()),
        token: None,
        undeliverable: Some("out_of_scope"),
    });
    let bench = Bench::start(gone, quick());
    bench.spool.enqueue(delivery("d2")).await.unwrap();
    bench.until("dropped", |b| b.audit().len() == 1).await;
    assert_eq!(bench.audit()[0]["reason"], "out_of_scope");
    assert_eq!(bench.audit()[0]["decision"], "drop");
    assert_eq!(bench.spool.stats().depth, 0);
    assert_eq!(bench.spool.stats().dead, 0);
    let metrics = bench.metrics.encode();
    assert!(
        metrics.contains("glgate_webhook_deliveries_total{outcome=\"drop\"} 1"),
        "{metrics}"
    );
    bench.stop().await;
}

#[test]
fn only_https_or_loopback_http_without_credentials_is_a_destination() {
    for allowed in [
        "https://hooks.example.com/x",
        "https://hooks.example.com:8443/x?y=1",
        "http://127.0.0.1:8080/hook",
        "http://127.9.9.9/hook",
        "http://[::1]:9000/hook",
        "http://localhost:3000/hook",
        "http://LOCALHOST/hook",
    ] {
        assert!(destination_uri(allowed).is_some(), "{allowed}");
    }
    for refused in [
        "http://hooks.example.com/x",
        "http://10.0.0.1/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://localhost.evil.example/x",
        "http://127.0.0.1.nip.io/x",
        "https://user:pass@hooks.example.com/x",
        "http://user@127.0.0.1/x",
        "ftp://127.0.0.1/x",
        "/relative",
        "",
    ] {
        assert!(destination_uri(refused).is_none(), "{refused}");
    }
}

#[test]
fn back_off_doubles_to_its_cap_with_jitter_within_half() {
    let settings = DeliverySettings {
        initial_backoff: Duration::from_secs(10),
        max_backoff: Duration::from_secs(60),
        ..DeliverySettings::default()
    };
    for (attempt, full) in [(1, 10), (2, 20), (3, 40), (4, 60), (40, 60)] {
        let full = Duration::from_secs(full);
        for _ in 0..50 {
            let wait = backoff(&settings, attempt);
            assert!(wait >= full / 2 && wait <= full, "{attempt}: {wait:?}");
        }
    }
}

#[test]
fn a_destination_never_shows_its_token() {
    let destination = Destination {
        url: "https://x.example/h".into(),
        token: Some("s3cret".into()),
    };
    assert!(!format!("{destination:?}").contains("s3cret"));
}

/// A TLS acceptor for `localhost` signed by a fresh CA, and the CA's PEM.
fn tls_receiver_setup() -> (tokio_rustls::TlsAcceptor, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "receiver test CA");
    let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
    (
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        issuer.pem(),
    )
}

/// Each client's deliveries go to its own receiver.
struct ByClient(Vec<(&'static str, String)>);

impl Destinations for ByClient {
    fn resolve(&self, delivery: &QueuedDelivery) -> Result<Destination, Undeliverable> {
        let (_, url) = self
            .0
            .iter()
            .find(|(client, _)| *client == delivery.client)
            .ok_or(Undeliverable {
                reason: "client_unknown",
            })?;
        Ok(Destination {
            url: url.clone(),
            token: None,
        })
    }
}

#[tokio::test]
async fn a_client_whose_receiver_hangs_holds_only_its_share_of_the_attempts() {
    // Accepts connections and never answers.
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hung_url = format!("http://{}/hook", hung.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = hung.accept().await {
            open.push(stream);
        }
    });
    let receiver = Receiver::start(200).await;
    let destinations = Arc::new(ByClient(vec![("slow", hung_url), ("fast", receiver.url())]));
    let settings = DeliverySettings {
        timeout: Duration::from_secs(5),
        per_client: 2,
        ..quick()
    };
    let bench = Bench::start(destinations, settings);
    for n in 0..6 {
        let mut slow = delivery(&format!("s{n}"));
        slow.client = "slow".into();
        bench.spool.enqueue(slow).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    for n in 0..2 {
        let mut fast = delivery(&format!("f{n}"));
        fast.client = "fast".into();
        bench.spool.enqueue(fast).await.unwrap();
    }
    // Long before the slow client's attempts time out, the other client's
    // deliveries are through: the hung receiver holds 2 of the 4 slots.
    let started = Instant::now();
    bench
        .until("the other client's deliveries arrived", |_| {
            receiver.got().len() == 2
        })
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    held.abort();
    bench.stop().await;
}
