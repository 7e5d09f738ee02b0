//! Huge pages under memory the broker allocated itself (the dedup table), through the kernel's
//! transparent huge pages: DPDK's own memory is on huge pages already when the EAL has them, but
//! the Rust heap is on 4 KiB pages, and a table of megabytes read at random costs a TLB miss
//! per access there (a 2^20-entry table: 2,048 pages of 4 KiB, four of 2 MiB).
//!
//! [`use_huge_pages`] marks a range `MADV_HUGEPAGE` (so that the kernel keeps it on huge pages
//! and `khugepaged` may collapse it) and then asks for `MADV_COLLAPSE` (Linux 6.1 and later):
//! the pages already touched are copied into huge pages now, before the workers start, whatever
//! `/sys/kernel/mm/transparent_hugepage/enabled` says (madvise(2): the collapse is independent
//! of the system's THP settings; with `madvise`, Debian's default, the mark alone would only
//! apply to pages touched later). Either can fail (a kernel without THP or before 6.1, no free
//! huge page after fragmentation): the memory then stays on the pages it has, and the caller
//! says so.

use std::io;
use std::ops::Range;

/// The bytes of a huge page (x86-64's and arm64's PMD size).
pub const HUGE_PAGE: usize = 2 << 20;

/// `MADV_COLLAPSE` from Linux's `include/uapi/asm-generic/mman-common.h` (6.1); the `libc`
/// crate does not define it yet.
const MADV_COLLAPSE: libc::c_int = 25;

/// What [`use_huge_pages`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HugePages {
    /// Bytes of the range that are whole, aligned huge pages: the part the kernel can back with
    /// them (0 for a range that holds no aligned 2 MiB).
    pub eligible: usize,
    /// Whether the collapse succeeded: `eligible` bytes are now on huge pages.
    pub collapsed: bool,
}

/// Asks the kernel to back the whole huge pages inside `range` (addresses of memory this
/// process has mapped) with huge pages, now. `Err` when the range cannot even be marked (the
/// kernel has no transparent huge pages, or the range is not mapped); `Ok` with `collapsed`
/// false when it was marked but the immediate collapse failed (the kernel may still collapse
/// it later). The memory's contents never change.
pub fn use_huge_pages(range: Range<usize>) -> io::Result<HugePages> {
    let start = range.start.next_multiple_of(HUGE_PAGE);
    let end = range.end - range.end % HUGE_PAGE;
    if end <= start {
        return Ok(HugePages {
            eligible: 0,
            collapsed: false,
        });
    }
    let advise = |advice: libc::c_int| {
        // MADV_HUGEPAGE and MADV_COLLAPSE only change how the kernel backs the pages: the
        // contents, the mapping and its protection stay as they are (a collapse copies the data
        // into a huge page while the pages are locked); on an address that is not mapped the
        // call fails with ENOMEM.
        // SAFETY: no byte, mapping or protection of any range changes: no reference breaks.
        let rc = unsafe { libc::madvise(start as *mut libc::c_void, end - start, advice) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    advise(libc::MADV_HUGEPAGE)?;
    Ok(HugePages {
        eligible: end - start,
        collapsed: advise(MADV_COLLAPSE).is_ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Anonymous memory of `bytes`, touched, with its huge-page-aligned interior.
    fn touched(bytes: usize) -> (Vec<u8>, Range<usize>) {
        let memory = vec![1u8; bytes];
        let range = memory.as_ptr_range();
        let range = range.start as usize..range.end as usize;
        (memory, range)
    }

    /// The process's anonymous memory on huge pages, in bytes (`AnonHugePages`).
    fn anon_huge_bytes() -> usize {
        std::fs::read_to_string("/proc/self/smaps_rollup")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|line| line.strip_prefix("AnonHugePages:"))
                    .and_then(|kb| {
                        kb.trim()
                            .trim_end_matches("kB")
                            .trim()
                            .parse::<usize>()
                            .ok()
                    })
            })
            .map_or(0, |kb| kb * 1024)
    }

    /// Whether this kernel has transparent huge pages switched on (`always` or `madvise`): then
    /// a collapse must succeed (the test hosts run Linux 6.1 or later).
    fn thp_on() -> Option<bool> {
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .ok()
            .map(|mode| !mode.contains("[never]"))
    }

    #[test]
    fn the_aligned_interior_is_collapsed_and_the_contents_stay() {
        let (memory, range) = touched(5 * HUGE_PAGE);
        let before = anon_huge_bytes();
        let done = use_huge_pages(range.clone());
        match (thp_on(), done) {
            (Some(on), Ok(done)) => {
                // 5 huge pages of bytes hold 4 or 5 aligned ones, whatever the start.
                assert!(done.eligible >= 4 * HUGE_PAGE, "{done:?}");
                assert!(done.collapsed || !on, "{done:?}");
                if done.collapsed {
                    // Other threads of the test binary may allocate or free meanwhile; the
                    // collapsed pages of this range are the bulk of the change.
                    assert!(anon_huge_bytes() >= before + done.eligible / 2, "{done:?}");
                }
            }
            // No transparent huge pages in this kernel: the advice is refused.
            (None, Err(_)) => {}
            (thp, done) => panic!("THP on: {thp:?}, use_huge_pages {done:?}"),
        }
        assert!(memory.iter().all(|&b| b == 1));
    }

    #[test]
    fn a_range_without_a_whole_huge_page_is_left_alone() {
        let (_memory, range) = touched(HUGE_PAGE / 2);
        assert_eq!(
            use_huge_pages(range).unwrap(),
            HugePages {
                eligible: 0,
                collapsed: false
            }
        );
    }

    #[test]
    fn an_unmapped_range_is_an_error() {
        // The top of the lower half of the address space, never mapped by a user process.
        let start = (1usize << 46) - 4 * HUGE_PAGE;
        assert!(use_huge_pages(start..start + 2 * HUGE_PAGE).is_err());
    }
}
