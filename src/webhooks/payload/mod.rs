//! The payload policy: which GitLab webhook events pass to a client's
//! receiver, and what is removed from each before it is queued.
//!
//! A policy file (`policies/echoes.webhooks.yaml` is the shipped one) lists
//! event kinds; a kind not listed is dropped (default deny). Each listed kind
//! says which fields to `remove` (a deny-list), or which to `keep` (an
//! allow-list: only those fields, and the objects and lists holding them,
//! survive), or neither (the payload passes unchanged). Paths are described
//! in [`path`]; kinds, their headers and the object each belongs to in
//! [`kinds`].
//!
//! `keep` is the safer of the two: a field GitLab adds in a later version is
//! dropped until someone decides it may pass, whereas `remove` lets it
//! through. `remove` is easier to write and review against GitLab's
//! documented payloads; with `**` (any depth) it removes a field wherever
//! it appears (`**.email`), which protects against new places too.
//!
//! [`PayloadPolicy::apply`] is pure: it parses the body once, finds the kind
//! (the `X-Gitlab-Event` header and the body's `object_kind` or `event_name`
//! must agree), reads the project or group the event belongs to before
//! anything is removed, and yields either the minimized body or the reason
//! it is dropped.

mod kinds;
mod path;
mod raw;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use serde_saphyr::Spanned;

use crate::diagnostic::{Diagnostic, Diagnostics, Position, nearest, parse_yaml, read_source};
use crate::scope::Kind;

pub(crate) use kinds::{EventKind, KINDS, infer_header};
pub(crate) use path::FieldPath;
use path::{Removed, keep_only};
use raw::{RawEvent, RawPayloadPolicy};

/// The payload policy format version this build reads.
pub(crate) const PAYLOAD_POLICY_VERSION: u32 = 1;

/// At most this many removed paths are recorded per delivery (the audit
/// line stays bounded); past it, the last entry says how many more.
pub(crate) const MAX_REMOVED_RECORDED: usize = 32;

/// Reason: the body is not JSON (or nests deeper than the parser's limit of 128).
pub(crate) const PAYLOAD_NOT_JSON: &str = "payload_not_json";
/// Reason: the body is JSON but not an object.
pub(crate) const PAYLOAD_NOT_OBJECT: &str = "payload_not_object";
/// Reason: the kind is known but the policy does not list it.
pub(crate) const EVENT_KIND_NOT_ALLOWED: &str = "event_kind_not_allowed";
pub(crate) use kinds::{EVENT_HEADER_MISSING, EVENT_KIND_MISMATCH, EVENT_KIND_UNKNOWN};

/// Every reason a delivery can be dropped for, for documentation and metrics.
pub(crate) const DROP_REASONS: &[&str] = &[
    PAYLOAD_NOT_JSON,
    PAYLOAD_NOT_OBJECT,
    EVENT_HEADER_MISSING,
    EVENT_KIND_UNKNOWN,
    EVENT_KIND_MISMATCH,
    EVENT_KIND_NOT_ALLOWED,
];

/// What a reason code means, for people (`webhooks test`).
pub(crate) fn describe_reason(reason: &str) -> &'static str {
    match reason {
        PAYLOAD_NOT_JSON => "the body is not JSON (or nests deeper than 128 levels)",
        PAYLOAD_NOT_OBJECT => "the body is JSON but not an object",
        EVENT_HEADER_MISSING => "the delivery has no X-Gitlab-Event header",
        EVENT_KIND_UNKNOWN => "the X-Gitlab-Event header names no event kind glgate knows",
        EVENT_KIND_MISMATCH => {
            "the body's object_kind (or event_name) is missing or disagrees with the X-Gitlab-Event header"
        }
        EVENT_KIND_NOT_ALLOWED => "the policy does not list this event kind",
        _ => "",
    }
}

/// The object an event belongs to, read from the payload before anything is
/// removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EventObject {
    /// A project or a group.
    pub(crate) kind: Kind,
    /// Its full path as GitLab gives it (`path_with_namespace`,
    /// `full_path`); `None` when GitLab names it by id only (member events
    /// carry only the group's last path segment, vulnerability events only
    /// a project id): then resolve `id`.
    pub(crate) path: Option<String>,
    /// Its numeric id, when the payload gives it.
    pub(crate) id: Option<u64>,
}

impl std::fmt::Display for EventObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            Kind::Project => "project",
            Kind::Group => "group",
            Kind::Namespace => "namespace",
        };
        match (&self.path, self.id) {
            (Some(path), Some(id)) => write!(f, "{kind} {path} (id {id})"),
            (Some(path), None) => write!(f, "{kind} {path}"),
            (None, Some(id)) => write!(f, "{kind} id {id} (no full path in the payload)"),
            (None, None) => write!(f, "{kind} -"),
        }
    }
}

/// A delivery that passes, minimized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Minimized {
    /// The policy's kind name, e.g. `push`, `job`.
    pub(crate) kind: String,
    /// The project or group it belongs to.
    pub(crate) object: Option<EventObject>,
    /// The minimized JSON body.
    pub(crate) body: Vec<u8>,
    /// The concrete paths removed (list indices written `[*]`), each once,
    /// at most [`MAX_REMOVED_RECORDED`].
    pub(crate) removed: Vec<String>,
}

/// A delivery that does not pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Dropped {
    /// The kind, or `-` when none could be told.
    pub(crate) kind: String,
    /// The reason code (one of [`DROP_REASONS`]).
    pub(crate) reason: &'static str,
    /// The project or group it belongs to, when the body could be read.
    pub(crate) object: Option<EventObject>,
}

/// What a listed kind does to its payloads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fields {
    /// The payload passes unchanged.
    All,
    /// These fields are removed.
    Remove(Vec<FieldPath>),
    /// Only these fields survive (and the kind's discriminator).
    Keep(Vec<FieldPath>),
}

/// One listed kind.
#[derive(Debug)]
pub(crate) struct EventRule {
    kind: &'static EventKind,
    description: Option<String>,
    fields: Fields,
}

impl EventRule {
    /// The kind.
    pub(crate) fn kind(&self) -> &'static EventKind {
        self.kind
    }

    /// What it is passed for.
    pub(crate) fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// What is removed or kept.
    pub(crate) fn fields(&self) -> &Fields {
        &self.fields
    }
}

/// A compiled payload policy.
#[derive(Debug)]
pub(crate) struct PayloadPolicy {
    source: PathBuf,
    description: Option<String>,
    events: Vec<EventRule>,
}

/// The JSON Schema of payload policy files, generated from the types that read them.
pub(crate) fn json_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(RawPayloadPolicy).to_value();
    schema["title"] = "glgate webhook payload policy".into();
    schema
}

impl PayloadPolicy {
    /// Reads and compiles a payload policy file.
    pub(crate) fn load(path: &Path) -> Result<PayloadPolicy, Diagnostics> {
        let text = read_source(path, "webhook payload policy")?;
        PayloadPolicy::compile(path, &text)
    }

    /// Compiles policy `text`; `source` names the file in diagnostics.
    pub(crate) fn compile(source: &Path, text: &str) -> Result<PayloadPolicy, Diagnostics> {
        parse_yaml::<RawPayloadPolicy>(source, text)
            .and_then(|raw| compile(source, raw))
            .map_err(|problems| problems.with_source(source, text))
    }

    /// The file it was loaded from.
    pub(crate) fn source(&self) -> &Path {
        &self.source
    }

    /// What the policy is for.
    pub(crate) fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The listed kinds, in file order.
    pub(crate) fn events(&self) -> &[EventRule] {
        &self.events
    }

    /// The rule of a listed kind, by the kind's name.
    pub(crate) fn rule(&self, kind: &str) -> Option<&EventRule> {
        self.events.iter().find(|r| r.kind.name == kind)
    }

    /// The paths of `kind`'s rule that name nothing in `body` (for `webhooks
    /// test`: a typo in a `remove` path removes nothing, silently).
    pub(crate) fn unmatched(&self, kind: &str, body: &[u8]) -> Vec<&str> {
        let (Some(rule), Ok(value)) = (self.rule(kind), serde_json::from_slice::<Value>(body))
        else {
            return Vec::new();
        };
        match &rule.fields {
            Fields::All => Vec::new(),
            Fields::Remove(paths) | Fields::Keep(paths) => paths
                .iter()
                .filter(|p| !p.matches(&value))
                .map(FieldPath::as_str)
                .collect(),
        }
    }

    /// Decides one delivery: its `X-Gitlab-Event` header and body. Pure.
    pub(crate) fn apply(
        &self,
        event_header: Option<&str>,
        body: &[u8],
    ) -> Result<Minimized, Dropped> {
        let header_kind = || {
            event_header
                .and_then(|h| KINDS.iter().find(|k| k.header == h))
                .map_or("-", |k| k.name)
                .to_owned()
        };
        let value: Value = serde_json::from_slice(body).map_err(|_| Dropped {
            kind: header_kind(),
            reason: PAYLOAD_NOT_JSON,
            object: None,
        })?;
        let Value::Object(map) = value else {
            return Err(Dropped {
                kind: header_kind(),
                reason: PAYLOAD_NOT_OBJECT,
                object: None,
            });
        };
        let object = kinds::event_object(&map);
        let kind = kinds::classify(event_header, &map).map_err(|unclassified| Dropped {
            kind: unclassified.header_kind.map_or("-", |k| k.name).to_owned(),
            reason: unclassified.reason,
            object: object.clone(),
        })?;
        let Some(rule) = self.events.iter().find(|r| std::ptr::eq(r.kind, kind)) else {
            return Err(Dropped {
                kind: kind.name.to_owned(),
                reason: EVENT_KIND_NOT_ALLOWED,
                object,
            });
        };
        let mut removed = Removed::default();
        let mut value = Value::Object(map);
        match &rule.fields {
            Fields::All => {}
            Fields::Remove(paths) => {
                for path in paths {
                    path.remove_from(&mut value, &mut removed);
                }
            }
            Fields::Keep(paths) => {
                let mut paths = paths.clone();
                paths.push(FieldPath::field(kind.field));
                value = keep_only(value, &paths, &mut removed);
            }
        }
        // Serializing a `Value` (string keys, finite numbers) cannot fail.
        let body = serde_json::to_vec(&value).unwrap_or_default();
        Ok(Minimized {
            kind: kind.name.to_owned(),
            object,
            body,
            removed: removed.into_list(MAX_REMOVED_RECORDED),
        })
    }
}

/// Hints for kind names people are likely to write instead of glgate's.
const KIND_ALIASES: &[(&str, &str)] = &[
    ("build", "job"),
    ("tag", "tag_push"),
    ("comment", "note"),
    ("merge_requests", "merge_request"),
    ("mr", "merge_request"),
    ("wiki", "wiki_page"),
    ("resource_access_token", "access_token"),
    ("group_member", "member"),
];

fn compile(source: &Path, raw: RawPayloadPolicy) -> Result<PayloadPolicy, Diagnostics> {
    let mut problems = Diagnostics::default();
    let mut problem = |position: Position, key: String, message: String, hint: Option<String>| {
        let mut diagnostic = Diagnostic::new(source, position, key, message);
        diagnostic.hint = hint;
        problems.push(diagnostic);
    };
    if raw.version.value != PAYLOAD_POLICY_VERSION {
        problem(
            Position::of(&raw.version),
            "version".into(),
            format!("unsupported webhook policy version {}", raw.version.value),
            Some(format!(
                "this glgate reads version {PAYLOAD_POLICY_VERSION}"
            )),
        );
    }
    if raw.events.value.is_empty() {
        problem(
            Position::of(&raw.events),
            "events".into(),
            "a webhook policy needs at least one event kind (every other kind is dropped)".into(),
            Some("e.g. - kind: push".into()),
        );
    }
    let mut seen = HashSet::new();
    let mut events = Vec::with_capacity(raw.events.value.len());
    for (index, spanned) in raw.events.value.iter().enumerate() {
        let key = format!("events[{index}]");
        let event: &RawEvent = &spanned.value;
        let name = event.kind.value.as_str();
        let kind = kinds::by_name(name);
        match kind {
            None => {
                let hint = KIND_ALIASES
                    .iter()
                    .find(|(alias, _)| *alias == name)
                    .map(|(alias, kind)| format!("{alias} events are `kind: {kind}` here"))
                    .or_else(|| {
                        nearest(name, KINDS.iter().map(|k| k.name))
                            .map(|near| format!("did you mean `{near}`?"))
                    })
                    .or_else(|| {
                        let names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
                        Some(format!("one of {}", names.join(", ")))
                    });
                problem(
                    Position::of(&event.kind),
                    format!("{key}.kind"),
                    format!("unknown event kind '{}'", crate::canonical::printable(name)),
                    hint,
                );
            }
            Some(kind) if !seen.insert(kind.name) => problem(
                Position::of(&event.kind),
                format!("{key}.kind"),
                format!("event kind '{name}' is listed twice"),
                Some("list each kind once, with all its fields".into()),
            ),
            Some(_) => {}
        }
        let mut paths = |list: &Spanned<Vec<Spanned<String>>>, field: &str| {
            let mut parsed = Vec::with_capacity(list.value.len());
            if list.value.is_empty() {
                problem(
                    Position::of(list),
                    format!("{key}.{field}"),
                    format!("'{field}' lists no field"),
                    Some(match field {
                        "keep" => "an empty keep would deliver nothing but the kind: leave the kind out to drop it".into(),
                        _ => "leave 'remove' out to pass the payload unchanged".into(),
                    }),
                );
            }
            for (i, path) in list.value.iter().enumerate() {
                match FieldPath::parse(&path.value) {
                    Ok(p) => parsed.push(p),
                    Err(error) => problem(
                        Position::of(path),
                        format!("{key}.{field}[{i}]"),
                        error.message,
                        Some(error.hint.into()),
                    ),
                }
            }
            parsed
        };
        let fields = match (&event.remove, &event.keep) {
            (Some(remove), Some(keep)) => {
                let _ = (paths(remove, "remove"), paths(keep, "keep"));
                problem(
                    Position::of(keep),
                    format!("{key}.keep"),
                    "an event lists 'remove' or 'keep', not both".into(),
                    Some("keep (an allow-list) is the safer: new GitLab fields stay out".into()),
                );
                Fields::All
            }
            (Some(remove), None) => Fields::Remove(paths(remove, "remove")),
            (None, Some(keep)) => Fields::Keep(paths(keep, "keep")),
            (None, None) => Fields::All,
        };
        if let Some(kind) = kind {
            events.push(EventRule {
                kind,
                description: event.description.clone(),
                fields,
            });
        }
    }
    problems.into_result(PayloadPolicy {
        source: source.to_path_buf(),
        description: raw.description,
        events,
    })
}

#[cfg(test)]
mod tests;
