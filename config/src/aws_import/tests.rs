use ipnet::IpNet;
use serde_json::{Value, json};

use super::*;
use crate::model::{Action, Direction, Rule};

/// `config/examples/aws-traffic-mirror-filters.json`: two filters as `aws ec2
/// describe-traffic-mirror-filters` prints them (the EC2 API's `DescribeTrafficMirrorFilters`
/// shape): both directions, rule numbers shared by the two lists, named and unnamed protocols,
/// port ranges, IPv6 prefixes, an "all protocols" rule with and without a Protocol of 0, tags and
/// descriptions.
fn sample() -> Value {
    serde_json::from_str(include_str!(
        "../../examples/aws-traffic-mirror-filters.json"
    ))
    .expect("the example is JSON")
}

fn import(value: &Value) -> Result<ImportedFilters, AwsImportError> {
    aws_filters_to_toml(&value.to_string())
}

/// The imported filters in a whole config whose sessions use them, parsed by the config crate.
fn parsed(imported: &ImportedFilters) -> crate::ValidatedConfig {
    let sessions: String = imported
        .filters
        .iter()
        .enumerate()
        .map(|(i, name)| {
            format!(
                "[[session]]\nname = \"s{i}\"\nvni = {}\ntools = [\"ids\"]\nfilter = \"{name}\"\n\
                 source_ips = [\"10.0.1.10\"]\n",
                i + 1
            )
        })
        .collect();
    let text = format!(
        "[broker]\nname = \"aws\"\n[[ingress]]\nname = \"mirror\"\ndevice = \"net_null0\"\n\
         [decap]\nallowed_sources = [\"10.0.0.0/8\"]\n{sessions}\
         [[tool_group]]\nname = \"ids\"\nports = [{{ name = \"ids-1\", device = \"net_null1\" }}]\n\n{}",
        imported.toml
    );
    let config = crate::parse(&text, None).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    config
}

fn net(text: &str) -> Option<IpNet> {
    Some(text.parse().unwrap())
}

fn ports(first: u16, last: u16) -> Option<PortRange> {
    Some(PortRange { first, last })
}

fn rule(number: u16, action: Action, direction: Direction) -> Rule {
    Rule {
        number,
        action,
        direction: Some(direction),
        protocol: None,
        src_cidr: None,
        dst_cidr: None,
        src_ports: None,
        dst_ports: None,
        description: None,
    }
}

#[test]
fn both_directions_merged_renumbered_and_parsed_by_the_config() {
    let imported = import(&sample()).unwrap();
    assert_eq!(
        imported.filters,
        ["tmf-0a1b2c3d4e5f60718", "tmf-0fedcba9876543210"]
    );
    assert_eq!(imported.rules, 8);
    let config = parsed(&imported);
    let [web, gre] = &config.filters[..] else {
        panic!("two filters: {:?}", config.filters);
    };
    use Action::{Accept, Reject};
    use Direction::{Egress, Ingress};
    // (AWS number, inbound first): in 100, out 100, out 150, in 200, out 200, in 300.
    let expected = vec![
        Rule {
            protocol: Some(6),
            src_cidr: net("0.0.0.0/0"),
            dst_cidr: net("10.0.1.0/24"),
            dst_ports: ports(443, 443),
            description: Some("HTTPS in".into()),
            ..rule(10, Accept, Ingress)
        },
        Rule {
            protocol: Some(6),
            src_cidr: net("10.0.1.0/24"),
            dst_cidr: net("0.0.0.0/0"),
            src_ports: ports(443, 443),
            dst_ports: ports(1024, 65535),
            ..rule(20, Accept, Egress)
        },
        Rule {
            protocol: Some(1),
            src_cidr: net("0.0.0.0/0"),
            dst_cidr: net("0.0.0.0/0"),
            description: Some("no \"pings\"\nout".into()),
            ..rule(30, Reject, Egress)
        },
        Rule {
            protocol: Some(17),
            src_cidr: net("0.0.0.0/0"),
            dst_cidr: net("0.0.0.0/0"),
            src_ports: ports(53, 53),
            description: Some("no DNS answers".into()),
            ..rule(40, Reject, Ingress)
        },
        Rule {
            protocol: Some(58),
            src_cidr: net("2600:1f18:1234::/48"),
            dst_cidr: net("::/0"),
            ..rule(50, Accept, Egress)
        },
        Rule {
            src_cidr: net("::/0"),
            dst_cidr: net("2600:1f18:1234::/48"),
            ..rule(60, Accept, Ingress)
        },
    ];
    assert_eq!(web.rules, expected);
    assert_eq!(web.default, Reject, "AWS mirrors nothing no rule accepts");
    // Protocol 47 stays a number; protocol 0 is "all protocols".
    assert_eq!(
        gre.rules,
        vec![
            Rule {
                protocol: Some(47),
                src_cidr: net("0.0.0.0/0"),
                dst_cidr: net("0.0.0.0/0"),
                ..rule(10, Accept, Ingress)
            },
            Rule {
                src_cidr: net("0.0.0.0/0"),
                dst_cidr: net("0.0.0.0/0"),
                ..rule(20, Accept, Egress)
            },
        ]
    );

    // Named where the config has a name; the comments keep AWS's numbers and IDs.
    let text = &imported.toml;
    for line in [
        "protocol = \"tcp\"",
        "protocol = \"udp\"",
        "protocol = \"icmp\"",
        "protocol = \"icmpv6\"",
        "protocol = 47",
        "# AWS traffic mirror filter tmf-0a1b2c3d4e5f60718 (Name: web mirror)",
        "# web servers",
        "# AWS inbound rule 100 (tmfr-00000000000000001)",
        "# AWS outbound rule 150 (tmfr-00000000000000005)",
        "# AWS outbound rule 10 (tmfr-00000000000000008), protocol 0 read as all protocols",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in:\n{text}");
    }
    assert!(!text.contains("team"), "tags other than Name are left out");
}

#[test]
fn an_empty_answer_imports_nothing() {
    let imported = import(&json!({"TrafficMirrorFilters": []})).unwrap();
    assert_eq!(imported.toml, "");
    assert!(imported.filters.is_empty());
}

#[test]
fn a_filter_without_rules_rejects_everything() {
    let imported = import(&json!({"TrafficMirrorFilters": [
        {"TrafficMirrorFilterId": "tmf-1", "IngressFilterRules": [], "EgressFilterRules": []}
    ]}))
    .unwrap();
    let config = parsed(&imported);
    assert!(config.filters[0].rules.is_empty());
    assert_eq!(config.filters[0].default, Action::Reject);
}

#[test]
fn past_3276_rules_the_numbers_step_by_one() {
    let rules = |direction: &str| -> Vec<Value> {
        (1..=2000)
            .map(
                |n| json!({"TrafficDirection": direction, "RuleNumber": n, "RuleAction": "accept"}),
            )
            .collect()
    };
    let imported = import(&json!({"TrafficMirrorFilters": [{
        "TrafficMirrorFilterId": "tmf-big",
        "IngressFilterRules": rules("ingress"),
        "EgressFilterRules": rules("egress"),
    }]}))
    .unwrap();
    let config = parsed(&imported);
    let numbered: Vec<(u16, Option<Direction>)> = config.filters[0]
        .rules
        .iter()
        .map(|r| (r.number, r.direction))
        .collect();
    assert_eq!(numbered.len(), 4000);
    assert_eq!(
        &numbered[..4],
        [
            (1, Some(Direction::Ingress)),
            (2, Some(Direction::Egress)),
            (3, Some(Direction::Ingress)),
            (4, Some(Direction::Egress))
        ]
    );
    assert_eq!(numbered[3999], (4000, Some(Direction::Egress)));
}

/// The sample with `edit` applied to it, imported: the error it must give.
fn refused(edit: impl FnOnce(&mut Value)) -> AwsImportError {
    let mut value = sample();
    edit(&mut value);
    import(&value).expect_err("refused")
}

fn first_rule(value: &mut Value) -> &mut Value {
    &mut value["TrafficMirrorFilters"][0]["IngressFilterRules"][0]
}

#[test]
fn what_a_broker_filter_cannot_express_is_refused_by_name() {
    let e = refused(|v| {
        v["TrafficMirrorFilters"][0]["NetworkServices"] = json!(["amazon-dns"]);
    });
    assert_eq!(
        e.at,
        "TrafficMirrorFilters[0] (tmf-0a1b2c3d4e5f60718).NetworkServices"
    );
    assert!(e.message.contains("amazon-dns"), "{e}");

    // A field this import does not know (one AWS might add) is refused, never dropped.
    let e = refused(|v| first_rule(v)["PacketLength"] = json!(128));
    assert_eq!(
        e.at,
        "TrafficMirrorFilters[0] (tmf-0a1b2c3d4e5f60718).IngressFilterRules[0] (rule 100).PacketLength"
    );
    assert!(e.message.contains("not one this import understands"), "{e}");
    let e = refused(|v| v["TrafficMirrorFilters"][1]["Rules"] = json!([]));
    assert!(e.at.ends_with("(tmf-0fedcba9876543210).Rules"), "{e}");

    let e = refused(|v| first_rule(v)["Protocol"] = json!(1));
    assert!(e.at.ends_with("(rule 100).DestinationPortRange"), "{e}");
    assert!(e.message.contains("only for TCP (6) and UDP (17)"), "{e}");

    let e = refused(|v| first_rule(v)["TrafficDirection"] = json!("egress"));
    assert!(e.at.ends_with("(rule 100).TrafficDirection"), "{e}");

    let e = refused(|v| v["NextToken"] = json!("eyJ2IjoiMiJ9"));
    assert_eq!(e.at, "NextToken");
    assert!(e.message.contains("--max-items"), "{e}");
}

#[test]
fn malformed_answers_are_refused_with_the_place_named() {
    type Edit = Box<dyn FnOnce(&mut Value)>;
    let cases: Vec<(Edit, &str, &str)> = vec![
        (
            Box::new(|v| first_rule(v)["DestinationCidrBlock"] = json!("10.0.1.5/24")),
            "(rule 100).DestinationCidrBlock",
            "bits set after the prefix length",
        ),
        (
            Box::new(|v| first_rule(v)["SourceCidrBlock"] = json!("::/0")),
            "(rule 100)",
            "two address families",
        ),
        (
            Box::new(|v| first_rule(v)["RuleNumber"] = json!(32767)),
            "IngressFilterRules[0].RuleNumber",
            "1..=32766",
        ),
        (
            Box::new(|v| first_rule(v)["RuleNumber"] = json!(200)),
            "IngressFilterRules[1] (rule 200)",
            "rule number 200 appears twice",
        ),
        (
            Box::new(|v| first_rule(v)["RuleAction"] = json!("drop")),
            "(rule 100).RuleAction",
            "\"accept\" or \"reject\"",
        ),
        (
            Box::new(|v| {
                first_rule(v)["DestinationPortRange"] = json!({"FromPort": 444, "ToPort": 443})
            }),
            "(rule 100).DestinationPortRange",
            "FromPort 444 is after ToPort 443",
        ),
        (
            Box::new(|v| first_rule(v)["Protocol"] = json!("tcp")),
            "(rule 100).Protocol",
            "expected an integer",
        ),
        (
            Box::new(|v| {
                v["TrafficMirrorFilters"][1]["TrafficMirrorFilterId"] = json!("web mirror")
            }),
            "TrafficMirrorFilters[1] (web mirror)",
            "cannot be a filter name",
        ),
        (
            Box::new(|v| {
                let copy = v["TrafficMirrorFilters"][0].clone();
                v["TrafficMirrorFilters"][1] = copy;
            }),
            "TrafficMirrorFilters[1]",
            "appears twice",
        ),
        (
            Box::new(|v| *v = json!({"TrafficMirrorFilter": {}})),
            "the answer.TrafficMirrorFilter",
            "not one this import understands",
        ),
        (
            Box::new(|v| *v = json!({})),
            "the answer",
            "describe-traffic-mirror-filters",
        ),
    ];
    for (edit, at, message) in cases {
        let e = refused(edit);
        assert!(
            e.at.ends_with(at) && e.message.contains(message),
            "expected {at:?}: …{message}…, got {e}"
        );
    }
    let e = aws_filters_to_toml("{\"TrafficMirrorFilters\": [").unwrap_err();
    assert!(e.at.starts_with("line 1 column"), "{e}");
    assert!(e.message.starts_with("not JSON"), "{e}");
}
