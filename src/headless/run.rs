//! `dake run` and `dake resume`: the same engine as the console, driven without a screen.
//! Without `--yes` a destructive step is refused and the run is left resumable.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tokio::sync::mpsc::{Receiver, Sender};

use crate::config::Config;
use crate::detect::detect_once;
use crate::domain::{FleetSnapshot, Instance};
use crate::provider::Provider;
use crate::runbook::engine::{Effect, Event, Phase, Run};
use crate::runbook::executor::{self, Answer};
use crate::runbook::journal::Journal;
use crate::runbook::model::{Confirm, Playbook};
use crate::runbook::plan::{RunContext, plan};
use crate::runbook::record::StepStatus;

/// `user@host`, for the journal and the postmortem.
pub fn operator() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(user_from_passwd)
        .unwrap_or_else(|| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{user}@{host}")
}

/// The login name of this process's uid, for when USER and LOGNAME are not set (cron, sudo -i).
fn user_from_passwd() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)? == uid).then(|| name.to_string())
    })
}

/// Run ids sort by start time and say what ran: `20261126T054400Z-web-replace-3f2a`.
pub fn new_run_id(playbook: &str, now: DateTime<Utc>) -> String {
    // The fleet clock may be coarse (the simulator's is in milliseconds): salt with the wall
    // clock's nanoseconds and the process id. A clash is refused when the journal is created.
    let salt = (Utc::now().timestamp_subsec_nanos() ^ std::process::id()) & 0xffff;
    format!("{}-{playbook}-{salt:04x}", now.format("%Y%m%dT%H%M%SZ"))
}

/// Finds the playbook and the target, refusing with the reason when either does not fit.
pub fn select<'a>(
    playbooks: &'a [Playbook],
    snap: &'a FleetSnapshot,
    playbook: &str,
    target: &str,
) -> Result<(&'a Playbook, &'a Instance), String> {
    let pb = playbooks.iter().find(|p| p.id == playbook).ok_or_else(|| {
        let ids: Vec<&str> = playbooks.iter().map(|p| p.id.as_str()).collect();
        format!(
            "unknown playbook `{playbook}` (available: {})",
            ids.join(", ")
        )
    })?;
    let inst = snap.instances.iter().find(|i| i.id == target || i.name == target).ok_or_else(|| {
        format!(
            "no instance `{target}` in fleet {} (only instances tagged dake:fleet={} can be acted on)",
            snap.fleet, snap.fleet
        )
    })?;
    if inst.role != pb.target_role {
        return Err(format!(
            "{} targets a {} instance; {} ({}) is a {}",
            pb.id, pb.target_role, inst.name, inst.id, inst.role
        ));
    }
    Ok((pb, inst))
}

/// `target` is (id, name).
pub fn context(
    config: &Config,
    run_id: &str,
    target: (&str, &str),
    quarantine: bool,
    force: bool,
) -> RunContext {
    RunContext {
        run_id: run_id.to_string(),
        fleet: config.fleet.name.clone(),
        target_id: target.0.to_string(),
        target_name: target.1.to_string(),
        target_group: config.fleet.target_group.clone(),
        db_endpoint: config.fleet.db_endpoint.clone(),
        replica_max_lag_secs: config.detect.replica_max_lag_secs,
        master_heartbeat_secs: config.detect.master_heartbeat_secs,
        slow_web_clear_factor: config.detect.slow_web_clear_factor,
        slow_web_window_secs: config.detect.slow_web_window_secs,
        quarantine,
        force,
        vars: Default::default(),
    }
}

/// The plan of every step as it would be made now, for `--dry-run`. Steps whose plan depends
/// on what earlier steps create say so instead.
pub fn dry_run_lines(run: &Run, snap: &FleetSnapshot) -> Vec<String> {
    let mut out = Vec::new();
    for (i, step) in run.playbook.steps.iter().enumerate() {
        let flags = match (step.destructive, step.confirmation()) {
            (_, Confirm::TypeId) => " [destructive, typed confirmation]",
            (true, _) => " [destructive]",
            _ => "",
        };
        out.push(format!("{}. {}{flags}: {}", i + 1, step.name, step.why));
        match plan(step, i, &run.ctx, snap) {
            Ok(p) => {
                for c in &p.calls {
                    out.push(format!("     {c}"));
                }
                for w in &p.warnings {
                    out.push(format!("     warning: {w}"));
                }
                if p.calls.is_empty() {
                    out.push("     (no API calls: looks and decides)".into());
                }
            }
            Err(why) if why.contains("earlier step") => {
                out.push(
                    "     (calls decided when it runs, from what earlier steps create)".into(),
                );
            }
            Err(why) => out.push(format!("     would refuse now: {why}")),
        }
        if let Some(w) = step.wait {
            out.push(format!(
                "     then wait until {w:?} (timeout {} s)",
                step.timeout_secs
            ));
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

/// Records the incident the target is in, if detection sees one, for the postmortem.
pub fn incident_event(
    snap: &FleetSnapshot,
    config: &Config,
    target_id: &str,
) -> Option<Event<'static>> {
    let inc = detect_once(snap, &config.detect)
        .into_iter()
        .find(|i| i.instance_id == target_id)?;
    let window = Duration::seconds(i64::from(config.detect.slow_web_window_secs));
    Some(Event::Incident {
        summary: inc.summary,
        detected_at: inc.since,
        onset_at: inc.since - window,
    })
}

/// Drives a run to its end (or to a step it may not take) with no screen.
pub struct Headless {
    pub provider: Arc<dyn Provider>,
    pub yes: bool,
    pub exec: Sender<Vec<Effect>>,
    pub answers: Receiver<Answer>,
    /// Progress lines for people; `None` keeps stdout for the JSON report.
    pub say: Option<fn(&str)>,
}

impl Headless {
    pub fn new(
        provider: Arc<dyn Provider>,
        journal: Journal,
        run_id: &str,
        yes: bool,
        say: Option<fn(&str)>,
    ) -> Headless {
        let (atx, answers) = tokio::sync::mpsc::channel(64);
        let exec = executor::spawn(provider.clone(), journal, run_id.to_string(), atx, |a| a);
        Headless {
            provider,
            yes,
            exec,
            answers,
            say,
        }
    }

    fn say(&self, line: &str) {
        if let Some(say) = self.say {
            say(line);
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
                        self.say(&format!("   → resolving after resume: {call}"))
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
                        self.say(&format!("   ✗ {error}"));
                        Event::CallFailed { index, error }
                    }
                    Answer::Refused(reason) => {
                        refusals.push(reason);
                        continue;
                    }
                    Answer::Synced => continue,
                    Answer::JournalFailed(e) => {
                        return Err(format!("journal write failed, stopped: {e}"));
                    }
                };
                queue.extend(run.advance(event, now));
            }
        }
        Ok(refusals)
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
                .map_err(|e| format!("provider: {e}"))?;
            let now = self.provider.now();
            match run.phase.clone() {
                Phase::Finished { outcome } => return Ok(("finished", outcome)),
                Phase::Aborted { reason } => return Ok(("aborted", reason)),
                Phase::Failed { error } => {
                    let name = run.current_step().map_or("?", |s| s.name.as_str());
                    return Ok((
                        "failed",
                        format!("step {} ({name}) failed: {error}", run.cursor + 1),
                    ));
                }
                Phase::Ready => {
                    let Some(step) = run.current_step().cloned() else {
                        return Ok(("finished", "no steps left".into()));
                    };
                    let n = run.cursor + 1;
                    self.say(&format!(
                        "{n}/{} {}: {}",
                        run.steps.len(),
                        step.name,
                        step.why
                    ));
                    if step.destructive && !self.yes {
                        return Ok((
                            "refused",
                            format!(
                                "step {n} ({}) is destructive and --yes was not given; nothing was done. Continue with `dake resume {} --yes`",
                                step.name, run.ctx.run_id
                            ),
                        ));
                    }
                    let fx = run.advance(Event::Proceed { snap: &snap }, now);
                    let refusals = self.carry(run, fx).await?;
                    if let Some(r) = refusals.first() {
                        return Ok(("refused", format!("step {n} ({}) refused: {r}", step.name)));
                    }
                    if let Some(note) = run
                        .steps
                        .get(run.cursor.saturating_sub(1))
                        .and_then(|s| s.note.clone())
                        && run.cursor == n
                    {
                        self.say(&format!("   {note}"));
                    }
                }
                Phase::Confirming { plan, .. } => {
                    // Only reached with --yes: the operator confirmed every step up front.
                    let mut fx = Vec::new();
                    if plan.confirm == Confirm::TypeId {
                        let id = plan.confirm_id.clone().unwrap_or_default();
                        for c in id.chars().skip(id.chars().count().saturating_sub(4)) {
                            fx.extend(run.advance(Event::TypeChar(c), now));
                        }
                    }
                    fx.extend(run.advance(Event::Confirm, now));
                    let refusals = self.carry(run, fx).await?;
                    if let Some(r) = refusals.first() {
                        return Ok(("refused", r.clone()));
                    }
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
                        .map_err(|e| format!("provider: {e}"))?;
                    let now = self.provider.now();
                    let before = run.cursor;
                    let fx = run.advance(Event::Observe { snap: &snap }, now);
                    self.carry(run, fx).await?;
                    if run.cursor != before
                        && let Some(note) = run.steps[before].note.clone()
                    {
                        self.say(&format!("   {} {note}", run.steps[before].status.label()));
                    }
                }
            }
        }
    }
}
