//! Translates a keepalived.conf into upkeep's KDL (`upkeep import-keepalived`).
//!
//! keepalived's format is line-based: blank-separated words, `#` and `!` comments, `{ }`
//! blocks, quoted strings and `include GLOB`. What upkeep supports is translated; everything
//! else becomes an [`ImportWarning`] with its file and line, never dropped silently. The
//! keyword mapping is documented in docs/migrating.md (a test checks that every keyword the
//! importer matches on appears there).

use std::fmt::{self, Display, Write as _};
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use upkeep_config::parse::{parse_duration, parse_str};

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
pub enum ImportError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{file}:{line}: cannot read included file {}: {source}", path.display())]
    Include {
        file: String,
        line: usize,
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

/// Reads the keepalived config at `path` (and what it includes) and translates it.
pub fn import_keepalived(path: &Path) -> Result<Imported, ImportError> {
    let source = std::fs::read_to_string(path).map_err(|source| ImportError::Io {
        path: path.to_owned(),
        source,
    })?;
    import_str(&source, &path.display().to_string())
}

/// Translates keepalived config text. `file_name` names it in warnings, and `include`s are
/// resolved relative to its directory.
pub fn import_str(source: &str, file_name: &str) -> Result<Imported, ImportError> {
    let mut lexer = Lexer::default();
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

// ---- tokens ----

/// Where a token or statement comes from: an index into the file names, and a 1-based line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    file: usize,
    line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Open,
    Close,
    /// keepalived is line-based: a statement ends at the end of its line.
    Eol,
}

/// Nested includes deeper than this are taken for a loop.
const MAX_INCLUDE_DEPTH: usize = 8;

#[derive(Default)]
struct Lexer {
    files: Vec<String>,
    tokens: Vec<(Tok, Pos)>,
    warnings: Vec<ImportWarning>,
}

impl Lexer {
    fn file(&mut self, source: &str, name: &str, depth: usize) -> Result<(), ImportError> {
        let file = self.files.len();
        self.files.push(name.to_owned());
        for (i, text) in source.lines().enumerate() {
            let pos = Pos { file, line: i + 1 };
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
fn lex_line(line: &str) -> Result<Vec<Tok>, String> {
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

fn wildcard_match(pattern: &str, text: &str) -> bool {
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

// ---- statements ----

/// One keepalived statement: the words of a line, and the block that follows, if any.
#[derive(Debug)]
struct Stmt {
    words: Vec<String>,
    pos: Pos,
    block: Option<Vec<Stmt>>,
}

impl Stmt {
    fn keyword(&self) -> &str {
        self.words.first().map_or("", String::as_str)
    }

    fn args(&self) -> &[String] {
        self.words.get(1..).unwrap_or(&[])
    }
}

/// Reads statements up to the `}` closing the block opened at `opener` (or to the end).
fn statements(
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

// ---- translation ----

type At<T> = Option<(T, Pos)>;

#[derive(Default)]
struct KGlobal {
    router_id: At<String>,
    script_user: At<String>,
    garp_repeat: At<i64>,
    garp_interval: At<Duration>,
    garp_refresh: At<Duration>,
    /// `vrrp_version`: the default for instances without `version`.
    version: Option<i64>,
    /// `enable_script_security`.
    script_security: Option<Pos>,
    comments: Vec<String>,
}

struct KCheck {
    name: String,
    pos: Pos,
    script: At<String>,
    interval: At<Duration>,
    timeout: At<Duration>,
    fall: At<i64>,
    rise: At<i64>,
    weight: At<i64>,
    user: At<String>,
    init_fail: Option<Pos>,
}

/// `track_file NAME { file PATH; weight N }` (or `vrrp_track_file`).
struct KFile {
    name: String,
    pos: Pos,
    file: At<String>,
    weight: At<i64>,
}

/// `vrrp_track_process NAME { process CMD; quorum N; full_command; weight N }`.
struct KProcess {
    name: String,
    pos: Pos,
    process: At<String>,
    full: bool,
    quorum: At<i64>,
    weight: At<i64>,
}

/// What a `track_*` entry follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrackKind {
    Script,
    File,
    Process,
    Interface,
}

impl TrackKind {
    /// The keepalived keyword of the list the entry is in.
    fn keyword(self) -> &'static str {
        match self {
            Self::Script => "track_script",
            Self::File => "track_file",
            Self::Process => "track_process",
            Self::Interface => "track_interface",
        }
    }

    /// The keepalived block that defines what the entry names.
    fn definition(self) -> &'static str {
        match self {
            Self::Script => "vrrp_script",
            Self::File => "track_file",
            Self::Process => "vrrp_track_process",
            Self::Interface => "interface",
        }
    }
}

/// One entry of a `track_*` list: `NAME [weight N [reverse]]`.
#[derive(Debug, Clone)]
struct KTrack {
    kind: TrackKind,
    name: String,
    weight: Option<i64>,
    pos: Pos,
}

/// keepalived's `notify*` commands of an instance or sync group.
#[derive(Default)]
struct KNotify {
    master: At<String>,
    backup: At<String>,
    fault: At<String>,
    stop: At<String>,
    any: At<String>,
}

struct KVip {
    addr: String,
    dev: Option<String>,
    pos: Pos,
    /// From `virtual_ipaddress_excluded`.
    excluded: bool,
}

struct KRoute {
    dest: String,
    via: Option<String>,
    dev: Option<String>,
    metric: Option<i64>,
    table: Option<i64>,
}

struct KInstance {
    name: String,
    pos: Pos,
    master: At<bool>,
    interface: At<String>,
    vrid: At<i64>,
    priority: At<i64>,
    advert: At<Duration>,
    version: At<i64>,
    nopreempt: Option<Pos>,
    preempt_delay: At<Duration>,
    auth: At<String>,
    src: At<String>,
    peers: Vec<(String, Pos)>,
    vips: Vec<KVip>,
    routes: Vec<(KRoute, Pos)>,
    tracks: Vec<KTrack>,
    notify: KNotify,
}

struct KGroup {
    name: String,
    pos: Pos,
    members: Vec<(String, Pos)>,
    /// keepalived applies a group's trackers to every member; so does the import.
    tracks: Vec<KTrack>,
    notify: KNotify,
}

/// KDL output, each line remembering the keepalived line it came from, so that a problem
/// `parse_str` finds in the output can be reported at the keepalived line.
#[derive(Default)]
struct Out {
    lines: Vec<(String, Option<Pos>)>,
}

impl Out {
    fn line(&mut self, indent: usize, text: impl Into<String>, pos: Option<Pos>) {
        self.lines
            .push((format!("{}{}", "    ".repeat(indent), text.into()), pos));
    }

    fn setting(&mut self, text: impl Into<String>, pos: Pos) {
        self.line(1, text, Some(pos));
    }
}

#[derive(Default)]
struct Importer {
    files: Vec<String>,
    warnings: Vec<ImportWarning>,
    global: KGlobal,
    checks: Vec<KCheck>,
    files_tracked: Vec<KFile>,
    processes: Vec<KProcess>,
    instances: Vec<KInstance>,
    groups: Vec<KGroup>,
    /// `virtual_server` / `virtual_server_group` blocks, warned about once at the end.
    lvs: Vec<Pos>,
    /// Tracker definitions left out because they track nothing (see `drop_definition`).
    dropped: Vec<(TrackKind, String)>,
}

/// The upkeep check each keepalived tracker became.
#[derive(Default)]
struct CheckNames {
    /// (kind, keepalived name) → upkeep check name.
    names: Vec<(TrackKind, String, String)>,
}

impl CheckNames {
    fn get(&self, kind: TrackKind, name: &str) -> Option<&str> {
        self.names
            .iter()
            .find(|(k, n, _)| *k == kind && n == name)
            .map(|(_, _, c)| c.as_str())
    }

    fn taken(&self, check: &str) -> bool {
        self.names.iter().any(|(_, _, c)| c == check)
    }

    /// `wanted`, or `wanted-2`, `wanted-3`... whichever is free first.
    fn free(&self, wanted: &str) -> String {
        let mut name = wanted.to_owned();
        let mut n = 2;
        while self.taken(&name) {
            name = format!("{wanted}-{n}");
            n += 1;
        }
        name
    }
}

/// A KDL string literal.
fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A duration as upkeep writes it: "1s", "100ms", "250us".
fn kdl_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_nanos() % 1_000_000 == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}us", d.as_micros())
    }
}

impl Importer {
    fn warn(&mut self, pos: Pos, message: impl Into<String>) {
        self.warnings.push(ImportWarning {
            file: self.files[pos.file].clone(),
            line: pos.line,
            message: message.into(),
        });
    }

    fn ignored(&mut self, stmt: &Stmt, place: &str) {
        if stmt.words.is_empty() {
            self.warn(
                stmt.pos,
                format!("a `{{ ... }}` block without a keyword in {place}; ignored"),
            );
            return;
        }
        let what = if stmt.block.is_some() {
            format!("`{} {{ ... }}`", stmt.words.join(" "))
        } else {
            format!("`{}`", stmt.words.join(" "))
        };
        let why = match stmt.keyword() {
            k if k.contains("notify_fifo") => {
                "upkeep has no notify FIFO; use `notify` commands or a `hook` plugin"
            }
            "notify_deleted" => "upkeep runs `notify-stop` for an instance a reload removes",
            k if k.starts_with("smtp") || k.starts_with("notification_email") => {
                "upkeep sends no mail"
            }
            "track_bfd" | "bfd_instance" => "upkeep has no BFD",
            _ => "not supported",
        };
        self.warn(stmt.pos, format!("{what} in {place}: {why}; ignored"));
    }

    /// The single argument of `keyword VALUE`, with a warning when the shape is wrong.
    fn one<'s>(&mut self, stmt: &'s Stmt) -> Option<&'s str> {
        if stmt.block.is_some() {
            self.warn(
                stmt.pos,
                format!("`{}` takes no block; block ignored", stmt.keyword()),
            );
        }
        match stmt.args() {
            [one] => Some(one),
            [] => {
                self.warn(
                    stmt.pos,
                    format!("`{}` needs a value; ignored", stmt.keyword()),
                );
                None
            }
            [one, rest @ ..] => {
                self.warn(
                    stmt.pos,
                    format!(
                        "`{}`: extra words `{}` ignored",
                        stmt.keyword(),
                        rest.join(" ")
                    ),
                );
                Some(one)
            }
        }
    }

    fn one_string(&mut self, stmt: &Stmt) -> At<String> {
        self.one(stmt).map(|s| (s.to_owned(), stmt.pos))
    }

    fn one_int(&mut self, stmt: &Stmt) -> At<i64> {
        let word = self.one(stmt)?;
        match word.parse::<i64>() {
            Ok(n) => Some((n, stmt.pos)),
            Err(_) => {
                self.warn(
                    stmt.pos,
                    format!(
                        "`{}`: `{word}` is not a whole number; ignored",
                        stmt.keyword()
                    ),
                );
                None
            }
        }
    }

    /// keepalived times are (possibly fractional) seconds.
    fn one_seconds(&mut self, stmt: &Stmt) -> At<Duration> {
        let word = self.one(stmt)?;
        match parse_duration(word) {
            Ok(d) => Some((d, stmt.pos)),
            Err(why) => {
                self.warn(stmt.pos, format!("`{}`: {why}; ignored", stmt.keyword()));
                None
            }
        }
    }

    /// The statements of a block keyword, with a warning when it has none.
    fn block<'s>(&mut self, stmt: &'s Stmt) -> &'s [Stmt] {
        match &stmt.block {
            Some(b) => b,
            None => {
                self.warn(
                    stmt.pos,
                    format!("`{}` needs a `{{ ... }}` block; ignored", stmt.keyword()),
                );
                &[]
            }
        }
    }

    /// The name of `vrrp_instance NAME { ... }`-like statements.
    fn block_name(&mut self, stmt: &Stmt) -> Option<String> {
        match stmt.args() {
            [name] => Some(name.clone()),
            _ => {
                self.warn(
                    stmt.pos,
                    format!("`{}` needs one name; block ignored", stmt.keyword()),
                );
                None
            }
        }
    }

    fn top(&mut self, stmt: &Stmt) {
        match stmt.keyword() {
            "global_defs" => {
                for s in self.block(stmt) {
                    self.global_def(s);
                }
            }
            "vrrp_script" => {
                if let Some(name) = self.block_name(stmt) {
                    if let Some(check) = self.check(stmt, name) {
                        self.checks.push(check);
                    }
                }
            }
            "vrrp_instance" => {
                if let Some(name) = self.block_name(stmt) {
                    let inst = self.instance(stmt, name);
                    self.instances.push(inst);
                }
            }
            "vrrp_sync_group" => {
                if let Some(name) = self.block_name(stmt) {
                    let group = self.group(stmt, name);
                    self.groups.push(group);
                }
            }
            // `vrrp_track_file` is the older name of the same block.
            "track_file" | "vrrp_track_file" => {
                if let Some(name) = self.block_name(stmt) {
                    if let Some(file) = self.track_file_def(stmt, name) {
                        self.files_tracked.push(file);
                    }
                }
            }
            "vrrp_track_process" => {
                if let Some(name) = self.block_name(stmt) {
                    if let Some(process) = self.process_def(stmt, name) {
                        self.processes.push(process);
                    }
                }
            }
            "virtual_server" | "virtual_server_group" => self.lvs.push(stmt.pos),
            _ => self.ignored(stmt, "the file"),
        }
    }

    fn global_def(&mut self, s: &Stmt) {
        match s.keyword() {
            "router_id" => self.global.router_id = self.one_string(s),
            "script_user" => {
                if let [user, group, ..] = s.args() {
                    self.warn(
                        s.pos,
                        format!("script_user group `{group}` is not supported; scripts run with {user}'s own groups"),
                    );
                    self.global.script_user = Some((user.clone(), s.pos));
                } else {
                    self.global.script_user = self.one_string(s);
                }
            }
            "enable_script_security" => self.global.script_security = Some(s.pos),
            "vrrp_garp_master_repeat" => self.global.garp_repeat = self.one_int(s),
            "vrrp_garp_interval" => self.global.garp_interval = self.one_seconds(s),
            "vrrp_garp_master_refresh" => {
                // keepalived's 0 means "never", which is upkeep's default.
                self.global.garp_refresh = self.one_seconds(s).filter(|(d, _)| !d.is_zero());
            }
            "vrrp_version" => self.global.version = self.one_int(s).map(|(v, _)| v),
            _ => self.ignored(s, "global_defs"),
        }
    }

    /// None when it has no `script`: keepalived drops such a vrrp_script, and so does the import.
    fn check(&mut self, stmt: &Stmt, name: String) -> Option<KCheck> {
        let mut c = KCheck {
            name,
            pos: stmt.pos,
            script: None,
            interval: None,
            timeout: None,
            fall: None,
            rise: None,
            weight: None,
            user: None,
            init_fail: None,
        };
        let place = format!("vrrp_script {}", c.name);
        for s in self.block(stmt) {
            match s.keyword() {
                // A command with arguments, quoted or not, is kept as written (run directly or by `sh -c`).
                "script" if !s.args().is_empty() => {
                    c.script = Some((s.args().join(" "), s.pos));
                }
                "interval" => c.interval = self.one_seconds(s),
                "timeout" => c.timeout = self.one_seconds(s),
                "fall" => c.fall = self.one_int(s),
                "rise" => c.rise = self.one_int(s),
                "weight" => {
                    if let [w, rest @ ..] = s.args() {
                        if !rest.is_empty() {
                            self.warn(s.pos, format!("weight option `{}` is not supported; imported as plain `weight {w}`", rest.join(" ")));
                        }
                        match w.parse::<i64>() {
                            Ok(n) => c.weight = Some((n, s.pos)),
                            Err(_) => self.warn(
                                s.pos,
                                format!("`weight`: `{w}` is not a whole number; ignored"),
                            ),
                        }
                    } else {
                        self.warn(s.pos, "`weight` needs a value; ignored");
                    }
                }
                "user" => {
                    if let [user, group, ..] = s.args() {
                        self.warn(s.pos, format!("user group `{group}` is not supported; the script runs with {user}'s own groups"));
                        c.user = Some((user.clone(), s.pos));
                    } else {
                        c.user = self.one_string(s);
                    }
                }
                "init_fail" => c.init_fail = Some(s.pos),
                _ => self.ignored(s, &place),
            }
        }
        if c.script.is_none() {
            self.drop_definition(stmt.pos, TrackKind::Script, &c.name, "script");
            return None;
        }
        Some(c)
    }

    /// A tracker definition without what it tracks: keepalived reports it and runs without
    /// it, so the import leaves it out, and the tracks naming it say why.
    fn drop_definition(&mut self, pos: Pos, kind: TrackKind, name: &str, missing: &str) {
        self.warn(
            pos,
            format!(
                "{} {name} has no `{missing}`; keepalived ignores it, and so does the import",
                kind.definition()
            ),
        );
        self.dropped.push((kind, name.to_owned()));
    }

    /// `weight N [reverse|noreverse]` of a tracker definition; `reverse` negates it when
    /// `negate_reverse` (exact for files: the value is multiplied), else it is warned about.
    fn def_weight(&mut self, s: &Stmt, negate_reverse: bool) -> At<i64> {
        let (w, rest) = match s.args() {
            [w, rest @ ..] => (w, rest),
            [] => {
                self.warn(s.pos, "`weight` needs a value; ignored");
                return None;
            }
        };
        let Ok(mut n) = w.parse::<i64>() else {
            self.warn(
                s.pos,
                format!("`weight`: `{w}` is not a whole number; ignored"),
            );
            return None;
        };
        match rest {
            [] => {}
            [r] if r == "noreverse" => {}
            [r] if r == "reverse" && negate_reverse => n = -n,
            other => self.warn(
                s.pos,
                format!(
                    "weight option `{}` is not supported; imported as plain `weight {w}`",
                    other.join(" ")
                ),
            ),
        }
        Some((n, s.pos))
    }

    fn track_file_def(&mut self, stmt: &Stmt, name: String) -> Option<KFile> {
        let mut f = KFile {
            name,
            pos: stmt.pos,
            file: None,
            weight: None,
        };
        let place = format!("track_file {}", f.name);
        for s in self.block(stmt) {
            match s.keyword() {
                "file" => f.file = self.one_string(s),
                "weight" => f.weight = self.def_weight(s, true),
                "init_file" => self.warn(
                    s.pos,
                    format!("`{}` in {place}: upkeep does not create the file; a missing file counts as 0; ignored", s.words.join(" ")),
                ),
                _ => self.ignored(s, &place),
            }
        }
        if f.file.is_none() {
            self.drop_definition(stmt.pos, TrackKind::File, &f.name, "file");
            return None;
        }
        Some(f)
    }

    fn process_def(&mut self, stmt: &Stmt, name: String) -> Option<KProcess> {
        let mut p = KProcess {
            name,
            pos: stmt.pos,
            process: None,
            full: false,
            quorum: None,
            weight: None,
        };
        let mut params_at = None;
        let place = format!("vrrp_track_process {}", p.name);
        for s in self.block(stmt) {
            match s.keyword() {
                "process" => match s.args() {
                    [] => self.warn(s.pos, "`process` needs a value; ignored"),
                    [name] => p.process = Some((name.clone(), s.pos)),
                    args => {
                        // keepalived matches the parameters against the command line.
                        p.process = Some((args.join(" "), s.pos));
                        params_at = Some(s.pos);
                    }
                },
                "full_command" => p.full = true,
                "quorum" => p.quorum = self.one_int(s),
                "weight" => p.weight = self.def_weight(s, false),
                "fork_delay" | "terminate_delay" | "delay" => self.warn(
                    s.pos,
                    format!(
                        "`{}` in {place}: not supported; `rise` and `fall` smooth restarts instead; ignored",
                        s.words.join(" ")
                    ),
                ),
                _ => self.ignored(s, &place),
            }
        }
        if let Some(pos) = params_at {
            if !p.full {
                p.full = true;
                self.warn(pos, format!("{place}: a process with parameters is imported as a match of the whole command line (`full=#true`)"));
            }
        }
        if p.process.is_none() {
            self.drop_definition(stmt.pos, TrackKind::Process, &p.name, "process");
            return None;
        }
        Some(p)
    }

    /// `notify_* CMD [USER [GROUP]]`: upkeep runs every notify command as `script-user`.
    fn notify(&mut self, s: &Stmt, notify: &mut KNotify) -> bool {
        let slot = match s.keyword() {
            "notify_master" => &mut notify.master,
            "notify_backup" => &mut notify.backup,
            "notify_fault" => &mut notify.fault,
            "notify_stop" => &mut notify.stop,
            "notify" => &mut notify.any,
            _ => return false,
        };
        if s.block.is_some() {
            self.warn(
                s.pos,
                format!("`{}` takes no block; block ignored", s.keyword()),
            );
        }
        match s.args() {
            [] => self.warn(s.pos, format!("`{}` needs a command; ignored", s.keyword())),
            [cmd, user @ ..] => {
                if !user.is_empty() {
                    self.warn(
                        s.pos,
                        format!(
                            "{}: user `{}` is not supported; upkeep runs notify commands as `script-user` (quote a command that has arguments: keepalived reads the words after it as a user)",
                            s.keyword(),
                            user.join(" ")
                        ),
                    );
                }
                *slot = Some((cmd.clone(), s.pos));
            }
        }
        true
    }

    fn instance(&mut self, stmt: &Stmt, name: String) -> KInstance {
        let mut i = KInstance {
            name,
            pos: stmt.pos,
            master: None,
            interface: None,
            vrid: None,
            priority: None,
            advert: None,
            version: None,
            nopreempt: None,
            preempt_delay: None,
            auth: None,
            src: None,
            peers: Vec::new(),
            vips: Vec::new(),
            routes: Vec::new(),
            tracks: Vec::new(),
            notify: KNotify::default(),
        };
        let place = format!("vrrp_instance {}", i.name);
        for s in self.block(stmt) {
            match s.keyword() {
                "state" => {
                    if let Some(state) = self.one(s) {
                        match state.to_ascii_uppercase().as_str() {
                            "MASTER" => i.master = Some((true, s.pos)),
                            "BACKUP" => i.master = Some((false, s.pos)),
                            _ => self.warn(
                                s.pos,
                                format!("state `{state}` is not MASTER or BACKUP; ignored"),
                            ),
                        }
                    }
                }
                "interface" => i.interface = self.one_string(s),
                "virtual_router_id" => i.vrid = self.one_int(s),
                "priority" => i.priority = self.one_int(s),
                "advert_int" => i.advert = self.one_seconds(s),
                "version" => i.version = self.one_int(s),
                "nopreempt" => i.nopreempt = Some(s.pos),
                // keepalived's default; the keyword changes nothing.
                "preempt" => {}
                "preempt_delay" => i.preempt_delay = self.one_seconds(s),
                "authentication" => self.authentication(s, &mut i),
                "unicast_src_ip" => i.src = self.one_string(s),
                // upkeep's unicast-src is the advert source whether adverts are unicast or not.
                "mcast_src_ip" if i.src.is_none() => i.src = self.one_string(s),
                "unicast_peer" => {
                    for p in self.block(s) {
                        if p.words.len() > 1 || p.block.is_some() {
                            self.warn(
                                p.pos,
                                format!(
                                    "unicast_peer options `{}` are not supported; ignored",
                                    p.args().join(" ")
                                ),
                            );
                        }
                        if let Some(addr) = p.words.first() {
                            i.peers.push((addr.clone(), p.pos));
                        }
                    }
                }
                "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                    let excluded = s.keyword() == "virtual_ipaddress_excluded";
                    if excluded {
                        self.warn(s.pos, "virtual_ipaddress_excluded: imported as ordinary `vip`s; upkeep does not leave them out of adverts");
                    }
                    for v in self.block(s) {
                        if let Some(mut vip) = self.vip(v) {
                            vip.excluded = excluded;
                            i.vips.push(vip);
                        }
                    }
                }
                "virtual_routes" => {
                    for r in self.block(s) {
                        if let Some(route) = self.route(r) {
                            i.routes.push((route, r.pos));
                        }
                    }
                }
                "track_script" | "track_file" | "track_process" | "track_interface" => {
                    let tracks = self.tracks(s);
                    i.tracks.extend(tracks);
                }
                _ => {
                    if !self.notify(s, &mut i.notify) {
                        self.ignored(s, &place);
                    }
                }
            }
        }
        i
    }

    /// The entries of a `track_*` block.
    fn tracks(&mut self, s: &Stmt) -> Vec<KTrack> {
        let kind = match s.keyword() {
            "track_file" => TrackKind::File,
            "track_process" => TrackKind::Process,
            "track_interface" => TrackKind::Interface,
            _ => TrackKind::Script,
        };
        let mut out = Vec::new();
        for t in self.block(s) {
            out.extend(self.track(t, kind));
        }
        out
    }

    fn authentication(&mut self, stmt: &Stmt, i: &mut KInstance) {
        let mut kind = None;
        let mut pass = None;
        for s in self.block(stmt) {
            match s.keyword() {
                "auth_type" => kind = self.one_string(s),
                "auth_pass" => pass = self.one_string(s),
                _ => self.ignored(s, "authentication"),
            }
        }
        match (kind, pass) {
            (Some((k, pos)), _) if !k.eq_ignore_ascii_case("PASS") => self.warn(
                pos,
                format!(
                    "auth_type {k} is not supported (only PASS); imported without authentication"
                ),
            ),
            (_, Some((mut p, pos))) => {
                if p.len() > 8 {
                    // keepalived sends only the first 8 bytes, so that is the real password.
                    let mut cut = 8;
                    while !p.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    p.truncate(cut);
                    self.warn(pos, format!("auth_pass is longer than 8 bytes; keepalived uses only the first 8, imported as \"{p}\""));
                }
                i.auth = Some((p, pos));
            }
            (Some((_, pos)), None) => self.warn(pos, "auth_type PASS without auth_pass; ignored"),
            (None, None) => {}
        }
    }

    /// `ADDR[/LEN] [dev IF] [label L] [scope S] ...`
    fn vip(&mut self, s: &Stmt) -> Option<KVip> {
        let (addr, opts) = s.words.split_first()?;
        let mut dev = None;
        let mut k = 0;
        while k < opts.len() {
            let opt = opts[k].as_str();
            let value = opts.get(k + 1);
            match opt {
                "dev" => match value {
                    Some(v) => dev = Some(v.clone()),
                    None => self.warn(s.pos, "`dev` without an interface; ignored"),
                },
                "label" | "scope" | "brd" | "broadcast" | "peer" | "preferred_lft"
                | "valid_lft" | "track_group" => self.warn(
                    s.pos,
                    format!(
                        "vip {addr}: `{opt} {}` is not supported; ignored",
                        value.map_or("", String::as_str)
                    ),
                ),
                _ => {
                    self.warn(
                        s.pos,
                        format!("vip {addr}: option `{opt}` is not supported; ignored"),
                    );
                    k += 1;
                    continue;
                }
            }
            k += 2;
        }
        if s.block.is_some() {
            self.warn(s.pos, format!("vip {addr}: block ignored"));
        }
        Some(KVip {
            addr: addr.clone(),
            dev,
            pos: s.pos,
            excluded: false,
        })
    }

    /// `[to] DEST/LEN [via|gw GW] [dev IF] [metric N] [table T] ...`
    fn route(&mut self, s: &Stmt) -> Option<KRoute> {
        let words = &s.words;
        if let Some(kind @ ("blackhole" | "unreachable" | "prohibit" | "throw")) =
            words.first().map(String::as_str)
        {
            self.warn(
                s.pos,
                format!("{kind} routes are not supported; route ignored"),
            );
            return None;
        }
        let mut route = KRoute {
            dest: String::new(),
            via: None,
            dev: None,
            metric: None,
            table: None,
        };
        let mut k = 0;
        while k < words.len() {
            let word = words[k].as_str();
            let value = words.get(k + 1).cloned();
            let mut number = |what: &str, v: &Option<String>| -> Option<i64> {
                let n = v.as_deref().and_then(|v| v.parse::<i64>().ok());
                if n.is_none() {
                    self.warn(
                        s.pos,
                        format!("route `{what}` needs a whole number; ignored"),
                    );
                }
                n
            };
            match word {
                "to" => {
                    k += 1;
                    continue;
                }
                "via" | "gw" => route.via = value,
                "dev" => route.dev = value,
                "metric" | "preference" => route.metric = number(word, &value),
                "table" => route.table = number(word, &value),
                "src" | "or" | "scope" | "proto" | "protocol" | "realms" | "mtu" | "advmss"
                | "type" | "tos" | "dsfield" | "onlink" | "no_track" | "track_group" => {
                    let takes_value = !matches!(word, "onlink" | "no_track");
                    self.warn(
                        s.pos,
                        format!(
                            "route option `{word}{}` is not supported; ignored",
                            if takes_value {
                                format!(" {}", value.as_deref().unwrap_or(""))
                            } else {
                                String::new()
                            }
                        ),
                    );
                    k += if takes_value { 2 } else { 1 };
                    continue;
                }
                _ if route.dest.is_empty() => {
                    route.dest = word.to_owned();
                    k += 1;
                    continue;
                }
                _ => {
                    self.warn(
                        s.pos,
                        format!("route option `{word}` is not supported; ignored"),
                    );
                    k += 1;
                    continue;
                }
            }
            k += 2;
        }
        if route.dest.is_empty() {
            self.warn(s.pos, "route without a destination; ignored");
            return None;
        }
        if route.dest == "default" {
            let v6 = route
                .via
                .as_deref()
                .and_then(|v| v.parse::<IpAddr>().ok())
                .is_some_and(|v| v.is_ipv6());
            route.dest = if v6 { "::/0" } else { "0.0.0.0/0" }.to_owned();
        }
        Some(route)
    }

    /// `NAME [weight N] [reverse|noreverse]`. `reverse` is exact only for files (whose value
    /// is multiplied by the weight), where it negates the weight; elsewhere it is warned about.
    fn track(&mut self, s: &Stmt, kind: TrackKind) -> Option<KTrack> {
        let list = kind.keyword();
        let (name, rest) = s.words.split_first()?;
        let mut weight = None;
        let mut reverse = false;
        let mut k = 0;
        while k < rest.len() {
            match rest[k].as_str() {
                "weight" => {
                    match rest.get(k + 1).map(|w| (w, w.parse::<i64>())) {
                        Some((_, Ok(n))) => weight = Some(n),
                        Some((w, Err(_))) => self.warn(
                            s.pos,
                            format!("{list} {name}: weight `{w}` is not a whole number; ignored"),
                        ),
                        None => self.warn(
                            s.pos,
                            format!("{list} {name}: `weight` needs a value; ignored"),
                        ),
                    }
                    k += 2;
                }
                "reverse" => {
                    reverse = true;
                    k += 1;
                }
                "noreverse" => k += 1,
                _ => {
                    self.warn(
                        s.pos,
                        format!(
                            "{list} {name}: `{}` is not supported; ignored",
                            rest[k..].join(" ")
                        ),
                    );
                    break;
                }
            }
        }
        if reverse {
            if kind == TrackKind::File {
                weight = weight.map(|w| -w);
                if weight.is_none() {
                    self.warn(
                        s.pos,
                        format!(
                            "{list} {name}: `reverse` without `weight` is not supported; ignored"
                        ),
                    );
                }
            } else {
                self.warn(
                    s.pos,
                    format!("{list} {name}: `reverse` is not supported; imported without it"),
                );
            }
        }
        Some(KTrack {
            kind,
            name: name.clone(),
            weight,
            pos: s.pos,
        })
    }

    fn group(&mut self, stmt: &Stmt, name: String) -> KGroup {
        let mut g = KGroup {
            name,
            pos: stmt.pos,
            members: Vec::new(),
            tracks: Vec::new(),
            notify: KNotify::default(),
        };
        let place = format!("vrrp_sync_group {}", g.name);
        for s in self.block(stmt) {
            match s.keyword() {
                "group" => {
                    for m in self.block(s) {
                        g.members.extend(m.words.iter().map(|w| (w.clone(), m.pos)));
                    }
                }
                "track_script" | "track_file" | "track_process" | "track_interface" => {
                    let tracks = self.tracks(s);
                    g.tracks.extend(tracks);
                }
                _ => {
                    if !self.notify(s, &mut g.notify) {
                        self.ignored(s, &place);
                    }
                }
            }
        }
        g
    }

    // ---- output ----

    fn finish(mut self, file_name: &str) -> Imported {
        let mut out = Out::default();
        out.line(
            0,
            format!("// Imported from {file_name} by `upkeep import-keepalived`."),
            None,
        );
        self.lvs_warning();
        self.claim_members();
        self.spread_group_tracks();
        self.security_note();
        self.script_user_note();
        self.emit_global(&mut out);
        let (names, interfaces) = self.name_checks();
        for c in std::mem::take(&mut self.checks) {
            emit_check(&mut out, &c);
        }
        for f in std::mem::take(&mut self.files_tracked) {
            let name = names.get(TrackKind::File, &f.name).unwrap_or(&f.name);
            emit_file_check(&mut out, name, &f);
        }
        for p in std::mem::take(&mut self.processes) {
            let name = names.get(TrackKind::Process, &p.name).unwrap_or(&p.name);
            emit_process_check(&mut out, name, &p);
        }
        for (ifname, check, pos) in &interfaces {
            out.line(0, "", None);
            out.line(0, format!("check {} {{", q(check)), Some(*pos));
            out.setting(format!("interface {}", q(ifname)), *pos);
            out.line(0, "}", None);
        }
        let instances = std::mem::take(&mut self.instances);
        for i in &instances {
            self.emit_instance(&mut out, i, &names);
        }
        let instance_names: Vec<&str> = instances.iter().map(|i| i.name.as_str()).collect();
        for g in std::mem::take(&mut self.groups) {
            self.emit_group(&mut out, &g, &instance_names);
        }
        let kdl: String = out.lines.iter().map(|(l, _)| format!("{l}\n")).collect();
        self.check_output(&kdl, &out, file_name);
        // In file order: files as they were read, lines within each.
        let files = &self.files;
        self.warnings
            .sort_by_key(|w| (files.iter().position(|f| *f == w.file), w.line));
        Imported {
            kdl,
            warnings: self.warnings,
        }
    }

    /// One warning for all of keepalived's load balancer: upkeep is VRRP only.
    fn lvs_warning(&mut self) {
        let Some((&first, rest)) = self.lvs.split_first() else {
            return;
        };
        let also = if rest.is_empty() {
            String::new()
        } else {
            let places: Vec<String> = rest
                .iter()
                .map(|p| {
                    if p.file == first.file {
                        format!("line {}", p.line)
                    } else {
                        format!("{}:{}", self.files[p.file], p.line)
                    }
                })
                .collect();
            format!("; also at {}", places.join(", "))
        };
        let n = self.lvs.len();
        let blocks = if n == 1 { "block" } else { "blocks" };
        self.warn(
            first,
            format!("LVS virtual_server is out of scope: upkeep does VRRP, not IPVS load balancing; {n} {blocks} ignored{also}"),
        );
    }

    /// keepalived puts an instance in one sync group at most, the first that names it: a later
    /// mention (in another group or the same one) is reported and ignored. So does the import.
    fn claim_members(&mut self) {
        let mut owner: Vec<(String, String)> = Vec::new();
        let mut warnings = Vec::new();
        for g in &mut self.groups {
            g.members.retain(|(m, pos)| {
                if !self.instances.iter().any(|i| i.name == *m) {
                    // Left for `emit_group`, which reports it.
                    return true;
                }
                match owner.iter().find(|(i, _)| i == m) {
                    Some((_, first)) if *first == g.name => {
                        warnings.push((
                            *pos,
                            format!("vrrp_sync_group {}: `{m}` is listed twice; ignored", g.name),
                        ));
                        false
                    }
                    Some((_, first)) => {
                        warnings.push((
                            *pos,
                            format!(
                                "vrrp_sync_group {}: vrrp_instance `{m}` is already in sync group {first}, and an instance can be in one only; keepalived ignores this, and so does the import",
                                g.name
                            ),
                        ));
                        false
                    }
                    None => {
                        owner.push((m.clone(), g.name.clone()));
                        true
                    }
                }
            });
        }
        for (pos, message) in warnings {
            self.warn(pos, message);
        }
    }

    /// keepalived applies a sync group's `track_*` to every member; the import writes them
    /// into each member instance (unless it already tracks the same thing).
    fn spread_group_tracks(&mut self) {
        for g in &self.groups {
            for (member, _) in &g.members {
                let Some(inst) = self.instances.iter_mut().find(|i| i.name == *member) else {
                    continue;
                };
                for t in &g.tracks {
                    if !inst
                        .tracks
                        .iter()
                        .any(|x| x.kind == t.kind && x.name == t.name)
                    {
                        inst.tracks.push(t.clone());
                    }
                }
            }
        }
    }

    /// keepalived runs insecure scripts unless told not to; upkeep refuses them by default.
    fn security_note(&mut self) {
        let notifies = |n: &KNotify| {
            n.master.is_some()
                || n.backup.is_some()
                || n.fault.is_some()
                || n.stop.is_some()
                || n.any.is_some()
        };
        let scripts = !self.checks.is_empty()
            || self.instances.iter().any(|i| notifies(&i.notify))
            || self.groups.iter().any(|g| notifies(&g.notify));
        if scripts && self.global.script_security.is_none() {
            self.global.comments.extend([
                "keepalived had no enable_script_security, so it ran scripts whatever their permissions.".to_owned(),
                "upkeep refuses to run as root a script that a non-root user could change;".to_owned(),
                "`script-security #false` runs them anyway, as keepalived did.".to_owned(),
            ]);
        }
    }

    /// keepalived without `script_user` runs scripts and notify commands as root (unless a
    /// `keepalived_script` user exists); upkeep runs them as an unprivileged user by default.
    /// The import keeps keepalived's behaviour, `script-user "root"`, and says so at the first
    /// script or notify command that would run as root.
    fn script_user_note(&mut self) {
        if self.global.script_user.is_some() {
            return;
        }
        let notify_pos = |n: &KNotify| {
            [&n.master, &n.backup, &n.fault, &n.stop, &n.any]
                .into_iter()
                .flatten()
                .map(|(_, pos)| *pos)
                .min_by_key(|p| (p.file, p.line))
        };
        let first = self
            .checks
            .iter()
            .filter(|c| c.user.is_none())
            .map(|c| c.pos)
            .chain(self.instances.iter().filter_map(|i| notify_pos(&i.notify)))
            .chain(self.groups.iter().filter_map(|g| notify_pos(&g.notify)))
            .min_by_key(|p| (p.file, p.line));
        let Some(pos) = first else {
            return;
        };
        self.warn(
            pos,
            "keepalived runs scripts and notify commands as root when `script_user` is not set; the import keeps that (`script-user \"root\"`), but an unprivileged user is safer: create `upkeep-script` (or use `nobody`), check the scripts work as it, and remove the line",
        );
        self.global.script_user = Some(("root".to_owned(), pos));
        self.global.comments.push(
            "keepalived ran scripts as root (no script_user): `script-user \"root\"` keeps that. Without it upkeep runs them as `upkeep-script`, else `nobody`.".to_owned(),
        );
    }

    /// Names the upkeep check of every tracker. vrrp_scripts keep their names; keepalived keeps
    /// track files and processes apart from scripts, so one whose name is taken gets a prefix.
    /// Each tracked interface becomes one check `if-NAME`, shared by whoever tracks it.
    fn name_checks(&mut self) -> (CheckNames, Vec<(String, String, Pos)>) {
        let mut names = CheckNames::default();
        for c in &self.checks {
            names
                .names
                .push((TrackKind::Script, c.name.clone(), c.name.clone()));
        }
        let defs: Vec<(TrackKind, String, Pos)> = self
            .files_tracked
            .iter()
            .map(|f| (TrackKind::File, f.name.clone(), f.pos))
            .chain(
                self.processes
                    .iter()
                    .map(|p| (TrackKind::Process, p.name.clone(), p.pos)),
            )
            .collect();
        for (kind, name, pos) in defs {
            let check = if names.taken(&name) {
                let prefix = if kind == TrackKind::File {
                    "file"
                } else {
                    "process"
                };
                let check = names.free(&format!("{prefix}-{name}"));
                self.warn(
                    pos,
                    format!(
                        "{} `{name}` is imported as check `{check}`: there is already a check named `{name}`",
                        kind.definition()
                    ),
                );
                check
            } else {
                name.clone()
            };
            names.names.push((kind, name, check));
        }
        let mut interfaces = Vec::new();
        let tracked = self
            .instances
            .iter()
            .flat_map(|i| &i.tracks)
            .chain(self.groups.iter().flat_map(|g| &g.tracks))
            .filter(|t| t.kind == TrackKind::Interface);
        for t in tracked {
            if names.get(TrackKind::Interface, &t.name).is_none() {
                let check = names.free(&format!("if-{}", t.name));
                names
                    .names
                    .push((TrackKind::Interface, t.name.clone(), check.clone()));
                interfaces.push((t.name.clone(), check, t.pos));
            }
        }
        (names, interfaces)
    }

    fn emit_global(&mut self, out: &mut Out) {
        let g = &self.global;
        let any = g.router_id.is_some()
            || g.script_user.is_some()
            || g.garp_repeat.is_some()
            || g.garp_interval.is_some()
            || g.garp_refresh.is_some()
            || g.script_security.is_some()
            || !g.comments.is_empty();
        if !any {
            return;
        }
        out.line(0, "", None);
        out.line(0, "global {", None);
        if let Some((v, pos)) = &g.router_id {
            out.setting(format!("router-id {}", q(v)), *pos);
        }
        if let Some((v, pos)) = &g.garp_repeat {
            out.setting(format!("garp-repeat {v}"), *pos);
        }
        if let Some((v, pos)) = &g.garp_interval {
            out.setting(format!("garp-interval {}", q(&kdl_duration(*v))), *pos);
        }
        if let Some((v, pos)) = &g.garp_refresh {
            out.setting(format!("garp-refresh {}", q(&kdl_duration(*v))), *pos);
        }
        if let Some((v, pos)) = &g.script_user {
            out.setting(format!("script-user {}", q(v)), *pos);
        }
        if let Some(pos) = g.script_security {
            out.setting("script-security #true", pos);
        }
        for c in &g.comments {
            out.line(1, format!("// {c}"), None);
        }
        out.line(0, "}", None);
    }

    fn emit_instance(&mut self, out: &mut Out, i: &KInstance, names: &CheckNames) {
        out.line(0, "", None);
        out.line(0, format!("instance {} {{", q(&i.name)), Some(i.pos));
        if let Some((v, pos)) = &i.interface {
            out.setting(format!("interface {}", q(v)), *pos);
        }
        if let Some((v, pos)) = &i.vrid {
            out.setting(format!("vrid {v}"), *pos);
        }
        if let Some((v, pos)) = &i.priority {
            out.setting(format!("priority {v}"), *pos);
        }
        // The first VIP decides the family; excluded ones come after the others.
        let vips: Vec<&KVip> = i
            .vips
            .iter()
            .filter(|v| !v.excluded)
            .chain(i.vips.iter().filter(|v| v.excluded))
            .collect();
        let family = |v: &KVip| {
            v.addr
                .split('/')
                .next()
                .and_then(|a| a.parse::<IpAddr>().ok())
                .map(|a| a.is_ipv6())
        };
        let v6 = vips.first().and_then(|v| family(v)).unwrap_or(false);
        // keepalived's default version is 2, upkeep's is 3: always say which.
        let (mut version, version_pos) = match i.version {
            Some((v, pos)) => (v, pos),
            None => (self.global.version.unwrap_or(2), i.pos),
        };
        if version == 2 && v6 {
            self.warn(
                version_pos,
                "IPv6 VIPs need VRRP version 3 (keepalived switches too); imported as version 3",
            );
            version = 3;
        }
        if let Some((d, pos)) = i.advert {
            let d = self.advert_for(d, version, pos);
            out.setting(format!("advert-interval {}", q(&kdl_duration(d))), pos);
        }
        out.setting(format!("version {version}"), version_pos);
        if let Some((master, pos)) = i.master {
            let state = if master { "master" } else { "backup" };
            out.setting(format!("initial-state {}", q(state)), pos);
        }
        if let Some(pos) = i.nopreempt {
            out.setting("preempt #false", pos);
        }
        if let Some((d, pos)) = i.preempt_delay {
            out.setting(format!("preempt-delay {}", q(&kdl_duration(d))), pos);
        }
        if let Some((pass, pos)) = &i.auth {
            if version == 2 {
                out.setting(format!("auth-pass {}", q(pass)), *pos);
            } else {
                self.warn(*pos, "authentication is not part of VRRP version 3 (keepalived ignores it too); not imported");
            }
        }
        if let Some((v, pos)) = &i.src {
            out.setting(format!("unicast-src {}", q(v)), *pos);
        }
        let mut peers: Vec<IpAddr> = Vec::new();
        for (p, pos) in &i.peers {
            if let Ok(ip) = p.parse::<IpAddr>() {
                if peers.contains(&ip) {
                    self.warn(
                        *pos,
                        format!("unicast_peer {p} is listed twice; the first is kept"),
                    );
                    continue;
                }
                peers.push(ip);
            }
            out.setting(format!("unicast-peer {}", q(p)), *pos);
        }
        let mut held: Vec<IpAddr> = Vec::new();
        for vip in vips {
            let addr = vip
                .addr
                .split('/')
                .next()
                .and_then(|a| a.parse::<IpAddr>().ok());
            if let Some(a) = addr {
                if held.contains(&a) {
                    self.warn(
                        vip.pos,
                        format!("vip {} is listed twice; the first is kept", vip.addr),
                    );
                    continue;
                }
            }
            if !vip.excluded && family(vip).is_some_and(|f| f != v6) {
                // keepalived: "address family must match VRRP instance - ignoring".
                let (is, want) = if v6 {
                    ("IPv4", "IPv6")
                } else {
                    ("IPv6", "IPv4")
                };
                self.warn(
                    vip.pos,
                    format!(
                        "vip {} is {is} but the instance's first VIP is {want}; keepalived ignores it, and so does the import: put it in an instance of its own",
                        vip.addr
                    ),
                );
                continue;
            }
            if vip.excluded && family(vip).is_some_and(|f| f != v6) {
                let (is, want) = if v6 {
                    ("IPv4", "IPv6")
                } else {
                    ("IPv6", "IPv4")
                };
                self.warn(
                    vip.pos,
                    format!(
                        "virtual_ipaddress_excluded {} is {is} but the instance's VIPs are {want}; upkeep carries one address family per instance: put it in an instance of its own; ignored",
                        vip.addr
                    ),
                );
                continue;
            }
            held.extend(addr);
            let dev = vip
                .dev
                .as_ref()
                .map_or(String::new(), |d| format!(" dev={}", q(d)));
            out.setting(format!("vip {}{dev}", q(&vip.addr)), vip.pos);
        }
        for (r, pos) in &i.routes {
            let mut line = format!("route {}", q(&r.dest));
            if let Some(v) = &r.via {
                let _ = write!(line, " via={}", q(v));
            }
            if let Some(v) = &r.dev {
                let _ = write!(line, " dev={}", q(v));
            }
            if let Some(v) = r.metric {
                let _ = write!(line, " metric={v}");
            }
            if let Some(v) = r.table {
                let _ = write!(line, " table={v}");
            }
            out.setting(line, *pos);
        }
        let mut tracked: Vec<&str> = Vec::new();
        for t in &i.tracks {
            let Some(check) = names.get(t.kind, &t.name) else {
                // keepalived ignores a tracker naming nothing; so does the import.
                let why = if self
                    .dropped
                    .iter()
                    .any(|(k, n)| *k == t.kind && *n == t.name)
                {
                    format!("its {} was left out", t.kind.definition())
                } else {
                    format!("there is no {} of that name", t.kind.definition())
                };
                self.warn(
                    t.pos,
                    format!("{} `{}`: {why}; ignored", t.kind.keyword(), t.name),
                );
                continue;
            };
            if tracked.contains(&check) {
                self.warn(
                    t.pos,
                    format!(
                        "{} `{}` is tracked twice; the first is kept",
                        t.kind.keyword(),
                        t.name
                    ),
                );
                continue;
            }
            tracked.push(check);
            let weight = t.weight.map_or(String::new(), |w| format!(" weight={w}"));
            out.setting(format!("track {}{weight}", q(check)), t.pos);
        }
        emit_notify(out, &i.notify);
        out.line(0, "}", None);
    }

    /// The advert interval the version can carry: whole seconds for v2, 10ms steps for v3.
    fn advert_for(&mut self, d: Duration, version: i64, pos: Pos) -> Duration {
        let step = if version == 2 {
            Duration::from_secs(1)
        } else {
            Duration::from_millis(10)
        };
        let steps = ((d.as_nanos() + step.as_nanos() / 2) / step.as_nanos()).max(1);
        let rounded = step * u32::try_from(steps).unwrap_or(u32::MAX);
        if rounded != d {
            let unit = if version == 2 {
                "whole seconds"
            } else {
                "steps of 10ms"
            };
            self.warn(
                pos,
                format!(
                    "advert_int {:?} is not in {unit} as VRRP version {version} needs; imported as {:?}",
                    d, rounded
                ),
            );
        }
        rounded
    }

    fn emit_group(&mut self, out: &mut Out, g: &KGroup, instances: &[&str]) {
        let mut members = Vec::new();
        for (m, pos) in &g.members {
            if instances.contains(&m.as_str()) {
                members.push(q(m));
            } else {
                // keepalived ignores unknown members; so does the import.
                self.warn(
                    *pos,
                    format!(
                        "vrrp_sync_group {}: there is no vrrp_instance `{m}`; ignored",
                        g.name
                    ),
                );
            }
        }
        if members.is_empty() {
            self.warn(
                g.pos,
                format!("vrrp_sync_group {} has no instances; not imported", g.name),
            );
            return;
        }
        out.line(0, "", None);
        out.line(0, format!("sync-group {} {{", q(&g.name)), Some(g.pos));
        out.setting(format!("member {}", members.join(" ")), g.pos);
        emit_notify(out, &g.notify);
        out.line(0, "}", None);
    }

    /// Whatever upkeep would refuse in the result is reported at the keepalived line it came from.
    fn check_output(&mut self, kdl: &str, out: &Out, file_name: &str) {
        let Err(err) = parse_str(kdl, file_name) else {
            return;
        };
        for (line, _, message) in err.problems() {
            // The nearest output line at or before the problem that came from a keepalived line.
            let pos = out.lines[..line.min(out.lines.len())]
                .iter()
                .rev()
                .find_map(|(_, p)| *p)
                .unwrap_or(Pos { file: 0, line: 1 });
            self.warn(pos, format!("upkeep will refuse the result: {message}"));
        }
    }
}

fn emit_check(out: &mut Out, c: &KCheck) {
    out.line(0, "", None);
    out.line(0, format!("check {} {{", q(&c.name)), Some(c.pos));
    if let Some((v, pos)) = &c.script {
        out.setting(format!("script {}", q(v)), *pos);
    }
    if let Some((v, pos)) = c.interval {
        out.setting(format!("interval {}", q(&kdl_duration(v))), pos);
    }
    if let Some((v, pos)) = c.timeout {
        out.setting(format!("timeout {}", q(&kdl_duration(v))), pos);
    }
    if let Some((v, pos)) = c.fall {
        out.setting(format!("fall {v}"), pos);
    }
    if let Some((v, pos)) = c.rise {
        out.setting(format!("rise {v}"), pos);
    }
    if let Some((v, pos)) = c.weight {
        out.setting(format!("weight {v}"), pos);
    }
    if let Some((v, pos)) = &c.user {
        out.setting(format!("user {}", q(v)), *pos);
    }
    if let Some(pos) = c.init_fail {
        out.setting("init-fail #true", pos);
    }
    out.line(0, "}", None);
}

fn emit_file_check(out: &mut Out, name: &str, f: &KFile) {
    out.line(0, "", None);
    out.line(0, format!("check {} {{", q(name)), Some(f.pos));
    if let Some((v, pos)) = &f.file {
        out.setting(format!("file {}", q(v)), *pos);
    }
    if let Some((v, pos)) = f.weight {
        out.setting(format!("weight {v}"), pos);
    }
    out.line(0, "}", None);
}

fn emit_process_check(out: &mut Out, name: &str, p: &KProcess) {
    out.line(0, "", None);
    out.line(0, format!("check {} {{", q(name)), Some(p.pos));
    if let Some((v, pos)) = &p.process {
        let full = if p.full { " full=#true" } else { "" };
        out.setting(format!("process {}{full}", q(v)), *pos);
    }
    if let Some((v, pos)) = p.quorum {
        out.setting(format!("min-count {v}"), pos);
    }
    if let Some((v, pos)) = p.weight {
        out.setting(format!("weight {v}"), pos);
    }
    out.line(0, "}", None);
}

fn emit_notify(out: &mut Out, n: &KNotify) {
    for (key, cmd) in [
        ("notify-master", &n.master),
        ("notify-backup", &n.backup),
        ("notify-fault", &n.fault),
        ("notify-stop", &n.stop),
        ("notify", &n.any),
    ] {
        if let Some((cmd, pos)) = cmd {
            out.setting(format!("{key} {}", q(cmd)), *pos);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use upkeep_config::model::{CheckKind, Config, InitialState, VrrpVersion};

    /// Imports, then checks that upkeep loads the result.
    fn convert(src: &str) -> (Imported, Config) {
        let imported = import_str(src, "keepalived.conf").unwrap_or_else(|e| panic!("{e}"));
        let cfg = parse_str(&imported.kdl, "imported.kdl")
            .unwrap_or_else(|e| panic!("{:?}\n{}", miette::Report::new(e), imported.kdl));
        (imported, cfg)
    }

    /// [`warned`] for each (line, needle).
    fn warned_all(imported: &Imported, expected: &[(usize, &str)]) {
        for &(line, needle) in expected {
            warned(imported, line, needle);
        }
    }

    fn warned(imported: &Imported, line: usize, needle: &str) {
        assert!(
            imported
                .warnings
                .iter()
                .any(|w| w.line == line && w.message.contains(needle)),
            "no warning `{needle}` at line {line} in {:#?}",
            imported.warnings
        );
    }

    #[test]
    fn scripts_keep_running_as_root_as_keepalived_ran_them() {
        let instance = |extra: &str| {
            format!(
                "vrrp_instance web {{\n  interface eth0\n  virtual_router_id 51\n  virtual_ipaddress {{\n    192.0.2.100/24\n  }}\n{extra}}}\n"
            )
        };
        // A notify command and no script_user: root, said at the command's line.
        let (imported, cfg) = convert(&instance("  notify_master /usr/local/bin/to_master.sh\n"));
        assert_eq!(cfg.global.script_user.as_deref(), Some("root"));
        warned(
            &imported,
            7,
            "keepalived runs scripts and notify commands as root",
        );
        assert!(
            imported.kdl.contains("script-user \"root\""),
            "{}",
            imported.kdl
        );
        // No script at all: no user, no warning.
        let (imported, cfg) = convert(&instance(""));
        assert_eq!(cfg.global.script_user, None);
        assert!(imported.warnings.is_empty(), "{:#?}", imported.warnings);
        // script_user set: kept as it is.
        let (imported, cfg) = convert(&format!(
            "global_defs {{\n  script_user nobody\n}}\n{}",
            instance("  notify_master /usr/local/bin/to_master.sh\n")
        ));
        assert_eq!(cfg.global.script_user.as_deref(), Some("nobody"));
        assert!(imported.warnings.is_empty(), "{:#?}", imported.warnings);
        // Every script has its own user and there is no notify command: nothing runs as root.
        let (imported, cfg) = convert(&format!(
            "vrrp_script chk {{\n  script /bin/true\n  user nobody\n}}\n{}",
            instance("  track_script {\n    chk\n  }\n")
        ));
        assert_eq!(cfg.global.script_user, None);
        assert!(imported.warnings.is_empty(), "{:#?}", imported.warnings);
    }

    const SEED: &str = r#"vrrp_script check_running {
    script "/etc/keepalived/check_http.sh"
    interval 2
    weight -20
}
vrrp_instance http {
    state BACKUP
    priority 100
    interface eth1
    virtual_router_id 47
    advert_int 3
    authentication {
        auth_type PASS
        auth_pass 1234
    }
    nopreempt
    virtual_ipaddress {
        172.16.101.10/24
    }
    virtual_routes {}
    track_script {
        check_running
    }
}
"#;

    /// The lab's generated config: `count` instances VI_1.., vrid 51 when alone, else 1...
    fn lab(count: usize, advert: &str, version: u8) -> String {
        let mut out = String::from(
            "global_defs {\n  router_id h1\n  enable_script_security\n  script_user root\n}\n\
             vrrp_script chk_port80 {\n  script \"/work/shared/lab/check_port80.sh\"\n  interval 1\n  timeout 1\n  fall 1\n  rise 1\n  weight -100\n}\n",
        );
        for k in 1..=count {
            let vrid = if count == 1 { 51 } else { k };
            let vip = if k == 1 {
                "192.0.2.100/24".to_owned()
            } else {
                format!("198.51.100.{k}/24")
            };
            out.push_str(&format!(
                "vrrp_instance VI_{k} {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {vrid}\n  priority 190\n  advert_int {advert}\n  version {version}\n  virtual_ipaddress {{\n    {vip}\n  }}\n  track_script {{\n    chk_port80\n  }}\n}}\n"
            ));
        }
        out
    }

    #[test]
    fn seed_config_round_trips() {
        let (imported, cfg) = convert(SEED);
        // keepalived ran the seed's script as root: so does the import, with a warning at it.
        assert_eq!(imported.warnings.len(), 1, "{:#?}", imported.warnings);
        warned(
            &imported,
            1,
            "keepalived runs scripts and notify commands as root",
        );
        assert_eq!(cfg.global.script_user.as_deref(), Some("root"));
        let c = cfg.check("check_running").expect("check");
        assert_eq!(
            c.kind,
            CheckKind::Script {
                command: "/etc/keepalived/check_http.sh".into()
            }
        );
        assert_eq!((c.interval, c.weight), (Duration::from_secs(2), -20));
        let i = cfg.instance("http").expect("instance");
        assert_eq!(
            (i.interface.as_str(), i.vrid, i.priority),
            ("eth1", 47, 100)
        );
        assert_eq!(i.advert_interval, Duration::from_secs(3));
        assert_eq!(
            i.version,
            VrrpVersion::V2,
            "keepalived's default version is 2"
        );
        assert!(!i.preempt);
        assert_eq!(i.auth_pass.as_deref(), Some("1234"));
        assert_eq!(i.initial_state, InitialState::Backup);
        let vips: Vec<String> = i
            .vips
            .iter()
            .map(|v| format!("{}/{}", v.addr, v.prefix_len))
            .collect();
        assert_eq!(vips, ["172.16.101.10/24"]);
        assert!(i.routes.is_empty() && i.unicast_peers.is_empty());
        assert_eq!(i.tracks.len(), 1);
        assert_eq!(
            (i.tracks[0].check.as_str(), i.tracks[0].weight),
            ("check_running", None)
        );
        assert!(imported.kdl.contains("preempt #false"), "{}", imported.kdl);
    }

    #[test]
    fn lab_config_round_trips() {
        let (imported, cfg) = convert(&lab(1, "1", 2));
        assert!(imported.warnings.is_empty(), "{:#?}", imported.warnings);
        assert!(
            imported.kdl.contains("script-security #true"),
            "{}",
            imported.kdl
        );
        assert!(cfg.global.script_security);
        assert_eq!(cfg.global.router_id.as_deref(), Some("h1"));
        assert_eq!(cfg.global.script_user.as_deref(), Some("root"));
        let c = cfg.check("chk_port80").expect("check");
        assert_eq!(
            (c.interval, c.timeout),
            (Duration::from_secs(1), Duration::from_secs(1))
        );
        assert_eq!((c.fall, c.rise, c.weight), (1, 1, -100));
        let i = cfg.instance("VI_1").expect("instance");
        assert_eq!((i.vrid, i.priority, i.version), (51, 190, VrrpVersion::V2));
        assert_eq!(i.advert_interval, Duration::from_secs(1));
        assert!(i.preempt);
        assert_eq!(i.vips[0].addr.to_string(), "192.0.2.100");
        assert_eq!(i.tracks[0].check, "chk_port80");
    }

    #[test]
    fn lab_config_with_fast_v3_adverts() {
        let (imported, cfg) = convert(&lab(1, "0.1", 3));
        assert!(imported.warnings.is_empty(), "{:#?}", imported.warnings);
        let i = &cfg.instances[0];
        assert_eq!(i.version, VrrpVersion::V3);
        assert_eq!(i.advert_interval, Duration::from_millis(100));
        assert!(
            imported.kdl.contains("advert-interval \"100ms\""),
            "{}",
            imported.kdl
        );
    }

    #[test]
    fn lab_config_with_100_instances() {
        for (advert, version) in [("1", 2), ("0.1", 3)] {
            let (imported, cfg) = convert(&lab(100, advert, version));
            assert!(imported.warnings.is_empty(), "{:#?}", imported.warnings);
            assert_eq!(cfg.instances.len(), 100);
            for (k, i) in cfg.instances.iter().enumerate() {
                let k = k + 1;
                assert_eq!(i.name, format!("VI_{k}"));
                assert_eq!(usize::from(i.vrid), k);
                let want = if k == 1 {
                    "192.0.2.100".to_owned()
                } else {
                    format!("198.51.100.{k}")
                };
                assert_eq!(i.vips[0].addr.to_string(), want);
                assert_eq!(i.vips[0].prefix_len, 24);
                assert_eq!(i.tracks[0].check, "chk_port80");
            }
        }
    }

    #[test]
    fn tokenizer_handles_braces_comments_and_quotes() {
        let src = r#"! a keepalived comment
# another
global_defs{router_id "my router" # trailing comment
}
vrrp_script chk{
    script "/usr/bin/test -f \"/run/ok\""   ! quoted, with args
}
vrrp_instance VI_1
{
  interface eth0   ! comment
  virtual_router_id 5
  virtual_ipaddress { 192.0.2.1/24 }
  virtual_ipaddress {
    192.0.2.2/24 dev eth1
  }
  track_script {chk weight -5}
}"#;
        let (imported, cfg) = convert(src);
        assert_eq!(imported.warnings.len(), 1, "{:#?}", imported.warnings);
        warned(&imported, 5, "`script-user \"root\"`");
        assert_eq!(cfg.global.router_id.as_deref(), Some("my router"));
        let CheckKind::Script { command } = &cfg.checks[0].kind else {
            panic!("not a script: {:?}", cfg.checks[0].kind)
        };
        assert_eq!(command, "/usr/bin/test -f \"/run/ok\"");
        let i = &cfg.instances[0];
        assert_eq!((i.interface.as_str(), i.vrid), ("eth0", 5));
        assert_eq!(i.vips.len(), 2);
        assert_eq!(i.vips[1].dev.as_deref(), Some("eth1"));
        assert_eq!(i.tracks[0].weight, Some(-5));
        assert_eq!(
            lex_line("a{b}\"c d\" e#f #g").expect("lexes"),
            [
                Tok::Word("a".into()),
                Tok::Open,
                Tok::Word("b".into()),
                Tok::Close,
                Tok::Word("c d".into()),
                Tok::Word("e#f".into()),
            ]
        );
    }

    #[test]
    fn script_with_arguments_is_kept_verbatim() {
        let src = "vrrp_script a {\n  script /usr/bin/pgrep -x haproxy\n}\nvrrp_script b {\n  script \"/bin/sh -c 'exit 0'\"\n}\n";
        let (_, cfg) = convert(src);
        let commands: Vec<&str> = cfg
            .checks
            .iter()
            .map(|c| match &c.kind {
                CheckKind::Script { command } => command.as_str(),
                other => panic!("not a script: {other:?}"),
            })
            .collect();
        assert_eq!(
            commands,
            ["/usr/bin/pgrep -x haproxy", "/bin/sh -c 'exit 0'"]
        );
    }

    #[test]
    fn every_supported_keyword_maps() {
        let src = r#"global_defs {
    router_id lb1
    vrrp_version 3
    vrrp_garp_master_repeat 3
    vrrp_garp_interval 0.01
    vrrp_garp_master_refresh 60
}
vrrp_script chk {
    script "/bin/true"
    interval 2
    timeout 1.5
    fall 3
    rise 2
    weight 10
    user nobody
}
vrrp_instance web {
    state MASTER
    interface eth0
    virtual_router_id 10
    priority 200
    advert_int 0.5
    preempt_delay 5
    unicast_src_ip 192.0.2.1
    unicast_peer {
        192.0.2.2
        192.0.2.3
    }
    virtual_ipaddress {
        192.0.2.100/24
        192.0.2.101
    }
    virtual_routes {
        198.51.100.0/24 via 192.0.2.254 dev eth0 metric 10 table 100
        to 203.0.113.0/24 gw 192.0.2.253
        default via 192.0.2.254
    }
    track_script {
        chk weight -30
    }
}
vrrp_instance db {
    interface eth0
    virtual_router_id 11
    version 2
    mcast_src_ip 192.0.2.1
    virtual_ipaddress {
        192.0.2.200/24
    }
}
vrrp_sync_group g1 {
    group {
        web
        db
    }
}
"#;
        let (imported, cfg) = convert(src);
        assert!(imported.warnings.is_empty(), "{:#?}", imported.warnings);
        let g = &cfg.global;
        assert_eq!(g.router_id.as_deref(), Some("lb1"));
        assert_eq!(g.garp_repeat, 3);
        assert_eq!(g.garp_interval, Duration::from_millis(10));
        assert_eq!(g.garp_refresh, Some(Duration::from_secs(60)));
        let c = &cfg.checks[0];
        assert_eq!(
            (c.interval, c.timeout),
            (Duration::from_secs(2), Duration::from_millis(1500))
        );
        assert_eq!(
            (c.fall, c.rise, c.weight, c.user.as_deref()),
            (3, 2, 10, Some("nobody"))
        );
        let w = cfg.instance("web").expect("web");
        assert_eq!(w.version, VrrpVersion::V3, "from global vrrp_version");
        assert_eq!(w.initial_state, InitialState::Master);
        assert_eq!((w.vrid, w.priority), (10, 200));
        assert_eq!(w.advert_interval, Duration::from_millis(500));
        assert_eq!(w.preempt_delay, Duration::from_secs(5));
        assert!(w.preempt);
        assert_eq!(
            w.unicast_src.map(|a| a.to_string()).as_deref(),
            Some("192.0.2.1")
        );
        assert_eq!(w.unicast_peers.len(), 2);
        assert_eq!(w.vips[1].prefix_len, 32);
        let routes: Vec<String> = w
            .routes
            .iter()
            .map(|r| {
                format!(
                    "{}/{} {:?} {:?} {:?} {:?}",
                    r.dest,
                    r.prefix_len,
                    r.via.map(|v| v.to_string()),
                    r.dev,
                    r.metric,
                    r.table
                )
            })
            .collect();
        assert_eq!(
            routes,
            [
                "198.51.100.0/24 Some(\"192.0.2.254\") Some(\"eth0\") Some(10) Some(100)",
                "203.0.113.0/24 Some(\"192.0.2.253\") None None None",
                "0.0.0.0/0 Some(\"192.0.2.254\") None None None",
            ]
        );
        assert_eq!(w.tracks[0].weight, Some(-30));
        let d = cfg.instance("db").expect("db");
        assert_eq!(d.version, VrrpVersion::V2);
        assert_eq!(
            d.unicast_src.map(|a| a.to_string()).as_deref(),
            Some("192.0.2.1")
        );
        assert_eq!(cfg.sync_groups[0].members, ["web", "db"]);
    }

    #[test]
    fn unsupported_things_become_warnings_with_lines() {
        let src = r#"global_defs {
    notification_email {
        root@localhost
    }
    smtp_server 127.0.0.1
    script_user root wheel
}
vrrp_instance v {
    interface eth0
    virtual_router_id 1
    notify_master_rx_lower_pri /bin/true
    virtual_ipaddress {
        192.0.2.1/24 label eth0:1 scope global
    }
    virtual_ipaddress_excluded {
        2001:db8::1
    }
    virtual_routes {
        blackhole 10.0.0.0/8
        10.1.0.0/16 via 192.0.2.254 src 192.0.2.1
    }
    unicast_peer {
        192.0.2.9 min_ttl 1
    }
    track_bfd {
        b1
    }
}
virtual_server 192.0.2.1 80 {
    real_server 10.0.0.1 80 {
    }
}
{
    stray
}
virtual_server_group web {
}
virtual_server 192.0.2.1 443 {
}
"#;
        let (imported, cfg) = convert(src);
        warned_all(
            &imported,
            &[
                (2, "`notification_email { ... }` in global_defs: upkeep sends no mail"),
                (5, "`smtp_server 127.0.0.1` in global_defs"),
                (6, "group `wheel`"),
                (11, "`notify_master_rx_lower_pri /bin/true` in vrrp_instance v: not supported"),
                (13, "`label eth0:1`"),
                (13, "`scope global`"),
                (15, "virtual_ipaddress_excluded: imported as ordinary `vip`s; upkeep does not leave them out of adverts"),
                (16, "2001:db8::1 is IPv6 but the instance's VIPs are IPv4"),
                (19, "blackhole routes are not supported"),
                (20, "route option `src 192.0.2.1`"),
                (23, "unicast_peer options `min_ttl 1`"),
                (25, "upkeep has no BFD"),
                (29, "LVS virtual_server is out of scope: upkeep does VRRP, not IPVS load balancing; 3 blocks ignored; also at line 36, line 38"),
                (33, "a `{ ... }` block without a keyword in the file"),
            ],
        );
        assert_eq!(imported.warnings.len(), 14, "{:#?}", imported.warnings);
        assert_eq!(
            imported.warnings[0].to_string(),
            "keepalived.conf:2: `notification_email { ... }` in global_defs: upkeep sends no mail; ignored"
        );
        let i = &cfg.instances[0];
        assert_eq!(i.routes.len(), 1);
        assert_eq!(i.unicast_peers.len(), 1);
        assert_eq!(i.vips.len(), 1, "the IPv6 excluded VIP is left out");
    }

    #[test]
    fn notify_commands_import() {
        let src = r#"global_defs {
    script_user keepalived_script
    enable_script_security
}
vrrp_instance web {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress {
        192.0.2.1/24
    }
    notify_master "/etc/keepalived/master.sh web"
    notify_backup /etc/keepalived/backup.sh
    notify_fault /etc/keepalived/fault.sh nobody nogroup
    notify_stop /etc/keepalived/stop.sh
    notify /etc/keepalived/notify.sh
    notify_deleted
    notify_priority_changes true
    smtp_alert
}
vrrp_sync_group g {
    group {
        web
    }
    notify_master /etc/keepalived/group_master.sh
    notify "/etc/keepalived/group_notify.sh x"
}
"#;
        let (imported, cfg) = convert(src);
        warned_all(
            &imported,
            &[
                (13, "notify_fault: user `nobody nogroup` is not supported"),
                (
                    16,
                    "upkeep runs `notify-stop` for an instance a reload removes",
                ),
                (
                    17,
                    "`notify_priority_changes true` in vrrp_instance web: not supported",
                ),
                (
                    18,
                    "`smtp_alert` in vrrp_instance web: upkeep sends no mail",
                ),
            ],
        );
        assert_eq!(imported.warnings.len(), 4, "{:#?}", imported.warnings);
        assert!(cfg.global.script_security);
        assert_eq!(cfg.global.script_user.as_deref(), Some("keepalived_script"));
        let n = &cfg.instances[0].notify;
        assert_eq!(n.master.as_deref(), Some("/etc/keepalived/master.sh web"));
        assert_eq!(n.backup.as_deref(), Some("/etc/keepalived/backup.sh"));
        assert_eq!(n.fault.as_deref(), Some("/etc/keepalived/fault.sh"));
        assert_eq!(n.stop.as_deref(), Some("/etc/keepalived/stop.sh"));
        assert_eq!(n.any.as_deref(), Some("/etc/keepalived/notify.sh"));
        let g = &cfg.sync_groups[0].notify;
        assert_eq!(g.master.as_deref(), Some("/etc/keepalived/group_master.sh"));
        assert_eq!(g.any.as_deref(), Some("/etc/keepalived/group_notify.sh x"));
        assert!(g.backup.is_none());
        assert!(
            !imported.kdl.contains("no enable_script_security"),
            "{}",
            imported.kdl
        );

        // Without enable_script_security, the difference is spelled out in the output.
        let insecure = src.replace("    enable_script_security\n", "");
        let (imported, cfg) = convert(&insecure);
        assert!(cfg.global.script_security, "upkeep's default stays on");
        assert!(
            imported
                .kdl
                .contains("// keepalived had no enable_script_security"),
            "{}",
            imported.kdl
        );
        assert!(
            imported.kdl.contains("`script-security #false`"),
            "{}",
            imported.kdl
        );
    }

    #[test]
    fn trackers_import_as_checks() {
        let src = r#"vrrp_script chk {
    script /bin/true
    init_fail
}
vrrp_script if-eth1 {
    script /bin/true
}
track_file weightfile {
    file /run/keepalived/weight
    weight 5 reverse
    init_file 0 overwrite
}
vrrp_track_file chk {
    file "/run/keepalived/chk"
}
vrrp_track_process nginx {
    process nginx
    quorum 2
    weight -10
    delay 0.5
}
vrrp_track_process app {
    process /usr/bin/java -jar app.jar
    full_command
    weight 10 reverse
}
vrrp_instance web {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress {
        192.0.2.1/24
    }
    track_script {
        chk weight -20
    }
    track_interface {
        eth1 weight -30
        eth2
        eth3 weight 5 reverse
    }
    track_file {
        weightfile
        chk weight 2 reverse
        missing
    }
    track_process {
        nginx weight -50
        app
    }
}
vrrp_instance db {
    interface eth0
    virtual_router_id 2
    virtual_ipaddress {
        192.0.2.2/24
    }
    track_interface {
        eth1
    }
}
vrrp_sync_group g {
    group {
        web
        db
    }
    track_interface {
        eth9 weight -5
        eth1 weight -7
    }
    track_process {
        nginx
    }
}
"#;
        let (imported, cfg) = convert(src);
        warned_all(
            &imported,
            &[
                (11, "`init_file 0 overwrite` in track_file weightfile: upkeep does not create the file"),
                (13, "track_file `chk` is imported as check `file-chk`"),
                (20, "`delay 0.5` in vrrp_track_process nginx: not supported"),
                (25, "weight option `reverse` is not supported; imported as plain `weight 10`"),
                (39, "track_interface eth3: `reverse` is not supported"),
                (44, "track_file `missing`: there is no track_file of that name; ignored"),
                (1, "as root when `script_user` is not set"),
            ],
        );
        assert_eq!(imported.warnings.len(), 7, "{:#?}", imported.warnings);

        let chk = cfg.check("chk").expect("chk");
        assert!(chk.init_fail);
        let wf = cfg.check("weightfile").expect("weightfile");
        assert_eq!(
            wf.kind,
            CheckKind::File {
                path: "/run/keepalived/weight".into()
            }
        );
        assert_eq!(wf.weight, -5, "`reverse` negates a file's weight");
        let fc = cfg.check("file-chk").expect("file-chk");
        assert_eq!(fc.weight, 1, "a track_file's weight defaults to 1");
        assert_eq!(
            cfg.check("nginx").expect("nginx").kind,
            CheckKind::Process {
                name: "nginx".into(),
                full: false,
                min_count: 2
            }
        );
        assert_eq!(cfg.check("nginx").expect("nginx").weight, -10);
        assert_eq!(
            cfg.check("app").expect("app").kind,
            CheckKind::Process {
                name: "/usr/bin/java -jar app.jar".into(),
                full: true,
                min_count: 1
            }
        );
        // `if-eth1` is a vrrp_script's name, so the interface check is `if-eth1-2`.
        assert_eq!(
            cfg.check("if-eth1-2").expect("if-eth1-2").kind,
            CheckKind::Interface {
                name: "eth1".into()
            }
        );
        assert!(cfg.check("if-eth2").is_some() && cfg.check("if-eth9").is_some());

        let tracks = |name: &str| -> Vec<(String, Option<i32>)> {
            cfg.instance(name)
                .expect("instance")
                .tracks
                .iter()
                .map(|t| (t.check.clone(), t.weight))
                .collect()
        };
        let s = |c: &str, w: Option<i32>| (c.to_owned(), w);
        assert_eq!(
            tracks("web"),
            [
                s("chk", Some(-20)),
                s("if-eth1-2", Some(-30)),
                s("if-eth2", None),
                s("if-eth3", Some(5)),
                s("weightfile", None),
                s("file-chk", Some(-2)),
                s("nginx", Some(-50)),
                s("app", None),
                // The group's trackers, except what the instance tracks already.
                s("if-eth9", Some(-5)),
            ]
        );
        assert_eq!(
            tracks("db"),
            [
                s("if-eth1-2", None),
                s("if-eth9", Some(-5)),
                s("nginx", None)
            ]
        );
    }

    /// Every keyword the importer knows (each string a `match` arm compares against) is
    /// in docs/migrating.md, written as code.
    #[test]
    fn every_recognised_keyword_is_in_the_migration_guide() {
        let guide = include_str!("../../../docs/migrating.md");
        let code = include_str!("lib.rs");
        let code = &code[..code.find("#[cfg(test)]").expect("tests")];
        let mut missing = Vec::new();
        let mut found = 0;
        for keyword in arm_strings(code) {
            found += 1;
            if !guide.contains(&format!("`{keyword}")) {
                missing.push(keyword);
            }
        }
        assert!(
            found > 80,
            "only {found} keywords found: is the scan broken?"
        );
        assert!(missing.is_empty(), "not in docs/migrating.md: {missing:?}");
    }

    /// The lower-case string literals that `match` arms in `code` compare against.
    fn arm_strings(code: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (start, end) in string_literals(code) {
            let word = &code[start + 1..end];
            let keyword = word.starts_with(|c: char| c.is_ascii_lowercase())
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            let after = code[end + 1..].trim_start();
            let before = code[..start].trim_end();
            let in_arm = after.starts_with("=>")
                || (after.starts_with('|') && !after.starts_with("||"))
                || after.starts_with("if ")
                || (before.ends_with('|') && !before.ends_with("||"));
            if keyword && in_arm && !out.iter().any(|k| k == word) {
                out.push(word.to_owned());
            }
        }
        out
    }

    /// Byte offsets of the opening and closing quote of each plain string literal in Rust code
    /// (comments, char literals and escapes skipped; raw strings are not expected).
    fn string_literals(code: &str) -> Vec<(usize, usize)> {
        let b = code.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'/' if b.get(i + 1) == Some(&b'/') => {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                }
                b'\'' if b.get(i + 1) == Some(&b'\\') => {
                    i += 2;
                    while i < b.len() && b[i] != b'\'' {
                        i += 1;
                    }
                    i += 1;
                }
                b'\'' if b.get(i + 2) == Some(&b'\'') => i += 3,
                b'"' => {
                    let start = i;
                    i += 1;
                    while i < b.len() && b[i] != b'"' {
                        i += if b[i] == b'\\' { 2 } else { 1 };
                    }
                    out.push((start, i.min(b.len() - 1)));
                    i += 1;
                }
                _ => i += 1,
            }
        }
        out
    }

    #[test]
    fn broken_structure_is_an_error_with_its_line() {
        let unclosed =
            "vrrp_instance a {\n  interface eth0\n  virtual_ipaddress {\n    192.0.2.1\n}\n";
        let err = import_str(unclosed, "k.conf").unwrap_err();
        assert_eq!(err.to_string(), "k.conf:1: this `{` is never closed");
        let extra = "vrrp_instance a {\n}\n}\n";
        let err = import_str(extra, "k.conf").unwrap_err();
        assert_eq!(err.to_string(), "k.conf:3: `}` without a matching `{`");
        let quote = "global_defs {\n  router_id \"h1\n}\n";
        let err = import_str(quote, "k.conf").unwrap_err();
        assert_eq!(err.to_string(), "k.conf:2: unterminated quoted string");
        let err = import_keepalived(Path::new("/nonexistent/keepalived.conf")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/nonexistent/keepalived.conf: cannot read"),
            "{err}"
        );
    }

    #[test]
    fn includes_are_followed_with_globs() {
        let dir = std::env::temp_dir().join(format!("upkeep-import-{}", std::process::id()));
        let confd = dir.join("conf.d");
        std::fs::create_dir_all(&confd).expect("temp dir");
        std::fs::write(
            dir.join("keepalived.conf"),
            "global_defs {\n  router_id h9\n}\ninclude conf.d/*.conf\ninclude none/*.conf\ninclude scripts.inc\n",
        )
        .expect("write");
        std::fs::write(
            confd.join("a.conf"),
            "vrrp_instance a {\n  interface eth0\n  virtual_router_id 1\n  bogus_keyword\n  virtual_ipaddress {\n    192.0.2.1/24\n  }\n  track_script {\n    chk\n  }\n}\n",
        )
        .expect("write");
        std::fs::write(
            confd.join("b.conf"),
            "vrrp_instance b {\n  interface eth0\n  virtual_router_id 2\n  virtual_ipaddress {\n    include ../vips.inc\n  }\n}\n",
        )
        .expect("write");
        std::fs::write(confd.join("ignored.txt"), "garbage {").expect("write");
        std::fs::write(dir.join("vips.inc"), "192.0.2.2/24\n").expect("write");
        std::fs::write(
            dir.join("scripts.inc"),
            "vrrp_script chk {\n  script /bin/true\n}\n",
        )
        .expect("write");

        let imported = import_keepalived(&dir.join("keepalived.conf")).expect("imports");
        let cfg = parse_str(&imported.kdl, "x.kdl").expect("parses");
        assert_eq!(cfg.global.router_id.as_deref(), Some("h9"));
        let names: Vec<&str> = cfg.instances.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(cfg.instances[1].vips[0].addr.to_string(), "192.0.2.2");
        assert_eq!(cfg.instances[0].tracks[0].check, "chk");
        assert_eq!(imported.warnings.len(), 3, "{:#?}", imported.warnings);
        // The included script runs as root, as keepalived ran it (line 1 of scripts.inc).
        assert!(
            imported.warnings[2].file.ends_with("scripts.inc")
                && imported.warnings[2].message.contains("as root"),
            "{:#?}",
            imported.warnings
        );
        assert_eq!(cfg.global.script_user.as_deref(), Some("root"));
        let w = &imported.warnings;
        assert!(
            w[0].file.ends_with("keepalived.conf") && w[0].line == 5,
            "{w:#?}"
        );
        assert!(w[0].message.contains("matches no file"));
        assert!(
            w[1].file.ends_with("conf.d/a.conf") && w[1].line == 4,
            "{w:#?}"
        );

        std::fs::write(dir.join("keepalived.conf"), "include missing.conf\n").expect("write");
        let err = import_keepalived(&dir.join("keepalived.conf")).unwrap_err();
        assert!(
            err.to_string()
                .contains("keepalived.conf:1: cannot read included file"),
            "{err}"
        );
        std::fs::write(dir.join("keepalived.conf"), "include keepalived.conf\n").expect("write");
        let err = import_keepalived(&dir.join("keepalived.conf")).unwrap_err();
        assert!(
            err.to_string().contains("includes nested more than"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn version_specific_fixes_are_warned() {
        let src = r#"vrrp_instance a {
    interface eth0
    virtual_router_id 1
    version 3
    authentication {
        auth_type PASS
        auth_pass 1234
    }
    virtual_ipaddress {
        192.0.2.1/24
    }
}
vrrp_instance b {
    interface eth0
    virtual_router_id 2
    advert_int 1.4
    authentication {
        auth_type PASS
        auth_pass 0123456789
    }
    virtual_ipaddress {
        192.0.2.2/24
    }
}
vrrp_instance c {
    interface eth0
    virtual_router_id 3
    advert_int 0.015
    authentication {
        auth_type AH
        auth_pass x
    }
    virtual_ipaddress {
        2001:db8::1/64
    }
}
"#;
        let (imported, cfg) = convert(src);
        warned(&imported, 7, "not part of VRRP version 3");
        assert_eq!(cfg.instances[0].auth_pass, None);
        warned(&imported, 16, "imported as 1s");
        assert_eq!(cfg.instances[1].advert_interval, Duration::from_secs(1));
        warned(&imported, 19, "imported as \"01234567\"");
        assert_eq!(cfg.instances[1].auth_pass.as_deref(), Some("01234567"));
        warned(&imported, 25, "IPv6 VIPs need VRRP version 3");
        assert_eq!(cfg.instances[2].version, VrrpVersion::V3);
        warned(&imported, 28, "imported as 20ms");
        warned(&imported, 30, "auth_type AH is not supported");
        assert_eq!(cfg.instances[2].auth_pass, None);
    }

    #[test]
    fn dangling_references_are_dropped_like_keepalived_does() {
        let src = "vrrp_instance a {\n  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress {\n    192.0.2.1\n  }\n  track_script {\n    nope\n  }\n}\nvrrp_sync_group g {\n  group {\n    a ghost\n  }\n}\nvrrp_sync_group empty {\n  group {\n    ghost2\n  }\n}\n";
        let (imported, cfg) = convert(src);
        warned_all(
            &imported,
            &[
                (8, "no vrrp_script of that name"),
                (13, "no vrrp_instance `ghost`"),
                (16, "has no instances; not imported"),
            ],
        );
        assert!(cfg.instances[0].tracks.is_empty());
        assert_eq!(cfg.sync_groups.len(), 1);
        assert_eq!(cfg.sync_groups[0].members, ["a"]);
    }

    /// What keepalived drops with a config error and runs without, the import drops too, so
    /// that the result loads.
    #[test]
    fn what_keepalived_drops_is_dropped() {
        let src = "vrrp_script s {\n  interval 1\n}\ntrack_file f {\n  weight 2\n}\nvrrp_track_process p {\n  quorum 2\n}\nvrrp_instance a {\n  interface eth0\n  virtual_router_id 1\n  unicast_peer {\n    192.0.2.2\n    192.0.2.2\n  }\n  virtual_ipaddress {\n    192.0.2.1/24\n    2001:db8::1/64\n    192.0.2.1/25\n  }\n  track_script {\n    s\n  }\n  track_file {\n    f\n  }\n  track_process {\n    p\n  }\n}\nvrrp_instance b {\n  interface eth0\n  virtual_router_id 2\n  virtual_ipaddress {\n    192.0.2.3/24\n  }\n}\nvrrp_sync_group g1 {\n  group {\n    a b b\n  }\n}\nvrrp_sync_group g2 {\n  group {\n    b\n  }\n}\n";
        let (imported, cfg) = convert(src);
        warned_all(
            &imported,
            &[
                (1, "vrrp_script s has no `script`; keepalived ignores it"),
                (4, "track_file f has no `file`"),
                (7, "vrrp_track_process p has no `process`"),
                (15, "unicast_peer 192.0.2.2 is listed twice"),
                (
                    19,
                    "vip 2001:db8::1/64 is IPv6 but the instance's first VIP is IPv4",
                ),
                (20, "vip 192.0.2.1/25 is listed twice"),
                (23, "track_script `s`: its vrrp_script was left out"),
                (26, "track_file `f`: its track_file was left out"),
                (29, "track_process `p`: its vrrp_track_process was left out"),
                (41, "vrrp_sync_group g1: `b` is listed twice"),
                (46, "`b` is already in sync group g1"),
                (44, "vrrp_sync_group g2 has no instances"),
            ],
        );
        assert_eq!(imported.warnings.len(), 12, "{:#?}", imported.warnings);
        assert!(cfg.checks.is_empty());
        let a = cfg.instance("a").expect("a");
        assert_eq!(a.unicast_peers.len(), 1);
        assert_eq!(a.vips.len(), 1);
        assert!(a.tracks.is_empty());
        assert_eq!(cfg.sync_groups.len(), 1);
        assert_eq!(cfg.sync_groups[0].members, ["a", "b"]);
    }

    #[test]
    fn results_upkeep_refuses_are_warned_at_the_keepalived_line() {
        let src = "vrrp_instance a {\n  interface eth0\n  virtual_router_id 300\n  virtual_ipaddress {\n    192.0.2.1\n  }\n}\nvrrp_instance b {\n  interface eth0\n}\n";
        let imported = import_str(src, "k.conf").expect("imports");
        warned(
            &imported,
            3,
            "upkeep will refuse the result: `vrid` must be from 1 to 255",
        );
        warned(
            &imported,
            8,
            "upkeep will refuse the result: instance `b` has no `vrid`",
        );
        assert!(parse_str(&imported.kdl, "x").is_err());
    }

    #[test]
    fn helpers() {
        assert!(wildcard_match("*.conf", "a.conf"));
        assert!(wildcard_match("a*b*c", "aXXbYYc"));
        assert!(wildcard_match("?.conf", "a.conf"));
        assert!(!wildcard_match("*.conf", "a.conf.bak"));
        assert!(!wildcard_match("?.conf", "ab.conf"));
        assert_eq!(q("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(kdl_duration(Duration::from_secs(3)), "3s");
        assert_eq!(kdl_duration(Duration::from_millis(100)), "100ms");
        assert_eq!(kdl_duration(Duration::from_micros(1500)), "1500us");
        let w = ImportWarning {
            file: "k.conf".into(),
            line: 7,
            message: "x".into(),
        };
        assert_eq!(w.to_string(), "k.conf:7: x");
    }
}
