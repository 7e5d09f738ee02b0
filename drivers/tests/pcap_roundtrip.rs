//! `net_pcap` RX → manipulate → TX, checked against the files on both sides.
//!
//! The input holds ordinary frames and a 9000-byte one that arrives as a chain (2048-byte mbufs).
//! The test truncates, shares and strips on the real mbufs, builds a packet with `append`,
//! transmits all of it to a `tx_pcap`, reads that file back, and ends with every mbuf returned
//! to the pool.

mod common;

use std::fs::File;
use std::time::Duration;

use common::{bytes_of, eal_args, frame, port_setup, receive, scratch_dir};
use drivers::{DpdkError, Eal, Mbuf, Mempool, Port, PortSetup, free_bulk};
use packet::PacketBuf;
use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};

const DATA_ROOM: u16 = 2048;

#[test]
fn pcap_round_trip_with_chains_clones_and_truncation() {
    let dir = scratch_dir("pcap");
    let input_path = dir.join("in.pcap");
    let output_path = dir.join("out.pcap");
    let input: Vec<Vec<u8>> = vec![frame(60, 1), frame(1514, 2), frame(9000, 3), frame(128, 4)];
    let mut writer = PcapWriter::new(File::create(&input_path).unwrap()).unwrap();
    for (i, f) in input.iter().enumerate() {
        let packet = PcapPacket::new(Duration::from_millis(i as u64), f.len() as u32, f);
        writer.write_packet(&packet).unwrap();
    }
    drop(writer);

    let vdev = format!(
        "net_pcap_rt0,rx_pcap={},tx_pcap={}",
        input_path.display(),
        output_path.display()
    );
    let eal = Eal::init(&eal_args(&["-l", "0", "--vdev", &vdev])).expect("EAL init");
    assert_eq!(
        Eal::init(&eal_args(&[])).unwrap_err(),
        DpdkError::AlreadyInitialised
    );
    let pool = Mempool::new(&eal, "pcap_rt_pool", 511, 32, DATA_ROOM, None).unwrap();
    assert_eq!(pool.data_room(), DATA_ROOM);
    assert_eq!(pool.capacity(), 511);
    assert_eq!(pool.in_use(), 0);

    let port = Port::by_name(&eal, &vdev).expect("the port is named by the part before ','");
    let info = port.info().unwrap();
    assert_eq!(info.driver, "net_pcap");
    assert_eq!(info.name, "net_pcap_rt0");
    assert_eq!(info.socket, None, "virtual devices have no NUMA node");
    let setup = port_setup(pool, 1);
    // A 9000-byte MTU needs RX scatter with 2048-byte mbufs, which net_pcap does not announce.
    let jumbo_mtu = PortSetup {
        mtu: Some(9000),
        ..setup
    };
    assert!(matches!(
        port.configure(&jumbo_mtu),
        Err(DpdkError::Unsupported { reason, .. }) if reason.contains("cannot scatter")
    ));
    let config = port.configure(&setup).unwrap();
    assert_eq!(config.rss_hash_functions, 0, "one RX queue: no RSS");
    assert!(!config.rx_scatter, "1500-byte MTU fits a 2048-byte mbuf");
    // net_pcap 22.11 advertises no offloads; it still reads jumbo frames into chains and
    // writes chains out (by copying), which the rest of this test checks.
    assert_eq!((info.rx_offloads, info.tx_offloads), (0, 0));
    assert!(!config.tx_multi_segs);
    // A second TX queue does not exist on a port with one tx_pcap.
    assert!(matches!(
        port.take_tx_queue(1),
        Err(DpdkError::NoSuchQueue { configured: 1, .. })
    ));
    port.start().unwrap();
    let mut rx = port.take_rx_queue(0).unwrap();
    let mut tx = port.take_tx_queue(0).unwrap();

    // RX: every frame, byte for byte; the jumbo one as a chain of 2048-byte segments.
    let mut received = receive(&mut rx, input.len(), 200);
    assert_eq!(received.len(), input.len());
    for (pkt, want) in received.iter().zip(&input) {
        assert_eq!(pkt.pkt_len(), want.len());
        assert_eq!(&bytes_of(pkt), want);
    }
    let [small, mid, mut jumbo, last] =
        <[Mbuf; 4]>::try_from(std::mem::take(&mut received)).unwrap_or_else(|_| unreachable!());
    assert_eq!(small.segments(), 1);
    assert_eq!(jumbo.segments(), 9000usize.div_ceil(usize::from(DATA_ROOM)));
    assert_eq!(jumbo.data().len(), usize::from(DATA_ROOM));
    assert_eq!(&*small, &input[0][..], "Mbuf derefs to the first segment");
    assert_eq!(
        pool.in_use(),
        4 + 4,
        "four packets, the jumbo one in five mbufs"
    );

    // share + truncate: the second handle is cut, the original keeps its bytes. A short packet
    // is shared as a copy of its own (writable), a long one as an indirect clone (read-only).
    let mut small_cut = small.share().expect("copy");
    small_cut.truncate(30);
    assert_eq!(bytes_of(&small_cut), input[0][..30]);
    assert_eq!(bytes_of(&small), input[0]);
    small_cut.data_mut()[0] ^= 0xff;
    assert_eq!(
        bytes_of(&small),
        input[0],
        "a copy: the original does not change"
    );
    small_cut.data_mut()[0] ^= 0xff;
    let mut small_clone = small.clone_indirect().expect("clone");
    small_clone.truncate(30);
    assert_eq!(bytes_of(&small_clone), input[0][..30]);
    assert_eq!(bytes_of(&small), input[0]);

    // A clone of a chain, cut inside its second segment: two segments left, original intact.
    let mut jumbo_cut = jumbo.share().expect("clone of a chain");
    assert_eq!(jumbo_cut.segments(), 5);
    jumbo_cut.truncate(3000);
    assert_eq!((jumbo_cut.pkt_len(), jumbo_cut.segments()), (3000, 2));
    assert_eq!(bytes_of(&jumbo_cut), input[2][..3000]);
    assert_eq!((jumbo.pkt_len(), jumbo.segments()), (9000, 5));
    assert_eq!(bytes_of(&jumbo), input[2]);

    // Shared bytes are read-only; exclusive ones are writable.
    assert!(jumbo.data_mut().is_empty(), "shared with jumbo_cut");
    assert!(small_clone.data_mut().is_empty(), "an indirect clone");
    drop(small_clone);
    let mut mid = mid;
    mid.data_mut()[14] = 0xee;
    let mut mid_expected = input[1].clone();
    mid_expected[14] = 0xee;
    assert_eq!(bytes_of(&mid), mid_expected);

    // Strip the Ethernet header of the original chain, then cut it at 5000 bytes: three segments
    // (2034 + 2048 + 918), the tail segments released (the clone still holds the rest).
    assert!(
        !jumbo.strip_front(DATA_ROOM as usize + 1),
        "beyond the first segment"
    );
    assert!(jumbo.strip_front(14));
    assert_eq!(jumbo.data().len(), usize::from(DATA_ROOM) - 14);
    jumbo.truncate(5000);
    assert_eq!((jumbo.pkt_len(), jumbo.segments()), (5000, 3));
    assert_eq!(bytes_of(&jumbo), input[2][14..5014]);
    jumbo.truncate(9000); // beyond the length: nothing changes
    assert_eq!(jumbo.pkt_len(), 5000);

    // A packet built from the pool, as tests and generators do: a 5000-byte chain.
    let built_bytes = frame(5000, 9);
    let mut built = pool.alloc().expect("alloc");
    assert!(built.append(&built_bytes));
    assert_eq!((built.pkt_len(), built.segments()), (5000, 3));
    assert_eq!(bytes_of(&built), built_bytes);
    let built_clone = built.share().unwrap();
    assert!(!built.append(b"x"), "appending to shared bytes is refused");
    drop(built_clone);
    assert!(built.append(&[0xab; 100]));
    let mut built_expected = built_bytes.clone();
    built_expected.extend_from_slice(&[0xab; 100]);
    assert_eq!(bytes_of(&built), built_expected);

    // Bulk free: clones released at once, slots emptied.
    let mut extra: [Option<Mbuf>; 3] = [small.share(), None, last.share()];
    let before = pool.in_use();
    free_bulk(&mut extra);
    assert!(extra.iter().all(Option::is_none));
    assert_eq!(pool.in_use(), before - 2);

    // TX: everything, in order; the driver takes ownership of what it sends.
    let expected: Vec<Vec<u8>> = vec![
        input[0].clone(),
        input[0][..30].to_vec(),
        input[2][14..5014].to_vec(),
        input[2][..3000].to_vec(),
        mid_expected,
        built_expected,
        input[3].clone(),
    ];
    let mut pkts: Vec<Option<Mbuf>> = vec![
        Some(small),
        Some(small_cut),
        Some(jumbo),
        Some(jumbo_cut),
        Some(mid),
        Some(built),
        Some(last),
    ];
    let mut sent = 0;
    for _ in 0..100 {
        sent += tx.tx_burst(&mut pkts[sent..]);
        if sent == pkts.len() {
            break;
        }
    }
    assert_eq!(sent, pkts.len());
    assert!(pkts.iter().all(Option::is_none), "sent slots are emptied");
    // A burst that starts with an empty slot sends nothing.
    assert_eq!(tx.tx_burst(&mut pkts), 0);

    // Stopping flushes the pcap file; only once the queue handles are gone.
    assert!(matches!(
        port.stop(),
        Err(DpdkError::QueuesInUse { handles: 2, .. })
    ));
    drop(rx);
    drop(tx);
    let stats = port.stats().unwrap();
    assert_eq!(stats.ipackets, input.len() as u64);
    assert_eq!(stats.opackets, expected.len() as u64);
    assert_eq!(stats.queues[0].ipackets, input.len() as u64);
    assert_eq!(
        stats.ierrors + stats.oerrors + stats.imissed + stats.rx_nombuf,
        0
    );
    let xstats = port.xstats().unwrap();
    assert!(
        xstats
            .iter()
            .any(|(name, value)| name == "rx_good_packets" && *value == input.len() as u64),
        "{xstats:?}"
    );
    port.stop().unwrap();
    port.close().unwrap();

    let mut reader = PcapReader::new(File::open(&output_path).unwrap()).unwrap();
    let mut written = Vec::new();
    while let Some(packet) = reader.next_packet() {
        written.push(packet.unwrap().data.into_owned());
    }
    assert_eq!(written.len(), expected.len());
    for (i, (got, want)) in written.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "output frame {i}");
    }

    assert_eq!(pool.in_use(), 0, "every mbuf back in the pool");
    std::fs::remove_dir_all(&dir).unwrap();
}
