//! Whether the broker does its job: what `GET /healthz` answers, for the load balancer in front
//! of it and for people.
//!
//! # Design
//! The control loop looks every tick: the broker is healthy while every worker keeps polling
//! its RX queue (its poll count moved within [`STALL`]) and every tool group has a live port
//! in the plan the workers run. Otherwise the answer is `503` with the first reason found, in a
//! line: a load balancer only reads the status, a person reads the line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use config::ValidatedConfig;
use pipelines::plan::Plan;

use super::state::ControlState;
use crate::report::Health;

/// How long a worker may go without polling before the broker is unhealthy: a worker polls
/// millions of times a second, so a second without one means it is stuck.
pub const STALL: Duration = Duration::from_secs(1);

/// The control loop's view of the workers' progress.
#[derive(Debug)]
pub struct HealthWatch {
    cell: Arc<ArcSwap<Health>>,
    /// Each worker's poll count when it last moved, and when.
    polls: Vec<(u64, Instant)>,
}

impl HealthWatch {
    /// A watch for `workers` workers that publishes into `cell`.
    pub fn new(cell: Arc<ArcSwap<Health>>, workers: usize) -> HealthWatch {
        HealthWatch {
            cell,
            polls: vec![(0, Instant::now()); workers],
        }
    }

    /// Looks at the workers and the plan now, and publishes what it finds.
    pub fn look(&mut self, plan: &Plan, state: &ControlState) {
        let now = Instant::now();
        let mut stalled = None;
        for (worker, (last, since)) in self.polls.iter_mut().enumerate() {
            let polls = state.ledger.polls(&plan.counters, worker);
            if polls != *last {
                *last = polls;
                *since = now;
            } else if stalled.is_none() && now.duration_since(*since) >= STALL {
                stalled = Some((worker, now.duration_since(*since)));
            }
        }
        let health = judge(&state.config, plan, self.polls.len(), stalled);
        if **self.cell.load() != health {
            self.cell.store(Arc::new(health));
        }
    }

    /// The broker is stopping: no longer a target to send to.
    pub fn stopping(&self) {
        self.cell.store(Arc::new(Health {
            ok: false,
            reason: "stopping".to_owned(),
        }));
    }
}

/// The verdict for `plan` (built from `config`) run by `workers` workers, one of which may have
/// stalled for a while.
fn judge(
    config: &ValidatedConfig,
    plan: &Plan,
    workers: usize,
    stalled: Option<(usize, Duration)>,
) -> Health {
    if let Some((worker, quiet)) = stalled {
        return Health {
            ok: false,
            reason: format!(
                "worker {worker} has not polled its queue for {:.1} s",
                quiet.as_secs_f64()
            ),
        };
    }
    let dead: Vec<&str> = config
        .tool_groups
        .iter()
        .zip(plan.groups.iter())
        .filter(|(_, group)| group.live_positions.is_empty())
        .map(|(group, _)| group.name.as_str())
        .collect();
    if !dead.is_empty() {
        return Health {
            ok: false,
            reason: format!(
                "no live port in tool group{} {}",
                if dead.len() > 1 { "s" } else { "" },
                dead.join(", ")
            ),
        };
    }
    Health {
        ok: true,
        reason: format!(
            "ok: {workers} worker{} polling, {} tool group{} with a live port",
            if workers == 1 { "" } else { "s" },
            plan.groups.len(),
            if plan.groups.len() == 1 { "" } else { "s" },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipelines::counters::WorkerCounters;
    use pipelines::plan::PortFacts;

    #[test]
    fn healthy_until_a_group_loses_its_ports_or_a_worker_stalls() {
        let config = config::fixtures::config(config::fixtures::TWO_SESSIONS);
        let counters = WorkerCounters::for_workers(&config, 2);
        let all_live = Plan::build(&config, 1, &PortFacts::default(), counters.clone());
        let health = judge(&config, &all_live, 2, None);
        assert!(health.ok, "{health:?}");
        assert_eq!(
            health.reason,
            "ok: 2 workers polling, 2 tool groups with a live port"
        );
        // Group "b" has one port, b-1 (tool port 2).
        let b_dead = Plan::build(
            &config,
            2,
            &PortFacts::links(&[true, true, false]),
            counters.clone(),
        );
        let health = judge(&config, &b_dead, 2, None);
        assert_eq!(
            (health.ok, health.http_code(), health.reason.as_str()),
            (false, 503, "no live port in tool group b")
        );
        let health = judge(
            &config,
            &all_live,
            2,
            Some((1, Duration::from_millis(1500))),
        );
        assert_eq!(health.reason, "worker 1 has not polled its queue for 1.5 s");
    }

    #[test]
    fn the_watch_notices_a_worker_that_stops_polling() {
        let config = config::fixtures::config(config::fixtures::MINIMAL);
        let counters = WorkerCounters::for_workers(&config, 1);
        let plan = Plan::build(&config, 1, &PortFacts::default(), counters.clone());
        let state = ControlState::new(config);
        let cell = Arc::new(ArcSwap::from_pointee(Health::starting()));
        let mut watch = HealthWatch::new(cell.clone(), 1);
        counters[0].idle_polls.add(10);
        watch.look(&plan, &state);
        assert!(cell.load().ok, "{:?}", cell.load());
        // Backdate the last movement instead of sleeping a second.
        watch.polls[0].1 = Instant::now() - STALL;
        watch.look(&plan, &state);
        assert!(!cell.load().ok);
        assert!(cell.load().reason.starts_with("worker 0 has not polled"));
        counters[0].busy_polls.incr();
        watch.look(&plan, &state);
        assert!(cell.load().ok, "it polls again");
        watch.stopping();
        assert_eq!(cell.load().reason, "stopping");
    }
}
