//! db-promote end to end with real servers: the fleet's instances on the AWS emulators, each
//! database host a real MariaDB server reached through `[database.hosts]`, and dake run
//! headless as an operator would. Checked on the servers themselves: no row lost, the others
//! replicate from the new master, the endpoint points at it, and never two writable masters.

use serde_json::Value;

use crate::aws_fleet::{Emulated, FLEET, dake_aws};
use crate::mariadb::{Cluster, DAKE_PASSWORD, Server};
use crate::sandbox::{Sandbox, stdout_json};

/// db-promote without its last two steps: the replica it would launch is an emulator instance
/// with no server to replicate.
pub fn db_promote_without_a_new_replica() -> &'static str {
    let builtin = include_str!("../../assets/runbooks/db-promote.toml");
    let cut = builtin
        .find("[[step]]\nname = \"launch-replica\"")
        .expect("db-promote has a launch-replica step");
    &builtin[..cut]
}

/// [`db_promote_without_a_new_replica`] as a user's playbook.
fn promote_without_a_new_replica(sandbox: &Sandbox) {
    sandbox.write(
        "config/dake/runbooks/db-promote.toml",
        db_promote_without_a_new_replica(),
    );
}

/// The emulated fleet read over MySQL: db-master and its replicas are `cluster`'s servers;
/// the password from `DAKE_MYSQL_PASSWORD`.
fn config(e: &Emulated, cluster: &Cluster) -> String {
    config_with(e, cluster, None, &[])
}

/// [`config`], the password from `option_file` when given, and `more` hosts by Name.
pub fn config_with(
    e: &Emulated,
    cluster: &Cluster,
    option_file: Option<&std::path::Path>,
    more: &[(&str, String)],
) -> String {
    let ids = &e.seeded.ids;
    let mut hosts = vec![(ids["db-master"].clone(), cluster.master.address())];
    for (n, r) in cluster.replicas.iter().enumerate() {
        hosts.push((ids[&format!("db-replica-{}", n + 1)].clone(), r.address()));
    }
    hosts.extend(more.iter().map(|(name, a)| (name.to_string(), a.clone())));
    let password = option_file.map_or(String::new(), |f| {
        format!("password_env = \"\"\noption_file = \"{}\"\n", f.display())
    });
    let hosts: String = hosts
        .iter()
        .map(|(key, address)| format!("\"{key}\" = \"{address}\"\n"))
        .collect();
    e.seeded.config()
        + "refresh_secs = 1\nmetrics_refresh_secs = 2\n"
        + "attempt_timeout_secs = 300\ncall_timeout_secs = 600\n"
        + "[database]\nsource = \"mysql\"\nuser = \"dake\"\n"
        + &password
        + "[database.hosts]\n"
        + &hosts
}

/// `dake run db-promote --target db-master --yes --json` and `extra`, on the emulated fleet.
fn db_promote(sandbox: &Sandbox, config: &str, extra: &[&str]) -> std::process::Output {
    dake_aws(sandbox, config)
        .env("DAKE_MYSQL_PASSWORD", DAKE_PASSWORD)
        .args(["run", "db-promote", "--target", "db-master"])
        .args(["--yes", "--json"])
        .args(extra)
        .output()
        .unwrap()
}

/// [`db_promote`] to its end: every step done, and the password nowhere.
fn run_db_promote(sandbox: &Sandbox, config: &str, extra: &[&str]) -> Value {
    let out = db_promote(sandbox, config, extra);
    let r = stdout_json(&out);
    assert_eq!(out.status.code(), Some(0), "{r:#}");
    let statuses: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["done"; 8], "{r:#}");
    assert_no_password(sandbox, &out);
    r
}

/// The password is in none of what the run wrote or read: its output, the journal, the log,
/// the postmortem, the config (the password came from the environment).
fn assert_no_password(sandbox: &Sandbox, out: &std::process::Output) {
    let printed = [&out.stdout[..], &out.stderr[..]].concat();
    assert!(!String::from_utf8_lossy(&printed).contains(DAKE_PASSWORD));
    let run_id = stdout_json(out)["run_id"].as_str().unwrap().to_string();
    let report = sandbox.dake().args(["report", &run_id]).output().unwrap();
    assert!(report.status.success());
    assert!(!String::from_utf8_lossy(&report.stdout).contains(DAKE_PASSWORD));
    let mut dirs = vec![sandbox.path().to_path_buf()];
    let mut files = 0;
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let text = std::fs::read(&path).unwrap_or_default();
                assert!(
                    !String::from_utf8_lossy(&text).contains(DAKE_PASSWORD),
                    "{} holds the password",
                    path.display()
                );
                files += 1;
            }
        }
    }
    assert!(
        files >= 2,
        "the journal and the log were read ({files} files)"
    );
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
    cluster.history(t0, 3);
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
    let r = run_db_promote(&sandbox, &config(&e, &cluster), &[]);
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
    // It answers, so dake refuses to call it down; the operator insists.
    let refused = stdout_json(&db_promote(&sandbox, &config(&e, &cluster), &[]));
    assert_eq!(refused["outcome"], "refused", "{refused:#}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("and MySQL answers: it is up"),
        "{refused:#}"
    );
    assert_eq!(cluster.one(m, "SELECT @@read_only").as_deref(), Some("0"));
    let r = run_db_promote(
        &sandbox,
        &config(&e, &cluster),
        &["--override", "master-answers"],
    );
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
    let mysql = format!(
        "#!/bin/sh\nexec mariadb -h127.0.0.1 -P{} -uroot \"$@\"\n",
        r1.port
    );
    let command = dake::config::Config::builtin().aws.promote_command;
    let out = crate::mariadb::on_host(&command, &[("mysql", mysql)]);
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

/// The console's update loop on the real fleet: keys in, the engine's calls made by the AWS
/// provider (SQL on the servers), fresh snapshots fed back, the screen read at 80x24.
struct Console {
    app: dake::app::App,
    aws: dake::provider::aws::AwsProvider,
    rt: tokio::runtime::Runtime,
}

/// Snapshots a console run may take before it counts as stuck (each is a real read).
const CONSOLE_TICKS: usize = 2000;

impl Console {
    fn new(e: &Emulated, cluster: &Cluster, runbooks: &std::path::Path) -> Console {
        use dake::app::{App, Arming, Msg, update};
        let text = config(e, cluster);
        let config = dake::config::Config::from_user_toml(&text, "test.toml").unwrap();
        // SAFETY: set while holding the emulator lock (as `in_process_provider_with` does).
        unsafe { std::env::set_var("DAKE_MYSQL_PASSWORD", DAKE_PASSWORD) };
        let aws =
            crate::aws_fleet::in_process_provider_with(&text, &crate::emulator::moto().endpoint);
        let mut app = App::new(config, "aws", Arming::Armed, chrono::Utc::now());
        app.playbooks = dake::runbook::model::load_all(Some(runbooks)).unwrap();
        app.operator = "op@war-room".into();
        update(&mut app, Msg::Resize(80, 24));
        let mut c = Console {
            app,
            aws,
            rt: crate::aws_fleet::runtime(),
        };
        c.tick();
        c
    }

    fn pump(&mut self) {
        use dake::provider::Provider;
        let (aws, rt) = (&self.aws, &self.rt);
        crate::run_ui::pump(&mut self.app, |call| {
            rt.block_on(aws.execute(call)).map_err(|e| e.to_string())
        });
    }

    fn tick(&mut self) {
        use dake::provider::Provider;
        let snapshot = self.rt.block_on(self.aws.snapshot()).unwrap();
        crate::run_ui::observe(&mut self.app, snapshot, chrono::Utc::now());
        self.pump();
    }

    fn key(&mut self, code: ratatui::crossterm::event::KeyCode) {
        let key = crate::run_ui::key_event(code);
        dake::app::update(&mut self.app, dake::app::Msg::Key(key));
        self.pump();
    }

    fn screen(&self) -> String {
        crate::run_ui::screen_of(&self.app)
    }

    /// One key per step, confirming as asked, a fresh read while a step waits; the screen at
    /// each step it shows.
    fn run_to_end(&mut self) -> Vec<String> {
        use dake::runbook::engine::Phase;
        use ratatui::crossterm::event::KeyCode;
        let mut screens = Vec::new();
        for _ in 0..CONSOLE_TICKS {
            let run = self.app.run.as_ref().expect("a run is on screen");
            if run.is_over() {
                return screens;
            }
            match run.phase.clone() {
                Phase::Ready => {
                    screens.push(self.screen());
                    self.key(KeyCode::Enter)
                }
                Phase::Confirming { plan, .. } => {
                    screens.push(self.screen());
                    if plan.confirm == dake::runbook::model::Confirm::TypeId {
                        let id = plan.confirm_id.unwrap();
                        for c in id[id.len() - 4..].chars() {
                            self.key(KeyCode::Char(c));
                        }
                    }
                    self.key(KeyCode::Enter);
                }
                Phase::Waiting { .. } | Phase::Calling { .. } => self.tick(),
                Phase::Failed { error } => panic!("step failed: {error}\n{}", self.screen()),
                Phase::Finished { .. } | Phase::Aborted { .. } => {}
            }
        }
        panic!("the run is stuck:\n{}", self.screen());
    }
}

#[test]
fn db_promote_through_the_console_on_real_servers() {
    use ratatui::crossterm::event::KeyCode;
    let e = Emulated::seeded();
    let cluster = Cluster::start(2);
    let (m, r1, r2) = (&cluster.master, &cluster.replicas[0], &cluster.replicas[1]);
    cluster.beat(m, chrono::Utc::now().timestamp() - 120);
    cluster.exec(m, "INSERT INTO shop.orders (note) VALUES ('1'), ('2')");
    cluster.wait_replicated();
    cluster.exec(r1, "STOP SLAVE SQL_THREAD");
    cluster.exec(m, "INSERT INTO shop.orders (note) VALUES ('3')");
    cluster.wait_received(r1);
    m.kill();
    let sandbox = Sandbox::new();
    promote_without_a_new_replica(&sandbox);
    let mut c = Console::new(&e, &cluster, &sandbox.config_home().join("dake/runbooks"));

    let screen = c.screen();
    assert!(screen.contains("✖ CRITICAL"), "{screen}");
    assert!(screen.contains("MySQL does not answer"), "{screen}");
    c.key(KeyCode::Char('P'));
    c.key(KeyCode::Enter);
    let screens = c.run_to_end();
    // The fence and the catch-up were shown before they ran, each with what it would do.
    let shown = screens.join("\n");
    assert!(shown.contains("StopInstances"), "{shown}");
    assert!(shown.contains("START REPLICA SQL_THREAD"), "{shown}");
    assert!(shown.contains("RESET REPLICA ALL"), "{shown}");
    assert_eq!(count(&cluster, r1), "3", "the backlog was applied");
    assert_eq!(cluster.source_port(r2), Some(r1.port));
    replicates_to(&cluster, r1, r2);
    let end = c.screen();
    assert!(end.contains("all 8 steps of db-promote done"), "{end}");
}
