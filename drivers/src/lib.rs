//! DPDK for the broker: generated bindings and the safe wrappers around them.
