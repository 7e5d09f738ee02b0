//! Helpers shared by the DPDK integration tests. Each test file is its own process because EAL
//! initialises once per process.
#![allow(dead_code)] // each test file uses a different subset

use std::path::PathBuf;

use drivers::{Mbuf, Mempool, PortSetup, RxQueue};
use packet::PacketBuf;

/// EAL arguments for a test run: 256 MB without huge pages, no PCI scan, no shared files (so
/// runs side by side do not collide), then `extra` (lcores, vdevs).
pub fn eal_args(extra: &[&str]) -> Vec<String> {
    drivers::isolated_args(256, extra)
}

/// A fresh scratch directory for this test process.
pub fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("broker-drivers-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// The bytes of a whole packet, segments joined.
pub fn bytes_of(pkt: &Mbuf) -> Vec<u8> {
    let mut out = Vec::with_capacity(pkt.pkt_len());
    pkt.for_each_segment(|s| out.extend_from_slice(s));
    out
}

/// An Ethernet frame of `len` bytes whose content depends on `seed`: broadcast destination, a
/// locally administered source, an experimental EtherType, then a counting pattern.
pub fn frame(len: usize, seed: u8) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, seed]);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend((0..len.saturating_sub(14)).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)));
    f.truncate(len);
    f
}

/// A port setup with `queues` RX and TX queues of 128 descriptors, the device's default MTU.
pub fn port_setup(mempool: Mempool, queues: u16) -> PortSetup {
    PortSetup {
        rx_queues: queues,
        tx_queues: queues,
        rx_descriptors: 128,
        tx_descriptors: 128,
        mempool,
        mtu: None,
    }
}

/// Polls `rx` for about a second until a packet equal to `frame` arrives (other traffic of a
/// kernel interface may come first); whether it did.
pub fn wait_for_frame(rx: &mut RxQueue, frame: &[u8]) -> bool {
    (0..20).any(|_| receive(rx, 1, 50).iter().any(|p| bytes_of(p) == frame))
}

/// Polls `rx` until `want` packets arrived or `polls` bursts came back empty in a row.
pub fn receive(rx: &mut RxQueue, want: usize, polls: usize) -> Vec<Mbuf> {
    let mut got = Vec::new();
    let mut burst: [Option<Mbuf>; 32] = std::array::from_fn(|_| None);
    let mut idle = 0;
    while got.len() < want && idle < polls {
        let n = rx.rx_burst(&mut burst);
        if n == 0 {
            idle += 1;
            std::thread::sleep(std::time::Duration::from_millis(1));
        } else {
            idle = 0;
        }
        got.extend(burst[..n].iter_mut().filter_map(Option::take));
        assert!(
            burst.iter().all(Option::is_none),
            "rx_burst filled beyond n"
        );
    }
    got
}

/// Whether this process may do what the privileged vdevs need (CAP_NET_ADMIN for net_tap,
/// CAP_NET_RAW for net_af_packet). Without it the test fails, loudly, unless
/// `BROKER_TESTS_ALLOW_UNPRIVILEGED=1` says the run knowingly lacks it; it then prints a banner
/// and returns `false` so the caller can return.
pub fn require_capability(bit: u32, name: &str, vdev: &str) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .expect("CapEff in /proc/self/status");
    if effective & (1 << bit) != 0 {
        return true;
    }
    let message = format!(
        "this process lacks {name}: the {vdev} test cannot open its device. Run as root (or \
         grant {name}), or set BROKER_TESTS_ALLOW_UNPRIVILEGED=1 to skip it knowingly."
    );
    if std::env::var("BROKER_TESTS_ALLOW_UNPRIVILEGED").as_deref() == Ok("1") {
        eprintln!("\n!!!!!!!!!! SKIPPED: {message}\n");
        false
    } else {
        panic!("{message}");
    }
}

/// CAP_NET_ADMIN, from linux/capability.h.
pub const CAP_NET_ADMIN: u32 = 12;
/// CAP_NET_RAW, from linux/capability.h.
pub const CAP_NET_RAW: u32 = 13;

/// Sends `frame` out of the kernel interface `iface` through an AF_PACKET socket: for a tap
/// interface the DPDK side receives it. Independent of DPDK, to check the RX path.
pub fn kernel_send(iface: &str, frame: &[u8]) {
    let name = std::ffi::CString::new(iface).unwrap();
    // SAFETY: `name` is NUL-terminated.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    assert_ne!(ifindex, 0, "no interface {iface}");
    let protocol = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket creation; the descriptor is closed below.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(protocol)) };
    assert!(
        fd >= 0,
        "AF_PACKET socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a zeroed sockaddr_ll is valid; the fields that matter are set below.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = protocol;
    addr.sll_ifindex = ifindex as i32;
    // SAFETY: `addr` is a valid sockaddr_ll of the size passed; `frame` is valid for its length.
    let sent = unsafe {
        libc::sendto(
            fd,
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&raw const addr).cast(),
            size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    let error = std::io::Error::last_os_error();
    // SAFETY: `fd` is the socket opened above, closed once.
    unsafe { libc::close(fd) };
    assert_eq!(sent, frame.len() as isize, "sendto on {iface}: {error}");
}

/// A kernel counter of interface `iface` (`/sys/class/net/<iface>/statistics/<counter>`).
pub fn kernel_counter(iface: &str, counter: &str) -> u64 {
    let path = format!("/sys/class/net/{iface}/statistics/{counter}");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
        .trim()
        .parse()
        .unwrap()
}
