//! The three playbooks end to end on the simulated fleet, in process, so the final fleet is
//! read back from the same provider the run acted on; their guards; a failing step; the
//! postmortem.
//!
//! The simulator runs on a virtual clock at 500x, so a 120 s wait passes in a quarter of a
//! second. Only injected incidents are present: the configured timeline is cleared, or its
//! master-down at 180 s would take down whichever instance the endpoint points at by then.

use crate::fixtures::epoch;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use serde_json::Value;
use tempfile::TempDir;

use dake::config::{Config, IncidentKind};
use dake::detect::detect;
use dake::domain::call::{CallKind, ProviderCall, TAG_QUARANTINE, TAG_RUN, TAG_STEP};
use dake::domain::{FleetSnapshot, FreeVolume, Instance, InstanceState, Role, TargetHealth};
use dake::domain::{TimeSeries, VolumeState};
use dake::headless::commands::{self, RunArgs};
use dake::headless::report::postmortem;
use dake::headless::run::{Headless, select};
use dake::provider::Provider;
use dake::provider::sim::{SimFleet, SimProvider};
use dake::runbook::engine::{Phase, Run};
use dake::runbook::event::{Effect, Event};
use dake::runbook::journal::{self, Journal};
use dake::runbook::model::{self, Confirm, Playbook};
use dake::runbook::overrides::Override;
use dake::runbook::plan::var;
use dake::runbook::record::{Record, StepStatus};
use dake::runbook::setup::{RunIds, context, incident_event_on};

/// No run here needs more than a few seconds of real time; a hang fails instead of blocking.
const RUN_TIMEOUT: StdDuration = StdDuration::from_secs(60);

/// The built-in config at 500x with no timeline incidents.
pub(crate) fn config() -> Config {
    let mut c = Config::builtin();
    c.sim.speed = 500.0;
    c.sim.incidents.clear();
    c
}

fn playbooks() -> Vec<Playbook> {
    model::load_all(None).unwrap()
}

pub(crate) fn playbook(id: &str) -> Playbook {
    playbooks().into_iter().find(|p| p.id == id).unwrap()
}

pub(crate) fn by_name<'a>(snap: &'a FleetSnapshot, name: &str) -> &'a Instance {
    snap.instances
        .iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("no {name} in the fleet"))
}

/// Instances the run launched (tagged `dake:run=<run id>`).
fn created_by<'a>(snap: &'a FleetSnapshot, run_id: &str) -> Vec<&'a Instance> {
    snap.instances
        .iter()
        .filter(|i| i.tags.get(TAG_RUN).is_some_and(|r| r == run_id))
        .collect()
}

fn healthy_targets(snap: &FleetSnapshot) -> BTreeSet<String> {
    snap.instances
        .iter()
        .filter(|i| i.target == Some(TargetHealth::Healthy))
        .map(|i| i.id.clone())
        .collect()
}

/// The fleet without its metrics and clock: what a refused step must leave exactly as it was.
fn shape(snap: &FleetSnapshot) -> Value {
    let mut v = serde_json::to_value(snap).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("taken_at");
    for inst in o["instances"].as_array_mut().unwrap() {
        let checks = inst["health"]["checks"].clone();
        inst["health"] = checks;
        if let Some(db) = inst["db"].as_object_mut() {
            db.remove("heartbeat_age_secs");
            db.remove("lag_history");
            // What the server holds moves on with its writes; its roles and threads do not.
            if let Some(server) = db.get_mut("server").and_then(Value::as_object_mut) {
                for moving in ["gtid_executed", "gtid_binlog_state", "heartbeat"] {
                    server.remove(moving);
                }
                if let Some(side) = server.get_mut("replica").and_then(Value::as_object_mut) {
                    side.remove("gtid_received");
                    side.remove("seconds_behind");
                }
            }
        }
    }
    v
}

pub(crate) fn statuses(run: &Run) -> Vec<StepStatus> {
    run.steps.iter().map(|s| s.status).collect()
}

/// A simulated fleet with one incident present, a journal dir, and the playbooks.
pub(crate) struct Drill {
    pub(crate) config: Config,
    pub(crate) sim: Arc<SimProvider>,
    provider: Arc<dyn Provider>,
    playbooks: Vec<Playbook>,
    dir: TempDir,
    /// One source for every run this drill starts: their ids never clash in its journal dir.
    run_ids: std::sync::Mutex<RunIds>,
}

/// A run just started: its engine, its driver and where it journals.
pub(crate) struct Started {
    pub(crate) run: Run,
    pub(crate) h: Headless,
    pub(crate) journal: PathBuf,
}

impl Drill {
    pub(crate) fn new(config: Config, incident: IncidentKind, target: Option<&str>) -> Drill {
        let drill = Drill::at(config, 0);
        drill
            .sim
            .with_fleet(|f| f.inject(incident, target))
            .unwrap();
        drill
    }

    /// The fleet `secs` into its configured timeline of incidents and traps.
    pub(crate) fn at(config: Config, secs: u32) -> Drill {
        let sim = Arc::new(SimProvider::new(&config, epoch(), f64::from(secs)));
        let provider: Arc<dyn Provider> = sim.clone();
        Drill {
            config,
            sim,
            provider,
            playbooks: playbooks(),
            dir: tempfile::tempdir().unwrap(),
            run_ids: std::sync::Mutex::new(RunIds::from_clock()),
        }
    }

    fn slow_web3() -> Drill {
        Drill::new(config(), IncidentKind::SlowWeb, Some("web-3"))
    }

    pub(crate) fn master_down(config: Config) -> Drill {
        Drill::new(config, IncidentKind::MasterDown, None)
    }

    pub(crate) async fn snap(&self) -> FleetSnapshot {
        self.provider.snapshot().await.unwrap()
    }

    /// A snapshot at least one sample after the injection: right after it, the down master
    /// still reports its replication IO thread running until the next sample (see
    /// `injected_master_down_is_consistent_before_the_next_sample`).
    async fn settled(&self) -> FleetSnapshot {
        let first = self.snap().await.taken_at;
        loop {
            let snap = self.snap().await;
            if snap.taken_at > first {
                return snap;
            }
            tokio::time::sleep(StdDuration::from_millis(5)).await;
        }
    }

    /// Starts `playbook` on `target` the way `dake run` does (incident recorded, journaled).
    pub(crate) async fn start(
        &self,
        playbook: &str,
        target: &str,
        quarantine: bool,
        overrides: &[Override],
        yes: bool,
    ) -> Started {
        let snap = self.snap().await;
        let (pb, inst) = select(&self.playbooks, &snap, playbook, target).unwrap();
        let now = self.provider.now();
        let run_id = self.run_ids.lock().unwrap().next(&pb.id, now);
        let ctx = context(
            &self.config,
            &run_id,
            (&inst.id, &inst.name),
            quarantine,
            overrides,
        );
        let (mut run, mut fx) = Run::start(ctx, pb.clone(), "tester@drill".into(), now);
        if let Some(ev) = incident_event_on(&snap, &self.config.detect, &inst.id) {
            fx.extend(run.advance(ev, now));
        }
        let journal = Journal::create(self.dir.path(), &run_id).unwrap();
        let path = journal.path().to_path_buf();
        let mut h = Headless::new(self.provider.clone(), journal, &run_id, yes, None);
        h.carry(&mut run, fx).await.unwrap();
        Started {
            run,
            h,
            journal: path,
        }
    }

    /// Starts and drives a run to its end with `--yes`.
    pub(crate) async fn run(
        &self,
        playbook: &str,
        target: &str,
        quarantine: bool,
    ) -> (Started, String) {
        let mut s = self.start(playbook, target, quarantine, &[], true).await;
        let (outcome, message) = drive(&mut s).await;
        assert_eq!(outcome, "finished", "{message}\n{:#?}", s.run.steps);
        (s, message)
    }
}

pub(crate) async fn drive(s: &mut Started) -> (&'static str, String) {
    tokio::time::timeout(RUN_TIMEOUT, s.h.drive(&mut s.run))
        .await
        .expect("the run did not stop within a minute")
        .expect("the journal was written")
}

/// Every call the journal announced was answered, and the answer came after its intent; and
/// it is a kind of call its step's action declares, which is what `dake iam-policy` grants.
fn assert_intents_answered(records: &[Record], playbook: &Playbook) {
    for (n, r) in records.iter().enumerate() {
        if let Record::Intent {
            step, index, call, ..
        } = r
        {
            let spec = &playbook.steps[*step];
            let action = spec.action;
            // A destructive step takes its tier's lease first.
            let lease = spec.destructive && call.kind() == CallKind::TakeLease;
            assert!(
                lease || action.makes().contains(&call.kind()),
                "step {} ({action:?}) made {call}, which its action does not declare, so the IAM policy would not grant it",
                step + 1
            );
            let answered = records[n + 1..].iter().any(|a| {
                matches!(a, Record::Result { step: s, index: i, .. } if s == step && i == index)
            });
            assert!(answered, "call {index} of step {} never answered", step + 1);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// web-replace

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_replace_end_to_end_leaves_exactly_one_replacement_in_service() {
    let d = Drill::slow_web3();
    let before = d.snap().await;
    let bad = by_name(&before, "web-3").clone();
    let peers: BTreeSet<String> = before
        .by_role(Role::Web)
        .filter(|i| i.id != bad.id)
        .map(|i| i.id.clone())
        .collect();
    assert_eq!(peers.len(), 3);
    assert_eq!(
        healthy_targets(&before),
        peers.iter().cloned().chain([bad.id.clone()]).collect()
    );
    let running_webs = |s: &FleetSnapshot| {
        s.by_role(Role::Web)
            .filter(|i| i.state == InstanceState::Running)
            .count()
    };
    let web_before = running_webs(&before);

    let (s, message) = d.run("web-replace", "web-3", false).await;
    let run_id = s.run.ctx.run_id.clone();
    assert_eq!(message, "all 6 steps of web-replace done");
    use StepStatus::{Done, TimedOut};
    assert_eq!(
        statuses(&s.run),
        [Done, TimedOut, Done, Done, Done, Done],
        "the restart does not cure it (drill default), so its wait runs out and the run goes on"
    );

    let after = d.snap().await;
    let created = created_by(&after, &run_id);
    assert_eq!(created.len(), 1, "exactly one replacement: {created:#?}");
    let new = created[0];
    assert_eq!(s.run.ctx.vars.get(var::REPLACEMENT), Some(&new.id));
    assert_eq!(new.tags.get(TAG_STEP).map(String::as_str), Some("2"));
    assert_eq!(new.role, Role::Web);
    assert_eq!(new.state, InstanceState::Running);
    assert_eq!(new.health.checks.passed(), 2);
    assert_eq!(new.target, Some(TargetHealth::Healthy));
    // Same image and launch parameters; the role is a boot parameter.
    assert_eq!(new.image_id, bad.image_id);
    assert_eq!(new.launch.instance_type, bad.launch.instance_type);
    assert_eq!(new.launch.subnet_id, bad.launch.subnet_id);
    assert_eq!(new.az, bad.az);
    assert_eq!(new.launch.security_groups, bad.launch.security_groups);
    assert_eq!(new.launch.user_data, "role=web");
    assert_eq!(new.launch.user_data, bad.launch.user_data);

    match after.find(&bad.id) {
        None => {}
        Some(i) => {
            assert_eq!(i.state, InstanceState::Terminated, "{i:#?}");
            assert_eq!(i.target, None);
        }
    }
    assert_eq!(running_webs(&after), web_before);
    let mut want = peers.clone();
    want.insert(new.id.clone());
    assert_eq!(healthy_targets(&after), want);
    let created_at_step = d.sim.find_created(&run_id, 2).await.unwrap();
    assert_eq!(created_at_step, vec![new.id.clone()]);

    let records = journal::read(&s.journal).unwrap();
    assert_intents_answered(&records, &s.run.playbook);
    assert!(matches!(records.last(), Some(Record::Finished { .. })));
    let terminates = records
        .iter()
        .filter(|r| matches!(r, Record::Intent { call: ProviderCall::TerminateInstances { instance_id }, .. } if *instance_id == bad.id))
        .count();
    assert_eq!(terminates, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_replace_with_quarantine_stops_and_tags_the_bad_server() {
    let d = Drill::slow_web3();
    let bad = by_name(&d.snap().await, "web-3").clone();
    let (s, _) = d.run("web-replace", "web-3", true).await;
    let run_id = &s.run.ctx.run_id;
    let after = d.snap().await;
    let kept = after
        .find(&bad.id)
        .expect("a quarantined server stays in the fleet");
    assert_eq!(kept.state, InstanceState::Stopped);
    assert_eq!(kept.tags.get(TAG_QUARANTINE), Some(run_id));
    assert_eq!(kept.target, None, "out of the target group");
    let calls: Vec<&ProviderCall> = s.run.steps[5].calls.iter().map(|c| &c.call).collect();
    assert!(
        calls
            .iter()
            .all(|c| !matches!(c, ProviderCall::TerminateInstances { .. })),
        "{calls:#?}"
    );
    assert_eq!(created_by(&after, run_id).len(), 1);
    // A few more virtual minutes: still stopped, never terminated.
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    let later = d.snap().await;
    assert_eq!(later.find(&bad.id).unwrap().state, InstanceState::Stopped);
    assert_intents_answered(&journal::read(&s.journal).unwrap(), &s.run.playbook);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_replace_stops_at_the_restart_when_it_cures_the_server() {
    let mut c = config();
    c.sim.restart_fixes_slow_web = true;
    let d = Drill::new(c, IncidentKind::SlowWeb, Some("web-3"));
    let webs_before = d.snap().await.by_role(Role::Web).count();
    let (s, message) = d.run("web-replace", "web-3", false).await;
    assert!(
        message.starts_with("recovered at step 2 (restart-app)"),
        "{message}"
    );
    use StepStatus::{Done, Skipped};
    assert_eq!(
        statuses(&s.run),
        [Done, Done, Skipped, Skipped, Skipped, Skipped]
    );
    let run_id = &s.run.ctx.run_id;
    for step in 0..s.run.steps.len() {
        assert!(
            d.sim.find_created(run_id, step).await.unwrap().is_empty(),
            "step {step} created something"
        );
    }
    let after = d.snap().await;
    assert!(created_by(&after, run_id).is_empty());
    assert_eq!(after.by_role(Role::Web).count(), webs_before);
    let web3 = by_name(&after, "web-3");
    assert_eq!(web3.state, InstanceState::Running);
    assert_eq!(web3.target, Some(TargetHealth::Healthy));
    assert!(
        s.run.steps[2..].iter().all(|st| st.calls.is_empty()),
        "no call after the recovery"
    );
}

// ---------------------------------------------------------------------------------------------
// db-promote and db-ebs-move

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_promote_end_to_end_promotes_the_least_lagged_replica() {
    let d = Drill::master_down(config());
    let before = d.snap().await;
    let old = by_name(&before, "db-master").clone();
    let r1 = by_name(&before, "db-replica-1").id.clone();
    let r2 = by_name(&before, "db-replica-2").id.clone();
    assert!(
        detect(&before, &[], &d.config.detect)
            .iter()
            .any(|i| i.kind == IncidentKind::MasterDown)
    );

    let (s, _) = d.run("db-promote", "db-master", false).await;
    let run_id = &s.run.ctx.run_id;
    assert!(statuses(&s.run).iter().all(|st| *st == StepStatus::Done));
    assert!(
        s.run.steps[1]
            .note
            .as_deref()
            .is_some_and(|n| n.starts_with("chose db-replica-1")),
        "{:?}",
        s.run.steps[1].note
    );

    let after = d.snap().await;
    assert_eq!(after.db_endpoint.as_ref().unwrap().target_id, r1);
    // The old master was fenced (stopped: it did not answer) and retired: one master shows.
    let fenced = s.run.steps[s.run.playbook.step_index("fence-old-master").unwrap()]
        .note
        .clone()
        .unwrap_or_default();
    assert!(fenced.contains("stopped through EC2"), "{fenced}");
    assert!(after.find(&old.id).is_none(), "retired from the listing");
    assert_eq!(after.by_role(Role::DbMaster).count(), 1);
    let master = after.find(&r1).unwrap();
    assert_eq!(master.role, Role::DbMaster);
    let db = master.db.as_ref().unwrap();
    assert!(
        !db.read_only && db.running && db.source_id.is_none(),
        "{db:#?}"
    );
    let other = after.find(&r2).unwrap().db.as_ref().unwrap();
    assert_eq!(other.source_id.as_deref(), Some(r1.as_str()));
    assert!(other.io_thread_running);

    let created = created_by(&after, run_id);
    assert_eq!(created.len(), 1, "{created:#?}");
    let new = created[0];
    assert_eq!(s.run.ctx.vars.get(var::NEW_REPLICA), Some(&new.id));
    assert_eq!(new.role, Role::DbReplica);
    assert_eq!(new.state, InstanceState::Running);
    assert_eq!(new.image_id, old.image_id);
    assert_eq!(new.launch.user_data, "role=db-replica");
    let ndb = new.db.as_ref().unwrap();
    assert_eq!(ndb.source_id.as_deref(), Some(r1.as_str()));
    assert!(ndb.io_thread_running && ndb.read_only);
    let notified = d.sim.with_fleet(|f| f.notifications().to_vec());
    assert_eq!(notified, vec![new.id.clone()]);

    let incidents = detect(&after, &[], &d.config.detect);
    assert!(
        incidents.iter().all(|i| i.kind != IncidentKind::MasterDown),
        "{incidents:#?}"
    );
    assert_intents_answered(&journal::read(&s.journal).unwrap(), &s.run.playbook);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_ebs_move_end_to_end_moves_the_volume_to_a_new_master_in_its_zone() {
    let d = Drill::master_down(config());
    let before = d.snap().await;
    let old = by_name(&before, "db-master").clone();
    let data = old
        .volumes
        .iter()
        .find(|v| v.sole_copy)
        .expect("the master has its data volume")
        .clone();

    let (s, message) = d.run("db-ebs-move", "db-master", false).await;
    let run_id = &s.run.ctx.run_id;
    assert_eq!(message, "all 10 steps of db-ebs-move done");
    assert_eq!(
        s.run.steps[1].status,
        StepStatus::TimedOut,
        "the reboot does not bring the master back (drill default)"
    );

    let after = d.snap().await;
    let created = created_by(&after, run_id);
    assert_eq!(created.len(), 1, "{created:#?}");
    let new = created[0];
    assert_eq!(s.run.ctx.vars.get(var::NEW_MASTER), Some(&new.id));
    assert_eq!(s.run.ctx.vars.get(var::VOLUME), Some(&data.id));
    assert_eq!(new.role, Role::DbMaster);
    assert_eq!(new.state, InstanceState::Running);
    assert_eq!(new.az, old.az);
    assert_eq!(new.image_id, old.image_id);
    assert_eq!(new.launch.subnet_id, old.launch.subnet_id);
    let moved = new
        .volumes
        .iter()
        .find(|v| v.id == data.id)
        .unwrap_or_else(|| panic!("{} not attached to {}: {:#?}", data.id, new.id, new.volumes));
    assert_eq!(moved.device, data.device);
    assert!(moved.sole_copy);
    let db = new.db.as_ref().unwrap();
    assert!(db.running && !db.read_only, "{db:#?}");
    assert_eq!(after.db_endpoint.as_ref().unwrap().target_id, new.id);
    for name in ["db-replica-1", "db-replica-2"] {
        let r = by_name(&after, name).db.as_ref().unwrap();
        assert_eq!(r.source_id.as_deref(), Some(new.id.as_str()), "{name}");
        assert!(r.io_thread_running, "{name}");
    }
    match after.find(&old.id) {
        None => {}
        Some(i) => assert_eq!(i.state, InstanceState::Terminated),
    }
    assert!(
        !after.free_volumes.iter().any(|v| v.id == data.id),
        "the data volume is attached, not left free"
    );
    let incidents = detect(&after, &[], &d.config.detect);
    assert!(
        incidents.iter().all(|i| i.kind != IncidentKind::MasterDown),
        "{incidents:#?}"
    );
    assert_intents_answered(&journal::read(&s.journal).unwrap(), &s.run.playbook);
}

// ---------------------------------------------------------------------------------------------
// Guards

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_never_deregisters_the_last_healthy_target() {
    let d = Drill::slow_web3();
    // Without --yes the run goes as far as the first destructive step: deregister.
    let mut s = d.start("web-replace", "web-3", false, &[], false).await;
    let (outcome, message) = drive(&mut s).await;
    assert_eq!(outcome, "refused");
    assert!(message.contains("step 5 (deregister)"), "{message}");
    let web3 = s.run.ctx.target_id.clone();

    // Every other target leaves the load balancer, the replacement included.
    let snap = d.snap().await;
    let others: Vec<String> = snap
        .by_role(Role::Web)
        .filter(|i| i.id != web3 && i.target.is_some())
        .map(|i| i.id.clone())
        .collect();
    assert_eq!(others.len(), 4, "three peers and the replacement");
    d.sim.with_fleet(|f| {
        for id in &others {
            f.apply(&ProviderCall::DeregisterTarget {
                target_group: d.config.fleet.target_group.clone(),
                instance_id: id.clone(),
            })
            .unwrap();
        }
    });
    let drained = async {
        loop {
            let snap = d.snap().await;
            if others
                .iter()
                .all(|id| snap.find(id).unwrap().target.is_none())
            {
                return snap;
            }
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
    };
    let before = tokio::time::timeout(RUN_TIMEOUT, drained).await.unwrap();
    assert_eq!(healthy_targets(&before), BTreeSet::from([web3.clone()]));

    s.h.yes = true;
    let (outcome, message) = drive(&mut s).await;
    assert_eq!(outcome, "refused");
    assert!(
        message.contains("step 5 (deregister) refused") && message.contains("last healthy target"),
        "{message}"
    );
    assert_eq!(s.run.phase, Phase::Ready);
    assert_eq!(s.run.cursor, 4);
    assert!(s.run.steps[4].calls.is_empty());
    let after = d.snap().await;
    assert_eq!(shape(&after), shape(&before));
    assert_eq!(
        after.find(&web3).unwrap().target,
        Some(TargetHealth::Healthy)
    );
    let records = journal::read(&s.journal).unwrap();
    assert!(
        records.iter().any(|r| matches!(r, Record::Note { text, .. } if text.starts_with("refused deregister") && text.contains("last healthy target"))),
        "the refusal is in the timeline"
    );
    assert!(!records.iter().any(|r| matches!(
        r,
        Record::Intent {
            call: ProviderCall::DeregisterTarget { .. },
            ..
        }
    )));
}

/// A run of `id` on `target` with its cursor moved to step `step`, as if the ones before were
/// done, with `vars` recorded.
pub(crate) fn run_at(
    id: &str,
    target: &Instance,
    step: usize,
    overrides: &[Override],
    vars: &[(&str, &str)],
) -> Run {
    let ctx = context(
        &config(),
        "20261126T090000Z-test-0001",
        (&target.id, &target.name),
        false,
        overrides,
    );
    let (mut run, _) = Run::start(ctx, playbook(id), "tester@drill".into(), epoch());
    // As if the steps before had run: the tier's lease is taken already.
    run.ctx.vars.insert(
        var::LEASE.into(),
        format!(
            "drill/{}",
            if target.role == Role::Web {
                "web"
            } else {
                "db"
            }
        ),
    );
    for (k, v) in vars {
        run.ctx.vars.insert((*k).into(), (*v).into());
    }
    run.cursor = step;
    run
}

/// A db-promote run on the master of `snap` at `step`, db-replica-1 chosen to be promoted.
pub(crate) fn promote_at(snap: &FleetSnapshot, step: &str) -> (Run, usize) {
    let master = snap.master().unwrap().clone();
    let r1 = by_name(snap, "db-replica-1").id.clone();
    let index = playbook("db-promote").step_index(step).unwrap();
    let run = run_at(
        "db-promote",
        &master,
        index,
        &[],
        &[(var::NEW_MASTER, r1.as_str())],
    );
    (run, index)
}

fn refusal(fx: &[Effect]) -> Option<&str> {
    fx.iter().find_map(|e| match e {
        Effect::Refused(r) => Some(r.as_str()),
        _ => None,
    })
}

fn makes_calls(fx: &[Effect]) -> bool {
    fx.iter()
        .any(|e| matches!(e, Effect::Call { .. } | Effect::Resolve { .. }))
}

#[test]
fn guard_refuses_a_new_db_instance_outside_the_volume_zone() {
    let mut f = SimFleet::new(&config(), epoch());
    f.inject(IncidentKind::MasterDown, None).unwrap();
    let mut snap = f.snapshot();
    let master = snap.master().unwrap().clone();
    let elsewhere = snap
        .instances
        .iter()
        .map(|i| i.az.clone())
        .find(|az| *az != master.az)
        .expect("the fleet spans two zones");
    for (id, az) in [
        ("vol-0elsewhere", &elsewhere),
        ("vol-0samezone", &master.az),
    ] {
        snap.free_volumes.push(FreeVolume {
            id: id.into(),
            az: az.clone(),
            state: VolumeState::Available,
            size_gib: 500,
            sole_copy: true,
        });
    }
    let pb = playbook("db-ebs-move");
    let launch = pb.step_index("launch-db").unwrap();
    let vars = |vol| [(var::VOLUME, vol), (var::DEVICE, "/dev/xvdf")];

    let mut run = run_at("db-ebs-move", &master, launch, &[], &vars("vol-0elsewhere"));
    let before = run.clone();
    let fx = run.advance(Event::Proceed { snap: &snap }, epoch());
    let why = refusal(&fx).expect("refused");
    assert!(
        why.contains("vol-0elsewhere")
            && why.contains(&elsewhere)
            && why.contains(&master.az)
            && why.contains("zone"),
        "{why}"
    );
    assert!(!makes_calls(&fx));
    assert_eq!(run.phase, Phase::Ready);
    assert_eq!(run.steps, before.steps);
    assert_eq!(run.cursor, launch);

    // The same step with the volume in the master's zone launches there.
    let run = run_at("db-ebs-move", &master, launch, &[], &vars("vol-0samezone"));
    let p = run.preview(&snap).unwrap().unwrap();
    match p.calls.as_slice() {
        [ProviderCall::RunInstances { az, role, .. }] => {
            assert_eq!(*az, master.az);
            assert_eq!(*role, Role::DbMaster);
        }
        other => panic!("{other:#?}"),
    }
}

#[test]
fn try_start_starts_a_stopped_master_and_waits_for_one_still_stopping() {
    let mut f = SimFleet::new(&config(), epoch());
    f.inject(IncidentKind::MasterDown, None).unwrap();
    let master = f.snapshot().master().unwrap().clone();
    f.apply(&ProviderCall::StopInstances {
        instance_id: master.id.clone(),
        force: false,
    })
    .unwrap();
    let try_start = playbook("db-ebs-move").step_index("try-start").unwrap();
    let preview = |f: &SimFleet| {
        let snap = f.snapshot();
        let target = snap.find(&master.id).unwrap().clone();
        run_at("db-ebs-move", &target, try_start, &[], &[]).preview(&snap)
    };
    let stopping = preview(&f);
    let why = format!("{stopping:?}");
    assert!(why.contains("stopping"), "{why}");

    f.advance_to(60.0);
    assert_eq!(
        f.snapshot().find(&master.id).unwrap().state,
        InstanceState::Stopped
    );
    let p = preview(&f).unwrap().unwrap();
    assert_eq!(
        p.calls,
        [ProviderCall::StartInstances {
            instance_id: master.id.clone()
        }],
        "AWS refuses to reboot a stopped instance"
    );
    f.apply(&p.calls[0]).unwrap();
    f.advance_to(120.0);
    let started = f.snapshot().find(&master.id).unwrap().clone();
    assert_eq!(started.state, InstanceState::Running);
    assert!(
        started.db.as_ref().is_some_and(|d| d.running),
        "{started:#?}"
    );
}

/// Lag is heartbeat age beyond the master's own silence: put each replica `behind` seconds
/// behind a master silent for a minute.
fn set_lag(snap: &mut FleetSnapshot, behind: &[(&str, f32)]) {
    let master_id = snap.master().unwrap().id.clone();
    for i in &mut snap.instances {
        let Some(db) = i.db.as_mut() else { continue };
        if i.id == master_id {
            db.heartbeat_age_secs = 60.0;
        } else if let Some((_, b)) = behind.iter().find(|(n, _)| *n == i.name) {
            db.heartbeat_age_secs = 60.0 + b;
        }
    }
}

/// The drill fleet read as a fleet dake cannot reach: heartbeat figures only, where the lag
/// limit decides.
fn metrics_config() -> Config {
    let mut c = config();
    c.sim.database_source = dake::config::DbSource::Metrics;
    c
}

#[test]
fn guard_refuses_to_promote_when_every_replica_lags_unless_forced() {
    let mut f = SimFleet::new(&metrics_config(), epoch());
    f.inject(IncidentKind::MasterDown, None).unwrap();
    let mut snap = f.snapshot();
    set_lag(&mut snap, &[("db-replica-1", 30.0), ("db-replica-2", 45.0)]);
    let master = snap.master().unwrap().clone();
    let r1 = by_name(&snap, "db-replica-1").id.clone();
    let r2 = by_name(&snap, "db-replica-2").id.clone();
    let rank = playbook("db-promote").step_index("rank").unwrap();

    let mut run = run_at("db-promote", &master, rank, &[], &[]);
    let fx = run.advance(Event::Proceed { snap: &snap }, epoch());
    let why = refusal(&fx).expect("refused");
    assert!(why.contains("every replica is rejected"), "{why}");
    assert!(
        why.contains("db-replica-1: 30.0s behind the master (limit 10s, sim)"),
        "{why}"
    );
    assert!(
        why.contains("db-replica-2: 45.0s behind the master (limit 10s, sim)"),
        "{why}"
    );
    assert!(why.contains("--override lagging-replica"), "{why}");
    assert!(!run.ctx.vars.contains_key(var::NEW_MASTER));
    assert_eq!(run.phase, Phase::Ready);

    // Forced: the least-behind one, and the finding still lists every rejection.
    let mut run = run_at(
        "db-promote",
        &master,
        rank,
        &[Override::LaggingReplica],
        &[],
    );
    run.advance(Event::Proceed { snap: &snap }, epoch());
    assert_eq!(run.ctx.vars.get(var::NEW_MASTER), Some(&r1));
    assert_eq!(run.steps[rank].status, StepStatus::Done);
    let note = run.steps[rank].note.clone().unwrap();
    assert!(note.starts_with("chose db-replica-1"), "{note}");
    assert!(
        note.contains("db-replica-2 rejected: 45.0s behind"),
        "{note}"
    );

    // Forcing overrides lag only: a replica tagged no-promote stays out even if it is closest.
    snap.instances
        .iter_mut()
        .find(|i| i.id == r1)
        .unwrap()
        .db
        .as_mut()
        .unwrap()
        .no_promote = true;
    let mut run = run_at(
        "db-promote",
        &master,
        rank,
        &[Override::LaggingReplica],
        &[],
    );
    run.advance(Event::Proceed { snap: &snap }, epoch());
    assert_eq!(run.ctx.vars.get(var::NEW_MASTER), Some(&r2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_replicas_refuse_a_real_promote_run_and_force_picks_the_least_behind() {
    let mut c = metrics_config();
    // A limit below zero: every replica is beyond it, however close it is.
    c.detect.replica_max_lag_secs = -1.0;
    let d = Drill::master_down(c);
    let before = d.settled().await;
    let r1 = by_name(&before, "db-replica-1").id.clone();

    let mut s = d.start("db-promote", "db-master", false, &[], true).await;
    let (outcome, message) = drive(&mut s).await;
    assert_eq!(outcome, "refused");
    assert!(message.contains("step 2 (rank) refused"), "{message}");
    for name in ["db-replica-1", "db-replica-2"] {
        assert!(
            message.contains(&format!("{name}: ")) && message.contains("behind the master"),
            "{message}"
        );
    }
    assert!(s.run.steps.iter().all(|st| st.calls.is_empty()));
    let after = d.snap().await;
    assert_eq!(shape(&after), shape(&before));
    assert_eq!(
        after.db_endpoint.as_ref().unwrap().target_id,
        by_name(&before, "db-master").id
    );

    let mut forced = d
        .start(
            "db-promote",
            "db-master",
            false,
            &[Override::LaggingReplica],
            true,
        )
        .await;
    let (outcome, message) = drive(&mut forced).await;
    assert_eq!(outcome, "finished", "{message}");
    assert_eq!(forced.run.ctx.vars.get(var::NEW_MASTER), Some(&r1));
    assert_eq!(d.snap().await.db_endpoint.unwrap().target_id, r1);
}

fn run_args<'a>(playbook: &'a str, overrides: &'a [Override]) -> RunArgs<'a> {
    RunArgs {
        playbook,
        target: "db-master",
        dry_run: false,
        yes: true,
        overrides,
        take_over_lease: None,
        quarantine: false,
        json: true,
        mirror: None,
        lang: dake::i18n::Lang::En,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_flapping_refuses_a_second_failover_unless_forced() {
    // Each drill fleet starts at the wall clock and runs at 500x: a window of days, so that no
    // stall of this machine between two runs can carry the second one out of it.
    let config = || {
        let mut c = config();
        c.runbook.anti_flap_secs = 30 * 24 * 3600;
        c
    };
    let first = Drill::master_down(config());
    let dir = first.dir.path();
    let code = commands::run(
        first.provider.clone(),
        &first.config,
        &first.playbooks,
        dir,
        run_args("db-promote", &[]),
    )
    .await
    .unwrap();
    assert_eq!(code, 0);
    assert_eq!(journal::list(dir).len(), 1);

    // The master "dies" again moments later: a fresh fleet, the same journal dir.
    for pb in ["db-promote", "db-ebs-move"] {
        let again = Drill::master_down(config());
        let before = shape(&again.settled().await);
        let err = commands::run(
            again.provider.clone(),
            &again.config,
            &again.playbooks,
            dir,
            run_args(pb, &[]),
        )
        .await
        .expect_err("a second failover within the window is refused")
        .to_string();
        assert!(err.contains("anti-flapping"), "{err}");
        assert!(err.contains("--override anti-flapping"), "{err}");
        assert!(err.contains("db-promote"), "names the earlier run: {err}");
        assert_eq!(
            journal::list(dir).len(),
            1,
            "a refused run journals nothing"
        );
        assert_eq!(shape(&again.snap().await), before);
    }

    let forced = Drill::master_down(config());
    let code = commands::run(
        forced.provider.clone(),
        &forced.config,
        &forced.playbooks,
        dir,
        run_args("db-promote", &[Override::AntiFlapping]),
    )
    .await
    .unwrap();
    assert_eq!(code, 0);
    let runs = journal::list(dir);
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| {
        r.ended
            .as_deref()
            .is_some_and(|e| e.starts_with("finished"))
    }));
}

#[test]
fn select_refuses_unknown_playbooks_targets_and_wrong_roles() {
    let snap = SimFleet::new(&config(), epoch()).snapshot();
    let pbs = playbooks();
    let master = by_name(&snap, "db-master");

    let err = select(&pbs, &snap, "web-replace", "db-master").unwrap_err();
    assert!(
        err.contains("web-replace targets a web instance")
            && err.contains("db-master")
            && err.contains(&master.id),
        "{err}"
    );
    let err = select(&pbs, &snap, "db-promote", "web-1").unwrap_err();
    assert!(
        err.contains("db-master instance") && err.contains("is a web"),
        "{err}"
    );

    let err = select(&pbs, &snap, "web-rebuild", "web-3").unwrap_err();
    assert!(err.contains("unknown playbook `web-rebuild`"), "{err}");
    for id in ["web-replace", "db-ebs-move", "db-promote"] {
        assert!(err.contains(id), "{err}");
    }

    let err = select(&pbs, &snap, "web-replace", "web-99").unwrap_err();
    assert!(err.contains("no instance `web-99`"), "{err}");
    let err = select(&pbs, &snap, "web-replace", "i-0000000000000000").unwrap_err();
    assert!(err.contains("i-0000000000000000"), "{err}");

    // By name or by id, the same instance.
    let web3 = by_name(&snap, "web-3");
    let (_, by_id) = select(&pbs, &snap, "web-replace", &web3.id).unwrap();
    let (_, by_nm) = select(&pbs, &snap, "web-replace", "web-3").unwrap();
    assert_eq!(by_id.id, by_nm.id);
}

// ---------------------------------------------------------------------------------------------
// Faults

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_launch_stops_the_run_and_a_retry_finishes_it_with_one_replacement() {
    let d = Drill::slow_web3();
    d.sim.with_fleet(|f| {
        f.fail_next(
            "RunInstances",
            "InsufficientInstanceCapacity: We currently do not have sufficient c5.large capacity",
        )
    });
    let mut s = d.start("web-replace", "web-3", false, &[], true).await;
    let (outcome, message) = drive(&mut s).await;
    assert_eq!(outcome, "failed");
    assert!(
        message.starts_with("step 3 (launch-replacement) failed")
            && message.contains("InsufficientInstanceCapacity"),
        "{message}"
    );
    assert_eq!(s.run.cursor, 2);
    assert_eq!(s.run.steps[2].status, StepStatus::Failed);
    assert!(
        matches!(&s.run.phase, Phase::Failed { error } if error.contains("InsufficientInstanceCapacity"))
    );
    let run_id = s.run.ctx.run_id.clone();
    assert!(created_by(&d.snap().await, &run_id).is_empty());
    assert!(d.sim.find_created(&run_id, 2).await.unwrap().is_empty());
    assert!(!s.run.ctx.vars.contains_key(var::REPLACEMENT));

    let records = journal::read(&s.journal).unwrap();
    let last_step = records.iter().rev().find_map(|r| match r {
        Record::StepFinished {
            step, status, note, ..
        } => Some((*step, *status, note.clone())),
        _ => None,
    });
    let (step, status, note) = last_step.expect("a step record");
    assert_eq!((step, status), (2, StepStatus::Failed));
    assert!(note.unwrap().contains("InsufficientInstanceCapacity"));
    assert!(matches!(
        records
            .iter()
            .rev()
            .find(|r| matches!(r, Record::Result { .. })),
        Some(Record::Result {
            step: 2,
            outcome: Err(_),
            ..
        })
    ));

    // Proceeding does nothing until the operator retries.
    let snap = d.snap().await;
    let fx = s
        .run
        .advance(Event::Proceed { snap: &snap }, d.provider.now());
    assert!(refusal(&fx).is_some_and(|r| r.contains("retry")));
    assert!(!makes_calls(&fx));

    let fx = s.run.advance(Event::Retry, d.provider.now());
    s.h.carry(&mut s.run, fx).await.unwrap();
    let (outcome, message) = drive(&mut s).await;
    assert_eq!(outcome, "finished", "{message}");
    let after = d.snap().await;
    let created = created_by(&after, &run_id);
    assert_eq!(created.len(), 1, "{created:#?}");
    assert_eq!(created[0].target, Some(TargetHealth::Healthy));
    assert_eq!(s.run.steps[2].status, StepStatus::Done);
    assert_eq!(
        s.run.steps[2].calls.len(),
        2,
        "the failed call and its retry"
    );
    let records = journal::read(&s.journal).unwrap();
    assert!(
        records
            .iter()
            .any(|r| matches!(r, Record::Note { text, .. } if text == "retrying step 3"))
    );
    assert!(matches!(records.last(), Some(Record::Finished { .. })));
}

// ---------------------------------------------------------------------------------------------
// Postmortem

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postmortem_of_a_finished_web_replace_run() {
    let d = Drill::slow_web3();
    let (s, _) = d.run("web-replace", "web-3", false).await;
    let run_id = &s.run.ctx.run_id;
    let records = journal::read(&s.journal).unwrap();
    let pb = playbook("web-replace");
    let md = postmortem(&records, &pb, dake::i18n::Lang::En);
    assert!(
        md.starts_with("# Postmortem: Replace a slow web server on web-3"),
        "{md}"
    );
    assert!(md.contains(&format!("- Run: `{run_id}`")), "{md}");
    assert!(md.contains("- Run by: tester@drill"), "{md}");
    assert!(md.contains("- Incident: slow web server web-3"), "{md}");
    for measure in ["time to detect", "time to mitigate", "time to recover"] {
        let row = md
            .lines()
            .find(|l| l.starts_with(&format!("| {measure}")))
            .unwrap_or_else(|| panic!("no {measure} row:\n{md}"));
        assert!(!row.ends_with("| — |"), "{row}");
    }
    let want = ["done", "timed out", "done", "done", "done", "done"];
    for (i, (step, status)) in pb.steps.iter().zip(want).enumerate() {
        let prefix = format!("| {} | {} | {status} | ", i + 1, step.name);
        assert!(
            md.lines().any(|l| l.starts_with(&prefix)),
            "no `{prefix}` row:\n{md}"
        );
    }
    let timeline = md.split("## Timeline (UTC)").nth(1).expect("a timeline");
    assert_eq!(
        timeline.lines().filter(|l| l.starts_with("- ")).count(),
        records.len(),
        "one timeline line per journal record"
    );
    assert!(timeline.contains("call RunInstances"), "{timeline}");
    assert!(timeline.contains("run finished: all 6 steps of web-replace done"));
    // The report command reads the same journal.
    let via_command =
        commands::report(&d.playbooks, d.dir.path(), run_id, dake::i18n::Lang::En).unwrap();
    assert_eq!(via_command, md);
}

/// Drives `run` on `fleet` with no clock but the fleet's own: a wait observes one sample at a
/// time, so the same seed always gives the same journal.
fn drive_deterministically(fleet: &mut SimFleet, run: &mut Run, fx: Vec<Effect>) {
    let now = |f: &SimFleet| f.epoch() + Duration::seconds(f.now_secs());
    let mut queue: std::collections::VecDeque<Effect> = fx.into();
    for _ in 0..10_000 {
        while let Some(e) = queue.pop_front() {
            match e {
                Effect::Call { index, call, .. } => {
                    let ev = match fleet.apply(&call) {
                        Ok(outcome) => Event::CallDone { index, outcome },
                        Err(error) => Event::CallFailed { index, error },
                    };
                    queue.extend(run.advance(ev, now(fleet)));
                }
                Effect::Refused(r) => panic!("refused: {r}"),
                Effect::Resolve { .. } => panic!("nothing to resolve in a fresh run"),
                Effect::Release(call) => {
                    fleet.apply(&call).unwrap();
                }
                Effect::Journal(_) | Effect::Sync => {}
            }
        }
        let t = now(fleet);
        let fx = match run.phase.clone() {
            Phase::Finished { .. } => return,
            Phase::Aborted { reason } => panic!("aborted: {reason}"),
            Phase::Failed { error } => panic!("failed: {error}"),
            Phase::Calling { .. } => panic!("a call is unanswered"),
            Phase::Ready => run.advance(
                Event::Proceed {
                    snap: &fleet.snapshot(),
                },
                t,
            ),
            Phase::Confirming { plan, .. } => {
                let mut fx = Vec::new();
                if plan.confirm == Confirm::TypeId {
                    let id = plan.confirm_id.unwrap();
                    for c in id[id.len() - 4..].chars() {
                        fx.extend(run.advance(Event::TypeChar(c), t));
                    }
                }
                fx.extend(run.advance(
                    Event::Confirm {
                        snap: &fleet.snapshot(),
                    },
                    t,
                ));
                fx
            }
            Phase::Waiting { .. } => {
                let next = (fleet.now_secs() + fleet.interval()) as f64;
                fleet.advance_to(next);
                let t = now(fleet);
                run.advance(
                    Event::Observe {
                        snap: &fleet.snapshot(),
                    },
                    t,
                )
            }
        };
        queue.extend(fx);
    }
    panic!("the run did not finish: {:?}", run.phase);
}

/// Replaces what differs between runs and machines with placeholders: date-times and times
/// (the local zone differs), the run id, and EC2 and request ids (numbered by first sight, so
/// the same instance keeps the same placeholder).
fn normalise(text: &str, run_id: &str) -> String {
    let text = text.replace(run_id, "<run-id>");
    let b = text.as_bytes();
    let digits =
        |at: usize, n: usize| b.len() >= at + n && b[at..at + n].iter().all(u8::is_ascii_digit);
    let is_at = |at: usize, c: u8| b.get(at) == Some(&c);
    let time_at = |at: usize| {
        digits(at, 2)
            && is_at(at + 2, b':')
            && digits(at + 3, 2)
            && is_at(at + 5, b':')
            && digits(at + 6, 2)
    };
    let mut seen: Vec<String> = Vec::new();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let boundary = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        if boundary
            && digits(i, 4)
            && is_at(i + 4, b'-')
            && digits(i + 5, 2)
            && is_at(i + 7, b'-')
            && digits(i + 8, 2)
            && is_at(i + 10, b' ')
            && time_at(i + 11)
        {
            out.push_str("<date-time>");
            i += 19;
            continue;
        }
        if boundary && time_at(i) {
            out.push_str("<time>");
            i += 8;
            continue;
        }
        if boundary {
            let rest = &text[i..];
            let id = ["i-0", "vol-0", "ami-0", "subnet-0", "sg-0", "sim-req-"]
                .iter()
                .find_map(|p| {
                    let tail = rest.strip_prefix(p)?;
                    let n = tail.bytes().take_while(|c| c.is_ascii_hexdigit()).count();
                    (n >= 6).then(|| (*p, &rest[..p.len() + n]))
                });
            if let Some((prefix, id)) = id {
                let kind = prefix.trim_end_matches('0').trim_end_matches('-');
                let n = match seen.iter().position(|s| s == id) {
                    Some(n) => n,
                    None => {
                        seen.push(id.to_string());
                        seen.len() - 1
                    }
                };
                let same_kind = seen[..n].iter().filter(|s| s.starts_with(prefix)).count();
                out.push_str(&format!("<{kind}-{}>", same_kind + 1));
                i += id.len();
                continue;
            }
        }
        let c = text[i..].chars().next().unwrap();
        out.push(c);
        i += c.len_utf8();
    }
    out
}

#[test]
fn normalise_replaces_times_and_ids_only() {
    let text = "2026-11-26 09:01:02 UTC (18:01:02 local) i-0abcdef0123456789 i-0abcdef0123456789 \
                i-0ffffffffffffffff sim-req-000012 run-x web-3 12:34";
    assert_eq!(
        normalise(text, "run-x"),
        "<date-time> UTC (<time> local) <i-1> <i-1> <i-2> <sim-req-1> <run-id> web-3 12:34"
    );
}

#[test]
fn postmortem_snapshot_of_a_deterministic_web_replace_run() {
    let config = config();
    let mut fleet = SimFleet::new(&config, epoch());
    fleet.inject(IncidentKind::SlowWeb, Some("web-3")).unwrap();
    let snap = fleet.snapshot();
    let web3 = by_name(&snap, "web-3");
    let run_id = "20261126T090000Z-web-replace-snap";
    let ctx = context(&config, run_id, (&web3.id, &web3.name), false, &[]);
    let pb = playbook("web-replace");
    let now = fleet.epoch() + Duration::seconds(fleet.now_secs());
    let (mut run, mut fx) = Run::start(ctx, pb.clone(), "tester@drill".into(), now);
    fx.extend(run.advance(
        incident_event_on(&snap, &config.detect, &web3.id).expect("slow-web is detected"),
        now,
    ));
    drive_deterministically(&mut fleet, &mut run, fx);
    assert_eq!(
        run.phase,
        Phase::Finished {
            outcome: "all 6 steps of web-replace done".into()
        }
    );
    // The fleet ends as in the async run.
    let after = fleet.snapshot();
    assert_eq!(created_by(&after, run_id).len(), 1);
    assert!(
        after
            .find(&web3.id)
            .is_none_or(|i| i.state == InstanceState::Terminated)
    );
    let md = postmortem(&run.records, &pb, dake::i18n::Lang::En);
    insta::assert_snapshot!(normalise(&md, run_id));
}

#[test]
fn time_series_are_not_part_of_the_shape() {
    // `shape` must ignore metrics but see everything else: a guard test comparing shapes
    // would otherwise pass vacuously or fail on noise.
    let snap = SimFleet::new(&config(), epoch()).snapshot();
    let mut noisy = snap.clone();
    for i in &mut noisy.instances {
        i.health.p99_ms = TimeSeries::new(3);
        if let Some(db) = i.db.as_mut() {
            db.heartbeat_age_secs += 5.0;
        }
    }
    assert_eq!(shape(&snap), shape(&noisy));
    let mut moved = snap.clone();
    moved.instances[0].target = None;
    assert_ne!(shape(&snap), shape(&moved));
    let mut stopped = snap.clone();
    stopped.instances[1].state = InstanceState::Stopped;
    assert_ne!(shape(&snap), shape(&stopped));
}

#[test]
fn injected_master_down_is_consistent_before_the_next_sample() {
    let mut f = SimFleet::new(&config(), epoch());
    f.inject(IncidentKind::MasterDown, None).unwrap();
    let io_thread = |f: &SimFleet| {
        f.snapshot()
            .master()
            .and_then(|m| m.db.as_ref())
            .map(|d| d.io_thread_running)
    };
    let injected = io_thread(&f);
    // One sample later, with no call in between, the dead master reports no thread running.
    let next = (f.now_secs() + f.interval()) as f64;
    f.advance_to(next);
    assert_eq!(io_thread(&f), Some(false));
    assert_eq!(
        injected,
        io_thread(&f),
        "the injected state already looks like that"
    );
}

#[test]
fn an_injected_master_down_is_not_repeated_by_the_timeline_after_a_failover() {
    // The built-in drill timeline: master-down at 180 s.
    let config = Config::builtin();
    let mut f = SimFleet::new(&config, epoch());
    f.inject(IncidentKind::MasterDown, None).unwrap();
    let snap = f.snapshot();
    let r1 = by_name(&snap, "db-replica-1").id.clone();
    // A quick failover, done well before 180 s.
    f.advance_to(30.0);
    f.apply(&ProviderCall::PromoteReplica {
        instance_id: r1.clone(),
    })
    .unwrap();
    f.apply(&ProviderCall::SetDbEndpoint {
        name: config.fleet.db_endpoint.clone(),
        target_id: r1.clone(),
    })
    .unwrap();
    f.advance_to(60.0);
    let healed = detect(&f.snapshot(), &[], &config.detect);
    assert!(
        healed.iter().all(|i| i.kind != IncidentKind::MasterDown),
        "{healed:#?}"
    );
    // The master-down the operator was told is already present must not strike again.
    f.advance_to(240.0);
    let later = detect(&f.snapshot(), &[], &config.detect);
    assert!(
        later.iter().all(|i| i.kind != IncidentKind::MasterDown),
        "the new master {r1} went down at the scheduled time: {later:#?}"
    );
}
