//! Which replica could become the master, and why each other one could not. Pure: the replica
//! panel, `dake status` and (later) the promote playbook all rank with this one function.

use serde::Serialize;

use crate::domain::{FleetSnapshot, Instance, Role};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub instance_id: String,
    pub name: String,
    /// Seconds of the master's writes this replica has not applied: its heartbeat lag minus
    /// the master's own silence, so a dead master does not make every replica look late.
    pub behind_master_secs: f32,
    pub heartbeat_lag_secs: f32,
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

/// Every replica, best first: promotable ones by how little they are behind, then the rejected.
pub fn rank_replicas(snap: &FleetSnapshot, max_lag_secs: f32) -> Vec<Candidate> {
    let master_silence = snap
        .master()
        .and_then(|m| m.db.as_ref())
        .map_or(0.0, |db| db.heartbeat_age_secs);
    let mut out: Vec<Candidate> = snap
        .by_role(Role::DbReplica)
        .map(|r| assess(r, master_silence, max_lag_secs))
        .collect();
    out.sort_by(|a, b| {
        a.rejection
            .is_some()
            .cmp(&b.rejection.is_some())
            .then(a.behind_master_secs.total_cmp(&b.behind_master_secs))
            .then(a.name.cmp(&b.name))
    });
    if let Some(first) = out.first_mut() {
        first.best = first.rejection.is_none();
    }
    out
}

fn assess(replica: &Instance, master_silence: f32, max_lag_secs: f32) -> Candidate {
    let (lag, behind, rejection) = match &replica.db {
        None => (
            f32::NAN,
            f32::NAN,
            Some("no replication status reported".to_string()),
        ),
        Some(db) => {
            let behind = (db.heartbeat_age_secs - master_silence).max(0.0);
            let rejection = if replica.state != crate::domain::InstanceState::Running {
                Some(format!("instance is {}", replica.state.as_str()))
            } else if db.no_promote {
                Some("no-promote tag set".to_string())
            } else if !db.binlog_enabled {
                Some("binary log off: its replicas could not follow it".to_string())
            } else if !db.sql_thread_running {
                Some("SQL thread stopped".to_string())
            } else if behind > max_lag_secs {
                Some(format!(
                    "{behind:.1}s behind the master (limit {max_lag_secs:.0}s)"
                ))
            } else {
                None
            };
            (db.heartbeat_age_secs, behind, rejection)
        }
    };
    Candidate {
        instance_id: replica.id.clone(),
        name: replica.name.clone(),
        behind_master_secs: behind,
        heartbeat_lag_secs: lag,
        rejection,
        best: false,
    }
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

    #[test]
    fn every_rejection_has_its_reason() {
        let mut snap = fleet_at(0.0);
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
        let mut snap = fleet_at(0.0);
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
}
