//! One failover per tier, whoever runs it: two `dake` processes race for the database tier of
//! the same drill fleet and exactly one proceeds; a lease its dead holder left is taken over
//! only by naming that run.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::sandbox::Sandbox;
use serde_json::Value;

const RACE_LIMIT: Duration = Duration::from_secs(120);

fn promote(sandbox: &Sandbox, config: &std::path::Path, extra: &[&str]) -> Child {
    sandbox
        .dake_process()
        .arg("--config")
        .arg(config)
        .args(["run", "db-promote", "--target", "db-master"])
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
    let mut taking = fast.to_vec();
    taking.extend(["--take-over-lease", holder.as_str()]);
    let (code, done) = report(promote(&sandbox, &config, &taking));
    assert_eq!(code, Some(0), "{done:#}");
    assert_eq!(done["outcome"], "finished", "{done:#}");
    assert!(
        !lease_file(&sandbox).exists(),
        "the lease is given back at the end"
    );
}
