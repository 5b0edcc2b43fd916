//! SQL on a drill server: the statements dake generates for MariaDB, answered as MariaDB
//! answers them (its error numbers and words), one at a time, so a statement that fails
//! leaves the ones before it done, as on a real server. MySQL's spellings fail as they would
//! on MariaDB.

use crate::provider::sim::SimFleet;
use crate::provider::sim::fleet::SimInstance;
use crate::provider::sim::server::{APPLY_TX_PER_SEC, DB_PORT, Tx, silence};

const RUNNING_REPLICA: &str = "ERROR 1198 (HY000): This operation cannot be performed as you \
     have a running slave ''; run STOP SLAVE first";
const NO_SOURCE: &str = "ERROR 1200 (HY000): Misconfigured slave: MASTER_HOST was not set; Fix \
     in config file or with CHANGE MASTER TO";
const READ_ONLY: &str = "ERROR 1290 (HY000): The MariaDB server is running with the --read-only \
     option so it cannot execute this statement";

/// Text between the first pair of single quotes.
fn quoted(s: &str) -> Option<&str> {
    let start = s.find('\'')? + 1;
    let len = s[start..].find('\'')?;
    Some(&s[start..start + len])
}

/// `key = value` from a comma-separated list of assignments, value unquoted.
fn assignment<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    s.split(',').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        k.trim()
            .to_ascii_uppercase()
            .ends_with(key)
            .then(|| v.trim().trim_matches('\''))
    })
}

/// The sequence number a MariaDB position names in domain 0.
fn domain_zero_seq(position: &str) -> Option<u64> {
    position.split(',').find_map(|gtid| {
        let mut parts = gtid.trim().split('-');
        let domain = parts.next()?;
        let _server = parts.next()?;
        let seq = parts.next()?.parse().ok()?;
        (domain == "0").then_some(seq)
    })
}

impl SimFleet {
    /// Runs `statements` on the server of instance `id`. `Err` is what the server (or the
    /// connection) said.
    pub(super) fn run_sql(&mut self, id: &str, statements: &[String]) -> Result<(), String> {
        let s = self.find(id)?;
        let address = crate::provider::sim::server::address_of(s);
        if s.server.is_none() {
            return Err(format!(
                "{address}: {id} is a web server; it runs no database"
            ));
        }
        if let Some(why) = silence(s) {
            return Err(format!("{address}: {why}"));
        }
        for statement in statements {
            self.statement(id, statement)
                .map_err(|why| format!("{address}: {statement}: {why}"))?;
        }
        Ok(())
    }

    fn statement(&mut self, id: &str, statement: &str) -> Result<(), String> {
        let upper = statement.trim().to_ascii_uppercase();
        let words: Vec<&str> = upper.split_whitespace().collect();
        match words.as_slice() {
            ["SET", "GLOBAL", "READ_ONLY", "=", on] => self.set_read_only(id, on),
            ["SET", "GLOBAL", var, ..] => Err(format!(
                "ERROR 1193 (HY000): Unknown system variable '{}'",
                var.to_ascii_lowercase()
            )),
            ["STOP", "REPLICA" | "SLAVE"] => self.threads(id, Some(false), Some(false)),
            ["START", "REPLICA" | "SLAVE"] => self.threads(id, Some(true), Some(true)),
            ["START", "REPLICA" | "SLAVE", "SQL_THREAD"] => self.threads(id, None, Some(true)),
            ["RESET", "REPLICA" | "SLAVE", "ALL"] => self.reset_replica(id),
            ["SELECT", call, ..] if call.starts_with("MASTER_GTID_WAIT(") => {
                self.wait_for(id, statement)
            }
            ["INSERT", "INTO", _table, ..] if upper.contains("(TS, SERVER_ID)") => {
                self.write_heartbeat(id)
            }
            ["CHANGE", "MASTER", "TO", ..] => self.change_master(id, statement),
            ["SELECT", call, ..] if call.contains('(') => Err(format!(
                "ERROR 1305 (42000): FUNCTION {} does not exist",
                call.split('(').next().unwrap_or_default()
            )),
            _ => Err(
                "ERROR 1064 (42000): You have an error in your SQL syntax; check the manual \
                 that corresponds to your MariaDB server version"
                    .into(),
            ),
        }
    }

    fn set_read_only(&mut self, id: &str, on: &str) -> Result<(), String> {
        let on = match on {
            "ON" | "1" => true,
            "OFF" | "0" => false,
            other => {
                return Err(format!(
                    "ERROR 1231 (42000): Variable 'read_only' can't be set to the value of '{other}'"
                ));
            }
        };
        if let Some(db) = self.find_mut(id)?.inst.db.as_mut() {
            db.read_only = on;
        }
        Ok(())
    }

    /// Starts or stops the IO and SQL threads (`None`: left as they are).
    fn threads(&mut self, id: &str, io: Option<bool>, sql: Option<bool>) -> Result<(), String> {
        let s = self.find_mut(id)?;
        let starting = io == Some(true) || sql == Some(true);
        if starting && s.inst.db.as_ref().is_none_or(|d| d.source_id.is_none()) {
            return Err(NO_SOURCE.into());
        }
        if let Some(server) = s.server.as_mut() {
            if let Some(on) = io {
                server.io_on = on;
            }
            if let Some(on) = sql {
                server.sql_on = on;
            }
        }
        Ok(())
    }

    /// The instance `id`, when its server's replication threads are both stopped, as MariaDB
    /// wants them before it changes or resets replication.
    fn stopped_replication(&mut self, id: &str) -> Result<&mut SimInstance, String> {
        let s = self.find_mut(id)?;
        if s.server.as_ref().is_some_and(|d| d.io_on || d.sql_on) {
            return Err(RUNNING_REPLICA.into());
        }
        Ok(s)
    }

    /// Forgets the source and the relay log: what was received and not applied is gone.
    fn reset_replica(&mut self, id: &str) -> Result<(), String> {
        let s = self.stopped_replication(id)?;
        let Some(server) = s.server.as_mut() else {
            return Ok(());
        };
        server.received = server.applied;
        server.io_error = None;
        server.sql_error = None;
        if let Some(db) = s.inst.db.as_mut() {
            db.source_id = None;
        }
        Ok(())
    }

    /// `MASTER_GTID_WAIT`: 0 once the position is applied, -1 at the timeout. The drill's
    /// clock does not stand still during a call, so a backlog the SQL thread gets through
    /// within the timeout is applied at once.
    fn wait_for(&mut self, id: &str, statement: &str) -> Result<(), String> {
        let position = quoted(statement).unwrap_or_default();
        let wanted = domain_zero_seq(position)
            .ok_or_else(|| format!("ERROR 1941 (HY000): Could not parse GTID list '{position}'"))?;
        let timeout: u64 = statement
            .rsplit(',')
            .next()
            .and_then(|t| t.trim().trim_end_matches(')').trim().parse().ok())
            .unwrap_or(u64::MAX);
        let s = self.find_mut(id)?;
        let Some(server) = s.server.as_mut() else {
            return Ok(());
        };
        if server.applied.seq >= wanted {
            return Ok(());
        }
        let backlog = wanted - server.applied.seq;
        let reachable = server.applying()
            && server.received.seq >= wanted
            && backlog.div_ceil(APPLY_TX_PER_SEC) <= timeout;
        if !reachable {
            return Err("answered -1, not 0".into());
        }
        server.apply(backlog);
        Ok(())
    }

    /// One heartbeat row: on a writable master its next transaction; on a writable replica a
    /// transaction no master had (errant); refused on a read-only server.
    fn write_heartbeat(&mut self, id: &str) -> Result<(), String> {
        let now = self.now;
        let s = self.find_mut(id)?;
        let (Some(db), Some(server)) = (s.inst.db.as_ref(), s.server.as_mut()) else {
            return Ok(());
        };
        if db.read_only {
            return Err(READ_ONLY.into());
        }
        let next = server.newest_seq() + 1;
        if db.source_id.is_some() {
            server.errant = Some(next);
        } else {
            server.applied = Tx {
                seq: next,
                origin: server.server_id,
                beat: now as f64,
            };
            server.received = server.applied;
        }
        Ok(())
    }

    fn change_master(&mut self, id: &str, statement: &str) -> Result<(), String> {
        let host = assignment(statement, "MASTER_HOST")
            .ok_or("ERROR 1064 (42000): CHANGE MASTER without MASTER_HOST")?
            .to_string();
        let port = assignment(statement, "MASTER_PORT").unwrap_or("3306");
        if port != DB_PORT.to_string() {
            return Err(format!(
                "ERROR 2003: the drill fleet's servers listen on {DB_PORT}, not {port}"
            ));
        }
        let (source, source_has) = self
            .instances
            .iter()
            .find(|o| o.inst.private_ip == host)
            .and_then(|o| Some((o.inst.id.clone(), o.server.as_ref()?.applied.seq)))
            .ok_or_else(|| format!("ERROR 2005: Unknown server host '{host}'"))?;
        if source == id {
            return Err("ERROR 1234 (42000): a server cannot replicate from itself".into());
        }
        let s = self.stopped_replication(id)?;
        let Some(server) = s.server.as_mut() else {
            return Ok(());
        };
        // The relay log is dropped; MASTER_USE_GTID = slave_pos asks the new source for
        // everything after what was applied. A replica that applied more than its new source
        // holds asks for a position that source never had: MariaDB's IO thread stops on it
        // rather than lose the difference.
        server.received = server.applied;
        server.io_error = (server.applied.seq > source_has).then(|| {
            format!(
                "Got fatal error 1236 from master when reading data from binary log: 'Error: \
                 connecting slave requested to start from GTID {}, which is not in the \
                 master's binlog'",
                server.applied.gtid()
            )
        });
        if let Some(db) = s.inst.db.as_mut() {
            db.source_id = Some(source);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_parts_are_read_as_the_generator_writes_them() {
        let change = "CHANGE MASTER TO MASTER_HOST = '10.0.1.111', MASTER_PORT = 3306, \
                      MASTER_USE_GTID = slave_pos";
        assert_eq!(assignment(change, "MASTER_HOST"), Some("10.0.1.111"));
        assert_eq!(assignment(change, "MASTER_PORT"), Some("3306"));
        assert_eq!(
            quoted("SELECT MASTER_GTID_WAIT('0-1-42', 300)"),
            Some("0-1-42")
        );
        assert_eq!(domain_zero_seq("1-3-9,0-2-4001"), Some(4001));
        assert_eq!(domain_zero_seq("garbage"), None);
    }
}
