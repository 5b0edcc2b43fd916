//! A plan is checked again against a fresh read when it is confirmed, and when a run that
//! crashed before the step's first call is resumed: the fleet may have moved on meanwhile.

use crate::fixtures::epoch;
use crate::playbooks::{by_name, config, playbook, promote_at, run_at};

use dake::config::{FaultKind, IncidentKind};
use dake::domain::TargetHealth;
use dake::domain::call::ProviderCall;
use dake::provider::sim::SimFleet;
use dake::runbook::engine::{Phase, Run};
use dake::runbook::event::{Effect, Event};
use dake::runbook::plan::var;
use dake::runbook::record::{Record, StepStatus};
use dake::runbook::setup::resume_context;

fn refusal(fx: &[Effect]) -> Option<String> {
    fx.iter().find_map(|e| match e {
        Effect::Refused(r) => Some(r.clone()),
        _ => None,
    })
}

fn calls(fx: &[Effect]) -> Vec<ProviderCall> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Call { call, .. } => Some(call.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_master_that_came_back_after_the_plan_was_shown_is_fenced_as_it_is_now() {
    let mut f = SimFleet::new(&config(), epoch());
    f.inject(IncidentKind::MasterDown, None).unwrap();
    f.advance_to(30.0);
    let shown = f.snapshot();
    let (mut run, _) = promote_at(&shown, "fence-old-master");
    run.advance(Event::Proceed { snap: &shown }, epoch());
    let Phase::Confirming { plan, .. } = &run.phase else {
        panic!("{:?}", run.phase);
    };
    assert!(
        matches!(plan.calls[0], ProviderCall::StopInstances { .. }),
        "{plan:?}"
    );
    // The operator reads the plan; meanwhile the master answers again.
    f.spring(FaultKind::MasterComesBack, None).unwrap();
    f.advance_to(40.0);
    let now = f.snapshot();
    let fx = run.advance(Event::Confirm { snap: &now }, epoch());
    assert!(
        calls(&fx).is_empty(),
        "nothing runs on a stale plan: {fx:?}"
    );
    let why = refusal(&fx).expect("refused");
    assert!(
        why.starts_with("the fleet changed since the plan was shown")
            && why.contains("SQL")
            && why.contains("confirm again"),
        "{why}"
    );
    let Phase::Confirming { plan, .. } = &run.phase else {
        panic!("the new plan is shown: {:?}", run.phase);
    };
    assert!(
        matches!(plan.calls[0], ProviderCall::Sql { .. }),
        "{plan:?}"
    );
    // Confirmed again, the calls the operator now saw are the ones made.
    let fx = run.advance(Event::Confirm { snap: &now }, epoch());
    assert!(
        matches!(calls(&fx)[..], [ProviderCall::Sql { .. }]),
        "{fx:?}"
    );
}

#[test]
fn a_guard_that_holds_no_more_at_the_confirmation_refuses() {
    let mut f = SimFleet::new(&config(), epoch());
    f.inject(IncidentKind::SlowWeb, Some("web-3")).unwrap();
    let shown = f.snapshot();
    let web3 = by_name(&shown, "web-3").clone();
    let dereg = playbook("web-replace").step_index("deregister").unwrap();
    let replacement = by_name(&shown, "web-1").id.clone();
    let mut run = run_at(
        "web-replace",
        &web3,
        dereg,
        &[],
        &[(var::REPLACEMENT, replacement.as_str())],
    );
    run.advance(Event::Proceed { snap: &shown }, epoch());
    assert!(
        matches!(run.phase, Phase::Confirming { .. }),
        "{:?}",
        run.phase
    );
    // Every other web server leaves service before the Enter.
    let mut now = shown.clone();
    for i in now.instances.iter_mut().filter(|i| i.id != web3.id) {
        if i.target.is_some() {
            i.target = Some(TargetHealth::Unhealthy);
        }
    }
    let fx = run.advance(Event::Confirm { snap: &now }, epoch());
    assert!(calls(&fx).is_empty(), "{fx:?}");
    let why = refusal(&fx).expect("refused");
    assert!(
        why.starts_with("the fleet changed since the plan was shown") && why.contains("healthy"),
        "{why}"
    );
    assert_eq!(run.phase, Phase::Ready);
}

#[test]
fn a_run_resumed_before_its_steps_first_call_plans_it_again() {
    let mut f = SimFleet::new(&config(), epoch());
    f.inject(IncidentKind::MasterDown, None).unwrap();
    f.advance_to(30.0);
    let snap = f.snapshot();
    let (mut run, fence) = promote_at(&snap, "fence-old-master");
    run.advance(Event::Proceed { snap: &snap }, epoch());
    run.advance(Event::Confirm { snap: &snap }, epoch());
    // The console died right after the step started: its first call never went out.
    let started = run
        .records
        .iter()
        .position(|r| matches!(r, Record::StepStarted { .. }))
        .unwrap();
    let records = &run.records[..=started];
    let mut resumed = Run::replay(
        records,
        playbook("db-promote"),
        resume_context(&config(), &run.ctx.run_id),
    )
    .unwrap();
    resumed.ctx.vars.extend(run.ctx.vars.clone());
    assert!(matches!(resumed.phase, Phase::Calling { .. }));
    let fx = resumed.resume(epoch());
    assert!(
        calls(&fx).is_empty(),
        "nothing sent from the old plan: {fx:?}"
    );
    assert_eq!(resumed.phase, Phase::Ready);
    assert_eq!(resumed.steps[fence].status, StepStatus::Pending);
    // The master came back meanwhile: the step is planned as the fleet is now.
    f.spring(FaultKind::MasterComesBack, None).unwrap();
    f.advance_to(40.0);
    let now = f.snapshot();
    resumed.advance(Event::Proceed { snap: &now }, epoch());
    let Phase::Confirming { plan, .. } = &resumed.phase else {
        panic!("{:?}", resumed.phase);
    };
    assert!(
        matches!(plan.calls[0], ProviderCall::Sql { .. }),
        "{plan:?}"
    );
}

/// The drill master down, then back and answering, `secs` into the drill.
fn came_back_at(secs: f64) -> SimFleet {
    let mut f = SimFleet::new(&config(), epoch());
    f.inject(IncidentKind::MasterDown, None).unwrap();
    f.advance_to(30.0);
    f.spring(FaultKind::MasterComesBack, None).unwrap();
    f.advance_to(secs);
    f
}

#[test]
fn a_fenced_master_writable_again_is_fenced_again_before_the_promotion() {
    let mut f = came_back_at(40.0);
    let snap = f.snapshot();
    let master = snap.master().unwrap().clone();
    let r1 = by_name(&snap, "db-replica-1").id.clone();
    // Fenced over SQL, then its read_only turned off again (a restart of MariaDB does that).
    let sql = |statement: &str| ProviderCall::Sql {
        instance_id: master.id.clone(),
        statements: vec![statement.to_string()],
        kill_clients: false,
    };
    f.apply(&sql("SET GLOBAL read_only = ON")).unwrap();
    f.apply(&sql("SET GLOBAL read_only = OFF")).unwrap();
    f.advance_to(50.0);
    let now = f.snapshot();
    let (run, _) = promote_at(&snap, "promote");
    let plan = run.preview(&now).unwrap().unwrap();
    match plan.calls.as_slice() {
        [
            ProviderCall::Sql {
                instance_id,
                statements,
                kill_clients: true,
            },
            ProviderCall::Sql { .. },
            ..,
        ] => {
            assert_eq!(instance_id, &master.id);
            assert_eq!(statements, &["SET GLOBAL read_only = ON".to_string()]);
        }
        other => panic!("not fenced first: {other:#?}"),
    }
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("answers writable again: fenced again")),
        "{:?}",
        plan.warnings
    );
    // Read-only as left by the fence, nothing is repeated.
    f.apply(&sql("SET GLOBAL read_only = ON")).unwrap();
    f.advance_to(60.0);
    let plan = run.preview(&f.snapshot()).unwrap().unwrap();
    assert!(
        matches!(&plan.calls[0], ProviderCall::Sql { instance_id, .. } if *instance_id == r1),
        "{:#?}",
        plan.calls
    );
}

#[test]
fn db_ebs_move_does_not_stop_a_master_that_came_back() {
    let f = came_back_at(60.0);
    let snap = f.snapshot();
    let master = snap.master().unwrap().clone();
    let stop = playbook("db-ebs-move").step_index("stop").unwrap();
    let mut run = run_at("db-ebs-move", &master, stop, &[], &[]);
    let fx = run.advance(Event::Proceed { snap: &snap }, epoch());
    let why = refusal(&fx).expect("refused");
    assert!(
        why.contains("MySQL answers") && why.contains("override `master-answers`"),
        "{why}"
    );
    assert!(calls(&fx).is_empty());
    let mut run = run_at(
        "db-ebs-move",
        &master,
        stop,
        &[dake::runbook::overrides::Override::MasterAnswers],
        &[],
    );
    run.advance(Event::Proceed { snap: &snap }, epoch());
    assert!(
        matches!(run.phase, Phase::Confirming { .. }),
        "{:?}",
        run.phase
    );
}

#[test]
fn a_master_is_back_only_on_a_heartbeat_written_after_the_boot() {
    use dake::runbook::model::WaitKind;
    use dake::runbook::wait::evaluate;
    let mut f = SimFleet::new(&config(), epoch());
    f.advance_to(60.0);
    let mut snap = f.snapshot();
    let master = snap.master().unwrap().clone();
    let ctx = run_at("db-ebs-move", &master, 1, &[], &[]).ctx;
    // Healthy checks and a heartbeat 10 s old, as a minute metric can show after the boot.
    let m = snap
        .instances
        .iter_mut()
        .find(|i| i.id == master.id)
        .unwrap();
    m.db.as_mut().unwrap().heartbeat_age_secs = 10.0;
    let booted = |secs_ago: i64| snap.taken_at - chrono::Duration::seconds(secs_ago);
    let w = evaluate(WaitKind::MasterAnswering, &ctx, &snap, booted(5));
    assert!(!w.done, "a beat from before the boot: {}", w.detail);
    assert!(w.detail.contains("from before the boot"), "{}", w.detail);
    let w = evaluate(WaitKind::MasterAnswering, &ctx, &snap, booted(30));
    assert!(w.done, "{}", w.detail);
    // Read over MySQL, it must take writes too.
    let m = snap
        .instances
        .iter_mut()
        .find(|i| i.id == master.id)
        .unwrap();
    let server = m.db.as_mut().unwrap().server.as_mut().unwrap();
    server.read_only = true;
    let w = evaluate(WaitKind::MasterAnswering, &ctx, &snap, booted(30));
    assert!(
        !w.done && w.detail.contains("MySQL read-only"),
        "{}",
        w.detail
    );
}

#[test]
fn a_wait_lasts_as_long_as_its_data_and_its_resource_need() {
    let mut f = SimFleet::new(&config(), epoch());
    f.inject(IncidentKind::SlowWeb, Some("web-3")).unwrap();
    let mut snap = f.snapshot();
    let web3 = by_name(&snap, "web-3").clone();
    let replacement = by_name(&snap, "web-1").id.clone();
    let dereg = playbook("web-replace").step_index("deregister").unwrap();
    let run = run_at(
        "web-replace",
        &web3,
        dereg,
        &[],
        &[(var::REPLACEMENT, replacement.as_str())],
    );
    // The drill's drain is short: the step's own 300 s will do.
    let plan = run.preview(&snap).unwrap().unwrap();
    assert_eq!(plan.wait_secs, None, "{plan:?}");
    // A target group that drains for 600 s: the wait is that and a margin, and says why.
    snap.deregistration_delay_secs = Some(600);
    let plan = run.preview(&snap).unwrap().unwrap();
    assert_eq!(plan.wait_secs, Some(660));
    assert_eq!(
        plan.wait_why.as_deref(),
        Some("the target group's deregistration delay is 600 s")
    );
    // The database tier's state three minutes late (CloudWatch): the promote's wait for a
    // writable master is that much longer.
    let mut f = SimFleet::new(&config(), epoch());
    f.inject(IncidentKind::MasterDown, None).unwrap();
    let mut snap = f.snapshot();
    snap.db_data_latency_secs = 240;
    let (run, promote) = promote_at(&snap, "promote");
    let plan = run.preview(&snap).unwrap().unwrap();
    let step = &playbook("db-promote").steps[promote];
    assert_eq!(plan.wait_secs, Some(step.timeout_secs + 240));
    assert!(plan.wait_why.unwrap().contains("240 s late"));
}
