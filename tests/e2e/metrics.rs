//! Metrics and status end to end: the lab on an endless (`infinite_rx`) capture, scraped by a
//! real Prometheus (Debian's `prometheus`), which must answer every expression of the Grafana
//! dashboard with data; `promtool check metrics` on a scrape; `broker status` against the live
//! endpoint.

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// A child process killed (and reaped) when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into()
}

/// `GET url` → (status code, body), or the transport error.
fn get(url: &str, query: &[(&str, &str)]) -> Result<(u16, String), String> {
    let mut request = agent().get(url);
    for (k, v) in query {
        request = request.query(*k, *v);
    }
    let mut response = request.call().map_err(|e| e.to_string())?;
    let code = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((code, body))
}

/// Waits until `url` answers 200, or panics after `deadline` with what `log` holds.
fn wait_for(url: &str, deadline: Duration, log: &Path) {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if let Ok((200, _)) = get(url, &[]) {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "{url} did not answer within {deadline:?}; log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Replaces `from` in `text`, which must contain it (the lab config changed otherwise).
fn replace(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "config/lab.toml no longer has {from:?}"
    );
    text.replace(from, to)
}

/// The lab config, replaying `capture` forever into `net_null` analyzer ports, with the
/// endpoint on `metrics`.
pub(crate) fn lab_config(capture: &Path, metrics: SocketAddr) -> String {
    let lab =
        std::fs::read_to_string(repo_root().join("config/lab.toml")).expect("read config/lab.toml");
    let mut text = replace(
        &lab,
        "rx_pcap=samples/aws-mirror.pcap\"",
        &format!("rx_pcap={},infinite_rx=1\"", capture.display()),
    );
    text = replace(&text, "stop_when_idle = \"2s\"\n", "");
    text = replace(
        &text,
        "metrics = \"127.0.0.1:9477\"",
        &format!("metrics = \"{metrics}\""),
    );
    text = replace(
        &text,
        r#"eal_args = ["--no-huge", "-m", "1024", "--no-pci", "--no-shconf", "--no-telemetry"]"#,
        &format!("eal_args = {EAL_ARGS}"),
    );
    // The endless replay would fill the disk through pcap outputs: analyzers are null devices.
    text = replace(&text, "net_pcap1,tx_pcap=out/ids-1.pcap", "net_null1");
    text = replace(&text, "net_pcap2,tx_pcap=out/ids-2.pcap", "net_null2");
    replace(&text, "net_pcap3,tx_pcap=out/recorder.pcap", "net_null3")
}

/// A Grafana template variable: its name and `label_values(selector, label)` query.
struct Variable {
    name: String,
    selector: String,
    label: String,
}

/// The dashboard's query variables and every target expression.
fn dashboard() -> (Vec<Variable>, Vec<(String, String)>) {
    let path = repo_root().join("dashboards/broker.json");
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read the dashboard"))
            .expect("the dashboard is JSON");
    let mut variables = Vec::new();
    for v in json["templating"]["list"]
        .as_array()
        .expect("templating.list")
    {
        if v["type"] != "query" {
            continue;
        }
        let query = v["query"]["query"]
            .as_str()
            .or(v["query"].as_str())
            .expect("a variable query");
        let inner = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .unwrap_or_else(|| panic!("variable query {query:?} is not label_values(…)"));
        let (selector, label) = inner
            .rsplit_once(',')
            .expect("label_values(selector, label)");
        variables.push(Variable {
            name: v["name"].as_str().expect("variable name").to_owned(),
            selector: selector.trim().to_owned(),
            label: label.trim().to_owned(),
        });
    }
    let mut expressions = Vec::new();
    let mut panels: Vec<&Value> = json["panels"].as_array().expect("panels").iter().collect();
    while let Some(panel) = panels.pop() {
        panels.extend(panel["panels"].as_array().into_iter().flatten());
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("every target has an expr");
            expressions.push((
                panel["title"].as_str().unwrap_or_default().to_owned(),
                expr.to_owned(),
            ));
        }
    }
    (variables, expressions)
}

/// Replaces Grafana's variables in `expr`: `$__rate_interval` by a window holding several 1 s
/// scrapes, each template variable by the regex of its values (as Grafana does for a multi-value
/// selection).
fn substitute(expr: &str, values: &[(String, String)]) -> String {
    let mut out = expr.replace("$__rate_interval", "10s");
    // Longest names first, so `$tool_group` is not cut by a `$tool`.
    let mut values: Vec<&(String, String)> = values.iter().collect();
    values.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    for (name, regex) in values {
        out = out
            .replace(&format!("${{{name}}}"), regex)
            .replace(&format!("${name}"), regex);
    }
    out
}

/// Escapes a label value for a PromQL regex inside a double-quoted string.
fn regex_escape(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push_str("\\\\");
        }
        out.push(c);
    }
    out
}

/// Evaluates `query` at Prometheus: the result vector, or why there is none.
fn query(prometheus: &str, query: &str) -> Result<Vec<Value>, String> {
    let (code, body) = get(&format!("{prometheus}/api/v1/query"), &[("query", query)])?;
    let json: Value =
        serde_json::from_str(&body).map_err(|e| format!("HTTP {code}: {e}: {body}"))?;
    if json["status"] != "success" {
        return Err(format!(
            "HTTP {code}: {} {}",
            json["errorType"], json["error"]
        ));
    }
    let result = json["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if result.is_empty() {
        Err("no series".into())
    } else {
        Ok(result)
    }
}

/// The metric families of a Prometheus text exposition.
fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_real_prometheus_answers_every_dashboard_expression_and_status_shows_the_lab() {
    let s = Scratch::new("metrics");
    let capture = generate(&s.path("mirror.pcap"), "lab", None, &[]).remove(0);
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    // The lab, with an address on its ingress port (the broker answering for it) and a tunnel
    // tool port whose next hop never answers: the network panels and rules have series.
    let text = replace(
        &lab_config(&capture, metrics),
        "name = \"mirror0\"\n",
        "name = \"mirror0\"\naddress = [\"10.0.9.10/24\"]\nkernel = \"none\"\n",
    ) + "[[tool_group]]\nname = \"analyzers\"\n\
         ports = [{ name = \"net-1\", tunnel = \"vxlan\", remote = \"10.0.9.21\", via = \"mirror0\" }]\n";
    let config = s.write("lab.toml", &text);
    let broker_log = s.path("broker.log");
    let broker = Command::new(env!("CARGO_BIN_EXE_broker"))
        .arg("run")
        .arg("--config")
        .arg(&config)
        .arg("--summary-json")
        .arg(s.path("summary.json"))
        .current_dir(&s.dir)
        .stdout(Stdio::from(
            std::fs::File::create(s.path("broker.out")).unwrap(),
        ))
        .stderr(Stdio::from(std::fs::File::create(&broker_log).unwrap()))
        .spawn()
        .expect("start broker");
    let mut broker = Reaped(broker);
    wait_for(
        &format!("http://{metrics}/status"),
        Duration::from_secs(30),
        &broker_log,
    );

    // promtool's lint of a live scrape, and every family documented in the README.
    std::thread::sleep(Duration::from_millis(1500)); // at least one publication past the first
    let (code, scrape) = get(&format!("http://{metrics}/metrics"), &[]).expect("scrape");
    assert_eq!(code, 200);
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool (Debian package prometheus)");
    std::io::Write::write_all(&mut promtool.stdin.take().unwrap(), scrape.as_bytes()).unwrap();
    let lint = promtool.wait_with_output().unwrap();
    assert!(
        lint.status.success() && lint.stdout.is_empty() && lint.stderr.is_empty(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    let scraped = families(&scrape);
    assert!(scraped.len() > 40, "{scraped:?}");
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("read README.md");
    for family in &scraped {
        assert!(
            readme.contains(&format!("| `{family}` |")),
            "{family} is not in the README's metrics table"
        );
    }
    // The lab's table (the default 2^20 entries, 8 MiB) on huge pages, where the kernel has them.
    let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .is_ok_and(|mode| !mode.contains("[never]"));
    let huge = format!(
        "broker_dedup_table_huge_page_bytes {}",
        if thp { 8 << 20 } else { 0 }
    );
    for line in [
        huge.as_str(),
        "broker_port_link_up{port=\"mirror0\"} 1",
        "broker_config_generation 1",
        "broker_dedup_window_seconds 0.05",
        "broker_tunnel_info{tool_group=\"analyzers\",port=\"net-1\",encapsulation=\"vxlan\",remote=\"10.0.9.21\",via=\"mirror0\",next_hop=\"10.0.9.21\"} 1",
        "broker_tunnel_next_hop_resolved{tool_group=\"analyzers\",port=\"net-1\"} 0",
        "broker_tunnel_next_hop_age_seconds{tool_group=\"analyzers\",port=\"net-1\"} NaN",
        "broker_tunnel_max_inner_frame_bytes{tool_group=\"analyzers\",port=\"net-1\"} 1464",
        "broker_tool_port_live{tool_group=\"analyzers\",port=\"net-1\"} 0",
    ] {
        assert!(
            scrape.lines().any(|l| l == line),
            "{line:?} not in the scrape"
        );
    }
    // The silent next hop is asked once a second, through the ingress port.
    let probes = scrape
        .lines()
        .find_map(|l| l.strip_prefix("broker_exception_neighbour_probes_total{port=\"mirror0\"} "))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(probes.is_some_and(|n| n >= 1), "probes {probes:?}");

    // `broker status`: JSON and table, from the address and from the config.
    let status = Command::new(env!("CARGO_BIN_EXE_broker"))
        .args(["status", "--json", "--address", &metrics.to_string()])
        .output()
        .expect("run broker status");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let json: Value =
        serde_json::from_slice(&status.stdout).expect("broker status --json prints JSON");
    assert_eq!(json["broker"], "lab");
    assert_eq!(json["config"]["generation"], 1);
    assert_eq!(
        json["config"]["path"].as_str(),
        Some(config.to_str().unwrap())
    );
    assert!(
        json["dpdk_version"]
            .as_str()
            .unwrap()
            .starts_with("DPDK 22.11"),
        "{json}"
    );
    let ports = json["ports"].as_array().unwrap();
    let names: Vec<&str> = ports.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["mirror0", "ids-1", "ids-2", "recorder-1"]);
    assert!(ports.iter().all(|p| p["link"]["up"] == true), "{json}");
    assert!(ports[0]["rx_packets"].as_u64().unwrap() > 0, "{json}");
    let workers = json["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 1);
    assert_eq!(
        (workers[0]["port"].as_str(), workers[0]["queue"].as_u64()),
        (Some("mirror0"), Some(0))
    );
    let control_cpu = json["control"]["cpu"].as_u64().expect("control CPU");
    assert_ne!(workers[0]["cpu"].as_u64(), None);
    assert_ne!(
        workers[0]["lcore"], json["control"]["lcore"],
        "workers are not on the main lcore"
    );
    // The endpoint thread runs on the control core only (inherited from the main lcore).
    assert_eq!(
        json["control"]["endpoint_cpus"],
        control_cpu.to_string(),
        "{json}"
    );
    let groups = json["tool_groups"].as_array().unwrap();
    assert_eq!(groups[0]["name"], "ids");
    assert_eq!(groups[0]["ports"].as_array().unwrap().len(), 2);
    // Every cabled port is live; the tunnel port is not (its next hop never answers).
    let live: Vec<(&str, bool)> = groups
        .iter()
        .flat_map(|g| g["ports"].as_array().unwrap())
        .map(|p| (p["name"].as_str().unwrap(), p["live"] == true))
        .collect();
    assert_eq!(
        live,
        [
            ("ids-1", true),
            ("ids-2", true),
            ("recorder-1", true),
            ("net-1", false)
        ]
    );
    let tunnels = json["tunnels"].as_array().unwrap();
    assert_eq!(tunnels.len(), 1, "{json}");
    assert_eq!(tunnels[0]["next_hop"], "10.0.9.21");
    assert_eq!(tunnels[0]["next_hop_answers"], false);
    assert_eq!(json["addressed"][0]["addresses"][0], "10.0.9.10/24");
    assert!(json["received"].as_u64().unwrap() > 0);
    let outcome_sum: u64 = json["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["packets"].as_u64().unwrap())
        .sum();
    assert!(outcome_sum > 0);
    let table = Command::new(env!("CARGO_BIN_EXE_broker"))
        .args(["status", "--config"])
        .arg(&config)
        .output()
        .expect("run broker status");
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("mirror0") && table.contains("up 10 Gb/s") && table.contains("2/2 live"),
        "{table}"
    );

    // A real Prometheus scraping every second.
    let prometheus_port = free_port();
    let shipped =
        std::fs::read_to_string(repo_root().join("dashboards/prometheus/prometheus.yml")).unwrap();
    let mut prometheus_config = replace(&shipped, "scrape_interval: 10s", "scrape_interval: 1s");
    prometheus_config = replace(
        &prometheus_config,
        "evaluation_interval: 10s",
        "evaluation_interval: 1s",
    );
    prometheus_config = replace(&prometheus_config, "127.0.0.1:9477", &metrics.to_string());
    let prometheus_yml = s.write("prometheus.yml", &prometheus_config);
    // The shipped rules, beside the config as `rule_files` expects them.
    let rules =
        std::fs::read_to_string(repo_root().join("dashboards/prometheus/alerts.yml")).unwrap();
    s.write("alerts.yml", &rules);
    let prometheus_log = s.path("prometheus.log");
    let prometheus = Command::new("prometheus")
        .arg(format!("--config.file={}", prometheus_yml.display()))
        .arg(format!("--storage.tsdb.path={}", s.path("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&prometheus_log).unwrap()))
        .spawn()
        .expect("start prometheus (Debian package prometheus)");
    let _prometheus = Reaped(prometheus);
    let api = format!("http://127.0.0.1:{prometheus_port}");
    wait_for(
        &format!("{api}/-/ready"),
        Duration::from_secs(30),
        &prometheus_log,
    );

    let (variables, expressions) = dashboard();
    assert!(expressions.len() >= 20, "{} expressions", expressions.len());
    assert_eq!(
        variables
            .iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>(),
        ["instance", "tool_group"]
    );
    let deadline = Instant::now() + Duration::from_secs(40);
    let failures = loop {
        let mut failures = Vec::new();
        // Variables in order (a later one may use an earlier one), then every panel's targets.
        let mut values: Vec<(String, String)> = Vec::new();
        for v in &variables {
            let selector = substitute(&v.selector, &values);
            match query(&api, &format!("group by ({}) ({selector})", v.label)) {
                Ok(series) => {
                    let found: BTreeSet<String> = series
                        .iter()
                        .filter_map(|s| s["metric"][v.label.as_str()].as_str())
                        .map(str::to_owned)
                        .collect();
                    let regex = found
                        .iter()
                        .map(|x| regex_escape(x))
                        .collect::<Vec<_>>()
                        .join("|");
                    values.push((v.name.clone(), format!("({regex})")));
                }
                Err(e) => {
                    failures.push(format!("variable {}: {e}", v.name));
                    values.push((v.name.clone(), ".*".into()));
                }
            }
        }
        for (title, expr) in &expressions {
            let promql = substitute(expr, &values);
            if let Err(e) = query(&api, &promql) {
                failures.push(format!("{title}: {promql}: {e}"));
            }
        }
        if failures.is_empty() || Instant::now() > deadline {
            break failures;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    assert!(
        failures.is_empty(),
        "dashboard expressions without data:\n{}\nprometheus log:\n{}",
        failures.join("\n"),
        std::fs::read_to_string(&prometheus_log).unwrap_or_default()
    );
    let instances = query(
        &api,
        &format!("up{{job=\"broker\",instance=\"{metrics}\"}} == 1"),
    )
    .expect("scraped");
    assert_eq!(instances.len(), 1);

    // Every alert rule loaded and evaluated on the live broker's series without error, and none
    // fires on this healthy lab (rules with a `for:` may be pending, never firing this soon).
    let alerts = crate::alerts::alert_names(&rules);
    let deadline = Instant::now() + Duration::from_secs(30);
    let problems = loop {
        let (_, body) = get(&format!("{api}/api/v1/rules"), &[]).expect("rules API");
        let json: Value = serde_json::from_str(&body).expect("rules JSON");
        let loaded: Vec<&Value> = json["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .collect();
        let mut problems = Vec::new();
        for name in &alerts {
            match loaded.iter().find(|r| r["name"] == name.as_str()) {
                None => problems.push(format!("{name}: not loaded")),
                Some(r)
                    if r["lastEvaluation"]
                        .as_str()
                        .is_none_or(|t| t.starts_with("0001")) =>
                {
                    problems.push(format!("{name}: not evaluated yet"))
                }
                Some(r) if r["health"] != "ok" || r["state"] == "firing" => problems.push(format!(
                    "{name}: health {} ({}), state {}",
                    r["health"], r["lastError"], r["state"]
                )),
                Some(_) => {}
            }
        }
        if problems.is_empty() || Instant::now() > deadline {
            break problems;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(problems.is_empty(), "alert rules: {problems:#?}");

    // The broker stops cleanly on SIGTERM and its exit summary holds the identities.
    let id = broker.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-s", "TERM", &id])
            .status()
            .unwrap()
            .success()
    );
    let start = Instant::now();
    let exit = loop {
        if let Some(status) = broker.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "broker did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        exit.success(),
        "broker exit {exit:?}:\n{}",
        std::fs::read_to_string(&broker_log).unwrap_or_default()
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(s.path("summary.json")).unwrap()).unwrap();
    let received = summary["received"].as_u64().unwrap();
    assert!(
        received >= json["received"].as_u64().unwrap(),
        "the summary counts on from the status"
    );
}

#[test]
fn metrics_off_means_no_listener() {
    let s = Scratch::new("metrics-off");
    let capture = generate(&s.path("mirror.pcap"), "lab", None, &[]).remove(0);
    let port: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let text = replace(
        &lab_config(&capture, port),
        &format!("metrics = \"{port}\""),
        "metrics = \"\"",
    );
    let config = s.write(
        "lab.toml",
        &text
            .replace(",infinite_rx=1", "")
            .replace("[broker]\n", "[broker]\nstop_when_idle = \"1s\"\n"),
    );
    let run = run_broker(&config, &s.dir, Duration::from_secs(60));
    run.assert_clean();
    assert!(
        !run.stderr.contains("metrics and status on"),
        "{}",
        run.stderr
    );
    let status = Command::new(env!("CARGO_BIN_EXE_broker"))
        .args(["status", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!status.status.success());
    assert!(
        String::from_utf8_lossy(&status.stderr).contains("metrics is off"),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
}
