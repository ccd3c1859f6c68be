//! KDL emission: the drafts written out as upkeep's config, checker names chosen, notes and
//! warnings added, and the result checked with `parse_str` so that a refusal is reported at the
//! keepalived line it came from.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use upkeep_config::parse::parse_str;

use crate::draft::{
    Importer, KCheck, KFile, KGroup, KInstance, KNotify, KProcess, KVip, TrackKind,
};
use crate::lexer::Pos;
use crate::Imported;

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

/// The upkeep check each keepalived tracker became.
#[derive(Default)]
struct CheckNames {
    /// (kind, keepalived name) → upkeep check name.
    names: Vec<(TrackKind, String, String)>,
}

impl CheckNames {
    pub(crate) fn get(&self, kind: TrackKind, name: &str) -> Option<&str> {
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
pub(crate) fn q(s: &str) -> String {
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
pub(crate) fn kdl_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_nanos() % 1_000_000 == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}us", d.as_micros())
    }
}

impl Importer {
    pub(crate) fn finish(mut self, file_name: &str) -> Imported {
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
        self.check_output(&kdl, &out, file_name, &instances);
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
        self.fifo_warnings();
        let g = &self.global;
        let any = g.router_id.is_some()
            || g.script_user.is_some()
            || g.garp_repeat.is_some()
            || g.garp_interval.is_some()
            || g.garp_refresh.is_some()
            || g.script_security.is_some()
            || !g.settings.is_empty()
            || !g.fifos.is_empty()
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
        for (line, pos) in &g.settings {
            out.setting(line.clone(), *pos);
        }
        if let Some((vrrp, path, pos)) = g.fifos.first() {
            out.setting(format!("notify-fifo {}", q(path)), *pos);
            if let Some((_, cmd, pos)) = g.fifo_scripts.iter().find(|s| s.0 == *vrrp) {
                out.setting(format!("notify-fifo-script {}", q(cmd)), *pos);
            }
        }
        for c in &g.comments {
            out.line(1, format!("// {c}"), None);
        }
        out.line(0, "}", None);
    }

    /// upkeep writes one FIFO: a second (keepalived's `notify_fifo` beside `vrrp_notify_fifo`)
    /// and a script for a FIFO not written are warned about.
    fn fifo_warnings(&mut self) {
        let chosen = self.global.fifos.first().map(|f| f.0);
        let extra: Vec<Pos> = self.global.fifos.iter().skip(1).map(|f| f.2).collect();
        for pos in extra {
            self.warn(pos, "upkeep writes one notify FIFO, the first named; this one is ignored (its lines would be the same)");
        }
        let orphans: Vec<Pos> = self
            .global
            .fifo_scripts
            .iter()
            .filter(|s| Some(s.0) != chosen)
            .map(|s| s.2)
            .collect();
        for pos in orphans {
            self.warn(
                pos,
                "a script for a notify FIFO that is not imported; ignored",
            );
        }
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
        match (&i.vmac, i.vmac_xmit_base) {
            (Some((_, pos)), _) if v6 => self.warn(
                *pos,
                "use_vmac on an IPv6 instance: upkeep's virtual MAC is IPv4 only for now; not imported",
            ),
            (Some((name, pos)), xmit) => {
                let mut line = "use-vmac".to_string();
                if let Some(n) = name {
                    line.push_str(&format!(" {}", q(n)));
                }
                if xmit.is_some() {
                    line.push_str(" xmit-base=#true");
                }
                out.setting(line, *pos);
            }
            (None, Some(pos)) => self.warn(pos, "vmac_xmit_base without use_vmac; ignored"),
            (None, None) => {}
        }
        // keepalived accepts by default, and not in strict mode (`vrrp_strict`, `strict_mode`).
        let strict = match i.strict {
            Some((on, pos)) => on.then_some(pos),
            None => self.global.strict,
        };
        match (i.accept, strict) {
            (Some((false, pos)), _) => out.setting("accept #false", pos),
            (None, Some(pos)) => out.setting("accept #false", pos),
            _ => {}
        }
        for (line, pos) in &i.settings {
            out.setting(line.clone(), *pos);
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
        for (p, pos, opts) in &i.peers {
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
            out.setting(format!("unicast-peer {}{opts}", q(p)), *pos);
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
            // Excluded ones may be of either family: they are not in the adverts.
            held.extend(addr);
            let dev = vip
                .dev
                .as_ref()
                .map_or(String::new(), |d| format!(" dev={}", q(d)));
            let advertise = if vip.excluded {
                " advertise=#false"
            } else {
                ""
            };
            let mut opts = String::new();
            if let Some(l) = &vip.label {
                let _ = write!(opts, " label={}", q(l));
            }
            if let Some(sc) = &vip.scope {
                match sc.parse::<u8>() {
                    Ok(n) => {
                        let _ = write!(opts, " scope={n}");
                    }
                    Err(_) => {
                        let _ = write!(opts, " scope={}", q(sc));
                    }
                }
            }
            if let Some(b) = &vip.brd {
                let _ = write!(opts, " brd={}", q(b));
            }
            if vip.dad {
                opts.push_str(" nodad=#false");
            }
            if let Some(p) = &vip.preferred_lft {
                match p.parse::<u32>() {
                    Ok(n) => {
                        let _ = write!(opts, " preferred-lft={n}");
                    }
                    Err(_) => {
                        let _ = write!(opts, " preferred-lft={}", q(p));
                    }
                }
            }
            out.setting(
                format!("vip {}{dev}{advertise}{opts}", q(&vip.addr)),
                vip.pos,
            );
        }
        // keepalived runs an instance without VIPs (version 2, IPv4); upkeep says so.
        if held.is_empty() && i.vips.is_empty() {
            out.setting("no-vip", i.no_vip.unwrap_or(i.pos));
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
            if let Some(v) = &r.src {
                let _ = write!(line, " src={}", q(v));
            }
            if let Some(v) = &r.scope {
                match v.parse::<u8>() {
                    Ok(n) => {
                        let _ = write!(line, " scope={n}");
                    }
                    Err(_) => {
                        let _ = write!(line, " scope={}", q(v));
                    }
                }
            }
            if let Some(v) = &r.kind {
                let _ = write!(line, " type={}", q(v));
            }
            if r.onlink {
                line.push_str(" onlink=#true");
            }
            if r.nexthops.is_empty() {
                out.setting(line, *pos);
                continue;
            }
            out.setting(format!("{line} {{"), *pos);
            for h in &r.nexthops {
                let mut hop = String::from("nexthop");
                if let Some(v) = &h.via {
                    let _ = write!(hop, " via={}", q(v));
                }
                if let Some(v) = &h.dev {
                    let _ = write!(hop, " dev={}", q(v));
                }
                if let Some(v) = h.weight {
                    let _ = write!(hop, " weight={v}");
                }
                out.line(2, hop, Some(*pos));
            }
            out.line(1, "}", Some(*pos));
        }
        for (r, pos) in &i.rules {
            let mut line = String::from("rule");
            for (key, v) in [
                ("from", &r.from),
                ("to", &r.to),
                ("iif", &r.iif),
                ("oif", &r.oif),
            ] {
                if let Some(v) = v {
                    let _ = write!(line, " {key}={}", q(v));
                }
            }
            if let Some((m, mask)) = r.fwmark {
                let _ = write!(line, " fwmark={m:#x}");
                if let Some(mask) = mask {
                    let _ = write!(line, " fwmask={mask:#x}");
                }
            }
            if let Some(v) = r.priority {
                let _ = write!(line, " priority={v}");
            }
            if let Some(v) = r.table {
                let _ = write!(line, " table={v}");
            }
            if let Some(v) = &r.kind {
                let _ = write!(line, " type={}", q(v));
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
    fn check_output(&mut self, kdl: &str, out: &Out, file_name: &str, instances: &[KInstance]) {
        let err = match parse_str(kdl, file_name) {
            Ok(cfg) => {
                // nopreempt with checks that lower the priority: upkeep hands over where
                // keepalived kept the VIPs on the sick master.
                for (name, note) in cfg.sick_master_notes() {
                    if let Some(i) = instances.iter().find(|i| i.name == name) {
                        self.warn(i.nopreempt.unwrap_or(i.pos), note);
                    }
                }
                return;
            }
            Err(err) => err,
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
        ("notify-master-rx-lower-pri", &n.rx_lower_pri),
    ] {
        if let Some((cmd, pos)) = cmd {
            out.setting(format!("{key} {}", q(cmd)), *pos);
        }
    }
}
