//! Crash safety: for every call of every playbook, the console dies with the call's intent on
//! disk and its answer not, either before the provider acted or after. The run is resumed from
//! its journal and must end as an uninterrupted run does, with no second instance.

use crate::fixtures::epoch;
use std::future::pending;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use dake::config::{Config, IncidentKind};
use dake::domain::call::{CallOutcome, ProviderCall, TAG_RUN};
use dake::domain::{InstanceState, Role};
use dake::headless::run::{Headless, select};
use dake::provider::sim::SimProvider;
use dake::provider::{BoxFuture, Provider, ProviderError};
use dake::runbook::engine::Run;
use dake::runbook::journal::{self, Journal};
use dake::runbook::model::load_all;
use dake::runbook::setup::context;
use tokio::sync::Notify;

/// Fast enough that every wait passes in milliseconds of real time.
const SPEED: f64 = 2000.0;
/// No single run may take longer than this in a test.
const RUN_LIMIT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug)]
pub enum Crash {
    /// Intent journaled, call never sent.
    BeforeCall,
    /// Call took effect, answer never journaled.
    AfterCall,
}

/// Delegates to a provider and dies (hangs forever) at call number `at`.
pub struct Crashing {
    inner: Arc<dyn Provider>,
    calls: AtomicUsize,
    at: usize,
    how: Crash,
    crashed: Arc<Notify>,
}

impl Crashing {
    /// The crashing provider, and what it notifies when it dies.
    pub fn new(inner: Arc<dyn Provider>, at: usize, how: Crash) -> (Crashing, Arc<Notify>) {
        let crashed = Arc::new(Notify::new());
        let c = Crashing {
            inner,
            calls: AtomicUsize::new(0),
            at,
            how,
            crashed: crashed.clone(),
        };
        (c, crashed)
    }
}

impl Provider for Crashing {
    fn name(&self) -> &'static str {
        "sim"
    }
    fn is_drill(&self) -> bool {
        self.inner.is_drill()
    }
    fn refresh_interval(&self) -> Duration {
        self.inner.refresh_interval()
    }
    fn now(&self) -> DateTime<Utc> {
        self.inner.now()
    }
    fn snapshot(&self) -> BoxFuture<'_, Result<dake::domain::FleetSnapshot, ProviderError>> {
        self.inner.snapshot()
    }
    fn find_created(
        &self,
        run_id: &str,
        step: usize,
    ) -> BoxFuture<'_, Result<Vec<String>, ProviderError>> {
        self.inner.find_created(run_id, step)
    }
    fn preflight(
        &self,
        call: ProviderCall,
    ) -> BoxFuture<'_, Result<dake::provider::Preflight, ProviderError>> {
        self.inner.preflight(call)
    }
    fn execute(&self, call: ProviderCall) -> BoxFuture<'_, Result<CallOutcome, ProviderError>> {
        Box::pin(async move {
            if self.calls.fetch_add(1, Ordering::SeqCst) != self.at {
                return self.inner.execute(call).await;
            }
            if let Crash::AfterCall = self.how {
                let _ = self.inner.execute(call).await;
            }
            self.crashed.notify_one();
            pending().await
        })
    }
}

fn fleet(config: &Config, incident: IncidentKind) -> Arc<SimProvider> {
    let sim = SimProvider::new(config, epoch(), 0.0);
    let target = (incident == IncidentKind::SlowWeb).then_some("web-3");
    sim.with_fleet(|f| f.inject(incident, target)).unwrap();
    Arc::new(sim)
}

fn config() -> Config {
    let mut c = Config::builtin();
    c.sim.speed = SPEED;
    c.sim.incidents.clear();
    // As with emulators that ignore ClientToken: only the tag lookup can prevent a duplicate.
    c.sim.honour_client_token = false;
    c
}

struct Outcome {
    outcome: String,
    message: String,
    run_id: String,
}

/// Runs `playbook` on `target`, crashing at call `crash` (if any), then resumes it from the
/// journal on the same simulated fleet. Returns None when the run made fewer calls than `at`.
async fn run_with_crash(
    playbook: &str,
    target: &str,
    incident: IncidentKind,
    crash: Option<(usize, Crash)>,
    torn_tail: bool,
) -> Option<(Outcome, Arc<SimProvider>)> {
    let config = config();
    let playbooks = load_all(None).unwrap();
    let sim = fleet(&config, incident);
    let dir = tempfile::tempdir().unwrap();
    let snap = sim.snapshot().await.unwrap();
    let (pb, inst) = select(&playbooks, &snap, playbook, target).unwrap();
    let run_id = format!("crash-{playbook}");
    let ctx = context(&config, &run_id, (&inst.id, &inst.name), false, &[]);
    let now = sim.now();
    let (mut run, fx) = Run::start(ctx, pb.clone(), "test@host".into(), now);
    let (at, how) = crash.unwrap_or((usize::MAX, Crash::BeforeCall));
    let (crashing, crashed) = Crashing::new(sim.clone(), at, how);
    let provider: Arc<dyn Provider> = Arc::new(crashing);
    let journal = Journal::create(dir.path(), &run_id).unwrap();
    let path = journal.path().to_path_buf();
    let mut h = Headless::new(provider, journal, &run_id, true, None);
    let mut first = tokio::spawn(async move {
        h.carry(&mut run, fx).await?;
        h.drive(&mut run).await
    });
    tokio::select! {
        _ = crashed.notified() => first.abort(),
        done = tokio::time::timeout(RUN_LIMIT, &mut first) => {
            let (outcome, message) = done.expect("run finished in time").unwrap().unwrap();
            if crash.is_some() {
                // The run made fewer calls than the crash point: nothing left to test.
                return None;
            }
            return Some((Outcome { outcome: outcome.into(), message, run_id }, sim));
        }
    }
    if torn_tail {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"record\":\"result\",\"at\":\"2026-11")
            .unwrap();
    }
    let (outcome, message) = resume(&config, pb, dir.path(), &run_id, sim.clone(), RUN_LIMIT).await;
    // Everything the resumed run wrote reads back, torn line or not.
    assert!(
        journal::read(&path).is_ok(),
        "journal unreadable after resume"
    );
    Some((
        Outcome {
            outcome: outcome.into(),
            message,
            run_id,
        },
        sim,
    ))
}

/// Resumes run `run_id` of `pb` from its journal in `dir` on `provider`, to its end: its
/// outcome and message. Panics when it takes longer than `limit`.
pub async fn resume(
    config: &Config,
    pb: &dake::runbook::model::Playbook,
    dir: &std::path::Path,
    run_id: &str,
    provider: Arc<dyn Provider>,
    limit: Duration,
) -> (&'static str, String) {
    let path = dir.join(format!("{run_id}.jsonl"));
    let records = journal::read(&path).unwrap();
    let ctx = context(config, run_id, ("", ""), false, &[]);
    let mut run = Run::replay(&records, pb.clone(), ctx).unwrap();
    let journal = Journal::open(dir, run_id).unwrap();
    let mut h = Headless::new(provider.clone(), journal, run_id, true, None);
    let fx = run.resume(provider.now());
    let resumed = async {
        h.carry(&mut run, fx).await?;
        h.drive(&mut run).await
    };
    tokio::time::timeout(limit, resumed)
        .await
        .expect("resumed run finished in time")
        .unwrap()
}

fn ids(made: &[dake::domain::Instance]) -> Vec<(&str, &str)> {
    made.iter()
        .map(|i| (i.id.as_str(), i.name.as_str()))
        .collect()
}

/// Instances the run created, in any state but gone.
async fn created(sim: &SimProvider, run_id: &str) -> Vec<dake::domain::Instance> {
    let snap = sim.snapshot().await.unwrap();
    snap.instances
        .into_iter()
        .filter(|i| i.tags.get(TAG_RUN).map(String::as_str) == Some(run_id))
        .collect()
}

async fn check_every_crash_point(
    playbook: &str,
    target: &str,
    incident: IncidentKind,
    expect: impl Fn(&dake::domain::FleetSnapshot, &[dake::domain::Instance]),
) {
    let (clean, sim) = run_with_crash(playbook, target, incident, None, false)
        .await
        .unwrap();
    assert_eq!(clean.outcome, "finished", "{}", clean.message);
    let made = created(&sim, &clean.run_id).await;
    expect(&sim.snapshot().await.unwrap(), &made);
    let mut points = 0;
    for at in 0.. {
        let mut any = false;
        for (i, how) in [Crash::BeforeCall, Crash::AfterCall]
            .into_iter()
            .enumerate()
        {
            let torn = (at + i) % 2 == 0;
            let Some((o, sim)) =
                run_with_crash(playbook, target, incident, Some((at, how)), torn).await
            else {
                continue;
            };
            any = true;
            points += 1;
            assert_eq!(
                o.outcome, "finished",
                "{playbook} crash {how:?} at call {at}: {}",
                o.message
            );
            let made = created(&sim, &o.run_id).await;
            expect(&sim.snapshot().await.unwrap(), &made);
        }
        if !any {
            break;
        }
    }
    assert!(
        points >= 8,
        "{playbook}: only {points} crash points exercised"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_replace_survives_a_crash_at_every_call() {
    check_every_crash_point(
        "web-replace",
        "web-3",
        IncidentKind::SlowWeb,
        |snap, made| {
            assert_eq!(made.len(), 1, "exactly one replacement: {:?}", ids(made));
            assert_eq!(made[0].state, InstanceState::Running);
            assert!(
                snap.instances
                    .iter()
                    .all(|i| i.name != "web-3" || i.state == InstanceState::Terminated)
            );
            let serving = snap
                .by_role(Role::Web)
                .filter(|i| i.target.is_some())
                .count();
            assert_eq!(serving, 4, "four web servers in the target group");
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_promote_survives_a_crash_at_every_call() {
    check_every_crash_point(
        "db-promote",
        "db-master",
        IncidentKind::MasterDown,
        |snap, made| {
            assert_eq!(made.len(), 1, "exactly one new replica: {:?}", ids(made));
            let ep = snap.db_endpoint.as_ref().unwrap();
            let master = snap.find(&ep.target_id).unwrap();
            assert_eq!(
                master.name, "db-replica-1",
                "the least-lagged replica was promoted"
            );
            assert!(!master.db.as_ref().unwrap().read_only);
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_ebs_move_survives_a_crash_at_every_call() {
    check_every_crash_point(
        "db-ebs-move",
        "db-master",
        IncidentKind::MasterDown,
        |snap, made| {
            assert_eq!(made.len(), 1, "exactly one new master: {:?}", ids(made));
            let ep = snap.db_endpoint.as_ref().unwrap();
            assert_eq!(
                ep.target_id, made[0].id,
                "the endpoint points at the new master"
            );
            assert!(
                made[0]
                    .volumes
                    .iter()
                    .any(|v| v.sole_copy && v.device == "/dev/xvdf")
            );
        },
    )
    .await;
}
