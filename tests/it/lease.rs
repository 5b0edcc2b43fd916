//! One failover per tier, whoever runs it: two `dake` processes race for the database tier of
//! the same drill fleet and exactly one proceeds; a lease its dead holder left is taken over
//! only by naming that run; a failover from another machine (its own journals) inside the
//! anti-flapping window is refused by the record the first one left beside the lease.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::fixtures::epoch;
use crate::playbooks::{config, promote_at};
use crate::sandbox::Sandbox;
use dake::config::IncidentKind;
use dake::domain::FleetSnapshot;
use dake::domain::call::{CallOutcome, ProviderCall};
use dake::provider::sim::SimFleet;
use dake::runbook::engine::{Phase, Run};
use dake::runbook::event::{Effect, Event};
use dake::runbook::overrides::Override;
use dake::runbook::plan::var;
use serde_json::Value;

const RACE_LIMIT: Duration = Duration::from_secs(120);

fn promote(sandbox: &Sandbox, config: &std::path::Path, extra: &[&str]) -> Child {
    promote_on(sandbox.dake_process(), config, "db-master", extra)
}

/// `dake run db-promote` on `target` with the master down, as `dake` (a machine) runs it.
fn promote_on(
    mut dake: std::process::Command,
    config: &std::path::Path,
    target: &str,
    extra: &[&str],
) -> Child {
    dake.arg("--config")
        .arg(config)
        .args(["run", "db-promote", "--target", target])
        .args(["--inject", "master-down", "--yes", "--json"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn report(child: Child) -> (Option<i32>, Value) {
    let out = child.wait_with_output().unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), json)
}

fn lease_file(sandbox: &Sandbox) -> std::path::PathBuf {
    sandbox
        .state_home()
        .join("dake")
        .join("lease-drill-db.json")
}

#[test]
fn two_consoles_race_for_a_tier_and_exactly_one_proceeds() {
    let sandbox = Sandbox::new();
    // Real time: the winner is still failing over when the loser is told who holds the tier.
    let config = sandbox.write(
        "race.toml",
        "[sim]\nspeed = 1.0\n[runbook]\nlease_stale_secs = 1\n",
    );
    let mut a = Some(promote(&sandbox, &config, &[]));
    let mut b = Some(promote(&sandbox, &config, &[]));
    let started = Instant::now();
    let (loser, winner) = loop {
        assert!(started.elapsed() < RACE_LIMIT, "neither was refused");
        if a.as_mut().unwrap().try_wait().unwrap().is_some() {
            break (a.take().unwrap(), b.take().unwrap());
        }
        if b.as_mut().unwrap().try_wait().unwrap().is_some() {
            break (b.take().unwrap(), a.take().unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (code, lost) = report(loser);
    assert_eq!(code, Some(1), "{lost:#}");
    assert_eq!(lost["outcome"], "failed", "{lost:#}");
    let message = lost["message"].as_str().unwrap();
    assert!(
        message.contains("fence-old-master") && message.contains("this tier is held by run "),
        "{message}"
    );
    // The holder is named: its run id is the one in the lease.
    let held: Value =
        serde_json::from_str(&std::fs::read_to_string(lease_file(&sandbox)).unwrap()).unwrap();
    let holder = held["run_id"].as_str().unwrap().to_string();
    assert!(message.contains(&holder), "{message}");
    assert_ne!(lost["run_id"].as_str(), Some(holder.as_str()));

    // The winner's console dies: its lease stays, stale, and is taken only by naming its run.
    let mut winner = winner;
    winner.kill().unwrap();
    winner.wait().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let fast = ["--speed", "500", "--override", "anti-flapping"];
    let (code, refused) = report(promote(&sandbox, &config, &fast));
    assert_eq!(code, Some(1), "{refused:#}");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("--take-over-lease {holder}")),
        "{message}"
    );
    // The refused run is resumed, naming the dead one: it takes the lease over and finishes.
    let refused_run = refused["run_id"].as_str().unwrap();
    let resumed = sandbox
        .dake()
        .arg("--config")
        .arg(&config)
        .args(["resume", refused_run, "--yes", "--json", "--speed", "500"])
        .args(["--take-over-lease", holder.as_str()])
        .timeout(RACE_LIMIT)
        .output()
        .unwrap();
    let done = crate::sandbox::stdout_json(&resumed);
    assert_eq!(resumed.status.code(), Some(0), "{done:#}");
    assert_eq!(done["outcome"], "finished", "{done:#}");
    assert!(
        !lease_file(&sandbox).exists(),
        "the lease is given back at the end"
    );
    let journal =
        std::fs::read_to_string(sandbox.runs().join(format!("{refused_run}.jsonl"))).unwrap();
    assert!(
        journal.contains(&format!("takes over the tier's lease from run {holder}")),
        "journaled on the operator's name"
    );
}

#[test]
fn a_failover_from_another_machine_inside_the_window_is_refused() {
    let sandbox = Sandbox::new();
    let config = sandbox.write("fast.toml", "[sim]\nspeed = 500.0\n");
    let (code, first) = report(promote(&sandbox, &config, &[]));
    assert_eq!(code, Some(0), "{first:#}");
    let first_run = first["run_id"].as_str().unwrap();
    let record = sandbox
        .state_home()
        .join("dake")
        .join("lease-drill-db-last-failover.json");
    let kept: Value = serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(kept["run_id"], first_run, "{kept:#}");

    // Another bastion: the same fleet, none of the first one's journals.
    let status = sandbox.run(&["--config", config.to_str().unwrap(), "status", "--json"]);
    let status = crate::sandbox::stdout_json(&status);
    let master = status["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["role"] == "db-master")
        .unwrap_or_else(|| panic!("a master after the promotion: {status:#}"))["name"]
        .as_str()
        .unwrap()
        .to_string();
    let elsewhere = || {
        let mut dake = sandbox.dake_process();
        dake.env("XDG_DATA_HOME", sandbox.path().join("other-bastion"));
        dake
    };
    let (code, refused) = report(promote_on(elsewhere(), &config, &master, &[]));
    assert_eq!(code, Some(1), "{refused:#}");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains("failed over") && message.contains(first_run),
        "the first run is named: {message}"
    );
    assert!(message.contains("override `anti-flapping`"), "{message}");
    assert!(
        !sandbox
            .path()
            .join("other-bastion")
            .join("dake")
            .join("runs")
            .join(format!("{first_run}.jsonl"))
            .exists()
    );
    let lifted = ["--override", "anti-flapping"];
    let (code, done) = report(promote_on(elsewhere(), &config, &master, &lifted));
    assert_eq!(code, Some(0), "{done:#}");
    let kept: Value = serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(
        kept["run_id"], done["run_id"],
        "the newest failover is the one kept"
    );
}

/// The lease call a step's first effects send, if any.
fn lease_call(fx: &[Effect]) -> Option<ProviderCall> {
    fx.iter().find_map(|e| match e {
        Effect::Call { call, .. } if matches!(call, ProviderCall::TakeLease { .. }) => {
            Some(call.clone())
        }
        _ => None,
    })
}

/// Plans and confirms the step at the cursor: the effects of sending its first call.
fn send_step(run: &mut Run, snap: &FleetSnapshot) -> Vec<Effect> {
    let now = epoch();
    let mut fx = run.advance(Event::Proceed { snap }, now);
    if matches!(run.phase, Phase::Confirming { .. }) {
        fx = run.advance(Event::Confirm { snap }, now);
    }
    fx
}

#[test]
fn a_step_failed_on_the_lease_goes_on_once_the_operator_lifts_it_or_names_the_dead_holder() {
    let mut f = SimFleet::new(&config(), epoch());
    f.inject(IncidentKind::MasterDown, None).unwrap();
    let snap = f.snapshot();
    let (mut run, fence) = promote_at(&snap, "fence-old-master");
    run.ctx.vars.remove(var::LEASE);
    let now = epoch();

    // Another machine's failover, from the record beside the lease: anti-flapping is offered.
    let call = lease_call(&send_step(&mut run, &snap)).expect("the lease is taken first");
    assert!(matches!(
        call,
        ProviderCall::TakeLease {
            flapping_allowed: false,
            anti_flap_secs: 1800,
            ..
        }
    ));
    let flapping = Override::AntiFlapping.refusal("this tier was failed over 2m00s ago");
    run.advance(
        Event::CallFailed {
            index: 0,
            error: flapping,
        },
        now,
    );
    assert!(matches!(run.phase, Phase::Failed { .. }));
    assert_eq!(run.may_override(), Some(Override::AntiFlapping));
    assert_eq!(run.stale_lease_holder(), None);
    run.advance(Event::Override(Override::AntiFlapping), now);
    assert_eq!(run.phase, Phase::Ready, "the failed step is planned again");
    assert_eq!(run.cursor, fence);
    let call = lease_call(&send_step(&mut run, &snap)).expect("the lease again");
    assert!(matches!(
        call,
        ProviderCall::TakeLease {
            flapping_allowed: true,
            take_over: None,
            ..
        }
    ));

    // A stale lease: its holder is named, and typed, taken over.
    let stale = "this tier is held by run run-a (op@bastion-1), started 10m00s ago, renewed \
                 5m00s ago; it has not been renewed for over 120 s: if that run is dead, take \
                 it over by its run id (--take-over-lease run-a; in the console T, then type it)";
    run.advance(
        Event::CallFailed {
            index: 0,
            error: stale.into(),
        },
        now,
    );
    assert_eq!(run.stale_lease_holder(), Some("run-a"));
    assert_eq!(run.may_override(), None);
    run.advance(Event::TakeOverLease("run-a".into()), now);
    assert_eq!(run.phase, Phase::Ready);
    let call = lease_call(&send_step(&mut run, &snap)).expect("the lease again");
    assert!(matches!(
        call,
        ProviderCall::TakeLease { take_over: Some(ref holder), .. } if holder == "run-a"
    ));
    assert!(
        run.records.iter().any(|r| r
            .describe()
            .contains("takes over the tier's lease from run run-a")),
        "journaled on the operator's name"
    );
}

#[test]
fn a_run_that_failed_over_leaves_the_record_when_it_gives_the_lease_back() {
    let mut f = SimFleet::new(&config(), epoch());
    f.inject(IncidentKind::MasterDown, None).unwrap();
    let snap = f.snapshot();
    let released = |fx: &[Effect]| {
        fx.iter().find_map(|e| match e {
            Effect::Release(ProviderCall::ReleaseLease { failover, .. }) => Some(failover.clone()),
            _ => None,
        })
    };
    let now = epoch();
    let later = now + chrono::Duration::seconds(30);

    // Fenced (a failover action): aborted after it, the record says when.
    let (mut run, _) = promote_at(&snap, "fence-old-master");
    let mut fx = send_step(&mut run, &snap);
    // Every call the step sends answered, the first (the stop) at `later`.
    let mut at = later;
    while let Some(index) = fx.iter().find_map(|e| match e {
        Effect::Call { index, .. } => Some(*index),
        _ => None,
    }) {
        let outcome = CallOutcome {
            created: vec![],
            request_id: format!("req-{index}"),
            output: String::new(),
        };
        fx = run.advance(Event::CallDone { index, outcome }, at);
        at += chrono::Duration::seconds(1);
    }
    let fx = run.advance(
        Event::Abort {
            reason: "by hand".into(),
        },
        later,
    );
    let record = released(&fx)
        .expect("the lease goes back")
        .expect("a failover record");
    assert_eq!(record.at, later);
    assert_eq!(record.playbook, "db-promote");
    assert_eq!(record.run_id, run.ctx.run_id);

    // Nothing changed (only looked): no record.
    let (mut looked, _) = promote_at(&snap, "confirm-down");
    let fx = looked.advance(
        Event::Abort {
            reason: "by hand".into(),
        },
        now,
    );
    assert_eq!(released(&fx), Some(None));
}
