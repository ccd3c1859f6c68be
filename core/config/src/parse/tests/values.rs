//! The size parser, typo suggestions and line:column.

use super::*;

#[test]
fn sizes() {
    for (text, want) in [
        ("0", 0),
        ("1048576", 1 << 20),
        ("10B", 10),
        ("512KiB", 512 << 10),
        ("16MiB", 16 << 20),
        ("16 MiB", 16 << 20),
        ("4GiB", 4 << 30),
    ] {
        assert_eq!(parse_size(text), Ok(want), "{text}");
    }
    for bad in [
        "",
        "MiB",
        "1.5GiB",
        "-1",
        "16mb",
        "1TiB",
        "99999999999999999999",
    ] {
        assert!(parse_size(bad).is_err(), "{bad}");
    }
    assert!(parse_size("16MB").unwrap_err().contains("`MiB`"));
    assert!(parse_size("2k").unwrap_err().contains("`KiB`"));
}

#[test]
fn suggestions() {
    assert_eq!(edit_distance("vird", "vrid"), 1);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(
        closest("interfce", INSTANCE_KEYS.iter().copied()),
        Some("interface")
    );
    assert_eq!(
        closest("preempt_delay", INSTANCE_KEYS.iter().copied()),
        Some("preempt-delay")
    );
    assert_eq!(closest("zebra", INSTANCE_KEYS.iter().copied()), None);
    assert_eq!(line_col("ab\ncdé\nf", 8), (3, 1));
    assert_eq!(line_col("ab\ncdé\nf", 7), (2, 4));
}
