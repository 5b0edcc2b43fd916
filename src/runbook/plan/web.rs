//! The web tier's actions: compare with peers, restart, replace, swap in the load balancer,
//! throw the bad one away.

use super::{Plan, Planning, var};
use crate::detect::median;
use crate::domain::call::{ProviderCall, TAG_QUARANTINE};
use crate::domain::{FleetSnapshot, InstanceState, Role};
use crate::runbook::overrides::Override;

fn peers_median_p99(snap: &FleetSnapshot, except: &str) -> Option<f32> {
    let mut v: Vec<f32> = snap
        .by_role(Role::Web)
        .filter(|i| i.id != except && i.state == InstanceState::Running)
        .filter_map(|i| i.latest_p99())
        .filter(|v| v.is_finite())
        .collect();
    median(&mut v)
}

pub(super) fn compare_peers(planning: &Planning, p: &mut Plan) -> Result<(), String> {
    let t = planning.target()?;
    let median = peers_median_p99(planning.snap, &t.id);
    let p99 = t.latest_p99().unwrap_or(f32::NAN);
    let Some(m) = median.filter(|m| *m > 0.0) else {
        p.finding = Some(say!("{} has no running peers to compare with", t.name));
        return Ok(());
    };
    let facts = say!(
        "{} p99 {p99:.0} ms vs peers' median {m:.0} ms ({:.1}x), CPU {:.0}%, checks {}/2",
        t.name,
        p99 / m,
        t.latest_cpu().unwrap_or(f32::NAN),
        t.health.checks.passed()
    );
    // Detection's own bar for "recovered": below it the server is one of its peers. A server
    // that reports no latency at all is not healthy by this measure, so it is not refused.
    let factor = planning.ctx.slow_web_clear_factor;
    if p99 < factor * m && !planning.ctx.allows(Override::NotAnOutlier) {
        return Err(Override::NotAnOutlier.refusal(say!(
            "{facts}: not an outlier (below {factor}x its peers), so replacing it would throw \
             away a healthy server"
        )));
    }
    p.finding = Some(facts);
    Ok(())
}

pub(super) fn restart_app(planning: &Planning, p: &mut Plan) -> Result<(), String> {
    let t = planning.target()?;
    if t.state != InstanceState::Running {
        return Err(say!("{} is {}, not running", t.name, t.state.as_str()));
    }
    p.calls.push(ProviderCall::RestartApp {
        instance_id: t.id.clone(),
    });
    Ok(())
}

pub(super) fn launch_replacement(planning: &Planning, p: &mut Plan) -> Result<(), String> {
    let t = planning.target()?;
    let name = format!("{}-{}", t.name, planning.name_suffix());
    p.calls.push(planning.launch_like(t, name, t.role));
    p.creates_var = Some(var::REPLACEMENT.into());
    Ok(())
}

pub(super) fn register_target(planning: &Planning, p: &mut Plan) -> Result<(), String> {
    let new = planning.recorded(var::REPLACEMENT)?;
    p.calls.push(ProviderCall::RegisterTarget {
        target_group: planning.ctx.target_group.clone(),
        instance_id: new.id.clone(),
    });
    Ok(())
}

pub(super) fn deregister_target(planning: &Planning, p: &mut Plan) -> Result<(), String> {
    let t = planning.target()?;
    p.calls.push(ProviderCall::DeregisterTarget {
        target_group: planning.ctx.target_group.clone(),
        instance_id: t.id.clone(),
    });
    Ok(())
}

/// Terminate it, or quarantine it (stop and tag) for forensics; never while it still serves as
/// the database or holds the only copy of data.
pub(super) fn dispose_instance(planning: &Planning, p: &mut Plan) -> Result<(), String> {
    let t = planning.target()?;
    if planning
        .snap
        .db_endpoint
        .as_ref()
        .is_some_and(|e| e.target_id == t.id)
    {
        return Err(say!(
            "{} is still where the database endpoint points; switch the endpoint first",
            t.name
        ));
    }
    if t.volumes.iter().any(|v| v.sole_copy) {
        return Err(say!(
            "{} still holds the only copy of its data; detach it first",
            t.name
        ));
    }
    p.confirm_id = Some(t.id.clone());
    if planning.ctx.quarantine {
        p.calls.push(ProviderCall::StopInstances {
            instance_id: t.id.clone(),
            force: false,
        });
        p.calls.push(ProviderCall::CreateTags {
            resource_id: t.id.clone(),
            tags: vec![(TAG_QUARANTINE.into(), planning.ctx.run_id.clone())],
        });
    } else {
        p.calls.push(ProviderCall::TerminateInstances {
            instance_id: t.id.clone(),
        });
    }
    Ok(())
}
