//! The kernel side of an addressed port: a kernel interface with the port's MAC and addresses,
//! so the kernel answers ARP, neighbour discovery and ping, and its sockets (the health listener,
//! the endpoint) are reachable on the port's addresses.
//!
//! # Design
//! DPDK creates the interface (`net_tap`, or virtio-user over vhost-net) with the port's name and
//! MAC; here the broker gives it the port's addresses and brings it up, with iproute2 (`ip`),
//! which every Linux host running DPDK has. IPv6 addresses are added without duplicate address
//! detection (the port owns them: the config says so) and router advertisements are ignored
//! (the config gives the gateway). With a gateway, what the kernel sends *from* the port's
//! addresses is routed by a table of the port's own (source-address policy routing, as hosts
//! with several ENIs do), so a load balancer's health check off the port's subnet is answered
//! through the port, while the host's main table stays as it was.
//!
//! # Limitations
//! The policy rules are removed when the broker stops; a broker killed by SIGKILL leaves them
//! (they point to a table whose interface is gone, and are replaced at the next start).

use std::net::IpAddr;
use std::process::Command;

use anyhow::{Context, bail};
use config::Addressing;
use tracing::{info, warn};

/// The routing table of the kernel side of the addressed port with index `index`.
pub fn table_of(index: usize) -> u32 {
    // Well above the tables distributions use (main 254, local 255, default 253).
    20_000 + index as u32
}

/// A configured kernel interface; dropping it removes its policy rules.
#[derive(Debug)]
pub struct KernelSide {
    pub iface: String,
    /// `ip rule` arguments to delete at the end.
    rules: Vec<Vec<String>>,
}

fn ip(args: &[String]) -> anyhow::Result<()> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip` (iproute2) to set up a kernel interface")?;
    if !output.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// Writes a per-interface IPv6 setting (`/proc/sys/net/ipv6/conf/<iface>/<key>`).
fn ipv6_setting(iface: &str, key: &str, value: &str) -> anyhow::Result<()> {
    let path = format!("/proc/sys/net/ipv6/conf/{iface}/{key}");
    std::fs::write(&path, value).with_context(|| format!("writing {value} to {path}"))
}

/// Gives `iface` the addresses of `addressing`, brings it up, and routes what it sends from them
/// through the port's gateways (table [`table_of`]`(index)`).
pub fn configure(iface: &str, addressing: &Addressing, index: usize) -> anyhow::Result<KernelSide> {
    let table = table_of(index).to_string();
    let mut side = KernelSide {
        iface: iface.to_owned(),
        rules: Vec::new(),
    };
    if addressing.ipv6.is_some() {
        // Before the link comes up: no DAD and no SLAAC from router advertisements.
        ipv6_setting(iface, "accept_dad", "0")?;
        ipv6_setting(iface, "accept_ra", "0")?;
    }
    if let Some(net) = addressing.ipv4 {
        ip(&args(&["addr", "add", &net.to_string(), "dev", iface]))?;
    }
    if let Some(net) = addressing.ipv6 {
        ip(&args(&[
            "-6",
            "addr",
            "add",
            &net.to_string(),
            "dev",
            iface,
            "nodad",
        ]))?;
    }
    ip(&args(&["link", "set", "dev", iface, "up"]))?;
    let gateways = [
        (
            addressing.ipv4.map(|n| IpAddr::V4(n.addr())),
            addressing.gateway_v4.map(IpAddr::V4),
        ),
        (
            addressing.ipv6.map(|n| IpAddr::V6(n.addr())),
            addressing.gateway_v6.map(IpAddr::V6),
        ),
    ];
    for (own, gateway) in gateways {
        let (Some(own), Some(gateway)) = (own, gateway) else {
            continue;
        };
        let family = if own.is_ipv4() { "-4" } else { "-6" };
        ip(&args(&[
            family,
            "route",
            "replace",
            "default",
            "via",
            &gateway.to_string(),
            "dev",
            iface,
            "table",
            &table,
        ]))?;
        let rule = args(&[
            family,
            "rule",
            "add",
            "from",
            &own.to_string(),
            "table",
            &table,
        ]);
        // A rule left by a broker that was killed: replaced, not doubled.
        let mut stale = rule.clone();
        stale[1] = "del".to_owned();
        let _ = ip(&stale);
        ip(&rule)?;
        stale[1] = "del".to_owned();
        side.rules.push(stale);
    }
    info!(
        "kernel side {iface}: up with {}",
        [
            addressing.ipv4.map(|n| n.to_string()),
            addressing.ipv6.map(|n| n.to_string())
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ")
    );
    Ok(side)
}

impl Drop for KernelSide {
    fn drop(&mut self) {
        for rule in &self.rules {
            if let Err(e) = ip(rule) {
                warn!("kernel side {}: removing a policy rule: {e}", self.iface);
            }
        }
    }
}
