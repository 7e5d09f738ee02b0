//! The DPDK Environment Abstraction Layer: initialisation, lcores, worker launch, TSC.
//!
//! # Design
//! [`Eal::init`] runs `rte_eal_init` once per process; a second call returns
//! [`DpdkError::AlreadyInitialised`] instead of reaching DPDK. The returned [`Eal`] is the proof
//! of initialisation the other wrappers ask for (`Mempool::new`, `Port::by_name` take `&Eal`).
//!
//! **Lifetimes: the EAL lives until the process exits; `rte_eal_cleanup` is never called.**
//! Cleanup unmaps DPDK memory ("after this point, any DPDK pointers will become dangling"), so
//! calling it soundly would need a proof that no `Mbuf`, `Mempool`, `Port` or queue handle is
//! left anywhere in the process, and that no worker lcore is still running. Tying every handle
//! to a borrow of `Eal` would give that proof, but then no handle could move into the `'static`
//! closures that run on worker lcores. We choose the other way: pools are never freed, ports are
//! stopped and closed explicitly (which flushes `net_pcap` files and releases the devices), and
//! the memory goes back to the system with the process. Dropping an [`Eal`] does nothing; it only
//! loses the ability to launch and wait for workers.
//!
//! **Arguments.** `rte_eal_init` reorders the `argv` pointer array (getopt), and glibc's getopt
//! keeps a pointer into the last parsed string in static state after EAL returns. The strings
//! and the pointer array are therefore kept for the life of the process: a few hundred bytes,
//! once.
//!
//! **Workers.** [`Eal::launch`] boxes the closure and hands it to `rte_eal_remote_launch`; the
//! worker lcore's thread takes the box back and runs it exactly once. A panic in it must not
//! unwind into DPDK's C frames: it is caught at the boundary and the process aborts loudly (the
//! release profile aborts on panic anyway).
//!
//! # Limitations
//! Launching and waiting are only allowed on the main lcore (the thread that called
//! [`Eal::init`]), as DPDK requires; other threads get [`DpdkError::NotMainLcore`].

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::error::DpdkError;
use crate::sys;

/// Set once `rte_eal_init` has been entered (and reset if it fails early enough for DPDK to
/// allow another try).
static EAL_INITIALISED: AtomicBool = AtomicBool::new(false);

/// The initialised EAL of this process. See the module docs for why it never cleans up.
#[derive(Debug)]
pub struct Eal {
    /// Worker lcores launched and not yet collected by [`Eal::wait_all`].
    launched: Mutex<Vec<u32>>,
}

impl Eal {
    /// Initialises DPDK's EAL with `args`: the EAL options only (`--no-huge`, `-m 512`, `-l 0,1`,
    /// `--vdev net_pcap0,rx_pcap=in.pcap`, …), **without** the program name, which is added here.
    ///
    /// The calling thread becomes the main lcore and is pinned to its CPU; threads it spawns
    /// afterwards inherit that affinity (start control threads before, or re-pin them).
    ///
    /// Fails with [`DpdkError::AlreadyInitialised`] on a second call, with
    /// [`DpdkError::UnparsedArguments`] if some arguments are not EAL options (EAL is then up but
    /// unusable from here: treat it as fatal), and with [`DpdkError::Call`] if `rte_eal_init`
    /// fails.
    pub fn init(args: &[String]) -> Result<Eal, DpdkError> {
        let argv = EalArgv::new(&program_name(), args)?;
        if EAL_INITIALISED
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(DpdkError::AlreadyInitialised);
        }
        // Kept for the life of the process: see "Arguments" in the module docs.
        let argv: &'static mut EalArgv = Box::leak(Box::new(argv));
        let argc = argv.argc();
        // `EAL_INITIALISED` guarantees no other thread is in this call. EAL may reorder the
        // pointer array, which is ours to give.
        // SAFETY: `argv.pointers` is `argc` pointers to NUL-terminated strings, then NULL, all
        // owned by `argv`, which is never freed.
        let parsed = unsafe { sys::rte_eal_init(argc, argv.pointers.as_mut_ptr()) };
        if parsed < 0 {
            let err = DpdkError::from_rte_errno("rte_eal_init");
            // DPDK itself refuses a second attempt when the failure left it half-initialised
            // (EALREADY); where it allows one, so do we.
            EAL_INITIALISED.store(false, Ordering::Release);
            return Err(err);
        }
        let unparsed = argv.unparsed(parsed);
        if !unparsed.is_empty() {
            return Err(DpdkError::UnparsedArguments(unparsed));
        }
        Ok(Eal {
            launched: Mutex::new(Vec::new()),
        })
    }

    /// The main lcore: the thread that called [`Eal::init`], where control runs.
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: reads the EAL configuration, set up by `rte_eal_init` (proven by `&self`).
        unsafe { sys::rte_get_main_lcore() }
    }

    /// The enabled worker lcores (every enabled lcore but the main one), in increasing order.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut lcores = Vec::new();
        let mut lcore = u32::MAX; // DPDK's "start before lcore 0"
        loop {
            // SAFETY: `rte_get_next_lcore` reads the EAL configuration (initialised, proven by
            // `&self`) and accepts any `i`, including -1 as an unsigned int.
            lcore = unsafe { sys::rte_get_next_lcore(lcore, 1, 0) };
            if lcore >= sys::RTE_MAX_LCORE {
                return lcores;
            }
            lcores.push(lcore);
        }
    }

    /// The CPU an enabled lcore's thread is pinned to; `None` for an lcore that is not enabled.
    pub fn lcore_cpu(&self, lcore: u32) -> Option<u32> {
        if !lcore_enabled(lcore) {
            return None;
        }
        let lcore = c_int::try_from(lcore).ok()?;
        // SAFETY: `lcore` is below RTE_MAX_LCORE (it is enabled) and EAL is initialised.
        let cpu = unsafe { sys::rte_lcore_to_cpu_id(lcore) };
        u32::try_from(cpu).ok()
    }

    /// The NUMA socket of an enabled lcore; `None` for an lcore that is not enabled.
    pub fn lcore_socket(&self, lcore: u32) -> Option<u32> {
        if !lcore_enabled(lcore) {
            return None;
        }
        // SAFETY: `rte_lcore_to_socket_id` indexes the lcore table without a bounds check;
        // `lcore` is enabled, hence below RTE_MAX_LCORE.
        Some(unsafe { sys::rte_lcore_to_socket_id(lcore) })
    }

    /// Lets DPDK's capture tools (`dpdk-dumpcap`, `dpdk-pdump`), running as secondary processes,
    /// capture from this process' ports: `rte_pdump_init`, once, on the main lcore. A secondary
    /// process can only attach when EAL shares its memory and configuration (hugepages, and
    /// neither `--no-shconf` nor `--in-memory`); the caller decides whether that is so.
    pub fn enable_pdump(&self) -> Result<(), DpdkError> {
        // `rte_pdump_init` reserves its statistics memzone and registers its multi-process
        // request handler; a second call fails on the existing memzone and is reported.
        // SAFETY: EAL is initialised (proven by `&self`); the call touches no memory of ours.
        let rc = unsafe { sys::rte_pdump_init() };
        if rc < 0 {
            return Err(DpdkError::from_rte_errno("rte_pdump_init"));
        }
        Ok(())
    }

    /// Cycles per second of the TSC, as measured by EAL at init.
    pub fn tsc_hz(&self) -> u64 {
        // SAFETY: reads a value computed by `rte_eal_init` (proven by `&self`).
        unsafe { sys::rte_get_tsc_hz() }
    }

    /// Runs `work` on the worker lcore `lcore`; its return value is collected by
    /// [`Eal::wait_all`]. Must be called on the main lcore.
    ///
    /// Fails with [`DpdkError::NotWorkerLcore`] if `lcore` is not an enabled worker lcore, with
    /// [`DpdkError::LcoreBusy`] if it was launched and not yet waited for, and with
    /// [`DpdkError::Call`] if DPDK refuses.
    pub fn launch<F>(&self, lcore: u32, work: F) -> Result<(), DpdkError>
    where
        F: FnOnce() -> i32 + Send + 'static,
    {
        self.require_main_lcore("Eal::launch")?;
        if lcore == self.main_lcore() || !lcore_enabled(lcore) {
            return Err(DpdkError::NotWorkerLcore(lcore));
        }
        let mut launched = self.launched.lock().unwrap_or_else(PoisonError::into_inner);
        if launched.contains(&lcore) {
            return Err(DpdkError::LcoreBusy(lcore));
        }
        let work = Box::into_raw(Box::new(work));
        // `run_on_lcore::<F>` takes back exactly this box, whose `F` is `Send + 'static`, so
        // running and dropping it on the worker thread is sound.
        let trampoline = Some(run_on_lcore::<F> as unsafe extern "C" fn(*mut c_void) -> c_int);
        // SAFETY: `lcore` is an enabled worker lcore and we are on the main lcore, as
        // `rte_eal_remote_launch` requires; `work` is the box `trampoline` expects.
        let ret = unsafe { sys::rte_eal_remote_launch(trampoline, work.cast(), lcore) };
        if ret < 0 {
            // SAFETY: DPDK refused the launch, so the worker will not run `work`: we still own
            // the box made above and free it once.
            drop(unsafe { Box::from_raw(work) });
            return Err(DpdkError::from_ret("rte_eal_remote_launch", ret));
        }
        launched.push(lcore);
        Ok(())
    }

    /// Waits until every launched worker has returned, and gives each lcore with its closure's
    /// return value, in launch order. Must be called on the main lcore.
    pub fn wait_all(&self) -> Result<Vec<(u32, i32)>, DpdkError> {
        self.require_main_lcore("Eal::wait_all")?;
        let mut launched = self.launched.lock().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: called on the main lcore of an initialised EAL, as DPDK requires.
        unsafe { sys::rte_eal_mp_wait_lcore() };
        let results = launched
            .drain(..)
            .map(|lcore| {
                // SAFETY: `lcore` is a worker lcore (checked at launch) that has finished
                // (`rte_eal_mp_wait_lcore` returned): this returns its stored result at once.
                (lcore, unsafe { sys::rte_eal_wait_lcore(lcore) })
            })
            .collect();
        Ok(results)
    }

    fn require_main_lcore(&self, call: &'static str) -> Result<(), DpdkError> {
        if current_lcore() == Some(self.main_lcore()) {
            Ok(())
        } else {
            Err(DpdkError::NotMainLcore(call))
        }
    }
}

/// EAL arguments for a process that touches no hardware and shares nothing, as the tests and
/// benches on virtual devices run: no huge pages (`memory_mb` of ordinary memory), no PCI scan,
/// no shared config files (so that runs side by side do not collide), no telemetry socket, EAL
/// logs from notice up; then `extra` (lcores, vdevs).
pub fn isolated_args(memory_mb: u32, extra: &[&str]) -> Vec<String> {
    let memory = memory_mb.to_string();
    [
        "--no-huge",
        "-m",
        &memory,
        "--no-pci",
        "--no-shconf",
        "--no-telemetry",
        "--log-level",
        "lib.eal:notice",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect()
}

/// The version of the DPDK library the process runs with (`"DPDK 22.11.4"`), from
/// `rte_version`. Needs no EAL initialisation.
pub fn dpdk_version() -> String {
    // SAFETY: `rte_version` returns a pointer to a static NUL-terminated string (or NULL, which
    // is checked), valid for the life of the process.
    let version = unsafe { sys::rte_version() };
    if version.is_null() {
        return String::new();
    }
    // SAFETY: non-NULL, static and NUL-terminated, as above.
    unsafe { CStr::from_ptr(version) }
        .to_string_lossy()
        .into_owned()
}

/// The EAL lcore id of the calling thread; `None` on a thread that is not an EAL lcore. Works
/// before EAL init too (every thread is then `None`).
pub fn current_lcore() -> Option<u32> {
    // SAFETY: reads the calling thread's thread-local lcore id; no precondition.
    let lcore = unsafe { sys::rte_lcore_id() };
    (lcore != sys::SHIM_LCORE_ID_ANY).then_some(lcore)
}

/// The time-stamp counter, in cycles of [`Eal::tsc_hz`]. Cheap: one instruction, not
/// serialising (do not use it to time a handful of instructions).
#[inline]
pub fn rdtsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: every x86_64 CPU has RDTSC; it reads a register and touches no memory.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // SAFETY: DPDK's cycle counter read; no memory access, no precondition.
        unsafe { sys::rte_rdtsc() }
    }
}

fn lcore_enabled(lcore: u32) -> bool {
    // SAFETY: `rte_lcore_is_enabled` checks `lcore` against RTE_MAX_LCORE itself, and reads the
    // EAL configuration (zeroed before init: every lcore then reads as disabled).
    unsafe { sys::rte_lcore_is_enabled(lcore) != 0 }
}

/// The trampoline DPDK calls on the worker lcore's thread.
extern "C" fn run_on_lcore<F>(arg: *mut c_void) -> c_int
where
    F: FnOnce() -> i32 + Send + 'static,
{
    // SAFETY: `arg` is the `Box<F>` that `Eal::launch` leaked for this launch; DPDK passes it to
    // this function exactly once, so the box is taken back once.
    let work = unsafe { Box::from_raw(arg.cast::<F>()) };
    match std::panic::catch_unwind(AssertUnwindSafe(work)) {
        Ok(status) => status,
        Err(_) => {
            // The panic message is already printed by the panic hook. Unwinding into C is
            // undefined behaviour, and a silently dead worker would stop a queue: abort.
            eprintln!("a closure launched on a DPDK worker lcore panicked: aborting");
            std::process::abort();
        }
    }
}

/// The program name EAL logs under: the file name this process was started as.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|arg0| {
            std::path::Path::new(&arg0)
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "broker".to_owned())
}

/// A C `argv` for `rte_eal_init`: owned strings and a NULL-terminated pointer array into them.
#[derive(Debug)]
struct EalArgv {
    /// Program name then arguments; never moved once `pointers` is built (the heap buffers of
    /// `CString`s do not move when the `Vec` does).
    strings: Vec<CString>,
    /// `strings[i].as_ptr()` for each i, then NULL. EAL may reorder it.
    pointers: Vec<*mut c_char>,
}

impl EalArgv {
    fn new(program: &str, args: &[String]) -> Result<EalArgv, DpdkError> {
        let strings = std::iter::once(program)
            .chain(args.iter().map(String::as_str))
            .map(|arg| CString::new(arg).map_err(|_| DpdkError::NulInArgument(arg.to_owned())))
            .collect::<Result<Vec<_>, _>>()?;
        let pointers = strings
            .iter()
            .map(|s| s.as_ptr().cast_mut())
            .chain(std::iter::once(std::ptr::null_mut()))
            .collect();
        Ok(EalArgv { strings, pointers })
    }

    fn argc(&self) -> c_int {
        // At most a few dozen arguments; a count beyond c_int cannot come from a command line.
        c_int::try_from(self.strings.len()).unwrap_or(c_int::MAX)
    }

    /// The arguments EAL left alone, given that it parsed `parsed` of them: getopt moved them
    /// to the end of `pointers`, after the program name EAL wrote back at index `parsed`.
    fn unparsed(&self, parsed: c_int) -> Vec<String> {
        let first = usize::try_from(parsed).unwrap_or(0) + 1;
        let end = self.strings.len();
        self.pointers
            .get(first..end)
            .unwrap_or_default()
            .iter()
            .map(|&ptr| {
                // SAFETY: every non-NULL entry before index `argc` points into one of
                // `self.strings` (EAL only permutes the array), alive as long as `self`.
                unsafe { CStr::from_ptr(ptr) }
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(ptr: *mut c_char) -> String {
        // SAFETY: test helper, only given pointers into a live `EalArgv`.
        unsafe { CStr::from_ptr(ptr) }.to_str().unwrap().to_owned()
    }

    #[test]
    fn argv_starts_with_the_program_and_ends_with_null() {
        let args = vec!["--no-huge".to_owned(), "-m".to_owned(), "256".to_owned()];
        let argv = EalArgv::new("broker", &args).unwrap();
        assert_eq!(argv.argc(), 4);
        assert_eq!(argv.pointers.len(), 5);
        assert_eq!(string(argv.pointers[0]), "broker");
        assert_eq!(string(argv.pointers[3]), "256");
        assert!(argv.pointers[4].is_null());
        assert!(argv.unparsed(3).is_empty());
    }

    #[test]
    fn dpdk_version_names_the_linked_library() {
        let version = dpdk_version();
        assert!(version.starts_with("DPDK "), "{version:?}");
    }

    #[test]
    fn argv_refuses_nul_bytes() {
        let args = vec!["--vdev".to_owned(), "net_null0\0x".to_owned()];
        assert_eq!(
            EalArgv::new("broker", &args).unwrap_err(),
            DpdkError::NulInArgument("net_null0\0x".to_owned())
        );
    }

    #[test]
    fn unparsed_arguments_are_those_after_the_parsed_count() {
        // What rte_eal_init leaves after parsing `--no-huge` and meeting the non-option `oops`:
        // getopt moved `oops` to the end and EAL wrote the program name just before it.
        let args = vec!["oops".to_owned(), "--no-huge".to_owned()];
        let mut argv = EalArgv::new("broker", &args).unwrap();
        argv.pointers.swap(1, 2); // [broker, --no-huge, oops]
        argv.pointers[1] = argv.pointers[0]; // [broker, broker, oops]
        assert_eq!(argv.unparsed(1), vec!["oops".to_owned()]);
        assert_eq!(argv.unparsed(2), Vec::<String>::new());
    }
}
