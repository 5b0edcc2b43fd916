//! `[sim]`: the simulated fleet, its scheduled incidents and the database traps it sets.

use serde::{Deserialize, Serialize};

use super::{ConfigError, DbSource};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    pub seed: u64,
    pub speed: f64,
    pub sample_interval_secs: u32,
    pub history: usize,
    pub web_servers: usize,
    pub replicas: usize,
    pub zones: Vec<String>,
    pub web_instance_type: String,
    pub db_instance_type: String,
    /// Whether restarting the slow web server's app (or rebooting it) cures it. Off by default:
    /// in the talk the cause is unknown and the cheap fix does not help.
    #[serde(default)]
    pub restart_fixes_slow_web: bool,
    /// Whether rebooting the down master brings it back (起動をトライ succeeds).
    #[serde(default)]
    pub reboot_fixes_master: bool,
    /// Whether a retried RunInstances with the same ClientToken returns the first instance, as
    /// EC2 does. Some emulators launch a second one; turning this off rehearses that, and
    /// proves a resumed run finds its instance by tag.
    #[serde(default = "yes")]
    pub honour_client_token: bool,
    /// How dake reads the drill's databases: `mysql` (the servers themselves, as with
    /// `[database] source = "mysql"`), or `metrics` (heartbeat figures only, as a fleet dake
    /// cannot reach: promotion and repointing then go through the host commands).
    #[serde(default = "read_servers")]
    pub database_source: DbSource,
    #[serde(rename = "incident", default)]
    pub incidents: Vec<SimIncident>,
    /// The database traps a drill rehearses, on the same clock as the incidents.
    #[serde(rename = "fault", default)]
    pub faults: Vec<SimFault>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IncidentKind {
    SlowWeb,
    MasterDown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimIncident {
    pub kind: IncidentKind,
    pub at_secs: u64,
    /// Instance name; required for slow-web, ignored for master-down.
    pub target: Option<String>,
    /// slow-web only: the latency clears by itself after this long (a noisy neighbour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_secs: Option<u64>,
}

/// A trap on the database tier: not an incident dake detects by itself, but what makes a
/// failover go wrong when it is not noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Someone ran `STOP SLAVE SQL_THREAD` on a replica (a backup, a slow query): it keeps
    /// receiving, applies nothing, and its relay log grows.
    SqlThreadStopped,
    /// The replica's SQL thread stopped on an error (a duplicate key): it would stop again.
    SqlThreadError,
    /// A write landed on a replica: a transaction no master of the lineage had.
    ErrantTransaction,
    /// The down master answers again, writable, as a hung process that resumes does.
    MasterComesBack,
    /// The replica falls behind, a second more each second, up to `secs`.
    ReplicaLag,
    /// The instance's system status check fails (its host is impaired).
    StatusCheckFailed,
    /// The instance stops (a crash, a host retired under it).
    InstanceStops,
    /// The next call of `operation` fails once with an internal error.
    ApiError,
    /// The next call of `operation` is throttled once.
    ApiThrottled,
    /// Instances launched from now on take `secs` longer to boot.
    SlowBoot,
}

/// What a fault's `target` must name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultTarget {
    Replica,
    AnyInstance,
    Nothing,
}

impl FaultKind {
    pub fn target(self) -> FaultTarget {
        use FaultKind::*;
        match self {
            SqlThreadStopped | SqlThreadError | ErrantTransaction | ReplicaLag => {
                FaultTarget::Replica
            }
            StatusCheckFailed | InstanceStops => FaultTarget::AnyInstance,
            MasterComesBack | ApiError | ApiThrottled | SlowBoot => FaultTarget::Nothing,
        }
    }

    fn needs_secs(self) -> bool {
        matches!(self, FaultKind::ReplicaLag | FaultKind::SlowBoot)
    }

    fn needs_operation(self) -> bool {
        matches!(self, FaultKind::ApiError | FaultKind::ApiThrottled)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimFault {
    pub kind: FaultKind,
    pub at_secs: u64,
    /// A replica's name (`db-replica-N`) for the replica faults, any instance's for
    /// status-check-failed and instance-stops.
    pub target: Option<String>,
    /// replica-lag: how far behind it ends; slow-boot: how much longer a boot takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secs: Option<u64>,
    /// api-error, api-throttled: the API operation (`RunInstances`, `RegisterTargets`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
}

impl SimConfig {
    pub(crate) fn validate(
        &self,
        fail: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        let s = self;
        if !(s.speed > 0.0 && s.speed <= 10_000.0) {
            return Err(fail(
                "speed",
                said!("must be above 0 and at most 10000").into(),
            ));
        }
        if s.sample_interval_secs == 0 {
            return Err(fail(
                "sample_interval_secs",
                said!("must be at least 1").into(),
            ));
        }
        if s.history < 2 {
            return Err(fail("history", said!("must be at least 2").into()));
        }
        if s.web_servers < 2 {
            return Err(fail(
                "web_servers",
                said!("must be at least 2 (a slow one needs peers)").into(),
            ));
        }
        if s.zones.is_empty() {
            return Err(fail("zones", said!("needs at least one zone").into()));
        }
        for inc in &s.incidents {
            if inc.kind == IncidentKind::SlowWeb {
                match &inc.target {
                    None => {
                        return Err(fail(
                            "target",
                            said!("slow-web needs a target web server").into(),
                        ));
                    }
                    Some(t) if !sim_web_names(s.web_servers).any(|n| &n == t) => {
                        return Err(fail(
                            "target",
                            say!("no web server named `{t}` (web-1 .. web-{})", s.web_servers),
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        for inc in &s.incidents {
            if inc.for_secs.is_some() && inc.kind != IncidentKind::SlowWeb {
                return Err(fail(
                    "for_secs",
                    said!("only slow-web clears by itself").into(),
                ));
            }
        }
        for fault in &s.faults {
            fault.validate(s, fail)?;
        }
        Ok(())
    }
}

impl SimFault {
    fn validate(
        &self,
        s: &SimConfig,
        fail: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        let replicas = || sim_replica_names(s.replicas);
        let any = || {
            sim_web_names(s.web_servers)
                .chain(std::iter::once("db-master".to_string()))
                .chain(replicas())
        };
        match (&self.target, self.kind.target()) {
            (None, FaultTarget::Replica) => {
                return Err(fail(
                    "target",
                    said!("this fault needs a target replica (db-replica-N)").into(),
                ));
            }
            (Some(t), FaultTarget::Replica) if !replicas().any(|n| &n == t) => {
                return Err(fail(
                    "target",
                    say!(
                        "no replica named `{t}` (db-replica-1 .. db-replica-{})",
                        s.replicas
                    ),
                ));
            }
            (None, FaultTarget::AnyInstance) => {
                return Err(fail(
                    "target",
                    said!("this fault needs a target instance (web-N, db-master, db-replica-N)")
                        .into(),
                ));
            }
            (Some(t), FaultTarget::AnyInstance) if !any().any(|n| &n == t) => {
                return Err(fail("target", say!("no instance named `{t}`")));
            }
            (Some(_), FaultTarget::Nothing) => {
                return Err(fail(
                    "target",
                    "this fault names no target (master-comes-back: whichever master went \
                     down; the API and boot faults: the whole fleet)"
                        .into(),
                ));
            }
            _ => {}
        }
        match (self.secs, self.kind.needs_secs()) {
            (None, true) => return Err(fail("secs", said!("this fault needs `secs`").into())),
            (Some(_), false) => {
                return Err(fail("secs", said!("this fault takes no `secs`").into()));
            }
            (Some(0), true) => return Err(fail("secs", said!("must be at least 1").into())),
            _ => {}
        }
        match (&self.operation, self.kind.needs_operation()) {
            (None, true) => {
                return Err(fail(
                    "operation",
                    said!("this fault needs the API `operation` it fails (RunInstances, …)").into(),
                ));
            }
            (Some(_), false) => {
                return Err(fail(
                    "operation",
                    said!("this fault takes no `operation`").into(),
                ));
            }
            (Some(op), true)
                if !crate::domain::call::CallKind::ALL
                    .iter()
                    .any(|k| k.operation() == op) =>
            {
                let known: Vec<&str> = crate::domain::call::CallKind::ALL
                    .iter()
                    .map(|k| k.operation())
                    .collect();
                return Err(fail(
                    "operation",
                    say!(
                        "no operation `{op}` dake calls (one of {})",
                        known.join(", ")
                    ),
                ));
            }
            _ => {}
        }
        Ok(())
    }
}

fn read_servers() -> DbSource {
    DbSource::Mysql
}

fn yes() -> bool {
    true
}

/// Names the simulator gives its web servers; config validation uses the same rule.
pub fn sim_web_names(count: usize) -> impl Iterator<Item = String> {
    (1..=count).map(|n| format!("web-{n}"))
}

/// Names the simulator gives its replicas; config validation uses the same rule.
pub fn sim_replica_names(count: usize) -> impl Iterator<Item = String> {
    (1..=count).map(|n| format!("db-replica-{n}"))
}
