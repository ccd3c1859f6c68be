//! The KDL config loader (`config::parse_str`) on any text, and the error report `upkeep check`
//! prints for it. A config that loads must compare equal to itself in a reload diff, and to what
//! the kdl crate's parse gives (a config in its subset is read by the quick reader).
#![no_main]

use libfuzzer_sys::fuzz_target;
use upkeep_config::diff::diff;
use upkeep_config::parse::parse_str_kdl_only;
use upkeep_config::parse_str;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_str(text, "fuzz.kdl") {
        Ok(config) => {
            assert!(diff(&config, &config).is_empty(), "{config:?}");
            let reference = parse_str_kdl_only(text, "fuzz.kdl");
            assert!(
                matches!(&reference, Ok(r) if *r == config),
                "the quick reader and the kdl crate differ on {text:?}: {reference:?}"
            );
        }
        Err(err) => {
            for (line, column, message) in err.problems() {
                assert!(line >= 1 && column >= 1, "{line}:{column}: {message}");
            }
            // `upkeep check` renders the error with its source spans.
            let report = format!("{:?}", miette::Report::new(err));
            assert!(!report.is_empty());
        }
    }
});
