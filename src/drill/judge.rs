//! What a drill judges against the fleet as it is: whether a call removes a healthy instance or
//! promotes the wrong replica, whether two servers take writes at once, whether the fleet is
//! recovered. Pure: the snapshot and detection's incidents in, a finding out.

use crate::domain::call::ProviderCall;
use crate::domain::{CheckStatus, FleetSnapshot, Instance, InstanceState, Role, TargetHealth};
use crate::replicas::rank_replicas;

use super::scenario::Recovered;

/// A wrong or risky action, by kind: what the scorecard names and the penalties price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Wrong {
    HealthyRemoved,
    LaggingPromoted,
    ErrantPromoted,
    OverrideUsed,
    TwoMasters,
    UnneededFailover,
    WrongPlaybook,
}

/// The replica a call promotes, if it promotes one (by host command or by SQL).
pub fn promoted(call: &ProviderCall) -> Option<&str> {
    match call {
        ProviderCall::PromoteReplica { instance_id } => Some(instance_id),
        ProviderCall::Sql {
            instance_id,
            statements,
            ..
        } if statements.iter().any(|s| {
            let s = s.to_ascii_uppercase();
            s.starts_with("RESET REPLICA") || s.starts_with("RESET SLAVE")
        }) =>
        {
            Some(instance_id)
        }
        _ => None,
    }
}

/// The instance a call takes out of service, if it takes one out.
pub fn removed(call: &ProviderCall) -> Option<&str> {
    match call {
        ProviderCall::TerminateInstances { instance_id }
        | ProviderCall::StopInstances { instance_id, .. }
        | ProviderCall::DeregisterTarget { instance_id, .. } => Some(instance_id),
        _ => None,
    }
}

/// Whether promoting `id` on the fleet as `snap` shows it is wrong: a replica with an errant
/// transaction, or one with less of the master's data than another that could be promoted.
pub fn judge_promotion(snap: &FleetSnapshot, id: &str) -> Option<(Wrong, String)> {
    // Any lag: the question is which replica holds the most, not whether it is under a limit.
    let ranked = rank_replicas(snap, f32::INFINITY);
    let me = ranked.iter().find(|c| c.instance_id == id)?;
    let lagging = |why: String| Some((Wrong::LaggingPromoted, why));
    let errant = snap
        .find(id)
        .and_then(|i| i.db.as_ref())
        .and_then(|d| d.server.as_ref())
        .is_some_and(|f| !f.errant.is_empty());
    if errant {
        return Some((
            Wrong::ErrantPromoted,
            say!("{} promoted with an errant transaction", me.name),
        ));
    }
    // What the rank says against it, any lag allowed: it lacks what another received.
    if let Some(why) = &me.rejection {
        return lagging(say!("{} promoted though {why}", me.name));
    }
    let better = ranked
        .iter()
        .filter(|c| c.promotable() && c.instance_id != id)
        .find(|c| match (c.transactions, me.transactions) {
            (Some(theirs), Some(mine)) => theirs > mine,
            _ => c.behind_master_secs + LAG_TOLERANCE_SECS < me.behind_master_secs,
        })?;
    lagging(say!(
        "{} promoted ({:.0} s behind) while {} had more of the master's data ({:.0} s)",
        me.name,
        me.behind_master_secs,
        better.name,
        better.behind_master_secs
    ))
}

/// Two replicas within this many seconds of each other hold the same, as far as time tells.
const LAG_TOLERANCE_SECS: f32 = 5.0;

/// Whether `inst` was healthy when it was taken out: running, its checks passing, named by no
/// incident and no fault of the drill so far (`implicated`).
pub fn healthy(inst: &Instance, implicated: &[String]) -> bool {
    inst.state == InstanceState::Running
        && inst.health.checks.system == CheckStatus::Ok
        && inst.health.checks.instance == CheckStatus::Ok
        && !implicated.iter().any(|i| i == &inst.id)
}

/// Database servers that answer and take writes: more than one is a split brain.
pub fn writable(snap: &FleetSnapshot, heartbeat_secs: f32) -> Vec<&Instance> {
    snap.instances
        .iter()
        .chain(&snap.retired)
        .filter(|i| i.state == InstanceState::Running)
        .filter(|i| match &i.db {
            Some(db) => match &db.server {
                Some(f) => f.unreachable.is_none() && !f.read_only,
                None => db.running && !db.read_only && db.heartbeat_age_secs < heartbeat_secs,
            },
            None => false,
        })
        .collect()
}

/// What still keeps the fleet from counting as recovered, or `None` when it is.
pub fn not_recovered(
    snap: &FleetSnapshot,
    incidents: usize,
    want: &Recovered,
    heartbeat_secs: f32,
) -> Option<String> {
    if want.no_incident && incidents > 0 {
        return Some(say!("{incidents} incident(s) still detected"));
    }
    if let Some(n) = want.web_in_service {
        let serving = snap
            .by_role(Role::Web)
            .filter(|i| i.state == InstanceState::Running)
            .filter(|i| i.target == Some(TargetHealth::Healthy))
            .count();
        if serving < n {
            return Some(say!("{serving} of {n} web servers in service"));
        }
    }
    let master = snap.master();
    if want.master_writable {
        let writers = writable(snap, heartbeat_secs);
        match (master, writers.as_slice()) {
            (Some(m), [w]) if w.id == m.id => {}
            (_, []) => return Some(said!("no master takes writes").into()),
            (_, [_]) => {
                return Some(said!("the endpoint does not point at the writable master").into());
            }
            (_, _) => return Some(say!("{} servers take writes", writers.len())),
        }
    }
    if let Some(n) = want.replicas_following {
        let following = master.map_or(0, |m| {
            snap.by_role(Role::DbReplica)
                .filter(|r| r.state == InstanceState::Running)
                .filter(|r| {
                    r.db.as_ref().is_some_and(|d| {
                        d.source_id.as_deref() == Some(m.id.as_str())
                            && d.io_thread_running
                            && d.sql_thread_running
                    })
                })
                .count()
        });
        if following < n {
            return Some(say!("{following} of {n} replicas follow the master"));
        }
    }
    None
}
