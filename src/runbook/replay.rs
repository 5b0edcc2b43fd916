//! Rebuilding a run from its journal, and what a resumed run must do first. Resuming never
//! repeats a completed side effect: a call whose answer was journaled is done; a call whose
//! intent was journaled but not its answer is resolved before it may be sent again.

use chrono::{DateTime, Duration, Utc};

use super::engine::{CallState, Phase, Run, StepRun};
use super::event::Effect;
use super::model::Playbook;
use super::overrides::Override;
use super::plan::RunContext;
use super::record::{Record, StepStatus};
use crate::domain::call::ProviderCall;
use crate::domain::{FleetSnapshot, InstanceState, VolumeState};

impl Run {
    /// Rebuilds a run from its records. `ctx` carries the settings of the console resuming it
    /// (thresholds, target group); the run's own facts come from the journal.
    pub fn replay(
        records: &[Record],
        playbook: Playbook,
        mut ctx: RunContext,
    ) -> Result<Run, String> {
        let Some(Record::Started {
            at,
            run_id,
            playbook: pb,
            target_id,
            target_name,
            operator,
            quarantine,
            overrides,
            force,
        }) = records.first()
        else {
            return Err("journal does not start with a `started` record".into());
        };
        if *pb != playbook.id {
            return Err(format!("journal is for playbook {pb}, not {}", playbook.id));
        }
        ctx.run_id = run_id.clone();
        ctx.target_id = target_id.clone();
        ctx.target_name = target_name.clone();
        ctx.quarantine = *quarantine;
        ctx.overrides = overrides.iter().copied().collect();
        if *force {
            ctx.overrides.extend(Override::ALL);
        }
        let mut run = Run::fresh(ctx, playbook, operator.clone(), *at);
        run.ctx.operator = operator.clone();
        for rec in records {
            run.apply(rec)?;
            run.records.push(rec.clone());
        }
        Ok(run)
    }

    fn step_mut(&mut self, step: usize) -> Result<&mut StepRun, String> {
        self.steps
            .get_mut(step)
            .ok_or_else(|| format!("journal names step {} the playbook does not have", step + 1))
    }

    fn apply(&mut self, rec: &Record) -> Result<(), String> {
        match rec {
            Record::Started { .. } | Record::Note { .. } | Record::Incident { .. } => {}
            Record::StepStarted { at, step, plan } => {
                self.cursor = *step;
                let s = self.step_mut(*step)?;
                s.status = StepStatus::Active;
                s.started.get_or_insert(*at);
                if let Some(f) = &plan.finding {
                    s.note = Some(f.clone());
                }
                self.phase = Phase::Calling { plan: plan.clone() };
            }
            Record::Intent {
                step,
                index,
                call,
                token,
                ..
            } => {
                let s = self.step_mut(*step)?;
                if *index != s.calls.len() {
                    return Err(format!(
                        "journal call {index} of step {} is out of order",
                        step + 1
                    ));
                }
                s.calls.push(CallState {
                    call: call.clone(),
                    token: token.clone(),
                    outcome: None,
                });
            }
            Record::Result {
                step,
                index,
                outcome,
                ..
            } => {
                let s = self.step_mut(*step)?;
                let c = s
                    .calls
                    .get_mut(*index)
                    .ok_or("journal has an answer to a call it never made")?;
                c.outcome = Some(outcome.clone());
            }
            Record::Vars { vars, .. } => self.ctx.vars.extend(vars.clone()),
            Record::WaitStarted { at, step } => self.phase = self.waiting_since(*at, *step)?,
            Record::StepFinished {
                at,
                step,
                status,
                note,
            } => {
                let s = self.step_mut(*step)?;
                s.status = *status;
                s.finished = Some(*at);
                s.note = note.clone();
                if *status == StepStatus::Failed {
                    self.phase = Phase::Failed {
                        error: note.clone().unwrap_or_default(),
                    };
                } else {
                    self.cursor = step + 1;
                    self.phase = Phase::Ready;
                }
            }
            Record::Finished { outcome, .. } => {
                self.skip_pending();
                self.phase = Phase::Finished {
                    outcome: outcome.clone(),
                };
            }
            Record::Aborted { reason, .. } => {
                self.phase = Phase::Aborted {
                    reason: reason.clone(),
                }
            }
        }
        Ok(())
    }

    /// The wait a `WaitStarted` record began, as its step's plan set it when the plan was
    /// journaled with the step.
    fn waiting_since(&self, at: DateTime<Utc>, step: usize) -> Result<Phase, String> {
        let spec = self
            .playbook
            .steps
            .get(step)
            .ok_or("journal names an unknown step")?;
        let wait = spec
            .wait
            .ok_or("journal waits on a step that has no wait")?;
        let (secs, longer) = match &self.phase {
            Phase::Calling { plan } => (
                plan.wait_secs.unwrap_or(spec.timeout_secs),
                plan.wait_why.clone(),
            ),
            _ => (spec.timeout_secs, None),
        };
        Ok(Phase::Waiting {
            wait,
            since: at,
            deadline: at + Duration::seconds(secs as i64),
            detail: String::new(),
            longer,
        })
    }

    /// What a resumed run does before anything else: resolve a call whose answer was lost, or
    /// carry on with the step it was in the middle of.
    pub fn resume(&mut self, now: DateTime<Utc>) -> Vec<Effect> {
        let mut fx = Vec::new();
        let Phase::Calling { plan } = self.phase.clone() else {
            return fx;
        };
        let step = self.cursor;
        // Started and nothing sent: the plan is as old as the crash. It is made again against
        // the fleet as it is, and confirmed again if the step asks for that.
        if self.steps[step].calls.is_empty() {
            self.steps[step].status = StepStatus::Pending;
            self.phase = Phase::Ready;
            self.note(
                &mut fx,
                now,
                say!(
                    "step {} had sent nothing: it is planned again against the fleet as it is now",
                    step + 1
                ),
            );
            return fx;
        }
        let pending = self.steps[step]
            .calls
            .iter()
            .enumerate()
            .find(|(_, c)| c.outcome.is_none());
        if let Some((index, c)) = pending {
            fx.push(Effect::Resolve {
                step,
                index,
                call: c.call.clone(),
                token: c.token.clone(),
            });
            return fx;
        }
        if let Some(Some(Err(error))) = self.steps[step].calls.last().map(|c| c.outcome.clone()) {
            // Crashed between a failed answer and the step's failure record.
            self.fail_step(&mut fx, now, error);
            return fx;
        }
        self.next_call(&mut fx, &plan, now);
        fx
    }
}

/// Whether `call` has visibly taken effect in the fleet already. Creations are never judged
/// here: they are found by their tags.
pub fn already_applied(call: &ProviderCall, snap: &FleetSnapshot) -> bool {
    match call {
        ProviderCall::RunInstances { .. } => false,
        ProviderCall::TerminateInstances { instance_id } => {
            snap.find(instance_id).is_none_or(|i| {
                matches!(
                    i.state,
                    InstanceState::ShuttingDown | InstanceState::Terminated
                )
            })
        }
        ProviderCall::StopInstances { instance_id, .. } => snap
            .find(instance_id)
            .is_some_and(|i| matches!(i.state, InstanceState::Stopping | InstanceState::Stopped)),
        // Start is idempotent: sending it again to one already booting changes nothing.
        ProviderCall::StartInstances { instance_id } => snap
            .find(instance_id)
            .is_some_and(|i| matches!(i.state, InstanceState::Pending | InstanceState::Running)),
        ProviderCall::CreateTags { resource_id, tags } => snap
            .find(resource_id)
            .is_some_and(|i| tags.iter().all(|(k, v)| i.tags.get(k) == Some(v))),
        ProviderCall::RegisterTarget { instance_id, .. } => {
            snap.find(instance_id).is_some_and(|i| i.target.is_some())
        }
        ProviderCall::DeregisterTarget { instance_id, .. } => snap
            .find(instance_id)
            .is_none_or(|i| matches!(i.target, None | Some(crate::domain::TargetHealth::Draining))),
        ProviderCall::DetachVolume { volume_id, .. } => {
            snap.free_volumes.iter().any(|v| &v.id == volume_id)
        }
        ProviderCall::AttachVolume {
            volume_id,
            instance_id,
            ..
        } => {
            snap.find(instance_id)
                .is_some_and(|i| i.volumes.iter().any(|v| &v.id == volume_id))
                || snap
                    .free_volumes
                    .iter()
                    .any(|v| &v.id == volume_id && v.state == VolumeState::Attaching)
        }
        ProviderCall::PromoteReplica { instance_id } => snap
            .find(instance_id)
            .and_then(|i| i.db.as_ref())
            .is_some_and(|d| !d.read_only && d.source_id.is_none()),
        ProviderCall::RepointReplica {
            instance_id,
            master_id,
        } => snap
            .find(instance_id)
            .and_then(|i| i.db.as_ref())
            .is_some_and(|d| d.source_id.as_deref() == Some(master_id.as_str())),
        ProviderCall::SetDbEndpoint { target_id, .. } => snap
            .db_endpoint
            .as_ref()
            .is_some_and(|e| &e.target_id == target_id),
        // Every statement dake generates is safe to run twice (stop, reset, read_only, a
        // repoint to the same source, a GTID wait, a heartbeat), so SQL is sent again.
        ProviderCall::Sql { .. } => false,
        // Restarts, reboots, starting MySQL and notifications are safe to repeat.
        ProviderCall::RebootInstances { .. }
        | ProviderCall::RestartApp { .. }
        | ProviderCall::StartDatabase { .. }
        | ProviderCall::NotifyReplicaAdded { .. }
        // Taking a lease again is answered "ours" by the provider: safe to send again.
        | ProviderCall::TakeLease { .. }
        | ProviderCall::ReleaseLease { .. } => false,
    }
}
