//! Guards: checked against the fleet as it is now before an action is planned. A guard refuses
//! with its reason, or only warns (a zone left without a healthy web server).

use super::{Plan, Planning, var};
use crate::domain::{Role, TargetHealth};
use crate::replicas::{Candidate, rank_replicas};
use crate::runbook::model::GuardKind;
use crate::runbook::overrides::Override;

/// Rejected for being behind and nothing else: what the `lagging-replica` override may promote
/// anyway.
pub(super) fn rejected_for_lag_only(c: &Candidate) -> bool {
    c.rejection
        .as_deref()
        .is_some_and(|r| r.contains("behind the master") || r.starts_with("lacks "))
}

pub(super) fn check(guard: GuardKind, planning: &Planning, p: &mut Plan) -> Result<(), String> {
    let (ctx, snap) = (planning.ctx, planning.snap);
    let target_id = ctx.target_id.as_str();
    match guard {
        GuardKind::KeepsAHealthyTarget => {
            let others = snap
                .by_role(Role::Web)
                .filter(|i| i.id != target_id && i.target == Some(TargetHealth::Healthy))
                .count();
            if others == 0 {
                return Err(say!(
                    "{} is the last healthy target in {}; taking it out would leave no web server serving",
                    ctx.target_name,
                    ctx.target_group
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
                        .push(say!("{} will have no healthy web server left", t.az));
                }
            }
        }
        GuardKind::SameZoneAsVolume => {
            let t = planning.target()?;
            let vol = ctx.get(var::VOLUME)?;
            let vol_az = snap
                .free_volumes
                .iter()
                .find(|v| v.id == vol)
                .map(|v| v.az.as_str())
                .unwrap_or(t.az.as_str());
            if vol_az != t.az {
                return Err(say!(
                    "volume {vol} is in {vol_az} but the new instance would launch in {}; EBS volumes attach only within their zone",
                    t.az
                ));
            }
        }
        GuardKind::MasterStillDown => {
            let mut scratch = p.clone();
            super::db::confirm_master_down(planning, &mut scratch)?;
        }
        GuardKind::PromotableReplica => {
            let ranked = rank_replicas(snap, ctx.replica_max_lag_secs);
            let lagging = ranked.iter().any(rejected_for_lag_only);
            let forced = ctx.allows(Override::LaggingReplica) && lagging;
            if !forced && !ranked.iter().any(|c| c.best) {
                let why: Vec<String> = ranked
                    .iter()
                    .map(|c| format!("{}: {}", c.name, c.rejection.as_deref().unwrap_or("?")))
                    .collect();
                let why = say!(
                    "every replica is rejected ({})",
                    if why.is_empty() {
                        said!("there are none").to_string()
                    } else {
                        why.join("; ")
                    }
                );
                // Only lag can be overridden: an errant or broken replica stays out.
                return Err(if lagging {
                    Override::LaggingReplica.refusal(why)
                } else {
                    why
                });
            }
        }
    }
    Ok(())
}
