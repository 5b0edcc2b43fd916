//! The `mysql` database source: dake connects to each database host itself and reads its
//! replication state, GTID positions and newest heartbeat, concurrently, each read bounded.
//! Any provider whose fleet dake can reach over the MySQL protocol uses it.

mod creds;
mod history;
pub mod read;
pub mod sql;
pub mod topology;
pub mod write;

use std::collections::BTreeMap;

use crate::config::{DatabaseConfig, host_port};
use crate::domain::{FleetSnapshot, Instance, Role, ServerFacts};

pub use creds::Secret;
pub use read::Access;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{}", say!("database credentials: {why}"))]
    Credentials { why: String },
    #[error("{address}: {why}")]
    Server { address: String, why: String },
}

impl DbError {
    /// The reason alone, without the address it is about.
    pub fn reason(&self) -> String {
        match self {
            DbError::Credentials { why } | DbError::Server { why, .. } => why.clone(),
        }
    }
}

/// dake's wall clock in epoch seconds, to the microsecond.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Reads every database host of a fleet.
#[derive(Debug)]
pub struct DbReader {
    access: Access,
    port: u16,
    hosts: BTreeMap<String, String>,
    /// Each replica's lag a minute, across reads.
    history: std::sync::Mutex<history::LagHistory>,
}

impl DbReader {
    /// Reads the password now, so a refused option file is said once, at start.
    pub fn new(cfg: &DatabaseConfig) -> Result<DbReader, DbError> {
        Ok(DbReader {
            access: Access::new(cfg, creds::password(cfg)?),
            port: cfg.port,
            hosts: cfg.hosts.clone(),
            history: Default::default(),
        })
    }

    pub fn access(&self) -> &Access {
        &self.access
    }

    /// Where `inst`'s server is reached: `[database.hosts]` by instance id or Name, else its
    /// private address and the configured port.
    pub fn address_of(&self, inst: &Instance) -> (String, u16) {
        self.address_for(&inst.id, &inst.name, &inst.private_ip)
    }

    /// [`DbReader::address_of`] from an instance's id, Name and private address.
    pub fn address_for(&self, id: &str, name: &str, private_ip: &str) -> (String, u16) {
        self.hosts
            .get(id)
            .or_else(|| self.hosts.get(name))
            .and_then(|a| host_port(a, self.port).ok())
            .unwrap_or_else(|| (private_ip.to_string(), self.port))
    }

    /// Replaces every database host's status in `snap` with what its server says. Reads run
    /// concurrently, each bounded by the connect and read timeouts.
    pub async fn apply(&self, snap: &mut FleetSnapshot, capacity: usize) {
        let db_hosts: Vec<&Instance> = snap
            .instances
            .iter()
            .filter(|i| i.role != Role::Web)
            .collect();
        // Where dake reaches each host, and where its replicas reach it unless it reports
        // another address.
        let reach: Vec<((String, u16), String)> = db_hosts
            .iter()
            .map(|inst| {
                let private = format!("{}:{}", inst.private_ip, self.port);
                (self.address_of(inst), private)
            })
            .collect();
        let mut reads = tokio::task::JoinSet::new();
        for (n, ((host, port), private)) in reach.iter().cloned().enumerate() {
            let access = self.access.clone();
            reads.spawn(async move { (n, read::server(&access, &host, port, &private).await) });
        }
        let mut facts: Vec<Option<ServerFacts>> = vec![None; db_hosts.len()];
        while let Some(done) = reads.join_next().await {
            if let Ok((n, f)) = done {
                facts[n] = Some(f);
            }
        }
        let hosts: Vec<topology::HostFacts<'_>> = db_hosts
            .iter()
            .zip(reach)
            .zip(facts)
            .map(|((inst, ((host, port), private)), f)| {
                let address = format!("{host}:{port}");
                let facts = f.unwrap_or_else(|| {
                    ServerFacts::unreachable(address.clone(), "the read did not finish".into())
                });
                topology::HostFacts {
                    id: &inst.id,
                    role: inst.role,
                    addresses: addresses(address, private, &facts),
                    tags: &inst.tags,
                    facts,
                }
            })
            .collect();
        let master_id = snap.master().map(|m| m.id.clone());
        let now = unix_now();
        let mut statuses = topology::statuses(hosts, master_id.as_deref(), now, capacity);
        // A poisoned history (a panic elsewhere) only loses the sparkline, never the read.
        if let Ok(mut history) = self.history.lock() {
            let ids: Vec<&str> = statuses.keys().map(String::as_str).collect();
            history.keep_only(&ids);
            for (id, status) in &mut statuses {
                let lag = status.heartbeat_age_secs;
                if status.lag_history.latest().is_some() && lag.is_finite() {
                    status.lag_history = history.record(id, now as i64, lag, capacity);
                }
            }
        }
        for inst in &mut snap.instances {
            if let Some(status) = statuses.remove(&inst.id) {
                inst.db = Some(status);
            }
        }
    }
}

/// Every `host:port` a replica's source may name this host by: how dake reaches it, its
/// private address, and the address it reports (`report_host`), each once.
fn addresses(dake: String, private: String, facts: &ServerFacts) -> Vec<String> {
    let mut out = vec![dake, private, facts.replication_address.clone()];
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_is_known_by_the_address_it_reports_too() {
        let mut facts = ServerFacts::unreachable("127.0.0.1:13306".into(), String::new());
        facts.replication_address = "db-a.internal:3306".into();
        let all = addresses("127.0.0.1:13306".into(), "10.0.0.5:3306".into(), &facts);
        assert_eq!(
            all,
            ["10.0.0.5:3306", "127.0.0.1:13306", "db-a.internal:3306"]
        );
    }
}
