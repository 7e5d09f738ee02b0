//! The one error type of this crate: DPDK's `rte_errno` and negative return codes, typed.
//!
//! # Design
//! DPDK reports failure two ways: a negative `errno` as the return value (most of ethdev), or `-1`
//! / `NULL` with the reason in the thread-local `rte_errno` (EAL, mempool). Both become
//! [`DpdkError::Call`] here, in one place, carrying the failing call's name and the text of
//! `rte_strerror`, so an operator reads `rte_eth_dev_configure failed: Invalid argument (errno 22)`
//! rather than a bare number. The other variants are misuses the safe wrappers refuse before
//! calling DPDK.
//!
//! Errors are control-plane only: the data path (`rx_burst`, `tx_burst`, `Mbuf`) never builds
//! one.

use std::ffi::CStr;

use crate::sys;

/// What went wrong in a DPDK call or in the use of a wrapper.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpdkError {
    /// A DPDK function failed.
    #[error("{call} failed: {message} (errno {errno})")]
    Call {
        /// The DPDK function that failed.
        call: &'static str,
        /// The positive `errno` value DPDK gave.
        errno: i32,
        /// DPDK's text for it (`rte_strerror`).
        message: String,
    },
    /// `Eal::init` was already called in this process; EAL initialises once per process.
    #[error("the DPDK EAL is already initialised in this process (it initialises once)")]
    AlreadyInitialised,
    /// An EAL argument cannot be passed to C (it holds a NUL byte).
    #[error("EAL argument {0:?} contains a NUL byte")]
    NulInArgument(String),
    /// EAL stopped parsing before the end of the arguments: the rest are not EAL options.
    #[error("EAL did not parse these arguments (not EAL options): {0:?}")]
    UnparsedArguments(Vec<String>),
    /// The call is only allowed on the EAL main lcore (the thread that called `Eal::init`).
    #[error("{0} must be called on the EAL main lcore")]
    NotMainLcore(&'static str),
    /// The lcore id is not an enabled worker lcore of this EAL.
    #[error("lcore {0} is not an enabled worker lcore")]
    NotWorkerLcore(u32),
    /// The worker lcore was launched and its result not yet collected by `Eal::wait_all`.
    #[error("lcore {0} was launched and not yet waited for")]
    LcoreBusy(u32),
    /// A name handed to DPDK (pool, device) cannot be passed to C (it holds a NUL byte).
    #[error("name {0:?} contains a NUL byte")]
    NulInName(String),
    /// The mbuf data room plus DPDK's headroom does not fit in 16 bits.
    #[error("mbuf data room {0} plus headroom exceeds 65535 bytes")]
    DataRoomTooLarge(u16),
    /// The requested port setup cannot work on this device.
    #[error("port {port}: {reason}")]
    Unsupported {
        /// The port id.
        port: u16,
        /// Why, in words an operator can act on.
        reason: String,
    },
    /// A queue index beyond what the port was configured with.
    #[error("port {port}: {direction} queue {queue} does not exist ({configured} configured)")]
    NoSuchQueue {
        /// The port id.
        port: u16,
        /// `"rx"` or `"tx"`.
        direction: &'static str,
        /// The queue asked for.
        queue: u16,
        /// How many queues of that direction the port has.
        configured: u16,
    },
    /// The queue's handle was already taken and not yet dropped.
    #[error("port {port}: {direction} queue {queue} is already in use")]
    QueueTaken {
        /// The port id.
        port: u16,
        /// `"rx"` or `"tx"`.
        direction: &'static str,
        /// The queue asked for.
        queue: u16,
    },
    /// Configure, stop or close while RX/TX queue handles are still alive: the data path could
    /// be polling a queue DPDK is tearing down. Drop the handles (stop the workers) first.
    #[error("port {port}: {what} refused while {handles} queue handle(s) are in use")]
    QueuesInUse {
        /// The port id.
        port: u16,
        /// The refused operation.
        what: &'static str,
        /// How many RX and TX handles are alive.
        handles: usize,
    },
    /// The device refused a flow rule (`rte_flow_validate` or `rte_flow_create`).
    #[error("port {port}: {call} refused the rule for {rule}: {reason} (errno {errno})")]
    Flow {
        /// The port id.
        port: u16,
        /// The `rte_flow` function that failed.
        call: &'static str,
        /// The rule, in words (`VXLAN on UDP 4789 over IPv4`).
        rule: String,
        /// The positive `errno` value.
        errno: i32,
        /// The driver's message, or `rte_strerror`'s text when it gave none.
        reason: String,
    },
}

impl DpdkError {
    /// The error of `call`, which returned a negative errno (ethdev style: `-EINVAL`).
    pub(crate) fn from_ret(call: &'static str, ret: i32) -> DpdkError {
        DpdkError::from_errno(call, ret.saturating_neg())
    }

    /// The error of `call`, which signalled failure and left the reason in `rte_errno`.
    pub(crate) fn from_rte_errno(call: &'static str) -> DpdkError {
        // SAFETY: reads the calling thread's `rte_errno`; the shim function has no preconditions.
        let errno = unsafe { sys::shim_rte_errno() };
        DpdkError::from_errno(call, errno)
    }

    fn from_errno(call: &'static str, errno: i32) -> DpdkError {
        DpdkError::Call {
            call,
            errno,
            message: strerror(errno),
        }
    }
}

/// DPDK's text for an errno value (its own values included).
pub(crate) fn strerror(errno: i32) -> String {
    // The text is static or in a per-thread buffer valid until this thread's next call.
    // SAFETY: `rte_strerror` accepts any value and returns a NUL-terminated string; it is copied
    // out at once.
    unsafe { CStr::from_ptr(sys::rte_strerror(errno)) }
        .to_string_lossy()
        .into_owned()
}

/// Turns an ethdev-style return code (0 or positive: success, negative: `-errno`) into a result.
pub(crate) fn check(call: &'static str, ret: i32) -> Result<i32, DpdkError> {
    if ret < 0 {
        Err(DpdkError::from_ret(call, ret))
    } else {
        Ok(ret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_return_codes_carry_the_call_and_strerror_text() {
        let err = DpdkError::from_ret("rte_eth_dev_configure", -libc::EINVAL);
        let DpdkError::Call {
            call,
            errno,
            message,
        } = &err
        else {
            panic!("expected Call, got {err:?}");
        };
        assert_eq!(*call, "rte_eth_dev_configure");
        assert_eq!(*errno, libc::EINVAL);
        assert_eq!(message, "Invalid argument");
        assert_eq!(
            err.to_string(),
            "rte_eth_dev_configure failed: Invalid argument (errno 22)"
        );
    }

    #[test]
    fn dpdk_specific_errno_values_have_dpdk_text() {
        // E_RTE_SECONDARY is DPDK's own errno (RTE_MIN_ERRNO + 1), unknown to libc.
        let err = DpdkError::from_ret("rte_eth_dev_stop", -1001);
        assert!(
            err.to_string().contains("secondary process"),
            "unexpected text: {err}"
        );
        assert!(check("x", -1001).is_err());
        assert_eq!(check("x", 3), Ok(3));
    }
}
