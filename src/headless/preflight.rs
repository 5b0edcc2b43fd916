//! `dake preflight`: is everything a playbook would do allowed on this fleet, asked before an
//! incident rather than found out during one. Every step is planned against the fleet as it is
//! now; what a step would create later stands in as the instance it would be launched like; each
//! call goes to the provider's preflight (on AWS: the blast-radius check, then EC2's DryRun).
//! Nothing changes.

use crate::i18n::{Lang, said, tr, trf};
use crate::runbook::overrides::Override;
use std::collections::BTreeMap;

use serde::Serialize;

use crate::domain::FleetSnapshot;
use crate::domain::call::ProviderCall;
use crate::provider::{Preflight, Provider};
use crate::runbook::model::Playbook;
use crate::runbook::plan::{RunContext, plan};

/// One step as preflight sees it: the calls it would make now, or why it makes none.
#[derive(Debug, Clone, PartialEq)]
pub struct StepCalls {
    pub name: String,
    /// A guard or state that would refuse the step now (its calls are still checked when a
    /// forced plan has them), or what a looking step found.
    pub note: Option<String>,
    pub calls: Vec<ProviderCall>,
    /// Ids in the calls that stand in for instances earlier steps would launch.
    pub stand_ins: BTreeMap<String, usize>,
}

/// Plans every step of `playbook` against `snap`, in order, as a run would: ids the steps decide
/// are carried forward; an instance a step would launch is stood in for by its template.
pub fn step_calls(playbook: &Playbook, ctx: &RunContext, snap: &FleetSnapshot) -> Vec<StepCalls> {
    let mut ctx = ctx.clone();
    // Variable → (stand-in id, step that would launch it).
    let mut stand_ins: BTreeMap<String, (String, usize)> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, step) in playbook.steps.iter().enumerate() {
        let planned = plan(step, i, &ctx, snap);
        let (planned, note) = match planned {
            Ok(p) => {
                let note = p.finding.clone();
                (Some(p), note)
            }
            Err(why) => {
                // Checked as if forced, so a guard that holds today does not hide a permission
                // the step will need on the day.
                let forced = RunContext {
                    overrides: Override::ALL.into_iter().collect(),
                    ..ctx.clone()
                };
                (
                    plan(step, i, &forced, snap).ok(),
                    Some(say!("would refuse now: {why}")),
                )
            }
        };
        // A step leans on a stand-in when it cannot be planned without it.
        let used = stand_ins
            .iter()
            .filter(|(var, _)| {
                let mut without = ctx.clone();
                without.vars.remove(*var);
                plan(step, i, &without, snap).is_err_and(|e| e.contains(var.as_str()))
            })
            .map(|(_, (id, at))| (id.clone(), *at))
            .collect();
        let mut calls = Vec::new();
        if let Some(p) = planned {
            ctx.vars.extend(p.decided.iter().cloned());
            // The lease is taken once, by the first destructive step, as in a run.
            if let Some(ProviderCall::TakeLease { key, .. }) = p.calls.first() {
                ctx.vars
                    .insert(crate::runbook::plan::var::LEASE.into(), key.clone());
            }
            let template = p.calls.iter().find_map(|c| match c {
                ProviderCall::RunInstances { template_id, .. } => Some(template_id.clone()),
                _ => None,
            });
            if let (Some(var), Some(template)) = (&p.creates_var, template) {
                ctx.vars.insert(var.clone(), template.clone());
                stand_ins.insert(var.clone(), (template, i));
            }
            calls = p.calls;
        }
        out.push(StepCalls {
            name: step.name.clone(),
            note,
            calls,
            stand_ins: used,
        });
    }
    out
}

#[derive(Debug, Clone, Serialize)]
pub struct CallVerdict {
    pub call: String,
    pub operation: &'static str,
    /// allowed | not-checkable | refused | error
    pub verdict: &'static str,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepVerdict {
    pub step: usize,
    pub name: String,
    pub note: Option<String>,
    pub calls: Vec<CallVerdict>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PreflightReport {
    pub playbook: String,
    pub fleet: String,
    pub target_id: String,
    pub target_name: String,
    pub steps: Vec<StepVerdict>,
    pub allowed: usize,
    pub not_checkable: usize,
    pub refused: usize,
}

impl PreflightReport {
    /// 0 when nothing was refused, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.refused > 0)
    }
}

/// Asks the provider about every call, one at a time, in plan order.
pub async fn check(
    provider: &dyn Provider,
    playbook: &Playbook,
    ctx: &RunContext,
    snap: &FleetSnapshot,
) -> PreflightReport {
    let mut report = PreflightReport {
        playbook: playbook.id.clone(),
        fleet: snap.fleet.clone(),
        target_id: ctx.target_id.clone(),
        target_name: ctx.target_name.clone(),
        steps: Vec::new(),
        allowed: 0,
        not_checkable: 0,
        refused: 0,
    };
    for (i, step) in step_calls(playbook, ctx, snap).into_iter().enumerate() {
        let mut calls = Vec::new();
        for call in step.calls {
            let shown = call.to_string();
            let operation = call.operation();
            let stand_in = (step.stand_ins.iter())
                .rev()
                .find(|(id, _)| shown.contains(id.as_str()));
            let detail = |why: String| match stand_in {
                Some((id, at)) => {
                    say!(
                        "{why} ({id} stands in for the instance step {} launches)",
                        at + 1
                    )
                }
                None => why,
            };
            let (verdict, detail) = match provider.preflight(call).await {
                Ok(Preflight::Allowed) => {
                    report.allowed += 1;
                    ("allowed", detail(said!("it would go through").into()))
                }
                Ok(Preflight::NotCheckable(why)) => {
                    report.not_checkable += 1;
                    ("not-checkable", detail(why))
                }
                Err(crate::provider::ProviderError::Refused(why)) => {
                    report.refused += 1;
                    ("refused", detail(why))
                }
                Err(e) => {
                    report.refused += 1;
                    ("error", detail(e.to_string()))
                }
            };
            calls.push(CallVerdict {
                call: shown,
                operation,
                verdict,
                detail,
            });
        }
        report.steps.push(StepVerdict {
            step: i + 1,
            name: step.name,
            note: step.note,
            calls,
        });
    }
    report
}

/// The report for people, in `l`.
pub fn text(report: &PreflightReport, l: Lang) -> String {
    let head = say!(
        "preflight of {} on {} ({}) in fleet {}: nothing is changed",
        report.playbook,
        report.target_name,
        report.target_id,
        report.fleet
    );
    let mut out = format!("{}\n", said(l, &head));
    for s in &report.steps {
        out.push_str(&format!("{}. {}\n", s.step, s.name));
        if let Some(note) = &s.note {
            out.push_str(&format!("     {}\n", said(l, note)));
        }
        if s.calls.is_empty() && s.note.is_none() {
            out.push_str(&format!("     {}\n", tr(l, "(no API calls)")));
        }
        for c in &s.calls {
            let verdict = trf(
                l,
                "{verdict}: {detail}",
                &[
                    ("verdict", &tr(l, c.verdict)),
                    ("detail", &said(l, &c.detail)),
                ],
            );
            out.push_str(&format!("     {}\n       {verdict}\n", c.call));
        }
    }
    let calls: usize = report.steps.iter().map(|s| s.calls.len()).sum();
    let total = say!(
        "{calls} calls: {} allowed, {} not checkable without making them, {} refused",
        report.allowed,
        report.not_checkable,
        report.refused
    );
    out.push_str(&format!("{}\n", said(l, &total)));
    out
}
