//! What a config needs from the host it runs on, beyond its own text: the users that scripts
//! and notify commands run as exist and can run them, and what runs as root passes script
//! security. `upkeep check` and the daemon (at start and on every reload, before anything
//! runs) both call [`check`], so a config that passes one passes the other.
//!
//! Scripts run as an unprivileged user unless the config says otherwise: a check's `user`,
//! else `script-user`, else `upkeep-script` if it exists, else `nobody`
//! ([`security::script_user`]). Root is allowed when named (`script-user "root"`), with a
//! warning. Problems come back as a [`ConfigError`] with the line and column of the setting
//! they are about, as the parser's do.

use std::path::Path;

use miette::{NamedSource, SourceSpan};

use crate::exec::security::{
    self, check_enterable_by, check_runnable_by, check_script_security_in, resolve_program,
    ScriptSecurityError, ScriptUserError, User,
};
use upkeep_config::model::{CheckKind, Config, Locations, Notify};
use upkeep_config::parse::{line_col, ConfigError, Problem};

/// Reads, parses and checks the config file at `path` against this host (what `upkeep check`
/// does). Ok: the config and the warnings to show.
pub fn check_file(path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
    let (cfg, source) = upkeep_config::load_with_source(path)?;
    let file = path.display().to_string();
    check_config_file(&cfg, &source, path)?;
    // Check scripts start in the config file's directory, as the daemon runs them.
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let warnings = check(&cfg, &source, &file, dir)?;
    // The daemon compares a pinned plugin's digest as it compiles it; `upkeep check` compiles
    // nothing, so it reads and hashes the file here.
    if let Some(e) = pin_mismatch(&cfg, &source, &file, dir) {
        return Err(e);
    }
    Ok((cfg, warnings))
}

/// Checks the config file itself when this process is root (the daemon reads it, and reloads
/// it when it changes, as root): it and every directory above it must be changeable only by
/// root, as a script run as root must (`script-security`, on by default). Refused with the
/// file's first line, as there is no setting to point at.
pub fn check_config_file(cfg: &Config, source: &str, path: &Path) -> Result<(), ConfigError> {
    if security::effective_uid() != 0 || !cfg.global.script_security {
        return Ok(());
    }
    let Err(e) = security::check_config_file(path) else {
        return Ok(());
    };
    let file = path.display().to_string();
    let help = e.hint().map(|h| {
        format!("{h}; or keep the config where only root can change it (`script-security #false` turns this off)")
    });
    Err(ConfigError::Invalid {
        file: file.clone(),
        source_code: NamedSource::new(&file, source.to_owned()),
        problems: vec![Problem {
            message: format!("config file refused: {e}"),
            label: "whoever can change this file can run anything as root".to_owned(),
            help,
            span: SourceSpan::from((0, 0)),
            line: 1,
            column: 1,
        }],
    })
}

/// Checks every script check and notify command of `cfg` (parsed from `source`, named
/// `file_name`; relative paths and check scripts start in `dir`): the user it runs as exists;
/// that user can reach and run the program, and enter `dir`; if it is root, script security
/// (when on). Returns the warnings (scripts that run as root), or every problem found.
pub fn check(
    cfg: &Config,
    source: &str,
    file_name: &str,
    dir: &Path,
) -> Result<Vec<String>, ConfigError> {
    let runs_commands = cfg
        .checks
        .iter()
        .any(|d| matches!(d.kind, CheckKind::Script { .. }))
        || cfg
            .instances
            .iter()
            .any(|i| !notify_commands(&i.notify).is_empty())
        || cfg
            .sync_groups
            .iter()
            .any(|g| !notify_commands(&g.notify).is_empty())
        || cfg.global.notify_fifo_script.is_some();
    if let Some(e) = nft_missing(cfg, source, file_name, || {
        matches!(resolve_program("nft", dir), Ok(Some(_)))
    }) {
        return Err(e);
    }
    if !runs_commands {
        return Ok(Vec::new());
    }
    let mut cx = HostCheck {
        source,
        at: &cfg.locations,
        problems: Vec::new(),
        root_runs: Vec::new(),
    };
    let global_user = cfg.global.script_user.as_deref();
    let global_user_at = cfg.locations.script_user;
    for def in &cfg.checks {
        let CheckKind::Script { command } = &def.kind else {
            continue;
        };
        let (configured, at) = match &def.user {
            Some(u) => (Some(u.as_str()), cx.at.setting(def.span, "user")),
            None => (global_user, global_user_at),
        };
        let what = format!("check `{}`", def.name);
        let script_at = cx.at.setting(def.span, "script").unwrap_or(def.span);
        cx.command(
            cfg,
            &what,
            command,
            configured,
            at.unwrap_or(def.span),
            script_at,
            Some(dir),
        );
    }
    let notifies = cfg
        .instances
        .iter()
        .map(|i| (&i.notify, i.span, format!("instance `{}`", i.name)))
        .chain(
            cfg.sync_groups
                .iter()
                .map(|g| (&g.notify, g.span, format!("sync-group `{}`", g.name))),
        );
    for (n, span, owner) in notifies {
        for (key, cmd) in notify_commands(n) {
            let what = format!("{key} of {owner}");
            let cmd_at = cx.at.setting(span, key).unwrap_or(span);
            // Notify commands start in the daemon's directory, not the config's.
            cx.command(
                cfg,
                &what,
                cmd,
                global_user,
                global_user_at.unwrap_or(cmd_at),
                cmd_at,
                None,
            );
        }
    }
    if let Some(cmd) = &cfg.global.notify_fifo_script {
        let cmd_at = cfg.locations.notify_fifo_script.unwrap_or((0, 0).into());
        cx.command(
            cfg,
            "notify-fifo-script",
            cmd,
            global_user,
            global_user_at.unwrap_or(cmd_at),
            cmd_at,
            None,
        );
    }
    if !cx.problems.is_empty() {
        let mut problems = cx.problems;
        problems.sort_by_key(|p| p.span.offset());
        return Err(ConfigError::Invalid {
            file: file_name.to_owned(),
            source_code: NamedSource::new(file_name, source.to_owned()),
            problems,
        });
    }
    let mut warnings = Vec::new();
    if !cx.root_runs.is_empty() {
        warnings.push(format!(
            "{} run as root ({}): a flaw in any of them is a root compromise; prefer an unprivileged `script-user` (`{}` is used when none is set)",
            cx.root_runs.join(", "),
            if global_user.is_some() {
                "`script-user \"root\"`"
            } else {
                "their `user`"
            },
            security::SCRIPT_USER,
        ));
    }
    Ok(warnings)
}

/// `accept #false` drops traffic to VIPs through nftables: the daemon runs `nft`, which
/// `nft_found` looks for. The problem points at the first instance that needs it.
/// A plugin whose file's SHA-256 is not the `sha256` its check or hook pins (the daemon would
/// refuse to load it): reported at the check or hook, with both digests. A file that cannot be
/// read is left to the daemon's own error.
fn pin_mismatch(cfg: &Config, source: &str, file_name: &str, dir: &Path) -> Option<ConfigError> {
    let checks = cfg.checks.iter().filter_map(|c| match &c.kind {
        CheckKind::Plugin {
            path,
            sha256: Some(want),
            ..
        } => Some(("check", &c.name, path, want, c.span)),
        _ => None,
    });
    let hooks = cfg.hooks.iter().filter_map(|h| {
        let want = h.sha256.as_ref()?;
        Some(("hook", &h.name, &h.path, want, h.span))
    });
    checks.chain(hooks).find_map(|(block, name, path, want, span)| {
        let bytes = std::fs::read(dir.join(path)).ok()?;
        let found = crate::checks::wasm::sha256_hex(&bytes);
        if found == *want {
            return None;
        }
        let (line, column) = line_col(source, span.offset());
        Some(ConfigError::Invalid {
            file: file_name.to_owned(),
            source_code: NamedSource::new(file_name, source.to_owned()),
            problems: vec![Problem {
                message: format!(
                    "{block} `{name}`: {} has SHA-256 {found}, not the {want} its `sha256` pins",
                    path.display()
                ),
                label: "another file than pinned".to_owned(),
                help: Some(
                    "put back the pinned build, or pin this one (`upkeep plugin inspect` prints its digest)"
                        .to_owned(),
                ),
                span: SourceSpan::from((span.offset(), 0)),
                line,
                column,
            }],
        })
    })
}

fn nft_missing(
    cfg: &Config,
    source: &str,
    file_name: &str,
    nft_found: impl FnOnce() -> bool,
) -> Option<ConfigError> {
    let inst = cfg.instances.iter().find(|i| i.drops_vip_traffic())?;
    if nft_found() {
        return None;
    }
    let (line, column) = line_col(source, inst.span.offset());
    Some(ConfigError::Invalid {
        file: file_name.to_owned(),
        source_code: NamedSource::new(file_name, source.to_owned()),
        problems: vec![Problem {
            message: format!(
                "instance `{}` has `accept #false`, which drops traffic to its VIPs with nftables, but there is no `nft` on this host",
                inst.name
            ),
            label: "needs nft".to_owned(),
            help: Some("install nftables (the `nft` binary), or accept traffic to the VIPs (`accept #true`, the default)".to_owned()),
            span: SourceSpan::from((inst.span.offset(), 0)),
            line,
            column,
        }],
    })
}

fn notify_commands(n: &Notify) -> Vec<(&'static str, &String)> {
    [
        ("notify-master", &n.master),
        ("notify-backup", &n.backup),
        ("notify-fault", &n.fault),
        ("notify-stop", &n.stop),
        ("notify", &n.any),
        ("notify-master-rx-lower-pri", &n.master_rx_lower_pri),
    ]
    .into_iter()
    .filter_map(|(k, c)| Some((k, c.as_ref()?)))
    .collect()
}

struct HostCheck<'a> {
    source: &'a str,
    /// Where the settings are written (kept by the parser).
    at: &'a Locations,
    problems: Vec<Problem>,
    /// What runs as root, for the warning.
    root_runs: Vec<String>,
}

impl HostCheck<'_> {
    fn report(&mut self, span: SourceSpan, message: String, label: &str, help: Option<String>) {
        let (line, column) = line_col(self.source, span.offset());
        self.problems.push(Problem {
            message,
            label: label.to_owned(),
            help,
            span,
            line,
            column,
        });
    }

    /// One command: `what` names it in messages; `user_at` is where its user was set (or the
    /// command's block), `cmd_at` the command's setting; `start_in` the directory it starts in.
    #[allow(clippy::too_many_arguments)]
    fn command(
        &mut self,
        cfg: &Config,
        what: &str,
        command: &str,
        configured: Option<&str>,
        user_at: SourceSpan,
        cmd_at: SourceSpan,
        start_in: Option<&Path>,
    ) {
        let user = match security::script_user(configured) {
            Ok(u) => u,
            Err(e) => return self.no_user(what, e, user_at),
        };
        let dir = start_in.unwrap_or(Path::new("."));
        if user.uid == 0 {
            self.root_runs.push(what.to_owned());
            if cfg.global.script_security {
                if let Err(e) = check_script_security_in(command, dir, true) {
                    self.refused(what, &user, e, cmd_at);
                }
            }
            return;
        }
        // Whether the command names a program that exists is script security's business (on
        // by default); what follows needs the program.
        match resolve_program(command, dir) {
            Err(e) if cfg.global.script_security => return self.refused(what, &user, e, cmd_at),
            Err(_) => return,
            Ok(_) => {}
        }
        if let Some(d) = start_in {
            if let Err(e) = check_enterable_by(d, &user) {
                return self.refused(what, &user, e, cmd_at);
            }
        }
        if let Err(e) = check_runnable_by(command, dir, &user) {
            self.refused(what, &user, e, cmd_at);
        }
    }

    fn no_user(&mut self, what: &str, e: ScriptUserError, at: SourceSpan) {
        let help = match &e {
            ScriptUserError::Missing(name) => format!(
                "create it (`useradd --system --no-create-home --shell /usr/sbin/nologin {name}`) or name an existing user"
            ),
            ScriptUserError::NoDefault => format!(
                "create `{}` (`useradd --system --no-create-home --shell /usr/sbin/nologin {}`) or set `global {{ script-user \"NAME\" }}`",
                security::SCRIPT_USER,
                security::SCRIPT_USER
            ),
            ScriptUserError::Lookup(..) => "check the system's user database (NSS)".to_owned(),
        };
        self.report(
            at,
            format!("{what}: cannot run scripts as anyone: {e}"),
            "no such user",
            Some(help),
        );
    }

    fn refused(&mut self, what: &str, user: &User, e: ScriptSecurityError, at: SourceSpan) {
        let label = match &e {
            ScriptSecurityError::NotRunnable { .. } => "not runnable by its user",
            ScriptSecurityError::Unsafe { .. } => "unsafe to run as root",
            _ => "refused",
        };
        let runs_as = if user.uid == 0 {
            String::new()
        } else {
            format!(" (runs as `{}`)", user.name)
        };
        self.report(at, format!("{what} refused{runs_as}: {e}"), label, e.hint());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use upkeep_config::parse::parse_str;

    fn is_root() -> bool {
        crate::exec::security::effective_uid() == 0
    }

    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!("upkeep-host-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).expect("mkdir");
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    fn run(cfg_text: &str, dir: &Path) -> Result<Vec<String>, Vec<(usize, usize, String)>> {
        let cfg = parse_str(cfg_text, "t.kdl").expect("parses");
        check(&cfg, cfg_text, "t.kdl", dir).map_err(|e| e.problems())
    }

    fn with_check(global: &str, check: &str) -> String {
        format!(
            "{global}check \"c\" {{\n    script \"{check}\"\n}}\ninstance \"web\" {{\n    interface \"eth0\"\n    vrid 51\n    vip \"192.0.2.100/24\"\n    track \"c\"\n}}\n"
        )
    }

    #[test]
    fn accept_false_needs_nft() {
        let src = "global { router-id \"h\" }\ninstance \"w\" {\n    interface \"eth0\"\n    vrid 5\n    vip \"192.0.2.5/24\"\n    accept #false\n}\n";
        let cfg = upkeep_config::parse_str(src, "t.kdl").unwrap();
        let Some(ConfigError::Invalid { problems, .. }) = nft_missing(&cfg, src, "t.kdl", || false)
        else {
            panic!("no problem without nft");
        };
        assert_eq!((problems[0].line, problems[0].column), (2, 1));
        assert!(problems[0].message.contains("no `nft`"), "{problems:?}");
        assert!(nft_missing(&cfg, src, "t.kdl", || true).is_none());
        // Accepting instances need nothing.
        let src = src.replace("    accept #false\n", "");
        let cfg = upkeep_config::parse_str(&src, "t.kdl").unwrap();
        assert!(nft_missing(&cfg, &src, "t.kdl", || false).is_none());
    }

    #[test]
    fn default_user_is_unprivileged_and_root_is_a_warning() {
        let default = security::script_user(None).expect("nobody exists here");
        assert_ne!(default.uid, 0);
        assert!([security::SCRIPT_USER, security::FALLBACK_SCRIPT_USER]
            .contains(&default.name.as_str()));
        let dir = Path::new("/");
        assert_eq!(run(&with_check("", "/bin/true"), dir), Ok(vec![]));
        let warnings = run(
            &with_check("global {\n    script-user \"root\"\n}\n", "/bin/true"),
            dir,
        )
        .expect("root is allowed");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("check `c` run as root"),
            "{warnings:?}"
        );
    }

    /// The daemon reloads its config as root when it changes: a file (or a directory above it)
    /// that someone else can change is refused by `upkeep check`, start and reload.
    #[test]
    fn a_config_file_others_can_change_is_refused() {
        if !is_root() {
            eprintln!("skipped: needs root to make root-owned files");
            return;
        }
        let tmp = TempDir::new("config");
        chmod(&tmp.0, 0o755);
        let file = tmp.0.join("upkeep.kdl");
        std::fs::write(&file, with_check("", "/bin/true")).expect("write");
        check_file(&file).expect("root's alone");
        chmod(&tmp.0, 0o777);
        let err = check_file(&file).expect_err("a world-writable directory");
        let problems = err.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].2.contains(&format!(
                "config file refused: {} is the config file, which the root daemon reads and reloads when it changes, but {} (on its path) is writable by everyone",
                file.display(),
                tmp.0.display()
            )),
            "{problems:?}"
        );
        // Turned off with script security.
        std::fs::write(
            &file,
            with_check("global {\n    script-security #false\n}\n", "/bin/true"),
        )
        .expect("write");
        check_file(&file).expect("script-security #false");
        chmod(&tmp.0, 0o755);
    }

    #[test]
    fn a_user_that_does_not_exist_is_refused_at_its_line() {
        let text = with_check(
            "global {\n    script-user \"no-such-user-upkeep\"\n}\n",
            "/bin/true",
        );
        let problems = run(&text, Path::new("/")).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        let (line, col, msg) = &problems[0];
        assert_eq!((*line, *col), (2, 5), "{msg}");
        assert!(
            msg.contains("check `c`") && msg.contains("user `no-such-user-upkeep` does not exist"),
            "{msg}"
        );
        // A check's own `user`, and a notify command (global's user).
        let text = "check \"c\" {\n    script \"/bin/true\"\n    user \"no-such-user-upkeep\"\n}\n\
                    instance \"web\" {\n    interface \"eth0\"\n    vrid 51\n    vip \"192.0.2.100/24\"\n    track \"c\"\n    notify-master \"/bin/true\"\n}\n";
        let problems = run(text, Path::new("/")).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!((problems[0].0, problems[0].1), (3, 5), "{problems:?}");
    }

    #[test]
    fn the_notify_fifo_script_is_checked_like_a_notify_command() {
        let text = "global {\n    notify-fifo \"/run/upkeep-test.fifo\"\n    notify-fifo-script \"/no/such/reader.sh\"\n}\ninstance \"web\" {\n    interface \"eth0\"\n    vrid 51\n    vip \"192.0.2.100/24\"\n}\n";
        let problems = run(text, Path::new("/")).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        let (line, col, msg) = &problems[0];
        assert_eq!((*line, *col), (3, 5), "{msg}");
        assert!(msg.contains("notify-fifo-script"), "{msg}");
    }

    #[test]
    fn a_script_its_user_cannot_reach_is_refused_with_the_path_and_why() {
        if !is_root() {
            eprintln!("skipped: needs root to make root-owned files");
            return;
        }
        let tmp = TempDir::new("reach");
        chmod(&tmp.0, 0o755);
        let private = tmp.0.join("private");
        std::fs::create_dir(&private).expect("mkdir");
        let script = private.join("check.sh");
        std::fs::write(&script, "#!/bin/sh\nexit 0\n").expect("write");
        chmod(&script, 0o755);
        let text = with_check(
            "global {\n    script-user \"nobody\"\n}\n",
            &script.display().to_string(),
        );
        chmod(&private, 0o755);
        assert_eq!(run(&text, &tmp.0), Ok(vec![]));

        // The directory is root's alone: nobody cannot search it.
        chmod(&private, 0o700);
        let problems = run(&text, &tmp.0).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        let (line, col, msg) = &problems[0];
        assert_eq!((*line, *col), (5, 5), "at the `script` line: {msg}");
        assert!(
            msg.contains("check `c` refused (runs as `nobody`)")
                && msg.contains(&format!(
                    "user `nobody` cannot run {}: {} (on its path) is mode 0700, owner root",
                    script.display(),
                    private.display()
                ))
                && msg.contains("`nobody` has no search (x) permission"),
            "{msg}"
        );
        chmod(&private, 0o755);

        // A script nobody may execute but not read: the shell could not read it.
        chmod(&script, 0o711);
        let msg = run(&text, &tmp.0).unwrap_err().remove(0).2;
        assert!(
            msg.contains("is mode 0711") && msg.contains("read and execute (rx)"),
            "{msg}"
        );
        // A binary needs only execute permission.
        let bin = private.join("true");
        std::fs::copy("/bin/true", &bin).expect("copy");
        chmod(&bin, 0o711);
        let text_bin = with_check(
            "global {\n    script-user \"nobody\"\n}\n",
            &bin.display().to_string(),
        );
        assert_eq!(run(&text_bin, &tmp.0), Ok(vec![]));
        chmod(&script, 0o755);

        // Check scripts start in the config's directory: nobody must be able to enter it.
        chmod(&tmp.0, 0o700);
        let msg = run(&text, &tmp.0).unwrap_err().remove(0).2;
        assert!(
            msg.contains(&format!(
                "user `nobody` cannot start in {}",
                tmp.0.display()
            )),
            "{msg}"
        );
        chmod(&tmp.0, 0o755);

        // Root may run it whatever the modes (and script security passes: all root's).
        chmod(&private, 0o700);
        let as_root = with_check(
            "global {\n    script-user \"root\"\n}\n",
            &script.display().to_string(),
        );
        assert_eq!(run(&as_root, &tmp.0).map(|w| w.len()), Ok(1));
    }
}
