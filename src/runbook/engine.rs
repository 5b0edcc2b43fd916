//! The runbook engine: a pure state machine. `advance(event)` changes the run and returns the
//! effects a driver must carry out, journal records first (`event`). The console, the headless
//! CLI and tests all drive this one engine; a confirmation's side is in `confirm`, a waiting
//! step's in `wait`, rebuilding a run from its journal in `replay`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::event::{Effect, Event};
use super::model::{Confirm, Playbook, WaitKind};
use super::overrides::Override;
use super::plan::{Plan, RunContext, plan};
use super::record::{Record, StepStatus};
use crate::domain::FleetSnapshot;
use crate::domain::call::{CallOutcome, ProviderCall};
use crate::domain::lease::FailoverRecord;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallState {
    pub call: ProviderCall,
    pub token: String,
    /// `None` while in flight (or when the console died before the answer was journaled).
    pub outcome: Option<Result<CallOutcome, String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRun {
    pub status: StepStatus,
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    pub note: Option<String>,
    /// Every call made for this step, across retries, in order.
    pub calls: Vec<CallState>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Waiting for the operator to run the step at the cursor.
    Ready,
    /// The plan is on screen; a second key (or the typed id suffix) runs it.
    Confirming {
        plan: Plan,
        typed: String,
    },
    /// Calls being made, one at a time.
    Calling {
        plan: Plan,
    },
    Waiting {
        wait: WaitKind,
        since: DateTime<Utc>,
        deadline: DateTime<Utc>,
        detail: String,
        /// Why it may take longer than the step says (the data's delay, the resource's own
        /// setting), when it may.
        longer: Option<String>,
    },
    /// A call failed or a wait ran out: retry the step or abort the run.
    Failed {
        error: String,
    },
    Finished {
        outcome: String,
    },
    Aborted {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub ctx: RunContext,
    pub playbook: Playbook,
    pub operator: String,
    pub started_at: DateTime<Utc>,
    pub steps: Vec<StepRun>,
    pub cursor: usize,
    pub phase: Phase,
    /// Everything journaled so far, oldest first: the run's timeline.
    pub records: Vec<Record>,
    /// The override the last refusal offered, until the step is planned again.
    pub offered: Option<Override>,
}

impl Run {
    /// A run with every step pending and nothing journaled: the start of `start` and `replay`.
    pub(super) fn fresh(
        ctx: RunContext,
        playbook: Playbook,
        operator: String,
        started_at: DateTime<Utc>,
    ) -> Run {
        let steps = playbook
            .steps
            .iter()
            .map(|_| StepRun {
                status: StepStatus::Pending,
                started: None,
                finished: None,
                note: None,
                calls: Vec::new(),
            })
            .collect();
        Run {
            ctx,
            playbook,
            operator,
            started_at,
            steps,
            cursor: 0,
            phase: Phase::Ready,
            records: Vec::new(),
            offered: None,
        }
    }

    /// Starts a run; the first effect journals it.
    pub fn start(
        ctx: RunContext,
        playbook: Playbook,
        operator: String,
        now: DateTime<Utc>,
    ) -> (Run, Vec<Effect>) {
        let mut run = Run::fresh(ctx, playbook, operator, now);
        run.ctx.operator = run.operator.clone();
        let mut fx = Vec::new();
        let rec = Record::Started {
            at: now,
            run_id: run.ctx.run_id.clone(),
            playbook: run.playbook.id.clone(),
            target_id: run.ctx.target_id.clone(),
            target_name: run.ctx.target_name.clone(),
            operator: run.operator.clone(),
            quarantine: run.ctx.quarantine,
            overrides: run.ctx.overrides.iter().copied().collect(),
            force: false,
        };
        run.journal(&mut fx, rec);
        (run, fx)
    }

    pub fn is_over(&self) -> bool {
        matches!(self.phase, Phase::Finished { .. } | Phase::Aborted { .. })
    }

    /// The step the cursor is on, if any is left.
    pub fn current_step(&self) -> Option<&super::model::Step> {
        self.playbook.steps.get(self.cursor)
    }

    /// The plan the next Enter would carry out, for the screen; refusals come back as `Err`.
    pub fn preview(&self, snap: &FleetSnapshot) -> Option<Result<Plan, String>> {
        let step = self.current_step()?;
        Some(plan(step, self.cursor, &self.ctx, snap))
    }

    pub(super) fn journal(&mut self, fx: &mut Vec<Effect>, rec: Record) {
        self.records.push(rec.clone());
        fx.push(Effect::Journal(rec));
    }

    /// Ids and facts the current step decided, kept for the steps after it and journaled.
    pub(super) fn record_vars(
        &mut self,
        fx: &mut Vec<Effect>,
        now: DateTime<Utc>,
        vars: std::collections::BTreeMap<String, String>,
    ) {
        self.ctx.vars.extend(vars.clone());
        let step = self.cursor;
        self.journal(
            fx,
            Record::Vars {
                at: now,
                step,
                vars,
            },
        );
    }

    pub(super) fn note(&mut self, fx: &mut Vec<Effect>, now: DateTime<Utc>, text: String) {
        let step = (self.cursor < self.steps.len()).then_some(self.cursor);
        self.journal(
            fx,
            Record::Note {
                at: now,
                step,
                text,
            },
        );
    }

    pub fn advance(&mut self, event: Event<'_>, now: DateTime<Utc>) -> Vec<Effect> {
        let mut fx = Vec::new();
        if self.is_over() {
            if !matches!(event, Event::Observe { .. } | Event::Note(_)) {
                fx.push(Effect::Refused(said!("the run is over").into()));
            }
            return fx;
        }
        match (event, self.phase.clone()) {
            (Event::Note(text), _) => self.note(&mut fx, now, text),
            (
                Event::Incident {
                    summary,
                    detected_at,
                    onset_at,
                },
                _,
            ) => {
                self.journal(
                    &mut fx,
                    Record::Incident {
                        at: now,
                        summary,
                        detected_at,
                        onset_at,
                    },
                );
            }
            (Event::Proceed { snap }, Phase::Ready) => self.proceed(&mut fx, snap, now),
            (Event::Proceed { snap } | Event::Confirm { snap }, Phase::Confirming { .. }) => {
                self.confirm(&mut fx, snap, now)
            }
            (Event::TypeChar(c), Phase::Confirming { .. }) => self.type_char(c),
            (Event::Backspace, Phase::Confirming { .. }) => self.untype_char(),
            (Event::Cancel, Phase::Confirming { .. }) => {
                self.phase = Phase::Ready;
                self.note(
                    &mut fx,
                    now,
                    said!("confirmation cancelled; nothing done").into(),
                );
            }
            (Event::CallDone { index, outcome }, Phase::Calling { plan }) => {
                self.call_done(&mut fx, &plan, index, outcome, now);
            }
            (Event::CallFailed { index, error }, Phase::Calling { .. }) => {
                self.call_failed(&mut fx, index, error, now);
            }
            (
                Event::Observe { snap },
                Phase::Waiting {
                    wait,
                    since,
                    deadline,
                    detail,
                    longer,
                },
            ) => {
                self.observe(&mut fx, snap, (wait, since, deadline, longer), detail, now);
            }
            (Event::DeclareFenced, _) => self.declare_fenced(&mut fx, now),
            (Event::Override(o), _) => self.grant_override(&mut fx, o, now),
            (Event::TakeOverLease(run_id), _) => self.take_over_lease(&mut fx, run_id, now),
            (Event::Retry, Phase::Failed { .. }) => self.retry(&mut fx, now),
            (Event::Abort { .. }, Phase::Calling { .. }) => fx.push(Effect::Refused(
                said!("a call is in flight; abort once it has answered").into(),
            )),
            (Event::Abort { reason }, _) => {
                let reason = format!("{reason}; {}", self.state_summary());
                self.phase = Phase::Aborted {
                    reason: reason.clone(),
                };
                self.release_lease(&mut fx, now);
                self.journal(&mut fx, Record::Aborted { at: now, reason });
            }
            (Event::Observe { .. }, _) => {}
            (Event::Proceed { .. }, Phase::Calling { .. } | Phase::Waiting { .. }) => {
                fx.push(Effect::Refused(
                    said!("the current step is still running").into(),
                ));
            }
            (Event::Proceed { .. }, Phase::Failed { error }) => {
                fx.push(Effect::Refused(say!(
                    "step failed ({error}): retry (r) or abort (x)"
                )));
            }
            _ => {}
        }
        fx
    }

    fn proceed(&mut self, fx: &mut Vec<Effect>, snap: &FleetSnapshot, now: DateTime<Utc>) {
        let Some(step) = self.current_step().cloned() else {
            return;
        };
        match plan(&step, self.cursor, &self.ctx, snap) {
            Err(reason) => self.refuse_step(fx, &step.name, reason, now),
            Ok(p) if matches!(p.confirm, Confirm::Key | Confirm::TypeId) => {
                self.phase = Phase::Confirming {
                    plan: p,
                    typed: String::new(),
                };
            }
            Ok(p) => self.start_step(fx, p, now),
        }
    }

    /// The failed step goes back to pending, planned again at the next Enter.
    pub(super) fn retry(&mut self, fx: &mut Vec<Effect>, now: DateTime<Utc>) {
        self.steps[self.cursor].status = StepStatus::Pending;
        self.phase = Phase::Ready;
        self.note(fx, now, say!("retrying step {}", self.cursor + 1));
    }

    /// The step at the cursor is refused, planned or confirmed: said, journaled, and the
    /// override the refusal names offered. Nothing runs; the run stays ready.
    pub(super) fn refuse_step(
        &mut self,
        fx: &mut Vec<Effect>,
        step: &str,
        reason: String,
        now: DateTime<Utc>,
    ) {
        self.note(fx, now, say!("refused {step}: {reason}"));
        self.offered = Override::named_in(&reason);
        self.phase = Phase::Ready;
        fx.push(Effect::Refused(reason));
    }

    pub(super) fn start_step(&mut self, fx: &mut Vec<Effect>, plan: Plan, now: DateTime<Utc>) {
        let step = self.cursor;
        self.steps[step].status = StepStatus::Active;
        self.steps[step].started.get_or_insert(now);
        self.journal(
            fx,
            Record::StepStarted {
                at: now,
                step,
                plan: plan.clone(),
            },
        );
        if !plan.decided.is_empty() {
            self.record_vars(fx, now, plan.decided.iter().cloned().collect());
        }
        if let Some(finding) = &plan.finding {
            self.steps[step].note = Some(finding.clone());
        }
        self.phase = Phase::Calling { plan: plan.clone() };
        self.next_call(fx, &plan, now);
    }

    /// Sends the first planned call that has not succeeded yet for this step, or moves on.
    pub(super) fn next_call(&mut self, fx: &mut Vec<Effect>, plan: &Plan, now: DateTime<Utc>) {
        let step = self.cursor;
        let done = |c: &ProviderCall| {
            self.steps[step]
                .calls
                .iter()
                .any(|s| &s.call == c && matches!(s.outcome, Some(Ok(_))))
        };
        let Some(call) = plan.calls.iter().find(|c| !done(c)).cloned() else {
            self.after_calls(fx, plan, now);
            return;
        };
        let index = self.steps[step].calls.len();
        let token = format!("{}-{step}-{index}", self.ctx.run_id);
        self.steps[step].calls.push(CallState {
            call: call.clone(),
            token: token.clone(),
            outcome: None,
        });
        self.journal(
            fx,
            Record::Intent {
                at: now,
                step,
                index,
                call: call.clone(),
                token: token.clone(),
            },
        );
        fx.push(Effect::Call {
            step,
            index,
            call,
            token,
        });
    }

    pub(super) fn fail_step(&mut self, fx: &mut Vec<Effect>, now: DateTime<Utc>, error: String) {
        let step = self.cursor;
        self.steps[step].status = StepStatus::Failed;
        self.steps[step].note = Some(error.clone());
        self.phase = Phase::Failed {
            error: error.clone(),
        };
        self.journal(
            fx,
            Record::StepFinished {
                at: now,
                step,
                status: StepStatus::Failed,
                note: Some(error),
            },
        );
    }

    pub(super) fn finish_step(
        &mut self,
        fx: &mut Vec<Effect>,
        status: StepStatus,
        note: Option<String>,
        now: DateTime<Utc>,
    ) {
        let step = self.cursor;
        self.steps[step].status = status;
        self.steps[step].finished = Some(now);
        self.steps[step].note = note.clone();
        self.journal(
            fx,
            Record::StepFinished {
                at: now,
                step,
                status,
                note,
            },
        );
        self.cursor += 1;
        if self.cursor >= self.steps.len() {
            let outcome = say!(
                "all {} steps of {} done",
                self.steps.len(),
                self.playbook.id
            );
            self.phase = Phase::Finished {
                outcome: outcome.clone(),
            };
            self.release_lease(fx, now);
            self.journal(fx, Record::Finished { at: now, outcome });
        } else {
            self.phase = Phase::Ready;
        }
    }

    /// The run is over: its tier's lease, if it took one, goes back.
    pub(super) fn release_lease(&mut self, fx: &mut Vec<Effect>, now: DateTime<Utc>) {
        let Some(key) = self.ctx.vars.get(super::plan::var::LEASE).cloned() else {
            return;
        };
        self.note(fx, now, say!("lease {key} released"));
        let failover = super::journal::last_failover(&self.records).map(|at| FailoverRecord {
            run_id: self.ctx.run_id.clone(),
            operator: self.operator.clone(),
            playbook: self.playbook.id.clone(),
            at,
        });
        fx.push(Effect::Release(ProviderCall::ReleaseLease {
            key,
            run_id: self.ctx.run_id.clone(),
            failover,
        }));
    }

    /// Steps never reached by a run that finished early are skipped, not pending.
    pub(super) fn skip_pending(&mut self) {
        for s in self
            .steps
            .iter_mut()
            .filter(|s| s.status == StepStatus::Pending)
        {
            s.status = StepStatus::Skipped;
        }
    }

    /// Where the fleet stands, in words: what was done and what was created.
    pub fn state_summary(&self) -> String {
        let done: Vec<&str> = self
            .playbook
            .steps
            .iter()
            .zip(&self.steps)
            .filter(|(_, s)| matches!(s.status, StepStatus::Done | StepStatus::TimedOut))
            .map(|(p, _)| p.name.as_str())
            .collect();
        let vars: Vec<String> = self
            .ctx
            .vars
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let steps = if done.is_empty() {
            said!("no step done").to_string()
        } else {
            say!("steps done: {}", done.join(", "))
        };
        let created = if vars.is_empty() {
            said!("nothing created").to_string()
        } else {
            say!("recorded {}", vars.join(", "))
        };
        format!("{steps}; {created}")
    }
}
