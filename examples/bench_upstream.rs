//! A fast stand-in for GitLab, for `benches/load.sh`: answers the benchmarked
//! API paths with fixed JSON bodies of realistic size (a project: about
//! 2 KiB; a list of 20 merge requests: about 32 KiB), over HTTP/1.1
//! keep-alive, as cheaply as hyper allows, so that what the benchmark
//! measures is the proxy in front of it.
//!
//!   cargo run --release --example bench_upstream -- [ADDR] [THREADS]
//!
//! (default `127.0.0.1:0` and 1 thread). Prints `listening at http://ADDR`.

#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// A GitLab project object, padded with a realistic description to `size` bytes.
fn project(id: u64, path: &str, size: usize) -> String {
    let mut json = format!(
        r#"{{"id":{id},"description":"DESC","name":"{path}","name_with_namespace":"Acme / {path}","path":"{path}","path_with_namespace":"acme/{path}","created_at":"2024-01-15T10:00:00.000Z","default_branch":"main","tag_list":[],"topics":[],"ssh_url_to_repo":"git@gitlab.acme.com:acme/{path}.git","http_url_to_repo":"https://gitlab.acme.com/acme/{path}.git","web_url":"https://gitlab.acme.com/acme/{path}","readme_url":"https://gitlab.acme.com/acme/{path}/-/blob/main/README.md","forks_count":0,"avatar_url":null,"star_count":3,"last_activity_at":"2026-11-20T08:12:44.120Z","namespace":{{"id":7,"name":"acme","path":"acme","kind":"group","full_path":"acme","parent_id":null,"avatar_url":null,"web_url":"https://gitlab.acme.com/groups/acme"}},"_links":{{"self":"https://gitlab.acme.com/api/v4/projects/{id}","issues":"https://gitlab.acme.com/api/v4/projects/{id}/issues","merge_requests":"https://gitlab.acme.com/api/v4/projects/{id}/merge_requests","repo_branches":"https://gitlab.acme.com/api/v4/projects/{id}/repository/branches","labels":"https://gitlab.acme.com/api/v4/projects/{id}/labels","events":"https://gitlab.acme.com/api/v4/projects/{id}/events","members":"https://gitlab.acme.com/api/v4/projects/{id}/members"}},"archived":false,"visibility":"private","open_issues_count":12,"merge_method":"merge","squash_option":"default_off"}}"#
    );
    pad(&mut json, size);
    json
}

/// A merge request object of about `size` bytes.
fn merge_request(iid: u64, size: usize) -> String {
    let mut json = format!(
        r#"{{"id":{},"iid":{iid},"project_id":101,"title":"Speed up the pipeline","description":"DESC","state":"opened","created_at":"2026-11-18T09:30:00.000Z","updated_at":"2026-11-20T11:02:13.000Z","target_branch":"main","source_branch":"feature/{iid}","author":{{"id":12,"username":"jdoe","name":"Jane Doe","state":"active","web_url":"https://gitlab.acme.com/jdoe"}},"labels":["echoes/intent/feature","backend"],"draft":false,"merge_status":"can_be_merged","sha":"0123456789abcdef0123456789abcdef01234567","web_url":"https://gitlab.acme.com/acme/backend/-/merge_requests/{iid}"}}"#,
        10_000 + iid
    );
    pad(&mut json, size);
    json
}

/// Fills the `DESC` placeholder so the JSON is `size` bytes long.
fn pad(json: &mut String, size: usize) {
    let filler = size.saturating_sub(json.len() - 4);
    let text: String = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. "
        .chars()
        .cycle()
        .take(filler)
        .collect();
    *json = json.replacen("DESC", &text, 1);
}

/// The projects it knows, by id and by full path (all in group `acme`), so
/// that a scoped client's lookups resolve as on GitLab; any other project id
/// or path is answered as the first one.
const PROJECTS: [(u64, &str); 3] = [(101, "backend"), (102, "frontend"), (103, "tools")];

struct Bodies {
    /// One per entry of [`PROJECTS`].
    projects: Vec<Bytes>,
    merge_requests: Bytes,
    not_found: Bytes,
}

fn bodies() -> Bodies {
    let list: Vec<String> = (1..=20).map(|iid| merge_request(iid, 1630)).collect();
    Bodies {
        projects: PROJECTS
            .iter()
            .map(|(id, path)| Bytes::from(project(*id, path, 2048)))
            .collect(),
        merge_requests: Bytes::from(format!("[{}]", list.join(","))),
        not_found: Bytes::from_static(br#"{"message":"404 Not found"}"#),
    }
}

fn answer(bodies: &Bodies, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    let (status, body) = match path.strip_prefix("/api/v4/projects/") {
        Some(rest) if rest.ends_with("/merge_requests") => (StatusCode::OK, &bodies.merge_requests),
        Some(rest) if !rest.is_empty() && !rest.contains('/') => {
            let known = PROJECTS.iter().position(|(id, path)| {
                rest.parse::<u64>().ok() == Some(*id)
                    || rest
                        .strip_prefix("acme%2F")
                        .is_some_and(|name| name.eq_ignore_ascii_case(path))
            });
            (StatusCode::OK, &bodies.projects[known.unwrap_or(0)])
        }
        _ => (StatusCode::NOT_FOUND, &bodies.not_found),
    };
    let mut response = Response::new(Full::new(body.clone()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args
        .next()
        .as_deref()
        .unwrap_or("127.0.0.1:0")
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let threads: usize = args.next().and_then(|t| t.parse().ok()).unwrap_or(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(addr).await?;
        println!("listening at http://{}", listener.local_addr()?);
        let bodies = std::sync::Arc::new(bodies());
        println!(
            "bodies: project {} bytes, merge request list {} bytes",
            bodies.projects[0].len(),
            bodies.merge_requests.len()
        );
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let bodies = bodies.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let response = answer(&bodies, &request);
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
