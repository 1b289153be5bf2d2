//! Inbound TLS and mutual TLS, source restrictions, and the upstream client
//! certificate, with certificates made at test time (rcgen).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::support::client::{get, send};
use crate::support::sandbox::{Sandbox, SandboxOptions};
use crate::support::tls::{Leaf, TestCa, tls_upstream_with};
use bytes::Bytes;
use http::Version;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Server and client certificates in a folder, and the config lines for them.
struct Pki {
    server_ca: TestCa,
    client_ca: TestCa,
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let pki = Pki {
            server_ca: TestCa::new("glgate server CA"),
            client_ca: TestCa::new("glgate client CA"),
            dir: tempfile::tempdir().unwrap(),
        };
        pki.install_server_cert(&pki.server_ca.leaf(&["localhost"], false));
        std::fs::write(pki.path("client-ca.pem"), pki.client_ca.pem()).unwrap();
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn install_server_cert(&self, leaf: &Leaf) {
        // Key first, then certificate: a reload in between sees a mismatched
        // pair, which must be refused, not served.
        std::fs::write(self.path("server.key"), &leaf.key_pem).unwrap();
        std::fs::write(self.path("server.crt"), &leaf.cert_pem).unwrap();
    }

    fn tls_config(&self, mutual: bool) -> String {
        let mut yaml = format!(
            "tls:\n  cert_file: {}\n  key_file: {}\n  reload_interval: 50ms\n",
            self.path("server.crt").display(),
            self.path("server.key").display()
        );
        if mutual {
            yaml.push_str(&format!(
                "  client_ca_file: {}\n",
                self.path("client-ca.pem").display()
            ));
        }
        yaml
    }
}

/// A TLS connection to glgate trusting `ca`, offering `alpn`, presenting `client`.
async fn connect(
    addr: std::net::SocketAddr,
    ca_pem: &str,
    alpn: &[&[u8]],
    client: Option<&Leaf>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(pem_der(ca_pem))).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client {
        Some(leaf) => builder
            .with_client_auth_cert(vec![leaf.cert.clone()], leaf.key.clone_key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await?;
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

fn pem_der(pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

/// One request over an established TLS stream, HTTP/1.1 or HTTP/2 as negotiated.
async fn request_over(
    stream: tokio_rustls::client::TlsStream<TcpStream>,
    target: &str,
    token: Option<&str>,
) -> Result<(u16, String), hyper::Error> {
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(stream);
    // HTTP/2 carries scheme and authority as pseudo-headers; HTTP/1.1 sends
    // an origin-form target with Host.
    let uri = if h2 {
        format!("https://localhost{target}")
    } else {
        target.to_owned()
    };
    let mut request = http::Request::get(uri).header("host", "localhost");
    if let Some(token) = token {
        request = request.header("private-token", token);
    }
    let request = request.body(Full::new(Bytes::new())).unwrap();
    let response = if h2 {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await?;
        tokio::spawn(connection);
        sender.send_request(request).await?
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(connection);
        sender.send_request(request).await?
    };
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

async fn with_tls(pki: &Pki, mutual: bool, options: SandboxOptions) -> Sandbox {
    Sandbox::with(SandboxOptions {
        config_extra: pki.tls_config(mutual),
        ..options
    })
    .await
}

#[tokio::test]
async fn https_speaks_h2_and_http1_by_alpn() {
    let pki = Pki::new();
    let sb = with_tls(&pki, false, SandboxOptions::default()).await;
    for (alpn, expected) in [
        (&[&b"h2"[..]][..], Some(&b"h2"[..])),
        (&[&b"http/1.1"[..]][..], Some(&b"http/1.1"[..])),
    ] {
        let stream = connect(sb.server.addr, &pki.server_ca.pem(), alpn, None)
            .await
            .unwrap();
        assert_eq!(stream.get_ref().1.alpn_protocol(), expected);
        let (status, body) = request_over(stream, "/api/v4/user", Some(&sb.client_token))
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let forwarded = sb.fake.requests();
    assert_eq!(forwarded.len(), 2);
}

#[tokio::test]
async fn plain_http_and_tls_1_1_are_refused() {
    let pki = Pki::new();
    let sb = with_tls(&pki, false, SandboxOptions::default()).await;
    // A TLS 1.1-only ClientHello (one RSA/AES-CBC suite, no extensions).
    let mut hello = vec![0x03, 0x02];
    hello.extend_from_slice(&[7u8; 32]);
    hello.extend_from_slice(&[0x00, 0x00, 0x02, 0x00, 0x2f, 0x01, 0x00]);
    let mut handshake = vec![0x01, 0x00, 0x00, hello.len() as u8];
    handshake.extend_from_slice(&hello);
    let mut record = vec![0x16, 0x03, 0x01, 0x00, handshake.len() as u8];
    record.extend_from_slice(&handshake);
    let mut stream = TcpStream::connect(sb.server.addr).await.unwrap();
    stream.write_all(&record).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert!(
        !answer.is_empty() && answer[0] == 0x15,
        "a TLS alert, not a ServerHello: {answer:02x?}"
    );
    let mut plain = TcpStream::connect(sb.server.addr).await.unwrap();
    plain
        .write_all(b"GET /api/v4/user HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await;
    assert!(!String::from_utf8_lossy(&answer).contains("HTTP/1.1 200"));
    assert!(sb.fake.requests().is_empty());
}

#[tokio::test]
async fn client_certificates_identify_and_are_required() {
    let pki = Pki::new();
    let sb = with_tls(
        &pki,
        true,
        SandboxOptions {
            client_extra: "    client_cert: { subject_cn: echoes-backend }\n".into(),
            other_client: Some("    client_cert: { san: reporting.echoes.example }\n".into()),
            other_client_cert_only: true,
            ..SandboxOptions::default()
        },
    )
    .await;
    let echoes_cert = pki.client_ca.leaf(&["echoes-backend"], false);
    let reporting_cert = pki.client_ca.leaf(&["reporting.echoes.example"], false);
    let stranger_cert = TestCa::new("someone else").leaf(&["echoes-backend"], false);
    let addr = sb.server.addr;

    // Token and the right certificate: allowed.
    let stream = connect(
        addr,
        &pki.server_ca.pem(),
        &[b"http/1.1"],
        Some(&echoes_cert),
    )
    .await
    .unwrap();
    assert_eq!(
        request_over(stream, "/api/v4/user", Some(&sb.client_token))
            .await
            .unwrap()
            .0,
        200
    );
    // Token without the certificate: 401.
    let stream = connect(addr, &pki.server_ca.pem(), &[b"http/1.1"], None)
        .await
        .unwrap();
    let (status, body) = request_over(stream, "/api/v4/user", Some(&sb.client_token))
        .await
        .unwrap();
    assert_eq!(status, 401);
    assert!(body.contains("certificate_required"), "{body}");
    // Token with another client's certificate: 401.
    let stream = connect(
        addr,
        &pki.server_ca.pem(),
        &[b"http/1.1"],
        Some(&reporting_cert),
    )
    .await
    .unwrap();
    assert_eq!(
        request_over(stream, "/api/v4/user", Some(&sb.client_token))
            .await
            .unwrap()
            .0,
        401
    );
    // Certificate-only client, no token: identified by its SAN.
    let stream = connect(addr, &pki.server_ca.pem(), &[b"h2"], Some(&reporting_cert))
        .await
        .unwrap();
    assert_eq!(
        request_over(stream, "/api/v4/user", None).await.unwrap().0,
        200
    );
    // A certificate from a CA glgate does not trust: the handshake fails.
    let refused = match connect(
        addr,
        &pki.server_ca.pem(),
        &[b"http/1.1"],
        Some(&stranger_cert),
    )
    .await
    {
        Err(_) => true,
        Ok(stream) => request_over(stream, "/api/v4/user", Some(&sb.client_token))
            .await
            .is_err(),
    };
    assert!(refused, "an untrusted client certificate is refused");
    let events = sb.audit_events(4).await;
    let clients: Vec<&str> = events
        .iter()
        .map(|e| e["client"].as_str().unwrap())
        .collect();
    assert_eq!(clients, ["echoes", "echoes", "echoes", "other"]);
    assert_eq!(events[1]["reason"], "certificate_required");
    assert_eq!(sb.fake.requests().len(), 2);
}

#[tokio::test]
async fn certificate_rotation_under_load_fails_no_request() {
    let pki = Pki::new();
    let sb = with_tls(
        &pki,
        false,
        SandboxOptions {
            client_extra: "    rate_limit: { per_second: 10000, burst: 10000 }\n".into(),
            ..SandboxOptions::default()
        },
    )
    .await;
    let addr = sb.server.addr;
    let token = sb.client_token.clone();
    let ca = pki.server_ca.pem();
    let load = tokio::spawn(async move {
        let mut served = std::collections::BTreeSet::new();
        let mut failures = 0;
        for _ in 0..150 {
            match connect(addr, &ca, &[b"http/1.1"], None).await {
                Ok(stream) => {
                    served.insert(stream.get_ref().1.peer_certificates().unwrap()[0].to_vec());
                    match request_over(stream, "/api/v4/user", Some(&token)).await {
                        Ok((200, _)) => {}
                        _ => failures += 1,
                    }
                }
                Err(_) => failures += 1,
            }
        }
        (failures, served.len())
    });
    let mut last = Vec::new();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(120)).await;
        let leaf = pki.server_ca.leaf(&["localhost"], false);
        pki.install_server_cert(&leaf);
        last = leaf.cert.to_vec();
    }
    let (failures, distinct) = load.await.unwrap();
    assert_eq!(failures, 0, "no request failed during rotation");
    assert!(
        distinct >= 2,
        "new handshakes saw rotated certificates ({distinct} distinct)"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ca = pki.server_ca.pem();
    let served_now = |sb: &Sandbox| {
        let addr = sb.server.addr;
        let ca = ca.clone();
        async move {
            let stream = connect(addr, &ca, &[b"http/1.1"], None).await.unwrap();
            stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
        }
    };
    assert_eq!(served_now(&sb).await, last, "the newest pair is served");
    // A broken pair is refused; the last good one stays.
    std::fs::write(pki.path("server.crt"), "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(served_now(&sb).await, last, "still the last good pair");
    let logs = crate::support::logs::lines_with(&pki.path("server.crt").display().to_string());
    assert!(
        logs.iter()
            .any(|l| l.contains("new TLS certificate refused")),
        "{logs:#?}"
    );
}

#[tokio::test]
async fn source_networks_are_enforced_and_forwarded_for_is_believed_only_from_trusted_proxies() {
    let restricted = |trusted: &str| SandboxOptions {
        client_extra: "    source_cidrs: [10.0.0.0/8]\n".into(),
        config_extra: trusted.to_owned(),
        ..SandboxOptions::default()
    };
    let sb = Sandbox::with(restricted("")).await;
    let reply = get(&sb.url("/api/v4/user"), &sb.client_token).await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.json()["reason"], "source_not_allowed");
    let spoofed = send(
        Version::HTTP_11,
        "GET",
        &sb.url("/api/v4/user"),
        &[
            ("private-token", &sb.client_token),
            ("x-forwarded-for", "10.1.2.3"),
        ],
        b"",
    )
    .await;
    assert_eq!(
        spoofed.status, 403,
        "X-Forwarded-For from an untrusted peer is ignored"
    );

    let sb = Sandbox::with(restricted("trusted_proxies: [127.0.0.1/32]\n")).await;
    for (forwarded_for, status) in [
        ("10.1.2.3", 200),
        ("203.0.113.5", 403),
        ("10.1.2.3, 203.0.113.5", 403),
    ] {
        let reply = send(
            Version::HTTP_11,
            "GET",
            &sb.url("/api/v4/user"),
            &[
                ("private-token", &sb.client_token),
                ("x-forwarded-for", forwarded_for),
            ],
            b"",
        )
        .await;
        assert_eq!(reply.status, status, "{forwarded_for}");
    }
    assert_eq!(sb.fake.requests().len(), 1);
}

#[tokio::test]
async fn gitlab_behind_mutual_tls_gets_glgates_client_certificate() {
    let server_ca = TestCa::new("GitLab CA");
    let client_ca = TestCa::new("GitLab client CA");
    let upstream = tls_upstream_with(server_ca.leaf(&["localhost"], false), Some(&client_ca)).await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let ca = write("ca.pem", &server_ca.pem());
    let glgate_cert = client_ca.leaf(&["glgate"], false);
    let cert = write("client.crt", &glgate_cert.cert_pem);
    let key = write("client.key", &glgate_cert.key_pem);
    let options = |extra: String| SandboxOptions {
        upstream_url: Some(format!("https://localhost:{}", upstream.port())),
        upstream_extra: extra,
        ..SandboxOptions::default()
    };
    let without = Sandbox::with(options(format!("  ca_file: {}\n", ca.display()))).await;
    assert_eq!(
        get(&without.url("/api/v4/user"), &without.client_token)
            .await
            .status,
        502
    );
    let with = Sandbox::with(options(format!(
        "  ca_file: {}\n  client_cert_file: {}\n  client_key_file: {}\n",
        ca.display(),
        cert.display(),
        key.display()
    )))
    .await;
    assert_eq!(
        get(&with.url("/api/v4/user"), &with.client_token)
            .await
            .status,
        200
    );
    assert!(Path::new(&cert).exists());
}
