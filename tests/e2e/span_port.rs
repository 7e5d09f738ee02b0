//! The shipped SPAN-port example (`config/examples/span-port.toml`) does what its comments say:
//! every host's untunnelled frames, as a switch mirrors them, reach the analyzers whatever their
//! source; VXLAN from the fabric's VTEPs (`allowed_sources`) goes by VNI; VXLAN from anyone else
//! is `source_denied`. The example is run as shipped, with only its devices swapped for
//! `net_pcap` files and the EAL set for tests.

use std::time::Duration;

use etherparse::PacketBuilder;

use crate::support::*;

const HOST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x10, 1];
const ROUTER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x10, 2];

/// An untunnelled TCP frame from `src` (unique by its source port).
fn tcp(src: [u8; 4], dst: [u8; 4], src_port: u16, dst_port: u16) -> Vec<u8> {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(HOST_MAC, ROUTER_MAC)
        .ipv4(src, dst, 64)
        .tcp(src_port, dst_port, 1, 1024)
        .write(&mut frame, b"mirrored by the switch")
        .unwrap();
    frame
}

fn udp(src: [u8; 4], dst: [u8; 4], src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(HOST_MAC, ROUTER_MAC)
        .ipv4(src, dst, 64)
        .udp(src_port, dst_port)
        .write(&mut frame, payload)
        .unwrap();
    frame
}

/// `inner` in VXLAN (VNI `vni`) from the VTEP `vtep`.
fn vxlan(vtep: [u8; 4], vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut header = vec![0x08, 0, 0, 0];
    header.extend_from_slice(&vni.to_be_bytes()[1..]);
    header.push(0);
    header.extend_from_slice(inner);
    udp(vtep, [192, 168, 100, 1], 49152, 4789, &header)
}

fn replace(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the example no longer holds {from:?}");
    text.replacen(from, to, 1)
}

#[test]
fn the_span_port_example_passes_every_hosts_frames_and_allowlists_the_vteps_tunnels() {
    let s = Scratch::new("span-port");
    let example = std::fs::read_to_string(repo_root().join("config/examples/span-port.toml"))
        .expect("span-port.toml");
    assert!(example.contains(r#"allowed_sources = ["192.168.100.0/24"]"#));

    let vtep = [192, 168, 100, 5];
    let stranger = [203, 0, 113, 9];
    let hosts = [[10, 1, 1, 10], [10, 1, 1, 11], [10, 2, 0, 7]];
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&HOST_MAC);
    arp.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&HOST_MAC);
    arp.extend_from_slice(&[10, 1, 1, 10, 0, 0, 0, 0, 0, 0, 10, 1, 1, 1]);

    // (frame, what the analyzers should receive: the frame itself, the inner one, or nothing)
    let mut input: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        for k in 0..2u16 {
            let f = tcp(*host, [10, 9, 9, 9], 40000 + i as u16 * 10 + k, 443);
            input.push((f.clone(), Some(f)));
        }
    }
    input.push((arp.clone(), Some(arp)));
    // A host outside the VTEPs' prefix, to a UDP port that is no tunnel: an ordinary frame.
    let dns = udp(stranger, [10, 1, 1, 10], 5353, 53, b"dns answer");
    input.push((dns.clone(), Some(dns)));
    for k in 0..3u16 {
        let inner = tcp([10, 50, 0, 1], [10, 50, 0, 2], 50000 + k, 80);
        input.push((vxlan(vtep, 10010, &inner), Some(inner)));
    }
    // iSCSI in the fabric: the session's filter rejects it.
    input.push((
        vxlan(
            vtep,
            10010,
            &tcp([10, 50, 0, 1], [10, 50, 0, 3], 50100, 3260),
        ),
        None,
    ));
    // VXLAN from outside the allowlist: denied.
    for k in 0..2u16 {
        let inner = tcp([10, 60, 0, 1], [10, 60, 0, 2], 50200 + k, 80);
        input.push((vxlan(stranger, 10010, &inner), None));
    }

    let capture = s.path("span.pcap");
    {
        let file = std::fs::File::create(&capture).unwrap();
        let mut w = pcap_file::pcap::PcapWriter::new(file).unwrap();
        for (frame, _) in &input {
            w.write_packet(&pcap_file::pcap::PcapPacket::new(
                Duration::ZERO,
                frame.len() as u32,
                frame,
            ))
            .unwrap();
        }
    }

    let mut config = replace(
        &example,
        "[broker]\n",
        "[broker]\nstop_when_idle = \"1s\"\nmetrics = \"\"\n",
    );
    config = replace(
        &config,
        r#"eal_args = ["--no-huge", "-m", "512", "--no-pci"]"#,
        &format!("eal_args = {EAL_ARGS}"),
    );
    config = replace(
        &config,
        "device = \"net_af_packet0,iface=eth1,qpairs=2\"\nqueues = 2",
        &format!("device = \"net_pcap0,rx_pcap={}\"", capture.display()),
    );
    for (i, port) in ["zeek-1", "zeek-2"].iter().enumerate() {
        config = replace(
            &config,
            &format!("net_af_packet{},iface=zeek{}", i + 1, i + 1),
            &format!(
                "net_pcap{},tx_pcap={}",
                i + 1,
                s.path(&format!("{port}.pcap")).display()
            ),
        );
    }
    let config = s.write("span-port.toml", &config);
    let run = run_broker(&config, &s.dir, Duration::from_secs(60));
    run.assert_clean();

    let expected: Vec<Vec<u8>> = input.iter().filter_map(|(_, out)| out.clone()).collect();
    assert_eq!(run.received(), input.len() as u64);
    assert_eq!(run.outcome("delivered"), expected.len() as u64);
    assert_eq!(run.outcome("filtered"), 1);
    assert_eq!(run.outcome("source_denied"), 2);
    let sessions: Vec<(String, u64)> = run.summary["sessions"]
        .as_array()
        .expect("sessions in the summary")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_owned(),
                s["packets"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert!(
        sessions.contains(&("span".into(), 8)) && sessions.contains(&("fabric-vlan10".into(), 4)),
        "{sessions:?}"
    );

    let delivered: Vec<Vec<u8>> = ["zeek-1", "zeek-2"]
        .iter()
        .flat_map(|p| read_pcap(&s.path(&format!("{p}.pcap"))))
        .collect();
    assert_eq!(
        multiset(delivered),
        multiset(expected),
        "the analyzers receive every host's frames unchanged and the VTEPs' inner frames"
    );
}
