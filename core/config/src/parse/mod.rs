//! Reads an upkeep config file (KDL) into a [`Config`], checking everything the daemon relies
//! on, so that a config which loads is one the daemon can run.
//!
//! Every problem in the file is collected, not only the first, each with the span it is about,
//! a label and a hint: `miette` renders them all, and a refused reload logs the one-line
//! `Display` that starts with `file:line:col:`. The schema is documented in docs/config.md.
//!
//! This file holds the entry points; the reader is split by what it does:
//! - `error`: [`ConfigError`], [`Problem`] and [`line_col`];
//! - `value`: [`parse_duration`], the size parser and the readers of typed values;
//! - `schema`: the tables of settings per block, keepalived's spellings, examples for hints;
//! - `suggest`: the closest known name to a misspelt one;
//! - `validate`: the pass that collects problems, and the checks of a node's shape;
//! - `document`, `check`, `instance`: the readers of each section;
//! - `resolve`: rules across sections and references between them.

mod check;
mod document;
mod error;
mod instance;
mod resolve;
mod schema;
mod suggest;
mod validate;
mod value;

#[cfg(test)]
mod tests;

use std::path::Path;

use kdl::{KdlDocument, KdlError};

pub use error::{line_col, ConfigError, Problem};
pub use value::parse_duration;

use crate::model::Config;
use validate::Validator;

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with_source(path).map(|(config, _)| config)
}

/// [`load`], also giving the text the config was parsed from (what line:col point into, and
/// what a reload compares to tell an unchanged file). Every reader of the config file (`upkeep
/// check`, the daemon's start and its reloads) comes here, so all read it the same way.
pub fn load_with_source(path: &Path) -> Result<(Config, String), ConfigError> {
    let source = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })?;
    let config = parse_str(&source, &path.display().to_string())?;
    Ok((config, source))
}

/// Parses and validates config text; `file_name` names it in messages.
///
/// KDL v2 is the syntax. `KdlDocument::parse` also accepts KDL v1 when the `kdl` crate is built
/// with its `v1-fallback` feature.
///
/// The text is read by [`super::fast_kdl`] where it can; whatever it leaves, and any config
/// with a problem, is read by the `kdl` crate, so every error is worded and located by the
/// same parse.
pub fn parse_str(source: &str, file_name: &str) -> Result<Config, ConfigError> {
    if let Some(doc) = super::fast_kdl::parse(source) {
        if let Ok(config) = parse_str_with(source, file_name, |_| Ok(doc)) {
            return Ok(config);
        }
    }
    parse_str_kdl_only(source, file_name)
}

/// [`parse_str`] with the kdl crate parsing every text (no quick reader): the reference the
/// `config_parse` fuzz target holds the quick path to.
#[doc(hidden)]
pub fn parse_str_kdl_only(source: &str, file_name: &str) -> Result<Config, ConfigError> {
    parse_str_with(source, file_name, KdlDocument::parse)
}

/// [`parse_str`] with `parse` as the KDL parser.
pub(super) fn parse_str_with(
    source: &str,
    file_name: &str,
    parse: impl FnOnce(&str) -> Result<KdlDocument, KdlError>,
) -> Result<Config, ConfigError> {
    let mut cx = Validator {
        src: source,
        problems: Vec::new(),
    };
    let config = match parse(source) {
        Ok(doc) => Some(cx.document(&doc)),
        Err(err) => {
            cx.syntax(&err);
            None
        }
    };
    match config {
        Some(config) if cx.problems.is_empty() => Ok(config),
        _ => Err(cx.into_error(file_name)),
    }
}
