//! The endpoint's address alone, from a file that may not be a valid config.
//!
//! # Design
//! `broker reload --config FILE` and `broker status --config FILE` need only `[broker] metrics`
//! to find the running broker. The file on disk is exactly what a reload is about to judge, so
//! it may be invalid (being edited, or just refused): reading it whole would stop the CLI before
//! it asks the broker, which would then neither refuse the file itself nor count the refusal.
//! This reads the one key, with the same type and default as the full config
//! ([`MetricsAddress`]), and ignores everything else.
//!
//! # Limitations
//! A file that is not TOML at all, or whose `[broker] metrics` is itself wrong, names no
//! endpoint: that is a [`ConfigError`] as [`crate::load`] would report it.

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

use crate::error::{ConfigError, Issue};
use crate::locate::SourceMap;
use crate::values::MetricsAddress;

/// Only `[broker] metrics`; every other key is let through unread.
#[derive(Deserialize)]
struct OnlyBroker {
    broker: Option<OnlyMetrics>,
}

#[derive(Deserialize)]
struct OnlyMetrics {
    metrics: Option<MetricsAddress>,
}

/// The endpoint address `[broker] metrics` of the file at `path` sets (the default when the key
/// is absent, `None` when it is `""`), whether or not the rest of the file is a valid config.
///
/// # Errors
/// The file cannot be read, is not TOML, or its `metrics` is not an address.
pub fn endpoint_address(path: &Path) -> Result<Option<SocketAddr>, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|error| ConfigError::unreadable(path, error))?;
    let only: OnlyBroker = toml::from_str(&text).map_err(|error| {
        let source_map = SourceMap::new(&text);
        ConfigError::in_text(
            Some(path),
            &source_map,
            vec![Issue::from_toml(&error, &text)],
        )
    })?;
    Ok(only
        .broker
        .and_then(|broker| broker.metrics)
        .map_or(Some(MetricsAddress::DEFAULT), MetricsAddress::get))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `endpoint_address` of a file holding `text` (one file per call: tests run in parallel).
    fn address_of(text: &str) -> Result<Option<SocketAddr>, ConfigError> {
        static FILES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("endpoint-{}-{n}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let address = endpoint_address(&path);
        let _ = std::fs::remove_file(&path);
        address
    }

    #[test]
    fn the_address_of_an_invalid_config() {
        // Not a valid config (no ingress, an unknown key, a bad value elsewhere): the address
        // is still read.
        let text = "[broker]\nname = \"x\"\nmetrics = \"127.0.0.1:9999\"\nbogus = 1\n\
                    [[session]]\nvni = \"nope\"\n";
        assert!(crate::parse(text, None).is_err());
        assert_eq!(
            address_of(text).unwrap(),
            Some("127.0.0.1:9999".parse().unwrap())
        );
    }

    #[test]
    fn default_off_and_wrong() {
        assert_eq!(
            address_of("[broker]\nname = \"x\"\n").unwrap(),
            Some(MetricsAddress::DEFAULT)
        );
        assert_eq!(address_of("").unwrap(), Some(MetricsAddress::DEFAULT));
        assert_eq!(address_of("[broker]\nmetrics = \"\"\n").unwrap(), None);
        let error = address_of("[broker]\nmetrics = \"localhost:1\"\n").unwrap_err();
        assert_eq!(
            (error.line(), error.key_path()),
            (Some(2), "broker.metrics")
        );
        assert!(address_of("[broker\n").is_err());
    }
}
