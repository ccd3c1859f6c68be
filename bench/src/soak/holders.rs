//! Who holds each VIP, and since when: `ip -o monitor address` in every host's namespace feeds
//! a timeline of holder sets, each change stamped as it is read. Exact where sampling would
//! round to its period, and cheap (no process per look).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use upkeep_tests::{wait_monitor_listening, Lab};

/// The marker the readiness check puts on `lo` (not a VIP of the soak).
const MARKER: &str = "203.0.113.254";

/// A set of hosts (1-based) holding one VIP.
pub(crate) type HostSet = BTreeSet<usize>;

/// The holder timeline of the watched VIPs.
pub(crate) struct Holders {
    state: Arc<Mutex<State>>,
    monitors: Vec<Child>,
    readers: Vec<JoinHandle<()>>,
}

struct State {
    vips: Vec<IpAddr>,
    /// Per VIP: the changes, oldest first, each the new set and when it was seen. Starts with
    /// the empty set at the time the watch began.
    changes: Vec<Vec<(Instant, HostSet)>>,
    /// Marker events seen per host (readiness).
    markers: Vec<(usize, bool)>,
}

impl State {
    fn apply(&mut self, host: usize, line: &str, at: Instant) {
        let Some((deleted, addr)) = parse_monitor_line(line) else {
            return;
        };
        if addr.to_string() == MARKER {
            self.markers.push((host, deleted));
            return;
        }
        let Some(v) = self.vips.iter().position(|a| *a == addr) else {
            return;
        };
        let mut set = self.changes[v]
            .last()
            .map(|c| c.1.clone())
            .unwrap_or_default();
        let changed = if deleted {
            set.remove(&host)
        } else {
            set.insert(host)
        };
        if changed {
            self.changes[v].push((at, set));
        }
    }
}

/// `(deleted, address)` of an `ip -o monitor address` line about `eth0`, e.g.
/// `Deleted 2: eth0    inet 192.0.2.100/24 scope global secondary eth0 ...`.
fn parse_monitor_line(line: &str) -> Option<(bool, IpAddr)> {
    let mut words = line.split_whitespace().peekable();
    let deleted = words.peek() == Some(&"Deleted");
    if deleted {
        words.next();
    }
    words.next()?; // "2:"
    let dev = words.next()?;
    let family = words.next()?;
    if family != "inet" && family != "inet6" {
        return None;
    }
    let addr = words.next()?.split('/').next()?.parse().ok()?;
    // Markers go on lo; VIPs count only on eth0.
    (dev == "eth0" || dev == "lo").then_some((deleted, addr))
}

impl Holders {
    /// Watches `vips` on every host of `lab`; returns once every monitor is known to listen.
    pub(crate) fn watch(lab: &Lab, vips: &[&str]) -> Result<Holders> {
        let vips: Vec<IpAddr> = vips
            .iter()
            .map(|v| v.parse().with_context(|| format!("VIP {v}")))
            .collect::<Result<_>>()?;
        let now = Instant::now();
        let state = Arc::new(Mutex::new(State {
            changes: vips.iter().map(|_| vec![(now, HostSet::new())]).collect(),
            vips,
            markers: Vec::new(),
        }));
        let mut holders = Holders {
            state: state.clone(),
            monitors: Vec::new(),
            readers: Vec::new(),
        };
        for host in 1..=lab.hosts() {
            let mut child = Command::new("ip")
                .args(["-n", &lab.host_ns(host), "-o", "monitor", "address"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .context("spawn ip monitor address")?;
            let out = child.stdout.take().context("monitor stdout")?;
            holders.monitors.push(child);
            let state = state.clone();
            holders.readers.push(
                std::thread::Builder::new()
                    .name(format!("holders-h{host}"))
                    .spawn(move || {
                        for line in BufReader::new(out).lines() {
                            let Ok(line) = line else { break };
                            let at = Instant::now();
                            lock(&state).apply(host, &line, at);
                        }
                    })?,
            );
        }
        for host in 1..=lab.hosts() {
            holders.wait_listening(lab, host)?;
        }
        Ok(holders)
    }

    fn wait_listening(&self, lab: &Lab, host: usize) -> Result<()> {
        wait_monitor_listening(lab, &lab.host_ns(host), MARKER, |deleted| {
            lock(&self.state).markers.contains(&(host, deleted))
        })
    }

    /// The hosts holding VIP number `vip` now.
    pub(crate) fn now(&self, vip: usize) -> HostSet {
        lock(&self.state).changes[vip]
            .last()
            .map(|c| c.1.clone())
            .unwrap_or_default()
    }

    /// The holder sets of VIP number `vip` over `[from, to]`: the set at `from`, then every
    /// change up to `to`, each with the time it started.
    pub(crate) fn between(
        &self,
        vip: usize,
        from: Instant,
        to: Instant,
    ) -> Vec<(Instant, HostSet)> {
        let st = lock(&self.state);
        let changes = &st.changes[vip];
        let before = changes.iter().rposition(|c| c.0 <= from).unwrap_or(0);
        let mut out = vec![(from, changes[before].1.clone())];
        out.extend(changes[before + 1..].iter().filter(|c| c.0 <= to).cloned());
        out
    }
}

impl Drop for Holders {
    fn drop(&mut self) {
        for m in &mut self.monitors {
            let _ = m.kill();
            let _ = m.wait();
        }
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The periods of `timeline` (as [`Holders::between`] returns it, up to `to`) during which
/// `pred` held of the holder set: `(start, length)` each.
pub(crate) fn periods(
    timeline: &[(Instant, HostSet)],
    to: Instant,
    pred: impl Fn(&HostSet) -> bool,
) -> Vec<(Instant, Duration)> {
    let mut out = Vec::new();
    let mut open: Option<Instant> = None;
    for (k, (at, set)) in timeline.iter().enumerate() {
        let end = timeline.get(k + 1).map_or(to, |n| n.0);
        match (pred(set), open) {
            (true, None) => open = Some(*at),
            (false, Some(s)) => {
                out.push((s, at.saturating_duration_since(s)));
                open = None;
            }
            _ => {}
        }
        if k + 1 == timeline.len() {
            if let Some(s) = open {
                out.push((s, end.saturating_duration_since(s)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_lines_parse() {
        let add =
            "2: eth0    inet 192.0.2.100/24 scope global secondary eth0\\       valid_lft forever";
        let del = "Deleted 2: eth0    inet 192.0.2.100/24 scope global secondary eth0";
        let v6 = "2: eth0    inet6 2001:db8::64/64 scope global";
        let other = "3: eth1    inet 192.0.2.100/24 scope global eth1";
        let ip: IpAddr = "192.0.2.100".parse().unwrap();
        assert_eq!(parse_monitor_line(add), Some((false, ip)));
        assert_eq!(parse_monitor_line(del), Some((true, ip)));
        assert_eq!(
            parse_monitor_line(v6),
            Some((false, "2001:db8::64".parse().unwrap()))
        );
        assert_eq!(parse_monitor_line(other), None);
    }

    #[test]
    fn periods_cover_open_and_closed_runs() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let set = |hs: &[usize]| hs.iter().copied().collect::<HostSet>();
        let tl = vec![
            (at(0), set(&[1])),
            (at(100), set(&[])),
            (at(250), set(&[2])),
            (at(400), set(&[1, 2])),
        ];
        let zero = periods(&tl, at(1000), |s| s.is_empty());
        assert_eq!(zero, vec![(at(100), Duration::from_millis(150))]);
        let two = periods(&tl, at(1000), |s| s.len() > 1);
        assert_eq!(two, vec![(at(400), Duration::from_millis(600))]);
    }
}
