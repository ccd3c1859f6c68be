//! Host bindings of `upkeep:plugin@0.1.0` (plugin-sdk/wit/upkeep-plugin.wit).
//!
//! One module per released WIT version: a later version gets its own file next to this one, and
//! the host keeps loading plugins built against this one.

/// The `check-plugin` world; also owns the `types` and `host` interfaces for the other worlds.
pub(super) mod check {
    wasmtime::component::bindgen!({
        world: "check-plugin",
        path: "../plugin-sdk/wit",
        imports: {
            "upkeep:plugin/host.tcp-connect": async,
            // File system work runs on a blocking thread, given up at the call's deadline.
            "upkeep:plugin/host.read-file": async,
            "upkeep:plugin/host.listening-sockets": async,
        },
        exports: { default: async },
    });
}

/// The `notify-plugin` world.
pub(super) mod notify {
    wasmtime::component::bindgen!({
        world: "notify-plugin",
        path: "../plugin-sdk/wit",
        exports: { default: async },
        with: {
            "upkeep:plugin/types": super::check::upkeep::plugin::types,
            "upkeep:plugin/host": super::check::upkeep::plugin::host,
        },
    });
}
