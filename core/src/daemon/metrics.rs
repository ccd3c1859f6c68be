//! Prometheus / OpenMetrics exposition of what the daemon does (`global { metrics listen=... }`).
//!
//! [`Metrics`] holds the metric families; the daemon feeds it (instance and check rows it
//! builds from its status, check runs, reloads) and [`super::metrics_http`] answers
//! `GET /metrics` with [`Metrics::encode`], the OpenMetrics text format. Encoding is the
//! `prometheus-client` crate's; this module only decides names and labels. It never blocks the
//! daemon: a scrape takes the rows last published (an `Arc` copied under a short lock).
//!
//! This module imports nothing of the daemon (its status, the control socket): the daemon hands
//! it plain rows ([`InstanceRow`], [`CheckRow`]), and the control socket counts its refusals
//! here ([`count_control_refusal`]), so that the imports run one way, daemon to metrics.
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
//! | `announce_state` | gauge, 1 for the state a BGP announcement is in, 0 for the others | `announce`, `speaker`, `prefix`, `state` (`pending` / `announced` / `demoted` / `withdrawn` / `unreachable`) |
//! | `check_results_total` | counter | `check`, `kind`, `result` (`ok` / `fail`) |
//! | `check_duration_seconds` | histogram | `check`, `kind` |
//! | `reloads_total` | counter | `result` (`applied` / `unchanged` / `refused`) |
//! | `control_refused_total` | counter: control socket connections refused (peer not root) | |
//! | `build_info` | info | `version` |

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
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
use upkeep_vrrp::fsm::State;
use upkeep_vrrp::packet::DropReason;

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

/// Control socket connections refused because the peer was not root, since the daemon started.
/// A process-wide count, kept here rather than in the control socket so that a scrape reads it
/// without this module importing the daemon's control module.
static CONTROL_REFUSED: AtomicU64 = AtomicU64::new(0);

/// How many control socket connections were refused because their peer was not root.
pub fn control_refused() -> u64 {
    CONTROL_REFUSED.load(Ordering::Relaxed)
}

/// Counts one refused control socket connection; returns the count so far.
pub fn count_control_refusal() -> u64 {
    CONTROL_REFUSED.fetch_add(1, Ordering::Relaxed) + 1
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
    pub fn set_instances(&self, rows: Vec<InstanceRow>) {
        *self
            .snapshot
            .instances
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(rows);
    }

    /// Sets the totals of dropped packets that no instance could be blamed for (unknown VRID,
    /// undecodable), by reason: `Status::drops`.
    pub fn set_drops(&self, drops: &BTreeMap<&'static str, u64>) {
        *self
            .snapshot
            .drops
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(drops.clone());
    }

    /// Replaces the per-check health series with these checks (the whole set).
    pub fn set_checks(&self, rows: Vec<CheckRow>) {
        *self
            .snapshot
            .checks
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(rows);
    }

    /// Replaces the per-announcement series with these announcements (the whole set).
    pub fn set_announces(&self, rows: Vec<AnnounceRow>) {
        *self
            .snapshot
            .announces
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(rows);
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
/// totals the daemon keeps, not increments. The daemon publishes whole sets and a scrape takes
/// the current one (an `Arc`), so a lock is held for a pointer copy only: the event loop never
/// waits for a scrape's encoding, which runs on the exporter's own thread.
#[derive(Debug, Default)]
struct Snapshot {
    instances: RwLock<Arc<Vec<InstanceRow>>>,
    drops: RwLock<Arc<BTreeMap<&'static str, u64>>>,
    checks: RwLock<Arc<Vec<CheckRow>>>,
    announces: RwLock<Arc<Vec<AnnounceRow>>>,
}

/// The set a lock holds now, without holding the lock.
fn current<T>(lock: &RwLock<Arc<T>>) -> Arc<T> {
    Arc::clone(&lock.read().unwrap_or_else(PoisonError::into_inner))
}

/// What the daemon reports of one instance (built from its status, `From<&InstanceStatus>`).
#[derive(Debug, Clone)]
pub struct InstanceRow {
    pub name: String,
    pub interface: String,
    /// The VRID as its label's text.
    pub vrid: String,
    /// `vrrp::fsm::State::as_str`: `init`, `backup`, `master`, `fault` or `handover`.
    pub state: &'static str,
    pub priority: u8,
    pub effective_priority: u8,
    pub vips_held: bool,
    pub transitions: u64,
    pub adverts_sent: u64,
    pub adverts_received: u64,
    /// The instance's dropped packets by reason (`DropReason::as_str`).
    pub drops: BTreeMap<&'static str, u64>,
}

/// What the daemon reports of one check's health (built from its status,
/// `From<&CheckStatus>`).
#[derive(Debug, Clone)]
pub struct CheckRow {
    pub name: String,
    /// `script`, `plugin`, ...
    pub kind: String,
    /// After rise/fall.
    pub healthy: bool,
}

/// What the daemon reports of one BGP announcement (built from its status,
/// `From<&AnnounceStatus>`).
#[derive(Debug, Clone)]
pub struct AnnounceRow {
    pub name: String,
    pub speaker: String,
    pub prefix: String,
    /// `AnnounceState::as_str`.
    pub state: &'static str,
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
        let rows = current(&self.instances);
        if !rows.is_empty() {
            let mut family = encoder.encode_descriptor(
                "instance_state",
                "VRRP state of each instance: 1 for the state it is in",
                None,
                ConstGauge::new(0i64).metric_type(),
            )?;
            for row in rows.iter() {
                // Every state a series, so that one can be alerted on without knowing the others.
                for state in State::ALL.map(State::as_str) {
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

        let drops = current(&self.drops);
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

        ConstCounter::new(control_refused()).encode(encoder.encode_descriptor(
            "control_refused",
            "Control socket connections refused because the peer was not root",
            None,
            ConstCounter::new(0u64).metric_type(),
        )?)?;

        let checks = current(&self.checks);
        if !checks.is_empty() {
            let mut family = encoder.encode_descriptor(
                "check_healthy",
                "1 while the check counts as healthy (after rise/fall)",
                None,
                ConstGauge::new(0i64).metric_type(),
            )?;
            for check in checks.iter() {
                let labels = [
                    ("check", check.name.as_str()),
                    ("kind", check.kind.as_str()),
                ];
                ConstGauge::new(i64::from(check.healthy)).encode(family.encode_family(&labels)?)?;
            }
        }
        drop(checks);

        let announces = current(&self.announces);
        if !announces.is_empty() {
            let mut family = encoder.encode_descriptor(
                "announce_state",
                "State of each BGP announcement: 1 for the state it is in",
                None,
                ConstGauge::new(0i64).metric_type(),
            )?;
            for a in announces.iter() {
                for state in crate::announce::AnnounceState::ALL.map(|s| s.as_str()) {
                    let labels = [
                        ("announce", a.name.as_str()),
                        ("speaker", a.speaker.as_str()),
                        ("prefix", a.prefix.as_str()),
                        ("state", state),
                    ];
                    ConstGauge::new(i64::from(a.state == state))
                        .encode(family.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn instance(name: &str, vrid: u8, state: &'static str) -> InstanceRow {
        InstanceRow {
            name: name.to_owned(),
            interface: "eth0".to_owned(),
            vrid: vrid.to_string(),
            state,
            priority: 100,
            effective_priority: 80,
            vips_held: state == "master",
            transitions: 3,
            adverts_sent: 42,
            adverts_received: 7,
            drops: BTreeMap::from([("auth_mismatch", 2), ("bad_ttl", 1)]),
        }
    }

    pub(crate) fn has(text: &str, line: &str) {
        assert!(
            text.lines().any(|l| l == line),
            "no line `{line}` in:\n{text}"
        );
    }

    #[test]
    fn encode_has_every_family_with_its_labels() {
        let m = Metrics::new();
        m.set_instances(vec![
            instance("web", 51, "master"),
            instance("db", 52, "backup"),
        ]);
        m.set_drops(&BTreeMap::from([("unknown_vrid", 9)]));
        m.set_checks(vec![CheckRow {
            name: "port80".into(),
            kind: "script".into(),
            healthy: false,
        }]);
        m.set_announces(vec![AnnounceRow {
            name: "web".into(),
            speaker: "edge".into(),
            prefix: "203.0.113.10/32".into(),
            state: "announced",
        }]);
        m.observe_check("port80", "script", true, Duration::from_millis(20));
        m.observe_check("port80", "script", false, Duration::from_millis(3));
        m.observe_check("port80", "script", false, Duration::from_secs(2));
        m.reload("applied");
        m.reload("refused");
        m.reload("refused");
        let text = m.encode();

        has(&text, "# TYPE upkeep_announce_state gauge");
        has(
            &text,
            r#"upkeep_announce_state{announce="web",speaker="edge",prefix="203.0.113.10/32",state="announced"} 1"#,
        );
        has(
            &text,
            r#"upkeep_announce_state{announce="web",speaker="edge",prefix="203.0.113.10/32",state="unreachable"} 0"#,
        );
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
        m.set_instances(vec![
            instance("web", 51, "master"),
            instance("db", 52, "backup"),
        ]);
        let mut web = instance("web", 51, "fault");
        web.transitions = 4;
        m.set_instances(vec![web]);
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
        m.set_instances(Vec::new());
        let text = m.encode();
        assert!(!text.contains("upkeep_instance_"), "{text}");
        has(&text, "# TYPE upkeep_reloads counter");
    }

    #[test]
    fn control_socket_refusals_are_a_counter() {
        let text = Metrics::new().encode();
        has(&text, "# TYPE upkeep_control_refused counter");
        // The control socket's count, read at each scrape (the ops integration test refuses a
        // client and sees it go up).
        let n = control_refused();
        has(&text, &format!("upkeep_control_refused_total {n}"));
    }

    #[test]
    fn metrics_is_send_and_sync() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<Metrics>();
        shared::<Arc<Metrics>>();
    }
}
