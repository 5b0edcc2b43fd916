//! Command-line behaviour of the real binary.
//!
//! Every run goes through [`Sandbox`], which points HOME and the XDG config/state/data/cache
//! dirs at a fresh temporary directory, so the developer's own `~/.config/dake/config.toml`
//! (or log) never affects or is touched by these tests.

use std::collections::BTreeSet;
use std::path::PathBuf;

use assert_cmd::Command;

use crate::sandbox::Sandbox;
use serde_json::Value;

/// A fresh sandbox and a `dake` command inside it; keep the sandbox alive while the command runs.
fn dake() -> (Command, Sandbox) {
    let sandbox = Sandbox::new();
    (sandbox.dake(), sandbox)
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8")
}

/// Runs `dake status --json <args>` in a fresh sandbox: the parsed report and the exit code.
fn status_json(args: &[&str]) -> (Value, i32) {
    let (mut cmd, _sandbox) = dake();
    let out = cmd.arg("status").arg("--json").args(args).output().unwrap();
    json_of(&out)
}

fn json_of(out: &std::process::Output) -> (Value, i32) {
    let stdout = stdout_of(out);
    let value: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{stdout}\nstderr:\n{}",
            stderr_of(out)
        )
    });
    (value, out.status.code().expect("exited normally"))
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

fn instance<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no instance {name} in {report:#}"))
}

fn incident<'a>(report: &'a Value, kind: &str) -> &'a Value {
    report["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} incident in {:#}", report["incidents"]))
}

// ---------------------------------------------------------------------------------------------
// 1. status: text output and monitoring-plugin exit codes

fn status_text(at: &str) -> (String, i32) {
    let (mut cmd, _sandbox) = dake();
    let out = cmd.args(["status", "--at", at]).output().unwrap();
    assert!(
        out.stderr.is_empty(),
        "status wrote to stderr: {}",
        stderr_of(&out)
    );
    (stdout_of(&out), out.status.code().expect("exited normally"))
}

#[test]
fn status_at_start_is_ok_exit_0() {
    let (stdout, code) = status_text("0");
    let first = stdout.lines().next().unwrap_or_default();
    assert_eq!(code, 0, "{stdout}");
    assert!(first.starts_with("DAKE OK"), "{first}");
}

#[test]
fn status_with_slow_web_is_warning_exit_1() {
    let (stdout, code) = status_text("90");
    let first = stdout.lines().next().unwrap_or_default();
    assert_eq!(code, 1, "{stdout}");
    assert!(first.starts_with("DAKE WARNING"), "{first}");
    assert!(first.contains("web-3"), "{first}");
}

#[test]
fn status_with_master_down_is_critical_exit_2() {
    let (stdout, code) = status_text("300");
    let first = stdout.lines().next().unwrap_or_default();
    assert_eq!(code, 2, "{stdout}");
    assert!(first.starts_with("DAKE CRITICAL"), "{first}");
    assert!(first.contains("master"), "{first}");
    // The slow web server is still there too.
    assert!(first.contains("web-3"), "{first}");
}

/// In Japanese the table reads in Japanese, and the first line stays what monitoring parses.
#[test]
fn status_and_help_in_japanese_keep_the_monitoring_line() {
    let (mut cmd, _sandbox) = dake();
    let out = cmd
        .args(["--lang", "ja", "status", "--at", "90"])
        .output()
        .unwrap();
    let stdout = stdout_of(&out);
    let first = stdout.lines().next().unwrap_or_default();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        first.starts_with("DAKE WARNING - 遅い Web サーバー web-3：p99 "),
        "{first}"
    );
    assert!(stdout.contains("昇格可（最適）"), "{stdout}");
    // The locale alone, and the help printed while the command line is parsed.
    let (mut cmd, _sandbox) = dake();
    let out = cmd
        .env("LANG", "ja_JP.UTF-8")
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = stdout_of(&out);
    assert!(help.contains("使い方：dake run"), "{help}");
    assert!(help.contains("破壊的なステップも実行する"), "{help}");
    assert!(!help.contains("Take destructive steps"), "{help}");
}

// ---------------------------------------------------------------------------------------------
// 2. status --json: documented, stable shape

const TOP_KEYS: &[&str] = &[
    "schema",
    "status",
    "exit_code",
    "fleet",
    "provider",
    "region",
    "taken_at",
    "incidents",
    "instances",
    "replication",
];
const INSTANCE_KEYS: &[&str] = &[
    "id",
    "name",
    "role",
    "az",
    "state",
    "system_check",
    "instance_check",
    "cpu_pct",
    "p50_ms",
    "p99_ms",
    "target_health",
    "disposable",
];
const INCIDENT_KEYS: &[&str] = &[
    "kind",
    "severity",
    "instance_id",
    "instance_name",
    "summary",
    "suggested_playbooks",
    "since",
];
const REPLICATION_KEYS: &[&str] = &[
    "endpoint",
    "endpoint_target_id",
    "master_id",
    "master_heartbeat_age_secs",
    "replicas",
];
const REPLICA_KEYS: &[&str] = &[
    "instance_id",
    "name",
    "behind_master_secs",
    "heartbeat_lag_secs",
    "lag_source",
    "transactions",
    "rejection",
    "best",
];

/// Checks every key of the documented shape, at any point of the scenario.
fn assert_shape(r: &Value, code: i32) {
    assert_eq!(keys(r), set(TOP_KEYS), "top level of {r:#}");
    assert_eq!(r["schema"], 1);
    assert_eq!(
        r["exit_code"], code,
        "exit_code must be the process exit code"
    );
    let expected_status = ["ok", "warning", "critical", "unknown"][code as usize];
    assert_eq!(r["status"], expected_status);
    assert_eq!(r["provider"], "sim");
    assert_eq!(r["region"], "ap-northeast-1");
    let taken_at = r["taken_at"].as_str().expect("taken_at is a string");
    chrono::DateTime::parse_from_rfc3339(taken_at)
        .unwrap_or_else(|e| panic!("taken_at {taken_at:?} is not RFC 3339: {e}"));

    let instances = r["instances"].as_array().expect("instances is an array");
    assert_eq!(instances.len(), 7);
    for i in instances {
        assert_eq!(keys(i), set(INSTANCE_KEYS), "instance {i:#}");
        let id = i["id"].as_str().unwrap();
        assert!(
            id.starts_with("i-0")
                && id.len() == 19
                && id[2..].chars().all(|c| c.is_ascii_hexdigit()),
            "EC2-like instance id: {id}"
        );
        let disposable = i["disposable"].as_bool().expect("disposable is a bool");
        match i["role"].as_str().unwrap() {
            "web" => assert!(disposable, "web servers are disposable: {i:#}"),
            "db-master" => assert!(!disposable, "the master is not disposable: {i:#}"),
            "db-replica" => {}
            other => panic!("unknown role {other}"),
        }
    }
    let roles: Vec<&str> = instances
        .iter()
        .map(|i| i["role"].as_str().unwrap())
        .collect();
    let count = |role: &str| roles.iter().filter(|r| **r == role).count();
    assert_eq!(
        (count("web"), count("db-master"), count("db-replica")),
        (4, 1, 2),
        "{roles:?}"
    );
    let ids: BTreeSet<&str> = instances
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 7, "instance ids are unique");

    for inc in r["incidents"].as_array().expect("incidents is an array") {
        assert_eq!(keys(inc), set(INCIDENT_KEYS), "incident {inc:#}");
        let since = inc["since"].as_str().unwrap();
        chrono::DateTime::parse_from_rfc3339(since)
            .unwrap_or_else(|e| panic!("since {since:?} is not RFC 3339: {e}"));
        let id = inc["instance_id"].as_str().unwrap();
        assert!(ids.contains(id), "incident names a fleet instance: {id}");
    }

    let rep = &r["replication"];
    assert_eq!(keys(rep), set(REPLICATION_KEYS), "replication {rep:#}");
    let replicas = rep["replicas"].as_array().expect("replicas is an array");
    assert_eq!(replicas.len(), 2);
    for c in replicas {
        assert_eq!(keys(c), set(REPLICA_KEYS), "replica {c:#}");
    }
}

#[test]
fn status_json_shape_at_start() {
    let (r, code) = status_json(&["--at", "0"]);
    assert_eq!(code, 0);
    assert_shape(&r, code);
    assert_eq!(r["fleet"], "drill");
    assert_eq!(r["incidents"], Value::Array(vec![]));
    let master = instance(&r, "db-master");
    assert!(master["p99_ms"].is_number(), "a live master has latency");
    assert_eq!(r["replication"]["master_id"], master["id"]);
    assert_eq!(r["replication"]["endpoint_target_id"], master["id"]);
    assert_eq!(r["replication"]["endpoint"], "db.drill.internal");
}

#[test]
fn status_json_shape_with_both_incidents() {
    let (r, code) = status_json(&["--at", "300"]);
    assert_eq!(code, 2);
    assert_shape(&r, code);
    assert_eq!(r["incidents"].as_array().unwrap().len(), 2, "{r:#}");

    let master = instance(&r, "db-master");
    let down = incident(&r, "master-down");
    assert_eq!(down["severity"], "critical");
    assert_eq!(down["instance_id"], master["id"]);
    assert_eq!(down["instance_name"], "db-master");
    assert_eq!(
        down["suggested_playbooks"],
        serde_json::json!(["db-promote", "db-ebs-move"])
    );

    let web3 = instance(&r, "web-3");
    let slow = incident(&r, "slow-web");
    assert_eq!(slow["severity"], "warning");
    assert_eq!(slow["instance_id"], web3["id"]);
    assert_eq!(slow["instance_name"], "web-3");
    assert_eq!(
        slow["suggested_playbooks"],
        serde_json::json!(["web-replace"])
    );

    // A master that is down answers no queries: no latency datapoints, null rather than NaN/0.
    assert_eq!(master["p99_ms"], Value::Null, "{master:#}");

    let replicas = r["replication"]["replicas"].as_array().unwrap();
    let best: Vec<&Value> = replicas.iter().filter(|c| c["best"] == true).collect();
    assert_eq!(
        best.len(),
        1,
        "exactly one best replica: {}",
        r["replication"]
    );
    assert_eq!(best[0]["name"], "db-replica-1");
    assert_eq!(best[0]["rejection"], Value::Null);
    assert_eq!(best[0]["instance_id"], instance(&r, "db-replica-1")["id"]);
}

#[test]
fn status_json_warning_names_web_3_only() {
    let (r, code) = status_json(&["--at", "90"]);
    assert_eq!(code, 1);
    assert_shape(&r, code);
    let incidents = r["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{}", r["incidents"]);
    assert_eq!(incidents[0]["kind"], "slow-web");
    assert_eq!(incidents[0]["instance_name"], "web-3");
}

// ---------------------------------------------------------------------------------------------
// 3. determinism

/// The report without its wall-clock parts (`taken_at`, incidents' `since`).
fn without_wall_clock(mut r: Value) -> Value {
    r.as_object_mut().unwrap().remove("taken_at").unwrap();
    for inc in r["incidents"].as_array_mut().unwrap() {
        inc.as_object_mut().unwrap().remove("since").unwrap();
    }
    r
}

#[test]
fn same_seed_gives_the_same_snapshot() {
    let args = ["--seed", "5", "--at", "240"];
    let (a, code_a) = status_json(&args);
    let (b, code_b) = status_json(&args);
    assert_eq!(code_a, code_b);
    assert!(
        !a["incidents"].as_array().unwrap().is_empty(),
        "at 240 s there is something to compare"
    );
    assert_eq!(without_wall_clock(a.clone()), without_wall_clock(b));

    let (c, _) = status_json(&["--seed", "6", "--at", "240"]);
    assert_ne!(without_wall_clock(a.clone()), without_wall_clock(c.clone()));
    let ids = |r: &Value| -> Vec<String> {
        r["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_ne!(ids(&a), ids(&c), "another seed makes other instance ids");
}

// ---------------------------------------------------------------------------------------------
// 4. config errors: one line naming file, line and key; exit 2; nothing on stdout

/// Runs `dake status --config <file with text>`; returns (stderr, path) after checking the
/// common shape of a config error.
fn config_error(text: &str) -> (String, PathBuf) {
    let sandbox = Sandbox::new();
    let path = sandbox.write("user.toml", text);
    let out = sandbox
        .dake()
        .args(["status", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout: {}",
        stdout_of(&out)
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("dake: "), "{stderr}");
    (stderr, path)
}

#[test]
fn config_unknown_key_names_file_line_and_key() {
    let (stderr, path) = config_error("[fleet]\nname = \"x\"\nnmae = \"y\"\n");
    let expected = format!("{}:3: key `nmae`", path.display());
    assert!(stderr.contains(&expected), "want {expected:?} in {stderr}");
}

#[test]
fn config_type_error_names_line_and_key() {
    let (stderr, path) = config_error("[sim]\nseed = 3\nspeed = \"fast\"\n");
    let expected = format!("{}:3: key `speed`", path.display());
    assert!(stderr.contains(&expected), "want {expected:?} in {stderr}");
}

#[test]
fn config_slow_web_on_unknown_server_names_target() {
    let text = "\
[sim]
seed = 2

[[sim.incident]]
kind = \"slow-web\"
at_secs = 10
target = \"web-9\"
";
    let (stderr, path) = config_error(text);
    let expected = format!("{}:7: key `target`", path.display());
    assert!(stderr.contains(&expected), "want {expected:?} in {stderr}");
    assert!(stderr.contains("web-9"), "{stderr}");
}

#[test]
fn config_missing_file_is_exit_2_naming_it() {
    let (mut cmd, sandbox) = dake();
    let path = sandbox.path().join("no-such-dir").join("absent.toml");
    let out = cmd
        .args(["status", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", stdout_of(&out));
    assert!(
        stderr.contains(&path.display().to_string()),
        "path in {stderr}"
    );
}

#[test]
fn valid_user_config_overrides_only_what_it_names() {
    let sandbox = Sandbox::new();
    let path = sandbox.write("user.toml", "[fleet]\nname = \"shop\"\n");
    let out = sandbox
        .dake()
        .args(["status", "--json", "--at", "0", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let (r, code) = json_of(&out);
    assert_eq!(code, 0, "{}", stderr_of(&out));
    assert_eq!(r["fleet"], "shop");
    assert_eq!(r["region"], "ap-northeast-1", "defaults still apply");
    assert_eq!(r["instances"].as_array().unwrap().len(), 7);
}

// ---------------------------------------------------------------------------------------------
// 5. XDG default config

#[test]
fn xdg_config_file_is_used_without_config_flag() {
    let sandbox = Sandbox::new();
    sandbox.write("config/dake/config.toml", "[fleet]\nname = \"from-xdg\"\n");
    let out = sandbox.dake().args(["status", "--json"]).output().unwrap();
    let (r, code) = json_of(&out);
    assert_eq!(code, 0, "{}", stderr_of(&out));
    assert_eq!(r["fleet"], "from-xdg");
}

#[test]
fn without_any_config_file_built_in_defaults_apply() {
    // Also proves the sandbox isolates: a developer's own config would change the fleet name.
    let (r, code) = status_json(&[]);
    assert_eq!(code, 0);
    assert_eq!(r["fleet"], "drill");
}

#[test]
fn bad_xdg_config_is_reported_against_its_path() {
    let sandbox = Sandbox::new();
    let path = sandbox.write("config/dake/config.toml", "[fleet]\nnmae = \"x\"\n");
    let out = sandbox.dake().arg("status").output().unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let expected = format!("{}:2: key `nmae`", path.display());
    assert!(stderr.contains(&expected), "want {expected:?} in {stderr}");
}

#[test]
fn log_goes_to_the_xdg_state_dir() {
    let sandbox = Sandbox::new();
    sandbox.dake().arg("status").assert().success();
    let log = sandbox.state_home().join("dake").join("dake.log");
    assert!(log.is_file(), "expected a log at {}", log.display());
}

// ---------------------------------------------------------------------------------------------
// 6. non-TTY refusal

#[test]
fn console_refuses_when_stdout_is_not_a_tty() {
    let (mut cmd, _sandbox) = dake();
    let out = cmd.output().unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`dake status`"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "nothing drawn on stdout: {:?}",
        stdout_of(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// 7. unknown provider

#[test]
fn unknown_provider_is_a_usage_error_listing_valid_ones() {
    let (mut cmd, _sandbox) = dake();
    let out = cmd.args(["--provider", "foo", "status"]).output().unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", stdout_of(&out));
    assert!(stderr.contains("foo"), "{stderr}");
    assert!(stderr.contains("sim"), "valid providers listed: {stderr}");
}

// ---------------------------------------------------------------------------------------------
// 8. config --print-default, completions, --speed

#[test]
fn print_default_is_commented_toml_with_the_drill_fleet() {
    let (mut cmd, _sandbox) = dake();
    let out = cmd.args(["config", "--print-default"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = stdout_of(&out);
    assert!(
        text.lines().any(|l| l.trim_start().starts_with('#')),
        "has comments"
    );
    let table: toml::Table = toml::from_str(&text).expect("valid TOML");
    assert_eq!(table["fleet"]["name"].as_str(), Some("drill"));
}

#[test]
fn print_default_is_itself_a_valid_config_file() {
    let sandbox = Sandbox::new();
    let out = sandbox
        .dake()
        .args(["config", "--print-default"])
        .output()
        .unwrap();
    let path = sandbox.write("copy.toml", &stdout_of(&out));
    let out = sandbox
        .dake()
        .args(["status", "--json", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let (r, code) = json_of(&out);
    assert_eq!(code, 0, "{}", stderr_of(&out));
    assert_eq!(r["fleet"], "drill");
}

#[test]
fn bash_completions_mention_the_commands() {
    let (mut cmd, _sandbox) = dake();
    let out = cmd.args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = stdout_of(&out);
    assert!(text.contains("dake"), "{text}");
    assert!(text.contains("status"), "{text}");
}

#[test]
fn zero_speed_is_rejected() {
    let (mut cmd, _sandbox) = dake();
    let out = cmd.args(["status", "--speed", "0"]).output().unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", stdout_of(&out));
    assert!(
        stderr.starts_with("dake: ") && stderr.contains("speed"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// 9. config: the effective configuration

#[test]
fn config_prints_effective_config_with_overrides() {
    let (mut cmd, _sandbox) = dake();
    let out = cmd.args(["config", "--seed", "9"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let table: toml::Table = toml::from_str(&stdout_of(&out)).expect("valid TOML");
    assert_eq!(table["sim"]["seed"].as_integer(), Some(9));
    assert_eq!(table["fleet"]["name"].as_str(), Some("drill"));
}

#[test]
fn effective_config_reflects_the_user_file_and_loads_back() {
    let sandbox = Sandbox::new();
    let user = sandbox.write("user.toml", "[fleet]\nname = \"shop\"\n");
    let out = sandbox
        .dake()
        .args(["config", "--seed", "9", "--config"])
        .arg(&user)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = stdout_of(&out);
    let table: toml::Table = toml::from_str(&text).expect("valid TOML");
    assert_eq!(table["fleet"]["name"].as_str(), Some("shop"));
    assert_eq!(table["sim"]["seed"].as_integer(), Some(9));

    // What `dake config` prints is a config file that gives the same fleet back.
    let copy = sandbox.write("effective.toml", &text);
    let out = sandbox
        .dake()
        .args(["status", "--json", "--config"])
        .arg(&copy)
        .output()
        .unwrap();
    let (r, code) = json_of(&out);
    assert_eq!(code, 0, "{}", stderr_of(&out));
    assert_eq!(r["fleet"], "shop");
    let (seeded, _) = status_json(&["--seed", "9"]);
    assert_eq!(r["instances"][0]["id"], seeded["instances"][0]["id"]);
}

// ---------------------------------------------------------------------------------------------
// Bugs once found, kept from coming back.

#[test]
fn missing_config_file_error_states_the_cause_once() {
    let (mut cmd, sandbox) = dake();
    let path = sandbox.path().join("absent.toml");
    let out = cmd
        .args(["status", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(stderr.matches("os error").count(), 1, "{stderr}");
}

#[test]
fn infinite_at_is_rejected_quickly() {
    let (mut cmd, _sandbox) = dake();
    // Only a guard: an infinite `--at` once stepped the fleet forever.
    let out = cmd
        .args(["status", "--at", "inf"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("--at"), "{}", stderr_of(&out));
}

#[test]
fn sql_grants_follow_the_configured_account_and_flavour() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "config/dake/config.toml",
        "[database]\nuser = \"ops_dake\"\nheartbeat_table = \"ops.hb\"\n",
    );
    let out = sandbox.dake().args(["sql-grants"]).output().unwrap();
    let text = stdout_of(&out);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(text.contains("TO 'ops_dake'@'%';"), "{text}");
    assert!(
        text.contains("SLAVE MONITOR") && text.contains("ON ops.hb TO"),
        "{text}"
    );
    let out = sandbox
        .dake()
        .args(["sql-grants", "--flavour", "mysql", "--from", "10.0.%"])
        .output()
        .unwrap();
    let text = stdout_of(&out);
    assert!(
        text.contains("SYSTEM_VARIABLES_ADMIN") && text.contains("'ops_dake'@'10.0.%'"),
        "{text}"
    );
}

#[test]
fn a_heartbeat_with_a_readable_option_file_is_refused_before_connecting() {
    let sandbox = Sandbox::new();
    let cnf = sandbox.write("my.cnf", "[client]\npassword = secret-pw\n");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cnf, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    sandbox.write(
        "config/dake/config.toml",
        &format!(
            "[database]\npassword_env = \"\"\noption_file = \"{}\"\n",
            cnf.display()
        ),
    );
    let out = sandbox.dake().args(["heartbeat"]).output().unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("readable by group or others (mode 644)"),
        "{err}"
    );
    assert!(!err.contains("secret-pw"), "{err}");
}

/// What dake reports of a bad command line or a bad config file reads in Japanese too, and
/// still names the file, the line and the key.
#[test]
fn errors_in_japanese_name_the_file_line_and_key() {
    let (mut cmd, _sandbox) = dake();
    let out = cmd
        .args(["--lang", "ja", "--provider", "gcp"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = stderr_of(&out);
    assert!(
        stderr.starts_with(
            "エラー：'--provider <PROVIDER>' に無効な値 'gcp'\n  [取りうる値：sim, aws]"
        ),
        "{stderr}"
    );
    let (mut cmd, sandbox) = dake();
    let file = sandbox.write("bad.toml", "[sim]\nspeed = 0\n");
    let out = cmd
        .env("LANG", "ja_JP.UTF-8")
        .args(["--config", file.to_str().unwrap(), "status"])
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "dake: {}:2：キー `speed`：0 より大きく 10000 以下",
            file.display()
        )
    );
    let (mut cmd, _sandbox) = dake();
    let out = cmd
        .args(["--lang", "ja", "drill", "--list"])
        .output()
        .unwrap();
    let list = stdout_of(&out);
    assert!(list.starts_with("slow-web "), "{list}");
    assert!(!list.contains("A web server"), "{list}");
}
