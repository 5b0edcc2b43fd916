use super::*;

#[test]
fn repointing_uses_each_flavours_gtid_positioning_and_never_shows_the_password() {
    let my = change_source(
        Flavour::MySql,
        "10.0.1.5",
        3306,
        Some("repl"),
        Some("s3cr'et"),
    );
    assert_eq!(
        my.sql,
        "CHANGE REPLICATION SOURCE TO SOURCE_HOST = '10.0.1.5', SOURCE_PORT = 3306, \
         SOURCE_USER = 'repl', SOURCE_PASSWORD = 's3cr''et', SOURCE_AUTO_POSITION = 1"
    );
    assert!(!my.shown.contains("s3cr") && my.shown.contains("SOURCE_PASSWORD = '***'"));
    assert!(!format!("{my:?}").contains("s3cr"));
    let maria = change_source(Flavour::MariaDb, "db-2", 3307, None, None);
    assert_eq!(
        maria.sql,
        "CHANGE MASTER TO MASTER_HOST = 'db-2', MASTER_PORT = 3307, MASTER_USE_GTID = slave_pos"
    );
    assert_eq!(maria.shown, maria.sql);
}

#[test]
fn read_only_and_status_statements_follow_the_flavour() {
    let on: Vec<String> = set_read_only(Flavour::MySql, true)
        .into_iter()
        .map(|s| s.sql)
        .collect();
    assert_eq!(on, ["SET GLOBAL super_read_only = ON"]);
    let off: Vec<String> = set_read_only(Flavour::MySql, false)
        .into_iter()
        .map(|s| s.sql)
        .collect();
    assert_eq!(
        off,
        [
            "SET GLOBAL super_read_only = OFF",
            "SET GLOBAL read_only = OFF"
        ]
    );
    let maria: Vec<String> = set_read_only(Flavour::MariaDb, true)
        .into_iter()
        .map(|s| s.sql)
        .collect();
    assert_eq!(maria, ["SET GLOBAL read_only = ON"]);
    let fence: Vec<String> = fence(Flavour::MySql).into_iter().map(|s| s.sql).collect();
    assert_eq!(
        fence,
        ["SET PERSIST super_read_only = ON"],
        "survives a restart"
    );
    assert_eq!(replica_status(Flavour::MySql), "SHOW REPLICA STATUS");
    assert_eq!(replica_status(Flavour::MariaDb), "SHOW SLAVE STATUS");
    assert!(variables(Flavour::MySql, "8.4.3").contains("@@log_replica_updates"));
    assert!(variables(Flavour::MySql, "8.0.25").contains("@@log_slave_updates"));
    assert!(variables(Flavour::MySql, "8.0.36").contains("@@gtid_executed"));
    let m = variables(Flavour::MariaDb, "10.11.14-MariaDB");
    assert!(m.contains("@@gtid_current_pos") && m.contains("@@gtid_binlog_state"));
    assert!(
        !m.contains("super_read_only"),
        "MariaDB has no super_read_only"
    );
    assert_eq!(stop_replica().sql, "STOP REPLICA");
    assert_eq!(reset_replica_all().sql, "RESET REPLICA ALL");
}

#[test]
fn waiting_for_the_relay_log_and_errant_checks_quote_their_positions() {
    assert_eq!(
        wait_for_position(Flavour::MariaDb, "0-1-105", 30).sql,
        "SELECT MASTER_GTID_WAIT('0-1-105', 30)"
    );
    assert_eq!(
        wait_for_position(Flavour::MySql, "uuid:1-5", 30).sql,
        "SELECT WAIT_FOR_EXECUTED_GTID_SET('uuid:1-5', 30)"
    );
    assert_eq!(
        gtid_subtract("a:1-9", "a:1-5").sql,
        "SELECT GTID_SUBTRACT('a:1-9', 'a:1-5')"
    );
    assert_eq!(literal("a\\b'c"), "'a\\\\b''c'");
}

#[test]
fn the_heartbeat_writes_only_ts_and_server_id_in_pt_heartbeats_format() {
    let w = write_heartbeat("dake.heartbeat", true).sql;
    assert!(w.starts_with("INSERT INTO dake.heartbeat (ts, server_id) VALUES"));
    assert!(w.contains("UTC_TIMESTAMP(6)") && w.contains("'%Y-%m-%dT%H:%i:%s.%f'"));
    assert!(
        write_heartbeat("dake.heartbeat", false)
            .sql
            .contains("NOW(6)")
    );
    let create = create_heartbeat_table("dake.heartbeat");
    assert_eq!(create[0].sql, "CREATE DATABASE IF NOT EXISTS dake");
    assert!(
        create[1]
            .sql
            .contains("server_id int unsigned NOT NULL PRIMARY KEY")
    );
}

#[test]
fn grants_name_each_flavours_privileges() {
    let maria = grants(Flavour::MariaDb, "dake", "%", "dake.heartbeat").join("\n");
    assert!(
        maria.contains("GRANT PROCESS, RELOAD, SLAVE MONITOR, BINLOG MONITOR, READ_ONLY ADMIN")
    );
    assert!(maria.contains("GRANT SELECT, INSERT, UPDATE ON dake.heartbeat TO 'dake'@'%';"));
    let my = grants(Flavour::MySql, "dake", "10.0.%", "dake.heartbeat").join("\n");
    assert!(my.contains("SYSTEM_VARIABLES_ADMIN, REPLICATION_SLAVE_ADMIN, CONNECTION_ADMIN"));
    assert!(my.contains("GRANT SELECT ON performance_schema.global_status TO 'dake'@'10.0.%';"));
    assert!(
        my.starts_with("CREATE USER IF NOT EXISTS 'dake'@'10.0.%' IDENTIFIED BY '<password>';")
    );
}
