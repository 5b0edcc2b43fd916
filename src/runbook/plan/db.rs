//! The database tier's actions: confirm the master is down, try to boot it, move its volume to a
//! new instance or promote the least-lagged replica, switch the endpoint, repoint the replicas,
//! add a replica and tell the application.

use super::guards::rejected_for_lag_only;
use super::{Plan, Planning, var};
use crate::domain::call::ProviderCall;
use crate::domain::{InstanceState, Role};
use crate::runbook::model::Confirm;
use crate::runbook::overrides::Override;

pub(super) fn confirm_master_down(planning: &Planning, p: &mut Plan) -> Result<(), String> {
    let t = planning.target()?;
    let heartbeat = t.db.as_ref().map_or(f32::NAN, |d| d.heartbeat_age_secs);
    // Read over MySQL, a server that answers (even to refuse dake's login) is up, whatever
    // the host's checks say: failing over from it would make two masters.
    let answers =
        t.db.as_ref()
            .and_then(|d| d.server.as_ref())
            .is_some_and(|f| f.answers() || f.refused_dake());
    let down = !answers
        && (t.health.checks.any_impaired()
            || t.state != InstanceState::Running
            || heartbeat > planning.ctx.master_heartbeat_secs);
    let facts = say!(
        "{}: state {}, checks {}/2, heartbeat {heartbeat:.0} s old",
        t.name,
        t.state.as_str(),
        t.health.checks.passed(),
    );
    let overridden = planning.ctx.allows(Override::MasterAnswers);
    if answers && !overridden {
        return Err(Override::MasterAnswers.refusal(say!(
            "{facts}, and MySQL answers: it is up, so there is nothing to fail over (a stalled \
             heartbeat writer looks like a dead master)"
        )));
    }
    if !down && !overridden {
        return Err(Override::MasterAnswers.refusal(say!(
            "{facts}: it answers, so there is nothing to fail over"
        )));
    }
    p.finding = Some(say!("{facts}: down"));
    Ok(())
}

pub(super) fn reboot_instance(planning: &Planning, p: &mut Plan) -> Result<(), String> {
    let t = planning.target()?;
    let instance_id = t.id.clone();
    // AWS reboots only a running instance; a stopped one has to be started.
    p.calls.push(match t.state {
        InstanceState::Running => ProviderCall::RebootInstances { instance_id },
        InstanceState::Stopped => ProviderCall::StartInstances { instance_id },
        other => {
            return Err(say!(
                "{} is {}: wait until it is running or stopped to boot it",
                t.name,
                other.as_str()
            ));
        }
    });
    Ok(())
}

pub(super) fn stop_instance(planning: &Planning, p: &mut Plan) -> Result<(), String> {
    let t = planning.target()?;
    p.calls.push(ProviderCall::StopInstances {
        instance_id: t.id.clone(),
        force: false,
    });
    Ok(())
}

/// Forced only when the instance will not stop, with a file-system-check warning; always
/// confirmed by typing the volume id's end.
pub(super) fn detach_volume(planning: &Planning, p: &mut Plan) -> Result<(), String> {
    let t = planning.target()?;
    let vol = t
        .volumes
        .iter()
        .find(|v| v.sole_copy)
        .ok_or_else(|| say!("{} has no data volume attached", t.name))?;
    let force = t.state != InstanceState::Stopped;
    if force {
        p.warnings.push(say!(
            "{} is {}, so the detach is FORCED: check the file system (fsck) before MySQL starts on it",
            t.name,
            t.state.as_str()
        ));
    }
    p.confirm = Confirm::TypeId;
    p.confirm_id = Some(vol.id.clone());
    p.decided.push((var::VOLUME.into(), vol.id.clone()));
    if force {
        p.decided.push((var::FORCED_DETACH.into(), "yes".into()));
    }
    p.decided.push((var::DEVICE.into(), vol.device.clone()));
    p.calls.push(ProviderCall::DetachVolume {
        volume_id: vol.id.clone(),
        instance_id: t.id.clone(),
        force,
    });
    Ok(())
}

pub(super) fn launch_db_instance(planning: &Planning, p: &mut Plan) -> Result<(), String> {
    let t = planning.target()?;
    let name = format!("db-master-{}", planning.name_suffix());
    p.calls.push(planning.launch_like(t, name, Role::DbMaster));
    p.creates_var = Some(var::NEW_MASTER.into());
    Ok(())
}

pub(super) fn attach_volume(planning: &Planning, p: &mut Plan) -> Result<(), String> {
    let vol = planning.ctx.get(var::VOLUME)?;
    let device = planning.ctx.get(var::DEVICE)?;
    let new = planning.recorded(var::NEW_MASTER)?;
    p.calls.push(ProviderCall::AttachVolume {
        volume_id: vol.into(),
        instance_id: new.id.clone(),
        device: device.into(),
    });
    Ok(())
}

pub(super) fn start_database(planning: &Planning, p: &mut Plan) -> Result<(), String> {
    let new = planning.recorded(var::NEW_MASTER)?;
    p.calls.push(ProviderCall::StartDatabase {
        instance_id: new.id.clone(),
    });
    if planning.ctx.vars.contains_key(var::FORCED_DETACH) {
        p.warnings.push(say!(
            "its volume was detached by force: MySQL runs crash recovery on {} before it \
             answers; what its log says of the recovery is shown once it starts",
            new.name
        ));
        p.finding = Some(said!("recovery needed (forced detach)").into());
    }
    super::promote::prove_writable(planning, new, p);
    Ok(())
}

pub(super) fn switch_endpoint(planning: &Planning, p: &mut Plan) -> Result<(), String> {
    let new = planning.recorded(var::NEW_MASTER)?;
    p.calls.push(ProviderCall::SetDbEndpoint {
        name: planning.ctx.db_endpoint.clone(),
        target_id: new.id.clone(),
    });
    Ok(())
}

/// Chooses the best promotable replica, saying why every other one was not; forced, the
/// least-behind one that fails on lag alone.
pub(super) fn rank_replicas(planning: &Planning, p: &mut Plan) -> Result<(), String> {
    let ranked = crate::replicas::rank_replicas(planning.snap, planning.ctx.replica_max_lag_secs);
    let lines: Vec<String> = ranked
        .iter()
        .map(|c| {
            let behind = c.behind_master_secs;
            let facts = match c.transactions {
                Some(n) => say!("holds {n} transactions, {behind:.1}s behind"),
                None => say!("{behind:.1}s behind"),
            };
            match &c.rejection {
                None if c.best => say!("{} best ({facts})", c.name),
                None => say!("{} promotable ({facts})", c.name),
                Some(why) => say!("{} rejected: {why}", c.name),
            }
        })
        .collect();
    let chosen = ranked.iter().find(|c| c.best).or_else(|| {
        ranked
            .iter()
            .filter(|c| planning.ctx.allows(Override::LaggingReplica) && rejected_for_lag_only(c))
            .min_by(|a, b| a.behind_master_secs.total_cmp(&b.behind_master_secs))
    });
    let chosen = chosen.ok_or_else(|| say!("no replica can be promoted: {}", lines.join("; ")))?;
    p.warnings.extend(skewed_clocks(planning.snap));
    p.decided
        .push((var::NEW_MASTER.into(), chosen.instance_id.clone()));
    p.finding = Some(say!("chose {}; {}", chosen.name, lines.join("; ")));
    Ok(())
}

pub(super) fn launch_replica(planning: &Planning, p: &mut Plan) -> Result<(), String> {
    let new = planning.recorded(var::NEW_MASTER)?;
    let name = format!("db-replica-{}", planning.name_suffix());
    p.calls
        .push(planning.launch_like(new, name, Role::DbReplica));
    p.creates_var = Some(var::NEW_REPLICA.into());
    Ok(())
}

pub(super) fn notify_app(planning: &Planning, p: &mut Plan) -> Result<(), String> {
    let id = planning.ctx.get(var::NEW_REPLICA)?;
    p.calls.push(ProviderCall::NotifyReplicaAdded {
        instance_id: id.into(),
    });
    Ok(())
}

/// A database server's clock more than this far from dake's makes a heartbeat lag suspect.
const MAX_CLOCK_SKEW_SECS: f64 = 1.0;

/// Servers whose clocks are off dake's: lags are put on dake's clock with the beat writer's
/// skew, which cannot be measured once the writer is dead.
fn skewed_clocks(snap: &crate::domain::FleetSnapshot) -> Vec<String> {
    snap.instances
        .iter()
        .filter_map(|i| {
            let f = i.db.as_ref()?.server.as_ref()?;
            (f.answers() && f.clock_skew_secs.abs() > MAX_CLOCK_SKEW_SECS).then(|| {
                say!(
                    "{}'s clock is {:+.1} s off dake's: heartbeat lags may be off by as much",
                    i.name,
                    f.clock_skew_secs
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ServerFacts;
    use crate::test_support::fleet_at;

    #[test]
    fn a_server_clock_off_dakes_is_warned_of() {
        let mut snap = fleet_at(0.0);
        assert!(
            skewed_clocks(&snap).is_empty(),
            "no server read, nothing to say"
        );
        let r = snap
            .instances
            .iter_mut()
            .find(|i| i.name == "db-replica-2")
            .unwrap();
        let mut f = ServerFacts::unreachable("10.0.0.3:3306".into(), String::new());
        f.unreachable = None;
        f.clock_skew_secs = 3.04;
        r.db.as_mut().unwrap().server = Some(f);
        let said = skewed_clocks(&snap);
        assert_eq!(said.len(), 1);
        assert!(
            said[0].starts_with("db-replica-2's clock is +3.0 s off dake's"),
            "{}",
            said[0]
        );
    }
}
