//! Script security: upkeep refuses to run, as root, a program that someone other than root
//! could change (keepalived's `enable_script_security`, on by default here), and says which
//! path is the problem and why.
//!
//! The rule is keepalived's: the program, and every directory the kernel walks to reach it
//! (symbolic links followed, and each link's own directory checked too), must be owned by
//! root; a file or directory must not be writable by others, nor by a group other than root's.
//! A directory with the sticky bit (`/tmp`) may be writable by all: nobody can replace what
//! root owns in it.
//!
//! The checks read the file system (stat, readlink) and nothing else; the daemon calls them at
//! load and reload, before it runs anything.
// unsafe here: the user database (`getpwnam_r`, `getpwuid_r`, `getgrgid_r`) and `geteuid`, wrapped
// once.
#![allow(unsafe_code)]

use std::ffi::{CString, OsString};
use std::fmt;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Where a program is looked for: the `PATH` commands run with, not the daemon's own.
const DEFAULT_PATH: &str = super::process::SCRIPT_PATH;

/// Symbolic links followed before giving up, as the kernel does (`ELOOP`).
const MAX_LINKS: usize = 40;

/// The words that `/bin/sh` runs itself: no program file to check beyond the shell.
const SHELL_BUILTINS: &[&str] = &[
    ":", ".", "[", "alias", "break", "cd", "command", "continue", "echo", "eval", "exit", "export",
    "false", "getopts", "hash", "kill", "printf", "pwd", "read", "readonly", "return", "set",
    "shift", "test", "times", "trap", "true", "type", "ulimit", "umask", "unalias", "unset",
    "wait", "if", "while", "until", "for", "case", "{", "(", "!",
];

/// Why a script or plugin may not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptSecurityError {
    /// Nothing to run.
    #[error("the command is empty")]
    Empty,

    /// The command's program is computed by the shell, so it cannot be checked beforehand.
    #[error("cannot tell which program `{command}` runs: {why}")]
    Unresolvable { command: String, why: &'static str },

    /// No file by that name in `PATH`, or no file at that path.
    #[error("`{program}` not found{}", where_.as_deref().map(|w| format!(" {w}")).unwrap_or_default())]
    NotFound {
        program: String,
        /// "in PATH (/usr/bin:/bin)", or nothing for a path.
        where_: Option<String>,
    },

    /// The program, or a directory on its path, could not be looked at.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The program is a directory, a device, a FIFO...
    #[error("{} is not a regular file", path.display())]
    NotAFile { path: PathBuf },

    /// No execute bit on the program.
    #[error("{} is not executable (mode {mode:04o})", path.display())]
    NotExecutable { path: PathBuf, mode: u32 },

    /// `user` could not run `program`: `path`, the program or a directory on the way to it (or
    /// the directory the script starts in), does not let it.
    #[error(
        "user `{}` cannot {} {}: {}{} {why}",
        why.user,
        if *start_in { "start in" } else { "run" },
        program.display(),
        path.display(),
        if path == program { "" } else { " (on its path)" }
    )]
    NotRunnable {
        program: PathBuf,
        path: PathBuf,
        why: Box<Denied>,
        /// `program` is the directory the script starts in, not the script.
        start_in: bool,
    },

    /// `program` would run as root (or be loaded by the root daemon), but `path` — the program
    /// itself or a directory on the way to it — can be changed by someone else.
    #[error(
        "{} would run as root, but {}{} {why}: whoever can change it can run anything as root",
        program.display(),
        path.display(),
        if path == program { "" } else { " (on its path)" }
    )]
    Unsafe {
        program: PathBuf,
        path: PathBuf,
        why: Unsafe,
    },
}

impl ScriptSecurityError {
    /// A command that fixes the problem, when there is an obvious one.
    pub fn hint(&self) -> Option<String> {
        if let Self::NotRunnable { path, why, .. } = self {
            return Some(format!(
                "chmod o+{} {}  (or give it to {}'s group), or run the scripts as a user that may: `script-user`, or `user` on the check",
                why.needs,
                path.display(),
                why.user
            ));
        }
        let Self::Unsafe { path, why, .. } = self else {
            return None;
        };
        let path = path.display();
        Some(match why {
            Unsafe::Owner { .. } => format!("chown root {path}"),
            Unsafe::GroupWritable { .. } => format!("chmod g-w {path}  (or chgrp root {path})"),
            Unsafe::WorldWritable { .. } => format!("chmod o-w {path}"),
        })
    }
}

/// What a user lacks on one path: the permission bits it needs (`"x"`, `"rx"`) and the
/// path's owner, group and mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// `"x"`: search a directory or execute a program; `"rx"`: a script (the interpreter
    /// reads it).
    pub needs: &'static str,
    /// Who lacks it.
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub dir: bool,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let owner = user_name(self.uid).unwrap_or_else(|| self.uid.to_string());
        let group = group_name(self.gid).unwrap_or_else(|| self.gid.to_string());
        let what = match (self.dir, self.needs) {
            (true, _) => "search (x) permission",
            (false, "x") => "execute (x) permission",
            (false, _) => "read and execute (rx) permission, as a script needs",
        };
        write!(
            f,
            "is mode {:04o}, owner {owner}, group {group}: `{}` has no {what}",
            self.mode, self.user
        )
    }
}

/// What makes a path unsafe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsafe {
    Owner {
        uid: u32,
        user: Option<String>,
    },
    GroupWritable {
        gid: u32,
        group: Option<String>,
        mode: u32,
    },
    WorldWritable {
        mode: u32,
    },
}

impl fmt::Display for Unsafe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let named = |id: u32, name: &Option<String>| match name {
            Some(n) => format!("{id} ({n})"),
            None => id.to_string(),
        };
        match self {
            Self::Owner { uid, user } => {
                write!(f, "is owned by uid {}, not root", named(*uid, user))
            }
            Self::GroupWritable { gid, group, mode } => write!(
                f,
                "is writable by group {} (mode {mode:04o})",
                named(*gid, group)
            ),
            Self::WorldWritable { mode } => write!(f, "is writable by everyone (mode {mode:04o})"),
        }
    }
}

/// Checks the program a shell command would run. `run_as_root`: the command runs as root
/// (no `user`/`script-user`, or one that is root); only then are ownership and modes checked,
/// as a command run as another user cannot do more than that user. Relative program paths are
/// taken from the current directory; see [`check_script_security_in`].
pub fn check_script_security(command: &str, run_as_root: bool) -> Result<(), ScriptSecurityError> {
    check_script_security_in(command, Path::new("."), run_as_root)
}

/// [`check_script_security`] with relative program paths (`./check.sh`, `bin/check`) taken
/// from `base`: the directory the command runs in, which is the config file's.
pub fn check_script_security_in(
    command: &str,
    base: &Path,
    run_as_root: bool,
) -> Result<(), ScriptSecurityError> {
    let path = OsString::from(DEFAULT_PATH);
    check_command(command, base, &path, run_as_root)
}

/// The program file a shell command starts, if any: `None` when the shell runs the command
/// itself (`exit 0`, `test -f x`, `</dev/tcp/...`).
pub fn resolve_program(command: &str, base: &Path) -> Result<Option<PathBuf>, ScriptSecurityError> {
    let path = OsString::from(DEFAULT_PATH);
    resolve(command, base, &path)
}

/// Checks a plugin (`.wasm`) the daemon loads: it must be a regular file, and it and the
/// directories above it changeable only by root. Always checked: the daemon loads it.
pub fn check_plugin_file(path: &Path) -> Result<(), ScriptSecurityError> {
    let path = absolute(path, Path::new("."))?;
    let meta = std::fs::metadata(&path).map_err(|source| io_or_missing(&path, source))?;
    if !meta.is_file() {
        return Err(ScriptSecurityError::NotAFile { path });
    }
    check_chain(&path)
}

fn check_command(
    command: &str,
    base: &Path,
    search: &std::ffi::OsStr,
    run_as_root: bool,
) -> Result<(), ScriptSecurityError> {
    let program = resolve(command, base, search)?;
    if !run_as_root {
        return Ok(());
    }
    // The shell is what runs as root in every case.
    check_chain(Path::new("/bin/sh"))?;
    match program {
        Some(p) => check_chain(&p),
        None => Ok(()),
    }
}

fn resolve(
    command: &str,
    base: &Path,
    search: &std::ffi::OsStr,
) -> Result<Option<PathBuf>, ScriptSecurityError> {
    let Some(word) = first_word(command)? else {
        return Ok(None);
    };
    if word.contains('/') {
        let path = absolute(Path::new(&word), base)?;
        let meta = std::fs::metadata(&path).map_err(|source| io_or_missing(&path, source))?;
        if !meta.is_file() {
            return Err(ScriptSecurityError::NotAFile { path });
        }
        let mode = meta.permissions().mode();
        if mode & 0o111 == 0 {
            return Err(ScriptSecurityError::NotExecutable {
                path,
                mode: mode & 0o7777,
            });
        }
        return Ok(Some(path));
    }
    if SHELL_BUILTINS.contains(&word.as_str()) {
        return Ok(None);
    }
    for dir in std::env::split_paths(search) {
        // An empty PATH entry means the current directory.
        let dir = if dir.as_os_str().is_empty() {
            base.to_owned()
        } else {
            dir
        };
        let candidate = absolute(&dir.join(&word), base)?;
        let executable = std::fs::metadata(&candidate)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        if executable {
            return Ok(Some(candidate));
        }
    }
    Err(ScriptSecurityError::NotFound {
        program: word,
        where_: Some(format!("in PATH ({})", search.to_string_lossy())),
    })
}

/// The first word of a shell command, unquoted, after `VAR=value` assignments and `exec`.
/// `None` when the command starts with a redirection or a builtin has no program.
fn first_word(command: &str) -> Result<Option<String>, ScriptSecurityError> {
    let unresolvable = |why| ScriptSecurityError::Unresolvable {
        command: command.to_owned(),
        why,
    };
    let mut rest = command.trim_start();
    loop {
        if rest.is_empty() {
            return Err(ScriptSecurityError::Empty);
        }
        if rest.starts_with(['<', '>']) {
            return Ok(None);
        }
        let (word, raw, after) = shell_word(rest).map_err(unresolvable)?;
        if word.is_empty() && raw.is_empty() {
            // An operator (`;`, `&`, `|`) before any word.
            return Err(unresolvable("it starts with a shell operator"));
        }
        let assignment = raw
            .split_once('=')
            .is_some_and(|(name, _)| is_shell_name(name));
        if assignment || raw == "exec" {
            rest = after.trim_start();
            continue;
        }
        if raw.contains(['$', '`', '*', '?', '~']) || (raw.contains('[') && raw != "[") {
            return Err(unresolvable(
                "it starts with a shell expansion; write the program's path",
            ));
        }
        return Ok(Some(word));
    }
}

fn is_shell_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One shell word: (unquoted text, the word as written, what follows).
fn shell_word(s: &str) -> Result<(String, &str, &str), &'static str> {
    let mut word = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() || matches!(c, ';' | '&' | '|' | '<' | '>' | '(' | ')') => {
                return Ok((word, &s[..i], &s[i..]));
            }
            '\'' => {
                chars.next();
                loop {
                    match chars.next() {
                        Some((_, '\'')) => break,
                        Some((_, c)) => word.push(c),
                        None => return Err("it has an unterminated quote"),
                    }
                }
            }
            '"' => {
                chars.next();
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, c @ ('"' | '\\' | '$' | '`'))) => word.push(c),
                            Some((_, c)) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("it has an unterminated quote"),
                        },
                        Some((_, c)) => word.push(c),
                        None => return Err("it has an unterminated quote"),
                    }
                }
            }
            '\\' => {
                chars.next();
                if let Some((_, c)) = chars.next() {
                    word.push(c);
                }
            }
            c => {
                chars.next();
                word.push(c);
            }
        }
    }
    Ok((word, s, ""))
}

fn absolute(path: &Path, base: &Path) -> Result<PathBuf, ScriptSecurityError> {
    if path.is_absolute() {
        return Ok(path.to_owned());
    }
    let base = if base.is_absolute() {
        base.to_owned()
    } else {
        let cwd = std::env::current_dir().map_err(|source| ScriptSecurityError::Io {
            path: base.to_owned(),
            source,
        })?;
        cwd.join(base)
    };
    Ok(base.join(path))
}

fn io_or_missing(path: &Path, source: io::Error) -> ScriptSecurityError {
    if source.kind() == io::ErrorKind::NotFound {
        ScriptSecurityError::NotFound {
            program: path.display().to_string(),
            where_: None,
        }
    } else {
        ScriptSecurityError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// What the rule needs to know of one path: owner, group, mode and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub uid: u32,
    pub gid: u32,
    /// Permission bits and the sticky bit (`st_mode & 0o7777`).
    pub mode: u32,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
}

/// keepalived's rule for one path, without IO: `None` when only root can change it.
pub fn judge(e: &Entry) -> Option<Unsafe> {
    if e.uid != 0 {
        return Some(Unsafe::Owner {
            uid: e.uid,
            user: None,
        });
    }
    // A symlink's own mode means nothing; a sticky directory keeps root's entries root's.
    let sticky_dir = e.kind == EntryKind::Dir && e.mode & 0o1000 != 0;
    if e.kind == EntryKind::Symlink || sticky_dir {
        return None;
    }
    if e.mode & 0o002 != 0 {
        return Some(Unsafe::WorldWritable { mode: e.mode });
    }
    if e.mode & 0o020 != 0 && e.gid != 0 {
        return Some(Unsafe::GroupWritable {
            gid: e.gid,
            group: None,
            mode: e.mode,
        });
    }
    None
}

fn entry_of(path: &Path) -> Result<Entry, ScriptSecurityError> {
    let meta = std::fs::symlink_metadata(path).map_err(|source| io_or_missing(path, source))?;
    let ft = meta.file_type();
    let kind = if ft.is_symlink() {
        EntryKind::Symlink
    } else if ft.is_dir() {
        EntryKind::Dir
    } else {
        EntryKind::File
    };
    Ok(Entry {
        uid: meta.uid(),
        gid: meta.gid(),
        mode: meta.mode() & 0o7777,
        kind,
    })
}

/// Walks `program` from `/` as the kernel would, following symbolic links, and judges every
/// directory, link and the file itself.
fn check_chain(program: &Path) -> Result<(), ScriptSecurityError> {
    walk(program, |path, entry| match judge(entry) {
        Some(why) => Err(ScriptSecurityError::Unsafe {
            program: program.to_owned(),
            path: path.to_owned(),
            why: named(why),
        }),
        None => Ok(()),
    })
}

/// Walks `program` from `/` as the kernel would, following symbolic links, and calls `visit`
/// with every directory, link and the file itself (a link's target after the link).
fn walk(
    program: &Path,
    mut visit: impl FnMut(&Path, &Entry) -> Result<(), ScriptSecurityError>,
) -> Result<(), ScriptSecurityError> {
    let mut cur = PathBuf::from("/");
    visit(&cur, &entry_of(&cur)?)?;
    let mut pending: Vec<OsString> = components(program);
    pending.reverse();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            cur.pop();
            continue;
        }
        let next = cur.join(&part);
        let entry = entry_of(&next)?;
        visit(&next, &entry)?;
        if entry.kind != EntryKind::Symlink {
            cur = next;
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(ScriptSecurityError::Io {
                path: program.to_owned(),
                source: io::Error::from_raw_os_error(libc::ELOOP),
            });
        }
        let target = std::fs::read_link(&next).map_err(|source| ScriptSecurityError::Io {
            path: next.clone(),
            source,
        })?;
        if target.is_absolute() {
            cur = PathBuf::from("/");
        }
        let mut more = components(&target);
        more.reverse();
        pending.extend(more);
    }
    Ok(())
}

/// Whether a process of `uid` and primary group `gid` (and no other group: the daemon drops
/// supplementary groups when it switches user) has the permission `bits` (4 read, 1 execute
/// or search, OR-ed) on `e`. The owner's bits apply to the owner, then the group's to the
/// group, then the others'; root needs one execute bit on a file, nothing on a directory.
/// ACLs are not looked at.
pub fn permits(e: &Entry, uid: u32, gid: u32, bits: u32) -> bool {
    if uid == 0 {
        return e.kind == EntryKind::Dir || bits & 1 == 0 || e.mode & 0o111 != 0;
    }
    let shift = if e.uid == uid {
        6
    } else if e.gid == gid {
        3
    } else {
        0
    };
    (e.mode >> shift) & bits == bits
}

/// Checks that `user` can run the program a shell command starts: search every directory on
/// its path (links followed) and execute it, and read it too when it is a script (`#!`). Only
/// what the command names is checked, not what it runs in turn.
pub fn check_runnable_by(
    command: &str,
    base: &Path,
    user: &User,
) -> Result<(), ScriptSecurityError> {
    let Some(program) = resolve_program(command, base)? else {
        return Ok(());
    };
    let script = std::fs::File::open(&program)
        .and_then(|mut f| {
            let mut head = [0u8; 2];
            std::io::Read::read_exact(&mut f, &mut head).map(|()| head == *b"#!")
        })
        .unwrap_or(false);
    walk(&program, |path, e| {
        let (bits, needs) = match e.kind {
            EntryKind::Symlink => return Ok(()),
            EntryKind::Dir => (1, "x"),
            EntryKind::File if script => (5, "rx"),
            EntryKind::File => (1, "x"),
        };
        if permits(e, user.uid, user.gid, bits) {
            return Ok(());
        }
        Err(ScriptSecurityError::NotRunnable {
            program: program.clone(),
            path: path.to_owned(),
            why: Box::new(Denied {
                needs,
                user: user.name.clone(),
                uid: e.uid,
                gid: e.gid,
                mode: e.mode,
                dir: e.kind == EntryKind::Dir,
            }),
            start_in: false,
        })
    })
}

/// Checks that `user` can enter `dir` (search every directory on the way to it, and it):
/// check scripts start in the config file's directory.
pub fn check_enterable_by(dir: &Path, user: &User) -> Result<(), ScriptSecurityError> {
    let dir = absolute(dir, Path::new("."))?;
    walk(&dir, |path, e| {
        if e.kind == EntryKind::Symlink || permits(e, user.uid, user.gid, 1) {
            return Ok(());
        }
        Err(ScriptSecurityError::NotRunnable {
            program: dir.clone(),
            path: path.to_owned(),
            why: Box::new(Denied {
                needs: "x",
                user: user.name.clone(),
                uid: e.uid,
                gid: e.gid,
                mode: e.mode,
                dir: true,
            }),
            start_in: true,
        })
    })
}

/// The normal and `..` components of a path (root and `.` dropped).
fn components(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// Adds user and group names to a verdict, for the message.
fn named(why: Unsafe) -> Unsafe {
    match why {
        Unsafe::Owner { uid, .. } => Unsafe::Owner {
            uid,
            user: user_name(uid),
        },
        Unsafe::GroupWritable { gid, mode, .. } => Unsafe::GroupWritable {
            gid,
            group: group_name(gid),
            mode,
        },
        other => other,
    }
}

/// A user account, as the daemon needs it to run something as that user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    /// The user's primary group.
    pub gid: u32,
}

/// Looks a user up by name (getpwnam_r): `Ok(None)` when there is no such user.
pub fn lookup_user(name: &str) -> io::Result<Option<User>> {
    let cname = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "user name contains NUL"))?;
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: `passwd` is plain old data; all-zero is a valid (empty) value.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; the strings `pwd` points to live in
        // `buf`, which outlives their use below.
        let rc = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        if found.is_null() {
            return Ok(None);
        }
        return Ok(Some(User {
            name: name.to_owned(),
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
        }));
    }
}

/// The user scripts and notify commands run as when the config names none, if it exists: one
/// made for upkeep (as keepalived's `keepalived_script`), with no other use.
pub const SCRIPT_USER: &str = "upkeep-script";

/// The user they run as otherwise.
pub const FALLBACK_SCRIPT_USER: &str = "nobody";

/// Why no user could be found to run scripts as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptUserError {
    /// The configured user is not in the user database.
    #[error("user `{0}` does not exist")]
    Missing(String),
    /// No user is configured and neither default exists.
    #[error(
        "no `script-user` is set and neither `{SCRIPT_USER}` nor `{FALLBACK_SCRIPT_USER}` exists"
    )]
    NoDefault,
    /// The user database could not be read (the name, and why).
    #[error("cannot look user `{0}` up: {1}")]
    Lookup(String, String),
}

/// The user a script or notify command runs as: `configured` (a check's `user`, else
/// `script-user`), or by default [`SCRIPT_USER`] if it exists, else [`FALLBACK_SCRIPT_USER`].
/// Root only when named (`script-user "root"`).
pub fn script_user(configured: Option<&str>) -> Result<User, ScriptUserError> {
    let find = |name: &str| {
        lookup_user(name).map_err(|e| ScriptUserError::Lookup(name.to_owned(), e.to_string()))
    };
    match configured {
        Some(name) => find(name)?.ok_or_else(|| ScriptUserError::Missing(name.to_owned())),
        None => match find(SCRIPT_USER)? {
            Some(u) => Ok(u),
            None => find(FALLBACK_SCRIPT_USER)?.ok_or(ScriptUserError::NoDefault),
        },
    }
}

/// The daemon's effective user id.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// What the daemon switches to before it runs a script or notify command: `(uid, gid)` of
/// [`script_user`], or None to stay itself (the user is the daemon's own; or the daemon is
/// not root, so cannot switch, and was not told to).
pub fn run_as(configured: Option<&str>) -> Result<Option<(u32, u32)>, ScriptUserError> {
    let me = effective_uid();
    if configured.is_none() && me != 0 {
        return Ok(None);
    }
    let u = script_user(configured)?;
    Ok((u.uid != me).then_some((u.uid, u.gid)))
}

/// The name of a uid, if it has one (getpwuid_r).
pub fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: as in `lookup_user`.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: as in `lookup_user`.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        // SAFETY: `pw_name` is a NUL-terminated string inside `buf`.
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        return Some(name.to_string_lossy().into_owned());
    }
}

/// The name of a gid, if it has one (getgrgid_r).
pub fn group_name(gid: u32) -> Option<String> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: `group` is plain old data; all-zero is a valid (empty) value.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; strings live in `buf`.
        let rc = unsafe {
            libc::getgrgid_r(
                gid,
                &mut grp,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || found.is_null() || grp.gr_name.is_null() {
            return None;
        }
        // SAFETY: `gr_name` is a NUL-terminated string inside `buf`.
        let name = unsafe { std::ffi::CStr::from_ptr(grp.gr_name) };
        return Some(name.to_string_lossy().into_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{chown, symlink};

    fn is_root() -> bool {
        effective_uid() == 0
    }

    /// A fresh directory under the system temp dir (root-owned and sticky, which the rule
    /// allows), removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("upkeep-sec-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("temp dir");
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            TempDir(dir)
        }

        fn script(&self, name: &str, mode: u32) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, "#!/bin/sh\nexit 0\n").expect("write");
            chmod(&path, mode);
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    fn unsafe_path(err: ScriptSecurityError) -> (PathBuf, Unsafe, String) {
        let text = err.to_string();
        match err {
            ScriptSecurityError::Unsafe { path, why, .. } => (path, why, text),
            other => panic!("expected Unsafe, got {other:?}"),
        }
    }

    #[test]
    fn the_rule() {
        let e = |uid, gid, mode, kind| Entry {
            uid,
            gid,
            mode,
            kind,
        };
        use EntryKind::*;
        assert_eq!(judge(&e(0, 0, 0o755, File)), None);
        assert_eq!(judge(&e(0, 0, 0o775, Dir)), None, "root's group may write");
        assert_eq!(judge(&e(0, 0, 0o1777, Dir)), None, "sticky dirs are fine");
        assert_eq!(judge(&e(0, 0, 0o777, Symlink)), None);
        assert_eq!(
            judge(&e(1000, 0, 0o755, File)),
            Some(Unsafe::Owner {
                uid: 1000,
                user: None
            })
        );
        assert_eq!(
            judge(&e(1000, 0, 0o777, Symlink)),
            Some(Unsafe::Owner {
                uid: 1000,
                user: None
            }),
            "a link owned by someone else in a sticky dir can be replaced"
        );
        assert_eq!(
            judge(&e(0, 50, 0o775, Dir)),
            Some(Unsafe::GroupWritable {
                gid: 50,
                group: None,
                mode: 0o775
            })
        );
        assert_eq!(
            judge(&e(0, 0, 0o1777, File)),
            Some(Unsafe::WorldWritable { mode: 0o1777 }),
            "the sticky bit protects nothing on a file"
        );
        assert_eq!(
            judge(&e(0, 0, 0o757, Dir)),
            Some(Unsafe::WorldWritable { mode: 0o757 })
        );
        assert_eq!(
            Unsafe::GroupWritable {
                gid: 50,
                group: Some("staff".into()),
                mode: 0o775
            }
            .to_string(),
            "is writable by group 50 (staff) (mode 0775)"
        );
    }

    #[test]
    fn first_words() {
        let w = |c: &str| first_word(c).map_err(|e| e.to_string());
        assert_eq!(
            w("/usr/bin/pgrep -x haproxy"),
            Ok(Some("/usr/bin/pgrep".into()))
        );
        assert_eq!(w("  pgrep -x x"), Ok(Some("pgrep".into())));
        assert_eq!(
            w("'/opt/my dir/check' arg"),
            Ok(Some("/opt/my dir/check".into()))
        );
        assert_eq!(w("\"/opt/a\\\"b\" x"), Ok(Some("/opt/a\"b".into())));
        assert_eq!(w("/opt/a\\ b x"), Ok(Some("/opt/a b".into())));
        assert_eq!(
            w("LANG=C FOO=1 exec ./check.sh"),
            Ok(Some("./check.sh".into()))
        );
        assert_eq!(w("check;other"), Ok(Some("check".into())));
        assert_eq!(w("</dev/tcp/127.0.0.1/80"), Ok(None));
        assert_eq!(w("exit 0"), Ok(Some("exit".into())));
        assert!(w("$CHECK --now").unwrap_err().contains("shell expansion"));
        assert!(w("~/check").unwrap_err().contains("shell expansion"));
        assert!(w("/opt/*/check").unwrap_err().contains("shell expansion"));
        assert!(w("'/opt/x").unwrap_err().contains("unterminated quote"));
        assert!(w("; x").unwrap_err().contains("shell operator"));
        assert_eq!(w("   "), Err("the command is empty".into()));
    }

    #[test]
    fn resolving_programs() {
        let dir = TempDir::new("resolve");
        let search = std::ffi::OsString::from(format!("/nonexistent:{}", dir.0.display()));
        dir.script("mycheck", 0o755);
        dir.script("plain", 0o644);
        std::fs::create_dir(dir.0.join("sub")).expect("mkdir");
        let r = |c: &str| resolve(c, &dir.0, &search);
        assert_eq!(
            r("mycheck --x").expect("found"),
            Some(dir.0.join("mycheck"))
        );
        assert_eq!(
            r("./mycheck").expect("found"),
            Some(dir.0.join("./mycheck"))
        );
        assert_eq!(
            r(&format!("{}/mycheck", dir.0.display())).expect("found"),
            Some(dir.0.join("mycheck"))
        );
        assert_eq!(r("exit 1").expect("builtin"), None);
        assert_eq!(r("test -f /x").expect("builtin"), None);
        let err = r("plain").unwrap_err();
        assert!(
            matches!(&err, ScriptSecurityError::NotFound { program, .. } if program == "plain"),
            "a non-executable file is not a match in PATH: {err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("`plain` not found in PATH (/nonexistent:"),
            "{err}"
        );
        let err = r("./plain").unwrap_err();
        assert!(
            err.to_string().contains("is not executable (mode 0644)"),
            "{err}"
        );
        assert!(matches!(
            r("./sub"),
            Err(ScriptSecurityError::NotAFile { .. })
        ));
        let err = r("./missing.sh").unwrap_err();
        assert!(err.to_string().contains("missing.sh` not found"), "{err}");
        // Not run as root: only resolution matters, whatever the modes.
        chmod(&dir.0.join("mycheck"), 0o777);
        check_command("mycheck", &dir.0, &search, false).expect("not root, not checked");
    }

    #[test]
    fn system_programs_are_safe() {
        if !Path::new("/bin/sh").exists() {
            return;
        }
        // Any sane system has root-owned /bin and /usr/bin.
        check_script_security("exit 0", true).expect("the shell alone");
        check_script_security("sh -c true", true).expect("sh via PATH");
        check_script_security("/bin/sh -c true", true).expect("absolute");
        check_plugin_file(Path::new("/bin/sh")).expect("any root-owned file");
    }

    #[test]
    fn unsafe_files_and_directories_are_named() {
        if !is_root() {
            eprintln!("skipped: needs root to make root-owned files");
            return;
        }
        let dir = TempDir::new("perm");
        let script = dir.script("check.sh", 0o755);
        let run = |cmd: &str| check_command(cmd, &dir.0, &std::ffi::OsString::from("/bin"), true);
        run(&format!("{} --now", script.display())).expect("root's own script");
        run("./check.sh").expect("relative to the config dir");

        chmod(&script, 0o757);
        let (path, why, text) = unsafe_path(run("./check.sh").unwrap_err());
        assert_eq!(path, dir.0.join("check.sh"));
        assert_eq!(why, Unsafe::WorldWritable { mode: 0o757 });
        assert!(
            text.contains("is writable by everyone (mode 0757)"),
            "{text}"
        );
        assert!(!text.contains("(on its path)"), "{text}");

        chmod(&script, 0o775);
        chown(&script, None, Some(0)).expect("chgrp");
        run("./check.sh").expect("writable by root's group is fine");
        chown(&script, None, Some(65534)).expect("chgrp");
        let err = run("./check.sh").unwrap_err();
        assert_eq!(
            err.hint().as_deref(),
            Some(&*format!(
                "chmod g-w {}  (or chgrp root {})",
                script.display(),
                script.display()
            ))
        );
        let (_, why, _) = unsafe_path(err);
        assert!(
            matches!(why, Unsafe::GroupWritable { gid: 65534, .. }),
            "{why:?}"
        );
        chmod(&script, 0o755);

        chown(&script, Some(65534), None).expect("chown");
        let (_, why, text) = unsafe_path(run("./check.sh").unwrap_err());
        assert!(matches!(why, Unsafe::Owner { uid: 65534, .. }), "{why:?}");
        assert!(text.contains("is owned by uid 65534"), "{text}");
        run_as_user_is_not_checked(&dir.0);
        chown(&script, Some(0), None).expect("chown");

        // A directory on the way.
        chmod(&dir.0, 0o777);
        let (path, _, text) = unsafe_path(run("./check.sh").unwrap_err());
        assert_eq!(path, dir.0);
        assert!(
            text.contains(&format!(
                "{} (on its path) is writable by everyone",
                dir.0.display()
            )),
            "{text}"
        );
        assert!(
            text.contains("whoever can change it can run anything as root"),
            "{text}"
        );
        chmod(&dir.0, 0o1777);
        run("./check.sh").expect("a sticky directory is fine");
        chmod(&dir.0, 0o755);
    }

    fn run_as_user_is_not_checked(dir: &Path) {
        check_command("./check.sh", dir, &std::ffi::OsString::from("/bin"), false)
            .expect("run as another user: not checked");
    }

    #[test]
    fn links_are_followed_and_their_directories_checked() {
        if !is_root() {
            eprintln!("skipped: needs root to make root-owned files");
            return;
        }
        let dir = TempDir::new("link");
        let open = dir.0.join("open");
        std::fs::create_dir(&open).expect("mkdir");
        let real = open.join("real.sh");
        std::fs::write(&real, "#!/bin/sh\n").expect("write");
        chmod(&real, 0o755);
        let safe = dir.0.join("safe");
        std::fs::create_dir(&safe).expect("mkdir");
        symlink(&real, safe.join("link.sh")).expect("symlink");
        symlink("../open/real.sh", safe.join("rel.sh")).expect("symlink");
        check_plugin_file(&safe.join("link.sh")).expect("all root's");
        check_plugin_file(&safe.join("rel.sh")).expect("all root's");

        chmod(&open, 0o777);
        for link in ["link.sh", "rel.sh"] {
            let (path, _, _) = unsafe_path(check_plugin_file(&safe.join(link)).unwrap_err());
            assert_eq!(path, open, "the link's target directory is checked");
        }
        chmod(&open, 0o755);

        // A link owned by someone else.
        let theirs = safe.join("theirs.sh");
        symlink(&real, &theirs).expect("symlink");
        std::os::unix::fs::lchown(&theirs, Some(65534), None).expect("lchown");
        let (path, why, _) = unsafe_path(check_plugin_file(&theirs).unwrap_err());
        assert_eq!(path, theirs);
        assert!(matches!(why, Unsafe::Owner { uid: 65534, .. }));

        // A loop.
        symlink(safe.join("b"), safe.join("a")).expect("symlink");
        symlink(safe.join("a"), safe.join("b")).expect("symlink");
        assert!(check_plugin_file(&safe.join("a")).is_err());
        assert!(matches!(
            check_plugin_file(&safe),
            Err(ScriptSecurityError::NotAFile { .. })
        ));
        assert!(matches!(
            check_plugin_file(&safe.join("none.wasm")),
            Err(ScriptSecurityError::NotFound { .. })
        ));
    }

    #[test]
    fn users() {
        let root = lookup_user("root").expect("lookup").expect("root exists");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(lookup_user("no-such-user-upkeep").expect("lookup"), None);
        assert!(lookup_user("a\0b").is_err());
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert!(group_name(0).is_some());
        assert_eq!(user_name(4_000_000_000), None);
    }
}
