//! Counter totals by name: the one aggregation the exit summary, `/status` and the metrics share.
//!
//! Totals are typed: each block's sums are the block's own fields (`SessionTotals::delivered`,
//! generated with the counters in [`pipelines::counters`]), so a reader that names a counter
//! wrongly does not compile, and what a metric, a status row or a summary row reads is the same
//! field of the same sum.
//!
//! # Design
//! Workers count into their own [`WorkerCounters`], shaped by index for the config of the plan
//! they run (`sessions[i]` is the config's session `i`). Readers want totals by *name* — the
//! session called `web`, the tool port `ids-1` — because names are what an operator sees and
//! what stays stable when a reload retires one set of counters and brings another of a different
//! shape. [`Totals::of`] sums a set of worker counters over the workers and keys the sums by the
//! names of the config they were made for; [`Totals::add`] adds two such totals name by name.
//!
//! A [`Ledger`] owns the totals of the counter sets that no worker writes any more (retired by a
//! reload) and adds the live set's on every read, so every published total only ever grows, as
//! Prometheus counters must, whatever reloads happen in between.
//!
//! A retired set is not folded at once: a worker may still be finishing a burst under the plan
//! that carried it (or, idle, may not have loaded a plan since). The ledger keeps it *pending*,
//! reads it live like the current set, and folds it into its fixed totals only once it holds the
//! last reference to every worker's counters ([`Ledger::settle`]): workers reach counters only
//! through a plan, their pipeline or their TX side, all of which drop their reference when the
//! worker adopts a newer plan, so a set only the ledger holds is never written again. The check is
//! `Arc::get_mut`, whose acquire ordering makes every count the workers made visible before the
//! fold reads it.
//!
//! # Limitations
//! Names are the identity: renaming a session starts a new series at zero, and the old name's
//! total stays as it was (both are reported). A worker that receives nothing never loads a new
//! plan, so it keeps its old counters (and their set stays pending, read live) until its next
//! packet: exact, but the pending list holds one set per such worker at most.

use std::collections::BTreeMap;
use std::sync::Arc;

use config::{Action, ValidatedConfig};
use pipelines::Outcome;
use pipelines::counters::{
    BURST_CLASSES, GroupTotals, PortTotals, SessionTotals, WorkerCounters, WorkerTotals,
};

/// One worker's own counters (workers are fixed for the life of the process: keyed by index).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerSums {
    pub counts: WorkerTotals,
    /// Busy polls by burst-size class ([`pipelines::counters::burst_class`]).
    pub bursts: [u64; BURST_CLASSES],
}

/// A filter hit counter: the filter, the rule number (`None`: the default action) and the action
/// taken (part of the identity: a reload that flips a rule's action starts a new series).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FilterHit {
    pub filter: String,
    pub rule: Option<u16>,
    pub action: Action,
}

/// Counter totals summed over workers, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// By worker index.
    pub workers: Vec<WorkerSums>,
    /// By [`Outcome::index`].
    pub outcomes: Vec<u64>,
    /// By session name.
    pub sessions: BTreeMap<String, SessionTotals>,
    /// By tool group name.
    pub groups: BTreeMap<String, GroupTotals>,
    /// By (tool group name, tool port name).
    pub ports: BTreeMap<(String, String), PortTotals>,
    pub filters: BTreeMap<FilterHit, u64>,
}

fn add_slices(into: &mut [u64], from: &[u64]) {
    for (a, b) in into.iter_mut().zip(from) {
        *a = a.wrapping_add(*b);
    }
}

impl Totals {
    /// Sums `workers`' counters (worker `w` at index `w`), named after `config`, the config they
    /// were shaped for (the plan that carried them checked that they fit it).
    pub fn of(config: &ValidatedConfig, workers: &[&WorkerCounters]) -> Totals {
        let mut totals = Totals {
            outcomes: vec![0; Outcome::COUNT],
            ..Totals::default()
        };
        for w in workers {
            let mut worker = WorkerSums {
                counts: w.read(),
                ..WorkerSums::default()
            };
            for (slot, c) in worker.bursts.iter_mut().zip(w.bursts.iter()) {
                *slot = c.get();
            }
            totals.workers.push(worker);
            for (slot, c) in totals.outcomes.iter_mut().zip(w.outcomes.iter()) {
                *slot = slot.wrapping_add(c.get());
            }
            for (session, c) in config.sessions.iter().zip(w.sessions.iter()) {
                let sum = totals.sessions.entry(session.name.clone()).or_default();
                sum.add(&c.read());
            }
            for (group, c) in config.tool_groups.iter().zip(w.groups.iter()) {
                let sum = totals.groups.entry(group.name.clone()).or_default();
                sum.add(&c.read());
            }
            for (port, c) in config.tool_ports.iter().zip(w.ports.iter()) {
                let group = config.tool_groups[port.group.index()].name.clone();
                let sum = totals.ports.entry((group, port.name.clone())).or_default();
                sum.add(&c.read());
            }
            for (filter, c) in config.filters.iter().zip(w.filters.iter()) {
                for (rule, hits) in filter.rules.iter().zip(c.rules.iter()) {
                    let key = FilterHit {
                        filter: filter.name.clone(),
                        rule: Some(rule.number),
                        action: rule.action,
                    };
                    *totals.filters.entry(key).or_default() += hits.get();
                }
                let key = FilterHit {
                    filter: filter.name.clone(),
                    rule: None,
                    action: filter.default,
                };
                *totals.filters.entry(key).or_default() += c.default.get();
            }
        }
        totals
    }

    /// Adds `other` name by name (worker by index).
    pub fn add(&mut self, other: &Totals) {
        if self.workers.len() < other.workers.len() {
            self.workers
                .resize(other.workers.len(), WorkerSums::default());
        }
        for (a, b) in self.workers.iter_mut().zip(&other.workers) {
            a.counts.add(&b.counts);
            add_slices(&mut a.bursts, &b.bursts);
        }
        if self.outcomes.len() < other.outcomes.len() {
            self.outcomes.resize(other.outcomes.len(), 0);
        }
        add_slices(&mut self.outcomes, &other.outcomes);
        for (name, v) in &other.sessions {
            self.sessions.entry(name.clone()).or_default().add(v);
        }
        for (name, v) in &other.groups {
            self.groups.entry(name.clone()).or_default().add(v);
        }
        for (name, v) in &other.ports {
            self.ports.entry(name.clone()).or_default().add(v);
        }
        for (key, v) in &other.filters {
            *self.filters.entry(key.clone()).or_default() += v;
        }
    }

    /// The workers' counters summed over the workers.
    pub fn all_workers(&self) -> WorkerTotals {
        let mut sum = WorkerTotals::default();
        for w in &self.workers {
            sum.add(&w.counts);
        }
        sum
    }

    /// Packets the workers received.
    pub fn received(&self) -> u64 {
        self.all_workers().rx_packets
    }

    /// The count of one outcome.
    pub fn outcome(&self, outcome: Outcome) -> u64 {
        self.outcomes.get(outcome.index()).copied().unwrap_or(0)
    }
}

/// A counter set retired by a reload, with the config it was shaped for.
#[derive(Debug)]
struct Retired {
    config: ValidatedConfig,
    counters: Box<[Arc<WorkerCounters>]>,
}

impl Retired {
    fn totals(&self) -> Totals {
        let counters: Vec<&WorkerCounters> = self.counters.iter().map(Arc::as_ref).collect();
        Totals::of(&self.config, &counters)
    }
}

/// The totals of the counter sets reloads retired, kept by name: folded once no worker can
/// write them, read live until then.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Sets no worker holds any more, summed.
    folded: Totals,
    /// Sets a worker may still write (see the module docs).
    pending: Vec<Retired>,
}

impl Ledger {
    /// Takes `counters`, shaped for `config`, out of service: call it once the plan that carried
    /// them has been replaced by one with other counters. They stay pending until
    /// [`Ledger::settle`] finds that no worker holds them.
    pub fn retire(&mut self, config: &ValidatedConfig, counters: Box<[Arc<WorkerCounters>]>) {
        self.pending.push(Retired {
            config: config.clone(),
            counters,
        });
    }

    /// Folds every pending set that only the ledger still references; returns how many remain
    /// pending. Cheap: one reference count per worker and set.
    pub fn settle(&mut self) -> usize {
        let mut i = 0;
        while let Some(retired) = self.pending.get_mut(i) {
            // `get_mut` succeeds only for the last reference, and synchronises with the release
            // of every other one: the workers' last counts are visible from here on.
            if retired
                .counters
                .iter_mut()
                .all(|c| Arc::get_mut(c).is_some())
            {
                let retired = self.pending.swap_remove(i);
                self.folded.add(&retired.totals());
            } else {
                i += 1;
            }
        }
        self.pending.len()
    }

    /// Sets retired but possibly still written by a worker.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Everything counted so far: the folded totals, the pending sets and `live` (the current
    /// plan's counters, shaped for `config`).
    pub fn totals(&self, config: &ValidatedConfig, live: &[Arc<WorkerCounters>]) -> Totals {
        let live: Vec<&WorkerCounters> = live.iter().map(Arc::as_ref).collect();
        let mut totals = self.folded.clone();
        for retired in &self.pending {
            totals.add(&retired.totals());
        }
        totals.add(&Totals::of(config, &live));
        totals
    }

    /// Packets received so far (what [`Ledger::totals`] would say, without building them).
    pub fn received(&self, live: &[Arc<WorkerCounters>]) -> u64 {
        let sum =
            |set: &[Arc<WorkerCounters>]| -> u64 { set.iter().map(|c| c.rx_packets.get()).sum() };
        self.folded.received()
            + self.pending.iter().map(|r| sum(&r.counters)).sum::<u64>()
            + sum(live)
    }

    /// RX polls worker `worker` has made so far, busy or idle (the same sum, for one worker).
    pub fn polls(&self, live: &[Arc<WorkerCounters>], worker: usize) -> u64 {
        let of = |set: &[Arc<WorkerCounters>]| {
            set.get(worker)
                .map_or(0, |c| c.busy_polls.get() + c.idle_polls.get())
        };
        self.folded
            .workers
            .get(worker)
            .map_or(0, |w| w.counts.busy_polls + w.counts.idle_polls)
            + self.pending.iter().map(|r| of(&r.counters)).sum::<u64>()
            + of(live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::fixtures;

    const FILTERED: &str = r#"
[[filter]]
name = "f"
default = "reject"
[[filter.rule]]
number = 100
action = "accept"
protocol = "tcp"
"#;

    #[test]
    fn sums_over_workers_by_name() {
        let config = fixtures::config(&format!("{}{FILTERED}", fixtures::TWO_SESSIONS).replace(
            "name = \"a\"\nvni = 101",
            "name = \"a\"\nvni = 101\nfilter = \"f\"",
        ));
        let workers = WorkerCounters::for_workers(&config, 2);
        workers[0].rx_packets.add(5);
        workers[1].rx_packets.add(7);
        workers[0].burst(5);
        workers[1].burst(32);
        workers[0].outcome(Outcome::Delivered);
        workers[1].outcome(Outcome::Delivered);
        workers[0].sessions[1].delivered.add(3);
        workers[1].sessions[1].delivered.add(4);
        workers[1].ports[2].tx_packets.add(9);
        workers[0].filters[0].rules.get(0).unwrap().add(2);
        workers[1].filters[0].default.add(1);
        let refs: Vec<&WorkerCounters> = workers.iter().map(Arc::as_ref).collect();
        let t = Totals::of(&config, &refs);
        assert_eq!(t.received(), 12);
        assert_eq!(t.workers[0].counts.rx_packets, 5);
        assert_eq!(t.workers[0].bursts[2], 1);
        assert_eq!(t.workers[1].bursts[5], 1);
        assert_eq!(t.workers[1].counts.busy_polls, 1, "busy polls");
        assert_eq!(t.outcome(Outcome::Delivered), 2);
        assert_eq!(t.sessions["b"].delivered, 7);
        assert_eq!(t.sessions["a"].delivered, 0);
        assert_eq!(t.ports[&("b".into(), "b-1".into())].tx_packets, 9);
        let rule = FilterHit {
            filter: "f".into(),
            rule: Some(100),
            action: Action::Accept,
        };
        let default = FilterHit {
            filter: "f".into(),
            rule: None,
            action: Action::Reject,
        };
        assert_eq!(t.filters[&rule], 2);
        assert_eq!(t.filters[&default], 1);
    }

    #[test]
    fn ledger_keeps_retired_totals_by_name_across_shapes() {
        let before = fixtures::config(fixtures::TWO_SESSIONS);
        let old = WorkerCounters::for_workers(&before, 1);
        old[0].sessions[1].packets.add(10); // session "b"
        old[0].groups[0].copies.add(4); // group "a"
        old[0].rx_packets.add(10);
        let mut ledger = Ledger::default();
        ledger.retire(&before, old);
        assert_eq!(ledger.settle(), 0, "nobody else holds them: folded");

        // The new config drops session "a" and group "b": "b" is now session 0.
        let after = fixtures::config(&fixtures::MINIMAL.replace("name = \"s\"", "name = \"b\""));
        let new = WorkerCounters::for_workers(&after, 1);
        new[0].sessions[0].packets.add(1);
        new[0].rx_packets.add(1);
        let t = ledger.totals(&after, &new);
        assert_eq!(t.sessions["b"].packets, 11, "same name: one total");
        assert_eq!(t.sessions["a"].packets, 0);
        assert!(
            t.sessions.contains_key("a"),
            "a retired name keeps its series"
        );
        assert_eq!(t.groups["a"].copies, 4);
        assert_eq!(t.received(), 11);
        // Reading twice does not count twice.
        assert_eq!(ledger.totals(&after, &new), t);
    }

    /// A worker still finishing bursts under a retired plan keeps counting into the retired
    /// set: the ledger must not fold it before the worker lets go, and must lose nothing.
    #[test]
    fn a_retired_set_is_folded_only_once_no_worker_holds_it_and_nothing_is_lost() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let config = fixtures::config(fixtures::MINIMAL);
        let old = WorkerCounters::for_workers(&config, 1);
        let worker_copy = old[0].clone();
        let release = Arc::new(AtomicBool::new(false));
        let worker = {
            let release = release.clone();
            std::thread::spawn(move || {
                // A worker mid-burst under the old plan: counts until told to adopt the new one.
                let mut counted = 0u64;
                while !release.load(Ordering::Relaxed) || counted < 100_000 {
                    worker_copy.rx_packets.incr();
                    worker_copy.outcome(Outcome::Delivered);
                    counted += 1;
                }
                drop(worker_copy); // adopting the new plan drops the old counters
                counted
            })
        };
        let mut ledger = Ledger::default();
        ledger.retire(&config, old);
        let new = WorkerCounters::for_workers(&config, 1);
        let mut seen = 0;
        for _ in 0..100 {
            assert_eq!(
                ledger.settle(),
                1,
                "the worker still holds the set: pending"
            );
            let t = ledger.totals(&config, &new);
            assert!(t.received() >= seen, "totals never go back");
            seen = t.received();
        }
        release.store(true, Ordering::Relaxed);
        let counted = worker.join().unwrap();
        assert_eq!(ledger.settle(), 0, "the worker let go: folded");
        let t = ledger.totals(&config, &new);
        assert_eq!(t.received(), counted, "every count of the worker is kept");
        assert_eq!(t.outcome(Outcome::Delivered), counted);
        assert_eq!(ledger.received(&new), counted);
        new[0].rx_packets.add(3);
        assert_eq!(ledger.received(&new), counted + 3);
    }
}
