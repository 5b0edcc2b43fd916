//! Playbooks through the console's update loop: keys in, the engine's calls applied to a
//! simulated fleet, its answers and fresh snapshots fed back, the screen snapshotted at 80x24.

use crate::fixtures::epoch;
use chrono::Duration;
use dake::app::{App, Arming, Msg, Outgoing, Prompt, update};
use dake::config::{Config, IncidentKind};
use dake::domain::call::{CallOutcome, ProviderCall, TAG_RUN};
use dake::domain::{InstanceState, Role};
use dake::provider::sim::SimFleet;
use dake::runbook::engine::Phase;
use dake::runbook::event::Effect;
use dake::runbook::executor::Answer;
use dake::runbook::model::{Confirm, load_all};
use dake::runbook::record::StepStatus;
use dake::runbook::setup::RunIds;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// The simulator's sample interval: the console sees a snapshot this often.
const STEP_SECS: i64 = 5;
/// No playbook takes longer than this much virtual time.
const LIMIT_SECS: i64 = 3 * 3600;

/// Carries out every call the app asked for with `make`, and feeds each answer back.
pub fn pump(app: &mut App, mut make: impl FnMut(ProviderCall) -> Result<CallOutcome, String>) {
    while !app.outbox.is_empty() {
        for out in std::mem::take(&mut app.outbox) {
            let effects = match out {
                Outgoing::Start { effects, .. } | Outgoing::Effects(effects) => effects,
                Outgoing::LoadJournal(_) | Outgoing::ListRuns => continue,
            };
            for e in effects {
                if let Effect::Call { index, call, .. } = e {
                    let answer = match make(call) {
                        Ok(outcome) => Answer::CallDone { index, outcome },
                        Err(error) => Answer::CallFailed { index, error },
                    };
                    update(app, Msg::RunAnswer(answer));
                }
            }
        }
    }
}

/// A fresh snapshot for the app, read at `now`, and the clock's tick that checks the waits.
pub fn observe(
    app: &mut App,
    snapshot: dake::domain::FleetSnapshot,
    now: chrono::DateTime<chrono::Utc>,
) {
    update(
        app,
        Msg::Snapshot {
            snapshot: Box::new(snapshot),
            fetched_at: now,
        },
    );
    update(app, Msg::Tick(now));
}

/// A key as the terminal sends it: an upper-case letter with Shift.
pub fn key_event(code: KeyCode) -> KeyEvent {
    let mods = match code {
        KeyCode::Char(c) if c.is_ascii_uppercase() => KeyModifiers::SHIFT,
        _ => KeyModifiers::NONE,
    };
    KeyEvent::new(code, mods)
}

/// The whole screen at 80x24, each line's trailing blanks cut.
pub fn screen_of(app: &App) -> String {
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    term.draw(|f| dake::ui::view(app, f)).unwrap();
    let buf = term.backend().buffer();
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

struct Drill {
    app: App,
    fleet: SimFleet,
    t: i64,
}

impl Drill {
    fn new(incident: IncidentKind) -> Drill {
        let mut config = Config::builtin();
        config.sim.incidents.clear();
        let mut fleet = SimFleet::new(&config, epoch());
        let target = (incident == IncidentKind::SlowWeb).then_some("web-3");
        fleet.inject(incident, target).unwrap();
        let mut app = App::new(config, "sim", Arming::Drill, epoch());
        app.playbooks = load_all(None).unwrap();
        app.operator = "op@drill".into();
        // Every run id ends the same, so the screens read alike on every run.
        app.run_ids = RunIds::fixed("SALT");
        update(&mut app, Msg::Resize(80, 24));
        let mut d = Drill { app, fleet, t: 0 };
        d.tick();
        d
    }

    /// Carries out what the app asked for: calls go to the simulated fleet, answers come back.
    fn pump(&mut self) {
        let fleet = &mut self.fleet;
        pump(&mut self.app, |call| fleet.apply(&call));
    }

    fn tick(&mut self) {
        self.fleet.advance_to(self.t as f64);
        let now = epoch() + Duration::seconds(self.t);
        observe(&mut self.app, self.fleet.snapshot(), now);
        self.pump();
        self.t += STEP_SECS;
    }

    fn key(&mut self, code: KeyCode) {
        update(&mut self.app, Msg::Key(key_event(code)));
        self.pump();
    }

    fn screen(&self) -> String {
        screen_of(&self.app)
    }

    fn phase(&self) -> Phase {
        self.app
            .run
            .as_ref()
            .expect("a run is on screen")
            .phase
            .clone()
    }

    /// Lets the fleet run until the incident is detected.
    fn until_detected(&mut self) {
        while self.app.incidents.is_empty() {
            assert!(self.t < 300, "incident never detected");
            self.tick();
        }
    }

    /// Presses the playbook's key and starts it from the prompt.
    fn start(&mut self, key: char, quarantine: bool) {
        self.key(KeyCode::Char(key));
        assert!(
            matches!(self.app.prompt, Some(Prompt::Start { .. })),
            "no start prompt: {:?}",
            self.app.notice
        );
        if quarantine {
            self.key(KeyCode::Tab);
        }
        self.key(KeyCode::Enter);
        assert!(
            self.app.run.is_some(),
            "run did not start: {:?}",
            self.app.notice
        );
    }

    /// One key per step: Enter, confirm as asked, and let time pass while a step waits.
    fn run_to_end(&mut self) {
        let start = self.t;
        while !self.app.run.as_ref().unwrap().is_over() {
            assert!(
                self.t - start < LIMIT_SECS,
                "run stuck in {:?}",
                self.phase()
            );
            match self.phase() {
                Phase::Ready => self.key(KeyCode::Enter),
                Phase::Confirming { plan, .. } => {
                    if plan.confirm == Confirm::TypeId {
                        let id = plan.confirm_id.unwrap();
                        for c in id[id.len() - 4..].chars() {
                            self.key(KeyCode::Char(c));
                        }
                    }
                    self.key(KeyCode::Enter);
                }
                Phase::Waiting { .. } | Phase::Calling { .. } => self.tick(),
                Phase::Failed { error } => panic!("step failed: {error}"),
                Phase::Finished { .. } | Phase::Aborted { .. } => {}
            }
        }
    }

    fn created(&self) -> Vec<dake::domain::Instance> {
        let run_id = &self.app.run.as_ref().unwrap().ctx.run_id;
        self.fleet
            .snapshot()
            .instances
            .into_iter()
            .filter(|i| i.tags.get(TAG_RUN) == Some(run_id))
            .collect()
    }
}

#[test]
fn web_replace_one_key_per_step_with_snapshots() {
    let mut d = Drill::new(IncidentKind::SlowWeb);
    d.until_detected();
    d.key(KeyCode::Char('R'));
    insta::assert_snapshot!("run_start_prompt_80x24", d.screen());
    d.key(KeyCode::Enter);
    // compare (looks only), then restart-app: its exact call is on screen before Enter.
    d.key(KeyCode::Enter);
    let screen = d.screen();
    assert!(
        screen.contains("SendCommand") && screen.contains("systemctl restart app"),
        "{screen}"
    );
    insta::assert_snapshot!("run_steps_80x24", screen);
    d.key(KeyCode::Enter);
    for _ in 0..6 {
        d.tick();
    }
    let screen = d.screen();
    assert!(matches!(d.phase(), Phase::Waiting { .. }));
    assert!(
        screen.contains("waiting") && screen.contains("/ 2m00s"),
        "{screen}"
    );
    insta::assert_snapshot!("run_wait_gauge_80x24", screen);
    // Walk on to the first destructive step and stop at its confirmation.
    while !matches!(d.phase(), Phase::Confirming { .. }) {
        match d.phase() {
            Phase::Ready => d.key(KeyCode::Enter),
            _ => d.tick(),
        }
    }
    let screen = d.screen();
    assert!(
        screen.contains("DESTRUCTIVE") && screen.contains("DeregisterTargets"),
        "{screen}"
    );
    insta::assert_snapshot!("run_confirm_80x24", screen);
    // Esc cancels: nothing is done and the step is offered again.
    d.key(KeyCode::Esc);
    assert!(matches!(d.phase(), Phase::Ready));
    d.run_to_end();
    let run = d.app.run.as_ref().unwrap();
    assert!(
        matches!(run.phase, Phase::Finished { .. }),
        "{:?}",
        run.phase
    );
    assert_eq!(
        run.steps[1].status,
        StepStatus::TimedOut,
        "the restart did not cure it: cut your losses"
    );
    let made = d.created();
    assert_eq!(made.len(), 1, "exactly one replacement");
    let snap = d.fleet.snapshot();
    assert!(
        snap.instances
            .iter()
            .all(|i| i.name != "web-3" || i.state == InstanceState::Terminated)
    );
    assert_eq!(
        snap.by_role(Role::Web)
            .filter(|i| i.target.is_some())
            .count(),
        4
    );
    insta::assert_snapshot!("run_finished_80x24", d.screen());
}

#[test]
fn typed_confirmation_refuses_a_wrong_suffix() {
    let mut d = Drill::new(IncidentKind::SlowWeb);
    d.until_detected();
    d.start('R', false);
    while !matches!(d.phase(), Phase::Confirming { ref plan, .. } if plan.confirm == Confirm::TypeId)
    {
        match d.phase() {
            Phase::Ready | Phase::Confirming { .. } => d.key(KeyCode::Enter),
            _ => d.tick(),
        }
    }
    for c in "zzzz".chars() {
        d.key(KeyCode::Char(c));
    }
    insta::assert_snapshot!("run_typed_confirm_80x24", d.screen());
    d.key(KeyCode::Enter);
    assert!(
        matches!(d.phase(), Phase::Confirming { .. }),
        "a wrong suffix must not terminate"
    );
    assert!(
        d.app
            .notice
            .as_deref()
            .is_some_and(|n| n.contains("last 4 characters"))
    );
    assert!(
        d.fleet
            .snapshot()
            .instances
            .iter()
            .any(|i| i.name == "web-3" && i.state == InstanceState::Running)
    );
}

#[test]
fn quarantine_stops_and_tags_instead_of_terminating() {
    let mut d = Drill::new(IncidentKind::SlowWeb);
    d.until_detected();
    d.start('R', true);
    d.run_to_end();
    let snap = d.fleet.snapshot();
    let bad = snap
        .instances
        .iter()
        .find(|i| i.name == "web-3")
        .expect("quarantined, not gone");
    assert_eq!(bad.state, InstanceState::Stopped);
    assert!(bad.tags.contains_key("dake:quarantine"));
}

#[test]
fn db_promote_through_the_console() {
    let mut d = Drill::new(IncidentKind::MasterDown);
    d.until_detected();
    d.start('P', false);
    d.run_to_end();
    let snap = d.fleet.snapshot();
    let master = snap.master().unwrap();
    assert_eq!(master.name, "db-replica-1");
    assert!(!master.db.as_ref().unwrap().read_only);
    let others: Vec<_> = snap
        .by_role(Role::DbReplica)
        .filter(|r| r.state == InstanceState::Running)
        .collect();
    assert!(
        others
            .iter()
            .all(|r| r.db.as_ref().unwrap().source_id.as_deref() == Some(master.id.as_str()))
    );
    assert_eq!(d.created().len(), 1, "one replacement replica");
    assert_eq!(d.fleet.notifications().len(), 1, "the application was told");
}

#[test]
fn db_ebs_move_through_the_console() {
    let mut d = Drill::new(IncidentKind::MasterDown);
    d.until_detected();
    let old = d.fleet.snapshot().master().unwrap().clone();
    let data = old.volumes.iter().find(|v| v.sole_copy).unwrap().clone();
    d.start('E', false);
    d.run_to_end();
    let snap = d.fleet.snapshot();
    let master = snap.master().unwrap();
    let made = d.created();
    assert_eq!(made.len(), 1);
    assert_eq!(
        master.id, made[0].id,
        "the endpoint points at the new instance"
    );
    assert_eq!(master.az, old.az, "same zone as its volume");
    assert!(
        master
            .volumes
            .iter()
            .any(|v| v.id == data.id && v.device == data.device)
    );
    assert!(
        snap.find(&old.id)
            .is_none_or(|i| i.state == InstanceState::Terminated)
    );
    assert!(
        dake::detect::detect(&snap, &[], &d.app.config.detect)
            .iter()
            .all(|i| i.kind != IncidentKind::MasterDown)
    );
}

#[test]
fn a_second_failover_inside_the_window_needs_force() {
    let mut d = Drill::new(IncidentKind::MasterDown);
    d.until_detected();
    d.app.past_runs = vec![dake::runbook::journal::RunSummary {
        run_id: "earlier".into(),
        playbook: "db-promote".into(),
        target_name: "db-master".into(),
        started: d.app.fleet_now() - Duration::minutes(5),
        last: d.app.fleet_now(),
        ended: Some("finished: done".into()),
        path: "earlier.jsonl".into(),
    }];
    d.key(KeyCode::Char('E'));
    d.key(KeyCode::Enter);
    assert!(
        d.app.run.is_none(),
        "Enter alone must not start a flapping failover"
    );
    for c in "force".chars() {
        d.key(KeyCode::Char(c));
    }
    d.key(KeyCode::Enter);
    assert!(
        d.app.run.as_ref().is_some_and(|r| r.ctx.force),
        "typing FORCE starts it, forced"
    );
}

#[test]
fn a_read_only_console_refuses_playbooks_until_armed() {
    let mut d = Drill::new(IncidentKind::SlowWeb);
    d.app.arming = Arming::ReadOnly;
    d.until_detected();
    d.key(KeyCode::Char('R'));
    assert!(d.app.prompt.is_none() && d.app.run.is_none());
    assert!(
        d.app
            .notice
            .as_deref()
            .is_some_and(|n| n.contains("press A to arm")),
        "{:?}",
        d.app.notice
    );
    d.key(KeyCode::Char('A'));
    assert_eq!(d.app.prompt, Some(Prompt::Arm));
    d.key(KeyCode::Esc);
    assert_eq!(d.app.arming, Arming::ReadOnly, "Esc keeps it read-only");
    d.key(KeyCode::Char('A'));
    d.key(KeyCode::Enter);
    assert_eq!(d.app.arming, Arming::Armed);
    assert!(d.screen().contains("ARMED"));
    d.start('R', false);
}

#[test]
fn fenced_by_other_means_is_typed_out_in_the_console() {
    let mut d = Drill::new(IncidentKind::MasterDown);
    d.until_detected();
    d.fleet.fail_next(
        "StopInstances",
        "UnauthorizedOperation: You are not authorized to perform this operation.",
    );
    d.start('P', false);
    // confirm-down, rank, then the fence: confirmed, and refused by EC2.
    for _ in 0..3 {
        d.key(KeyCode::Enter);
    }
    d.key(KeyCode::Enter);
    assert!(matches!(d.phase(), Phase::Failed { .. }), "{:?}", d.phase());
    let screen = d.screen();
    assert!(screen.contains("F fenced by other means"), "{screen}");
    d.key(KeyCode::Char('F'));
    assert!(matches!(d.app.prompt, Some(Prompt::DeclareFenced { .. })));
    let prompt = d.screen();
    assert!(
        prompt.contains("Fenced by other means?") && prompt.contains("UnauthorizedOperation"),
        "{prompt}"
    );
    // Enter before the word is typed does nothing; a wrong word neither.
    d.key(KeyCode::Enter);
    assert!(matches!(d.phase(), Phase::Failed { .. }));
    for c in "fenced".chars() {
        d.key(KeyCode::Char(c));
    }
    d.key(KeyCode::Enter);
    assert!(d.app.prompt.is_none());
    let run = d.app.run.as_ref().unwrap();
    assert_eq!(run.phase, Phase::Ready);
    let fence = run.playbook.step_index("fence-old-master").unwrap();
    assert_eq!(run.cursor, fence + 1);
    assert!(
        run.steps[fence]
            .note
            .as_deref()
            .unwrap()
            .starts_with("fenced by other means, on op@drill's word"),
        "{:?}",
        run.steps[fence].note
    );
    d.run_to_end();
    let snap = d.fleet.snapshot();
    assert_eq!(snap.master().unwrap().name, "db-replica-1");
}
