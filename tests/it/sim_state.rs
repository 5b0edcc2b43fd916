//! The drill fleet outlives the process that runs it: a run stopped in one `dake` process is
//! resumed in another, which must see the instances the first one made.

use crate::sandbox::{Sandbox, stdout_json};
use serde_json::Value;

/// Where the built-in fleet (`drill`) is saved.
fn saved_fleet(sandbox: &Sandbox) -> String {
    let path = sandbox.state_home().join("dake").join("sim-drill.json");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: the drill fleet was not saved: {e}", path.display()))
}

/// `dake run web-replace --target web-3 --inject slow-web --speed 500 --json` without --yes:
/// it stops at the first destructive step (exit 1, run left unfinished). Returns the id of the
/// replacement it launched, read from the saved fleet.
fn run_until_destructive_step(sandbox: &Sandbox) -> String {
    let first = sandbox
        .dake()
        .args(["run", "web-replace", "--target", "web-3"])
        .args(["--inject", "slow-web", "--speed", "500", "--json"])
        .output()
        .unwrap();
    let report = stdout_json(&first);
    assert_eq!(first.status.code(), Some(1), "{report:#}");
    assert_eq!(report["outcome"], "refused", "{report:#}");
    assert!(
        report["message"]
            .as_str()
            .is_some_and(|m| m.contains("--yes")),
        "{report:#}"
    );
    let fleet: Value = serde_json::from_str(&saved_fleet(sandbox)).unwrap();
    let launched: Vec<&Value> = fleet["fleet"]["instances"]
        .as_array()
        .expect("instances in the saved fleet")
        .iter()
        .map(|s| &s["inst"])
        .filter(|i| i["tags"]["dake:run"] == report["run_id"])
        .collect();
    assert_eq!(launched.len(), 1, "one replacement saved: {launched:#?}");
    launched[0]["id"].as_str().unwrap().to_string()
}

/// `dake resume --yes --speed 500 --json` in a second process: (exit code, report).
fn resume(sandbox: &Sandbox) -> (Option<i32>, Value) {
    let second = sandbox
        .dake()
        .args(["resume", "--yes", "--speed", "500", "--json"])
        .output()
        .unwrap();
    (second.status.code(), stdout_json(&second))
}

fn step_status(report: &Value, name: &str) -> Value {
    report["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["name"] == name))
        .map(|s| s["status"].clone())
        .unwrap_or_else(|| panic!("no step {name}: {report:#}"))
}

#[test]
fn a_run_stopped_in_one_process_resumes_in_another_on_the_same_drill_fleet() {
    let sandbox = Sandbox::new();
    let replacement = run_until_destructive_step(&sandbox);

    let (code, report) = resume(&sandbox);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["outcome"], "finished", "{report:#}");
    assert_eq!(
        report["steps"].as_array().map(Vec::len),
        Some(6),
        "{report:#}"
    );
    // The restart does not cure this server (by design of the drill): its wait runs out and
    // the playbook goes on. Every other step is done, the resumed ones included.
    assert_eq!(
        step_status(&report, "restart-app"),
        "timed-out",
        "{report:#}"
    );
    for name in [
        "compare",
        "launch-replacement",
        "register",
        "deregister",
        "dispose",
    ] {
        assert_eq!(step_status(&report, name), "done", "{name}: {report:#}");
    }
    // The second process saved its fleet after its own calls: the replacement the first one
    // launched is there, in service. A fresh fleet would not have it.
    let fleet: Value = serde_json::from_str(&saved_fleet(&sandbox)).unwrap();
    let serving: Vec<&str> = fleet["fleet"]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["inst"])
        .filter(|i| i["target"] == "healthy")
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert!(serving.contains(&replacement.as_str()), "{serving:?}");
}

/// The same run with registering made destructive: it stops after the launch, and the resumed
/// process's very first call is on the instance the first process launched. Without the saved
/// fleet that instance does not exist ("… is not in the fleet any more"); without catching the
/// fleet up with the journal it would still be booting.
#[test]
fn the_resumed_process_registers_the_instance_the_first_one_launched() {
    let sandbox = Sandbox::new();
    let builtin = include_str!("../../assets/runbooks/web-replace.toml");
    let register = "name = \"register\"\n";
    assert!(builtin.contains(register));
    let dir = sandbox.path().join("config").join("dake").join("runbooks");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("web-replace.toml"),
        builtin.replace(register, &format!("{register}destructive = true\n")),
    )
    .unwrap();
    let replacement = run_until_destructive_step(&sandbox);

    let (code, report) = resume(&sandbox);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["outcome"], "finished", "{report:#}");
    assert_eq!(step_status(&report, "register"), "done", "{report:#}");
    let register_calls = report["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["name"] == "register"))
        .map(|s| s["calls"].to_string())
        .unwrap_or_default();
    assert!(register_calls.contains(&replacement), "{report:#}");
}

#[test]
fn fenced_by_other_means_is_refused_for_a_run_that_did_not_stop_at_a_fence() {
    let sandbox = Sandbox::new();
    run_until_destructive_step(&sandbox);
    let declared = sandbox
        .dake()
        .args([
            "resume",
            "--yes",
            "--fenced-by-other-means",
            "--speed",
            "500",
        ])
        .output()
        .unwrap();
    assert_eq!(declared.status.code(), Some(2));
    let err = String::from_utf8_lossy(&declared.stderr);
    assert!(
        err.contains("did not stop at a failed fence step") && err.contains("nothing declared"),
        "{err}"
    );
    // Nothing was recorded: the run resumes as it stood.
    let (code, report) = resume(&sandbox);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["outcome"], "finished", "{report:#}");
}
