//! Prometheus / OpenMetrics exposition of what the daemon does (`global { metrics listen=... }`).
//!
//! [`Metrics`] holds the metric families; the daemon feeds it (instance snapshots, check runs,
//! reloads) and [`serve`] answers `GET /metrics` with the OpenMetrics text format. Encoding is
//! the `prometheus-client` crate's; this module only decides names and labels and speaks the
//! few lines of HTTP/1.1 a scraper needs. It never blocks the daemon: a scrape reads a snapshot
//! under a short lock.
//!
//! Families, all prefixed `upkeep_`:
//!
//! | family | type | labels |
//! |---|---|---|
//! | `instance_state` | gauge, 1 for the current state and 0 for the others | `name`, `interface`, `vrid`, `state` |
//! | `instance_priority`, `instance_effective_priority` | gauge | `name`, `interface`, `vrid` |
//! | `instance_vips_held` | gauge, 0 or 1 | `name`, `interface`, `vrid` |
//! | `instance_transitions_total`, `instance_adverts_sent_total`, `instance_adverts_received_total` | counter | `name`, `interface`, `vrid` |
//! | `instance_drops_total` | counter | `name`, `interface`, `vrid`, `reason` |
//! | `drops_total` | counter: packets no instance could be blamed for | `reason` |
//! | `check_healthy` | gauge, 0 or 1 | `check`, `kind` |
//! | `check_results_total` | counter | `check`, `kind`, `result` (`ok` / `fail`) |
//! | `check_duration_seconds` | histogram | `check`, `kind` |
//! | `reloads_total` | counter | `result` (`applied` / `unchanged` / `refused`) |
//! | `control_refused_total` | counter: control socket connections refused (peer not root) | |
//! | `build_info` | info | `version` |

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::daemon::status::{CheckStatus, InstanceStatus};
use upkeep_vrrp::packet::DropReason;

/// The `Content-Type` of a scrape's answer.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every state an instance reports (`vrrp::fsm::State::as_str`), each a series of
/// `upkeep_instance_state` so that a state can be alerted on without knowing the others.
const STATES: [&str; 5] = ["init", "backup", "master", "fault", "handover"];

/// Upper bounds, in seconds, of the check duration buckets: from a fast plugin to a script that
/// runs into a long timeout.
const DURATION_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Reload results that are always shown, at 0 until they happen.
const RELOAD_RESULTS: [&str; 3] = ["applied", "unchanged", "refused"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    check: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckResultLabels {
    check: String,
    kind: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    result: String,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The daemon's metrics. Shared (`Arc`) between the daemon, which updates it, and the HTTP
/// task, which encodes it.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    snapshot: Arc<Snapshot>,
    check_results: Family<CheckResultLabels, Counter>,
    check_duration: Family<CheckLabels, Histogram, fn() -> Histogram>,
    reloads: Family<ReloadLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("upkeep");
        let snapshot = Arc::new(Snapshot::default());
        registry.register_collector(Box::new(Arc::clone(&snapshot)));

        let check_results = Family::<CheckResultLabels, Counter>::default();
        registry.register(
            "check_results",
            "Check runs by outcome",
            check_results.clone(),
        );
        let check_duration =
            Family::<CheckLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                duration_histogram,
            );
        registry.register_with_unit(
            "check_duration",
            "How long check runs took",
            Unit::Seconds,
            check_duration.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        for result in RELOAD_RESULTS {
            drop(reloads.get_or_create(&ReloadLabels {
                result: result.to_owned(),
            }));
        }
        registry.register("reloads", "Config reloads by result", reloads.clone());
        registry.register(
            "build",
            "The running upkeep",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        Self {
            registry,
            snapshot,
            check_results,
            check_duration,
            reloads,
        }
    }

    /// Replaces the per-instance series with these instances (the whole set: an instance not
    /// listed any more, after a reload removed it, disappears). Counters are the instances'
    /// own running totals.
    pub fn set_instances(&self, instances: &[InstanceStatus]) {
        let rows = instances.iter().map(InstanceRow::from).collect();
        *self
            .snapshot
            .instances
            .write()
            .unwrap_or_else(PoisonError::into_inner) = rows;
    }

    /// Sets the totals of dropped packets that no instance could be blamed for (unknown VRID,
    /// undecodable), by reason: `Status::drops`.
    pub fn set_drops(&self, drops: &BTreeMap<&'static str, u64>) {
        *self
            .snapshot
            .drops
            .write()
            .unwrap_or_else(PoisonError::into_inner) = drops.clone();
    }

    /// Replaces the per-check health series with these checks (the whole set).
    pub fn set_checks(&self, checks: &[CheckStatus]) {
        let rows = checks
            .iter()
            .map(|c| (c.name.clone(), c.kind.to_owned(), c.healthy))
            .collect();
        *self
            .snapshot
            .checks
            .write()
            .unwrap_or_else(PoisonError::into_inner) = rows;
    }

    /// Counts one run of a check (`kind`: `script`, `plugin`, ...) and how long it took.
    pub fn observe_check(&self, check: &str, kind: &str, ok: bool, duration: Duration) {
        let labels = CheckLabels {
            check: check.to_owned(),
            kind: kind.to_owned(),
        };
        self.check_duration
            .get_or_create(&labels)
            .observe(duration.as_secs_f64());
        self.check_results
            .get_or_create(&CheckResultLabels {
                check: labels.check,
                kind: labels.kind,
                result: if ok { "ok" } else { "fail" },
            })
            .inc();
    }

    /// Counts one reload by its result: `applied`, `unchanged` or `refused`.
    pub fn reload(&self, result: &str) {
        self.reloads
            .get_or_create(&ReloadLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition, `# EOF` included.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(fmt::Error) = prometheus_client::encoding::text::encode(&mut out, &self.registry)
        {
            // Writing to a String cannot fail; a collector could, and then the text is cut.
            tracing::error!("cannot encode metrics");
        }
        out
    }
}

/// What the daemon last reported, encoded as constant series at each scrape: counters here are
/// totals the daemon keeps, not increments.
#[derive(Debug, Default)]
struct Snapshot {
    instances: RwLock<Vec<InstanceRow>>,
    drops: RwLock<BTreeMap<&'static str, u64>>,
    /// (name, kind, healthy)
    checks: RwLock<Vec<(String, String, bool)>>,
}

#[derive(Debug)]
struct InstanceRow {
    name: String,
    interface: String,
    vrid: String,
    state: &'static str,
    priority: u8,
    effective_priority: u8,
    vips_held: bool,
    transitions: u64,
    adverts_sent: u64,
    adverts_received: u64,
    drops: BTreeMap<&'static str, u64>,
}

impl From<&InstanceStatus> for InstanceRow {
    fn from(s: &InstanceStatus) -> Self {
        Self {
            name: s.name.clone(),
            interface: s.interface.clone(),
            vrid: s.vrid.to_string(),
            state: s.state,
            priority: s.priority,
            effective_priority: s.effective_priority,
            vips_held: s.vips_held,
            transitions: s.transitions,
            adverts_sent: s.adverts_sent,
            adverts_received: s.adverts_received,
            drops: s.drops.clone(),
        }
    }
}

impl InstanceRow {
    fn labels(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("name", self.name.as_str()),
            ("interface", self.interface.as_str()),
            ("vrid", self.vrid.as_str()),
        ]
    }
}

/// Every drop reason with its count: the known reasons always (0 until one happens, so that
/// `rate()` has a series to work on), then any other the daemon reported.
fn all_reasons(drops: &BTreeMap<&'static str, u64>) -> Vec<(&'static str, u64)> {
    let mut out: Vec<(&'static str, u64)> = DropReason::ALL
        .iter()
        .map(|r| (r.as_str(), drops.get(r.as_str()).copied().unwrap_or(0)))
        .collect();
    for (reason, n) in drops {
        if !out.iter().any(|(r, _)| r == reason) {
            out.push((reason, *n));
        }
    }
    out
}

/// One family of per-instance series whose value is a function of the instance.
fn instance_family<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    rows: &[InstanceRow],
    name: &str,
    help: &str,
    value: impl Fn(&InstanceRow) -> M,
) -> Result<(), fmt::Error> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let mut family = encoder.encode_descriptor(name, help, None, value(first).metric_type())?;
    for row in rows {
        let labels = row.labels();
        value(row).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let rows = self
            .instances
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if !rows.is_empty() {
            let mut family = encoder.encode_descriptor(
                "instance_state",
                "VRRP state of each instance: 1 for the state it is in",
                None,
                ConstGauge::new(0i64).metric_type(),
            )?;
            for row in rows.iter() {
                for state in STATES {
                    let mut labels = row.labels();
                    labels.push(("state", state));
                    ConstGauge::new(i64::from(row.state == state))
                        .encode(family.encode_family(&labels)?)?;
                }
            }
        }
        instance_family(
            &mut encoder,
            &rows,
            "instance_priority",
            "Configured priority",
            |r| ConstGauge::new(i64::from(r.priority)),
        )?;
        instance_family(
            &mut encoder,
            &rows,
            "instance_effective_priority",
            "Priority after tracked checks' weights",
            |r| ConstGauge::new(i64::from(r.effective_priority)),
        )?;
        instance_family(
            &mut encoder,
            &rows,
            "instance_vips_held",
            "1 while the instance's VIPs are on this host",
            |r| ConstGauge::new(i64::from(r.vips_held)),
        )?;
        instance_family(
            &mut encoder,
            &rows,
            "instance_transitions",
            "State transitions",
            |r| ConstCounter::new(r.transitions),
        )?;
        instance_family(
            &mut encoder,
            &rows,
            "instance_adverts_sent",
            "VRRP advertisements sent",
            |r| ConstCounter::new(r.adverts_sent),
        )?;
        instance_family(
            &mut encoder,
            &rows,
            "instance_adverts_received",
            "VRRP advertisements received and accepted",
            |r| ConstCounter::new(r.adverts_received),
        )?;
        if !rows.is_empty() {
            let mut family = encoder.encode_descriptor(
                "instance_drops",
                "VRRP packets for the instance that were dropped, by reason",
                None,
                ConstCounter::new(0u64).metric_type(),
            )?;
            for row in rows.iter() {
                for (reason, n) in all_reasons(&row.drops) {
                    let mut labels = row.labels();
                    labels.push(("reason", reason));
                    ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        drop(rows);

        let drops = self.drops.read().unwrap_or_else(PoisonError::into_inner);
        let mut family = encoder.encode_descriptor(
            "drops",
            "VRRP packets dropped before they reached an instance, by reason",
            None,
            ConstCounter::new(0u64).metric_type(),
        )?;
        for (reason, n) in all_reasons(&drops) {
            ConstCounter::new(n).encode(family.encode_family(&[("reason", reason)])?)?;
        }
        drop(drops);

        ConstCounter::new(crate::daemon::control::refused()).encode(encoder.encode_descriptor(
            "control_refused",
            "Control socket connections refused because the peer was not root",
            None,
            ConstCounter::new(0u64).metric_type(),
        )?)?;

        let checks = self.checks.read().unwrap_or_else(PoisonError::into_inner);
        if !checks.is_empty() {
            let mut family = encoder.encode_descriptor(
                "check_healthy",
                "1 while the check counts as healthy (after rise/fall)",
                None,
                ConstGauge::new(0i64).metric_type(),
            )?;
            for (name, kind, healthy) in checks.iter() {
                let labels = [("check", name.as_str()), ("kind", kind.as_str())];
                ConstGauge::new(i64::from(*healthy)).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

// ---- HTTP ----

/// Largest request head read; a longer one is refused.
const MAX_REQUEST: usize = 8 * 1024;
/// A client must send its request and take the answer within this.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 16;

/// Binds `addr` and answers scrapes until the task is dropped. Fails when it cannot bind, or
/// when accepting connections fails for good.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    serve_listener(listener, metrics).await
}

/// [`serve`] on a listener already bound (so that the caller sees a bind error at once, or
/// binds port 0 in a test). HTTP/1.1, one request per connection: `GET /metrics` (or `HEAD`)
/// is answered with the exposition, anything else with 404 or 405.
pub async fn serve_listener(listener: TcpListener, metrics: Arc<Metrics>) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = Arc::clone(&slots)
            .acquire_owned()
            .await
            .map_err(io::Error::other)?;
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) if transient(&e) => {
                tracing::warn!("metrics endpoint: cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let answered = tokio::time::timeout(IO_TIMEOUT, answer(stream, &metrics)).await;
            match answered {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(%peer, "metrics scrape failed: {e}"),
                Err(_) => tracing::debug!(%peer, "metrics scrape timed out"),
            }
            drop(permit);
        });
    }
}

/// Accept errors that say nothing about the listener itself (a client gone, no file
/// descriptors left for now).
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::EPROTO)
    )
}

/// What a request asked for.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Metrics { head: bool },
    OtherMethod,
    NotFound,
    Bad,
    TooLarge,
}

/// Reads one request head (up to the blank line) and answers it; the connection then closes.
async fn answer(mut stream: TcpStream, metrics: &Metrics) -> io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let request = loop {
        if let Some(end) = find_head_end(&buf) {
            break parse_request(&buf[..end]);
        }
        if buf.len() >= MAX_REQUEST {
            break Request::TooLarge;
        }
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            // The client closed before finishing its request: nobody to answer.
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let response = match request {
        Request::Metrics { head } => {
            let body = metrics.encode();
            let mut r = header("200 OK", CONTENT_TYPE, body.len(), "");
            if !head {
                r.push_str(&body);
            }
            r
        }
        Request::OtherMethod => plain(
            "405 Method Not Allowed",
            "only GET is served here\n",
            "Allow: GET, HEAD\r\n",
        ),
        Request::NotFound => plain("404 Not Found", "the metrics are at /metrics\n", ""),
        Request::Bad => plain("400 Bad Request", "not an HTTP request\n", ""),
        Request::TooLarge => plain(
            "431 Request Header Fields Too Large",
            "request too large\n",
            "",
        ),
    };
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await?;
    // Closing with unread input makes the kernel reset the connection, which can destroy the
    // answer before the client reads it: take what the client still sends (bounded), then close.
    let drain = async {
        let mut rest = [0u8; 1024];
        let mut drained = 0;
        while drained < 16 * MAX_REQUEST {
            match stream.read(&mut rest).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    Ok(())
}

fn header(status: &str, content_type: &str, len: usize, extra: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n{extra}Connection: close\r\n\r\n"
    )
}

fn plain(status: &str, body: &str, extra: &str) -> String {
    let mut r = header(status, "text/plain; charset=utf-8", body.len(), extra);
    r.push_str(body);
    r
}

/// Where the request head ends (after `\r\n\r\n`, or a bare `\n\n` from a lax client).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn parse_request(head: &[u8]) -> Request {
    let Ok(text) = std::str::from_utf8(head) else {
        return Request::Bad;
    };
    let line = text.lines().next().unwrap_or("");
    let mut words = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (words.next(), words.next(), words.next())
    else {
        return Request::Bad;
    };
    if !version.starts_with("HTTP/1.") || words.next().is_some() {
        return Request::Bad;
    }
    let path = target.split(['?', '#']).next().unwrap_or("");
    // An absolute-form target (`GET http://host:9650/metrics`) names the same path.
    let path = match path.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => path,
    };
    if path != "/metrics" {
        return Request::NotFound;
    }
    match method {
        "GET" => Request::Metrics { head: false },
        "HEAD" => Request::Metrics { head: true },
        _ => Request::OtherMethod,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(name: &str, vrid: u8, state: &'static str) -> InstanceStatus {
        InstanceStatus {
            name: name.to_owned(),
            interface: "eth0".to_owned(),
            vrid,
            state,
            priority: 100,
            effective_priority: 80,
            vips_held: state == "master",
            held_back: false,
            transitions: 3,
            adverts_sent: 42,
            adverts_received: 7,
            drops: BTreeMap::from([("auth_mismatch", 2), ("bad_ttl", 1)]),
            ..InstanceStatus::default()
        }
    }

    fn has(text: &str, line: &str) {
        assert!(
            text.lines().any(|l| l == line),
            "no line `{line}` in:\n{text}"
        );
    }

    #[test]
    fn encode_has_every_family_with_its_labels() {
        let m = Metrics::new();
        m.set_instances(&[instance("web", 51, "master"), instance("db", 52, "backup")]);
        m.set_drops(&BTreeMap::from([("unknown_vrid", 9)]));
        m.set_checks(&[CheckStatus {
            name: "port80".into(),
            kind: "script",
            healthy: false,
            ..CheckStatus::default()
        }]);
        m.observe_check("port80", "script", true, Duration::from_millis(20));
        m.observe_check("port80", "script", false, Duration::from_millis(3));
        m.observe_check("port80", "script", false, Duration::from_secs(2));
        m.reload("applied");
        m.reload("refused");
        m.reload("refused");
        let text = m.encode();

        has(&text, "# TYPE upkeep_instance_state gauge");
        has(
            &text,
            r#"upkeep_instance_state{name="web",interface="eth0",vrid="51",state="master"} 1"#,
        );
        has(
            &text,
            r#"upkeep_instance_state{name="web",interface="eth0",vrid="51",state="backup"} 0"#,
        );
        has(
            &text,
            r#"upkeep_instance_state{name="db",interface="eth0",vrid="52",state="backup"} 1"#,
        );
        has(
            &text,
            r#"upkeep_instance_priority{name="web",interface="eth0",vrid="51"} 100"#,
        );
        has(
            &text,
            r#"upkeep_instance_effective_priority{name="web",interface="eth0",vrid="51"} 80"#,
        );
        has(
            &text,
            r#"upkeep_instance_vips_held{name="web",interface="eth0",vrid="51"} 1"#,
        );
        has(
            &text,
            r#"upkeep_instance_vips_held{name="db",interface="eth0",vrid="52"} 0"#,
        );
        has(&text, "# TYPE upkeep_instance_transitions counter");
        has(
            &text,
            r#"upkeep_instance_transitions_total{name="web",interface="eth0",vrid="51"} 3"#,
        );
        has(
            &text,
            r#"upkeep_instance_adverts_sent_total{name="web",interface="eth0",vrid="51"} 42"#,
        );
        has(
            &text,
            r#"upkeep_instance_adverts_received_total{name="db",interface="eth0",vrid="52"} 7"#,
        );
        has(
            &text,
            r#"upkeep_instance_drops_total{name="web",interface="eth0",vrid="51",reason="auth_mismatch"} 2"#,
        );
        // Every known reason is there, at 0 until it happens.
        has(
            &text,
            r#"upkeep_instance_drops_total{name="web",interface="eth0",vrid="51",reason="bad_checksum"} 0"#,
        );
        has(&text, r#"upkeep_drops_total{reason="unknown_vrid"} 9"#);
        has(&text, r#"upkeep_drops_total{reason="truncated"} 0"#);
        has(
            &text,
            r#"upkeep_check_healthy{check="port80",kind="script"} 0"#,
        );
        has(
            &text,
            r#"upkeep_check_results_total{check="port80",kind="script",result="ok"} 1"#,
        );
        has(
            &text,
            r#"upkeep_check_results_total{check="port80",kind="script",result="fail"} 2"#,
        );
        has(&text, "# TYPE upkeep_check_duration_seconds histogram");
        has(
            &text,
            r#"upkeep_check_duration_seconds_count{check="port80",kind="script"} 3"#,
        );
        has(
            &text,
            r#"upkeep_check_duration_seconds_bucket{le="0.005",check="port80",kind="script"} 1"#,
        );
        has(
            &text,
            r#"upkeep_check_duration_seconds_bucket{le="0.025",check="port80",kind="script"} 2"#,
        );
        has(
            &text,
            r#"upkeep_check_duration_seconds_bucket{le="+Inf",check="port80",kind="script"} 3"#,
        );
        has(&text, r#"upkeep_reloads_total{result="applied"} 1"#);
        has(&text, r#"upkeep_reloads_total{result="refused"} 2"#);
        has(&text, r#"upkeep_reloads_total{result="unchanged"} 0"#);
        has(
            &text,
            &format!(
                r#"upkeep_build_info{{version="{}"}} 1"#,
                env!("CARGO_PKG_VERSION")
            ),
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn instances_are_replaced_not_accumulated() {
        let m = Metrics::new();
        m.set_instances(&[instance("web", 51, "master"), instance("db", 52, "backup")]);
        let mut web = instance("web", 51, "fault");
        web.transitions = 4;
        m.set_instances(&[web]);
        let text = m.encode();
        assert!(!text.contains(r#"name="db""#), "{text}");
        has(
            &text,
            r#"upkeep_instance_state{name="web",interface="eth0",vrid="51",state="fault"} 1"#,
        );
        has(
            &text,
            r#"upkeep_instance_transitions_total{name="web",interface="eth0",vrid="51"} 4"#,
        );
        // No instances: no per-instance families, the rest stays.
        m.set_instances(&[]);
        let text = m.encode();
        assert!(!text.contains("upkeep_instance_"), "{text}");
        has(&text, "# TYPE upkeep_reloads counter");
    }

    #[test]
    fn control_socket_refusals_are_a_counter() {
        let text = Metrics::new().encode();
        has(&text, "# TYPE upkeep_control_refused counter");
        // The daemon's own count, read at each scrape (the ops integration test refuses a
        // client and sees it go up).
        let n = crate::daemon::control::refused();
        has(&text, &format!("upkeep_control_refused_total {n}"));
    }

    #[test]
    fn metrics_is_send_and_sync() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<Metrics>();
        shared::<Arc<Metrics>>();
    }

    #[test]
    fn requests_are_parsed() {
        let p = |s: &str| parse_request(s.as_bytes());
        assert_eq!(
            p("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Request::Metrics { head: false }
        );
        assert_eq!(
            p("GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Request::Metrics { head: false }
        );
        assert_eq!(
            p("GET http://127.0.0.1:9650/metrics HTTP/1.1\r\n\r\n"),
            Request::Metrics { head: false }
        );
        assert_eq!(
            p("HEAD /metrics HTTP/1.1\r\n\r\n"),
            Request::Metrics { head: true }
        );
        assert_eq!(p("POST /metrics HTTP/1.1\r\n\r\n"), Request::OtherMethod);
        assert_eq!(p("GET / HTTP/1.1\r\n\r\n"), Request::NotFound);
        assert_eq!(p("GET /metricsx HTTP/1.1\r\n\r\n"), Request::NotFound);
        assert_eq!(p("hello\r\n\r\n"), Request::Bad);
        assert_eq!(p("GET /metrics SPDY/3\r\n\r\n"), Request::Bad);
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n"), None);
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\n"), Some(16));
    }

    /// Sends `request` to the server and reads the whole answer (the server closes).
    async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(request).await.expect("write");
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
            .await
            .expect("answered in time")
            .expect("read");
        String::from_utf8(out).expect("utf-8")
    }

    #[tokio::test]
    async fn a_real_scrape_over_tcp() {
        let metrics = Arc::new(Metrics::new());
        metrics.set_instances(&[instance("web", 51, "master")]);
        metrics.observe_check("port80", "script", true, Duration::from_millis(5));
        metrics.reload("applied");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(serve_listener(listener, Arc::clone(&metrics)));

        let answer = exchange(
            addr,
            b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/openmetrics-text\r\n\r\n",
        )
        .await;
        let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(
            head.contains(&format!("\r\nContent-Type: {CONTENT_TYPE}\r\n")),
            "{head}"
        );
        assert!(
            head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())),
            "{head}"
        );
        assert!(head.contains("\r\nConnection: close"), "{head}");
        for family in [
            "# TYPE upkeep_instance_state gauge",
            "# TYPE upkeep_instance_priority gauge",
            "# TYPE upkeep_instance_effective_priority gauge",
            "# TYPE upkeep_instance_transitions counter",
            "# TYPE upkeep_instance_adverts_sent counter",
            "# TYPE upkeep_instance_adverts_received counter",
            "# TYPE upkeep_instance_drops counter",
            "# TYPE upkeep_check_results counter",
            "# TYPE upkeep_check_duration_seconds histogram",
            "# TYPE upkeep_reloads counter",
            "# TYPE upkeep_control_refused counter",
        ] {
            has(body, family);
        }
        has(
            body,
            r#"upkeep_instance_state{name="web",interface="eth0",vrid="51",state="master"} 1"#,
        );
        assert!(body.ends_with("# EOF\n"));

        // The daemon's updates show in the next scrape.
        metrics.reload("refused");
        let answer = exchange(addr, b"GET /metrics HTTP/1.0\r\n\r\n").await;
        has(&answer, r#"upkeep_reloads_total{result="refused"} 1"#);

        let answer = exchange(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\n"), "HEAD has no body: {answer}");

        let answer = exchange(addr, b"GET / HTTP/1.1\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 404 Not Found\r\n"), "{answer}");
        let answer = exchange(addr, b"DELETE /metrics HTTP/1.1\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 405 "), "{answer}");
        assert!(answer.contains("\r\nAllow: GET, HEAD\r\n"), "{answer}");
        let answer = exchange(addr, b"garbage\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");

        // A request that never ends is cut off at the size bound, not read forever.
        let huge = format!(
            "GET /metrics HTTP/1.1\r\nX: {}\r\n",
            "a".repeat(MAX_REQUEST)
        );
        let answer = exchange(addr, huge.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");

        // A client that goes away without a request does not stop the server.
        drop(TcpStream::connect(addr).await.expect("connect"));
        let answer = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");

        server.abort();
    }

    #[tokio::test]
    async fn serve_reports_a_bind_error() {
        let taken = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = taken.local_addr().expect("addr");
        let err = serve(addr, Arc::new(Metrics::new()))
            .await
            .expect_err("the port is taken");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }
}
