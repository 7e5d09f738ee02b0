//! End-to-end tests: the real `broker` binary on DPDK virtual devices.
