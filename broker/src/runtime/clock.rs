//! The workers' clock: nanoseconds from the CPU's time-stamp counter.
//!
//! Reading the TSC costs a few cycles where `clock_gettime` costs tens of nanoseconds; the
//! workers read it once per burst. The TSC is invariant and synchronised across cores on every
//! CPU DPDK supports for this use, so all workers share one time base — the dedup window relies
//! on that.

/// Converts TSC ticks to nanoseconds with a fixed-point multiplier.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// Nanoseconds per tick, times 2^32.
    ns_per_tick_q32: u64,
}

impl Clock {
    /// A clock for a TSC running at `hz` (from `rte_get_tsc_hz`).
    pub fn new(hz: u64) -> Clock {
        let hz = hz.max(1);
        Clock {
            ns_per_tick_q32: ((1_000_000_000u128 << 32) / u128::from(hz)) as u64,
        }
    }

    /// Converts a tick count.
    pub fn ticks_to_ns(&self, ticks: u64) -> u64 {
        ((u128::from(ticks) * u128::from(self.ns_per_tick_q32)) >> 32) as u64
    }

    /// Now, in nanoseconds since the TSC's origin (boot).
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.ticks_to_ns(drivers::rdtsc())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_ticks_at_common_frequencies() {
        assert_eq!(Clock::new(1_000_000_000).ticks_to_ns(12_345), 12_345);
        assert_eq!(
            Clock::new(2_500_000_000).ticks_to_ns(2_500_000_000),
            1_000_000_000 - 1
        );
        assert_eq!(Clock::new(3_000_000_000).ticks_to_ns(3_000), 999);
    }
}
