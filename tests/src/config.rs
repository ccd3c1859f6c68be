//! One description of a VRRP instance, rendered as upkeep KDL or as keepalived.conf, so that
//! interop tests configure both daemons from the same values.

use std::fmt::Write;
use std::time::Duration;

/// A VRRP instance as the tests configure it.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub priority: u8,
    pub advert_interval: Duration,
    /// 2 or 3.
    pub version: u8,
    pub preempt: bool,
    /// v2 simple password.
    pub auth_pass: Option<String>,
    pub unicast_src: Option<String>,
    pub unicast_peers: Vec<String>,
    /// `addr/prefix` strings.
    pub vips: Vec<String>,
    /// `(destination/prefix, via)` pairs.
    pub routes: Vec<(String, String)>,
    /// Extra KDL lines put verbatim inside the upkeep `instance` node.
    pub extra_kdl: Vec<String>,
    /// Extra lines put verbatim inside the keepalived `vrrp_instance` block.
    pub extra_keepalived: Vec<String>,
}

impl Instance {
    /// The tests' usual instance: `web`, VRID 51, VIP 192.0.2.100/24, adverts every 100 ms.
    pub fn web(priority: u8) -> Self {
        Instance::new("web", 51, priority)
            .interval_ms(100)
            .vip("192.0.2.100/24")
    }

    /// An instance on eth0, VRRPv3, 1 s adverts, preempting, no VIP yet.
    pub fn new(name: &str, vrid: u8, priority: u8) -> Self {
        Instance {
            name: name.into(),
            interface: "eth0".into(),
            vrid,
            priority,
            advert_interval: Duration::from_secs(1),
            version: 3,
            preempt: true,
            auth_pass: None,
            unicast_src: None,
            unicast_peers: Vec::new(),
            vips: Vec::new(),
            routes: Vec::new(),
            extra_kdl: Vec::new(),
            extra_keepalived: Vec::new(),
        }
    }

    pub fn vip(mut self, cidr: &str) -> Self {
        self.vips.push(cidr.into());
        self
    }

    pub fn interval(mut self, d: Duration) -> Self {
        self.advert_interval = d;
        self
    }

    pub fn interval_ms(self, ms: u64) -> Self {
        self.interval(Duration::from_millis(ms))
    }

    pub fn version(mut self, v: u8) -> Self {
        self.version = v;
        self
    }

    pub fn preempt(mut self, on: bool) -> Self {
        self.preempt = on;
        self
    }

    pub fn priority(mut self, p: u8) -> Self {
        self.priority = p;
        self
    }

    pub fn auth_pass(mut self, pass: &str) -> Self {
        self.auth_pass = Some(pass.into());
        self
    }

    pub fn unicast_src(mut self, addr: &str) -> Self {
        self.unicast_src = Some(addr.into());
        self
    }

    pub fn unicast_peer(mut self, addr: &str) -> Self {
        self.unicast_peers.push(addr.into());
        self
    }

    pub fn route(mut self, dest: &str, via: &str) -> Self {
        self.routes.push((dest.into(), via.into()));
        self
    }

    /// Master_Down_Interval as a backup of a master with this interval computes it
    /// (RFC 5798: 3 * interval + skew, skew = (256 - priority) * interval / 256).
    pub fn master_down_interval(&self) -> Duration {
        let skew = self.advert_interval * (256 - u32::from(self.priority)) / 256;
        self.advert_interval * 3 + skew
    }

    fn kdl(&self, out: &mut String) {
        let mut w = |line: String| {
            let _ = writeln!(out, "    {line}");
        };
        w(format!("interface {}", quote(&self.interface)));
        w(format!("vrid {}", self.vrid));
        w(format!("priority {}", self.priority));
        w(format!(
            "advert-interval {}",
            quote(&kdl_duration(self.advert_interval))
        ));
        w(format!("version {}", self.version));
        w(format!(
            "preempt {}",
            if self.preempt { "#true" } else { "#false" }
        ));
        if let Some(p) = &self.auth_pass {
            w(format!("auth-pass {}", quote(p)));
        }
        if let Some(s) = &self.unicast_src {
            w(format!("unicast-src {}", quote(s)));
        }
        for p in &self.unicast_peers {
            w(format!("unicast-peer {}", quote(p)));
        }
        for v in &self.vips {
            w(format!("vip {}", quote(v)));
        }
        for (dest, via) in &self.routes {
            w(format!("route {} via={}", quote(dest), quote(via)));
        }
        for l in &self.extra_kdl {
            w(l.clone());
        }
    }

    fn keepalived(&self, out: &mut String) {
        let _ = writeln!(out, "vrrp_instance {} {{", self.name);
        let mut w = |line: String| {
            let _ = writeln!(out, "    {line}");
        };
        w("state BACKUP".into());
        w(format!("interface {}", self.interface));
        w(format!("virtual_router_id {}", self.vrid));
        w(format!("priority {}", self.priority));
        w(format!("advert_int {}", secs(self.advert_interval)));
        w(format!("version {}", self.version));
        if !self.preempt {
            w("nopreempt".into());
        }
        if let Some(p) = &self.auth_pass {
            w(format!(
                "authentication {{\n        auth_type PASS\n        auth_pass {p}\n    }}"
            ));
        }
        if let Some(s) = &self.unicast_src {
            w(format!("unicast_src_ip {s}"));
        }
        if !self.unicast_peers.is_empty() {
            w(format!(
                "unicast_peer {{\n        {}\n    }}",
                self.unicast_peers.join("\n        ")
            ));
        }
        if !self.vips.is_empty() {
            w(format!(
                "virtual_ipaddress {{\n        {}\n    }}",
                self.vips.join("\n        ")
            ));
        }
        if !self.routes.is_empty() {
            let r: Vec<String> = self
                .routes
                .iter()
                .map(|(d, v)| format!("{d} via {v}"))
                .collect();
            w(format!(
                "virtual_routes {{\n        {}\n    }}",
                r.join("\n        ")
            ));
        }
        for l in &self.extra_keepalived {
            w(l.clone());
        }
        let _ = writeln!(out, "}}");
    }
}

/// An upkeep KDL config with these instances.
pub fn upkeep_config(router_id: &str, instances: &[Instance]) -> String {
    let mut out = format!("global {{ router-id {} }}\n", quote(router_id));
    for i in instances {
        let _ = writeln!(out, "instance {} {{", quote(&i.name));
        i.kdl(&mut out);
        out.push_str("}\n");
    }
    out
}

/// A keepalived.conf with these instances (all start as BACKUP and let the election decide).
pub fn keepalived_config(router_id: &str, instances: &[Instance]) -> String {
    let mut out = format!("global_defs {{\n    router_id {router_id}\n}}\n");
    for i in instances {
        i.keepalived(&mut out);
    }
    out
}

/// A `check` block running the port-listener plugin at `plugin` (TCP `port`) every 200 ms, with
/// `timeout` and weight -50.
pub fn port_listener_check(
    name: &str,
    plugin: &std::path::Path,
    port: u16,
    timeout: Duration,
) -> String {
    format!(
        "check {} {{\n    plugin {}\n    config port=\"{port}\" protocol=\"tcp\"\n    \
         allow \"listening-sockets\"\n    allow \"log\"\n    interval \"200ms\"\n    \
         timeout \"{}\"\n    weight -50\n}}\n",
        quote(name),
        quote(&plugin.display().to_string()),
        kdl_duration(timeout)
    )
}

/// A KDL string literal.
pub(crate) fn quote(s: &str) -> String {
    format!("{s:?}")
}

/// "1s", "250ms", ...
pub fn kdl_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Seconds as keepalived writes them: "1", "0.2".
fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{}", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_both() {
        let i = Instance::new("web", 51, 100)
            .version(2)
            .auth_pass("1234")
            .preempt(false)
            .vip("192.0.2.100/24")
            .route("198.51.100.0/24", "192.0.2.254");
        let kdl = upkeep_config("h1", std::slice::from_ref(&i));
        assert!(
            kdl.contains("instance \"web\" {\n    interface \"eth0\"\n"),
            "{kdl}"
        );
        assert!(kdl.contains("preempt #false"));
        assert!(kdl.contains("advert-interval \"1s\""));
        assert!(kdl.contains("route \"198.51.100.0/24\" via=\"192.0.2.254\""));
        let ka = keepalived_config("h1", &[i.interval_ms(200)]);
        assert!(ka.contains("nopreempt"));
        assert!(ka.contains("advert_int 0.2"));
        assert!(ka.contains("auth_pass 1234"));
        assert!(ka.contains("198.51.100.0/24 via 192.0.2.254"));
        assert_eq!(kdl_duration(Duration::from_millis(100)), "100ms");
    }

    #[test]
    fn master_down_interval() {
        let i = Instance::new("x", 1, 100).interval_ms(1000);
        assert_eq!(
            i.master_down_interval().as_millis(),
            3000 + 156 * 1000 / 256
        );
    }
}
