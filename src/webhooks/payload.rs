//! (being written: the payload policy. This interface stands until it lands.)

use std::path::Path;

use crate::scope::Kind;

/// A client's payload policy.
#[derive(Debug)]
pub(crate) struct PayloadPolicy;

/// A delivery that passes, minimized.
#[derive(Debug)]
pub(crate) struct Minimized {
    pub(crate) kind: String,
    pub(crate) object: Option<EventObject>,
    pub(crate) body: Vec<u8>,
    pub(crate) removed: Vec<String>,
}

/// A delivery that does not pass.
#[derive(Debug)]
pub(crate) struct Dropped {
    pub(crate) kind: String,
    pub(crate) reason: &'static str,
    pub(crate) object: Option<EventObject>,
}

/// The object an event belongs to.
#[derive(Debug, Clone)]
pub(crate) struct EventObject {
    pub(crate) kind: Kind,
    pub(crate) path: String,
    pub(crate) id: Option<u64>,
}

impl PayloadPolicy {
    pub(crate) fn load(path: &Path) -> Result<PayloadPolicy, crate::diagnostic::Diagnostics> {
        let _ = path;
        Ok(PayloadPolicy)
    }

    pub(crate) fn apply(
        &self,
        event_header: Option<&str>,
        body: &[u8],
    ) -> Result<Minimized, Dropped> {
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| Dropped {
            kind: "-".into(),
            reason: "payload_not_json",
            object: None,
        })?;
        let object = value
            .pointer("/project/path_with_namespace")
            .and_then(|v| v.as_str())
            .map(|path| EventObject {
                kind: Kind::Project,
                path: path.to_owned(),
                id: None,
            });
        Ok(Minimized {
            kind: event_header.unwrap_or("-").to_owned(),
            object,
            body: body.to_vec(),
            removed: Vec::new(),
        })
    }
}
