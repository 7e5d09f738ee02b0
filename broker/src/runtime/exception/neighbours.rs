//! The next hops of the tunnel tool ports: which link-layer address each has, and whether it
//! still answers.
//!
//! # Design
//! Every next hop (an analyzer on the via port's subnet, or the port's gateway) is asked for its
//! address every [`PROBE_INTERVAL`]: by broadcast ARP or a multicast neighbour solicitation
//! while unknown, by a unicast one once known (as a kernel refreshes an entry before it goes
//! stale). Any frame that tells its address (a reply, a request it sends, a gratuitous ARP, an
//! advertisement: [`pipelines::neighbour::learn`]) makes it *live*; a next hop that has not
//! answered for [`DEAD_AFTER`] is *dead*, and the tunnel ports behind it leave their groups'
//! tables exactly as a port whose link went down, until it answers again.
//!
//! The table is plain data driven by the exception path's loop, with the time passed in, so its
//! whole behaviour is tested without a clock or a wire.
//!
//! # Limitations
//! A next hop that keeps answering but does not forward (a router whose route to the analyzer is
//! gone) looks live: the broker sees only its own link.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use pipelines::neighbour::Neighbour;
use pipelines::wire::ethernet;

/// How often a next hop is asked for its address.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// How long a next hop may stay silent before it is dead: three probes unanswered.
pub const DEAD_AFTER: Duration = Duration::from_secs(3);

/// A next hop, on the addressed port it is reached through (by index in the exception path's
/// ports).
pub type Key = (usize, IpAddr);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Entry {
    mac: Option<ethernet::Address>,
    last_answer: Option<Instant>,
    last_probe: Option<Instant>,
    live: bool,
}

/// What is known of a next hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextHopState {
    /// The addressed port it is reached through (index in the exception path's ports).
    pub port: usize,
    pub ip: IpAddr,
    /// Its link-layer address, the last one it told (kept while it is dead, for the operator).
    pub mac: Option<ethernet::Address>,
    /// When it last told its address.
    pub last_answer: Option<Instant>,
    /// It answered within [`DEAD_AFTER`].
    pub live: bool,
}

/// A probe to send now: to `key`, unicast to `mac` when it is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    pub key: Key,
    pub unicast: Option<ethernet::Address>,
}

/// The next hops and what is known of them.
#[derive(Debug, Default)]
pub struct NeighbourTable {
    entries: BTreeMap<Key, Entry>,
}

impl NeighbourTable {
    /// A table of `next_hops`, none resolved yet.
    pub fn new(next_hops: impl IntoIterator<Item = Key>) -> NeighbourTable {
        NeighbourTable {
            entries: next_hops
                .into_iter()
                .map(|key| (key, Entry::default()))
                .collect(),
        }
    }

    /// Takes in what a frame received on `port` told about `neighbour` at `now`; returns whether
    /// a next hop changed address or came back.
    pub fn learn(&mut self, port: usize, neighbour: Neighbour, now: Instant) -> bool {
        let Some(entry) = self.entries.get_mut(&(port, neighbour.ip)) else {
            // Not a next hop of ours: the kernel side keeps its own neighbour table.
            return false;
        };
        let changed = entry.mac != Some(neighbour.mac) || !entry.live;
        entry.mac = Some(neighbour.mac);
        entry.last_answer = Some(now);
        entry.live = true;
        changed
    }

    /// The probes due at `now` (each next hop at most once per [`PROBE_INTERVAL`]), marked as
    /// sent.
    pub fn probes(&mut self, now: Instant) -> Vec<Probe> {
        let mut due = Vec::new();
        for (key, entry) in &mut self.entries {
            let answered_recently = entry
                .last_answer
                .is_some_and(|t| now.duration_since(t) < PROBE_INTERVAL);
            let probed_recently = entry
                .last_probe
                .is_some_and(|t| now.duration_since(t) < PROBE_INTERVAL);
            if answered_recently || probed_recently {
                continue;
            }
            entry.last_probe = Some(now);
            due.push(Probe {
                key: *key,
                // A dead next hop may have a new address: ask everyone.
                unicast: entry.mac.filter(|_| entry.live),
            });
        }
        due
    }

    /// Marks dead the next hops silent for [`DEAD_AFTER`] at `now`; returns whether any did.
    pub fn expire(&mut self, now: Instant) -> bool {
        let mut changed = false;
        for entry in self.entries.values_mut() {
            if entry.live
                && entry
                    .last_answer
                    .is_none_or(|t| now.duration_since(t) >= DEAD_AFTER)
            {
                entry.live = false;
                changed = true;
            }
        }
        changed
    }

    /// Every next hop and what is known of it, in key order.
    pub fn states(&self) -> Vec<NextHopState> {
        self.entries
            .iter()
            .map(|(&(port, ip), entry)| NextHopState {
                port,
                ip,
                mac: entry.mac,
                last_answer: entry.last_answer,
                live: entry.live,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GATEWAY: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 20, 5, 1));
    const ANALYZER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 20, 5, 99));
    const MAC: ethernet::Address = [2, 0, 0, 0, 0, 1];

    fn told(ip: IpAddr, mac: ethernet::Address) -> Neighbour {
        Neighbour { ip, mac }
    }

    #[test]
    fn unknown_next_hops_are_asked_by_broadcast_each_interval_until_they_answer() {
        let start = Instant::now();
        let mut table = NeighbourTable::new([(0, GATEWAY), (0, ANALYZER)]);
        let first = table.probes(start);
        assert_eq!(first.len(), 2);
        assert!(first.iter().all(|p| p.unicast.is_none()));
        assert!(table.probes(start + Duration::from_millis(500)).is_empty());
        assert_eq!(table.probes(start + PROBE_INTERVAL).len(), 2);
        assert!(table.states().iter().all(|s| !s.live && s.mac.is_none()));
    }

    #[test]
    fn an_answer_makes_a_next_hop_live_and_silence_makes_it_dead_until_it_answers_again() {
        let t0 = Instant::now();
        let mut table = NeighbourTable::new([(0, GATEWAY)]);
        table.probes(t0);
        assert!(table.learn(0, told(GATEWAY, MAC), t0 + Duration::from_millis(2)));
        assert!(
            !table.learn(0, told(GATEWAY, MAC), t0 + Duration::from_millis(3)),
            "the same address again changes nothing"
        );
        assert!(
            !table.learn(1, told(GATEWAY, MAC), t0),
            "the same address on another port is another next hop (not ours)"
        );
        let state = table.states()[0];
        assert_eq!((state.live, state.mac), (true, Some(MAC)));
        // Refreshed by unicast before it could go stale.
        let refresh = table.probes(t0 + PROBE_INTERVAL + Duration::from_millis(5));
        assert_eq!(refresh[0].unicast, Some(MAC));
        assert!(!table.expire(t0 + Duration::from_millis(2900)));
        // The last answer was at +3 ms: silent for DEAD_AFTER from then.
        assert!(table.expire(t0 + Duration::from_millis(3003)));
        let dead = table.states()[0];
        assert_eq!(
            (dead.live, dead.mac),
            (false, Some(MAC)),
            "the last address is kept"
        );
        assert_eq!(
            table.probes(t0 + Duration::from_secs(4))[0].unicast,
            None,
            "a dead next hop is asked by broadcast: it may have a new address"
        );
        let moved = [2, 0, 0, 0, 0, 2];
        assert!(table.learn(0, told(GATEWAY, moved), t0 + Duration::from_secs(5)));
        assert_eq!(table.states()[0].mac, Some(moved));
        assert!(table.states()[0].live);
    }

    #[test]
    fn a_new_address_while_live_is_a_change() {
        let t0 = Instant::now();
        let mut table = NeighbourTable::new([(0, GATEWAY)]);
        table.learn(0, told(GATEWAY, MAC), t0);
        assert!(table.learn(0, told(GATEWAY, [2, 0, 0, 0, 0, 9]), t0));
    }
}
