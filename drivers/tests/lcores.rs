//! Two lcores on the two CPUs: lcore facts, launching closures on the worker and collecting
//! their results, the main-lcore rules, and a worker polling a queue handle it owns.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{eal_args, port_setup};
use drivers::{DpdkError, Eal, Mbuf, Mempool, Port, current_lcore, rdtsc};

#[test]
fn launch_closures_on_worker_lcores() {
    assert_eq!(current_lcore(), None, "no lcore before EAL init");
    let eal = Eal::init(&eal_args(&[
        "--lcores",
        "0@0,1@1",
        "--vdev",
        "net_null_lcores0",
    ]))
    .expect("EAL init");

    assert_eq!(eal.main_lcore(), 0);
    assert_eq!(
        current_lcore(),
        Some(0),
        "the thread that called init is the main lcore"
    );
    assert_eq!(eal.worker_lcores(), vec![1]);
    assert_eq!(eal.lcore_cpu(0), Some(0));
    assert_eq!(eal.lcore_cpu(1), Some(1));
    assert_eq!(eal.lcore_cpu(2), None);
    assert!(eal.lcore_socket(1).is_some());
    assert_eq!(eal.lcore_socket(1000), None);

    // TSC: a 20 ms sleep is about 20 ms of cycles (wide bounds: the machine is shared).
    let hz = eal.tsc_hz();
    assert!(hz > 100_000_000, "TSC at {hz} Hz");
    let start = rdtsc();
    std::thread::sleep(Duration::from_millis(20));
    let elapsed = rdtsc() - start;
    assert!(
        elapsed > hz / 100 && elapsed < hz,
        "{elapsed} cycles in 20 ms at {hz} Hz"
    );

    // A closure runs on lcore 1, on CPU 1, and its return value comes back.
    let (where_tx, where_rx) = mpsc::channel();
    eal.launch(1, move || {
        // SAFETY: sched_getcpu has no preconditions.
        let cpu = unsafe { libc::sched_getcpu() };
        where_tx.send((current_lcore(), cpu)).unwrap();
        41
    })
    .unwrap();
    assert_eq!(eal.wait_all().unwrap(), vec![(1, 41)]);
    assert_eq!(where_rx.recv().unwrap(), (Some(1), 1));
    assert_eq!(
        eal.wait_all().unwrap(),
        vec![],
        "results are collected once"
    );

    // The main lcore, unknown lcores, busy lcores and other threads are refused.
    assert_eq!(
        eal.launch(0, || 0).unwrap_err(),
        DpdkError::NotWorkerLcore(0)
    );
    assert_eq!(
        eal.launch(7, || 0).unwrap_err(),
        DpdkError::NotWorkerLcore(7)
    );
    let (go_tx, go_rx) = mpsc::channel::<()>();
    eal.launch(1, move || {
        go_rx.recv().unwrap();
        7
    })
    .unwrap();
    assert_eq!(eal.launch(1, || 0).unwrap_err(), DpdkError::LcoreBusy(1));
    std::thread::scope(|s| {
        s.spawn(|| {
            assert_eq!(current_lcore(), None);
            assert_eq!(
                eal.launch(1, || 0).unwrap_err(),
                DpdkError::NotMainLcore("Eal::launch")
            );
            assert_eq!(
                eal.wait_all().unwrap_err(),
                DpdkError::NotMainLcore("Eal::wait_all")
            );
        });
    });
    go_tx.send(()).unwrap();
    assert_eq!(eal.wait_all().unwrap(), vec![(1, 7)]);

    // The runtime's shape: a worker owns an RX and a TX queue handle, polls, and returns; the
    // handles are dropped with the closure, after which the port can be stopped.
    let pool = Mempool::new(&eal, "lcores_pool", 1023, 32, 2048, None).unwrap();
    let port = Port::by_name(&eal, "net_null_lcores0").unwrap();
    port.configure(&port_setup(pool, 1)).unwrap();
    port.start().unwrap();
    let mut rx = port.take_rx_queue(0).unwrap();
    let mut tx = port.take_tx_queue(0).unwrap();
    eal.launch(1, move || {
        let mut burst: [Option<Mbuf>; 32] = std::array::from_fn(|_| None);
        let mut forwarded = 0;
        for _ in 0..10 {
            let n = rx.rx_burst(&mut burst);
            let sent = tx.tx_burst(&mut burst[..n]);
            drivers::free_bulk(&mut burst[sent..n]);
            forwarded += sent;
        }
        forwarded as i32
    })
    .unwrap();
    assert_eq!(eal.wait_all().unwrap(), vec![(1, 320)]);
    let stats = port.stats().unwrap();
    assert_eq!((stats.ipackets, stats.opackets), (320, 320));
    port.stop().expect("the worker dropped its queue handles");
    port.close().unwrap();
    assert_eq!(pool.in_use(), 0);
}
