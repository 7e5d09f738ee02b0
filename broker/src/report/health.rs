//! The broker's health, as `GET /healthz` answers it.

use serde::{Deserialize, Serialize};

/// Whether the broker does its job now, and why not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// The data plane runs and every tool group has a live port.
    pub ok: bool,
    /// One line: what holds, or the first thing that does not.
    pub reason: String,
}

impl Health {
    /// Before the control loop's first look.
    pub fn starting() -> Health {
        Health {
            ok: false,
            reason: "starting".to_owned(),
        }
    }

    /// The HTTP status of `GET /healthz`: 200 or 503.
    pub fn http_code(&self) -> u16 {
        if self.ok { 200 } else { 503 }
    }
}
