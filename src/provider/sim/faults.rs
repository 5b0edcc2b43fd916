//! The faults a drill's timeline sets on the simulated fleet, on the same clock as its
//! incidents: database traps, a replica falling behind, a failed status check, an instance
//! that stops, an API call that fails or is throttled once, launches that boot slowly.

use super::SimFleet;
use super::server::SQL_ERROR;
use crate::config::{FaultKind, SimFault};
use crate::domain::{CheckStatus, InstanceState, Role};

/// What an API call that fails once answers.
const API_ERROR: &str = "InternalError: An internal error has occurred. (simulated)";
const API_THROTTLED: &str = "RequestLimitExceeded: Request limit exceeded.";

impl SimFleet {
    /// Springs a database trap now. `target` names a replica for the replica traps.
    pub fn spring(&mut self, kind: FaultKind, target: Option<&str>) -> Result<(), String> {
        if kind == FaultKind::MasterComesBack {
            // Whichever master went down: it answers again, as it was when it hung.
            for s in self.instances.iter_mut().filter(|s| s.down_since.is_some()) {
                s.down_since = None;
                if s.inst.state == InstanceState::Running {
                    s.inst.health.checks = crate::domain::StatusChecks::OK;
                }
            }
            return Ok(());
        }
        let name = target.ok_or("this trap needs a replica's name")?;
        let s = self
            .instances
            .iter_mut()
            .find(|s| s.inst.name == name && s.inst.role == Role::DbReplica)
            .ok_or_else(|| format!("no replica named `{name}` in the simulated fleet"))?;
        let server = s
            .server
            .as_mut()
            .ok_or_else(|| format!("{name} runs no database"))?;
        match kind {
            FaultKind::SqlThreadStopped => server.sql_on = false,
            FaultKind::SqlThreadError => server.sql_error = Some(SQL_ERROR.into()),
            FaultKind::ErrantTransaction => {
                let seq = server.applied.seq.max(server.errant.unwrap_or(0)) + 1;
                server.errant = Some(seq);
            }
            _ => return Err(format!("{kind:?} is not a database trap")),
        }
        Ok(())
    }

    /// Sets `fault` now: a database trap, or one of the fleet's.
    pub fn set_fault(&mut self, fault: &SimFault) -> Result<(), String> {
        let target = fault.target.as_deref();
        let named = |f: &mut SimFleet, name: Option<&str>| {
            let name = name.ok_or("this fault needs an instance's name")?;
            f.instances
                .iter()
                .position(|s| s.inst.name == name)
                .ok_or_else(|| format!("no instance named `{name}` in the simulated fleet"))
        };
        match fault.kind {
            FaultKind::ReplicaLag => {
                let at = named(self, target)?;
                if self.instances[at].inst.role != Role::DbReplica {
                    return Err("replica-lag needs a replica".into());
                }
                let secs = fault.secs.unwrap_or(60) as f32;
                self.instances[at].lag_growth = Some((self.now, secs));
            }
            FaultKind::StatusCheckFailed => {
                let at = named(self, target)?;
                self.instances[at].inst.health.checks.system = CheckStatus::Impaired;
            }
            FaultKind::InstanceStops => {
                let at = named(self, target)?;
                let s = &mut self.instances[at];
                s.inst.state = InstanceState::Stopped;
                if let Some(db) = s.inst.db.as_mut() {
                    db.running = false;
                }
            }
            FaultKind::ApiError | FaultKind::ApiThrottled => {
                let op = fault
                    .operation
                    .as_deref()
                    .ok_or("this fault needs an operation")?;
                let message = if fault.kind == FaultKind::ApiError {
                    API_ERROR
                } else {
                    API_THROTTLED
                };
                self.fail_next(op, message);
            }
            FaultKind::SlowBoot => self.boot_delay_secs = fault.secs.unwrap_or(0) as i64,
            kind => self.spring(kind, target)?,
        }
        Ok(())
    }

    /// Sets the configured faults whose time has come.
    pub(super) fn spring_due_faults(&mut self) {
        for i in 0..self.sim.faults.len() {
            let fault = &self.sim.faults[i];
            if !self.sprung[i] && fault.at_secs as i64 <= self.now {
                let fault = fault.clone();
                self.sprung[i] = true;
                // Targets were checked against the topology when the config was loaded.
                if let Err(e) = self.set_fault(&fault) {
                    tracing::warn!("simulated fault not set: {e}");
                }
            }
        }
    }
}
