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
use dake::runbook::overrides::Override;
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
                Outgoing::LoadJournal(_) | Outgoing::ListRuns | Outgoing::SaveDrill(_) => continue,
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
            // A wide character takes two cells; the second holds nothing of its own.
            let mut line = String::new();
            let mut x = 0;
            while x < buf.area.width {
                let symbol = buf[(x, y)].symbol();
                line.push_str(symbol);
                x += dake::text::width(symbol).max(1) as u16;
            }
            line.trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) struct Drill {
    pub(crate) app: App,
    pub(crate) fleet: SimFleet,
    t: i64,
}

impl Drill {
    pub(crate) fn new(incident: IncidentKind) -> Drill {
        Drill::with(Config::builtin(), incident)
    }

    pub(crate) fn with(mut config: Config, incident: IncidentKind) -> Drill {
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

    pub(crate) fn tick(&mut self) {
        self.fleet.advance_to(self.t as f64);
        let now = epoch() + Duration::seconds(self.t);
        observe(&mut self.app, self.fleet.snapshot(), now);
        self.pump();
        self.t += STEP_SECS;
    }

    pub(crate) fn key(&mut self, code: KeyCode) {
        update(&mut self.app, Msg::Key(key_event(code)));
        self.pump();
    }

    pub(crate) fn screen(&self) -> String {
        screen_of(&self.app)
    }

    pub(crate) fn phase(&self) -> Phase {
        self.app
            .run
            .as_ref()
            .expect("a run is on screen")
            .phase
            .clone()
    }

    /// Lets the fleet run until the incident is detected.
    pub(crate) fn until_detected(&mut self) {
        while self.app.incidents.is_empty() {
            assert!(self.t < 300, "incident never detected");
            self.tick();
        }
    }

    /// Presses the playbook's key and starts it from the prompt.
    pub(crate) fn start(&mut self, key: char, quarantine: bool) {
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
    pub(crate) fn run_to_end(&mut self) {
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
    // A notice while the step waits goes below the gauge, never over it.
    d.key(KeyCode::Enter);
    let screen = d.screen();
    let gauge = screen
        .lines()
        .position(|l| l.contains("waiting 30s / 2m00s"));
    let notice = screen
        .lines()
        .position(|l| l.contains("the current step is still running"));
    assert!(
        matches!((gauge, notice), (Some(g), Some(n)) if n > g),
        "{screen}"
    );
    // Once the step is over, so is the notice that it is still running.
    while matches!(d.phase(), Phase::Waiting { .. } | Phase::Calling { .. }) {
        d.tick();
    }
    let screen = d.screen();
    assert!(
        !screen.contains("the current step is still running"),
        "{screen}"
    );
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
    // The table says it is kept on purpose, not a disposable stopped server.
    d.tick();
    let screen = d.screen();
    let row = screen
        .lines()
        .find(|l| l.contains(" web-3 "))
        .expect("web-3 listed");
    assert!(
        row.contains("stopped") && row.trim_end().ends_with("held"),
        "{row}"
    );
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
fn a_second_failover_inside_the_window_needs_its_override_typed() {
    let mut d = Drill::new(IncidentKind::MasterDown);
    d.until_detected();
    let now = d.app.fleet_now();
    let earlier = |failover_at| dake::runbook::journal::RunSummary {
        run_id: "earlier".into(),
        playbook: "db-promote".into(),
        target_id: "i-earlier".into(),
        target_name: "db-master".into(),
        started: now - Duration::minutes(5),
        last: now,
        ended: Some("aborted: by the operator".into()),
        failover_at,
        done_steps: Vec::new(),
        path: "earlier.jsonl".into(),
    };
    // A run that only looked (or restarted an app) counts for nothing.
    d.app.past_runs = vec![earlier(None)];
    d.key(KeyCode::Char('E'));
    assert!(matches!(
        d.app.prompt,
        Some(Prompt::Start { flapping: None, .. })
    ));
    d.key(KeyCode::Esc);
    // One that failed over counts, aborted or not.
    d.app.past_runs = vec![earlier(Some(now - Duration::minutes(4)))];
    d.key(KeyCode::Char('E'));
    let prompt = d.screen();
    assert!(
        prompt.contains("failed over 4m00s") && prompt.contains("type ANTI-FLAPPING"),
        "{prompt}"
    );
    d.key(KeyCode::Enter);
    assert!(
        d.app.run.is_none(),
        "Enter alone must not start a flapping failover"
    );
    // The old word no longer does it.
    for c in "force".chars() {
        d.key(KeyCode::Char(c));
    }
    d.key(KeyCode::Enter);
    assert!(d.app.run.is_none(), "FORCE is not the override");
    for _ in 0..5 {
        d.key(KeyCode::Backspace);
    }
    for c in "anti-flapping".chars() {
        d.key(KeyCode::Char(c));
    }
    d.key(KeyCode::Enter);
    let run = d.app.run.as_ref().expect("typing the override starts it");
    assert!(run.ctx.allows(Override::AntiFlapping));
    assert!(!run.ctx.allows(Override::LaggingReplica), "that one only");
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

#[test]
fn a_refused_step_names_its_override_and_o_lifts_only_that_one() {
    let mut config = Config::builtin();
    // Read from the metrics, with a limit every replica is beyond.
    config.sim.database_source = dake::config::DbSource::Metrics;
    config.detect.replica_max_lag_secs = -1.0;
    let mut d = Drill::with(config, IncidentKind::MasterDown);
    d.until_detected();
    d.start('P', false);
    d.key(KeyCode::Enter);
    d.key(KeyCode::Enter);
    let run = d.app.run.as_ref().unwrap();
    assert_eq!(run.cursor, 1, "rank refused: {:?}", d.app.notice);
    assert_eq!(run.offered, Some(Override::LaggingReplica));
    let screen = d.screen();
    assert!(screen.contains("O override"), "{screen}");
    // What lifts it is said on its own line, whatever the refusal's length.
    assert!(
        screen.contains("O lifts it: override `lagging-replica`"),
        "{screen}"
    );
    d.key(KeyCode::Char('O'));
    let prompt = d.screen();
    assert!(
        prompt.contains("override `lagging-replica`")
            && prompt.contains("those transactions are lost")
            && prompt.contains("type LAGGING-REPLICA"),
        "{prompt}"
    );
    for c in "lagging-replica".chars() {
        d.key(KeyCode::Char(c));
    }
    d.key(KeyCode::Enter);
    let run = d.app.run.as_ref().unwrap();
    assert!(run.ctx.allows(Override::LaggingReplica));
    assert!(!run.ctx.allows(Override::MasterAnswers));
    d.key(KeyCode::Enter);
    let run = d.app.run.as_ref().unwrap();
    assert_eq!(run.cursor, 2, "rank done once overridden");
    assert!(
        run.steps[1]
            .note
            .as_deref()
            .unwrap()
            .starts_with("chose db-replica-1")
    );
}

#[test]
fn an_incident_a_run_mitigated_says_so_and_offers_no_playbook() {
    let mut d = Drill::new(IncidentKind::SlowWeb);
    d.until_detected();
    d.start('R', true);
    // On to the deregistration: once web-3 has drained, it serves nobody.
    while d.app.run.as_ref().unwrap().cursor <= playbook_step(&d, "deregister") {
        match d.phase() {
            Phase::Ready => d.key(KeyCode::Enter),
            Phase::Confirming { .. } => d.key(KeyCode::Enter),
            Phase::Failed { error } => panic!("{error}"),
            _ => d.tick(),
        }
    }
    let run_id = d.app.run.as_ref().unwrap().ctx.run_id.clone();
    assert!(
        d.app.incidents.iter().any(|i| i.instance_name == "web-3"),
        "detection still sees web-3 slow"
    );
    let inc = d.app.incidents.iter().find(|i| i.instance_name == "web-3");
    assert_eq!(d.app.mitigated_by(inc.unwrap()), Some(run_id.as_str()));
    // At 80 columns the banner says it without the run id, which the run panel shows.
    let screen = d.screen();
    let banner = screen.lines().find(|l| l.contains("WARNING")).unwrap();
    assert!(
        banner.ends_with("· mitigated") && !banner.contains("→ R"),
        "{banner}"
    );
    let footer = screen.lines().last().unwrap();
    assert!(!footer.contains("R web-replace"), "{footer}");
    // Closed, the run is still known: the banner says the same.
    d.run_to_end();
    d.key(KeyCode::Char('c'));
    assert!(d.app.run.is_none());
    if let Some(inc) = d.app.incidents.iter().find(|i| i.instance_name == "web-3") {
        assert_eq!(d.app.mitigated_by(inc), Some(run_id.as_str()));
    }
    assert!(d.app.past_runs.iter().any(|r| r.run_id == run_id));
}

fn playbook_step(d: &Drill, name: &str) -> usize {
    d.app
        .run
        .as_ref()
        .unwrap()
        .playbook
        .step_index(name)
        .unwrap()
}

/// A run aborted while a step waits: the step says it was aborted, not that it still runs.
#[test]
fn a_step_aborted_in_its_wait_says_so() {
    let mut d = Drill::new(IncidentKind::SlowWeb);
    d.until_detected();
    d.key(KeyCode::Char('R'));
    d.key(KeyCode::Enter);
    // compare, then restart-app, whose wait for the latency to recover is where it stops.
    d.key(KeyCode::Enter);
    d.key(KeyCode::Enter);
    while matches!(d.phase(), Phase::Calling { .. }) {
        d.tick();
    }
    assert!(matches!(d.phase(), Phase::Waiting { .. }));
    d.key(KeyCode::Char('x'));
    d.key(KeyCode::Char('x'));
    assert!(matches!(d.phase(), Phase::Aborted { .. }));
    let screen = d.screen();
    let step = screen
        .lines()
        .find(|l| l.contains("restart-app"))
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(step.contains("✗") && step.contains("aborted"), "{screen}");
    assert!(!step.contains("running"), "{screen}");
}
