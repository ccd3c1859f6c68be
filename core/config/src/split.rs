//! Parsing a large config file on two threads.
//!
//! Why: the `kdl` parser reads a few MB/s, so a config with hundreds of instances (tens of KB)
//! spends most of the daemon's startup in `KdlDocument::parse`. A file above
//! [`PARALLEL_MIN`] is cut in two at a top-level node boundary near its middle, found by a small
//! lexer ([`split_point`]); the halves are parsed at once (one on this thread), the second
//! half's spans are moved by the offset of the cut, and its nodes appended to the first half's.
//! The result is the document the serial parse gives, spans and formatting included.
//!
//! On any error in either half, or wherever the lexer is unsure (no clear boundary, unbalanced
//! braces, a line continued with `\`, a slashdash before a line break, ...), the whole text is
//! parsed serially with `KdlDocument::parse`, so errors (and their line:col) and KDL v1
//! documents (the `v1-fallback` feature) come out exactly as from the serial parse: the halves
//! are parsed as KDL v2 only.

use kdl::{KdlDocument, KdlDocumentFormat, KdlError, KdlIdentifier, KdlNode};
use miette::SourceSpan;

/// Below this size one thread: the lexer and the second thread would cost more than they save.
const PARALLEL_MIN: usize = 16 * 1024;

/// `KdlDocument::parse(source)`, on two threads when the text is large.
pub(super) fn parse(source: &str) -> Result<KdlDocument, KdlError> {
    if source.len() >= PARALLEL_MIN {
        if let Some(doc) = parse_split(source) {
            return Ok(doc);
        }
    }
    KdlDocument::parse(source)
}

/// The document parsed in two halves, or None where the serial parse must decide.
fn parse_split(source: &str) -> Option<KdlDocument> {
    parse_split_at(source, split_point(source)?)
}

fn parse_split_at(source: &str, at: usize) -> Option<KdlDocument> {
    let (first, second) = source.split_at(at);
    let (a, b) = std::thread::scope(|s| {
        let other = std::thread::Builder::new()
            .name("config-parse".into())
            // The parser recurses (deeply where it recovers from errors): no less stack than
            // the main thread, where the whole file would be parsed.
            .stack_size(16 << 20)
            .spawn_scoped(s, || KdlDocument::parse_v2(second));
        let a = KdlDocument::parse_v2(first);
        let b = other.ok().and_then(|h| h.join().ok());
        (a, b)
    });
    join(a.ok()?, b?.ok()?, at)
}

/// `a` followed by `b`, which was parsed from the text that starts at byte `at`.
fn join(mut a: KdlDocument, mut b: KdlDocument, at: usize) -> Option<KdlDocument> {
    if a.nodes().is_empty() || b.nodes().is_empty() {
        return None;
    }
    let a_format = a.format()?.clone();
    let b_format = b.format()?.clone();
    // With a node in the document, the parser gives its leading text to the first node.
    if !b_format.leading.is_empty() {
        return None;
    }
    shift_document(&mut b, at);
    // What followed `a`'s last node's terminator is the start of `b`'s first node's leading
    // text in the whole document.
    let first = b.nodes_mut().first_mut()?.format_mut()?;
    first.leading.insert_str(0, &a_format.trailing);
    let start = a.span().offset();
    let end = b.span().offset() + b.span().len();
    a.nodes_mut().append(b.nodes_mut());
    a.set_format(KdlDocumentFormat {
        leading: a_format.leading,
        trailing: b_format.trailing,
    });
    a.set_span(SourceSpan::new(start.into(), end - start));
    Some(a)
}

fn shifted(span: SourceSpan, by: usize) -> SourceSpan {
    SourceSpan::new((span.offset() + by).into(), span.len())
}

fn shift_identifier(ident: &mut KdlIdentifier, by: usize) {
    ident.set_span(shifted(ident.span(), by));
}

fn shift_document(doc: &mut KdlDocument, by: usize) {
    doc.set_span(shifted(doc.span(), by));
    for node in doc.nodes_mut() {
        shift_node(node, by);
    }
}

fn shift_node(node: &mut KdlNode, by: usize) {
    node.set_span(shifted(node.span(), by));
    shift_identifier(node.name_mut(), by);
    if let Some(ty) = node.ty_mut() {
        shift_identifier(ty, by);
    }
    for entry in node.entries_mut() {
        entry.set_span(shifted(entry.span(), by));
        if let Some(name) = entry.name_mut() {
            shift_identifier(name, by);
        }
        if let Some(ty) = entry.ty_mut() {
            shift_identifier(ty, by);
        }
    }
    if let Some(children) = node.children_mut() {
        shift_document(children, by);
    }
}

/// A byte offset near the middle of `src` where a top-level node starts a line: just after a
/// `\n` that ends a node (outside braces, parentheses, strings and comments, not after a `\`
/// line continuation or a `/-` waiting for what it comments out). None when there is none,
/// or the text is anything the lexer does not follow (the serial parse then reports it).
fn split_point(src: &str) -> Option<usize> {
    split_point_near(src, src.len() / 2)
}

/// [`split_point`] nearest to `mid`.
fn split_point_near(src: &str, mid: usize) -> Option<usize> {
    let b = src.as_bytes();
    let mut before: Option<usize> = None;
    let mut depth = 0usize;
    let mut parens = 0usize;
    // No `\` (line continuation) on this line so far.
    let mut line_ok = true;
    // A `/-` not yet followed by what it comments out.
    let mut slashdash = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\n' => {
                i += 1;
                if depth == 0 && parens == 0 && line_ok && !slashdash && i < b.len() {
                    if i >= mid {
                        let after = i;
                        let pick = match before {
                            Some(p) if mid - p <= after - mid => p,
                            _ => after,
                        };
                        return usable(src, pick);
                    }
                    before = Some(i);
                }
                line_ok = true;
                continue;
            }
            b'{' => {
                depth += 1;
                slashdash = false;
            }
            b'}' => {
                depth = depth.checked_sub(1)?;
                slashdash = false;
            }
            b'(' => {
                parens += 1;
                slashdash = false;
            }
            b')' => parens = parens.checked_sub(1)?,
            b'"' => {
                i = skip_quoted(b, i)?;
                slashdash = false;
                continue;
            }
            b'#' => {
                let hashes = count(b, i, b'#');
                i += hashes;
                if b.get(i) == Some(&b'"') {
                    i = skip_raw(b, i, hashes, true)?;
                }
                slashdash = false;
                continue;
            }
            // KDL v1 raw string: r"..." or r#"..."#.
            b'r' if i == 0 || !is_ident_byte(b[i - 1]) => {
                let hashes = count(b, i + 1, b'#');
                if b.get(i + 1 + hashes) == Some(&b'"') {
                    i = skip_raw(b, i + 1 + hashes, hashes, false)?;
                    slashdash = false;
                    continue;
                }
                slashdash = false;
            }
            b'/' => match b.get(i + 1) {
                Some(b'/') => {
                    // To the newline, which is looked at above.
                    i = b[i..]
                        .iter()
                        .position(|&c| c == b'\n')
                        .map_or(b.len(), |p| i + p);
                    continue;
                }
                Some(b'*') => {
                    i = skip_block_comment(b, i)?;
                    continue;
                }
                Some(b'-') => {
                    slashdash = true;
                    i += 2;
                    continue;
                }
                _ => slashdash = false,
            },
            b'\\' => line_ok = false,
            b' ' | b'\t' | b'\r' => {}
            _ => slashdash = false,
        }
        i += 1;
    }
    usable(src, before?)
}

/// `at` unless the second half would start with something only a document's start may have.
fn usable(src: &str, at: usize) -> Option<usize> {
    (!src[at..].starts_with('\u{feff}')).then_some(at)
}

fn count(b: &[u8], from: usize, what: u8) -> usize {
    b.get(from..)
        .map_or(0, |s| s.iter().take_while(|&&c| c == what).count())
}

/// Bytes that may precede an `r` within one identifier (so it cannot start a v1 raw string).
fn is_ident_byte(c: u8) -> bool {
    !matches!(
        c,
        b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b'{' | b'}' | b';' | b'=' | b'[' | b']'
    )
}

/// Past a `"` string starting at `i`: `"..."` with escapes, or a `"""` multi-line string.
fn skip_quoted(b: &[u8], i: usize) -> Option<usize> {
    let multi = b.get(i..i + 3) == Some(b"\"\"\"");
    let mut j = if multi { i + 3 } else { i + 1 };
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' if !multi => return Some(j + 1),
            b'"' if b.get(j..j + 3) == Some(b"\"\"\"") => return Some(j + 3),
            _ => j += 1,
        }
    }
    None
}

/// Past a raw string whose opening `"` is at `i`, after `hashes` `#`: it ends at `"` (`"""`
/// for a v2 multi-line one) followed by as many `#`.
fn skip_raw(b: &[u8], i: usize, hashes: usize, v2: bool) -> Option<usize> {
    let quotes = if v2 && b.get(i..i + 3) == Some(b"\"\"\"") {
        3
    } else {
        1
    };
    let mut j = i + quotes;
    while j < b.len() {
        if b[j] == b'"' && count(b, j, b'"') >= quotes && count(b, j + quotes, b'#') >= hashes {
            return Some(j + quotes + hashes);
        }
        j += 1;
    }
    None
}

/// Past a `/* ... */` comment starting at `i`; they nest.
fn skip_block_comment(b: &[u8], i: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut j = i;
    while j + 1 < b.len() {
        match (b[j], b[j + 1]) {
            (b'/', b'*') => {
                depth += 1;
                j += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                j += 2;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => j += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{parse_str_with, ConfigError};
    use crate::Config;

    fn span_pair(s: SourceSpan) -> (usize, usize) {
        (s.offset(), s.len())
    }

    /// Every span of `a` equals `b`'s, recursively; `at` names the place for the message.
    fn same_spans_doc(a: &KdlDocument, b: &KdlDocument, at: &str) {
        assert_eq!(span_pair(a.span()), span_pair(b.span()), "{at}: document");
        assert_eq!(a.nodes().len(), b.nodes().len(), "{at}: node count");
        for (i, (x, y)) in a.nodes().iter().zip(b.nodes()).enumerate() {
            same_spans_node(x, y, &format!("{at}/{i}:{}", x.name().value()));
        }
    }

    fn same_spans_ident(a: &KdlIdentifier, b: &KdlIdentifier, at: &str) {
        assert_eq!(span_pair(a.span()), span_pair(b.span()), "{at}");
    }

    fn same_spans_node(a: &KdlNode, b: &KdlNode, at: &str) {
        assert_eq!(span_pair(a.span()), span_pair(b.span()), "{at}: node");
        same_spans_ident(a.name(), b.name(), &format!("{at}: name"));
        assert_eq!(a.ty().is_some(), b.ty().is_some(), "{at}: type");
        if let (Some(x), Some(y)) = (a.ty(), b.ty()) {
            same_spans_ident(x, y, &format!("{at}: type"));
        }
        assert_eq!(a.entries().len(), b.entries().len(), "{at}: entries");
        for (i, (x, y)) in a.entries().iter().zip(b.entries()).enumerate() {
            let at = format!("{at}: entry {i}");
            assert_eq!(span_pair(x.span()), span_pair(y.span()), "{at}");
            assert_eq!(x.name().is_some(), y.name().is_some(), "{at}: name");
            if let (Some(p), Some(q)) = (x.name(), y.name()) {
                same_spans_ident(p, q, &format!("{at}: name"));
            }
            assert_eq!(x.ty().is_some(), y.ty().is_some(), "{at}: type");
            if let (Some(p), Some(q)) = (x.ty(), y.ty()) {
                same_spans_ident(p, q, &format!("{at}: type"));
            }
        }
        assert_eq!(a.children().is_some(), b.children().is_some(), "{at}");
        if let (Some(x), Some(y)) = (a.children(), b.children()) {
            same_spans_doc(x, y, &format!("{at} children"));
        }
    }

    /// A parse's config, or its error's text and problems (line, column, message).
    type Outcome = Result<Config, (String, Vec<(usize, usize, String)>)>;

    fn outcome(r: Result<Config, ConfigError>) -> Outcome {
        r.map_err(|e| (e.to_string(), e.problems()))
    }

    /// The two-thread parse of `text`, cut wherever the lexer says (whatever the size), gives
    /// the serial parse's document, spans, format and config. False when it did not cut.
    fn same_as_serial(text: &str, name: &str) -> bool {
        let serial = KdlDocument::parse(text);
        let split = parse_split(text);
        if let Some(doc) = &split {
            let serial = serial
                .as_ref()
                .expect("the halves parse, so does the whole");
            assert_eq!(doc, serial, "{name}: document");
            assert!(doc.to_string() == serial.to_string(), "{name}: text");
            same_spans_doc(doc, serial, name);
        }
        let forced = |s: &str| parse_split(s).ok_or(()).or_else(|()| KdlDocument::parse(s));
        assert_eq!(
            outcome(parse_str_with(text, name, forced)),
            outcome(parse_str_with(text, name, KdlDocument::parse)),
            "{name}: config"
        );
        split.is_some()
    }

    #[test]
    fn shipped_configs_parse_the_same_cut_in_two() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = Vec::new();
        crate::kdl_files_under(&root.join("examples"), &mut files);
        crate::kdl_files_under(&root.join("contrib"), &mut files);
        assert!(files.len() >= 4, "{files:?}");
        let mut cut = 0;
        for f in &files {
            let text = std::fs::read_to_string(f).expect("read");
            cut += usize::from(same_as_serial(&text, &f.display().to_string()));
        }
        assert_eq!(cut, files.len(), "every shipped config has a boundary");
    }

    /// One instance; `i` picks which awkward construct it carries.
    fn instance(i: usize) -> String {
        let extra = match i % 9 {
            0 => "    notify-master \"/bin/echo '{ } \\\" // /* x' \\\\\"\n".to_owned(),
            1 => "    notify-backup #\"/bin/echo \"}}\" { // /*\"#\n".to_owned(),
            2 => "    notify-fault ##\"/bin/echo \"# } \"{\"##\n".to_owned(),
            3 => "    notify-stop \"\"\"\n        /bin/echo }\n        \"{ // /*\n        \"\"\"\n"
                .to_owned(),
            4 => "    // a comment with a brace } and { and \"\n    /* block { /* nested } */ \"\n    */\n"
                .to_owned(),
            5 => "    /-notify \"/bin/false {\"\n    /-route \"198.51.100.0/24\" {\n        x }\n"
                .to_owned(),
            6 => "    notify #\"\"\"\n        /bin/echo \"}\" \"\"#\n        \"\"\"#\n".to_owned(),
            7 => "    vip \\\n        \"10.9.0.1/24\"\n".to_owned(),
            _ => String::new(),
        };
        format!(
            "instance \"VI_{i}\" {{\n    interface \"eth0\"\n    vrid {vrid}\n    priority 100\n    vip \"10.{a}.{b}.1/24\"\n{extra}}}{end}",
            vrid = i % 255 + 1,
            a = i / 250 + 1,
            b = i % 250,
            end = ["\n", ";\n", " // after } {\n", "\t; \n\n"][i % 4],
        )
    }

    /// Between instances `i-1` and `i`: sometimes comments, slashdashes, blank lines.
    fn between(i: usize) -> &'static str {
        match i % 7 {
            0 => "\n",
            1 => "// } { \" /* not a comment start\n",
            2 => "/* a { block\n } comment */\n",
            3 => "/-instance \"gone\" {\n    vrid 1\n}\n",
            4 => "/-\ninstance \"gone-too\" { vrid 2; }\n",
            5 => "/- /* between */\n   // and a line comment\n  instance \"gone-3\" {\n}\n",
            _ => "",
        }
    }

    fn generated(n: usize, offset: usize) -> String {
        let mut text = String::from("// generated\nglobal {\n    router-id \"h1\"\n}\n\n");
        for i in 0..n {
            text.push_str(between(i + offset));
            text.push_str(&instance(i + offset));
        }
        text
    }

    #[test]
    fn generated_configs_parse_the_same_cut_in_two() {
        let big = generated(255, 0);
        assert!(big.len() > PARALLEL_MIN, "{}", big.len());
        assert!(same_as_serial(&big, "big"));
        // Through the size threshold, as the daemon calls it.
        let cfg = crate::parse_str(&big, "big").expect("valid");
        assert_eq!(cfg.instances.len(), 255);
        assert_eq!(
            Ok(cfg),
            outcome(parse_str_with(&big, "big", KdlDocument::parse))
        );
        // Every construct at the middle, with every kind of gap before it.
        for n in [2, 3, 5] {
            for offset in 0..252 {
                let text = generated(n, offset);
                assert!(same_as_serial(&text, &format!("n={n} offset={offset}")));
            }
        }
    }

    /// Not only at the middle: cut at every boundary the lexer finds, the document is the
    /// serial parse's.
    #[test]
    fn every_boundary_gives_the_same_document() {
        let text = generated(30, 0);
        let serial = KdlDocument::parse(&text).expect("valid");
        let mut cuts = std::collections::BTreeSet::new();
        for target in 0..text.len() {
            let Some(at) = split_point_near(&text, target) else {
                continue;
            };
            if !cuts.insert(at) {
                continue;
            }
            let Some(doc) = parse_split_at(&text, at) else {
                // Only where a half has no node (comments alone): both halves must parse.
                let (a, b) = text.split_at(at);
                let a = KdlDocument::parse_v2(a).expect("first half");
                let b = KdlDocument::parse_v2(b).expect("second half");
                assert!(a.nodes().is_empty() || b.nodes().is_empty(), "cut at {at}");
                continue;
            };
            assert_eq!(doc, serial, "cut at {at}");
            same_spans_doc(&doc, &serial, &format!("cut at {at}"));
        }
        // Every instance, and every gap but the comment-only ones, gives one.
        assert!(cuts.len() >= 30, "{cuts:?}");
    }

    #[test]
    fn the_cut_is_between_top_level_nodes() {
        for offset in 0..252 {
            let text = generated(6, offset);
            let at = split_point(&text).expect("a boundary");
            let doc = KdlDocument::parse(&text).expect("valid");
            let ends: Vec<(usize, usize)> = doc
                .nodes()
                .iter()
                .map(|n| (n.span().offset(), n.span().offset() + n.span().len()))
                .collect();
            assert!(
                ends.windows(2).any(|w| w[0].1 < at && at <= w[1].0),
                "offset {offset}: cut at {at} is inside a node: {:?}",
                &text[at.saturating_sub(40)..at]
            );
        }
    }

    #[test]
    fn nothing_to_cut_at_is_left_to_the_serial_parse() {
        // One node: no boundary.
        let one = format!("global {{\n{}}}\n", "    router-id \"h\"\n".repeat(2000));
        assert_eq!(split_point(&one), None);
        // A continued line, a slashdash before a line break, an unclosed string or comment.
        assert_eq!(split_point("a \\\n  b\n"), None);
        assert_eq!(split_point("a\n/-\nb\n"), Some(2));
        assert_eq!(split_point("a \"x\ny\"\nb\n"), Some(8));
        assert_eq!(split_point("a \"x\nb\n"), None);
        assert_eq!(split_point("a /* x\nb\n"), None);
        assert_eq!(split_point("}\na\nb\n"), None);
        // KDL v1 (raw strings r#"..."#, bare true): the halves fail as v2, the whole parses.
        let v1 = "a r#\"x\n}\"# \nb true\n".repeat(20);
        assert!(split_point(&v1).is_some());
        assert!(parse_split(&v1).is_none());
        assert_eq!(
            parse(&v1).expect("v1"),
            KdlDocument::parse(&v1).expect("v1")
        );
    }

    #[test]
    fn a_syntax_error_in_the_second_half_reads_as_before() {
        let good = generated(255, 0);
        for bad in [
            "instance \"x\" { vrid 1 \n",
            "instance \"x\" { vrid \"1 }\n",
            "instance \"x\" { vrid 1 }}\n",
            "instance \"x\" { vrid = }\n",
            "instance \"x\" { vrid 1; prio{rity 2 }\n",
        ] {
            let at = good.len() * 3 / 4;
            let at = at + good[at..].find("\ninstance").expect("a node") + 1;
            let text = format!("{}{bad}{}", &good[..at], &good[at..]);
            let before = parse_str_with(&text, "t.kdl", KdlDocument::parse).unwrap_err();
            let now = crate::parse_str(&text, "t.kdl").unwrap_err();
            assert_eq!(now.to_string(), before.to_string(), "{bad}");
            assert_eq!(now.problems(), before.problems(), "{bad}");
            assert!(at > text.len() / 2 && split_point(&text).is_some_and(|s| s < at));
        }
    }
}
