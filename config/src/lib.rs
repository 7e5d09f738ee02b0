//! The broker's configuration: one TOML file turned into a [`ValidatedConfig`].

pub mod model;

pub use model::*;
