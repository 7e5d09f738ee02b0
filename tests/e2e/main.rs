//! End-to-end tests: the real `broker` binary on DPDK virtual devices (`net_pcap`), its outputs
//! checked frame by frame against an independent decoding of its inputs.

mod failover;
mod lab;
mod metrics;
mod reload;
mod running;
mod stop;
mod support;
