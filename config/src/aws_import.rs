//! AWS Traffic Mirroring filters, imported: the JSON that `aws ec2 describe-traffic-mirror-filters`
//! prints (the EC2 API's `DescribeTrafficMirrorFilters` answer) turned into `[[filter]]` tables.
//!
//! ```text
//! {"TrafficMirrorFilters": [{"TrafficMirrorFilterId": "tmf-…",
//!     "IngressFilterRules": [{"RuleNumber": 100, "RuleAction": "accept", "Protocol": 6,
//!                             "SourceCidrBlock": "0.0.0.0/0", "DestinationCidrBlock": "10.0.0.0/24",
//!                             "DestinationPortRange": {"FromPort": 443, "ToPort": 443}, …}],
//!     "EgressFilterRules": [...], "NetworkServices": [], "Description": "…", "Tags": [...]}]}
//! ```
//!
//! # Design
//! The semantics are the same on both sides (rules by ascending number, the first match decides),
//! so a rule converts field by field: `RuleAction` → `action`, `Protocol` → `protocol` (named where
//! the config has a name: tcp, udp, icmp, icmpv6), the CIDR blocks → `src_cidr`/`dst_cidr` (kept
//! as written: `0.0.0.0/0` still matches IPv4 only, as at AWS), the port ranges →
//! `src_ports`/`dst_ports`, `Description` → `description`. AWS mirrors nothing that no rule
//! accepts, so every filter gets `default = "reject"`.
//!
//! **Renumbering.** AWS keeps inbound and outbound rules in two lists, each numbered on its own
//! (inbound rule 100 and outbound rule 100 may both exist); the broker has one list per filter
//! with unique numbers and a `direction` on each rule. The two lists are merged in the order
//! (AWS rule number, inbound before outbound) and numbered 10, 20, 30, … (1, 2, 3, … beyond 3276
//! rules): each list keeps its relative order, the numbers are unique, and the gaps leave room
//! for rules written by hand. Since an inbound rule matches only ingress packets and an outbound
//! rule only egress ones, how the two lists interleave changes nothing. A comment above each rule
//! names its AWS direction, number and rule ID.
//!
//! **Refused, by name.** Anything the broker cannot express is refused rather than dropped:
//! `NetworkServices` (`amazon-dns` selects traffic AWS otherwise does not mirror; the broker
//! filters what arrives), a field this importer does not know, a rule whose `TrafficDirection`
//! contradicts its list, a port range with a protocol other than TCP or UDP, a truncated answer
//! (`NextToken`). `Tags` are metadata and left out (a `Name` tag goes into the comment).
//!
//! The output is checked by [`crate::parse`] (inside a minimal config) before it is returned, so
//! whatever this module emits passes `broker check`.
//!
//! # Limitations
//! - `Protocol` 0 is read as "all protocols", like an absent one: AWS's console writes no
//!   protocol for "All protocols", and some tools print an unset number as 0; IP protocol 0
//!   (IPv6 Hop-by-Hop) is an extension header that no rule could match after the header walk.
//! - Directions need the session's `source_ips`: a packet gets a direction only when its inner
//!   source or destination is one of them (AWS knows which ENI it mirrors; the broker is told).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::describe::port_range;
use crate::model::PortRange;
use crate::validate::protocol_name;
use crate::values::{Cidr, Protocol};

/// What [`aws_filters_to_toml`] made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedFilters {
    /// `[[filter]]` tables, ready to paste into a config.
    pub toml: String,
    /// The filter names (the AWS filter IDs), in input order.
    pub filters: Vec<String>,
    /// Rules over all filters.
    pub rules: usize,
}

/// Why an AWS answer was not imported: where (a path into the JSON, with the filter's ID and the
/// rule's number) and what.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct AwsImportError {
    pub at: String,
    pub message: String,
}

fn refuse<T>(at: &str, message: impl Into<String>) -> Result<T, AwsImportError> {
    Err(AwsImportError {
        at: at.to_owned(),
        message: message.into(),
    })
}

/// AWS's rule number range, which is also the config's (`number` 1..=32766).
const RULE_NUMBERS: std::ops::RangeInclusive<i64> = 1..=32766;

/// Converts the JSON of `aws ec2 describe-traffic-mirror-filters` into `[[filter]]` TOML.
///
/// # Errors
/// The text is not JSON, is not shaped as AWS documents the answer, or holds something a broker
/// filter cannot express; the error names the filter, the rule and the field.
pub fn aws_filters_to_toml(json: &str) -> Result<ImportedFilters, AwsImportError> {
    let root: Value = serde_json::from_str(json).map_err(|e| AwsImportError {
        at: format!("line {} column {}", e.line(), e.column()),
        message: format!("not JSON: {e}"),
    })?;
    let root = object(&root, "the answer")?;
    known_fields(root, "the answer", &["TrafficMirrorFilters", "NextToken"])?;
    if let Some(token) = root.get("NextToken").filter(|t| !t.is_null()) {
        return refuse(
            "NextToken",
            format!(
                "{token}: this is one page of a longer answer; run the command without \
                 --max-items or --no-paginate to get every filter"
            ),
        );
    }
    let filters =
        array(root.get("TrafficMirrorFilters"), "TrafficMirrorFilters")?.ok_or_else(|| {
            AwsImportError {
                at: "the answer".into(),
                message: "no TrafficMirrorFilters list (is this the output of `aws ec2 \
                      describe-traffic-mirror-filters`?)"
                    .into(),
            }
        })?;

    let mut out = ImportedFilters {
        toml: String::new(),
        filters: Vec::new(),
        rules: 0,
    };
    for (i, filter) in filters.iter().enumerate() {
        let (name, text, rules) = convert_filter(filter, &format!("TrafficMirrorFilters[{i}]"))?;
        if out.filters.contains(&name) {
            return refuse(
                &format!("TrafficMirrorFilters[{i}]"),
                format!("filter {name} appears twice"),
            );
        }
        if !out.toml.is_empty() {
            out.toml.push('\n');
        }
        out.toml.push_str(&text);
        out.filters.push(name);
        out.rules += rules;
    }
    check_with_the_config_parser(&out)?;
    Ok(out)
}

/// One converted rule, before numbering.
struct Converted {
    /// AWS's number, within its direction's list.
    aws_number: u16,
    inbound: bool,
    comment: String,
    /// The TOML keys after `number`, one `key = value` per line.
    keys: String,
}

fn convert_filter(filter: &Value, at: &str) -> Result<(String, String, usize), AwsImportError> {
    let filter = object(filter, at)?;
    let id = string(
        filter.get("TrafficMirrorFilterId"),
        at,
        "TrafficMirrorFilterId",
    )?
    .ok_or_else(|| AwsImportError {
        at: at.to_owned(),
        message: "no TrafficMirrorFilterId".into(),
    })?;
    let at = format!("{at} ({id})");
    known_fields(
        filter,
        &at,
        &[
            "TrafficMirrorFilterId",
            "IngressFilterRules",
            "EgressFilterRules",
            "NetworkServices",
            "Description",
            "Tags",
        ],
    )?;
    // The filter's ID becomes its name: check it is one before it reaches the config.
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return refuse(
            &at,
            format!("TrafficMirrorFilterId {id:?} cannot be a filter name"),
        );
    }
    let services = array(
        filter.get("NetworkServices"),
        &format!("{at}.NetworkServices"),
    )?;
    if let Some(services) = services.filter(|s| !s.is_empty()) {
        return refuse(
            &format!("{at}.NetworkServices"),
            format!(
                "{}: not expressible in a broker filter (a network service such as amazon-dns \
                 selects traffic AWS otherwise does not mirror; the broker can only filter what \
                 it receives). Remove the service from the filter, or import a copy without it",
                Value::Array(services.to_vec())
            ),
        );
    }
    let description = string(filter.get("Description"), &at, "Description")?;
    let name_tag = name_tag(filter.get("Tags"), &format!("{at}.Tags"))?;

    let mut rules = Vec::new();
    for (list, inbound) in [("IngressFilterRules", true), ("EgressFilterRules", false)] {
        let mut numbers = BTreeSet::new();
        let entries = array(filter.get(list), &format!("{at}.{list}"))?.unwrap_or(&[]);
        for (i, rule) in entries.iter().enumerate() {
            let converted = convert_rule(rule, &format!("{at}.{list}[{i}]"), id, inbound)?;
            if !numbers.insert(converted.aws_number) {
                return refuse(
                    &format!("{at}.{list}[{i}] (rule {})", converted.aws_number),
                    format!(
                        "rule number {} appears twice in {list}",
                        converted.aws_number
                    ),
                );
            }
            rules.push(converted);
        }
    }
    // Each list keeps its order; inbound first where the numbers are equal.
    rules.sort_by_key(|r| (r.aws_number, !r.inbound));
    if rules.len() > 32766 {
        return refuse(
            &at,
            format!("{} rules: more than a filter can number", rules.len()),
        );
    }
    let step = if rules.len() * 10 <= 32766 { 10 } else { 1 };

    let mut text = format!("# AWS traffic mirror filter {id}");
    if let Some(tag) = &name_tag {
        let _ = write!(text, " (Name: {})", one_line(tag));
    }
    text.push('\n');
    if let Some(description) = &description {
        let _ = writeln!(text, "# {}", one_line(description));
    }
    text.push_str(
        "# Imported by `broker import aws-filters`: inbound and outbound rules merged by AWS rule\n\
         # number (inbound first), renumbered 10, 20, …; AWS mirrors nothing no rule accepts.\n",
    );
    let _ = writeln!(
        text,
        "[[filter]]\nname = {}\ndefault = \"reject\"",
        quoted(id)
    );
    for (k, rule) in rules.iter().enumerate() {
        let _ = write!(
            text,
            "\n# {}\n[[filter.rule]]\nnumber = {}\n{}",
            rule.comment,
            (k + 1) * step,
            rule.keys
        );
    }
    Ok((id.to_owned(), text, rules.len()))
}

fn convert_rule(
    rule: &Value,
    at: &str,
    filter_id: &str,
    inbound: bool,
) -> Result<Converted, AwsImportError> {
    let rule = object(rule, at)?;
    let number =
        integer(rule.get("RuleNumber"), at, "RuleNumber", RULE_NUMBERS)?.ok_or_else(|| {
            AwsImportError {
                at: at.to_owned(),
                message: "no RuleNumber".into(),
            }
        })?;
    let at = format!("{at} (rule {number})");
    known_fields(
        rule,
        &at,
        &[
            "TrafficMirrorFilterRuleId",
            "TrafficMirrorFilterId",
            "TrafficDirection",
            "RuleNumber",
            "RuleAction",
            "Protocol",
            "DestinationPortRange",
            "SourcePortRange",
            "DestinationCidrBlock",
            "SourceCidrBlock",
            "Description",
            "Tags",
        ],
    )?;
    let direction = if inbound { "ingress" } else { "egress" };
    let stated = string(rule.get("TrafficDirection"), &at, "TrafficDirection")?;
    if let Some(stated) = stated.filter(|&s| s != direction) {
        return refuse(
            &format!("{at}.TrafficDirection"),
            format!("{stated:?} in the list of {direction} rules"),
        );
    }
    let owner = string(
        rule.get("TrafficMirrorFilterId"),
        &at,
        "TrafficMirrorFilterId",
    )?;
    if let Some(owner) = owner.filter(|&o| o != filter_id) {
        return refuse(
            &format!("{at}.TrafficMirrorFilterId"),
            format!("{owner:?}: the rule belongs to another filter"),
        );
    }
    let action = match string(rule.get("RuleAction"), &at, "RuleAction")? {
        Some(action @ ("accept" | "reject")) => action,
        Some(other) => {
            return refuse(
                &format!("{at}.RuleAction"),
                format!("{other:?} (expected \"accept\" or \"reject\")"),
            );
        }
        None => return refuse(&at, "no RuleAction"),
    };
    let protocol = integer(rule.get("Protocol"), &at, "Protocol", 0..=255)?
        .map(|p| p as u8)
        .filter(|&p| p != 0);

    let mut keys = format!("action = \"{action}\"\ndirection = \"{direction}\"\n");
    if let Some(protocol) = protocol {
        let name = protocol_name(protocol);
        let value = if name.parse::<u8>().is_ok() {
            name
        } else {
            quoted(&name)
        };
        let _ = writeln!(keys, "protocol = {value}");
    }
    let mut families = Vec::new();
    for (field, key) in [
        ("SourceCidrBlock", "src_cidr"),
        ("DestinationCidrBlock", "dst_cidr"),
    ] {
        if let Some(text) = string(rule.get(field), &at, field)? {
            let cidr: Cidr = text.parse().map_err(|message| AwsImportError {
                at: format!("{at}.{field}"),
                message,
            })?;
            families.push(cidr.get().addr().is_ipv4());
            let _ = writeln!(keys, "{key} = {}", quoted(text));
        }
    }
    if families.len() == 2 && families[0] != families[1] {
        return refuse(
            &at,
            "SourceCidrBlock and DestinationCidrBlock are of two address families",
        );
    }
    for (field, key) in [
        ("SourcePortRange", "src_ports"),
        ("DestinationPortRange", "dst_ports"),
    ] {
        let Some(range) = port_range_of(rule.get(field), &format!("{at}.{field}"))? else {
            continue;
        };
        if protocol.is_some_and(|p| p != Protocol::TCP && p != Protocol::UDP) {
            return refuse(
                &format!("{at}.{field}"),
                format!(
                    "a port range with protocol {}: ports exist only for TCP (6) and UDP (17)",
                    protocol.unwrap_or_default()
                ),
            );
        }
        let _ = writeln!(keys, "{key} = \"{}\"", port_range(range));
    }
    if let Some(description) = string(rule.get("Description"), &at, "Description")? {
        let _ = writeln!(keys, "description = {}", quoted(description));
    }

    let mut comment = format!(
        "AWS {} rule {number}",
        if inbound { "inbound" } else { "outbound" }
    );
    if let Some(id) = string(
        rule.get("TrafficMirrorFilterRuleId"),
        &at,
        "TrafficMirrorFilterRuleId",
    )? {
        let _ = write!(comment, " ({})", one_line(id));
    }
    if integer(rule.get("Protocol"), &at, "Protocol", 0..=255)? == Some(0) {
        comment.push_str(", protocol 0 read as all protocols");
    }
    Ok(Converted {
        aws_number: number as u16,
        inbound,
        comment,
        keys,
    })
}

/// A `TrafficMirrorPortRange`: `{"FromPort": 1024, "ToPort": 65535}`.
fn port_range_of(value: Option<&Value>, at: &str) -> Result<Option<PortRange>, AwsImportError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let range = object(value, at)?;
    known_fields(range, at, &["FromPort", "ToPort"])?;
    let port = |field: &str| {
        integer(range.get(field), at, field, 0..=65535)?.ok_or_else(|| AwsImportError {
            at: at.to_owned(),
            message: format!("no {field}"),
        })
    };
    let (first, last) = (port("FromPort")? as u16, port("ToPort")? as u16);
    if first > last {
        return refuse(at, format!("FromPort {first} is after ToPort {last}"));
    }
    Ok(Some(PortRange { first, last }))
}

/// The value of the `Name` tag in a `Tags` list (`[{"Key": "Name", "Value": "web"}]`).
fn name_tag(tags: Option<&Value>, at: &str) -> Result<Option<String>, AwsImportError> {
    let Some(tags) = array(tags, at)? else {
        return Ok(None);
    };
    for (i, tag) in tags.iter().enumerate() {
        let at = format!("{at}[{i}]");
        let tag = object(tag, &at)?;
        known_fields(tag, &at, &["Key", "Value"])?;
        if string(tag.get("Key"), &at, "Key")? == Some("Name") {
            return Ok(string(tag.get("Value"), &at, "Value")?.map(str::to_owned));
        }
    }
    Ok(None)
}

fn object<'a>(value: &'a Value, at: &str) -> Result<&'a Map<String, Value>, AwsImportError> {
    value.as_object().ok_or_else(|| AwsImportError {
        at: at.to_owned(),
        message: format!("expected a JSON object, found {}", kind(value)),
    })
}

/// Refuses, by name, a field this importer does not know: what it cannot express is never
/// dropped quietly.
fn known_fields(
    object: &Map<String, Value>,
    at: &str,
    known: &[&str],
) -> Result<(), AwsImportError> {
    match object.keys().find(|k| !known.contains(&k.as_str())) {
        Some(field) => refuse(
            &format!("{at}.{field}"),
            format!(
                "field {field:?} is not one this import understands (known: {}); refused \
                 rather than dropped",
                known.join(", ")
            ),
        ),
        None => Ok(()),
    }
}

/// An optional array (`null` counts as absent).
fn array<'a>(value: Option<&'a Value>, at: &str) -> Result<Option<&'a [Value]>, AwsImportError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(other) => refuse(at, format!("expected a list, found {}", kind(other))),
    }
}

/// An optional string field.
fn string<'a>(
    value: Option<&'a Value>,
    at: &str,
    field: &str,
) -> Result<Option<&'a str>, AwsImportError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => refuse(
            &format!("{at}.{field}"),
            format!("expected a string, found {}", kind(other)),
        ),
    }
}

/// An optional integer field within `range`.
fn integer(
    value: Option<&Value>,
    at: &str,
    field: &str,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Option<i64>, AwsImportError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(number) => match number.as_i64() {
            Some(n) if range.contains(&n) => Ok(Some(n)),
            _ => refuse(
                &format!("{at}.{field}"),
                format!(
                    "{number}: expected an integer in {}..={}",
                    range.start(),
                    range.end()
                ),
            ),
        },
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A TOML basic string (escaped by the toml crate, which knows its rules).
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// Text for a `#` comment: one line, control characters replaced.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Runs the output through the config's own checks, inside the smallest config that can hold
/// it: what the import returns passes `broker check` by construction.
fn check_with_the_config_parser(imported: &ImportedFilters) -> Result<(), AwsImportError> {
    let wrapper = format!(
        "[broker]\nname = \"import-check\"\n\
         [[ingress]]\nname = \"in\"\ndevice = \"net_null0\"\n\
         [[tool_group]]\nname = \"tools\"\nports = [{{ name = \"out\", device = \"net_null1\" }}]\n\n{}",
        imported.toml
    );
    crate::parse(&wrapper, None)
        .map(drop)
        .map_err(|e| AwsImportError {
            at: "the converted filters".into(),
            message: format!("refused by the config's checks (a bug of the import): {e}"),
        })
}

#[cfg(test)]
mod tests;
