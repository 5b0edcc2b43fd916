//! The tier's lease in the console: a step that failed on it names what lifts it, and the
//! operator types it there: the run id of a dead holder (T), or the override of a failover
//! another machine made moments ago (O).

use crate::fixtures::epoch;
use crate::run_ui::Drill;
use chrono::Duration;
use dake::app::Prompt;
use dake::config::IncidentKind;
use dake::domain::call::ProviderCall;
use dake::domain::lease::FailoverRecord;
use dake::runbook::engine::Phase;
use dake::runbook::overrides::Override;
use ratatui::crossterm::event::KeyCode;

fn type_text(d: &mut Drill, text: &str) {
    for c in text.chars() {
        d.key(KeyCode::Char(c));
    }
}

fn failed(d: &Drill) -> String {
    match d.phase() {
        Phase::Failed { error } => error,
        other => panic!("the step did not fail: {other:?}"),
    }
}

#[test]
fn a_dead_holders_lease_is_taken_over_by_typing_its_run_and_a_recent_failover_by_its_override() {
    let mut d = Drill::new(IncidentKind::MasterDown);
    // Another console took the tier's lease at the start and died; another machine failed the
    // tier over a minute before that, and left its record.
    let dead = ProviderCall::TakeLease {
        key: "drill/db".into(),
        run_id: "20261130T100000Z-db-promote-dead".into(),
        operator: "op@bastion-1".into(),
        take_over: None,
        stale_secs: 120,
        anti_flap_secs: 1800,
        flapping_allowed: true,
    };
    d.fleet.apply(&dead).unwrap();
    let elsewhere = ProviderCall::ReleaseLease {
        key: "drill/db".into(),
        run_id: "20261130T095500Z-db-promote-away".into(),
        failover: Some(FailoverRecord {
            run_id: "20261130T095500Z-db-promote-away".into(),
            operator: "op@bastion-2".into(),
            playbook: "db-promote".into(),
            at: epoch() - Duration::seconds(60),
        }),
    };
    d.fleet.apply(&elsewhere).unwrap();
    d.until_detected();
    // Long enough for the dead console's lease to be stale.
    while d.fleet.snapshot().taken_at < epoch() + Duration::seconds(150) {
        d.tick();
    }
    d.start('P', false);
    // confirm-down, rank, then the fence, confirmed: its lease is refused.
    for _ in 0..4 {
        d.key(KeyCode::Enter);
    }
    let error = failed(&d);
    assert!(
        error.contains("20261130T100000Z-db-promote-dead"),
        "{error}"
    );
    let screen = d.screen();
    assert!(screen.contains("T take over lease"), "{screen}");
    assert!(
        screen.contains("T takes the lease over if run 20261130T100000Z-db-promote-dead is dead"),
        "{screen}"
    );
    // Declaring the old master fenced would go on without the lease.
    assert!(!screen.contains("F fenced by other means"), "{screen}");
    d.key(KeyCode::Char('F'));
    assert!(d.app.prompt.is_none());
    d.key(KeyCode::Char('T'));
    let prompt = d.screen();
    assert!(
        prompt.contains("Take over the lease?") && prompt.contains("type its run id"),
        "{prompt}"
    );
    // Another run's id, or the right one in capitals, takes nothing.
    type_text(&mut d, "20261130T100000Z-DB-PROMOTE-DEAD");
    d.key(KeyCode::Enter);
    assert!(matches!(d.app.prompt, Some(Prompt::TakeOverLease { .. })));
    for _ in 0.."20261130T100000Z-DB-PROMOTE-DEAD".len() {
        d.key(KeyCode::Backspace);
    }
    type_text(&mut d, "20261130T100000Z-db-promote-dead");
    d.key(KeyCode::Enter);
    assert!(d.app.prompt.is_none());
    assert_eq!(d.phase(), Phase::Ready, "the fence is planned again");

    // Taken over, the lease still refuses: the failover another machine made is recorded.
    d.key(KeyCode::Enter);
    d.key(KeyCode::Enter);
    let error = failed(&d);
    assert!(
        error.contains("run 20261130T095500Z-db-promote-away (db-promote, op@bastion-2)")
            && error.contains("override `anti-flapping`"),
        "{error}"
    );
    assert!(d.screen().contains("O override"), "{}", d.screen());
    d.key(KeyCode::Char('O'));
    type_text(&mut d, "anti-flapping");
    d.key(KeyCode::Enter);
    let run = d.app.run.as_ref().unwrap();
    assert!(run.ctx.allows(Override::AntiFlapping));
    assert_eq!(run.phase, Phase::Ready);
    d.run_to_end();
    assert_eq!(d.fleet.snapshot().master().unwrap().name, "db-replica-1");
    assert!(
        d.app.run.as_ref().unwrap().records.iter().any(|r| r
            .describe()
            .contains("takes over the tier's lease from run 20261130T100000Z-db-promote-dead")),
        "journaled"
    );
}
