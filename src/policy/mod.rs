//! The allowlist policy: templates, params, constraints and the decision.
//!
//! A policy file is compiled once into a [`Policy`]; deciding a request is
//! pure (no I/O) and happens in two steps, because the body is read only when
//! the matched rule needs it: [`Policy::route`] matches method and path, then
//! [`Matched::check`] checks the merged query and body parameters and yields
//! a [`Permit`]. Anything no rule allows is refused.

mod body;
mod decision;
mod field;
mod matcher;
mod params;
mod raw;
mod template;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use body::parse_body;
pub use decision::{Binding, Decision, Denial, Permit, Reason};
pub(crate) use field::FieldMatch;
pub(crate) use params::{Check, FORBIDDEN_PARAMS, ParamRules, ParamSpec};
pub use template::{Template, TemplateSegment};

use crate::canonical::{Method, Param, RequestHead, printable};
use crate::diagnostic::{
    Diagnostic, Diagnostics, Position, nearest, parse_yaml_all_keys, read_source,
};
use matcher::{Leaf, Matcher, Miss};
use raw::{RawParam, RawPolicy, RawRule};

/// The policy file format version this build reads.
pub(crate) const POLICY_VERSION: u32 = 1;

/// Default cap on a request body checked by a rule, when the rule sets none.
pub(crate) const DEFAULT_MAX_BODY_BYTES: u64 = 64 * 1024;

/// One compiled allow rule.
#[derive(Debug)]
pub struct Rule {
    id: Arc<str>,
    description: Option<String>,
    methods: Vec<Method>,
    templates: Vec<Template>,
    path_params: BTreeMap<String, ParamSpec>,
    params: Option<ParamRules>,
    max_body_bytes: u64,
    owned_if: Option<Arc<FieldMatch>>,
    changes_only: Option<Arc<FieldMatch>>,
    response_filter: Option<Arc<FieldMatch>>,
}

impl Rule {
    /// The rule's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What the rule is for.
    pub(crate) fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The methods it allows (with `HEAD` wherever `GET` is allowed).
    pub fn methods(&self) -> &[Method] {
        &self.methods
    }

    /// Its path templates.
    pub fn templates(&self) -> &[Template] {
        &self.templates
    }

    /// Constraints on path params beyond their type.
    pub(crate) fn path_params(&self) -> &BTreeMap<String, ParamSpec> {
        &self.path_params
    }

    /// The closed set of accepted parameters, or `None` for a read-only rule
    /// that accepts any query parameter and no body.
    pub(crate) fn params(&self) -> Option<&ParamRules> {
        self.params.as_ref()
    }

    /// The largest body this rule reads.
    pub(crate) fn max_body_bytes(&self) -> u64 {
        self.max_body_bytes
    }

    /// The condition an existing resource must meet before it is touched.
    pub(crate) fn owned_if(&self) -> Option<&FieldMatch> {
        self.owned_if.as_deref()
    }

    /// Which items of a set-valued field a request may add or remove.
    pub(crate) fn changes_only(&self) -> Option<&FieldMatch> {
        self.changes_only.as_deref()
    }

    /// The condition list items must meet to be relayed.
    pub(crate) fn response_filter(&self) -> Option<&FieldMatch> {
        self.response_filter.as_deref()
    }
}

/// A compiled policy.
#[derive(Debug)]
pub struct Policy {
    name: String,
    description: Option<String>,
    source: PathBuf,
    rules: Vec<Rule>,
    matcher: Matcher,
}

/// A request whose method and path a rule allows; its parameters are not checked yet.
#[derive(Debug)]
pub struct Matched<'p> {
    rule: &'p Rule,
    leaf: &'p Leaf,
    bindings: Vec<Binding>,
}

/// The JSON Schema of policy files, generated from the types that read them.
pub(crate) fn json_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(RawPolicy).to_value();
    schema["title"] = "glgate policy".into();
    schema
}

impl Policy {
    /// Reads and compiles a policy file.
    pub(crate) fn load(path: &Path) -> Result<Policy, Diagnostics> {
        let text = read_source(path, "policy")?;
        Policy::compile(path, &text)
    }

    /// Compiles policy `text`; `source` names the file in diagnostics.
    pub fn compile(source: &Path, text: &str) -> Result<Policy, Diagnostics> {
        parse_yaml_all_keys::<RawPolicy>(source, text)
            .and_then(|raw| Compiler::new(source).compile(raw))
            .map_err(|problems| problems.with_source(source, text))
    }

    /// The policy's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// What the policy is for.
    pub(crate) fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The file it was loaded from.
    pub(crate) fn source(&self) -> &Path {
        &self.source
    }

    /// Its rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Matches method and path: the most specific template wins, then the
    /// method must be allowed there and path params must meet the rule's constraints.
    pub fn route(&self, head: &RequestHead) -> Result<Matched<'_>, Denial> {
        let (leaf, values) = self.matcher.find(head.segments()).map_err(|miss| {
            Denial::unmatched(match miss {
                Miss::NoRoute => Reason::NoRoute,
                Miss::EncodedLiteral { index, literal } => Reason::EncodedRouteName {
                    segment: head
                        .segments()
                        .get(index)
                        .map(|s| crate::canonical::printable(&s.raw))
                        .unwrap_or_default(),
                    literal: literal.into(),
                },
            })
        })?;
        let method = head.method();
        let lookup = match method {
            Method::Head if leaf.rules[Method::Head.index()].is_none() => Method::Get,
            other => other,
        };
        let Some(rule_index) = leaf.rules[lookup.index()] else {
            return Err(Denial {
                rule: None,
                template: Some(leaf.template.clone()),
                reason: Reason::MethodNotAllowed {
                    method,
                    allowed: leaf.allowed_methods(),
                },
            });
        };
        let rule = &self.rules[rule_index];
        let bindings: Vec<Binding> = leaf
            .param_names
            .iter()
            .zip(values)
            .map(|(name, value)| Binding {
                name: name.clone(),
                value: value.to_owned(),
            })
            .collect();
        let matched = Matched {
            rule,
            leaf,
            bindings,
        };
        for binding in &matched.bindings {
            if let Some(spec) = rule.path_params.get(&*binding.name)
                && !spec.accepts_scalar(&binding.value)
            {
                return Err(matched.refuse(Reason::InvalidPathParam {
                    name: binding.name.to_string(),
                    expected: spec.describe(),
                }));
            }
        }
        Ok(matched)
    }

    /// Decides a whole request at once (used by `policy explain` and tests).
    pub fn evaluate(&self, head: &RequestHead, body: &[Param]) -> Decision {
        match self.route(head) {
            Ok(matched) => matched.check(head.query(), body),
            Err(denial) => Decision::Deny(denial),
        }
    }
}

impl<'p> Matched<'p> {
    /// The rule that matched.
    pub fn rule(&self) -> &'p Rule {
        self.rule
    }

    /// The template that matched.
    pub(crate) fn template(&self) -> &'p str {
        &self.leaf.template
    }

    /// Whether the rule reads a request body at all.
    pub fn accepts_body(&self) -> bool {
        self.rule.params.is_some()
    }

    /// A refusal by this rule, for problems found outside the policy (the body).
    pub(crate) fn refuse(&self, reason: Reason) -> Denial {
        Denial {
            rule: Some(self.rule.id.clone()),
            template: Some(self.leaf.template.clone()),
            reason,
        }
    }

    /// Checks the merged query and body parameters; allows or refuses.
    pub fn check(&self, query: &[Param], body: &[Param]) -> Decision {
        let verdict = params::merge(query, body).and_then(|merged| match &self.rule.params {
            Some(rules) => rules.check(&merged),
            None if !body.is_empty() => Err(Reason::BodyNotAllowed),
            None => Ok(()),
        });
        match verdict {
            Ok(()) => Decision::Allow(Permit {
                rule: self.rule.id.clone(),
                template: self.leaf.template.clone(),
                bindings: self.bindings.clone(),
                owned_if: self.rule.owned_if.clone(),
                changes_only: self.rule.changes_only.clone(),
                response_filter: self.rule.response_filter.clone(),
            }),
            Err(reason) => Decision::Deny(self.refuse(reason)),
        }
    }
}

/// Turns a [`RawPolicy`] into a [`Policy`], collecting every problem.
struct Compiler<'a> {
    source: &'a Path,
    problems: Diagnostics,
}

const RULE_ID_HINT: &str = "letters, digits, '.', '_' and '-', e.g. projects.read";

impl<'a> Compiler<'a> {
    fn new(source: &'a Path) -> Compiler<'a> {
        Compiler {
            source,
            problems: Diagnostics::default(),
        }
    }

    fn problem(&mut self, position: Position, key: String, message: String, hint: Option<String>) {
        let mut diagnostic = Diagnostic::new(self.source, position, key, message);
        diagnostic.hint = hint;
        self.problems.push(diagnostic);
    }

    fn compile(mut self, raw: RawPolicy) -> Result<Policy, Diagnostics> {
        if raw.version.value != POLICY_VERSION {
            self.problem(
                Position::of(&raw.version),
                "version".into(),
                format!("unsupported policy version {}", raw.version.value),
                Some(format!("this glgate reads version {POLICY_VERSION}")),
            );
        }
        if raw.rules.value.is_empty() {
            self.problem(
                Position::of(&raw.rules),
                "rules".into(),
                "a policy needs at least one rule (everything else is refused)".into(),
                None,
            );
        }
        let mut rules = Vec::with_capacity(raw.rules.value.len());
        let mut ids: Vec<Arc<str>> = Vec::new();
        let mut seen = HashSet::new();
        let mut matcher = Matcher::default();
        for (index, spanned) in raw.rules.value.iter().enumerate() {
            let key = format!("rules[{index}]");
            let id = &spanned.value.id;
            if !seen.insert(id.value.clone()) {
                self.problem(
                    Position::of(id),
                    format!("{key}.id"),
                    format!("rule id '{}' is used twice", id.value),
                    Some("rule ids must be unique".into()),
                );
            }
            ids.push(Arc::from(id.value.as_str()));
            if let Some(rule) = self.rule(&key, &spanned.value) {
                for (template, position) in rule.templates.iter().zip(&spanned.value.paths.value) {
                    if let Err(message) = matcher.insert(template, rules.len(), &rule.methods, &ids)
                    {
                        self.problem(
                            Position::of(position),
                            format!("{key}.paths"),
                            message,
                            None,
                        );
                    }
                }
                rules.push(rule);
            } else {
                // Keep indexes aligned with `ids` for conflict messages.
                rules.push(Rule {
                    id: ids[index].clone(),
                    description: None,
                    methods: Vec::new(),
                    templates: Vec::new(),
                    path_params: BTreeMap::new(),
                    params: None,
                    max_body_bytes: 0,
                    owned_if: None,
                    changes_only: None,
                    response_filter: None,
                });
            }
        }
        let policy = Policy {
            name: raw.name.value,
            description: raw.description,
            source: self.source.to_path_buf(),
            rules,
            matcher,
        };
        self.problems.into_result(policy)
    }

    /// Compiles one rule; `None` when it has problems (already recorded).
    fn rule(&mut self, key: &str, raw: &RawRule) -> Option<Rule> {
        let before = self.problems.0.len();
        let id = &raw.id.value;
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            self.problem(
                Position::of(&raw.id),
                format!("{key}.id"),
                format!("invalid rule id '{}'", printable(id)),
                Some(RULE_ID_HINT.into()),
            );
        }
        let methods = self.methods(key, raw);
        let templates: Vec<Template> = raw
            .paths
            .value
            .iter()
            .filter_map(|path| match Template::parse(&path.value) {
                Ok(template) => Some(template),
                Err(message) => {
                    self.problem(Position::of(path), format!("{key}.paths"), message, None);
                    None
                }
            })
            .collect();
        if raw.paths.value.is_empty() {
            self.problem(
                Position::of(&raw.paths),
                format!("{key}.paths"),
                "a rule needs at least one path template".into(),
                Some("e.g. /projects/{project}".into()),
            );
        }
        let path_params = self.path_params(key, raw, &templates);
        let params = self.params(key, raw, &methods);
        let max_body_bytes = match &raw.max_body_bytes {
            Some(max) if raw.params.is_none() => {
                self.problem(
                    Position::of(max),
                    format!("{key}.max_body_bytes"),
                    "this rule reads no body (it has no 'params')".into(),
                    None,
                );
                0
            }
            Some(max) => max.value,
            None => DEFAULT_MAX_BODY_BYTES,
        };
        let owned_if = self.field_match(raw.owned_if.as_ref(), &format!("{key}.owned_if"));
        let changes_only =
            self.field_match(raw.changes_only.as_ref(), &format!("{key}.changes_only"));
        if let Some(spanned) = &raw.changes_only {
            let field = &spanned.value.field;
            let accepted = raw
                .params
                .as_ref()
                .is_some_and(|params| params.value.contains_key(field));
            if methods.iter().all(|m| m.is_read()) || !accepted {
                self.problem(
                    Position::of(spanned),
                    format!("{key}.changes_only"),
                    format!(
                        "changes_only applies to a write rule that accepts the parameter '{field}'"
                    ),
                    Some(format!(
                        "list '{field}' under this rule's params (e.g. {{ type: any, list: true }})"
                    )),
                );
            }
        }
        let response_filter = self.field_match(
            raw.response_filter.as_ref(),
            &format!("{key}.response_filter"),
        );
        if let (Some(filter), Some(write)) =
            (&raw.response_filter, methods.iter().find(|m| !m.is_read()))
        {
            self.problem(
                Position::of(filter),
                format!("{key}.response_filter"),
                format!("response_filter applies to read-only rules; this one allows {write}"),
                Some("put the reads and the writes in separate rules".into()),
            );
        }
        (self.problems.0.len() == before).then(|| Rule {
            id: Arc::from(id.as_str()),
            description: raw.description.clone(),
            methods,
            templates,
            path_params,
            params,
            max_body_bytes,
            owned_if,
            changes_only,
            response_filter,
        })
    }

    fn methods(&mut self, key: &str, raw: &RawRule) -> Vec<Method> {
        let mut methods = Vec::new();
        for name in &raw.methods.value {
            match Method::parse(&name.value) {
                Some(method) => {
                    if !methods.contains(&method) {
                        methods.push(method);
                    }
                }
                None => {
                    let names: Vec<&str> = Method::ALL.iter().map(|m| m.as_str()).collect();
                    let hint =
                        match nearest(&name.value.to_ascii_uppercase(), names.iter().copied()) {
                            Some(near) => {
                                format!("did you mean {near}? valid: {}", names.join(", "))
                            }
                            None => format!("valid: {}", names.join(", ")),
                        };
                    self.problem(
                        Position::of(name),
                        format!("{key}.methods"),
                        format!("unknown method '{}'", printable(&name.value)),
                        Some(hint),
                    );
                }
            }
        }
        if raw.methods.value.is_empty() {
            self.problem(
                Position::of(&raw.methods),
                format!("{key}.methods"),
                "a rule needs at least one method".into(),
                None,
            );
        }
        // GitLab serves HEAD as GET: a rule that allows reading allows both.
        if methods.contains(&Method::Get) && !methods.contains(&Method::Head) {
            methods.push(Method::Head);
        }
        methods.sort();
        methods
    }

    fn path_params(
        &mut self,
        key: &str,
        raw: &RawRule,
        templates: &[Template],
    ) -> BTreeMap<String, ParamSpec> {
        let mut specs = BTreeMap::new();
        for (name, spanned) in &raw.path_params {
            let key = format!("{key}.path_params.{name}");
            if !templates.iter().any(|t| t.param_names().any(|n| n == name)) {
                self.problem(
                    Position::of(spanned),
                    key.clone(),
                    format!("'{name}' is not a param of this rule's paths"),
                    None,
                );
            }
            if let Some(spec) = self.param_spec(&key, spanned) {
                specs.insert(name.clone(), spec);
            }
        }
        specs
    }

    fn params(&mut self, key: &str, raw: &RawRule, methods: &[Method]) -> Option<ParamRules> {
        let Some(params) = &raw.params else {
            if let Some(write) = methods.iter().find(|m| !m.is_read()) {
                self.problem(
                    Position::of(&raw.methods),
                    format!("{key}.params"),
                    format!("this rule allows {write}, so it must list the parameters it accepts"),
                    Some(
                        "add 'params:' with each accepted parameter ('params: {}' accepts none)"
                            .into(),
                    ),
                );
            }
            return None;
        };
        let mut specs = BTreeMap::new();
        for (name, spanned) in &params.value {
            let key = format!("{key}.params.{name}");
            if FORBIDDEN_PARAMS
                .iter()
                .any(|f| f.eq_ignore_ascii_case(name))
            {
                self.problem(
                    Position::of(spanned),
                    key.clone(),
                    format!(
                        "'{name}' is a GitLab credential or override (of the method or the response format) and can never be accepted"
                    ),
                    None,
                );
            }
            if name.is_empty() || name.contains(['[', ']']) {
                self.problem(
                    Position::of(spanned),
                    key.clone(),
                    "parameter names are plain names; use 'list: true' for arrays".into(),
                    None,
                );
            }
            if let Some(spec) = self.param_spec(&key, spanned) {
                specs.insert(name.clone(), spec);
            }
        }
        Some(ParamRules::new(specs))
    }

    fn field_match(
        &mut self,
        raw: Option<&serde_saphyr::Spanned<raw::RawFieldMatch>>,
        key: &str,
    ) -> Option<Arc<FieldMatch>> {
        let raw = raw?;
        match FieldMatch::compile(&raw.value) {
            Ok(condition) => Some(Arc::new(condition)),
            Err(message) => {
                self.problem(
                    Position::of(&raw.value.pattern),
                    key.to_owned(),
                    message,
                    None,
                );
                None
            }
        }
    }

    fn param_spec(
        &mut self,
        key: &str,
        spanned: &serde_saphyr::Spanned<RawParam>,
    ) -> Option<ParamSpec> {
        match ParamSpec::compile(&spanned.value) {
            Ok(spec) => Some(spec),
            Err(message) => {
                let position = spanned
                    .value
                    .pattern
                    .as_ref()
                    .map(Position::of)
                    .unwrap_or_else(|| Position::of(spanned));
                self.problem(position, key.to_owned(), message, None);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
