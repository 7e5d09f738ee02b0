//! The broker process' own resources, as Prometheus' client libraries export them
//! (`process_cpu_seconds_total`, `process_resident_memory_bytes`, …), so the dashboards and
//! alerts written for any exporter's process work for the broker too.
//!
//! # Design
//! Read from `/proc/self` once a second with the rest of the [`super::snapshot::Snapshot`]:
//! `stat` (CPU time, start time, virtual and resident size), `fd/` (open descriptors), `limits`
//! (the descriptor limit), and `/proc/stat`'s boot time for the start time's epoch. The clock tick
//! and page size the kernel counts in come from the process' auxiliary vector
//! (`/proc/self/auxv`: `AT_CLKTCK`, `AT_PAGESZ`), which gives the values `sysconf` would without
//! `unsafe` or `libc`. Reading is a handful of small files on the control core; nothing here
//! touches the data path.
//!
//! # Limitations
//! Linux only (`/proc`). `process_cpu_seconds_total` is published in whole seconds: counters of
//! the `metrics` crate are integers (a poll-mode broker spends a second of CPU per worker per
//! second, so the rounding is lost in any `rate()`). The open descriptors counted include the
//! one used to list them, as in the other exporters. A file that cannot be read leaves its
//! metrics out of that publication.

use std::path::Path;

use metrics::{Counter, Gauge};

use super::catalog;

/// `AT_PAGESZ` and `AT_CLKTCK` of `<elf.h>`: keys of the auxiliary vector.
const AT_PAGESZ: u64 = 6;
const AT_CLKTCK: u64 = 17;

/// What the process uses, at one reading.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessStats {
    /// User and system CPU time, in seconds.
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    /// The soft limit on open descriptors; `None` when unlimited.
    pub max_fds: Option<u64>,
    /// When the process started, in seconds since the Unix epoch.
    pub start_time_seconds: f64,
}

/// The value of `key` in an auxiliary vector (native-endian `u64` pairs, ended by key 0).
fn auxv_value(auxv: &[u8], key: u64) -> Option<u64> {
    auxv.chunks_exact(16)
        .map(|pair| {
            let word = |bytes: &[u8]| u64::from_ne_bytes(bytes.try_into().expect("8 bytes"));
            (word(&pair[..8]), word(&pair[8..]))
        })
        .take_while(|&(k, _)| k != 0)
        .find(|&(k, _)| k == key)
        .map(|(_, value)| value)
}

/// `btime` of `/proc/stat`: the boot time, in seconds since the Unix epoch.
fn boot_time(proc_stat: &str) -> Option<u64> {
    proc_stat
        .lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|value| value.trim().parse().ok())
}

/// The soft "Max open files" of `/proc/self/limits`; `Some(None)` when unlimited.
fn max_open_files(limits: &str) -> Option<Option<u64>> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    if soft == "unlimited" {
        Some(None)
    } else {
        soft.parse().ok().map(Some)
    }
}

/// The fields of `/proc/self/stat` this needs: (CPU seconds, start time after boot in seconds,
/// virtual bytes, resident bytes).
fn parse_stat(stat: &str, ticks_per_second: u64, page_size: u64) -> Option<(f64, f64, u64, u64)> {
    // `pid (comm) state …`: comm may hold spaces and parentheses, so fields are counted from
    // after its last `)`; `rest[0]` is field 3 of proc(5), field N is `rest[N - 3]`.
    let rest: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let field = |n: usize| -> Option<u64> { rest.get(n - 3)?.parse().ok() };
    let ticks = ticks_per_second.max(1) as f64;
    let (utime, stime, starttime) = (field(14)?, field(15)?, field(22)?);
    let (vsize, rss) = (field(23)?, field(24)?);
    Some((
        (utime + stime) as f64 / ticks,
        starttime as f64 / ticks,
        vsize,
        rss.saturating_mul(page_size),
    ))
}

/// Reads this process' resources now; `None` when `/proc/self/stat` (which every figure but the
/// descriptors needs) cannot be read or understood.
pub fn read() -> Option<ProcessStats> {
    let proc = Path::new("/proc");
    let auxv = std::fs::read(proc.join("self/auxv")).unwrap_or_default();
    // The kernel's own defaults where the vector does not say (it always does on Linux).
    let ticks = auxv_value(&auxv, AT_CLKTCK).unwrap_or(100);
    let page_size = auxv_value(&auxv, AT_PAGESZ).unwrap_or(4096);
    let stat = std::fs::read_to_string(proc.join("self/stat")).ok()?;
    let (cpu_seconds, started_after_boot, virtual_bytes, resident_bytes) =
        parse_stat(&stat, ticks, page_size)?;
    let boot = std::fs::read_to_string(proc.join("stat"))
        .ok()
        .and_then(|text| boot_time(&text))?;
    let open_fds = std::fs::read_dir(proc.join("self/fd")).map_or(0, |dir| dir.count() as u64);
    let max_fds = std::fs::read_to_string(proc.join("self/limits"))
        .ok()
        .and_then(|text| max_open_files(&text))
        .flatten();
    Some(ProcessStats {
        cpu_seconds,
        resident_bytes,
        virtual_bytes,
        open_fds,
        max_fds,
        start_time_seconds: boot as f64 + started_after_boot,
    })
}

/// The `process_*` series.
pub struct ProcessSeries {
    cpu: Counter,
    resident: Gauge,
    virtual_memory: Gauge,
    open_fds: Gauge,
    max_fds: Gauge,
    start_time: Gauge,
}

impl ProcessSeries {
    /// Registers the series with the current recorder.
    pub fn register() -> ProcessSeries {
        let gauge = |name: &'static str| metrics::gauge!(name);
        ProcessSeries {
            cpu: metrics::counter!(catalog::PROCESS_CPU_SECONDS),
            resident: gauge(catalog::PROCESS_RESIDENT_MEMORY),
            virtual_memory: gauge(catalog::PROCESS_VIRTUAL_MEMORY),
            open_fds: gauge(catalog::PROCESS_OPEN_FDS),
            max_fds: gauge(catalog::PROCESS_MAX_FDS),
            start_time: gauge(catalog::PROCESS_START_TIME),
        }
    }

    pub fn set(&self, stats: &ProcessStats) {
        // Whole seconds: the counter is an integer (module docs).
        self.cpu.absolute(stats.cpu_seconds as u64);
        self.resident.set(stats.resident_bytes as f64);
        self.virtual_memory.set(stats.virtual_bytes as f64);
        self.open_fds.set(stats.open_fds as f64);
        // No limit: the largest value a descriptor can take, as the other exporters say it.
        self.max_fds
            .set(stats.max_fds.map_or(f64::from(u32::MAX), |max| max as f64));
        self.start_time.set(stats.start_time_seconds);
    }
}

impl std::fmt::Debug for ProcessSeries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessSeries").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_command_with_spaces_and_parentheses() {
        // proc(5): utime 14, stime 15, starttime 22, vsize 23, rss 24.
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 \
                    441434 3133440000 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0";
        let (cpu, started, virtual_bytes, resident) = parse_stat(stat, 100, 4096).unwrap();
        assert_eq!(cpu, 3.0);
        assert_eq!(started, 4414.34);
        assert_eq!(virtual_bytes, 3_133_440_000);
        assert_eq!(resident, 2048 * 4096);
        assert_eq!(parse_stat("4242 (cut short) S 1 2", 100, 4096), None);
        assert_eq!(parse_stat("no parenthesis", 100, 4096), None);
    }

    #[test]
    fn limits_boot_time_and_auxv() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max processes             96370                96370                processes\n\
                      Max open files            20000                524288               files\n";
        assert_eq!(max_open_files(limits), Some(Some(20000)));
        let unlimited = limits.replace("20000 ", "unlimited");
        assert_eq!(max_open_files(&unlimited), Some(None));
        assert_eq!(max_open_files("Limit Soft Hard\n"), None);

        assert_eq!(
            boot_time("cpu  1 2 3\nintr 5\nbtime 1796646460\nprocesses 9\n"),
            Some(1_796_646_460)
        );
        assert_eq!(boot_time("cpu 1\n"), None);

        let mut auxv = Vec::new();
        for (key, value) in [
            (33u64, 7u64),
            (AT_PAGESZ, 4096),
            (AT_CLKTCK, 100),
            (0, 0),
            (99, 1),
        ] {
            auxv.extend_from_slice(&key.to_ne_bytes());
            auxv.extend_from_slice(&value.to_ne_bytes());
        }
        assert_eq!(auxv_value(&auxv, AT_CLKTCK), Some(100));
        assert_eq!(auxv_value(&auxv, AT_PAGESZ), Some(4096));
        assert_eq!(auxv_value(&auxv, 99), None, "nothing after the end marker");
        assert_eq!(auxv_value(&auxv[..20], AT_PAGESZ), None, "a cut vector");
    }

    #[test]
    fn this_process() {
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        let stats = read().expect("/proc/self is readable");
        // The test process started before now, and not days ago; it holds `file` open.
        assert!(stats.start_time_seconds <= before + 1.0, "{stats:?}");
        assert!(stats.start_time_seconds > before - 86_400.0, "{stats:?}");
        assert!(stats.open_fds >= 4, "{stats:?}");
        assert!(stats.resident_bytes > 1 << 20, "{stats:?}");
        assert!(stats.virtual_bytes >= stats.resident_bytes, "{stats:?}");
        assert!(
            stats.max_fds.is_none_or(|max| max >= stats.open_fds),
            "{stats:?}"
        );
        drop(file);
    }
}
