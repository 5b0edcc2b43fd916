//! db-ebs-move with real servers: the master's server killed, its data directory (the EBS
//! volume) started again by another server (the instance it was moved to), which must prove
//! it came back whole (crash recovery done, writable by a heartbeat write) before the endpoint
//! switches and the replicas follow it.

use std::sync::Arc;
use std::time::Duration;

use dake::config::Config;
use dake::headless::run::{Headless, select};
use dake::provider::Provider;
use dake::runbook::engine::Run;
use dake::runbook::journal::Journal;
use dake::runbook::model::load_all;
use dake::runbook::setup::{context, run_salt};

use crate::aws_fleet::{Emulated, FLEET, in_process_provider_with};
use crate::emulator::moto;
use crate::mariadb::{Cluster, private_option_file};
use crate::promotion::config_with;

const RUN_LIMIT: Duration = Duration::from_secs(300);
/// The run's id, so the instance it launches has a name the config can map to a server.
const RUN_ID: &str = "20261130T000000Z-db-ebs-move-ab12";

#[test]
fn a_moved_master_proves_itself_writable_before_the_endpoint_switches() {
    let e = Emulated::seeded();
    let cluster = Cluster::start(2);
    let (m, r1, r2) = (&cluster.master, &cluster.replicas[0], &cluster.replicas[1]);
    let t0 = chrono::Utc::now().timestamp() - 120;
    cluster.history(t0, 3);
    m.kill();
    // Its volume, attached elsewhere: the server there recovers from the crash as it starts.
    let moved = m.moved();

    let dir = tempfile::tempdir().unwrap();
    let ids = &e.seeded.ids;
    let new_name = format!("db-master-{}", run_salt(RUN_ID));
    let option_file = private_option_file(dir.path());
    let text = config_with(
        &e,
        &cluster,
        Some(&option_file),
        &[(new_name.as_str(), moved.address())],
    );
    let config = Config::from_user_toml(&text, "test.toml").unwrap();
    // The reboot cannot bring a killed server back here: three seconds, not three minutes.
    let runbooks = dir.path().join("runbooks");
    std::fs::create_dir_all(&runbooks).unwrap();
    let builtin = include_str!("../../assets/runbooks/db-ebs-move.toml");
    let try_start = "wait = \"master-answering\"\ntimeout_secs = 180\n";
    let short = builtin.replacen(
        try_start,
        "wait = \"master-answering\"\ntimeout_secs = 3\n",
        1,
    );
    assert_ne!(short, builtin, "the try-start step's timeout moved");
    std::fs::write(runbooks.join("db-ebs-move.toml"), short).unwrap();
    let playbooks = load_all(Some(&runbooks)).unwrap();
    let aws: Arc<dyn Provider> = Arc::new(in_process_provider_with(&text, &moto().endpoint));

    let run = e.rt.block_on(async {
        let snap = aws.snapshot().await.unwrap();
        let (pb, inst) = select(&playbooks, &snap, "db-ebs-move", "db-master").unwrap();
        let ctx = context(&config, RUN_ID, (&inst.id, &inst.name), false, &[]);
        let (mut run, fx) = Run::start(ctx, pb.clone(), "test@host".into(), aws.now());
        let journal = Journal::create(dir.path(), RUN_ID).unwrap();
        let mut h = Headless::new(aws.clone(), journal, RUN_ID, true, None);
        let done = async {
            h.carry(&mut run, fx).await?;
            h.drive(&mut run).await
        };
        let (outcome, message) = tokio::time::timeout(RUN_LIMIT, done)
            .await
            .expect("the run finished in time")
            .unwrap();
        assert_eq!(outcome, "finished", "{message}");
        run
    });
    let start = run.playbook.step_index("start-db").unwrap();
    let made: Vec<String> = run.steps[start]
        .calls
        .iter()
        .map(|c| c.call.to_string())
        .collect();
    assert_eq!(made.len(), 2, "{made:#?}");
    assert!(
        made[1].starts_with("SQL")
            && made[1].contains("read_only = OFF; INSERT INTO dake.heartbeat"),
        "{made:#?}"
    );
    assert!(
        run.steps[start]
            .note
            .as_deref()
            .unwrap_or("")
            .contains("MySQL running"),
        "{:?}",
        run.steps[start].note
    );

    // Every row is there, it takes writes, and its own heartbeat is newer than the last the
    // dead master wrote.
    let count = |s| cluster.one(s, "SELECT COUNT(*) FROM shop.orders");
    assert_eq!(count(&moved).as_deref(), Some("3"));
    assert_eq!(
        cluster.one(&moved, "SELECT @@read_only").as_deref(),
        Some("0")
    );
    let beat = cluster
        .one(
            &moved,
            "SELECT UNIX_TIMESTAMP(ts) FROM dake.heartbeat WHERE server_id = 1",
        )
        .and_then(|b| b.parse::<f64>().ok())
        .unwrap();
    assert!(
        beat > (t0 + 60) as f64,
        "the start step wrote a heartbeat: {beat} vs {t0}"
    );
    // The replicas follow it, and get what it takes.
    for r in [r1, r2] {
        assert_eq!(cluster.source_port(r), Some(moved.port));
    }
    cluster.exec(
        &moved,
        "INSERT INTO shop.orders (note) VALUES ('after the move')",
    );
    cluster.wait_applied_from(&moved, r1);
    assert_eq!(count(r1).as_deref(), Some("4"));
    let fleet = e.rt.block_on(e.aws.fleet(FLEET));
    let old = &fleet[&ids["db-master"]].0;
    assert!(old == "terminated" || old == "shutting-down", "{old}");
}

/// The default start command, as SSM would run it on the moved master's host (`systemctl` a
/// no-op there, `journalctl` that host's MariaDB log): what it prints is what the server
/// logged of its crash recovery, which the timeline then shows.
#[test]
fn the_default_start_command_prints_what_the_server_logged_of_its_recovery() {
    let cluster = Cluster::start(1);
    let m = &cluster.master;
    cluster.history(chrono::Utc::now().timestamp() - 60, 3);
    m.kill();
    let moved = m.moved();
    assert_eq!(
        cluster
            .one(&moved, "SELECT COUNT(*) FROM shop.orders")
            .as_deref(),
        Some("3")
    );
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mariadb.log");
    std::fs::write(&log, moved.error_log()).unwrap();
    let journalctl = format!("#!/bin/sh\ncat '{}'\n", log.display());
    let host = |systemctl: &str| {
        let shims = [
            ("systemctl", systemctl.to_string()),
            ("journalctl", journalctl.clone()),
        ];
        crate::mariadb::on_host(&Config::builtin().aws.start_db_command, &shims)
    };
    let out = host("#!/bin/sh\nexit 0\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = dake::domain::call::output_tail(&String::from_utf8_lossy(&out.stdout));
    assert!(
        said.to_ascii_lowercase().contains("crash recovery"),
        "the moved server's log:\n{}\nprinted:\n{said}",
        moved.error_log()
    );
    // A start that fails fails the command, whatever the log says.
    let out = host("#!/bin/sh\nexit 1\n");
    assert!(!out.status.success());
}
