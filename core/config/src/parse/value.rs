//! Values of settings: the duration and size parsers, and the validator's readers of typed
//! values (strings, numbers, durations, addresses, interface names) that report what is wrong.

use std::net::IpAddr;
use std::time::Duration;

use kdl::{KdlEntry, KdlNode, KdlValue};

use super::schema::example;
use super::validate::{positional, Validator};

/// Parses a duration: `"1s"`, `"100ms"`, `"2.5s"`, `"1m"`, `"1h"`, `"500us"`, or a bare number
/// of seconds (`"2"`, `"0.1"`). Exact decimal arithmetic, so `"0.1"` is exactly 100ms.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".to_owned());
    }
    if text.starts_with('-') {
        return Err(format!("`{text}` is negative"));
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let nanos_per_unit: u128 = match unit.trim() {
        "" | "s" | "sec" => 1_000_000_000,
        "ms" => 1_000_000,
        "us" | "µs" => 1_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        other => return Err(format!("`{text}` has an unknown unit `{other}`")),
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits_ok(whole) || !digits_ok(frac) {
        return Err(format!("`{text}` is not a number followed by a unit"));
    }
    let too_long = || format!("`{text}` is too long");
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_long())?
    };
    // More than 18 fraction digits can't matter at nanosecond resolution.
    let frac = &frac[..frac.len().min(18)];
    let frac_value: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| too_long())?
    };
    let scale = 10u128.pow(frac.len() as u32);
    let nanos = whole
        .checked_mul(nanos_per_unit)
        .and_then(|n| n.checked_add(frac_value * nanos_per_unit / scale))
        .ok_or_else(too_long)?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| too_long())?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

const DURATION_HELP: &str =
    "write a duration like \"1s\", \"100ms\", \"2.5s\", \"1m\", or a bare number of seconds";

/// Parses a size in bytes: `"16MiB"`, `"512KiB"`, `"1GiB"`, `"1048576"` or `"1048576B"`.
/// Units are powers of 1024; the decimal `KB`/`MB`/`GB` are refused rather than guessed at.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(format!("`{text}` is not a number followed by a unit"));
    }
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        u @ ("K" | "KB" | "k" | "kB" | "M" | "MB" | "G" | "GB") => {
            let binary = format!("{}iB", &u[..1].to_ascii_uppercase());
            return Err(format!(
                "`{text}`: write `{binary}` (sizes here are powers of 1024)"
            ));
        }
        other => return Err(format!("`{text}` has an unknown unit `{other}`")),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("`{text}` is too large"))
}

pub(super) const SIZE_HELP: &str =
    "write a size like \"16MiB\", \"512KiB\", \"1GiB\" or a number of bytes; at least 64KiB, at most 4GiB";

/// The value types settings expect, for messages.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ValueKind {
    String,
    Integer,
    Bool,
    Duration,
}

impl ValueKind {
    fn describe(self) -> &'static str {
        match self {
            Self::String => "a string",
            Self::Integer => "a whole number",
            Self::Bool => "#true or #false",
            Self::Duration => "a duration",
        }
    }
}

pub(super) fn kind_of(value: &KdlValue) -> &'static str {
    match value {
        KdlValue::String(_) => "a string",
        KdlValue::Integer(_) => "a whole number",
        KdlValue::Float(_) => "a decimal number",
        KdlValue::Bool(_) => "a boolean",
        KdlValue::Null => "#null",
    }
}

pub(super) fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// How a message names a value: `vrid`, or `via=` of `route`.
pub(super) fn what(key: &str, entry: &KdlEntry) -> String {
    match entry.name() {
        Some(prop) => format!("`{}=` of `{key}`", prop.value()),
        None => format!("`{key}`"),
    }
}

impl Validator<'_> {
    // ---- values ----

    pub(super) fn type_error(&mut self, entry: &KdlEntry, key: &str, expect: ValueKind) {
        let value = entry.value();
        let help = match (expect, value) {
            (ValueKind::Integer, KdlValue::String(s)) if s.trim().parse::<i128>().is_ok() => {
                let n = s.trim();
                match entry.name() {
                    Some(p) => format!("drop the quotes: `{}={n}`", p.value()),
                    None => format!("drop the quotes: `{key} {n}`"),
                }
            }
            (ValueKind::Integer, KdlValue::Float(_)) => "use a whole number".to_owned(),
            (ValueKind::String, KdlValue::Integer(_) | KdlValue::Float(_)) => {
                format!("put it in quotes, like `{}`", example(key))
            }
            (ValueKind::Bool, KdlValue::String(s))
                if matches!(s.as_str(), "true" | "false" | "yes" | "no") =>
            {
                "write `#true` or `#false`, without quotes".to_owned()
            }
            (ValueKind::Bool, KdlValue::Integer(_)) => "write `#true` or `#false`".to_owned(),
            (ValueKind::Duration, _) => DURATION_HELP.to_owned(),
            _ => format!("for example `{}`", example(key)),
        };
        self.report(
            entry.span(),
            format!(
                "{} must be {}, not {}",
                what(key, entry),
                expect.describe(),
                kind_of(value)
            ),
            format!("expected {}", expect.describe()),
            help,
        );
    }

    pub(super) fn string(&mut self, entry: &KdlEntry, key: &str) -> Option<String> {
        match entry.value() {
            KdlValue::String(s) => Some(s.clone()),
            _ => {
                self.type_error(entry, key, ValueKind::String);
                None
            }
        }
    }

    /// A string that names something (a check, a user, a script): must not be empty.
    pub(super) fn name_string(&mut self, entry: &KdlEntry, key: &str) -> Option<String> {
        let s = self.string(entry, key)?;
        if s.trim().is_empty() {
            self.report(
                entry.span(),
                format!("{} must not be empty", what(key, entry)),
                "empty",
                format!("for example `{}`", example(key)),
            );
            return None;
        }
        Some(s)
    }

    pub(super) fn integer(
        &mut self,
        entry: &KdlEntry,
        key: &str,
        lo: i128,
        hi: i128,
    ) -> Option<i128> {
        let KdlValue::Integer(n) = entry.value() else {
            self.type_error(entry, key, ValueKind::Integer);
            return None;
        };
        if !(lo..=hi).contains(n) {
            self.report(
                entry.span(),
                format!("{} must be from {lo} to {hi}, not {n}", what(key, entry)),
                "out of range",
                format!("for example `{}`", example(key)),
            );
            return None;
        }
        Some(*n)
    }

    pub(super) fn boolean(&mut self, entry: &KdlEntry, key: &str) -> Option<bool> {
        match entry.value() {
            KdlValue::Bool(b) => Some(*b),
            _ => {
                self.type_error(entry, key, ValueKind::Bool);
                None
            }
        }
    }

    fn duration(&mut self, entry: &KdlEntry, key: &str) -> Option<Duration> {
        let parsed = match entry.value() {
            KdlValue::String(s) => parse_duration(s),
            KdlValue::Integer(n) if *n < 0 => Err(format!("{n} is negative")),
            KdlValue::Integer(n) => u64::try_from(*n)
                .map(Duration::from_secs)
                .map_err(|_| format!("{n} is too long")),
            // `{}` on a float is its shortest exact decimal, which parses back exactly.
            KdlValue::Float(f) => parse_duration(&format!("{f}")),
            _ => {
                self.type_error(entry, key, ValueKind::Duration);
                return None;
            }
        };
        match parsed {
            Ok(d) => Some(d),
            Err(why) => {
                self.report(
                    entry.span(),
                    format!("{} is not a valid duration: {why}", what(key, entry)),
                    "bad duration",
                    DURATION_HELP,
                );
                None
            }
        }
    }

    pub(super) fn positive_duration(&mut self, entry: &KdlEntry, key: &str) -> Option<Duration> {
        let d = self.duration(entry, key)?;
        if d.is_zero() {
            self.report(
                entry.span(),
                format!("{} must be longer than 0", what(key, entry)),
                "zero",
                format!("for example `{}`", example(key)),
            );
            return None;
        }
        Some(d)
    }

    pub(super) fn ip(&mut self, entry: &KdlEntry, key: &str) -> Option<IpAddr> {
        let text = self.string(entry, key)?;
        match text.trim().parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                let help = if text.contains('/') {
                    "give a plain address here, without a /prefix".to_owned()
                } else {
                    format!("for example `{}`", example(key))
                };
                self.report(
                    entry.span(),
                    format!("{} is not an IP address: `{text}`", what(key, entry)),
                    "bad address",
                    help,
                );
                None
            }
        }
    }

    /// An address a host can own or talk to: not 0.0.0.0/::, not multicast.
    pub(super) fn unicast_ip(&mut self, entry: &KdlEntry, key: &str) -> Option<IpAddr> {
        let ip = self.ip(entry, key)?;
        self.usable(ip, entry, key).then_some(ip)
    }

    pub(super) fn usable(&mut self, ip: IpAddr, entry: &KdlEntry, key: &str) -> bool {
        let why = if ip.is_unspecified() {
            "the unspecified address"
        } else if ip.is_multicast() {
            "a multicast address"
        } else {
            return true;
        };
        self.report(
            entry.span(),
            format!("{} is {why}: {ip}", what(key, entry)),
            "not a unicast address",
            "use a unicast address of the link",
        );
        false
    }

    /// `address/len`, or a bare address meaning a single host (/32 or /128).
    pub(super) fn prefix(&mut self, entry: &KdlEntry, key: &str) -> Option<(IpAddr, u8)> {
        let text = self.string(entry, key)?;
        let text = text.trim();
        let (addr, len) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let Ok(ip) = addr.parse::<IpAddr>() else {
            self.report(
                entry.span(),
                format!("{} is not an IP address: `{addr}`", what(key, entry)),
                "bad address",
                format!("for example `{}`", example(key)),
            );
            return None;
        };
        let max: u8 = if ip.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max && !l.starts_with('+') => n,
                _ => {
                    self.report(
                        entry.span(),
                        format!(
                            "{} has a bad prefix length `/{l}`: {} allows 0 to {max}",
                            what(key, entry),
                            family(&ip)
                        ),
                        "bad prefix length",
                        format!("for example `{}`", example(key)),
                    );
                    return None;
                }
            },
        };
        Some((ip, len))
    }

    /// A network interface name as the kernel allows it (1 to 15 bytes, no `/` or spaces).
    pub(super) fn interface_name(&mut self, entry: &KdlEntry, key: &str) -> Option<String> {
        let name = self.string(entry, key)?;
        let bad = name.is_empty()
            || name.len() > 15
            || name == "."
            || name == ".."
            || name.contains(|c: char| c == '/' || c.is_whitespace() || c.is_control());
        if bad {
            self.report(
                entry.span(),
                format!(
                    "{} is not a valid interface name: `{name}`",
                    what(key, entry)
                ),
                "bad interface name",
                "interface names are 1 to 15 characters without `/` or spaces, like \"eth0\"",
            );
            return None;
        }
        Some(name)
    }

    // ---- one-value settings ----

    pub(super) fn one_string(&mut self, node: &KdlNode) -> Option<String> {
        let entry = self.one_arg(node, &[])?;
        self.name_string(entry, node.name().value())
    }

    pub(super) fn one_integer(&mut self, node: &KdlNode, lo: i128, hi: i128) -> Option<i128> {
        let entry = self.one_arg(node, &[])?;
        self.integer(entry, node.name().value(), lo, hi)
    }

    pub(super) fn one_duration(&mut self, node: &KdlNode) -> Option<Duration> {
        let entry = self.one_arg(node, &[])?;
        self.duration(entry, node.name().value())
    }

    pub(super) fn one_positive_duration(&mut self, node: &KdlNode) -> Option<Duration> {
        let entry = self.one_arg(node, &[])?;
        self.positive_duration(entry, node.name().value())
    }

    /// A flag: `preempt` alone means `#true`.
    pub(super) fn flag(&mut self, node: &KdlNode) -> Option<bool> {
        if positional(node).is_empty() {
            self.leaf(node, &[]);
            return Some(true);
        }
        let entry = self.one_arg(node, &[])?;
        self.boolean(entry, node.name().value())
    }
}
