use super::*;

#[test]
fn builtin_defaults_parse_and_validate() {
    let c = Config::builtin();
    assert_eq!(c.fleet.name, "drill");
    assert_eq!(c.sim.web_servers, 4);
    assert_eq!(c.sim.incidents.len(), 2);
}

#[test]
fn the_aws_example_is_a_valid_config() {
    let text = include_str!("../../assets/fleet.aws.example.toml");
    let c = Config::from_user_toml(text, "assets/fleet.aws.example.toml").unwrap();
    assert_eq!(c.fleet.name, "shop-prod");
    assert_eq!(c.aws.db_endpoint_kind, EndpointKind::Route53);
    assert_eq!(c.aws.heartbeat_metric, "HeartbeatTimestamp");
}

#[test]
fn repoint_command_must_name_the_master() {
    let err = Config::from_user_toml(
        "[aws]\nrepoint_command = \"mysql -e 'START REPLICA'\"\n",
        "u.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("u.toml:2: key `repoint_command`"), "{err}");
}

#[test]
fn an_attempt_may_not_outlast_its_call() {
    let err = Config::from_user_toml(
        "[aws]\ncall_timeout_secs = 10\nattempt_timeout_secs = 30\n",
        "u.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("u.toml:3: key `attempt_timeout_secs`"),
        "{err}"
    );
    let err = Config::from_user_toml("[aws]\ncall_timeout_secs = 0\n", "u.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("u.toml:2: key `call_timeout_secs`"),
        "{err}"
    );
}

#[test]
fn aws_history_is_bounded() {
    assert_eq!(Config::builtin().aws.history, 120);
    for bad in ["1", "1441"] {
        let err = Config::from_user_toml(&format!("[aws]\nhistory = {bad}\n"), "u.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("u.toml:2: key `history`"), "{err}");
    }
}

#[test]
fn user_file_overrides_only_what_it_names() {
    let c =
        Config::from_user_toml("[fleet]\nname = \"shop\"\n[sim]\nseed = 7\n", "u.toml").unwrap();
    assert_eq!(c.fleet.name, "shop");
    assert_eq!(c.sim.seed, 7);
    assert_eq!(c.fleet.region, "ap-northeast-1");
    assert_eq!(c.sim.incidents.len(), 2);
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let err = Config::from_user_toml("[fleet]\nname = \"x\"\nnmae = \"y\"\n", "u.toml")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("u.toml:3: key `nmae`"), "{err}");
}

#[test]
fn a_retired_key_says_what_replaced_it() {
    let err = Config::from_user_toml(
        "[aws]\nmetrics_namespace = \"Shop\"\nreplica_lag_metric = \"Lag\"\n",
        "u.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("u.toml:3: key `replica_lag_metric`"),
        "{err}"
    );
    assert!(err.contains("`heartbeat_metric`"), "{err}");
}

#[test]
fn unknown_table_is_an_error() {
    let err = Config::from_user_toml("[flete]\nname = \"x\"\n", "u.toml")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("u.toml:1: key `flete`"), "{err}");
}

#[test]
fn wrong_type_names_the_key_on_its_line() {
    let err = Config::from_user_toml("[sim]\n\nspeed = \"fast\"\n", "u.toml")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("u.toml:3: key `speed`"), "{err}");
}

#[test]
fn syntax_error_names_its_line() {
    let err = Config::from_user_toml("[fleet]\nname = \n", "u.toml")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("u.toml:2:"), "{err}");
}

#[test]
fn semantic_errors_name_the_key() {
    let err = Config::from_user_toml("[detect]\nslow_web_factor = 0.5\n", "u.toml")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("u.toml:2: key `slow_web_factor`"), "{err}");
    let err = Config::from_user_toml(
        "[sim]\nincident = [{ kind = \"slow-web\", at_secs = 1, target = \"web-9\" }]\n",
        "u.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("key `target`") && err.contains("web-9"),
        "{err}"
    );
}

#[test]
fn database_hosts_and_table_are_checked() {
    let c = Config::from_user_toml(
        "[database]\nsource = \"mysql\"\n[database.hosts]\ndb-master = \"127.0.0.1:13306\"\n",
        "u.toml",
    )
    .unwrap();
    assert_eq!(c.database.source, DbSource::Mysql);
    assert_eq!(c.database.hosts["db-master"], "127.0.0.1:13306");
    let err = Config::from_user_toml("[database.hosts]\n\"i-1\" = \"h:port\"\n", "u.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("u.toml:2: key `i-1`: `h:port` is not host:port"),
        "{err}"
    );
    let err = Config::from_user_toml("[database]\nheartbeat_table = \"hb; DROP\"\n", "u.toml")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("u.toml:2: key `heartbeat_table`"), "{err}");
    let err = Config::from_user_toml("[database]\nsource = \"sql\"\n", "u.toml")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("u.toml:2: key `source`"), "{err}");
}

#[test]
fn host_port_reads_every_spelling() {
    assert_eq!(host_port("db", 3306), Ok(("db".into(), 3306)));
    assert_eq!(
        host_port("10.0.0.5:3307", 3306),
        Ok(("10.0.0.5".into(), 3307))
    );
    assert_eq!(host_port("[::1]:3310", 3306), Ok(("::1".into(), 3310)));
    assert_eq!(host_port("::1", 3306), Ok(("::1".into(), 3306)));
    assert!(host_port(":3306", 3306).is_err());
    assert!(host_port("db:0", 3306).is_err());
}
