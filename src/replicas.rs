//! Which replica could become the master, and why each other one could not. Pure: the replica
//! panel, `dake status` and the promote playbook all rank with this one function.

use serde::Serialize;

use crate::domain::gtid::Position;
use crate::domain::{DbStatus, FleetSnapshot, Instance, LagSource, Role, ServerFacts, ThreadState};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub instance_id: String,
    pub name: String,
    /// Seconds of the master's writes this replica has not applied: its heartbeat lag minus
    /// the master's own silence, so a dead master does not make every replica look late.
    pub behind_master_secs: f32,
    pub heartbeat_lag_secs: f32,
    /// Where the lag figures came from.
    pub lag_source: LagSource,
    /// Transactions it holds once its relay log is applied (executed and received GTIDs, every
    /// stream), when its server was read: the figure promotion ranks by.
    pub transactions: Option<u64>,
    /// `None` when it may be promoted; otherwise why not.
    pub rejection: Option<String>,
    /// True for the single best promotable replica.
    pub best: bool,
}

impl Candidate {
    pub fn promotable(&self) -> bool {
        self.rejection.is_none()
    }
}

/// Every replica, best first: promotable ones by the most data (when their servers were read),
/// then by how little they are behind; then the rejected.
pub fn rank_replicas(snap: &FleetSnapshot, max_lag_secs: f32) -> Vec<Candidate> {
    let master_silence = snap
        .master()
        .and_then(|m| m.db.as_ref())
        .map_or(0.0, |db| db.heartbeat_age_secs);
    // What each replica whose server was read holds, worked out once.
    let replicas: Vec<(&Instance, Option<Position>)> = snap
        .by_role(Role::DbReplica)
        .map(|r| {
            (
                r,
                r.db.as_ref().and_then(|d| d.server.as_ref()).and_then(held),
            )
        })
        .collect();
    // The data decides only when every running replica's server answered: one that did not may
    // hold more, and then how far behind each is in time still counts.
    let complete = replicas
        .iter()
        .filter(|(r, _)| r.state == crate::domain::InstanceState::Running)
        .all(|(_, mine)| mine.is_some());
    // While the master answers and takes writes, what one replica received and another not
    // yet is on its way to every replica whose IO thread runs: behind, not lost.
    let master_writing = snap
        .master()
        .and_then(|m| m.db.as_ref()?.server.as_ref())
        .is_some_and(|f| f.answers() && !f.read_only);
    let receiving = |r: &Instance| {
        r.db.as_ref()
            .and_then(|d| d.server.as_ref()?.replica.as_ref())
            .is_some_and(|side| side.io == ThreadState::Running)
    };
    let mut out: Vec<Candidate> = replicas
        .iter()
        .map(|(r, mine)| {
            let catching_up = master_writing && receiving(r);
            // Transactions another replica received that this one lacks: none, and its
            // heartbeat (what it applied) says nothing its catch-up will not mend.
            let lacks = mine.as_ref().filter(|_| !catching_up).map(|mine| {
                replicas
                    .iter()
                    .filter_map(|(_, other)| Some(other.as_ref()?.ahead_of(mine)))
                    .max()
                    .unwrap_or(0)
            });
            assess(
                r,
                master_silence,
                max_lag_secs,
                mine.as_ref(),
                lacks,
                complete,
            )
        })
        .collect();
    out.sort_by(|a, b| {
        a.rejection
            .is_some()
            .cmp(&b.rejection.is_some())
            .then(b.transactions.cmp(&a.transactions))
            .then(a.behind_master_secs.total_cmp(&b.behind_master_secs))
            .then(a.name.cmp(&b.name))
    });
    if let Some(first) = out.first_mut() {
        first.best = first.rejection.is_none();
    }
    out
}

const BINLOG_OFF: &str = said!("binary log off: its replicas could not follow it");

/// `held`: what it holds, and `lacks`: transactions other replicas received that it lacks,
/// when its server was read.
/// Then the data decides, not the heartbeat: one that lacks nothing is as far as any replica
/// got, and its catch-up applies what it received; one that lacks something would lose it.
fn assess(
    replica: &Instance,
    master_silence: f32,
    max_lag_secs: f32,
    held: Option<&Position>,
    lacks: Option<u64>,
    complete: bool,
) -> Candidate {
    let (lag, behind, rejection, transactions) = match &replica.db {
        None => (
            f32::NAN,
            f32::NAN,
            Some(said!("no replication status reported").to_string()),
            None,
        ),
        Some(db) => {
            let behind = (db.heartbeat_age_secs - master_silence).max(0.0);
            let server = db.server.as_ref();
            let rejection = if replica.state != crate::domain::InstanceState::Running {
                Some(say!("instance is {}", replica.state.as_str()))
            } else if db.no_promote {
                Some(said!("no-promote tag set").to_string())
            } else if let Some(f) = server {
                server_rejection(f).or_else(|| match lacks {
                    Some(1) => Some(say!("lacks 1 transaction another replica received")),
                    Some(n) if n > 0 => {
                        Some(say!("lacks {n} transactions another replica received"))
                    }
                    _ if complete => None,
                    _ => lag_rejection(db, behind, max_lag_secs),
                })
            } else if !db.binlog_enabled {
                Some(BINLOG_OFF.to_string())
            } else if !db.sql_thread_running {
                Some(said!("SQL thread stopped").to_string())
            } else {
                lag_rejection(db, behind, max_lag_secs)
            };
            (
                db.heartbeat_age_secs,
                behind,
                rejection,
                held.map(Position::total),
            )
        }
    };
    Candidate {
        instance_id: replica.id.clone(),
        name: replica.name.clone(),
        behind_master_secs: behind,
        heartbeat_lag_secs: lag,
        lag_source: replica
            .db
            .as_ref()
            .map_or_else(LagSource::default, |d| d.lag_source),
        transactions,
        rejection,
        best: false,
    }
}

fn lag_rejection(db: &DbStatus, behind: f32, max_lag_secs: f32) -> Option<String> {
    if !behind.is_finite() {
        Some(said!("lag unknown: no heartbeat and no Seconds_Behind_Master").to_string())
    } else if behind > max_lag_secs {
        Some(say!(
            "{behind:.1}s behind the master (limit {max_lag_secs:.0}s, {})",
            db.lag_source.label()
        ))
    } else {
        None
    }
}

/// Why what the server said rules it out, in orchestrator's order: reachable, able to serve
/// replicas (binary log, replica updates), replicating without error, nothing errant, not
/// delayed by design.
fn server_rejection(f: &ServerFacts) -> Option<String> {
    if let Some(why) = f.unreadable() {
        return Some(why);
    }
    if !f.log_bin {
        return Some(BINLOG_OFF.into());
    }
    if !f.log_replica_updates {
        return Some(
            said!(
                "log_slave_updates off: what it replicated is not in its binary log, so the \
                 other replicas could not follow it"
            )
            .into(),
        );
    }
    let Some(r) = &f.replica else {
        return Some(said!("not a replica: no replication configured").into());
    };
    // A SQL thread stopped cleanly (by hand) is started again by the catch-up; one stopped by
    // an error would stop again.
    if r.sql != ThreadState::Running && !r.last_sql_error.is_empty() {
        return Some(say!("SQL thread stopped: {}", r.last_sql_error));
    }
    if !f.errant.is_empty() {
        return Some(say!(
            "errant transactions {}: no master of the lineage wrote them",
            f.errant
        ));
    }
    if r.sql_delay_secs > 0 {
        return Some(say!("delayed replica (MASTER_DELAY {}s)", r.sql_delay_secs));
    }
    None
}

/// What a replica will hold of the lineage's transactions once it has applied what it
/// received: its errant ones left out (on MariaDB they share the domain's sequence, and would
/// make it look ahead).
pub fn held(f: &ServerFacts) -> Option<Position> {
    let flavour = f.flavour?;
    // MariaDB's current position keeps one GTID a domain; its binary log state keeps the last
    // of every server, so the lineage's last survives an errant one after it.
    let executed = Position::parse(flavour, &f.gtid_executed)
        .union(&Position::parse(flavour, &f.gtid_binlog_state));
    let received = f
        .replica
        .as_ref()
        .map(|r| Position::parse(flavour, &r.gtid_received))
        .unwrap_or_default();
    let errant = Position::parse(flavour, &f.errant).origins();
    Some(executed.union(&received).without(&errant))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::fleet_at;

    fn set(snap: &mut FleetSnapshot, name: &str, edit: impl FnOnce(&mut crate::domain::DbStatus)) {
        let i = snap.instances.iter_mut().find(|i| i.name == name).unwrap();
        edit(i.db.as_mut().unwrap());
    }

    #[test]
    fn least_lagged_replica_is_best_even_with_the_master_dead() {
        let ranked = rank_replicas(&fleet_at(400.0), 10.0);
        assert_eq!(ranked.len(), 2);
        assert_eq!(ranked[0].name, "db-replica-1");
        assert!(ranked[0].best && ranked[0].promotable());
        assert!(
            ranked[0].heartbeat_lag_secs > 100.0,
            "raw lag grows with the master's silence"
        );
        assert!(ranked[0].behind_master_secs < 1.0);
        assert!(!ranked[1].best);
    }

    /// The fleet as the metrics source sees it: no server read.
    fn unread(mut snap: FleetSnapshot) -> FleetSnapshot {
        for db in snap.instances.iter_mut().filter_map(|i| i.db.as_mut()) {
            db.server = None;
        }
        snap
    }

    #[test]
    fn every_rejection_has_its_reason() {
        let mut snap = unread(fleet_at(0.0));
        set(&mut snap, "db-replica-1", |db| db.no_promote = true);
        set(&mut snap, "db-replica-2", |db| db.binlog_enabled = false);
        let ranked = rank_replicas(&snap, 10.0);
        assert!(ranked.iter().all(|c| !c.best));
        let reasons: Vec<_> = ranked
            .iter()
            .map(|c| c.rejection.clone().unwrap())
            .collect();
        assert!(reasons.iter().any(|r| r.contains("no-promote")));
        assert!(reasons.iter().any(|r| r.contains("binary log off")));
    }

    #[test]
    fn lag_beyond_the_limit_and_stopped_sql_thread_are_rejected() {
        let mut snap = unread(fleet_at(0.0));
        set(&mut snap, "db-replica-1", |db| {
            db.sql_thread_running = false
        });
        set(&mut snap, "db-replica-2", |db| db.heartbeat_age_secs = 30.0);
        let ranked = rank_replicas(&snap, 10.0);
        assert!(
            ranked
                .iter()
                .any(|c| c.rejection.as_deref() == Some("SQL thread stopped"))
        );
        assert!(ranked.iter().any(|c| {
            c.rejection
                .as_deref()
                .is_some_and(|r| r.contains("limit 10s"))
        }));
    }

    fn read_from_server(db: &mut crate::domain::DbStatus, server_id: u32, executed: &str) {
        let mut f = ServerFacts::unreachable("127.0.0.1:3306".into(), String::new());
        f.unreachable = None;
        f.flavour = Some(crate::domain::Flavour::MariaDb);
        f.server_id = server_id;
        f.log_bin = true;
        f.log_replica_updates = true;
        f.gtid_executed = executed.into();
        f.replica = Some(crate::domain::ReplicaSide {
            source: "10.0.0.1:3306".into(),
            io: ThreadState::Connecting,
            sql: ThreadState::Running,
            last_io_error: String::new(),
            last_sql_error: String::new(),
            seconds_behind: None,
            sql_delay_secs: 0,
            relay_log_applied: true,
            gtid_received: executed.into(),
        });
        db.lag_source = LagSource::Heartbeat;
        db.server = Some(f);
    }

    #[test]
    fn the_most_data_wins_over_a_fresher_heartbeat() {
        let mut snap = fleet_at(0.0);
        set(&mut snap, "db-replica-1", |db| {
            read_from_server(db, 2, "0-1-100");
            db.heartbeat_age_secs = 0.0;
            let side = db.server.as_mut().unwrap().replica.as_mut().unwrap();
            side.io = ThreadState::Running;
        });
        set(&mut snap, "db-replica-2", |db| {
            read_from_server(db, 3, "0-1-107");
            db.heartbeat_age_secs = 6.0;
        });
        // The master still writes and db-replica-1 receives: the seven are on their way.
        let ranked = rank_replicas(&snap, 10.0);
        assert_eq!(ranked[0].name, "db-replica-2", "{ranked:#?}");
        assert_eq!(ranked[0].transactions, Some(107));
        assert!(ranked[0].best);
        assert!(ranked[1].promotable(), "{ranked:#?}");
        // Its IO thread stops, or the master does: they never will be.
        let mut stopped = snap.clone();
        set(&mut stopped, "db-replica-1", |db| {
            let side = db.server.as_mut().unwrap().replica.as_mut().unwrap();
            side.io = ThreadState::Stopped;
        });
        assert!(!rank_replicas(&stopped, 10.0)[1].promotable());
        set(&mut snap, "db-master", |db| {
            db.server = Some(ServerFacts::unreachable(
                "10.0.0.110:3306".into(),
                "no answer within 8s".into(),
            ))
        });
        let ranked = rank_replicas(&snap, 10.0);
        assert_eq!(ranked[0].name, "db-replica-2", "{ranked:#?}");
        assert_eq!(
            ranked[1].rejection.as_deref(),
            Some("lacks 7 transactions another replica received")
        );
    }

    #[test]
    fn what_the_server_says_rules_a_replica_out_with_its_reason() {
        type Edit = fn(&mut ServerFacts);
        let cases: [(&str, Edit); 6] = [
            ("MySQL does not answer: timed out", |f| {
                f.unreachable = Some("timed out".into())
            }),
            ("log_slave_updates off", |f| f.log_replica_updates = false),
            ("SQL thread stopped: Duplicate entry", |f| {
                let r = f.replica.as_mut().unwrap();
                r.sql = ThreadState::Stopped;
                r.last_sql_error = "Duplicate entry".into();
            }),
            ("errant transactions 0-3-9", |f| f.errant = "0-3-9".into()),
            ("delayed replica (MASTER_DELAY 3600s)", |f| {
                f.replica.as_mut().unwrap().sql_delay_secs = 3600
            }),
            ("not a replica", |f| f.replica = None),
        ];
        for (reason, edit) in cases {
            let mut snap = fleet_at(0.0);
            set(&mut snap, "db-replica-1", |db| {
                read_from_server(db, 2, "0-1-100");
                edit(db.server.as_mut().unwrap());
            });
            let ranked = rank_replicas(&snap, 10.0);
            let r1 = ranked.iter().find(|c| c.name == "db-replica-1").unwrap();
            let why = r1.rejection.as_deref().unwrap_or("promotable");
            assert!(why.starts_with(reason), "{reason}: {why}");
        }
    }
}
