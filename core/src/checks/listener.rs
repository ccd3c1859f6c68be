//! The listener tracker (`listener 80`): healthy while something listens on a port.
//!
//! Event-driven where it matters: the tracker subscribes to the kernel's socket-destroy
//! notifications ([`sock_diag::Destroyed`]) and looks again the moment a listener on its port
//! is freed, which happens when the server closes it and when the server dies (the kernel
//! closes a killed process's sockets). A new listener has no kernel event, so it is seen at the
//! next look, every `interval`; that poll is also the safety net should notifications be
//! unavailable (no CAP_NET_ADMIN): then the tracker polls only, and says so once.
//! What counts is always a fresh dump of the listening table ([`sock_diag::listening`]).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::warn;
use upkeep_config::ListenerProto;

use super::CheckResult;
use crate::net::sock_diag::{self, Destroyed};

/// What a listener check looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    pub port: u16,
    pub proto: ListenerProto,
    /// The address the listener must serve; None: any.
    pub address: Option<IpAddr>,
}

impl ListenerSpec {
    fn diag_proto(&self) -> sock_diag::Proto {
        match self.proto {
            ListenerProto::Tcp => sock_diag::Proto::Tcp,
            ListenerProto::Udp => sock_diag::Proto::Udp,
        }
    }

    /// Whether a socket bound to `local` serves this spec: the port, and the address itself or
    /// a wildcard that covers it (`0.0.0.0` covers IPv4 addresses, `::` covers both families,
    /// as a dual-stack socket does).
    pub fn served_by(&self, local: SocketAddr) -> bool {
        if local.port() != self.port {
            return false;
        }
        let Some(want) = self.address else {
            return true;
        };
        let ip = local.ip();
        ip == want || (ip.is_unspecified() && (ip.is_ipv6() || want.is_ipv4()))
    }

    /// The description in results: `TCP port 80`, `UDP 192.0.2.1:53`.
    fn describe(&self) -> String {
        let proto = self.proto.name().to_uppercase();
        match self.address {
            None => format!("{proto} port {}", self.port),
            Some(ip) => format!("{proto} {}", SocketAddr::new(ip, self.port)),
        }
    }
}

/// One look: a result from the listening table as it is now.
pub fn probe(id: u64, spec: &ListenerSpec) -> CheckResult {
    let start = Instant::now();
    let (ok, message) = match sock_diag::listening(spec.diag_proto()) {
        Ok(all) => {
            let serving: Vec<String> = all
                .into_iter()
                .filter(|a| spec.served_by(*a))
                .map(|a| a.to_string())
                .collect();
            if serving.is_empty() {
                (false, format!("nothing listens on {}", spec.describe()))
            } else {
                let on = serving.join(", ");
                (true, format!("{} listened on ({on})", spec.describe()))
            }
        }
        Err(e) => (
            false,
            format!("cannot read the listening sockets (sock_diag): {e}"),
        ),
    };
    CheckResult {
        check: id,
        ok,
        message,
        duration: start.elapsed(),
        value: None,
    }
}

/// Looks at the listening table every `interval` and whenever a listener on the port is
/// destroyed, sending each result; ends when the receiver is gone.
pub async fn run(
    id: u64,
    spec: ListenerSpec,
    interval: Duration,
    tx: mpsc::UnboundedSender<CheckResult>,
) {
    // Subscribed before the first look, so a close between a look and the wait is queued.
    let mut events = match Destroyed::subscribe(spec.diag_proto()) {
        Ok(e) => Some(e),
        Err(e) => {
            warn!(
                "listener check on {}: no socket-destroy notifications ({e}); polling every {interval:?}",
                spec.describe()
            );
            None
        }
    };
    loop {
        // A dump of the listening hash: tens of microseconds, on the event loop.
        if tx.send(probe(id, &spec)).is_err() {
            return;
        }
        // The next poll is `interval` after this look, whatever prompted it.
        let poll = tokio::time::sleep(interval);
        let Some(ev) = events.as_mut() else {
            poll.await;
            continue;
        };
        tokio::select! {
            () = poll => {}
            heard = ev.listener_closed(spec.port) => {
                if let Err(e) = heard {
                    warn!("listener check on {}: socket-destroy notifications failed ({e}); polling every {interval:?}", spec.describe());
                    events = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(port: u16, address: Option<&str>) -> ListenerSpec {
        ListenerSpec {
            port,
            proto: ListenerProto::Tcp,
            address: address.map(|a| a.parse().unwrap()),
        }
    }

    #[test]
    fn which_sockets_serve_a_spec() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let any = spec(80, None);
        assert!(any.served_by(a("192.0.2.1:80")));
        assert!(any.served_by(a("[::]:80")));
        assert!(!any.served_by(a("192.0.2.1:8080")));
        let v4 = spec(80, Some("192.0.2.100"));
        assert!(v4.served_by(a("192.0.2.100:80")));
        assert!(v4.served_by(a("0.0.0.0:80")), "the v4 wildcard");
        assert!(v4.served_by(a("[::]:80")), "a dual-stack wildcard");
        assert!(!v4.served_by(a("192.0.2.1:80")), "another address");
        assert!(!v4.served_by(a("127.0.0.1:80")));
        let v6 = spec(443, Some("2001:db8::1"));
        assert!(v6.served_by(a("[2001:db8::1]:443")));
        assert!(v6.served_by(a("[::]:443")));
        assert!(
            !v6.served_by(a("0.0.0.0:443")),
            "v4 wildcard does not serve v6"
        );
        assert_eq!(v6.describe(), "TCP [2001:db8::1]:443");
        assert_eq!(any.describe(), "TCP port 80");
    }

    #[test]
    fn probes_a_real_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let r = probe(3, &spec(port, Some("127.0.0.1")));
        assert!(r.ok, "{r:?}");
        assert_eq!(
            r.message,
            format!("TCP 127.0.0.1:{port} listened on (127.0.0.1:{port})")
        );
        assert!(!probe(3, &spec(port, Some("127.0.0.2"))).ok);
        drop(l);
        let r = probe(3, &spec(port, None));
        assert!(!r.ok);
        assert_eq!(r.message, format!("nothing listens on TCP port {port}"));
    }

    /// With a poll an hour apart, only the destroy notification can report the close.
    #[tokio::test]
    async fn a_close_is_reported_at_once() {
        if Destroyed::subscribe(sock_diag::Proto::Tcp).is_err() {
            eprintln!("skipped: no CAP_NET_ADMIN for socket-destroy notifications");
            return;
        }
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(5, spec(port, None), Duration::from_secs(3600), tx));
        assert!(rx.recv().await.expect("first result").ok);
        let t = Instant::now();
        drop(l);
        let r = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("no result after the close")
            .expect("a result");
        assert!(!r.ok, "{r:?}");
        eprintln!("close reported after {:?}", t.elapsed());
        drop(rx);
        task.abort();
    }
}
