//! `docs/clouds.md` tells operators how to configure the broker for each cloud: every ```toml block
//! in it must be a config the broker accepts without a warning, and each cloud's block must use
//! what its section says that cloud needs. `docs/fleet.md`'s blocks parse too, and its example
//! does what the page says.

use std::path::Path;

use config::{Balance, Direction, ValidatedConfig};

/// The ```toml blocks of the document: (heading of the section they are in, line of the block, text).
fn toml_blocks(markdown: &str) -> Vec<(String, usize, String)> {
    let mut blocks = Vec::new();
    let mut heading = String::new();
    let mut current: Option<(usize, String)> = None;
    for (index, line) in markdown.lines().enumerate() {
        match &mut current {
            Some((start, text)) => {
                if line.trim_end() == "```" {
                    blocks.push((heading.clone(), *start, std::mem::take(text)));
                    current = None;
                } else {
                    text.push_str(line);
                    text.push('\n');
                }
            }
            None if line.trim_end() == "```toml" => current = Some((index + 1, String::new())),
            None => {
                if let Some(title) = line.strip_prefix("## ") {
                    heading = title.trim().to_owned();
                }
            }
        }
    }
    assert!(current.is_none(), "a ```toml block is not closed");
    blocks
}

fn doc(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn clouds_doc() -> String {
    doc("clouds.md")
}

/// What each cloud's section says its config must do.
fn check_section(heading: &str, config: &ValidatedConfig) {
    let vnis: Vec<u32> = config
        .sessions
        .iter()
        .filter_map(|s| s.vni.map(|v| v.get()))
        .collect();
    match heading {
        h if h.starts_with("AWS VPC Traffic Mirroring") => {
            assert!(
                config.decap.vxlan_ports.contains(&4789),
                "AWS mirrors to UDP 4789"
            );
            assert!(
                config.decap.allowed_sources.is_some(),
                "AWS: the VPC as allowlist"
            );
            assert!(!vnis.is_empty() && config.sessions.iter().all(|s| !s.source_ips.is_empty()));
            let directions: Vec<Direction> = config
                .filters
                .iter()
                .flat_map(|f| &f.rules)
                .filter_map(|r| r.direction)
                .collect();
            assert!(
                directions.contains(&Direction::Ingress) && directions.contains(&Direction::Egress),
                "AWS inbound and outbound rules become ingress and egress"
            );
            assert!(config.dedup.is_some(), "both ends mirrored: dedup");
        }
        h if h.starts_with("AWS metal instance") => {
            let mirror = config.ingress[0]
                .addressing
                .as_ref()
                .expect("the mirror port owns its ENI's address");
            assert_eq!(
                mirror.kernel,
                config::Kernel::Tap,
                "ARP and health checks: a kernel side"
            );
            assert!(
                config.broker.health.is_some(),
                "a health listener for the load balancer"
            );
            assert!(config.broker.metrics_allow.is_some());
            assert!(
                config
                    .tool_ports
                    .iter()
                    .all(|p| p
                        .tunnel()
                        .is_some_and(|t| t.encapsulation == config::Encapsulation::Vxlan
                            && t.dst_port == 4789)),
                "analyzers reached by IP, in VXLAN on 4789 as AWS sends it"
            );
        }
        h if h.starts_with("AWS Gateway Load Balancer") => {
            assert!(
                config.decap.geneve_ports.contains(&6081),
                "GWLB sends GENEVE on 6081"
            );
            assert!(
                config.decap.vxlan_ports.contains(&4789),
                "carrying the VXLAN mirror packets"
            );
            assert!(
                config.decap.allowed_sources.is_some(),
                "the GWLB's subnets as allowlist"
            );
        }
        h if h.starts_with("Azure") => {
            assert!(config.decap.vxlan_ports.contains(&4789), "vTAP: VXLAN 4789");
            assert!(
                config.decap.vxlan_ports.len() > 1,
                "and the example of another TAP port"
            );
        }
        h if h.starts_with("GCP") => {
            assert!(
                config.decap.untunneled_session.is_some(),
                "Packet Mirroring: untunnelled copies"
            );
            assert!(
                config.decap.geneve_ports.contains(&6081) && vnis.contains(&0),
                "NSI: GENEVE, VNI 0"
            );
            let untunneled = &config.sessions[config.decap.untunneled_session.unwrap().index()];
            assert!(
                !untunneled.source_ips.is_empty(),
                "the mirrored VMs give directions"
            );
        }
        h if h.starts_with("Tencent") => {
            assert!(
                config
                    .tool_groups
                    .iter()
                    .any(|g| g.balance == Balance::Source && g.ports.len() > 1),
                "HASH by ENI is balance = source over several receivers"
            );
            let quintuple = config.filters.iter().flat_map(|f| &f.rules).any(|r| {
                r.direction.is_none()
                    && r.protocol.is_some()
                    && (r.src_cidr.is_some() || r.dst_cidr.is_some())
            });
            assert!(
                quintuple,
                "a quintuple rule: protocol, addresses, ports, no direction"
            );
        }
        other => panic!("a ```toml block under an unexpected heading {other:?}"),
    }
}

#[test]
fn every_config_of_the_cloud_guide_parses_without_warnings_and_does_what_its_section_says() {
    let doc = clouds_doc();
    let blocks = toml_blocks(&doc);
    let headings: Vec<&str> = blocks.iter().map(|(h, _, _)| h.as_str()).collect();
    for cloud in [
        "AWS VPC Traffic Mirroring",
        "AWS Gateway Load Balancer",
        "Azure",
        "GCP",
        "Tencent",
    ] {
        assert!(
            headings.iter().any(|h| h.starts_with(cloud)),
            "a config for {cloud}: {headings:?}"
        );
    }
    for (heading, line, text) in &blocks {
        let origin = format!("docs/clouds.md, block at line {line} ({heading})");
        let config = config::parse(text, Some(Path::new(&origin)))
            .unwrap_or_else(|e| panic!("{}", e.detailed()));
        assert!(
            config.warnings.is_empty(),
            "{origin}: {:#?}",
            config.warnings
        );
        check_section(heading, &config);
    }
}

#[test]
fn the_fleet_example_is_a_fleet_config_with_only_the_intended_warning() {
    let blocks = toml_blocks(&doc("fleet.md"));
    assert!(
        blocks.len() >= 2,
        "the health snippet and the worked example"
    );
    for (heading, line, text) in &blocks {
        let origin = format!("docs/fleet.md, block at line {line} ({heading})");
        if heading.starts_with("Health") {
            // A fragment: the [broker] table of a config.
            assert!(text.contains("health = "), "{origin}");
            continue;
        }
        let config = config::parse(text, Some(Path::new(&origin)))
            .unwrap_or_else(|e| panic!("{}", e.detailed()));
        let dedup = config.dedup.as_ref().expect("dedup");
        assert_eq!(dedup.mode, config::DedupMode::SenderWindow, "{origin}");
        assert!(config.broker.health.is_some(), "{origin}: health checks");
        assert!(
            config
                .sessions
                .iter()
                .all(|s| s.vni.is_some() && !s.source_ips.is_empty()),
            "{origin}: one session per ENI, with its addresses"
        );
        let balances: Vec<Balance> = config.tool_groups.iter().map(|g| g.balance).collect();
        assert_eq!(balances, [Balance::Flow, Balance::Source], "{origin}");
        assert!(
            config.tool_ports.iter().all(|p| p.tunnel().is_some()),
            "{origin}"
        );
        assert_eq!(config.warnings.len(), 1, "{origin}: {:#?}", config.warnings);
        assert!(
            config.warnings[0]
                .contains("tool_group[1] (\"arkime\"): balance = \"source\" with de-duplication"),
            "{origin}: {:#?}",
            config.warnings
        );
    }
}

#[test]
fn the_block_extractor_finds_blocks_and_their_sections() {
    let doc = "# T\n## One\ntext\n```toml\na = 1\n```\n```sh\nnot = toml\n```\n## Two\n```toml\nb = 2\nc = 3\n```\n";
    let blocks = toml_blocks(doc);
    assert_eq!(
        blocks,
        vec![
            ("One".to_owned(), 4, "a = 1\n".to_owned()),
            ("Two".to_owned(), 11, "b = 2\nc = 3\n".to_owned())
        ]
    );
}
