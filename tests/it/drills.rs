//! Each shipped scenario played through the console by a scripted trainee (keys at drill
//! times, on the simulated fleet's clock) to a known scorecard; wrong actions are caught and
//! charged, and the decoy charges a replacement nothing needed.

use crate::fixtures::epoch;
use crate::run_ui::{key_event, observe, pump, screen_of};
use chrono::Duration;
use dake::app::{App, Arming, Msg, Prompt, update};
use dake::config::Config;
use dake::drill::judge::Wrong;
use dake::drill::scorecard::Charge;
use dake::drill::{DrillState, Scenario, Scorecard};
use dake::provider::sim::SimFleet;
use dake::runbook::engine::Phase;
use dake::runbook::model::{Confirm, load_all};
use dake::runbook::setup::RunIds;
use ratatui::crossterm::event::KeyCode;

/// The simulator's sample interval: the console sees a snapshot this often.
const STEP_SECS: i64 = 5;

pub(crate) struct Trainee {
    pub(crate) app: App,
    pub(crate) fleet: SimFleet,
    t: i64,
}

pub(crate) fn scenario(id: &str) -> Scenario {
    let all = dake::drill::load_all(None).unwrap();
    dake::drill::scenario::find(&all, id).unwrap().clone()
}

impl Trainee {
    pub(crate) fn start(id: &str) -> Trainee {
        let scenario = scenario(id);
        let config = scenario.apply(&Config::builtin());
        let fleet = SimFleet::new(&config, epoch());
        let heartbeat = config.detect.master_heartbeat_secs;
        let mut app = App::new(config, "sim", Arming::Drill, epoch());
        app.playbooks = load_all(None).unwrap();
        app.operator = "trainee@drill".into();
        app.run_ids = RunIds::fixed("SALT");
        app.drill_epoch = Some(epoch());
        app.drill = Some(DrillState::new(
            scenario,
            epoch(),
            "trainee@drill",
            heartbeat,
        ));
        update(&mut app, Msg::Resize(80, 24));
        let mut t = Trainee { app, fleet, t: 0 };
        t.tick();
        t
    }

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

    /// Lets `secs` of drill time pass.
    pub(crate) fn wait(&mut self, secs: i64) {
        let until = self.t + secs;
        while self.t < until && !self.over() {
            self.tick();
        }
    }

    pub(crate) fn key(&mut self, code: KeyCode) {
        update(&mut self.app, Msg::Key(key_event(code)));
        self.pump();
    }

    pub(crate) fn over(&self) -> bool {
        self.app.drill.as_ref().is_some_and(|d| d.is_over())
    }

    pub(crate) fn screen(&self) -> String {
        screen_of(&self.app)
    }

    /// Lets the fleet run until detection sees something.
    pub(crate) fn until_detected(&mut self) {
        while self.app.incidents.is_empty() {
            assert!(self.t < 1200, "nothing detected");
            self.tick();
        }
    }

    /// Presses a playbook's key and starts it from the prompt.
    pub(crate) fn open(&mut self, key: char) {
        self.key(KeyCode::Char(key));
        assert!(
            matches!(self.app.prompt, Some(Prompt::Start { .. })),
            "no start prompt: {:?}",
            self.app.notice
        );
        self.key(KeyCode::Enter);
        assert!(self.app.run.is_some(), "not started: {:?}", self.app.notice);
    }

    fn phase(&self) -> Phase {
        self.app.run.as_ref().expect("a run").phase.clone()
    }

    /// One key per step to the run's end: Enter, confirm as asked, wait while a step waits;
    /// a failed step is retried (r) once, a second failure is the test's.
    pub(crate) fn run_to_end(&mut self) {
        let (mut retried, mut keys) = (0, 0);
        while !self.app.run.as_ref().expect("a run").is_over() {
            assert!(self.t < 4 * 3600, "run stuck in {:?}", self.phase());
            keys += 1;
            assert!(
                keys < 500,
                "keys go nowhere: {:?}\n{}",
                self.app.notice,
                self.screen()
            );
            match self.phase() {
                Phase::Ready => self.key(KeyCode::Enter),
                Phase::Confirming { plan, .. } => {
                    if plan.confirm == Confirm::TypeId {
                        let id = plan.confirm_id.expect("an id to type");
                        for c in id[id.len() - 4..].chars() {
                            self.key(KeyCode::Char(c));
                        }
                    }
                    self.key(KeyCode::Enter);
                }
                Phase::Waiting { .. } | Phase::Calling { .. } => self.tick(),
                Phase::Failed { error } => {
                    retried += 1;
                    assert!(retried < 2, "failed again: {error}");
                    self.key(KeyCode::Char('r'));
                }
                Phase::Finished { .. } | Phase::Aborted { .. } => {}
            }
        }
    }

    /// Closes the finished run (c), and lets the drill run to its end.
    pub(crate) fn close_and_finish(&mut self) -> Scorecard {
        self.key(KeyCode::Char('c'));
        self.wait(3 * 3600);
        self.card()
    }

    pub(crate) fn card(&self) -> Scorecard {
        self.app
            .drill
            .as_ref()
            .and_then(|d| d.scorecard.clone())
            .unwrap_or_else(|| panic!("the drill is not over:\n{}", self.screen()))
    }
}

fn charges(card: &Scorecard) -> Vec<Charge> {
    card.deductions.iter().map(|d| d.charge).collect()
}

#[test]
fn slow_web_played_right() {
    let mut t = Trainee::start("slow-web");
    t.until_detected();
    t.open('R');
    t.run_to_end();
    // The scenario's throttled launch failed the step once, and `r` sent it again.
    let records = &t.app.run.as_ref().unwrap().records;
    let throttled = records.iter().any(|r| {
        matches!(r, dake::runbook::record::Record::Result { outcome: Err(e), .. }
            if e.contains("RequestLimitExceeded"))
    });
    assert!(throttled, "{records:#?}");
    let card = t.close_and_finish();
    assert_eq!(card.outcome, "recovered");
    assert!(
        !charges(&card).iter().any(|c| matches!(c, Charge::Wrong(_))),
        "{card:#?}"
    );
    pin("slow_web", &card);
}

/// The scorecard a scripted trainee gets, pinned: its Markdown says every figure.
fn pin(name: &str, card: &Scorecard) {
    insta::assert_snapshot!(name, card.markdown(dake::i18n::Lang::En, &[]));
}

fn wrongs(card: &Scorecard) -> Vec<Charge> {
    charges(card)
        .into_iter()
        .filter(|c| matches!(c, Charge::Wrong(_)))
        .collect()
}

#[test]
fn noisy_neighbour_waited_out_scores_full_marks() {
    let mut t = Trainee::start("noisy-neighbour");
    t.until_detected();
    assert!(t.screen().contains("R web-replace"), "{}", t.screen());
    t.wait(3 * 3600);
    let card = t.card();
    assert_eq!(card.outcome, "recovered");
    assert_eq!(card.score, 100, "{card:#?}");
    pin("noisy_neighbour_waited_out", &card);
}

#[test]
fn noisy_neighbour_replaced_is_charged_an_unneeded_failover() {
    let mut t = Trainee::start("noisy-neighbour");
    t.until_detected();
    t.open('R');
    t.run_to_end();
    let card = t.close_and_finish();
    assert_eq!(
        wrongs(&card),
        [Charge::Wrong(Wrong::UnneededFailover)],
        "{card:#?}"
    );
    pin("noisy_neighbour_replaced", &card);
}

#[test]
fn master_down_played_right_with_a_hint() {
    let mut t = Trainee::start("master-down");
    t.key(KeyCode::Char('h'));
    let hint = t.screen();
    assert!(
        hint.contains("Hint") && hint.contains("1 of 3 (each costs points)"),
        "{hint}"
    );
    // Any key closes it, and counts.
    t.key(KeyCode::Char('x'));
    assert!(t.app.prompt.is_none());
    t.until_detected();
    t.open('P');
    t.run_to_end();
    let card = t.close_and_finish();
    assert_eq!(card.outcome, "recovered");
    assert_eq!(charges(&card), [Charge::Hint], "{card:#?}");
    assert_eq!(card.hints, 1);
    pin("master_down_with_a_hint", &card);
}

#[test]
fn master_down_lagging_promotes_the_replica_that_keeps_up() {
    let mut t = Trainee::start("master-down-lagging");
    t.until_detected();
    t.open('P');
    t.run_to_end();
    let rank = t.app.run.as_ref().unwrap().steps[1].note.clone().unwrap();
    assert!(rank.starts_with("chose db-replica-2"), "{rank}");
    let card = t.close_and_finish();
    assert_eq!(card.outcome, "recovered");
    assert!(wrongs(&card).is_empty(), "{card:#?}");
    pin("master_down_lagging", &card);
}

#[test]
fn errant_replica_leaves_no_replica_to_promote_and_the_volume_moves() {
    let mut t = Trainee::start("errant-replica");
    t.until_detected();
    t.open('P');
    t.key(KeyCode::Enter);
    t.key(KeyCode::Enter);
    // The errant replica is out, and the other lacks what it received: nothing to promote.
    let refusal = t.app.notice.clone().unwrap_or_default();
    assert!(
        refusal.contains("db-replica-1: errant transactions")
            && refusal.contains("db-replica-2: lacks"),
        "{refusal}"
    );
    t.key(KeyCode::Char('x'));
    t.key(KeyCode::Enter);
    t.key(KeyCode::Char('c'));
    t.open('E');
    t.run_to_end();
    let card = t.close_and_finish();
    assert_eq!(card.outcome, "recovered");
    assert!(wrongs(&card).is_empty(), "{card:#?}");
    assert_eq!(card.runs.len(), 2);
    pin("errant_replica", &card);
}

#[test]
fn master_comes_back_played_right() {
    let mut t = Trainee::start("master-comes-back");
    t.until_detected();
    t.open('P');
    t.run_to_end();
    let card = t.close_and_finish();
    assert_eq!(card.outcome, "recovered");
    assert!(wrongs(&card).is_empty(), "{card:#?}");
    pin("master_comes_back", &card);
}

#[test]
fn double_fault_web_then_database() {
    let mut t = Trainee::start("double-fault");
    t.until_detected();
    t.open('R');
    t.run_to_end();
    t.key(KeyCode::Char('c'));
    while !t.screen().contains("P db-promote") {
        assert!(!t.over(), "the master never went down");
        t.tick();
    }
    t.open('P');
    t.run_to_end();
    let card = t.close_and_finish();
    assert_eq!(card.outcome, "recovered");
    assert!(wrongs(&card).is_empty(), "{card:#?}");
    assert_eq!(card.runs.len(), 2);
    pin("double_fault", &card);
}

#[test]
fn promoting_past_the_refusal_is_charged_the_override_and_the_data_lost() {
    let mut t = Trainee::start("errant-replica");
    t.until_detected();
    t.open('P');
    t.key(KeyCode::Enter);
    t.key(KeyCode::Enter);
    t.key(KeyCode::Char('O'));
    for c in "lagging-replica".chars() {
        t.key(KeyCode::Char(c));
    }
    t.key(KeyCode::Enter);
    t.run_to_end();
    let card = t.close_and_finish();
    assert_eq!(
        wrongs(&card),
        [
            Charge::Wrong(Wrong::OverrideUsed),
            Charge::Wrong(Wrong::LaggingPromoted)
        ],
        "{card:#?}"
    );
    let lost = &card.deductions[1].detail;
    assert!(
        lost.starts_with("db-replica-2 promoted though lacks"),
        "{lost}"
    );
    pin("errant_replica_overridden", &card);
}

#[test]
fn an_old_master_declared_fenced_that_was_not_is_charged_two_masters() {
    let mut t = Trainee::start("master-comes-back");
    t.until_detected();
    // EC2 will not stop it: the fence fails, and the trainee says it is fenced anyway.
    t.fleet.fail_next(
        "StopInstances",
        "UnauthorizedOperation: You are not authorized to perform this operation.",
    );
    t.open('P');
    for _ in 0..4 {
        t.key(KeyCode::Enter);
    }
    assert!(
        t.app.run.as_ref().unwrap().may_declare_fenced(),
        "{}",
        t.screen()
    );
    t.key(KeyCode::Char('F'));
    for c in "fenced".chars() {
        t.key(KeyCode::Char(c));
    }
    t.key(KeyCode::Enter);
    t.run_to_end();
    let card = t.close_and_finish();
    assert!(
        wrongs(&card).contains(&Charge::Wrong(Wrong::TwoMasters)),
        "{card:#?}"
    );
    pin("master_comes_back_unfenced", &card);
}

#[test]
fn drill_lists_reports_and_refuses_what_it_cannot_do() {
    let sb = crate::sandbox::Sandbox::new();
    let out = sb.run(&["drill", "--list"]);
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        list.contains("master-comes-back") && list.contains("double-fault"),
        "{list}"
    );
    let refused = |args: &[&str], says: &str| {
        let out = sb.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{err}");
    };
    refused(
        &["drill", "disk-full"],
        "no scenario `disk-full`: one of slow-web",
    );
    refused(&["drill"], "name a scenario: dake drill <slow-web|");
    refused(
        &["drill", "--provider", "aws", "slow-web"],
        "drills run on the simulated fleet",
    );
    refused(&["drill", "--report"], "no drill attempt in");
    // A scenario of the trainer's own that is broken: file, line, key.
    let dir = sb.config_home().join("dake").join("scenarios");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("mine.toml"), "id = \"mine\"\ntitle = 3\n").unwrap();
    refused(&["drill", "--list"], "mine.toml:2: key `title`");
    std::fs::remove_file(dir.join("mine.toml")).unwrap();

    // Two attempts saved: the report is the last, with the one before it.
    let mut first = Trainee::start("master-down");
    first.until_detected();
    first.open('P');
    first.run_to_end();
    let good = first.close_and_finish();
    let mut lazy = good.clone();
    lazy.score = 40;
    lazy.ended_at += Duration::hours(1);
    let results = sb.path().join("data").join("dake").join("drills.jsonl");
    dake::drill::scorecard::save(&results, &good).unwrap();
    dake::drill::scorecard::save(&results, &lazy).unwrap();
    let out = sb.run(&["drill", "--report", "master-down"]);
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(md.starts_with("# Drill scorecard: The master database is down (master-down)"));
    assert!(
        md.contains("**40/100**") && md.contains("## Earlier attempts"),
        "{md}"
    );
    assert!(
        md.contains(&format!(
            "| {} | 100 |",
            good.ended_at.format("%Y-%m-%d %H:%M")
        )),
        "{md}"
    );
    // In Japanese, with the scenario's own Japanese title and lesson.
    let out = sb.run(&["drill", "--report", "master-down", "--lang", "ja"]);
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.starts_with("# 訓練スコアカード："), "{md}");
    assert!(
        md.contains("## これまでの挑戦") && md.contains("## この訓練で学ぶこと"),
        "{md}"
    );
}

#[test]
fn present_mode_shows_the_incident_the_step_and_the_key_and_masks_addresses() {
    let mut t = Trainee::start("master-down");
    t.app.present = true;
    t.until_detected();
    t.open('P');
    t.key(KeyCode::Enter);
    // Whatever puts an address on screen, it is masked there.
    t.app.notice = Some("replica 10.0.12.34:3306 in account 123456789012 answers".into());
    let screen = t.screen();
    assert!(
        screen.contains("▶ db-promote · step 2/10 rank · next"),
        "{screen}"
    );
    assert!(screen.contains("key: Enter"), "{screen}");
    assert!(
        screen.contains("replica ••.•.••.34:3306 in account ••••••••9012"),
        "{screen}"
    );
    assert!(!screen.contains("10.0.12.34"), "{screen}");
    insta::assert_snapshot!("present_80x24", screen);
    // The key goes after a moment.
    let later = t.app.now + Duration::seconds(3);
    update(&mut t.app, Msg::Tick(later));
    assert!(!t.screen().contains("key: Enter"));
}

/// The same drill in Japanese: the banner, the run panel, the prompts and the scorecard, every
/// line within 80 columns however wide its characters.
#[test]
fn a_drill_in_japanese_at_80x24() {
    use dake::i18n::Lang;
    let mut t = Trainee::start("master-comes-back");
    t.app.lang = Lang::Ja;
    let fits = |screen: &str| {
        for line in screen.lines() {
            assert!(dake::text::width(line) <= 80, "{line}");
        }
    };
    let before = t.screen();
    assert!(
        before.contains("訓練 master-comes-back：あと約"),
        "{before}"
    );
    insta::assert_snapshot!("japanese_main_80x24", before);
    t.until_detected();
    t.key(KeyCode::Char('P'));
    let prompt = t.screen();
    assert!(prompt.contains("プレイブック開始"), "{prompt}");
    fits(&prompt);
    t.key(KeyCode::Enter);
    t.key(KeyCode::Enter);
    let run = t.screen();
    assert!(
        run.contains("プレイブック db-promote") && run.contains("完了"),
        "{run}"
    );
    fits(&run);
    insta::assert_snapshot!("japanese_run_80x24", run);
    t.key(KeyCode::Char('h'));
    let hint = t.screen();
    assert!(hint.contains("ヒント") && hint.contains("1 / 2"), "{hint}");
    fits(&hint);
    t.key(KeyCode::Esc);
    t.run_to_end();
    let card = t.close_and_finish();
    let over = t.screen();
    assert!(
        over.contains(&format!("訓練 master-comes-back：{}/100", card.score)),
        "{over}"
    );
    fits(&over);
    insta::assert_snapshot!("japanese_scorecard_80x24", over);
}
