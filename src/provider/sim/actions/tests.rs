mod db;
mod traps;

use crate::config::{Config, IncidentKind};
use crate::detect::{Incident, detect};
use crate::domain::call::{ProviderCall, TAG_FLEET, TAG_ROLE, TAG_RUN, TAG_STEP};
use crate::domain::{FleetSnapshot, Instance, InstanceState, Role, TargetHealth, VolumeState};
use crate::provider::sim::SimFleet;
use crate::test_support::epoch;

/// The default fleet without its scheduled incidents: each test injects what it needs.
fn config() -> Config {
    let mut c = Config::builtin();
    c.sim.incidents.clear();
    c
}

fn fleet_with(c: &Config) -> SimFleet {
    SimFleet::new(c, epoch())
}

fn fleet() -> SimFleet {
    fleet_with(&config())
}

fn wait(f: &mut SimFleet, secs: i64) {
    f.advance_to((f.now_secs() + secs) as f64);
}

fn by_name(f: &SimFleet, name: &str) -> Instance {
    f.snapshot()
        .instances
        .into_iter()
        .find(|i| i.name == name)
        .unwrap()
}

fn by_id(f: &SimFleet, id: &str) -> Option<Instance> {
    f.snapshot().find(id).cloned()
}

fn ok(f: &mut SimFleet, call: ProviderCall) -> Vec<String> {
    let text = call.to_string();
    f.apply(&call)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .created
}

fn refused(f: &mut SimFleet, call: ProviderCall) -> String {
    let before = serde_json::to_string(&f.snapshot()).unwrap();
    let err = f.apply(&call).expect_err(&call.to_string());
    let after = serde_json::to_string(&f.snapshot()).unwrap();
    assert_eq!(before, after, "a refused {call} changed nothing");
    err
}

/// RunInstances the way a playbook makes it: the template's image and launch parameters.
fn launch_call(template: &Instance, name: &str, role: Role, step: usize) -> ProviderCall {
    ProviderCall::RunInstances {
        name: name.into(),
        role,
        image_id: template.image_id.clone(),
        instance_type: template.launch.instance_type.clone(),
        subnet_id: template.launch.subnet_id.clone(),
        az: template.az.clone(),
        security_groups: template.launch.security_groups.clone(),
        key_name: template.launch.key_name.clone(),
        user_data: format!("role={role}"),
        tags: vec![
            (TAG_RUN.into(), "run-1".into()),
            (TAG_STEP.into(), step.to_string()),
        ],
        client_token: format!("run-1-{step}"),
        template_id: template.id.clone(),
    }
}

fn launch(f: &mut SimFleet, template: &str, name: &str, role: Role, step: usize) -> String {
    let t = by_name(f, template);
    ok(f, launch_call(&t, name, role, step)).remove(0)
}

fn register(id: &str) -> ProviderCall {
    ProviderCall::RegisterTarget {
        target_group: "web-tg".into(),
        instance_id: id.into(),
    }
}

/// Steps sample by sample for `secs`, feeding detection as the console would.
fn detect_over(f: &mut SimFleet, c: &Config, secs: i64, mut prev: Vec<Incident>) -> Vec<Incident> {
    for _ in 0..secs / f.interval() {
        wait(f, f.interval());
        prev = detect(&f.snapshot(), &prev, &c.detect);
    }
    prev
}

fn master_down(incidents: &[Incident]) -> bool {
    incidents.iter().any(|i| i.kind == IncidentKind::MasterDown)
}

#[test]
fn run_instances_launches_tagged_and_boots_on_the_clock() {
    let mut f = fleet();
    let id = launch(&mut f, "web-3", "web-3-new", Role::Web, 2);
    let i = by_id(&f, &id).unwrap();
    assert_eq!(
        (i.state, i.target, i.db.is_none()),
        (InstanceState::Pending, None, true)
    );
    assert_eq!(i.az, by_name(&f, "web-3").az);
    assert_eq!(i.tags["Name"], "web-3-new");
    assert_eq!(i.tags[TAG_ROLE], "web");
    assert_eq!(i.tags[TAG_FLEET], "drill");
    assert_eq!(i.tags[TAG_RUN], "run-1");
    assert_eq!(f.find_created("run-1", 2), vec![id.clone()]);
    assert!(f.find_created("run-1", 3).is_empty());
    assert!(i.health.p99_ms.is_empty(), "no datapoints before it boots");
    // A retried launch with the same client token is the same instance.
    let t = by_name(&f, "web-3");
    assert_eq!(
        ok(&mut f, launch_call(&t, "web-3-new", Role::Web, 2)),
        vec![id.clone()]
    );

    wait(&mut f, 20);
    let i = by_id(&f, &id).unwrap();
    assert_eq!(i.state, InstanceState::Running);
    assert_eq!(i.health.checks.passed(), 0);
    wait(&mut f, 40);
    let i = by_id(&f, &id).unwrap();
    assert_eq!(i.health.checks.passed(), 2);
    let p99 = i.health.p99_ms.latest().unwrap();
    assert!(p99 < 300.0 && i.health.p99_ms.len() < 20, "{p99}");

    let mut bad = launch_call(&t, "x", Role::Web, 9);
    if let ProviderCall::RunInstances { image_id, .. } = &mut bad {
        *image_id = "ami-0000000000000000f".into();
    }
    assert!(refused(&mut f, bad).starts_with("InvalidAMIID.NotFound"));
    let other = by_name(&f, "web-2");
    let mut bad = launch_call(&t, "x", Role::Web, 9);
    if let ProviderCall::RunInstances { subnet_id, .. } = &mut bad {
        *subnet_id = other.launch.subnet_id.clone();
    }
    let err = refused(&mut f, bad);
    assert!(err.starts_with("InvalidParameterValue: subnet"), "{err}");
}

#[test]
fn terminate_shuts_down_then_the_instance_disappears() {
    let mut f = fleet();
    let web = by_name(&f, "web-1");
    let call = || ProviderCall::TerminateInstances {
        instance_id: web.id.clone(),
    };
    let out = f.apply(&call()).unwrap();
    assert_eq!(out.request_id, "sim-req-000001");
    let i = by_id(&f, &web.id).unwrap();
    assert_eq!((i.state, i.target), (InstanceState::ShuttingDown, None));
    wait(&mut f, 10);
    assert_eq!(by_id(&f, &web.id).unwrap().state, InstanceState::Terminated);
    let err = refused(&mut f, call());
    assert!(err.starts_with("IncorrectInstanceState") && err.contains("already terminated"));
    wait(&mut f, 30);
    assert!(by_id(&f, &web.id).is_none(), "gone from the fleet");
    let err = refused(&mut f, call());
    assert!(err.starts_with("InvalidInstanceID.NotFound"), "{err}");
}

#[test]
fn stop_takes_the_target_out_and_force_is_faster() {
    let mut f = fleet();
    let web = by_name(&f, "web-1").id;
    let stop = |id: &str, force| ProviderCall::StopInstances {
        instance_id: id.into(),
        force,
    };
    ok(&mut f, stop(&web, false));
    let i = by_id(&f, &web).unwrap();
    assert_eq!(i.state, InstanceState::Stopping);
    assert_eq!(i.target, Some(TargetHealth::Unhealthy));
    wait(&mut f, 10);
    assert_eq!(by_id(&f, &web).unwrap().state, InstanceState::Stopping);
    wait(&mut f, 5);
    assert_eq!(by_id(&f, &web).unwrap().state, InstanceState::Stopped);

    let master = f.snapshot().master().unwrap().id.clone();
    ok(&mut f, stop(&master, true));
    assert!(!by_id(&f, &master).unwrap().db.unwrap().running);
    wait(&mut f, 5);
    assert_eq!(by_id(&f, &master).unwrap().state, InstanceState::Stopped);

    let gone = by_name(&f, "web-2").id;
    ok(
        &mut f,
        ProviderCall::TerminateInstances {
            instance_id: gone.clone(),
        },
    );
    assert!(refused(&mut f, stop(&gone, false)).starts_with("IncorrectInstanceState"));
}

#[test]
fn register_turns_healthy_and_deregister_drains() {
    let mut f = fleet();
    let id = launch(&mut f, "web-1", "web-1-new", Role::Web, 2);
    let err = refused(&mut f, register(&id));
    assert!(err.contains("not in a running state"), "{err}");
    wait(&mut f, 20);
    // Registered before its checks pass: unhealthy until they do.
    ok(&mut f, register(&id));
    assert_eq!(by_id(&f, &id).unwrap().target, Some(TargetHealth::Initial));
    wait(&mut f, 15);
    assert_eq!(
        by_id(&f, &id).unwrap().target,
        Some(TargetHealth::Unhealthy)
    );
    wait(&mut f, 25);
    assert_eq!(by_id(&f, &id).unwrap().target, Some(TargetHealth::Healthy));

    let bad_tg = ProviderCall::RegisterTarget {
        target_group: "other-tg".into(),
        instance_id: id.clone(),
    };
    assert!(refused(&mut f, bad_tg).starts_with("TargetGroupNotFound"));
    let master = f.snapshot().master().unwrap().id.clone();
    assert!(refused(&mut f, register(&master)).contains("not a web server"));

    let dereg = |id: &str| ProviderCall::DeregisterTarget {
        target_group: "web-tg".into(),
        instance_id: id.into(),
    };
    let old = by_name(&f, "web-1").id;
    ok(&mut f, dereg(&old));
    assert_eq!(
        by_id(&f, &old).unwrap().target,
        Some(TargetHealth::Draining)
    );
    wait(&mut f, 20);
    assert_eq!(by_id(&f, &old).unwrap().target, None);
    let err = refused(&mut f, dereg(&old));
    assert!(
        err.contains("not registered in target group web-tg"),
        "{err}"
    );
}

#[test]
fn registering_an_instance_with_passed_checks_is_healthy_after_the_first_verdict() {
    let mut f = fleet();
    let id = launch(&mut f, "web-2", "web-2-new", Role::Web, 2);
    wait(&mut f, 60);
    ok(&mut f, register(&id));
    wait(&mut f, 10);
    assert_eq!(by_id(&f, &id).unwrap().target, Some(TargetHealth::Initial));
    wait(&mut f, 5);
    assert_eq!(by_id(&f, &id).unwrap().target, Some(TargetHealth::Healthy));
}

#[test]
fn detach_needs_a_stopped_instance_unless_forced() {
    let mut f = fleet();
    let master = f.snapshot().master().unwrap().clone();
    let data = master
        .volumes
        .iter()
        .find(|v| v.sole_copy)
        .unwrap()
        .id
        .clone();
    let detach = |force| ProviderCall::DetachVolume {
        volume_id: data.clone(),
        instance_id: master.id.clone(),
        force,
    };
    let err = refused(&mut f, detach(false));
    assert!(
        err.starts_with("IncorrectInstanceState") && err.contains("running"),
        "{err}"
    );
    let web = by_name(&f, "web-1").id;
    let wrong = ProviderCall::DetachVolume {
        volume_id: data.clone(),
        instance_id: web,
        force: true,
    };
    assert!(refused(&mut f, wrong).starts_with("InvalidAttachment.NotFound"));

    ok(&mut f, detach(true));
    let snap = f.snapshot();
    let v = &snap.free_volumes[0];
    assert_eq!(
        (v.id.as_str(), v.state),
        (data.as_str(), VolumeState::Detaching)
    );
    assert!(v.sole_copy && v.az == master.az);
    assert!(
        !snap
            .find(&master.id)
            .unwrap()
            .volumes
            .iter()
            .any(|v| v.id == data)
    );
    wait(&mut f, 5);
    assert_eq!(f.snapshot().free_volumes[0].state, VolumeState::Available);
    assert!(refused(&mut f, detach(true)).starts_with("IncorrectState: volume"));
}

#[test]
fn attach_refuses_another_zone_and_a_volume_in_use() {
    let mut f = fleet();
    let replica = by_name(&f, "db-replica-1");
    let data = replica.volumes[1].id.clone();
    ok(
        &mut f,
        ProviderCall::StopInstances {
            instance_id: replica.id.clone(),
            force: false,
        },
    );
    let attach = |vol: &str, to: &str, dev: &str| ProviderCall::AttachVolume {
        volume_id: vol.into(),
        instance_id: to.into(),
        device: dev.into(),
    };
    let web_here = by_name(&f, "web-2").id;
    let err = refused(&mut f, attach(&data, &web_here, "/dev/xvdg"));
    assert!(
        err.starts_with("IncorrectState: volume") && err.contains("in-use"),
        "{err}"
    );
    wait(&mut f, 15);
    ok(
        &mut f,
        ProviderCall::DetachVolume {
            volume_id: data.clone(),
            instance_id: replica.id.clone(),
            force: false,
        },
    );
    let err = refused(&mut f, attach(&data, &web_here, "/dev/xvdg"));
    assert!(err.contains("detaching, not available"), "{err}");
    wait(&mut f, 5);

    let web_there = by_name(&f, "web-1");
    assert_ne!(web_there.az, replica.az);
    let err = refused(&mut f, attach(&data, &web_there.id, "/dev/xvdg"));
    let expected = format!(
        "InvalidParameter: volume in {} cannot attach to instance in {}",
        replica.az, web_there.az
    );
    assert!(err.starts_with(&expected), "{err}");
    let err = refused(&mut f, attach(&data, &web_here, "/dev/xvda"));
    assert!(err.contains("already in use"), "{err}");

    ok(&mut f, attach(&data, &web_here, "/dev/xvdg"));
    assert_eq!(f.snapshot().free_volumes[0].state, VolumeState::Attaching);
    wait(&mut f, 5);
    assert!(f.snapshot().free_volumes.is_empty());
    let vols = by_id(&f, &web_here).unwrap().volumes;
    assert!(vols.iter().any(|v| v.id == data && v.device == "/dev/xvdg"));
}

#[test]
fn tags_merge_and_notifications_are_recorded() {
    let mut f = fleet();
    let web = by_name(&f, "web-1").id;
    ok(
        &mut f,
        ProviderCall::CreateTags {
            resource_id: web.clone(),
            tags: vec![("dake:quarantine".into(), "run-1".into())],
        },
    );
    let tags = by_id(&f, &web).unwrap().tags;
    assert_eq!(
        (tags["dake:quarantine"].as_str(), tags["Name"].as_str()),
        ("run-1", "web-1")
    );
    let replica = by_name(&f, "db-replica-2").id;
    ok(
        &mut f,
        ProviderCall::CreateTags {
            resource_id: replica.clone(),
            tags: vec![("dake:no-promote".into(), "true".into())],
        },
    );
    assert!(by_id(&f, &replica).unwrap().db.unwrap().no_promote);
    let unknown = ProviderCall::CreateTags {
        resource_id: "i-0000000000000000f".into(),
        tags: vec![("a".into(), "b".into())],
    };
    assert!(refused(&mut f, unknown).starts_with("InvalidInstanceID.NotFound"));

    ok(
        &mut f,
        ProviderCall::NotifyReplicaAdded {
            instance_id: replica.clone(),
        },
    );
    assert_eq!(f.notifications(), [replica]);
    let unknown = ProviderCall::NotifyReplicaAdded {
        instance_id: "i-0000000000000000f".into(),
    };
    assert!(refused(&mut f, unknown).starts_with("InvalidInstanceID.NotFound"));
}

#[test]
fn fail_next_fails_one_call_of_that_operation() {
    let mut f = fleet();
    let web = by_name(&f, "web-1").id;
    f.fail_next("TerminateInstances", "RequestLimitExceeded: slow down");
    let stop = ProviderCall::StopInstances {
        instance_id: web.clone(),
        force: false,
    };
    ok(&mut f, stop);
    let term = ProviderCall::TerminateInstances {
        instance_id: web.clone(),
    };
    assert_eq!(
        refused(&mut f, term.clone()),
        "RequestLimitExceeded: slow down"
    );
    assert_eq!(f.apply(&term).unwrap().request_id, "sim-req-000002");
}

/// Case 2 the cloud way, call by call as db-ebs-move makes them.
#[test]
fn the_same_calls_on_the_same_seed_give_the_same_fleet() {
    let run = || {
        let mut f = fleet();
        launch(&mut f, "web-4", "web-4-new", Role::Web, 2);
        wait(&mut f, 120);
        serde_json::to_string(&f.snapshot()).unwrap()
    };
    assert_eq!(run(), run());
}

#[test]
fn injected_incidents_are_detected_on_the_next_snapshot() {
    let c = config();
    let mut f = fleet_with(&c);
    f.inject(IncidentKind::SlowWeb, Some("web-3")).unwrap();
    f.inject(IncidentKind::MasterDown, None).unwrap();
    let snap = f.snapshot();
    let found = detect(&snap, &[], &c.detect);
    let kinds: Vec<_> = found
        .iter()
        .map(|i| (i.kind, i.instance_name.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (IncidentKind::MasterDown, "db-master"),
            (IncidentKind::SlowWeb, "web-3")
        ]
    );
    let age = |name: &str| by_name(&f, name).db.unwrap().heartbeat_age_secs;
    assert!(age("db-master") > c.detect.master_heartbeat_secs);
    // The replicas stopped receiving when the master stopped writing: none is behind it.
    let ranked = crate::replicas::rank_replicas(&snap, c.detect.replica_max_lag_secs);
    assert_eq!(
        (ranked[0].name.as_str(), ranked[0].best),
        ("db-replica-1", true)
    );
    assert!(age("db-replica-1") > age("db-master") - 1.0);
    // Injecting it again changes nothing.
    f.inject(IncidentKind::SlowWeb, Some("web-3")).unwrap();
    assert_eq!(
        serde_json::to_string(&f.snapshot()).unwrap(),
        serde_json::to_string(&snap).unwrap()
    );
}
