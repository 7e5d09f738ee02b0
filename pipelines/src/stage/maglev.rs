//! Maglev consistent hashing: which port of a tool group receives a key.
//!
//! # Design
//! The table is Maglev's (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
//! Balancer", NSDI 2016, §3.4): each port walks its own permutation of the `M` slots and, in
//! turn, claims the next slot of its permutation that is still free, until the table is full. A
//! key goes to the port owning slot `⌊hash · M / 2^64⌋`.
//!
//! **The mapping is a contract between brokers**, not an implementation detail: every broker of a
//! fleet behind a load balancer must send a given key to the same analyzer, including brokers
//! running different versions. It depends only on the port names, their liveness and the key
//! hash, through functions fully specified here:
//! - `M` = [`table_size`]`(N)`: the smallest prime at or above `max(100·N, 4096)` rounded up to a
//!   power of two;
//! - the permutation of a port named `name` (its UTF-8 bytes): `offset = XXH3-64(name, seed
//!   OFFSET_SEED) mod M`, `skip = XXH3-64(name, seed SKIP_SEED) mod (M − 1) + 1`, slot `j` of the
//!   permutation `= (offset + j·skip) mod M` (XXH3 is a frozen, endian-independent algorithm);
//! - ports take their turns in the byte order of their names (not config order), so reordering
//!   a group's ports in the file changes nothing but the indices returned;
//! - a key hash `h` reads slot `⌊h · M / 2^64⌋` (multiply-shift, no division).
//!
//! Changing any of these is a breaking change for mixed-version fleets; the golden tests below
//! pin them.
//!
//! **Table size.** `M` is prime so that every `skip` in `1..M` is coprime with it and each
//! permutation visits every slot. `M ≥ 100·N` bounds the imbalance: population hands out one slot
//! per port per round, so every port owns `⌊M/N⌋` or `⌈M/N⌉` slots, within `N/M ≤ 1 %` of a fair
//! share. Rounding `100·N` up to a power of two (at least 4096) before taking the next prime keeps
//! `M` unchanged across a range of group sizes (`M = 4099` for up to 40 ports): adding an analyzer
//! to a group on a config reload then moves only about `1/(N+1)` of the keys (Maglev's
//! near-minimal disruption, which only holds for a fixed `M`) instead of reshuffling every flow.
//! At 2 bytes per slot the common table is 8 KiB and stays in L1.
//!
//! **A port going down moves only its own keys.** The table for a set of live ports keeps every
//! slot whose owner (in the all-live table) is live, and gives each slot of a dead port to the
//! owner of that slot in a table populated from the live ports alone. Keys of live ports never
//! move; the dead port's keys spread over the live ports as Maglev spreads them; and when the
//! port comes back the table is again exactly the all-live table, so its keys return.
//!
//! # Limitations
//! - A group has at most 65,535 ports (indices are `u16`, one value marks "no port"); ports past
//!   that index are never chosen.
//! - Changing the number of ports across a power-of-two boundary of `100·N` changes `M` and
//!   reshuffles most keys.

use std::fmt;

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Seed of the hash that places a port's permutation (its first slot). Part of the fleet contract.
pub const OFFSET_SEED: u64 = 0x6d61_676c_6576_6f66; // "maglevof"
/// Seed of the hash that sets a port's stride through the table. Part of the fleet contract.
pub const SKIP_SEED: u64 = 0x6d61_676c_6576_736b; // "maglevsk"

/// Smallest table size: keeps `M` constant (and the mapping stable) for groups of up to 40 ports.
const MIN_TABLE_SIZE: usize = 4096;
/// Slots per port at least: each port's share is then within 1 % of `1/N`.
const SLOTS_PER_PORT: usize = 100;
/// Slot value of a table with no live port.
const NO_PORT: u16 = u16::MAX;

/// The table of one tool group for one set of live ports. Built on the control thread whenever
/// the config or a port's link state changes; read-only on the data path.
#[derive(Clone, PartialEq, Eq)]
pub struct Maglev {
    /// Index into the group's ports for every slot, or [`NO_PORT`].
    table: Box<[u16]>,
}

impl Maglev {
    /// The table for a group whose ports are named `ports` (stable names: a port's permutation
    /// depends only on its name, so every broker with the same config builds the same table);
    /// `live[i]` says port `i` is up (a missing entry counts as down).
    pub fn build(ports: &[&str], live: &[bool]) -> Maglev {
        let ports = &ports[..ports.len().min(usize::from(NO_PORT))];
        let size = table_size(ports.len());
        let all: Vec<usize> = (0..ports.len()).collect();
        let full = populate(ports, &all, size);

        let is_live = |port: u16| live.get(usize::from(port)).copied().unwrap_or(false);
        let live_ports: Vec<usize> = all.iter().copied().filter(|&i| is_live(i as u16)).collect();
        if live_ports.len() == ports.len() {
            return Maglev { table: full };
        }
        let survivors = populate(ports, &live_ports, size);
        let table = full
            .iter()
            .zip(survivors.iter())
            .map(|(&owner, &survivor)| if is_live(owner) { owner } else { survivor })
            .collect();
        Maglev { table }
    }

    /// The port (index into the `ports` given to [`Maglev::build`]) for a key hash; `None` when no
    /// port is live.
    #[inline]
    pub fn lookup(&self, key_hash: u64) -> Option<u16> {
        let slot = ((u128::from(key_hash) * self.table.len() as u128) >> 64) as usize;
        match self.table.get(slot) {
            Some(&port) if port != NO_PORT => Some(port),
            _ => None,
        }
    }

    /// Number of slots: a prime, at least `100 × ports.len()`.
    pub fn size(&self) -> usize {
        self.table.len()
    }

    /// The owner of every slot (`None`: no live port), for tests and diagnostics.
    pub fn slots(&self) -> impl Iterator<Item = Option<u16>> + '_ {
        self.table.iter().map(|&p| (p != NO_PORT).then_some(p))
    }
}

impl fmt::Debug for Maglev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut owned = std::collections::BTreeMap::<u16, usize>::new();
        for port in self.slots().flatten() {
            *owned.entry(port).or_default() += 1;
        }
        f.debug_struct("Maglev")
            .field("size", &self.size())
            .field("slots_per_port", &owned)
            .finish()
    }
}

/// The table size for a group of `ports` ports: the smallest prime at or above
/// `max(100·ports, 4096)` rounded up to a power of two (see the module docs for why).
pub fn table_size(ports: usize) -> usize {
    let target = (SLOTS_PER_PORT * ports)
        .max(MIN_TABLE_SIZE)
        .next_power_of_two();
    (target..).find(|&n| is_prime(n)).unwrap_or(target)
}

fn is_prime(n: usize) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

/// Maglev population of a `size`-slot table by the ports `members` (indices into `names`).
fn populate(names: &[&str], members: &[usize], size: usize) -> Box<[u16]> {
    let mut table = vec![NO_PORT; size].into_boxed_slice();
    if members.is_empty() {
        return table;
    }
    // Turn order by name, so the table does not depend on the order of the config file.
    let mut turns: Vec<usize> = members.to_vec();
    turns.sort_by(|&a, &b| names[a].cmp(names[b]).then(a.cmp(&b)));
    let m = size as u64;
    // (next slot to try, stride) per port, in turn order.
    let mut cursors: Vec<(u64, u64)> = turns
        .iter()
        .map(|&port| {
            let name = names[port].as_bytes();
            let offset = xxh3_64_with_seed(name, OFFSET_SEED) % m;
            let skip = xxh3_64_with_seed(name, SKIP_SEED) % (m - 1) + 1;
            (offset, skip)
        })
        .collect();

    let mut filled = 0;
    loop {
        for (&port, (next, skip)) in turns.iter().zip(cursors.iter_mut()) {
            // Terminates: `skip` is coprime with the prime `size`, so the permutation reaches
            // every slot, and at least one is free while `filled < size`.
            while table[*next as usize] != NO_PORT {
                *next = (*next + *skip) % m;
            }
            table[*next as usize] = port as u16;
            *next = (*next + *skip) % m;
            filled += 1;
            if filled == size {
                return table;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("tool-{i}")).collect()
    }

    fn build(names: &[String], live: &[bool]) -> Maglev {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        Maglev::build(&refs, live)
    }

    /// splitmix64: a fixed, well-known stream of test keys.
    fn keys(count: usize, seed: u64) -> impl Iterator<Item = u64> {
        let mut state = seed;
        (0..count).map(move |_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        })
    }

    #[test]
    fn size_is_a_prime_with_at_least_100_slots_per_port() {
        for n in [0, 1, 2, 16, 40, 41, 81, 82, 200, 1000] {
            let m = table_size(n);
            assert!(is_prime(m), "{m}");
            assert!(m >= 100 * n && m >= MIN_TABLE_SIZE, "{n} ports: {m}");
        }
        assert_eq!(table_size(1), 4099);
        assert_eq!(table_size(40), 4099);
        assert_eq!(table_size(41), 8209);
        assert_eq!(build(&names(3), &[true; 3]).size(), 4099);
    }

    #[test]
    fn every_port_owns_floor_or_ceil_of_its_share() {
        for n in 1..=64 {
            let table = build(&names(n), &vec![true; n]);
            let m = table.size();
            let mut owned = vec![0usize; n];
            for slot in table.slots() {
                owned[usize::from(slot.expect("all ports live"))] += 1;
            }
            for (port, &count) in owned.iter().enumerate() {
                assert!(
                    count == m / n || count == m.div_ceil(n),
                    "{n} ports, port {port}: {count}"
                );
            }
        }
    }

    #[test]
    fn removing_a_port_moves_only_its_keys_and_restoring_it_restores_the_table() {
        let keys: Vec<u64> = keys(1_000_000, 7).collect();
        for n in 2..=16 {
            let names = names(n);
            let full = build(&names, &vec![true; n]);
            let before: Vec<Option<u16>> = keys.iter().map(|&k| full.lookup(k)).collect();
            for dead in 0..n {
                let mut live = vec![true; n];
                live[dead] = false;
                let degraded = build(&names, &live);
                // Slot by slot: a live port keeps every slot it had; the dead port keeps none.
                for (old, new) in full.slots().zip(degraded.slots()) {
                    let (old, new) = (old.unwrap(), new.unwrap());
                    if usize::from(old) == dead {
                        assert_ne!(usize::from(new), dead);
                    } else {
                        assert_eq!(
                            old, new,
                            "{n} ports, port {dead} down: a live port's slot moved"
                        );
                    }
                }
                // Key by key: only the dead port's keys move, and no more than its share.
                let mut moved = 0;
                for (&key, &old) in keys.iter().zip(&before) {
                    if degraded.lookup(key) != old {
                        assert_eq!(old, Some(dead as u16), "a key of a live port moved");
                        moved += 1;
                    }
                }
                let fraction = moved as f64 / keys.len() as f64;
                assert!(
                    fraction <= 1.0 / n as f64 + 0.01,
                    "{n} ports, port {dead} down: {fraction} of the keys moved"
                );
                live[dead] = true;
                assert_eq!(build(&names, &live), full, "restoring port {dead} of {n}");
            }
        }
    }

    #[test]
    fn a_dead_ports_slots_spread_over_the_live_ports() {
        let n = 8;
        let mut live = vec![true; n];
        live[3] = false;
        let degraded = build(&names(n), &live);
        let m = degraded.size();
        let mut owned = vec![0usize; n];
        for slot in degraded.slots() {
            owned[usize::from(slot.unwrap())] += 1;
        }
        assert_eq!(owned[3], 0);
        let fair = m as f64 / (n - 1) as f64;
        for (port, &count) in owned.iter().enumerate().filter(|&(p, _)| p != 3) {
            assert!(
                (count as f64 - fair).abs() < 0.05 * fair,
                "port {port}: {count} of {m}"
            );
        }
    }

    #[test]
    fn several_ports_down_and_none_live() {
        let names = names(5);
        let degraded = build(&names, &[true, false, true, false, true]);
        assert!(degraded.slots().all(|p| matches!(p, Some(0 | 2 | 4))));
        let dead = build(&names, &[false; 5]);
        assert!(dead.slots().all(|p| p.is_none()));
        assert!(keys(1000, 1).all(|k| dead.lookup(k).is_none()));
        // A short `live` slice counts the missing ports as down.
        assert!(
            build(&names, &[true, true])
                .slots()
                .all(|p| matches!(p, Some(0 | 1)))
        );
        let empty = Maglev::build(&[], &[]);
        assert_eq!(empty.lookup(42), None);
    }

    #[test]
    fn adding_a_port_with_the_same_table_size_moves_about_its_share() {
        let keys: Vec<u64> = keys(200_000, 11).collect();
        for n in 1..40 {
            let small = build(&names(n), &vec![true; n]);
            let large = build(&names(n + 1), &vec![true; n + 1]);
            assert_eq!(small.size(), large.size());
            let moved = keys
                .iter()
                .filter(|&&k| small.lookup(k) != large.lookup(k))
                .count();
            let fraction = moved as f64 / keys.len() as f64;
            let share = 1.0 / (n + 1) as f64;
            assert!(
                fraction <= share + 0.03,
                "{n} → {} ports: {fraction} moved",
                n + 1
            );
        }
    }

    #[test]
    fn config_order_does_not_change_the_mapping() {
        let forward = ["zeek-a", "zeek-b", "zeek-c"];
        let backward = ["zeek-c", "zeek-b", "zeek-a"];
        let one = Maglev::build(&forward, &[true; 3]);
        let other = Maglev::build(&backward, &[true; 3]);
        for (a, b) in one.slots().zip(other.slots()) {
            assert_eq!(
                forward[usize::from(a.unwrap())],
                backward[usize::from(b.unwrap())]
            );
        }
    }

    /// Pins the fleet contract: if this fails, brokers of different versions disagree.
    #[test]
    fn golden_table() {
        let table = Maglev::build(&["suricata-1", "suricata-2", "suricata-3"], &[true; 3]);
        let head: Vec<u16> = table.slots().take(24).map(Option::unwrap).collect();
        assert_eq!(head, GOLDEN_HEAD);
        let lookups: Vec<Option<u16>> = [0, 1 << 63, u64::MAX, 0x0123_4567_89ab_cdef]
            .iter()
            .map(|&h| table.lookup(h))
            .collect();
        assert_eq!(lookups, GOLDEN_LOOKUPS);
        let degraded = Maglev::build(
            &["suricata-1", "suricata-2", "suricata-3"],
            &[true, false, true],
        );
        let head: Vec<u16> = degraded.slots().take(24).map(Option::unwrap).collect();
        assert_eq!(head, GOLDEN_DEGRADED_HEAD);
    }

    const GOLDEN_HEAD: [u16; 24] = [
        2, 1, 1, 0, 1, 0, 2, 2, 2, 1, 2, 1, 2, 0, 0, 2, 1, 2, 1, 0, 0, 0, 0, 1,
    ];
    const GOLDEN_LOOKUPS: [Option<u16>; 4] = [Some(2), Some(1), Some(1), Some(1)];
    const GOLDEN_DEGRADED_HEAD: [u16; 24] = [
        2, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 0, 0, 2, 2, 2, 2, 0, 0, 0, 0, 2,
    ];
}
