//! The statements dake sends, per flavour, as text: pure, so each is unit-tested against its
//! server's documented syntax and shown to the operator before it runs. MySQL means 8.0.22 or
//! later (the REPLICA/SOURCE spellings); MariaDB 10.6 or later.

use crate::domain::Flavour;

/// A statement to run, and how it may be shown and journaled: the same text with any secret
/// replaced by `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub shown: String,
}

impl Statement {
    fn plain(sql: impl Into<String>) -> Statement {
        let sql = sql.into();
        Statement {
            shown: sql.clone(),
            sql,
        }
    }
}

impl std::fmt::Debug for Statement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

/// A string literal: quotes and backslashes escaped (both servers' default SQL mode).
pub fn literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Server version and comment: what the flavour is read from, before anything else is asked.
pub const VERSION: &str = "SELECT @@version, @@version_comment";

/// Whether a MySQL version has the `replica` spellings of its variables (8.0.26 or later).
fn mysql_has_replica_names(version: &str) -> bool {
    let nums: Vec<u32> = version
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .filter_map(|n| n.parse().ok())
        .collect();
    nums.as_slice() >= [8, 0, 26].as_slice()
}

/// One row: server_id, read_only, super_read_only, log_bin, replica updates, executed GTIDs,
/// MariaDB's binlog state (empty on MySQL), semi-sync master status (NULL when not loaded),
/// report_host and report_port.
pub fn variables(flavour: Flavour, version: &str) -> String {
    match flavour {
        Flavour::MySql => {
            let updates = if mysql_has_replica_names(version) {
                "@@log_replica_updates"
            } else {
                "@@log_slave_updates"
            };
            format!(
                "SELECT @@server_id, @@read_only, @@super_read_only, @@log_bin, {updates}, \
                 @@gtid_executed, '', (SELECT VARIABLE_VALUE FROM performance_schema.global_status \
                 WHERE VARIABLE_NAME IN ('Rpl_semi_sync_source_status', 'Rpl_semi_sync_master_status') LIMIT 1), \
                 @@report_host, @@report_port"
            )
        }
        Flavour::MariaDb => "SELECT @@server_id, @@read_only, 0, @@log_bin, @@log_slave_updates, \
             @@gtid_current_pos, @@gtid_binlog_state, (SELECT VARIABLE_VALUE FROM \
             information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_STATUS'), \
             @@report_host, @@report_port"
            .to_string(),
    }
}

pub fn replica_status(flavour: Flavour) -> &'static str {
    match flavour {
        Flavour::MySql => "SHOW REPLICA STATUS",
        Flavour::MariaDb => "SHOW SLAVE STATUS",
    }
}

/// The newest heartbeat row and the server's clock, both as epoch seconds. `ts` is read in
/// the session's time zone: [`UTC_SESSION`] first when it is written in UTC.
pub fn read_heartbeat(table: &str) -> String {
    format!(
        "SELECT UNIX_TIMESTAMP(ts), server_id, UNIX_TIMESTAMP(NOW(6)) FROM {table} \
         ORDER BY ts DESC LIMIT 1"
    )
}

pub const UTC_SESSION: &str = "SET time_zone = '+00:00'";

/// One heartbeat, on the server's own clock, in pt-heartbeat's `ts` format; only `ts` and
/// `server_id` are written, so pt-heartbeat's own table serves.
pub fn write_heartbeat(table: &str, utc: bool) -> Statement {
    let now = if utc { "UTC_TIMESTAMP(6)" } else { "NOW(6)" };
    Statement::plain(format!(
        "INSERT INTO {table} (ts, server_id) VALUES (DATE_FORMAT({now}, '%Y-%m-%dT%H:%i:%s.%f'), \
         @@server_id) ON DUPLICATE KEY UPDATE ts = VALUES(ts)"
    ))
}

/// pt-heartbeat's table definition (`--create-table`), for a fleet without one.
pub fn create_heartbeat_table(table: &str) -> Vec<Statement> {
    let db = table.split_once('.').map_or(table, |(db, _)| db);
    vec![
        Statement::plain(format!("CREATE DATABASE IF NOT EXISTS {db}")),
        Statement::plain(format!(
            "CREATE TABLE IF NOT EXISTS {table} (ts varchar(26) NOT NULL, server_id int unsigned \
             NOT NULL PRIMARY KEY, file varchar(255) DEFAULT NULL, position bigint unsigned \
             DEFAULT NULL, relay_master_log_file varchar(255) DEFAULT NULL, exec_master_log_pos \
             bigint unsigned DEFAULT NULL)"
        )),
    ]
}

pub fn stop_replica() -> Statement {
    Statement::plain("STOP REPLICA")
}

pub fn start_replica() -> Statement {
    Statement::plain("START REPLICA")
}

/// Only the applier: a replica stopped by hand applies its relay log, and the IO thread (whose
/// master may be gone) is left as it is.
pub fn start_sql_thread() -> Statement {
    Statement::plain("START REPLICA SQL_THREAD")
}

pub fn reset_replica_all() -> Statement {
    Statement::plain("RESET REPLICA ALL")
}

/// Read-only on (a fenced master, a replica) or off (a promoted master). MySQL's
/// `super_read_only` also stops accounts with SUPER; turning it off leaves `read_only` on, so
/// both are turned off.
pub fn set_read_only(flavour: Flavour, on: bool) -> Vec<Statement> {
    match (flavour, on) {
        (Flavour::MySql, true) => vec![Statement::plain("SET GLOBAL super_read_only = ON")],
        (Flavour::MySql, false) => vec![
            Statement::plain("SET GLOBAL super_read_only = OFF"),
            Statement::plain("SET GLOBAL read_only = OFF"),
        ],
        (Flavour::MariaDb, on) => vec![Statement::plain(format!(
            "SET GLOBAL read_only = {}",
            if on { "ON" } else { "OFF" }
        ))],
    }
}

/// Fence a master: no more writes from anyone. MySQL persists `super_read_only`, so a restart
/// of the server keeps it; MariaDB cannot persist a variable, which is why the playbook also
/// stops a fenced master's instance once the application has moved.
pub fn fence(flavour: Flavour) -> Vec<Statement> {
    match flavour {
        Flavour::MySql => vec![Statement::plain("SET PERSIST super_read_only = ON")],
        Flavour::MariaDb => set_read_only(Flavour::MariaDb, true),
    }
}

/// Point a replica at a new source with its flavour's GTID auto-positioning. Without `user`
/// (and password) the replica keeps the replication account it has: both servers keep what a
/// CHANGE does not name.
pub fn change_source(
    flavour: Flavour,
    host: &str,
    port: u16,
    user: Option<&str>,
    password: Option<&str>,
) -> Statement {
    let (verb, prefix, gtid) = match flavour {
        Flavour::MySql => (
            "CHANGE REPLICATION SOURCE TO",
            "SOURCE",
            "SOURCE_AUTO_POSITION = 1",
        ),
        Flavour::MariaDb => ("CHANGE MASTER TO", "MASTER", "MASTER_USE_GTID = slave_pos"),
    };
    let mut head = format!(
        "{verb} {prefix}_HOST = {}, {prefix}_PORT = {port}",
        literal(host)
    );
    if let Some(user) = user {
        head.push_str(&format!(", {prefix}_USER = {}", literal(user)));
    }
    let with = |pass: Option<&str>| match pass {
        Some(p) => format!("{head}, {prefix}_PASSWORD = {p}, {gtid}"),
        None => format!("{head}, {gtid}"),
    };
    Statement {
        sql: with(password.map(literal).as_deref()),
        shown: with(password.map(|_| "'***'")),
    }
}

/// Waits (up to `timeout_secs`) until the server has applied `position`, so its relay log is
/// applied. Both answer 0 once it has; MariaDB -1 and MySQL 1 on a timeout.
pub fn wait_for_position(flavour: Flavour, position: &str, timeout_secs: u64) -> Statement {
    Statement::plain(match flavour {
        Flavour::MySql => format!(
            "SELECT WAIT_FOR_EXECUTED_GTID_SET({}, {timeout_secs})",
            literal(position)
        ),
        Flavour::MariaDb => format!(
            "SELECT MASTER_GTID_WAIT({}, {timeout_secs})",
            literal(position)
        ),
    })
}

/// MySQL: the transactions of `replica` its master never had.
pub fn gtid_subtract(replica: &str, master: &str) -> Statement {
    Statement::plain(format!(
        "SELECT GTID_SUBTRACT({}, {})",
        literal(replica),
        literal(master)
    ))
}

/// Client connections other than replication and dake's own: what a fenced master must not
/// keep serving.
pub const CLIENT_CONNECTIONS: &str = "SELECT ID FROM information_schema.PROCESSLIST \
     WHERE ID <> CONNECTION_ID() AND COMMAND NOT IN ('Binlog Dump', 'Binlog Dump GTID', \
     'Daemon') AND USER NOT IN ('system user', 'event_scheduler')";

pub fn kill(connection_id: u64) -> Statement {
    Statement::plain(format!("KILL CONNECTION {connection_id}"))
}

/// The account dake reads, fences, promotes and repoints with, and writes the heartbeat as:
/// one statement a line, the password left for the operator to fill in.
pub fn grants(flavour: Flavour, user: &str, host: &str, heartbeat_table: &str) -> Vec<String> {
    let account = format!("{}@{}", literal(user), literal(host));
    let (server, global_status) = match flavour {
        // SLAVE MONITOR: replica status; BINLOG MONITOR: binary log state; READ_ONLY ADMIN:
        // read_only on and off; REPLICATION SLAVE ADMIN: stop, repoint, start; RELOAD: reset;
        // CONNECTION ADMIN and PROCESS: a fenced master's client connections, listed and killed.
        Flavour::MariaDb => (
            "PROCESS, RELOAD, SLAVE MONITOR, BINLOG MONITOR, READ_ONLY ADMIN, \
             REPLICATION SLAVE ADMIN, CONNECTION ADMIN",
            None,
        ),
        Flavour::MySql => (
            "PROCESS, RELOAD, REPLICATION CLIENT, SYSTEM_VARIABLES_ADMIN, \
             REPLICATION_SLAVE_ADMIN, CONNECTION_ADMIN",
            Some("performance_schema.global_status"),
        ),
    };
    let mut out = vec![
        format!("CREATE USER IF NOT EXISTS {account} IDENTIFIED BY '<password>';"),
        format!("GRANT {server} ON *.* TO {account};"),
        format!("GRANT SELECT, INSERT, UPDATE ON {heartbeat_table} TO {account};"),
    ];
    if let Some(table) = global_status {
        out.push(format!("GRANT SELECT ON {table} TO {account};"));
    }
    out
}

#[cfg(test)]
mod tests;
