//! The route of a packet: what the first pass decides from its session, tunnel and inner flow
//! alone (direction, the filter's verdict, the flow hash, the tool port of each group, the
//! sender rule's verdict), the same for every packet of a flow under one plan, which is what the
//! worker's flow cache ([`crate::stage::flow_cache`]) keeps.
//!
//! # Design
//! [`Route::compute`] writes into the packet's decision in place (it is large); counting is the
//! caller's, from the route, so that a route from the cache counts exactly as a fresh one. The
//! source key of the `source` balance mode ([`source_key`]) is a fleet contract: every broker
//! of a fleet computes the same. A packet trace's groups ([`trace_groups`]) are recomputed from
//! the plan, since the route keeps only the copies.

use config::{Action, Balance, Direction, MAX_TOOLS_PER_SESSION};

use crate::flow::FlowKey;
use crate::observe::{CopyTrace, DedupTrace, GroupTrace, TraceRecord};
use crate::plan::{Plan, SessionPlan};
use crate::stage::balance::{flow_hash, ip_pair_hash, source_hash};
use crate::stage::decap::Tunnel;
use crate::stage::dedup::{SenderRule, Viewpoint};
use crate::stage::filter::FilterVerdict;

/// One copy of a packet: the tool group and the tool port it goes to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Target {
    pub(super) group: u16,
    pub(super) port: u16,
}

/// The source key (a fleet contract): the interface the copy was taken at, when the session's
/// source_ips say which, under the session's VNI; else the mirror source for tunnelled traffic,
/// the frame's own source otherwise.
#[inline]
pub(super) fn source_key(
    session: &SessionPlan,
    viewpoint: Viewpoint,
    tunnel: Option<&Tunnel>,
    flow: Option<&FlowKey>,
) -> u64 {
    match (viewpoint.interface(flow), tunnel, flow) {
        (Some(interface), _, _) => source_hash(interface, session.vni.unwrap_or(0)),
        (None, Some(t), _) => source_hash(t.mirror_source, t.vni),
        (None, None, Some(f)) => source_hash(f.src, 0),
        (None, None, None) => 0,
    }
}

/// A traced packet's tool groups, as its route (fresh or from the flow cache) has them: each
/// group's balance key and port (a round-robin group's for the current turn: `finish` updates
/// it), the groups the sender rule withheld the packet from. Recomputed from the plan: the
/// route keeps only the targets that get a copy.
#[inline(never)]
pub(super) fn trace_groups(
    t: &mut TraceRecord,
    plan: &Plan,
    session: &SessionPlan,
    tunnel: Option<&Tunnel>,
    flow: Option<&FlowKey>,
    route: &Route,
    turns: &[u32],
) {
    let key = source_key(session, session.viewpoint(flow), tunnel, flow);
    for (position, &group_id) in session.groups.iter().enumerate() {
        let g = usize::from(group_id);
        let group = &plan.groups[g];
        let key = balance_key(group.balance, key, flow, turns[g]);
        let port = match group.balance {
            Balance::RoundRobin => group.port_for_turn(turns[g]),
            _ => group.port_for_hash(key),
        };
        t.push_group(GroupTrace {
            group: group_id,
            balance: group.balance,
            key,
            port,
            dedup: if route.withheld & 1 << position != 0 {
                DedupTrace::SenderWithheld
            } else {
                DedupTrace::NotChecked
            },
            sliced_to: None,
            copy: CopyTrace::None,
        });
    }
}

/// The key a group's table is looked up with, for a packet trace (the pass itself computes it
/// where it uses it).
#[inline(never)]
pub(super) fn balance_key(
    balance: Balance,
    source_key: u64,
    flow: Option<&FlowKey>,
    turn: u32,
) -> u64 {
    match balance {
        Balance::Source => source_key,
        Balance::Flow => flow.map_or(source_key, flow_hash),
        Balance::IpPair => flow.map_or(source_key, ip_pair_hash),
        Balance::RoundRobin => u64::from(turn),
    }
}

/// The positions of the bits set in `mask`, lowest first.
#[inline]
pub(super) fn bits_of(mut mask: u16) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let position = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            position
        })
    })
}

/// What the first pass decides for a packet from its session, tunnel and inner flow alone (and
/// the plan): the same for every packet of a flow under one plan, which is what the flow cache
/// keeps. Counting is left to the caller, so that a route from the cache counts as a fresh one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Route {
    pub(super) direction: Option<Direction>,
    /// The session filter's verdict (`None`: the session has no filter). A rejected packet's
    /// route stops there: nothing after it is filled.
    pub(super) verdict: Option<FilterVerdict>,
    /// The symmetric flow hash (the source key for frames without a flow).
    pub(super) flow_hash: u64,
    /// Tool groups with a live port for the packet: `targets[..copies]` (a round-robin group's
    /// port is a placeholder, chosen in `finish`; the dedup window checks such a copy under its
    /// group); the entries after `copies` mean nothing.
    pub(super) copies: u8,
    pub(super) targets: [Target; MAX_TOOLS_PER_SESSION],
    /// By position in the session's groups: groups without a live port for the packet.
    pub(super) no_live_port: u16,
    /// By position in the session's groups: groups the sender rule withheld the packet from.
    pub(super) withheld: u16,
}

impl Route {
    pub(super) const EMPTY: Route = Route {
        direction: None,
        verdict: None,
        flow_hash: 0,
        copies: 0,
        targets: [Target { group: 0, port: 0 }; MAX_TOOLS_PER_SESSION],
        no_live_port: 0,
        withheld: 0,
    };

    /// [`Route::compute`] as a call (a flow cache miss).
    #[inline(never)]
    pub(super) fn compute_outlined(
        &mut self,
        plan: &Plan,
        session: &SessionPlan,
        tunnel: Option<&Tunnel>,
        flow: Option<&FlowKey>,
    ) {
        self.compute(plan, session, tunnel, flow);
    }

    /// Computes the route in place (it is large: written where the last pass reads it).
    #[inline(always)]
    pub(super) fn compute(
        &mut self,
        plan: &Plan,
        session: &SessionPlan,
        tunnel: Option<&Tunnel>,
        flow: Option<&FlowKey>,
    ) {
        let route = self;
        let viewpoint = session.viewpoint(flow);
        let direction = viewpoint.direction();
        route.direction = direction;
        route.verdict = None;
        route.flow_hash = 0;
        route.copies = 0;
        route.no_live_port = 0;
        route.withheld = 0;
        if let Some(filter_id) = session.filter {
            let verdict = plan.filters[usize::from(filter_id)].classify(flow, direction);
            route.verdict = Some(verdict);
            if verdict.action == Action::Reject {
                return;
            }
        }

        let source_key = || source_key(session, viewpoint, tunnel, flow);
        // Computed once: `flow` balance and the tunnel headers both use it.
        route.flow_hash = flow.map_or_else(source_key, flow_hash);

        // The position in the session's groups of each target.
        let mut positions = [0u8; MAX_TOOLS_PER_SESSION];
        for (position, &group_id) in session.groups.iter().enumerate() {
            let g = usize::from(group_id);
            let group = &plan.groups[g];
            let port = match group.balance {
                Balance::Source => group.port_for_hash(source_key()),
                Balance::Flow => group.port_for_hash(route.flow_hash),
                Balance::IpPair => group.port_for_hash(flow.map_or_else(source_key, ip_pair_hash)),
                Balance::RoundRobin => group.port_for_turn(0),
            };
            let Some(port) = port else {
                route.no_live_port |= 1 << position;
                continue;
            };
            // A session has at most MAX_TOOLS_PER_SESSION groups (checked by `Plan::build`).
            positions[usize::from(route.copies)] = position as u8;
            route.targets[usize::from(route.copies)] = Target {
                group: group_id,
                port,
            };
            route.copies += 1;
        }

        // The sender rule, for the copy taken at the receiver: it leaves every group that a copy
        // taken at the sender reaches on the same port.
        if let (Some(rule), Some(f), Viewpoint::Receiver, true) =
            (&plan.sender, flow, viewpoint, session.dedup)
        {
            let targets = &mut route.targets[..usize::from(route.copies)];
            let reached = reached_by_senders(plan, rule, f, targets);
            if reached != 0 {
                let mut kept = 0;
                for i in 0..targets.len() {
                    if reached & 1 << i != 0 {
                        route.withheld |= 1 << positions[i];
                    } else {
                        targets[kept] = targets[i];
                        kept += 1;
                    }
                }
                // At most `copies`, a u8.
                route.copies = kept as u8;
            }
        }
    }
}

/// The targets (a bit per index) that a copy of `flow` taken at its sender reaches on the same
/// port (the sender rule; see [`crate::stage::dedup::sender`]).
#[inline]
pub(super) fn reached_by_senders(
    plan: &Plan,
    rule: &SenderRule,
    flow: &FlowKey,
    targets: &[Target],
) -> u32 {
    let mut reached = 0u32;
    for copy in rule.sender_copies(flow, &plan.filters) {
        for (i, target) in targets.iter().enumerate() {
            let group = &plan.groups[usize::from(target.group)];
            let same_port = match group.balance {
                Balance::Source => group.port_for_hash(copy.source_key()) == Some(target.port),
                // Symmetric hashes: the sender's copy keys to this port; round-robin: the group.
                Balance::Flow | Balance::IpPair | Balance::RoundRobin => true,
            };
            if group.dedup && copy.sends_to(target.group) && same_port {
                reached |= 1 << i;
            }
        }
    }
    reached
}
