//! The filter semantics written down as plainly as possible: one rule after the other.
//!
//! This is the reference the compiled form is tested against, and the contrast in the benchmark;
//! the data path uses [`super::CompiledFilter`].

use config::{Direction, Filter, Rule};

use super::{FilterVerdict, MAX_RULES};
use crate::flow::FlowKey;

/// The obvious linear scan: the first rule (in the filter's order, which is by rule number) that
/// matches decides; no match, or no IP packet (`key == None`), gives the filter's default.
pub fn classify_linear(
    filter: &Filter,
    key: Option<&FlowKey>,
    direction: Option<Direction>,
) -> FilterVerdict {
    let Some(key) = key else {
        return FilterVerdict::default_of(filter);
    };
    filter
        .rules
        .iter()
        .take(MAX_RULES)
        .zip(0..=u16::MAX)
        .find(|(rule, _)| rule_matches(rule, key, direction))
        .map_or(FilterVerdict::default_of(filter), |(rule, index)| {
            FilterVerdict {
                action: rule.action,
                rule: Some(index),
            }
        })
}

/// Whether `rule` matches a packet of `key` travelling in `direction`.
pub(super) fn rule_matches(rule: &Rule, key: &FlowKey, direction: Option<Direction>) -> bool {
    // A rule with a direction never matches a packet without one.
    rule.direction.is_none_or(|wanted| direction == Some(wanted))
        && rule.protocol.is_none_or(|wanted| key.protocol == wanted)
        // `IpNet::contains` is false across families: an IPv4 CIDR never matches IPv6 and back.
        && rule.src_cidr.is_none_or(|net| net.contains(&key.src))
        && rule.dst_cidr.is_none_or(|net| net.contains(&key.dst))
        // A port range only matches packets that carry ports.
        && rule.src_ports.is_none_or(|ports| key.has_ports && ports.contains(key.src_port))
        && rule.dst_ports.is_none_or(|ports| key.has_ports && ports.contains(key.dst_port))
}
