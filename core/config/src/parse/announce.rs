//! How an instance announces its VIPs and answers other masters: the gratuitous ARP / NA
//! settings and `lower-prio-no-advert` / `higher-prio-send-advert`, in `global` (the defaults)
//! and in an `instance` (over them). Resolved once the whole file is read.

use std::path::PathBuf;
use std::time::Duration;

use std::net::IpAddr;

use kdl::{KdlEntry, KdlNode};

use super::schema::example;
use super::validate::{head, Validator};
use crate::model::{Garp, Global};

/// The most announcements one setting asks for in a row.
const MAX_REPEAT: i128 = 100;

/// An instance's own announcement settings, as read; None: `global`'s.
#[derive(Debug, Default, Clone)]
pub(super) struct AnnounceOverrides {
    repeat: Option<u32>,
    interval: Option<Duration>,
    na_interval: Option<Duration>,
    /// Some(None): `"0s"`, no second round.
    delay: Option<Option<Duration>>,
    refresh: Option<Option<Duration>>,
    refresh_repeat: Option<u32>,
    lower_prio_repeat: Option<u32>,
    lower_prio_delay: Option<Option<Duration>>,
    lower_prio_no_advert: Option<bool>,
    higher_prio_send_advert: Option<bool>,
    notify_priority_changes: Option<bool>,
}

/// What the instance runs with: (announcements, lower-prio-no-advert, higher-prio-send-advert).
pub(super) struct Resolved {
    pub(super) garp: Garp,
    pub(super) lower_prio_no_advert: bool,
    pub(super) higher_prio_send_advert: bool,
    pub(super) notify_priority_changes: bool,
}

impl AnnounceOverrides {
    pub(super) fn resolve(&self, g: &Global) -> Resolved {
        let base = Garp::from_global(g);
        let repeat = self.repeat.map_or(base.repeat, |r| r.max(1));
        let delay = self.delay.unwrap_or(base.delay);
        // keepalived: the lower-priority settings default to the takeover's, the instance's
        // own included.
        let lower_prio_repeat = self
            .lower_prio_repeat
            .or(g.garp_lower_prio_repeat)
            .unwrap_or(repeat);
        let lower_prio_delay = match (self.lower_prio_delay, g.garp_lower_prio_delay) {
            (Some(d), _) => d,
            (None, Some(d)) => Some(d).filter(|d| !d.is_zero()),
            (None, None) => delay,
        };
        Resolved {
            garp: Garp {
                repeat,
                interval: self.interval.unwrap_or(base.interval),
                na_interval: self.na_interval.unwrap_or(base.na_interval),
                delay,
                refresh: self.refresh.unwrap_or(base.refresh),
                refresh_repeat: self.refresh_repeat.unwrap_or(base.refresh_repeat),
                lower_prio_repeat,
                lower_prio_delay,
            },
            lower_prio_no_advert: self.lower_prio_no_advert.unwrap_or(g.lower_prio_no_advert),
            higher_prio_send_advert: self
                .higher_prio_send_advert
                .unwrap_or(g.higher_prio_send_advert),
            notify_priority_changes: self
                .notify_priority_changes
                .unwrap_or(g.notify_priority_changes),
        }
    }
}

impl Validator<'_> {
    /// A multicast group for adverts: IPv4 multicast (224.0.0.0/4), or IPv6 link-local scope
    /// multicast (ffX2::/16), as keepalived requires.
    pub(super) fn multicast_group(&mut self, entry: &KdlEntry, key: &str) -> Option<IpAddr> {
        let text = self.string(entry, key)?;
        let Ok(ip) = text.trim().parse::<IpAddr>() else {
            self.report(
                entry.span(),
                format!("`{key}` is not an IP address: `{text}`"),
                "not an address",
                format!("for example `{}`", example(key)),
            );
            return None;
        };
        let ok = match ip {
            IpAddr::V4(v4) => v4.is_multicast(),
            IpAddr::V6(v6) => v6.segments()[0] & 0xff0f == 0xff02,
        };
        if !ok {
            self.report(
                entry.span(),
                format!("{ip} is not a multicast group adverts can use"),
                "not a multicast group",
                "an IPv4 multicast group (224.0.0.0/4, like 224.0.0.18) or a link-local IPv6 one (ffX2::/16, like ff02::12)",
            );
            return None;
        }
        Some(ip)
    }

    /// `notify-fifo "/abs/path"`.
    fn fifo_path(&mut self, node: &KdlNode) -> Option<PathBuf> {
        let entry = self.one_arg(node, &[])?;
        let path = PathBuf::from(self.string(entry, "notify-fifo")?);
        if !path.is_absolute() || path.file_name().is_none() {
            self.report(
                entry.span(),
                format!(
                    "`notify-fifo` must be an absolute file path, not `{}`",
                    path.display()
                ),
                "not an absolute path",
                format!("for example `{}`", example("notify-fifo")),
            );
            return None;
        }
        Some(path)
    }

    /// `notify-fifo-script` reads the FIFO: without `notify-fifo` it has nothing to read.
    pub(super) fn fifo_rules(&mut self, global: &KdlNode, g: &Global) {
        let script = global.children().and_then(|b| {
            b.nodes()
                .iter()
                .find(|n| n.name().value() == "notify-fifo-script")
        });
        if let (Some(node), None) = (script, &g.notify_fifo) {
            if global
                .children()
                .is_some_and(|b| b.nodes().iter().any(|n| n.name().value() == "notify-fifo"))
            {
                return; // a bad `notify-fifo` is reported on its own
            }
            self.report(
                head(node),
                "`notify-fifo-script` without `notify-fifo`",
                "no FIFO to read",
                format!(
                    "add the FIFO it reads (its path is appended to the command), like `{}`",
                    example("notify-fifo")
                ),
            );
        }
    }

    /// A duration where `"0s"` means "none".
    fn optional_delay(&mut self, node: &KdlNode) -> Option<Option<Duration>> {
        self.one_duration(node)
            .map(|d| Some(d).filter(|d| !d.is_zero()))
    }

    fn repeat(&mut self, node: &KdlNode, lo: i128) -> Option<u32> {
        self.one_integer(node, lo, MAX_REPEAT).map(|n| n as u32)
    }

    /// An announcement setting of an instance; false when `node` is not one.
    pub(super) fn announce_setting(&mut self, node: &KdlNode, o: &mut AnnounceOverrides) -> bool {
        match node.name().value() {
            "garp-repeat" => o.repeat = self.repeat(node, 1),
            "garp-interval" => o.interval = self.one_duration(node),
            "na-interval" => o.na_interval = self.one_duration(node),
            "garp-delay" => o.delay = self.optional_delay(node),
            "garp-refresh" => o.refresh = self.optional_delay(node),
            "garp-refresh-repeat" => o.refresh_repeat = self.repeat(node, 1),
            "garp-lower-prio-repeat" => o.lower_prio_repeat = self.repeat(node, 0),
            "garp-lower-prio-delay" => o.lower_prio_delay = self.optional_delay(node),
            "lower-prio-no-advert" => o.lower_prio_no_advert = self.flag(node),
            "higher-prio-send-advert" => o.higher_prio_send_advert = self.flag(node),
            "notify-priority-changes" => o.notify_priority_changes = self.flag(node),
            _ => return false,
        }
        true
    }

    /// The same settings in `global`, beyond the `garp-*` ones it always had; false when
    /// `node` is not one.
    pub(super) fn global_announce_setting(&mut self, node: &KdlNode, g: &mut Global) -> bool {
        match node.name().value() {
            "garp-delay" => {
                if let Some(d) = self.optional_delay(node) {
                    g.garp_delay = d;
                }
            }
            "garp-refresh-repeat" => {
                if let Some(n) = self.repeat(node, 1) {
                    g.garp_refresh_repeat = n;
                }
            }
            "garp-lower-prio-repeat" => g.garp_lower_prio_repeat = self.repeat(node, 0),
            "garp-lower-prio-delay" => g.garp_lower_prio_delay = self.one_duration(node),
            "na-interval" => {
                if let Some(d) = self.one_duration(node) {
                    g.na_interval = d;
                }
            }
            "lower-prio-no-advert" => {
                if let Some(b) = self.flag(node) {
                    g.lower_prio_no_advert = b;
                }
            }
            "higher-prio-send-advert" => {
                if let Some(b) = self.flag(node) {
                    g.higher_prio_send_advert = b;
                }
            }
            "notify-priority-changes" => {
                if let Some(b) = self.flag(node) {
                    g.notify_priority_changes = b;
                }
            }
            "notify-fifo" => g.notify_fifo = self.fifo_path(node),
            "notify-fifo-states-on-reload" => {
                if let Some(b) = self.flag(node) {
                    g.notify_fifo_states_on_reload = b;
                }
            }
            "multicast-group4" | "multicast-group6" => {
                let key = node.name().value();
                let Some(e) = self.one_arg(node, &[]) else {
                    return true;
                };
                match (self.multicast_group(e, key), key.ends_with('6')) {
                    (Some(IpAddr::V4(g4)), false) => g.multicast_group4 = Some(g4),
                    (Some(IpAddr::V6(g6)), true) => g.multicast_group6 = Some(g6),
                    (Some(other), _) => self.report(
                        e.span(),
                        format!(
                            "`{key}` is for {} groups, not {other}",
                            if key.ends_with('6') { "IPv6" } else { "IPv4" }
                        ),
                        "other address family",
                        "`multicast-group4` takes an IPv4 group, `multicast-group6` an IPv6 one",
                    ),
                    (None, _) => {}
                }
            }
            "startup-delay" => {
                if let Some(d) = self.one_duration(node) {
                    g.startup_delay = d;
                }
            }
            "notify-fifo-script" => g.notify_fifo_script = self.one_string(node),
            _ => return false,
        }
        true
    }
}
