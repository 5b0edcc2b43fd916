//! `dake run` and `dake resume`: the same engine as the console, driven without a screen.
//! Without `--yes` a destructive step is refused and the run is left resumable.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::mpsc::{Receiver, Sender};

use crate::domain::{FleetSnapshot, Instance};
use crate::i18n::{Lang, asset, said, tr};
use crate::provider::Provider;
use crate::runbook::confirm::confirm_suffix;
use crate::runbook::engine::{Phase, Run};
use crate::runbook::event::{Effect, Event};
use crate::runbook::executor::{self, Answer};
use crate::runbook::journal::Journal;
use crate::runbook::model::{Confirm, Playbook, find};
use crate::runbook::plan::plan;
use crate::runbook::record::StepStatus;

/// Finds the playbook and the target, refusing with the reason when either does not fit.
pub fn select<'a>(
    playbooks: &'a [Playbook],
    snap: &'a FleetSnapshot,
    playbook: &str,
    target: &str,
) -> Result<(&'a Playbook, &'a Instance), String> {
    let pb = find(playbooks, playbook).ok_or_else(|| {
        let ids: Vec<&str> = playbooks.iter().map(|p| p.id.as_str()).collect();
        say!(
            "unknown playbook `{playbook}` (available: {})",
            ids.join(", ")
        )
    })?;
    let inst = snap.instances.iter().find(|i| i.id == target || i.name == target).ok_or_else(|| {
        say!(
            "no instance `{target}` in fleet {} (only instances tagged dake:fleet={} can be acted on)",
            snap.fleet, snap.fleet
        )
    })?;
    if inst.role != pb.target_role {
        return Err(say!(
            "{} targets a {} instance; {} ({}) is a {}",
            pb.id,
            pb.target_role,
            inst.name,
            inst.id,
            inst.role
        ));
    }
    Ok((pb, inst))
}

/// The plan of every step as it would be made now, for `--dry-run`. Steps whose plan depends
/// on what earlier steps create say so instead.
pub fn dry_run_lines(run: &Run, snap: &FleetSnapshot, l: Lang) -> Vec<String> {
    let mut out = Vec::new();
    let said = |text: String| format!("     {}", said(l, &text));
    for (i, step) in run.playbook.steps.iter().enumerate() {
        let flags = match (step.destructive, step.confirmation()) {
            (_, Confirm::TypeId) => tr(l, " [destructive, typed confirmation]"),
            (true, _) => tr(l, " [destructive]"),
            _ => "",
        };
        let why = asset(
            l,
            &["playbook", &run.playbook.id, "step", &step.name],
            &step.why,
        );
        out.push(format!("{}. {}{flags}: {why}", i + 1, step.name));
        match plan(step, i, &run.ctx, snap) {
            Ok(p) => {
                for c in &p.calls {
                    out.push(format!("     {c}"));
                }
                for w in &p.warnings {
                    out.push(said(say!("warning: {w}")));
                }
                if p.calls.is_empty() {
                    out.push(said(said!("(no API calls: looks and decides)").into()));
                }
            }
            Err(why) if why.contains("earlier step") => {
                out.push(said(
                    said!("(calls decided when it runs, from what earlier steps create)").into(),
                ));
            }
            Err(why) => out.push(said(say!("would refuse now: {why}"))),
        }
        if let Some(w) = step.wait {
            out.push(said(say!(
                "then wait until {w:?} (timeout {} s)",
                step.timeout_secs
            )));
        }
    }
    out
}

#[derive(Debug, Serialize)]
pub struct StepReport {
    pub name: String,
    pub status: StepStatus,
    pub note: Option<String>,
    pub calls: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub playbook: String,
    pub target_id: String,
    pub target_name: String,
    /// finished | failed | refused | aborted
    pub outcome: &'static str,
    pub message: String,
    pub journal: String,
    pub steps: Vec<StepReport>,
}

pub fn report_of(run: &Run, outcome: &'static str, message: String, journal: &Path) -> RunReport {
    RunReport {
        run_id: run.ctx.run_id.clone(),
        playbook: run.playbook.id.clone(),
        target_id: run.ctx.target_id.clone(),
        target_name: run.ctx.target_name.clone(),
        outcome,
        message,
        journal: journal.display().to_string(),
        steps: run
            .playbook
            .steps
            .iter()
            .zip(&run.steps)
            .map(|(spec, s)| StepReport {
                name: spec.name.clone(),
                status: s.status,
                note: s.note.clone(),
                calls: s.calls.iter().map(|c| c.call.to_string()).collect(),
            })
            .collect(),
    }
}

/// Drives a run to its end (or to a step it may not take) with no screen.
pub struct Headless {
    pub provider: Arc<dyn Provider>,
    pub yes: bool,
    pub exec: Sender<Vec<Effect>>,
    pub answers: Receiver<Answer>,
    /// Progress lines for people, in this language; `None` keeps stdout for the JSON report.
    pub progress: Option<Lang>,
}

impl Headless {
    pub fn new(
        provider: Arc<dyn Provider>,
        journal: Journal,
        run_id: &str,
        yes: bool,
        progress: Option<Lang>,
    ) -> Headless {
        let (atx, answers) = tokio::sync::mpsc::channel(64);
        let exec = executor::spawn(provider.clone(), journal, run_id.to_string(), atx, |a| a);
        Headless {
            provider,
            yes,
            exec,
            answers,
            progress,
        }
    }

    /// The language of the progress lines; English when there are none.
    fn lang(&self) -> Lang {
        self.progress.unwrap_or_default()
    }

    /// Prints a progress line, already in the language of the progress lines.
    fn say(&self, line: &str) {
        if self.progress.is_some() {
            println!("{line}");
        }
    }

    /// Hands effects to the executor and feeds every answer back to the engine until nothing
    /// is in flight. `Err` means the journal failed: nothing more may be done.
    pub async fn carry(
        &mut self,
        run: &mut Run,
        effects: Vec<Effect>,
    ) -> Result<Vec<String>, String> {
        let mut refusals = Vec::new();
        let mut queue = effects;
        while !queue.is_empty() {
            let expected = queue
                .iter()
                .filter(|e| {
                    matches!(
                        e,
                        Effect::Call { .. }
                            | Effect::Resolve { .. }
                            | Effect::Refused(_)
                            | Effect::Sync
                    )
                })
                .count();
            for e in &queue {
                match e {
                    Effect::Call { call, .. } => self.say(&format!("   → {call}")),
                    Effect::Resolve { call, .. } => {
                        let line = say!("→ resolving after resume: {call}");
                        self.say(&format!("   {}", said(self.lang(), &line)))
                    }
                    _ => {}
                }
            }
            self.exec
                .send(queue)
                .await
                .map_err(|_| "the executor stopped".to_string())?;
            queue = Vec::new();
            for _ in 0..expected {
                let answer = self.answers.recv().await.ok_or("the executor stopped")?;
                let now = self.provider.now();
                let event = match answer {
                    Answer::CallDone { index, outcome } => Event::CallDone { index, outcome },
                    Answer::CallFailed { index, error } => {
                        self.say(&format!("   ✗ {}", said(self.lang(), &error)));
                        Event::CallFailed { index, error }
                    }
                    Answer::Refused(reason) => {
                        refusals.push(reason);
                        continue;
                    }
                    Answer::Synced => continue,
                    Answer::JournalFailed(e) => {
                        return Err(say!("journal write failed, stopped: {e}"));
                    }
                };
                queue.extend(run.advance(event, now));
            }
        }
        Ok(refusals)
    }

    /// What step `at` found, once it finished without a wait (a wait says it when it ends).
    fn say_finished(&self, run: &Run, at: usize) {
        if run.cursor == at + 1
            && let Some(note) = run.steps.get(at).and_then(|s| s.note.as_deref())
        {
            self.say(&format!("   {}", said(self.lang(), note)));
        }
    }

    /// Steps the run until it is over or cannot go on, then waits until every journal record
    /// is on disk. Returns (outcome, message).
    pub async fn drive(&mut self, run: &mut Run) -> Result<(&'static str, String), String> {
        let result = self.step_until_stopped(run).await;
        self.carry(run, vec![Effect::Sync]).await?;
        result
    }

    async fn step_until_stopped(
        &mut self,
        run: &mut Run,
    ) -> Result<(&'static str, String), String> {
        loop {
            let snap = self
                .provider
                .snapshot()
                .await
                .map_err(|e| say!("provider: {e}"))?;
            let now = self.provider.now();
            match run.phase.clone() {
                Phase::Finished { outcome } => return Ok(("finished", outcome)),
                Phase::Aborted { reason } => return Ok(("aborted", reason)),
                Phase::Failed { error } => {
                    let name = run.current_step().map_or("?", |s| s.name.as_str());
                    return Ok((
                        "failed",
                        say!("step {} ({name}) failed: {error}", run.cursor + 1),
                    ));
                }
                Phase::Ready => {
                    let Some(step) = run.current_step().cloned() else {
                        return Ok(("finished", said!("no steps left").into()));
                    };
                    let n = run.cursor + 1;
                    let l = self.lang();
                    let why = asset(
                        l,
                        &["playbook", &run.playbook.id, "step", &step.name],
                        &step.why,
                    );
                    self.say(&format!("{n}/{} {}: {why}", run.steps.len(), step.name));
                    if step.destructive && !self.yes {
                        return Ok((
                            "refused",
                            say!(
                                "step {n} ({}) is destructive and --yes was not given; nothing was done. Continue with `dake resume {} --yes`",
                                step.name,
                                run.ctx.run_id
                            ),
                        ));
                    }
                    let fx = run.advance(Event::Proceed { snap: &snap }, now);
                    let refusals = self.carry(run, fx).await?;
                    if let Some(r) = refusals.first() {
                        return Ok(("refused", say!("step {n} ({}) refused: {r}", step.name)));
                    }
                    self.say_finished(run, n - 1);
                }
                Phase::Confirming { plan, .. } => {
                    // Only reached with --yes: the operator confirmed every step up front.
                    let mut fx = Vec::new();
                    if plan.confirm == Confirm::TypeId {
                        let id = plan.confirm_id.clone().unwrap_or_default();
                        for c in confirm_suffix(&id).chars() {
                            fx.extend(run.advance(Event::TypeChar(c), now));
                        }
                    }
                    let at = run.cursor;
                    fx.extend(run.advance(Event::Confirm { snap: &snap }, now));
                    let refusals = self.carry(run, fx).await?;
                    if let Some(r) = refusals.first() {
                        return Ok(("refused", r.clone()));
                    }
                    self.say_finished(run, at);
                }
                Phase::Calling { .. } => {
                    let fx = run.resume(now);
                    self.carry(run, fx).await?;
                }
                Phase::Waiting { .. } => {
                    tokio::time::sleep(self.provider.refresh_interval()).await;
                    let snap = self
                        .provider
                        .snapshot()
                        .await
                        .map_err(|e| say!("provider: {e}"))?;
                    let now = self.provider.now();
                    let before = run.cursor;
                    let fx = run.advance(Event::Observe { snap: &snap }, now);
                    self.carry(run, fx).await?;
                    if run.cursor != before
                        && let Some(note) = run.steps[before].note.clone()
                    {
                        let l = self.lang();
                        let status = tr(l, run.steps[before].status.label());
                        self.say(&format!("   {status} {}", said(l, &note)));
                    }
                }
            }
        }
    }
}
