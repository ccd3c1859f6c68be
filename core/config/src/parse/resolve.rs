//! Rules across sections: unique names and routers, and `track`, `notify-hook` and `member`
//! references resolved to what they name.

use std::collections::HashMap;

use miette::SourceSpan;

use super::check::CheckDraft;
use super::instance::{GroupDraft, InstanceDraft};
use super::schema::example;
use super::suggest::closest;
use super::validate::Validator;
use crate::model::Track;

impl Validator<'_> {
    // ---- rules across sections ----

    pub(super) fn unique_names<'n>(
        &mut self,
        kind: &str,
        items: impl Iterator<Item = (&'n str, SourceSpan)>,
    ) {
        let mut first: HashMap<&str, SourceSpan> = HashMap::new();
        for (name, span) in items {
            if let Some(prev) = first.get(name) {
                let line = self.line_of(*prev);
                self.report(
                    span,
                    format!("there is already a {kind} named `{name}`"),
                    "duplicate name",
                    format!("{kind} names must be unique; the first `{name}` is on line {line}"),
                );
            } else {
                first.insert(name, span);
            }
        }
    }

    /// Two instances with the same vrid on one link and address family would be one router.
    pub(super) fn unique_routers(&mut self, instances: &[InstanceDraft]) {
        let mut first: HashMap<(&str, u8, bool), &str> = HashMap::new();
        for inst in instances.iter().filter(|i| i.identified) {
            let Some(v6) = inst
                .cfg
                .vips
                .iter()
                .find(|v| v.advertise)
                .map(|v| v.addr.is_ipv6())
            else {
                continue;
            };
            let key = (inst.cfg.interface.as_str(), inst.cfg.vrid, v6);
            if let Some(other) = first.get(&key) {
                let fam = if v6 { "IPv6" } else { "IPv4" };
                self.report(
                    inst.vrid_at.unwrap_or(inst.name_span),
                    format!(
                        "vrid {} on `{}` ({fam}) is already used by instance `{other}`",
                        inst.cfg.vrid, inst.cfg.interface
                    ),
                    "vrid in use",
                    "each virtual router on a link needs its own vrid per address family: pick another",
                );
            } else {
                first.insert(key, &inst.cfg.name);
            }
        }
    }

    pub(super) fn resolve_tracks(&mut self, instances: &[InstanceDraft], checks: &[CheckDraft]) {
        let names: Vec<&str> = checks.iter().map(|c| c.def.name.as_str()).collect();
        for inst in instances {
            self.resolve_track_refs(&inst.cfg.tracks, &inst.track_at, &names);
        }
    }

    /// Each `track` (written at `spans`) names one of the checks `names`.
    pub(super) fn resolve_track_refs(
        &mut self,
        tracks: &[Track],
        spans: &[SourceSpan],
        names: &[&str],
    ) {
        for (track, span) in tracks.iter().zip(spans) {
            if names.contains(&track.check.as_str()) {
                continue;
            }
            let help = match closest(&track.check, names.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None if names.is_empty() => {
                    format!("define it: `{}`", example("check"))
                }
                None => format!("defined checks: {}", names.join(", ")),
            };
            self.report(
                *span,
                format!("there is no check named `{}`", track.check),
                "unknown check",
                help,
            );
        }
    }

    pub(super) fn resolve_hooks(&mut self, names: &[String], spans: &[SourceSpan], hooks: &[&str]) {
        for (name, span) in names.iter().zip(spans) {
            if hooks.contains(&name.as_str()) {
                continue;
            }
            let help = match closest(name, hooks.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None if hooks.is_empty() => format!("define it: `{}`", example("hook")),
                None => format!("defined hooks: {}", hooks.join(", ")),
            };
            self.report(
                *span,
                format!("there is no hook named `{name}`"),
                "unknown hook",
                help,
            );
        }
    }

    pub(super) fn resolve_members(&mut self, groups: &[GroupDraft], instances: &[InstanceDraft]) {
        let names: Vec<&str> = instances.iter().map(|i| i.cfg.name.as_str()).collect();
        let mut owner: HashMap<&str, &str> = HashMap::new();
        for g in groups {
            for (member, span) in g.group.members.iter().zip(&g.member_at) {
                if !names.contains(&member.as_str()) {
                    let help = match closest(member, names.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => "members must be instances defined in this file".to_owned(),
                    };
                    self.report(
                        *span,
                        format!("there is no instance named `{member}`"),
                        "unknown instance",
                        help,
                    );
                } else if let Some(other) = owner.get(member.as_str()) {
                    self.report(
                        *span,
                        format!("instance `{member}` is already in sync-group `{other}`"),
                        "in two groups",
                        "an instance can belong to one sync-group only",
                    );
                } else {
                    owner.insert(member, &g.group.name);
                }
            }
        }
    }
}
