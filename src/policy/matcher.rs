//! The compiled path matcher: a trie over segments.
//!
//! Lookup walks the trie once: at each depth a matching literal child is
//! taken (and never abandoned for the param child), so the match is the most
//! specific template (literal beats param, left to right), and a path whose
//! literal branch leads nowhere is refused rather than re-read as a param. Its cost depends on the path's
//! length, not on the number of rules. Overlaps that specificity cannot settle
//! are refused when the policy loads.
//!
//! Literals are compared with the segment as sent, params read its single
//! decoding. GitLab's router (Grape's Mustermann patterns) also matches a
//! literal spelled with `%XX` escapes (`%70rojects` is `projects` to it), so
//! a segment whose decoding is a literal here but whose raw bytes are not is
//! refused ([`Miss::EncodedLiteral`]): read as a param it would be checked
//! against another template than the one GitLab routes it to.

use std::collections::HashMap;
use std::sync::Arc;

use super::template::{ParamKind, Template, TemplateSegment};
use crate::canonical::{Method, Segment};

/// A template's end: which rule allows each method there.
#[derive(Debug)]
pub(super) struct Leaf {
    /// The template text (the first one inserted; all at this leaf are equivalent).
    pub template: Arc<str>,
    /// Param names in path order.
    pub param_names: Vec<Arc<str>>,
    /// Rule index per method (see [`Method::index`]).
    pub rules: [Option<usize>; Method::ALL.len()],
}

impl Leaf {
    /// The methods some rule allows at this leaf.
    pub(super) fn allowed_methods(&self) -> Vec<Method> {
        Method::ALL
            .into_iter()
            .filter(|m| self.rules[m.index()].is_some())
            .collect()
    }
}

#[derive(Debug, Default)]
struct Node {
    literals: HashMap<Box<str>, usize>,
    param: Option<ParamChild>,
    leaf: Option<Leaf>,
}

#[derive(Debug)]
struct ParamChild {
    kind: ParamKind,
    node: usize,
    /// A template through this child, to name in conflict messages.
    example: Arc<str>,
}

/// Why [`Matcher::find`] found no template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Miss {
    /// No template matches the path.
    NoRoute,
    /// Segment `index` spells the literal `literal` with percent escapes.
    EncodedLiteral {
        /// The segment's position below `/api/v4`.
        index: usize,
        /// The route name its decoding spells.
        literal: Box<str>,
    },
}

/// The trie of every template of a policy.
#[derive(Debug)]
pub(super) struct Matcher {
    nodes: Vec<Node>,
}

impl Default for Matcher {
    fn default() -> Self {
        Matcher {
            nodes: vec![Node::default()],
        }
    }
}

impl Matcher {
    /// Adds `template` for `methods` of rule `rule` (named `rule_id` in errors).
    /// `owners` maps rule indexes to ids, for conflict messages.
    pub(super) fn insert(
        &mut self,
        template: &Template,
        rule: usize,
        methods: &[Method],
        owners: &[Arc<str>],
    ) -> Result<(), String> {
        let text: Arc<str> = Arc::from(template.text());
        let mut node = 0;
        for segment in template.segments() {
            node = match segment {
                TemplateSegment::Literal(literal) => self.literal_child(node, literal),
                TemplateSegment::Param { name, kind } => {
                    self.param_child(node, *kind, name, &text)?
                }
            };
        }
        let names: Vec<Arc<str>> = template.param_names().map(Arc::from).collect();
        let leaf = self.nodes[node].leaf.get_or_insert_with(|| Leaf {
            template: text.clone(),
            param_names: names.clone(),
            rules: [None; Method::ALL.len()],
        });
        if leaf.param_names != names {
            return Err(format!(
                "'{text}' is the same path as '{}' with other param names; use the same names",
                leaf.template
            ));
        }
        for method in methods {
            match leaf.rules[method.index()] {
                Some(existing) if existing == rule => {
                    return Err(format!(
                        "'{text}' is listed twice for {method} in this rule"
                    ));
                }
                Some(existing) => {
                    return Err(format!(
                        "rule '{}' already allows {method} on '{}': one method on one path belongs to one rule",
                        owners[existing], leaf.template
                    ));
                }
                None => leaf.rules[method.index()] = Some(rule),
            }
        }
        Ok(())
    }

    fn literal_child(&mut self, node: usize, literal: &str) -> usize {
        if let Some(&child) = self.nodes[node].literals.get(literal) {
            return child;
        }
        let child = self.push_node();
        self.nodes[node].literals.insert(literal.into(), child);
        child
    }

    fn param_child(
        &mut self,
        node: usize,
        kind: ParamKind,
        name: &str,
        text: &Arc<str>,
    ) -> Result<usize, String> {
        if let Some(existing) = &self.nodes[node].param {
            if existing.kind != kind {
                return Err(format!(
                    "'{text}' overlaps '{}': {{{name}}} and the param there can match the same value; use the same param type at this position",
                    existing.example
                ));
            }
            return Ok(existing.node);
        }
        let child = self.push_node();
        self.nodes[node].param = Some(ParamChild {
            kind,
            node: child,
            example: text.clone(),
        });
        Ok(child)
    }

    fn push_node(&mut self) -> usize {
        self.nodes.push(Node::default());
        self.nodes.len() - 1
    }

    /// The most specific template matching `segments`, with the decoded
    /// values of its params in path order.
    pub(super) fn find<'s>(&self, segments: &'s [Segment]) -> Result<(&Leaf, Vec<&'s str>), Miss> {
        let mut values = Vec::new();
        let leaf = self.walk(0, segments, 0, &mut values)?;
        Ok((leaf, values))
    }

    fn walk<'s>(
        &self,
        node: usize,
        segments: &'s [Segment],
        index: usize,
        values: &mut Vec<&'s str>,
    ) -> Result<&Leaf, Miss> {
        let node = &self.nodes[node];
        let Some((segment, rest)) = segments.split_first() else {
            return node.leaf.as_ref().ok_or(Miss::NoRoute);
        };
        // A literal that matches is final: GitLab's router does not check param
        // types, so falling back to a param here could check the request
        // against a template other than the one GitLab routes it to.
        if let Some(&child) = node.literals.get(segment.raw.as_str()) {
            return self.walk(child, rest, index + 1, values);
        }
        // GitLab reads `%70rojects` as the literal `projects`; the param
        // branch would read it as a value.
        if let Some((literal, _)) = node.literals.get_key_value(segment.decoded.as_str()) {
            return Err(Miss::EncodedLiteral {
                index,
                literal: literal.clone(),
            });
        }
        let param = node.param.as_ref().ok_or(Miss::NoRoute)?;
        if !param.kind.accepts(&segment.decoded) {
            return Err(Miss::NoRoute);
        }
        values.push(&segment.decoded);
        let found = self.walk(param.node, rest, index + 1, values);
        if found.is_err() {
            values.pop();
        }
        found
    }
}
