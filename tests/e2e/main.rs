//! End-to-end tests: the real `broker` binary on DPDK virtual devices (`net_pcap`), its outputs
//! checked frame by frame against an independent decoding of its inputs.

mod hostile;
mod lab;
mod support;
