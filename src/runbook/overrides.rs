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
use serde::{Deserialize, Serialize};

use super::engine::{Phase, Run};
use super::event::Effect;
use super::model::ActionKind;
use super::plan::var;
use super::record::StepStatus;

/// What the operator types to say the old master is fenced by other means.
pub const FENCED_WORD: &str = "FENCED";

/// A refusal the operator may lift, one at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Override {
    /// A second failover of the same tier inside the anti-flapping window.
    AntiFlapping,
    /// The master still answers (over MySQL, or by its checks and heartbeat).
    MasterAnswers,
    /// Every replica is behind the limit, or the chosen one lacks what another received.
    LaggingReplica,
    /// The web server to replace is not slower than its peers.
    NotAnOutlier,
}

impl Override {
    pub const ALL: [Override; 4] = [
        Override::AntiFlapping,
        Override::MasterAnswers,
        Override::LaggingReplica,
        Override::NotAnOutlier,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Override::AntiFlapping => "anti-flapping",
            Override::MasterAnswers => "master-answers",
            Override::LaggingReplica => "lagging-replica",
            Override::NotAnOutlier => "not-an-outlier",
        }
    }

    pub fn parse(name: &str) -> Option<Override> {
        Override::ALL.into_iter().find(|o| o.name() == name)
    }

    /// What the operator types in the console: the name, in capitals.
    pub fn word(self) -> String {
        self.name().to_ascii_uppercase()
    }

    /// What going on anyway means.
    pub fn consequence(self) -> &'static str {
        match self {
            Override::AntiFlapping => {
                "a second failover of this tier so soon: if the first did not hold, this one may \
                 flap back"
            }
            Override::MasterAnswers => {
                "the master still answers: it is failed over anyway, fenced first, and the writes \
                 it takes stop"
            }
            Override::LaggingReplica => {
                "the replica promoted lacks what the master or another replica had: those \
                 transactions are lost"
            }
            Override::NotAnOutlier => {
                "the server is no slower than its peers: a healthy server is replaced"
            }
        }
    }

    /// `why` refused, with this override offered: the engine and the console read the name
    /// back from the text ([`Override::named_in`]).
    pub fn refusal(self, why: impl std::fmt::Display) -> String {
        format!(
            "{why}. Going on anyway means {}: override `{}` (--override {}; in the console O, \
             then type {})",
            self.consequence(),
            self.name(),
            self.name(),
            self.word()
        )
    }

    /// The override a refusal offers, if it offers one.
    pub fn named_in(refusal: &str) -> Option<Override> {
        let (_, rest) = refusal.rsplit_once("override `")?;
        Override::parse(rest.split('`').next()?)
    }

    /// Where a run keeps an override given after it started, so a replayed run has it too.
    pub fn var(self) -> String {
        format!("override.{}", self.name())
    }
}

impl Run {
    /// Lifts `o` for the rest of the run, on the operator's name; the refused step is planned
    /// again at the next Enter.
    pub(super) fn grant_override(&mut self, fx: &mut Vec<Effect>, o: Override, now: DateTime<Utc>) {
        if self.is_over() || self.ctx.allows(o) {
            return;
        }
        let who = self.operator.clone();
        self.note(
            fx,
            now,
            format!("override: {who} overrode {}: {}", o.name(), o.consequence()),
        );
        self.record_vars(fx, now, [(o.var(), who)].into_iter().collect());
        self.offered = None;
    }

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
