//! Playbook runs in the console: starting one from its key, one key per step, confirmations,
//! resuming a run the console died during. The engine decides; this feeds it events and hands
//! its effects to the event loop through the outbox.

use chrono::{DateTime, Duration, Utc};
use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::keymap::{RunAction, run_action_for};
use super::prompts::Prompt;
use super::state::{App, Arming, EntryKind};
use crate::runbook::engine::{Phase, Run};
use crate::runbook::event::{Effect, Event};
use crate::runbook::executor::Answer;
use crate::runbook::journal::{RunSummary, recent_failover};
use crate::runbook::model::{Confirm, Playbook, find};
use crate::runbook::overrides::Override;
use crate::runbook::record::Record;
use crate::runbook::setup::{context, incident_event, playbook_of, resume_context};

/// What `update` asks the event loop to do: it may touch disks and the network, `update` may not.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    /// Open the run's journal (a new one, or the resumed run's), start its executor, then
    /// carry out these effects.
    Start {
        run_id: String,
        effects: Vec<Effect>,
        resumed: bool,
    },
    Effects(Vec<Effect>),
    /// Read this run's journal and answer with `Msg::Resumed`.
    LoadJournal(RunSummary),
    /// Re-read the list of runs (for anti-flapping) after one ends.
    ListRuns,
    /// Keep a finished drill's scorecard with the earlier attempts.
    SaveDrill(Box<crate::drill::Scorecard>),
}

/// What Enter says while a step is in flight; gone once the step is.
const STILL_RUNNING: &str = said!("the current step is still running");

impl App {
    /// The fleet's clock now: the newest snapshot's clock advanced by the wall time since.
    pub fn fleet_now(&self) -> DateTime<Utc> {
        match (self.fleet_clock, self.fetched_at) {
            (Some(clock), Some(fetched)) => clock + (self.now - fetched),
            _ => self.now,
        }
    }

    /// Puts journaled records on the timeline and refusals in the notice.
    fn show(&mut self, effects: &[Effect]) {
        for e in effects {
            match e {
                Effect::Journal(rec) => {
                    self.drill_record(rec);
                    self.push_timeline(rec.at(), EntryKind::of(rec), rec.describe());
                }
                Effect::Refused(reason) => self.notice = Some(reason.clone()),
                Effect::Call { .. }
                | Effect::Resolve { .. }
                | Effect::Release(_)
                | Effect::Sync => {}
            }
        }
    }

    /// Feeds one event to the run on screen at `now`, and hands its effects to the loop.
    fn advance_run_at(&mut self, event: Event<'_>, now: DateTime<Utc>) {
        let Some(run) = self.run.as_mut() else { return };
        let before = run.is_over();
        let fx = run.advance(event, now);
        let ended = !before && run.is_over();
        let busy = matches!(run.phase, Phase::Calling { .. } | Phase::Waiting { .. });
        if !busy && self.notice.as_deref() == Some(STILL_RUNNING) {
            self.notice = None;
        }
        self.show(&fx);
        if !fx.is_empty() {
            self.outbox.push(Outgoing::Effects(fx));
        }
        if ended {
            self.outbox.push(Outgoing::ListRuns);
        }
    }

    pub(super) fn advance_run(&mut self, event: Event<'_>) {
        self.advance_run_at(event, self.fleet_now());
    }

    /// Feeds a fresh snapshot to a waiting run, on the snapshot's own clock.
    pub(super) fn observe_run(&mut self) {
        if !self
            .run
            .as_ref()
            .is_some_and(|r| matches!(r.phase, Phase::Waiting { .. }))
        {
            return;
        }
        let Some(snap) = self.snapshot.take() else {
            return;
        };
        let now = snap.taken_at;
        self.advance_run_at(Event::Observe { snap: &snap }, now);
        self.snapshot = Some(snap);
    }

    pub(super) fn on_answer(&mut self, answer: Answer) {
        match answer {
            Answer::CallDone { index, outcome } => {
                self.advance_run(Event::CallDone { index, outcome })
            }
            Answer::CallFailed { index, error } => {
                self.advance_run(Event::CallFailed { index, error })
            }
            Answer::Refused(reason) => self.notice = Some(reason),
            Answer::Synced => {}
            Answer::JournalFailed(e) => {
                let text = say!("journal write failed, nothing more will be done: {e}");
                self.push_timeline(self.fleet_now(), EntryKind::Error, text.clone());
                self.notice = Some(text);
                if let Some(run) = self.run.as_mut() {
                    run.phase = Phase::Failed {
                        error: said!("the journal cannot be written").into(),
                    };
                }
            }
        }
    }

    pub(super) fn on_resumed(&mut self, summary: RunSummary, records: Result<Vec<Record>, String>) {
        let replayed = records.and_then(|records| {
            let pb = playbook_of(&self.playbooks, &summary)?;
            let ctx = resume_context(&self.config, &summary.run_id);
            Run::replay(&records, pb.clone(), ctx)
        });
        match replayed {
            Err(e) => self.notice = Some(say!("cannot resume {}: {e}", summary.run_id)),
            Ok(mut run) => {
                let now = self.fleet_now();
                let mut fx = run.advance(
                    Event::Note(say!("resumed in the console by {}", self.operator)),
                    now,
                );
                fx.extend(run.resume(now));
                let run_id = run.ctx.run_id.clone();
                self.run = Some(run);
                self.emit_start(run_id, fx, true);
            }
        }
    }

    fn emit_start(&mut self, run_id: String, fx: Vec<Effect>, resumed: bool) {
        self.show(&fx);
        self.outbox.push(Outgoing::Start {
            run_id,
            effects: fx,
            resumed,
        });
    }

    /// A playbook's key: pick the target (the instance its incident is on, else the selected
    /// one) and ask before starting.
    pub(super) fn begin_playbook(&mut self, key: char) -> bool {
        let Some(pb) = self.playbooks.iter().find(|p| p.key == key).cloned() else {
            return false;
        };
        if self.run.as_ref().is_some_and(|r| !r.is_over()) {
            self.notice = Some(said!("a run is in progress; finish or abort it (x) first").into());
            return true;
        }
        if self.arming == Arming::ReadOnly {
            self.notice = Some(
                said!("read-only: press A to arm the console before running a playbook").into(),
            );
            return true;
        }
        let Some(snap) = self.snapshot.as_ref() else {
            return true;
        };
        let from_incident = self
            .incidents
            .iter()
            .find(|i| i.kind == pb.incident)
            .map(|i| i.instance_id.clone());
        let target = from_incident.or_else(|| {
            self.selected_instance()
                .filter(|i| i.role == pb.target_role)
                .map(|i| i.id.clone())
        });
        let Some(target) = target.filter(|t| snap.find(t).is_some()) else {
            self.notice = Some(say!(
                "{} needs a {} target: no {} incident, and the selected instance is not one",
                pb.id,
                pb.target_role,
                pb.incident.as_str()
            ));
            return true;
        };
        let flapping = self.recent_failover(&pb);
        self.prompt = Some(Prompt::Start {
            playbook: pb.id.clone(),
            target_id: target,
            quarantine: false,
            flapping,
            typed: String::new(),
        });
        true
    }

    fn recent_failover(&self, pb: &Playbook) -> Option<String> {
        let window = Duration::seconds(self.config.runbook.anti_flap_secs as i64);
        let now = self.fleet_now();
        recent_failover(&self.past_runs, &self.playbooks, pb, now, window)
            .map(|r| r.started_ago(now))
    }

    pub(super) fn start_run(
        &mut self,
        playbook: &str,
        target_id: &str,
        quarantine: bool,
        overrides: &[Override],
    ) {
        let (Some(pb), Some(snap)) = (
            find(&self.playbooks, playbook).cloned(),
            self.snapshot.as_ref(),
        ) else {
            return;
        };
        let Some(target) = snap.find(target_id).cloned() else {
            self.notice = Some(say!("{target_id} is not in the fleet any more"));
            return;
        };
        let now = self.fleet_now();
        let run_id = self.run_ids.next(&pb.id, now);
        let ctx = context(
            &self.config,
            &run_id,
            (&target.id, &target.name),
            quarantine,
            overrides,
        );
        let (mut run, mut fx) = Run::start(ctx, pb, self.operator.clone(), now);
        if let Some(inc) = self.incidents.iter().find(|i| i.instance_id == target.id) {
            fx.extend(run.advance(incident_event(inc, &self.config.detect), now));
        }
        self.run = Some(run);
        self.notice = None;
        self.emit_start(run_id, fx, false);
    }

    /// Keys while a run is on screen; `None` lets the normal keymap have the key.
    pub(super) fn on_run_key(&mut self, key: KeyEvent) -> Option<bool> {
        let run = self.run.as_ref()?;
        let phase = run.phase.clone();
        let over = run.is_over();
        let typing =
            matches!(&phase, Phase::Confirming { plan, .. } if plan.confirm == Confirm::TypeId);
        // While an id is being typed every character belongs to it.
        match key.code {
            KeyCode::Char(c) if typing => {
                self.advance_run(Event::TypeChar(c));
                return Some(true);
            }
            KeyCode::Backspace if typing => {
                self.advance_run(Event::Backspace);
                return Some(true);
            }
            _ => {}
        }
        match (run_action_for(&key)?, &phase) {
            (RunAction::Step, Phase::Ready | Phase::Confirming { .. }) => {
                self.notice = None;
                let Some(snap) = self.snapshot.take() else {
                    return Some(false);
                };
                let step = run.current_step().map_or(String::new(), |s| s.name.clone());
                self.advance_run(Event::Note(say!("key Enter: {step}")));
                let event = if matches!(phase, Phase::Ready) {
                    Event::Proceed { snap: &snap }
                } else {
                    Event::Confirm { snap: &snap }
                };
                self.advance_run(event);
                self.snapshot = Some(snap);
                self.drill_judge();
            }
            (RunAction::Step, Phase::Calling { .. } | Phase::Waiting { .. }) => {
                self.notice = Some(STILL_RUNNING.into());
            }
            (RunAction::Step, Phase::Failed { error }) => {
                self.notice = Some(say!(
                    "the step failed ({error}): r retries it, x aborts the run"
                ));
            }
            (RunAction::Cancel, Phase::Confirming { .. }) => self.advance_run(Event::Cancel),
            (RunAction::Abort, _) if !over => self.prompt = Some(Prompt::Abort),
            (RunAction::Retry, Phase::Failed { .. }) => self.advance_run(Event::Retry),
            (RunAction::Override, _) if run.may_override().is_some() => {
                if let Some(which) = run.may_override() {
                    self.prompt = Some(Prompt::Override {
                        which,
                        typed: String::new(),
                    });
                }
            }
            (RunAction::TakeOverLease, _) if run.stale_lease_holder().is_some() => {
                let holder = run.stale_lease_holder().unwrap_or_default().to_string();
                self.prompt = Some(Prompt::TakeOverLease {
                    holder,
                    typed: String::new(),
                });
            }
            (RunAction::DeclareFenced, _) if run.may_declare_fenced() => {
                self.prompt = Some(Prompt::DeclareFenced {
                    typed: String::new(),
                });
            }
            (RunAction::Close, _) if over => {
                // Kept among the runs this console knows until the journals are read again
                // (once, not twice): anti-flapping and the banner's "mitigated by" read them.
                if let Some(done) = self.run.take() {
                    let path = format!("{}.jsonl", done.ctx.run_id).into();
                    let known = self.past_runs.iter().any(|r| r.run_id == done.ctx.run_id);
                    if let Some(summary) = crate::runbook::journal::summarise(&done.records, path)
                        && !known
                    {
                        self.past_runs.push(summary);
                    }
                }
            }
            _ => return None,
        }
        Some(true)
    }
}
