//! What a database server says about itself when dake reads it over the MySQL protocol: the
//! facts orchestrator and MHA decide a promotion on, in both flavours' terms.

use serde::{Deserialize, Serialize};

/// The server software: its statements and GTID positions differ, and neither is assumed
/// from the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flavour {
    MariaDb,
    MySql,
}

impl Flavour {
    /// From `@@version` (and `@@version_comment`): MariaDB says so in either.
    pub fn from_version(version: &str, comment: &str) -> Flavour {
        let says = |s: &str| s.to_ascii_lowercase().contains("mariadb");
        if says(version) || says(comment) {
            Flavour::MariaDb
        } else {
            Flavour::MySql
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Flavour::MariaDb => "MariaDB",
            Flavour::MySql => "MySQL",
        }
    }
}

/// Where a lag figure came from: the replica panel and the JSON say it beside the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LagSource {
    /// Heartbeat timestamps the hosts publish to CloudWatch.
    #[default]
    Metrics,
    /// The newest heartbeat row the server holds, read by dake: now − that beat.
    Heartbeat,
    /// `Seconds_Behind_Master`: only when the server holds no heartbeat. It reads 0 for a
    /// replica whose IO thread is behind, and nothing once a thread stops.
    SecondsBehind,
    /// The simulated fleet's own clock.
    Simulated,
}

impl LagSource {
    /// Two or three letters beside a lag in the replica panel (`?` in the help says which).
    pub fn short(self) -> &'static str {
        match self {
            LagSource::Metrics => "cw",
            LagSource::Heartbeat => "hb",
            LagSource::SecondsBehind => "SBM",
            LagSource::Simulated => "",
        }
    }

    /// Where a lag came from, in words.
    pub fn label(self) -> &'static str {
        match self {
            LagSource::Metrics => "metrics",
            LagSource::Heartbeat => "heartbeat",
            LagSource::SecondsBehind => "SBM",
            LagSource::Simulated => "sim",
        }
    }
}

/// A replication thread as the server reports it (`Yes`, `No`, `Connecting`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ThreadState {
    Running,
    Connecting,
    Stopped,
}

impl ThreadState {
    pub fn parse(s: &str) -> ThreadState {
        match s.trim().to_ascii_lowercase().as_str() {
            "yes" => ThreadState::Running,
            "connecting" | "preparing" => ThreadState::Connecting,
            _ => ThreadState::Stopped,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ThreadState::Running => "running",
            ThreadState::Connecting => "connecting",
            ThreadState::Stopped => "stopped",
        }
    }
}

/// One server's replica side (`SHOW REPLICA STATUS`), when it replicates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaSide {
    /// The source it reads from, as configured on it (`host:port`).
    pub source: String,
    pub io: ThreadState,
    pub sql: ThreadState,
    pub last_io_error: String,
    pub last_sql_error: String,
    /// `Seconds_Behind_Master` / `_Source`; `None` when the server shows NULL.
    pub seconds_behind: Option<u64>,
    /// `MASTER_DELAY` / `SOURCE_DELAY`: a delayed replica is behind by design.
    pub sql_delay_secs: u64,
    /// The SQL thread has applied every event the IO thread received (no relay-log backlog).
    pub relay_log_applied: bool,
    /// GTIDs received from the source (MySQL `Retrieved_Gtid_Set`, MariaDB `Gtid_IO_Pos`).
    pub gtid_received: String,
}

/// How the reason of a server that answered and refused dake's read begins.
pub const REFUSED: &str = "refused dake: ";

/// Everything dake read from one database server, or why it could not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerFacts {
    /// `host:port` dake connected to.
    pub address: String,
    /// `host:port` its replicas reach it at: `report_host`:`report_port` when the server sets
    /// them, else its private address and the configured port. What a repointed replica's
    /// source is set to.
    pub replication_address: String,
    /// Why the server did not answer; every other field is then empty.
    pub unreachable: Option<String>,
    pub flavour: Option<Flavour>,
    pub version: String,
    pub server_id: u32,
    pub read_only: bool,
    pub super_read_only: bool,
    pub log_bin: bool,
    pub log_replica_updates: bool,
    /// GTIDs executed: MySQL `gtid_executed`, MariaDB `gtid_current_pos`.
    pub gtid_executed: String,
    /// MariaDB `gtid_binlog_state`: the last GTID of every (domain, server id) in its binary
    /// log, where a transaction of a server outside the lineage shows; empty on MySQL.
    pub gtid_binlog_state: String,
    pub replica: Option<ReplicaSide>,
    /// Semi-synchronous replication, when the server has it on.
    pub semi_sync: Option<String>,
    /// Newest heartbeat row it holds: epoch seconds of the beat, and the writer's server id.
    pub heartbeat: Option<(f64, u32)>,
    /// The server's own clock minus dake's, in seconds, at the read.
    pub clock_skew_secs: f64,
    /// Transactions no server of the lineage wrote: a replica carrying them must not be
    /// promoted (its replicas would receive them, or lack them).
    pub errant: String,
}

impl ServerFacts {
    pub fn unreachable(address: String, why: String) -> ServerFacts {
        ServerFacts {
            replication_address: address.clone(),
            address,
            unreachable: Some(why),
            flavour: None,
            version: String::new(),
            server_id: 0,
            read_only: false,
            super_read_only: false,
            log_bin: false,
            log_replica_updates: false,
            gtid_executed: String::new(),
            gtid_binlog_state: String::new(),
            replica: None,
            semi_sync: None,
            heartbeat: None,
            clock_skew_secs: 0.0,
            errant: String::new(),
        }
    }

    pub fn answers(&self) -> bool {
        self.unreachable.is_none()
    }

    /// It takes no writes: read-only, and on MySQL super_read_only too (accounts with SUPER
    /// write through read_only alone).
    pub fn fenced(&self) -> bool {
        self.read_only && (self.flavour != Some(Flavour::MySql) || self.super_read_only)
    }

    /// It answered but would not be read (a missing grant, a wrong password): up, whatever
    /// else is wrong.
    pub fn refused_dake(&self) -> bool {
        self.unreachable
            .as_deref()
            .is_some_and(|why| why.starts_with(REFUSED))
    }

    /// Why the server could not be read, as dake says it: it refused dake's account, or it
    /// did not answer.
    pub fn unreadable(&self) -> Option<String> {
        let why = self.unreachable.as_deref()?;
        Some(if self.refused_dake() {
            say!("MySQL {why}")
        } else {
            say!("MySQL does not answer: {why}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavour_comes_from_what_the_server_says() {
        assert_eq!(
            Flavour::from_version("10.11.14-MariaDB-0+deb12u2", "Debian 12"),
            Flavour::MariaDb
        );
        assert_eq!(
            Flavour::from_version("11.4.2", "mariadb.org binary distribution"),
            Flavour::MariaDb
        );
        assert_eq!(
            Flavour::from_version("8.4.3", "MySQL Community Server - GPL"),
            Flavour::MySql
        );
    }

    #[test]
    fn thread_states_read_both_spellings() {
        assert_eq!(ThreadState::parse("Yes"), ThreadState::Running);
        assert_eq!(ThreadState::parse("Connecting"), ThreadState::Connecting);
        assert_eq!(ThreadState::parse("No"), ThreadState::Stopped);
        assert_eq!(ThreadState::parse(""), ThreadState::Stopped);
    }
}
