//! Confirming a destructive step: a second key, or the end of the id it acts on typed out.

use chrono::{DateTime, Utc};

use super::engine::{Phase, Run};
use super::event::Effect;
use super::model::Confirm;
use crate::domain::FleetSnapshot;
use crate::text::tail;

/// A typed confirmation is the last this many characters of the id the step acts on.
pub const CONFIRM_SUFFIX_LEN: usize = 4;

/// What the operator types to confirm a step that acts on `id`.
pub fn confirm_suffix(id: &str) -> &str {
    tail(id, CONFIRM_SUFFIX_LEN)
}

impl Run {
    /// A character of the id typed, while there is room for it.
    pub(super) fn type_char(&mut self, c: char) {
        if let Phase::Confirming { typed, .. } = &mut self.phase
            && typed.chars().count() < CONFIRM_SUFFIX_LEN
        {
            typed.push(c);
        }
    }

    /// The last character typed, taken back.
    pub(super) fn untype_char(&mut self) {
        if let Phase::Confirming { typed, .. } = &mut self.phase {
            typed.pop();
        }
    }

    /// The second key: the step starts, unless the id it needs typed does not match, or the
    /// fleet changed since its plan was shown. The plan is made again against `snap`, a fresh
    /// read: a guard that holds no more refuses, and other calls than the ones confirmed are
    /// shown to be confirmed again; only the calls the operator saw are ever made.
    pub(super) fn confirm(
        &mut self,
        fx: &mut Vec<Effect>,
        snap: &FleetSnapshot,
        now: DateTime<Utc>,
    ) {
        let Phase::Confirming { plan, typed } = self.phase.clone() else {
            return;
        };
        if plan.confirm == Confirm::TypeId {
            let id = plan.confirm_id.clone().unwrap_or_default();
            if typed != confirm_suffix(&id) {
                self.phase = Phase::Confirming {
                    plan,
                    typed: String::new(),
                };
                fx.push(Effect::Refused(say!(
                    "type the last {CONFIRM_SUFFIX_LEN} characters of {id} to confirm"
                )));
                return;
            }
        }
        let step = self.playbook.steps[self.cursor].clone();
        let fresh = match super::plan::plan(&step, self.cursor, &self.ctx, snap) {
            Err(reason) => {
                let reason = say!("the fleet changed since the plan was shown: {reason}");
                self.refuse_step(fx, &step.name, reason, now);
                return;
            }
            Ok(fresh) => fresh,
        };
        if fresh.calls != plan.calls {
            let now_calls: Vec<String> = fresh.calls.iter().map(|c| c.to_string()).collect();
            let reason = say!(
                "the fleet changed since the plan was shown: {} would now call {}; confirm again",
                step.name,
                now_calls.join("; ")
            );
            self.note(fx, now, say!("not run: {reason}"));
            self.phase = Phase::Confirming {
                plan: fresh,
                typed: String::new(),
            };
            fx.push(Effect::Refused(reason));
            return;
        }
        self.note(fx, now, say!("confirmed {}", step.name));
        self.start_step(fx, fresh, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_confirmation_is_the_ids_last_characters() {
        assert_eq!(confirm_suffix("i-0b290b4e04e3b6934"), "6934");
        assert_eq!(confirm_suffix("vol-1"), "ol-1");
    }
}
