//! `net_af_packet` on the loopback interface: what the port sends on `lo` comes back to it.
//! Needs CAP_NET_RAW; a run without it fails (or, with `BROKER_TESTS_ALLOW_UNPRIVILEGED=1`,
//! says loudly that it skipped).

mod common;

use common::{CAP_NET_RAW, eal_args, frame, port_setup, wait_for_frame};
use drivers::{Eal, Mempool, Port};

#[test]
fn af_packet_port_on_loopback() {
    if !common::require_capability(CAP_NET_RAW, "CAP_NET_RAW", "net_af_packet") {
        return;
    }
    let vdev = "net_af_packet_drv0,iface=lo";
    let eal = Eal::init(&eal_args(&["-l", "0", "--vdev", vdev])).expect("EAL init");
    let pool = Mempool::new(&eal, "afp_pool", 1023, 32, 2048, None).unwrap();
    let port = Port::by_name(&eal, vdev).unwrap();
    assert_eq!(port.info().unwrap().driver, "net_af_packet");
    port.configure(&port_setup(pool, 1)).unwrap();
    port.start().unwrap();
    let mut rx = port.take_rx_queue(0).unwrap();
    let mut tx = port.take_tx_queue(0).unwrap();

    // lo carries other traffic of this machine too: look for our own frame among it.
    let marker = frame(400, 0xa5);
    let mut m = pool.alloc().unwrap();
    assert!(m.append(&marker));
    let mut pkts = [Some(m)];
    assert_eq!(tx.tx_burst(&mut pkts), 1);
    assert!(
        wait_for_frame(&mut rx, &marker),
        "the frame sent on lo did not come back"
    );

    drop((rx, tx));
    let stats = port.stats().unwrap();
    assert!(stats.opackets >= 1 && stats.ipackets >= 1, "{stats:?}");
    port.stop().unwrap();
    port.close().unwrap();
    assert_eq!(pool.in_use(), 0);
}
