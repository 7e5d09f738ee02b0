//! Helpers shared by the config tests: a small valid config and a way to say where an error must
//! point without counting lines by hand.

#![allow(dead_code)]

use config::{ConfigError, ValidatedConfig};

/// The smallest config that is valid and warning-free; tests append to it or edit it.
pub const MINIMAL: &str = r#"[broker]
name = "lab"

[[ingress]]
name = "mirror0"
device = "net_pcap0,rx_pcap=in.pcap"

[decap]
allowed_sources = ["10.0.0.0/8"]

[[session]]
name = "web"
vni = 101
tools = ["ids"]

[[tool_group]]
name = "ids"
ports = [{ name = "ids-1", device = "net_pcap1,tx_pcap=out.pcap" }]
"#;

/// `MINIMAL` with `extra` appended (later tables, more `[[…]]` entries).
pub fn minimal_with(extra: &str) -> String {
    format!("{MINIMAL}\n{extra}")
}

/// Parses a config the test knows to be valid (panics with every problem otherwise).
pub fn accepted(text: &str) -> ValidatedConfig {
    config::fixtures::config(text)
}

pub fn refused(text: &str) -> ConfigError {
    match config::parse(text, None) {
        Ok(_) => panic!("accepted, but should not be:\n{text}"),
        Err(error) => error,
    }
}

/// 1-based line and column of the `nth` (0-based) occurrence of `needle` in `text`.
pub fn position(text: &str, needle: &str, nth: usize) -> (usize, usize) {
    let offset = text
        .match_indices(needle)
        .nth(nth)
        .unwrap_or_else(|| panic!("{needle:?} occurs fewer than {} times", nth + 1))
        .0;
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    (line, text[line_start..offset].chars().count() + 1)
}

/// Asserts that `text` is refused and that its first error is at the `nth` occurrence of
/// `needle`, with `key_path`, a message containing `message`, and a `Display` line naming all
/// three.
pub fn assert_refused_at(
    text: &str,
    needle: &str,
    nth: usize,
    key_path: &str,
    message: &str,
) -> ConfigError {
    let error = refused(text);
    let (line, column) = position(text, needle, nth);
    let shown = error.to_string();
    assert_eq!(
        (error.line(), error.column(), error.key_path()),
        (Some(line), Some(column), key_path),
        "wrong location for:\n{shown}"
    );
    assert!(
        error.message().contains(message),
        "message {:?} lacks {message:?}",
        error.message()
    );
    let header = format!("<string>:{line}:{column}: {key_path}: ");
    assert!(
        shown.starts_with(&header),
        "{shown:?} does not start with {header:?}"
    );
    error
}
