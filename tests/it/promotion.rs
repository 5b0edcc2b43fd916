//! db-promote end to end with real servers: the fleet's instances on the AWS emulators, each
//! database host a real MariaDB server reached through `[database.hosts]`, and dake run
//! headless as an operator would. Checked on the servers themselves: no row lost, the others
//! replicate from the new master, the endpoint points at it, and never two writable masters.

use serde_json::Value;

use crate::aws_fleet::{Emulated, FLEET, dake_aws};
use crate::mariadb::{Cluster, DAKE_PASSWORD, Server};
use crate::sandbox::{Sandbox, stdout_json};

/// db-promote as a user's playbook without its last two steps: the replica it would launch is an
/// emulator instance with no server to replicate.
fn promote_without_a_new_replica(sandbox: &Sandbox) {
    let builtin = include_str!("../../assets/runbooks/db-promote.toml");
    let cut = builtin
        .find("[[step]]\nname = \"launch-replica\"")
        .expect("db-promote has a launch-replica step");
    sandbox.write("config/dake/runbooks/db-promote.toml", &builtin[..cut]);
}

/// The emulated fleet read over MySQL: db-master and its replicas are `cluster`'s servers.
fn config(e: &Emulated, cluster: &Cluster) -> String {
    let ids = &e.seeded.ids;
    let mut hosts = format!(
        "\"{}\" = \"{}\"\n",
        ids["db-master"],
        cluster.master.address()
    );
    for (n, r) in cluster.replicas.iter().enumerate() {
        hosts += &format!(
            "\"{}\" = \"{}\"\n",
            ids[&format!("db-replica-{}", n + 1)],
            r.address()
        );
    }
    e.seeded.config()
        + "refresh_secs = 1\nmetrics_refresh_secs = 2\n"
        + "attempt_timeout_secs = 300\ncall_timeout_secs = 600\n"
        + "[database]\nsource = \"mysql\"\nuser = \"dake\"\n[database.hosts]\n"
        + &hosts
}

fn run_db_promote(sandbox: &Sandbox, config: &str) -> Value {
    let out = dake_aws(sandbox, config)
        .env("DAKE_MYSQL_PASSWORD", DAKE_PASSWORD)
        .args([
            "run",
            "db-promote",
            "--target",
            "db-master",
            "--yes",
            "--json",
        ])
        .output()
        .unwrap();
    let r = stdout_json(&out);
    assert_eq!(out.status.code(), Some(0), "{r:#}");
    let statuses: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["done"; 8], "{r:#}");
    r
}

fn note<'a>(r: &'a Value, step: &str) -> &'a str {
    r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == step)
        .and_then(|s| s["note"].as_str())
        .unwrap_or("")
}

fn count(cluster: &Cluster, server: &Server) -> String {
    cluster
        .one(server, "SELECT COUNT(*) FROM shop.orders")
        .unwrap_or_default()
}

/// The new master takes a write and `other` receives it.
fn replicates_to(cluster: &Cluster, new: &Server, other: &Server) {
    cluster.exec(
        new,
        "INSERT INTO shop.orders (note) VALUES ('after the failover')",
    );
    cluster.wait_applied_from(new, other);
    assert_eq!(count(cluster, other), count(cluster, new));
}

#[test]
fn a_dead_master_is_replaced_by_the_replica_holding_most_without_losing_a_row() {
    let e = Emulated::seeded();
    let cluster = Cluster::start(2);
    let (m, r1, r2) = (&cluster.master, &cluster.replicas[0], &cluster.replicas[1]);
    let t0 = chrono::Utc::now().timestamp() - 120;
    cluster.beat(m, t0);
    cluster.exec(
        m,
        "INSERT INTO shop.orders (note) VALUES ('1'), ('2'), ('3')",
    );
    cluster.wait_replicated();
    // db-replica-1 receives the rest but applies none of it (a backlog in its relay log);
    // db-replica-2 receives none of it.
    cluster.exec(r1, "STOP SLAVE SQL_THREAD");
    cluster.exec(r2, "STOP SLAVE IO_THREAD");
    for n in 4..=6 {
        cluster.exec(m, &format!("INSERT INTO shop.orders (note) VALUES ('{n}')"));
    }
    cluster.beat(m, t0 + 10);
    cluster.wait_received(r1);
    assert_eq!(count(&cluster, r1), "3", "the backlog is not applied yet");
    m.kill();

    let sandbox = Sandbox::new();
    promote_without_a_new_replica(&sandbox);
    let r = run_db_promote(&sandbox, &config(&e, &cluster));
    assert!(note(&r, "rank").starts_with("chose db-replica-1"), "{r:#}");
    assert!(
        note(&r, "fence-old-master").contains("stopped through EC2"),
        "{r:#}"
    );
    assert!(note(&r, "catch-up").contains("backlog"), "{r:#}");

    // Every row written before the kill is on the new master, which takes writes.
    assert_eq!(count(&cluster, r1), "6");
    assert_eq!(cluster.one(r1, "SELECT @@read_only").as_deref(), Some("0"));
    // The other replica follows it, and gets what it lacked from it.
    assert_eq!(cluster.source_port(r2), Some(r1.port));
    replicates_to(&cluster, r1, r2);
    // The endpoint names it; the old master is stopped (it cannot come back writable) and
    // retired, so the fleet shows one master.
    let ids = &e.seeded.ids;
    let fleet = e.rt.block_on(e.aws.fleet(FLEET));
    let (state, tags) = &fleet[&ids["db-master"]];
    assert_eq!(state, "stopped");
    assert_eq!(tags["dake:role"], "retired");
    assert_eq!(fleet[&ids["db-replica-1"]].1["dake:role"], "db-master");
    let record = e.rt.block_on(e.aws.record(&e.seeded.zone_id));
    let dns =
        e.rt.block_on(
            e.aws
                .ec2
                .describe_instances()
                .instance_ids(&ids["db-replica-1"])
                .send(),
        )
        .unwrap();
    let dns = dns.reservations()[0].instances()[0]
        .private_dns_name()
        .unwrap()
        .to_string();
    assert_eq!(record.trim_end_matches('.'), dns);
}

#[test]
fn a_master_that_still_answers_is_fenced_read_only_before_the_promotion() {
    let e = Emulated::seeded();
    let cluster = Cluster::start(2);
    let (m, r1, r2) = (&cluster.master, &cluster.replicas[0], &cluster.replicas[1]);
    // Its heartbeat writer stalled two minutes ago: it looks exactly like a dead master.
    cluster.beat(m, chrono::Utc::now().timestamp() - 120);
    cluster.exec(m, "INSERT INTO shop.orders (note) VALUES ('1')");
    cluster.wait_replicated();
    let client = cluster.connect(m);

    let sandbox = Sandbox::new();
    promote_without_a_new_replica(&sandbox);
    let r = run_db_promote(&sandbox, &config(&e, &cluster));
    assert!(
        note(&r, "fence-old-master").contains("made read-only, its client connections killed"),
        "{r:#}"
    );
    // Never two writable masters: the old one is read-only and its clients were cut off.
    assert_eq!(cluster.one(m, "SELECT @@read_only").as_deref(), Some("1"));
    assert_eq!(cluster.one(r1, "SELECT @@read_only").as_deref(), Some("0"));
    assert!(
        cluster.is_closed(client),
        "the client connection was killed"
    );
    assert_eq!(cluster.source_port(r2), Some(r1.port));
    replicates_to(&cluster, r1, r2);
    // Then, with the application moved, its instance is stopped too: a restart of MariaDB
    // would bring it back writable.
    let fleet = e.rt.block_on(e.aws.fleet(FLEET));
    let (state, tags) = &fleet[&e.seeded.ids["db-master"]];
    assert_eq!(
        (state.as_str(), tags["dake:role"].as_str()),
        ("stopped", "retired")
    );
    assert!(
        note(&r, "retire-old-master").contains("stopped through EC2"),
        "{r:#}"
    );
}

#[test]
fn the_default_ssm_promote_command_applies_the_relay_log_first() {
    let cluster = Cluster::start(1);
    let (m, r1) = (&cluster.master, &cluster.replicas[0]);
    cluster.exec(m, "INSERT INTO shop.orders (note) VALUES ('1')");
    cluster.wait_replicated();
    cluster.exec(r1, "STOP SLAVE SQL_THREAD");
    cluster.exec(m, "INSERT INTO shop.orders (note) VALUES ('2'), ('3')");
    cluster.wait_received(r1);
    m.kill();
    // The command as SSM would run it on the host, its `mysql` that host's server.
    let bin = tempfile::tempdir().unwrap();
    let mysql = bin.path().join("mysql");
    std::fs::write(
        &mysql,
        format!(
            "#!/bin/sh\nexec mariadb -h127.0.0.1 -P{} -uroot \"$@\"\n",
            r1.port
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&mysql, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let command = dake::config::Config::builtin().aws.promote_command;
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &command])
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        count(&cluster, r1),
        "3",
        "the backlog was applied before the reset"
    );
    assert_eq!(cluster.one(r1, "SELECT @@read_only").as_deref(), Some("0"));
    assert_eq!(cluster.source_port(r1), None, "no replication left");
}
