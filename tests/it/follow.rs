//! `dake follow`: another process's run, read from its journal as it grows; read-only.

use std::process::Stdio;

use crate::drills::Trainee;
use crate::run_ui::screen_of;
use crate::sandbox::Sandbox;
use dake::app::{App, Arming, Msg, update};
use dake::config::Config;
use dake::runbook::journal;
use dake::runbook::model::load_all;
use ratatui::crossterm::event::KeyCode;

#[test]
fn follow_prints_the_steps_of_a_run_another_process_executes() {
    let sb = Sandbox::new();
    // The follower first: it waits for a run to start.
    let follower = sb
        .dake_process()
        .arg("follow")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run = sb.run(&[
        "run",
        "web-replace",
        "--target",
        "web-3",
        "--inject",
        "slow-web",
        "--yes",
        "--speed",
        "50",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let out = follower.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    let journals = sb.journals();
    assert_eq!(journals.len(), 1);
    let records = journal::read(&journals[0]).unwrap();
    let run_id = journal::list(&sb.runs())[0].run_id.clone();
    let mut lines = printed.lines();
    assert!(
        lines.by_ref().any(|l| l.starts_with(&format!(
            "following run {run_id} (web-replace on web-3), read-only"
        ))),
        "{printed}"
    );
    // Every record, in order, each once.
    let body: Vec<&str> = lines.collect();
    assert_eq!(body.len(), records.len(), "{printed}");
    for (line, rec) in body.iter().zip(&records) {
        assert_eq!(
            *line,
            format!("{}  {}", rec.at().format("%H:%M:%S"), rec.describe())
        );
    }
    // A run that is not there is one clear error.
    let out = sb.run(&["follow", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no run `nope`"));
}

#[test]
fn the_follow_screen_shows_the_run_and_the_drills_scorecard_and_changes_nothing() {
    let mut t = Trainee::start("master-down");
    t.until_detected();
    t.open('P');
    t.run_to_end();
    let run = t.app.run.clone().unwrap();
    let card = t.close_and_finish();

    let mut app = App::new(
        Config::builtin(),
        "journal",
        Arming::Following,
        crate::fixtures::epoch(),
    );
    app.playbooks = load_all(None).unwrap();
    update(&mut app, Msg::Resize(80, 24));
    let summary = journal::summarise(
        &run.records,
        format!("runs/{}.jsonl", run.ctx.run_id).into(),
    )
    .unwrap();
    // Halfway: the steps done so far.
    let half = run.records.len() / 2;
    update(
        &mut app,
        Msg::Followed {
            summary: Box::new(summary.clone()),
            records: run.records[..half].to_vec(),
        },
    );
    let screen = screen_of(&app);
    assert!(
        screen.contains("FOLLOWING run 20261126T090030Z-db-promote-SALT"),
        "{screen}"
    );
    assert!(screen.contains("FOLLOW read-only"), "{screen}");
    insta::assert_snapshot!("follow_halfway_80x24", screen);
    // Keys do nothing but say so.
    for k in ['P', 'x', 'r', 'A'] {
        update(
            &mut app,
            Msg::Key(crate::run_ui::key_event(KeyCode::Char(k))),
        );
    }
    update(&mut app, Msg::Key(crate::run_ui::key_event(KeyCode::Enter)));
    assert_eq!(app.outbox.len(), 0);
    assert!(app.prompt.is_none());
    assert!(screen_of(&app).contains("read-only: this console follows a run and changes nothing"));
    // The end, and the drill's scorecard as the trainee saw it.
    update(
        &mut app,
        Msg::Followed {
            summary: Box::new(summary),
            records: run.records.clone(),
        },
    );
    update(&mut app, Msg::FollowedCard(Box::new(card.clone())));
    let seen = screen_of(&app);
    assert!(
        seen.contains(&format!("Drill master-down: {}/100", card.score)),
        "{seen}"
    );
    t.app.show_scorecard = true;
    let trainee = screen_of(&t.app);
    let overlay = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| {
                l.contains('│')
                    && (l.contains("took") || l.contains("detect") || l.contains("recover"))
            })
            .map(|l| l.split('│').nth(1).unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(
        overlay(&seen),
        overlay(&trainee),
        "both see the same scorecard"
    );
    insta::assert_snapshot!("follow_scorecard_80x24", seen);
}
