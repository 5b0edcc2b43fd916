//! Each refusal lifted alone, by name, journaled on the operator's name; a healthy web server
//! is not replaced unless that is what the operator typed.

use crate::playbooks::{Drill, by_name, config, drive, playbook, run_at};

use dake::config::IncidentKind;
use dake::domain::Role;
use dake::provider::Provider;
use dake::runbook::engine::{Phase, Run};
use dake::runbook::event::{Effect, Event};
use dake::runbook::journal;
use dake::runbook::overrides::Override;
use dake::runbook::plan::var;
use dake::runbook::record::StepStatus;
use dake::runbook::setup::resume_context;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_web_server_is_not_replaced_unless_that_override_is_typed() {
    let d = Drill::new(config(), IncidentKind::SlowWeb, Some("web-3"));
    let webs = d.snap().await.by_role(Role::Web).count();
    let mut s = d.start("web-replace", "web-1", false, &[], true).await;
    let (outcome, message) = drive(&mut s).await;
    assert_eq!(outcome, "refused", "{message}");
    assert!(
        message.contains("step 1 (compare) refused")
            && message.contains("not an outlier")
            && message.contains("vs peers' median")
            && message.contains("--override not-an-outlier"),
        "{message}"
    );
    assert!(s.run.steps.iter().all(|st| st.calls.is_empty()));
    assert_eq!(s.run.offered, Some(Override::NotAnOutlier));

    // Another refusal's override does not lift this one.
    let mut other = d
        .start(
            "web-replace",
            "web-1",
            false,
            &[Override::LaggingReplica],
            true,
        )
        .await;
    assert_eq!(drive(&mut other).await.0, "refused");

    // Given mid-run, on the operator's name: the step is planned again and goes on.
    let now = d.sim.now();
    let fx = s.run.advance(Event::Override(Override::NotAnOutlier), now);
    s.h.carry(&mut s.run, fx).await.unwrap();
    let (outcome, message) = drive(&mut s).await;
    assert_ne!(outcome, "refused", "{message}");
    assert_eq!(s.run.steps[0].status, StepStatus::Done);
    let records = journal::read(&s.journal).unwrap();
    assert!(
        records.iter().any(|r| r.describe().starts_with(
            "override: tester@drill overrode not-an-outlier: the server is no slower"
        ))
    );
    // The journal carries it: a replayed run has it too.
    let replayed = Run::replay(
        &records,
        playbook("web-replace"),
        resume_context(&d.config, &s.run.ctx.run_id),
    )
    .unwrap();
    assert!(replayed.ctx.allows(Override::NotAnOutlier));
    assert!(!replayed.ctx.allows(Override::AntiFlapping));
    assert!(d.snap().await.by_role(Role::Web).count() >= webs);
}

#[test]
fn the_slow_server_itself_is_compared_and_goes_on() {
    let mut f = dake::provider::sim::SimFleet::new(&config(), crate::fixtures::epoch());
    f.inject(IncidentKind::SlowWeb, Some("web-3")).unwrap();
    let snap = f.snapshot();
    let web3 = by_name(&snap, "web-3").clone();
    let mut run = run_at("web-replace", &web3, 0, &[], &[]);
    let fx = run.advance(Event::Proceed { snap: &snap }, crate::fixtures::epoch());
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::Refused(_))),
        "{fx:?}"
    );
    assert_eq!(run.steps[0].status, StepStatus::Done);
    assert!(run.offered.is_none());
}

#[test]
fn an_errant_replica_stays_out_whatever_is_overridden() {
    let mut c = config();
    c.sim.faults.push(dake::config::SimFault {
        kind: dake::config::FaultKind::ErrantTransaction,
        at_secs: 10,
        target: Some("db-replica-1".into()),
        secs: None,
        operation: None,
    });
    c.sim.incidents.push(dake::config::SimIncident {
        kind: IncidentKind::MasterDown,
        at_secs: 40,
        target: None,
        for_secs: None,
    });
    let mut f = dake::provider::sim::SimFleet::new(&c, crate::fixtures::epoch());
    f.advance_to(120.0);
    let snap = f.snapshot();
    let master = snap.master().unwrap().clone();
    let rank = playbook("db-promote").step_index("rank").unwrap();
    // db-replica-2 lacks what the errant db-replica-1 received: both are refused.
    let mut run = run_at("db-promote", &master, rank, &[], &[]);
    let fx = run.advance(Event::Proceed { snap: &snap }, crate::fixtures::epoch());
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Refused(r) if r.contains("--override lagging-replica"))),
        "{fx:?}"
    );
    // Overridden, the one that is only behind is promoted, never the errant one.
    let mut run = run_at("db-promote", &master, rank, &Override::ALL, &[]);
    run.advance(Event::Proceed { snap: &snap }, crate::fixtures::epoch());
    assert_eq!(run.phase, Phase::Ready, "{:?}", run.steps[rank].note);
    let r2 = by_name(&snap, "db-replica-2").id.clone();
    assert_eq!(run.ctx.vars.get(var::NEW_MASTER), Some(&r2));
}
