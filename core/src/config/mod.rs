//! Configuration: the data model the daemon runs on, the KDL reader that builds and validates
//! it, and the translator from keepalived.conf.
//!
//! `model` is plain data; `parse` turns a KDL file into a [`Config`] or a [`ConfigError`] that
//! lists every problem with its line and column; `host` checks what a config needs of the
//! host (the users scripts run as, and what they may run); `import` writes KDL from a
//! keepalived.conf.

pub mod diff;
mod fast_kdl;
pub mod host;
pub mod import;
pub mod model;
pub mod parse;
mod split;

pub use model::*;
pub use parse::{load, parse_str, ConfigError};

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
