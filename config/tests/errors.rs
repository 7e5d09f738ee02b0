//! Every class of mistake is refused with the key path and the location of the offending text.

mod support;

use support::*;

// ---- what toml/serde refuse: unknown keys, wrong types, missing keys, bad values ----

#[test]
fn unknown_top_level_table() {
    let text = minimal_with("[dedupe]\nwindow = \"50ms\"\n");
    assert_refused_at(&text, "dedupe", 0, "dedupe", "unknown field `dedupe`");
}

#[test]
fn unknown_key_in_a_session() {
    let text = MINIMAL.replace("vni = 101", "vni = 101\ntool = [\"ids\"]");
    assert_refused_at(
        &text,
        "tool =",
        0,
        "session[0] (\"web\").tool",
        "unknown field `tool`, expected one of",
    );
}

#[test]
fn unknown_key_in_an_inline_tool_port() {
    let text = MINIMAL.replace("device = \"net_pcap1", "dev = \"net_pcap1");
    assert_refused_at(
        &text,
        "dev =",
        0,
        "tool_group[0] (\"ids\").ports[0] (\"ids-1\").dev",
        "unknown field `dev`",
    );
}

#[test]
fn unknown_key_in_a_filter_rule() {
    let text = minimal_with(
        "[[filter]]\nname = \"f\"\n[[filter.rule]]\nnumber = 100\naction = \"accept\"\nport = 80\n",
    );
    assert_refused_at(
        &text,
        "port = 80",
        0,
        "filter[0] (\"f\").rule[0] (#100).port",
        "unknown field `port`",
    );
}

#[test]
fn wrong_type() {
    let text = MINIMAL.replace("vni = 101", "vni = \"101\"");
    assert_refused_at(
        &text,
        "\"101\"",
        0,
        "session[0] (\"web\").vni",
        "invalid type: string \"101\"",
    );
    let text = MINIMAL.replace("tools = [\"ids\"]", "tools = \"ids\"");
    assert_refused_at(
        &text,
        "\"ids\"",
        0,
        "session[0] (\"web\").tools",
        "invalid type",
    );
}

#[test]
fn missing_required_keys() {
    let text = MINIMAL.replace("name = \"lab\"\n", "");
    assert_refused_at(&text, "[broker]", 0, "broker", "missing field `name`");

    let text = MINIMAL.replace("tools = [\"ids\"]\n", "");
    assert_refused_at(
        &text,
        "[[session]]",
        0,
        "session[0] (\"web\")",
        "missing field `tools`",
    );

    let text = MINIMAL.replace(", device = \"net_pcap1,tx_pcap=out.pcap\"", "");
    assert_refused_at(
        &text,
        "{ name = \"ids-1\" }",
        0,
        "tool_group[0] (\"ids\").ports[0] (\"ids-1\")",
        "a tool port needs device",
    );

    let text = minimal_with("[[filter]]\nname = \"f\"\n[[filter.rule]]\nnumber = 7\n");
    assert_refused_at(
        &text,
        "[[filter.rule]]",
        0,
        "filter[0] (\"f\").rule[0] (#7)",
        "missing field `action`",
    );
}

#[test]
fn missing_ingress_is_reported_for_the_whole_file() {
    let text = MINIMAL.replace(
        "[[ingress]]\nname = \"mirror0\"\ndevice = \"net_pcap0,rx_pcap=in.pcap\"\n",
        "",
    );
    let error = refused(&text);
    assert_eq!(error.key_path(), "");
    assert_eq!(error.line(), Some(1));
    assert!(
        error
            .to_string()
            .starts_with("<string>:1:1: missing field `ingress`"),
        "{error}"
    );
}

#[test]
fn out_of_range_values() {
    // (replace, with, the offending value as it appears in the text, key path, message)
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        (
            "vni = 101",
            "vni = 16777216",
            "16777216",
            "session[0] (\"web\").vni",
            "0..=16777215",
        ),
        (
            "vni = 101",
            "vni = -1",
            "-1\n",
            "session[0] (\"web\").vni",
            "0..=16777215",
        ),
        (
            "in.pcap\"",
            "in.pcap\"\nqueues = 65",
            "65",
            "ingress[0] (\"mirror0\").queues",
            "1..=64",
        ),
        (
            "in.pcap\"",
            "in.pcap\"\nqueues = 0",
            "0\n",
            "ingress[0] (\"mirror0\").queues",
            "1..=64",
        ),
        (
            "in.pcap\"",
            "in.pcap\"\nmtu = 67",
            "67",
            "ingress[0] (\"mirror0\").mtu",
            "68..=9216",
        ),
        (
            "name = \"ids\"",
            "name = \"ids\"\nslice = 13",
            "13",
            "tool_group[0] (\"ids\").slice",
            "inner Ethernet header",
        ),
        (
            "name = \"ids\"",
            "name = \"ids\"\nslice = 65536",
            "65536",
            "tool_group[0] (\"ids\").slice",
            "0..=65535",
        ),
        (
            "name = \"lab\"",
            "name = \"lab\"\nmetrics = \"localhost\"",
            "\"localhost\"",
            "broker.metrics",
            "not a socket address",
        ),
        (
            "name = \"lab\"",
            "name = \"lab\"\nstop_when_idle = \"2 parsecs\"",
            "\"2 parsecs\"",
            "broker.stop_when_idle",
            "not a duration",
        ),
        (
            "name = \"lab\"",
            "name = \"lab lab\"",
            "\"lab lab\"",
            "broker.name",
            "contains ' '",
        ),
        (
            "name = \"lab\"",
            "name = \"\"",
            "\"\"",
            "broker.name",
            "may not be empty",
        ),
        (
            "\"10.0.0.0/8\"",
            "\"10.0.0.0/33\"",
            "\"10.0.0.0/33\"",
            "decap.allowed_sources[0]",
            "not an address prefix",
        ),
        (
            "\"10.0.0.0/8\"",
            "\"10.1.0.0/8\"",
            "\"10.1.0.0/8\"",
            "decap.allowed_sources[0]",
            "did you mean \"10.0.0.0/8\"",
        ),
        (
            "\"net_pcap0",
            "\",net_pcap0",
            "\",net_pcap0",
            "ingress[0] (\"mirror0\").device",
            "no device name",
        ),
    ];
    for (from, to, value, key_path, message) in cases {
        let text = MINIMAL.replacen(from, to, 1);
        assert_refused_at(&text, value, 0, key_path, message);
    }
}

#[test]
fn out_of_range_values_in_optional_tables() {
    let cases: &[(&str, &str, &str)] = &[
        ("[dpdk]\nmbuf_cache = 513\n", "513", "dpdk.mbuf_cache"),
        (
            "[dpdk]\nrx_descriptors = 1000\n",
            "1000",
            "dpdk.rx_descriptors",
        ),
        (
            "[dpdk]\ntx_descriptors = 32768\n",
            "32768",
            "dpdk.tx_descriptors",
        ),
        ("[dpdk]\nmbufs = 0\n", "0\n", "dpdk.mbufs"),
        (
            "[workers]\ncontrol_core = 1024\n",
            "1024",
            "workers.control_core",
        ),
        ("[workers]\nlcores = \"all\"\n", "\"all\"", "workers.lcores"),
        ("[workers]\nlcores = [-1]\n", "-1]", "workers.lcores[0]"),
        ("[dedup]\nwindow = \"11s\"\n", "\"11s\"", "dedup.window"),
        (
            "[dedup]\ncapacity = 268435457\n",
            "268435457",
            "dedup.capacity",
        ),
        (
            "[[filter]]\nname = \"f\"\n[[filter.rule]]\nnumber = 32767\naction = \"accept\"\n",
            "32767",
            "filter[0] (\"f\").rule[0] (#32767).number",
        ),
        (
            "[[filter]]\nname = \"f\"\n[[filter.rule]]\nnumber = 0\naction = \"accept\"\n",
            "0\n",
            "filter[0] (\"f\").rule[0] (#0).number",
        ),
        (
            "[[filter]]\nname = \"f\"\n[[filter.rule]]\nnumber = 1\naction = \"allow\"\n",
            "\"allow\"",
            "filter[0] (\"f\").rule[0] (#1).action",
        ),
        (
            "[[filter]]\nname = \"f\"\n[[filter.rule]]\nnumber = 1\naction = \"accept\"\ndirection = \"in\"\n",
            "\"in\"",
            "filter[0] (\"f\").rule[0] (#1).direction",
        ),
        (
            "[[filter]]\nname = \"f\"\n[[filter.rule]]\nnumber = 1\naction = \"accept\"\nprotocol = 256\n",
            "256",
            "filter[0] (\"f\").rule[0] (#1).protocol",
        ),
        (
            "[[filter]]\nname = \"f\"\n[[filter.rule]]\nnumber = 1\naction = \"accept\"\nprotocol = \"sctp\"\n",
            "\"sctp\"",
            "filter[0] (\"f\").rule[0] (#1).protocol",
        ),
        (
            "[[filter]]\nname = \"f\"\n[[filter.rule]]\nnumber = 1\naction = \"accept\"\ndst_ports = \"65536\"\n",
            "\"65536\"",
            "filter[0] (\"f\").rule[0] (#1).dst_ports",
        ),
        (
            "[[filter]]\nname = \"f\"\ndefault = \"drop\"\n",
            "\"drop\"",
            "filter[0] (\"f\").default",
        ),
    ];
    for (extra, needle, key_path) in cases {
        let text = minimal_with(extra);
        let error = refused(&text);
        let (line, column) = position(&text, needle, 0);
        assert_eq!(
            (error.line(), error.column(), error.key_path()),
            (Some(line), Some(column), *key_path),
            "{error}"
        );
    }
}

#[test]
fn stop_when_idle_may_not_be_zero() {
    let text = MINIMAL.replace("name = \"lab\"", "name = \"lab\"\nstop_when_idle = \"0s\"");
    assert_refused_at(
        &text,
        "\"0s\"",
        0,
        "broker.stop_when_idle",
        "would stop at the first gap",
    );
}

#[test]
fn balance_and_on_port_down_are_keywords() {
    let text = MINIMAL.replace("name = \"ids\"", "name = \"ids\"\nbalance = \"hash\"");
    assert_refused_at(
        &text,
        "\"hash\"",
        0,
        "tool_group[0] (\"ids\").balance",
        "unknown variant `hash`, expected one of `source`, `flow`, `ip-pair`, `round-robin`",
    );
    let text = MINIMAL.replace(
        "name = \"ids\"",
        "name = \"ids\"\non_port_down = \"ignore\"",
    );
    assert_refused_at(
        &text,
        "\"ignore\"",
        0,
        "tool_group[0] (\"ids\").on_port_down",
        "unknown variant `ignore`",
    );
}

#[test]
fn rss_is_a_keyword() {
    let text = MINIMAL.replace("in.pcap\"", "in.pcap\"\nrss = \"innermost\"");
    assert_refused_at(
        &text,
        "\"innermost\"",
        0,
        "ingress[0] (\"mirror0\").rss",
        "unknown variant `innermost`, expected `outer` or `inner`",
    );
}

#[test]
fn port_range_whose_first_port_is_after_its_last() {
    let text = minimal_with(
        "[[filter]]\nname = \"f\"\n[[filter.rule]]\nnumber = 1\naction = \"accept\"\nsrc_ports = \"2000-1000\"\n",
    );
    assert_refused_at(
        &text,
        "\"2000-1000\"",
        0,
        "filter[0] (\"f\").rule[0] (#1).src_ports",
        "first port is after its last",
    );
}

// ---- what validation refuses: relations between items ----

#[test]
fn duplicate_session_names() {
    let text = minimal_with("[[session]]\nname = \"web\"\nvni = 102\ntools = [\"ids\"]\n");
    let error = assert_refused_at(
        &text,
        "\"web\"",
        1,
        "session[1] (\"web\").name",
        "duplicate session name \"web\"",
    );
    assert!(error.message().contains(&format!(
        "(first at line {})",
        position(&text, "\"web\"", 0).0
    )));
}

#[test]
fn duplicate_tool_group_and_filter_names() {
    let text = minimal_with(
        "[[tool_group]]\nname = \"ids\"\nports = [{ name = \"ids-2\", device = \"net_pcap2\" }]\n",
    );
    assert_refused_at(
        &text,
        "\"ids\"",
        2,
        "tool_group[1] (\"ids\").name",
        "duplicate tool group name \"ids\"",
    );

    let text = minimal_with("[[filter]]\nname = \"f\"\n[[filter]]\nname = \"f\"\n")
        .replace("tools = [\"ids\"]", "tools = [\"ids\"]\nfilter = \"f\"");
    assert_refused_at(
        &text,
        "\"f\"",
        2,
        "filter[1] (\"f\").name",
        "duplicate filter name \"f\"",
    );
}

#[test]
fn ingress_and_tool_ports_share_one_namespace() {
    let text = MINIMAL.replace("name = \"ids-1\"", "name = \"mirror0\"");
    assert_refused_at(
        &text,
        "\"mirror0\"",
        1,
        "tool_group[0] (\"ids\").ports[0] (\"mirror0\").name",
        "duplicate port name \"mirror0\"",
    );
}

#[test]
fn duplicate_devices_compare_the_name_before_the_first_comma() {
    let text = MINIMAL.replace("net_pcap1,tx_pcap=out.pcap", "net_pcap0,tx_pcap=out.pcap");
    assert_refused_at(
        &text,
        "\"net_pcap0,tx_pcap",
        0,
        "tool_group[0] (\"ids\").ports[0] (\"ids-1\").device",
        "device \"net_pcap0\" is already used",
    );
    // The short and the full spelling of one PCI address are one device.
    let text = MINIMAL
        .replace("net_pcap0,rx_pcap=in.pcap", "0000:3B:00.0")
        .replace("net_pcap1,tx_pcap=out.pcap", "3b:00.0,txq_inline=128");
    assert_refused_at(
        &text,
        "\"3b:00.0",
        0,
        "tool_group[0] (\"ids\").ports[0] (\"ids-1\").device",
        "already used",
    );
}

#[test]
fn two_sessions_with_one_vni() {
    let text = minimal_with("[[session]]\nname = \"db\"\nvni = 101\ntools = [\"ids\"]\n");
    assert_refused_at(
        &text,
        "101",
        1,
        "session[1] (\"db\").vni",
        "VNI 101 is already used",
    );
}

#[test]
fn session_naming_an_unknown_tool_group() {
    let text = minimal_with(
        "[[tool_group]]\nname = \"pcap\"\nports = [{ name = \"p\", device = \"net_pcap2\" }]\n",
    )
    .replace("tools = [\"ids\"]", "tools = [\"idz\", \"pcap\"]");
    let error = assert_refused_at(&text, "\"idz\"", 0, "session[0] (\"web\").tools[0]", "");
    assert_eq!(
        error.message(),
        "unknown tool group \"idz\" (known: ids, pcap)"
    );
    let (line, column) = position(&text, "\"idz\"", 0);
    assert_eq!(
        error.to_string(),
        format!(
            "<string>:{line}:{column}: session[0] (\"web\").tools[0]: unknown tool group \"idz\" (known: ids, pcap)"
        )
    );
}

#[test]
fn session_naming_an_unknown_filter() {
    let text = MINIMAL.replace(
        "tools = [\"ids\"]",
        "tools = [\"ids\"]\nfilter = \"web-filter\"",
    );
    assert_refused_at(
        &text,
        "\"web-filter\"",
        0,
        "session[0] (\"web\").filter",
        "unknown filter \"web-filter\" (no filter is defined)",
    );
}

#[test]
fn session_naming_a_tool_group_twice() {
    let text = MINIMAL.replace("tools = [\"ids\"]", "tools = [\"ids\", \"ids\"]");
    assert_refused_at(
        &text,
        "\"ids\"",
        1,
        "session[0] (\"web\").tools[1]",
        "tool group \"ids\" is listed twice",
    );
}

#[test]
fn session_tools_count() {
    let text = MINIMAL.replace("tools = [\"ids\"]", "tools = []");
    assert_refused_at(
        &text,
        "[]",
        0,
        "session[0] (\"web\").tools",
        "at least one tool group",
    );

    let groups: String = (0..17)
        .map(|n| format!("[[tool_group]]\nname = \"g{n}\"\nports = [{{ name = \"p{n}\", device = \"net_null{n}\" }}]\n"))
        .collect();
    let list: Vec<String> = (0..17).map(|n| format!("\"g{n}\"")).collect();
    let text = minimal_with(&groups).replace(
        "tools = [\"ids\"]",
        &format!("tools = [{}]", list.join(", ")),
    );
    assert_refused_at(
        &text,
        "[\"g0\"",
        0,
        "session[0] (\"web\").tools",
        "a session sends to at most 16",
    );
}

#[test]
fn default_or_untunneled_session_unknown() {
    let text = MINIMAL.replace("[decap]", "[decap]\ndefault_session = \"catchall\"");
    assert_refused_at(
        &text,
        "\"catchall\"",
        0,
        "decap.default_session",
        "unknown session \"catchall\" (known: web)",
    );

    let text = MINIMAL.replace(
        "[decap]",
        "[decap]\npass_untunneled = true\nuntunneled_session = \"span\"",
    );
    assert_refused_at(
        &text,
        "\"span\"",
        0,
        "decap.untunneled_session",
        "unknown session \"span\"",
    );
}

#[test]
fn pass_untunneled_and_untunneled_session_go_together() {
    let text = MINIMAL.replace("[decap]", "[decap]\npass_untunneled = true");
    assert_refused_at(
        &text,
        "true",
        0,
        "decap.pass_untunneled",
        "needs untunneled_session",
    );

    let text = MINIMAL.replace("[decap]", "[decap]\nuntunneled_session = \"web\"");
    assert_refused_at(
        &text,
        "\"web\"",
        0,
        "decap.untunneled_session",
        "pass_untunneled is not true",
    );

    let text = MINIMAL.replace(
        "[decap]",
        "[decap]\npass_untunneled = false\nuntunneled_session = \"web\"",
    );
    assert_refused_at(
        &text,
        "\"web\"",
        0,
        "decap.untunneled_session",
        "pass_untunneled is not true",
    );
}

#[test]
fn session_without_vni_must_be_the_default_or_untunneled_one() {
    let text = minimal_with("[[session]]\nname = \"other\"\ntools = [\"ids\"]\n");
    assert_refused_at(
        &text,
        "[[session]]",
        1,
        "session[1] (\"other\")",
        "session \"other\" has no vni",
    );
}

#[test]
fn duplicate_rule_numbers() {
    let text = minimal_with(
        "[[filter]]\nname = \"f\"\n[[filter.rule]]\nnumber = 100\naction = \"accept\"\n\
         [[filter.rule]]\nnumber = 100\naction = \"reject\"\n",
    )
    .replace("tools = [\"ids\"]", "tools = [\"ids\"]\nfilter = \"f\"");
    assert_refused_at(
        &text,
        "100",
        1,
        "filter[0] (\"f\").rule[1] (#100).number",
        "rule number 100 is used twice",
    );
}

#[test]
fn rule_cidrs_of_two_families() {
    let text = minimal_with(
        "[[filter]]\nname = \"f\"\n[[filter.rule]]\nnumber = 1\naction = \"accept\"\n\
         src_cidr = \"10.0.0.0/8\"\ndst_cidr = \"2001:db8::/32\"\n",
    );
    assert_refused_at(
        &text,
        "\"2001:db8::/32\"",
        0,
        "filter[0] (\"f\").rule[0] (#1).dst_cidr",
        "different address families",
    );
}

#[test]
fn port_ranges_only_with_tcp_or_udp() {
    for protocol in ["\"icmp\"", "47"] {
        let text = minimal_with(&format!(
            "[[filter]]\nname = \"f\"\n[[filter.rule]]\nnumber = 1\naction = \"accept\"\n\
             protocol = {protocol}\ndst_ports = 80\n"
        ));
        assert_refused_at(
            &text,
            "80",
            0,
            "filter[0] (\"f\").rule[0] (#1).dst_ports",
            "needs protocol \"tcp\" or \"udp\"",
        );
    }
    // With tcp, udp or no protocol at all the same rule is fine.
    for protocol in ["protocol = \"udp\"\n", "protocol = 6\n", ""] {
        accepted(&minimal_with(&format!(
            "[[filter]]\nname = \"f\"\n[[filter.rule]]\nnumber = 1\naction = \"accept\"\n\
             {protocol}src_ports = \"1024-65535\"\ndst_ports = 80\n"
        )));
    }
}

#[test]
fn explicit_lcores_must_match_the_ingress_queues() {
    let text = minimal_with("[workers]\nlcores = [1, 2]\n");
    assert_refused_at(
        &text,
        "[1, 2]",
        0,
        "workers.lcores",
        "2 CPU ids for 1 ingress queue",
    );

    let text = MINIMAL.replace("rx_pcap=in.pcap\"", "rx_pcap=in.pcap\"\nqueues = 2")
        + "[workers]\nlcores = [7, 7]\n";
    assert_refused_at(&text, "7", 1, "workers.lcores[1]", "CPU 7 is listed twice");

    accepted(
        &(MINIMAL.replace("rx_pcap=in.pcap\"", "rx_pcap=in.pcap\"\nqueues = 2")
            + "[workers]\nlcores = [3, 4]\n"),
    );
}

#[test]
fn tunnel_port_in_both_lists() {
    let text = MINIMAL.replace("[decap]", "[decap]\nvxlan_ports = [4789, 6081]");
    assert_refused_at(
        &text,
        "6081",
        0,
        "decap.vxlan_ports[1]",
        "UDP port 6081 is in both",
    );

    let text = MINIMAL.replace(
        "[decap]",
        "[decap]\nvxlan_ports = [4789, 8472]\ngeneve_ports = [8472]",
    );
    assert_refused_at(
        &text,
        "8472",
        1,
        "decap.geneve_ports[0]",
        "UDP port 8472 is in both",
    );

    let text = MINIMAL.replace("[decap]", "[decap]\nvxlan_ports = [4789, 4789]");
    assert_refused_at(&text, "4789", 1, "decap.vxlan_ports[1]", "listed twice");
}

#[test]
fn lists_that_must_not_be_empty() {
    // A top-level key must come before the first table header.
    let text = format!(
        "ingress = []\n{}",
        MINIMAL.replace(
            "[[ingress]]\nname = \"mirror0\"\ndevice = \"net_pcap0,rx_pcap=in.pcap\"\n",
            ""
        )
    );
    assert_refused_at(&text, "[]", 0, "ingress", "at least one ingress port");

    let text = MINIMAL.replace(
        "ports = [{ name = \"ids-1\", device = \"net_pcap1,tx_pcap=out.pcap\" }]",
        "ports = []",
    );
    assert_refused_at(
        &text,
        "[]",
        0,
        "tool_group[0] (\"ids\").ports",
        "at least one port",
    );
}

#[test]
fn too_few_mbufs() {
    let text = minimal_with("[dpdk]\nmbufs = 300\n");
    assert_refused_at(&text, "300", 0, "dpdk.mbufs", "1.5 × the cache size (384)");

    let text = minimal_with("[dpdk]\nmbufs = 1000\nmbuf_cache = 0\n");
    assert_refused_at(&text, "1000", 0, "dpdk.mbufs", "cannot fill the RX rings");
}

#[test]
fn counts_must_fit_u16() {
    // 65536 filters: more than a `FilterId` can number.
    let mut text = MINIMAL.to_owned();
    for n in 0..=u16::MAX as usize {
        text.push_str(&format!("[[filter]]\nname = \"f{n}\"\n"));
    }
    let error = refused(&text);
    assert_eq!(error.key_path(), "filter");
    assert_eq!(error.line(), Some(position(&text, "[[filter]]", 0).0));
    assert!(
        error.message().contains("65536 filters: at most 65535"),
        "{}",
        error.message()
    );
}

#[test]
fn every_problem_is_reported_in_file_order() {
    let text = minimal_with(
        "[[session]]\nname = \"db\"\nvni = 101\ntools = [\"idz\"]\nfilter = \"nope\"\n",
    )
    .replace("[decap]", "[decap]\npass_untunneled = true");
    let error = refused(&text);
    let found: Vec<(Option<usize>, &str)> = error
        .diagnostics()
        .iter()
        .map(|problem| (problem.line(), problem.key_path()))
        .collect();
    assert_eq!(
        found,
        vec![
            (
                Some(position(&text, "pass_untunneled", 0).0),
                "decap.pass_untunneled"
            ),
            (Some(position(&text, "101", 1).0), "session[1] (\"db\").vni"),
            (
                Some(position(&text, "\"idz\"", 0).0),
                "session[1] (\"db\").tools[0]"
            ),
            (
                Some(position(&text, "\"nope\"", 0).0),
                "session[1] (\"db\").filter"
            ),
        ]
    );
    assert_eq!(error.to_string().lines().count(), 4);
    // The detailed form shows each offending line with a caret under the value.
    let detailed = error.detailed().to_string();
    assert!(detailed.contains("tools = [\"idz\"]\n"), "{detailed}");
    assert!(detailed.contains("|          ^^^^^\n"), "{detailed}");
}

#[test]
fn syntax_errors_keep_the_toml_message() {
    let text = MINIMAL.replace("vni = 101", "vni = ");
    let error = refused(&text);
    assert_eq!(error.line(), Some(position(&text, "vni = ", 0).0));
    assert!(error.message().contains("expected"), "{}", error.message());
}

#[test]
fn a_missing_file_names_the_file() {
    let path = std::path::Path::new("/nonexistent/lab.toml");
    let error = config::load(path).unwrap_err();
    assert_eq!(error.line(), None);
    assert_eq!(error.origin(), Some(path));
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/lab.toml: cannot read the config:"),
        "{error}"
    );
    // The cause is in the message, once, and not again as a source an error chain would print.
    let chain = error_chain(&error);
    assert_eq!(chain.matches("No such file").count(), 1, "{chain}");
    assert!(std::error::Error::source(&error).is_none());
}

/// The error and its sources, joined as `anyhow`'s `{:#}` prints them.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[test]
fn a_duplicate_key_is_named_with_its_line() {
    // `toml` reports the duplicate's own span (no key path: its tree keeps only the first).
    let text = MINIMAL.replace("vni = 101", "vni = 101\nvni = 102");
    let error = refused(&text);
    let (line, column) = position(&text, "vni = 102", 0);
    assert_eq!(
        error.to_string(),
        format!("<string>:{line}:{column}: duplicate key \"vni\": a key may be set once per table")
    );
    assert!(
        error
            .detailed()
            .to_string()
            .ends_with("| vni = 102\n   | ^^^"),
        "{}",
        error.detailed()
    );
    // A table opened twice: its header names it.
    let text = minimal_with("[broker]\nname = \"again\"\n");
    assert_refused_at(&text, "broker]", 1, "broker", "duplicate key \"broker\"");
}

#[test]
fn errors_name_the_file_they_come_from() {
    let text = MINIMAL.replace("vni = 101", "vni = 101\nvlan = 5");
    let error = config::parse(&text, Some(std::path::Path::new("lab.toml"))).unwrap_err();
    let (line, column) = position(&text, "vlan", 0);
    assert!(
        error.to_string().starts_with(&format!(
            "lab.toml:{line}:{column}: session[0] (\"web\").vlan: unknown field `vlan`"
        )),
        "{error}"
    );
}

#[test]
fn eal_options_the_broker_sets_itself_are_refused() {
    let text = minimal_with("[dpdk]\neal_args = [\"--no-huge\", \"--lcores=0-3\"]\n");
    assert_refused_at(
        &text,
        "\"--lcores",
        0,
        "dpdk.eal_args[1]",
        "`--lcores` is set by the broker from [workers] lcores",
    );
    let text = minimal_with("[dpdk]\neal_args = [\"--vdev\", \"net_null9\"]\n");
    assert_refused_at(
        &text,
        "\"--vdev",
        0,
        "dpdk.eal_args[0]",
        "the ports' `device`",
    );
}
