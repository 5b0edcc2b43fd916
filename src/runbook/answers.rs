//! The engine's side of a call's answer: journaled against its intent, an id it created kept
//! for the steps after it, what a host command printed kept with the step.

use chrono::{DateTime, Utc};

use super::engine::Run;
use super::event::Effect;
use super::plan::Plan;
use super::plan::var;
use super::record::Record;
use crate::domain::call::{CallOutcome, ProviderCall};

impl Run {
    pub(super) fn call_done(
        &mut self,
        fx: &mut Vec<Effect>,
        plan: &Plan,
        index: usize,
        outcome: CallOutcome,
        now: DateTime<Utc>,
    ) {
        let step = self.cursor;
        if !self.record_answer(fx, index, Ok(outcome.clone()), now) {
            return;
        }
        // What the host printed last (a database's recovery, for one), or what the provider
        // said of a call it only recorded, stays with the step.
        if let Some(last) = outcome.output.lines().last() {
            let kind = self.steps[step].calls.get(index).map(|c| c.call.kind());
            let said = match kind {
                Some(k) if !k.runs_on_host() => format!("{}: {last}", k.operation()),
                _ => say!("host said: {last}"),
            };
            let note = &mut self.steps[step].note;
            *note = Some(match note.take() {
                Some(n) => format!("{n}; {said}"),
                None => said,
            });
        }
        // The tier's lease is this run's from now on, until it ends.
        if let Some(ProviderCall::TakeLease { key, .. }) = plan.calls.get(index) {
            let vars = [(var::LEASE.to_string(), key.clone())]
                .into_iter()
                .collect();
            self.record_vars(fx, now, vars);
        }
        if let (Some(var), Some(id)) = (plan.creates_var.as_deref(), outcome.created.first()) {
            let vars = [(var.to_string(), id.clone())].into_iter().collect();
            self.record_vars(fx, now, vars);
        }
        self.next_call(fx, plan, now);
    }

    /// Keeps and journals the answer to call `index` of the current step; false when the step
    /// made no such call.
    fn record_answer(
        &mut self,
        fx: &mut Vec<Effect>,
        index: usize,
        outcome: Result<CallOutcome, String>,
        now: DateTime<Utc>,
    ) -> bool {
        let step = self.cursor;
        let Some(state) = self.steps[step].calls.get_mut(index) else {
            return false;
        };
        state.outcome = Some(outcome.clone());
        self.journal(
            fx,
            Record::Result {
                at: now,
                step,
                index,
                outcome,
            },
        );
        true
    }

    pub(super) fn call_failed(
        &mut self,
        fx: &mut Vec<Effect>,
        index: usize,
        error: String,
        now: DateTime<Utc>,
    ) {
        self.record_answer(fx, index, Err(error.clone()), now);
        // A provider refuses with an override too (a tier failed over moments ago elsewhere).
        self.offered = crate::runbook::overrides::Override::named_in(&error);
        self.fail_step(fx, now, error);
    }
}
