//! The CLI's side of the endpoint: `broker status` and `broker reload` ask a running broker over
//! HTTP and read its answer as the [`crate::report`] types.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::report::{ReloadOutcome, Status};
use crate::requests::REPLY_TIMEOUT;

/// How long `broker reload` waits: as long as the endpoint waits for the control loop, and the
/// HTTP round trip.
const RELOAD_TIMEOUT: Duration = REPLY_TIMEOUT.saturating_add(Duration::from_secs(5));

/// An HTTP client for a broker's endpoint, giving up after `timeout`; HTTP error statuses are
/// answers, not errors (the caller reads the body).
pub fn endpoint_agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        // The endpoint is the broker's own, usually on loopback: never through a proxy.
        .proxy(None)
        .build()
        .into()
}

fn no_answer(url: &str, address: SocketAddr) -> String {
    format!("no answer from {url} (is the broker running with [broker] metrics = \"{address}\"?)")
}

/// Fetches `GET /status` from a running broker's endpoint: the status and the JSON as sent.
pub fn fetch_status(address: SocketAddr) -> anyhow::Result<(Status, String)> {
    let url = format!("http://{address}/status");
    let agent = endpoint_agent(Duration::from_secs(5));
    let mut response = agent
        .get(&url)
        .call()
        .with_context(|| no_answer(&url, address))?;
    let code = response.status();
    let body = response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("reading the answer of {url}"))?;
    if !code.is_success() {
        bail!("{url} answered {code}: {}", body.trim());
    }
    let status = serde_json::from_str(&body)
        .with_context(|| format!("{url} did not answer a broker status"))?;
    Ok((status, body))
}

/// Asks the broker whose endpoint is `address` to reload (`POST /reload`): its outcome.
pub fn request_reload(address: SocketAddr) -> anyhow::Result<ReloadOutcome> {
    let url = format!("http://{address}/reload");
    let agent = endpoint_agent(RELOAD_TIMEOUT);
    let mut response = agent
        .post(&url)
        .send_empty()
        .with_context(|| no_answer(&url, address))?;
    let code = response.status();
    let body = response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("reading the answer of {url}"))?;
    serde_json::from_str(&body).with_context(|| format!("{url} answered {code}: {}", body.trim()))
}
