//! Script security: upkeep refuses to run, as root, a program that someone other than root
//! could change (keepalived's `enable_script_security`, on by default here), and says which
//! path is the problem and why.
//!
//! The rule is keepalived's: the program, and every directory the kernel walks to reach it
//! (symbolic links followed, and each link's own directory checked too), must be owned by
//! root; a file or directory must not be writable by others, nor by a group other than root's,
//! nor by a user or group that a POSIX ACL entry lets write. A directory with the sticky bit
//! (`/tmp`) may be writable by all: nobody can replace what root owns in it.
//!
//! What is checked of a command run as root is everything it names that would run: the
//! command is split as `/bin/sh` would split it ([`super::shell`]) and each simple command's
//! program is checked, with every `PATH` directory searched before the one it was found in (a
//! writable one could shadow it); so are the script an interpreter is given (`python3 x.py`,
//! `sh x`, `. x`), the program a wrapper starts (`env`, `nice`, `timeout`, `exec`...), the
//! command string of `sh -c` and `eval`, and any argument that is an executable file or a
//! `#!` script. What the shell cannot show without running (command substitution, loops,
//! functions, a program named by a variable) is refused under root, with the reason. What a
//! program does in turn (a script calling another) is not followed.
//!
//! The checks read the file system (stat, readlink, getxattr) and nothing else; the daemon
//! calls them at load and reload, before it runs anything.
// unsafe here: the user database (`getpwnam_r`, `getpwuid_r`, `getgrgid_r`), `geteuid` and
// `lgetxattr`, each wrapped once.
#![allow(unsafe_code)]

use std::ffi::{CString, OsString};
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::shell;

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
        "{} {role}, but {}{} {why}: whoever can change it can run anything as root",
        program.display(),
        path.display(),
        if path == program { "" } else { " (on its path)" }
    )]
    Unsafe {
        program: PathBuf,
        path: PathBuf,
        why: Unsafe,
        /// What `program` is to the root daemon.
        role: Box<Role>,
    },
}

/// What a checked path is to the daemon running as root, for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// A program a command runs.
    Program,
    /// A script an interpreter (or the shell's `.`) is given.
    Script { by: String },
    /// An executable file or `#!` script given to a program as an argument.
    Argument { of: String },
    /// A library or module path set in the environment (`LD_PRELOAD`...).
    Library { var: String },
    /// A `PATH` directory searched for `name` before the directory it was found in.
    PathDir { name: String, found: PathBuf },
    /// The config file.
    Config,
    /// A plugin.
    Plugin,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Program => write!(f, "would run as root"),
            Self::Script { by } => write!(f, "would be run by `{by}` as root"),
            Self::Argument { of } => write!(f, "is given to `{of}`, which runs as root"),
            Self::Library { var } => write!(f, "is loaded through {var} by a program run as root"),
            Self::PathDir { name, found } => write!(
                f,
                "is searched for `{name}` before {} (PATH), as root",
                found.display()
            ),
            Self::Config => write!(
                f,
                "is the config file, which the root daemon reads and reloads when it changes"
            ),
            Self::Plugin => write!(f, "would be loaded by the root daemon"),
        }
    }
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
            Unsafe::AclWritable { group, id, .. } => {
                format!("setfacl -x {}:{id} {path}", if *group { "g" } else { "u" })
            }
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
    /// A POSIX ACL entry (`system.posix_acl_access`) lets a user or group other than root's
    /// write (the ACL mask allowing it).
    AclWritable {
        /// A group entry, not a user's.
        group: bool,
        id: u32,
        name: Option<String>,
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
            Self::AclWritable { group, id, name } => write!(
                f,
                "has an ACL entry that lets {} {} write",
                if *group { "group" } else { "user" },
                named(*id, name)
            ),
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
    check_chain(&path, &Role::Plugin)
}

/// Checks the config file the daemon reads and reloads as root: it and the directories above
/// it must be changeable only by root, as a script run as root (whoever can write it can make
/// the daemon run anything).
pub fn check_config_file(path: &Path) -> Result<(), ScriptSecurityError> {
    let path = absolute(path, Path::new("."))?;
    let meta = std::fs::metadata(&path).map_err(|source| io_or_missing(&path, source))?;
    if !meta.is_file() {
        return Err(ScriptSecurityError::NotAFile { path });
    }
    check_chain(&path, &Role::Config)
}

fn check_command(
    command: &str,
    base: &Path,
    search: &std::ffi::OsStr,
    run_as_root: bool,
) -> Result<(), ScriptSecurityError> {
    if !run_as_root {
        return resolve(command, base, search).map(drop);
    }
    // The shell is what runs as root in every case.
    check_chain(Path::new("/bin/sh"), &Role::Program)?;
    RootCommand {
        command,
        base: base.to_owned(),
        search: search.to_owned(),
        changed_dir: false,
    }
    .check(command, 0)
}

/// How deep `sh -c`, `eval` and wrappers may nest before a command is refused.
const MAX_NESTING: usize = 8;

/// Interpreters: their first operand (or the file named by a script option) is a script.
/// `(name or prefix followed by a version, shell-like: -c takes a command string)`.
const INTERPRETERS: &[(&str, bool)] = &[
    ("sh", true),
    ("bash", true),
    ("dash", true),
    ("ash", true),
    ("ksh", true),
    ("mksh", true),
    ("zsh", true),
    ("python", false),
    ("pypy", false),
    ("perl", false),
    ("ruby", false),
    ("node", false),
    ("nodejs", false),
    ("php", false),
    ("lua", false),
    ("luajit", false),
    ("tclsh", false),
    ("Rscript", false),
    ("awk", false),
    ("gawk", false),
    ("mawk", false),
    ("nawk", false),
];

/// Interpreter options whose value is code, not a file: no script operand follows.
const INLINE_OPTIONS: &[&str] = &["-c", "-e", "-E", "-m", "-r", "-p", "--eval", "--print"];
/// Interpreter options whose value is a script file.
const SCRIPT_OPTIONS: &[&str] = &["-f", "--file", "-i", "--include"];
/// Interpreter options that take a value of another kind.
const VALUE_OPTIONS: &[&str] = &[
    "-o",
    "+o",
    "-O",
    "+O",
    "-W",
    "-X",
    "-I",
    "-M",
    "-C",
    "-d",
    "-z",
    "-v",
    "-F",
    "-l",
    "--require",
    "--import",
];

/// Programs that run another program: `(name, options that take a value, operands before the
/// program)`. `env -S`, which splits a string into a command, is refused.
const WRAPPERS: &[(&str, &[&str], usize)] = &[
    ("env", &["-u", "--unset", "-C", "--chdir"], 0),
    ("nice", &["-n", "--adjustment"], 0),
    ("nohup", &[], 0),
    ("setsid", &[], 0),
    ("time", &["-f", "--format", "-o", "--output"], 0),
    (
        "stdbuf",
        &["-i", "-o", "-e", "--input", "--output", "--error"],
        0,
    ),
    (
        "ionice",
        &["-c", "-n", "-p", "-P", "-u", "--class", "--classdata"],
        0,
    ),
    ("chrt", &[], 1),
    ("taskset", &[], 1),
    ("timeout", &["-s", "--signal", "-k", "--kill-after"], 1),
    (
        "flock",
        &["-w", "--timeout", "-E", "--conflict-exit-code"],
        1,
    ),
    (
        "xargs",
        &[
            "-a",
            "--arg-file",
            "-d",
            "--delimiter",
            "-E",
            "-I",
            "-L",
            "-n",
            "-P",
            "-s",
        ],
        0,
    ),
    (
        "sudo",
        &["-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T"],
        0,
    ),
    ("doas", &["-u", "-C"], 0),
    ("busybox", &[], 0),
];

/// Environment variables that make a program load code from the paths they hold.
const LOADER_VARS: &[&str] = &[
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "LD_AUDIT",
    "BASH_ENV",
    "ENV",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PERL5LIB",
    "PERL5OPT",
    "RUBYLIB",
    "RUBYOPT",
    "NODE_OPTIONS",
    "NODE_PATH",
];

/// Script security of one command run as root: every program and script it names.
struct RootCommand<'a> {
    /// The whole command, for messages.
    command: &'a str,
    /// Where relative paths start (the command's working directory).
    base: PathBuf,
    /// `PATH` as the command sees it (an assignment changes it for what follows).
    search: OsString,
    /// A `cd` ran: relative paths after it cannot be placed.
    changed_dir: bool,
}

impl RootCommand<'_> {
    fn unresolvable(&self, why: &'static str) -> ScriptSecurityError {
        ScriptSecurityError::Unresolvable {
            command: self.command.to_owned(),
            why,
        }
    }

    /// Checks a command line (the whole command, or the string of `sh -c` / `eval`).
    fn check(&mut self, line: &str, depth: usize) -> Result<(), ScriptSecurityError> {
        if depth > MAX_NESTING {
            return Err(self.unresolvable("its commands nest too deep (sh -c, eval, wrappers)"));
        }
        let simples = shell::split(line).map_err(|why| self.unresolvable(why))?;
        if simples.is_empty() && depth == 0 {
            return Err(ScriptSecurityError::Empty);
        }
        for simple in &simples {
            self.simple(simple, depth)?;
        }
        Ok(())
    }

    fn simple(&mut self, s: &shell::Simple, depth: usize) -> Result<(), ScriptSecurityError> {
        let saved = self.search.clone();
        for (name, value) in &s.assignments {
            self.assignment(name, value)?;
        }
        let result = if s.words.is_empty() {
            // `PATH=...` alone sets it for the commands that follow.
            Ok(())
        } else {
            let stdin = s.redirects.iter().find(|r| r.op == "<").map(|r| &r.target);
            let out = self.run(&s.words, stdin, s.piped_in, depth);
            // `PATH=... prog` sets it for `prog` only.
            self.search = saved;
            out
        };
        result
    }

    /// `NAME=value` before a command (or an `env` operand).
    fn assignment(&mut self, name: &str, value: &shell::Word) -> Result<(), ScriptSecurityError> {
        if name == "PATH" {
            if !value.is_literal() {
                return Err(self.unresolvable(
                    "it sets PATH from a shell expansion, so the programs it finds cannot be checked",
                ));
            }
            self.search = OsString::from(&value.text);
        } else if LOADER_VARS.contains(&name) {
            if !value.is_literal() {
                return Err(self.unresolvable(
                    "it sets a library path (LD_PRELOAD...) from a shell expansion",
                ));
            }
            for part in value.text.split([':', ' ']).filter(|p| p.contains('/')) {
                let path = self.place(part)?;
                if path.exists() {
                    check_chain(
                        &path,
                        &Role::Library {
                            var: name.to_owned(),
                        },
                    )?;
                }
            }
        }
        Ok(())
    }

    /// `words` run as a command; `stdin`: the file redirected to its input.
    fn run(
        &mut self,
        words: &[shell::Word],
        stdin: Option<&shell::Word>,
        piped_in: bool,
        depth: usize,
    ) -> Result<(), ScriptSecurityError> {
        let Some((first, args)) = words.split_first() else {
            return Ok(());
        };
        if !first.is_literal() {
            return Err(self.unresolvable(
                "its program is named by a shell expansion ($VAR, a glob, ~); write the program's path",
            ));
        }
        let name = first.text.as_str();
        match name {
            "exec" => {
                let rest = skip_options(args, &["-a"]);
                return self.run(rest, stdin, piped_in, depth + 1);
            }
            "command" => {
                if args
                    .iter()
                    .take_while(|a| a.text.starts_with('-'))
                    .any(|a| a.text.contains('v') || a.text.contains('V'))
                {
                    // `command -v x` only looks `x` up.
                    return Ok(());
                }
                return self.run(skip_options(args, &[]), stdin, piped_in, depth + 1);
            }
            "." | "source" => {
                let Some(script) = skip_options(args, &[]).first() else {
                    return Ok(());
                };
                return self.sourced(name, script);
            }
            "eval" | "trap" => {
                let code: Vec<&shell::Word> = if name == "trap" {
                    args.iter().take(1).filter(|w| w.text != "-").collect()
                } else {
                    args.iter().collect()
                };
                if code.iter().any(|w| !w.is_literal()) {
                    return Err(self.unresolvable(
                        "it evaluates a shell expansion (eval, trap), which cannot be checked beforehand",
                    ));
                }
                let line = code
                    .iter()
                    .map(|w| w.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                return self.check(&line, depth + 1);
            }
            "cd" | "pushd" | "popd" => {
                self.changed_dir = true;
                return Ok(());
            }
            _ if SHELL_BUILTINS.contains(&name) => return Ok(()),
            _ => {}
        }
        self.program(name)?;
        let base_name = Path::new(name)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for arg in args {
            self.argument(&base_name, arg)?;
        }
        if let Some(&(_, values, operands)) = WRAPPERS.iter().find(|w| w.0 == base_name) {
            return self.wrapped(&base_name, values, operands, args, stdin, piped_in, depth);
        }
        if let Some(shell_like) = interpreter(&base_name) {
            return self.interpreted(&base_name, shell_like, args, stdin, piped_in, depth);
        }
        Ok(())
    }

    /// The program a wrapper (`env`, `nice`, `timeout`...) starts, checked as a command.
    #[allow(clippy::too_many_arguments)]
    fn wrapped(
        &mut self,
        wrapper: &str,
        values: &[&str],
        operands: usize,
        args: &[shell::Word],
        stdin: Option<&shell::Word>,
        piped_in: bool,
        depth: usize,
    ) -> Result<(), ScriptSecurityError> {
        let mut i = 0;
        while let Some(a) = args.get(i) {
            let t = a.text.as_str();
            if wrapper == "env" && (t.starts_with("-S") || t.starts_with("--split-string")) {
                return Err(
                    self.unresolvable("it uses `env -S`, which splits a string into a command")
                );
            }
            if wrapper == "flock" && (t == "-c" || t == "--command") {
                // `flock [options] FILE -c COMMAND`: a command string.
                return match args.get(i + 1) {
                    Some(code) if code.is_literal() => self.check(&code.text, depth + 1),
                    Some(_) => {
                        Err(self.unresolvable("its `flock -c` command is a shell expansion"))
                    }
                    None => Ok(()),
                };
            }
            if t == "--" {
                i += 1;
                break;
            }
            if t.starts_with('-') && t.len() > 1 {
                if values.contains(&t) {
                    if matches!(t, "-C" | "--chdir") {
                        self.changed_dir = true;
                    }
                    i += 1;
                }
                i += 1;
                continue;
            }
            if wrapper == "env" {
                if let Some((name, value)) = t.split_once('=') {
                    let value = shell::Word {
                        text: value.to_owned(),
                        ..a.clone()
                    };
                    self.assignment(name, &value)?;
                    i += 1;
                    continue;
                }
            }
            break;
        }
        // A flock lock file may come after `-c`-less options too: `flock FILE -c CMD`.
        let rest = args.get(i + operands..).unwrap_or_default();
        if wrapper == "flock" {
            if let Some(pos) = rest
                .iter()
                .position(|w| w.text == "-c" || w.text == "--command")
            {
                if pos == 0 {
                    return match rest.get(1) {
                        Some(code) if code.is_literal() => self.check(&code.text, depth + 1),
                        Some(_) => {
                            Err(self.unresolvable("its `flock -c` command is a shell expansion"))
                        }
                        None => Ok(()),
                    };
                }
            }
        }
        self.run(rest, stdin, piped_in, depth + 1)
    }

    /// The script an interpreter runs: its first operand, the file of a script option, or its
    /// standard input; `sh -c STRING` is checked as a command.
    fn interpreted(
        &mut self,
        interp: &str,
        shell_like: bool,
        args: &[shell::Word],
        stdin: Option<&shell::Word>,
        piped_in: bool,
        depth: usize,
    ) -> Result<(), ScriptSecurityError> {
        let awk = interp.ends_with("awk");
        let mut inline = false;
        let mut script_given = false;
        let mut from_stdin = false;
        let mut i = 0;
        while let Some(a) = args.get(i) {
            let t = a.text.as_str();
            if t == "--" {
                i += 1;
                break;
            }
            let is_option =
                (t.starts_with('-') || (shell_like && t.starts_with('+'))) && t.len() > 1;
            if !is_option {
                break;
            }
            if shell_like {
                if matches!(t, "--rcfile" | "--init-file") {
                    // A file the shell runs first.
                    if let Some(file) = args.get(i + 1) {
                        self.script(interp, file)?;
                    }
                    i += 2;
                    continue;
                }
                if !t.starts_with("--") {
                    // `-c`, `-ec`: the first operand is a command string; `-s`: the script
                    // is standard input; `-o NAME`, `-euo NAME`: a value follows.
                    inline |= t.contains('c');
                    from_stdin |= t.contains('s');
                    if t.contains(['o', 'O']) {
                        i += 1;
                    }
                }
            } else if SCRIPT_OPTIONS.contains(&t) && (awk || t == "-f") {
                if let Some(file) = args.get(i + 1) {
                    self.script(interp, file)?;
                }
                script_given = true;
                i += 2;
                continue;
            } else if INLINE_OPTIONS.contains(&t) {
                inline = true;
                break;
            } else if VALUE_OPTIONS.contains(&t) {
                i += 1;
            }
            i += 1;
        }
        if inline && !shell_like {
            return Ok(());
        }
        let operand = args.get(i);
        if inline {
            return match operand {
                Some(code) if code.is_literal() => self.check(&code.text, depth + 1),
                Some(_) => Err(self.unresolvable(
                    "its `sh -c` command is a shell expansion, which cannot be checked beforehand",
                )),
                None => Ok(()),
            };
        }
        if script_given || awk {
            // awk's first operand is its program text, unless -f named a file.
            return Ok(());
        }
        let operand = operand.filter(|_| !from_stdin);
        match (operand, stdin) {
            (Some(script), _) => self.script(interp, script),
            (None, Some(file)) => self.script(interp, file),
            (None, None) if piped_in => {
                Err(self
                    .unresolvable("an interpreter reads its program from a pipe; give it a file"))
            }
            (None, None) => Ok(()),
        }
    }

    /// A script file an interpreter is given: checked whatever its mode.
    fn script(&mut self, interp: &str, word: &shell::Word) -> Result<(), ScriptSecurityError> {
        if !word.is_literal() {
            return Err(self.unresolvable(
                "the script it gives an interpreter is a shell expansion; write its path",
            ));
        }
        let path = self.place(&word.text)?;
        let meta = std::fs::metadata(&path).map_err(|source| io_or_missing(&path, source))?;
        if !meta.is_file() {
            return Err(ScriptSecurityError::NotAFile { path });
        }
        check_chain(
            &path,
            &Role::Script {
                by: interp.to_owned(),
            },
        )
    }

    /// The file `.` or `source` reads: a name without `/` is looked for in `PATH`, as the
    /// shell does.
    fn sourced(&mut self, by: &str, word: &shell::Word) -> Result<(), ScriptSecurityError> {
        if !word.is_literal() {
            return Err(
                self.unresolvable("the file it sources (`.`) is a shell expansion; write its path")
            );
        }
        if word.text.contains('/') {
            return self.script(by, word);
        }
        let found = self.search_path(&word.text, |m| m.is_file())?;
        check_chain(&found, &Role::Script { by: by.to_owned() })
    }

    /// An argument that is an executable file or a `#!` script: checked, as the program may
    /// run it.
    fn argument(&mut self, of: &str, arg: &shell::Word) -> Result<(), ScriptSecurityError> {
        if !arg.is_literal() {
            return Ok(());
        }
        let text = match arg.text.split_once('=') {
            Some((opt, value)) if opt.starts_with('-') => value,
            _ => arg.text.as_str(),
        };
        if text.is_empty() || text.starts_with('-') {
            return Ok(());
        }
        let path = Path::new(text);
        if !path.is_absolute() && self.changed_dir {
            return Ok(());
        }
        let path = absolute(path, &self.base)?;
        let Ok(meta) = std::fs::metadata(&path) else {
            return Ok(());
        };
        if !meta.is_file()
            || !(meta.permissions().mode() & 0o111 != 0 || starts_with_shebang(&path))
        {
            return Ok(());
        }
        check_chain(&path, &Role::Argument { of: of.to_owned() })
    }

    /// The program file `name` runs, checked with every `PATH` directory searched before it.
    fn program(&mut self, name: &str) -> Result<PathBuf, ScriptSecurityError> {
        let path = if name.contains('/') {
            let path = self.place(name)?;
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
            path
        } else {
            self.search_path(name, |m| m.is_file() && m.permissions().mode() & 0o111 != 0)?
        };
        check_chain(&path, &Role::Program)?;
        Ok(path)
    }

    /// Looks `name` up in `PATH` as the shell does (the first match wins) and checks every
    /// directory searched before the one it is in: whoever can write there can shadow it. A
    /// directory that does not exist is judged by the directory that would hold it.
    fn search_path(
        &mut self,
        name: &str,
        matches: impl Fn(&std::fs::Metadata) -> bool,
    ) -> Result<PathBuf, ScriptSecurityError> {
        let mut before: Vec<PathBuf> = Vec::new();
        for dir in std::env::split_paths(&self.search) {
            if !dir.is_absolute() && self.changed_dir {
                return Err(self.unresolvable(
                    "it changes directory (`cd`) and PATH has a relative directory",
                ));
            }
            // An empty PATH entry means the current directory.
            let dir = absolute(&dir, &self.base)?;
            let candidate = dir.join(name);
            if std::fs::metadata(&candidate).is_ok_and(|m| matches(&m)) {
                for earlier in before {
                    shadow_check(name, &candidate, &earlier)?;
                }
                return Ok(candidate);
            }
            before.push(dir);
        }
        Err(ScriptSecurityError::NotFound {
            program: name.to_owned(),
            where_: Some(format!("in PATH ({})", self.search.to_string_lossy())),
        })
    }

    /// A relative path taken from the command's directory.
    fn place(&self, text: &str) -> Result<PathBuf, ScriptSecurityError> {
        let path = Path::new(text);
        if !path.is_absolute() && self.changed_dir {
            return Err(self.unresolvable(
                "it changes directory (`cd`) before a relative path; write absolute paths",
            ));
        }
        absolute(path, &self.base)
    }
}

/// Checks a `PATH` directory searched for `name` before `found`, or, when it does not exist,
/// the nearest directory above it (whoever can write there can create it).
fn shadow_check(name: &str, found: &Path, dir: &Path) -> Result<(), ScriptSecurityError> {
    let mut existing = dir;
    while std::fs::symlink_metadata(existing).is_err() {
        match existing.parent() {
            Some(p) => existing = p,
            None => return Ok(()),
        }
    }
    check_chain(
        existing,
        &Role::PathDir {
            name: name.to_owned(),
            found: found.to_owned(),
        },
    )
}

/// Words after leading options (and a `--`), for builtins such as `exec` and `command`;
/// `values`: the options that take the next word.
fn skip_options<'w>(args: &'w [shell::Word], values: &[&str]) -> &'w [shell::Word] {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if a.text == "--" {
            return &args[i + 1..];
        }
        if !a.text.starts_with('-') || a.text.len() < 2 {
            break;
        }
        i += if values.contains(&a.text.as_str()) {
            2
        } else {
            1
        };
    }
    args.get(i..).unwrap_or_default()
}

/// Whether `name` is an interpreter, and whether it is a shell (`-c` takes a command).
fn interpreter(name: &str) -> Option<bool> {
    INTERPRETERS.iter().find_map(|&(base, shell_like)| {
        let version = name.strip_prefix(base)?;
        version
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.')
            .then_some(shell_like)
    })
}

/// Whether the file starts with `#!` (opened without waiting, should it be a FIFO by now).
fn starts_with_shebang(path: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .and_then(|mut f| {
            let mut head = [0u8; 2];
            std::io::Read::read_exact(&mut f, &mut head).map(|()| head == *b"#!")
        })
        .unwrap_or(false)
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
    if e.kind == EntryKind::Symlink || is_sticky_dir(e) {
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
/// directory, link and the file itself, ACLs included.
fn check_chain(program: &Path, role: &Role) -> Result<(), ScriptSecurityError> {
    walk(program, |path, entry| {
        let why = match judge(entry) {
            Some(why) => Some(why),
            None if entry.kind == EntryKind::Symlink || is_sticky_dir(entry) => None,
            None => acl_writer(&read_acl(path)?),
        };
        match why {
            Some(why) => Err(ScriptSecurityError::Unsafe {
                program: program.to_owned(),
                path: path.to_owned(),
                why: named(why),
                role: Box::new(role.clone()),
            }),
            None => Ok(()),
        }
    })
}

fn is_sticky_dir(e: &Entry) -> bool {
    e.kind == EntryKind::Dir && e.mode & 0o1000 != 0
}

/// The `system.posix_acl_access` attribute of `path` itself (not followed), empty when it has
/// none or its file system has no ACLs.
fn read_acl(path: &Path) -> Result<Vec<u8>, ScriptSecurityError> {
    let io = |source| ScriptSecurityError::Io {
        path: path.to_owned(),
        source,
    };
    let cpath = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io(io::Error::from_raw_os_error(libc::EINVAL)))?;
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: both names are NUL-terminated; `buf` is valid for `buf.len()` bytes.
        let n = unsafe {
            libc::lgetxattr(
                cpath.as_ptr(),
                c"system.posix_acl_access".as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if let Ok(n) = usize::try_from(n) {
            buf.truncate(n);
            return Ok(buf);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENODATA | libc::EOPNOTSUPP) => return Ok(Vec::new()),
            Some(libc::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            _ => return Err(io(e)),
        }
    }
}

/// The first named user or group other than root that an ACL (the kernel's xattr form: a
/// version, then `tag: u16, perm: u16, id: u32` entries, little-endian) lets write, through
/// its mask. Without the ACL: judged by the mode alone.
pub fn acl_writer(acl: &[u8]) -> Option<Unsafe> {
    const USER: u16 = 0x02;
    const GROUP: u16 = 0x08;
    const MASK: u16 = 0x10;
    const WRITE: u16 = 0x02;
    let entries: Vec<(u16, u16, u32)> = acl
        .get(4..)?
        .chunks_exact(8)
        .map(|e| {
            (
                u16::from_le_bytes([e[0], e[1]]),
                u16::from_le_bytes([e[2], e[3]]),
                u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
            )
        })
        .collect();
    let mask = entries.iter().find(|e| e.0 == MASK).map_or(0o7, |e| e.1);
    entries
        .iter()
        .find(|&&(tag, perm, id)| {
            (tag == USER || tag == GROUP) && id != 0 && perm & mask & WRITE != 0
        })
        .map(|&(tag, _, id)| Unsafe::AclWritable {
            group: tag == GROUP,
            id,
            name: None,
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
        Unsafe::AclWritable { group, id, .. } => Unsafe::AclWritable {
            group,
            id,
            name: if group { group_name(id) } else { user_name(id) },
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

    /// A directory of root's with a safe script `ok.sh` and `bad.sh`, which only root may
    /// not change (world-writable); the commands below run as root with PATH /usr/bin:/bin.
    fn mixed_dir(tag: &str) -> (TempDir, PathBuf, PathBuf) {
        let dir = TempDir::new(tag);
        let ok = dir.script("ok.sh", 0o755);
        let bad = dir.script("bad.sh", 0o757);
        (dir, ok, bad)
    }

    fn as_root(cmd: &str, dir: &Path) -> Result<(), ScriptSecurityError> {
        check_command(cmd, dir, &std::ffi::OsString::from("/usr/bin:/bin"), true)
    }

    #[test]
    fn every_program_and_script_a_command_names_is_checked() {
        if !is_root() {
            eprintln!("skipped: needs root to make root-owned files");
            return;
        }
        let (dir, ok, bad) = mixed_dir("every");
        let (ok, bad) = (ok.display().to_string(), bad.display().to_string());
        // A non-executable script, for interpreters.
        let plain = dir.0.join("c.py");
        std::fs::write(&plain, "print(1)\n").expect("write");
        chmod(&plain, 0o646);
        let plain = plain.display().to_string();
        as_root(&format!("{ok} --now && {ok} || exit 1"), &dir.0).expect("all root's");
        let mut refused = vec![
            format!("{ok} || {bad}"),
            format!("{ok}; {bad}"),
            format!("{ok} | {bad}"),
            format!("if {ok}; then {bad}; fi"),
            format!("env {bad}"),
            format!("env -i LANG=C {bad} x"),
            format!("/usr/bin/env nice -n 5 {bad}"),
            format!("timeout 5 {bad}"),
            format!("exec {bad}"),
            format!("sh {bad}"),
            format!("sh -c '{ok} && {bad}'"),
            format!("eval {bad}"),
            format!(". {bad}"),
            format!("{ok} {bad}"),
            format!("perl {plain}"),
            format!("sh -e {plain}"),
            format!("sh < {plain}"),
            format!("LD_PRELOAD={plain} {ok}"),
            "./bad.sh".to_owned(),
        ];
        if Path::new("/usr/bin/python3").exists() {
            refused.push(format!("python3 {plain}"));
            refused.push("python3 c.py".to_owned());
        }
        for cmd in &refused {
            let err = as_root(cmd, &dir.0).expect_err(cmd);
            let text = err.to_string();
            let (path, why, _) = unsafe_path(err);
            assert!(
                path == dir.0.join("bad.sh") || path == dir.0.join("c.py"),
                "{cmd}: {path:?}"
            );
            assert!(
                matches!(why, Unsafe::WorldWritable { .. }),
                "{cmd}: {why:?}"
            );
            assert!(
                text.contains("whoever can change it can run anything as root"),
                "{cmd}: {text}"
            );
        }
        let text = as_root(&format!("perl {plain}"), &dir.0)
            .unwrap_err()
            .to_string();
        assert!(
            text.starts_with(&format!("{plain} would be run by `perl` as root, but")),
            "{text}"
        );
        // A data file given to a program is not a program: not checked.
        as_root(&format!("grep -q x {plain}"), &dir.0).expect("a data file");
        as_root(&format!("test -f {bad}"), &dir.0).expect("a builtin's operand");
        as_root(&format!("perl -e 1 {plain}"), &dir.0).expect("inline code");
        as_root(&format!("bash -euo pipefail -c '{ok}'"), &dir.0).expect("shell options");
        for cmd in [
            format!("bash -euo pipefail -c '{bad}'"),
            format!("bash --rcfile {bad} {ok}"),
            format!("sh -s x < {bad}"),
        ] {
            let (path, _, _) = unsafe_path(as_root(&cmd, &dir.0).expect_err(&cmd));
            assert_eq!(path, dir.0.join("bad.sh"), "{cmd}");
        }
    }

    #[test]
    fn shell_syntax_that_cannot_be_followed_is_refused_as_root() {
        let dir = TempDir::new("syntax");
        for (cmd, why) in [
            ("$CHECK", "shell expansion"),
            ("/bin/true $(cat /etc/x)", "command substitution"),
            ("for f in /a /b; do $f; done", "`for` loop"),
            ("sh -c \"$X\"", "shell expansion"),
            ("cat /etc/x | sh", "from a pipe"),
            ("PATH=$HOME/bin:$PATH true", "sets PATH"),
            ("env -S '/bin/true x'", "env -S"),
            ("cd /tmp && ./x", "changes directory"),
        ] {
            let err = as_root(cmd, &dir.0).expect_err(cmd);
            assert!(
                matches!(err, ScriptSecurityError::Unresolvable { .. })
                    && err.to_string().contains(why),
                "{cmd}: {err}"
            );
        }
        // Not as root: only the first program matters, as before.
        check_command(
            "/bin/true $(cat /etc/x)",
            &dir.0,
            &std::ffi::OsString::from("/bin"),
            false,
        )
        .expect("not root");
    }

    #[test]
    fn path_directories_searched_before_the_program_are_checked() {
        if !is_root() {
            eprintln!("skipped: needs root to make root-owned files");
            return;
        }
        let dir = TempDir::new("path");
        let (early, late) = (dir.0.join("early"), dir.0.join("late"));
        std::fs::create_dir(&early).expect("mkdir");
        std::fs::create_dir(&late).expect("mkdir");
        let prog = late.join("mycheck");
        std::fs::write(&prog, "#!/bin/sh\n").expect("write");
        chmod(&prog, 0o755);
        let search = |dirs: &[&Path]| {
            std::env::join_paths(dirs.iter().map(|d| d.to_path_buf())).expect("PATH")
        };
        let run = |s: &std::ffi::OsString| check_command("mycheck", &dir.0, s, true);
        run(&search(&[&early, &late])).expect("both root's");
        chmod(&early, 0o777);
        let err = run(&search(&[&early, &late])).unwrap_err();
        let text = err.to_string();
        let (path, _, _) = unsafe_path(err);
        assert_eq!(path, early, "{text}");
        assert!(
            text.contains(&format!(
                "is searched for `mycheck` before {} (PATH), as root",
                prog.display()
            )),
            "{text}"
        );
        // After the program's directory: never searched for it.
        run(&search(&[&late, &early])).expect("searched after");
        // A missing directory that anyone could create.
        chmod(&early, 0o755);
        let open = dir.0.join("open");
        std::fs::create_dir(&open).expect("mkdir");
        chmod(&open, 0o777);
        let (path, _, _) = unsafe_path(run(&search(&[&open.join("bin"), &late])).unwrap_err());
        assert_eq!(path, open);
        // PATH set by the command itself is the one searched.
        let cmd = format!("PATH={}:{} mycheck", open.display(), late.display());
        let (path, _, _) =
            unsafe_path(check_command(&cmd, &dir.0, &search(&[&late]), true).unwrap_err());
        assert_eq!(path, open);
    }

    /// Sets `path`'s access ACL (the kernel's xattr form) to the owner's, group's and others'
    /// mode bits plus a named `entries` (tag, perm, id) and a mask.
    fn set_acl(path: &Path, entries: &[(u16, u16, u32)], mask: u16) {
        let mut acl = 2u32.to_le_bytes().to_vec();
        let mut all = vec![(0x01, 7, u32::MAX), (0x04, 5, u32::MAX)];
        all.extend_from_slice(entries);
        all.push((0x10, mask, u32::MAX));
        all.push((0x20, 5, u32::MAX));
        all.sort_by_key(|&(tag, _, id)| (tag, id));
        for (tag, perm, id) in all {
            acl.extend_from_slice(&tag.to_le_bytes());
            acl.extend_from_slice(&perm.to_le_bytes());
            acl.extend_from_slice(&id.to_le_bytes());
        }
        let c = CString::new(path.as_os_str().as_bytes()).expect("path");
        // SAFETY: NUL-terminated names and a buffer valid for its length.
        let rc = unsafe {
            libc::lsetxattr(
                c.as_ptr(),
                c"system.posix_acl_access".as_ptr(),
                acl.as_ptr().cast(),
                acl.len(),
                0,
            )
        };
        assert_eq!(rc, 0, "setxattr: {}", io::Error::last_os_error());
    }

    #[test]
    fn acl_entries_that_let_others_write_are_unsafe() {
        if !is_root() {
            eprintln!("skipped: needs root to make root-owned files");
            return;
        }
        let dir = TempDir::new("acl");
        let script = dir.script("check.sh", 0o755);
        check_plugin_file(&script).expect("no ACL");
        // user nobody (65534) may write: unsafe, whatever the mode says.
        set_acl(&script, &[(0x02, 6, 65534)], 7);
        let err = check_plugin_file(&script).unwrap_err();
        let text = err.to_string();
        let hint = err.hint();
        let (path, why, _) = unsafe_path(err);
        assert_eq!(path, script);
        assert!(
            matches!(
                why,
                Unsafe::AclWritable {
                    group: false,
                    id: 65534,
                    ..
                }
            ),
            "{why:?}"
        );
        assert!(
            text.contains("has an ACL entry that lets user 65534"),
            "{text}"
        );
        assert_eq!(
            hint.as_deref(),
            Some(&*format!("setfacl -x u:65534 {}", script.display()))
        );
        // The mask takes write away: safe.
        set_acl(&script, &[(0x02, 6, 65534)], 5);
        check_plugin_file(&script).expect("masked");
        // Root's own entry is fine; a group's is not, on a directory on the way either.
        set_acl(&script, &[(0x02, 7, 0)], 7);
        check_plugin_file(&script).expect("root's entry");
        set_acl(&dir.0, &[(0x08, 7, 65534)], 7);
        let (path, why, _) = unsafe_path(check_plugin_file(&script).unwrap_err());
        assert_eq!(path, dir.0);
        assert!(
            matches!(why, Unsafe::AclWritable { group: true, .. }),
            "{why:?}"
        );
        let (path, _, _) = unsafe_path(as_root("./check.sh", &dir.0).unwrap_err());
        assert_eq!(path, dir.0, "the same for a command run as root");
    }

    #[test]
    fn acls_parse_as_the_kernel_writes_them() {
        let acl = |entries: &[(u16, u16, u32)]| {
            let mut b = 2u32.to_le_bytes().to_vec();
            for &(t, p, i) in entries {
                b.extend_from_slice(&t.to_le_bytes());
                b.extend_from_slice(&p.to_le_bytes());
                b.extend_from_slice(&i.to_le_bytes());
            }
            b
        };
        assert_eq!(acl_writer(&[]), None);
        let base = [
            (0x01, 7, u32::MAX),
            (0x04, 5, u32::MAX),
            (0x20, 5, u32::MAX),
        ];
        assert_eq!(acl_writer(&acl(&base)), None);
        let mut named = base.to_vec();
        named.push((0x02, 2, 1000));
        named.push((0x10, 7, u32::MAX));
        assert_eq!(
            acl_writer(&acl(&named)),
            Some(Unsafe::AclWritable {
                group: false,
                id: 1000,
                name: None
            })
        );
        named.pop();
        named.push((0x10, 5, u32::MAX));
        assert_eq!(acl_writer(&acl(&named)), None, "masked");
    }

    #[test]
    fn config_files_others_can_change_are_unsafe() {
        if !is_root() {
            eprintln!("skipped: needs root to make root-owned files");
            return;
        }
        let dir = TempDir::new("config");
        let file = dir.0.join("upkeep.kdl");
        std::fs::write(&file, "").expect("write");
        check_config_file(&file).expect("root's");
        chmod(&dir.0, 0o777);
        let text = check_config_file(&file).unwrap_err().to_string();
        assert!(
            text.starts_with(&format!(
                "{} is the config file, which the root daemon reads and reloads when it changes, but {} (on its path) is writable by everyone",
                file.display(),
                dir.0.display()
            )),
            "{text}"
        );
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
