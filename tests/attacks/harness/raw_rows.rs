//! Rows written byte by byte: raw HTTP/1 exchanges (several requests on one
//! connection) and hand-written HTTP/2 requests.

use super::rows::{Fwd, Want};

/// A raw HTTP/1 exchange: bytes (possibly several requests) and the answers
/// expected in order. Answers after `required` may be missing (the server
/// closed the connection); every answer that does arrive must match.
#[derive(Clone)]
pub struct RawRow {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    pub wants: Vec<Want>,
    pub required: Option<usize>,
}

pub fn raw(name: &'static str, bytes: impl AsRef<[u8]>) -> RawRow {
    RawRow {
        name,
        bytes: bytes.as_ref().to_vec(),
        wants: Vec::new(),
        required: None,
    }
}

impl RawRow {
    pub fn then(mut self, want: Want) -> RawRow {
        self.wants.push(want);
        self
    }
    pub fn required(mut self, count: usize) -> RawRow {
        self.required = Some(count);
        self
    }
    /// Answers that must arrive: up to the last that is not a protocol refusal.
    pub fn required_count(&self) -> usize {
        self.required.unwrap_or_else(|| {
            self.wants
                .iter()
                .rposition(|w| !matches!(w, Want::Protocol))
                .map_or(0, |i| i + 1)
        })
    }
}

/// A hand-written HTTP/2 request: its header list (pseudo-headers included,
/// sent literally, in order) and its DATA frames.
#[derive(Clone)]
pub struct H2Row {
    pub name: &'static str,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub data: Vec<Vec<u8>>,
    pub want: Want,
}

pub fn h2(name: &'static str, method: &str, path: &str) -> H2Row {
    H2Row {
        name,
        headers: vec![
            (b":method".to_vec(), method.as_bytes().to_vec()),
            (b":scheme".to_vec(), b"http".to_vec()),
            (b":authority".to_vec(), b"glgate.test".to_vec()),
            (b":path".to_vec(), path.as_bytes().to_vec()),
            (b"private-token".to_vec(), b"{TOKEN}".to_vec()),
        ],
        data: Vec::new(),
        want: Want::Protocol,
    }
}

impl H2Row {
    /// Adds a field; a pseudo-header goes after the last pseudo-header.
    pub fn add(mut self, name: &[u8], value: &[u8]) -> H2Row {
        let at = if name.starts_with(b":") {
            self.headers
                .iter()
                .rposition(|(n, _)| n.starts_with(b":"))
                .map_or(0, |i| i + 1)
        } else {
            self.headers.len()
        };
        self.headers.insert(at, (name.to_vec(), value.to_vec()));
        self
    }
    /// Replaces a field's value in place (or adds it).
    pub fn set(mut self, name: &[u8], value: &[u8]) -> H2Row {
        match self.headers.iter_mut().find(|(n, _)| n == name) {
            Some(field) => field.1 = value.to_vec(),
            None => return self.add(name, value),
        }
        self
    }
    pub fn remove(mut self, name: &[u8]) -> H2Row {
        self.headers.retain(|(n, _)| n != name);
        self
    }
    pub fn data(mut self, chunk: &[u8]) -> H2Row {
        self.data.push(chunk.to_vec());
        self
    }
    pub fn want(mut self, want: Want) -> H2Row {
        self.want = want;
        self
    }
    pub fn pseudo(&self, name: &[u8]) -> String {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    }
    /// Forwarded exactly as sent.
    pub fn ok(self, status: u16) -> H2Row {
        let body: Vec<u8> = self.data.concat();
        let content_type = if body.is_empty() {
            None
        } else {
            self.headers
                .iter()
                .find(|(n, _)| n == b"content-type")
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        let expected = Fwd {
            method: self.pseudo(b":method"),
            target: self.pseudo(b":path"),
            body,
            content_type,
        };
        self.want(Want::Forwarded(status, Some(expected)))
    }
}
