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
//! - `document`, `check`, `instance`: the readers of each section; `announce`: the GARP / NA
//!   and advert-answer settings of `global` and `instance`;
//! - `bgp`: `speaker` and `announce`, the routing daemon upkeep drives and what it announces;
//! - `addresses`: what an instance puts on the host while master: VIPs, routes, rules;
//! - `resolve`: rules across sections and references between them.

mod addresses;
mod announce;
mod bgp;
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
///
/// A file over [`MAX_CONFIG_BYTES`] is refused before it is parsed: by its size, and by a read
/// that stops past the bound, so a file that grows meanwhile (or a device) cannot slip past.
pub fn load_with_source(path: &Path) -> Result<(Config, String), ConfigError> {
    let source = read_bounded(path, MAX_CONFIG_BYTES)?;
    let config = parse_str(&source, &path.display().to_string())?;
    Ok((config, source))
}

/// The largest config file read: 16 MiB, far above any real config (a thousand instances are
/// a few hundred KiB) and small enough that reading and parsing it stays cheap.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// The text of `path`, refused when it has more than `limit` bytes.
fn read_bounded(path: &Path, limit: u64) -> Result<String, ConfigError> {
    use std::io::Read;
    let io = |source| ConfigError::Io {
        path: path.to_owned(),
        source,
    };
    let too_large = |size, exact| ConfigError::TooLarge {
        path: path.to_owned(),
        size,
        exact,
        limit,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    if size > limit {
        return Err(too_large(size, true));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    let read = bytes.len() as u64;
    if read > limit {
        return Err(too_large(read, false));
    }
    String::from_utf8(bytes).map_err(|e| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text: {}", e.utf8_error()),
        ))
    })
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
