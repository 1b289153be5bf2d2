//! End-to-end tests of the fake GitLab over real HTTP/1.1 and HTTP/2.

use bytes::Bytes;
use fake_gitlab::{FakeGitlab, FakeOptions};
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Resp {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_else(|| panic!("missing header {name}"))
    }
}

fn client(http2: bool) -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new())
        .http2_only(http2)
        .build_http()
}

/// Sends a request with the right token (unless `token` is `None`).
async fn send(
    gl: &FakeGitlab,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &str)>,
) -> Resp {
    send_with(&client(false), gl, method, path, token, body).await
}

async fn send_with(
    client: &Client<HttpConnector, Full<Bytes>>,
    gl: &FakeGitlab,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &str)>,
) -> Resp {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{}{}", gl.addr(), path));
    if let Some(token) = token {
        req = req.header("PRIVATE-TOKEN", token);
    }
    let body = match body {
        Some((content_type, text)) => {
            req = req.header("content-type", content_type);
            Bytes::from(text.to_string())
        }
        None => Bytes::new(),
    };
    let resp = client
        .request(req.body(Full::new(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Resp {
        status,
        headers,
        body,
    }
}

async fn get(gl: &FakeGitlab, path: &str) -> Resp {
    send(gl, Method::GET, path, Some(gl.token()), None).await
}

async fn start() -> FakeGitlab {
    FakeGitlab::start(FakeOptions::default()).await.unwrap()
}

#[tokio::test]
async fn auth_is_required_and_requests_are_recorded() {
    let gl = start().await;
    let r = send(&gl, Method::GET, "/api/v4/user", None, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json(), json!({"message": "401 Unauthorized"}));
    let r = send(&gl, Method::GET, "/api/v4/user", Some("wrong"), None).await;
    assert_eq!(r.status, 401);

    let r = get(&gl, "/api/v4/user").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "application/json");
    assert!(r.header("set-cookie").starts_with("_gitlab_session="));
    assert!(!r.header("x-request-id").is_empty());
    let base = gl.base_url();
    assert_eq!(
        r.json(),
        json!({"id":1,"username":"glgate-bot","name":"glgate bot","state":"active",
               "is_admin":false,"bot":false,"web_url":format!("{base}/glgate-bot"),"avatar_url":null})
    );

    // Bearer works too.
    let req = Request::get(format!("{base}/api/v4/version"))
        .header("authorization", format!("Bearer {}", gl.token()))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = client(false).request(req).await.unwrap();
    assert_eq!(resp.status(), 200);

    // Outside the API: 404 even with a token.
    let r = get(&gl, "/users/sign_in").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), json!({"message": "404 Not Found"}));

    let recorded = gl.requests();
    assert_eq!(recorded.len(), 5);
    assert_eq!(recorded[0].header("private-token"), None);
    assert_eq!(recorded[1].header("PRIVATE-TOKEN"), Some("wrong"));
    assert_eq!(recorded[2].method, "GET");
    assert_eq!(recorded[2].version, "HTTP/1.1");
    gl.clear_requests();
    assert!(gl.requests().is_empty());
}

#[tokio::test]
async fn encoded_paths_and_case_insensitive_lookup() {
    let gl = start().await;
    let r = get(&gl, "/api/v4/projects/ACME%2FBackend").await;
    assert_eq!(r.status, 200);
    let p = r.json();
    assert_eq!(p["id"], 101);
    assert_eq!(p["path_with_namespace"], "acme/backend");
    assert_eq!(p["web_url"], format!("{}/acme/backend", gl.base_url()));
    assert_eq!(get(&gl, "/api/v4/projects/103").await.json()["path"], "api");
    assert_eq!(
        get(&gl, "/api/v4/groups/acme%2fplatform").await.json()["id"],
        11
    );
    // Not decoded before splitting: a literal slash is two segments.
    let r = get(&gl, "/api/v4/projects/acme/backend").await;
    assert_eq!(r.status, 404);
    let r = get(&gl, "/api/v4/projects/nope%2Fnope").await;
    assert_eq!(r.json(), json!({"message": "404 Project Not Found"}));
    let r = get(&gl, "/api/v4/groups/999").await;
    assert_eq!(r.json(), json!({"message": "404 Group Not Found"}));
    let r = get(&gl, "/api/v4/projects/101/nothing-here").await;
    assert_eq!(r.json(), json!({"message": "404 Not Found"}));
    // The label name is one segment once decoded.
    let r = get(
        &gl,
        "/api/v4/groups/acme/labels/echoes%2Fintent%3A%20feature",
    )
    .await;
    assert_eq!(r.json()["id"], 7002);
}

#[tokio::test]
async fn recorded_target_is_raw() {
    let gl = start().await;
    let mut stream = TcpStream::connect(gl.addr()).await.unwrap();
    let request = format!(
        "GET /api/v4/projects/acme%2Fbackend/merge_requests?state=opened&labels=a%2Cb HTTP/1.1\r\n\
         Host: x\r\nPRIVATE-TOKEN: {}\r\nX-Custom: One\r\nConnection: close\r\n\r\n",
        gl.token()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let recorded = gl.requests();
    assert_eq!(
        recorded[0].target,
        "/api/v4/projects/acme%2Fbackend/merge_requests?state=opened&labels=a%2Cb"
    );
    assert_eq!(recorded[0].header("x-custom"), Some("One"));
    assert_eq!(
        recorded[0].headers[0],
        ("host".to_string(), "x".to_string())
    );
}

#[tokio::test]
async fn pagination_headers_and_absolute_links_with_prefix() {
    let gl = FakeGitlab::start(FakeOptions {
        path_prefix: "/gitlab".into(),
        ..FakeOptions::default()
    })
    .await
    .unwrap();
    let base = gl.base_url();
    assert!(base.ends_with("/gitlab"));
    // Without the prefix nothing is found.
    assert_eq!(get(&gl, "/api/v4/user").await.status, 404);

    let path = "/gitlab/api/v4/groups/acme/projects";
    let r = get(&gl, &format!("{path}?sort=asc&order_by=id&page=2")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-page"), "2");
    assert_eq!(r.header("x-per-page"), "20");
    assert_eq!(r.header("x-next-page"), "3");
    assert_eq!(r.header("x-prev-page"), "1");
    assert_eq!(r.header("x-total"), "47");
    assert_eq!(r.header("x-total-pages"), "3");
    let url = |page: u32| {
        format!("<{base}/api/v4/groups/acme/projects?order_by=id&page={page}&per_page=20&sort=asc>")
    };
    assert_eq!(
        r.header("link"),
        format!(
            "{}; rel=\"prev\", {}; rel=\"next\", {}; rel=\"first\", {}; rel=\"last\"",
            url(1),
            url(3),
            url(1),
            url(3)
        )
    );
    let items = r.json();
    let ids: Vec<u64> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 20);
    assert_eq!(ids[0], 1019);

    // Last page, per_page capped at 100, default order is newest first.
    let r = get(&gl, &format!("{path}?per_page=500")).await;
    assert_eq!(r.header("x-per-page"), "100");
    assert_eq!(r.header("x-next-page"), "");
    assert_eq!(r.header("x-prev-page"), "");
    assert_eq!(r.json()[0]["id"], 1045);
    assert!(!r.header("link").contains("rel=\"next\""));

    // Encoded id stays encoded in the link.
    let r = get(&gl, "/gitlab/api/v4/groups/ACME%2Fplatform/projects").await;
    assert!(r.header("link").starts_with(&format!(
        "<{base}/api/v4/groups/ACME%2Fplatform/projects?page=1&per_page=20>"
    )));
    assert_eq!(get(&gl, &format!("{path}?page=x")).await.status, 400);
}

#[tokio::test]
async fn renamed_project_redirects_for_any_method() {
    let gl = start().await;
    let r = send(
        &gl,
        Method::PUT,
        "/api/v4/projects/Acme%2FOld-Backend/merge_requests/1?x=%20y",
        Some(gl.token()),
        Some(("application/json", r#"{"title":"t"}"#)),
    )
    .await;
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        format!(
            "{}/api/v4/projects/acme%2Fbackend/merge_requests/1?x=%20y",
            gl.base_url()
        )
    );
    assert_eq!(r.json(), json!({"message": "301 Moved Permanently"}));
    let r = get(&gl, "/api/v4/projects/acme%2Fold-backend").await;
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        format!("{}/api/v4/projects/acme%2Fbackend", gl.base_url())
    );
}

#[tokio::test]
async fn labels_create_then_list() {
    let gl = start().await;
    let path = "/api/v4/groups/10/labels";
    let form = "application/x-www-form-urlencoded";
    let r = send(
        &gl,
        Method::POST,
        path,
        Some(gl.token()),
        Some((form, "name=needs+review&color=%23ff0000")),
    )
    .await;
    assert_eq!(r.status, 201);
    let created = r.json();
    assert_eq!(created["name"], "needs review");
    assert_eq!(created["color"], "#ff0000");

    let r = send(
        &gl,
        Method::POST,
        path,
        Some(gl.token()),
        Some((form, "name=needs+review&color=red")),
    )
    .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.json(), json!({"message": "Label already exists"}));
    let r = send(
        &gl,
        Method::POST,
        path,
        Some(gl.token()),
        Some((form, "name=x")),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json(), json!({"message": "color is missing"}));
    let r = send(
        &gl,
        Method::POST,
        path,
        Some(gl.token()),
        Some(("application/json", "{not json")),
    )
    .await;
    assert_eq!(r.status, 400);

    let r = get(&gl, path).await;
    let names: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["bug", "echoes/intent: feature", "needs review"]);
    assert_eq!(r.header("x-total"), "3");

    // Subgroup and project lists include the ancestor's labels.
    assert_eq!(
        get(&gl, "/api/v4/projects/103/labels")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let r = send(
        &gl,
        Method::PUT,
        "/api/v4/groups/acme/labels/needs%20review",
        Some(gl.token()),
        Some((
            "application/json",
            r#"{"new_name":"reviewing","description":"d"}"#,
        )),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["name"], "reviewing");
    let id = created["id"].as_u64().unwrap();
    let r = send(
        &gl,
        Method::DELETE,
        &format!("{path}/{id}"),
        Some(gl.token()),
        None,
    )
    .await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    assert_eq!(get(&gl, path).await.header("x-total"), "2");
}

#[tokio::test]
async fn merge_request_update_and_filters() {
    let gl = start().await;
    let opened = get(&gl, "/api/v4/projects/101/merge_requests?state=opened").await;
    assert_eq!(opened.json().as_array().unwrap().len(), 2);
    let all = get(&gl, "/api/v4/groups/acme/merge_requests").await;
    assert_eq!(
        all.json().as_array().unwrap().len(),
        6,
        "five in acme and its subgroup, one in acme/secret-stuff"
    );
    let r = get(&gl, "/api/v4/projects/101/merge_requests/1").await;
    assert_eq!(r.json()["labels"], json!(["bug"]));

    let r = send(
        &gl,
        Method::PUT,
        "/api/v4/projects/acme%2Fbackend/merge_requests/1",
        Some(gl.token()),
        Some((
            "application/x-www-form-urlencoded",
            "add_labels=echoes%2Fintent%3A+feature,zz&remove_labels=bug",
        )),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["labels"], json!(["echoes/intent: feature", "zz"]));
    let r = send(
        &gl,
        Method::PUT,
        "/api/v4/projects/101/merge_requests/1",
        Some(gl.token()),
        Some(("application/json", r#"{"labels":["b","a"],"title":"New"}"#)),
    )
    .await;
    assert_eq!(r.json()["labels"], json!(["a", "b"]));
    assert_eq!(
        get(&gl, "/api/v4/projects/101/merge_requests/1")
            .await
            .json()["title"],
        "New"
    );
    assert_eq!(
        get(&gl, "/api/v4/projects/101/merge_requests/9")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn hooks_never_echo_the_token() {
    let gl = start().await;
    let r = send(
        &gl,
        Method::POST,
        "/api/v4/projects/101/hooks",
        Some(gl.token()),
        Some((
            "application/json",
            r#"{"url":"https://example.com/h","token":"s3cret","merge_requests_events":"true"}"#,
        )),
    )
    .await;
    assert_eq!(r.status, 201);
    let hook = r.json();
    assert_eq!(hook["id"], 9001);
    assert_eq!(hook["push_events"], true);
    assert_eq!(hook["merge_requests_events"], true);
    assert_eq!(hook["issues_events"], false);
    assert!(hook.get("token").is_none());
    let list = get(&gl, "/api/v4/projects/101/hooks").await.json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let r = send(
        &gl,
        Method::POST,
        "/api/v4/groups/10/hooks",
        Some(gl.token()),
        None,
    )
    .await;
    assert_eq!(r.json(), json!({"message": "url is missing"}));
}

#[tokio::test]
async fn http2_fail_next_and_head() {
    let gl = start().await;
    let h2 = client(true);
    gl.set_fail_next(503);
    let r = send_with(
        &h2,
        &gl,
        Method::GET,
        "/api/v4/version",
        Some(gl.token()),
        None,
    )
    .await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json(), json!({"message": "503 Service Unavailable"}));
    let r = send_with(
        &h2,
        &gl,
        Method::GET,
        "/api/v4/projects/acme%2Fbackend?x=1",
        Some(gl.token()),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    let recorded = gl.requests();
    assert_eq!(recorded[1].version, "HTTP/2.0");
    assert_eq!(recorded[1].target, "/api/v4/projects/acme%2Fbackend?x=1");

    let r = send(
        &gl,
        Method::HEAD,
        "/api/v4/projects/101",
        Some(gl.token()),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let gl = start().await;
    let addr = gl.addr();
    assert_eq!(get(&gl, "/api/v4/version").await.status, 200);
    gl.shutdown().await;
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn dropping_stops_the_server_and_recording_can_be_paused() {
    let gl = start().await;
    gl.set_recording(false);
    assert_eq!(get(&gl, "/api/v4/version").await.status, 200);
    assert!(gl.requests().is_empty());
    gl.set_recording(true);
    assert_eq!(get(&gl, "/api/v4/metadata").await.status, 200);
    assert_eq!(gl.requests().len(), 1);

    let addr = gl.addr();
    drop(gl);
    let mut refused = false;
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(refused, "server still accepting after drop");
}
