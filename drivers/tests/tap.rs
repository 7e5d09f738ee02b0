//! `net_tap`: a kernel TAP interface as a DPDK port. Needs CAP_NET_ADMIN and /dev/net/tun; a
//! run without them fails (or, with `BROKER_TESTS_ALLOW_UNPRIVILEGED=1`, says loudly that it
//! skipped).

mod common;

use common::{
    CAP_NET_ADMIN, eal_args, frame, kernel_counter, kernel_send, port_setup, wait_for_frame,
};
use drivers::{Eal, Mempool, Port};

const IFACE: &str = "drvtap0";

#[test]
fn tap_port_sends_to_and_receives_from_the_kernel() {
    if !common::require_capability(CAP_NET_ADMIN, "CAP_NET_ADMIN", "net_tap") {
        return;
    }
    assert!(
        std::path::Path::new("/dev/net/tun").exists(),
        "/dev/net/tun is missing: net_tap cannot work here (load the tun module)"
    );
    let vdev = format!("net_tap_drv0,iface={IFACE}");
    let eal = Eal::init(&eal_args(&["-l", "0", "--vdev", &vdev])).expect("EAL init");
    let pool = Mempool::new(&eal, "tap_pool", 1023, 32, 2048, None).unwrap();
    let port = Port::by_name(&eal, &vdev).unwrap();
    let info = port.info().unwrap();
    assert_eq!(info.driver, "net_tap");
    // The kernel side of an addressed port takes that port's MAC: set it, see the kernel's.
    let mac = [0x02, 0x42, 0x52, 0x4f, 0x4b, 0x01];
    port.set_mac_address(mac).unwrap();
    assert_eq!(port.info().unwrap().mac, mac);
    let kernel_mac = std::fs::read_to_string(format!("/sys/class/net/{IFACE}/address")).unwrap();
    assert_eq!(kernel_mac.trim(), "02:42:52:4f:4b:01");
    port.configure(&port_setup(pool, 1)).unwrap();
    port.start().unwrap();
    port.enable_promiscuous().unwrap();
    assert!(port.link().unwrap().up, "a started tap port is up");
    assert_eq!(port.mtu().unwrap(), 1500);
    let mut rx = port.take_rx_queue(0).unwrap();
    let mut tx = port.take_tx_queue(0).unwrap();

    // DPDK → kernel: the interface counts what we send.
    let before = kernel_counter(IFACE, "rx_packets");
    let mut m = pool.alloc().unwrap();
    assert!(m.append(&frame(200, 5)));
    let mut pkts = [Some(m)];
    assert_eq!(tx.tx_burst(&mut pkts), 1);
    assert!(kernel_counter(IFACE, "rx_packets") > before);

    // Kernel → DPDK: a frame sent out of the interface arrives on the RX queue (among whatever
    // else the kernel sends there, such as IPv6 neighbour discovery).
    let marker = frame(300, 77);
    kernel_send(IFACE, &marker);
    assert!(
        wait_for_frame(&mut rx, &marker),
        "the frame sent by the kernel did not arrive"
    );

    drop((rx, tx));
    let stats = port.stats().unwrap();
    assert!(stats.opackets >= 1 && stats.ipackets >= 1, "{stats:?}");
    port.stop().unwrap();
    port.close().unwrap();
    assert_eq!(pool.in_use(), 0);
}
