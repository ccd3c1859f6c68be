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
