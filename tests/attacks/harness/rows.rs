//! A table row: one request, the transports it runs over, and what the
//! client must get (and so what GitLab must receive).

use fake_gitlab::FakeGitlab;

use super::answer::Answer;
use super::env::Env;

/// Which transports a row runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum On {
    /// Raw HTTP/1.1 bytes only.
    H1,
    /// Raw HTTP/1.1 bytes, then HTTP/2 through hyper's client.
    Both,
}

/// What the client must get, and so what GitLab must receive.
#[derive(Clone, Debug)]
pub enum Want {
    /// glgate refuses with this status and `reason`; GitLab receives nothing.
    Refused(u16, &'static str),
    /// The HTTP layer refuses before glgate sees a request: a bare 400, a
    /// reset stream or a closed connection; GitLab receives nothing.
    Protocol,
    /// glgate answers itself (the API root); GitLab receives nothing.
    Local(u16),
    /// Forwarded: the client gets GitLab's status; GitLab receives exactly
    /// the request (`None`: the request as the row sent it).
    Forwarded(u16, Option<Fwd>),
}

/// The one request GitLab must receive.
#[derive(Clone, Debug)]
pub struct Fwd {
    pub method: String,
    pub target: String,
    pub body: Vec<u8>,
    pub content_type: Option<String>,
}

pub fn fwd(method: &str, target: &str, body: &str, content_type: Option<&str>) -> Fwd {
    Fwd {
        method: method.to_owned(),
        target: target.to_owned(),
        body: body.as_bytes().to_vec(),
        content_type: content_type.map(str::to_owned),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    PrivateToken,
    Bearer,
    None,
}

pub type Check = fn(&Answer, &Env) -> Result<(), String>;

/// One request: sent the same way over every transport it runs on.
/// `{TOKEN}`, `{GITLAB}`, `{FAKE}` and `{PROXY}` in the target, header values
/// and body stand for the client token, GitLab's token, the fake's and the
/// proxy's address.
#[derive(Clone)]
pub struct Row {
    pub on: On,
    pub method: String,
    pub target: String,
    pub auth: Auth,
    pub host: bool,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub want: Want,
    /// Headers that must not reach GitLab although glgate would copy them.
    pub absent: Vec<&'static str>,
    /// A further check of the client's answer.
    pub check: Option<Check>,
    /// Run on the fake before the row (e.g. make it fail).
    pub before: Option<fn(&FakeGitlab)>,
}

pub fn req(method: &str, target: &str) -> Row {
    Row {
        on: On::Both,
        method: method.to_owned(),
        target: target.to_owned(),
        auth: Auth::PrivateToken,
        host: true,
        headers: Vec::new(),
        body: Vec::new(),
        want: Want::Protocol,
        absent: Vec::new(),
        check: None,
        before: None,
    }
}

pub fn get(target: &str) -> Row {
    req("GET", target)
}

impl Row {
    pub fn h1(mut self) -> Row {
        self.on = On::H1;
        self
    }
    pub fn header(mut self, name: &str, value: &str) -> Row {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
    pub fn auth(mut self, auth: Auth) -> Row {
        self.auth = auth;
        self
    }
    pub fn no_host(mut self) -> Row {
        self.host = false;
        self
    }
    pub fn body(mut self, content_type: Option<&str>, body: &[u8]) -> Row {
        if let Some(content_type) = content_type {
            self = self.header("Content-Type", content_type);
        }
        self.body = body.to_vec();
        self
    }
    pub fn json(self, body: &str) -> Row {
        self.body(Some("application/json"), body.as_bytes())
    }
    pub fn form(self, body: &str) -> Row {
        self.body(Some("application/x-www-form-urlencoded"), body.as_bytes())
    }
    pub fn refused(mut self, status: u16, reason: &'static str) -> Row {
        self.want = Want::Refused(status, reason);
        self
    }
    pub fn protocol(mut self) -> Row {
        self.want = Want::Protocol;
        self
    }
    pub fn local(mut self, status: u16) -> Row {
        self.want = Want::Local(status);
        self
    }
    /// Forwarded exactly as sent; the client gets GitLab's `status`.
    pub fn ok(mut self, status: u16) -> Row {
        self.want = Want::Forwarded(status, None);
        self
    }
    /// Forwarded with this target (what the HTTP layer left of the sent one).
    pub fn ok_as(mut self, status: u16, target: &str) -> Row {
        let mut expected = self.fwd();
        expected.target = target.to_owned();
        self.want = Want::Forwarded(status, Some(expected));
        self
    }
    pub fn absent(mut self, name: &'static str) -> Row {
        self.absent.push(name);
        self
    }
    pub fn check(mut self, check: Check) -> Row {
        self.check = Some(check);
        self
    }
    pub fn before(mut self, before: fn(&FakeGitlab)) -> Row {
        self.before = Some(before);
        self
    }

    pub fn versions(&self) -> &'static [&'static str] {
        match self.on {
            On::H1 => &["h1"],
            On::Both => &["h1", "h2"],
        }
    }

    pub fn content_type(&self) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.clone())
    }

    /// The request as sent, as GitLab must receive it.
    pub fn fwd(&self) -> Fwd {
        Fwd {
            method: self.method.clone(),
            target: self.target.clone(),
            body: self.body.clone(),
            content_type: if self.body.is_empty() {
                None
            } else {
                self.content_type()
            },
        }
    }

    pub fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    pub fn describe(&self) -> String {
        format!(
            "{} {} {:?} body={:?}",
            self.method,
            self.target,
            self.headers,
            String::from_utf8_lossy(&self.body)
        )
    }
}
