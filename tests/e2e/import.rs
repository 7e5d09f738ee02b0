//! `broker import aws-filters`: the real binary converts the shipped example of `aws ec2
//! describe-traffic-mirror-filters` output, and `broker check` accepts a config that uses the
//! result; what a filter cannot express is refused with the field named and exit status 1.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::*;

fn import(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_broker"))
        .args(["import", "aws-filters"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run broker import");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .expect("write stdin");
    drop(input);
    child.wait_with_output().expect("broker import")
}

#[test]
fn imported_aws_filters_pass_broker_check_and_unexpressible_ones_are_refused() {
    let s = Scratch::new("import");
    let example = repo_root().join("config/examples/aws-traffic-mirror-filters.json");
    let out = import(&[example.to_str().unwrap()], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("imported 2 filter(s) with 8 rule(s)"),
        "{stderr}"
    );
    let filters = String::from_utf8(out.stdout).expect("UTF-8 TOML");

    let config = s.write(
        "aws.toml",
        &format!(
            r#"[broker]
name = "imported"
[[ingress]]
name = "mirror"
device = "net_null0"
[decap]
allowed_sources = ["10.0.0.0/8"]
[[session]]
name = "web"
vni = 1
tools = ["ids"]
filter = "tmf-0a1b2c3d4e5f60718"
source_ips = ["10.0.1.10", "2600:1f18:1234::10"]
[[session]]
name = "gre"
vni = 2
tools = ["ids"]
filter = "tmf-0fedcba9876543210"
source_ips = ["10.0.2.20"]
[[tool_group]]
name = "ids"
ports = [{{ name = "ids-1", device = "net_null1" }}]

{filters}"#
        ),
    );
    let check = check_config(&config);
    let described = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{}\n{described}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        check.stderr.is_empty(),
        "no warnings: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    for rule in [
        "#10 accept direction=ingress protocol=tcp src_cidr=0.0.0.0/0 dst_cidr=10.0.1.0/24 dst_ports=443 \"HTTPS in\"",
        "#20 accept direction=egress protocol=tcp src_cidr=10.0.1.0/24 src_ports=443 dst_cidr=0.0.0.0/0 dst_ports=1024-65535",
        "#60 accept direction=ingress src_cidr=::/0 dst_cidr=2600:1f18:1234::/48",
        "#10 accept direction=ingress protocol=47",
    ] {
        assert!(described.contains(rule), "{rule:?} in:\n{described}");
    }

    // From standard input; refused, naming the filter and the field.
    let json = std::fs::read_to_string(&example).unwrap().replacen(
        "\"NetworkServices\": []",
        "\"NetworkServices\": [\"amazon-dns\"]",
        1,
    );
    let refused = import(&["-"], Some(&json));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(refused.stdout.is_empty(), "nothing printed when refused");
    assert!(
        stderr.contains(
            "standard input: not imported: TrafficMirrorFilters[0] (tmf-0a1b2c3d4e5f60718).NetworkServices"
        ),
        "{stderr}"
    );
}
