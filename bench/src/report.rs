//! Statistics over the runs and the Markdown report.

use std::fmt::Write as _;

use crate::scenarios::{Contender, Goal, MetricDef, Outcome, Scenario};

/// Every run of one scenario: per contender, each run's outcome or its error.
pub(crate) struct ScenarioRuns {
    pub scenario: Scenario,
    pub runs: Vec<(Contender, Vec<Result<Outcome, String>>)>,
}

impl ScenarioRuns {
    pub(crate) fn new(scenario: Scenario) -> Self {
        let runs = scenario
            .contenders
            .iter()
            .map(|&c| (c, Vec::new()))
            .collect();
        ScenarioRuns { scenario, runs }
    }

    pub(crate) fn of(&self, c: Contender) -> &[Result<Outcome, String>] {
        self.runs
            .iter()
            .find(|(k, _)| *k == c)
            .map(|(_, r)| r.as_slice())
            .unwrap_or(&[])
    }

    pub(crate) fn push(&mut self, c: Contender, r: Result<Outcome, String>) {
        if let Some((_, v)) = self.runs.iter_mut().find(|(k, _)| *k == c) {
            v.push(r);
        }
    }

    /// The values of metric `key` over `c`'s successful runs, in run order.
    pub(crate) fn values(&self, c: Contender, key: &str) -> Vec<f64> {
        self.of(c)
            .iter()
            .filter_map(|r| r.as_ref().ok().and_then(|o| o.get(key)))
            .collect()
    }

    /// `c`'s successful run whose value of the scenario's first metric is the median (the lower
    /// middle one for an even count): the run the plot shows.
    pub(crate) fn median_run(&self, c: Contender) -> Option<&Outcome> {
        let key = self.scenario.trace_metric().key;
        let mut ok: Vec<&Outcome> = self
            .of(c)
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .filter(|o| o.get(key).is_some())
            .collect();
        ok.sort_by(|a, b| a.get(key).partial_cmp(&b.get(key)).expect("no NaN"));
        let n = ok.len();
        (n > 0).then(|| ok[(n - 1) / 2])
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Every run's value, sorted.
    pub values: Vec<f64>,
}

pub(crate) fn stats(values: &[f64]) -> Option<Stats> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Stats {
        median,
        min: v[0],
        max: v[n - 1],
        values: v,
    })
}

fn median_of(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// One-sided exact permutation test: the chance that upkeep's median exceeds keepalived's by
/// at least what was measured if both daemons' runs came from one distribution (every way of
/// splitting the pooled runs into groups of the two sizes). Small p: upkeep really is slower.
pub(crate) fn p_upkeep_slower(k: &[f64], u: &[f64]) -> f64 {
    let observed = median_of(u) - median_of(k);
    let pooled: Vec<f64> = k.iter().chain(u).copied().collect();
    let (n, m) = (pooled.len(), u.len());
    if m == 0 || m == n || n > 20 {
        return 0.0;
    }
    let (mut at_least, mut all) = (0u64, 0u64);
    for mask in 0u32..(1 << n) {
        if mask.count_ones() as usize != m {
            continue;
        }
        let (mut a, mut b): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
        for (i, &v) in pooled.iter().enumerate() {
            if mask & (1 << i) != 0 {
                b.push(v);
            } else {
                a.push(v);
            }
        }
        a.sort_by(|x, y| x.partial_cmp(y).expect("no NaN"));
        b.sort_by(|x, y| x.partial_cmp(y).expect("no NaN"));
        all += 1;
        if median_of(&b) - median_of(&a) >= observed - 1e-12 {
            at_least += 1;
        }
    }
    at_least as f64 / all as f64
}

/// A value with the metric's decimals (one more for small values of whole-number metrics).
pub(crate) fn fmt_value(m: &MetricDef, v: f64) -> String {
    let one = format!("{v:.1}");
    if m.decimals == 0 && v.abs() < 9.95 && !one.ends_with(".0") {
        return one;
    }
    let decimals = m.decimals;
    format!("{v:.decimals$}")
}

/// The ratio cell: upkeep's median over keepalived's.
fn ratio(k: &Stats, u: &Stats) -> Option<f64> {
    (k.median != 0.0).then(|| u.median / k.median)
}

/// Whether upkeep meets the metric's goal (None: no goal or no data).
pub(crate) fn goal_met(m: &MetricDef, k: Option<&Stats>, u: Option<&Stats>) -> Option<bool> {
    let u = u?;
    match m.goal {
        Goal::Info => None,
        Goal::Zero => Some(u.max == 0.0),
        Goal::Ratio(g) => {
            let k = k?;
            match ratio(k, u) {
                Some(r) => Some(r <= g + 1e-9 || tie(m, k, u).is_some()),
                None => Some(u.median == 0.0),
            }
        }
    }
}

/// How an "at or below" goal is met by a tie: both daemons at the same floor (e.g. the
/// protocol's Master_Down_Interval), upkeep's median above keepalived's by a difference the
/// runs cannot tell from noise.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tie {
    /// Closer than one run can resolve (the metric's resolution).
    UnderResolution,
    /// Within 1 % and not significant: the permutation test's p (one-sided) is at least 0.05.
    NotSignificant(f64),
}

/// Largest relative excess a tie may hide, however noisy the runs: a real regression of more
/// than this is never called a tie.
const TIE_MAX_EXCESS: f64 = 0.01;
const TIE_ALPHA: f64 = 0.05;
/// Runs per daemon the test needs: with 5 and 5, runs that do not overlap at all give
/// p = 6/252 = 0.024, significant.
const TIE_MIN_RUNS: usize = 5;

fn tie(m: &MetricDef, k: &Stats, u: &Stats) -> Option<Tie> {
    let Goal::Ratio(g) = m.goal else { return None };
    if g < 1.0 || u.median <= k.median * g {
        return None;
    }
    if u.median - k.median < m.resolution {
        return Some(Tie::UnderResolution);
    }
    // Fewer runs could not show even a clear difference as significant.
    if k.values.len().min(u.values.len()) < TIE_MIN_RUNS {
        return None;
    }
    let p = p_upkeep_slower(&k.values, &u.values);
    (u.median <= k.median * (1.0 + TIE_MAX_EXCESS) && p >= TIE_ALPHA)
        .then_some(Tie::NotSignificant(p))
}

fn goal_cell(m: &MetricDef, k: Option<&Stats>, u: Option<&Stats>) -> String {
    let mark = match goal_met(m, k, u) {
        Some(true) => match (k, u) {
            (Some(k), Some(u)) => {
                let delta = format!("+{} {}", fmt_delta(m, u.median - k.median), m.unit());
                match tie(m, k, u) {
                    Some(Tie::UnderResolution) => {
                        format!(" ✓ tie: {delta}, under {}", m.resolution_is)
                    }
                    Some(Tie::NotSignificant(p)) => format!(
                        " ✓ tie: {delta}, not significant (p = {p:.2}, {} + {} runs)",
                        k.values.len(),
                        u.values.len()
                    ),
                    None => " ✓".into(),
                }
            }
            _ => " ✓".into(),
        },
        Some(false) => " ✗".into(),
        None => String::new(),
    };
    match m.goal {
        Goal::Info => "(info)".into(),
        Goal::Zero => format!("= 0{mark}"),
        Goal::Ratio(g) => format!("≤ {g:.2}{mark}"),
    }
}

/// A small difference with one decimal more than the metric shows.
fn fmt_delta(m: &MetricDef, d: f64) -> String {
    let decimals = m.decimals + 1;
    format!("{d:.decimals$}")
}

fn runs_cell(s: &ScenarioRuns, c: Contender) -> String {
    let all = s.of(c);
    let ok = all.iter().filter(|r| r.is_ok()).count();
    format!("{ok}/{}", all.len())
}

/// The results table.
pub(crate) fn table(results: &[ScenarioRuns]) -> String {
    let mut out = String::new();
    out.push_str(
        "| scenario | metric | keepalived median | min | max | upkeep median | min | max \
         | upkeep / keepalived | goal | runs ok (k / u) |\n",
    );
    out.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|---|---|\n");
    for s in results {
        let k_c = Contender::Keepalived;
        let upkeeps: Vec<Contender> = s
            .scenario
            .contenders
            .iter()
            .copied()
            .filter(|c| c.is_upkeep())
            .collect();
        for m in &s.scenario.metrics {
            let k = stats(&s.values(k_c, m.key));
            for &u_c in &upkeeps {
                let m = &s.scenario.metric_for(m, u_c);
                let u = stats(&s.values(u_c, m.key));
                let label = if upkeeps.len() > 1 || u_c != Contender::Upkeep {
                    format!("{} — {}", m.label, s.scenario.label(u_c))
                } else {
                    m.label.to_string()
                };
                let cells = |st: &Option<Stats>| match st {
                    Some(st) => [
                        fmt_value(m, st.median),
                        fmt_value(m, st.min),
                        fmt_value(m, st.max),
                    ],
                    None => ["n/a".into(), "".into(), "".into()],
                };
                let [km, kmin, kmax] = cells(&k);
                let [um, umin, umax] = cells(&u);
                let r = match (&k, &u) {
                    (Some(k), Some(u)) => match ratio(k, u) {
                        // Enough digits that a ratio just over its goal does not read as on it.
                        Some(r) => match m.goal {
                            Goal::Ratio(g) if r > g && format!("{r:.2}") == format!("{g:.2}") => {
                                format!("{r:.3}")
                            }
                            _ => format!("{r:.2}"),
                        },
                        None if u.median == 0.0 => "— (both 0)".into(),
                        None => "∞".into(),
                    },
                    _ => "n/a".into(),
                };
                let _ = writeln!(
                    out,
                    "| {} | {label} | {km} | {kmin} | {kmax} | {um} | {umin} | {umax} | {r} | {} | {} / {} |",
                    s.scenario.name,
                    if s.scenario.no_goal.contains(&u_c) {
                        "(info)".to_string()
                    } else {
                        goal_cell(m, k.as_ref(), u.as_ref())
                    },
                    runs_cell(s, k_c),
                    runs_cell(s, u_c),
                );
            }
        }
    }
    out
}

/// Every run's numbers, and every failure, per scenario.
pub(crate) fn raw_runs(results: &[ScenarioRuns]) -> String {
    let mut out = String::new();
    for s in results {
        let _ = writeln!(out, "- **{}** ({})", s.scenario.name, s.scenario.title);
        for (c, runs) in &s.runs {
            let mut parts = Vec::new();
            for m in &s.scenario.metrics {
                let v: Vec<String> = runs
                    .iter()
                    .map(|r| match r {
                        Ok(o) => o.get(m.key).map_or("-".into(), |v| fmt_value(m, v)),
                        Err(_) => "failed".into(),
                    })
                    .collect();
                parts.push(format!("{} [{}]", m.key, v.join(", ")));
            }
            let _ = writeln!(out, "  - {}: {}", s.scenario.label(*c), parts.join("; "));
            for (k, r) in runs.iter().enumerate() {
                if let Err(e) = r {
                    let first = e.lines().next().unwrap_or("");
                    let _ = writeln!(out, "    - run {} failed: {first}", k + 1);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::metric;

    #[test]
    fn median_min_max() {
        assert_eq!(stats(&[]), None);
        let s = stats(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(stats(&[4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
    }

    #[test]
    fn goals() {
        let m = metric("x", "x, ms", 0, Goal::Ratio(0.1));
        let st = |v: f64| Stats {
            median: v,
            min: v,
            max: v,
            values: vec![v],
        };
        assert_eq!(goal_met(&m, Some(&st(300.0)), Some(&st(20.0))), Some(true));
        assert_eq!(goal_met(&m, Some(&st(300.0)), Some(&st(40.0))), Some(false));
        assert_eq!(goal_met(&m, Some(&st(0.0)), Some(&st(0.0))), Some(true));
        let z = MetricDef {
            goal: Goal::Zero,
            ..m.clone()
        };
        assert_eq!(goal_met(&z, None, Some(&st(1.0))), Some(false));
        assert_eq!(fmt_value(&m, 2.34), "2.3");
        assert_eq!(fmt_value(&m, 298.4), "298");
        assert_eq!(fmt_value(&m, 9.97), "10");
        assert_eq!(fmt_value(&m, 4.0), "4");
    }

    /// Medians closer than the resolution meet an "at or below" goal, and say so; a larger
    /// gap, or a stricter goal, is not rescued by it.
    #[test]
    fn ties_within_the_resolution() {
        let st = |v: f64| Stats {
            median: v,
            min: v,
            max: v,
            values: vec![v],
        };
        let m = metric("x", "outage, ms", 0, Goal::Ratio(1.0)).resolution(2.0, "2 ms pings");
        let (k, u) = (st(3296.9), st(3297.3));
        assert_eq!(goal_met(&m, Some(&k), Some(&u)), Some(true));
        assert_eq!(
            goal_cell(&m, Some(&k), Some(&u)),
            "≤ 1.00 ✓ tie: +0.4 ms, under 2 ms pings"
        );
        assert_eq!(goal_met(&m, Some(&k), Some(&st(3299.0))), Some(false));
        assert_eq!(goal_cell(&m, Some(&k), Some(&st(3290.0))), "≤ 1.00 ✓");
        let exact = metric("x", "x, ms", 0, Goal::Ratio(1.0));
        assert_eq!(goal_met(&exact, Some(&k), Some(&u)), Some(false));
        let strict = metric("x", "x, ms", 0, Goal::Ratio(0.35)).resolution(5.0, "5 ms");
        assert_eq!(
            goal_met(&strict, Some(&st(100.0)), Some(&st(36.0))),
            Some(false)
        );
    }

    /// Runs that overlap are a tie when the excess is small; runs that do not overlap are a
    /// real difference, however small; an excess over 1 % is never a tie.
    #[test]
    fn ties_by_permutation_test() {
        let m = metric("converge_s", "converge, s", 2, Goal::Ratio(1.0)).resolution(0.002, "poll");
        let k = stats(&[3.290, 3.291, 3.300, 3.289, 3.292]).unwrap();
        let u = stats(&[3.300, 3.290, 3.294, 3.289, 3.299]).unwrap();
        let p = p_upkeep_slower(&k.values, &u.values);
        assert!(p >= 0.05, "{p}");
        assert_eq!(goal_met(&m, Some(&k), Some(&u)), Some(true));
        assert!(goal_cell(&m, Some(&k), Some(&u)).contains("not significant"));

        // Every upkeep run slower than every keepalived run: significant (p = 6/252).
        let slow = stats(&[3.301, 3.302, 3.303, 3.304, 3.305]).unwrap();
        let fast = stats(&[3.290, 3.291, 3.292, 3.293, 3.294]).unwrap();
        assert!((p_upkeep_slower(&fast.values, &slow.values) - 6.0 / 252.0).abs() < 1e-9);
        assert_eq!(goal_met(&m, Some(&fast), Some(&slow)), Some(false));

        // Noisy runs cannot hide a 3 % excess.
        let noisy_k = stats(&[3.0, 3.5, 2.5, 3.2, 2.8]).unwrap();
        let noisy_u = stats(&[3.09, 3.6, 2.4, 3.3, 2.7]).unwrap();
        assert!(p_upkeep_slower(&noisy_k.values, &noisy_u.values) >= 0.05);
        assert_eq!(goal_met(&m, Some(&noisy_k), Some(&noisy_u)), Some(false));

        // Equal medians are simply met.
        assert_eq!(goal_cell(&m, Some(&k), Some(&k)), "≤ 1.00 ✓");
    }
}
