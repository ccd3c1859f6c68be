//! A quick reader for the KDL that config files are made of, with the `kdl` crate as its
//! reference.
//!
//! Why: `KdlDocument::parse` keeps every space and comment for editing and is slow enough to be
//! the largest part of the daemon's start-up with a large config, and so of the time before its
//! first election (figures: docs/design.md). This reader builds the same
//! `KdlDocument` (names, values, children and every span, formatting left out) in a single pass
//! over the bytes, for the subset of KDL v2 that configs use: bare and quoted strings with the
//! usual escapes, decimal numbers, `#true`/`#false`/`#null`, properties, child blocks, `;`,
//! `//` and `/* */` comments.
//!
//! Anything else (a byte outside printable ASCII, raw or multi-line strings, type annotations,
//! `/-`, `\` line continuations, hex numbers, `#inf`, and every syntax error) gives `None`, and
//! the caller parses with the `kdl` crate, which also words the errors. The tests hold the two
//! to the same tree and spans on the repository's configs and on generated documents.

use kdl::{KdlDocument, KdlEntry, KdlIdentifier, KdlNode, KdlValue};
use miette::SourceSpan;

/// The document `KdlDocument::parse_v2(source)` gives, without formatting; None where this
/// reader leaves the text to the `kdl` crate.
pub(super) fn parse(source: &str) -> Option<KdlDocument> {
    // Tab, CR and LF are the only control characters configs have; the rest of the rules on
    // code points (and every non-ASCII space and newline) are the `kdl` crate's to apply.
    if !source
        .bytes()
        .all(|b| matches!(b, b' '..=b'~' | b'\t' | b'\n' | b'\r'))
    {
        return None;
    }
    let mut r = Reader {
        b: source.as_bytes(),
        src: source,
        at: 0,
    };
    let doc = r.nodes(false)?;
    (r.at == r.b.len()).then_some(doc)
}

struct Reader<'a> {
    b: &'a [u8],
    src: &'a str,
    at: usize,
}

/// What a token turned out to be.
enum Token {
    /// A bare identifier or a quoted string, with its value.
    Text(String),
    Value(KdlValue),
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.at).copied()
    }

    fn peek2(&self) -> Option<u8> {
        self.b.get(self.at + 1).copied()
    }

    /// `nodes`: line space, then nodes each ended by a terminator. In a child block it stops
    /// before the `}`.
    fn nodes(&mut self, in_block: bool) -> Option<KdlDocument> {
        self.line_space()?;
        let start = self.at;
        let mut end = start;
        let mut doc = KdlDocument::new();
        loop {
            match self.peek() {
                None if in_block => return None,
                None => break,
                Some(b'}') if in_block => break,
                Some(b'}') => return None,
                Some(_) => {}
            }
            let node = self.node()?;
            end = self.at;
            doc.nodes_mut().push(node);
            match self.peek() {
                None => break,
                Some(b';' | b'\n' | b'\r') => self.at += 1,
                Some(b'/') if self.peek2() == Some(b'/') => self.line_comment(),
                Some(b'}') if in_block => {}
                Some(_) => return None,
            }
            self.line_space()?;
        }
        doc.set_span(SourceSpan::new(start.into(), end - start));
        Some(doc)
    }

    /// `base-node` and the node space after it, up to its terminator.
    fn node(&mut self) -> Option<KdlNode> {
        let start = self.at;
        let Token::Text(name) = self.token()? else {
            return None;
        };
        let mut ident = KdlIdentifier::from(name);
        ident.set_span(SourceSpan::new(start.into(), self.at - start));
        let mut node = KdlNode::new(ident);
        loop {
            let before = self.at;
            self.node_space()?;
            match self.peek() {
                None | Some(b'{' | b'}' | b';' | b'\n' | b'\r') => break,
                Some(b'/') if self.peek2() == Some(b'/') => break,
                Some(_) if self.at == before => return None,
                Some(_) => {
                    let entry = self.entry()?;
                    node.entries_mut().push(entry);
                }
            }
        }
        if self.peek() == Some(b'{') {
            self.at += 1;
            let children = self.nodes(true)?;
            self.at += 1; // the `}` that `nodes` stopped at
            node.set_children(children);
            self.node_space()?;
        }
        node.set_span(SourceSpan::new(start.into(), self.at - start));
        Some(node)
    }

    /// An argument or a property (`key=value`, spaces allowed around the `=`).
    fn entry(&mut self) -> Option<KdlEntry> {
        let start = self.at;
        let mut entry = match self.token()? {
            Token::Text(text) => {
                let key_end = self.at;
                self.node_space()?;
                if self.peek() == Some(b'=') {
                    self.at += 1;
                    self.node_space()?;
                    let value = match self.token()? {
                        Token::Text(s) => KdlValue::String(s),
                        Token::Value(v) => v,
                    };
                    let mut key = KdlIdentifier::from(text);
                    key.set_span(SourceSpan::new(start.into(), key_end - start));
                    KdlEntry::new_prop(key, value)
                } else {
                    self.at = key_end;
                    KdlEntry::new(KdlValue::String(text))
                }
            }
            Token::Value(value) => KdlEntry::new(value),
        };
        entry.set_span(SourceSpan::new(start.into(), self.at - start));
        Some(entry)
    }

    /// A string (bare or quoted), number or keyword, which must be followed by what may
    /// follow a value.
    fn token(&mut self) -> Option<Token> {
        let token = match self.peek()? {
            b'"' => Token::Text(self.quoted()?),
            b'#' => {
                let word = self.bare();
                Token::Value(match &word[1..] {
                    "true" => KdlValue::Bool(true),
                    "false" => KdlValue::Bool(false),
                    "null" => KdlValue::Null,
                    _ => return None,
                })
            }
            _ => {
                let word = self.bare();
                let b = word.as_bytes();
                let digits_from = usize::from(matches!(b.first(), Some(b'+' | b'-')));
                match b.get(digits_from) {
                    Some(b'0'..=b'9') => Token::Value(number(word)?),
                    // `.5` and `-.5` are errors; `.` followed by other characters is a string.
                    Some(b'.') if matches!(b.get(digits_from + 1), Some(b'0'..=b'9')) => {
                        return None
                    }
                    _ if word.is_empty() => return None,
                    _ if matches!(word, "true" | "false" | "null" | "inf" | "-inf" | "nan") => {
                        return None
                    }
                    _ => Token::Text(word.to_owned()),
                }
            }
        };
        // What may follow a value: space, a terminator, a comment, `{`, `}` or `=` (a
        // property's key; anything else before `=` is refused by the caller).
        match self.peek() {
            None | Some(b' ' | b'\t' | b'\n' | b'\r' | b';' | b'{' | b'}' | b'=') => Some(token),
            Some(b'/') if matches!(self.peek2(), Some(b'/' | b'*')) => Some(token),
            Some(_) => None,
        }
        .filter(|t| matches!(t, Token::Text(_)) || self.peek() != Some(b'='))
    }

    /// The identifier characters from here (ASCII: printable, less `\/(){}[];"#=` and space);
    /// a leading `#` is taken too, for keywords.
    fn bare(&mut self) -> &'a str {
        let start = self.at;
        if self.peek() == Some(b'#') {
            self.at += 1;
        }
        while let Some(c) = self.peek() {
            if !is_ident(c) {
                break;
            }
            self.at += 1;
        }
        &self.src[start..self.at]
    }

    /// A single-line quoted string, unescaped.
    fn quoted(&mut self) -> Option<String> {
        self.at += 1;
        if self.peek() == Some(b'"') && self.peek2() == Some(b'"') {
            return None; // multi-line
        }
        let mut out = String::new();
        loop {
            let run = self.at;
            while let Some(c) = self.peek() {
                if matches!(c, b'"' | b'\\' | b'\n' | b'\r') {
                    break;
                }
                self.at += 1;
            }
            out.push_str(&self.src[run..self.at]);
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(out);
                }
                b'\\' => {
                    self.at += 1;
                    let c = self.peek()?;
                    self.at += 1;
                    out.push(match c {
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'\\' => '\\',
                        b'"' => '"',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b's' => ' ',
                        b'u' => self.unicode_escape()?,
                        // `\` before space or a newline (whitespace escape), or a bad escape.
                        _ => return None,
                    });
                }
                _ => return None, // a newline in a single-line string
            }
        }
    }

    /// The `{XXXXXX}` of `\u{...}`: 1 to 6 hex digits naming a Unicode scalar value.
    fn unicode_escape(&mut self) -> Option<char> {
        if self.peek() != Some(b'{') {
            return None;
        }
        let start = self.at + 1;
        let len = self.b[start..]
            .iter()
            .take_while(|c| c.is_ascii_hexdigit())
            .count();
        if !(1..=6).contains(&len) || self.b.get(start + len) != Some(&b'}') {
            return None;
        }
        self.at = start + len + 1;
        char::from_u32(u32::from_str_radix(&self.src[start..start + len], 16).ok()?)
    }

    /// `node-space*`: spaces, tabs and `/* */` comments.
    fn node_space(&mut self) -> Option<()> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t') => self.at += 1,
                Some(b'/') if self.peek2() == Some(b'*') => self.block_comment()?,
                // `\` continues a line, `/-` comments out what follows: left to the kdl crate.
                Some(b'\\') => return None,
                Some(b'/') if self.peek2() == Some(b'-') => return None,
                _ => return Some(()),
            }
        }
    }

    /// `line-space*`: node space, newlines and `//` comments.
    fn line_space(&mut self) -> Option<()> {
        loop {
            self.node_space()?;
            match self.peek() {
                Some(b'\n' | b'\r') => self.at += 1,
                Some(b'/') if self.peek2() == Some(b'/') => self.line_comment(),
                _ => return Some(()),
            }
        }
    }

    /// `//` to the end of the line, its newline included.
    fn line_comment(&mut self) {
        match self.b[self.at..]
            .iter()
            .position(|&c| c == b'\n' || c == b'\r')
        {
            Some(n) => self.at += n + 1,
            None => self.at = self.b.len(),
        }
    }

    /// `/* ... */`, nested.
    fn block_comment(&mut self) -> Option<()> {
        self.at += 2;
        let mut depth = 1usize;
        while depth > 0 {
            match (self.peek()?, self.peek2()) {
                (b'*', Some(b'/')) => {
                    depth -= 1;
                    self.at += 2;
                }
                (b'/', Some(b'*')) => {
                    depth += 1;
                    self.at += 2;
                }
                _ => self.at += 1,
            }
        }
        Some(())
    }
}

fn is_ident(c: u8) -> bool {
    matches!(c, b'!'..=b'~')
        && !matches!(
            c,
            b'\\' | b'/' | b'(' | b')' | b'{' | b'}' | b'[' | b']' | b';' | b'"' | b'#' | b'='
        )
}

/// A decimal integer (`-3`, `+7`, `200`) or float (`1.5`, `2e3`, `-0.5E-2`); None for
/// anything else that starts like a number (hex, `_` separators, `1.`, `10ms`, ...).
fn number(word: &str) -> Option<KdlValue> {
    let b = word.as_bytes();
    let sign = usize::from(matches!(b[0], b'+' | b'-'));
    let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    // Each run of digits must be an i128, as the kdl crate reads them (`1e400` is inf, but a
    // whole part of 40 digits is refused).
    let run = |from: usize| {
        let n = digits(from);
        word[from..from + n].parse::<i128>().ok().map(|_| n)
    };
    let whole = run(sign)?;
    let mut i = sign + whole;
    if i == b.len() {
        // As the kdl crate: the digits are read unsigned, then negated.
        let n: i128 = word[sign..].parse().ok()?;
        return Some(KdlValue::Integer(if b[0] == b'-' { -n } else { n }));
    }
    if b[i] == b'.' {
        i += 1 + run(i + 1)?;
    }
    if i < b.len() && matches!(b[i], b'e' | b'E') {
        i += 1;
        if i < b.len() && matches!(b[i], b'+' | b'-') {
            i += 1;
        }
        i += run(i)?;
    }
    if i != b.len() {
        return None;
    }
    word.parse().ok().map(KdlValue::Float)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::fmt::Write;

    /// Everything the config reader looks at: names, values, children and spans.
    fn describe(doc: &KdlDocument) -> String {
        let mut out = String::new();
        describe_into(doc, &mut out, 0);
        out
    }

    fn describe_into(doc: &KdlDocument, out: &mut String, depth: usize) {
        let pad = "  ".repeat(depth);
        let _ = writeln!(out, "{pad}doc {:?}", doc.span());
        for n in doc.nodes() {
            let _ = writeln!(
                out,
                "{pad}node {:?} {:?} name {:?} ty {:?}",
                n.name().value(),
                n.span(),
                n.name().span(),
                n.ty().map(|t| t.value().to_owned())
            );
            for e in n.entries() {
                let _ = writeln!(
                    out,
                    "{pad}  entry {:?} = {:?} {:?} key {:?} ty {:?}",
                    e.name().map(|k| k.value().to_owned()),
                    e.value(),
                    e.span(),
                    e.name().map(|k| k.span()),
                    e.ty().map(|t| t.value().to_owned())
                );
            }
            match n.children() {
                Some(c) => describe_into(c, out, depth + 1),
                None => {
                    let _ = writeln!(out, "{pad}  (no block)");
                }
            }
        }
    }

    /// This reader and the kdl crate agree on `text`, or this reader declines it.
    fn agrees(text: &str) -> Result<bool, String> {
        let Some(ours) = parse(text) else {
            return Ok(false);
        };
        let theirs = KdlDocument::parse_v2(text)
            .map_err(|e| format!("accepted what the kdl crate refuses: {e:?}\n{text}"))?;
        let (a, b) = (describe(&ours), describe(&theirs));
        if a != b {
            return Err(format!("differs on\n{text}\n--- ours\n{a}--- kdl\n{b}"));
        }
        Ok(true)
    }

    fn read(text: &str) -> bool {
        agrees(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_repositorys_configs_are_read_as_the_kdl_crate_reads_them() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = Vec::new();
        for dir in ["examples/three-node", "contrib", "docs", "tests", "bench"] {
            crate::kdl_files_under(&root.join(dir), &mut files);
        }
        assert!(files.len() >= 4, "found only {files:?}");
        let mut read_here = 0;
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            if read(&text) {
                read_here += 1;
            }
        }
        // The shipped examples are all in the subset (they are what start-up time is about).
        for f in files
            .iter()
            .filter(|f| f.starts_with(root.join("examples")))
        {
            let text = std::fs::read_to_string(f).unwrap();
            assert!(
                parse(&text).is_some(),
                "{} is left to the kdl crate",
                f.display()
            );
        }
        assert!(read_here >= 4, "{read_here} of {} files read", files.len());
    }

    #[test]
    fn a_config_of_every_kind_of_setting_is_read() {
        let text = r#"global {
    router-id "h1"   // trailing comment
    script-user "nobody"; log-level info
}
/* a block /* nested */ comment */
check "port80" {
    plugin "plugins/port_listener.wasm"
    config port="80" protocol = "tcp" empty=""
    interval "200ms"; timeout 1.5
    weight -50
    allow "listening-sockets"
}
instance "VI_1" {
    interface eth0
    vrid 51
    priority +200
    preempt #true
    nopreempt #false
    other #null
    vip "192.0.2.100/24" dev=eth0 label="eth0:\u{76}ip\t\"q\"\\"
    route "198.51.100.0/24" via="192.0.2.254"
    big 1e3 small -2.5E-2 dot .x minus - plus +x
    track "port80" weight=-20
    empty { }
    nested{inner 1;inner 2}
}
last"#;
        assert!(read(text));
        let doc = parse(text).unwrap();
        let inst = &doc.nodes()[2];
        let vip = inst.children().unwrap().get("vip").unwrap();
        assert_eq!(
            vip.get("label").unwrap().as_string(),
            Some("eth0:vip\t\"q\"\\")
        );
    }

    #[test]
    fn what_the_reader_does_not_cover_is_left_to_the_kdl_crate() {
        for text in [
            "a #\"raw\"#",
            "a \"\"\"\n  multi\n  \"\"\"",
            "(t)a 1",
            "a (u8)1",
            "/-a 1\nb",
            "a /-1 2",
            "a 1 \\\n  2",
            "a 0x10",
            "a 1_000",
            "a #inf",
            "a \"caf\u{e9}\"",
            "a \"x\\\n   y\"",
            "a\u{b}b",
            "a 1.",
            "a .5",
        ] {
            assert!(parse(text).is_none(), "took {text:?}");
        }
    }

    #[test]
    fn syntax_errors_are_left_to_the_kdl_crate() {
        for text in [
            "a {",
            "a }",
            "}",
            "a \"unterminated",
            "a \"x\"y",
            "a 10ms",
            "a true",
            "a null",
            "a b=",
            "a 1=2",
            "a =1",
            "a\"b\"",
            "a /* open",
            "a { b } c",
            "a \"\\q\"",
            "a \"\\u{110000}\"",
            "a \"\\u{}\"",
            "a 1 ) 2",
            "a [1]",
            "=",
        ] {
            assert!(parse(text).is_none(), "took {text:?}");
            assert!(agrees(text).is_ok());
        }
    }

    #[test]
    fn numbers_match_the_kdl_crate() {
        for n in [
            "0",
            "-0",
            "+0",
            "7",
            "-3",
            "255",
            "1.5",
            "-2.25",
            "1e3",
            "1E-3",
            "2.5e+10",
            "00012",
            "170141183460469231731687303715884105727",
            "-170141183460469231731687303715884105727",
            "170141183460469231731687303715884105728",
            "1e400",
        ] {
            let text = format!("n {n}");
            if parse(&text).is_some() {
                assert!(read(&text), "{n}");
            }
        }
    }

    /// Pieces that documents are generated from: each is valid where it is placed, and some
    /// are outside the subset, so both paths are exercised.
    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => Just("a".to_owned()),
            4 => Just("vip".to_owned()),
            2 => Just("x-y.z".to_owned()),
            1 => Just("-".to_owned()),
            1 => Just("+foo".to_owned()),
            1 => Just("-.x".to_owned()),
            1 => Just(".".to_owned()),
            4 => Just("\"q\"".to_owned()),
            1 => Just("\"\"".to_owned()),
            2 => Just("\"sp ace\\n\\u{41}\"".to_owned()),
            1 => Just("\"a\\\"b\"".to_owned()),
            1 => Just("#\"raw\"#".to_owned()),
        ]
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            12 => word(),
            4 => (-300i64..300).prop_map(|n| n.to_string()),
            2 => (-1000i64..1000).prop_map(|n| format!("{}.{}", n, n.unsigned_abs() % 7)),
            1 => Just("1e3".to_owned()),
            1 => Just("#true".to_owned()),
            1 => Just("#false".to_owned()),
            1 => Just("#null".to_owned()),
            1 => Just("0x1f".to_owned()),
            1 => Just("(t)1".to_owned()),
        ]
    }

    fn space() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => Just(" ".to_owned()),
            1 => Just("  \t".to_owned()),
            1 => Just(" /* c */ ".to_owned()),
            1 => Just("/*c*/".to_owned()),
        ]
    }

    fn entry() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => value(),
            2 => (word(), value()).prop_map(|(k, v)| format!("{k}={v}")),
            1 => (word(), value()).prop_map(|(k, v)| format!("{k} = {v}")),
            1 => value().prop_map(|v| format!("/-{v}")),
            1 => value().prop_map(|v| format!("\\\n  {v}")),
        ]
    }

    fn terminator() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => Just("\n".to_owned()),
            1 => Just(";".to_owned()),
            1 => Just("; ".to_owned()),
            1 => Just(" // note\n".to_owned()),
            1 => Just("\r\n".to_owned()),
            1 => Just("\n\n    ".to_owned()),
        ]
    }

    fn node(depth: u32) -> BoxedStrategy<String> {
        let leaf = (
            word(),
            prop::collection::vec((space(), entry()), 0..4),
            space(),
        )
            .prop_map(|(name, entries, trailing)| {
                let mut s = name;
                for (sp, e) in entries {
                    s.push_str(&sp);
                    s.push_str(&e);
                }
                if trailing != " " {
                    s.push_str(&trailing);
                }
                s
            });
        if depth == 0 {
            return leaf.boxed();
        }
        (
            leaf,
            prop::option::of(prop::collection::vec((node(depth - 1), terminator()), 0..4)),
            prop_oneof![Just(" "), Just(""), Just("\n")],
        )
            .prop_map(|(head, block, before)| match block {
                None => head,
                Some(children) => {
                    let mut s = format!("{head}{before}{{");
                    for (n, t) in children {
                        s.push_str(&n);
                        s.push_str(&t);
                    }
                    s.push('}');
                    s
                }
            })
            .boxed()
    }

    fn document() -> impl Strategy<Value = String> {
        (
            prop_oneof![Just(""), Just("\n"), Just("// head\n"), Just("  ")],
            prop::collection::vec((node(2), terminator()), 0..5),
            any::<bool>(),
        )
            .prop_map(|(lead, nodes, last_terminated)| {
                let mut text = lead.to_owned();
                let n = nodes.len();
                for (i, (node, t)) in nodes.into_iter().enumerate() {
                    text.push_str(&node);
                    if i + 1 < n || last_terminated {
                        text.push_str(&t);
                    }
                }
                text
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn generated_documents_are_read_as_the_kdl_crate_reads_them(text in document()) {
            prop_assert!(agrees(&text).is_ok(), "{}", agrees(&text).unwrap_err());
        }
    }

    /// The generated documents above exercise this reader, not only the fallback.
    #[test]
    fn most_generated_documents_are_read_here() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = document();
        let total = 1000;
        let here = (0..total)
            .filter(|_| {
                let text = strategy.new_tree(&mut runner).unwrap().current();
                parse(&text).is_some()
            })
            .count();
        assert!(here * 4 >= total, "only {here} of {total} read here");
    }
}
