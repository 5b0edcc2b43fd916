//! What only the operator can vouch for. When dake cannot fence the old master (its MySQL does
//! not answer and EC2 will not stop it: a permission, a stop that hangs), the operator may
//! have done it another way: the network cut, MySQL stopped from a console, the power pulled.
//! Typed out, that is recorded as theirs and the failover goes on; dake never assumes it.

use chrono::{DateTime, Utc};

use super::engine::{Phase, Run};
use super::event::Effect;
use super::model::ActionKind;
use super::plan::var;
use super::record::StepStatus;

/// What the operator types to say the old master is fenced by other means.
pub const FENCED_WORD: &str = "FENCED";

impl Run {
    /// The run stopped because dake could not fence the old master: only the operator can say
    /// it is fenced now.
    pub fn may_declare_fenced(&self) -> bool {
        matches!(self.phase, Phase::Failed { .. })
            && self
                .current_step()
                .is_some_and(|s| s.action == ActionKind::FenceMaster)
    }

    /// The failed fence step is done on the operator's word, journaled as theirs.
    pub(super) fn declare_fenced(&mut self, fx: &mut Vec<Effect>, now: DateTime<Utc>) {
        let Phase::Failed { error } = self.phase.clone() else {
            fx.push(Effect::Refused(
                "only a failed fence step can be declared fenced by other means".into(),
            ));
            return;
        };
        if !self.may_declare_fenced() {
            fx.push(Effect::Refused(format!(
                "step {} does not fence the old master; retry it (r) or abort (x)",
                self.cursor + 1
            )));
            return;
        }
        let who = self.operator.clone();
        self.note(
            fx,
            now,
            format!(
                "override: {who} declared {} fenced by other means (dake could not: {error})",
                self.ctx.target_name
            ),
        );
        let vars = [(var::FENCED_BY_OPERATOR.to_string(), who.clone())]
            .into_iter()
            .collect();
        self.record_vars(fx, now, vars);
        let note = format!("fenced by other means, on {who}'s word (dake could not: {error})");
        self.finish_step(fx, StepStatus::Done, Some(note), now);
    }
}
