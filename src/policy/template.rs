//! Path templates and their typed params.
//!
//! A template such as `/projects/{project}/merge_requests/{iid}` is a list of
//! literal segments and typed params. Each param matches exactly one raw path
//! segment (GitLab's `[^/]+`) whose single decoding fits the param's syntax.

use std::fmt;

/// The syntax of a typed path param, chosen by the param's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParamKind {
    /// A project: numeric id or full path `group/sub/project` (sent as `group%2Fsub%2Fproject`).
    Project,
    /// A group or namespace: numeric id or full path `group/sub`.
    Group,
    /// A positive integer id (`iid`, `hook_id`, `user_id`…).
    Id,
    /// A commit SHA: 7 to 64 hex digits.
    Sha,
    /// A label: numeric id or label name.
    Label,
}

/// Which name binds which kind. The table is closed: an unknown name is a
/// load error, so every param has a precise syntax.
pub(crate) const PARAM_NAMES: &[(&str, ParamKind)] = &[
    ("project", ParamKind::Project),
    ("group", ParamKind::Group),
    ("namespace", ParamKind::Group),
    ("id", ParamKind::Id),
    ("iid", ParamKind::Id),
    ("hook_id", ParamKind::Id),
    ("user_id", ParamKind::Id),
    ("member_id", ParamKind::Id),
    ("note_id", ParamKind::Id),
    ("pipeline_id", ParamKind::Id),
    ("job_id", ParamKind::Id),
    ("token_id", ParamKind::Id),
    ("sha", ParamKind::Sha),
    ("label_id", ParamKind::Label),
];

/// Deepest namespace nesting GitLab allows (20 levels of groups plus the project).
const MAX_PATH_PARTS: usize = 21;
/// Longest label name GitLab accepts.
const MAX_LABEL_CHARS: usize = 255;

impl ParamKind {
    /// The kind bound to a param name, if the name is known.
    pub(crate) fn for_name(name: &str) -> Option<ParamKind> {
        PARAM_NAMES
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, kind)| *kind)
    }

    /// Whether a decoded segment value fits this kind's syntax.
    pub(crate) fn accepts(self, value: &str) -> bool {
        match self {
            ParamKind::Project => is_numeric_id(value) || is_full_path(value, 2),
            ParamKind::Group => is_numeric_id(value) || is_full_path(value, 1),
            ParamKind::Id => is_numeric_id(value),
            ParamKind::Sha => {
                (7..=64).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_hexdigit())
            }
            ParamKind::Label => {
                is_numeric_id(value)
                    || (!value.trim().is_empty()
                        && value.chars().count() <= MAX_LABEL_CHARS
                        && !value.chars().any(char::is_control))
            }
        }
    }
}

/// `[1-9][0-9]{0,18}`: fits an i64, no leading zero (GitLab would read `05` as 5).
fn is_numeric_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 19
        && !value.starts_with('0')
        && value.bytes().all(|b| b.is_ascii_digit())
}

/// `part(/part)*` with at least `min_parts` parts, each part a GitLab path
/// name: `[A-Za-z0-9_.][A-Za-z0-9_.-]*`, never `.` or `..`.
fn is_full_path(value: &str, min_parts: usize) -> bool {
    let mut parts = 0;
    for part in value.split('/') {
        parts += 1;
        let mut bytes = part.bytes();
        let first_ok =
            matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
        if !first_ok
            || part == "."
            || part == ".."
            || part.len() > 255
            || !bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return false;
        }
    }
    (min_parts..=MAX_PATH_PARTS).contains(&parts)
}

/// One segment of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateSegment {
    /// Must equal the raw segment exactly.
    Literal(String),
    /// A typed param.
    Param {
        /// The param's name, e.g. `project`.
        name: String,
        /// Its syntax.
        kind: ParamKind,
    },
}

/// A parsed path template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    text: String,
    segments: Vec<TemplateSegment>,
}

impl Template {
    /// Parses a template; the error says what is wrong and what is valid.
    pub(crate) fn parse(text: &str) -> Result<Template, String> {
        if text.starts_with("/api/") {
            return Err(format!(
                "templates are relative to /api/v4: write '{}'",
                text.trim_start_matches("/api/v4")
            ));
        }
        let inner = text
            .strip_prefix('/')
            .ok_or_else(|| "a template starts with '/', e.g. /projects/{project}".to_owned())?;
        if inner.is_empty() {
            return Err("the API root is answered by glgate itself; it needs no rule".to_owned());
        }
        let mut segments = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for part in inner.split('/') {
            if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                let kind = ParamKind::for_name(name).ok_or_else(|| {
                    let known: Vec<&str> = PARAM_NAMES.iter().map(|(n, _)| *n).collect();
                    let guess = crate::diagnostic::nearest(name, known.iter().copied())
                        .map(|near| format!("did you mean '{{{near}}}'? "))
                        .unwrap_or_default();
                    format!(
                        "unknown path param '{{{name}}}'; {guess}known params: {}",
                        known.join(", ")
                    )
                })?;
                if names.contains(&name) {
                    return Err(format!("path param '{{{name}}}' appears twice"));
                }
                names.push(name);
                segments.push(TemplateSegment::Param {
                    name: name.to_owned(),
                    kind,
                });
            } else if !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            {
                segments.push(TemplateSegment::Literal(part.to_owned()));
            } else {
                return Err(format!(
                    "segment '{part}' is neither a literal ([a-z0-9_-]+) nor a param such as {{project}}"
                ));
            }
        }
        Ok(Template {
            text: text.to_owned(),
            segments,
        })
    }

    /// The template as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Its segments.
    pub fn segments(&self) -> &[TemplateSegment] {
        &self.segments
    }

    /// The names of its params, in order.
    pub(crate) fn param_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            TemplateSegment::Param { name, .. } => Some(name.as_str()),
            TemplateSegment::Literal(_) => None,
        })
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert!(ParamKind::Project.accepts("5"));
        assert!(ParamKind::Project.accepts("acme/sub/backend"));
        assert!(ParamKind::Project.accepts("Acme/.github"));
        assert!(!ParamKind::Project.accepts("acme"));
        assert!(!ParamKind::Project.accepts("05"));
        assert!(!ParamKind::Project.accepts("acme/../x"));
        assert!(!ParamKind::Project.accepts("acme/-x"));
        assert!(!ParamKind::Project.accepts("acme/x y"));
        assert!(ParamKind::Group.accepts("acme"));
        assert!(ParamKind::Id.accepts("42"));
        assert!(!ParamKind::Id.accepts("-1"));
        assert!(!ParamKind::Id.accepts("99999999999999999999"));
        assert!(ParamKind::Sha.accepts("deadbeef"));
        assert!(!ParamKind::Sha.accepts("main"));
        assert!(ParamKind::Label.accepts("echoes/intent: feature"));
        assert!(!ParamKind::Label.accepts(" "));
    }

    #[test]
    fn parse_errors() {
        assert!(
            Template::parse("/api/v4/projects")
                .unwrap_err()
                .contains("relative")
        );
        assert!(Template::parse("projects").is_err());
        assert!(
            Template::parse("/projects/{proj}")
                .unwrap_err()
                .contains("known params")
        );
        assert!(Template::parse("/projects//x").is_err());
        assert!(Template::parse("/Projects").is_err());
        assert!(Template::parse("/projects/{id}/x/{id}").is_err());
        let t = Template::parse("/projects/{project}/merge_requests/{iid}").unwrap();
        assert_eq!(t.param_names().collect::<Vec<_>>(), ["project", "iid"]);
    }
}
