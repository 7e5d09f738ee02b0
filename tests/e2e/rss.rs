//! `rss = "inner"` on a device that cannot hash inner headers: the broker refuses to start and
//! says why, rather than run with an order it does not have.

use std::time::Duration;

use crate::support::*;

#[test]
fn inner_rss_on_a_device_without_flow_rules_is_refused_at_start() {
    let s = Scratch::new("rss-inner");
    let capture = repo_root().join("samples/aws-mirror.pcap");
    let config = s.write(
        "rss.toml",
        &format!(
            r#"
[broker]
name = "e2e-rss"
stop_when_idle = "1s"
metrics = ""
[dpdk]
eal_args = {EAL_ARGS}
[[ingress]]
name = "mirror0"
device = "net_pcap0,rx_pcap={capture},rx_pcap={capture}"
queues = 2
rss = "inner"
[decap]
allowed_sources = ["10.0.0.0/8"]
[[session]]
name = "web"
vni = 101
tools = ["ids"]
[[tool_group]]
name = "ids"
ports = [{{ name = "ids-1", device = "net_null0,no-rx=1" }}]
"#,
            capture = capture.display()
        ),
    );
    let run = run_broker(&config, &s.dir, Duration::from_secs(60));
    assert!(!run.success, "started anyway:\n{}", run.stderr);
    for needed in [
        "ingress mirror0: rss = \"inner\" needs a NIC that hashes the inner headers",
        "set rss = \"outer\"",
        "rte_flow_validate refused the rule for VXLAN on UDP 4789 over IPv4",
    ] {
        assert!(
            run.stderr.contains(needed),
            "no {needed:?} in:\n{}",
            run.stderr
        );
    }
    assert!(
        !run.stderr.contains("worker(s) running"),
        "no worker starts:\n{}",
        run.stderr
    );
}
