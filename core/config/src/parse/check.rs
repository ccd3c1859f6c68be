//! `check` and `hook` blocks, and the plugin settings they share (`config`, `allow`,
//! `memory-limit`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use kdl::{KdlEntry, KdlNode, KdlValue};
use miette::SourceSpan;

use super::schema::{applies_to, example, CAPABILITIES, CHECK_KEYS, CHECK_KINDS, HOOK_KEYS};
use super::suggest::closest;
use super::validate::{head, positional, prop, span_between, span_end, Seen, Validator};
use super::value::{kind_of, parse_size, ValueKind, SIZE_HELP};
use crate::model::{
    Capability, CheckDef, CheckKind, Grants, HookDef, ListenerProto, DEFAULT_MEMORY_LIMIT,
    MAX_MEMORY_LIMIT,
};

/// Smallest `memory-limit`: one WebAssembly page.
const MIN_MEMORY_LIMIT: u64 = 64 << 10;

pub(super) struct CheckDraft {
    pub(super) def: CheckDef,
    pub(super) name_span: SourceSpan,
}

pub(super) struct HookDraft {
    pub(super) def: HookDef,
    pub(super) name_span: SourceSpan,
    /// `timeout` was given; otherwise it is `global`'s `notify-timeout`, known only at the end.
    pub(super) timeout_set: bool,
}

/// The settings shared by plugin checks and hooks, as read.
struct PluginSettings {
    grants: Grants,
    memory_limit: u64,
    /// `sha256`: the digest the file must have, lower-case hex.
    sha256: Option<String>,
    /// Capabilities already granted in this block, and where: a flag given twice is an error.
    granted: HashMap<&'static str, SourceSpan>,
    /// Where each `tcp-connect` address and `read-file` path was written.
    tcp_at: Vec<SourceSpan>,
    read_at: Vec<SourceSpan>,
}

impl Default for PluginSettings {
    fn default() -> Self {
        Self {
            grants: Grants::default(),
            memory_limit: DEFAULT_MEMORY_LIMIT,
            sha256: None,
            granted: HashMap::new(),
            tcp_at: Vec::new(),
            read_at: Vec::new(),
        }
    }
}

/// `a`, `a or b`, `a, b or c`.
fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// Stands in for a check whose kind is missing or invalid: the file is refused anyway, but
/// `track`s naming the check should not be reported as unknown too.
fn placeholder_check(name: String, span: SourceSpan) -> CheckDef {
    CheckDef {
        name,
        kind: placeholder_kind(),
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        fall: 1,
        rise: 1,
        weight: 0,
        user: None,
        init_fail: false,
        span,
    }
}

fn placeholder_kind() -> CheckKind {
    CheckKind::Script {
        command: String::new(),
    }
}

impl Validator<'_> {
    pub(super) fn check(&mut self, node: &KdlNode) -> Option<CheckDraft> {
        let (name, name_span, body) = self.named_block(node)?;
        let place = format!("check `{name}`");
        // The kind setting (`script`, `plugin`...) and where it is; `kind` if it is valid.
        let mut kind_at: Option<(&str, SourceSpan)> = None;
        let mut kind = None;
        // Every other setting met, for the per-kind rules after the loop.
        let mut settings: Vec<(&str, SourceSpan)> = Vec::new();
        let mut interval = Duration::from_secs(1);
        let mut timeout = None;
        let (mut fall, mut rise, mut weight, mut user) = (1, 1, None, None);
        let (mut init_fail, mut min_count) = (false, 1);
        let mut config: Vec<(String, String)> = Vec::new();
        let mut config_at: Vec<SourceSpan> = Vec::new();
        let mut plugin = PluginSettings::default();
        let mut seen = Seen::new();
        for child in body.nodes() {
            if !self.first_time(&mut seen, child, CHECK_KEYS, &place) {
                continue;
            }
            let key = child.name().value();
            if let Some(&k) = CHECK_KINDS.iter().find(|k| **k == key) {
                if let Some((first, at)) = kind_at {
                    let line = self.line_of(at);
                    self.report(
                        head(child),
                        format!("{place} has both `{first}` (line {line}) and `{k}`"),
                        "second kind",
                        "a check looks at one thing: make another check for this and track both",
                    );
                    continue;
                }
                kind_at = Some((k, head(child)));
                kind = self.check_kind(child);
                continue;
            }
            if CHECK_KEYS.contains(&key) {
                settings.push((key, head(child)));
            }
            match key {
                "interval" => {
                    if let Some(d) = self.one_positive_duration(child) {
                        interval = d;
                    }
                }
                "timeout" => timeout = self.one_positive_duration(child),
                "fall" => fall = self.one_integer(child, 1, 65535).map_or(fall, |n| n as u32),
                "rise" => rise = self.one_integer(child, 1, 65535).map_or(rise, |n| n as u32),
                "weight" => {
                    weight = self
                        .one_integer(child, -253, 253)
                        .map(|n| n as i32)
                        .or(weight)
                }
                "user" => user = self.one_string(child),
                "init-fail" => init_fail = self.flag(child).unwrap_or(init_fail),
                "min-count" => {
                    min_count = self
                        .one_integer(child, 1, 65535)
                        .map_or(min_count, |n| n as u32)
                }
                "config" => self.plugin_config(child, &mut config, &mut config_at),
                "allow" => self.allow(child, &mut plugin),
                "memory-limit" => {
                    if let Some(n) = self.memory_limit(child) {
                        plugin.memory_limit = n;
                    }
                }
                "sha256" => plugin.sha256 = self.sha256(child),
                _ => self.unknown(child, CHECK_KEYS, &place),
            }
        }
        let Some((kind_key, _)) = kind_at else {
            self.report(
                head(node),
                format!(
                    "check `{name}` has no `script`, `plugin`, `interface`, `file`, `process` or `listener`"
                ),
                "nothing to check",
                format!(
                    "say what the check looks at, like `{}` or `{}`",
                    example("script"),
                    example("process")
                ),
            );
            return Some(CheckDraft {
                def: placeholder_check(name, node.span()),
                name_span,
            });
        };
        // Report each setting that does not fit the kind once, at its first use.
        let mut reported: Vec<&str> = Vec::new();
        for (key, span) in settings {
            let kinds_ok = applies_to(key);
            if kinds_ok.contains(&kind_key) || reported.contains(&key) {
                continue;
            }
            reported.push(key);
            let list: Vec<String> = kinds_ok.iter().map(|k| format!("`{k}`")).collect();
            self.report(
                span,
                format!("`{key}` does not apply to a `{kind_key}` check"),
                format!("not for `{kind_key}` checks"),
                format!(
                    "`{key}` is a setting of {} checks; remove it",
                    join_or(&list)
                ),
            );
        }
        let kind = kind.map(|k| match k {
            CheckKind::Plugin { path, .. } => CheckKind::Plugin {
                path,
                config,
                grants: plugin.grants,
                memory_limit: plugin.memory_limit,
                sha256: plugin.sha256,
            },
            CheckKind::Process { name, full, .. } => CheckKind::Process {
                name,
                full,
                min_count,
            },
            other => other,
        });
        // A file's value is multiplied by the weight, so 1 is the neutral default there.
        let default_weight = if kind_key == "file" { 1 } else { 0 };
        Some(CheckDraft {
            def: CheckDef {
                kind: kind.unwrap_or_else(placeholder_kind),
                name,
                interval,
                // A check that may run as long as its interval never overlaps itself.
                timeout: timeout.unwrap_or(interval),
                fall,
                rise,
                weight: weight.unwrap_or(default_weight),
                user,
                init_fail,
                span: node.span(),
            },
            name_span,
        })
    }

    /// The setting that says what a check looks at. Plugin settings and `min-count` are
    /// filled in by the caller.
    fn check_kind(&mut self, node: &KdlNode) -> Option<CheckKind> {
        let key = node.name().value();
        match key {
            "script" => Some(CheckKind::Script {
                command: self.one_string(node)?,
            }),
            "plugin" => Some(CheckKind::Plugin {
                sha256: None,
                path: PathBuf::from(self.one_string(node)?),
                config: Vec::new(),
                grants: Grants::default(),
                memory_limit: DEFAULT_MEMORY_LIMIT,
            }),
            "interface" => {
                let entry = self.one_arg(node, &[])?;
                Some(CheckKind::Interface {
                    name: self.interface_name(entry, key)?,
                })
            }
            "file" => Some(CheckKind::File {
                path: PathBuf::from(self.one_string(node)?),
            }),
            "process" => {
                let entry = self.one_arg(node, &["full"])?;
                let full = match prop(node, "full") {
                    Some(e) => self.boolean(e, key)?,
                    None => false,
                };
                Some(CheckKind::Process {
                    name: self.name_string(entry, key)?,
                    full,
                    min_count: 1,
                })
            }
            "listener" => self.listener(node),
            _ => None,
        }
    }

    /// `listener 80 proto="tcp" address="192.0.2.100"`: the port, and optionally the protocol
    /// (TCP by default) and the address the listener must serve.
    fn listener(&mut self, node: &KdlNode) -> Option<CheckKind> {
        let key = node.name().value();
        let entry = self.one_arg(node, &["proto", "address"])?;
        let port = self.integer(entry, key, 1, 65535)? as u16;
        let proto = match prop(node, "proto") {
            None => ListenerProto::Tcp,
            Some(e) => match self.string(e, key)?.as_str() {
                "tcp" => ListenerProto::Tcp,
                "udp" => ListenerProto::Udp,
                other => {
                    self.report(
                        e.span(),
                        format!("`proto=` of `listener` must be \"tcp\" or \"udp\", not `{other}`"),
                        "unknown protocol",
                        format!("for example `{}`", example(key)),
                    );
                    return None;
                }
            },
        };
        let address = match prop(node, "address") {
            None => None,
            Some(e) => Some(self.ip(e, key)?),
        };
        Some(CheckKind::Listener {
            port,
            proto,
            address,
        })
    }

    /// `config key="value" ...`: plain values become strings (`5` → "5", `#true` → "true").
    fn plugin_config(
        &mut self,
        node: &KdlNode,
        config: &mut Vec<(String, String)>,
        spans: &mut Vec<SourceSpan>,
    ) {
        if node.children().is_some() {
            self.report(
                span_between(span_end(head(node)), span_end(node.span())),
                "`config` takes no `{ ... }` block",
                "unexpected block",
                format!(
                    "write key=\"value\" pairs on one line, like `{}`",
                    example("config")
                ),
            );
        }
        for entry in positional(node) {
            self.report(
                entry.span(),
                "`config` takes key=\"value\" properties, not bare values",
                "no key",
                format!("name each value, like `{}`", example("config")),
            );
        }
        let props: Vec<&KdlEntry> = node
            .entries()
            .iter()
            .filter(|e| e.name().is_some())
            .collect();
        if props.is_empty() && positional(node).is_empty() {
            self.report(
                head(node),
                "`config` needs at least one key=\"value\"",
                "empty",
                format!("for example `{}`", example("config")),
            );
        }
        for entry in props {
            let Some(key) = entry.name().map(|n| n.value().to_owned()) else {
                continue;
            };
            let value = match entry.value() {
                KdlValue::String(s) => s.clone(),
                KdlValue::Integer(n) => n.to_string(),
                KdlValue::Float(f) => format!("{f}"),
                KdlValue::Bool(b) => b.to_string(),
                KdlValue::Null => {
                    self.type_error(entry, "config", ValueKind::String);
                    continue;
                }
            };
            if let Some(i) = config.iter().position(|(k, _)| *k == key) {
                let line = self.line_of(spans[i]);
                self.report(
                    entry.span(),
                    format!("`config` key `{key}` is given twice"),
                    "given again",
                    format!("keep one of them; the first is on line {line}"),
                );
                continue;
            }
            config.push((key, value));
            spans.push(entry.span());
        }
    }

    /// `allow "capability" [values...]`.
    fn allow(&mut self, node: &KdlNode, plugin: &mut PluginSettings) {
        self.leaf(node, &[]);
        let args = positional(node);
        let Some((first, rest)) = args.split_first() else {
            self.report(
                head(node),
                "`allow` needs a capability",
                "no capability",
                format!("known capabilities: {}", CAPABILITIES.join(", ")),
            );
            return;
        };
        let Some(cap) = self.name_string(first, "allow") else {
            return;
        };
        let Ok(capability) = cap.parse::<Capability>() else {
            let known = CAPABILITIES.join(", ");
            let help = match closest(&cap, CAPABILITIES.iter().copied()) {
                Some(s) => format!("did you mean `{s}`? known capabilities: {known}"),
                None => format!("known capabilities: {known}"),
            };
            self.report(
                first.span(),
                format!("unknown capability `{cap}` in `allow`"),
                "unknown capability",
                help,
            );
            return;
        };
        let cap = capability.name();
        match capability {
            Capability::TcpConnect | Capability::ReadFile => {
                if rest.is_empty() {
                    let like = if capability == Capability::TcpConnect {
                        "allow \"tcp-connect\" \"127.0.0.1:80\" \"[2001:db8::1]:443\""
                    } else {
                        "allow \"read-file\" \"/etc/haproxy/haproxy.cfg\""
                    };
                    self.report(
                        head(node),
                        format!("`allow \"{cap}\"` needs at least one value"),
                        "nothing allowed",
                        format!("list what it may reach, like `{like}`"),
                    );
                }
                for entry in rest {
                    if capability == Capability::TcpConnect {
                        self.tcp_grant(entry, plugin);
                    } else {
                        self.read_grant(entry, plugin);
                    }
                }
            }
            _ => {
                for entry in rest {
                    self.report(
                        entry.span(),
                        format!("`allow \"{cap}\"` takes no more values"),
                        "extra value",
                        format!("write `allow \"{cap}\"` alone"),
                    );
                }
                if let Some(first_at) = plugin.granted.get(cap) {
                    let line = self.line_of(*first_at);
                    self.report(
                        head(node),
                        format!("`allow \"{cap}\"` is given twice"),
                        "given again",
                        format!("keep one of them; the first is on line {line}"),
                    );
                    return;
                }
                plugin.granted.insert(cap, head(node));
                plugin.grants.grant(capability);
            }
        }
    }

    fn tcp_grant(&mut self, entry: &KdlEntry, plugin: &mut PluginSettings) {
        let Some(text) = self.string(entry, "allow") else {
            return;
        };
        let addr = match text.trim().parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                let help = match text.trim().parse::<IpAddr>() {
                    Ok(IpAddr::V4(ip)) => format!("add the port: \"{ip}:80\""),
                    Ok(IpAddr::V6(ip)) => format!("add the port, with the address in brackets: \"[{ip}]:443\""),
                    Err(_) => "write an IP address and a port, like \"127.0.0.1:80\" or \"[2001:db8::1]:443\"; names are not resolved".to_owned(),
                };
                self.report(
                    entry.span(),
                    format!("`allow \"tcp-connect\"`: `{text}` is not an address with a port"),
                    "bad address",
                    help,
                );
                return;
            }
        };
        if let Some(i) = plugin.grants.tcp_connect.iter().position(|a| *a == addr) {
            let line = self.line_of(plugin.tcp_at[i]);
            self.report(
                entry.span(),
                format!("{addr} is listed twice in `allow \"tcp-connect\"`"),
                "listed again",
                format!("remove one; the first is on line {line}"),
            );
            return;
        }
        plugin.grants.tcp_connect.push(addr);
        plugin.tcp_at.push(entry.span());
    }

    fn read_grant(&mut self, entry: &KdlEntry, plugin: &mut PluginSettings) {
        let Some(text) = self.name_string(entry, "allow") else {
            return;
        };
        let path = PathBuf::from(text);
        if let Some(i) = plugin.grants.read_file.iter().position(|p| *p == path) {
            let line = self.line_of(plugin.read_at[i]);
            self.report(
                entry.span(),
                format!(
                    "{} is listed twice in `allow \"read-file\"`",
                    path.display()
                ),
                "listed again",
                format!("remove one; the first is on line {line}"),
            );
            return;
        }
        plugin.grants.read_file.push(path);
        plugin.read_at.push(entry.span());
    }

    /// `sha256 "HEX"`: 64 hexadecimal digits (as `sha256sum` and `upkeep plugin inspect`
    /// print them), kept in lower case.
    fn sha256(&mut self, node: &KdlNode) -> Option<String> {
        let entry = self.one_arg(node, &[])?;
        let hex = self.string(entry, "sha256")?;
        if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            self.report(
                entry.span(),
                format!("`sha256` is not a SHA-256 digest: `{hex}`"),
                "not 64 hexadecimal digits",
                "write the digest `sha256sum FILE` or `upkeep plugin inspect FILE` prints",
            );
            return None;
        }
        Some(hex.to_ascii_lowercase())
    }

    /// `memory-limit "16MiB"` or a number of bytes.
    fn memory_limit(&mut self, node: &KdlNode) -> Option<u64> {
        let key = node.name().value();
        let entry = self.one_arg(node, &[])?;
        let parsed = match entry.value() {
            KdlValue::String(s) => parse_size(s),
            KdlValue::Integer(n) => u64::try_from(*n).map_err(|_| format!("{n} is negative")),
            _ => {
                self.report(
                    entry.span(),
                    format!("`{key}` must be a size, not {}", kind_of(entry.value())),
                    "expected a size",
                    SIZE_HELP,
                );
                return None;
            }
        };
        let why = match parsed {
            Ok(n) if n < MIN_MEMORY_LIMIT => {
                format!("{n} bytes is less than 64KiB, one WebAssembly page")
            }
            Ok(n) if n > MAX_MEMORY_LIMIT => format!("{n} bytes is more than 4GiB"),
            Ok(n) => return Some(n),
            Err(why) => why,
        };
        self.report(
            entry.span(),
            format!("`{key}` is not a valid size: {why}"),
            "bad size",
            SIZE_HELP,
        );
        None
    }

    pub(super) fn hook(&mut self, node: &KdlNode) -> Option<HookDraft> {
        let (name, name_span, body) = self.named_block(node)?;
        let place = format!("hook `{name}`");
        let mut path = None;
        let mut timeout = None;
        let mut plugin = PluginSettings::default();
        let mut seen = Seen::new();
        for child in body.nodes() {
            if !self.first_time(&mut seen, child, HOOK_KEYS, &place) {
                continue;
            }
            match child.name().value() {
                "plugin" => path = self.one_string(child).map(PathBuf::from),
                "allow" => self.allow(child, &mut plugin),
                "memory-limit" => {
                    if let Some(n) = self.memory_limit(child) {
                        plugin.memory_limit = n;
                    }
                }
                "sha256" => plugin.sha256 = self.sha256(child),
                "timeout" => timeout = self.one_positive_duration(child),
                _ => self.unknown(child, HOOK_KEYS, &place),
            }
        }
        if !seen.contains_key("plugin") {
            self.report(
                head(node),
                format!("hook `{name}` has no `plugin`"),
                "no plugin",
                format!(
                    "name the WASM component to call, like `{}`",
                    example("plugin")
                ),
            );
        }
        Some(HookDraft {
            def: HookDef {
                name,
                path: path.unwrap_or_default(),
                grants: plugin.grants,
                memory_limit: plugin.memory_limit,
                sha256: plugin.sha256,
                timeout: timeout.unwrap_or_default(),
                span: node.span(),
            },
            name_span,
            timeout_set: timeout.is_some(),
        })
    }
}
