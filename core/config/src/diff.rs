//! What a reload changes: instances and checks matched between the running config and the new
//! one, so the daemon touches only what differs.
//!
//! Instances are matched by name; an instance whose name changed but whose interface, VRID,
//! address family and version did not is the same virtual router renamed. An instance whose
//! interface, VRID, family, version or `use-vmac` changed is a different virtual router: the old one is
//! removed and the new one added.

use super::model::{AnnounceDef, CheckDef, CheckKind, Config, InstanceConfig, SpeakerDef};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Diff {
    /// Names in the new config.
    pub added: Vec<String>,
    /// Names in the old config.
    pub removed: Vec<String>,
    /// (old name, new name) of instances kept but with some setting changed.
    pub changed: Vec<(String, String)>,
    pub unchanged: Vec<String>,
    pub checks_added: Vec<String>,
    pub checks_removed: Vec<String>,
    pub checks_changed: Vec<String>,
    pub global_changed: bool,
    pub groups_changed: bool,
    /// A `speaker` or `announce` was added, removed or changed (spans aside): the daemon
    /// re-applies the announcements as a whole (they are cheap: one protocol each).
    pub bgp_changed: bool,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.checks_added.is_empty()
            && self.checks_removed.is_empty()
            && self.checks_changed.is_empty()
            && !self.global_changed
            && !self.groups_changed
            && !self.bgp_changed
    }
}

/// Same virtual router on the wire: changing any of these means a different one.
pub fn same_router(a: &InstanceConfig, b: &InstanceConfig) -> bool {
    a.interface == b.interface
        && a.vrid == b.vrid
        && a.is_ipv6() == b.is_ipv6()
        && a.version == b.version
        // Its VIPs live on another interface: put them there as a new router would.
        && a.vmac == b.vmac
}

/// Equal in every setting (source spans aside).
pub fn same_instance(a: &InstanceConfig, b: &InstanceConfig) -> bool {
    let mut b = b.clone();
    b.span = a.span;
    *a == b
}

pub fn same_check(a: &CheckDef, b: &CheckDef) -> bool {
    let mut b = b.clone();
    b.span = a.span;
    *a == b
}

pub fn diff(old: &Config, new: &Config) -> Diff {
    let mut d = Diff::default();
    let mut matched_old = vec![false; old.instances.len()];
    let mut pending = Vec::new();
    for n in &new.instances {
        let by_name = old.instances.iter().position(|o| o.name == n.name);
        match by_name {
            Some(i) if same_router(&old.instances[i], n) => {
                matched_old[i] = true;
                if same_instance(&old.instances[i], n) {
                    d.unchanged.push(n.name.clone());
                } else {
                    d.changed.push((n.name.clone(), n.name.clone()));
                }
            }
            _ => pending.push(n),
        }
    }
    // Renames: an unmatched new instance that is an unmatched old router under another name.
    for n in pending {
        let renamed = old.instances.iter().enumerate().position(|(i, o)| {
            !matched_old[i] && same_router(o, n) && new.instance(&o.name).is_none()
        });
        match renamed {
            Some(i) => {
                matched_old[i] = true;
                d.changed
                    .push((old.instances[i].name.clone(), n.name.clone()));
            }
            None => d.added.push(n.name.clone()),
        }
    }
    for (i, o) in old.instances.iter().enumerate() {
        if !matched_old[i] {
            d.removed.push(o.name.clone());
        }
    }
    // A script check without its own `user` runs as `script-user`: a new one is a new check.
    let user_changed = old.global.script_user != new.global.script_user;
    for c in &new.checks {
        let runs_as_global = matches!(c.kind, CheckKind::Script { .. }) && c.user.is_none();
        match old.check(&c.name) {
            None => d.checks_added.push(c.name.clone()),
            Some(o) if !same_check(o, c) || (user_changed && runs_as_global) => {
                d.checks_changed.push(c.name.clone())
            }
            Some(_) => {}
        }
    }
    for c in &old.checks {
        if new.check(&c.name).is_none() {
            d.checks_removed.push(c.name.clone());
        }
    }
    d.global_changed = old.global != new.global;
    let groups = |c: &Config| {
        let mut g: Vec<(String, Vec<String>)> = c
            .sync_groups
            .iter()
            .map(|g| (g.name.clone(), g.members.clone()))
            .collect();
        g.sort();
        g
    };
    d.groups_changed = groups(old) != groups(new);
    d.bgp_changed = bgp(old) != bgp(new);
    d
}

/// The speakers and announcements of `c` without their spans.
fn bgp(c: &Config) -> (Vec<SpeakerDef>, Vec<AnnounceDef>) {
    let none = miette::SourceSpan::from(0..0);
    let speakers = c
        .speakers
        .iter()
        .map(|s| SpeakerDef {
            span: none,
            ..s.clone()
        })
        .collect();
    let announces = c
        .announces
        .iter()
        .map(|a| AnnounceDef {
            span: none,
            ..a.clone()
        })
        .collect();
    (speakers, announces)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_str;

    fn cfg(text: &str) -> Config {
        parse_str(text, "t.kdl").unwrap_or_else(|e| panic!("{e}"))
    }

    const BASE: &str = r#"
check "c" { script "true"; interval "1s" }
instance "a" { interface "eth0"; vrid 1; priority 100; vip "192.0.2.100/24"; track "c" }
instance "b" { interface "eth0"; vrid 2; priority 100; vip "192.0.2.101/24" }
"#;

    #[test]
    fn identical_configs_differ_in_nothing() {
        let d = diff(&cfg(BASE), &cfg(BASE));
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(d.unchanged, vec!["a", "b"]);
    }

    #[test]
    fn moved_text_and_comments_are_not_changes() {
        let moved = format!(
            "// a comment\n\n{}",
            BASE.replace("; priority 100;", ";  priority 100 ;")
        );
        assert!(diff(&cfg(BASE), &cfg(&moved)).is_empty());
    }

    #[test]
    fn added_instance_leaves_others_unchanged() {
        let new = format!(
            "{BASE}\ninstance \"x\" {{ interface \"eth0\"; vrid 3; vip \"203.0.113.7/24\" }}"
        );
        let d = diff(&cfg(BASE), &cfg(&new));
        assert_eq!(d.added, vec!["x"]);
        assert_eq!(d.unchanged, vec!["a", "b"]);
        assert!(d.changed.is_empty() && d.removed.is_empty());
    }

    #[test]
    fn priority_change_is_a_change_in_place() {
        let new = BASE.replace("vrid 2; priority 100", "vrid 2; priority 150");
        let d = diff(&cfg(BASE), &cfg(&new));
        assert_eq!(d.changed, vec![("b".to_string(), "b".to_string())]);
        assert_eq!(d.unchanged, vec!["a"]);
    }

    #[test]
    fn vrid_change_is_remove_and_add() {
        let new = BASE.replace("vrid 2;", "vrid 9;");
        let d = diff(&cfg(BASE), &cfg(&new));
        assert_eq!(d.added, vec!["b"]);
        assert_eq!(d.removed, vec!["b"]);
    }

    #[test]
    fn rename_keeps_the_router() {
        let new = BASE.replace("instance \"b\"", "instance \"bee\"");
        let d = diff(&cfg(BASE), &cfg(&new));
        assert_eq!(d.changed, vec![("b".to_string(), "bee".to_string())]);
        assert!(d.added.is_empty() && d.removed.is_empty());
    }

    #[test]
    fn removed_instance_and_changed_check() {
        let new = r#"
check "c" { script "false"; interval "1s" }
instance "a" { interface "eth0"; vrid 1; priority 100; vip "192.0.2.100/24"; track "c" }
"#;
        let d = diff(&cfg(BASE), &cfg(new));
        assert_eq!(d.removed, vec!["b"]);
        assert_eq!(d.checks_changed, vec!["c"]);
        assert_eq!(
            d.unchanged,
            vec!["a"],
            "the instance's own settings did not change"
        );
    }

    #[test]
    fn master_down_adverts_change_is_a_change_in_place() {
        // Per instance: only that instance changes.
        let new = BASE.replace(
            "vrid 2; priority 100",
            "vrid 2; priority 100; master-down-adverts 8",
        );
        let d = diff(&cfg(BASE), &cfg(&new));
        assert_eq!(d.changed, vec![("b".to_string(), "b".to_string())]);
        assert_eq!(d.unchanged, vec!["a"]);
        assert_eq!(cfg(&new).instance("b").unwrap().master_down_adverts, 8);
        // The global default: every instance that does not set its own changes.
        let global = format!("global {{ master-down-adverts 6 }}\n{new}");
        let d = diff(&cfg(&new), &cfg(&global));
        assert_eq!(d.changed, vec![("a".to_string(), "a".to_string())]);
        assert_eq!(d.unchanged, vec!["b"]);
        let g = cfg(&global);
        assert_eq!(g.instance("a").unwrap().master_down_adverts, 6);
        assert_eq!(g.instance("b").unwrap().master_down_adverts, 8);
    }

    #[test]
    fn script_user_change_changes_the_script_checks_that_use_it() {
        let two = format!("{BASE}check \"own\" {{ script \"true\"; user \"nobody\" }}\n");
        let root = format!("global {{ script-user \"root\" }}\n{two}");
        let d = diff(&cfg(&two), &cfg(&root));
        assert_eq!(d.checks_changed, vec!["c"], "`own` has its own user");
        assert!(d.global_changed);
    }

    #[test]
    fn announcements_added_changed_or_moved() {
        let sp = "speaker \"edge\" { daemon \"bird\"; }\n";
        let one =
            format!("{BASE}{sp}announce \"w\" {{ speaker \"edge\"; prefix \"203.0.113.10\"; }}\n");
        assert!(diff(&cfg(BASE), &cfg(&one)).bgp_changed, "added");
        assert!(diff(&cfg(&one), &cfg(BASE)).bgp_changed, "removed");
        let other = one.replace("203.0.113.10", "203.0.113.11");
        assert!(diff(&cfg(&one), &cfg(&other)).bgp_changed, "new prefix");
        let moved = format!("\n\n{one}");
        assert!(diff(&cfg(&one), &cfg(&moved)).is_empty(), "only moved");
    }
}
