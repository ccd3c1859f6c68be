//! The VIPs whose traffic is dropped (RFC 5798 6.4.3: a master that is not the address owner
//! and whose Accept_Mode is false MUST NOT accept packets addressed to them), as two sets in an
//! nftables table of upkeep's own, `inet upkeep`, which an input chain drops. keepalived does
//! the same with `vrrp_iptables` / `nftables` and a set per instance.
//!
//! A thin driver over the `nft` binary (`nft -f -`, one transaction per call): the Rust
//! nftables crates are either GPL (rustables), need libnftnl, or are early work, and the
//! daemon changes the sets only on takeovers and step-downs. Neighbour solicitations and
//! advertisements to an IPv6 VIP are still accepted, or the master could not answer for it.

use std::io::{self, Write};
use std::net::IpAddr;
use std::process::{Command, Stdio};

/// The table's name in the `inet` family.
pub const TABLE: &str = "upkeep";

/// The script that makes the table afresh: a leftover of a daemon that was killed is
/// replaced (the `table` line makes the `delete` succeed when there is none).
pub fn create_script() -> String {
    format!(
        "table inet {TABLE}\n\
         delete table inet {TABLE}\n\
         table inet {TABLE} {{\n\
         \tset drop4 {{ type ipv4_addr; }}\n\
         \tset drop6 {{ type ipv6_addr; }}\n\
         \tchain input {{\n\
         \t\ttype filter hook input priority filter; policy accept;\n\
         \t\tip6 daddr @drop6 icmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert }} accept\n\
         \t\tip daddr @drop4 drop\n\
         \t\tip6 daddr @drop6 drop\n\
         \t}}\n\
         }}\n"
    )
}

/// The script that adds `add` to the drop sets and takes `del` out of them.
pub fn update_script(add: &[IpAddr], del: &[IpAddr]) -> String {
    let mut s = String::new();
    for (verb, addrs) in [("add", add), ("delete", del)] {
        for (set, v6) in [("drop4", false), ("drop6", true)] {
            let list: Vec<String> = addrs
                .iter()
                .filter(|a| a.is_ipv6() == v6)
                .map(IpAddr::to_string)
                .collect();
            if !list.is_empty() {
                s.push_str(&format!(
                    "{verb} element inet {TABLE} {set} {{ {} }}\n",
                    list.join(", ")
                ));
            }
        }
    }
    s
}

/// The table, made by [`Firewall::create`]; [`Firewall::remove`] deletes it.
#[derive(Debug)]
pub struct Firewall {
    _made: (),
}

impl Firewall {
    pub fn create() -> io::Result<Firewall> {
        run(&create_script())?;
        Ok(Firewall { _made: () })
    }

    /// Adds and removes set elements in one transaction. The caller keeps track of what is
    /// in the sets: nft refuses to delete an element that is not there (and then nothing of
    /// the transaction is applied).
    pub fn update(&mut self, add: &[IpAddr], del: &[IpAddr]) -> io::Result<()> {
        let script = update_script(add, del);
        if script.is_empty() {
            return Ok(());
        }
        run(&script)
    }

    pub fn remove(self) -> io::Result<()> {
        delete_table()
    }
}

/// Deletes the table (also the VIP guard's, when the daemon died leaving it).
pub fn delete_table() -> io::Result<()> {
    run(&format!("delete table inet {TABLE}\n"))
}

/// Runs `nft -f -` with `script` on its standard input; an error carries nft's message.
fn run(script: &str) -> io::Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run nft: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if out.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "nft failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_go_to_the_set_of_their_family_in_one_script() {
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        let script = update_script(
            &[a("192.0.2.100"), a("2001:db8::100"), a("192.0.2.101")],
            &[a("198.51.100.1")],
        );
        assert_eq!(
            script,
            "add element inet upkeep drop4 { 192.0.2.100, 192.0.2.101 }\n\
             add element inet upkeep drop6 { 2001:db8::100 }\n\
             delete element inet upkeep drop4 { 198.51.100.1 }\n"
        );
        assert_eq!(update_script(&[], &[]), "");
    }

    #[test]
    fn the_table_is_made_afresh_and_lets_neighbour_discovery_through() {
        let s = create_script();
        let lines: Vec<&str> = s.lines().map(str::trim).collect();
        assert_eq!(
            &lines[..3],
            [
                "table inet upkeep",
                "delete table inet upkeep",
                "table inet upkeep {"
            ]
        );
        let accept = lines
            .iter()
            .position(|l| l.contains("nd-neighbor-solicit"))
            .unwrap();
        let drop6 = lines
            .iter()
            .position(|l| *l == "ip6 daddr @drop6 drop")
            .unwrap();
        assert!(accept < drop6, "{s}");
    }
}
