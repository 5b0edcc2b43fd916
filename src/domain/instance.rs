//! One EC2 instance as dake sees it, whichever provider reported it.

use serde::{Deserialize, Serialize};

use super::{LagSource, ServerFacts, TimeSeries};

/// Declaration order is the fleet's listing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Web,
    DbMaster,
    DbReplica,
}

impl Role {
    /// Every role, in the order the fleet is listed (also `Ord`'s): the web servers, the
    /// master, its replicas.
    pub const ALL: [Role; 3] = [Role::Web, Role::DbMaster, Role::DbReplica];

    /// Position in [`Role::ALL`], for tables indexed by role.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Web => "web",
            Role::DbMaster => "db-master",
            Role::DbReplica => "db-replica",
        }
    }

    /// Short label for narrow tables.
    pub fn short(self) -> &'static str {
        match self {
            Role::Web => "web",
            Role::DbMaster => "master",
            Role::DbReplica => "replica",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "web" => Ok(Role::Web),
            "db-master" => Ok(Role::DbMaster),
            "db-replica" => Ok(Role::DbReplica),
            other => Err(format!(
                "unknown role `{other}` (expected web, db-master or db-replica)"
            )),
        }
    }
}

/// EC2 instance lifecycle state names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    Pending,
    Running,
    Stopping,
    Stopped,
    ShuttingDown,
    Terminated,
}

impl InstanceState {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::Stopping => said!("stopping"),
            InstanceState::Stopped => said!("stopped"),
            InstanceState::ShuttingDown => said!("shutting-down"),
            InstanceState::Terminated => said!("terminated"),
        }
    }
}

/// EC2 status check result (system or instance reachability).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckStatus {
    Ok,
    Impaired,
    Initializing,
    InsufficientData,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Impaired => said!("impaired"),
            CheckStatus::Initializing => said!("initializing"),
            CheckStatus::InsufficientData => "insufficient-data",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChecks {
    pub system: CheckStatus,
    pub instance: CheckStatus,
}

impl StatusChecks {
    pub const OK: StatusChecks = StatusChecks {
        system: CheckStatus::Ok,
        instance: CheckStatus::Ok,
    };

    pub fn passed(&self) -> u8 {
        u8::from(self.system == CheckStatus::Ok) + u8::from(self.instance == CheckStatus::Ok)
    }

    pub fn any_impaired(&self) -> bool {
        self.system == CheckStatus::Impaired || self.instance == CheckStatus::Impaired
    }
}

/// Load balancer target health, as ELBv2 names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetHealth {
    Initial,
    Healthy,
    Unhealthy,
    Draining,
    Unused,
}

impl TargetHealth {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetHealth::Initial => said!("initial"),
            TargetHealth::Healthy => said!("healthy"),
            TargetHealth::Unhealthy => said!("unhealthy"),
            TargetHealth::Draining => said!("draining"),
            TargetHealth::Unused => said!("unused"),
        }
    }
}

/// What a replacement needs to be launched "the same way": one image, the role decided at boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchParams {
    pub instance_type: String,
    pub subnet_id: String,
    pub security_groups: Vec<String>,
    pub key_name: Option<String>,
    /// Boot parameter handed to the image (user data); the role lives here, not in the image.
    pub user_data: String,
}

/// EBS volume states, as EC2 names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VolumeState {
    Creating,
    Available,
    Attaching,
    InUse,
    Detaching,
}

/// A fleet volume attached to no instance (detached, or between two instances).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreeVolume {
    pub id: String,
    pub az: String,
    pub state: VolumeState,
    pub size_gib: u32,
    pub sole_copy: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub id: String,
    pub device: String,
    pub size_gib: u32,
    /// True when this volume holds the only copy of its data (the master's data volume); a
    /// replica's data volume is a copy and a root volume is rebuilt from the image.
    pub sole_copy: bool,
}

/// Database replication facts for a MySQL master or replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbStatus {
    /// For the master: seconds since it last wrote its heartbeat row. For a replica: seconds
    /// between now and the newest master heartbeat it has applied (its replication lag).
    pub heartbeat_age_secs: f32,
    pub lag_history: TimeSeries,
    pub io_thread_running: bool,
    pub sql_thread_running: bool,
    pub binlog_enabled: bool,
    /// Operator-set flag (tag `dake:no-promote`) that keeps a replica out of promotion.
    pub no_promote: bool,
    /// Instance id of the master this replica reads from; `None` for the master.
    pub source_id: Option<String>,
    /// True while MySQL runs and answers on the host.
    pub running: bool,
    /// A master accepts writes; a replica is read-only.
    pub read_only: bool,
    /// Where `heartbeat_age_secs` came from.
    #[serde(default)]
    pub lag_source: LagSource,
    /// What the server said itself, when dake reads it over the MySQL protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerFacts>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub checks: StatusChecks,
    pub cpu: TimeSeries,
    pub p50_ms: TimeSeries,
    pub p99_ms: TimeSeries,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub az: String,
    pub state: InstanceState,
    pub image_id: String,
    pub launch: LaunchParams,
    pub volumes: Vec<Volume>,
    pub private_ip: String,
    pub health: Health,
    /// Load balancer target health; `None` when not registered in the target group.
    pub target: Option<TargetHealth>,
    pub db: Option<DbStatus>,
    /// Tags as EC2 reports them (`dake:role`, `dake:run`, `Name`, ...), sorted by key.
    pub tags: std::collections::BTreeMap<String, String>,
}

impl Instance {
    /// Disposable means nothing would be lost by throwing it away whole: no volume holds data
    /// that exists only on it. Web servers are; the master is not.
    pub fn disposable(&self) -> bool {
        !self.volumes.iter().any(|v| v.sole_copy)
    }

    pub fn latest_p99(&self) -> Option<f32> {
        self.health.p99_ms.latest()
    }

    pub fn latest_cpu(&self) -> Option<f32> {
        self.health.cpu.latest()
    }
}
