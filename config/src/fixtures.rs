//! Configs for the tests of every crate (compiled for this crate's tests and with the `fixtures`
//! feature, which the other crates enable for their tests, benches and fuzz targets only).
//!
//! Each text is a valid config; tests edit them (`str::replace`, appended tables) to make the
//! case they need.

use crate::ValidatedConfig;

/// The smallest valid config: one session, one group, one port.
pub const MINIMAL: &str = r#"
[broker]
name = "test"
[[ingress]]
name = "in"
device = "net_null0"
[[session]]
name = "s"
vni = 1
tools = ["g"]
[[tool_group]]
name = "g"
ports = [{ name = "g-1", device = "net_null1" }]
"#;

/// Two sessions; group "a" (flow balance, 2 ports) takes both, group "b" (source balance,
/// sliced to 64 bytes, 1 port) only session "b". Tool ports: 0 = a-1, 1 = a-2, 2 = b-1.
pub const TWO_SESSIONS: &str = r#"
[broker]
name = "test"
[[ingress]]
name = "in"
device = "net_null0"
[[session]]
name = "a"
vni = 101
tools = ["a"]
source_ips = ["10.0.1.10"]
[[session]]
name = "b"
vni = 202
tools = ["a", "b"]
[[tool_group]]
name = "a"
balance = "flow"
ports = [{ name = "a-1", device = "net_null1" }, { name = "a-2", device = "net_null2" }]
[[tool_group]]
name = "b"
balance = "source"
slice = 64
ports = [{ name = "b-1", device = "net_null3" }]
"#;

/// Parses a config that the test knows to be valid.
///
/// # Panics
/// When it is not (the test is wrong), with every problem and the text.
pub fn config(text: &str) -> ValidatedConfig {
    match crate::parse(text, None) {
        Ok(config) => config,
        Err(error) => panic!(
            "test config does not validate:\n{}\n--- config:\n{text}",
            error.detailed()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixtures_validate() {
        assert_eq!(config(MINIMAL).sessions.len(), 1);
        let two = config(TWO_SESSIONS);
        assert_eq!((two.sessions.len(), two.tool_ports.len()), (2, 3));
    }
}
