//! The keepalived.conf importer (`config::import::import_str`) on any text. Its output must be
//! well-formed KDL, and whenever upkeep would refuse it the import says so in a warning.
//!
//! Inputs that `include` an absolute path are skipped: includes read files, and the fuzzer
//! would find `/dev/zero` (an endless file, read whole as a config would be). Relative ones
//! resolve under a directory that does not exist, so they read nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use upkeep_keepalived::import_str;
use upkeep_config::parse_str;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let absolute_include = text.lines().any(|l| {
        l.trim()
            .trim_start_matches('"')
            .strip_prefix("include")
            .is_some_and(|rest| {
                let rest = rest.strip_prefix('"').unwrap_or(rest).trim_start();
                rest.trim_start_matches('"').starts_with('/')
            })
    });
    if absolute_include {
        return;
    }
    let Ok(imported) = import_str(text, "/nonexistent/upkeep-fuzz/keepalived.conf") else {
        return;
    };
    if let Err(e) = kdl::KdlDocument::parse(&imported.kdl) {
        panic!("import wrote invalid KDL: {e:?}\n{}", imported.kdl);
    }
    if parse_str(&imported.kdl, "imported.kdl").is_err() {
        assert!(
            imported
                .warnings
                .iter()
                .any(|w| w.message.contains("upkeep will refuse")),
            "refused without a warning:\n{}",
            imported.kdl
        );
    }
});
