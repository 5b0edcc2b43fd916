//! The drill fleet's database servers, modelled as MariaDB with GTIDs in one domain: the
//! master writes, each replica's IO thread receives into its relay log and its SQL thread
//! applies, so a replica can hold transactions it has not applied yet, lack some another one
//! received, carry an errant one, or follow a master that came back. dake reads them as it
//! reads real servers ([`ServerFacts`]) and changes them with the same SQL statements.

use serde::{Deserialize, Serialize};

use super::SimFleet;
use super::fleet::SimInstance;
use crate::domain::{Flavour, InstanceState, ReplicaSide, Role, ServerFacts, ThreadState};

/// Transactions the master commits per second, heartbeats among them.
pub(super) const TX_PER_SEC: u64 = 20;
/// How fast a SQL thread works through a relay-log backlog: five times the write rate.
pub(super) const APPLY_TX_PER_SEC: u64 = 100;
/// The port every drill server listens on.
pub(super) const DB_PORT: u16 = 3306;
const VERSION: &str = "10.11.14-MariaDB-drill";
/// The sequence number the drill's history starts from: a database that has been busy a while.
const FIRST_SEQ: u64 = 4_000_000;
/// What a replica's SQL thread stopped on in the `sql-thread-error` trap.
pub(super) const SQL_ERROR: &str = "Error 'Duplicate entry '81234' for key 'PRIMARY'' on query. Default \
     database: 'shop'. Query: 'INSERT INTO orders (id, customer) VALUES (81234, 77)'";

/// A server's newest transaction of the lineage's domain: its sequence number, the server that
/// wrote it, and the virtual second of the newest heartbeat up to it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(super) struct Tx {
    pub(super) seq: u64,
    pub(super) origin: u32,
    pub(super) beat: f64,
}

impl Tx {
    /// The master's data when the drill fleet is built, at virtual second `now`.
    pub(super) fn first(origin: u32, now: i64) -> Tx {
        Tx {
            seq: FIRST_SEQ,
            origin,
            beat: now as f64,
        }
    }

    pub(super) fn gtid(self) -> String {
        format!("0-{}-{}", self.origin, self.seq)
    }

    /// A server with no data yet: a fresh launch before its copy or its volume arrives.
    pub(super) fn none(now: i64) -> Tx {
        Tx {
            seq: 0,
            origin: 0,
            beat: now as f64,
        }
    }

    /// As it stood `secs` earlier, while its writer wrote at the fleet's rate.
    pub(super) fn earlier_by(self, secs: f64) -> Tx {
        Tx {
            seq: self.seq.saturating_sub((secs * TX_PER_SEC as f64) as u64),
            beat: self.beat - secs,
            ..self
        }
    }
}

/// One database host's server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SimServer {
    pub(super) server_id: u32,
    /// What it has executed: a master's own writes, a replica's applied relay log.
    pub(super) applied: Tx,
    /// The end of its relay log; the same as `applied` with nothing to apply.
    pub(super) received: Tx,
    /// Replication threads as started or stopped (`START`/`STOP REPLICA`).
    pub(super) io_on: bool,
    pub(super) sql_on: bool,
    /// The IO thread connected to its source in the newest sample.
    pub(super) io_connected: bool,
    pub(super) io_error: Option<String>,
    pub(super) sql_error: Option<String>,
    /// Sequence number of a transaction written on it while it replicated: errant.
    pub(super) errant: Option<u64>,
    /// Its data was taken from under it while it ran: the next start recovers.
    #[serde(default)]
    pub(super) crashed: bool,
}

impl SimServer {
    pub(super) fn new(server_id: u32, data: Tx, replicating: bool) -> SimServer {
        SimServer {
            server_id,
            applied: data,
            received: data,
            io_on: replicating,
            sql_on: replicating,
            io_connected: replicating,
            io_error: None,
            sql_error: None,
            errant: None,
            crashed: false,
        }
    }

    /// What InnoDB logs as it starts on these files: the crash recovery, if they need one.
    pub(super) fn start_log(&mut self) -> String {
        if !std::mem::take(&mut self.crashed) {
            return String::new();
        }
        let lsn = self.applied.seq * 512;
        format!(
            "[Note] InnoDB: Starting crash recovery from checkpoint LSN={lsn}\n\
             [Note] InnoDB: To recover: {} pages\n\
             [Note] InnoDB: Last binlog file './mysql-bin.000042', position {}\n\
             [Note] InnoDB: Crash recovery finished.",
            self.applied.seq % 997 + 3,
            self.applied.seq % 65536 * 7
        )
    }

    /// The newest sequence number it holds in the domain: MariaDB numbers the domain's next
    /// transaction past it.
    pub(super) fn newest_seq(&self) -> u64 {
        self.applied
            .seq
            .max(self.received.seq)
            .max(self.errant.unwrap_or(0))
    }

    /// Its SQL thread runs: started, and not stopped by an error.
    pub(super) fn applying(&self) -> bool {
        self.sql_on && self.sql_error.is_none()
    }

    /// Applies up to `limit` transactions of its relay log.
    pub(super) fn apply(&mut self, limit: u64) {
        let backlog = self.received.seq.saturating_sub(self.applied.seq);
        if backlog <= limit {
            self.applied = self.received;
            return;
        }
        let left = backlog - limit;
        self.applied = Tx {
            seq: self.applied.seq + limit,
            origin: self.received.origin,
            beat: (self.received.beat - left as f64 / TX_PER_SEC as f64).max(self.applied.beat),
        };
    }

    fn binlog_state(&self) -> String {
        match self.errant {
            Some(seq) => format!("{},0-{}-{seq}", self.applied.gtid(), self.server_id),
            None => self.applied.gtid(),
        }
    }

    fn current_pos(&self) -> String {
        match self.errant {
            Some(seq) if seq > self.applied.seq => format!("0-{}-{seq}", self.server_id),
            _ => self.applied.gtid(),
        }
    }
}

/// `host:port` of an instance's server.
pub(super) fn address_of(s: &SimInstance) -> String {
    format!("{}:{DB_PORT}", s.inst.private_ip)
}

/// Why a server does not answer dake, when it does not.
pub(super) fn silence(s: &SimInstance) -> Option<&'static str> {
    if s.answers() {
        None
    } else if s.inst.state == InstanceState::Running && s.down_since.is_none() {
        Some("Input/output error: Connection refused (os error 111)")
    } else {
        Some("no answer within 8s")
    }
}

impl SimFleet {
    /// One sample of replication at virtual second `now`: masters write, IO threads receive
    /// what their source had `delays[i]` seconds ago, SQL threads apply; then each database's
    /// lag and thread states as dake's status shows them.
    pub(super) fn replicate(&mut self, now: i64, delays: &[f32]) {
        let written = TX_PER_SEC * self.interval() as u64;
        for s in &mut self.instances {
            let writes = s.writes_heartbeat();
            if let Some(server) = s.server.as_mut().filter(|_| writes) {
                server.applied = Tx {
                    seq: server.newest_seq() + written,
                    origin: server.server_id,
                    beat: now as f64,
                };
                server.received = server.applied;
            }
        }
        // Each replica's source's data, when both ends answer.
        let feeds: Vec<Option<Tx>> = self
            .instances
            .iter()
            .map(|s| {
                let source = s.inst.db.as_ref()?.source_id.as_ref()?;
                let src = self.instances.iter().find(|o| &o.inst.id == source)?;
                (s.answers() && src.answers()).then_some(src.server.as_ref()?.applied)
            })
            .collect();
        let applied_limit = APPLY_TX_PER_SEC * self.interval() as u64;
        for ((s, feed), delay) in self.instances.iter_mut().zip(feeds).zip(delays) {
            let answers = s.answers();
            let reporting = s.inst.state != InstanceState::Pending;
            let (Some(server), Some(db)) = (s.server.as_mut(), s.inst.db.as_mut()) else {
                continue;
            };
            server.io_connected = false;
            if let Some(src) = feed.filter(|_| server.io_on && server.io_error.is_none()) {
                let had = src.earlier_by(f64::from(*delay));
                server.received = Tx {
                    seq: had.seq.max(server.received.seq),
                    origin: src.origin,
                    beat: had.beat.max(server.received.beat),
                };
                server.io_connected = true;
            }
            if answers && server.applying() {
                server.apply(applied_limit);
            }
            db.io_thread_running = server.io_connected;
            db.sql_thread_running = answers && server.applying();
            let silence = (now as f64 - server.applied.beat) as f32;
            db.heartbeat_age_secs = match s.inst.role {
                // The master's own beat, a moment before the sample.
                Role::DbMaster => silence + delay,
                _ => silence,
            };
            if reporting {
                db.lag_history.push(db.heartbeat_age_secs);
            }
        }
    }

    /// What the server of `s` says about itself, as dake's read of a real one would.
    pub(super) fn facts(&self, s: &SimInstance) -> Option<ServerFacts> {
        let server = s.server.as_ref()?;
        let db = s.inst.db.as_ref()?;
        let address = address_of(s);
        if let Some(why) = silence(s) {
            return Some(ServerFacts::unreachable(address, why.to_string()));
        }
        let replica = db.source_id.as_ref().map(|source| {
            let source = self
                .instances
                .iter()
                .find(|o| &o.inst.id == source)
                .map_or_else(|| source.clone(), address_of);
            let io = match (&server.io_error, server.io_on, server.io_connected) {
                (None, true, true) => ThreadState::Running,
                (None, true, false) => ThreadState::Connecting,
                _ => ThreadState::Stopped,
            };
            let sql = if server.applying() {
                ThreadState::Running
            } else {
                ThreadState::Stopped
            };
            let lag = db.heartbeat_age_secs.max(0.0) as u64;
            ReplicaSide {
                source,
                io,
                sql,
                last_io_error: server.io_error.clone().unwrap_or_default(),
                last_sql_error: server.sql_error.clone().unwrap_or_default(),
                seconds_behind: (io == ThreadState::Running && sql == ThreadState::Running)
                    .then_some(lag),
                sql_delay_secs: 0,
                relay_log_applied: server.applied.seq >= server.received.seq,
                gtid_received: server.received.gtid(),
            }
        });
        let epoch = self.epoch().timestamp() as f64;
        Some(ServerFacts {
            replication_address: address.clone(),
            address,
            unreachable: None,
            flavour: Some(Flavour::MariaDb),
            version: VERSION.into(),
            server_id: server.server_id,
            read_only: db.read_only,
            super_read_only: false,
            log_bin: db.binlog_enabled,
            log_replica_updates: true,
            gtid_executed: server.current_pos(),
            gtid_binlog_state: server.binlog_state(),
            replica,
            semi_sync: None,
            heartbeat: (server.applied.seq > 0)
                .then_some((epoch + server.applied.beat, server.applied.origin)),
            clock_skew_secs: 0.0,
            errant: server
                .errant
                .map_or_else(String::new, |seq| format!("0-{}-{seq}", server.server_id)),
        })
    }
}
