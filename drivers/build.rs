//! Generates the DPDK bindings at build time.
//!
//! 1. `pkg-config --cflags libdpdk`, raw: it carries `-include rte_config.h -march=corei7`, which
//!    both clang (bindgen) and the C compiler must see, and which the `pkg-config` crate drops.
//! 2. bindgen reads `src/shim.h` with an allowlist (only what the safe wrappers call), writes
//!    `bindings.rs`, and, for DPDK's `static inline` functions (`rte_eth_rx_burst`,
//!    `rte_pktmbuf_free`, …), a C file of exported wrappers (`wrap_static_fns`).
//! 3. `cc` compiles that C file with the same flags.
//! 4. The link line is exactly what `pkg-config --libs libdpdk` names. Debian's DPDK loads its
//!    PMDs (net_pcap, net_null, mempool_ring, …) itself from its pmds directory, so no driver
//!    library is linked here. `librte_pdump` (for `rte_pdump_init`) is among the libraries it
//!    names.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const SHIM_HEADER: &str = "src/shim.h";

/// DPDK functions the wrappers call. `static inline` ones among them get a C wrapper.
const FUNCTIONS: &[&str] = &[
    // errors
    "shim_rte_errno",
    "rte_strerror",
    // EAL, lcores, TSC
    "rte_eal_init",
    "rte_eal_remote_launch",
    "rte_eal_wait_lcore",
    "rte_eal_mp_wait_lcore",
    "rte_get_main_lcore",
    "rte_get_next_lcore",
    "rte_lcore_id",
    "rte_lcore_is_enabled",
    "rte_lcore_to_cpu_id",
    "rte_lcore_to_socket_id",
    "rte_get_tsc_hz",
    "rte_rdtsc",
    "rte_version",
    // packet capture by secondary processes (dpdk-dumpcap, dpdk-pdump)
    "rte_pdump_init",
    // mempool and mbuf
    "rte_pktmbuf_pool_create_by_ops",
    "rte_mempool_avail_count",
    "rte_mempool_in_use_count",
    "rte_pktmbuf_data_room_size",
    "rte_pktmbuf_alloc",
    "rte_pktmbuf_free",
    "rte_pktmbuf_free_bulk",
    "rte_pktmbuf_clone",
    "rte_pktmbuf_adj",
    "rte_pktmbuf_tailroom",
    "rte_pktmbuf_chain",
    "rte_mbuf_refcnt_read",
    "rte_mbuf_ext_refcnt_read",
    "rte_prefetch0",
    // ethdev
    "rte_eth_dev_get_port_by_name",
    "rte_eth_dev_get_name_by_port",
    "rte_eth_dev_info_get",
    "rte_eth_dev_socket_id",
    "rte_eth_dev_get_mtu",
    "rte_eth_macaddr_get",
    "rte_eth_dev_default_mac_addr_set",
    "rte_eth_dev_configure",
    "rte_eth_dev_adjust_nb_rx_tx_desc",
    "rte_eth_rx_queue_setup",
    "rte_eth_tx_queue_setup",
    "rte_eth_dev_start",
    "rte_eth_dev_stop",
    "rte_eth_dev_close",
    "rte_eth_promiscuous_enable",
    "rte_eth_link_get_nowait",
    "rte_eth_stats_get",
    "rte_eth_xstats_get_names",
    "rte_eth_xstats_get",
    "rte_eth_rx_burst",
    "rte_eth_tx_burst",
    // ACL (benchmarked against the broker's filter)
    "rte_acl_create",
    "rte_acl_add_rules",
    "rte_acl_build",
    "rte_acl_classify",
    "rte_acl_free",
    // flow rules
    "rte_flow_validate",
    "rte_flow_create",
    "rte_flow_flush",
];

/// Types named in the wrappers (those reached from them come along).
const TYPES: &[&str] = &[
    "rte_mbuf",
    "rte_mempool",
    "rte_eth_conf",
    "rte_eth_dev_info",
    "rte_eth_link",
    "rte_eth_stats",
    "rte_eth_xstat",
    "rte_eth_xstat_name",
    "rte_ether_addr",
    "rte_eth_rx_mq_mode",
    "rte_eth_tx_mq_mode",
    "rte_eth_hash_function",
    "rte_flow_attr",
    "rte_flow_item",
    "rte_flow_item_type",
    "rte_flow_item_udp",
    "rte_flow_action",
    "rte_flow_action_type",
    "rte_flow_action_rss",
    "rte_flow_error",
    "rte_acl_param",
    "rte_acl_config",
    "rte_acl_field_def",
    "shim_acl_rule_v4",
];

/// Constants: plain `#define`s bindgen evaluates, and the `SHIM_*` re-exports of shifted ones.
const VARS: &[&str] = &[
    "SHIM_.*",
    "RTE_MAX_ETHPORTS",
    "RTE_MAX_LCORE",
    "RTE_PKTMBUF_HEADROOM",
    "RTE_ETHDEV_QUEUE_STAT_CNTRS",
    "RTE_ETH_NAME_MAX_LEN",
    "RTE_ETH_XSTATS_NAME_SIZE",
    "RTE_ETH_LINK_UP",
    "RTE_ETH_LINK_FULL_DUPLEX",
    "RTE_ETH_LINK_AUTONEG",
    "RTE_ETH_SPEED_NUM_UNKNOWN",
    "RTE_ETHER_HDR_LEN",
    "RTE_ETHER_CRC_LEN",
    "SOCKET_ID_ANY",
];

/// Packed and aligned at once: rustc rejects such structs, and nothing here reads them.
const OPAQUE: &[&str] = &["rte_arp_ipv4", "rte_arp_hdr", "rte_gtp_psc_generic_hdr"];

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={SHIM_HEADER}");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_LIBDIR");
    // A DPDK upgrade changes the .pc file: regenerate then.
    let pc_dir = pkg_config(&["--variable=pcfiledir", "libdpdk"]);
    println!("cargo:rerun-if-changed={}/libdpdk.pc", pc_dir.trim());

    let cflags: Vec<String> = pkg_config(&["--cflags", "libdpdk"])
        .split_whitespace()
        .map(str::to_owned)
        .collect();

    let wrappers = out_dir.join("static_fns");
    let mut builder = bindgen::Builder::default()
        .header(SHIM_HEADER)
        .clang_args(&cflags)
        .wrap_static_fns(true)
        .wrap_static_fns_path(&wrappers)
        .default_enum_style(bindgen::EnumVariation::ModuleConsts)
        .derive_default(true)
        .derive_debug(false)
        .layout_tests(true)
        .generate_comments(false)
        .allowlist_recursively(true);
    for f in FUNCTIONS {
        builder = builder.allowlist_function(f);
    }
    for t in TYPES {
        builder = builder.allowlist_type(t);
    }
    for v in VARS {
        builder = builder.allowlist_var(v);
    }
    for o in OPAQUE {
        builder = builder.opaque_type(o);
    }
    let bindings = builder
        .generate()
        .unwrap_or_else(|e| panic!("bindgen failed on {SHIM_HEADER}: {e}"));
    bindings
        .write_to_file(out_dir.join("bindings.rs"))
        .expect("write bindings.rs");

    compile_wrappers(&wrappers.with_extension("c"), &cflags);
    link_dpdk();
}

/// Compiles bindgen's exported wrappers of the `static inline` functions.
fn compile_wrappers(source: &Path, cflags: &[String]) {
    let mut build = cc::Build::new();
    build
        .file(source)
        // The generated file includes `src/shim.h` by the path bindgen was given.
        .include(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .warnings(false);
    for flag in cflags {
        build.flag(flag);
    }
    build.compile("dpdk_static_fns");
}

/// Links what `pkg-config --libs libdpdk` names, nothing else.
fn link_dpdk() {
    for token in pkg_config(&["--libs", "libdpdk"]).split_whitespace() {
        if let Some(lib) = token.strip_prefix("-l") {
            println!("cargo:rustc-link-lib=dylib={lib}");
        } else if let Some(dir) = token.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        } else if token == "-Wl,--as-needed" {
            // rustc already links shared libraries with --as-needed on Linux.
        } else {
            panic!("unexpected token in `pkg-config --libs libdpdk`: {token}");
        }
    }
}

fn pkg_config(args: &[&str]) -> String {
    let output = Command::new("pkg-config")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run pkg-config (install pkg-config and libdpdk-dev): {e}")
        });
    if !output.status.success() {
        panic!(
            "pkg-config {} failed (is libdpdk-dev installed?): {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8(output.stdout).expect("pkg-config prints UTF-8")
}
