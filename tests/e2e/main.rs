//! End-to-end tests: the real `broker` binary on DPDK virtual devices (`net_pcap`, `net_null`,
//! `net_ring`, `net_tap`), its outputs checked frame by frame against an independent decoding of
//! its inputs.

mod alerts;
mod cli;
mod conformance;
mod dedup;
mod endpoint;
mod failover;
mod fleet;
mod hostile;
mod import;
mod lab;
mod metrics;
mod network;
mod pcapng;
mod readme;
mod reload;
mod rss;
mod running;
mod span_port;
mod stop;
mod support;
mod systemd;
