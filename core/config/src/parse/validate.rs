//! The generic validator: the pass ([`Validator`]) that collects problems, syntax errors turned into
//! problems, and the checks of a node's shape (one argument, a list, a named block, no repeats).

use std::collections::HashMap;

use kdl::{KdlDocument, KdlEntry, KdlError, KdlNode};
use miette::{NamedSource, SourceSpan};

use super::error::{line_col, ConfigError, Problem};
use super::schema::{example, REPEATABLE};
use super::suggest::closest;

pub(super) fn span_end(span: SourceSpan) -> usize {
    span.offset() + span.len()
}

pub(super) fn span_between(start: usize, end: usize) -> SourceSpan {
    SourceSpan::new(start.into(), end.saturating_sub(start))
}

/// A node's name and arguments, without its block: what an error about the whole node points
/// at (pointing at a whole instance block would underline dozens of lines).
pub(super) fn head(node: &KdlNode) -> SourceSpan {
    let end = node
        .entries()
        .iter()
        .map(|e| span_end(e.span()))
        .chain(std::iter::once(span_end(node.name().span())))
        .max()
        .unwrap_or(0);
    span_between(node.span().offset(), end)
}

pub(super) fn positional(node: &KdlNode) -> Vec<&KdlEntry> {
    node.entries()
        .iter()
        .filter(|e| e.name().is_none())
        .collect()
}

pub(super) fn prop<'n>(node: &'n KdlNode, name: &str) -> Option<&'n KdlEntry> {
    node.entries()
        .iter()
        .find(|e| e.name().is_some_and(|n| n.value() == name))
}

/// Settings already seen in one block: name → where.
pub(super) type Seen = HashMap<String, SourceSpan>;

/// The validation pass: reads the document and collects problems.
pub(super) struct Validator<'a> {
    pub(super) src: &'a str,
    pub(super) problems: Vec<Problem>,
}

impl Validator<'_> {
    pub(super) fn report(
        &mut self,
        span: SourceSpan,
        message: impl Into<String>,
        label: impl Into<String>,
        help: impl Into<String>,
    ) {
        let (line, column) = line_col(self.src, span.offset());
        let help: String = help.into();
        self.problems.push(Problem {
            message: message.into(),
            label: label.into(),
            help: (!help.is_empty()).then_some(help),
            span,
            line,
            column,
        });
    }

    pub(super) fn line_of(&self, span: SourceSpan) -> usize {
        line_col(self.src, span.offset()).0
    }

    pub(super) fn into_error(mut self, file_name: &str) -> ConfigError {
        if self.problems.is_empty() {
            self.report(
                span_between(0, 0),
                "invalid config",
                "here",
                "see docs/config.md",
            );
        }
        self.problems.sort_by_key(|p| p.span.offset());
        ConfigError::Invalid {
            file: file_name.to_owned(),
            source_code: NamedSource::new(file_name, self.src.to_owned()),
            problems: self.problems,
        }
    }

    /// Turns kdl's syntax diagnostics into problems.
    pub(super) fn syntax(&mut self, err: &KdlError) {
        for d in &err.diagnostics {
            let text = self
                .src
                .get(d.span.offset()..span_end(d.span))
                .unwrap_or("")
                .trim();
            // KDL v1 habits are the likeliest syntax errors in a hand-written file.
            let v1_hint = matches!(text, "true" | "false" | "null")
                .then(|| format!("KDL v2 writes `{text}` as `#{text}`"));
            let help = d.help.clone().or(v1_hint).unwrap_or_else(|| {
                "the file must be KDL v2; see docs/config.md for the syntax".to_owned()
            });
            self.report(
                d.span,
                d.message
                    .clone()
                    .unwrap_or_else(|| "invalid KDL syntax".into()),
                d.label.clone().unwrap_or_else(|| "here".into()),
                help,
            );
        }
        if err.diagnostics.is_empty() {
            self.report(
                span_between(0, 0),
                "invalid KDL syntax",
                "here",
                "the file must be KDL v2; see docs/config.md",
            );
        }
    }

    // ---- shapes of nodes ----

    /// False (after reporting) when a setting that may appear once appears again.
    pub(super) fn first_time(
        &mut self,
        seen: &mut Seen,
        node: &KdlNode,
        known: &[&str],
        place: &str,
    ) -> bool {
        let key = node.name().value();
        if REPEATABLE.contains(&key) || !known.contains(&key) {
            return true;
        }
        if let Some(first) = seen.get(key) {
            let line = self.line_of(*first);
            self.report(
                head(node),
                format!("`{key}` is set twice in {place}"),
                "set again here",
                format!("keep one of them; the first is on line {line}"),
            );
            return false;
        }
        seen.insert(key.to_owned(), head(node));
        true
    }

    /// Checks a one-line setting: no block, properties only from `props`, none twice.
    /// [`Validator::leaf`] for a node that takes no value, only the properties `props`: each
    /// value given is reported with `message` and `help`. Returns whether there was none.
    pub(super) fn valueless(
        &mut self,
        node: &KdlNode,
        props: &[&str],
        message: &str,
        help: &str,
    ) -> bool {
        self.leaf(node, props);
        let values = positional(node);
        for e in &values {
            self.report(e.span(), message, "unexpected value", help);
        }
        values.is_empty()
    }

    pub(super) fn leaf(&mut self, node: &KdlNode, props: &[&str]) {
        let key = node.name().value();
        if node.children().is_some() {
            self.report(
                span_between(span_end(head(node)), span_end(node.span())),
                format!("`{key}` takes no `{{ ... }}` block"),
                "unexpected block",
                format!("write it on one line, like `{}`", example(key)),
            );
        }
        let mut seen: Vec<&str> = Vec::new();
        for entry in node.entries() {
            let Some(name) = entry.name() else { continue };
            let name = name.value();
            if !props.contains(&name) {
                let help = match closest(name, props.iter().copied()) {
                    Some(s) => format!("did you mean `{s}=`?"),
                    None if props.is_empty() => format!("`{key}` takes no properties"),
                    None => format!(
                        "`{key}` takes {}",
                        props
                            .iter()
                            .map(|p| format!("`{p}=`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                self.report(
                    entry.span(),
                    format!("unknown property `{name}=` on `{key}`"),
                    "unknown property",
                    help,
                );
            } else if seen.contains(&name) {
                self.report(
                    entry.span(),
                    format!("`{name}=` is given twice on `{key}`"),
                    "given again",
                    "keep one of them",
                );
            } else {
                seen.push(name);
            }
        }
    }

    /// The single argument of a setting like `vrid 51` (properties from `props` allowed).
    pub(super) fn one_arg<'n>(
        &mut self,
        node: &'n KdlNode,
        props: &[&str],
    ) -> Option<&'n KdlEntry> {
        self.leaf(node, props);
        let key = node.name().value();
        let args = positional(node);
        match args.as_slice() {
            [] => {
                self.report(
                    head(node),
                    format!("`{key}` needs a value"),
                    "no value",
                    format!("for example `{}`", example(key)),
                );
                None
            }
            [one] => Some(*one),
            [first, extra @ ..] => {
                let start = extra.first().map_or(0, |e| e.span().offset());
                let end = extra
                    .iter()
                    .map(|e| span_end(e.span()))
                    .max()
                    .unwrap_or(start);
                self.report(
                    span_between(start, end),
                    format!("`{key}` takes one value"),
                    "extra value",
                    format!("for example `{}`", example(key)),
                );
                Some(*first)
            }
        }
    }

    /// A setting that lists values (`key A B ...`, no properties): its values; none is a
    /// problem (`key` needs at least one `what`, labelled `label`).
    pub(super) fn list<'n>(
        &mut self,
        node: &'n KdlNode,
        key: &str,
        what: &str,
        label: &str,
    ) -> Vec<&'n KdlEntry> {
        self.list_with(node, key, what, label, &[])
    }

    /// [`Validator::list`] with properties from `props` allowed.
    pub(super) fn list_with<'n>(
        &mut self,
        node: &'n KdlNode,
        key: &str,
        what: &str,
        label: &str,
        props: &[&str],
    ) -> Vec<&'n KdlEntry> {
        self.leaf(node, props);
        let args = positional(node);
        if args.is_empty() {
            self.report(
                head(node),
                format!("`{key}` needs at least one {what}"),
                label,
                format!("for example `{}`", example(key)),
            );
        }
        args
    }

    /// `kind "name" { ... }`: the name, its span and the block.
    pub(super) fn named_block<'n>(
        &mut self,
        node: &'n KdlNode,
    ) -> Option<(String, SourceSpan, &'n KdlDocument)> {
        let key = node.name().value();
        for entry in node.entries().iter().filter(|e| e.name().is_some()) {
            self.report(
                entry.span(),
                format!("`{key}` takes no properties"),
                "unexpected property",
                format!("for example `{}`", example(key)),
            );
        }
        let args = positional(node);
        let name = match args.as_slice() {
            [] => {
                self.report(
                    head(node),
                    format!("`{key}` needs a name"),
                    "no name",
                    format!("for example `{}`", example(key)),
                );
                None
            }
            [one, extra @ ..] => {
                for e in extra {
                    self.report(
                        e.span(),
                        format!("`{key}` takes one name"),
                        "extra value",
                        format!("for example `{}`", example(key)),
                    );
                }
                self.name_string(one, key).map(|n| (n, one.span()))
            }
        };
        let Some(body) = node.children() else {
            self.report(
                head(node),
                format!("`{key}` has no `{{ ... }}` block"),
                "no block",
                format!("for example `{}`", example(key)),
            );
            return None;
        };
        name.map(|(n, span)| (n, span, body))
    }
}
