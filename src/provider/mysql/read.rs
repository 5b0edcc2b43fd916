//! One server read over the MySQL protocol: its flavour first, then what that flavour calls
//! its variables, its replica status and the newest heartbeat it holds. Bounded as a whole; a
//! server that does not answer in time is reported unreachable with the reason.

use std::collections::BTreeMap;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Row, SslOpts, Value};

use super::creds::Secret;
use super::sql;
use super::{DbError, unix_now};
use crate::config::{DatabaseConfig, DbTls};
use crate::domain::{Flavour, REFUSED, ReplicaSide, ServerFacts, ThreadState};

/// How dake logs in and how long it waits: shared by every read and statement.
#[derive(Debug, Clone)]
pub struct Access {
    pub user: String,
    pub password: Option<Secret>,
    pub tls: DbTls,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub heartbeat_table: String,
    pub heartbeat_utc: bool,
}

impl Access {
    pub fn new(cfg: &DatabaseConfig, password: Option<Secret>) -> Access {
        Access {
            user: cfg.user.clone(),
            password,
            tls: cfg.tls,
            connect_timeout: Duration::from_secs(cfg.connect_timeout_secs),
            read_timeout: Duration::from_secs(cfg.read_timeout_secs),
            heartbeat_table: cfg.heartbeat_table.clone(),
            heartbeat_utc: cfg.heartbeat_utc,
        }
    }

    fn opts(&self, host: &str, port: u16) -> Opts {
        let ssl = match self.tls {
            DbTls::Off => None,
            DbTls::Verify => Some(SslOpts::default()),
            DbTls::SkipVerify => Some(
                SslOpts::default()
                    .with_danger_accept_invalid_certs(true)
                    .with_danger_skip_domain_validation(true),
            ),
        };
        OptsBuilder::default()
            .ip_or_hostname(host)
            .tcp_port(port)
            .prefer_socket(false)
            .user(Some(self.user.clone()))
            .pass(self.password.as_ref().map(|p| p.expose().to_string()))
            .ssl_opts(ssl)
            .stmt_cache_size(0)
            .into()
    }

    /// A connection, bounded by the connect timeout.
    pub async fn connect(&self, host: &str, port: u16) -> Result<Conn, DbError> {
        let address = format!("{host}:{port}");
        match tokio::time::timeout(self.connect_timeout, Conn::new(self.opts(host, port))).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(DbError::Server {
                address,
                why: reason(&e),
            }),
            Err(_) => Err(DbError::Server {
                address,
                why: say!("no answer within {}s", self.connect_timeout.as_secs()),
            }),
        }
    }
}

/// `work` on one server, bounded by the connect and read timeouts together: a server that
/// takes longer is said not to answer.
pub(super) async fn within<T>(
    access: &Access,
    address: &str,
    work: impl std::future::Future<Output = Result<T, DbError>>,
) -> Result<T, DbError> {
    let bound = access.connect_timeout + access.read_timeout;
    tokio::time::timeout(bound, work).await.unwrap_or_else(|_| {
        Err(DbError::Server {
            address: address.to_string(),
            why: say!("no answer within {}s", bound.as_secs()),
        })
    })
}

/// A server's own error is said as such ([`REFUSED`]): it answered, which is not the same as a
/// server that is gone.
fn reason(e: &mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Server(_) => format!("{REFUSED}{e}"),
        _ => e.to_string(),
    }
}

/// Everything [`ServerFacts`] holds for the server at `host:port` (whose replicas reach it at
/// `replication_address` unless it reports another); unreachable with the reason when it
/// cannot be connected to or read within the timeouts.
pub async fn server(
    access: &Access,
    host: &str,
    port: u16,
    replication_address: &str,
) -> ServerFacts {
    let address = format!("{host}:{port}");
    let read = async {
        let mut conn = access.connect(host, port).await?;
        let facts = facts(access, &mut conn, address.clone(), replication_address).await;
        let _ = conn.disconnect().await;
        facts.map_err(|e| DbError::Server {
            address: address.clone(),
            why: reason(&e),
        })
    };
    let facts = within(access, &address, read)
        .await
        .unwrap_or_else(|e| ServerFacts::unreachable(address.clone(), e.reason()));
    if facts.answers() {
        facts
    } else {
        ServerFacts {
            replication_address: replication_address.to_string(),
            ..facts
        }
    }
}

async fn facts(
    access: &Access,
    conn: &mut Conn,
    address: String,
    replication_address: &str,
) -> Result<ServerFacts, mysql_async::Error> {
    let asked_at = unix_now();
    let (version, comment, server_now): (String, String, String) = conn
        .query_first(format!("{}, UNIX_TIMESTAMP(NOW(6))", sql::VERSION))
        .await?
        .unwrap_or_default();
    let answered_at = unix_now();
    let flavour = Flavour::from_version(&version, &comment);
    let vars: Row = conn
        .query_first(sql::variables(flavour, &version))
        .await?
        .ok_or_else(|| mysql_async::Error::Other("no variables row".into()))?;
    let v = |i: usize| vars.as_ref(i).and_then(text).unwrap_or_default();
    let status: Vec<Row> = conn.query(sql::replica_status(flavour)).await?;
    let replica = status.first().map(|row| replica_side(&columns(row)));
    if access.heartbeat_utc {
        conn.query_drop(sql::UTC_SESSION).await?;
    }
    // No heartbeat table is not an error of the server: lag then falls back, labelled.
    let heartbeat = match conn
        .query_first::<Row, _>(sql::read_heartbeat(&access.heartbeat_table))
        .await
    {
        Ok(Some(row)) => {
            let beat = row.as_ref(0).and_then(text).and_then(|t| t.parse().ok());
            let writer = row.as_ref(1).and_then(text).and_then(|t| t.parse().ok());
            beat.zip(writer)
        }
        _ => None,
    };
    let clock_skew_secs = server_now
        .parse::<f64>()
        .map_or(0.0, |s| s - (asked_at + answered_at) / 2.0);
    let reported = v(8);
    let replication_address = if reported.is_empty() {
        replication_address.to_string()
    } else {
        format!("{reported}:{}", v(9))
    };
    Ok(ServerFacts {
        address,
        replication_address,
        unreachable: None,
        flavour: Some(flavour),
        version,
        server_id: v(0).parse().unwrap_or(0),
        read_only: flag(&v(1)),
        super_read_only: flag(&v(2)),
        log_bin: flag(&v(3)),
        log_replica_updates: flag(&v(4)),
        gtid_executed: v(5),
        gtid_binlog_state: v(6),
        semi_sync: Some(v(7)).filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("off")),
        replica,
        heartbeat,
        clock_skew_secs,
        errant: String::new(),
    })
}

fn flag(s: &str) -> bool {
    matches!(s.trim().to_ascii_lowercase().as_str(), "1" | "on" | "yes")
}

/// A value as the server would print it; `None` for NULL.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Double(d) => Some(d.to_string()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

fn columns(row: &Row) -> BTreeMap<String, String> {
    row.columns_ref()
        .iter()
        .enumerate()
        .filter_map(|(i, c)| Some((c.name_str().into_owned(), row.as_ref(i).and_then(text)?)))
        .collect()
}

/// The replica side from `SHOW REPLICA STATUS` (MySQL's Source/Replica names) or `SHOW SLAVE
/// STATUS` (MariaDB's Master/Slave names), by column name.
pub fn replica_side(cols: &BTreeMap<String, String>) -> ReplicaSide {
    let get = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| cols.get(*n))
            .cloned()
            .unwrap_or_default()
    };
    let source_file = get(&["Source_Log_File", "Master_Log_File"]);
    let relay_file = get(&["Relay_Source_Log_File", "Relay_Master_Log_File"]);
    let read_pos = get(&["Read_Source_Log_Pos", "Read_Master_Log_Pos"]);
    let exec_pos = get(&["Exec_Source_Log_Pos", "Exec_Master_Log_Pos"]);
    ReplicaSide {
        source: format!(
            "{}:{}",
            get(&["Source_Host", "Master_Host"]),
            get(&["Source_Port", "Master_Port"])
        ),
        io: ThreadState::parse(&get(&["Replica_IO_Running", "Slave_IO_Running"])),
        sql: ThreadState::parse(&get(&["Replica_SQL_Running", "Slave_SQL_Running"])),
        last_io_error: get(&["Last_IO_Error"]),
        last_sql_error: get(&["Last_SQL_Error"]),
        seconds_behind: get(&["Seconds_Behind_Source", "Seconds_Behind_Master"])
            .parse()
            .ok(),
        sql_delay_secs: get(&["SQL_Delay"]).parse().unwrap_or(0),
        relay_log_applied: source_file == relay_file && read_pos == exec_pos,
        gtid_received: get(&["Retrieved_Gtid_Set", "Gtid_IO_Pos"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn mariadb_slave_status_reads_by_its_names() {
        let r = replica_side(&cols(&[
            ("Master_Host", "10.0.0.1"),
            ("Master_Port", "3306"),
            ("Slave_IO_Running", "Connecting"),
            ("Slave_SQL_Running", "Yes"),
            ("Last_IO_Error", "error reconnecting to master"),
            ("Master_Log_File", "bin.000003"),
            ("Relay_Master_Log_File", "bin.000003"),
            ("Read_Master_Log_Pos", "900"),
            ("Exec_Master_Log_Pos", "700"),
            ("SQL_Delay", "0"),
            ("Gtid_IO_Pos", "0-1-42"),
        ]));
        assert_eq!(r.source, "10.0.0.1:3306");
        assert_eq!(
            (r.io, r.sql),
            (ThreadState::Connecting, ThreadState::Running)
        );
        assert_eq!(
            r.seconds_behind, None,
            "NULL while the IO thread reconnects"
        );
        assert!(!r.relay_log_applied, "200 bytes of relay log not applied");
        assert_eq!(r.gtid_received, "0-1-42");
    }

    #[test]
    fn mysql_replica_status_reads_by_its_names() {
        let r = replica_side(&cols(&[
            ("Source_Host", "db-1"),
            ("Source_Port", "3307"),
            ("Replica_IO_Running", "Yes"),
            ("Replica_SQL_Running", "No"),
            ("Last_SQL_Error", "Duplicate entry"),
            ("Source_Log_File", "b.2"),
            ("Relay_Source_Log_File", "b.2"),
            ("Read_Source_Log_Pos", "5"),
            ("Exec_Source_Log_Pos", "5"),
            ("Seconds_Behind_Source", "3"),
            ("SQL_Delay", "3600"),
            ("Retrieved_Gtid_Set", "u:1-9"),
        ]));
        assert_eq!(r.source, "db-1:3307");
        assert_eq!(r.sql, ThreadState::Stopped);
        assert_eq!(r.last_sql_error, "Duplicate entry");
        assert_eq!((r.seconds_behind, r.sql_delay_secs), (Some(3), 3600));
        assert!(r.relay_log_applied);
        assert_eq!(r.gtid_received, "u:1-9");
    }
}
