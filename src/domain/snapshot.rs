//! One consistent view of the fleet at a moment, as a provider reports it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{FreeVolume, Instance, Role};

/// The setting the application reads to find its database (a DNS record or a parameter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbEndpoint {
    pub name: String,
    /// Instance id the endpoint currently resolves to.
    pub target_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetSnapshot {
    pub fleet: String,
    pub provider: String,
    pub region: String,
    /// The fleet's own clock: wall time for a real provider, virtual time for the simulator.
    pub taken_at: DateTime<Utc>,
    /// Seconds between two samples of every time series in this snapshot.
    pub sample_interval_secs: u32,
    pub target_group: String,
    pub db_endpoint: Option<DbEndpoint>,
    pub instances: Vec<Instance>,
    /// Fleet volumes not attached to any instance.
    pub free_volumes: Vec<FreeVolume>,
    /// API calls this refresh made, by operation (a real provider only): the cost of a refresh,
    /// and a check that it stays at the API's own minimum.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub api_calls: std::collections::BTreeMap<String, u32>,
    /// How late the database tier's state reaches dake, at most: CloudWatch's minute and its
    /// publishing delay on the metrics source; one refresh when the servers are read.
    #[serde(default)]
    pub db_data_latency_secs: u32,
    /// The target group's deregistration delay, when it was read: how long a drain takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deregistration_delay_secs: Option<u32>,
    /// Parts of the fleet this refresh could not read, and why ("target health":
    /// "TargetGroupNotFound…"): everything else was read and is shown.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub unread: std::collections::BTreeMap<String, String>,
    /// Masters a run retired (their role tag `retired`), still there: not the fleet's any more,
    /// but one still running and writable is a second master. The drill fleet reports them;
    /// on AWS the list is empty (they are not listed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<Instance>,
}

impl FleetSnapshot {
    pub fn by_role(&self, role: Role) -> impl Iterator<Item = &Instance> {
        self.instances.iter().filter(move |i| i.role == role)
    }

    /// The master is the instance the application's database endpoint points at; during a
    /// failover two instances can carry the master role, and the endpoint decides.
    pub fn master(&self) -> Option<&Instance> {
        self.db_endpoint
            .as_ref()
            .and_then(|ep| self.find(&ep.target_id))
            .or_else(|| self.by_role(Role::DbMaster).next())
    }

    pub fn find(&self, id: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.id == id)
    }
}
