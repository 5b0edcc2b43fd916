//! What a step will do, decided against the fleet as it is now: the exact provider calls, the
//! guards that refuse unsafe moves, and what the operator must confirm. Pure.

use serde::{Deserialize, Serialize};

use super::model::{ActionKind, Confirm, GuardKind, Step};
use crate::domain::{FleetSnapshot, Instance, InstanceState, Role, TargetHealth};
use crate::provider::call::{ProviderCall, TAG_FLEET, TAG_QUARANTINE, TAG_ROLE, TAG_RUN, TAG_STEP};
use crate::replicas::rank_replicas;

/// Names under which steps record the ids later steps act on.
pub mod var {
    pub const REPLACEMENT: &str = "replacement_id";
    pub const VOLUME: &str = "volume_id";
    pub const DEVICE: &str = "device";
    pub const NEW_MASTER: &str = "new_master_id";
    pub const NEW_REPLICA: &str = "new_replica_id";
}

/// Everything a step needs to know about its run to plan itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunContext {
    pub run_id: String,
    pub fleet: String,
    pub target_id: String,
    pub target_name: String,
    pub target_group: String,
    pub db_endpoint: String,
    pub replica_max_lag_secs: f32,
    /// A master whose heartbeat is older than this is down.
    pub master_heartbeat_secs: f32,
    /// p99 below this multiple of the peers' median for this long counts as recovered.
    pub slow_web_clear_factor: f32,
    pub slow_web_window_secs: u32,
    /// Quarantine (stop and tag) instead of terminating.
    pub quarantine: bool,
    /// Operator overrode a refusable guard (lagging replicas, anti-flapping).
    pub force: bool,
    pub vars: std::collections::BTreeMap<String, String>,
}

impl RunContext {
    pub fn get(&self, name: &str) -> Result<&str, String> {
        self.vars
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("an earlier step did not record `{name}`"))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub calls: Vec<ProviderCall>,
    /// Said before the step runs; never blocks it.
    pub warnings: Vec<String>,
    /// What the step found, for steps that only look (compare, confirm, rank).
    pub finding: Option<String>,
    /// Ids this step decides on (not ones it creates: those come back from the calls).
    pub decided: Vec<(String, String)>,
    pub confirm: Confirm,
    /// For `Confirm::TypeId`: the id whose last 4 characters must be typed.
    pub confirm_id: Option<String>,
    /// Which var a created resource's id is stored in.
    pub creates_var: Option<String>,
}

fn find<'a>(snap: &'a FleetSnapshot, id: &str) -> Result<&'a Instance, String> {
    snap.find(id)
        .ok_or_else(|| format!("{id} is not in the fleet any more"))
}

fn peers_median_p99(snap: &FleetSnapshot, except: &str) -> Option<f32> {
    let mut v: Vec<f32> = snap
        .by_role(Role::Web)
        .filter(|i| i.id != except && i.state == InstanceState::Running)
        .filter_map(|i| i.latest_p99())
        .filter(|v| v.is_finite())
        .collect();
    crate::detect::median(&mut v)
}

fn launch_call(
    ctx: &RunContext,
    step: usize,
    template: &Instance,
    name: String,
    role: Role,
) -> ProviderCall {
    ProviderCall::RunInstances {
        name: name.clone(),
        role,
        image_id: template.image_id.clone(),
        instance_type: template.launch.instance_type.clone(),
        subnet_id: template.launch.subnet_id.clone(),
        az: template.az.clone(),
        security_groups: template.launch.security_groups.clone(),
        key_name: template.launch.key_name.clone(),
        // The role is a boot parameter of the one image, never a different image.
        user_data: format!("role={role}"),
        tags: vec![
            ("Name".into(), name),
            (TAG_FLEET.into(), ctx.fleet.clone()),
            (TAG_ROLE.into(), role.as_str().into()),
            (TAG_RUN.into(), ctx.run_id.clone()),
            (TAG_STEP.into(), step.to_string()),
        ],
        client_token: format!("{}-{step}", ctx.run_id),
        template_id: template.id.clone(),
    }
}

/// A short, stable suffix for names of instances a run creates.
fn run_suffix(ctx: &RunContext) -> &str {
    let id = ctx.run_id.as_str();
    &id[id.len().saturating_sub(4)..]
}

/// Plans `step` (number `index` in its playbook) against `snap`. `Err` is a refusal, with the
/// reason; nothing has been done.
pub fn plan(
    step: &Step,
    index: usize,
    ctx: &RunContext,
    snap: &FleetSnapshot,
) -> Result<Plan, String> {
    let mut p = Plan {
        calls: Vec::new(),
        warnings: Vec::new(),
        finding: None,
        decided: Vec::new(),
        confirm: step.confirmation(),
        confirm_id: None,
        creates_var: None,
    };
    let target_id = ctx.target_id.as_str();
    for guard in &step.guards {
        check_guard(*guard, ctx, snap, &mut p)?;
    }
    match step.action {
        ActionKind::ComparePeers => {
            let t = find(snap, target_id)?;
            let median = peers_median_p99(snap, target_id);
            let p99 = t.latest_p99().unwrap_or(f32::NAN);
            p.finding = Some(match median {
                Some(m) if m > 0.0 => format!(
                    "{} p99 {p99:.0} ms vs peers' median {m:.0} ms ({:.1}x); CPU {:.0}%; checks {}/2",
                    t.name,
                    p99 / m,
                    t.latest_cpu().unwrap_or(f32::NAN),
                    t.health.checks.passed()
                ),
                _ => format!("{} has no running peers to compare with", t.name),
            });
        }
        ActionKind::RestartApp => {
            let t = find(snap, target_id)?;
            if t.state != InstanceState::Running {
                return Err(format!("{} is {}, not running", t.name, t.state.as_str()));
            }
            p.calls.push(ProviderCall::RestartApp {
                instance_id: t.id.clone(),
            });
        }
        ActionKind::LaunchReplacement => {
            let t = find(snap, target_id)?;
            let name = format!("{}-{}", t.name, run_suffix(ctx));
            p.calls.push(launch_call(ctx, index, t, name, t.role));
            p.creates_var = Some(var::REPLACEMENT.into());
        }
        ActionKind::RegisterTarget => {
            let id = ctx.get(var::REPLACEMENT)?;
            find(snap, id)?;
            p.calls.push(ProviderCall::RegisterTarget {
                target_group: ctx.target_group.clone(),
                instance_id: id.to_string(),
            });
        }
        ActionKind::DeregisterTarget => {
            let t = find(snap, target_id)?;
            p.calls.push(ProviderCall::DeregisterTarget {
                target_group: ctx.target_group.clone(),
                instance_id: t.id.clone(),
            });
        }
        ActionKind::DisposeInstance => {
            let t = find(snap, target_id)?;
            if snap
                .db_endpoint
                .as_ref()
                .is_some_and(|e| e.target_id == t.id)
            {
                return Err(format!(
                    "{} is still where the database endpoint points; switch the endpoint first",
                    t.name
                ));
            }
            if t.volumes.iter().any(|v| v.sole_copy) {
                return Err(format!(
                    "{} still holds the only copy of its data; detach it first",
                    t.name
                ));
            }
            p.confirm_id = Some(t.id.clone());
            if ctx.quarantine {
                p.calls.push(ProviderCall::StopInstances {
                    instance_id: t.id.clone(),
                    force: false,
                });
                p.calls.push(ProviderCall::CreateTags {
                    resource_id: t.id.clone(),
                    tags: vec![(TAG_QUARANTINE.into(), ctx.run_id.clone())],
                });
            } else {
                p.calls.push(ProviderCall::TerminateInstances {
                    instance_id: t.id.clone(),
                });
            }
        }
        ActionKind::ConfirmMasterDown => {
            let t = find(snap, target_id)?;
            let db = t.db.as_ref();
            let heartbeat = db.map_or(f32::NAN, |d| d.heartbeat_age_secs);
            let down = t.health.checks.any_impaired()
                || t.state != InstanceState::Running
                || heartbeat > ctx.master_heartbeat_secs;
            let facts = format!(
                "{}: state {}, checks {}/2, heartbeat {heartbeat:.0} s old",
                t.name,
                t.state.as_str(),
                t.health.checks.passed()
            );
            if !down && !ctx.force {
                return Err(format!(
                    "{facts}: it answers, so there is nothing to fail over"
                ));
            }
            p.finding = Some(format!("{facts}: down"));
        }
        ActionKind::RebootInstance => {
            let t = find(snap, target_id)?;
            let instance_id = t.id.clone();
            // AWS reboots only a running instance; a stopped one has to be started.
            p.calls.push(match t.state {
                InstanceState::Running => ProviderCall::RebootInstances { instance_id },
                InstanceState::Stopped => ProviderCall::StartInstances { instance_id },
                other => {
                    return Err(format!(
                        "{} is {}: wait until it is running or stopped to boot it",
                        t.name,
                        other.as_str()
                    ));
                }
            });
        }
        ActionKind::StopInstance => {
            let t = find(snap, target_id)?;
            p.calls.push(ProviderCall::StopInstances {
                instance_id: t.id.clone(),
                force: false,
            });
        }
        ActionKind::DetachVolume => {
            let t = find(snap, target_id)?;
            let vol = t
                .volumes
                .iter()
                .find(|v| v.sole_copy)
                .ok_or_else(|| format!("{} has no data volume attached", t.name))?;
            let force = t.state != InstanceState::Stopped;
            if force {
                p.warnings.push(format!(
                    "{} is {}, so the detach is FORCED: check the file system (fsck) before MySQL starts on it",
                    t.name,
                    t.state.as_str()
                ));
            }
            p.confirm = Confirm::TypeId;
            p.confirm_id = Some(vol.id.clone());
            p.decided.push((var::VOLUME.into(), vol.id.clone()));
            p.decided.push((var::DEVICE.into(), vol.device.clone()));
            p.calls.push(ProviderCall::DetachVolume {
                volume_id: vol.id.clone(),
                instance_id: t.id.clone(),
                force,
            });
        }
        ActionKind::LaunchDbInstance => {
            let t = find(snap, target_id)?;
            let name = format!("db-master-{}", run_suffix(ctx));
            p.calls
                .push(launch_call(ctx, index, t, name, Role::DbMaster));
            p.creates_var = Some(var::NEW_MASTER.into());
        }
        ActionKind::AttachVolume => {
            let vol = ctx.get(var::VOLUME)?;
            let device = ctx.get(var::DEVICE)?;
            let new = ctx.get(var::NEW_MASTER)?;
            find(snap, new)?;
            p.calls.push(ProviderCall::AttachVolume {
                volume_id: vol.into(),
                instance_id: new.into(),
                device: device.into(),
            });
        }
        ActionKind::StartDatabase => {
            let new = ctx.get(var::NEW_MASTER)?;
            p.calls.push(ProviderCall::StartDatabase {
                instance_id: find(snap, new)?.id.clone(),
            });
        }
        ActionKind::SwitchEndpoint => {
            let new = find(snap, ctx.get(var::NEW_MASTER)?)?;
            p.calls.push(ProviderCall::SetDbEndpoint {
                name: ctx.db_endpoint.clone(),
                target_id: new.id.clone(),
            });
        }
        ActionKind::RepointReplicas => {
            let new = ctx.get(var::NEW_MASTER)?;
            for r in snap.by_role(Role::DbReplica) {
                if r.id != new && r.id != target_id && r.state == InstanceState::Running {
                    p.calls.push(ProviderCall::RepointReplica {
                        instance_id: r.id.clone(),
                        master_id: new.into(),
                    });
                }
            }
            if p.calls.is_empty() {
                p.finding = Some("no other replicas to repoint".into());
            }
        }
        ActionKind::RankReplicas => {
            let ranked = rank_replicas(snap, ctx.replica_max_lag_secs);
            let lines: Vec<String> = ranked
                .iter()
                .map(|c| match &c.rejection {
                    None if c.best => {
                        format!("{} best ({:.1}s behind)", c.name, c.behind_master_secs)
                    }
                    None => format!(
                        "{} promotable ({:.1}s behind)",
                        c.name, c.behind_master_secs
                    ),
                    Some(why) => format!("{} rejected: {why}", c.name),
                })
                .collect();
            let chosen = ranked.iter().find(|c| c.best).or_else(|| {
                // Forced: the least-behind replica that fails on lag alone.
                ranked
                    .iter()
                    .filter(|c| ctx.force && rejected_for_lag_only(c))
                    .min_by(|a, b| a.behind_master_secs.total_cmp(&b.behind_master_secs))
            });
            let chosen = chosen
                .ok_or_else(|| format!("no replica can be promoted: {}", lines.join("; ")))?;
            p.decided
                .push((var::NEW_MASTER.into(), chosen.instance_id.clone()));
            p.finding = Some(format!("chose {}; {}", chosen.name, lines.join("; ")));
        }
        ActionKind::PromoteReplica => {
            let new = find(snap, ctx.get(var::NEW_MASTER)?)?;
            p.calls.push(ProviderCall::PromoteReplica {
                instance_id: new.id.clone(),
            });
        }
        ActionKind::LaunchReplica => {
            let new = find(snap, ctx.get(var::NEW_MASTER)?)?;
            let name = format!("db-replica-{}", run_suffix(ctx));
            p.calls
                .push(launch_call(ctx, index, new, name, Role::DbReplica));
            p.creates_var = Some(var::NEW_REPLICA.into());
        }
        ActionKind::NotifyApp => {
            let id = ctx.get(var::NEW_REPLICA)?;
            p.calls.push(ProviderCall::NotifyReplicaAdded {
                instance_id: id.into(),
            });
        }
    }
    Ok(p)
}

fn rejected_for_lag_only(c: &crate::replicas::Candidate) -> bool {
    c.rejection
        .as_deref()
        .is_some_and(|r| r.contains("behind the master"))
}

fn check_guard(
    guard: GuardKind,
    ctx: &RunContext,
    snap: &FleetSnapshot,
    p: &mut Plan,
) -> Result<(), String> {
    let target_id = ctx.target_id.as_str();
    match guard {
        GuardKind::KeepsAHealthyTarget => {
            let others = snap
                .by_role(Role::Web)
                .filter(|i| i.id != target_id && i.target == Some(TargetHealth::Healthy))
                .count();
            if others == 0 {
                return Err(format!(
                    "{} is the last healthy target in {}; taking it out would leave no web server serving",
                    ctx.target_name, ctx.target_group
                ));
            }
        }
        GuardKind::ZoneBalance => {
            if let Some(t) = snap.find(target_id) {
                let same_zone = snap
                    .by_role(Role::Web)
                    .filter(|i| {
                        i.id != target_id && i.az == t.az && i.target == Some(TargetHealth::Healthy)
                    })
                    .count();
                if same_zone == 0 {
                    p.warnings
                        .push(format!("{} will have no healthy web server left", t.az));
                }
            }
        }
        GuardKind::SameZoneAsVolume => {
            let t = find(snap, target_id)?;
            let vol = ctx.get(var::VOLUME)?;
            let vol_az = snap
                .free_volumes
                .iter()
                .find(|v| v.id == vol)
                .map(|v| v.az.as_str())
                .unwrap_or(t.az.as_str());
            if vol_az != t.az {
                return Err(format!(
                    "volume {vol} is in {vol_az} but the new instance would launch in {}; EBS volumes attach only within their zone",
                    t.az
                ));
            }
        }
        GuardKind::PromotableReplica => {
            let ranked = rank_replicas(snap, ctx.replica_max_lag_secs);
            let forced = ctx.force && ranked.iter().any(rejected_for_lag_only);
            if !forced && !ranked.iter().any(|c| c.best) {
                let why: Vec<String> = ranked
                    .iter()
                    .map(|c| format!("{}: {}", c.name, c.rejection.as_deref().unwrap_or("?")))
                    .collect();
                return Err(format!(
                    "every replica is rejected ({}); force with --force only if losing those writes is acceptable",
                    if why.is_empty() {
                        "there are none".to_string()
                    } else {
                        why.join("; ")
                    }
                ));
            }
        }
    }
    Ok(())
}
