/*
 * What bindgen reads: the DPDK headers the safe wrappers use, plus the few things bindgen cannot
 * see on its own.
 *
 * - `rte_errno` is a thread-local variable behind a macro: `shim_rte_errno()` reads it. It is
 *   `static inline`, so bindgen's `wrap_static_fns` gives it an exported wrapper like DPDK's own
 *   inline functions.
 * - Flag constants built with `RTE_BIT64()` or shifts are macros bindgen does not evaluate; they
 *   are re-exported here as `static const` values, which bindgen turns into Rust `const`s.
 *
 * No DPDK structure is redeclared here: every layout comes from DPDK's own headers.
 */
#ifndef BROKER_DRIVERS_SHIM_H
#define BROKER_DRIVERS_SHIM_H

#include <rte_config.h>
#include <rte_acl.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_flow.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_pdump.h>
#include <rte_prefetch.h>
#include <rte_version.h>

/* The calling thread's rte_errno (a per-lcore thread-local behind a macro). */
static inline int shim_rte_errno(void) { return rte_errno; }

/* RSS on the outer 5-tuple: addresses, then UDP and TCP ports. */
static const uint64_t SHIM_ETH_RSS_IP = RTE_ETH_RSS_IP;
static const uint64_t SHIM_ETH_RSS_UDP = RTE_ETH_RSS_UDP;
static const uint64_t SHIM_ETH_RSS_TCP = RTE_ETH_RSS_TCP;

/* Offloads the port setup may request. */
static const uint64_t SHIM_ETH_RX_OFFLOAD_SCATTER = RTE_ETH_RX_OFFLOAD_SCATTER;
static const uint64_t SHIM_ETH_TX_OFFLOAD_MULTI_SEGS = RTE_ETH_TX_OFFLOAD_MULTI_SEGS;

/* Mbuf flags telling whether a segment's data buffer belongs to it alone. */
static const uint64_t SHIM_MBUF_F_INDIRECT = RTE_MBUF_F_INDIRECT;
static const uint64_t SHIM_MBUF_F_EXTERNAL = RTE_MBUF_F_EXTERNAL;

/* rte_lcore_id() of a thread that is not an EAL lcore. */
static const unsigned int SHIM_LCORE_ID_ANY = LCORE_ID_ANY;

/* rte_acl rules of the IPv4 layout of `acl.rs` (a struct DPDK declares through a macro):
 * protocol, source and destination address, source and destination port, flags. */
#define SHIM_ACL_V4_FIELDS 6
RTE_ACL_RULE_DEF(shim_acl_rule_v4, SHIM_ACL_V4_FIELDS);
static const uint32_t SHIM_ACL_MAX_PRIORITY = RTE_ACL_MAX_PRIORITY;
/* Field types (an anonymous enum, which bindgen would put in a module of a generated name). */
static const uint8_t SHIM_ACL_FIELD_MASK = RTE_ACL_FIELD_TYPE_MASK;
static const uint8_t SHIM_ACL_FIELD_RANGE = RTE_ACL_FIELD_TYPE_RANGE;
static const uint8_t SHIM_ACL_FIELD_BITMASK = RTE_ACL_FIELD_TYPE_BITMASK;

#endif
