//! The drill's database servers and their traps, driven with the statements dake generates.

use super::*;
use crate::config::FaultKind;
use crate::domain::{Flavour, ServerFacts, ThreadState};
use crate::provider::mysql::sql;
use crate::replicas::rank_replicas;

fn facts(f: &SimFleet, name: &str) -> ServerFacts {
    by_name(f, name).db.unwrap().server.unwrap()
}

fn seq(gtid: &str) -> u64 {
    gtid.rsplit('-').next().unwrap().parse().unwrap()
}

fn run(f: &mut SimFleet, name: &str, statements: Vec<sql::Statement>) -> Result<(), String> {
    let call = ProviderCall::Sql {
        instance_id: by_name(f, name).id,
        statements: statements.into_iter().map(|s| s.sql).collect(),
        kill_clients: false,
    };
    f.apply(&call).map(|_| ())
}

/// The trap on `replica` springs at 30 s, the master dies `secs` later; 30 s after that.
fn trapped(kind: FaultKind, replica: &str, secs: u64) -> SimFleet {
    let mut c = config();
    c.sim.faults.push(crate::config::SimFault {
        kind,
        at_secs: 30,
        target: Some(replica.into()),
        secs: None,
        operation: None,
    });
    c.sim.incidents.push(crate::config::SimIncident {
        kind: IncidentKind::MasterDown,
        at_secs: 30 + secs,
        target: None,
        for_secs: None,
    });
    let mut f = fleet_with(&c);
    wait(&mut f, 60 + secs as i64);
    f
}

fn promote_statements() -> Vec<sql::Statement> {
    let mut s = vec![sql::stop_replica(), sql::reset_replica_all()];
    s.extend(sql::set_read_only(Flavour::MariaDb, false));
    s.push(sql::write_heartbeat("heartbeat.heartbeat", true));
    s
}

#[test]
fn drill_servers_read_as_mariadb_replication() {
    let mut f = fleet();
    wait(&mut f, 60);
    let master = facts(&f, "db-master");
    assert!(master.answers() && !master.read_only && master.replica.is_none());
    assert_eq!(master.flavour, Some(Flavour::MariaDb));
    for name in ["db-replica-1", "db-replica-2"] {
        let r = facts(&f, name);
        let side = r.replica.as_ref().unwrap();
        assert!(r.read_only && r.log_bin && r.log_replica_updates, "{r:?}");
        assert_eq!(
            (side.io, side.sql),
            (ThreadState::Running, ThreadState::Running)
        );
        assert_eq!(side.source, master.replication_address);
        assert!(side.relay_log_applied && r.errant.is_empty());
        assert_eq!(
            r.heartbeat.unwrap().1,
            master.server_id,
            "the master's beats"
        );
        assert!(seq(&r.gtid_executed) <= seq(&master.gtid_executed));
    }
}

#[test]
fn a_stopped_sql_thread_leaves_the_best_data_unapplied_and_the_catch_up_applies_it() {
    let mut f = trapped(FaultKind::SqlThreadStopped, "db-replica-1", 120);
    let r1 = facts(&f, "db-replica-1");
    let side = r1.replica.clone().unwrap();
    assert_eq!(side.sql, ThreadState::Stopped);
    assert!(side.last_sql_error.is_empty(), "stopped by hand");
    assert!(!side.relay_log_applied);
    let received = seq(&side.gtid_received);
    assert!(received > seq(&r1.gtid_executed) + 1000, "{side:?}");
    // By time it is minutes behind; by data it holds the most.
    let ranked = rank_replicas(&f.snapshot(), 10.0);
    assert_eq!(ranked[0].name, "db-replica-1", "{ranked:#?}");
    assert!(ranked[0].best && ranked[0].behind_master_secs > 100.0);
    let r2 = ranked[1].rejection.as_deref().unwrap();
    assert!(
        r2.starts_with("lacks ") && r2.contains("another replica received"),
        "{r2}"
    );

    // The promote without the catch-up is refused while the threads run, then loses the
    // backlog once they are stopped.
    let mut lossy = f.clone();
    let err = run(&mut lossy, "db-replica-1", vec![sql::reset_replica_all()]).unwrap_err();
    assert!(err.contains("ERROR 1198"), "{err}");
    run(&mut lossy, "db-replica-1", promote_statements()).unwrap();
    assert!(seq(&facts(&lossy, "db-replica-1").gtid_executed) < received);

    // The catch-up applies every transaction received before the reset.
    let catch_up = vec![
        sql::start_sql_thread(),
        sql::wait_for_position(Flavour::MariaDb, &side.gtid_received, 300),
    ];
    run(&mut f, "db-replica-1", catch_up).unwrap();
    let applied = facts(&f, "db-replica-1");
    assert_eq!(seq(&applied.gtid_executed), received);
    assert!(applied.replica.unwrap().relay_log_applied);
    run(&mut f, "db-replica-1", promote_statements()).unwrap();
    let new = facts(&f, "db-replica-1");
    assert!(!new.read_only && new.replica.is_none());
    assert_eq!(
        seq(&new.gtid_executed),
        received + 1,
        "the heartbeat write, after all"
    );
    assert_eq!(
        new.heartbeat.unwrap().1,
        new.server_id,
        "proved by its own beat"
    );
}

#[test]
fn a_wait_the_sql_thread_cannot_finish_answers_minus_one() {
    let mut f = trapped(FaultKind::SqlThreadError, "db-replica-1", 60);
    let r1 = facts(&f, "db-replica-1");
    let side = r1.replica.clone().unwrap();
    assert!(side.last_sql_error.contains("Duplicate entry"), "{side:?}");
    let ranked = rank_replicas(&f.snapshot(), 10.0);
    let why = ranked
        .iter()
        .find(|c| c.name == "db-replica-1")
        .and_then(|c| c.rejection.clone())
        .unwrap();
    assert!(
        why.starts_with("SQL thread stopped: Error 'Duplicate"),
        "{why}"
    );
    let wait = vec![
        sql::start_sql_thread(),
        sql::wait_for_position(Flavour::MariaDb, &side.gtid_received, 300),
    ];
    let err = run(&mut f, "db-replica-1", wait).unwrap_err();
    assert!(err.ends_with("answered -1, not 0"), "{err}");
    // The SSM path's promote command waits for the same relay log, and fails the same way.
    let id = by_name(&f, "db-replica-1").id;
    let err = refused(
        &mut f,
        ProviderCall::PromoteReplica {
            instance_id: id.clone(),
        },
    );
    assert!(err.contains("SQL thread stopped on an error"), "{err}");
}

#[test]
fn an_errant_transaction_rules_its_replica_out() {
    let f = trapped(FaultKind::ErrantTransaction, "db-replica-2", 30);
    let r2 = facts(&f, "db-replica-2");
    assert_eq!(r2.errant, format!("0-{}-{}", r2.server_id, seq(&r2.errant)));
    assert!(r2.gtid_binlog_state.contains(&r2.errant), "{r2:?}");
    let ranked = rank_replicas(&f.snapshot(), 10.0);
    assert_eq!(ranked[0].name, "db-replica-1", "{ranked:#?}");
    let why = ranked[1].rejection.as_deref().unwrap();
    assert!(why.starts_with("errant transactions 0-3-"), "{why}");
    // The same write on the replica holding the most: nothing is promotable, as each choice
    // either carries the errant transaction or loses what the other received.
    let f = trapped(FaultKind::ErrantTransaction, "db-replica-1", 30);
    let ranked = rank_replicas(&f.snapshot(), 10.0);
    assert!(ranked.iter().all(|c| !c.promotable()), "{ranked:#?}");
}

#[test]
fn a_master_that_comes_back_writes_until_it_is_fenced() {
    let mut f = fleet();
    f.inject(IncidentKind::MasterDown, None).unwrap();
    wait(&mut f, 30);
    assert!(!facts(&f, "db-master").answers());
    f.spring(FaultKind::MasterComesBack, None).unwrap();
    wait(&mut f, 10);
    let back = facts(&f, "db-master");
    assert!(
        back.answers() && !back.read_only,
        "back, writable: {back:?}"
    );
    let before = seq(&back.gtid_executed);
    run(&mut f, "db-master", sql::fence(Flavour::MariaDb)).unwrap();
    wait(&mut f, 30);
    let fenced = facts(&f, "db-master");
    assert!(fenced.read_only);
    assert!(
        seq(&fenced.gtid_executed) <= before + 2 * 100,
        "no more writes once fenced"
    );
    let err = run(&mut f, "db-master", promote_statements()[3..].to_vec()).unwrap_err();
    assert!(
        err.contains("ERROR 1290"),
        "a fenced server refuses writes: {err}"
    );
}

#[test]
fn repointing_follows_the_new_master_and_refuses_one_that_lacks_data() {
    let mut f = fleet();
    f.inject(IncidentKind::MasterDown, None).unwrap();
    wait(&mut f, 30);
    // Promote the replica that lacks transactions, against the ranking.
    run(&mut f, "db-replica-2", promote_statements()).unwrap();
    let new = by_name(&f, "db-replica-2");
    let repoint = vec![
        sql::stop_replica(),
        sql::change_source(Flavour::MariaDb, &new.private_ip, 3306, None, None),
        sql::start_replica(),
    ];
    run(&mut f, "db-replica-1", repoint).unwrap();
    wait(&mut f, 10);
    let r1 = facts(&f, "db-replica-1");
    let side = r1.replica.unwrap();
    assert_eq!(side.io, ThreadState::Stopped);
    assert!(side.last_io_error.contains("error 1236"), "{side:?}");
    // A replica that holds no more than the new master follows it.
    let mut g = trapped(FaultKind::ErrantTransaction, "db-replica-2", 30);
    run(&mut g, "db-replica-1", promote_statements()).unwrap();
    let new = by_name(&g, "db-replica-1");
    let repoint = vec![
        sql::stop_replica(),
        sql::change_source(Flavour::MariaDb, &new.private_ip, 3306, None, None),
        sql::start_replica(),
    ];
    run(&mut g, "db-replica-2", repoint).unwrap();
    wait(&mut g, 10);
    let r2 = facts(&g, "db-replica-2");
    let side = r2.replica.unwrap();
    assert_eq!(
        (side.io, side.sql),
        (ThreadState::Running, ThreadState::Running)
    );
    assert_eq!(r2.heartbeat.unwrap().1, facts(&g, "db-replica-1").server_id);
}

#[test]
fn mysql_spellings_fail_as_they_would_on_mariadb() {
    let mut f = fleet();
    for (statement, error) in [
        (sql::fence(Flavour::MySql), "ERROR 1064"),
        (sql::set_read_only(Flavour::MySql, false), "ERROR 1193"),
        (
            vec![sql::wait_for_position(Flavour::MySql, "0-1-1", 1)],
            "ERROR 1305",
        ),
        (
            vec![sql::change_source(
                Flavour::MySql,
                "10.0.0.110",
                3306,
                None,
                None,
            )],
            "ERROR 1064",
        ),
    ] {
        let err = run(&mut f, "db-replica-1", statement).unwrap_err();
        assert!(err.contains(error), "{err}");
    }
    let web = by_name(&f, "web-1").id;
    let err = refused(
        &mut f,
        ProviderCall::Sql {
            instance_id: web,
            statements: vec!["STOP REPLICA".into()],
            kill_clients: false,
        },
    );
    assert!(err.contains("runs no database"), "{err}");
}
