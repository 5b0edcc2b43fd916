//! The `mysql` database source against real MariaDB replication: what each server says, lag
//! from the heartbeat it holds, and the replicas ranked by their data. Heartbeats are written
//! with chosen timestamps, so every figure is exact and no test waits on the clock.

use dake::config::{Config, DbSource};
use dake::domain::{Flavour, FleetSnapshot, Instance, LagSource, ThreadState};
use dake::provider::mysql::DbReader;
use dake::provider::sim::SimFleet;
use dake::replicas::{Candidate, rank_replicas};

use crate::fixtures::epoch;
use crate::mariadb::{Cluster, DAKE_PASSWORD, DAKE_USER, Server, private_option_file};
use crate::sandbox::Sandbox;

/// The simulated fleet's database hosts, each reached at one server of `cluster` through
/// `[database.hosts]` (as a tunnel would be), read as dake's account with its password in a
/// private option file.
struct Reading {
    config: Config,
    snap: FleetSnapshot,
    _secrets: tempfile::TempDir,
}

impl Reading {
    fn new(cluster: &Cluster) -> Reading {
        let mut config = Config::builtin();
        config.sim.replicas = cluster.replicas.len();
        let snap = SimFleet::new(&config, epoch()).snapshot();
        let secrets = tempfile::tempdir().unwrap();
        let option_file = private_option_file(secrets.path());
        let db = &mut config.database;
        db.source = DbSource::Mysql;
        db.user = DAKE_USER.into();
        db.password_env = String::new();
        db.option_file = option_file.display().to_string();
        db.hosts
            .insert("db-master".into(), cluster.master.address());
        for (n, r) in cluster.replicas.iter().enumerate() {
            db.hosts
                .insert(format!("db-replica-{}", n + 1), r.address());
        }
        Reading {
            config,
            snap,
            _secrets: secrets,
        }
    }

    /// The fleet with every database host's status as its server gives it.
    fn read(&self) -> FleetSnapshot {
        let reader = DbReader::new(&self.config.database).unwrap();
        let mut snap = self.snap.clone();
        crate::mariadb::runtime().block_on(reader.apply(&mut snap, 10));
        snap
    }
}

fn host<'a>(snap: &'a FleetSnapshot, name: &str) -> &'a Instance {
    snap.instances.iter().find(|i| i.name == name).unwrap()
}

fn behind(snap: &FleetSnapshot, name: &str) -> f32 {
    rank_replicas(snap, 10.0)
        .into_iter()
        .find(|c| c.name == name)
        .unwrap()
        .behind_master_secs
}

fn candidate(snap: &FleetSnapshot, name: &str) -> Candidate {
    rank_replicas(snap, 10.0)
        .into_iter()
        .find(|c| c.name == name)
        .unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn replica(cluster: &Cluster, n: usize) -> &Server {
    &cluster.replicas[n - 1]
}

#[test]
fn every_server_is_read_with_its_flavour_threads_and_heartbeat() {
    let cluster = Cluster::start(3);
    cluster.beat(&cluster.master, now() - 5);
    cluster.wait_replicated();
    let reading = Reading::new(&cluster);
    let snap = reading.read();

    let master = host(&snap, "db-master");
    let db = master.db.as_ref().unwrap();
    let facts = db.server.as_ref().unwrap();
    assert!(facts.answers(), "{facts:#?}");
    assert_eq!(facts.flavour, Some(Flavour::MariaDb));
    assert!(facts.version.contains("MariaDB"), "{}", facts.version);
    assert_eq!(facts.server_id, 1);
    assert!(facts.log_bin && !facts.read_only && facts.replica.is_none());
    assert!(db.running && !db.read_only && db.source_id.is_none());
    assert_eq!(facts.heartbeat.map(|(_, writer)| writer), Some(1));

    for n in 1..=3 {
        let name = format!("db-replica-{n}");
        let r = host(&snap, &name);
        let db = r.db.as_ref().unwrap();
        let facts = db.server.as_ref().unwrap();
        let side = facts.replica.as_ref().unwrap();
        assert_eq!(facts.server_id, replica(&cluster, n).server_id, "{name}");
        assert!(facts.read_only && facts.log_replica_updates, "{name}");
        assert_eq!(
            (side.io, side.sql),
            (ThreadState::Running, ThreadState::Running)
        );
        assert!(side.relay_log_applied, "{name}: {side:#?}");
        assert!(facts.errant.is_empty(), "{name}: {}", facts.errant);
        assert_eq!(db.source_id.as_deref(), Some(master.id.as_str()), "{name}");
        assert_eq!(db.lag_source, LagSource::Heartbeat);
        assert_eq!(behind(&snap, &name), 0.0, "{name} holds the master's beat");
    }
    let ranked = rank_replicas(&snap, 10.0);
    assert!(ranked.iter().all(Candidate::promotable), "{ranked:#?}");
    assert!(ranked[0].best && ranked[0].transactions.is_some());
}

#[test]
fn a_stopped_sql_thread_falls_behind_and_a_stopped_io_thread_is_reported() {
    let cluster = Cluster::start(3);
    let t0 = now() - 100;
    cluster.beat(&cluster.master, t0);
    cluster.wait_replicated();
    cluster.exec(replica(&cluster, 1), "STOP SLAVE SQL_THREAD");
    cluster.exec(replica(&cluster, 2), "STOP SLAVE IO_THREAD");
    cluster.beat(&cluster.master, t0 + 30);
    cluster.wait_replicated_on(&[replica(&cluster, 3)]);
    let snap = Reading::new(&cluster).read();

    let side = |name: &str| {
        host(&snap, name)
            .db
            .as_ref()
            .unwrap()
            .server
            .as_ref()
            .unwrap()
            .replica
            .clone()
            .unwrap()
    };
    let r1 = side("db-replica-1");
    assert_eq!(
        (r1.io, r1.sql),
        (ThreadState::Running, ThreadState::Stopped)
    );
    assert_eq!(behind(&snap, "db-replica-1"), 30.0, "its beat stands still");
    let r2 = side("db-replica-2");
    assert_eq!(
        (r2.io, r2.sql),
        (ThreadState::Stopped, ThreadState::Running)
    );
    assert_eq!(behind(&snap, "db-replica-2"), 30.0);
    assert_eq!(behind(&snap, "db-replica-3"), 0.0);
    // Stopped by hand, it holds all that was received: its catch-up would apply it.
    let r1 = candidate(&snap, "db-replica-1");
    assert_eq!(r1.rejection, None, "{r1:#?}");
    assert!(!r1.best, "as much data as db-replica-3, which applied it");
    let why = candidate(&snap, "db-replica-2").rejection.unwrap();
    assert!(
        why.starts_with("lacks 1 transaction another replica received"),
        "{why}"
    );
    assert!(candidate(&snap, "db-replica-3").best);
}

#[test]
fn a_delayed_replica_shows_its_delay_and_is_not_promoted() {
    let cluster = Cluster::start(2);
    let t0 = now() - 100;
    cluster.beat(&cluster.master, t0);
    cluster.wait_replicated();
    cluster.exec(
        replica(&cluster, 2),
        "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 3600; START SLAVE",
    );
    cluster.beat(&cluster.master, t0 + 20);
    cluster.wait_replicated_on(&[replica(&cluster, 1)]);
    let snap = Reading::new(&cluster).read();
    let facts = host(&snap, "db-replica-2")
        .db
        .clone()
        .unwrap()
        .server
        .unwrap();
    assert_eq!(facts.replica.unwrap().sql_delay_secs, 3600);
    assert_eq!(behind(&snap, "db-replica-2"), 20.0);
    assert_eq!(
        candidate(&snap, "db-replica-2").rejection.as_deref(),
        Some("delayed replica (MASTER_DELAY 3600s)")
    );
}

#[test]
fn an_errant_transaction_rejects_its_replica() {
    let cluster = Cluster::start(2);
    cluster.beat(&cluster.master, now() - 5);
    cluster.wait_replicated();
    // A local write on a replica (root passes read_only): a GTID of its own server id.
    cluster.exec(
        replica(&cluster, 2),
        "INSERT INTO shop.orders (note) VALUES ('local fix')",
    );
    let snap = Reading::new(&cluster).read();
    let errant = host(&snap, "db-replica-2")
        .db
        .clone()
        .unwrap()
        .server
        .unwrap()
        .errant;
    assert!(errant.starts_with("0-3-"), "{errant}");
    let why = candidate(&snap, "db-replica-2").rejection.unwrap();
    assert!(
        why.starts_with(&format!("errant transactions {errant}")),
        "{why}"
    );
    assert!(candidate(&snap, "db-replica-1").best);
}

#[test]
fn the_most_advanced_replica_wins_over_an_equal_heartbeat() {
    let cluster = Cluster::start(3);
    cluster.beat(&cluster.master, now() - 5);
    cluster.wait_replicated();
    cluster.exec(replica(&cluster, 1), "STOP SLAVE IO_THREAD");
    cluster.exec(replica(&cluster, 3), "STOP SLAVE IO_THREAD");
    cluster.exec(
        &cluster.master,
        "INSERT INTO shop.orders (note) VALUES ('a'), ('b'); INSERT INTO shop.orders (note) VALUES ('c')",
    );
    cluster.wait_replicated_on(&[replica(&cluster, 2)]);
    let snap = Reading::new(&cluster).read();
    let ranked = rank_replicas(&snap, 10.0);
    assert!(
        ranked.iter().all(|c| c.behind_master_secs == 0.0),
        "{ranked:#?}"
    );
    assert_eq!(ranked[0].name, "db-replica-2", "{ranked:#?}");
    assert_eq!(
        ranked[0].transactions.unwrap(),
        ranked[1].transactions.unwrap() + 2,
        "two transactions more"
    );
}

#[test]
fn a_dead_master_is_unreachable_and_each_replica_keeps_its_distance() {
    let cluster = Cluster::start(3);
    let t0 = now() - 100;
    cluster.beat(&cluster.master, t0);
    cluster.wait_replicated();
    cluster.exec(replica(&cluster, 2), "STOP SLAVE IO_THREAD");
    cluster.beat(&cluster.master, t0 + 20);
    cluster.wait_replicated_on(&[replica(&cluster, 1), replica(&cluster, 3)]);
    cluster.master.kill();
    let snap = Reading::new(&cluster).read();

    let master = host(&snap, "db-master").db.clone().unwrap();
    let facts = master.server.unwrap();
    assert!(!facts.answers() && !master.running, "{facts:#?}");
    // Its last beat is at best the newest any replica holds: t0 + 20, as replica 1 holds it.
    let r1 = host(&snap, "db-replica-1").db.clone().unwrap();
    assert_eq!(master.heartbeat_age_secs, r1.heartbeat_age_secs);
    assert!(r1.server.unwrap().replica.unwrap().io != ThreadState::Running);
    assert_eq!(behind(&snap, "db-replica-1"), 0.0);
    assert_eq!(behind(&snap, "db-replica-2"), 20.0);
    assert_eq!(behind(&snap, "db-replica-3"), 0.0);
    let ranked = rank_replicas(&snap, 10.0);
    assert_eq!(ranked[0].name, "db-replica-1", "{ranked:#?}");
    assert!(ranked[0].best);
    let r2 = ranked.iter().find(|c| c.name == "db-replica-2").unwrap();
    assert!(
        r2.rejection
            .as_deref()
            .unwrap()
            .starts_with("lacks 1 transaction"),
        "{r2:#?}"
    );
}

#[test]
fn dake_heartbeat_writes_on_the_master_and_refuses_a_replica() {
    let cluster = Cluster::start(1);
    let sandbox = Sandbox::new();
    sandbox.write(
        "config/dake/config.toml",
        &format!("[database]\nuser = \"{DAKE_USER}\"\n"),
    );
    let heartbeat = |server: &Server, password: &str| {
        sandbox
            .dake()
            .env("DAKE_MYSQL_PASSWORD", password)
            .args(["heartbeat", "--host", &server.address()])
            .output()
            .unwrap()
    };
    let out = heartbeat(&cluster.master, DAKE_PASSWORD);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with("heartbeat 20")
            && text.contains(&format!(
                "written on {} (server_id 1)",
                cluster.master.address()
            )),
        "{text}"
    );
    cluster.wait_replicated();
    let replicated = cluster.one(replica(&cluster, 1), "SELECT server_id FROM dake.heartbeat");
    assert_eq!(replicated.as_deref(), Some("1"));

    // dake's account passes read_only here: refused before anything is written.
    cluster.exec(
        &cluster.master,
        "GRANT READ_ONLY ADMIN ON *.* TO 'dake'@'%'",
    );
    cluster.wait_replicated();
    let before = cluster.one(replica(&cluster, 1), "SELECT @@gtid_binlog_state");
    let out = heartbeat(replica(&cluster, 1), DAKE_PASSWORD);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("refused: read_only is on (server_id 2"),
        "{err}"
    );
    assert_eq!(
        cluster.one(replica(&cluster, 1), "SELECT @@gtid_binlog_state"),
        before
    );

    let out = heartbeat(&cluster.master, "not-the-password");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("Access denied for user 'dake'"), "{err}");
    assert!(!err.contains("not-the-password"), "{err}");
}

#[test]
fn tls_is_used_as_configured_and_an_unknown_certificate_refused_when_verified() {
    use dake::config::DbTls;
    use dake::provider::mysql::read;
    let certs = tempfile::tempdir().unwrap();
    let key =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert_pem, key_pem) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&cert_pem, key.cert.pem()).unwrap();
    std::fs::write(&key_pem, key.signing_key.serialize_pem()).unwrap();
    let server = Server::start_with(
        7,
        &[
            format!("--ssl-cert={}", cert_pem.display()),
            format!("--ssl-key={}", key_pem.display()),
        ],
    );
    // dake's account is made over a plain connection; then only TLS is let in.
    server.exec(&format!(
        "CREATE USER '{DAKE_USER}'@'%' IDENTIFIED BY '{DAKE_PASSWORD}'; \
         GRANT SLAVE MONITOR ON *.* TO '{DAKE_USER}'@'%'; \
         SET GLOBAL require_secure_transport = ON"
    ));
    let secrets = tempfile::tempdir().unwrap();
    let read_with = |tls: DbTls| {
        let mut cfg = Config::builtin().database;
        cfg.user = DAKE_USER.into();
        cfg.password_env = String::new();
        cfg.option_file = private_option_file(secrets.path()).display().to_string();
        cfg.tls = tls;
        let reader = DbReader::new(&cfg).unwrap();
        let rt = crate::mariadb::runtime();
        rt.block_on(read::server(
            reader.access(),
            "127.0.0.1",
            server.port,
            &server.address(),
        ))
    };
    // MariaDB refuses a plain login here as it refuses a wrong password.
    let plain = read_with(DbTls::Off);
    assert!(!plain.answers(), "only TLS is let in: {plain:#?}");
    let verified = read_with(DbTls::Verify);
    assert!(
        !verified.answers(),
        "a self-signed certificate is not trusted: {verified:#?}"
    );
    let encrypted = read_with(DbTls::SkipVerify);
    assert!(encrypted.answers(), "{encrypted:#?}");
    assert_eq!(
        (encrypted.flavour, encrypted.server_id),
        (Some(Flavour::MariaDb), 7)
    );
}

#[test]
fn a_heartbeat_service_writes_only_where_the_server_takes_writes_and_says_a_refusal_once() {
    use std::io::{BufRead, BufReader};
    let cluster = Cluster::start(1);
    let r1 = replica(&cluster, 1);
    let sandbox = Sandbox::new();
    sandbox.write(
        "config/dake/config.toml",
        &format!("[database]\nuser = \"{DAKE_USER}\"\n"),
    );
    let mut service = sandbox
        .dake_process()
        .env("DAKE_MYSQL_PASSWORD", DAKE_PASSWORD)
        .args(["heartbeat", "--every", "0.1", "--host", &r1.address()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A bound on a hang only: the reads below wait for lines, and a service that never writes
    // one is killed, so its empty line fails the test instead of stalling it.
    let (done, watch) = std::sync::mpsc::channel::<()>();
    let pid = service.id().to_string();
    let watchdog = std::thread::spawn(move || {
        if watch
            .recv_timeout(std::time::Duration::from_secs(120))
            .is_err()
        {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid])
                .status();
        }
    });
    let mut err = BufReader::new(service.stderr.take().unwrap());
    let mut out = BufReader::new(service.stdout.take().unwrap());
    let mut refusal = String::new();
    err.read_line(&mut refusal).unwrap();
    assert!(refusal.contains("refused: read_only is on"), "{refusal}");
    // It becomes the master: the service writes there without being told.
    cluster.exec(
        r1,
        "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF",
    );
    let mut written = String::new();
    out.read_line(&mut written).unwrap();
    assert!(
        written.contains(&format!("written on {}", r1.address())),
        "{written}"
    );
    let _ = done.send(());
    watchdog.join().unwrap();
    service.kill().unwrap();
    service.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert!(rest.is_empty(), "the refusal was said once: {rest}");
    let beats = cluster.one(
        r1,
        "SELECT COUNT(*) FROM dake.heartbeat WHERE server_id = 2",
    );
    assert_eq!(beats.as_deref(), Some("1"), "one row, rewritten each beat");
}
