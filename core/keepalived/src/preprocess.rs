//! keepalived's preprocessor, applied to each line before it is split into words (keepalived.conf(5),
//! "Conditional configuration" and "Parameter substitution"):
//!
//! - `@ID rest` keeps `rest` only on the host whose config id is `ID`; `@^ID rest` only on the
//!   others. The id is the importer's `--host` (keepalived's `-i`), by default the first part of
//!   this machine's host name.
//! - `$NAME=VALUE` (only blanks before `$`, none before `=`) defines a parameter; a value ending
//!   in `\` goes on over the next lines (a multi-line definition), each `\` line one more line
//!   of it.
//! - `$NAME` followed by a blank (or the end of the line) and `${NAME}` anywhere are replaced by
//!   the value, again and again while the result has more (the value is taken when replaced,
//!   not when defined); undefined names are left as they are. A multi-line value becomes that
//!   many lines, each read again as a line (its `@` and `$` lines work).
//! - `${_PWD}` is the directory of the file being read, `${_INSTANCE}` the config id.
//!
//! Every line it makes keeps the line number of the line it came from, for warnings.

use std::collections::HashMap;

/// A substitution that keeps producing more after this many rounds is taken for a loop.
const MAX_ROUNDS: usize = 32;

/// Replacement text grows past this: taken for a loop too.
const MAX_LINE: usize = 64 * 1024;

/// The preprocessor's state across a config and what it includes: the definitions so far.
#[derive(Debug, Clone)]
pub(crate) struct Preprocessor {
    /// The config id `@ID` lines are compared with.
    host: String,
    params: HashMap<String, Vec<String>>,
    /// A multi-line definition being read: its name and lines so far.
    open: Option<(String, Vec<String>)>,
}

/// What one source line became: lines to read, and problems (each a message for that line).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Lines {
    pub(crate) lines: Vec<String>,
    pub(crate) problems: Vec<String>,
}

impl Preprocessor {
    pub(crate) fn new(host: &str) -> Self {
        Self {
            host: host.to_owned(),
            params: HashMap::new(),
            open: None,
        }
    }

    /// Feeds one source line of a file in `dir` (for `${_PWD}`).
    pub(crate) fn line(&mut self, text: &str, dir: &str) -> Lines {
        let mut out = Lines::default();
        if let Some((name, mut body)) = self.open.take() {
            let (part, more) = continued(text);
            if !(part.trim().is_empty() && more) {
                body.push(part.to_owned());
            }
            if more || text.trim().is_empty() {
                self.open = Some((name, body));
            } else {
                self.params.insert(name, body);
            }
            return out;
        }
        self.read(text, dir, 0, &mut out);
        out
    }

    /// A definition still open at the end of the file (its last line ended in `\`).
    pub(crate) fn finish(&mut self) -> Option<String> {
        let (name, body) = self.open.take()?;
        self.params.insert(name.clone(), body);
        Some(name)
    }

    fn read(&mut self, text: &str, dir: &str, depth: usize, out: &mut Lines) {
        if depth > MAX_ROUNDS {
            out.problems
                .push("parameters expand into themselves (a loop); line ignored".to_owned());
            return;
        }
        let Some(text) = self.conditional(text) else {
            return;
        };
        if let Some((name, value)) = definition(text) {
            match continued(value) {
                (first, true) => {
                    let body = if first.trim().is_empty() {
                        Vec::new()
                    } else {
                        vec![first.to_owned()]
                    };
                    self.open = Some((name.to_owned(), body));
                }
                (value, false) => {
                    self.params.insert(name.to_owned(), vec![value.to_owned()]);
                }
            }
            return;
        }
        let Some(expanded) = self.substitute(text, dir) else {
            out.lines.push(text.to_owned());
            return;
        };
        match expanded {
            Ok(lines) => {
                for l in lines {
                    self.read(&l, dir, depth + 1, out);
                }
            }
            Err(why) => out.problems.push(why),
        }
    }

    /// The line without its `@ID` / `@^ID` prefix, or None when it is not for this host.
    fn conditional<'t>(&self, text: &'t str) -> Option<&'t str> {
        let trimmed = text.trim_start();
        let Some(rest) = trimmed.strip_prefix('@') else {
            return Some(text);
        };
        let (negate, rest) = match rest.strip_prefix('^') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (id, rest) = rest.split_at(end);
        ((id == self.host) != negate).then_some(rest)
    }

    /// The line with one round of parameters replaced, split at the lines of multi-line
    /// values; None when nothing in it is a defined parameter.
    fn substitute(&self, text: &str, dir: &str) -> Option<Result<Vec<String>, String>> {
        let mut lines: Vec<String> = vec![String::new()];
        let mut changed = false;
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            let (before, from) = rest.split_at(at);
            push_str(&mut lines, before);
            let Some((name, used)) = reference(from) else {
                push_str(&mut lines, "$");
                rest = &from[1..];
                continue;
            };
            let value: Option<Vec<String>> = match name {
                "_PWD" => Some(vec![dir.to_owned()]),
                "_INSTANCE" => Some(vec![self.host.clone()]),
                _ => self.params.get(name).cloned(),
            };
            match value {
                Some(v) => {
                    changed = true;
                    let mut parts = v.into_iter();
                    push_str(&mut lines, &parts.next().unwrap_or_default());
                    lines.extend(parts);
                }
                None => push_str(&mut lines, &from[..used]),
            }
            rest = &from[used..];
        }
        push_str(&mut lines, rest);
        if !changed {
            return None;
        }
        if lines.iter().map(String::len).sum::<usize>() > MAX_LINE {
            return Some(Err(
                "parameters expand past 64 KiB (a loop?); line ignored".to_owned()
            ));
        }
        Some(Ok(lines))
    }
}

fn push_str(lines: &mut [String], s: &str) {
    if let Some(last) = lines.last_mut() {
        last.push_str(s);
    }
}

/// `$NAME` (followed by a blank or the end) or `${NAME}` at the start of `from`: the name and
/// the bytes the reference takes.
fn reference(from: &str) -> Option<(&str, usize)> {
    let after = &from[1..];
    if let Some(inner) = after.strip_prefix('{') {
        let end = inner.find('}')?;
        let name = &inner[..end];
        return is_name(name).then_some((name, end + 3));
    }
    let end = after
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(after.len());
    let name = &after[..end];
    let next = after[end..].chars().next();
    (is_name(name) && next.is_none_or(char::is_whitespace)).then_some((name, end + 1))
}

fn is_name(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `$NAME=VALUE` with only blanks before the `$`: the name and the value.
fn definition(text: &str) -> Option<(&str, &str)> {
    let t = text.trim_start().strip_prefix('$')?;
    let eq = t.find('=')?;
    let name = &t[..eq];
    is_name(name).then(|| (name, &t[eq + 1..]))
}

/// The line without a trailing `\` (and the blanks before it), and whether it had one.
fn continued(text: &str) -> (&str, bool) {
    let t = text.trim_end();
    match t.strip_suffix('\\') {
        Some(body) => (body.trim_end(), true),
        None => (t, false),
    }
}

/// This machine's config id as keepalived takes it by default: the host name up to its first
/// dot.
pub fn default_host() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name = name.trim();
    name.split('.').next().unwrap_or(name).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(host: &str, src: &str) -> Vec<String> {
        let mut p = Preprocessor::new(host);
        let mut out = Vec::new();
        for l in src.lines() {
            let got = p.line(l, "/etc/keepalived");
            assert!(got.problems.is_empty(), "{:?}", got.problems);
            out.extend(got.lines.into_iter().map(|l| l.trim().to_owned()));
        }
        out.retain(|l| !l.is_empty());
        out
    }

    #[test]
    fn conditional_lines_follow_the_host() {
        let src = "@main router_id main_router\n@backup router_id backup_router\n@^main 1.2.3.4\n@^backup 1.2.3.5\nplain\n";
        assert_eq!(
            run("main", src),
            ["router_id main_router", "1.2.3.5", "plain"]
        );
        assert_eq!(
            run("backup", src),
            ["router_id backup_router", "1.2.3.4", "plain"]
        );
        assert_eq!(run("other", src), ["1.2.3.4", "1.2.3.5", "plain"]);
    }

    #[test]
    fn parameters_are_replaced_when_used() {
        // keepalived.conf(5)'s own example.
        let src = "$ADDRESS_BASE=10.2.${ADDRESS_BASE_SUB}\n$ADDRESS_BASE_SUB=0\n${ADDRESS_BASE}.100/32\n$ADDRESS_BASE_SUB=10\n${ADDRESS_BASE}.100/32\n";
        assert_eq!(run("h", src), ["10.2.0.100/32", "10.2.10.100/32"]);
        // `$NAME` needs a blank after it; undefined names and lone `$` stay.
        let src = "$P=240\npriority $P\nx $Pq ${UNDEF} $ 5$\nnotify \"/bin/echo $1\"\n";
        assert_eq!(
            run("h", src),
            [
                "priority 240",
                "x $Pq ${UNDEF} $ 5$",
                "notify \"/bin/echo $1\""
            ]
        );
        // With conditionals, and a conditional made by a parameter.
        let src = "@main $PRIORITY=240\n@backup $PRIORITY=200\npriority $PRIORITY\n$IF_MAIN=@main\n$IF_MAIN advert_int 2\n";
        assert_eq!(run("main", src), ["priority 240", "advert_int 2"]);
        assert_eq!(run("backup", src), ["priority 200"]);
        assert_eq!(
            run("h", "x ${_INSTANCE} ${_PWD}/s.sh\n"),
            ["x h /etc/keepalived/s.sh"]
        );
        // An empty value is allowed.
        assert_eq!(run("h", "$E=\nvalue [${E}]\n"), ["value []"]);
    }

    #[test]
    fn multi_line_definitions_expand_to_lines() {
        let src = "$INSTANCE= \\\nvrrp_instance VI_${NUM} { \\\n    interface eth0.${NUM} \\\n    @high priority 130 \\\n    @low priority 120 \\\n}\n\n$NUM=0\n$INSTANCE\n$NUM=1\n$INSTANCE\n";
        assert_eq!(
            run("high", src),
            [
                "vrrp_instance VI_0 {",
                "interface eth0.0",
                "priority 130",
                "}",
                "vrrp_instance VI_1 {",
                "interface eth0.1",
                "priority 130",
                "}"
            ]
        );
        // Nested: a definition inside a multi-line one is made when it is expanded.
        let src =
            "$RS= \\\nreal ${N}\n$VS= \\\nvs { \\\n$N=1 \\\n$RS \\\n$N=2 \\\n$RS \\\n}\n$VS\n";
        assert_eq!(run("h", src), ["vs {", "real 1", "real 2", "}"]);
    }

    #[test]
    fn a_parameter_that_contains_itself_is_a_problem_not_a_hang() {
        let mut p = Preprocessor::new("h");
        assert!(p.line("$A=x ${A}", "/").lines.is_empty());
        let got = p.line("${A}", "/");
        assert!(!got.problems.is_empty(), "{got:?}");
    }
}
