//! What success looks like for each step, checked against every new snapshot. Pure.

use super::model::WaitKind;
use super::plan::{RunContext, var};
use crate::domain::{CheckStatus, FleetSnapshot, InstanceState, Role, TargetHealth, VolumeState};

#[derive(Debug, Clone, PartialEq)]
pub struct WaitCheck {
    pub done: bool,
    /// What the fleet shows now, e.g. "pending, checks initializing".
    pub detail: String,
}

fn check(done: bool, detail: impl Into<String>) -> WaitCheck {
    WaitCheck {
        done,
        detail: detail.into(),
    }
}

fn var_or<'a>(ctx: &'a RunContext, name: &str) -> &'a str {
    ctx.vars.get(name).map_or("?", String::as_str)
}

pub fn evaluate(wait: WaitKind, ctx: &RunContext, snap: &FleetSnapshot) -> WaitCheck {
    let target = ctx.target_id.as_str();
    match wait {
        WaitKind::LatencyRecovered => latency_recovered(ctx, snap),
        WaitKind::InstanceReady => instance_ready(snap, instance_for_ready(ctx)),
        WaitKind::TargetHealthy => {
            let id = var_or(ctx, var::REPLACEMENT);
            match snap.find(id).and_then(|i| i.target) {
                Some(h) => check(h == TargetHealth::Healthy, format!("target {}", h.as_str())),
                None => check(false, "not registered"),
            }
        }
        WaitKind::TargetDrained => match snap.find(target).and_then(|i| i.target) {
            Some(h) => check(false, format!("target {}", h.as_str())),
            None => check(true, "out of the target group"),
        },
        WaitKind::InstanceGone => match snap.find(target) {
            None => check(true, "gone"),
            Some(i) if ctx.quarantine => check(
                i.state == InstanceState::Stopped,
                format!("{} (quarantine)", i.state.as_str()),
            ),
            Some(i) => check(i.state == InstanceState::Terminated, i.state.as_str()),
        },
        WaitKind::MasterAnswering => match snap.find(target) {
            None => check(false, "not in the fleet"),
            Some(i) => {
                let hb =
                    i.db.as_ref()
                        .map_or(f32::INFINITY, |d| d.heartbeat_age_secs);
                let ok = !i.health.checks.any_impaired()
                    && i.state == InstanceState::Running
                    && hb < ctx.master_heartbeat_secs;
                check(
                    ok,
                    format!(
                        "{}, checks {}/2, heartbeat {hb:.0} s",
                        i.state.as_str(),
                        i.health.checks.passed()
                    ),
                )
            }
        },
        WaitKind::InstanceStopped => match snap.find(target) {
            None => check(false, "not in the fleet"),
            Some(i) => check(i.state == InstanceState::Stopped, i.state.as_str()),
        },
        WaitKind::VolumeAvailable => {
            let vol = var_or(ctx, var::VOLUME);
            match snap.free_volumes.iter().find(|v| v.id == vol) {
                Some(v) => check(
                    v.state == VolumeState::Available,
                    format!("{vol} {:?}", v.state).to_lowercase(),
                ),
                None => check(false, format!("{vol} still attached")),
            }
        }
        WaitKind::VolumeAttached => {
            let vol = var_or(ctx, var::VOLUME);
            let new = var_or(ctx, var::NEW_MASTER);
            let attached = snap
                .find(new)
                .is_some_and(|i| i.volumes.iter().any(|v| v.id == vol));
            check(attached, if attached { "attached" } else { "attaching" })
        }
        WaitKind::DbAnswering => db_state(snap, var_or(ctx, var::NEW_MASTER), false),
        WaitKind::DbWritable => db_state(snap, var_or(ctx, var::NEW_MASTER), true),
        WaitKind::EndpointSwitched => {
            let new = var_or(ctx, var::NEW_MASTER);
            match &snap.db_endpoint {
                Some(ep) => check(
                    ep.target_id == new,
                    format!("{} → {}", ep.name, ep.target_id),
                ),
                None => check(false, "no endpoint reported"),
            }
        }
        WaitKind::ReplicasFollowing => {
            let new = var_or(ctx, var::NEW_MASTER);
            let lagging: Vec<&str> = snap
                .by_role(Role::DbReplica)
                .filter(|r| r.id != new && r.id != target && r.state == InstanceState::Running)
                .filter(|r| {
                    !r.db
                        .as_ref()
                        .is_some_and(|d| d.source_id.as_deref() == Some(new) && d.io_thread_running)
                })
                .map(|r| r.name.as_str())
                .collect();
            check(
                lagging.is_empty(),
                if lagging.is_empty() {
                    "all following".to_string()
                } else {
                    format!("waiting for {}", lagging.join(", "))
                },
            )
        }
        WaitKind::ReplicaFollowing => {
            let id = var_or(ctx, var::NEW_REPLICA);
            let master = snap.master().map(|m| m.id.as_str());
            match snap.find(id) {
                None => check(false, "not in the fleet yet"),
                Some(r) => {
                    let following = r.db.as_ref().is_some_and(|d| {
                        d.source_id.as_deref() == master && d.io_thread_running && d.running
                    });
                    check(
                        following,
                        format!(
                            "{}, {}",
                            r.state.as_str(),
                            if following {
                                "following"
                            } else {
                                "not following yet"
                            }
                        ),
                    )
                }
            }
        }
    }
}

/// Recovered means back among its peers for a whole detection window, not one lucky sample.
fn latency_recovered(ctx: &RunContext, snap: &FleetSnapshot) -> WaitCheck {
    let target = ctx.target_id.as_str();
    let Some(t) = snap.find(target) else {
        return check(false, "target not in the fleet");
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
            return check(false, "not enough latency data yet");
        };
        if !(p99.is_finite() && m > 0.0) {
            return check(false, "no latency data");
        }
        latest.get_or_insert((p99, m));
        if p99 >= ctx.slow_web_clear_factor * m {
            let (p, m) = latest.unwrap_or((p99, m));
            return check(
                false,
                format!("p99 {p:.0} ms vs peers' {m:.0} ms ({:.1}x)", p / m),
            );
        }
    }
    let (p, m) = latest.unwrap_or((0.0, 1.0));
    check(
        true,
        format!(
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
        None => check(false, "not visible yet"),
        Some(i) => {
            let c = i.health.checks;
            let ok = i.state == InstanceState::Running
                && c.system == CheckStatus::Ok
                && c.instance == CheckStatus::Ok;
            check(ok, format!("{}, checks {}/2", i.state.as_str(), c.passed()))
        }
    }
}

fn db_state(snap: &FleetSnapshot, id: &str, writable: bool) -> WaitCheck {
    match snap.find(id).and_then(|i| i.db.as_ref()) {
        None => check(false, "no database status yet"),
        Some(d) => {
            let ok = d.running && (!writable || !d.read_only);
            let detail = match (d.running, d.read_only) {
                (false, _) => "MySQL not running",
                (true, true) => "MySQL running, read-only",
                (true, false) => "MySQL running, writable",
            };
            check(ok, detail)
        }
    }
}
