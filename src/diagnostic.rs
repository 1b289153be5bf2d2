//! Located errors for config and policy files.
//!
//! Every problem in a file an operator wrote is reported with the file, the
//! line and column, the key, what is wrong and what would be valid, and all
//! problems of a load are reported together.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;

mod indentation;
mod unknown_keys;

use indentation::Slips;

/// A position in a YAML file (1-based; 0 when unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub column: u64,
}

impl Position {
    /// The position where a spanned YAML value was written.
    pub(crate) fn of<T>(spanned: &Spanned<T>) -> Position {
        Position {
            line: spanned.referenced.line(),
            column: spanned.referenced.column(),
        }
    }
}

/// One problem in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the problem is in.
    pub file: PathBuf,
    /// Where in the file.
    pub position: Position,
    /// The key path, e.g. `rules[3].params.url`.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// What would be valid, when there is something useful to say.
    pub hint: Option<String>,
    /// The source line the position points into, shown with a caret.
    pub snippet: Option<String>,
}

impl Diagnostic {
    /// A problem at `position` under `key`.
    pub(crate) fn new(
        file: &Path,
        position: Position,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            file: file.to_path_buf(),
            position,
            key: key.into(),
            message: message.into(),
            hint: None,
            snippet: None,
        }
    }

    /// Adds what would be valid.
    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// A YAML syntax or shape error, as reported by the parser.
    pub(crate) fn from_yaml(file: &Path, error: &serde_saphyr::Error) -> Diagnostic {
        let position = error
            .location()
            .map(|l| Position {
                line: l.line(),
                column: l.column(),
            })
            .unwrap_or_default();
        let message = yaml_message(error);
        let hint = typo_hint(&message).or_else(|| flow_hint(&message));
        let mut diagnostic = Diagnostic::new(file, position, "", message);
        diagnostic.hint = hint;
        diagnostic
    }
}

impl Diagnostic {
    /// A parser error moved to the line an indentation slip is on, when one
    /// is near: the parser notices a slip lines later (or, as a missing
    /// field, at the mapping's first line), and the operator must fix the
    /// slip. Where the parser stopped stays in the hint.
    fn at_indentation_slip(mut self, text: &str) -> Diagnostic {
        if self.hint.is_some() || self.position.line == 0 {
            return self;
        }
        let slips = Slips::of(text);
        if let Some((line, width)) = slips.near(self.position.line) {
            let mut hint = slips.describe(line, width);
            if line != self.position.line {
                hint.push_str(&format!(
                    " (the parser noticed at line {}, column {})",
                    self.position.line, self.position.column
                ));
                self.position = Position {
                    line,
                    column: u64::try_from(width + 1).unwrap_or(0),
                };
            }
            self.hint = Some(hint);
        }
        self
    }
}

/// The parser's one-line message, without its own "line X column Y" prefix
/// and source snippet (we print the location ourselves).
fn yaml_message(error: &serde_saphyr::Error) -> String {
    let rendered = error.to_string();
    let first = rendered.lines().next().unwrap_or_default();
    let without_error = first.strip_prefix("error: ").unwrap_or(first);
    match without_error.split_once(": ") {
        Some((location, rest)) if location.starts_with("line ") => rest.to_owned(),
        _ => without_error.to_owned(),
    }
}

/// For the commonest YAML trap in policies: a template such as
/// `/projects/{project}` inside a flow list `[…]`, where `{` opens a mapping.
fn flow_hint(message: &str) -> Option<String> {
    (message.contains("flow sequence") || message.contains("flow mapping")).then(|| {
        "inside [ … ] a '{' starts a YAML mapping: quote each template, as in \
         paths: ['/projects/{project}'], or list them one per line with '- '"
            .to_owned()
    })
}

/// "did you mean `methods`?" for serde's "unknown field `method`, expected
/// one of …" and "unknown variant …" messages.
fn typo_hint(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))?;
    let (given, rest) = rest.split_once('`')?;
    let expected = rest.split_once("expected ")?.1;
    let expected = expected.strip_prefix("one of ").unwrap_or(expected);
    let candidates: Vec<String> = expected
        .split([',', ' '])
        .map(|c| c.trim().trim_matches('`').to_owned())
        .filter(|c| !c.is_empty() && c != "or")
        .collect();
    nearest(given, candidates.iter().map(String::as_str))
        .map(|near| format!("did you mean `{near}`?"))
        .or_else(|| {
            // A parameter type: free text has no type of its own.
            (matches!(given, "string" | "str" | "text") && candidates.iter().any(|c| c == "any"))
                .then(|| {
                    "free text is `type: any` (bound it with max_length), or a `pattern:`"
                        .to_owned()
                })
        })
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.position.line > 0 {
            write!(f, ":{}:{}", self.position.line, self.position.column)?;
        }
        f.write_str(": ")?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)?;
        if let Some(line) = &self.snippet {
            let number = self.position.line.to_string();
            let gutter = " ".repeat(number.len());
            let caret =
                " ".repeat(usize::try_from(self.position.column.saturating_sub(1)).unwrap_or(0));
            write!(f, "\n {gutter} |\n {number} | {line}\n {gutter} | {caret}^")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n    hint: {hint}")?;
        }
        Ok(())
    }
}

/// Reads a file that glgate compiles; `what` names its role ("config").
pub(crate) fn read_source(path: &Path, what: &str) -> Result<String, Diagnostics> {
    std::fs::read_to_string(path).map_err(|e| {
        Diagnostics(vec![Diagnostic::new(
            path,
            Position::default(),
            "",
            format!("cannot read the {what} file: {e}"),
        )])
    })
}

/// Parses YAML `text` from `source` into `T`, as one located diagnostic on error.
pub(crate) fn parse_yaml<T: serde::de::DeserializeOwned>(
    source: &Path,
    text: &str,
) -> Result<T, Diagnostics> {
    serde_saphyr::from_str(text).map_err(|e| {
        Diagnostics(vec![
            Diagnostic::from_yaml(source, &e).at_indentation_slip(text),
        ])
    })
}

/// Parses YAML `text` from `source` into `T` like [`parse_yaml`], but when
/// the typed read fails, every key the file's schema does not know is
/// reported too, not only the first one serde met.
pub(crate) fn parse_yaml_all_keys<T: serde::de::DeserializeOwned + schemars::JsonSchema>(
    source: &Path,
    text: &str,
) -> Result<T, Diagnostics> {
    serde_saphyr::from_str(text).map_err(|error| {
        let first = Diagnostic::from_yaml(source, &error);
        let schema = schemars::schema_for!(T).to_value();
        let mut all = unknown_keys::find(source, text, &schema);
        // The parser's own error is one of the unknown keys found (serde
        // stopped there) unless it is about something else, such as a value
        // of the wrong type: then it is a problem of its own.
        if !all.iter().any(|d| d.position.line == first.position.line) {
            all.push(first.at_indentation_slip(text));
            all.sort_by_key(|d| (d.position.line, d.position.column));
        }
        Diagnostics(all)
    })
}

/// All the problems found while loading, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Adds one problem.
    pub(crate) fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    /// Whether no problem was found.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Attaches the source line to every diagnostic located in `file`, and
    /// to one without a hint the line of a nearby indentation slip: a value
    /// read wrongly (a list item that became part of the item above) is
    /// often a line indented one space too far.
    pub(crate) fn with_source(mut self, file: &Path, text: &str) -> Diagnostics {
        let lines: Vec<&str> = text.lines().collect();
        let slips = Slips::of(text);
        for diagnostic in &mut self.0 {
            if diagnostic.file == file && diagnostic.hint.is_none() && diagnostic.position.line > 0
            {
                diagnostic.hint = slips
                    .near(diagnostic.position.line)
                    .map(|(line, width)| slips.describe(line, width));
            }
            if diagnostic.file == file
                && diagnostic.snippet.is_none()
                && diagnostic.position.line > 0
            {
                let index = usize::try_from(diagnostic.position.line - 1).unwrap_or(usize::MAX);
                diagnostic.snippet = lines.get(index).map(|line| (*line).to_owned());
            }
        }
        self
    }

    /// `Ok(value)` when no problem was found.
    pub(crate) fn into_result<T>(self, value: T) -> Result<T, Diagnostics> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

/// The closest candidate to `given` by edit distance, when close enough to be a typo.
pub(crate) fn nearest<'a>(
    given: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(given, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// An error and its causes as one line of words (`what: why: why`), for
/// messages a person reads: never a `Debug` rendering of nested types. A
/// cause that only repeats the message before it is left out.
pub(crate) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !said.is_empty() && !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_finds_typos() {
        assert_eq!(
            nearest("methdos", ["methods", "paths", "params"]),
            Some("methods")
        );
        assert_eq!(nearest("zzzzzz", ["methods", "paths"]), None);
    }

    #[test]
    fn yaml_errors_show_the_line_a_caret_and_the_nearest_key() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Rule {
            methods: Vec<String>,
            paths: Vec<String>,
        }
        let text = "methods: [GET]\npath: [/user]\n";
        let file = Path::new("p.yaml");
        let problems = parse_yaml::<Rule>(file, text)
            .unwrap_err()
            .with_source(file, text);
        assert_eq!(
            problems.to_string(),
            "p.yaml:2:1: unknown field `path`, expected one of methods, paths\n   |\n 2 | path: [/user]\n   | ^\n    hint: did you mean `paths`?"
        );
    }

    #[test]
    fn display_has_file_line_key_and_hint() {
        let d = Diagnostic::new(
            Path::new("p.yaml"),
            Position { line: 3, column: 5 },
            "rules[0].methods",
            "unknown method 'GETT'",
        )
        .hint("one of GET, HEAD, POST, PUT, PATCH, DELETE");
        assert_eq!(
            d.to_string(),
            "p.yaml:3:5: rules[0].methods: unknown method 'GETT'\n    hint: one of GET, HEAD, POST, PUT, PATCH, DELETE"
        );
    }
}
