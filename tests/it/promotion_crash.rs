//! db-promote on real MariaDB servers, the console killed after fencing, after the catch-up and
//! after the reset (its last call made, the answer never journaled), or before the reset was
//! sent: resumed from its journal, it reaches the same end as an uninterrupted run, and no
//! statement runs that must not run twice.

use std::sync::Arc;
use std::time::Duration;

use dake::config::Config;
use dake::headless::run::{Headless, select};
use dake::provider::Provider;
use dake::runbook::engine::Run;
use dake::runbook::journal::{self, Journal};
use dake::runbook::model::load_all;
use dake::runbook::record::Record;
use dake::runbook::setup::context;

use crate::aws_fleet::{Emulated, FLEET, in_process_provider_with};
use crate::crash::{Crash, Crashing, resume};
use crate::emulator::moto;
use crate::mariadb::{Cluster, private_option_file};
use crate::promotion::{config_with, db_promote_without_a_new_replica};

/// No run may take longer than this.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// The dead-master scenario of `promotion`: db-replica-1 holds a relay-log backlog, db-replica-2
/// lacks it, the master is killed.
fn dead_master_with_a_backlog(cluster: &Cluster) {
    let (m, r1, r2) = (&cluster.master, &cluster.replicas[0], &cluster.replicas[1]);
    let t0 = chrono::Utc::now().timestamp() - 120;
    cluster.history(t0, 2);
    cluster.exec(r1, "STOP SLAVE SQL_THREAD");
    cluster.exec(r2, "STOP SLAVE IO_THREAD");
    cluster.exec(m, "INSERT INTO shop.orders (note) VALUES ('3'), ('4')");
    cluster.beat(m, t0 + 10);
    cluster.wait_received(r1);
    m.kill();
}

/// The run crashed at `crash`, then resumed from its journal: its outcome and message, and the
/// call it crashed at.
fn crash_and_resume(
    e: &Emulated,
    cluster: &Cluster,
    crash: (usize, Crash),
) -> (String, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let option_file = private_option_file(dir.path());
    let text = config_with(e, cluster, Some(&option_file), &[]);
    let config = Config::from_user_toml(&text, "test.toml").unwrap();
    let runbooks = dir.path().join("runbooks");
    std::fs::create_dir_all(&runbooks).unwrap();
    std::fs::write(
        runbooks.join("db-promote.toml"),
        db_promote_without_a_new_replica(),
    )
    .unwrap();
    let playbooks = load_all(Some(&runbooks)).unwrap();
    let aws: Arc<dyn Provider> = Arc::new(in_process_provider_with(&text, &moto().endpoint));

    e.rt.block_on(async {
        let snap = aws.snapshot().await.unwrap();
        let (pb, inst) = select(&playbooks, &snap, "db-promote", "db-master").unwrap();
        let run_id = "crash-sql".to_string();
        let ctx = context(&config, &run_id, (&inst.id, &inst.name), false, &[]);
        let (mut run, fx) = Run::start(ctx, pb.clone(), "test@host".into(), aws.now());
        let (crashing, crashed) = Crashing::new(aws.clone(), crash.0, crash.1);
        let journal = Journal::create(dir.path(), &run_id).unwrap();
        let path = journal.path().to_path_buf();
        let mut h = Headless::new(Arc::new(crashing), journal, &run_id, true, None);
        let mut first = tokio::spawn(async move {
            h.carry(&mut run, fx).await?;
            h.drive(&mut run).await
        });
        tokio::select! {
            _ = crashed.notified() => first.abort(),
            done = &mut first => panic!("the run ended before its crash point: {done:?}"),
        }
        let records = journal::read(&path).unwrap();
        let crashed_at = records
            .iter()
            .rev()
            .find_map(|r| match r {
                Record::Intent { call, .. } => Some(call.to_string()),
                _ => None,
            })
            .unwrap_or_default();
        let (outcome, message) = resume(&config, pb, dir.path(), &run_id, aws, RUN_LIMIT).await;
        (outcome.to_string(), message, crashed_at)
    })
}

#[test]
fn a_promotion_killed_after_fencing_catch_up_or_reset_resumes_to_the_same_end() {
    // Calls of the dead-master run: 0 the tier's lease, 1 StopInstances and 2 CreateTags (the
    // fence), 3 the catch-up's SQL, 4 the promote's SQL (stop, reset, writable, heartbeat).
    for (crash, at) in [
        ((0, Crash::AfterCall), "lease"),
        ((1, Crash::AfterCall), "StopInstances"),
        ((3, Crash::AfterCall), "MASTER_GTID_WAIT"),
        ((4, Crash::BeforeCall), "RESET REPLICA ALL"),
        ((4, Crash::AfterCall), "RESET REPLICA ALL"),
    ] {
        let e = Emulated::seeded();
        let cluster = Cluster::start(2);
        dead_master_with_a_backlog(&cluster);
        let (outcome, message, crashed_at) = crash_and_resume(&e, &cluster, crash);
        assert!(crashed_at.contains(at), "{crash:?} crashed at {crashed_at}");
        assert_eq!(outcome, "finished", "{crash:?}: {message}");
        let (r1, r2) = (&cluster.replicas[0], &cluster.replicas[1]);
        let count = |s| cluster.one(s, "SELECT COUNT(*) FROM shop.orders");
        assert_eq!(count(r1).as_deref(), Some("4"), "{crash:?}: no row lost");
        assert_eq!(cluster.one(r1, "SELECT @@read_only").as_deref(), Some("0"));
        assert_eq!(cluster.source_port(r2), Some(r1.port), "{crash:?}");
        cluster.exec(r1, "INSERT INTO shop.orders (note) VALUES ('after')");
        cluster.wait_applied_from(r1, r2);
        assert_eq!(count(r2).as_deref(), Some("5"), "{crash:?}");
        let fleet = e.rt.block_on(e.aws.fleet(FLEET));
        let (state, tags) = &fleet[&e.seeded.ids["db-master"]];
        assert_eq!(
            (state.as_str(), tags["dake:role"].as_str()),
            ("stopped", "retired")
        );
    }
}
