//! Turns plugin-sdk/wit into the `__upkeep_world_*` macros that the export macros expand in the
//! plugin's crate: each generates the bindings of one world from the WIT text (inline, so the
//! plugin needs no path to it), reusing this crate's `types` and `host` bindings.
//!
//! Why in the plugin's crate: a component's world is the union of the worlds whose bindings are
//! linked into it. If this crate generated the export side of every world, a check would also
//! have to export `notify`.

use std::fmt::Write;
use std::path::Path;

const WORLDS: [(&str, &str); 3] = [
    ("check", "check-plugin"),
    ("notify", "notify-plugin"),
    ("plugin", "plugin"),
];

fn main() {
    let wit_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit/upkeep-plugin.wit");
    println!("cargo:rerun-if-changed={}", wit_file.display());
    let wit = std::fs::read_to_string(&wit_file)
        .unwrap_or_else(|e| panic!("reading {}: {e}", wit_file.display()));

    // The `with` keys must name the version: "upkeep:plugin/types@0.1.0".
    let package = wit
        .lines()
        .find_map(|l| l.trim().strip_prefix("package ")?.strip_suffix(';'))
        .expect("the WIT has a `package` line")
        .trim()
        .to_string();
    let (name_space, version) = package
        .split_once('@')
        .expect("the WIT package is versioned");

    let mut out = String::new();
    for (name, world) in WORLDS {
        write!(
            out,
            r#"
/// Generates the bindings of world `{world}` here (used by the export macros).
#[doc(hidden)]
#[macro_export]
macro_rules! __upkeep_world_{name} {{
    () => {{
        $crate::__wit_bindgen::generate!({{
            inline: {wit:?},
            world: "{world}",
            with: {{
                "{name_space}/types@{version}": ::upkeep_plugin_sdk::bindings::upkeep::plugin::types,
                "{name_space}/host@{version}": ::upkeep_plugin_sdk::bindings::upkeep::plugin::host,
            }},
            runtime_path: "::upkeep_plugin_sdk::__wit_bindgen::rt",
        }});
    }};
}}
"#
        )
        .expect("writing to a String");
    }
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("worlds.rs");
    std::fs::write(&dest, out).unwrap_or_else(|e| panic!("writing {}: {e}", dest.display()));
}
