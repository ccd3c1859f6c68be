//! A command line split as `/bin/sh` splits it, for script security, which must see every
//! program a command runs: simple commands (separated by `;`, `&`, `&&`, `||`, `|`, newlines
//! and parentheses), each with its variable assignments, its words (quotes removed) and its
//! redirections. Reserved words that only join commands (`if`, `then`, `while`, `do`, `{`,
//! `!`...) are dropped. What cannot be followed without running the shell (command
//! substitution, `for` and `case`, function definitions, here-documents) is an error saying
//! which, for the caller to refuse.
//!
//! Pure text processing: no file system, no environment.

/// One word of a command, quotes and backslashes removed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Word {
    pub(crate) text: String,
    /// A `$` expansion (unquoted or inside double quotes): the text is not what runs.
    pub(crate) expands: bool,
    /// An unquoted `*`, `?` or `[`, or a leading `~`: the shell may replace the word.
    pub(crate) glob: bool,
    /// Some of it was quoted or escaped (so it is never a reserved word).
    pub(crate) quoted: bool,
}

impl Word {
    /// The word is what the shell passes on, unchanged.
    pub(crate) fn is_literal(&self) -> bool {
        !self.expands && !self.glob
    }
}

/// A redirection: its operator (`<`, `>`, `>>`, `<&`, `>&`, `<>`, `>|`, `&>`) and target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Redirect {
    pub(crate) op: &'static str,
    pub(crate) target: Word,
}

/// One simple command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Simple {
    /// `NAME=value` words before the command word.
    pub(crate) assignments: Vec<(String, Word)>,
    /// The command word and its arguments.
    pub(crate) words: Vec<Word>,
    pub(crate) redirects: Vec<Redirect>,
    /// Its standard input is the previous command's output (`a | b`).
    pub(crate) piped_in: bool,
}

impl Simple {
    fn is_empty(&self) -> bool {
        self.assignments.is_empty() && self.words.is_empty() && self.redirects.is_empty()
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(Word),
    /// `;` (or a newline), `&`, `&&`, `||`, `|`, `(`, `)`.
    Op(&'static str),
    Redirect(&'static str),
}

/// Splits `command` into its simple commands, in order. Err: why it cannot be followed.
pub(crate) fn split(command: &str) -> Result<Vec<Simple>, &'static str> {
    let tokens = tokens(command)?;
    let mut out = Vec::new();
    let mut cur = Simple::default();
    let mut tokens = tokens.into_iter().peekable();
    while let Some(tok) = tokens.next() {
        match tok {
            Token::Op(op) => {
                if op == "(" && !cur.words.is_empty() {
                    return Err("it defines a shell function; put it in a script");
                }
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                cur.piped_in = op == "|";
            }
            Token::Redirect(op) => match tokens.next() {
                Some(Token::Word(target)) => cur.redirects.push(Redirect { op, target }),
                _ => return Err("it has a redirection without a target"),
            },
            Token::Word(w) => {
                if cur.words.is_empty() {
                    if let Some((name, value)) = assignment(&w) {
                        cur.assignments.push((name, value));
                        continue;
                    }
                    if !w.quoted {
                        match w.text.as_str() {
                            "if" | "then" | "else" | "elif" | "fi" | "while" | "until" | "do"
                            | "done" | "{" | "}" | "!" => continue,
                            "for" | "select" => {
                                return Err("it has a `for` loop; put it in a script")
                            }
                            "case" | "esac" => {
                                return Err("it has a `case` statement; put it in a script")
                            }
                            "function" => {
                                return Err("it defines a shell function; put it in a script")
                            }
                            "[[" | "((" => {
                                return Err(
                                    "it uses bash syntax (`[[`, `((`) that /bin/sh does not run",
                                )
                            }
                            _ => {}
                        }
                    }
                }
                cur.words.push(w);
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// `NAME=value` as an assignment: the name, and the value as a word of its own.
fn assignment(w: &Word) -> Option<(String, Word)> {
    let (name, value) = w.text.split_once('=')?;
    let is_name = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    is_name.then(|| {
        (
            name.to_owned(),
            Word {
                text: value.to_owned(),
                ..w.clone()
            },
        )
    })
}

const COMMAND_SUBSTITUTION: &str =
    "it uses command substitution ($(...) or `...`), which runs a command that cannot be checked beforehand; put it in a script";

fn tokens(s: &str) -> Result<Vec<Token>, &'static str> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            ' ' | '\t' | '\r' => {
                chars.next();
            }
            '\n' => {
                chars.next();
                out.push(Token::Op(";"));
            }
            '#' => while chars.next_if(|&c| c != '\n').is_some() {},
            ';' => {
                chars.next();
                if chars.next_if_eq(&';').is_some() {
                    return Err("it has a `case` statement; put it in a script");
                }
                out.push(Token::Op(";"));
            }
            '&' => {
                chars.next();
                if chars.next_if_eq(&'&').is_some() {
                    out.push(Token::Op("&&"));
                } else if chars.next_if_eq(&'>').is_some() {
                    chars.next_if_eq(&'>');
                    out.push(Token::Redirect("&>"));
                } else {
                    out.push(Token::Op("&"));
                }
            }
            '|' => {
                chars.next();
                if chars.next_if_eq(&'|').is_some() {
                    out.push(Token::Op("||"));
                } else {
                    chars.next_if_eq(&'&');
                    out.push(Token::Op("|"));
                }
            }
            '(' => {
                chars.next();
                if chars.peek() == Some(&'(') {
                    return Err("it uses bash syntax (`[[`, `((`) that /bin/sh does not run");
                }
                out.push(Token::Op("("));
            }
            ')' => {
                chars.next();
                out.push(Token::Op(")"));
            }
            '<' | '>' => out.push(Token::Redirect(redirect(&mut chars)?)),
            _ => {
                let w = word(&mut chars)?;
                // `2>file`: digits just before a redirection are its descriptor, not a word.
                let io_number = !w.quoted
                    && !w.text.is_empty()
                    && w.text.bytes().all(|b| b.is_ascii_digit())
                    && matches!(chars.peek(), Some('<' | '>'));
                if !io_number {
                    out.push(Token::Word(w));
                }
            }
        }
    }
    Ok(out)
}

fn redirect(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
) -> Result<&'static str, &'static str> {
    let first = chars.next();
    Ok(match first {
        Some('<') => {
            if chars.next_if_eq(&'<').is_some() {
                return Err("it has a here-document; put it in a script");
            }
            if chars.next_if_eq(&'&').is_some() {
                "<&"
            } else if chars.next_if_eq(&'>').is_some() {
                "<>"
            } else {
                "<"
            }
        }
        _ => {
            if chars.next_if_eq(&'>').is_some() {
                ">>"
            } else if chars.next_if_eq(&'&').is_some() {
                ">&"
            } else if chars.next_if_eq(&'|').is_some() {
                ">|"
            } else {
                ">"
            }
        }
    })
}

/// One word, up to a blank or an operator.
fn word(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Word, &'static str> {
    let mut w = Word::default();
    let unterminated = "it has an unterminated quote";
    while let Some(&c) = chars.peek() {
        match c {
            ' ' | '\t' | '\r' | '\n' | ';' | '&' | '|' | '<' | '>' | '(' | ')' => break,
            '\'' => {
                chars.next();
                w.quoted = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.text.push(c),
                        None => return Err(unterminated),
                    }
                }
            }
            '"' => {
                chars.next();
                w.quoted = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('\n') => {}
                            Some(c @ ('"' | '\\' | '$' | '`')) => w.text.push(c),
                            Some(c) => {
                                w.text.push('\\');
                                w.text.push(c);
                            }
                            None => return Err(unterminated),
                        },
                        Some('`') => return Err(COMMAND_SUBSTITUTION),
                        Some('$') => dollar(chars, &mut w)?,
                        Some(c) => w.text.push(c),
                        None => return Err(unterminated),
                    }
                }
            }
            '\\' => {
                chars.next();
                match chars.next() {
                    // A line continuation.
                    Some('\n') => {}
                    Some(c) => {
                        w.quoted = true;
                        w.text.push(c);
                    }
                    None => {}
                }
            }
            '`' => return Err(COMMAND_SUBSTITUTION),
            '$' => {
                chars.next();
                dollar(chars, &mut w)?;
            }
            '*' | '?' | '[' => {
                chars.next();
                w.glob = true;
                w.text.push(c);
            }
            '~' if w.text.is_empty() && !w.quoted => {
                chars.next();
                w.glob = true;
                w.text.push(c);
            }
            c => {
                chars.next();
                w.text.push(c);
            }
        }
    }
    Ok(w)
}

/// After a `$`: command substitution is refused; anything else is an expansion.
fn dollar(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    w: &mut Word,
) -> Result<(), &'static str> {
    if chars.peek() == Some(&'(') {
        return Err(COMMAND_SUBSTITUTION);
    }
    w.text.push('$');
    if chars
        .peek()
        .is_some_and(|&c| c.is_ascii_alphanumeric() || "_{@*#?$!-".contains(c))
    {
        w.expands = true;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &Simple) -> Vec<&str> {
        s.words.iter().map(|w| w.text.as_str()).collect()
    }

    fn commands(line: &str) -> Vec<Vec<String>> {
        split(line)
            .unwrap_or_else(|e| panic!("{line}: {e}"))
            .iter()
            .map(|s| words(s).into_iter().map(str::to_owned).collect())
            .collect()
    }

    #[test]
    fn splits_into_simple_commands() {
        assert_eq!(
            commands("ok.sh || /opt/app/x"),
            vec![vec!["ok.sh"], vec!["/opt/app/x"]]
        );
        assert_eq!(
            commands("a;b&c&&d|e||f\ng"),
            vec![
                vec!["a"],
                vec!["b"],
                vec!["c"],
                vec!["d"],
                vec!["e"],
                vec!["f"],
                vec!["g"]
            ]
        );
        assert_eq!(
            commands("(cd /x && ./y) ; { z; }"),
            vec![vec!["cd", "/x"], vec!["./y"], vec!["z"]]
        );
        assert_eq!(
            commands("if test -f /x; then /opt/a 'b c'; else ! /opt/d; fi"),
            vec![
                vec!["test", "-f", "/x"],
                vec!["/opt/a", "b c"],
                vec!["/opt/d"]
            ]
        );
        assert_eq!(
            commands("while true; do /opt/w; done # a comment; /opt/not"),
            vec![vec!["true"], vec!["/opt/w"]]
        );
        assert_eq!(
            commands("'/opt/my dir/x' \"a\\\"b\" c\\ d"),
            vec![vec!["/opt/my dir/x", "a\"b", "c d"]]
        );
        assert_eq!(commands("   "), Vec::<Vec<String>>::new());
    }

    #[test]
    fn assignments_redirections_and_pipes() {
        let s = split("LANG=C PATH=/x:/y prog 2>/dev/null <in | sh").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[0].assignments
                .iter()
                .map(|(n, v)| (n.as_str(), v.text.as_str()))
                .collect::<Vec<_>>(),
            vec![("LANG", "C"), ("PATH", "/x:/y")]
        );
        assert_eq!(words(&s[0]), vec!["prog"]);
        assert_eq!(
            s[0].redirects
                .iter()
                .map(|r| (r.op, r.target.text.as_str()))
                .collect::<Vec<_>>(),
            vec![(">", "/dev/null"), ("<", "in")]
        );
        assert!(!s[0].piped_in && s[1].piped_in);
        // After the command word, `a=b` is an argument.
        assert_eq!(commands("env A=1 x"), vec![vec!["env", "A=1", "x"]]);
        let s = split("echo 1>&2").unwrap();
        assert_eq!(words(&s[0]), vec!["echo"]);
    }

    #[test]
    fn expansions_are_marked() {
        let s = split("$CHECK \"$HOME/x\" '$y' ~/z /a/*.sh plain").unwrap();
        let flags: Vec<(bool, bool)> = s[0].words.iter().map(|w| (w.expands, w.glob)).collect();
        assert_eq!(
            flags,
            vec![
                (true, false),
                (true, false),
                (false, false),
                (false, true),
                (false, true),
                (false, false)
            ]
        );
    }

    #[test]
    fn what_cannot_be_followed_is_refused_with_why() {
        for (line, why) in [
            ("x $(cat /y)", "command substitution"),
            ("x \"`id`\"", "command substitution"),
            ("for f in a b; do $f; done", "`for` loop"),
            ("case $x in a) y;; esac", "`case`"),
            ("f() { /opt/x; }; f", "function"),
            ("cat <<EOF\nx\nEOF", "here-document"),
            ("[[ -f x ]]", "bash syntax"),
            ("'/opt/x", "unterminated quote"),
            ("x >", "without a target"),
        ] {
            let err = split(line).expect_err(line);
            assert!(err.contains(why), "{line}: {err}");
        }
    }
}
