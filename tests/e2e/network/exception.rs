//! The exception path (`kernel = "tap"`) and the health check, from the peer namespace as a load
//! balancer would reach them: ping to both of the port's addresses, `GET` and `HEAD /healthz` on
//! the health listener through the data port (200 while the tool group has a live port, 503
//! with a reason when it has none, 200 again when it returns), nothing else there (a `POST
//! /reload` changes nothing), and the admin endpoint (on the namespace's loopback) out of reach.
//! Every such packet is counted under the outcome `control`.

use std::time::{Duration, Instant};

use super::scenario::{Scenario, config_text};
use super::topology::Netlab;
use super::traffic::{ADMIN, Middle, wait_for_ports};
use crate::support::outcome_count;

/// Polls `/healthz` from the peer until it answers `code`; returns the body.
fn wait_for_health(lab: &Netlab, url: &str, code: u16, deadline: Duration) -> String {
    let start = Instant::now();
    loop {
        let (got, body) = lab.curl("peer", "GET", url);
        if got == code {
            return body;
        }
        assert!(
            start.elapsed() < deadline,
            "{url} from the peer answered {got} ({body:?}), not {code}, for {deadline:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn ping_and_health_checks_reach_the_kernel_side_of_the_data_port() {
    let Some(mut run) = Scenario::start(
        "exc",
        Middle::Broker,
        |lab| {
            let a1 = lab.host("a1").ipv4;
            config_text(
                lab,
                &[(
                    "ids",
                    vec![format!(
                        r#"{{ name = "ids-1", tunnel = "vxlan", remote = "{a1}", via = "eni" }}"#
                    )],
                )],
                None,
            )
        },
        &["ids-1"],
    ) else {
        return;
    };
    let broker = run.lab.host("broker").clone();
    for address in [broker.v4(), broker.v6()] {
        assert_eq!(run.lab.ping("peer", address, 3), 3, "ping {address}");
    }
    let health = format!("http://{}:8080/healthz", broker.ipv4);
    let (code, body) = run.lab.curl("peer", "GET", &health);
    assert_eq!(code, 200, "GET {health}: {body}");
    assert_eq!(
        run.lab.curl("peer", "HEAD", &health).0,
        200,
        "HEAD {health}"
    );
    let health6 = format!("http://[{}]:8080/healthz", broker.ipv6);
    assert_eq!(
        run.lab.curl("peer", "GET", &health6).0,
        200,
        "GET {health6}"
    );

    // The health listener answers /healthz and nothing else.
    let reload = format!("http://{}:8080/reload", broker.ipv4);
    let (code, _) = run.lab.curl("peer", "POST", &reload);
    assert!(
        !(200..300).contains(&code),
        "POST /reload on the health listener answered {code}"
    );
    let admin = ADMIN.parse().unwrap();
    let status = run.broker().status(admin);
    assert_eq!(
        status["config"]["generation"], 1,
        "nothing was reloaded: {}",
        status["config"]
    );
    // The admin endpoint listens on the namespace's loopback only.
    let (code, _) = run.lab.curl(
        "peer",
        "GET",
        &format!("http://{}:{}/status", broker.ipv4, admin.port()),
    );
    assert_eq!(code, 0, "the admin endpoint is not reachable from the peer");

    // The group's only analyzer disappears: 503 with a reason naming the group; then back.
    run.lab.set_link("a1", false);
    wait_for_ports(
        run.broker(),
        admin,
        &["ids-1"],
        false,
        Duration::from_secs(60),
    );
    let body = wait_for_health(&run.lab, &health, 503, Duration::from_secs(5));
    assert!(
        body.contains("ids") && body.trim().lines().count() == 1,
        "a one-line reason naming the group: {body:?}"
    );
    run.lab.set_link("a1", true);
    wait_for_ports(
        run.broker(),
        admin,
        &["ids-1"],
        true,
        Duration::from_secs(60),
    );
    wait_for_health(&run.lab, &health, 200, Duration::from_secs(5));

    let stopped = run.stop();
    let ended = stopped.broker.as_ref().expect("the broker");
    assert!(
        outcome_count(&ended.summary, "control") >= 2 * 6,
        "ARP, ND, echo requests and TCP counted as control: {}",
        ended.summary["outcomes"]
    );
}
