//! Handing out the ports' queues: each worker's RX queue and its TX queues (of every cabled tool
//! port and of every addressed port), and the exception path's queues of every addressed port.
//!
//! # Design
//! A port with fewer TX queues than workers has them shared ([`TxQueueRef`]: a queue behind a
//! lock only where two workers must share it); every worker gets, per tool port, the index of the
//! queue it flushes to.

use std::sync::{Arc, Mutex};

use anyhow::Context;
use config::{AddressedPortId, ToolOutput, ValidatedConfig};
use drivers::{Port, RxQueue, TxQueue};
use tracing::info;

use super::ports::{AddressedPort, Configured, OpenPort};
use super::tx::TxQueueRef;

/// Each worker's queues: its RX queue, and its TX queues with, per tool port, which of them it
/// flushes to; and the exception path's queues of every addressed port.
pub(super) struct Queues {
    pub(super) rx: Vec<RxQueue>,
    pub(super) tx: Vec<(Vec<TxQueueRef>, Vec<usize>)>,
    /// By addressed port: the control TX queue, and an uplink's RX queue.
    pub(super) control: Vec<(TxQueueRef, Option<RxQueue>)>,
}

/// `n` users' shares of `queues`: each its own when there are enough, else shared round-robin
/// behind a mutex (taken once per flush).
fn hand_out(queues: Vec<TxQueue>, n: usize) -> Vec<TxQueueRef> {
    if queues.len() >= n {
        queues.into_iter().take(n).map(TxQueueRef::Own).collect()
    } else {
        let shared: Vec<Arc<Mutex<TxQueue>>> = queues
            .into_iter()
            .map(|q| Arc::new(Mutex::new(q)))
            .collect();
        (0..n)
            .map(|i| TxQueueRef::Shared(shared[i % shared.len()].clone()))
            .collect()
    }
}

/// Takes TX queues `0..queues` of `port`.
fn take_tx(port: &Port, name: &str, queues: u16) -> anyhow::Result<Vec<TxQueue>> {
    (0..queues)
        .map(|q| {
            port.take_tx_queue(q)
                .with_context(|| format!("{name} TX queue {q}"))
        })
        .collect()
}

/// Gives each worker its RX queue (RX queue q of each ingress, in config order) and its TX
/// queues: of every cabled tool port, and of every addressed port (where tunnel ports send),
/// shared round-robin when a port has fewer queues than workers. An addressed port's last share
/// is the exception path's, with an uplink's RX queue.
pub(super) fn assign_queues(
    config: &ValidatedConfig,
    workers: usize,
    ingress: &[OpenPort],
    tools: &[Option<OpenPort>],
    addressed: &[AddressedPort],
    configured: &Configured,
) -> anyhow::Result<Queues> {
    let mut rx = Vec::with_capacity(workers);
    for (spec, open) in config.ingress.iter().zip(ingress) {
        for q in 0..spec.queues {
            rx.push(
                open.port
                    .take_rx_queue(q)
                    .with_context(|| format!("ingress {} RX queue {q}", open.name))?,
            );
        }
    }
    let mut tx: Vec<(Vec<TxQueueRef>, Vec<usize>)> = (0..workers)
        .map(|_| (Vec::new(), Vec::with_capacity(tools.len())))
        .collect();
    // Cabled tool ports: queue k of each worker is tool port k's share.
    let mut device_queue_of = vec![None; tools.len()];
    for (i, (open, &queues)) in tools.iter().zip(&configured.tx_queues).enumerate() {
        let Some(open) = open else { continue };
        let taken = take_tx(&open.port, &format!("tool port {}", open.name), queues)?;
        if usize::from(queues) < workers {
            info!(
                "tool port {}: {queues} TX queue(s) shared by {workers} workers",
                open.name
            );
        }
        for ((queues_of_worker, _), share) in tx.iter_mut().zip(hand_out(taken, workers)) {
            device_queue_of[i] = Some(queues_of_worker.len());
            queues_of_worker.push(share);
        }
    }
    // Addressed ports: each worker's share, then the exception path's.
    let mut addressed_queue_of = Vec::with_capacity(addressed.len());
    let mut control = Vec::with_capacity(addressed.len());
    for (a, &queues) in addressed.iter().zip(&configured.addressed_tx_queues) {
        let taken = take_tx(&a.port, &a.name, queues)?;
        if usize::from(queues) < workers + 1 {
            info!(
                "{}: {queues} TX queue(s) shared by {workers} workers and the control path",
                a.name
            );
        }
        let mut shares = hand_out(taken, workers + 1);
        let own = shares.pop().context("the control path's share")?;
        let uplink_rx = match a.id {
            AddressedPortId::Uplink(_) => Some(
                a.port
                    .take_rx_queue(0)
                    .with_context(|| format!("uplink {} RX queue 0", a.name))?,
            ),
            AddressedPortId::Ingress(_) => None,
        };
        control.push((own, uplink_rx));
        let mut index = None;
        for ((queues_of_worker, _), share) in tx.iter_mut().zip(shares) {
            index = Some(queues_of_worker.len());
            queues_of_worker.push(share);
        }
        addressed_queue_of.push(index);
    }
    // Which of its queues each worker flushes each tool port's buffer to.
    for (i, port) in config.tool_ports.iter().enumerate() {
        let index = match &port.output {
            ToolOutput::Device(_) => device_queue_of[i],
            ToolOutput::Tunnel(tunnel) => addressed
                .iter()
                .position(|a| a.id == tunnel.via)
                .and_then(|side| addressed_queue_of[side]),
        }
        .with_context(|| format!("tool port {}: no TX queue", port.name))?;
        for (_, port_queue) in tx.iter_mut() {
            port_queue.push(index);
        }
    }
    Ok(Queues { rx, tx, control })
}
