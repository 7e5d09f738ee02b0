//! `AclV4`: DPDK's packet classifier (`rte_acl`) over an IPv4 5-tuple and a flags word, built
//! once from a list of rules and then read by `classify`, for the comparison with the broker's
//! own filter (`cargo bench -p broker --bench acl`, BENCHMARKS.md "rte_acl").
//!
//! # Design
//! `rte_acl` compiles rules into a multi-bit trie walked four input bytes at a time (with SSE,
//! AVX2 or AVX-512, chosen at run time), and answers, per input, the `userdata` of the matching
//! rule with the highest priority. A first-match list (the broker's filters: the lowest rule
//! number decides) maps to it by giving the rule at position `i` the priority
//! `MAX_PRIORITY - i`.
//!
//! The input of one packet is [`AclInputV4`], 20 bytes in network byte order (as `rte_acl`
//! wants them; rules are given in host order):
//! ```text
//! offset 0   protocol           1 byte    bitmask field (the first field must be one byte)
//! offset 4   source address     4 bytes   prefix field
//! offset 8   destination addr.  4 bytes   prefix field
//! offset 12  source port        2 bytes   range field    } one group of four bytes
//! offset 14  destination port   2 bytes   range field    }
//! offset 16  flags              4 bytes   bitmask field
//! ```
//! Every field but the first has to lie in a group of four consecutive bytes (the trie walks
//! the input by such groups); the flags word carries whatever the caller needs beyond the
//! 5-tuple (for the broker's semantics: the direction and whether the packet has ports).
//!
//! # Limitations
//! IPv4 only (an IPv6 layout would be a second context with four 32-bit groups per address).
//! The context is built once: no rule can be added after [`AclV4::build`]. Memory comes from
//! DPDK's heap, so EAL must be up.

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::eal::Eal;
use crate::error::DpdkError;
use crate::sys;

/// Fields of the layout (see the module docs), in the order of [`AclRuleV4`]'s.
const FIELDS: usize = sys::SHIM_ACL_V4_FIELDS as usize;

/// Inputs classified per call into DPDK: the pointer array lives on the stack.
const CHUNK: usize = 64;

/// One packet as `rte_acl` reads it (see the module docs for the layout).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(4))]
pub struct AclInputV4 {
    bytes: [u8; 20],
}

impl AclInputV4 {
    /// The input of a packet: its protocol, addresses, ports (0 when it has none) and flags.
    pub fn new(protocol: u8, src: u32, dst: u32, src_port: u16, dst_port: u16, flags: u32) -> Self {
        let mut bytes = [0u8; 20];
        bytes[0] = protocol;
        bytes[4..8].copy_from_slice(&src.to_be_bytes());
        bytes[8..12].copy_from_slice(&dst.to_be_bytes());
        bytes[12..14].copy_from_slice(&src_port.to_be_bytes());
        bytes[14..16].copy_from_slice(&dst_port.to_be_bytes());
        bytes[16..20].copy_from_slice(&flags.to_be_bytes());
        AclInputV4 { bytes }
    }
}

/// One rule: every field matches when the packet's value is inside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AclRuleV4 {
    /// The protocol, or `None` for any.
    pub protocol: Option<u8>,
    /// Source address and prefix length (`(0, 0)`: any).
    pub src: (u32, u8),
    /// Destination address and prefix length.
    pub dst: (u32, u8),
    /// Inclusive source port range (`(0, 65535)`: any).
    pub src_ports: (u16, u16),
    /// Inclusive destination port range.
    pub dst_ports: (u16, u16),
    /// The packet's flags word ANDed with `flags_mask` must equal `flags_value`.
    pub flags_value: u32,
    /// Bits of the flags word the rule looks at (0: any).
    pub flags_mask: u32,
}

/// A built `rte_acl` context (see the module docs); freed on drop.
#[derive(Debug)]
pub struct AclV4 {
    raw: NonNull<sys::rte_acl_ctx>,
    rules: usize,
}

// SAFETY: the context is only read after `build` (`rte_acl_classify` is documented as safe to
// call from several threads at once on a built context); it is freed once, on drop.
unsafe impl Send for AclV4 {}
// SAFETY: as for `Send`: `classify` takes `&self` and only reads the built tries.
unsafe impl Sync for AclV4 {}

impl AclV4 {
    /// Builds the context of `rules`, first match first: the rule at position `i` wins over
    /// every later one, and [`AclV4::classify`] answers `i + 1` for it (0: no rule matched).
    pub fn build(_eal: &Eal, rules: &[AclRuleV4]) -> Result<AclV4, DpdkError> {
        static CONTEXTS: AtomicU32 = AtomicU32::new(0);
        let invalid = |errno| DpdkError::Call {
            call: "rte_acl_add_rules",
            errno,
            message: "too many rules".into(),
        };
        let count = u32::try_from(rules.len()).map_err(|_| invalid(libc::E2BIG))?;
        if count >= sys::SHIM_ACL_MAX_PRIORITY {
            return Err(invalid(libc::E2BIG));
        }
        // Context names are global to DPDK: one per context made by this process.
        let name = format!("acl{}", CONTEXTS.fetch_add(1, Ordering::Relaxed));
        let c_name = CString::new(name).map_err(|e| DpdkError::NulInName(e.to_string()))?;
        let param = sys::rte_acl_param {
            name: c_name.as_ptr(),
            socket_id: sys::SOCKET_ID_ANY,
            rule_size: size_of::<sys::shim_acl_rule_v4>() as u32,
            max_rule_num: count.max(1),
        };
        // SAFETY: EAL is up (`_eal`); `param` and the name it points to outlive the call, which
        // copies the name.
        let raw = NonNull::new(unsafe { sys::rte_acl_create(&param) })
            .ok_or_else(|| DpdkError::from_rte_errno("rte_acl_create"))?;
        let acl = AclV4 {
            raw,
            rules: rules.len(),
        };

        let raw_rules: Vec<sys::shim_acl_rule_v4> = rules
            .iter()
            .enumerate()
            .map(|(i, rule)| raw_rule(i as u32, rule))
            .collect();
        if !raw_rules.is_empty() {
            // SAFETY: the context was made for rules of this struct's size; the array holds
            // `count` of them and is only read during the call (DPDK copies the rules).
            let ret = unsafe {
                sys::rte_acl_add_rules(acl.raw.as_ptr(), raw_rules.as_ptr().cast(), count)
            };
            if ret != 0 {
                return Err(DpdkError::from_ret("rte_acl_add_rules", ret));
            }
        }
        let config = build_config();
        // SAFETY: a valid context with its rules; the config is read during the call only.
        let ret = unsafe { sys::rte_acl_build(acl.raw.as_ptr(), &config) };
        if ret != 0 {
            return Err(DpdkError::from_ret("rte_acl_build", ret));
        }
        Ok(acl)
    }

    /// Rules the context was built with.
    pub fn rules(&self) -> usize {
        self.rules
    }

    /// Writes into `results[i]` the position + 1 of the first rule that `inputs[i]` matches, 0
    /// when none does. Classifies `min(inputs.len(), results.len())` inputs.
    pub fn classify(&self, inputs: &[AclInputV4], results: &mut [u32]) {
        for (inputs, results) in inputs.chunks(CHUNK).zip(results.chunks_mut(CHUNK)) {
            let n = inputs.len().min(results.len());
            let mut pointers = [std::ptr::null::<u8>(); CHUNK];
            for (pointer, input) in pointers.iter_mut().zip(inputs) {
                *pointer = input.bytes.as_ptr();
            }
            // The context is built (`build` returned it); `pointers[..n]` point at inputs of
            // the layout it was built for (20 bytes, 4-aligned).
            // SAFETY: valid context, `n` live inputs, and room in `results` for `n` answers.
            let ret = unsafe {
                sys::rte_acl_classify(
                    self.raw.as_ptr(),
                    pointers.as_mut_ptr(),
                    results.as_mut_ptr(),
                    n as u32,
                    1,
                )
            };
            // Only fails for bad arguments (categories), which these are not.
            debug_assert_eq!(ret, 0);
        }
    }
}

impl Drop for AclV4 {
    fn drop(&mut self) {
        // SAFETY: a context made by `rte_acl_create`, freed once; nothing reads it after.
        unsafe { sys::rte_acl_free(self.raw.as_ptr()) }
    }
}

/// The rule at `position` in DPDK's form.
fn raw_rule(position: u32, rule: &AclRuleV4) -> sys::shim_acl_rule_v4 {
    let mut raw = sys::shim_acl_rule_v4::default();
    raw.data.category_mask = 1;
    // Earlier rules win: priorities from the top down (checked to stay above 0 by `build`).
    raw.data.priority = (sys::SHIM_ACL_MAX_PRIORITY - position) as i32;
    raw.data.userdata = position + 1;
    let field = &mut raw.field;
    // Assigning a union field is safe: it writes that many bytes and reads nothing.
    field[0].value.u8_ = rule.protocol.unwrap_or(0);
    field[0].mask_range.u8_ = if rule.protocol.is_some() { 0xff } else { 0 };
    field[1].value.u32_ = rule.src.0;
    field[1].mask_range.u32_ = u32::from(rule.src.1);
    field[2].value.u32_ = rule.dst.0;
    field[2].mask_range.u32_ = u32::from(rule.dst.1);
    field[3].value.u16_ = rule.src_ports.0;
    field[3].mask_range.u16_ = rule.src_ports.1;
    field[4].value.u16_ = rule.dst_ports.0;
    field[4].mask_range.u16_ = rule.dst_ports.1;
    field[5].value.u32_ = rule.flags_value;
    field[5].mask_range.u32_ = rule.flags_mask;
    raw
}

/// The field definitions of the layout in the module docs.
fn build_config() -> sys::rte_acl_config {
    let mut config = sys::rte_acl_config {
        num_categories: 1,
        num_fields: FIELDS as u32,
        ..Default::default()
    };
    let def = |kind: u8, size: u8, field: u8, input: u8, offset: u32| sys::rte_acl_field_def {
        type_: kind,
        size,
        field_index: field,
        input_index: input,
        offset,
    };
    let (mask, range, bitmask) = (
        sys::SHIM_ACL_FIELD_MASK,
        sys::SHIM_ACL_FIELD_RANGE,
        sys::SHIM_ACL_FIELD_BITMASK,
    );
    config.defs[..FIELDS].copy_from_slice(&[
        def(bitmask, 1, 0, 0, 0),
        def(mask, 4, 1, 1, 4),
        def(mask, 4, 2, 2, 8),
        def(range, 2, 3, 3, 12),
        def(range, 2, 4, 3, 14),
        def(bitmask, 4, 5, 4, 16),
    ]);
    config
}
