//! The lexer: keepalived.conf lines into words and braces, with `include GLOB` followed
//! (to a depth limit) and each token's file and line kept.

use std::io;
use std::path::{Path, PathBuf};

use crate::preprocess::Preprocessor;
use crate::{ImportError, ImportWarning};

/// Where a token or statement comes from: an index into the file names, and a 1-based line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub(crate) file: usize,
    pub(crate) line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    Word(String),
    Open,
    Close,
    /// keepalived is line-based: a statement ends at the end of its line.
    Eol,
}

/// Nested includes deeper than this are taken for a loop.
const MAX_INCLUDE_DEPTH: usize = 8;

pub(crate) struct Lexer {
    pub(crate) files: Vec<String>,
    pub(crate) tokens: Vec<(Tok, Pos)>,
    pub(crate) warnings: Vec<ImportWarning>,
    /// `@HOST` lines and `$PARAM` definitions, across included files as keepalived has them.
    pre: Preprocessor,
}

impl Lexer {
    /// A lexer for the host whose config id is `host` (`@host` lines are its).
    pub(crate) fn new(host: &str) -> Self {
        Self {
            files: Vec::new(),
            tokens: Vec::new(),
            warnings: Vec::new(),
            pre: Preprocessor::new(host),
        }
    }

    pub(crate) fn file(
        &mut self,
        source: &str,
        name: &str,
        depth: usize,
    ) -> Result<(), ImportError> {
        let file = self.files.len();
        self.files.push(name.to_owned());
        let dir = Path::new(name)
            .parent()
            .map(|d| d.display().to_string())
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| ".".to_owned());
        for (i, raw) in source.lines().enumerate() {
            let pos = Pos { file, line: i + 1 };
            let made = self.pre.line(raw, &dir);
            for message in made.problems {
                self.warnings.push(ImportWarning {
                    file: name.to_owned(),
                    line: pos.line,
                    message,
                });
            }
            for text in &made.lines {
                self.lex(text, name, pos, depth)?;
            }
        }
        if let Some(param) = self.pre.finish() {
            self.warnings.push(ImportWarning {
                file: name.to_owned(),
                line: source.lines().count().max(1),
                message: format!(
                    "the definition of ${param} ends with the file (its last line ends in `\\`)"
                ),
            });
        }
        Ok(())
    }

    /// One line, after the preprocessor: its tokens, or the files it includes.
    fn lex(&mut self, text: &str, name: &str, pos: Pos, depth: usize) -> Result<(), ImportError> {
        {
            let toks = lex_line(text).map_err(|message| ImportError::Syntax {
                file: name.to_owned(),
                line: pos.line,
                message,
            })?;
            match toks.as_slice() {
                [Tok::Word(kw), Tok::Word(pattern)] if kw == "include" => {
                    self.include(pattern, name, pos, depth)?;
                }
                [Tok::Word(kw), ..] if kw == "include" => {
                    self.warnings.push(ImportWarning {
                        file: name.to_owned(),
                        line: pos.line,
                        message: "`include` takes one file name or pattern; line ignored"
                            .to_owned(),
                    });
                }
                _ => {
                    self.tokens.extend(toks.into_iter().map(|t| (t, pos)));
                    self.tokens.push((Tok::Eol, pos));
                }
            }
        }
        Ok(())
    }

    /// keepalived splices included files in place, so their lines join the token stream here.
    fn include(
        &mut self,
        pattern: &str,
        from: &str,
        pos: Pos,
        depth: usize,
    ) -> Result<(), ImportError> {
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(ImportError::Syntax {
                file: from.to_owned(),
                line: pos.line,
                message: format!(
                    "includes nested more than {MAX_INCLUDE_DEPTH} deep (does a file include itself?)"
                ),
            });
        }
        let base = Path::new(from).parent().unwrap_or(Path::new(""));
        let pattern = base.join(pattern);
        let read_error = |path: &Path, source| ImportError::Include {
            file: from.to_owned(),
            line: pos.line,
            path: path.to_owned(),
            source,
        };
        let paths = expand_glob(&pattern).map_err(|e| read_error(&pattern, e))?;
        if paths.is_empty() {
            self.warnings.push(ImportWarning {
                file: from.to_owned(),
                line: pos.line,
                message: format!("include {} matches no file", pattern.display()),
            });
        }
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|e| read_error(&path, e))?;
            self.file(&text, &path.display().to_string(), depth + 1)?;
        }
        Ok(())
    }
}

/// Splits one line into words and braces, dropping comments.
pub(crate) fn lex_line(line: &str) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '#' | '!' => break,
            '{' => {
                chars.next();
                toks.push(Tok::Open);
            }
            '}' => {
                chars.next();
                toks.push(Tok::Close);
            }
            '"' => {
                chars.next();
                let mut word = String::new();
                loop {
                    match chars.next() {
                        None => return Err("unterminated quoted string".to_owned()),
                        Some('"') => break,
                        Some('\\') if matches!(chars.peek(), Some('"' | '\\')) => {
                            word.extend(chars.next());
                        }
                        Some(c) => word.push(c),
                    }
                }
                toks.push(Tok::Word(word));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '{' || c == '}' {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                toks.push(Tok::Word(word));
            }
        }
    }
    Ok(toks)
}

/// The files a pattern names: `*` and `?` work in the last path component.
fn expand_glob(pattern: &Path) -> io::Result<Vec<PathBuf>> {
    let name = pattern
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains(['*', '?']) {
        return Ok(vec![pattern.to_owned()]);
    }
    let dir = match pattern.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let entries = match std::fs::read_dir(&dir) {
        // A pattern in a missing directory matches nothing, like a shell glob.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other?,
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        let file = entry.file_name().to_string_lossy().into_owned();
        if wildcard_match(&name, &file) && entry.path().is_file() {
            found.push(dir.join(file));
        }
    }
    found.sort();
    Ok(found)
}

pub(crate) fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Classic two-pointer match with backtracking to the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}
