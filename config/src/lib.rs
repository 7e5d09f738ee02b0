//! The broker's configuration: one TOML file turned into a [`ValidatedConfig`].
//!
//! # Design
//! "Parse, don't validate", in three steps:
//! 1. `values`: every scalar checks itself as it deserializes (a `Vni` fits 24 bits, a
//!    `PortRange` is not empty, a name is a name);
//! 2. `raw`: `deny_unknown_fields` structs mirror the file, keeping the location of what later
//!    checks need;
//! 3. `validate`: names are made unique and resolved into indices, references and cross-key rules
//!    checked, and the [`ValidatedConfig`] built: the only thing the runtime accepts.
//!
//! Every problem becomes a [`ConfigError`] diagnostic naming the file, line, column and key path
//! (`lab.toml:23:9: session[1] ("web").tools[0]: unknown tool group "idz" (known: ids, pcap)`),
//! worked out in one place (`locate`) from the span of the offending text.
//!
//! # Limitations
//! A value that does not parse (wrong type, out of range, unknown key) stops the reading of the
//! file, so only the first such error is reported; the checks of step 3 report all their problems
//! at once.

#![forbid(unsafe_code)]

pub mod aws_import;
mod describe;
mod endpoint;
mod error;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
mod fleet;
mod locate;
pub mod model;
mod raw;
mod validate;
mod values;

use std::path::Path;

pub use endpoint::endpoint_address;
pub use error::{ConfigError, Diagnostic};
pub use model::*;

use error::Issue;
use locate::SourceMap;

/// The most tool groups one session may send to: the data plane sizes its per-packet fan-out
/// with it.
pub const MAX_TOOLS_PER_SESSION: usize = 16;

/// A valid config with its warnings one by one: where each is (line, column, key path) and what
/// it says, for tools that read them separately (`broker check --json`).
/// [`ValidatedConfig::warnings`] holds the same warnings, rendered one line each.
#[derive(Debug)]
pub struct Checked {
    pub config: ValidatedConfig,
    /// In file order.
    pub warnings: Vec<Diagnostic>,
}

/// Reads and checks the config file at `path`.
///
/// # Errors
/// The file cannot be read, or [`parse`] refuses its text.
pub fn load(path: &Path) -> Result<ValidatedConfig, ConfigError> {
    load_checked(path).map(|checked| checked.config)
}

/// As [`load`], with the warnings as [`Diagnostic`]s.
///
/// # Errors
/// As [`load`].
pub fn load_checked(path: &Path) -> Result<Checked, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|error| ConfigError::unreadable(path, error))?;
    parse_checked(&text, Some(path))
}

/// Checks the config in `text`; `origin` is the file it came from, used in messages and kept in
/// [`ValidatedConfig::path`].
///
/// # Errors
/// Every problem found, each with its line, column and key path (see [`ConfigError`]).
pub fn parse(text: &str, origin: Option<&Path>) -> Result<ValidatedConfig, ConfigError> {
    parse_checked(text, origin).map(|checked| checked.config)
}

/// As [`parse`], with the warnings as [`Diagnostic`]s.
///
/// # Errors
/// As [`parse`].
pub fn parse_checked(text: &str, origin: Option<&Path>) -> Result<Checked, ConfigError> {
    let source_map = SourceMap::new(text);
    let raw: raw::RawConfig = toml::from_str(text).map_err(|error| {
        ConfigError::in_text(origin, &source_map, vec![Issue::from_toml(&error, text)])
    })?;
    let (mut config, warnings) = validate::validate(raw, origin.map(Path::to_owned))
        .map_err(|problems| ConfigError::in_text(origin, &source_map, problems))?;
    let origin_name = error::origin_name(origin);
    let mut warnings: Vec<Diagnostic> = warnings
        .into_iter()
        .map(|warning| warning.diagnose(&source_map))
        .collect();
    warnings.sort_by_key(|warning| (warning.line(), warning.column()));
    config.warnings = warnings
        .iter()
        .map(|warning| warning.render(&origin_name))
        .collect();
    Ok(Checked { config, warnings })
}
