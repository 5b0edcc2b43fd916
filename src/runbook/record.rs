//! Journal records: one JSON line each, written (and fsync'd) before and after every side
//! effect. A run can be rebuilt from its records alone.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::call::{CallOutcome, ProviderCall};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    Pending,
    Active,
    Done,
    /// Its wait ran out and the playbook went on ("cut your losses").
    TimedOut,
    Failed,
    Skipped,
}

impl StepStatus {
    pub fn label(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Active => "running",
            StepStatus::Done => "done",
            StepStatus::TimedOut => "timed out",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "kebab-case")]
pub enum Record {
    Started {
        at: DateTime<Utc>,
        run_id: String,
        playbook: String,
        target_id: String,
        target_name: String,
        operator: String,
        quarantine: bool,
        /// Refusals the operator lifted at the start.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        overrides: Vec<super::overrides::Override>,
        /// An older journal's single override of every refusal.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        force: bool,
    },
    /// The incident the run answers, as detection saw it when the run started.
    Incident {
        at: DateTime<Utc>,
        summary: String,
        detected_at: DateTime<Utc>,
        /// Estimated start of impact: detection minus the sustained window it needed.
        onset_at: DateTime<Utc>,
    },
    /// Something worth a line in the timeline: a key, a detection, a refusal, a wait's progress.
    Note {
        at: DateTime<Utc>,
        step: Option<usize>,
        text: String,
    },
    /// With the plan the step carries out, so a resumed run continues the same plan.
    StepStarted {
        at: DateTime<Utc>,
        step: usize,
        plan: super::plan::Plan,
    },
    /// Written before the call is sent.
    Intent {
        at: DateTime<Utc>,
        step: usize,
        index: usize,
        call: ProviderCall,
        token: String,
    },
    /// Written after the provider answered.
    Result {
        at: DateTime<Utc>,
        step: usize,
        index: usize,
        outcome: Result<CallOutcome, String>,
    },
    /// Ids decided or created by the step, for the steps after it.
    Vars {
        at: DateTime<Utc>,
        step: usize,
        vars: BTreeMap<String, String>,
    },
    WaitStarted {
        at: DateTime<Utc>,
        step: usize,
    },
    StepFinished {
        at: DateTime<Utc>,
        step: usize,
        status: StepStatus,
        note: Option<String>,
    },
    Finished {
        at: DateTime<Utc>,
        outcome: String,
    },
    Aborted {
        at: DateTime<Utc>,
        reason: String,
    },
}

impl Record {
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Record::Started { at, .. }
            | Record::Incident { at, .. }
            | Record::Note { at, .. }
            | Record::StepStarted { at, .. }
            | Record::Intent { at, .. }
            | Record::Result { at, .. }
            | Record::Vars { at, .. }
            | Record::WaitStarted { at, .. }
            | Record::StepFinished { at, .. }
            | Record::Finished { at, .. }
            | Record::Aborted { at, .. } => *at,
        }
    }

    /// One line for a timeline or a postmortem.
    pub fn describe(&self) -> String {
        match self {
            Record::Started {
                playbook,
                target_name,
                target_id,
                operator,
                ..
            } => {
                say!("run started: {playbook} on {target_name} ({target_id}) by {operator}")
            }
            Record::Incident {
                summary,
                detected_at,
                ..
            } => {
                say!(
                    "incident: {summary} (detected {})",
                    detected_at.format("%H:%M:%S")
                )
            }
            Record::Note { text, .. } => text.clone(),
            Record::StepStarted { step, .. } => say!("step {} started", step + 1),
            Record::Intent { call, .. } => say!("call {call}"),
            Record::Result { outcome: Ok(o), .. } => {
                let ok = if o.created.is_empty() {
                    say!("ok (request {})", o.request_id)
                } else {
                    say!(
                        "ok (request {}, created {})",
                        o.request_id,
                        o.created.join(", ")
                    )
                };
                match o.output.lines().last() {
                    Some(last) => format!("{ok}: {last}"),
                    None => ok,
                }
            }
            Record::Result {
                outcome: Err(e), ..
            } => say!("error: {e}"),
            Record::Vars { vars, .. } => {
                let kv: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
                say!("recorded {}", kv.join(", "))
            }
            Record::WaitStarted { step, .. } => say!("step {} waiting", step + 1),
            Record::StepFinished {
                step, status, note, ..
            } => match note {
                Some(n) => say!("step {} {}: {n}", step + 1, status.label()),
                None => say!("step {} {}", step + 1, status.label()),
            },
            Record::Finished { outcome, .. } => say!("run finished: {outcome}"),
            Record::Aborted { reason, .. } => say!("run aborted: {reason}"),
        }
    }
}
