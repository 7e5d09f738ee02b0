//! The configs shipped with the repository parse, say what they mean, and never panic the parser
//! when damaged.

mod support;

use std::path::{Path, PathBuf};

use config::*;

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `lab.toml` and every `examples/*.toml`: a new example is checked without touching this file.
fn shipped_configs() -> Vec<PathBuf> {
    let mut paths = vec![crate_dir().join("lab.toml")];
    let examples = std::fs::read_dir(crate_dir().join("examples")).expect("config/examples/");
    for entry in examples {
        let path = entry.expect("directory entry").path();
        if path
            .extension()
            .is_some_and(|extension| extension == "toml")
        {
            paths.push(path);
        }
    }
    paths.sort();
    paths
}

fn load(relative: &str) -> ValidatedConfig {
    let path = crate_dir().join(relative);
    config::load(&path).unwrap_or_else(|error| panic!("{}", error.detailed()))
}

#[test]
fn every_shipped_config_parses_without_warnings_but_the_intended_one() {
    let paths = shipped_configs();
    assert!(paths.len() >= 4, "{paths:?}");
    for path in paths {
        let config = config::load(&path).unwrap_or_else(|error| panic!("{}", error.detailed()));
        assert_eq!(config.path.as_deref(), Some(path.as_path()));
        // The lab shows what a `source` group does with a packet mirrored at both ends (each
        // end's analyzer receives it), and says so.
        let intended = |warning: &String| {
            path.ends_with("lab.toml")
                && warning
                    .contains("tool_group[0] (\"ids\"): balance = \"source\" with de-duplication")
        };
        assert!(
            config.warnings.iter().all(intended),
            "{}: {:#?}",
            path.display(),
            config.warnings
        );
        // Parsing what was read again gives the same config: nothing depends on the file system.
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(config::parse(&text, Some(&path)).unwrap(), config);
    }
}

#[test]
fn the_readme_reference_config_parses() {
    let readme = std::fs::read_to_string(crate_dir().join("README.md")).unwrap();
    let start = readme
        .find("```toml\n")
        .expect("a ```toml block in config/README.md")
        + "```toml\n".len();
    let length = readme[start..].find("```").expect("the end of the block");
    let config = config::parse(&readme[start..start + length], Some(Path::new("README.md")))
        .unwrap_or_else(|error| panic!("{}", error.detailed()));
    // The reference sets every optional key, so none is left at its default.
    assert!(config.broker.stop_when_idle.is_some());
    assert!(config.dpdk.mbufs.is_some());
    assert!(config.workers.control_core.is_some());
    assert!(config.ingress[0].mtu.is_some());
    assert!(config.decap.default_session.is_some() && config.decap.untunneled_session.is_some());
    assert!(
        config
            .dedup
            .as_ref()
            .is_some_and(|dedup| dedup.ignore_dscp_ecn
                && dedup.ignore_vlan
                && dedup.mode == DedupMode::SenderWindow)
    );
    assert!(config.tool_groups.iter().any(|group| group.slice.is_some()));
}

#[test]
fn the_lab_config() {
    let config = load("lab.toml");
    assert_eq!(config.broker.name, "lab");
    assert_eq!(
        config.broker.stop_when_idle,
        Some(std::time::Duration::from_secs(2))
    );
    assert_eq!(
        config.dpdk.eal_args,
        [
            "--no-huge",
            "-m",
            "1024",
            "--no-pci",
            "--no-shconf",
            "--no-telemetry"
        ]
    );
    assert_eq!(config.workers.lcores, Lcores::Auto);
    assert_eq!(config.ingress.len(), 1);
    assert_eq!(
        config.ingress[0].device,
        "net_pcap0,rx_pcap=samples/aws-mirror.pcap"
    );
    let sources = config.decap.allowed_sources.clone().unwrap();
    for address in ["10.1.2.3", "fd00::1"] {
        let address: std::net::IpAddr = address.parse().unwrap();
        assert!(
            sources.iter().any(|net| net.contains(&address)),
            "{address}"
        );
    }
    let vnis: Vec<u32> = config
        .sessions
        .iter()
        .filter_map(|session| session.vni)
        .map(Vni::get)
        .collect();
    assert_eq!(vnis, [101, 102, 103]);

    let ids = &config.tool_groups[0];
    assert_eq!(
        (ids.name.as_str(), ids.balance, ids.slice),
        ("ids", Balance::Source, None)
    );
    let devices: Vec<&str> = ids
        .ports
        .iter()
        .map(|id| config.tool_ports[id.index()].device().unwrap().as_str())
        .collect();
    assert_eq!(
        devices,
        [
            "net_pcap1,tx_pcap=out/ids-1.pcap",
            "net_pcap2,tx_pcap=out/ids-2.pcap"
        ]
    );
    let recorder = &config.tool_groups[1];
    assert_eq!(
        (recorder.name.as_str(), recorder.slice),
        ("recorder", Some(128))
    );
    assert_eq!(
        *config.tool_ports[recorder.ports[0].index()]
            .device()
            .unwrap(),
        "net_pcap3,tx_pcap=out/recorder.pcap"
    );

    assert_eq!(config.filters.len(), 1);
    assert!(
        config.filters[0]
            .rules
            .iter()
            .any(|rule| rule.direction.is_some())
    );
    assert!(
        config
            .sessions
            .iter()
            .any(|session| session.filter == Some(FilterId(0)))
    );
}

#[test]
fn the_examples_show_what_they_are_named_after() {
    let aws = load("examples/aws-vpc-mirroring.toml");
    let nic = &aws.ingress[0];
    assert!(
        nic.device.as_str().starts_with("0000:"),
        "a PCI address: {}",
        nic.device
    );
    assert!(nic.queues > 1);
    assert!(
        matches!(&aws.workers.lcores, Lcores::List(cpus) if cpus.len() == usize::from(nic.queues))
    );
    assert!(aws.decap.allowed_sources.is_some());
    assert!(
        aws.filters
            .iter()
            .flat_map(|filter| &filter.rules)
            .any(|rule| rule.direction.is_some())
    );

    let gwlb = load("examples/gwlb.toml");
    assert_eq!(gwlb.decap.geneve_ports, [6081]);
    assert_eq!(gwlb.decap.vxlan_ports, [4789]);

    let span = load("examples/span-port.toml");
    let untunneled = span.decap.untunneled_session.expect("pass_untunneled");
    assert_eq!(span.sessions[untunneled.index()].vni, None);
}

#[test]
fn describe_says_what_was_understood() {
    let description = load("lab.toml").describe();
    let expected_lines = [
        "broker \"lab\" from ",
        "  metrics: http://127.0.0.1:9477/metrics",
        "  stops once traffic has been idle for 2s",
        "  EAL arguments: --no-huge -m 1024 --no-pci --no-shconf --no-telemetry",
        "  mbufs: computed at start, cache 256 per lcore",
        "workers: 1 (one per ingress queue)",
        "  lcores: chosen at start (auto)",
        "  mirror0  net_pcap0,rx_pcap=samples/aws-mirror.pcap  (1 queue, device MTU)",
        "  VXLAN on UDP 4789",
        "  mirror sources allowed: 10.0.0.0/8, fd00::/8",
        "  untunnelled frames: dropped (not_tunnel)",
        "dedup: mode window: a window of 50ms in a table of 1048576 entries (this broker's copies)",
        "sessions: 3",
        "  web   VNI 101 -> ids, recorder; filter web-filter; source IPs 10.0.1.10, 10.0.1.11",
        "mirrored at both ends (from source_ips: a packet between two mirrored addresses arrives \
         once from each end)",
        "  web   peers mirrored by db, edge; two addresses of one family",
        "  db    peers mirrored by web, edge",
        "  edge  peers mirrored by web, db",
        "  web-filter: 3 rules, then reject",
        "    #100 accept protocol=tcp \"all TCP: HTTP, TLS, both directions\"",
        "    #200 accept direction=egress protocol=udp dst_ports=53",
        "    #300 reject protocol=icmp",
        "  ids: balance source, whole frames, deduplicated per analyzer port, on port down rebalance",
        "    ids-1  net_pcap1,tx_pcap=out/ids-1.pcap",
        "  recorder: balance source, first 128 bytes, deduplicated per analyzer port, on port down \
         rebalance",
        "    recorder-1  net_pcap3,tx_pcap=out/recorder.pcap",
        "warnings: 1",
    ];
    let mut lines = description.lines();
    for expected in expected_lines {
        // In this order, each line present.
        assert!(
            lines.any(|line| line.starts_with(expected)),
            "{expected:?} missing (or out of order) in:\n{description}"
        );
    }
}

#[test]
fn describe_lists_warnings_and_unusual_settings() {
    let text = support::MINIMAL.replace(
        "allowed_sources = [\"10.0.0.0/8\"]\n",
        "default_session = \"web\"\n",
    ) + "[dedup]\nignore_vlan = true\n[[filter]]\nname = \"idle\"\n[[filter.rule]]\nnumber = 5\naction = \"accept\"\n";
    let description = support::accepted(&text).describe();
    for expected in [
        "  mirror sources allowed: any (no allowed_sources)",
        "  unknown VNIs: session \"web\"",
        "dedup: mode window: a window of 50ms in a table of 1048576 entries",
        "inner VLAN tags ignored",
        "    #5 accept (every packet)",
        "warnings: 2",
        "  <string>: decap.allowed_sources: not set",
    ] {
        assert!(
            description.contains(expected),
            "{expected:?} missing in:\n{description}"
        );
    }
}

#[test]
fn damaged_configs_are_refused_without_panicking() {
    // Every prefix of the lab config (a file cut while being written) and the config with each
    // line missing: the parser returns, it never panics, and a refusal is located.
    let text = std::fs::read_to_string(crate_dir().join("lab.toml")).unwrap();
    let mut boundaries: Vec<usize> = text.char_indices().map(|(index, _)| index).collect();
    boundaries.push(text.len());
    for end in boundaries {
        if let Err(error) = config::parse(&text[..end], None) {
            assert!(!error.to_string().is_empty());
            assert!(error.line().is_some() || error.key_path().is_empty());
        }
    }
    let lines: Vec<&str> = text.lines().collect();
    for missing in 0..lines.len() {
        let damaged: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|(index, _)| *index != missing)
            .map(|(_, line)| *line)
            .collect();
        let damaged = damaged.join("\n");
        if let Err(error) = config::parse(&damaged, None) {
            assert!(
                error.line().is_some(),
                "line {} removed: {error}",
                missing + 1
            );
        }
    }
}
