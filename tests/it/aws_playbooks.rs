//! Playbooks run headless to the end by the real binary against the emulators, and a run killed
//! in the middle of its launch resumed; the end state read back through the SDK, never through
//! dake.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use dake::domain::call::ProviderCall;
use dake::runbook::journal;
use dake::runbook::record::Record;

use crate::aws_fleet::{Aws, Emulated, Seeded, dake_aws, dake_aws_process};
use crate::emulator::moto;
use crate::fault_server::{Behaviour, FaultServer, Rule, RuleAnswer};
use crate::host_metrics::HostAgent;
use crate::sandbox::{Sandbox, stdout_json};

/// The seeded fleet's config, read often so that a wait notices a change within a second. An
/// attempt may take minutes before the SDK sends it again: moto does not honour ClientToken, so
/// a launch re-sent because a loaded emulator answered late would be a second instance, and the
/// kill test below must kill the run before any retry.
fn quick_config(seeded: &Seeded) -> String {
    seeded.config()
        + "refresh_secs = 1\nmetrics_refresh_secs = 2\n"
        + "attempt_timeout_secs = 300\ncall_timeout_secs = 600\n"
}

/// web-replace with the restart's wait cut from two minutes to three seconds (the slow server
/// stays slow: the emulator has no host to restart), as a user's own playbook.
fn short_web_replace(sandbox: &Sandbox) {
    let builtin = include_str!("../../assets/runbooks/web-replace.toml");
    let short = builtin.replacen(
        "# Not recovered by then: stop hoping and replace it.\ntimeout_secs = 120",
        "timeout_secs = 3",
        1,
    );
    assert_ne!(short, builtin, "the restart step's timeout moved");
    sandbox.write("config/dake/runbooks/web-replace.toml", &short);
}

/// Instances (any state) tagged with the run: what it launched.
fn launched_by(fleet: &crate::aws_fleet::FleetView, run_id: &str) -> Vec<String> {
    fleet
        .iter()
        .filter(|(_, (_, tags))| tags.get("dake:run").map(String::as_str) == Some(run_id))
        .map(|(id, _)| id.clone())
        .collect()
}

/// After web-replace: one replacement, running and in the target group with web-1, -2, -4;
/// web-3 terminated.
fn assert_replaced(aws: &Aws, seeded: &Seeded, run_id: &str, rt: &tokio::runtime::Runtime) {
    let fleet = rt.block_on(aws.fleet("drill"));
    let made = launched_by(&fleet, run_id);
    assert_eq!(made.len(), 1, "exactly one replacement: {fleet:#?}");
    let new = &made[0];
    let (state, tags) = &fleet[new];
    assert_eq!(state, "running");
    assert_eq!(tags["dake:role"], "web");
    assert_eq!(tags["dake:step"], "2");
    let web3 = &seeded.ids["web-3"];
    let old_state = &fleet[web3].0;
    assert!(
        old_state == "terminated" || old_state == "shutting-down",
        "{old_state}"
    );
    let mut want: Vec<String> = ["web-1", "web-2", "web-4"]
        .iter()
        .map(|n| seeded.ids[*n].clone())
        .chain([new.clone()])
        .collect();
    want.sort();
    assert_eq!(rt.block_on(aws.targets(&seeded.target_group_arn)), want);
}

/// Also mirrored: the run's journal, read back from the emulator's CloudWatch Logs, is the
/// local journal record for record; and `dake follow --provider aws` reads it from there.
#[test]
fn web_replace_runs_headless_to_the_end_on_aws() {
    let e = Emulated::publishing(Some("web-3"), false);
    let (rt, aws, seeded) = (&e.rt, &e.aws, &e.seeded);
    let sandbox = Sandbox::new();
    short_web_replace(&sandbox);
    let config = quick_config(seeded) + "[journal]\nmirror = \"cloudwatch-logs\"\n";

    let started = Instant::now();
    let out = run_to_the_end(&sandbox, &config, "web-replace", "web-3");
    let r = finished(&out, &["done", "timed-out", "done", "done", "done", "done"]);
    let run_id = r["run_id"].as_str().unwrap();
    assert_replaced(aws, seeded, run_id, rt);
    eprintln!(
        "web-replace on the emulators: {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let local = std::fs::read_to_string(sandbox.runs().join(format!("{run_id}.jsonl"))).unwrap();
    let local: Vec<&str> = local.lines().collect();
    let mirrored = rt.block_on(async {
        let (mut out, mut token) = (Vec::new(), None::<String>);
        loop {
            let page = aws
                .logs
                .get_log_events()
                .log_group_name("/dake/drill")
                .log_stream_name(run_id)
                .start_from_head(true)
                .set_next_token(token.clone())
                .send()
                .await
                .unwrap();
            let next = page.next_forward_token().map(String::from);
            if page.events().is_empty() || next == token {
                return out;
            }
            out.extend(
                page.events()
                    .iter()
                    .map(|e| e.message().unwrap().to_string()),
            );
            token = next;
        }
    });
    assert_eq!(
        mirrored, local,
        "the stream is the journal, record for record"
    );

    let followed = dake_aws(&sandbox, &config)
        .args(["follow", run_id])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&followed.stdout);
    assert_eq!(followed.status.code(), Some(0), "{printed}");
    let records = journal::read(&sandbox.runs().join(format!("{run_id}.jsonl"))).unwrap();
    let lines: Vec<&str> = printed.lines().skip(1).collect();
    assert_eq!(lines.len(), records.len(), "{printed}");
    for (line, rec) in lines.iter().zip(&records) {
        assert_eq!(
            *line,
            format!("{}  {}", rec.at().format("%H:%M:%S"), rec.describe())
        );
    }
    assert!(
        printed.starts_with(&format!("following run {run_id} (web-replace on web-3)")),
        "{printed}"
    );
}

/// The process dies while AWS launches the replacement: the request reached EC2 (through a
/// proxy that passes it on and never answers), the journal has the intent and no result.
/// The resumed run finds the instance by its run and step tags instead of launching another.
#[test]
fn a_run_killed_during_the_launch_resumes_without_a_second_replacement() {
    let e = Emulated::publishing(Some("web-3"), false);
    let (rt, aws, seeded) = (&e.rt, &e.aws, &e.seeded);
    let proxy = FaultServer::start(Behaviour::ProxyExcept {
        upstream: moto().endpoint.clone(),
        rule: Rule {
            when: vec!["Action=RunInstances"],
            unless: vec!["DryRun=true"],
            answer: RuleAnswer::ForwardThenHang,
        },
    });
    let sandbox = Sandbox::new();
    short_web_replace(&sandbox);
    let config = quick_config(seeded);

    let mut child = dake_aws_process(&sandbox, &config)
        .env("AWS_ENDPOINT_URL_EC2", &proxy.endpoint)
        .args(["run", "web-replace", "--target", "web-3", "--yes"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once EC2 has the launch: long before the SDK gives up on the silent answer and
    // retries (`attempt_timeout_secs` in `quick_config`).
    let deadline = Instant::now() + Duration::from_secs(120);
    let launched = loop {
        let fleet = rt.block_on(aws.fleet("drill"));
        let tagged: Vec<String> = fleet
            .iter()
            .filter(|(_, (_, tags))| tags.contains_key("dake:run"))
            .map(|(id, _)| id.clone())
            .collect();
        if !tagged.is_empty() {
            break tagged;
        }
        assert!(Instant::now() < deadline, "the launch never reached EC2");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before its launch");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(launched.len(), 1);
    // The crash window itself: the launch announced in the journal, its answer never written.
    let runs = journal::list(&sandbox.runs());
    assert_eq!(runs.len(), 1);
    let records = journal::read(&runs[0].path).unwrap();
    let launch = |r: &&Record| matches!(r, Record::Intent { call, .. } if matches!(call, ProviderCall::RunInstances { .. }));
    let intent = records
        .iter()
        .find(launch)
        .expect("the launch was journaled");
    let Record::Intent { step, .. } = intent else {
        unreachable!()
    };
    assert!(
        !records
            .iter()
            .any(|r| matches!(r, Record::Result { step: s, .. } if s == step)),
        "{records:#?}"
    );

    let out = dake_aws(&sandbox, &config)
        .args(["resume", "--yes", "--json"])
        .output()
        .unwrap();
    let r = stdout_json(&out);
    assert_eq!(out.status.code(), Some(0), "{r:#}");
    let run_id = r["run_id"].as_str().unwrap();
    assert_replaced(aws, seeded, run_id, rt);
    let fleet = rt.block_on(aws.fleet("drill"));
    assert_eq!(
        launched_by(&fleet, run_id),
        launched,
        "the one launched before the kill"
    );
    let real_launches = proxy
        .seen()
        .iter()
        .filter(|b| b.contains("Action=RunInstances") && !b.contains("DryRun=true"))
        .count();
    assert_eq!(real_launches, 1);
}

/// `dake run <playbook> --target <target> --yes --json` on the emulators.
fn run_to_the_end(sandbox: &Sandbox, config: &str, playbook: &str, target: &str) -> Output {
    dake_aws(sandbox, config)
        .args(["run", playbook, "--target", target, "--yes", "--json"])
        .output()
        .unwrap()
}

/// The run's JSON report, after checking it finished with these step statuses.
fn finished(out: &Output, statuses: &[&str]) -> Value {
    let r = stdout_json(out);
    assert_eq!(out.status.code(), Some(0), "{r:#}");
    let seen: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(seen, statuses, "{r:#}");
    r
}

/// The private DNS name the DB record must name once `id` is the master.
fn dns_of(aws: &Aws, id: &str, rt: &tokio::runtime::Runtime) -> String {
    let out = rt
        .block_on(aws.ec2.describe_instances().instance_ids(id).send())
        .unwrap();
    let i = &out.reservations()[0].instances()[0];
    i.private_dns_name().unwrap().to_string()
}

#[test]
fn db_promote_runs_headless_to_the_end_on_aws() {
    let e = Emulated::publishing(None, true);
    let (rt, aws, seeded) = (&e.rt, &e.aws, &e.seeded);
    let id = |name: &str| seeded.ids[name].clone();
    let _hosts = HostAgent::start(
        None,
        BTreeSet::from([id("db-master")]),
        BTreeMap::from([(id("db-replica-2"), 4.0)]),
        e.master_died_at,
    );
    let sandbox = Sandbox::new();
    let config = quick_config(seeded) + "replicas_parameter = \"/drill/db-replicas\"\n";

    let started = Instant::now();
    let out = run_to_the_end(&sandbox, &config, "db-promote", "db-master");
    let r = finished(&out, &["done"; 10]);
    let run_id = r["run_id"].as_str().unwrap();

    let fleet = rt.block_on(aws.fleet("drill"));
    let (_, promoted) = &fleet[&id("db-replica-1")];
    assert_eq!(
        promoted["dake:role"], "db-master",
        "the least-lagged replica"
    );
    assert!(!promoted.contains_key("dake:source"));
    assert_eq!(
        fleet[&id("db-replica-2")].1["dake:source"],
        id("db-replica-1")
    );
    assert_eq!(
        rt.block_on(aws.record(&seeded.zone_id))
            .trim_end_matches('.'),
        dns_of(aws, &id("db-replica-1"), rt)
    );
    let made = launched_by(&fleet, run_id);
    assert_eq!(made.len(), 1, "{fleet:#?}");
    let (state, tags) = &fleet[&made[0]];
    assert_eq!(
        (state.as_str(), tags["dake:role"].as_str()),
        ("running", "db-replica")
    );
    let listed = rt
        .block_on(aws.ssm.get_parameter().name("/drill/db-replicas").send())
        .unwrap();
    assert_eq!(listed.parameter().unwrap().value(), Some(made[0].as_str()));
    // Fenced (it does not answer: stopped through EC2, not terminated) and retired.
    let (state, tags) = &fleet[&id("db-master")];
    assert_eq!(state, "stopped");
    assert_eq!(tags["dake:role"], "retired");
    assert_eq!(tags["dake:quarantine"], run_id);
    eprintln!(
        "db-promote on the emulators: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn db_ebs_move_runs_headless_to_the_end_on_aws() {
    let e = Emulated::publishing(None, true);
    let (rt, aws, seeded) = (&e.rt, &e.aws, &e.seeded);
    let id = |name: &str| seeded.ids[name].clone();
    let _hosts = HostAgent::start(
        None,
        BTreeSet::from([id("db-master")]),
        BTreeMap::new(),
        e.master_died_at,
    );
    let sandbox = Sandbox::new();
    let builtin = include_str!("../../assets/runbooks/db-ebs-move.toml");
    let try_start = "wait = \"master-answering\"\ntimeout_secs = 180\n";
    assert!(builtin.contains(&format!("action = \"reboot-instance\"\n{try_start}")));
    // On the metrics source a boot is seen only once CloudWatch has published a minute after
    // it (three minutes and more: the wait is stretched to that); the master never comes back
    // here, so the reboot is not waited on at all.
    let short = builtin
        .replacen(try_start, "timeout_secs = 3\n", 1)
        .replacen(
            "on_timeout = \"continue\"\nfinish_on_success = true\n",
            "",
            1,
        );
    assert_ne!(short, builtin, "the try-start step's wait moved");
    sandbox.write("config/dake/runbooks/db-ebs-move.toml", &short);

    let started = Instant::now();
    let out = run_to_the_end(&sandbox, &quick_config(seeded), "db-ebs-move", "db-master");
    let r = finished(&out, &["done"; 10]);
    let run_id = r["run_id"].as_str().unwrap();

    let fleet = rt.block_on(aws.fleet("drill"));
    let made = launched_by(&fleet, run_id);
    assert_eq!(made.len(), 1, "{fleet:#?}");
    let new = &made[0];
    assert_eq!(fleet[new].1["dake:role"], "db-master");
    assert_eq!(
        rt.block_on(aws.attachment(&seeded.data_volume)),
        (new.clone(), crate::aws_fleet::DATA_DEVICE.to_string())
    );
    let old = &fleet[&id("db-master")].0;
    assert!(old == "terminated" || old == "shutting-down", "{old}");
    assert_eq!(
        rt.block_on(aws.record(&seeded.zone_id))
            .trim_end_matches('.'),
        dns_of(aws, new, rt)
    );
    for replica in ["db-replica-1", "db-replica-2"] {
        assert_eq!(&fleet[&id(replica)].1["dake:source"], new);
    }
    eprintln!(
        "db-ebs-move on the emulators: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
