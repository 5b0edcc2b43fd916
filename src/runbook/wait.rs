//! Waits: what success looks like for each step, checked against every new snapshot (pure),
//! and how a waiting run moves on: done, cut its losses, or fails at its timeout.

use chrono::{DateTime, Duration, Utc};

use super::engine::{Phase, Run};
use super::event::Effect;
use super::model::{OnTimeout, WaitKind};
use super::plan::{Plan, RunContext, var};
use super::record::{Record, StepStatus};
use crate::domain::{CheckStatus, FleetSnapshot, InstanceState, Role, TargetHealth, VolumeState};

mod db;

#[derive(Debug, Clone, PartialEq)]
pub struct WaitCheck {
    pub done: bool,
    /// What the fleet shows now, e.g. "pending, checks initializing".
    pub detail: String,
}

pub(super) fn check(done: bool, detail: impl Into<String>) -> WaitCheck {
    WaitCheck {
        done,
        detail: detail.into(),
    }
}

pub(super) fn var_or<'a>(ctx: &'a RunContext, name: &str) -> &'a str {
    ctx.vars.get(name).map_or("?", String::as_str)
}

/// Whether `wait` is over in `snap`; `since` is when the wait began (right after the step's
/// calls), for what must be newer than they are.
pub fn evaluate(
    wait: WaitKind,
    ctx: &RunContext,
    snap: &FleetSnapshot,
    since: DateTime<Utc>,
) -> WaitCheck {
    let target = ctx.target_id.as_str();
    match wait {
        WaitKind::LatencyRecovered => latency_recovered(ctx, snap),
        WaitKind::InstanceReady => instance_ready(snap, instance_for_ready(ctx)),
        WaitKind::TargetHealthy => target_healthy(snap, var_or(ctx, var::REPLACEMENT)),
        WaitKind::TargetDrained => match snap.find(target).and_then(|i| i.target) {
            Some(h) => check(false, say!("target {}", h.as_str())),
            None => check(true, said!("out of the target group")),
        },
        WaitKind::InstanceGone => instance_gone(ctx, snap),
        WaitKind::MasterAnswering => master_answering(ctx, snap, since),
        WaitKind::InstanceStopped => match snap.find(target) {
            None => check(false, said!("not in the fleet")),
            Some(i) => check(i.state == InstanceState::Stopped, i.state.as_str()),
        },
        WaitKind::VolumeAvailable => volume_available(snap, var_or(ctx, var::VOLUME)),
        WaitKind::VolumeAttached => {
            let vol = var_or(ctx, var::VOLUME);
            let new = var_or(ctx, var::NEW_MASTER);
            let attached = snap
                .find(new)
                .is_some_and(|i| i.volumes.iter().any(|v| v.id == vol));
            check(
                attached,
                if attached {
                    said!("attached")
                } else {
                    said!("attaching")
                },
            )
        }
        WaitKind::DbAnswering => db::db_state(snap, var_or(ctx, var::NEW_MASTER), false),
        WaitKind::DbWritable => db::db_state(snap, var_or(ctx, var::NEW_MASTER), true),
        WaitKind::EndpointSwitched => {
            let new = var_or(ctx, var::NEW_MASTER);
            match &snap.db_endpoint {
                Some(ep) => check(
                    ep.target_id == new,
                    format!("{} → {}", ep.name, ep.target_id),
                ),
                None => check(false, said!("no endpoint reported")),
            }
        }
        WaitKind::ReplicasFollowing => db::replicas_following(ctx, snap),
        WaitKind::ReplicaFollowing => db::replica_following(snap, var_or(ctx, var::NEW_REPLICA)),
        WaitKind::MasterFenced => db::master_fenced(ctx, snap),
        WaitKind::RelayLogApplied => db::relay_log_applied(snap, var_or(ctx, var::NEW_MASTER)),
    }
}

fn target_healthy(snap: &FleetSnapshot, id: &str) -> WaitCheck {
    match snap.find(id).and_then(|i| i.target) {
        Some(h) => check(h == TargetHealth::Healthy, say!("target {}", h.as_str())),
        None => check(false, said!("not registered")),
    }
}

/// Terminated and gone, or stopped when quarantined.
fn instance_gone(ctx: &RunContext, snap: &FleetSnapshot) -> WaitCheck {
    match snap.find(&ctx.target_id) {
        None => check(true, said!("gone")),
        Some(i) if ctx.quarantine => check(
            i.state == InstanceState::Stopped,
            say!("{} (quarantine)", i.state.as_str()),
        ),
        Some(i) => check(i.state == InstanceState::Terminated, i.state.as_str()),
    }
}

/// Back means a heartbeat written after the boot (`since`): one from before it, as a minute
/// metric and its publishing delay can show for minutes, says nothing of the server now. Read
/// over MySQL it must also answer and take writes.
fn master_answering(ctx: &RunContext, snap: &FleetSnapshot, since: DateTime<Utc>) -> WaitCheck {
    let Some(i) = snap.find(&ctx.target_id) else {
        return check(false, said!("not in the fleet"));
    };
    let hb =
        i.db.as_ref()
            .map_or(f32::INFINITY, |d| d.heartbeat_age_secs);
    let since_boot = (snap.taken_at - since).num_milliseconds() as f32 / 1000.0;
    let after_boot = hb < since_boot;
    let server = i.db.as_ref().and_then(|d| d.server.as_ref());
    let takes_writes = server.is_none_or(|f| f.answers() && !f.read_only);
    let ok = !i.health.checks.any_impaired()
        && i.state == InstanceState::Running
        && hb < ctx.master_heartbeat_secs
        && after_boot
        && takes_writes;
    let mut detail = vec![
        i.state.as_str().to_string(),
        say!("checks {}/2", i.health.checks.passed()),
        if hb.is_finite() && !after_boot {
            say!("heartbeat {hb:.0} s (from before the boot {since_boot:.0} s ago)")
        } else {
            say!("heartbeat {hb:.0} s")
        },
    ];
    match server {
        Some(f) if !f.answers() => detail.push(said!("MySQL does not answer").into()),
        Some(f) if f.read_only => detail.push(said!("MySQL read-only").into()),
        _ => {}
    }
    check(ok, detail.join(", "))
}

fn volume_available(snap: &FleetSnapshot, vol: &str) -> WaitCheck {
    match snap.free_volumes.iter().find(|v| v.id == vol) {
        Some(v) => match v.state {
            VolumeState::Available => check(true, say!("{vol} available")),
            VolumeState::Creating => check(false, say!("{vol} still being created")),
            VolumeState::Attaching | VolumeState::InUse => {
                check(false, say!("{vol} attached again"))
            }
            VolumeState::Detaching => check(false, say!("{vol} still detaching")),
        },
        None => check(false, say!("{vol} still attached")),
    }
}

/// Recovered means back among its peers for a whole detection window, not one lucky sample.
fn latency_recovered(ctx: &RunContext, snap: &FleetSnapshot) -> WaitCheck {
    let target = ctx.target_id.as_str();
    let Some(t) = snap.find(target) else {
        return check(false, said!("target not in the fleet"));
    };
    let peers: Vec<_> = snap
        .by_role(Role::Web)
        .filter(|i| i.id != target && i.state == InstanceState::Running)
        .collect();
    let interval = snap.sample_interval_secs.max(1);
    let window = ctx.slow_web_window_secs.div_ceil(interval).max(1) as usize;
    let mut latest = None;
    for age in 0..window {
        let mut at_age: Vec<f32> = peers
            .iter()
            .filter_map(|p| p.health.p99_ms.back(age))
            .filter(|v| v.is_finite())
            .collect();
        let (Some(p99), Some(m)) = (
            t.health.p99_ms.back(age),
            crate::detect::median(&mut at_age),
        ) else {
            return check(false, said!("not enough latency data yet"));
        };
        if !(p99.is_finite() && m > 0.0) {
            return check(false, said!("no latency data"));
        }
        latest.get_or_insert((p99, m));
        if p99 >= ctx.slow_web_clear_factor * m {
            let (p, m) = latest.unwrap_or((p99, m));
            return check(
                false,
                say!("p99 {p:.0} ms vs peers' {m:.0} ms ({:.1}x)", p / m),
            );
        }
    }
    let (p, m) = latest.unwrap_or((0.0, 1.0));
    check(
        true,
        say!(
            "p99 {p:.0} ms vs peers' {m:.0} ms ({:.1}x) for {} s",
            p / m,
            ctx.slow_web_window_secs
        ),
    )
}

/// The instance an `InstanceReady` wait is about: whatever the run launched most recently.
fn instance_for_ready(ctx: &RunContext) -> &str {
    [var::NEW_REPLICA, var::NEW_MASTER, var::REPLACEMENT]
        .iter()
        .find_map(|v| ctx.vars.get(*v))
        .map_or("?", String::as_str)
}

fn instance_ready(snap: &FleetSnapshot, id: &str) -> WaitCheck {
    match snap.find(id) {
        None => check(false, said!("not visible yet")),
        Some(i) => {
            let c = i.health.checks;
            let ok = i.state == InstanceState::Running
                && c.system == CheckStatus::Ok
                && c.instance == CheckStatus::Ok;
            let checks = say!("checks {}/2", c.passed());
            check(ok, format!("{}, {checks}", i.state.as_str()))
        }
    }
}

impl Run {
    pub(super) fn after_calls(&mut self, fx: &mut Vec<Effect>, plan: &Plan, now: DateTime<Utc>) {
        let step = self.playbook.steps[self.cursor].clone();
        match step.wait {
            Some(wait) => {
                let secs = plan.wait_secs.unwrap_or(step.timeout_secs);
                let deadline = now + Duration::seconds(secs as i64);
                self.phase = Phase::Waiting {
                    wait,
                    since: now,
                    deadline,
                    detail: String::new(),
                    longer: plan.wait_why.clone(),
                };
                self.journal(
                    fx,
                    Record::WaitStarted {
                        at: now,
                        step: self.cursor,
                    },
                );
            }
            None => {
                let note = self.steps[self.cursor].note.clone();
                self.finish_step(fx, StepStatus::Done, note, now);
            }
        }
    }

    /// `waiting`: what the wait is for, since when, until when, and why it may take longer.
    pub(super) fn observe(
        &mut self,
        fx: &mut Vec<Effect>,
        snap: &FleetSnapshot,
        waiting: (WaitKind, DateTime<Utc>, DateTime<Utc>, Option<String>),
        detail: String,
        now: DateTime<Utc>,
    ) {
        let (wait, since, deadline, longer) = waiting;
        let step = self.playbook.steps[self.cursor].clone();
        let check = evaluate(wait, &self.ctx, snap, since);
        if check.done {
            if step.finish_on_success {
                let outcome = say!(
                    "recovered at step {} ({}): {}",
                    self.cursor + 1,
                    step.name,
                    check.detail
                );
                self.finish_step(fx, StepStatus::Done, Some(check.detail), now);
                self.skip_pending();
                self.phase = Phase::Finished {
                    outcome: outcome.clone(),
                };
                self.release_lease(fx, now);
                self.journal(fx, Record::Finished { at: now, outcome });
            } else {
                // What the step found when it was planned stays beside what the wait saw.
                let note = match self.steps[self.cursor].note.take() {
                    Some(finding) => say!("{finding} → {}", check.detail),
                    None => check.detail,
                };
                self.finish_step(fx, StepStatus::Done, Some(note), now);
            }
            return;
        }
        if now >= deadline {
            let secs = step.timeout_secs;
            match step.on_timeout {
                OnTimeout::Continue => {
                    let note = say!(
                        "not done within {secs} s ({}): cut your losses and go on",
                        check.detail
                    );
                    self.finish_step(fx, StepStatus::TimedOut, Some(note), now);
                }
                OnTimeout::Fail => {
                    self.fail_step(fx, now, say!("timed out after {secs} s: {}", check.detail));
                }
            }
            return;
        }
        // Journal a wait's progress when what it shows changes, not every time a number moves.
        if shape(&check.detail) != shape(&detail) {
            self.note(fx, now, say!("waiting for {}: {}", step.name, check.detail));
        }
        self.phase = Phase::Waiting {
            wait,
            since,
            deadline,
            detail: check.detail,
            longer,
        };
    }
}

/// A wait's detail with its numbers taken out: "p99 824 ms (6.0x)" and "p99 790 ms (5.8x)" say
/// the same thing.
fn shape(detail: &str) -> String {
    detail
        .chars()
        .filter(|c| !c.is_ascii_digit() && *c != '.')
        .collect()
}
