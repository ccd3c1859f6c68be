//! Running an operator's programs: how a command line is run, contained ([`process`]), and who
//! may run what ([`security`]: script users and script security). Check scripts, notify hooks
//! and the host checks of a config (the `host` module) all go through here; this module imports
//! nothing else of the crate.

pub mod process;
pub mod security;
mod shell;
