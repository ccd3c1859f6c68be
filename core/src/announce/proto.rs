//! BIRD's control-socket line protocol, sans-IO: replies split into lines with their 4-digit
//! codes, and the include file upkeep owns.
//!
//! Each reply line is `DDDD-text` (more follows), `DDDD text` (the reply's last line) or
//! ` text` (more of the previous line's code). Codes 0xxx say a command worked, 1xxx and 2xxx
//! carry tables, 8xxx are run-time errors and 9xxx parse errors (BIRD's doc/reply_codes).

use std::fmt::Write as _;
use std::net::IpAddr;

/// One line of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line<'a> {
    /// `DDDD-text` or `DDDD text`; `last` for the space.
    Coded {
        code: u16,
        last: bool,
        text: &'a str,
    },
    /// ` text`: more of the previous code.
    More(&'a str),
}

/// Why a line is not BIRD's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a BIRD control-socket reply line: {0:?}")]
pub struct BadLine(pub String);

/// Splits one line (without its newline).
pub fn parse_line(line: &str) -> Result<Line<'_>, BadLine> {
    if let Some(rest) = line.strip_prefix(' ') {
        return Ok(Line::More(rest));
    }
    let bytes = line.as_bytes();
    if bytes.len() >= 5 && bytes[..4].iter().all(u8::is_ascii_digit) {
        let code: u16 = line[..4].parse().map_err(|_| BadLine(line.to_owned()))?;
        let last = match bytes[4] {
            b' ' => true,
            b'-' => false,
            _ => return Err(BadLine(line.to_owned())),
        };
        return Ok(Line::Coded {
            code,
            last,
            text: &line[5..],
        });
    }
    Err(BadLine(line.to_owned()))
}

/// A whole reply: the code of its last line and every line's text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// 8xxx and 9xxx: the command failed.
    pub fn is_error(&self) -> bool {
        self.code >= 8000
    }

    /// The text, lines joined by `; ` (for logs and errors).
    pub fn text(&self) -> String {
        self.lines
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Collects lines into replies.
#[derive(Debug, Default)]
pub struct ReplyReader {
    partial: Reply,
}

impl ReplyReader {
    /// Takes one line; the reply once its last line is in.
    pub fn push(&mut self, line: &str) -> Result<Option<Reply>, BadLine> {
        match parse_line(line)? {
            Line::More(text) => self.partial.lines.push(text.to_owned()),
            Line::Coded { code, last, text } => {
                self.partial.lines.push(text.to_owned());
                if last {
                    let mut reply = std::mem::take(&mut self.partial);
                    reply.code = code;
                    return Ok(Some(reply));
                }
            }
        }
        Ok(None)
    }
}

/// What `enable NAME` / `disable NAME` answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toggle {
    /// 0009 disabled, 0011 enabled: it changed.
    Changed,
    /// 0008 already disabled, 0010 already enabled.
    Already,
}

/// Reads a toggle's reply: BIRD answers `0011-NAME: enabled` then `0000 `, so the code that
/// says what happened is on the first line.
pub fn toggle_outcome(reply: &Reply, first_code: u16) -> Option<Toggle> {
    if reply.is_error() {
        return None;
    }
    match first_code {
        9 | 11 => Some(Toggle::Changed),
        8 | 10 => Some(Toggle::Already),
        _ => None,
    }
}

/// One announcement as the daemon is to carry it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Desired {
    /// The announcement's name in upkeep.
    pub name: String,
    /// Its protocol in BIRD ([`upkeep_config::protocol_name`]).
    pub protocol: String,
    pub prefix: IpAddr,
    pub prefix_len: u8,
    /// The MED the route carries to BGP (`bgp_med`).
    pub med: Option<u32>,
    /// `on-fault "demote"`: the MED of a second protocol, `PROTOCOL_demoted`, that carries
    /// the route while the checks fail.
    pub demote_med: Option<u32>,
    pub announced: bool,
    /// Announced through the demoted protocol (only with `demote_med`).
    pub demoted: bool,
}

impl Desired {
    /// Its protocols and whether each is to be enabled, enables first: make-before-break, the
    /// prefix is never missing between a demotion's two toggles.
    pub fn toggles(&self) -> Vec<(String, bool)> {
        let mut t = vec![(self.protocol.clone(), self.announced && !self.demoted)];
        if self.demote_med.is_some() {
            t.push((self.demoted_protocol(), self.announced && self.demoted));
        }
        t.sort_by_key(|(_, on)| !on);
        t
    }

    pub fn demoted_protocol(&self) -> String {
        format!("{}_demoted", self.protocol)
    }
}

/// The include file: one `protocol static` per announcement, in the state upkeep wants, so
/// that BIRD's own `configure` (or a restart) keeps it rather than reverting to a default.
pub fn render_include(speaker: &str, desired: &[Desired]) -> String {
    let mut out = format!(
        "# Written by upkeep for speaker \"{speaker}\"; do not edit (rewritten on every change).\n"
    );
    for d in desired {
        let channel = if d.prefix.is_ipv4() { "ipv4" } else { "ipv6" };
        let toggles = d.toggles();
        let on = |p: &str| toggles.iter().any(|(n, on)| n == p && *on);
        let mut write = |protocol: &str, med: Option<u32>| {
            let attrs = match med {
                Some(m) => format!(" {{ bgp_med = {m}; }}"),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "protocol static {protocol} {{\n    disabled {};\n    {channel};\n    route {}/{} blackhole{attrs};\n}}",
                if on(protocol) { "no" } else { "yes" },
                d.prefix,
                d.prefix_len
            );
        };
        write(&d.protocol, d.med);
        if d.demote_med.is_some() {
            write(&d.demoted_protocol(), d.demote_med);
        }
    }
    out
}

/// An announcement of `name` (its protocol named as the daemon names it) with no MED and no
/// demotion: what the tests start from.
#[cfg(test)]
pub(crate) fn desired(name: &str, prefix: &str, prefix_len: u8, announced: bool) -> Desired {
    Desired {
        name: name.into(),
        protocol: upkeep_config::protocol_name(name),
        prefix: prefix.parse().expect("a test prefix"),
        prefix_len,
        med: None,
        demote_med: None,
        announced,
        demoted: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply_of(text: &str) -> (Vec<Reply>, Vec<u16>) {
        let mut r = ReplyReader::default();
        let mut replies = Vec::new();
        let mut firsts = Vec::new();
        let mut first = None;
        for line in text.lines() {
            if let Ok(Line::Coded { code, .. }) = parse_line(line) {
                first.get_or_insert(code);
            }
            if let Some(reply) = r.push(line).unwrap() {
                replies.push(reply);
                firsts.push(first.take().unwrap());
            }
        }
        (replies, firsts)
    }

    #[test]
    fn lines_split_into_code_and_text() {
        assert_eq!(
            parse_line("0001 BIRD 2.0.12 ready."),
            Ok(Line::Coded {
                code: 1,
                last: true,
                text: "BIRD 2.0.12 ready."
            })
        );
        assert_eq!(
            parse_line("0011-upkeep_web: enabled"),
            Ok(Line::Coded {
                code: 11,
                last: false,
                text: "upkeep_web: enabled"
            })
        );
        assert_eq!(
            parse_line(" Hostname is vm"),
            Ok(Line::More("Hostname is vm"))
        );
        assert_eq!(
            parse_line("0000 "),
            Ok(Line::Coded {
                code: 0,
                last: true,
                text: ""
            })
        );
        for bad in ["", "0000", "00a0 x", "0000:x", "hello", "12345 x"] {
            assert!(parse_line(bad).is_err(), "{bad:?}");
        }
    }

    /// Replies as BIRD 2.0.12 wrote them on this machine.
    #[test]
    fn replies_end_at_their_last_line() {
        let (replies, firsts) = reply_of(
            "0011-upkeep_web: enabled\n0000 \n\
             0010-upkeep_web: already enabled\n0000 \n\
             1007-Table master4:\n 203.0.113.10/32      blackhole [upkeep_web 19:04:36.761] * (200)\n0000 \n\
             0002-Reading configuration from bird.conf\n0004 Reconfiguration in progress\n\
             9001 syntax error, unexpected CF_SYM_UNDEFINED, expecting CF_SYM_KNOWN or TEXT or ALL\n\
             1000-BIRD 2.0.12\n1011-Router ID is 192.0.2.1\n Hostname is vm\n0013 Daemon is up and running\n",
        );
        assert_eq!(replies.len(), 6);
        assert_eq!(
            toggle_outcome(&replies[0], firsts[0]),
            Some(Toggle::Changed)
        );
        assert_eq!(
            toggle_outcome(&replies[1], firsts[1]),
            Some(Toggle::Already)
        );
        assert!(replies[2].lines[1].starts_with("203.0.113.10/32"));
        assert_eq!(replies[3].code, 4);
        assert!(!replies[3].is_error());
        assert!(replies[4].is_error());
        assert_eq!(toggle_outcome(&replies[4], firsts[4]), None);
        assert_eq!(replies[5].code, 13);
        assert_eq!(
            replies[5].text(),
            "BIRD 2.0.12; Router ID is 192.0.2.1; Hostname is vm; Daemon is up and running"
        );
    }

    #[test]
    fn a_demoted_announcement_is_a_second_protocol_enabled_first() {
        let mut d = Desired {
            med: Some(10),
            demote_med: Some(1000),
            demoted: true,
            ..desired("web", "203.0.113.10", 32, true)
        };
        assert_eq!(
            d.toggles(),
            [
                ("upkeep_web_demoted".to_owned(), true),
                ("upkeep_web".to_owned(), false)
            ]
        );
        let text = render_include("edge", std::slice::from_ref(&d));
        assert!(
            text.contains("protocol static upkeep_web {\n    disabled yes;"),
            "{text}"
        );
        assert!(text.contains(
            "protocol static upkeep_web_demoted {\n    disabled no;\n    ipv4;\n    route 203.0.113.10/32 blackhole { bgp_med = 1000; };"
        ), "{text}");
        d.demoted = false;
        assert_eq!(d.toggles()[0], ("upkeep_web".to_owned(), true));
        d.announced = false;
        assert!(d.toggles().iter().all(|(_, on)| !on));
    }

    #[test]
    fn a_bad_line_is_an_error_not_a_reply() {
        let mut r = ReplyReader::default();
        assert!(r.push("0011-x").unwrap().is_none());
        assert!(r.push("garbage").is_err());
    }

    #[test]
    fn the_include_file_holds_each_protocol_in_its_wanted_state() {
        let d = |name: &str, prefix: &str, len, announced| Desired {
            med: (name == "web").then_some(20),
            ..desired(name, prefix, len, announced)
        };
        let text = render_include(
            "edge",
            &[
                d("web", "203.0.113.10", 32, true),
                d("v6-db", "2001:db8::10", 128, false),
            ],
        );
        assert!(text.contains(
            "protocol static upkeep_web {\n    disabled no;\n    ipv4;\n    route 203.0.113.10/32 blackhole { bgp_med = 20; };\n}"
        ), "{text}");
        assert!(text.contains(
            "protocol static upkeep_v6_db {\n    disabled yes;\n    ipv6;\n    route 2001:db8::10/128 blackhole;\n}"
        ), "{text}");
    }
}

/// BIRD's own parser on the include file (`bird -p`), where BIRD is installed.
#[cfg(test)]
mod with_bird {
    use super::*;

    #[test]
    fn bird_parses_the_include_file() {
        let bird = std::path::Path::new("/usr/sbin/bird");
        assert!(
            bird.exists(),
            "bird2 is not installed: run scripts/install-deps.sh (it installs bird2 and frr)"
        );
        let dir = std::env::temp_dir().join(format!("upkeep-bird-parse-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let d = |name: &str, prefix: &str, len, med: Option<u32>, announced| Desired {
            med,
            demote_med: med.map(|m| m + 1000),
            demoted: announced && med == Some(0),
            ..desired(name, prefix, len, announced)
        };
        let include = dir.join("upkeep.conf");
        std::fs::write(
            &include,
            render_include(
                "edge",
                &[
                    d("web", "203.0.113.10", 32, Some(20), true),
                    d("web-2", "203.0.113.11", 32, None, false),
                    d("v6", "2001:db8::10", 128, Some(0), true),
                ],
            ),
        )
        .unwrap();
        let conf = dir.join("bird.conf");
        std::fs::write(
            &conf,
            format!("router id 192.0.2.1;\ninclude \"{}\";\n", include.display()),
        )
        .unwrap();
        let out = std::process::Command::new(bird)
            .arg("-p")
            .arg("-c")
            .arg(&conf)
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            out.status.success(),
            "bird -p: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
