//! The AWS provider against real AWS API servers on loopback (moto, ministack): the fleet is
//! seeded through the SDK, then the real binary is asked what it sees and does.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::aws_fleet::{Emulated, REGION, dake_aws, in_process_provider, launch_many};
use crate::emulator::{exclusive, moto};
use crate::sandbox::{Sandbox, stdout_json};

#[test]
fn status_sees_the_fleet_its_health_and_the_slow_web_server() {
    let e = Emulated::publishing(Some("web-3"), false);
    let seeded = &e.seeded;
    let sandbox = Sandbox::new();
    let out = dake_aws(&sandbox, &seeded.config())
        .args(["status", "--json"])
        .output()
        .unwrap();
    let json = stdout_json(&out);
    assert_eq!(json["provider"], "aws");
    assert_eq!(json["region"], REGION);
    let instances = json["instances"].as_array().unwrap();
    let seen: BTreeMap<String, String> = instances
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_string(),
                i["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(seen, seeded.ids, "the fleet, and only the fleet");
    let get = |name: &str| {
        instances
            .iter()
            .find(|i| i["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(get("web-3")["role"], "web");
    assert_eq!(get("db-master")["role"], "db-master");
    assert_eq!(get("db-replica-2")["role"], "db-replica");
    assert_eq!(get("web-2")["az"], "us-east-1b");
    assert_eq!(
        get("db-master")["disposable"],
        false,
        "the master's data volume is the only copy"
    );
    assert!(
        instances.iter().all(|i| i["state"] == "running"),
        "{instances:?}"
    );
    // Target health from ELBv2, latency and CPU from CloudWatch.
    assert_eq!(get("web-1")["target_health"], "healthy");
    assert_eq!(get("db-master")["target_health"], Value::Null);
    assert_eq!(get("web-3")["p99_ms"], 1500.0);
    assert_eq!(get("web-1")["p99_ms"], 150.0);
    assert_eq!(get("web-1")["cpu_pct"], 20.0);
    // The endpoint from Route53, the replicas ranked by their published lag.
    let rep = &json["replication"];
    assert_eq!(rep["endpoint"], "db.drill.internal");
    assert_eq!(rep["endpoint_target_id"], seeded.ids["db-master"].as_str());
    assert_eq!(rep["replicas"][0]["name"], "db-replica-1");
    assert_eq!(rep["replicas"][0]["best"], true);
    // The slow server is recognised, and named.
    let incidents = json["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0]["kind"], "slow-web");
    assert_eq!(incidents[0]["instance_id"], seeded.ids["web-3"].as_str());
    assert_eq!(out.status.code(), Some(1), "a slow web server is a WARNING");
    // What the refresh cost: one page of instances, one metrics batch.
    let calls = &json["api_calls"];
    assert_eq!(calls["DescribeInstances"], 1, "{calls}");
    assert_eq!(calls["GetMetricData"], 1, "{calls}");
    assert_eq!(calls["DescribeTargetHealth"], 1, "{calls}");
}

#[test]
fn a_silent_master_and_a_stopped_master_are_critical() {
    let sandbox = Sandbox::new();
    {
        let e = Emulated::publishing(None, true);
        assert_master_down(&sandbox, &e.seeded, "its heartbeat stopped ten minutes ago");
        // Ten minutes after the master died, each replica is exactly as far behind as it was
        // when it died (1 s and 4 s), not by the minutes of silence since.
        let out = dake_aws(&sandbox, &e.seeded.config())
            .args(["status", "--json"])
            .output()
            .unwrap();
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        let behind: Vec<(&str, f64)> = json["replication"]["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let name = r["name"].as_str().unwrap();
                (name, r["behind_master_secs"].as_f64().unwrap())
            })
            .collect();
        assert_eq!(behind, [("db-replica-1", 1.0), ("db-replica-2", 4.0)]);
    }
    let e = Emulated::publishing(None, false);
    e.rt.block_on(
        e.aws
            .ec2
            .stop_instances()
            .instance_ids(&e.seeded.ids["db-master"])
            .send(),
    )
    .unwrap();
    assert_master_down(&sandbox, &e.seeded, "it is stopped");
}

fn assert_master_down(sandbox: &Sandbox, seeded: &crate::aws_fleet::Seeded, why: &str) {
    let out = dake_aws(sandbox, &seeded.config())
        .args(["status"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{why}: {text}");
    assert!(
        text.starts_with("DAKE CRITICAL - master DB down: db-master"),
        "{why}: {text}"
    );
}

#[test]
fn no_region_is_unknown_not_a_guess() {
    let _only = exclusive();
    let server = moto();
    let sandbox = Sandbox::new();
    let out = sandbox
        .dake()
        .args([
            "--provider",
            "aws",
            "--endpoint-url",
            &server.endpoint,
            "status",
        ])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("no AWS region"), "{text}");
}

/// 1,000 web servers with 3 metrics each: one DescribeInstances page (1,000 per page), ten
/// DescribeInstanceStatus calls (100 ids each) and ceil(3,000 / 500) = 6 GetMetricData calls,
/// never a call per instance.
#[test]
fn a_thousand_instances_take_one_page_and_six_metric_calls() {
    let e = Emulated::seeded();
    let (rt, aws, seeded) = (&e.rt, &e.aws, &e.seeded);
    let launched = rt.block_on(launch_many(aws, "big", "web", 1000));
    assert_eq!(launched.len(), 1000);
    // The emulator takes seconds to filter a thousand instances (AWS: well under one), and the
    // test machine runs other tests meanwhile: the bounds are raised, not the call count.
    let config = seeded
        .config()
        .replace("name = \"drill\"", "name = \"big\"")
        + "attempt_timeout_secs = 60\ncall_timeout_secs = 60\n";
    assert!(config.contains("name = \"big\""), "{config}");
    let sandbox = Sandbox::new();
    let started = std::time::Instant::now();
    let out = dake_aws(&sandbox, &config)
        .args(["status", "--json"])
        .output()
        .unwrap();
    let took = started.elapsed().as_secs_f64();
    let json = stdout_json(&out);
    let instances = json["instances"].as_array();
    assert_eq!(instances.map(Vec::len), Some(1000), "{json:#}");
    let calls = &json["api_calls"];
    assert_eq!(calls["DescribeInstances"], 1, "{calls:#}");
    assert_eq!(calls["DescribeInstanceStatus"], 10, "{calls:#}");
    assert_eq!(calls["GetMetricData"], 6, "{calls:#}");
    eprintln!("1,000 instances: one refresh in {took:.1} s (whole process, emulators): {calls}");
}

/// The AWS provider's playbook calls, one by one, on the seeded fleet; every effect is read
/// back through the SDK.
#[test]
fn playbook_calls_change_the_fleet_and_stay_inside_it() {
    use dake::domain::call::ProviderCall;
    use dake::provider::Provider;

    let e = Emulated::seeded();
    let (rt, aws, seeded) = (&e.rt, &e.aws, &e.seeded);
    let provider = in_process_provider(seeded, &moto().endpoint);
    let run = |call: ProviderCall| rt.block_on(provider.execute(call));
    let id = |name: &str| seeded.ids[name].clone();

    // Blast radius: another fleet's instance is refused, and left alone.
    let outsider = rt.block_on(aws.fleet("someone-else"));
    let (outsider_id, _) = outsider.iter().next().unwrap();
    let err = run(ProviderCall::TerminateInstances {
        instance_id: outsider_id.clone(),
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("not tagged dake:fleet=drill"), "{err}");
    assert_eq!(
        rt.block_on(aws.fleet("someone-else"))[outsider_id].0,
        "running"
    );
    let err = run(ProviderCall::RebootInstances {
        instance_id: "i-0000000000000dead".into(),
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("no such instance"), "{err}");

    // A replacement like web-3: same image and subnet, tagged for the run, its user data's
    // role line kept.
    let snap = rt.block_on(provider.snapshot()).unwrap();
    let web3 = snap.find(&id("web-3")).unwrap().clone();
    let out = run(ProviderCall::RunInstances {
        name: "web-3-r1".into(),
        role: dake::domain::Role::Web,
        image_id: web3.image_id.clone(),
        instance_type: web3.launch.instance_type.clone(),
        subnet_id: web3.launch.subnet_id.clone(),
        az: web3.az.clone(),
        security_groups: web3.launch.security_groups.clone(),
        key_name: None,
        user_data: "role=web".into(),
        tags: vec![
            ("Name".into(), "web-3-r1".into()),
            ("dake:run".into(), "run-1".into()),
            ("dake:step".into(), "2".into()),
        ],
        client_token: "run-1-2".into(),
        template_id: web3.id.clone(),
    })
    .unwrap();
    assert_eq!(out.created.len(), 1, "{out:?}");
    let new = out.created[0].clone();
    let fleet = rt.block_on(aws.fleet("drill"));
    let tags = &fleet[&new].1;
    assert_eq!(tags["dake:role"], "web");
    assert_eq!(tags["dake:run"], "run-1");
    assert_eq!(tags["dake:step"], "2");
    assert_eq!(
        rt.block_on(provider.find_created("run-1", 2)).unwrap(),
        vec![new.clone()],
        "a resumed run finds it by tag"
    );

    // Into the target group, the slow one out.
    run(ProviderCall::RegisterTarget {
        target_group: "web-tg".into(),
        instance_id: new.clone(),
    })
    .unwrap();
    run(ProviderCall::DeregisterTarget {
        target_group: "web-tg".into(),
        instance_id: id("web-3"),
    })
    .unwrap();
    let mut want = vec![id("web-1"), id("web-2"), id("web-4"), new.clone()];
    want.sort();
    assert_eq!(rt.block_on(aws.targets(&seeded.target_group_arn)), want);
    run(ProviderCall::TerminateInstances {
        instance_id: id("web-3"),
    })
    .unwrap();
    let state = &rt.block_on(aws.fleet("drill"))[&id("web-3")].0;
    assert!(state == "terminated" || state == "shutting-down", "{state}");

    // The data volume moves; the endpoint follows a promoted replica.
    run(ProviderCall::StopInstances {
        instance_id: id("db-master"),
        force: false,
    })
    .unwrap();
    run(ProviderCall::DetachVolume {
        volume_id: seeded.data_volume.clone(),
        instance_id: id("db-master"),
        force: false,
    })
    .unwrap();
    run(ProviderCall::AttachVolume {
        volume_id: seeded.data_volume.clone(),
        instance_id: id("db-replica-2"),
        device: "/dev/xvdg".into(),
    })
    .unwrap();
    assert_eq!(
        rt.block_on(aws.attachment(&seeded.data_volume)).0,
        id("db-replica-2")
    );

    let out = run(ProviderCall::PromoteReplica {
        instance_id: id("db-replica-1"),
    })
    .unwrap();
    assert!(!out.request_id.is_empty(), "the SSM command id is recorded");
    assert_eq!(
        rt.block_on(aws.fleet("drill"))[&id("db-replica-1")].1["dake:role"],
        "db-master"
    );
    run(ProviderCall::RepointReplica {
        instance_id: id("db-replica-2"),
        master_id: id("db-replica-1"),
    })
    .unwrap();
    assert_eq!(
        rt.block_on(aws.fleet("drill"))[&id("db-replica-2")].1["dake:source"],
        id("db-replica-1")
    );
    let switched = run(ProviderCall::SetDbEndpoint {
        name: "db.drill.internal".into(),
        target_id: id("db-replica-1"),
    })
    .unwrap();
    // Done when Route 53 says INSYNC, with how long clients may still hold the old answer.
    assert!(
        switched.output.starts_with("INSYNC after ") && switched.output.contains(" s more"),
        "{switched:?}"
    );
    let described = rt
        .block_on(
            aws.ec2
                .describe_instances()
                .instance_ids(id("db-replica-1"))
                .send(),
        )
        .unwrap();
    let dns = described.reservations()[0].instances()[0]
        .private_dns_name()
        .unwrap()
        .to_string();
    assert_eq!(
        rt.block_on(aws.record(&seeded.zone_id))
            .trim_end_matches('.'),
        dns
    );
    let snap = rt.block_on(provider.snapshot()).unwrap();
    assert_eq!(
        snap.db_endpoint.map(|e| e.target_id),
        Some(id("db-replica-1")),
        "dake reads back the switch it made"
    );
    // With no replicas parameter configured the application is told nothing: the call is
    // recorded, and says so, instead of failing a failover that succeeded.
    let told = run(ProviderCall::NotifyReplicaAdded {
        instance_id: id("db-replica-2"),
    })
    .unwrap();
    assert!(
        told.output
            .starts_with("recorded only: no [aws] replicas_parameter is configured")
            && told.output.contains(&id("db-replica-2")),
        "{told:?}"
    );
}

/// The tier's lease on AWS: an SSM parameter created without overwrite, so a second run is
/// refused naming the first, and the first gives it back, leaving the record of its failover
/// that refuses a second one inside the anti-flapping window from any machine.
#[test]
fn a_tiers_lease_is_one_runs_at_a_time_on_ssm() {
    use dake::domain::call::ProviderCall;
    use dake::provider::Provider;

    let e = Emulated::seeded();
    let provider = in_process_provider(&e.seeded, &moto().endpoint);
    let take_as = |run: &str, take_over: Option<&str>, flapping_allowed| ProviderCall::TakeLease {
        key: "drill/db".into(),
        run_id: run.into(),
        operator: format!("op@{run}"),
        take_over: take_over.map(String::from),
        stale_secs: 120,
        anti_flap_secs: 1800,
        flapping_allowed,
    };
    let take = |run: &str, take_over: Option<&str>| take_as(run, take_over, false);
    let run = |call: ProviderCall| e.rt.block_on(provider.execute(call));
    run(take("run-a", None)).unwrap();
    // Its own run again (a retry, a resume) keeps it.
    run(take("run-a", None)).unwrap();
    let err = run(take("run-b", Some("run-a"))).unwrap_err().to_string();
    assert!(
        err.contains("held by run run-a (op@run-a)") && !err.contains("--take-over-lease"),
        "a live lease is not taken over: {err}"
    );
    let stored =
        e.rt.block_on(
            e.aws
                .ssm
                .get_parameter()
                .name("/dake/lease/drill/db")
                .send(),
        )
        .unwrap();
    let value = stored.parameter().unwrap().value().unwrap().to_string();
    assert!(value.contains("\"run_id\":\"run-a\""), "{value}");
    // Another run's release leaves it; its holder's gives it back.
    run(ProviderCall::ReleaseLease {
        key: "drill/db".into(),
        run_id: "run-b".into(),
        failover: None,
    })
    .unwrap();
    assert!(run(take("run-b", None)).is_err());
    let failed_over = dake::domain::lease::FailoverRecord {
        run_id: "run-a".into(),
        operator: "op@run-a".into(),
        playbook: "db-promote".into(),
        at: chrono::Utc::now() - chrono::Duration::seconds(60),
    };
    run(ProviderCall::ReleaseLease {
        key: "drill/db".into(),
        run_id: "run-a".into(),
        failover: Some(failed_over),
    })
    .unwrap();
    let err = run(take("run-b", None)).unwrap_err().to_string();
    assert!(
        err.contains("failed over 1m") && err.contains("run run-a (db-promote, op@run-a)"),
        "the record refuses a second failover: {err}"
    );
    assert!(err.contains("override `anti-flapping`"), "{err}");
    run(take_as("run-b", None, true)).unwrap();
}
