//! Load balancer calls: a target joins, is judged, drains, leaves.

use super::{DRAIN_SECS, TARGET_VERDICT_SECS, transitions::Change};
use crate::domain::{InstanceState, Role, TargetHealth};
use crate::provider::sim::SimFleet;

impl SimFleet {
    fn check_target_group(&self, target_group: &str) -> Result<(), String> {
        if target_group == self.fleet.target_group {
            Ok(())
        } else {
            Err(format!(
                "TargetGroupNotFound: One or more target groups not found: {target_group} (this fleet serves from {})",
                self.fleet.target_group
            ))
        }
    }

    pub(super) fn register(&mut self, target_group: &str, id: &str) -> Result<(), String> {
        self.check_target_group(target_group)?;
        let s = self.find_mut(id)?;
        if s.inst.role != Role::Web {
            return Err(format!(
                "InvalidTarget: {id} is a {}, not a web server",
                s.inst.role
            ));
        }
        if s.inst.state != InstanceState::Running {
            return Err(format!(
                "InvalidTarget: The following targets are not in a running state and cannot be registered: '{id}'"
            ));
        }
        match s.inst.target {
            // Registering a registered target is a no-op, as in ELB.
            Some(h) if h != TargetHealth::Draining => return Ok(()),
            _ => s.inst.target = Some(TargetHealth::Initial),
        }
        self.cancel_target_changes(id);
        self.schedule(TARGET_VERDICT_SECS, Change::TargetVerdict(id.to_string()));
        Ok(())
    }

    pub(super) fn deregister(&mut self, target_group: &str, id: &str) -> Result<(), String> {
        self.check_target_group(target_group)?;
        let s = self.find_mut(id)?;
        match s.inst.target {
            None => {
                return Err(format!(
                    "InvalidTarget: {id} is not registered in target group {target_group}"
                ));
            }
            Some(TargetHealth::Draining) => return Ok(()),
            Some(_) => s.inst.target = Some(TargetHealth::Draining),
        }
        self.cancel_target_changes(id);
        self.schedule(DRAIN_SECS, Change::Drained(id.to_string()));
        Ok(())
    }
}
