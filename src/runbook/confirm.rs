//! Confirming a destructive step: a second key, or the end of the id it acts on typed out.

use chrono::{DateTime, Utc};

use super::engine::{Phase, Run};
use super::event::Effect;
use super::model::Confirm;
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

    /// The second key: the step starts, unless the id it needs typed does not match.
    pub(super) fn confirm(&mut self, fx: &mut Vec<Effect>, now: DateTime<Utc>) {
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
                fx.push(Effect::Refused(format!(
                    "type the last {CONFIRM_SUFFIX_LEN} characters of {id} to confirm"
                )));
                return;
            }
        }
        self.note(
            fx,
            now,
            format!("confirmed {}", self.playbook.steps[self.cursor].name),
        );
        self.start_step(fx, plan, now);
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
