//! What the endpoint asks of the control loop, and how the answer comes back.
//!
//! # Design
//! Only the control loop changes the running appliance. The endpoint's thread hands it a
//! request with a channel to answer on, and waits (bounded by [`REPLY_TIMEOUT`]); the control
//! loop wakes at once when a request arrives (it sleeps on the request channel between ticks).

use std::sync::mpsc;
use std::time::Duration;

use crate::report::ReloadOutcome;

/// Where the control loop sends the outcome of a reload it was asked for.
pub type ReplyTo = mpsc::SyncSender<ReloadOutcome>;

/// The endpoint's side of the request channel.
#[derive(Clone, Debug)]
pub struct ReloadClient(mpsc::Sender<ReplyTo>);

/// How long `POST /reload` waits for the control loop (reading, validating and compiling a
/// config takes milliseconds; this only bounds a control loop that is shutting down).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

impl ReloadClient {
    /// Asks the control loop to reload and waits for the outcome.
    pub fn request(&self) -> Result<ReloadOutcome, String> {
        let (reply, outcome) = mpsc::sync_channel(1);
        self.0
            .send(reply)
            .map_err(|_| "the control loop is not taking reloads (stopping)".to_owned())?;
        outcome
            .recv_timeout(REPLY_TIMEOUT)
            .map_err(|e| format!("no reload outcome from the control loop: {e}"))
    }
}

/// A request channel: the client for the endpoint, the receiver for the control loop.
pub fn channel() -> (ReloadClient, mpsc::Receiver<ReplyTo>) {
    let (tx, rx) = mpsc::channel();
    (ReloadClient(tx), rx)
}
