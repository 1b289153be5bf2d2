//! A response under construction, turned into a hyper response at the end.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, SET_COOKIE, VARY};
use http::{HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

/// Result type of handlers: an error is simply the (error) reply to send.
pub(crate) type Result<T> = std::result::Result<T, Reply>;

/// The session cookie every response carries, like a real GitLab does.
const SESSION_COOKIE: &str = "_gitlab_session=fake-session-cookie; path=/; HttpOnly";

/// The body of a reply.
#[derive(Debug)]
enum Body {
    Empty,
    Json(Value),
    Raw {
        content_type: &'static str,
        bytes: Vec<u8>,
    },
}

/// A response: status, body and extra headers.
#[derive(Debug)]
pub(crate) struct Reply {
    status: StatusCode,
    body: Body,
    headers: Vec<(HeaderName, String)>,
}

impl Reply {
    /// A JSON reply.
    pub(crate) fn json(status: StatusCode, body: Value) -> Reply {
        Reply {
            status,
            body: Body::Json(body),
            headers: Vec::new(),
        }
    }

    /// `200 OK` with a JSON body.
    pub(crate) fn ok(body: Value) -> Reply {
        Reply::json(StatusCode::OK, body)
    }

    /// `201 Created` with a JSON body.
    pub(crate) fn created(body: Value) -> Reply {
        Reply::json(StatusCode::CREATED, body)
    }

    /// `204 No Content`.
    pub(crate) fn no_content() -> Reply {
        Reply {
            status: StatusCode::NO_CONTENT,
            body: Body::Empty,
            headers: Vec::new(),
        }
    }

    /// A non-JSON body, e.g. a raw file.
    pub(crate) fn raw(content_type: &'static str, bytes: Vec<u8>) -> Reply {
        Reply {
            status: StatusCode::OK,
            body: Body::Raw {
                content_type,
                bytes,
            },
            headers: Vec::new(),
        }
    }

    /// `{"message": message}` with the given status.
    pub(crate) fn message(status: StatusCode, message: impl Into<String>) -> Reply {
        Reply::json(status, json!({ "message": message.into() }))
    }

    /// `{"message":"<code> <reason>"}`, e.g. `"503 Service Unavailable"`.
    pub(crate) fn status_message(status: StatusCode) -> Reply {
        let reason = status.canonical_reason().unwrap_or("Error");
        Reply::message(status, format!("{} {reason}", status.as_u16()))
    }

    /// `404 {"message":"404 Not Found"}`: unknown route.
    pub(crate) fn route_not_found() -> Reply {
        Reply::status_message(StatusCode::NOT_FOUND)
    }

    /// `404 {"message":"404 <what> Not Found"}`, e.g. `"404 Project Not Found"`.
    pub(crate) fn not_found(what: &str) -> Reply {
        Reply::message(StatusCode::NOT_FOUND, format!("404 {what} Not Found"))
    }

    /// `400 {"message": message}`.
    pub(crate) fn bad_request(message: impl Into<String>) -> Reply {
        Reply::message(StatusCode::BAD_REQUEST, message)
    }

    /// `400 {"message":"<param> is missing"}`.
    pub(crate) fn missing(param: &str) -> Reply {
        Reply::bad_request(format!("{param} is missing"))
    }

    /// `400 {"message":"<param> is invalid"}`.
    pub(crate) fn invalid(param: &str) -> Reply {
        Reply::bad_request(format!("{param} is invalid"))
    }

    /// Changes a JSON body in place (no-op for other bodies).
    pub(crate) fn edit_json(&mut self, edit: impl FnOnce(&mut Value)) {
        if let Body::Json(value) = &mut self.body {
            edit(value);
        }
    }

    /// Adds a header.
    pub(crate) fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// Builds the hyper response. `head` drops the body (HEAD request).
    pub(crate) fn into_response(self, request_id: &str, head: bool) -> Response<Full<Bytes>> {
        let (content_type, bytes) = match self.body {
            Body::Empty => (None, Vec::new()),
            // Serializing a `Value` cannot fail (all keys are strings).
            Body::Json(v) => (Some("application/json"), v.to_string().into_bytes()),
            Body::Raw {
                content_type,
                bytes,
            } => (Some(content_type), bytes),
        };
        // Like Rack::ETag in front of GitLab's API: a weak validator computed
        // over the whole body of a successful answer; a HEAD carries the
        // length and validator of the GET it stands for.
        let etag = (self.status == StatusCode::OK && !bytes.is_empty()).then(|| {
            use sha2::Digest;
            format!("W/\"{}\"", hex_prefix(&sha2::Sha256::digest(&bytes)))
        });
        let length = bytes.len();
        let body = if head { Vec::new() } else { bytes };
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        if let Some(etag) = etag.and_then(|etag| HeaderValue::try_from(etag).ok()) {
            headers.insert(http::header::ETAG, etag);
        }
        if head {
            headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(length));
        }
        if let Some(ct) = content_type {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        headers.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("max-age=0, private, must-revalidate"),
        );
        headers.insert(VARY, HeaderValue::from_static("Origin"));
        headers.insert(SET_COOKIE, HeaderValue::from_static(SESSION_COOKIE));
        headers.insert(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            HeaderName::from_static("x-frame-options"),
            HeaderValue::from_static("SAMEORIGIN"),
        );
        if let Ok(id) = HeaderValue::from_str(request_id) {
            headers.insert(HeaderName::from_static("x-request-id"), id);
        }
        for (name, value) in self.headers {
            // Values are built from ASCII-only URLs and numbers; skip anything
            // that would not be a valid header value rather than panic.
            if let Ok(value) = HeaderValue::try_from(value) {
                headers.append(name, value);
            }
        }
        response
    }
}

/// The first 16 bytes of a digest, in lowercase hex.
fn hex_prefix(digest: &[u8]) -> String {
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}
