//! The second half of every call: what EC2, ELB and MySQL finish on their own a little later.
//! Calls schedule changes on the virtual clock; the sampling step completes the due ones.

use crate::domain::{CheckStatus, FreeVolume, InstanceState, Role, StatusChecks, TargetHealth};
use crate::domain::{Volume, VolumeState};
use crate::provider::sim::SimFleet;
use crate::provider::sim::fleet::SimInstance;
use crate::provider::sim::server::Tx;
use serde::{Deserialize, Serialize};

/// Device a database keeps its data on; the root volume is rebuilt from the image.
pub(in crate::provider::sim) const DATA_DEVICE: &str = "/dev/xvdf";
pub(in crate::provider::sim) const ROOT_DEVICE: &str = "/dev/xvda";

/// The status checks EC2 reports for an instance that is not running.
const NO_CHECKS: StatusChecks = StatusChecks {
    system: CheckStatus::InsufficientData,
    instance: CheckStatus::InsufficientData,
};

/// A volume attached to no instance, with what the simulator needs to move its data along.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(in crate::provider::sim) struct SimVolume {
    pub(in crate::provider::sim) vol: FreeVolume,
    /// The data on it, when it holds a database's: whoever mounts it next starts from there.
    pub(in crate::provider::sim) data: Option<Tx>,
    /// Taken from under a running database: InnoDB recovers from its redo log at the next start.
    #[serde(default)]
    pub(in crate::provider::sim) crashed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(in crate::provider::sim) enum Change {
    /// pending → running (a launched replica starts following the master).
    Booted(String),
    ChecksPassed(String),
    Stopped(String),
    Terminated(String),
    /// A terminated instance drops out of DescribeInstances.
    Gone(String),
    SlownessCleared(String),
    MasterRecovered(String),
    /// The load balancer's first health-check verdict on a new target.
    TargetVerdict(String),
    Drained(String),
    VolumeDetached(String),
    VolumeAttached {
        volume_id: String,
        instance_id: String,
        device: String,
    },
}

impl Change {
    fn is_target_change_of(&self, id: &str) -> bool {
        matches!(self, Change::TargetVerdict(i) | Change::Drained(i) if i == id)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(in crate::provider::sim) struct Scheduled {
    /// Virtual second it completes at.
    pub(in crate::provider::sim) due: i64,
    pub(in crate::provider::sim) change: Change,
}

impl SimFleet {
    pub(in crate::provider::sim) fn schedule(&mut self, after_secs: i64, change: Change) {
        self.scheduled.push(Scheduled {
            due: self.now + after_secs,
            change,
        });
    }

    /// A new registration or deregistration overrides whatever the previous one had pending.
    pub(in crate::provider::sim) fn cancel_target_changes(&mut self, id: &str) {
        self.scheduled.retain(|s| !s.change.is_target_change_of(id));
    }

    /// Completes every change due by now, oldest first (calls' order among equals), then
    /// lets the load balancer react to instances that came up or went away.
    pub(in crate::provider::sim) fn complete_due(&mut self) {
        loop {
            let now = self.now;
            let (mut ready, later): (Vec<Scheduled>, Vec<Scheduled>) =
                std::mem::take(&mut self.scheduled)
                    .into_iter()
                    .partition(|s| s.due <= now);
            self.scheduled = later;
            if ready.is_empty() {
                break;
            }
            // Stable: changes due at the same second complete in the order they were made.
            ready.sort_by_key(|s| s.due);
            for s in ready {
                self.complete(s.due, s.change);
            }
        }
        for s in &mut self.instances {
            let up = s.inst.state == InstanceState::Running && s.inst.health.checks.passed() == 2;
            s.inst.target = match s.inst.target {
                Some(TargetHealth::Unhealthy) if up => Some(TargetHealth::Healthy),
                Some(TargetHealth::Healthy) if !up => Some(TargetHealth::Unhealthy),
                other => other,
            };
        }
    }

    /// Follow-up changes are scheduled from `due`, not from the sample that completed it.
    fn complete(&mut self, due: i64, change: Change) {
        match change {
            Change::Booted(id) => self.finish_boot(due, id),
            Change::ChecksPassed(id) => {
                if let Some(s) = self.sim_mut(&id)
                    && s.inst.state == InstanceState::Running
                    && s.down_since.is_none()
                {
                    s.inst.health.checks = StatusChecks::OK;
                }
            }
            Change::Stopped(id) => {
                if let Some(s) = self.sim_mut(&id)
                    && s.inst.state == InstanceState::Stopping
                {
                    s.inst.state = InstanceState::Stopped;
                    s.inst.health.checks = NO_CHECKS;
                }
            }
            Change::Terminated(id) => self.finish_termination(due, id),
            Change::Gone(id) => self
                .instances
                .retain(|s| s.inst.id != id || s.inst.state != InstanceState::Terminated),
            Change::SlownessCleared(id) => {
                if let Some(s) = self.sim_mut(&id)
                    && s.inst.state == InstanceState::Running
                {
                    s.slow_since = None;
                }
            }
            Change::MasterRecovered(id) => {
                if let Some(s) = self.sim_mut(&id)
                    && s.inst.state == InstanceState::Running
                {
                    s.down_since = None;
                    s.inst.health.checks = StatusChecks::OK;
                }
            }
            Change::TargetVerdict(id) => self.first_target_verdict(&id),
            Change::Drained(id) => {
                if let Some(s) = self.sim_mut(&id)
                    && s.inst.target == Some(TargetHealth::Draining)
                {
                    s.inst.target = None;
                }
            }
            Change::VolumeDetached(vol) => {
                if let Some(v) = self.free_volumes.iter_mut().find(|v| v.vol.id == vol)
                    && v.vol.state == VolumeState::Detaching
                {
                    v.vol.state = VolumeState::Available;
                }
            }
            Change::VolumeAttached {
                volume_id,
                instance_id,
                device,
            } => self.finish_attach(&volume_id, &instance_id, device),
        }
    }

    /// pending → running; a launched replica starts following the master, a stopped master
    /// started again runs MySQL; status checks pass a little later.
    fn finish_boot(&mut self, due: i64, id: String) {
        let endpoint = self.endpoint_target.clone();
        // Its copy is the master's data as the copy is made.
        let copy = self
            .instances
            .iter()
            .find(|s| s.inst.id == endpoint)
            .and_then(|m| m.server.as_ref())
            .map(|m| m.applied);
        let Some(s) = self.sim_mut(&id) else { return };
        if s.inst.state != InstanceState::Pending {
            return;
        }
        s.inst.state = InstanceState::Running;
        if s.inst.role == Role::DbReplica
            && let Some(db) = s.inst.db.as_mut()
        {
            // Its user data starts MySQL from a fresh copy and points it at the master.
            db.running = true;
            db.read_only = true;
            db.source_id = Some(endpoint);
            if let Some(server) = s.server.as_mut() {
                if let Some(data) = copy {
                    server.applied = data;
                    server.received = data;
                }
                server.io_on = true;
                server.sql_on = true;
            }
        }
        // A stopped master started again: mysqld is enabled at boot, and starts when its data
        // is there (a new master gets its volume attached after it boots).
        let has_data = s.inst.volumes.iter().any(|v| v.device == DATA_DEVICE);
        if s.inst.role == Role::DbMaster
            && has_data
            && let Some(db) = s.inst.db.as_mut()
        {
            db.running = true;
        }
        self.scheduled.push(Scheduled {
            due: due + super::CHECKS_SECS,
            change: Change::ChecksPassed(id),
        });
    }

    /// shutting-down → terminated: the root volume goes with the instance; data volumes are
    /// kept (EC2's DeleteOnTermination is off for them), so no data dies with it.
    fn finish_termination(&mut self, due: i64, id: String) {
        let Some(s) = self.sim_mut(&id) else { return };
        if s.inst.state != InstanceState::ShuttingDown {
            return;
        }
        s.inst.state = InstanceState::Terminated;
        s.inst.health.checks = NO_CHECKS;
        let az = s.inst.az.clone();
        let data = s.server.as_ref().map(|d| d.applied);
        let volumes = std::mem::take(&mut s.inst.volumes);
        for v in volumes.into_iter().filter(|v| v.device != ROOT_DEVICE) {
            let data = data.filter(|_| v.device == DATA_DEVICE);
            self.free_volumes
                .push(free(v, &az, VolumeState::Available, data));
        }
        self.scheduled.push(Scheduled {
            due: due + super::GONE_SECS,
            change: Change::Gone(id),
        });
    }

    /// Unhealthy until its checks pass; the per-sample pass turns it healthy.
    fn first_target_verdict(&mut self, id: &str) {
        if let Some(s) = self.sim_mut(id)
            && s.inst.target == Some(TargetHealth::Initial)
        {
            let up = s.inst.state == InstanceState::Running && s.inst.health.checks.passed() == 2;
            s.inst.target = Some(if up {
                TargetHealth::Healthy
            } else {
                TargetHealth::Unhealthy
            });
        }
    }

    /// MySQL starts on a running instance that has its data volume: writable on a master.
    pub(in crate::provider::sim) fn finish_db_start(&mut self, id: &str) {
        let Some(s) = self.sim_mut(id) else { return };
        let has_data = s.inst.volumes.iter().any(|v| v.device == DATA_DEVICE);
        let master = s.inst.role == Role::DbMaster;
        if s.inst.state == InstanceState::Running
            && has_data
            && let Some(db) = s.inst.db.as_mut()
        {
            db.running = true;
            db.read_only = !master;
        }
    }

    fn finish_attach(&mut self, volume_id: &str, instance_id: &str, device: String) {
        let Some(at) = self.free_volumes.iter().position(|v| v.vol.id == volume_id) else {
            return;
        };
        if self.free_volumes[at].vol.state != VolumeState::Attaching {
            return;
        }
        let usable = |s: &&mut SimInstance| {
            matches!(
                s.inst.state,
                InstanceState::Running | InstanceState::Stopped | InstanceState::Stopping
            )
        };
        let Some(s) = self
            .instances
            .iter_mut()
            .find(|s| s.inst.id == instance_id)
            .filter(usable)
        else {
            // The instance went away while the volume was attaching: it falls back free.
            self.free_volumes[at].vol.state = VolumeState::Available;
            return;
        };
        let v = self.free_volumes.remove(at);
        // The database starts from what the volume holds; a relay log was on the volume too,
        // and it is applied at start.
        if device == DATA_DEVICE
            && let (Some(data), Some(server)) = (v.data, s.server.as_mut())
        {
            server.applied = data;
            server.received = data;
            server.crashed = v.crashed;
        }
        s.inst.volumes.push(Volume {
            id: v.vol.id,
            device,
            size_gib: v.vol.size_gib,
            sole_copy: v.vol.sole_copy,
        });
    }

    pub(in crate::provider::sim) fn sim_mut(&mut self, id: &str) -> Option<&mut SimInstance> {
        self.instances.iter_mut().find(|s| s.inst.id == id)
    }
}

/// `v`, detached in `az`, as the free volume EC2 then reports.
pub(in crate::provider::sim) fn free(
    v: Volume,
    az: &str,
    state: VolumeState,
    data: Option<Tx>,
) -> SimVolume {
    SimVolume {
        vol: FreeVolume {
            id: v.id,
            az: az.to_string(),
            state,
            size_gib: v.size_gib,
            sole_copy: v.sole_copy,
        },
        data,
        crashed: false,
    }
}
