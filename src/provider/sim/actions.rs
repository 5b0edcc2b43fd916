//! The simulator's answer to every side-effecting call: checked the way the real API checks
//! it, refused in its words, and completed later on the virtual clock (see `transitions`).

mod balancer;
mod database;
mod sql;
mod transitions;
mod volumes;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use super::SimFleet;
use super::fleet::{SimInstance, fresh_db, fresh_health};
use super::server::{SimServer, Tx};
use crate::domain::call::{CallOutcome, ProviderCall, TAG_FLEET, TAG_ROLE};
use crate::domain::lease::failover_key;
use crate::domain::{
    CheckStatus, Instance, InstanceState, LaunchParams, Role, StatusChecks, TargetHealth, Volume,
};
use transitions::{Change, DATA_DEVICE, ROOT_DEVICE};
pub(super) use transitions::{Scheduled, SimVolume};

/// Virtual seconds each transition takes, roughly what EC2, ELB and MySQL take.
const BOOT_SECS: i64 = 20;
const CHECKS_SECS: i64 = 40;
const SHUTDOWN_SECS: i64 = 10;
const GONE_SECS: i64 = 30;
const STOP_SECS: i64 = 15;
const FORCE_STOP_SECS: i64 = 5;
const APP_RESTART_SECS: i64 = 20;
const MASTER_REBOOT_SECS: i64 = 60;
const TARGET_VERDICT_SECS: i64 = 15;
pub(super) const DRAIN_SECS: i64 = 20;
const DETACH_SECS: i64 = 5;
const ATTACH_SECS: i64 = 5;

/// The tag an operator sets to keep a replica out of promotion.
const TAG_NO_PROMOTE: &str = "dake:no-promote";

fn not_found(id: &str) -> String {
    format!("InvalidInstanceID.NotFound: The instance ID '{id}' does not exist")
}

fn state_of(s: &SimInstance) -> &'static str {
    s.inst.state.as_str()
}

/// Run Command reaches only a running instance whose agent reports in.
fn ssm_reachable(s: &SimInstance) -> Result<(), String> {
    let id = &s.inst.id;
    if s.inst.state != InstanceState::Running {
        return Err(format!(
            "InvalidInstanceId: {id} is {}; Run Command needs a running instance",
            state_of(s)
        ));
    }
    if s.down_since.is_some() {
        return Err(format!(
            "InvalidInstanceId: {id} is not reachable by Run Command: its agent stopped reporting (instance status check impaired)"
        ));
    }
    Ok(())
}

impl SimFleet {
    /// The next call whose `operation()` is `operation` fails with `message`, once.
    pub fn fail_next(&mut self, operation: &str, message: &str) {
        self.fail_next
            .push((operation.to_string(), message.to_string()));
    }

    /// Instances the application was told about (NotifyReplicaAdded), oldest first.
    pub fn notifications(&self) -> &[String] {
        &self.notified
    }

    /// Applies one side-effecting call at the current virtual time. `Err` is the API's
    /// refusal; nothing changed.
    pub fn apply(&mut self, call: &ProviderCall) -> Result<CallOutcome, String> {
        let op = call.operation();
        if let Some(at) = self.fail_next.iter().position(|(o, _)| o == op) {
            return Err(self.fail_next.remove(at).1);
        }
        let mut created = Vec::new();
        let mut output = String::new();
        match call {
            ProviderCall::RunInstances { .. } => created.push(self.run_instances(call)?),
            // The drill models no application connections, so there are none to kill.
            ProviderCall::Sql {
                instance_id,
                statements,
                ..
            } => self.run_sql(instance_id, statements)?,
            ProviderCall::TerminateInstances { instance_id } => self.terminate(instance_id)?,
            ProviderCall::StopInstances { instance_id, force } => self.stop(instance_id, *force)?,
            ProviderCall::RebootInstances { instance_id } => self.reboot(instance_id, false)?,
            ProviderCall::StartInstances { instance_id } => self.start(instance_id)?,
            ProviderCall::RestartApp { instance_id } => self.reboot(instance_id, true)?,
            ProviderCall::CreateTags { resource_id, tags } => {
                self.create_tags(resource_id, tags)?
            }
            ProviderCall::RegisterTarget {
                target_group,
                instance_id,
            } => self.register(target_group, instance_id)?,
            ProviderCall::DeregisterTarget {
                target_group,
                instance_id,
            } => self.deregister(target_group, instance_id)?,
            ProviderCall::DetachVolume {
                volume_id,
                instance_id,
                force,
            } => self.detach(volume_id, instance_id, *force)?,
            ProviderCall::AttachVolume {
                volume_id,
                instance_id,
                device,
            } => self.attach(volume_id, instance_id, device)?,
            ProviderCall::StartDatabase { instance_id } => {
                output = self.start_database(instance_id)?;
            }
            ProviderCall::PromoteReplica { instance_id } => self.promote(instance_id)?,
            ProviderCall::RepointReplica {
                instance_id,
                master_id,
            } => self.repoint(instance_id, master_id)?,
            ProviderCall::SetDbEndpoint { name, target_id } => {
                self.set_endpoint(name, target_id)?
            }
            // A fleet driven without its provider (one process) keeps its leases itself; the
            // provider keeps them beside the saved fleet, for every process (`lease`).
            ProviderCall::TakeLease { .. } => {
                let now = self.epoch() + chrono::Duration::seconds(self.now);
                if let Some(request) = crate::domain::lease::Request::of(call, now) {
                    let last = self.failovers.get(&failover_key(request.key));
                    request.decide(self.leases.get(request.key), last)?;
                    self.leases.insert(request.key.to_string(), request.holder);
                }
            }
            ProviderCall::ReleaseLease {
                key,
                run_id,
                failover,
            } => {
                if let Some(record) = failover {
                    self.failovers.insert(failover_key(key), record.clone());
                }
                if self.leases.get(key).is_some_and(|h| &h.run_id == run_id) {
                    self.leases.remove(key);
                }
            }
            ProviderCall::NotifyReplicaAdded { instance_id } => {
                self.find(instance_id)?;
                self.notified.push(instance_id.clone());
            }
        }
        self.requests += 1;
        Ok(CallOutcome {
            created,
            request_id: format!("sim-req-{:06}", self.requests),
            output,
        })
    }

    fn find(&self, id: &str) -> Result<&SimInstance, String> {
        self.instances
            .iter()
            .find(|s| s.inst.id == id)
            .ok_or_else(|| not_found(id))
    }

    fn find_mut(&mut self, id: &str) -> Result<&mut SimInstance, String> {
        self.sim_mut(id).ok_or_else(|| not_found(id))
    }

    fn run_instances(&mut self, call: &ProviderCall) -> Result<String, String> {
        let ProviderCall::RunInstances {
            name,
            role,
            image_id,
            instance_type,
            subnet_id,
            az,
            security_groups,
            key_name,
            user_data,
            tags,
            client_token,
            ..
        } = call
        else {
            return Err(format!("{} is not RunInstances", call.operation()));
        };
        // EC2 answers a retried request with the instance the first one launched.
        if let Some(id) = self
            .client_tokens
            .get(client_token)
            .filter(|_| self.sim.honour_client_token)
        {
            return Ok(id.clone());
        }
        let zidx = self.check_launch(image_id, subnet_id, az, security_groups, instance_type)?;
        let id = self.rng.ec2_id("i");
        let mut volumes = vec![Volume {
            id: self.rng.ec2_id("vol"),
            device: ROOT_DEVICE.into(),
            size_gib: 16,
            sole_copy: false,
        }];
        // A new replica restores its own copy of the data; a new master gets the old
        // master's volume attached later, so it boots with none.
        if *role == Role::DbReplica {
            volumes.push(Volume {
                id: self.rng.ec2_id("vol"),
                device: DATA_DEVICE.into(),
                size_gib: 500,
                sole_copy: false,
            });
        }
        let history = self.sim.history;
        let db = (*role != Role::Web).then(|| fresh_db(history, *role, false));
        let mut all_tags: BTreeMap<String, String> = tags.iter().cloned().collect();
        all_tags.insert("Name".into(), name.clone());
        all_tags.insert(TAG_ROLE.into(), role.as_str().into());
        all_tags.insert(TAG_FLEET.into(), self.fleet.name.clone());
        let host = 150 + self.launched % 100;
        self.launched += 1;
        let inst = Instance {
            id: id.clone(),
            name: name.clone(),
            role: *role,
            az: az.clone(),
            state: InstanceState::Pending,
            image_id: image_id.clone(),
            launch: LaunchParams {
                instance_type: instance_type.clone(),
                subnet_id: subnet_id.clone(),
                security_groups: security_groups.clone(),
                key_name: key_name.clone(),
                user_data: user_data.clone(),
            },
            volumes,
            private_ip: format!("10.0.{zidx}.{host}"),
            health: fresh_health(
                history,
                StatusChecks {
                    system: CheckStatus::Initializing,
                    instance: CheckStatus::Initializing,
                },
            ),
            target: None,
            db,
            tags: all_tags,
        };
        // A server with no data: a replica's copy arrives as it boots, a master's volume when
        // it is attached.
        let server = (*role != Role::Web)
            .then(|| SimServer::new(100 + host - 150, Tx::none(self.now), false));
        let mut sim = SimInstance::new(inst, &mut self.rng, server);
        sim.base_lag = 0.3 * (1.0 + 0.3 * self.rng.signed());
        self.instances.push(sim);
        if !client_token.is_empty() {
            self.client_tokens.insert(client_token.clone(), id.clone());
        }
        self.schedule(BOOT_SECS + self.boot_delay_secs, Change::Booted(id.clone()));
        Ok(id)
    }

    /// What EC2 checks of a launch before it launches anything; the subnet's zone index.
    fn check_launch(
        &self,
        image_id: &str,
        subnet_id: &str,
        az: &str,
        security_groups: &[String],
        instance_type: &str,
    ) -> Result<usize, String> {
        if image_id != self.image_id {
            return Err(format!(
                "InvalidAMIID.NotFound: The image id '[{image_id}]' does not exist (this fleet boots {})",
                self.image_id
            ));
        }
        let zidx = self
            .subnets
            .iter()
            .position(|(_, s)| s == subnet_id)
            .ok_or_else(|| {
                format!("InvalidSubnetID.NotFound: The subnet ID '{subnet_id}' does not exist")
            })?;
        let subnet_az = &self.subnets[zidx].0;
        if subnet_az != az {
            return Err(format!(
                "InvalidParameterValue: subnet {subnet_id} is in {subnet_az}, not {az}"
            ));
        }
        if let Some(sg) = security_groups.iter().find(|g| **g != self.security_group) {
            return Err(format!(
                "InvalidGroup.NotFound: The security group '{sg}' does not exist in this VPC"
            ));
        }
        if instance_type.is_empty() {
            return Err("InvalidParameterValue: an instance type is required".into());
        }
        Ok(zidx)
    }

    fn terminate(&mut self, id: &str) -> Result<(), String> {
        let s = self.find_mut(id)?;
        match s.inst.state {
            InstanceState::Terminated => {
                return Err(format!(
                    "IncorrectInstanceState: instance {id} is already terminated"
                ));
            }
            // Already on its way: a retried request changes nothing.
            InstanceState::ShuttingDown => return Ok(()),
            _ => {}
        }
        s.inst.state = InstanceState::ShuttingDown;
        s.inst.target = None;
        if let Some(db) = s.inst.db.as_mut() {
            db.running = false;
        }
        self.cancel_target_changes(id);
        self.schedule(SHUTDOWN_SECS, Change::Terminated(id.to_string()));
        Ok(())
    }

    fn stop(&mut self, id: &str, force: bool) -> Result<(), String> {
        let s = self.find_mut(id)?;
        match s.inst.state {
            InstanceState::Running => {}
            InstanceState::Stopped => return Ok(()),
            // A forced stop hurries one already under way.
            InstanceState::Stopping if force => {}
            InstanceState::Stopping => return Ok(()),
            _ => {
                return Err(format!(
                    "IncorrectInstanceState: The instance '{id}' is {}, not in a state from which it can be stopped",
                    state_of(s)
                ));
            }
        }
        s.inst.state = InstanceState::Stopping;
        if matches!(
            s.inst.target,
            Some(TargetHealth::Initial | TargetHealth::Healthy)
        ) {
            s.inst.target = Some(TargetHealth::Unhealthy);
        }
        if let Some(db) = s.inst.db.as_mut() {
            db.running = false;
        }
        let secs = if force { FORCE_STOP_SECS } else { STOP_SECS };
        self.schedule(secs, Change::Stopped(id.to_string()));
        Ok(())
    }

    /// Boots a stopped instance. MySQL starts at boot; whether that cures a down master is the
    /// same drill choice as a reboot's.
    fn start(&mut self, id: &str) -> Result<(), String> {
        let fixes_master = self.sim.reboot_fixes_master;
        let s = self.find_mut(id)?;
        match s.inst.state {
            InstanceState::Stopped => {}
            InstanceState::Pending | InstanceState::Running => return Ok(()),
            _ => {
                return Err(format!(
                    "IncorrectInstanceState: The instance '{id}' is {}, not in a state from which it can be started",
                    state_of(s)
                ));
            }
        }
        s.inst.state = InstanceState::Pending;
        let down = s.down_since.is_some();
        self.schedule(BOOT_SECS, Change::Booted(id.to_string()));
        if down && fixes_master {
            self.schedule(
                BOOT_SECS + MASTER_REBOOT_SECS,
                Change::MasterRecovered(id.to_string()),
            );
        }
        Ok(())
    }

    /// A reboot, or (`app_only`) a restart of the app daemon. Whether either cures the
    /// incident is the drill's choice: in the talk the cause is unknown.
    fn reboot(&mut self, id: &str, app_only: bool) -> Result<(), String> {
        let (fixes_slow, fixes_master) = (
            self.sim.restart_fixes_slow_web,
            self.sim.reboot_fixes_master,
        );
        let s = self.find(id)?;
        if app_only {
            ssm_reachable(s)?;
            if s.inst.role != Role::Web {
                return Err(format!(
                    "CommandFailed: {id} is a {}; it runs no app daemon to restart",
                    s.inst.role
                ));
            }
        } else if s.inst.state != InstanceState::Running {
            return Err(format!(
                "IncorrectInstanceState: instance {id} is {}; only a running instance can be rebooted",
                state_of(s)
            ));
        }
        let (slow, down) = (s.slow_since.is_some(), s.down_since.is_some());
        if slow && fixes_slow {
            self.schedule(APP_RESTART_SECS, Change::SlownessCleared(id.to_string()));
        }
        if down && fixes_master && !app_only {
            self.schedule(MASTER_REBOOT_SECS, Change::MasterRecovered(id.to_string()));
        }
        Ok(())
    }

    fn create_tags(&mut self, id: &str, tags: &[(String, String)]) -> Result<(), String> {
        if tags.is_empty() {
            return Err("MissingParameter: CreateTags needs at least one tag".into());
        }
        let s = self.find_mut(id)?;
        for (k, v) in tags {
            s.inst.tags.insert(k.clone(), v.clone());
            if k == TAG_ROLE
                && let Ok(role) = v.parse()
            {
                s.inst.role = role;
            }
            if k == TAG_NO_PROMOTE
                && let Some(db) = s.inst.db.as_mut()
            {
                db.no_promote = v != "false";
            }
        }
        Ok(())
    }
}
