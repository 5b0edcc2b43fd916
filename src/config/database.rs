//! `[database]`: where the database hosts' replication state comes from, and how dake reaches
//! them when it reads them itself.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Where the database hosts' replication state comes from on AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DbSource {
    /// What the hosts publish to CloudWatch (`[aws]` metric names): for fleets dake cannot reach.
    Metrics,
    /// dake connects to each database host itself.
    Mysql,
}

/// TLS to the database hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DbTls {
    Off,
    /// TLS, the server's certificate verified against the system's roots and its name.
    Verify,
    /// TLS without verifying the certificate (a private CA dake does not know).
    SkipVerify,
}

/// How dake reaches the database hosts with `source = "mysql"`. Names, not secrets: the
/// password comes from `password_env` or `option_file`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub source: DbSource,
    pub port: u16,
    pub user: String,
    pub password_env: String,
    pub option_file: String,
    pub tls: DbTls,
    pub connect_timeout_secs: u64,
    pub read_timeout_secs: u64,
    pub heartbeat_table: String,
    /// The heartbeat's `ts` is UTC (pt-heartbeat `--utc`, and `dake heartbeat`), not the
    /// master's local time.
    pub heartbeat_utc: bool,
    /// Instance id or Name → `host:port`, for tunnels and bastions; others are reached at
    /// their private address and `port`.
    #[serde(default)]
    pub hosts: std::collections::BTreeMap<String, String>,
}

impl DatabaseConfig {
    /// `fail(key, message)` makes the error that names the key's line.
    pub(super) fn validate(
        &self,
        fail: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        let db = self;
        if db.connect_timeout_secs == 0 || db.read_timeout_secs == 0 {
            let key = if db.connect_timeout_secs == 0 {
                "connect_timeout_secs"
            } else {
                "read_timeout_secs"
            };
            return Err(fail(key, said!("must be at least 1").into()));
        }
        if !is_table_name(&db.heartbeat_table) {
            return Err(fail(
                "heartbeat_table",
                say!(
                    "`{}` is not `database.table` (letters, digits, _ and $)",
                    db.heartbeat_table
                ),
            ));
        }
        for (name, address) in &db.hosts {
            if let Err(why) = host_port(address, db.port) {
                return Err(fail(name, why));
            }
        }
        Ok(())
    }
}

/// `host`, `host:port` or `[v6]:port`, with `default_port` when none is given.
pub fn host_port(address: &str, default_port: u16) -> Result<(String, u16), String> {
    let bad = || say!("`{address}` is not host:port");
    let (host, port) = match address.strip_prefix('[') {
        Some(rest) => {
            let (host, after) = rest.split_once(']').ok_or_else(bad)?;
            (host, after.strip_prefix(':'))
        }
        None => match address.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            _ => (address, None),
        },
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    let port = match port {
        None => default_port,
        Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(bad)?,
    };
    Ok((host.to_string(), port))
}

/// `db.table`, each part a plain identifier: it is written into statements, never quoted from
/// user text.
fn is_table_name(name: &str) -> bool {
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    };
    matches!(name.split_once('.'), Some((db, table)) if plain(db) && plain(table))
}
