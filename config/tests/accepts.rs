//! What a valid config turns into: defaults, resolved references, order, warnings.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use config::*;
use support::*;

#[test]
fn defaults_of_a_minimal_config() {
    let config = accepted(MINIMAL);
    assert_eq!(config.path, None);
    assert_eq!(
        config.broker,
        BrokerSettings {
            name: "lab".to_owned(),
            stop_when_idle: None,
            metrics: Some("127.0.0.1:9477".parse::<SocketAddr>().unwrap()),
            metrics_allow: None,
            health: None,
        }
    );
    assert_eq!(
        config.dpdk,
        DpdkSettings {
            eal_args: vec![],
            mbufs: None,
            mbuf_cache: 256,
            rx_descriptors: 1024,
            tx_descriptors: 1024
        }
    );
    assert_eq!(
        config.workers,
        WorkerSettings {
            lcores: Lcores::Auto,
            control_core: None
        }
    );
    assert_eq!(
        config.ingress,
        vec![IngressPort {
            name: "mirror0".to_owned(),
            device: "net_pcap0,rx_pcap=in.pcap".parse().unwrap(),
            queues: 1,
            mtu: None,
            rss: Rss::Outer,
            addressing: None,
        }]
    );
    assert!(config.uplinks.is_empty());
    assert_eq!(config.decap.vxlan_ports, vec![4789]);
    assert_eq!(config.decap.geneve_ports, vec![6081]);
    assert_eq!(
        config.decap.allowed_sources,
        Some(vec!["10.0.0.0/8".parse().unwrap()])
    );
    assert_eq!(config.decap.untunneled_session, None);
    assert_eq!(config.decap.default_session, None);
    assert_eq!(config.dedup, None);
    assert_eq!(
        config.sessions,
        vec![Session {
            name: "web".to_owned(),
            vni: Vni::new(101),
            filter: None,
            tools: vec![GroupId(0)],
            source_ips: vec![],
        }]
    );
    assert!(config.filters.is_empty());
    assert_eq!(
        config.tool_groups,
        vec![ToolGroup {
            name: "ids".to_owned(),
            balance: Balance::Source,
            slice: None,
            dedup: true,
            on_port_down: OnPortDown::Rebalance,
            ports: vec![ToolPortId(0)],
        }]
    );
    assert_eq!(
        config.tool_ports,
        vec![ToolPort {
            name: "ids-1".to_owned(),
            group: GroupId(0),
            output: ToolOutput::Device("net_pcap1,tx_pcap=out.pcap".parse().unwrap()),
        }]
    );
    assert_eq!(config.warnings, Vec::<String>::new());
}

#[test]
fn dedup_defaults_and_disabling() {
    let config = accepted(&minimal_with("[dedup]\n"));
    assert_eq!(
        config.dedup,
        Some(DedupSettings {
            mode: DedupMode::Window,
            window: Duration::from_millis(50),
            capacity: 1_048_576,
            ignore_dscp_ecn: false,
            ignore_vlan: false,
        })
    );
    let config = accepted(&minimal_with(
        "[dedup]\nwindow = \"2ms\"\ncapacity = 4096\nignore_dscp_ecn = true\nignore_vlan = true\n",
    ));
    assert_eq!(
        config.dedup,
        Some(DedupSettings {
            mode: DedupMode::Window,
            window: Duration::from_millis(2),
            capacity: 4096,
            ignore_dscp_ecn: true,
            ignore_vlan: true,
        })
    );
    assert_eq!(
        accepted(&minimal_with("[dedup]\nwindow = \"0s\"\n")).dedup,
        None
    );
    assert_eq!(
        accepted(&minimal_with("[dedup]\ncapacity = 0\n")).dedup,
        None
    );
}

#[test]
fn dedup_modes() {
    let mode = |text: &str| accepted(&minimal_with(text)).dedup.map(|d| d.mode);
    assert_eq!(
        mode("[dedup]\nmode = \"window\"\n"),
        Some(DedupMode::Window)
    );
    assert_eq!(
        mode("[dedup]\nmode = \"sender\"\n"),
        Some(DedupMode::Sender)
    );
    assert_eq!(
        mode("[dedup]\nmode = \"sender+window\"\n"),
        Some(DedupMode::SenderWindow)
    );
    assert!(DedupMode::SenderWindow.uses_window() && DedupMode::SenderWindow.uses_sender_rule());
    assert!(!DedupMode::Sender.uses_window() && !DedupMode::Window.uses_sender_rule());
    // The sender rule keeps no table: a window of 0 does not turn it off, and a window or a
    // capacity is pointless (a warning).
    let text = minimal_with("[dedup]\nmode = \"sender\"\nwindow = \"0s\"\n");
    let config = accepted(&text);
    assert_eq!(config.dedup.map(|d| d.mode), Some(DedupMode::Sender));
    let (line, column) = position(&text, "\"sender\"", 0);
    assert!(
        config.warnings.contains(&format!(
            "<string>:{line}:{column}: dedup.mode: window and capacity size the table that \
             mode = \"sender\" does not keep: they are unused"
        )),
        "{:#?}",
        config.warnings
    );
    let text = minimal_with("[dedup]\nmode = \"sender+window\"\ncapacity = 0\n");
    let (line, column) = position(&text, "\"sender+window\"", 0);
    assert_eq!(
        refused(&text).to_string(),
        format!(
            "<string>:{line}:{column}: dedup.mode: \"sender+window\" needs the window's table, \
             which a window or capacity of 0 turns off: use mode = \"sender\" for the sender rule \
             alone"
        )
    );
}

/// Two mirrored interfaces that may be each other's peers, both sending to a `source` group and
/// a `flow` group, de-duplicated with `mode` (unwritten when `None`).
fn both_ends(mode: Option<&str>) -> String {
    let mode = mode.map_or(String::new(), |m| format!("mode = \"{m}\"\n"));
    format!(
        r#"[broker]
name = "fleet"

[[ingress]]
name = "mirror0"
device = "net_pcap0,rx_pcap=in.pcap"

[decap]
allowed_sources = ["10.0.0.0/8"]

[dedup]
{mode}
[[session]]
name = "a"
vni = 1
tools = ["ids", "zeek"]
source_ips = ["10.0.0.1"]

[[session]]
name = "b"
vni = 2
tools = ["ids", "zeek"]
source_ips = ["10.0.0.2", "fd00::2"]

[[tool_group]]
name = "ids"
balance = "source"
ports = [{{ name = "ids-1", device = "net_null1" }}, {{ name = "ids-2", device = "net_null2" }}]

[[tool_group]]
name = "zeek"
balance = "flow"
ports = [{{ name = "zeek-1", device = "net_null3" }}, {{ name = "zeek-2", device = "net_null4" }}]
"#
    )
}

#[test]
fn both_ends_warnings_name_the_sessions_and_point_at_the_key() {
    let text = both_ends(None);
    let warnings = accepted(&text).warnings;
    let (dedup_line, _) = position(&text, "[dedup]", 0);
    let (group_line, _) = position(&text, "[[tool_group]]", 0);
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(
        warnings[0].starts_with(&format!(
            "<string>:{dedup_line}:1: dedup: mode = \"window\" (the default) de-duplicates the \
             copies this broker receives"
        )) && warnings[0].contains("(sessions \"a\", \"b\")"),
        "{warnings:#?}"
    );
    assert!(
        warnings[1].starts_with(&format!(
            "<string>:{group_line}:1: tool_group[0] (\"ids\"): balance = \"source\" with \
             de-duplication"
        )),
        "{warnings:#?}"
    );
    // Saying "window" is saying the broker runs alone; the source group's note stays.
    let warnings = accepted(&both_ends(Some("window"))).warnings;
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("balance = \"source\""));
    assert_eq!(accepted(&both_ends(Some("sender"))).warnings, warnings);

    // What the sender rule cannot decide: an address of two sessions, two of one family in one
    // session, a session without source_ips.
    let text = both_ends(Some("sender+window")).replace(
        "[\"10.0.0.2\", \"fd00::2\"]",
        "[\"10.0.0.2\", \"fd00::2\", \"10.0.0.1\"]",
    ) + "\n[[session]]\nname = \"c\"\nvni = 3\ntools = [\"zeek\"]\n";
    let warnings = accepted(&text).warnings;
    let (two_line, two_column) = position(&text, "\"10.0.0.1\"", 1);
    let (c_line, c_column) = position(&text, "\"c\"", 0);
    assert_eq!(warnings.len(), 4, "{warnings:#?}");
    assert!(
        warnings[2].contains("balance = \"source\""),
        "{warnings:#?}"
    );
    assert_eq!(
        warnings[0],
        format!(
            "<string>:{two_line}:{two_column}: session[1] (\"b\").source_ips[2]: two addresses \
             of one family: if they are two interfaces, a packet between them arrives twice under \
             this one session, and the sender rule cannot tell which copy was taken at its \
             sender: it delivers both (\"sender+window\" drops one when both reach one broker). \
             Give each interface its own session"
        )
    );
    assert_eq!(
        warnings[1],
        format!(
            "<string>:{two_line}:{two_column}: session[1] (\"b\").source_ips[2]: 10.0.0.1 is \
             also mirrored by session \"a\": each packet it sends arrives once per session, and \
             the sender rule keeps every copy taken at a sender"
        )
    );
    assert_eq!(
        warnings[3],
        format!(
            "<string>:{c_line}:{c_column}: session[2] (\"c\").name: no source_ips: the sender \
             rule cannot tell which of this session's copies were taken at a receiver, and \
             delivers them all"
        )
    );

    // One mirrored address per family: no packet can arrive twice, nothing to say.
    let text = both_ends(None).replace("\"10.0.0.2\", ", "");
    let text = text.replace("[\"10.0.0.1\"]", "[]");
    assert_eq!(accepted(&text).warnings, Vec::<String>::new());
}

#[test]
fn explicit_settings_are_kept() {
    let text = MINIMAL
        .replace(
            "name = \"lab\"",
            "name = \"lab\"\nstop_when_idle = \"1m 30s\"\nmetrics = \"\"",
        )
        .replace("in.pcap\"", "in.pcap\"\nqueues = 2\nmtu = 9001")
        + "[dpdk]\neal_args = [\"--no-huge\"]\nmbufs = 8191\nmbuf_cache = 512\nrx_descriptors = 64\n\
           tx_descriptors = 16384\n[workers]\nlcores = [4, 2]\ncontrol_core = 0\n";
    let config = accepted(&text);
    assert_eq!(config.broker.stop_when_idle, Some(Duration::from_secs(90)));
    assert_eq!(config.broker.metrics, None);
    assert_eq!(config.ingress[0].queues, 2);
    assert_eq!(config.ingress[0].mtu, Some(9001));
    assert_eq!(
        config.dpdk,
        DpdkSettings {
            eal_args: vec!["--no-huge".to_owned()],
            mbufs: Some(8191),
            mbuf_cache: 512,
            rx_descriptors: 64,
            tx_descriptors: 16384,
        }
    );
    assert_eq!(
        config.workers,
        WorkerSettings {
            lcores: Lcores::List(vec![4, 2]),
            control_core: Some(0)
        }
    );
}

#[test]
fn rules_are_sorted_by_number_with_every_field() {
    let text = minimal_with(
        r#"[[filter]]
name = "f"
default = "accept"
[[filter.rule]]
number = 300
action = "reject"
[[filter.rule]]
number = 7
action = "accept"
direction = "egress"
protocol = "udp"
src_cidr = "2001:db8::/32"
dst_cidr = "2001:db8:1::1"
src_ports = 53
dst_ports = "1024-65535"
description = "DNS answers"
[[filter.rule]]
number = 20
action = "accept"
direction = "ingress"
protocol = 132
"#,
    )
    .replace("tools = [\"ids\"]", "tools = [\"ids\"]\nfilter = \"f\"");
    let config = accepted(&text);
    let filter = &config.filters[0];
    assert_eq!(filter.default, Action::Accept);
    assert_eq!(
        filter
            .rules
            .iter()
            .map(|rule| rule.number)
            .collect::<Vec<_>>(),
        vec![7, 20, 300]
    );
    assert_eq!(
        filter.rules[0],
        Rule {
            number: 7,
            action: Action::Accept,
            direction: Some(Direction::Egress),
            protocol: Some(17),
            src_cidr: Some("2001:db8::/32".parse().unwrap()),
            dst_cidr: Some("2001:db8:1::1/128".parse().unwrap()),
            src_ports: Some(PortRange {
                first: 53,
                last: 53
            }),
            dst_ports: Some(PortRange {
                first: 1024,
                last: 65535
            }),
            description: Some("DNS answers".to_owned()),
        }
    );
    assert_eq!(filter.rules[1].protocol, Some(132));
    assert_eq!(filter.rules[1].direction, Some(Direction::Ingress));
    assert_eq!(
        filter.rules[2],
        Rule {
            number: 300,
            action: Action::Reject,
            direction: None,
            protocol: None,
            src_cidr: None,
            dst_cidr: None,
            src_ports: None,
            dst_ports: None,
            description: None,
        }
    );
    assert_eq!(config.sessions[0].filter, Some(FilterId(0)));
}

#[test]
fn names_resolve_to_indices_and_tool_ports_are_flattened_in_group_order() {
    let text = r#"
[broker]
name = "lab"
[[ingress]]
name = "in"
device = "net_pcap0"
[decap]
allowed_sources = ["10.0.0.0/8"]
pass_untunneled = true
untunneled_session = "span"
default_session = "catchall"
[[session]]
name = "catchall"
tools = ["b"]
[[session]]
name = "web"
vni = 7
tools = ["b", "a"]
filter = "second"
source_ips = ["10.0.1.15", "2001:db8::15"]
[[session]]
name = "span"
tools = ["a"]
filter = "first"
[[filter]]
name = "first"
[[filter]]
name = "second"
[[tool_group]]
name = "a"
balance = "round-robin"
slice = 14
dedup = false
on_port_down = "drop"
ports = [{ name = "a1", device = "net_null0" }, { name = "a2", device = "net_null1" }]
[[tool_group]]
name = "b"
balance = "ip-pair"
ports = [{ name = "b1", device = "net_null2" }]
"#;
    let config = accepted(text);
    assert_eq!(config.decap.default_session, Some(SessionId(0)));
    assert_eq!(config.decap.untunneled_session, Some(SessionId(2)));
    assert_eq!(config.sessions[0].vni, None);
    assert_eq!(config.sessions[1].tools, vec![GroupId(1), GroupId(0)]);
    assert_eq!(config.sessions[1].filter, Some(FilterId(1)));
    assert_eq!(
        config.sessions[1].source_ips,
        vec![
            "10.0.1.15".parse::<IpAddr>().unwrap(),
            "2001:db8::15".parse().unwrap()
        ]
    );
    assert_eq!(config.sessions[2].filter, Some(FilterId(0)));
    let names: Vec<(&str, GroupId)> = config
        .tool_ports
        .iter()
        .map(|port| (port.name.as_str(), port.group))
        .collect();
    assert_eq!(
        names,
        vec![("a1", GroupId(0)), ("a2", GroupId(0)), ("b1", GroupId(1))]
    );
    assert_eq!(
        config.tool_groups[0].ports,
        vec![ToolPortId(0), ToolPortId(1)]
    );
    assert_eq!(config.tool_groups[1].ports, vec![ToolPortId(2)]);
    assert_eq!(config.tool_groups[0].balance, Balance::RoundRobin);
    assert_eq!(config.tool_groups[0].slice, Some(14));
    assert!(!config.tool_groups[0].dedup);
    assert_eq!(config.tool_groups[0].on_port_down, OnPortDown::Drop);
    assert_eq!(config.tool_groups[1].balance, Balance::IpPair);
    assert_eq!(config.warnings, Vec::<String>::new());
}

#[test]
fn tunnel_ports_can_be_moved() {
    let text = MINIMAL.replace(
        "[decap]",
        "[decap]\nvxlan_ports = [4789, 8472]\ngeneve_ports = []",
    );
    let config = accepted(&text);
    assert_eq!(config.decap.vxlan_ports, vec![4789, 8472]);
    assert!(config.decap.geneve_ports.is_empty());
}

#[test]
fn warnings_for_suspicious_but_legal_configs() {
    let text = MINIMAL
        .replace("allowed_sources = [\"10.0.0.0/8\"]\n", "")
        .replace("in.pcap\"", "in.pcap\"\nqueues = 2")
        + r#"
[workers]
lcores = [1, 2]
control_core = 2

[[filter]]
name = "unused-filter"

[[tool_group]]
name = "unused-group"
ports = [{ name = "u1", device = "net_null0" }]
"#;
    let config = accepted(&text);
    let at = |needle: &str| {
        let (line, column) = position(&text, needle, 0);
        format!("<string>:{line}:{column}: ")
    };
    assert_eq!(
        config.warnings,
        vec![
            "<string>: decap.allowed_sources: not set: any host that can reach the ingress port can inject packets"
                .to_owned(),
            format!(
                "{}workers.control_core: control core 2 is also a worker lcore: the control thread \
                 will steal cycles from that worker",
                at("2\n\n[[filter]]")
            ),
            format!("{}filter[0] (\"unused-filter\"): no session uses filter \"unused-filter\"", at("[[filter]]")),
            format!(
                "{}tool_group[1] (\"unused-group\"): no session sends to tool group \"unused-group\"",
                at("[[tool_group]]\nname = \"unused-group\"")
            ),
        ]
    );
}

#[test]
fn rss_on_the_inner_headers_is_asked_per_ingress_port_and_pointless_with_one_queue() {
    let text = MINIMAL.replace("in.pcap\"", "in.pcap\"\nqueues = 4\nrss = \"inner\"");
    let config = accepted(&text);
    assert_eq!(config.ingress[0].rss, Rss::Inner);
    assert_eq!(config.warnings, Vec::<String>::new());
    let text = MINIMAL.replace("in.pcap\"", "in.pcap\"\nrss = \"outer\"");
    assert_eq!(accepted(&text).ingress[0].rss, Rss::Outer);

    let text = MINIMAL.replace("in.pcap\"", "in.pcap\"\nrss = \"inner\"");
    let (line, column) = position(&text, "\"inner\"", 0);
    assert_eq!(
        accepted(&text).warnings,
        vec![format!(
            "<string>:{line}:{column}: ingress[0] (\"mirror0\").rss: \"inner\" with one queue: there \
             is nothing to spread, no flow rule is installed"
        )]
    );
}

#[test]
fn more_warnings() {
    let text = MINIMAL
        .replace("[\"10.0.0.0/8\"]", "[]")
        .replace("name = \"ids\"", "name = \"ids\"\ndedup = false")
        + "[dedup]\n";
    let warnings = accepted(&text).warnings;
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(
        warnings[0].contains("decap.allowed_sources: empty: every tunnelled frame"),
        "{warnings:#?}"
    );
    assert!(
        warnings[1]
            .contains("dedup: de-duplication is enabled but every tool group has dedup = false")
    );

    let text = "[broker]\nname = \"x\"\n[[ingress]]\nname = \"i\"\ndevice = \"net_null0\"\n\
                [decap]\nallowed_sources = []\n";
    let warnings = accepted(text).warnings;
    assert!(
        warnings
            .iter()
            .any(|warning| warning.contains("no session is defined")),
        "{warnings:#?}"
    );
}

#[test]
fn a_config_loaded_from_a_file_remembers_its_path() {
    let path = std::env::temp_dir().join(format!("broker-config-test-{}.toml", std::process::id()));
    std::fs::write(&path, MINIMAL).unwrap();
    let loaded = config::load(&path);
    std::fs::remove_file(&path).unwrap();
    let config = loaded.unwrap();
    assert_eq!(config.path.as_deref(), Some(path.as_path()));
    assert_eq!(config.sessions.len(), 1);
}
