//! Translation: keepalived statements, section by section, into the drafts of [`super::draft`],
//! with a warning for whatever upkeep does not take.

use std::net::IpAddr;
use std::time::Duration;

use upkeep_config::parse::parse_duration;

use crate::draft::{
    At, Importer, KCheck, KFile, KGroup, KInstance, KNextHop, KNotify, KProcess, KRoute, KRule,
    KTrack, KVip, TrackKind,
};
use crate::emit::{kdl_duration, q};
use crate::lexer::Pos;
use crate::stmt::Stmt;
use crate::ImportWarning;

impl Importer {
    pub(crate) fn warn(&mut self, pos: Pos, message: impl Into<String>) {
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
            k if k.contains("notify_fifo") => "LVS is out of scope, and so are its events",
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

    /// keepalived's `<BOOL>` argument, absent meaning on; None (warned) when it is not one.
    fn bool_arg(&mut self, stmt: &Stmt) -> Option<bool> {
        let word = match stmt.args() {
            [] => return Some(true),
            [w, ..] => w.to_ascii_lowercase(),
        };
        if ["on", "true", "yes"].contains(&word.as_str()) {
            Some(true)
        } else if ["off", "false", "no"].contains(&word.as_str()) {
            Some(false)
        } else {
            self.warn(
                stmt.pos,
                format!(
                    "`{}`: `{word}` is not on/off, true/false or yes/no; ignored",
                    stmt.keyword()
                ),
            );
            None
        }
    }

    /// A keepalived setting that is one upkeep setting, in upkeep's words; `global` for
    /// `global_defs` (whose keywords start with `vrrp_`). None when `stmt` is none of them;
    /// Some(None) when its value was bad (warned about).
    fn setting(&mut self, stmt: &Stmt, global: bool) -> Option<Option<String>> {
        let key = stmt.keyword();
        let key = match key.strip_prefix("vrrp_") {
            Some(k) if global => k,
            _ if global => return None,
            _ => key,
        };
        let seconds = |me: &mut Self, upkeep: &str| {
            me.one_seconds(stmt)
                .map(|(d, _)| format!("{upkeep} {}", q(&kdl_duration(d))))
        };
        let count =
            |me: &mut Self, upkeep: &str| me.one_int(stmt).map(|(n, _)| format!("{upkeep} {n}"));
        let word = |me: &mut Self, upkeep: &str| me.one(stmt).map(|w| format!("{upkeep} {}", q(w)));
        let flag = |me: &mut Self, upkeep: &str| {
            me.bool_arg(stmt)
                .map(|b| format!("{upkeep} {}", if b { "#true" } else { "#false" }))
        };
        Some(match key {
            "garp_master_delay" => seconds(self, "garp-delay"),
            "garp_master_repeat" if !global => count(self, "garp-repeat"),
            "garp_master_refresh" if !global => seconds(self, "garp-refresh"),
            "garp_master_refresh_repeat" => count(self, "garp-refresh-repeat"),
            "garp_lower_prio_delay" => seconds(self, "garp-lower-prio-delay"),
            "garp_lower_prio_repeat" => count(self, "garp-lower-prio-repeat"),
            "gna_interval" if global => seconds(self, "na-interval"),
            "lower_prio_no_advert" => flag(self, "lower-prio-no-advert"),
            "notify_priority_changes" => flag(self, "notify-priority-changes"),
            "unicast_ttl" if !global => count(self, "unicast-ttl"),
            "mcast_group4" if global => word(self, "multicast-group4"),
            "mcast_group6" if global => word(self, "multicast-group6"),
            "mcast_dst_ip" if !global => word(self, "multicast-group"),
            "higher_prio_send_advert" => flag(self, "higher-prio-send-advert"),
            // Process settings upkeep has as its own.
            "rt_priority" if global => count(self, "realtime-priority"),
            "no_swap" if global => Some("lock-memory #true".to_owned()),
            "startup_delay" if global => seconds(self, "startup-delay"),
            _ => return None,
        })
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

    pub(crate) fn top(&mut self, stmt: &Stmt) {
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
            "vrrp_strict" => {
                self.global.strict = Some(s.pos);
                self.global.comments.push(
                    "keepalived's vrrp_strict: instances that do not set `accept` are written `accept #false` (RFC 5798 Accept_Mode false: a master that is not the address owner drops traffic to its VIPs).".to_owned(),
                );
            }
            "vrrp_iptables" | "vrrp_ipsets" | "nftables" | "nftables_priority"
            | "nftables_ifindex" | "nftables_counters" => self.warn(
                s.pos,
                format!(
                    "`{}`: upkeep drops traffic to the VIPs of `accept #false` instances in an nftables table of its own, `inet upkeep`; the setting is not needed and ignored",
                    s.words.join(" ")
                ),
            ),
            "fifo_write_vrrp_states_on_reload" => self
                .global
                .settings
                .push(("notify-fifo-states-on-reload #true".to_owned(), s.pos)),
            // One announcement and no second round (keepalived's own definition of it).
            "vrrp_min_garp" => {
                if self.bool_arg(s) == Some(true) {
                    self.global.garp_repeat = Some((1, s.pos));
                    self.global
                        .settings
                        .push(("garp-delay \"0s\"".to_owned(), s.pos));
                }
            }
            "notify_fifo"
            | "vrrp_notify_fifo"
            | "notify_fifo_script"
            | "vrrp_notify_fifo_script" => {
                let vrrp = s.keyword().starts_with("vrrp_");
                let script = s.keyword().ends_with("_script");
                match s.args() {
                    [] => self.warn(s.pos, format!("`{}` needs a value; ignored", s.keyword())),
                    [what, user @ ..] => {
                        if !user.is_empty() {
                            self.warn(s.pos, format!("{}: user `{}` is not supported; upkeep runs the FIFO's script as `script-user` and makes the FIFO root's (mode 0600, given to `script-user`)", s.keyword(), user.join(" ")));
                        }
                        let list = if script {
                            &mut self.global.fifo_scripts
                        } else {
                            &mut self.global.fifos
                        };
                        list.push((vrrp, what.clone(), s.pos));
                    }
                }
            }
            _ => match self.setting(s, true) {
                Some(line) => self.global.settings.extend(line.map(|l| (l, s.pos))),
                None => self.ignored(s, "global_defs"),
            },
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
            "notify_master_rx_lower_pri" => &mut notify.rx_lower_pri,
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
            accept: None,
            strict: None,
            preempt_delay: None,
            auth: None,
            src: None,
            peers: Vec::new(),
            vips: Vec::new(),
            routes: Vec::new(),
            rules: Vec::new(),
            tracks: Vec::new(),
            notify: KNotify::default(),
            vmac: None,
            vmac_xmit_base: None,
            settings: Vec::new(),
            no_vip: None,
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
                "use_vmac" => i.vmac = Some((s.args().first().cloned(), s.pos)),
                "vmac_xmit_base" => i.vmac_xmit_base = Some(s.pos),
                "accept" => i.accept = Some((true, s.pos)),
                "no_accept" => i.accept = Some((false, s.pos)),
                "strict_mode" => {
                    // `strict_mode` alone, or with on/true/yes, is on.
                    const OFF: [&str; 3] = ["off", "false", "no"];
                    let on = s.args().first().is_none_or(|a| !OFF.contains(&a.as_str()));
                    i.strict = Some((on, s.pos));
                }
                "no_virtual_ipaddress" => i.no_vip = Some(s.pos),
                // keepalived's default; the keyword changes nothing.
                "preempt" => {}
                "preempt_delay" => i.preempt_delay = self.one_seconds(s),
                "authentication" => self.authentication(s, &mut i),
                "unicast_src_ip" => i.src = self.one_string(s),
                // upkeep's unicast-src is the advert source whether adverts are unicast or not.
                "mcast_src_ip" if i.src.is_none() => i.src = self.one_string(s),
                "unicast_peer" => {
                    for p in self.block(s) {
                        let opts = self.peer_options(p);
                        if let Some(addr) = p.words.first() {
                            i.peers.push((addr.clone(), p.pos, opts));
                        }
                    }
                }
                "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                    // Excluded: held and moved like the others, left out of adverts
                    // (`advertise=#false`).
                    let excluded = s.keyword() == "virtual_ipaddress_excluded";
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
                "virtual_rules" => {
                    for r in self.block(s) {
                        if let Some(rule) = self.rule(r) {
                            i.rules.push((rule, r.pos));
                        }
                    }
                }
                "track_script" | "track_file" | "track_process" | "track_interface" => {
                    let tracks = self.tracks(s);
                    i.tracks.extend(tracks);
                }
                _ => match self.setting(s, false) {
                    Some(line) => i.settings.extend(line.map(|l| (l, s.pos))),
                    None => {
                        if !self.notify(s, &mut i.notify) {
                            self.ignored(s, &place);
                        }
                    }
                },
            }
        }
        i
    }

    /// `ADDR [min_ttl N] [max_ttl N]` of a `unicast_peer` block: the options in upkeep's words.
    fn peer_options(&mut self, p: &Stmt) -> String {
        let mut out = String::new();
        let mut rest = p.args();
        if p.block.is_some() {
            self.warn(
                p.pos,
                "a block after a unicast_peer address is not supported; ignored",
            );
        }
        while let [opt, tail @ ..] = rest {
            let upkeep = match opt.as_str() {
                "min_ttl" => "min-ttl",
                "max_ttl" => "max-ttl",
                _ => {
                    self.warn(
                        p.pos,
                        format!(
                            "unicast_peer options `{}` are not supported; ignored",
                            rest.join(" ")
                        ),
                    );
                    break;
                }
            };
            match tail.first().map(|v| (v, v.parse::<u8>())) {
                Some((_, Ok(n))) => {
                    out.push_str(&format!(" {upkeep}={n}"));
                    rest = &tail[1..];
                }
                _ => {
                    self.warn(
                        p.pos,
                        format!("unicast_peer `{opt}` needs a TTL 0..255; ignored"),
                    );
                    break;
                }
            }
        }
        out
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

    /// `ADDR[/LEN] [dev IF] [label L] [scope S] [brd B] [no_dad] [preferred_lft N] ...`
    fn vip(&mut self, s: &Stmt) -> Option<KVip> {
        let (addr, opts) = s.words.split_first()?;
        let mut vip = KVip {
            addr: addr.clone(),
            dev: None,
            label: None,
            scope: None,
            brd: None,
            preferred_lft: None,
            dad: false,
            pos: s.pos,
            excluded: false,
        };
        let mut k = 0;
        while k < opts.len() {
            let opt = opts[k].as_str();
            let value = opts.get(k + 1);
            let slot = match opt {
                "dev" => &mut vip.dev,
                "label" => &mut vip.label,
                "scope" => &mut vip.scope,
                "brd" | "broadcast" => &mut vip.brd,
                "preferred_lft" => &mut vip.preferred_lft,
                // upkeep skips DAD on IPv6 VIPs unless told otherwise, as keepalived does.
                "no_dad" | "nodad" => {
                    k += 1;
                    continue;
                }
                "-nodad" => {
                    vip.dad = true;
                    k += 1;
                    continue;
                }
                "peer" | "valid_lft" | "track_group" => {
                    self.warn(
                        s.pos,
                        format!(
                            "vip {addr}: `{opt} {}` is not supported; ignored",
                            value.map_or("", String::as_str)
                        ),
                    );
                    k += 2;
                    continue;
                }
                _ => {
                    self.warn(
                        s.pos,
                        format!("vip {addr}: option `{opt}` is not supported; ignored"),
                    );
                    k += 1;
                    continue;
                }
            };
            match value {
                Some(v) => *slot = Some(v.clone()),
                None => self.warn(
                    s.pos,
                    format!("vip {addr}: `{opt}` without a value; ignored"),
                ),
            }
            k += 2;
        }
        if addr.contains(':') {
            // keepalived drops these from an IPv6 VIP (and the whole VIP for `brd`) with a log
            // line; the kernel takes none of them for IPv6.
            for (opt, v) in [
                ("label", vip.label.take()),
                ("scope", vip.scope.take()),
                ("brd", vip.brd.take()),
            ] {
                if v.is_some() {
                    self.warn(
                        s.pos,
                        format!("vip {addr}: `{opt}` applies to IPv4 addresses only; ignored"),
                    );
                }
            }
        }
        if s.block.is_some() {
            self.warn(s.pos, format!("vip {addr}: block ignored"));
        }
        Some(vip)
    }

    /// `[TYPE] [src S] [to] DEST/LEN [via|gw GW [or GW2 ...]] [dev IF] [metric N] [table T]
    /// [scope S] [nexthop via GW dev IF weight W ...] ...`
    fn route(&mut self, s: &Stmt) -> Option<KRoute> {
        const TYPES: [&str; 4] = ["blackhole", "unreachable", "prohibit", "throw"];
        let words = &s.words;
        let mut route = KRoute {
            dest: String::new(),
            via: None,
            dev: None,
            metric: None,
            table: None,
            src: None,
            scope: None,
            kind: None,
            onlink: false,
            nexthops: Vec::new(),
        };
        // After the first `nexthop`, `via`, `dev` and `weight` belong to the current path.
        let mut in_hop = false;
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
                "to" | "unicast" => {
                    k += 1;
                    continue;
                }
                "onlink" => {
                    // upkeep's is per route: a path's `onlink` applies to all of them.
                    route.onlink = true;
                    k += 1;
                    continue;
                }
                t if TYPES.contains(&t) && route.dest.is_empty() => {
                    route.kind = Some(t.to_owned());
                    k += 1;
                    continue;
                }
                "type" => route.kind = value,
                "nexthop" => {
                    route.nexthops.push(KNextHop::default());
                    in_hop = true;
                    k += 1;
                    continue;
                }
                "via" | "gw" if in_hop => {
                    if let Some(h) = route.nexthops.last_mut() {
                        h.via = value;
                    }
                }
                "dev" if in_hop => {
                    if let Some(h) = route.nexthops.last_mut() {
                        h.dev = value;
                    }
                }
                "weight" if in_hop => {
                    let w = number(word, &value);
                    if let Some(h) = route.nexthops.last_mut() {
                        h.weight = w;
                    }
                }
                "or" => {
                    // keepalived's older multipath: `via G1 or G2`, paths on the route's dev.
                    if route.nexthops.is_empty() {
                        route.nexthops.push(KNextHop {
                            via: route.via.take(),
                            ..KNextHop::default()
                        });
                    }
                    route.nexthops.push(KNextHop {
                        via: value,
                        ..KNextHop::default()
                    });
                }
                "via" | "gw" => route.via = value,
                "dev" => route.dev = value,
                "src" => route.src = value,
                "scope" => route.scope = value,
                "metric" | "preference" | "priority" => route.metric = number(word, &value),
                "table" => {
                    route.table = match value.as_deref().and_then(table_name) {
                        Some(t) => Some(t),
                        None => number(word, &value),
                    }
                }
                "proto" | "protocol" | "realms" | "mtu" | "advmss" | "tos" | "dsfield"
                | "no_track" | "track_group" | "weight" => {
                    let takes_value = word != "no_track";
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
                .iter()
                .chain(route.nexthops.iter().filter_map(|h| h.via.as_ref()))
                .chain(route.src.iter())
                .filter_map(|v| v.parse::<IpAddr>().ok())
                .any(|v| v.is_ipv6());
            route.dest = if v6 { "::/0" } else { "0.0.0.0/0" }.to_owned();
        }
        Some(route)
    }

    /// `[from A[/L]|all] [to A[/L]|all] [iif IF] [oif IF] [fwmark M[/MASK]]
    /// [priority|preference|order N] [table T] [blackhole|unreachable|prohibit] ...`
    fn rule(&mut self, s: &Stmt) -> Option<KRule> {
        let words = &s.words;
        let mut rule = KRule::default();
        let mut k = 0;
        while k < words.len() {
            let word = words[k].as_str();
            let value = words.get(k + 1).cloned();
            let number = |v: &Option<String>| v.as_deref().and_then(|v| v.parse::<i64>().ok());
            let mut bad = |what: &str| {
                self.warn(
                    s.pos,
                    format!(
                        "rule `{what} {}` is not valid; ignored",
                        value.as_deref().unwrap_or("")
                    ),
                )
            };
            match word {
                "blackhole" | "unreachable" | "prohibit" => {
                    rule.kind = Some(word.to_owned());
                    k += 1;
                    continue;
                }
                "from" | "to" => {
                    // `all` is what leaving it out means.
                    let v = value.filter(|v| v != "all");
                    if word == "from" {
                        rule.from = v;
                    } else {
                        rule.to = v;
                    }
                }
                "iif" | "dev" => rule.iif = value,
                "oif" => rule.oif = value,
                "fwmark" => match value.as_deref().and_then(fwmark) {
                    Some(m) => rule.fwmark = Some(m),
                    None => bad(word),
                },
                "priority" | "preference" | "pref" | "order" => match number(&value) {
                    Some(n) => rule.priority = Some(n),
                    None => bad(word),
                },
                "table" | "lookup" => {
                    match value.as_deref().and_then(table_name).or(number(&value)) {
                        Some(n) => rule.table = Some(n),
                        None => bad(word),
                    }
                }
                "no_track" | "l3mdev" => {
                    self.warn(
                        s.pos,
                        format!("rule option `{word}` is not supported; ignored"),
                    );
                    k += 1;
                    continue;
                }
                _ => {
                    self.warn(
                        s.pos,
                        format!(
                            "rule option `{word} {}` is not supported; ignored",
                            value.as_deref().unwrap_or("")
                        ),
                    );
                }
            }
            k += 2;
        }
        for (what, v) in [("from", &rule.from), ("to", &rule.to)] {
            let Some(v) = v else { continue };
            let addr = v.split('/').next().unwrap_or("");
            if addr.parse::<IpAddr>().is_err() {
                self.warn(
                    s.pos,
                    format!("rule `{what} {v}`: not an address; keepalived ignores the rule, and so does the import"),
                );
                return None;
            }
        }
        if rule.table.is_none() && rule.kind.is_none() {
            self.warn(
                s.pos,
                "rule without `table` (or a type); keepalived refuses it, and so does the import",
            );
            return None;
        }
        Some(rule)
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
                // upkeep's sync groups have no such command; keepalived runs it per instance.
                "notify_master_rx_lower_pri" => self.ignored(s, &place),
                // A member written outside `group { }` (keepalived's own sample does it).
                k if s.words.len() == 1 && s.block.is_none() && !k.starts_with("notify") => {
                    self.warn(
                        s.pos,
                        format!(
                            "`{k}` in {place}: not a keyword; members go in a `group {{ ... }}` \
                             block (keepalived ignores the line too); ignored"
                        ),
                    );
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
}

/// The tables `ip` knows by name (`/etc/iproute2/rt_tables`).
fn table_name(name: &str) -> Option<i64> {
    match name {
        "default" => Some(253),
        "main" => Some(254),
        "local" => Some(255),
        _ => None,
    }
}

/// `MARK[/MASK]`, each decimal or `0x` hexadecimal.
fn fwmark(text: &str) -> Option<(u32, Option<u32>)> {
    let num = |t: &str| match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => t.parse::<u32>().ok(),
    };
    match text.split_once('/') {
        Some((m, mask)) => Some((num(m)?, Some(num(mask)?))),
        None => Some((num(text)?, None)),
    }
}
