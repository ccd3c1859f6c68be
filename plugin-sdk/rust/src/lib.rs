//! Write upkeep health checks and notify hooks in Rust, as WebAssembly components.
//!
//! A check is a type that implements [`Check`], exported with [`export_check!`], built with
//! `cargo build --release --target wasm32-wasip2` as a `cdylib`:
//!
//! ```ignore
//! use upkeep_plugin_sdk::{export_check, Capability, Check, Config, Metadata};
//!
//! struct AlwaysUp;
//!
//! impl Check for AlwaysUp {
//!     fn metadata() -> Metadata {
//!         Metadata::new("always-up", "1.0.0", "healthy, always", &[Capability::Log])
//!     }
//!     fn check(_config: &Config) -> Result<String, String> {
//!         upkeep_plugin_sdk::host::info("all good");
//!         Ok("up".into())
//!     }
//! }
//!
//! export_check!(AlwaysUp);
//! ```
//!
//! Each export macro picks a world of `plugin-sdk/wit/upkeep-plugin.wit`: [`export_check!`] a
//! health check (`check-plugin`), [`export_notify!`] a notify hook ([`Notify`], `notify-plugin`),
//! [`export_plugin!`] both (`plugin`). The component exports exactly its world's functions.
//! The crate must be a dependency under its own name, `upkeep_plugin_sdk`.
//!
//! What the plugin may do outside its own memory is what [`host`] offers, and only for the
//! capabilities it lists in its [`Metadata`] and the operator grants. It has no filesystem, no
//! network and no environment otherwise.
//!
//! Not for: the host side, which is `upkeep::checks::wasm` in the daemon.

#![deny(unsafe_code)]
#![warn(missing_docs)]

/// The `types` and `host` bindings, shared by every world; used by the export macros.
#[doc(hidden)]
#[allow(unsafe_code, missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        inline: "
            package upkeep:sdk;
            world imports {
                import upkeep:plugin/host@0.1.0;
            }
        ",
        path: "../wit",
        world: "upkeep:sdk/imports",
        generate_all,
    });
}

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

// `__upkeep_world_check!()` and the others: see build.rs.
include!(concat!(env!("OUT_DIR"), "/worlds.rs"));

use std::fmt;
use std::str::FromStr;

#[doc(hidden)]
pub use bindings::upkeep::plugin::types::CheckResult;
pub use bindings::upkeep::plugin::types::{
    Capability, HostError, IpAddress, LogLevel, Metadata, Protocol, SocketAddr as WitSocketAddr,
    Transition,
};

impl Metadata {
    /// Metadata from borrowed parts.
    pub fn new(name: &str, version: &str, description: &str, capabilities: &[Capability]) -> Self {
        Metadata {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            capabilities: capabilities.to_vec(),
        }
    }
}

impl HostError {
    /// A one-line description, e.g. "capability read-file not granted".
    pub fn message(&self) -> String {
        match self {
            HostError::NotGranted(c) => format!("capability {} not granted", capability_name(*c)),
            HostError::Denied(m) => format!("denied: {m}"),
            HostError::Failed(m) => m.clone(),
        }
    }
}

/// The WIT name of a capability, e.g. "listening-sockets".
pub fn capability_name(c: Capability) -> &'static str {
    match c {
        Capability::ListeningSockets => "listening-sockets",
        Capability::TcpConnect => "tcp-connect",
        Capability::ReadFile => "read-file",
        Capability::Log => "log",
        Capability::Clock => "clock",
    }
}

/// The check's settings from the daemon's config, as `key=value` pairs in order.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pairs: Vec<(String, String)>,
}

impl Config {
    /// Wraps the pairs the host passed.
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Config { pairs }
    }

    /// The value of `key`; the last one if it is given more than once.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key` parsed as `T`; `Ok(None)` when absent, `Err` with a message naming the
    /// key when it does not parse.
    pub fn parse<T>(&self, key: &str) -> Result<Option<T>, String>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|e| format!("config `{key}`: invalid value `{v}`: {e}")),
        }
    }

    /// Like [`Config::parse`], but the key must be there.
    pub fn require<T>(&self, key: &str) -> Result<T, String>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.parse(key)?
            .ok_or_else(|| format!("config `{key}` is required"))
    }

    /// All pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// A health check.
pub trait Check {
    /// Who the plugin is and which capabilities it needs. Called once at load; must not call
    /// [`host`] functions.
    fn metadata() -> Metadata;

    /// One run: `Ok(message)` is healthy, `Err(message)` is not. Each run starts from a fresh
    /// instance, so nothing (statics included) is kept between runs.
    fn check(config: &Config) -> Result<String, String>;
}

/// A notify hook, told of each VRRP state change (keepalived's `notify` scripts).
pub trait Notify {
    /// As [`Check::metadata`]. A plugin that is both uses [`Check::metadata`].
    fn metadata() -> Metadata;

    /// One state change.
    fn notify(transition: &Transition);
}

#[doc(hidden)]
pub fn __run_check<T: Check>(config: Vec<(String, String)>) -> CheckResult {
    match T::check(&Config::new(config)) {
        Ok(message) => CheckResult {
            healthy: true,
            message,
        },
        Err(message) => CheckResult {
            healthy: false,
            message,
        },
    }
}

/// Exports a [`Check`] as the component's `metadata` and `check` (world `check-plugin`).
/// Once per crate, at its root.
#[macro_export]
macro_rules! export_check {
    ($t:ty) => {
        #[doc(hidden)]
        #[allow(unsafe_code, missing_docs, clippy::all)]
        mod __upkeep_bindings {
            $crate::__upkeep_world_check!();
        }
        const _: () = {
            struct __UpkeepExport;
            impl __upkeep_bindings::Guest for __UpkeepExport {
                fn metadata() -> $crate::Metadata {
                    <$t as $crate::Check>::metadata()
                }
                fn check(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> $crate::CheckResult {
                    $crate::__run_check::<$t>(config)
                }
            }
    __upkeep_bindings::export!(__UpkeepExport with_types_in __upkeep_bindings);
        };
    };
}

/// Exports a [`Notify`] as the component's `metadata` and `notify` (world `notify-plugin`).
/// Once per crate, at its root.
#[macro_export]
macro_rules! export_notify {
    ($t:ty) => {
        #[doc(hidden)]
        #[allow(unsafe_code, missing_docs, clippy::all)]
        mod __upkeep_bindings {
            $crate::__upkeep_world_notify!();
        }
        const _: () = {
            struct __UpkeepExport;
            impl __upkeep_bindings::Guest for __UpkeepExport {
                fn metadata() -> $crate::Metadata {
                    <$t as $crate::Notify>::metadata()
                }
                fn notify(event: $crate::Transition) {
                    <$t as $crate::Notify>::notify(&event)
                }
            }
    __upkeep_bindings::export!(__UpkeepExport with_types_in __upkeep_bindings);
        };
    };
}

/// Exports a type that is both a [`Check`] and a [`Notify`] (world `plugin`); its metadata is
/// [`Check::metadata`]. Once per crate, at its root.
#[macro_export]
macro_rules! export_plugin {
    ($t:ty) => {
        #[doc(hidden)]
        #[allow(unsafe_code, missing_docs, clippy::all)]
        mod __upkeep_bindings {
            $crate::__upkeep_world_plugin!();
        }
        const _: () = {
            struct __UpkeepExport;
            impl __upkeep_bindings::Guest for __UpkeepExport {
                fn metadata() -> $crate::Metadata {
                    <$t as $crate::Check>::metadata()
                }
                fn check(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> $crate::CheckResult {
                    $crate::__run_check::<$t>(config)
                }
                fn notify(event: $crate::Transition) {
                    <$t as $crate::Notify>::notify(&event)
                }
            }
    __upkeep_bindings::export!(__UpkeepExport with_types_in __upkeep_bindings);
        };
    };
}

/// The host's functions, each behind a capability. A call whose capability the plugin did not
/// declare, or the operator did not grant, returns [`HostError::NotGranted`].
pub mod host {
    use super::bindings::upkeep::plugin::host as raw;
    use super::{HostError, IpAddress, LogLevel, Protocol};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    use std::time::Duration;

    /// Sockets listening (TCP) or bound and unconnected (UDP) in the daemon's network
    /// namespace, IPv4 and IPv6. Capability `listening-sockets`.
    pub fn listening_sockets(proto: Protocol) -> Result<Vec<SocketAddr>, HostError> {
        Ok(raw::listening_sockets(proto)?
            .into_iter()
            .map(|s| SocketAddr::new(ip_from_wit(s.address), s.port))
            .collect())
    }

    /// Opens and closes a TCP connection to `addr:port`. Capability `tcp-connect`.
    pub fn tcp_connect(addr: IpAddr, port: u16, timeout: Duration) -> Result<(), HostError> {
        let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        raw::tcp_connect(&addr.to_string(), port, ms)
    }

    /// Reads a granted file as text. Capability `read-file`.
    pub fn read_file(path: &str) -> Result<String, HostError> {
        raw::read_file(path)
    }

    /// Wall-clock milliseconds since the Unix epoch. Capability `clock`.
    pub fn now_ms() -> Result<u64, HostError> {
        raw::now_ms()
    }

    /// Writes to the daemon's log (capability `log`); dropped if not granted.
    pub fn log(level: LogLevel, message: &str) {
        let _ = raw::log(level, message);
    }

    /// [`log`] at debug level.
    pub fn debug(message: &str) {
        log(LogLevel::Debug, message)
    }

    /// [`log`] at info level.
    pub fn info(message: &str) {
        log(LogLevel::Info, message)
    }

    /// [`log`] at warn level.
    pub fn warn(message: &str) {
        log(LogLevel::Warn, message)
    }

    /// [`log`] at error level.
    pub fn error(message: &str) {
        log(LogLevel::Error, message)
    }

    /// A WIT address as a std one.
    pub fn ip_from_wit(a: IpAddress) -> IpAddr {
        match a {
            IpAddress::Ipv4((a, b, c, d)) => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
                IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h))
            }
        }
    }
}
