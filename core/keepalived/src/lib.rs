//! Translates a keepalived.conf into upkeep's KDL (`upkeep import-keepalived`).
//!
//! keepalived's format is line-based: blank-separated words, `#` and `!` comments, `{ }`
//! blocks, quoted strings and `include GLOB`. What upkeep supports is translated; everything
//! else becomes an [`ImportWarning`] with its file and line, never dropped silently. The
//! keyword mapping is documented in docs/migrating.md (a test checks that every keyword the
//! importer matches on appears there).
//!
//! The translation runs in stages, one module each: `preprocess` (keepalived's `@HOST` lines
//! and `$PARAM` substitution), `lexer` (lines into tokens, includes followed), `stmt` (tokens into a statement tree), `translate` (statements into the drafts of
//! `draft`, with warnings) and `emit` (drafts into KDL, checked with `parse_str`).

mod draft;
mod emit;
mod lexer;
mod preprocess;
mod stmt;
mod translate;

#[cfg(test)]
mod tests;

use std::fmt::{self, Display};
use std::io;
use std::path::{Path, PathBuf};

use draft::Importer;
use lexer::Lexer;
pub use preprocess::default_host;
use stmt::statements;

/// The KDL produced from a keepalived.conf, and what could not be carried over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub kdl: String,
    pub warnings: Vec<ImportWarning>,
}

/// Something in the keepalived config that was not (or not exactly) imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportWarning {
    pub file: String,
    /// 1-based line in `file`.
    pub line: usize,
    pub message: String,
}

impl Display for ImportWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Why a keepalived config could not be imported at all.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum ImportError {
    /// The keepalived config itself could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A file that an `include` names could not be read.
    #[error("{file}:{line}: cannot read included file {}: {source}", path.display())]
    Include {
        /// The file with the `include`, and its 1-based line.
        file: String,
        line: usize,
        /// The included file.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file's structure is broken (unbalanced braces, an unterminated quote...).
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: String,
        line: usize,
        message: String,
    },
}

/// Reads the keepalived config at `path` (and what it includes) and translates it, as
/// keepalived reads it on this machine ([`default_host`] is the config id of `@ID` lines).
pub fn import_keepalived(path: &Path) -> Result<Imported, ImportError> {
    import_keepalived_for(path, &default_host())
}

/// [`import_keepalived`] as keepalived reads it on the host whose config id is `host`
/// (keepalived's `-i`): `@host` lines are kept, `@^host` lines left out.
pub fn import_keepalived_for(path: &Path, host: &str) -> Result<Imported, ImportError> {
    let source = std::fs::read_to_string(path).map_err(|source| ImportError::Io {
        path: path.to_owned(),
        source,
    })?;
    import_str_for(&source, &path.display().to_string(), host)
}

/// Translates keepalived config text. `file_name` names it in warnings, and `include`s are
/// resolved relative to its directory. `@ID` lines are this machine's ([`default_host`]).
pub fn import_str(source: &str, file_name: &str) -> Result<Imported, ImportError> {
    import_str_for(source, file_name, &default_host())
}

/// [`import_str`] for the host whose config id is `host`.
pub fn import_str_for(source: &str, file_name: &str, host: &str) -> Result<Imported, ImportError> {
    let mut lexer = Lexer::new(host);
    lexer.file(source, file_name, 0)?;
    let mut at = 0;
    let tree = statements(&lexer.tokens, &mut at, None, &lexer.files)?;
    let mut importer = Importer {
        files: lexer.files,
        warnings: lexer.warnings,
        ..Importer::default()
    };
    for stmt in &tree {
        importer.top(stmt);
    }
    Ok(importer.finish(file_name))
}
