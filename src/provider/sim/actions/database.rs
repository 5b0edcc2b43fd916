//! MySQL commands sent through Run Command, and the endpoint the application reads.

use super::transitions::DATA_DEVICE;
use super::{ssm_reachable, state_of};
use crate::domain::call::TAG_ROLE;
use crate::domain::{InstanceState, Role};
use crate::provider::sim::SimFleet;
use crate::provider::sim::fleet::SimInstance;

impl SimFleet {
    /// `systemctl start mysql`, and what the server logged of a recovery as it started.
    pub(super) fn start_database(&mut self, id: &str) -> Result<String, String> {
        let s = self.find(id)?;
        if s.inst.db.is_none() {
            return Err(format!(
                "CommandFailed: {id} is a web server; it runs no database"
            ));
        }
        ssm_reachable(s)?;
        if !s.inst.volumes.iter().any(|v| v.device == DATA_DEVICE) {
            return Err(format!(
                "CommandFailed: systemctl start mysql on {id}: no data volume at {DATA_DEVICE}; attach it first"
            ));
        }
        if s.inst.db.as_ref().is_some_and(|d| d.running) {
            return Ok(String::new());
        }
        // `systemctl start` returns once the server answers (systemd waits for its ready
        // notification), recovery included: what the step does next can rely on it.
        self.finish_db_start(id);
        Ok(self
            .find_mut(id)?
            .server
            .as_mut()
            .map_or_else(String::new, |s| s.start_log()))
    }

    /// Checks shared by the replication commands: a running, reachable replica.
    fn running_replica(&self, id: &str) -> Result<&SimInstance, String> {
        let s = self.find(id)?;
        ssm_reachable(s)?;
        if s.inst.role != Role::DbReplica {
            return Err(format!(
                "CommandFailed: {id} is a {}, not a replica",
                s.inst.role
            ));
        }
        Ok(s)
    }

    pub(super) fn promote(&mut self, id: &str) -> Result<(), String> {
        let s = self.running_replica(id)?;
        if !s.inst.db.as_ref().is_some_and(|d| d.running) {
            return Err(format!("CommandFailed: MySQL is not running on {id}"));
        }
        if let Some(why) = s.server.as_ref().and_then(|d| d.sql_error.as_ref()) {
            return Err(format!(
                "CommandFailed: the promote command waited for {id}'s relay log to be applied \
                 and timed out: its SQL thread stopped on an error: {why}"
            ));
        }
        let s = self.find_mut(id)?;
        s.inst.role = Role::DbMaster;
        s.inst
            .tags
            .insert(TAG_ROLE.into(), Role::DbMaster.as_str().into());
        // Its data is now the master's data: the one copy the replicas copy from.
        for v in s
            .inst
            .volumes
            .iter_mut()
            .filter(|v| v.device == DATA_DEVICE)
        {
            v.sole_copy = true;
        }
        if let Some(db) = s.inst.db.as_mut() {
            db.read_only = false;
            db.source_id = None;
            db.io_thread_running = false;
            db.sql_thread_running = false;
        }
        // The promote command applies the relay log before it resets replication.
        if let Some(server) = s.server.as_mut() {
            server.apply(u64::MAX);
            server.received = server.applied;
            server.io_on = false;
            server.sql_on = false;
        }
        Ok(())
    }

    pub(super) fn repoint(&mut self, id: &str, master_id: &str) -> Result<(), String> {
        if id == master_id {
            return Err(format!("CommandFailed: {id} cannot replicate from itself"));
        }
        self.running_replica(id)?;
        let m = self.find(master_id)?;
        if m.inst.db.is_none() {
            return Err(format!(
                "CommandFailed: {master_id} is a web server; it runs no database"
            ));
        }
        let source_answers = m.answers();
        let s = self.find_mut(id)?;
        if let Some(db) = s.inst.db.as_mut() {
            db.source_id = Some(master_id.to_string());
            db.io_thread_running = source_answers;
            db.sql_thread_running = true;
        }
        // CHANGE MASTER drops the relay log; GTID positioning asks the new source for
        // everything after what was applied.
        if let Some(server) = s.server.as_mut() {
            server.received = server.applied;
            server.io_on = true;
            server.sql_on = true;
            server.io_error = None;
        }
        Ok(())
    }

    pub(super) fn set_endpoint(&mut self, name: &str, id: &str) -> Result<(), String> {
        if name != self.fleet.db_endpoint {
            return Err(format!(
                "InvalidChangeBatch: no record {name} in this fleet (its database endpoint is {})",
                self.fleet.db_endpoint
            ));
        }
        let s = self.find(id)?;
        if s.inst.db.is_none() {
            return Err(format!(
                "InvalidChangeBatch: {id} is a web server, not a database"
            ));
        }
        if matches!(
            s.inst.state,
            InstanceState::ShuttingDown | InstanceState::Terminated
        ) {
            return Err(format!(
                "InvalidChangeBatch: {id} is {}; the endpoint cannot point at it",
                state_of(s)
            ));
        }
        self.endpoint_target = id.to_string();
        Ok(())
    }
}
