//! `speaker` and `announce` blocks: the routing daemon upkeep drives, and the prefixes it
//! announces through it while their checks allow. References (`speaker`, `track`) are
//! resolved once the whole file is read.

use std::collections::HashMap;
use std::path::PathBuf;

use kdl::{KdlEntry, KdlNode};
use miette::SourceSpan;

use super::schema::{example, ANNOUNCE_KEYS, SPEAKER_KEYS};
use super::suggest::closest;
use super::validate::{head, Seen, Validator};
use crate::model::{
    protocol_name, AnnounceDef, OnFault, SpeakerDaemon, SpeakerDef, DEFAULT_BIRD_CONTROL,
    DEFAULT_SPEAKER_TIMEOUT,
};

pub(super) struct SpeakerDraft {
    pub(super) def: SpeakerDef,
    pub(super) name_span: SourceSpan,
}

pub(super) struct AnnounceDraft {
    pub(super) def: AnnounceDef,
    pub(super) name_span: SourceSpan,
    /// Where `speaker` names it (None: not given or not valid).
    pub(super) speaker_at: Option<SourceSpan>,
    pub(super) track_at: Vec<SourceSpan>,
    /// Where `instance` names the instance that gates it.
    pub(super) instance_at: Option<SourceSpan>,
}

impl Validator<'_> {
    /// One string out of `choices` (`daemon "bird"`).
    fn choice<T: Copy>(&mut self, node: &KdlNode, choices: &[(&str, T)]) -> Option<T> {
        let key = node.name().value();
        let entry = self.one_arg(node, &[])?;
        let text = self.string(entry, key)?;
        if let Some((_, v)) = choices.iter().find(|(n, _)| *n == text) {
            return Some(*v);
        }
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        let help = match closest(&text, names.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("one of: {}", names.join(", ")),
        };
        self.report(
            entry.span(),
            format!("`{key}` is not one of {}: `{text}`", names.join(", ")),
            "unknown value",
            help,
        );
        None
    }

    /// An absolute file path (`control "/run/bird/bird.ctl"`).
    fn abs_path(&mut self, node: &KdlNode) -> Option<PathBuf> {
        let key = node.name().value();
        let entry = self.one_arg(node, &[])?;
        let path = PathBuf::from(self.name_string(entry, key)?);
        if !path.is_absolute() || path.file_name().is_none() {
            self.report(
                entry.span(),
                format!(
                    "`{key}` must be an absolute file path, not `{}`",
                    path.display()
                ),
                "not an absolute path",
                format!("for example `{}`", example(key)),
            );
            return None;
        }
        Some(path)
    }

    pub(super) fn speaker(&mut self, node: &KdlNode) -> Option<SpeakerDraft> {
        let (name, name_span, body) = self.named_block(node)?;
        // It names a file (the default `include`) and appears in logs.
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            || name.starts_with('.')
        {
            self.report(
                name_span,
                format!("speaker name `{name}` may hold only letters, digits, `-`, `_` and `.`"),
                "bad name",
                "it names the default include file `/run/upkeep/bird-NAME.conf`: for example `edge`",
            );
            return None;
        }
        let place = format!("speaker `{name}`");
        let mut def = SpeakerDef {
            include: SpeakerDef::default_include(&name),
            name,
            daemon: SpeakerDaemon::Bird,
            control: PathBuf::from(DEFAULT_BIRD_CONTROL),
            timeout: DEFAULT_SPEAKER_TIMEOUT,
            span: node.span(),
        };
        let mut seen = Seen::new();
        for child in body.nodes() {
            if !self.first_time(&mut seen, child, SPEAKER_KEYS, &place) {
                continue;
            }
            match child.name().value() {
                "daemon" => {
                    if let Some(d) = self.choice(child, &SpeakerDaemon::ALL) {
                        def.daemon = d;
                    }
                }
                "control" => {
                    if let Some(p) = self.abs_path(child) {
                        def.control = p;
                    }
                }
                "include" => {
                    if let Some(p) = self.abs_path(child) {
                        def.include = p;
                    }
                }
                "timeout" => {
                    if let Some(d) = self.one_positive_duration(child) {
                        def.timeout = d;
                    }
                }
                _ => self.unknown(child, SPEAKER_KEYS, &place),
            }
        }
        if !seen.contains_key("daemon") {
            self.report(
                head(node),
                format!("{place} has no `daemon`"),
                "no daemon",
                format!(
                    "say which routing daemon it drives, like `{}`",
                    example("daemon")
                ),
            );
        }
        Some(SpeakerDraft { def, name_span })
    }

    /// `prefix "203.0.113.10/32"`: one host, as BGP anycast / failover announces it.
    fn host_prefix(&mut self, entry: &KdlEntry) -> Option<(std::net::IpAddr, u8)> {
        let (ip, len) = self.prefix(entry, "prefix")?;
        let host = if ip.is_ipv4() { 32 } else { 128 };
        if len != host {
            self.report(
                entry.span(),
                format!("`prefix` must be a single address (/{host}), not /{len}"),
                "not a host prefix",
                format!(
                    "announce the service address itself, like `{}`",
                    example("prefix")
                ),
            );
            return None;
        }
        if !self.usable(ip, entry, "prefix") {
            return None;
        }
        Some((ip, len))
    }

    pub(super) fn announce(&mut self, node: &KdlNode) -> Option<AnnounceDraft> {
        let (name, name_span, body) = self.named_block(node)?;
        let place = format!("announce `{name}`");
        let mut speaker = None;
        let mut speaker_at = None;
        let mut prefix = None;
        let mut tracks = Vec::new();
        let mut track_at = Vec::new();
        let mut demote: Option<(bool, SourceSpan)> = None;
        let mut demote_med: Option<(u32, SourceSpan)> = None;
        let mut instance: Option<(String, SourceSpan)> = None;
        let mut med = None;
        let mut seen = Seen::new();
        for child in body.nodes() {
            if !self.first_time(&mut seen, child, ANNOUNCE_KEYS, &place) {
                continue;
            }
            match child.name().value() {
                "speaker" => {
                    if let Some(e) = self.one_arg(child, &[]) {
                        if let Some(s) = self.name_string(e, "speaker") {
                            speaker = Some(s);
                            speaker_at = Some(e.span());
                        }
                    }
                }
                "prefix" => {
                    if let Some(e) = self.one_arg(child, &[]) {
                        prefix = self.host_prefix(e);
                    }
                }
                "track" => {
                    if let Some((track, span)) = self.track(child) {
                        if tracks
                            .iter()
                            .any(|t: &crate::model::Track| t.check == track.check)
                        {
                            self.report(
                                span,
                                format!("check `{}` is tracked twice", track.check),
                                "tracked again",
                                "keep one `track` per check",
                            );
                        } else {
                            tracks.push(track);
                            track_at.push(span);
                        }
                    }
                }
                "on-fault" => {
                    const CHOICES: [(&str, bool); 2] = [("withdraw", false), ("demote", true)];
                    if let Some(d) = self.choice(child, &CHOICES) {
                        demote = Some((d, head(child)));
                    }
                }
                "demote-med" => {
                    demote_med = self
                        .one_integer(child, 0, i128::from(u32::MAX))
                        .map(|n| (n as u32, head(child)));
                }
                "med" => {
                    med = self
                        .one_integer(child, 0, i128::from(u32::MAX))
                        .map(|n| n as u32)
                }
                "instance" => {
                    if let Some(e) = self.one_arg(child, &[]) {
                        if let Some(name) = self.name_string(e, "instance") {
                            instance = Some((name, e.span()));
                        }
                    }
                }
                _ => self.unknown(child, ANNOUNCE_KEYS, &place),
            }
        }
        for (key, what) in [
            ("speaker", "the speaker that carries it"),
            ("prefix", "the address it announces"),
        ] {
            if !seen.contains_key(key) {
                self.report(
                    head(node),
                    format!("{place} has no `{key}`"),
                    format!("no {key}"),
                    format!("name {what}, like `{}`", example(key)),
                );
            }
        }
        let on_fault = match (demote, demote_med) {
            (Some((true, _)), Some((med, _))) => OnFault::Demote { med },
            (Some((true, at)), None) => {
                if !seen.contains_key("demote-med") {
                    self.report(
                        at,
                        format!("{place} is demoted on a fault but has no `demote-med`"),
                        "no demote-med",
                        format!(
                            "give the worse MED it carries then, like `{}`",
                            example("demote-med")
                        ),
                    );
                }
                OnFault::Withdraw
            }
            (_, Some((_, at))) => {
                self.report(
                    at,
                    format!("`demote-med` without `on-fault \"demote\"` in {place}"),
                    "unused",
                    "add `on-fault \"demote\"`, or remove it",
                );
                OnFault::Withdraw
            }
            _ => OnFault::Withdraw,
        };
        let (prefix, prefix_len) = prefix.unwrap_or((std::net::Ipv4Addr::UNSPECIFIED.into(), 32));
        Some(AnnounceDraft {
            def: AnnounceDef {
                name,
                speaker: speaker.unwrap_or_default(),
                prefix,
                prefix_len,
                tracks,
                instance: instance.as_ref().map(|(n, _)| n.clone()),
                med,
                on_fault,
                span: node.span(),
            },
            name_span,
            speaker_at,
            track_at,
            instance_at: instance.map(|(_, s)| s),
        })
    }

    /// An announcement's `instance` is one of the file's.
    pub(super) fn resolve_announce_instances(
        &mut self,
        announces: &[AnnounceDraft],
        instances: &[&str],
    ) {
        for a in announces {
            let (Some(name), Some(span)) = (&a.def.instance, a.instance_at) else {
                continue;
            };
            if instances.contains(&name.as_str()) {
                continue;
            }
            let help = match closest(name, instances.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None if instances.is_empty() => format!("define it: `{}`", example("instance")),
                None => format!("defined instances: {}", instances.join(", ")),
            };
            self.report(
                span,
                format!("there is no instance named `{name}`"),
                "unknown instance",
                help,
            );
        }
    }

    /// Each announcement names a speaker that exists, and no two share a protocol name or a
    /// prefix on one speaker.
    pub(super) fn resolve_announces(
        &mut self,
        announces: &[AnnounceDraft],
        speakers: &[SpeakerDraft],
    ) {
        let names: Vec<&str> = speakers.iter().map(|s| s.def.name.as_str()).collect();
        let mut protocols: HashMap<String, &str> = HashMap::new();
        let mut prefixes: HashMap<(&str, std::net::IpAddr), &str> = HashMap::new();
        for a in announces {
            if let Some(span) = a.speaker_at {
                if !names.contains(&a.def.speaker.as_str()) {
                    let help = match closest(&a.def.speaker, names.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None if names.is_empty() => format!("define it: `{}`", example("speaker")),
                        None => format!("defined speakers: {}", names.join(", ")),
                    };
                    self.report(
                        span,
                        format!("there is no speaker named `{}`", a.def.speaker),
                        "unknown speaker",
                        help,
                    );
                } else if let Some(other) =
                    prefixes.insert((a.def.speaker.as_str(), a.def.prefix), &a.def.name)
                {
                    self.report(
                        span,
                        format!(
                            "announce `{other}` already announces {} through speaker `{}`",
                            a.def.prefix, a.def.speaker
                        ),
                        "prefix announced twice",
                        "announce each prefix once per speaker",
                    );
                }
            }
            let proto = protocol_name(&a.def.name);
            let demoted = matches!(a.def.on_fault, OnFault::Demote { .. })
                .then(|| a.def.demoted_protocol_name());
            let taken = std::iter::once(&proto)
                .chain(demoted.as_ref())
                .find_map(|p| protocols.get(p).copied());
            if let Some(other) = taken {
                self.report(
                    a.name_span,
                    format!(
                        "announce `{}` and `{other}` would both be the daemon's protocol `{proto}`",
                        a.def.name
                    ),
                    "same protocol name",
                    "names differing only in characters other than letters, digits and `_` map to one protocol: rename one",
                );
            } else {
                protocols.insert(proto, &a.def.name);
                if let Some(d) = demoted {
                    protocols.insert(d, &a.def.name);
                }
            }
        }
    }
}
