//! Tests of the config reader, by topic; the helpers here build configs and find problems.

mod accept;
mod announce;
mod bgp;
mod checks;
mod hosted;
mod limits;
mod problems;
mod values;

use std::path::PathBuf;
use std::time::Duration;

use miette::Diagnostic;

use super::schema::INSTANCE_KEYS;
use super::suggest::{closest, edit_distance};
use super::value::parse_size;
use super::*;
use crate::model::{
    CheckKind, Global, Grants, InitialState, ListenerProto, Notify, Route, Track, Vip, VrrpVersion,
    DEFAULT_MEMORY_LIMIT, MAX_MEMORY_LIMIT,
};

/// An instance "web" on eth0, vrid 51, one IPv4 VIP; `body` lines start at line 5.
fn web(body: &str) -> String {
    format!(
            "instance \"web\" {{\n    interface \"eth0\"\n    vrid 51\n    vip \"192.0.2.100/24\"\n{body}}}\n"
        )
}

fn problems_of(src: &str) -> Vec<Problem> {
    match parse_str(src, "t.kdl") {
        Ok(cfg) => panic!("expected problems, got {cfg:#?}"),
        Err(ConfigError::Invalid { problems, .. }) => problems,
        Err(e) => panic!("unexpected {e}"),
    }
}

/// Asserts a problem whose message contains `needle` starts at `line`:`col`, and returns it.
fn problem_at(src: &str, line: usize, col: usize, needle: &str) -> Problem {
    let problems = problems_of(src);
    problems
        .iter()
        .find(|p| p.line == line && p.column == col && p.message.contains(needle))
        .cloned()
        .unwrap_or_else(|| panic!("no `{needle}` at {line}:{col} in {problems:#?}"))
}

/// [`problem_at`] for each (source, line, column, needle).
fn problems_at(cases: &[(String, usize, usize, &str)]) {
    for (src, line, col, needle) in cases {
        problem_at(src, *line, *col, needle);
    }
}

/// [`problem_at`] for each (source, line, column, needle, text its help contains).
fn problems_with_help(cases: &[(String, usize, usize, &str, &str)]) {
    for (src, line, col, needle, help) in cases {
        let p = problem_at(src, *line, *col, needle);
        assert!(help_of(&p).contains(help), "{p:?}");
    }
}

fn help_of(p: &Problem) -> &str {
    p.help.as_deref().unwrap_or("")
}

fn ok(src: &str) -> Config {
    parse_str(src, "t.kdl").unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)))
}
