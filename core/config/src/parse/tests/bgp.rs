//! `speaker` and `announce`: what they read into, and the configs refused with their places.

use super::*;
use crate::model::{OnFault, SpeakerDaemon};

const CHECK: &str = "check \"port80\" { listener 80 }\n";

#[test]
fn speaker_and_announce_parse() {
    let src = format!(
        r#"{CHECK}speaker "edge" {{
    daemon "bird"
    control "/run/bird/bird.ctl"
    include "/run/upkeep/edge.conf"
    timeout "500ms"
}}
speaker "lab" {{ daemon "bird"; }}
announce "web-1" {{
    speaker "edge"
    prefix "203.0.113.10/32"
    track "port80" weight=-10
    med 20
    on-fault "withdraw"
}}
announce "v6" {{ speaker "lab"; prefix "2001:db8::10"; }}
"#
    );
    let cfg = ok(&src);
    let edge = cfg.speaker("edge").unwrap();
    assert_eq!(edge.daemon, SpeakerDaemon::Bird);
    assert_eq!(edge.control, PathBuf::from("/run/bird/bird.ctl"));
    assert_eq!(edge.include, PathBuf::from("/run/upkeep/edge.conf"));
    assert_eq!(edge.timeout, Duration::from_millis(500));
    let lab = cfg.speaker("lab").unwrap();
    assert_eq!(lab.include, PathBuf::from("/run/upkeep/bird-lab.conf"));
    assert_eq!(lab.timeout, Duration::from_secs(2));
    let web = &cfg.announces[0];
    assert_eq!(web.speaker, "edge");
    assert_eq!(web.prefix.to_string(), "203.0.113.10");
    assert_eq!(web.prefix_len, 32);
    assert_eq!(
        web.tracks,
        vec![Track {
            check: "port80".into(),
            weight: Some(-10)
        }]
    );
    assert_eq!(web.on_fault, OnFault::Withdraw);
    assert_eq!(web.med, Some(20));
    assert_eq!(web.protocol_name(), "upkeep_web_1");
    let v6 = &cfg.announces[1];
    assert_eq!(
        (v6.prefix.to_string().as_str(), v6.prefix_len),
        ("2001:db8::10", 128)
    );
    assert!(v6.tracks.is_empty());
    assert_eq!(v6.med, None);
}

#[test]
fn bad_speakers_and_announces_are_refused_where_they_are() {
    let sp = "speaker \"edge\" { daemon \"bird\"; }\n"; // line 2 after CHECK
    problems_with_help(&[
        (
            format!("{CHECK}speaker \"e\" {{ daemon \"brid\"; }}\n"),
            2,
            22,
            "`daemon` is not one of bird",
            "did you mean `bird`?",
        ),
        (
            format!("{CHECK}speaker \"e\" {{ control \"bird.ctl\"; }}\n"),
            2,
            1,
            "has no `daemon`",
            "daemon \"bird\"",
        ),
        (
            format!("{CHECK}speaker \"e\" {{ daemon \"bird\"; control \"bird.ctl\"; }}\n"),
            2,
            38,
            "must be an absolute file path",
            "/run/bird/bird.ctl",
        ),
        (
            format!("{CHECK}{sp}announce \"w\" {{ speaker \"egde\"; prefix \"203.0.113.10/32\"; }}\n"),
            3,
            24,
            "there is no speaker named `egde`",
            "did you mean `edge`?",
        ),
        (
            format!("{CHECK}announce \"w\" {{ speaker \"edge\"; prefix \"203.0.113.10\"; }}\n"),
            2,
            24,
            "there is no speaker named `edge`",
            "define it",
        ),
        (
            format!("{CHECK}{sp}announce \"w\" {{ speaker \"edge\"; prefix \"203.0.113.0/24\"; }}\n"),
            3,
            39,
            "must be a single address (/32), not /24",
            "203.0.113.10/32",
        ),
        (
            format!("{CHECK}{sp}announce \"w\" {{ speaker \"edge\"; prefix \"2001:db8::/64\"; }}\n"),
            3,
            39,
            "(/128), not /64",
            "",
        ),
        (
            format!("{CHECK}{sp}announce \"w\" {{ speaker \"edge\"; prefix \"203.0.113.10\"; track \"port08\"; }}\n"),
            3,
            61,
            "there is no check named `port08`",
            "did you mean `port80`?",
        ),
        (
            format!("{CHECK}{sp}announce \"w\" {{ prefix \"203.0.113.10\"; }}\n"),
            3,
            1,
            "announce `w` has no `speaker`",
            "speaker \"edge\"",
        ),
        (
            format!("{CHECK}{sp}announce \"w\" {{ speaker \"edge\"; }}\n"),
            3,
            1,
            "announce `w` has no `prefix`",
            "203.0.113.10/32",
        ),
        (
            format!("{CHECK}{sp}announce \"w\" {{ speaker \"edge\"; prefix \"203.0.113.10\"; on-fault \"drop\"; }}\n"),
            3,
            64,
            "`on-fault` is not one of withdraw, demote",
            "",
        ),
        (
            format!("{CHECK}{sp}announce \"w\" {{ speaker \"edge\"; prefix \"203.0.113.10\"; priority 5; }}\n"),
            3,
            55,
            "unknown setting `priority` in announce `w`",
            "known here: speaker",
        ),
    ]);
}

#[test]
fn demote_needs_its_med() {
    let sp = "speaker \"edge\" { daemon \"bird\"; }\n";
    let a = |body: &str| {
        format!(
            "{CHECK}{sp}announce \"w\" {{ speaker \"edge\"; prefix \"203.0.113.10\"; {body} }}\n"
        )
    };
    let cfg = ok(&a("on-fault \"demote\"; demote-med 1000;"));
    assert_eq!(cfg.announces[0].on_fault, OnFault::Demote { med: 1000 });
    assert_eq!(cfg.announces[0].demoted_protocol_name(), "upkeep_w_demoted");
    problem_at(
        &a("on-fault \"demote\";"),
        3,
        55,
        "is demoted on a fault but has no `demote-med`",
    );
    problem_at(
        &a("demote-med 5;"),
        3,
        55,
        "`demote-med` without `on-fault \"demote\"`",
    );
    // `w_demoted`'s protocol is `w`'s demoted one.
    let two = format!(
        "{}announce \"w_demoted\" {{ speaker \"edge\"; prefix \"203.0.113.11\"; }}\n",
        a("on-fault \"demote\"; demote-med 9;")
    );
    problem_at(&two, 4, 10, "would both be the daemon's protocol");
}

#[test]
fn an_announcement_may_follow_an_instance() {
    let sp = "speaker \"edge\" { daemon \"bird\"; }\n";
    let src = format!(
        "{}{sp}announce \"w\" {{ speaker \"edge\"; prefix \"203.0.113.10\"; instance \"web\"; }}\n",
        web("")
    );
    assert_eq!(ok(&src).announces[0].instance.as_deref(), Some("web"));
    let bad = src.replace("instance \"web\";", "instance \"wbe\";");
    let p = problem_at(&bad, 7, 64, "there is no instance named `wbe`");
    assert_eq!(help_of(&p), "did you mean `web`?");
}

#[test]
fn announcements_that_would_collide_are_refused() {
    let sp = "speaker \"edge\" { daemon \"bird\"; }\n";
    let src = format!(
        "{CHECK}{sp}announce \"a\" {{ speaker \"edge\"; prefix \"203.0.113.10\"; }}\nannounce \"b\" {{ speaker \"edge\"; prefix \"203.0.113.10/32\"; }}\n"
    );
    problem_at(&src, 4, 24, "announce `a` already announces 203.0.113.10");
    let src = format!(
        "{CHECK}{sp}announce \"web-1\" {{ speaker \"edge\"; prefix \"203.0.113.10\"; }}\nannounce \"web_1\" {{ speaker \"edge\"; prefix \"203.0.113.11\"; }}\n"
    );
    problem_at(
        &src,
        4,
        10,
        "would both be the daemon's protocol `upkeep_web_1`",
    );
    problem_at(
        "speaker \"../x\" { daemon \"bird\"; }\n",
        1,
        9,
        "speaker name `../x` may hold only letters",
    );
    let src = format!("{sp}{sp}");
    problem_at(&src, 2, 9, "there is already a speaker named `edge`");
}
