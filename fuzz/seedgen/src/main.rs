//! `upkeep-fuzz-seedgen REPO OUT [EXTRA...]`: writes seed inputs for the fuzz targets under
//! `OUT/<target>/`: real adverts built with upkeep's codec (in the framing `vrrp_decode`
//! reads), the KDL configs of the repository (`examples/**/*.kdl`, the `kdl` blocks of
//! `docs/*.md`, raw strings in the parser's tests), the KDL the importer writes, and keepalived
//! configs (the importer's test strings and `core/keepalived/tests/corpus/**/*.conf`, a few written here,
//! and any EXTRA files given).

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use upkeep_keepalived::import_str;
use upkeep_vrrp::packet::{encode_ipv4, Advert, Auth, Version, MCAST_V4, MCAST_V6};

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [repo, out, extra @ ..] = args.as_slice() else {
        eprintln!("usage: upkeep-fuzz-seedgen REPO OUT [KEEPALIVED_CONF...]");
        std::process::exit(2);
    };
    let mut seeds = Seeds { out: out.clone() };
    adverts(&mut seeds);
    let kdl = kdl_configs(repo);
    for (i, k) in kdl.iter().enumerate() {
        seeds.write("config_parse", &format!("repo-{i}"), k.as_bytes());
    }
    let mut keepalived = keepalived_configs(repo);
    for path in extra {
        match fs::read_to_string(path) {
            Ok(text) => keepalived.push(text),
            Err(e) => eprintln!("seedgen: skipping {}: {e}", path.display()),
        }
    }
    for (i, k) in keepalived.iter().enumerate() {
        seeds.write("keepalived_import", &format!("conf-{i}"), k.as_bytes());
        if let Ok(imported) = import_str(k, "seed.conf") {
            seeds.write(
                "config_parse",
                &format!("imported-{i}"),
                imported.kdl.as_bytes(),
            );
        }
    }
    println!(
        "seedgen: {} KDL configs, {} keepalived configs, adverts in {}",
        kdl.len(),
        keepalived.len(),
        out.display()
    );
}

struct Seeds {
    out: PathBuf,
}

impl Seeds {
    fn write(&mut self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.out.join(target);
        if let Err(e) = fs::create_dir_all(&dir) {
            panic!("create {}: {e}", dir.display());
        }
        let path = dir.join(format!("seed-{name}"));
        if let Err(e) = fs::write(&path, bytes) {
            panic!("write {}: {e}", path.display());
        }
    }
}

fn v4(d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, d))
}

fn v6(d: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, d))
}

/// `vrrp_decode` input: framing byte (0 VRRP over IPv4, 1 over IPv6, 2 a whole IPv4 packet),
/// TTL, message.
fn adverts(seeds: &mut Seeds) {
    let src4 = v4(1);
    let src6 = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));
    let cases: Vec<(&str, Advert)> = vec![
        (
            "v2-none",
            advert(Version::V2, 51, 100, 100, Auth::None, vec![v4(100)]),
        ),
        (
            "v2-pass",
            advert(
                Version::V2,
                47,
                90,
                300,
                Auth::pass_from_str("1234"),
                vec![v4(100), v4(101), v4(102)],
            ),
        ),
        (
            "v2-resign",
            advert(Version::V2, 1, 0, 100, Auth::None, vec![v4(100)]),
        ),
        (
            "v3-v4",
            advert(Version::V3, 51, 254, 10, Auth::None, vec![v4(100), v4(101)]),
        ),
        (
            "v3-v4-empty",
            advert(Version::V3, 7, 255, 4095, Auth::None, vec![]),
        ),
        (
            "v3-v6",
            advert(Version::V3, 51, 100, 100, Auth::None, vec![v6(0x100)]),
        ),
        (
            "v3-v6-two",
            advert(
                Version::V3,
                9,
                1,
                20,
                Auth::None,
                vec![v6(0x100), v6(0x101)],
            ),
        ),
    ];
    for (name, a) in cases {
        let v6_adv = a.addrs.iter().any(IpAddr::is_ipv6);
        let (src, dst, mode) = if v6_adv {
            (src6, IpAddr::V6(MCAST_V6), 1u8)
        } else {
            (src4, IpAddr::V4(MCAST_V4), 0u8)
        };
        let mut msg = Vec::new();
        if let Err(e) = a.encode(src, dst, &mut msg) {
            panic!("{name}: {e}");
        }
        for ttl in [255u8, 64] {
            let mut input = vec![mode, ttl];
            input.extend_from_slice(&msg);
            seeds.write("vrrp_decode", &format!("{name}-ttl{ttl}"), &input);
        }
        if let (IpAddr::V4(s), IpAddr::V4(d)) = (src, dst) {
            let mut input = vec![2u8, 255];
            encode_ipv4(s, d, 255, &msg, &mut input);
            seeds.write("vrrp_decode", &format!("{name}-ip"), &input);
        }
    }
}

fn advert(
    version: Version,
    vrid: u8,
    priority: u8,
    interval_cs: u16,
    auth: Auth,
    addrs: Vec<IpAddr>,
) -> Advert {
    Advert {
        version,
        vrid,
        priority,
        interval_cs,
        auth,
        addrs,
    }
}

fn kdl_configs(repo: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut files = Vec::new();
    walk(&repo.join("examples"), &mut files);
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "kdl"))
    {
        out.extend(fs::read_to_string(f).ok());
    }
    if let Ok(entries) = fs::read_dir(repo.join("docs")) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "md") {
                let text = fs::read_to_string(e.path()).unwrap_or_default();
                out.extend(fenced(&text, "kdl"));
            }
        }
    }
    // The config reader's tests, one file per topic.
    if let Ok(entries) = fs::read_dir(repo.join("core/config/src/parse/tests")) {
        for e in entries.flatten() {
            let text = fs::read_to_string(e.path()).unwrap_or_default();
            out.extend(raw_strings(&text).into_iter().filter(|s| s.contains('{')));
        }
    }
    out
}

fn keepalived_configs(repo: &Path) -> Vec<String> {
    let import_rs =
        fs::read_to_string(repo.join("core/keepalived/src/tests.rs")).unwrap_or_default();
    let mut out: Vec<String> = raw_strings(&import_rs)
        .into_iter()
        .filter(|s| s.contains('{'))
        .collect();
    if let Ok(entries) = fs::read_dir(repo.join("docs")) {
        for e in entries.flatten() {
            let text = fs::read_to_string(e.path()).unwrap_or_default();
            out.extend(
                fenced(&text, "")
                    .into_iter()
                    .filter(|b| b.contains("vrrp_instance")),
            );
        }
    }
    // The importer's own corpus of real-world configs, where there is one.
    let mut files = Vec::new();
    walk(&repo.join("core/keepalived/tests/corpus"), &mut files);
    files.sort();
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "conf"))
    {
        out.extend(fs::read_to_string(f).ok());
    }
    out.extend(HANDWRITTEN.iter().map(|s| s.to_string()));
    out
}

/// Code blocks opened with "```lang" (any language when `lang` is empty).
fn fenced(md: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in md.lines() {
        let t = line.trim_start();
        match (&mut cur, t.strip_prefix("```")) {
            (None, Some(l)) if lang.is_empty() || l.trim() == lang => cur = Some(String::new()),
            (Some(_), Some(_)) => out.extend(cur.take()),
            (Some(buf), None) => {
                buf.push_str(line);
                buf.push('\n');
            }
            _ => {}
        }
    }
    out
}

/// The contents of `r#"..."#` literals in Rust source.
fn raw_strings(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(start) = rest.find("r#\"") {
        let body = &rest[start + 3..];
        let Some(end) = body.find("\"#") else { break };
        out.push(body[..end].to_string());
        rest = &body[end + 2..];
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

const HANDWRITTEN: &[&str] = &[
    r#"global_defs {
    router_id h1
    vrrp_version 3
    enable_script_security
    script_user nobody
    vrrp_garp_master_delay 5
}
vrrp_script chk {
    script "/usr/local/bin/check.sh --port 80"
    interval 1
    timeout 2
    fall 2
    rise 3
    weight -20
}
vrrp_track_file flag {
    file "/run/upkeep/flag"
    weight 10
}
track_process nginx {
    process nginx
    quorum 1
    delay 2
}
vrrp_instance web {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 0.5
    preempt_delay 5
    unicast_src_ip 192.0.2.1
    unicast_peer {
        192.0.2.2
        192.0.2.3
    }
    virtual_ipaddress {
        192.0.2.100/24 dev eth0 label eth0:vip
        192.0.2.101
    }
    virtual_ipaddress_excluded {
        192.0.2.200/24
    }
    virtual_routes {
        198.51.100.0/24 via 192.0.2.254 dev eth0
        src 192.0.2.100 to 203.0.113.0/24 via 192.0.2.254
    }
    track_script {
        chk weight -30
    }
    track_interface {
        eth1 weight -10
    }
    track_file {
        flag
    }
    track_process {
        nginx
    }
    notify_master "/usr/local/bin/notify.sh master"
    notify_backup /usr/local/bin/notify.sh
    notify /usr/local/bin/notify-all.sh
}
vrrp_instance web6 {
    state BACKUP
    interface eth0
    virtual_router_id 52
    priority 100
    nopreempt
    virtual_ipaddress {
        2001:db8::100/64
    }
}
vrrp_sync_group g {
    group {
        web
        web6
    }
    notify_fault "/usr/local/bin/fault.sh"
}
"#,
    r#"! Configuration File for keepalived
global_defs {
   notification_email {
     acassen@firewall.loc
   }
   smtp_server 192.168.200.1
   router_id LVS_DEVEL
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass 11112222
    }
    virtual_ipaddress {
        192.168.200.16
        192.168.200.17
    }
}
virtual_server 192.168.200.100 443 {
    delay_loop 6
    lb_algo rr
    protocol TCP
    real_server 192.168.201.100 443 {
        weight 1
        SSL_GET {
            url {
              path /
            }
            connect_timeout 3
        }
    }
}
"#,
    "include conf.d/*.conf\nvrrp_instance x { interface eth0\n virtual_router_id 1\n priority 1\n virtual_ipaddress { 10.0.0.1 } }\n",
];
