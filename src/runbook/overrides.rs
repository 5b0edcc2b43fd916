//! What only the operator can decide or vouch for. A guard that refuses for a reason the
//! operator may know better names its override: each one lifts that refusal alone, is asked
//! for on its own (typed out in the console, `--override <name>` headless), is shown with its
//! consequence, and is journaled on the operator's name.
//!
//! And when dake cannot fence the old master (its MySQL does not answer and EC2 will not stop
//! it: a permission, a stop that hangs), the operator may have done it another way: the
//! network cut, MySQL stopped from a console, the power pulled. Typed out, that is recorded as
//! theirs and the failover goes on; dake never assumes it.

use chrono::{DateTime, Utc};

use super::engine::{Phase, Run};
use super::event::Effect;
use super::model::ActionKind;
use super::plan::var;
use super::record::StepStatus;
use crate::domain::call::ProviderCall;
pub use crate::domain::overrides::Override;

/// What the operator types to say the old master is fenced by other means.
pub const FENCED_WORD: &str = "FENCED";

impl Run {
    /// Lifts `o` for the rest of the run, on the operator's name; the refused (or failed)
    /// step is planned again at the next Enter.
    pub(super) fn grant_override(&mut self, fx: &mut Vec<Effect>, o: Override, now: DateTime<Utc>) {
        if self.is_over() || self.ctx.allows(o) {
            return;
        }
        let failed_on_it = matches!(self.phase, Phase::Failed { .. }) && self.offered == Some(o);
        let who = self.operator.clone();
        self.note(
            fx,
            now,
            say!("override: {who} overrode {}: {}", o.name(), o.consequence()),
        );
        self.record_vars(fx, now, [(o.var(), who)].into_iter().collect());
        self.offered = None;
        if failed_on_it {
            self.retry(fx, now);
        }
    }

    /// The operator names the run whose stale lease they take over; journaled on their name,
    /// and a step that failed on the lease is planned again. Only the provider knows whether
    /// that run holds it and is stale: it refuses anything else.
    pub(super) fn take_over_lease(
        &mut self,
        fx: &mut Vec<Effect>,
        holder: String,
        now: DateTime<Utc>,
    ) {
        if self.is_over() {
            return;
        }
        let who = self.operator.clone();
        self.note(
            fx,
            now,
            say!("{who} takes over the tier's lease from run {holder}, named as dead"),
        );
        let vars = [(var::TAKE_OVER_LEASE.to_string(), holder)]
            .into_iter()
            .collect();
        self.record_vars(fx, now, vars);
        if matches!(self.phase, Phase::Failed { .. }) {
            self.retry(fx, now);
        }
    }

    /// The override the operator may give now: the one the refused (or failed) step offers.
    pub fn may_override(&self) -> Option<Override> {
        self.offered
            .filter(|_| matches!(self.phase, Phase::Ready | Phase::Failed { .. }))
    }

    /// The run whose stale lease the failed step was refused, which the operator may take over
    /// by typing its id.
    pub fn stale_lease_holder(&self) -> Option<&str> {
        match &self.phase {
            Phase::Failed { error } => crate::domain::lease::stale_holder_in(error),
            _ => None,
        }
    }

    /// The run stopped because dake could not fence the old master: only the operator can say
    /// it is fenced now.
    /// Not when it failed on the tier's lease: declaring it fenced would go on without it.
    pub fn may_declare_fenced(&self) -> bool {
        let on_the_lease = self
            .steps
            .get(self.cursor)
            .and_then(|s| s.calls.iter().rev().find(|c| c.outcome.is_some()))
            .is_some_and(|c| {
                matches!(c.call, ProviderCall::TakeLease { .. })
                    && matches!(c.outcome, Some(Err(_)))
            });
        matches!(self.phase, Phase::Failed { .. })
            && !on_the_lease
            && self
                .current_step()
                .is_some_and(|s| s.action == ActionKind::FenceMaster)
    }

    /// The failed fence step is done on the operator's word, journaled as theirs.
    pub(super) fn declare_fenced(&mut self, fx: &mut Vec<Effect>, now: DateTime<Utc>) {
        let Phase::Failed { error } = self.phase.clone() else {
            fx.push(Effect::Refused(
                said!("only a failed fence step can be declared fenced by other means").into(),
            ));
            return;
        };
        if !self.may_declare_fenced() {
            fx.push(Effect::Refused(say!(
                "step {} does not fence the old master; retry it (r) or abort (x)",
                self.cursor + 1
            )));
            return;
        }
        let who = self.operator.clone();
        self.note(
            fx,
            now,
            say!(
                "override: {who} declared {} fenced by other means (dake could not: {error})",
                self.ctx.target_name
            ),
        );
        let vars = [(var::FENCED_BY_OPERATOR.to_string(), who.clone())]
            .into_iter()
            .collect();
        self.record_vars(fx, now, vars);
        let note = say!("fenced by other means, on {who}'s word (dake could not: {error})");
        self.finish_step(fx, StepStatus::Done, Some(note), now);
    }
}
