//! Whether an incident still needs its playbook: a run on its instance that got past the step
//! that restores service (the playbook's `mitigates` step) has mitigated it, even while
//! detection still sees the old instance as slow or down.

use super::state::App;
use crate::detect::Incident;
use crate::runbook::model::find;
use crate::runbook::record::StepStatus;

impl App {
    /// The run that mitigated `inc`, if one did: this console's own run first, then the runs
    /// journaled here.
    pub fn mitigated_by(&self, inc: &Incident) -> Option<&str> {
        if let Some(run) = &self.run
            && run.ctx.target_id == inc.instance_id
            && run
                .playbook
                .steps
                .iter()
                .zip(&run.steps)
                .any(|(spec, step)| spec.mitigates && step.status == StepStatus::Done)
        {
            return Some(&run.ctx.run_id);
        }
        self.past_runs
            .iter()
            .rev()
            .filter(|r| r.target_id == inc.instance_id)
            .find(|r| {
                find(&self.playbooks, &r.playbook).is_some_and(|pb| {
                    r.done_steps
                        .iter()
                        .any(|&i| pb.steps.get(i).is_some_and(|s| s.mitigates))
                })
            })
            .map(|r| r.run_id.as_str())
    }
}
