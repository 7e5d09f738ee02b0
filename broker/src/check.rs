//! `broker check`: validate a config file, print what was understood (or why it is refused).
//!
//! # Design
//! The text form prints the config's own description ([`config::ValidatedConfig::describe`]),
//! or every problem with its source line and a caret. `--json` prints one [`CheckReport`] for
//! tools (CI, configuration management): whether the file is valid, every error and warning as
//! data, and a summary of what the broker would run. Its shape is stable: fields are added,
//! never renamed or removed, and `format` changes if that ever has to happen.
//!
//! # Limitations
//! The JSON summary names what an operator compares with their intent (ports, sessions, filters,
//! groups, dedup), not every setting: `broker check` without `--json` prints them all.

use std::path::Path;
use std::process::ExitCode;

use config::{ConfigError, Diagnostic, ToolOutput, ValidatedConfig};
use serde::Serialize;

/// Exit status of a config that does not validate: `EX_CONFIG` of sysexits.h, which
/// `RestartPreventExitStatus=` in the systemd unit keeps from being restarted.
pub const EXIT_CONFIG: u8 = 78;

/// Version of the [`CheckReport`] shape.
const FORMAT: u32 = 1;

/// What `broker check --json` prints.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub format: u32,
    pub file: String,
    pub valid: bool,
    /// Why the config is refused, in file order; empty when it is valid.
    pub errors: Vec<Problem>,
    /// What is legal but probably not meant, in file order.
    pub warnings: Vec<Problem>,
    /// What the broker would run; `null` when the config is refused.
    pub config: Option<ConfigSummary>,
}

/// One error or warning.
#[derive(Debug, Serialize)]
pub struct Problem {
    /// 1-based; `null` when the problem is not in the text (the file cannot be read).
    pub line: Option<usize>,
    /// 1-based, in characters.
    pub column: Option<usize>,
    /// `session[1] ("web").tools[0]`; empty for the whole file.
    pub key_path: String,
    pub message: String,
}

impl From<&Diagnostic> for Problem {
    fn from(d: &Diagnostic) -> Problem {
        Problem {
            line: d.line(),
            column: d.column(),
            key_path: d.key_path().to_owned(),
            message: d.message().to_owned(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ConfigSummary {
    /// `[broker] name`.
    pub name: String,
    /// The endpoint's address; `null` when off.
    pub metrics: Option<String>,
    /// The health listener's address; `null` when none.
    pub health: Option<String>,
    /// One per ingress RX queue.
    pub workers: u32,
    pub ingress: Vec<PortSummary>,
    pub uplinks: Vec<PortSummary>,
    pub sessions: Vec<SessionSummary>,
    pub filters: Vec<FilterSummary>,
    pub tool_groups: Vec<GroupSummary>,
    /// `null` when de-duplication is off.
    pub dedup: Option<DedupSummary>,
}

#[derive(Debug, Serialize)]
pub struct PortSummary {
    pub name: String,
    pub device: String,
    /// RX queues (ingress ports); 0 for uplinks.
    pub queues: u16,
}

#[derive(Debug, Serialize)]
pub struct SessionSummary {
    pub name: String,
    /// `null` for the default or untunnelled session.
    pub vni: Option<u32>,
    pub filter: Option<String>,
    pub tool_groups: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct FilterSummary {
    pub name: String,
    /// `accept` or `reject`.
    pub default: &'static str,
    pub rules: usize,
}

#[derive(Debug, Serialize)]
pub struct GroupSummary {
    pub name: String,
    pub balance: &'static str,
    pub dedup: bool,
    /// Bytes of each copy kept; `null`: whole frames.
    pub slice: Option<u16>,
    pub ports: Vec<ToolPortSummary>,
}

#[derive(Debug, Serialize)]
pub struct ToolPortSummary {
    pub name: String,
    /// The DPDK device of a cabled port; `null` for a tunnel.
    pub device: Option<String>,
    /// The encapsulation of a tunnel port (`vxlan`, `geneve`, `l2gre`, `erspan2`); `null` for a
    /// cabled one.
    pub tunnel: Option<&'static str>,
    /// The analyzer's address of a tunnel port.
    pub remote: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DedupSummary {
    pub window_seconds: f64,
    pub capacity: u32,
}

impl ConfigSummary {
    pub fn of(config: &ValidatedConfig) -> ConfigSummary {
        ConfigSummary {
            name: config.broker.name.clone(),
            metrics: config.broker.metrics.map(|a| a.to_string()),
            health: config.broker.health.map(|a| a.to_string()),
            workers: config.ingress.iter().map(|i| u32::from(i.queues)).sum(),
            ingress: config
                .ingress
                .iter()
                .map(|i| PortSummary {
                    name: i.name.clone(),
                    device: i.device.to_string(),
                    queues: i.queues,
                })
                .collect(),
            uplinks: config
                .uplinks
                .iter()
                .map(|u| PortSummary {
                    name: u.name.clone(),
                    device: u.device.to_string(),
                    queues: 0,
                })
                .collect(),
            sessions: config
                .sessions
                .iter()
                .map(|s| SessionSummary {
                    name: s.name.clone(),
                    vni: s.vni.map(|v| v.get()),
                    filter: s.filter.map(|f| config.filters[f.index()].name.clone()),
                    tool_groups: s
                        .tools
                        .iter()
                        .map(|g| config.tool_groups[g.index()].name.clone())
                        .collect(),
                })
                .collect(),
            filters: config
                .filters
                .iter()
                .map(|f| FilterSummary {
                    name: f.name.clone(),
                    default: f.default.as_str(),
                    rules: f.rules.len(),
                })
                .collect(),
            tool_groups: config
                .tool_groups
                .iter()
                .map(|g| GroupSummary {
                    name: g.name.clone(),
                    balance: g.balance.as_str(),
                    dedup: g.dedup && config.dedup.is_some(),
                    slice: g.slice,
                    ports: g
                        .ports
                        .iter()
                        .map(|p| {
                            let port = &config.tool_ports[p.index()];
                            let (device, tunnel, remote) = match &port.output {
                                ToolOutput::Device(device) => {
                                    (Some(device.to_string()), None, None)
                                }
                                ToolOutput::Tunnel(t) => (
                                    None,
                                    Some(t.encapsulation.as_str()),
                                    Some(t.remote.to_string()),
                                ),
                            };
                            ToolPortSummary {
                                name: port.name.clone(),
                                device,
                                tunnel,
                                remote,
                            }
                        })
                        .collect(),
                })
                .collect(),
            dedup: config.dedup.as_ref().map(|d| DedupSummary {
                window_seconds: d.window.as_secs_f64(),
                capacity: d.capacity,
            }),
        }
    }
}

impl CheckReport {
    /// The report of checking `path`: `checked` is what [`config::load_checked`] returned.
    pub fn new(path: &Path, checked: &Result<config::Checked, ConfigError>) -> CheckReport {
        let (errors, warnings, config) = match checked {
            Ok(checked) => (
                Vec::new(),
                checked.warnings.iter().map(Problem::from).collect(),
                Some(ConfigSummary::of(&checked.config)),
            ),
            Err(error) => (
                error.diagnostics().iter().map(Problem::from).collect(),
                Vec::new(),
                None,
            ),
        };
        CheckReport {
            format: FORMAT,
            file: path.display().to_string(),
            valid: config.is_some(),
            errors,
            warnings,
            config,
        }
    }
}

/// `broker check [--json]`: exit 0 when the file is a valid config, [`EXIT_CONFIG`] when not.
pub fn run(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let checked = config::load_checked(path);
    if json {
        let report = CheckReport::new(path, &checked);
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(if report.valid {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_CONFIG)
        });
    }
    let checked = checked?;
    for warning in &checked.config.warnings {
        eprintln!("warning: {warning}");
    }
    println!("{}", checked.config.describe());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"[broker]
name = "t"
[[ingress]]
name = "in"
device = "net_null0"
queues = 2
[[session]]
name = "a"
vni = 7
filter = "f"
tools = ["g"]
[[filter]]
name = "f"
default = "reject"
[[filter.rule]]
number = 10
action = "accept"
[[tool_group]]
name = "g"
slice = 96
ports = [{ name = "g-1", device = "net_null1" }]
"#;

    fn report(text: &str) -> serde_json::Value {
        let checked = config::parse_checked(text, Some(Path::new("t.toml")));
        serde_json::to_value(CheckReport::new(Path::new("t.toml"), &checked)).unwrap()
    }

    #[test]
    fn a_valid_config_with_its_warning_and_summary() {
        let r = report(TEXT);
        assert_eq!(r["format"], 1);
        assert_eq!(r["valid"], true);
        assert_eq!(r["errors"], serde_json::json!([]));
        // No allowed_sources: the one warning, about a key that is absent (so no line).
        assert_eq!(
            r["warnings"],
            serde_json::json!([{"line": null, "column": null, "key_path": "decap.allowed_sources",
                "message": "not set: any host that can reach the ingress port can inject packets"}])
        );
        let c = &r["config"];
        assert_eq!(c["name"], "t");
        assert_eq!(c["metrics"], "127.0.0.1:9477");
        assert_eq!(c["workers"], 2);
        assert_eq!(
            c["ingress"],
            serde_json::json!([{"name": "in", "device": "net_null0", "queues": 2}])
        );
        assert_eq!(
            c["sessions"],
            serde_json::json!([{"name": "a", "vni": 7, "filter": "f", "tool_groups": ["g"]}])
        );
        assert_eq!(
            c["filters"],
            serde_json::json!([{"name": "f", "default": "reject", "rules": 1}])
        );
        assert_eq!(
            c["tool_groups"],
            serde_json::json!([{"name": "g", "balance": "source", "dedup": false, "slice": 96,
                "ports": [{"name": "g-1", "device": "net_null1", "tunnel": null, "remote": null}]}])
        );
        assert_eq!(c["dedup"], serde_json::Value::Null);
    }

    #[test]
    fn a_refused_config_lists_every_error_with_its_place() {
        let text = TEXT
            .replace("tools = [\"g\"]", "tools = [\"h\"]")
            .replace("filter = \"f\"", "filter = \"x\"");
        let r = report(&text);
        assert_eq!(r["valid"], false);
        assert_eq!(r["config"], serde_json::Value::Null);
        let errors = r["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 2, "{r:#}");
        assert_eq!(errors[0]["line"], 10);
        assert_eq!(errors[0]["column"], 10);
        assert_eq!(errors[0]["key_path"], "session[0] (\"a\").filter");
        assert_eq!(errors[1]["line"], 11);
        assert_eq!(errors[1]["key_path"], "session[0] (\"a\").tools[0]");
        assert!(
            errors[1]["message"]
                .as_str()
                .unwrap()
                .contains("unknown tool group \"h\""),
            "{r:#}"
        );
    }

    #[test]
    fn an_unreadable_file_has_no_location() {
        let path = Path::new("/nonexistent/t.toml");
        let r = serde_json::to_value(CheckReport::new(path, &config::load_checked(path))).unwrap();
        assert_eq!(r["valid"], false);
        assert_eq!(r["errors"][0]["line"], serde_json::Value::Null);
        assert_eq!(r["errors"][0]["key_path"], "");
        assert!(
            r["errors"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with("cannot read the config"),
            "{r:#}"
        );
    }
}
