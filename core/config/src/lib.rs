//! upkeep's configuration: the data model the daemon runs on and the KDL reader that builds and
//! validates it.
//!
//! `model` is plain data; `parse` turns a KDL file into a [`Config`] or a [`ConfigError`] that
//! lists every problem with its line and column; `diff` says what a reload changes. What a
//! config needs of the host (users, scripts) is checked by the daemon (`upkeep::host`); the
//! translator from keepalived.conf is the `upkeep-keepalived` crate.

pub mod diff;
mod fast_kdl;
pub mod model;
pub mod parse;

pub use model::*;
pub use parse::{load, load_with_source, parse_str, ConfigError};

/// Every `.kdl` file under `dir` (none if it does not exist): the configs tests read.
#[cfg(test)]
pub(crate) fn kdl_files_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            kdl_files_under(&p, out);
        } else if p.extension().is_some_and(|x| x == "kdl") {
            out.push(p);
        }
    }
}
