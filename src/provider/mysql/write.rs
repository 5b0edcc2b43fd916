//! Writes to a server: the heartbeat, which is also how a promoted master proves it takes
//! writes.

use mysql_async::prelude::Queryable;

use super::read::Access;
use super::{DbError, sql};

/// One heartbeat written: on which server, and the `ts` it wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Beat {
    pub address: String,
    pub server_id: u32,
    pub ts: String,
}

/// Writes one heartbeat on the server at `host:port`, creating the table first when
/// `create_table`. Refuses a read-only server: a beat written on a replica by an account that
/// passes read_only would be an errant transaction.
pub async fn heartbeat(
    access: &Access,
    host: &str,
    port: u16,
    create_table: bool,
) -> Result<Beat, DbError> {
    let address = format!("{host}:{port}");
    let fail = |e: mysql_async::Error| DbError::Server {
        address: address.clone(),
        why: e.to_string(),
    };
    let write = async {
        let mut conn = access.connect(host, port).await?;
        let (server_id, read_only): (u32, u8) = conn
            .query_first("SELECT @@server_id, @@read_only")
            .await
            .map_err(fail)?
            .unwrap_or_default();
        if read_only != 0 {
            return Err(DbError::Server {
                address: address.clone(),
                why: format!(
                    "refused: read_only is on (server_id {server_id}, a replica?); a heartbeat \
                     written there would be a transaction its master never had. Write it on \
                     the master"
                ),
            });
        }
        if create_table {
            for s in sql::create_heartbeat_table(&access.heartbeat_table) {
                conn.query_drop(&s.sql).await.map_err(fail)?;
            }
        }
        conn.query_drop(&sql::write_heartbeat(&access.heartbeat_table, access.heartbeat_utc).sql)
            .await
            .map_err(|e| DbError::Server {
                address: address.clone(),
                why: format!(
                    "{e} (does {} exist? `dake heartbeat --create-table` makes it)",
                    access.heartbeat_table
                ),
            })?;
        let ts: Option<String> = conn
            .query_first(format!(
                "SELECT ts FROM {} WHERE server_id = @@server_id",
                access.heartbeat_table
            ))
            .await
            .map_err(fail)?;
        let _ = conn.disconnect().await;
        Ok(Beat {
            address: address.clone(),
            server_id,
            ts: ts.unwrap_or_default(),
        })
    };
    super::read::within(access, &address, write).await
}

/// Runs `statements` in order on one connection to `host:port`, then, with `kill_clients`,
/// kills every client connection. A statement that returns a value is a check: 0 (or NULL)
/// passes, anything else stops here with it. With `check_only` it connects and reads one row:
/// the server answers and takes dake's login. Returns what was done, for the timeline.
pub async fn run(
    access: &Access,
    host: &str,
    port: u16,
    statements: &[String],
    kill_clients: bool,
    check_only: bool,
) -> Result<String, DbError> {
    let address = format!("{host}:{port}");
    let fail = |what: &str, e: mysql_async::Error| DbError::Server {
        address: address.clone(),
        why: format!("{what}: {e}"),
    };
    let mut conn = access.connect(host, port).await?;
    if check_only {
        conn.query_drop("SELECT 1")
            .await
            .map_err(|e| fail("SELECT 1", e))?;
        let _ = conn.disconnect().await;
        return Ok(format!("{address} answers"));
    }
    for s in statements {
        let answer: Option<mysql_async::Row> =
            conn.query_first(s.as_str()).await.map_err(|e| fail(s, e))?;
        let value = answer.and_then(|row| row.get_opt::<Option<String>, _>(0)?.ok().flatten());
        if let Some(v) = value.filter(|v| v.trim() != "0") {
            return Err(DbError::Server {
                address: address.clone(),
                why: format!("{s}: answered {v}, not 0"),
            });
        }
    }
    let mut killed = 0;
    if kill_clients {
        let ids: Vec<u64> = conn
            .query(sql::CLIENT_CONNECTIONS)
            .await
            .map_err(|e| fail("listing client connections", e))?;
        for id in ids {
            // One that ended meanwhile is as good as killed.
            if conn.query_drop(sql::kill(id).sql).await.is_ok() {
                killed += 1;
            }
        }
    }
    let _ = conn.disconnect().await;
    let mut done = format!("{address}: {} statements", statements.len());
    if kill_clients {
        done.push_str(&format!(", {killed} client connections killed"));
    }
    Ok(done)
}
