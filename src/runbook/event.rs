//! What the engine is told ([`Event`]) and what it asks its driver to carry out ([`Effect`]).

use chrono::{DateTime, Utc};

use super::record::Record;
use crate::domain::FleetSnapshot;
use crate::domain::call::{CallOutcome, ProviderCall};

#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    /// The operator asks for the next step (Enter).
    Proceed {
        snap: &'a FleetSnapshot,
    },
    /// The second key of a confirmation, with a fresh read of the fleet to check the plan
    /// against.
    Confirm {
        snap: &'a FleetSnapshot,
    },
    TypeChar(char),
    Backspace,
    /// Leave a pending confirmation (Esc); nothing is done.
    Cancel,
    CallDone {
        index: usize,
        outcome: CallOutcome,
    },
    CallFailed {
        index: usize,
        error: String,
    },
    /// A fresh snapshot: waits are checked against it.
    Observe {
        snap: &'a FleetSnapshot,
    },
    Retry,
    /// The operator's word, typed out, that the old master is fenced by other means (see
    /// `overrides`): a failed fence step is done.
    DeclareFenced,
    /// The operator lifts one refusal for the rest of the run, typed out.
    Override(super::overrides::Override),
    /// The operator names the run whose stale lease of the tier they take over, typed out.
    TakeOverLease(String),
    Abort {
        reason: String,
    },
    /// A line for the timeline (a key pressed, a detection).
    Note(String),
    /// The incident this run answers, recorded once at the start for the postmortem.
    Incident {
        summary: String,
        detected_at: DateTime<Utc>,
        onset_at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Append to the journal (and fsync) before carrying out any effect after it.
    Journal(Record),
    /// Give the tier's lease back: the run is over. Sent, never answered; a failure is logged
    /// (the lease goes stale and can be taken over).
    Release(ProviderCall),
    /// Send this call; answer with `CallDone` or `CallFailed`.
    Call {
        step: usize,
        index: usize,
        call: ProviderCall,
        token: String,
    },
    /// The console died after this call's intent was journaled and before its answer was: find
    /// out whether it took effect (by tag, or by the fleet's state) before sending it again.
    Resolve {
        step: usize,
        index: usize,
        call: ProviderCall,
        token: String,
    },
    /// Said to the operator; nothing changed.
    Refused(String),
    /// Answer `Synced` once every effect before it is done: the last thing sent before the
    /// process exits, so no journal record is lost.
    Sync,
}
