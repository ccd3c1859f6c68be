//! The statement tree: tokens grouped into statements (the words of a line and the block
//! that follows).

use crate::lexer::{Pos, Tok};
use crate::ImportError;

/// One keepalived statement: the words of a line, and the block that follows, if any.
#[derive(Debug)]
pub(crate) struct Stmt {
    pub(crate) words: Vec<String>,
    pub(crate) pos: Pos,
    pub(crate) block: Option<Vec<Stmt>>,
}

impl Stmt {
    pub(crate) fn keyword(&self) -> &str {
        self.words.first().map_or("", String::as_str)
    }

    pub(crate) fn args(&self) -> &[String] {
        self.words.get(1..).unwrap_or(&[])
    }
}

/// Reads statements up to the `}` closing the block opened at `opener` (or to the end).
pub(crate) fn statements(
    toks: &[(Tok, Pos)],
    at: &mut usize,
    opener: Option<Pos>,
    files: &[String],
) -> Result<Vec<Stmt>, ImportError> {
    let syntax = |pos: Pos, message: String| ImportError::Syntax {
        file: files[pos.file].clone(),
        line: pos.line,
        message,
    };
    let mut out = Vec::new();
    loop {
        let Some((tok, pos)) = toks.get(*at) else {
            return match opener {
                Some(open) => Err(syntax(open, "this `{` is never closed".to_owned())),
                None => Ok(out),
            };
        };
        let pos = *pos;
        match tok {
            Tok::Eol => *at += 1,
            Tok::Close => {
                *at += 1;
                return match opener {
                    Some(_) => Ok(out),
                    None => Err(syntax(pos, "`}` without a matching `{`".to_owned())),
                };
            }
            Tok::Open | Tok::Word(_) => {
                let mut words = Vec::new();
                while let Some((Tok::Word(w), _)) = toks.get(*at) {
                    words.push(w.clone());
                    *at += 1;
                }
                // A block's `{` may stand on the line after its keyword.
                let mut next = *at;
                while matches!(toks.get(next), Some((Tok::Eol, _))) {
                    next += 1;
                }
                let block = match toks.get(next) {
                    Some((Tok::Open, open)) => {
                        *at = next + 1;
                        Some(statements(toks, at, Some(*open), files)?)
                    }
                    _ => None,
                };
                out.push(Stmt { words, pos, block });
            }
        }
    }
}
