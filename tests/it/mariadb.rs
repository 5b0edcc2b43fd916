//! Real MariaDB replication for the integration tests: a master and GTID replicas as plain
//! `mariadbd` processes on free loopback ports, in temporary data directories removed
//! afterwards. Debian's `mariadb-server` is installed first when `mariadbd` is missing (as
//! root; otherwise the test fails naming the package).
//!
//! Each server runs under a small shell wrapper that kills it as soon as its stdin reaches
//! end-of-file; the test process holds the only write end, so the servers die with it however
//! it ends.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dake::domain::Flavour;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use tempfile::TempDir;

use crate::emulator::{SetupLock, progress, run_setup, tmpdir};

/// The replication account every replica uses, and dake's own (README: the SQL grants).
pub const REPL_USER: &str = "repl";
pub const REPL_PASSWORD: &str = "repl-pw";
pub const DAKE_USER: &str = "dake";
pub const DAKE_PASSWORD: &str = "dake-pw";
/// The heartbeat table, as `[database] heartbeat_table` names it by default.
pub const HEARTBEAT: &str = "dake.heartbeat";
/// Readiness is polled this many times, this far apart: a generous bound on a start, not a
/// timing the test depends on.
const READY_POLLS: u32 = 600;
const READY_POLL: Duration = Duration::from_millis(100);

/// A MySQL option file in `dir` holding dake's password, readable by its owner only (dake
/// refuses one others can read).
pub fn private_option_file(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("dake.cnf");
    std::fs::write(&path, format!("[client]\npassword = {DAKE_PASSWORD}\n"))
        .expect("writing the option file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .expect("making the option file private");
    path
}

/// `mariadbd`, installed from Debian's `mariadb-server` when missing.
fn mariadbd() -> PathBuf {
    let found = || {
        [
            "/usr/sbin/mariadbd",
            "/usr/bin/mariadbd",
            "/usr/local/bin/mariadbd",
        ]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
    };
    if let Some(p) = found() {
        return p;
    }
    let _lock = SetupLock::acquire(&tmpdir().join("mariadb-install.lock"));
    if let Some(p) = found() {
        return p;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    assert!(
        root,
        "the MariaDB tests need `mariadbd`: install Debian's `mariadb-server` package \
         (`apt-get install mariadb-server`), or run the tests as root so they install it"
    );
    progress("installing Debian's mariadb-server (one time)");
    let what = "installing mariadb-server with apt-get (the MariaDB tests need it)";
    let apt = |args: &[&str]| {
        let mut c = Command::new("apt-get");
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    run_setup(&mut apt(&["update", "-q"]), what);
    run_setup(&mut apt(&["install", "-y", "-q", "mariadb-server"]), what);
    found().unwrap_or_else(|| panic!("{what}: mariadbd is still missing"))
}

/// A freshly initialised data directory, made once per `mariadbd` and copied for each
/// server: `mariadb-install-db` bootstrapping several at once crashes now and then.
fn template(bin: &Path) -> PathBuf {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _here = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let version = Command::new(bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let tag: String = version
        .split_whitespace()
        .nth(2)
        .unwrap_or("unknown")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect();
    let template = tmpdir().join(format!("mariadb-template-{tag}"));
    let done = template.join("dake-template-ready");
    if done.exists() {
        return template;
    }
    let _lock = SetupLock::acquire(&template.with_extension("lock"));
    if done.exists() {
        return template;
    }
    let _ = std::fs::remove_dir_all(&template);
    let install = bin.with_file_name("mariadb-install-db");
    let install = if install.exists() {
        install
    } else {
        PathBuf::from("mariadb-install-db")
    };
    run_setup(
        Command::new(install).args([
            "--no-defaults",
            &format!("--datadir={}", template.display()),
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--innodb-log-file-size=8M",
        ]),
        "initialising the MariaDB data directory template",
    );
    std::fs::write(&done, "").expect("marking the MariaDB template ready");
    template
}

/// One running server. Dropping it stops it and removes its data directory.
pub struct Server {
    pub port: u16,
    pub server_id: u32,
    /// The `mariadbd` process id, for a test that kills it.
    pub pid: u32,
    wrapper: Child,
    dir: TempDir,
}

impl Server {
    fn start(server_id: u32) -> Server {
        Server::start_with(server_id, &[])
    }

    /// A server of its own with `extra` options (TLS, say).
    pub fn start_with(server_id: u32, extra: &[String]) -> Server {
        let bin = mariadbd();
        let dir = tempfile::Builder::new()
            .prefix("dake-mariadb-")
            .tempdir_in(tmpdir())
            .or_else(|_| tempfile::tempdir())
            .expect("a temp dir for a MariaDB data directory");
        let data = dir.path().join("data");
        run_setup(
            Command::new("cp").arg("-a").arg(template(&bin)).arg(&data),
            "copying the MariaDB data directory template",
        );
        Server::on(dir, &data, server_id, extra)
    }

    /// Another server on this one's data (and binary logs), as on the instance its EBS volume
    /// was moved to: started after this one died, it recovers from the crash first. Its own
    /// socket, logs and port; the data directory stays this one's.
    pub fn moved(&self) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("dake-mariadb-moved-")
            .tempdir_in(tmpdir())
            .or_else(|_| tempfile::tempdir())
            .expect("a temp dir for the moved server");
        Server::on(dir, &self.dir.path().join("data"), self.server_id, &[])
    }

    fn on(dir: TempDir, data: &Path, server_id: u32, extra: &[String]) -> Server {
        let bin = mariadbd();
        // A port the kernel picked a moment ago; a clash shows as the server exiting, and the
        // next port is tried.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free loopback port")
                .port();
            if let Some((wrapper, pid)) = spawn(&bin, dir.path(), data, port, server_id, extra) {
                return Server {
                    port,
                    server_id,
                    pid,
                    wrapper,
                    dir,
                };
            }
        }
        panic!(
            "mariadbd did not start on five ports; its log:\n{}",
            std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
        );
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// Kills the server process outright (a crashed master); the wrapper stays until drop.
    pub fn kill(&self) {
        let _ = Command::new("kill")
            .args(["-9", &self.pid.to_string()])
            .status();
        for _ in 0..READY_POLLS {
            if !Path::new(&format!("/proc/{}", self.pid)).exists() {
                return;
            }
            std::thread::sleep(READY_POLL);
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Runs `sql` (one or more statements) as root, over a plain connection.
    pub fn exec(&self, sql: &str) {
        self.exec_on(&runtime(), sql)
    }

    fn exec_on(&self, rt: &tokio::runtime::Runtime, sql: &str) {
        rt.block_on(async {
            let mut conn = Conn::new(root_opts(self.port))
                .await
                .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.address()));
            conn.query_drop(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql} on {}: {e}", self.address()));
            let _ = conn.disconnect().await;
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Most often it is gone already (killed, or its wrapper ended it).
        let _ = Command::new("kill")
            .args(["-9", &self.pid.to_string()])
            .stderr(Stdio::null())
            .status();
        drop(self.wrapper.stdin.take());
        let _ = self.wrapper.wait();
    }
}

/// Starts `mariadbd` under the wrapper; `None` when it exited before answering.
fn spawn(
    bin: &Path,
    dir: &Path,
    data: &Path,
    port: u16,
    server_id: u32,
    extra: &[String],
) -> Option<(Child, u32)> {
    let args = [
        "--no-defaults".to_string(),
        format!("--datadir={}", data.display()),
        format!("--port={port}"),
        "--bind-address=127.0.0.1".into(),
        format!("--socket={}", dir.join("sock").display()),
        format!("--pid-file={}", dir.join("pid").display()),
        format!("--log-error={}", dir.join("error.log").display()),
        "--user=root".into(),
        format!("--server-id={server_id}"),
        // The binary logs live with the data, as on a data volume that moves.
        format!("--log-bin={}", data.join("bin").display()),
        "--log-slave-updates".into(),
        "--binlog-format=ROW".into(),
        "--innodb-buffer-pool-size=16M".into(),
        "--innodb-log-file-size=8M".into(),
        "--performance-schema=OFF".into(),
        "--report-host=127.0.0.1".into(),
        format!("--report-port={port}"),
    ];
    let mut wrapper = Command::new("sh")
        .arg("-c")
        .arg("\"$0\" \"$@\" & echo $!; cat >/dev/null; kill -9 $! 2>/dev/null; wait")
        .arg(bin)
        .args(&args)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting mariadbd under sh");
    let mut line = String::new();
    if let Some(out) = wrapper.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    let Ok(pid) = line.trim().parse::<u32>() else {
        drop(wrapper.stdin.take());
        let _ = wrapper.wait();
        return None;
    };
    let rt = runtime();
    for _ in 0..READY_POLLS {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            break;
        }
        // Any answer of the server's own, a refusal of a plain connection included, says it is up.
        if matches!(
            rt.block_on(Conn::new(root_opts(port))),
            Ok(_) | Err(mysql_async::Error::Server(_))
        ) {
            return Some((wrapper, pid));
        }
        std::thread::sleep(READY_POLL);
    }
    drop(wrapper.stdin.take());
    let _ = wrapper.wait();
    None
}

fn root_opts(port: u16) -> OptsBuilder {
    OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .prefer_socket(false)
        .user(Some("root"))
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A master and its GTID replicas, every account and the heartbeat table in place.
pub struct Cluster {
    pub master: Server,
    pub replicas: Vec<Server>,
    rt: tokio::runtime::Runtime,
}

impl Cluster {
    pub fn start(replicas: usize) -> Cluster {
        let rt = runtime();
        let master = Server::start(1);
        let cluster_replicas: Vec<Server> =
            (0..replicas).map(|n| Server::start(n as u32 + 2)).collect();
        let c = Cluster {
            master,
            replicas: cluster_replicas,
            rt,
        };
        // The anonymous account would shadow the replication user over 127.0.0.1. dake's own
        // account is made as `dake sql-grants` prints it.
        let grants =
            dake::provider::mysql::sql::grants(Flavour::MariaDb, DAKE_USER, "%", HEARTBEAT)
                .join(" ")
                .replace("<password>", DAKE_PASSWORD);
        c.exec(
            &c.master,
            &format!(
                "DROP USER IF EXISTS ''@'localhost'; \
                 CREATE USER '{REPL_USER}'@'%' IDENTIFIED BY '{REPL_PASSWORD}'; \
                 GRANT REPLICATION SLAVE ON *.* TO '{REPL_USER}'@'%'; \
                 CREATE DATABASE dake; \
                 CREATE TABLE {HEARTBEAT} (ts varchar(26) NOT NULL, server_id int unsigned NOT NULL \
                 PRIMARY KEY, file varchar(255) DEFAULT NULL, position bigint unsigned DEFAULT NULL, \
                 relay_master_log_file varchar(255) DEFAULT NULL, exec_master_log_pos bigint \
                 unsigned DEFAULT NULL); \
                 {grants} \
                 CREATE DATABASE shop; \
                 CREATE TABLE shop.orders (id int PRIMARY KEY AUTO_INCREMENT, note varchar(40))"
            ),
        );
        for r in &c.replicas {
            c.repoint(r, &c.master);
            c.exec(r, "SET GLOBAL read_only = ON");
        }
        c.wait_replicated();
        c
    }

    /// Points `replica` at `source` with GTID auto-positioning and starts it.
    pub fn repoint(&self, replica: &Server, source: &Server) {
        self.exec(
            replica,
            &format!(
                "STOP SLAVE; CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {}, \
                 MASTER_USER = '{REPL_USER}', MASTER_PASSWORD = '{REPL_PASSWORD}', \
                 MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1; START SLAVE",
                source.port
            ),
        );
    }

    /// Runs `sql` (one or more statements) on `server` as root.
    pub fn exec(&self, server: &Server, sql: &str) {
        server.exec_on(&self.rt, sql)
    }

    /// The first column of the first row of `sql` on `server`, as text.
    pub fn one(&self, server: &Server, sql: &str) -> Option<String> {
        self.rt.block_on(async {
            let mut conn = Conn::new(root_opts(server.port))
                .await
                .unwrap_or_else(|e| panic!("connecting to {}: {e}", server.address()));
            let row: Option<mysql_async::Row> = conn
                .query_first(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql} on {}: {e}", server.address()));
            let _ = conn.disconnect().await;
            row.and_then(|r| r.get_opt::<Option<String>, _>(0)?.ok().flatten())
        })
    }

    /// Writes one heartbeat on `server` stamped `epoch_secs` (UTC), as pt-heartbeat would at
    /// that moment: a test chooses its beats instead of waiting for the clock.
    pub fn beat(&self, server: &Server, epoch_secs: i64) {
        let ts = chrono::DateTime::from_timestamp(epoch_secs, 0)
            .expect("a valid epoch second")
            .format("%Y-%m-%dT%H:%M:%S%.6f");
        self.exec(
            server,
            &format!("REPLACE INTO {HEARTBEAT} (ts, server_id) VALUES ('{ts}', @@server_id)"),
        );
    }

    /// The master's history before a test's fault: a heartbeat at `beat_at` (epoch seconds)
    /// and `rows` orders, all of it applied by every replica.
    pub fn history(&self, beat_at: i64, rows: usize) {
        self.beat(&self.master, beat_at);
        let values: Vec<String> = (1..=rows).map(|n| format!("('{n}')")).collect();
        self.exec(
            &self.master,
            &format!(
                "INSERT INTO shop.orders (note) VALUES {}",
                values.join(", ")
            ),
        );
        self.wait_replicated();
    }

    /// Waits until every replica has applied all the master wrote.
    pub fn wait_replicated(&self) {
        let all: Vec<&Server> = self.replicas.iter().collect();
        self.wait_replicated_on(&all);
    }

    /// A client connection to `server`, held open by the test.
    pub fn connect(&self, server: &Server) -> Conn {
        self.rt
            .block_on(Conn::new(root_opts(server.port)))
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", server.address()))
    }

    /// Whether the server closed (killed) `conn`.
    pub fn is_closed(&self, mut conn: Conn) -> bool {
        self.rt.block_on(conn.query_drop("SELECT 1")).is_err()
    }

    /// The port `replica` replicates from, as its replica status says.
    pub fn source_port(&self, replica: &Server) -> Option<u16> {
        self.rt.block_on(async {
            let mut conn = Conn::new(root_opts(replica.port)).await.ok()?;
            let row: Option<mysql_async::Row> = conn.query_first("SHOW SLAVE STATUS").await.ok()?;
            let _ = conn.disconnect().await;
            row?.get_opt::<u16, _>("Master_Port")?.ok()
        })
    }

    /// Waits until `replica` has received (not necessarily applied) all the master wrote.
    pub fn wait_received(&self, replica: &Server) {
        let pos = self
            .one(&self.master, "SELECT @@gtid_binlog_pos")
            .unwrap_or_default();
        for _ in 0..READY_POLLS {
            let received = self.rt.block_on(async {
                let mut conn = Conn::new(root_opts(replica.port)).await.ok()?;
                let row: Option<mysql_async::Row> =
                    conn.query_first("SHOW SLAVE STATUS").await.ok()?;
                let _ = conn.disconnect().await;
                row?.get_opt::<String, _>("Gtid_IO_Pos")?.ok()
            });
            if received.as_deref() == Some(pos.as_str()) {
                return;
            }
            std::thread::sleep(READY_POLL);
        }
        panic!("replica {} did not receive {pos}", replica.address());
    }

    /// Waits until `replica` has applied all `source` wrote.
    pub fn wait_applied_from(&self, source: &Server, replica: &Server) {
        let pos = self
            .one(source, "SELECT @@gtid_binlog_pos")
            .unwrap_or_default();
        let waited = self.one(replica, &format!("SELECT MASTER_GTID_WAIT('{pos}', 60)"));
        assert_eq!(
            waited.as_deref(),
            Some("0"),
            "{} did not reach {pos}",
            replica.address()
        );
    }

    /// Waits until `replicas` have applied all the master wrote.
    pub fn wait_replicated_on(&self, replicas: &[&Server]) {
        let pos = self
            .one(&self.master, "SELECT @@gtid_binlog_pos")
            .unwrap_or_default();
        for r in replicas {
            let waited = self.one(r, &format!("SELECT MASTER_GTID_WAIT('{pos}', 60)"));
            assert_eq!(
                waited.as_deref(),
                Some("0"),
                "replica {} did not reach {pos}:\n{}",
                r.address(),
                r.error_log()
            );
        }
    }
}

/// Runs a host command as SSM would run it with `sh -c`, the named programs on its `PATH`
/// replaced by the given scripts (`mysql` that host's server, `systemctl` a no-op, ...).
pub fn on_host(command: &str, shims: &[(&str, String)]) -> std::process::Output {
    use std::os::unix::fs::PermissionsExt;
    let bin = tempfile::tempdir().expect("a dir for the host's programs");
    for (name, script) in shims {
        let path = bin.path().join(name);
        std::fs::write(&path, script).expect("a shim written");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("a shim made executable");
    }
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("sh")
        .args(["-c", command])
        .env("PATH", path)
        .output()
        .expect("sh runs")
}
