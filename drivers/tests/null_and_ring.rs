//! `net_null` and `net_ring` ports with 2 RX and 2 TX queues: configure (RSS where supported),
//! pass bursts, read the counters, and check the queue-handle rules.

mod common;

use std::sync::{Arc, Mutex};

use common::{bytes_of, eal_args, frame, port_setup, receive};
use drivers::{DpdkError, Eal, Mbuf, Mempool, Port, PortSetup, RxQueue, Tunnel, TxQueue};
use packet::PacketBuf;

fn assert_send<T: Send>() {}

#[test]
fn null_and_ring_ports_with_two_queues() {
    assert_send::<RxQueue>();
    assert_send::<TxQueue>();
    assert_send::<Mbuf>();

    let eal = Eal::init(&eal_args(&[
        "-l",
        "0",
        "--vdev",
        "net_null_drv0",
        "--vdev",
        "net_ring_drv0",
    ]))
    .expect("EAL init");
    let pool = Mempool::new(&eal, "null_ring_pool", 2047, 64, 2048, None).unwrap();
    let setup = port_setup(pool, 2);
    // The binding links and runs (a secondary process could not attach to this EAL: no
    // hugepages, no shared config; the broker calls it only when one could).
    eal.enable_pdump().expect("rte_pdump_init");

    null_port(&eal, &setup, pool);
    ring_port(&eal, &setup, pool);
    assert_eq!(pool.in_use(), 0, "every mbuf back in the pool");
}

/// net_null makes packets on RX and swallows them on TX; it hashes with RSS.
fn null_port(eal: &Eal, setup: &PortSetup, pool: Mempool) {
    let port = Port::by_name(eal, "net_null_drv0").unwrap();
    let info = port.info().unwrap();
    assert_eq!(info.driver, "net_null");
    assert!(
        info.max_rx_queues >= 2 && info.max_tx_queues >= 2,
        "{info:?}"
    );
    let config = port.configure(setup).unwrap();
    assert_ne!(
        config.rss_hash_functions, 0,
        "net_null supports RSS: {info:?}"
    );
    assert_eq!(
        config.rss_hash_functions & !info.rss_offloads,
        0,
        "RSS masked by what the device supports"
    );
    port.start().unwrap();
    let link = port.link().unwrap();
    assert!(link.up, "{link:?}");

    // It hashes the outer headers only: a request for RSS on the inner headers is refused,
    // naming the call, the rule and the reason.
    let refused = port
        .hash_inner_headers(2, &[Tunnel::Vxlan(4789), Tunnel::Geneve(6081)])
        .unwrap_err();
    assert!(
        matches!(
            &refused,
            DpdkError::Flow { call: "rte_flow_validate", rule, .. }
                if rule == "VXLAN on UDP 4789 over IPv4"
        ),
        "{refused:?}"
    );
    eprintln!("net_null and inner RSS: {refused}");
    assert_eq!(
        port.hash_inner_headers(2, &[]),
        Ok(0),
        "nothing asked, nothing done"
    );

    let mut rx0 = port.take_rx_queue(0).unwrap();
    let rx1 = port.take_rx_queue(1).unwrap();
    assert!(matches!(
        port.take_rx_queue(0),
        Err(DpdkError::QueueTaken { queue: 0, .. })
    ));
    assert!(matches!(
        port.take_rx_queue(2),
        Err(DpdkError::NoSuchQueue {
            queue: 2,
            configured: 2,
            ..
        })
    ));
    let tx1 = Arc::new(Mutex::new(port.take_tx_queue(1).unwrap()));

    let mut burst: [Option<Mbuf>; 32] = std::array::from_fn(|_| None);
    let n = rx0.rx_burst(&mut burst);
    assert_eq!(n, 32, "net_null fills every slot");
    assert!(
        burst
            .iter()
            .all(|p| p.as_ref().is_some_and(|p| p.pkt_len() == 64))
    );
    assert_eq!(pool.in_use(), 32);

    // Two threads share TX queue 1 through a Mutex: the type system makes them lock it.
    let (first, second) = burst.split_at_mut(16);
    std::thread::scope(|s| {
        for half in [first, second] {
            let tx1 = Arc::clone(&tx1);
            s.spawn(move || {
                let sent = tx1.lock().unwrap().tx_burst(half);
                assert_eq!(sent, 16);
                assert!(half.iter().all(Option::is_none));
            });
        }
    });
    assert_eq!(pool.in_use(), 0, "net_null frees what it sends");

    // Reconfiguring, stopping or closing under live queue handles is refused.
    assert!(matches!(
        port.configure(setup),
        Err(DpdkError::QueuesInUse { handles: 3, .. })
    ));
    assert!(matches!(port.close(), Err(DpdkError::QueuesInUse { .. })));
    drop((rx0, rx1, tx1));

    let stats = port.stats().unwrap();
    assert_eq!(stats.ipackets, 32);
    assert_eq!(stats.queues[0].ipackets, 32);
    assert_eq!(stats.queues[1].ipackets, 0);
    assert_eq!(stats.opackets, 32);
    assert_eq!(stats.queues[1].opackets, 32);
    assert_eq!(stats.queues[0].opackets, 0);

    port.stop().unwrap();
    port.close().unwrap();
    assert!(port.info().is_err(), "a closed port is gone");
}

/// net_ring loops TX queue i back to RX queue i, passing the mbufs themselves.
fn ring_port(eal: &Eal, setup: &PortSetup, pool: Mempool) {
    let port = Port::by_name(eal, "net_ring_drv0").unwrap();
    let info = port.info().unwrap();
    assert_eq!(info.driver, "net_ring");
    let config = port.configure(setup).unwrap();
    assert_eq!(
        config.rss_hash_functions, info.rss_offloads,
        "no RSS on a device without it"
    );
    port.start().unwrap();
    let mut rx1 = port.take_rx_queue(1).unwrap();
    let mut tx1 = port.take_tx_queue(1).unwrap();

    // A chain, a clone of it cut short, and ordinary frames.
    let frames: Vec<Vec<u8>> = (0..6).map(|i| frame(64 + 200 * i, i as u8)).collect();
    let jumbo = frame(7000, 42);
    let mut pkts: Vec<Option<Mbuf>> = frames
        .iter()
        .map(|f| {
            let mut m = pool.alloc().unwrap();
            assert!(m.append(f));
            Some(m)
        })
        .collect();
    let mut chain = pool.alloc().unwrap();
    assert!(chain.append(&jumbo));
    assert_eq!(chain.segments(), 4);
    let mut cut = chain.share().unwrap();
    cut.truncate(2500);
    // A clone of the first frame with outer headers chained in front (a tunnelled copy): the
    // header is a segment of its own, the shared frame is left as it was.
    let mut tunnelled = pkts[0].as_ref().unwrap().clone_indirect().unwrap();
    let header = tunnelled.prepend(50).expect("a header segment");
    assert_eq!(header, [0u8; 50], "zeroed until written");
    header.copy_from_slice(&[0xAB; 50]);
    assert_eq!(
        (tunnelled.segments(), tunnelled.pkt_len()),
        (2, 50 + frames[0].len())
    );
    assert_eq!(
        tunnelled.data(),
        [0xAB; 50],
        "the header is the first segment"
    );
    assert_eq!(
        bytes_of(pkts[0].as_ref().unwrap()),
        frames[0],
        "the original is untouched"
    );
    assert!(
        tunnelled.prepend(4096).is_none(),
        "more than a segment holds"
    );
    // A short packet is shared as a copy, whose buffer is its own: the header goes into its
    // headroom, no segment added, and the original is untouched.
    let mut in_place = pkts[1].as_ref().unwrap().share().unwrap();
    let header = in_place.prepend(50).expect("room in the headroom");
    assert_eq!(header, [0u8; 50], "zeroed until written");
    header.copy_from_slice(&[0xCD; 50]);
    assert_eq!(
        (in_place.segments(), in_place.pkt_len()),
        (1, 50 + frames[1].len())
    );
    assert_eq!(in_place.data()[..50], [0xCD; 50]);
    assert_eq!(in_place.data()[50..], frames[1][..]);
    assert_eq!(bytes_of(pkts[1].as_ref().unwrap()), frames[1]);
    pkts.push(Some(chain));
    pkts.push(Some(cut));
    pkts.push(Some(tunnelled));
    pkts.push(Some(in_place));
    let count = pkts.len();

    assert_eq!(tx1.tx_burst(&mut pkts), count);
    let got = receive(&mut rx1, count, 50);
    assert_eq!(got.len(), count);
    for (pkt, want) in got.iter().zip(&frames) {
        assert_eq!(&bytes_of(pkt), want);
    }
    assert_eq!(bytes_of(&got[6]), jumbo);
    assert_eq!(got[6].segments(), 4);
    assert_eq!(bytes_of(&got[7]), jumbo[..2500]);
    assert_eq!(got[7].segments(), 2);
    let mut outer = vec![0xAB; 50];
    outer.extend_from_slice(&frames[0]);
    assert_eq!(bytes_of(&got[8]), outer);
    let mut outer = vec![0xCD; 50];
    outer.extend_from_slice(&frames[1]);
    assert_eq!(bytes_of(&got[9]), outer);
    drop(got);

    // Nothing came back on queue 0: the rings are per queue.
    let mut rx0 = port.take_rx_queue(0).unwrap();
    assert!(receive(&mut rx0, 1, 5).is_empty());
    drop((rx0, rx1, tx1));

    let stats = port.stats().unwrap();
    assert_eq!(stats.opackets, count as u64);
    assert_eq!(stats.ipackets, count as u64);
    assert_eq!(stats.queues[1].opackets, count as u64);
    assert_eq!(stats.queues[1].ipackets, count as u64);
    port.stop().unwrap();
    port.close().unwrap();
}
