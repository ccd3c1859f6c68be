//! Why a config is refused: [`ConfigError`] and the [`Problem`]s it lists, each with its
//! place as line and column ([`line_col`]).

use std::fmt::{self, Display};
use std::path::PathBuf;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceSpan};

/// Why a config file was refused.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read config file: {source}", path.display())]
    #[diagnostic(
        code(upkeep::config::io),
        help("check that the file exists and that the daemon may read it")
    )]
    Io {
        /// The file as it was asked for.
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file is larger than [`super::MAX_CONFIG_BYTES`]; it was not parsed.
    #[error(
        "{}: config file is {}{size} bytes, over the limit of {} ({limit} bytes); not read",
        path.display(),
        if *exact { "" } else { "more than " },
        mib(*limit)
    )]
    #[diagnostic(
        code(upkeep::config::too_large),
        help("a config is a few hundred KiB at most: is this the right file?")
    )]
    TooLarge {
        /// The file as it was asked for.
        path: PathBuf,
        /// Its size, or (when not `exact`) how much was read before the read stopped.
        size: u64,
        /// Whether `size` is the file's size, not a lower bound.
        exact: bool,
        /// The bound, [`super::MAX_CONFIG_BYTES`].
        limit: u64,
    },

    /// The file was read but is not a valid config. `problems` holds every problem found, in
    /// file order; `Display` is the first one as `file:line:col: message`.
    #[error("{}", headline(.file, .problems))]
    #[diagnostic(code(upkeep::config::invalid))]
    Invalid {
        /// The name the file goes by in messages.
        file: String,
        /// The text, for `miette` to show the problems in.
        #[source_code]
        source_code: NamedSource<String>,
        #[related]
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// Every problem as `(line, column, message)`, 1-based, in file order. An unreadable or
    /// too large file gives one entry at line 0, column 0: it is not about a place in the file.
    pub fn problems(&self) -> Vec<(usize, usize, String)> {
        match self {
            Self::Io { .. } | Self::TooLarge { .. } => vec![(0, 0, self.to_string())],
            Self::Invalid { problems, .. } => problems
                .iter()
                .map(|p| (p.line, p.column, p.message.clone()))
                .collect(),
        }
    }
}

/// A byte count in MiB, as `16 MiB`.
fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes >> 20)
}

/// The one-line summary: the first problem with its place, and how many follow.
fn headline(file: &str, problems: &[Problem]) -> String {
    let Some(first) = problems.first() else {
        return format!("{file}: invalid config");
    };
    let more = match problems.len() - 1 {
        0 => String::new(),
        1 => " (and 1 more problem)".to_owned(),
        n => format!(" (and {n} more problems)"),
    };
    // The daemon logs this as one line, so no message may break it.
    let message = first.message.replace(['\n', '\r'], " ");
    format!("{file}:{}:{}: {message}{more}", first.line, first.column)
}

/// One problem in a config file: what is wrong, where, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    /// Short text shown under the span.
    pub label: String,
    pub help: Option<String>,
    pub span: SourceSpan,
    /// 1-based line of the span's start.
    pub line: usize,
    /// 1-based column, in characters, of the span's start.
    pub column: usize,
}

impl Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Problem {}

impl Diagnostic for Problem {
    fn help<'a>(&'a self) -> Option<Box<dyn Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn Display>)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let label = LabeledSpan::new_with_span(Some(self.label.clone()), self.span);
        Some(Box::new(std::iter::once(label)))
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
