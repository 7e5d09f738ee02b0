//! Watching the pipeline work: the hooks a live capture and a packet trace use, and the trace
//! record the pipeline fills for a traced packet.
//!
//! # Design
//! [`Pipeline::run`](crate::pipeline::Pipeline::run) takes a plain [`Sink`]; the broker's
//! worker calls [`Pipeline::run_observed`](crate::pipeline::Pipeline::run_observed) instead, with
//! a sink that is also an [`Observer`], only for the bursts of a running capture or trace. `run`
//! wraps its sink in an observer whose hooks do nothing and are inlined away, so the pipeline
//! the workers run when nobody watches is the same machine code as without this module: the
//! cost of watching, when nobody does, is the worker's one relaxed load per burst that tells it
//! whether to call `run_observed` (`broker/src/runtime/tap.rs`).
//!
//! The observer sees, per packet of the burst (by its index in the burst):
//! - its [`Outcome`], where the outcome is counted ([`Observer::outcome`]), which is how a
//!   capture of one outcome knows which packets to keep;
//! - every copy handed to a tool port, as the port will send it: cut by the group's slice and,
//!   for a tunnel port, behind its outer headers ([`Observer::delivering`]);
//! - for a traced packet, a [`TraceRecord`] to fill ([`Observer::trace`]): each stage writes
//!   what it decided, in place, with no allocation. The record is fixed-size and `Copy`, so the
//!   worker can hand finished records to the control side through a bounded channel of
//!   preallocated slots.
//!
//! Indices are those the pipeline writes into counters and plans (session, filter, rule
//! position, tool group, tool port): the control side names them from the config, off the
//! worker.
//!
//! # Limitations
//! - The TX result of a copy ([`TxResult`]) is known only when the worker flushes the port's
//!   buffer; the pipeline leaves it [`TxResult::Pending`] and the worker fills it in.
//! - A session's tool groups beyond [`MAX_TOOLS_PER_SESSION`] cannot exist (the config refuses
//!   them), so a record holds every group of the packet's session.

use config::{Action, Balance, Direction, MAX_TOOLS_PER_SESSION};

use crate::buf::{PacketBuf, Sink};
use crate::flow::FlowKey;
use crate::outcome::Outcome;
use crate::stage::decap::MAX_TUNNEL_DEPTH;
pub use crate::stage::decap::TunnelLayer;

/// What watches a burst go through the pipeline (see the module docs). Every hook is called on
/// the worker, inside the burst: it must not block, allocate or log.
pub trait Observer<B> {
    /// The record of packet `index` of the burst when that packet is traced (`None`: not
    /// traced). The pipeline writes each stage's decision into it as it makes it.
    fn trace(&mut self, index: usize) -> Option<&mut TraceRecord>;

    /// Packet `index` of the burst got `outcome` (called once per packet, where the outcome is
    /// counted).
    fn outcome(&mut self, index: usize, outcome: Outcome);

    /// A copy of packet `index` for tool group `group` goes to tool port `port` now, as `pkt`
    /// holds it: what the port sends (sliced, encapsulated). Called just before
    /// [`Sink::deliver`].
    fn delivering(&mut self, index: usize, group: u16, port: u16, pkt: &B);
}

/// A sink that watches nothing: what [`Pipeline::run`](crate::pipeline::Pipeline::run) runs
/// with. Its hooks are empty and inlined, so the observed pipeline compiles to the plain one.
#[derive(Debug)]
pub struct Unobserved<'a, S>(pub &'a mut S);

impl<B, S: Sink<B>> Sink<B> for Unobserved<'_, S> {
    #[inline(always)]
    fn deliver(&mut self, port: u16, pkt: B) {
        self.0.deliver(port, pkt);
    }

    #[inline(always)]
    fn discard(&mut self, pkt: B) {
        self.0.discard(pkt);
    }

    #[inline(always)]
    fn punt(&mut self, pkt: B) {
        self.0.punt(pkt);
    }
}

impl<B, S> Observer<B> for Unobserved<'_, S> {
    #[inline(always)]
    fn trace(&mut self, _index: usize) -> Option<&mut TraceRecord> {
        None
    }

    #[inline(always)]
    fn outcome(&mut self, _index: usize, _outcome: Outcome) {}

    #[inline(always)]
    fn delivering(&mut self, _index: usize, _group: u16, _port: u16, _pkt: &B) {}
}

/// What the decapsulation stage made of a traced packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DecapTrace {
    /// The stage did not run: the frame was for the addressed port itself (outcome `control`).
    #[default]
    NotReached,
    /// Refused: the outcome says why (`malformed(reason)`, `source_denied`, `not_tunnel`).
    Refused,
    /// Not a tunnel, passed as it is to the untunnelled session.
    Untunneled,
    /// Tunnels removed, outermost first (`depth` of them), and the bytes they took.
    Tunnelled {
        layers: [Option<TunnelLayer>; MAX_TUNNEL_DEPTH as usize],
        depth: u8,
        stripped: u32,
    },
}

/// The filter's decision on a traced packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterTrace {
    /// The session's filter (index in the config's filters).
    pub filter: u16,
    /// The position, in the filter's rules (sorted by number), of the rule that decided;
    /// `None`: no rule matched and the filter's default decided.
    pub rule: Option<u16>,
    pub action: Action,
}

/// The dedup check of one tool group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DedupTrace {
    /// Not checked: no dedup, the group does not take part, or it had no live port.
    #[default]
    NotChecked,
    /// First seen within the window: the group gets it.
    New,
    /// First seen, and its entry took the place of another packet's that was still within the
    /// window (the table is too small).
    NewEvictedLive,
    /// The group received this packet within the window: no copy.
    Duplicate,
    /// The sender rule withheld it: the copy of this connection taken at its sender reaches
    /// the group on the same port ([`crate::stage::dedup::sender`]).
    SenderWithheld,
}

/// What became of a copy once the worker flushed its port's buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TxResult {
    /// Not flushed yet (the pipeline leaves this; the worker fills in the rest).
    #[default]
    Pending,
    /// The port's TX queue took it.
    Sent,
    /// The port's TX queue was full: freed and counted as a TX drop.
    Dropped,
}

/// The copy a tool group got of a traced packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CopyTrace {
    /// No copy: no live port, or a duplicate for the group.
    #[default]
    None,
    /// No buffer was left for the copy (its clone, or a tunnel port's outer headers).
    NoBuffer,
    /// Handed to the port's TX buffer.
    Queued {
        /// Bytes the port sends (with the outer headers of a tunnel port).
        len: u32,
        /// A tunnel port's outer headers, in bytes (`None`: a cabled port).
        encapsulation: Option<u16>,
        /// Cut so that, encapsulated, it fits the via port's MTU.
        egress_truncated: bool,
        tx: TxResult,
    },
}

/// One tool group of the packet's session, as the balancer, dedup and delivery saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupTrace {
    /// The group (index in the config's tool groups).
    pub group: u16,
    pub balance: Balance,
    /// The key the group's table was looked up with: the hash of the mirror source, of the
    /// flow or of the address pair; for round-robin, the turn.
    pub key: u64,
    /// The port chosen (index in the config's tool ports); `None`: no live port could take it.
    pub port: Option<u16>,
    pub dedup: DedupTrace,
    /// The copy was cut to this many bytes by the group's `slice`.
    pub sliced_to: Option<u32>,
    pub copy: CopyTrace,
}

impl GroupTrace {
    const EMPTY: GroupTrace = GroupTrace {
        group: 0,
        balance: Balance::Source,
        key: 0,
        port: None,
        dedup: DedupTrace::NotChecked,
        sliced_to: None,
        copy: CopyTrace::None,
    };
}

/// A traced packet's way through the stages. Fixed-size and `Copy`: the worker fills one in a
/// preallocated slot and hands it over by value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceRecord {
    /// The worker that received it (set by the worker).
    pub worker: u16,
    /// The ingress port it arrived on (index in the config's ingress ports; set by the worker).
    pub ingress: u16,
    /// The plan it was decided under (set by the worker).
    pub plan_generation: u64,
    /// When the worker took its burst, on the worker's clock (set by the worker).
    pub time_ns: u64,
    /// Its length as received, and its segments (set by the worker).
    pub len: u32,
    pub segments: u16,
    pub decap: DecapTrace,
    /// The inner frame's length once the tunnels are removed.
    pub inner_len: u32,
    /// The session (index in the config's sessions), and the VNI that chose it (`None`:
    /// untunnelled).
    pub session: Option<u16>,
    pub vni: Option<u32>,
    /// The inner packet's addresses and ports (`None`: not IP).
    pub flow: Option<FlowKey>,
    pub direction: Option<Direction>,
    /// The session's filter and its decision (`None`: the session has no filter).
    pub filter: Option<FilterTrace>,
    /// The session's tool groups, in the session's order: `groups[..group_count]`.
    pub groups: [GroupTrace; MAX_TOOLS_PER_SESSION],
    pub group_count: u8,
    /// The packet's single outcome.
    pub outcome: Option<Outcome>,
}

impl TraceRecord {
    /// A record with nothing decided yet.
    pub const EMPTY: TraceRecord = TraceRecord {
        worker: 0,
        ingress: 0,
        plan_generation: 0,
        time_ns: 0,
        len: 0,
        segments: 0,
        decap: DecapTrace::NotReached,
        inner_len: 0,
        session: None,
        vni: None,
        flow: None,
        direction: None,
        filter: None,
        groups: [GroupTrace::EMPTY; MAX_TOOLS_PER_SESSION],
        group_count: 0,
        outcome: None,
    };

    /// Starts the record of a packet as received: what the worker knows of it; everything the
    /// stages decide is cleared.
    pub fn begin<B: PacketBuf>(&mut self, pkt: &B) {
        *self = TraceRecord {
            worker: self.worker,
            ingress: self.ingress,
            plan_generation: self.plan_generation,
            time_ns: self.time_ns,
            len: u32::try_from(pkt.pkt_len()).unwrap_or(u32::MAX),
            segments: u16::try_from(pkt.segments()).unwrap_or(u16::MAX),
            ..TraceRecord::EMPTY
        };
    }

    /// The session's groups as traced.
    pub fn groups(&self) -> &[GroupTrace] {
        &self.groups[..usize::from(self.group_count).min(MAX_TOOLS_PER_SESSION)]
    }

    /// The entry of tool group `group`, if the packet's session has it.
    pub fn group_mut(&mut self, group: u16) -> Option<&mut GroupTrace> {
        let count = usize::from(self.group_count).min(MAX_TOOLS_PER_SESSION);
        self.groups[..count].iter_mut().find(|g| g.group == group)
    }

    /// Adds the entry of a group of the session (in the session's order); ignored past
    /// [`MAX_TOOLS_PER_SESSION`], which a session cannot exceed.
    pub fn push_group(&mut self, group: GroupTrace) {
        if let Some(slot) = self.groups.get_mut(usize::from(self.group_count)) {
            *slot = group;
            self.group_count += 1;
        }
    }
}

impl Default for TraceRecord {
    fn default() -> TraceRecord {
        TraceRecord::EMPTY
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VecBuf;

    #[test]
    fn a_record_begins_from_the_packet_and_forgets_the_last_one() {
        let mut record = TraceRecord {
            worker: 3,
            ingress: 1,
            plan_generation: 7,
            time_ns: 99,
            outcome: Some(Outcome::Filtered),
            session: Some(2),
            ..TraceRecord::EMPTY
        };
        record.push_group(GroupTrace {
            group: 4,
            ..GroupTrace::EMPTY
        });
        record.begin(&VecBuf::from_segments(vec![vec![0; 100], vec![0; 28]]));
        assert_eq!(
            (record.worker, record.ingress, record.plan_generation),
            (3, 1, 7)
        );
        assert_eq!((record.len, record.segments), (128, 2));
        assert_eq!(record.outcome, None);
        assert_eq!(record.session, None);
        assert!(record.groups().is_empty());
    }

    #[test]
    fn groups_are_found_by_index_and_bounded() {
        let mut record = TraceRecord::EMPTY;
        for group in 0..MAX_TOOLS_PER_SESSION as u16 + 3 {
            record.push_group(GroupTrace {
                group,
                ..GroupTrace::EMPTY
            });
        }
        assert_eq!(record.groups().len(), MAX_TOOLS_PER_SESSION);
        record.group_mut(5).unwrap().port = Some(9);
        assert_eq!(record.groups()[5].port, Some(9));
        assert!(record.group_mut(MAX_TOOLS_PER_SESSION as u16).is_none());
    }

    #[test]
    fn a_record_is_plain_data_of_bounded_size() {
        fn copy<T: Copy + Send + 'static>() {}
        copy::<TraceRecord>();
        // Handed over by value through a channel of preallocated slots: keep it well under a
        // few pages.
        assert!(std::mem::size_of::<TraceRecord>() <= 2048);
    }
}
