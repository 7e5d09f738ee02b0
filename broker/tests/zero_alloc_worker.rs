//! Once warm, the worker loop allocates nothing: the real loop (`runtime/worker.rs`, its TX side
//! `runtime/tx.rs`), on real DPDK ports — a `net_pcap` ingress replaying mirrored traffic
//! forever, `net_null` tool ports — with the whole pipeline, fan-out by mbuf clones, drops freed
//! in bulk, TX flushes and drains; the ingress port owns an address, so frames for it are handed
//! to the exception path's channel (outcome `control`), and a VXLAN tunnel port sends through it
//! (a header mbuf chained in front of each copy); and the same while a live capture (of each
//! kind) and a packet trace run (`runtime/tap.rs`), their reader on another thread.
//!
//! The worker's source files are compiled into this test as they are (the broker is a binary,
//! not a library), and its loop is driven one poll at a time on this thread, which is also the
//! EAL main lcore. A counting global allocator counts what this thread allocates while armed;
//! DPDK's mempools are not the Rust heap, so mbufs taken and freed by the drivers are not
//! allocations (what the test is about: no `malloc` per packet).
//!
//! EAL initialises once per process: this file holds one test.

#[path = "../../pipelines/tests/alloc_counter/mod.rs"]
mod alloc_counter;
// The worker and what it uses, from the broker's sources.
#[allow(dead_code)]
#[path = "../src/runtime/clock.rs"]
mod clock;
#[allow(dead_code)]
#[path = "../src/runtime/tap.rs"]
mod tap;
#[allow(dead_code)]
#[path = "../src/runtime/tx.rs"]
mod tx;
#[allow(dead_code)]
#[path = "../src/runtime/worker.rs"]
mod worker;

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use alloc_counter::{Counting, allocations_in};
use arc_swap::ArcSwap;
use drivers::{Eal, Mempool, Port, PortSetup};
use pcap_file::pcap::{PcapPacket, PcapWriter};
use pipelines::Outcome;
use pipelines::counters::WorkerCounters;
use pipelines::pipeline::{Dedup, Pipeline};
use pipelines::plan::TunnelLink;
use pipelines::plan::{Plan, PortFacts};
use pipelines::testing::{aws_vxlan, ethernet, inner_tcp4, inner_udp6, ipv4, v4, v6};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Two sessions; "web" is filtered (no telnet) and goes to a flow-balanced group of two ports and
/// a sliced round-robin group (two copies per packet); dedup on.
const CONFIG: &str = r#"
[broker]
name = "zero-alloc"
[[ingress]]
name = "mirror"
device = "net_pcap0"
address = ["10.0.9.10/24"]
[decap]
allowed_sources = ["10.0.0.0/8", "fd00::/8"]
[dedup]
window = "10ms"
capacity = 4096
[[session]]
name = "web"
vni = 101
tools = ["ids", "recorder", "net"]
filter = "no-telnet"
source_ips = ["10.0.1.10"]
[[session]]
name = "db"
vni = 102
tools = ["ids"]
[[filter]]
name = "no-telnet"
default = "accept"
[[filter.rule]]
number = 10
action = "reject"
protocol = "tcp"
dst_ports = "23"
[[tool_group]]
name = "ids"
balance = "flow"
ports = [{ name = "ids-1", device = "net_null1" }, { name = "ids-2", device = "net_null2" }]
[[tool_group]]
name = "recorder"
balance = "round-robin"
slice = 64
ports = [{ name = "rec-1", device = "net_null3" }]
[[tool_group]]
name = "net"
ports = [{ name = "net-1", tunnel = "vxlan", remote = "10.0.9.21", via = "mirror" }]
"#;

/// The ingress port's MAC, as the test's frames address it (`testing::ethernet`).
const MIRROR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// Mirrored traffic taking every path: delivered to one or two groups (cut by the slice or not),
/// a second copy of a packet (duplicate), filtered, unknown VNI, denied sender.
fn frames() -> Vec<Vec<u8>> {
    let eni = v4("10.0.1.10");
    let mut frames = Vec::new();
    for i in 0..64u32 {
        let payload = vec![i as u8; (i as usize * 23) % 200];
        let web = inner_tcp4(
            eni,
            [192, 0, 2, i as u8],
            40000 + i as u16,
            443,
            i,
            &payload,
        );
        frames.push(aws_vxlan(eni, 101, &web));
        if i % 8 == 0 {
            frames.push(aws_vxlan(v4("10.0.1.11"), 101, &web)); // the other end's copy
        }
        let db = inner_udp6(
            v6("fd00::20"),
            v6("fd00::1"),
            5000 + i as u16,
            5432,
            &payload,
        );
        frames.push(aws_vxlan(v4("10.0.2.20"), 102, &db));
    }
    let telnet = inner_tcp4(eni, v4("192.0.2.99"), 40000, 23, 1, b"login");
    frames.push(aws_vxlan(eni, 101, &telnet));
    frames.push(aws_vxlan(eni, 999, &telnet));
    frames.push(aws_vxlan(v4("192.0.2.1"), 101, &telnet));
    // For the port itself: an ARP request and a ping.
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 9, 1];
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&[10, 0, 9, 10]);
    frames.push(ethernet(0x0806, &arp));
    let echo = [8, 0, 0xf7, 0xfe, 0, 1, 0, 0];
    frames.push(ethernet(
        0x0800,
        &ipv4([10, 0, 9, 1], [10, 0, 9, 10], 1, &echo),
    ));
    frames
}

#[test]
fn the_warm_worker_loop_allocates_nothing() {
    let dir = std::env::temp_dir().join(format!("broker-zero-alloc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let capture = dir.join("mirror.pcap");
    let frames = frames();
    let mut writer = PcapWriter::new(File::create(&capture).unwrap()).unwrap();
    for (i, f) in frames.iter().enumerate() {
        let packet = PcapPacket::new(Duration::from_micros(i as u64), f.len() as u32, f);
        writer.write_packet(&packet).unwrap();
    }
    drop(writer);

    let ingress = format!("net_pcap0,rx_pcap={},infinite_rx=1", capture.display());
    let mut args = drivers::isolated_args(256, &["-l", "0"]);
    for vdev in [
        ingress.as_str(),
        "net_null1,no-rx=1",
        "net_null2,no-rx=1",
        "net_null3,no-rx=1",
    ] {
        args.extend(["--vdev".to_string(), vdev.to_string()]);
    }
    let eal = Eal::init(&args).expect("EAL init");
    let pool = Mempool::new(
        &eal,
        "zero_alloc",
        4095,
        64,
        Mempool::DEFAULT_DATA_ROOM,
        None,
    )
    .unwrap();
    let setup = |rx_queues, tx_queues| PortSetup {
        rx_queues,
        tx_queues,
        rx_descriptors: 256,
        tx_descriptors: 256,
        mempool: pool,
        mtu: None,
    };
    let mirror = Port::by_name(&eal, "net_pcap0").unwrap();
    mirror.configure(&setup(1, 1)).unwrap();
    mirror.start().unwrap();
    let mut queues = Vec::new();
    for name in ["net_null1", "net_null2", "net_null3"] {
        let port = Port::by_name(&eal, name).unwrap();
        port.configure(&setup(0, 1)).unwrap();
        port.start().unwrap();
        queues.push(tx::TxQueueRef::Own(port.take_tx_queue(0).unwrap()));
    }
    // The tunnel port sends on the ingress port's TX queue (net_pcap without tx_pcap drops).
    queues.push(tx::TxQueueRef::Own(mirror.take_tx_queue(0).unwrap()));
    let (punt, punted) = std::sync::mpsc::sync_channel(64);

    let config = config::fixtures::config(CONFIG);
    let counters = Arc::new(WorkerCounters::new(&config));
    let link = TunnelLink {
        source_mac: MIRROR_MAC,
        next_hop_mac: [2, 0, 0, 0, 0, 0x21],
        mtu: 1500,
    };
    let facts = PortFacts {
        tunnels: vec![None, None, None, Some(link)],
        ingress_macs: vec![Some(MIRROR_MAC)],
        ..PortFacts::default()
    };
    let plan = Plan::build(&config, 1, &facts, Box::new([counters.clone()]));
    assert!(plan.egress[3].is_some(), "the tunnel port has its template");
    let dedup = config
        .dedup
        .as_ref()
        .and_then(|d| Dedup::for_settings(d, None));
    let pipeline = Pipeline::new(0, &plan, dedup);
    let taps = tap::Taps::new();
    let mut worker = worker::Worker {
        rx: mirror.take_rx_queue(0).unwrap(),
        tx: tx::TxSet::new(queues, vec![0, 1, 2, 3], Some((0, punt)), counters.clone()),
        pipeline,
        tap: tap::WorkerTap::new(taps.clone(), 0, 0),
        plans: Arc::new(ArcSwap::from_pointee(plan)),
        stop: Arc::new(AtomicBool::new(false)),
        clock: clock::Clock::new(eal.tsc_hz()),
    };
    let mut state = worker::PollState::new(&worker);

    // Warm: the first bursts take every path once (arc-swap's thread-local debt list, lazily
    // initialised statics of the drivers).
    let mut polls = 0;
    while counters.rx_packets.get() < 20_000 {
        worker.poll(&mut state);
        while punted.try_recv().is_ok() {}
        polls += 1;
        assert!(polls < 1_000_000, "the pcap port delivers nothing");
    }
    let (received, allocations) = allocations_in(|| {
        let mut received = 0;
        for _ in 0..10_000 {
            received += worker.poll(&mut state);
            // The exception path's side: take the frames for the port (and free them).
            while punted.try_recv().is_ok() {}
        }
        received
    });
    assert_eq!(
        allocations, 0,
        "the warm worker loop allocated ({received} packets)"
    );
    assert!(received > 50_000, "{received} packets in 10,000 polls");
    for outcome in [
        Outcome::Delivered,
        Outcome::Duplicate,
        Outcome::Filtered,
        Outcome::UnknownSession,
        Outcome::SourceDenied,
        Outcome::Control,
    ] {
        assert!(counters.outcome_count(outcome) > 0, "no {outcome:?} packet");
    }
    let sliced: u64 = counters.groups.iter().map(|g| g.sliced.get()).sum();
    let sent: u64 = counters.ports.iter().map(|p| p.tx_packets.get()).sum();
    assert!(
        sliced > 0 && sent > counters.outcome_count(Outcome::Delivered),
        "fan-out and slicing ran"
    );
    assert!(
        counters.ports[3].tx_packets.get() > 0,
        "the tunnel port sent encapsulated copies"
    );
    assert_eq!(
        counters.control_dropped.get(),
        0,
        "every control frame was handed over"
    );

    // While captures and a trace run: a capture of each kind in turn, beside a trace, their
    // reader on another thread. Starting them (allocating their buffers) is the control
    // side's; the worker's loop, adopting them included, allocates nothing.
    let selectors = [
        tap::Selector::ToolPort(0),
        tap::Selector::Ingress(0),
        tap::Selector::Outcome(tap::OutcomeMatch::Exactly(Outcome::Filtered)),
    ];
    for selector in selectors {
        let (capture, reader) = tap::Capture::new(selector, 96, 1, 3);
        let (trace, records) = tap::Trace::new(5_000, None);
        let reading = std::thread::spawn(move || {
            let mut read = 0u64;
            while let Ok(slot) = reader.full.recv_timeout(Duration::from_secs(2)) {
                assert!(slot.len <= 96, "cut to the snap length");
                read += 1;
                reader.recycle(slot);
            }
            read
        });
        taps.start_capture(&capture).unwrap();
        taps.start_trace(&trace).unwrap();
        let captured_before = counters.captured.get();
        let (received, allocations) = allocations_in(|| {
            let mut received = 0;
            for _ in 0..10_000 {
                received += worker.poll(&mut state);
            }
            received
        });
        assert_eq!(
            allocations, 0,
            "the worker loop allocated while {selector:?} and a trace ran ({received} packets)"
        );
        taps.stop_capture(&capture);
        taps.stop_trace(&trace);
        worker.poll(&mut state);
        assert!(capture.returned(), "the worker gave its buffers back");
        let captured = counters.captured.get() - captured_before;
        let read = reading.join().unwrap();
        assert!(captured > 0, "{selector:?} captured nothing");
        assert_eq!(read, captured, "every copy reached the reader");
        let traced: Vec<_> = records.try_iter().collect();
        assert_eq!(traced.len(), 5_000, "the trace got its count");
        assert!(traced.iter().all(|r| r.outcome.is_some()));
    }

    // The same loop, stopped, hands every mbuf back (what it held is flushed or freed).
    worker
        .stop
        .store(true, std::sync::atomic::Ordering::Relaxed);
    drop(state);
    worker.run();
    mirror.stop().unwrap();
    std::fs::remove_dir_all(dir).ok();
}
