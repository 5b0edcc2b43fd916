//! A drill under way: what the operator did, read from the runs' journal records as they are
//! written and from each snapshot, and scored when the fleet is recovered (or time is up).
//! Pure: the console feeds it; it never reads a clock or a file.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::judge::{self, Wrong};
use super::scenario::{Penalties, Scenario};
use super::scorecard::{Charge, Deduction, Scorecard, StepScore};
use crate::detect::Incident;
use crate::domain::FleetSnapshot;
use crate::domain::call::ProviderCall;
use crate::runbook::model::Playbook;
use crate::runbook::record::{Record, StepStatus};

#[derive(Debug, Clone)]
struct StepTrace {
    playbook: String,
    name: String,
    started: DateTime<Utc>,
    finished: Option<DateTime<Utc>>,
}

/// A call sent and not yet answered: what it would be charged for once it succeeds, and
/// whether it is a failover action.
#[derive(Debug, Clone)]
struct Sent {
    wrong: Option<(Wrong, String)>,
    failover: bool,
}

#[derive(Debug, Clone)]
pub struct DrillState {
    pub scenario: Scenario,
    penalties: Penalties,
    /// The fleet's clock when the drill began: every time on the scorecard counts from here.
    pub start: DateTime<Utc>,
    pub operator: String,
    pub keys: u32,
    pub hints_shown: usize,
    heartbeat_secs: f32,
    runs: Vec<String>,
    steps: BTreeMap<(String, usize), StepTrace>,
    /// Calls sent and not yet answered, with what they would be judged wrong for.
    pending: BTreeMap<(String, usize, usize), Sent>,
    /// Runs already charged for a failover nothing needed.
    unneeded: Vec<String>,
    /// Instances an incident or a fault named: taking those out is not removing a healthy one.
    implicated: Vec<String>,
    deductions: Vec<Deduction>,
    detected_at: Option<DateTime<Utc>>,
    mitigated_at: Option<DateTime<Utc>>,
    recovered_at: Option<DateTime<Utc>>,
    /// What still keeps the fleet from recovered, at the last snapshot.
    pub waiting_for: Option<String>,
    pub scorecard: Option<Scorecard>,
}

impl DrillState {
    pub fn new(
        scenario: Scenario,
        start: DateTime<Utc>,
        operator: &str,
        heartbeat_secs: f32,
    ) -> DrillState {
        DrillState {
            penalties: scenario.penalties(),
            scenario,
            start,
            operator: operator.to_string(),
            keys: 0,
            hints_shown: 0,
            heartbeat_secs,
            runs: Vec::new(),
            steps: BTreeMap::new(),
            pending: BTreeMap::new(),
            unneeded: Vec::new(),
            implicated: Vec::new(),
            deductions: Vec::new(),
            detected_at: None,
            mitigated_at: None,
            recovered_at: None,
            waiting_for: None,
            scorecard: None,
        }
    }

    pub fn is_over(&self) -> bool {
        self.scorecard.is_some()
    }

    /// Drill seconds at `at`.
    pub fn secs(&self, at: DateTime<Utc>) -> i64 {
        (at - self.start).num_seconds()
    }

    pub fn on_key(&mut self) {
        if !self.is_over() {
            self.keys += 1;
        }
    }

    /// The next hint, counted against the score; `None` when every hint was shown.
    pub fn next_hint(&mut self, now: DateTime<Utc>) -> Option<(usize, String)> {
        let text = self.scenario.hints.get(self.hints_shown)?.clone();
        self.hints_shown += 1;
        let points = self.penalties.hint;
        self.charge(now, Charge::Hint, say!("hint {}", self.hints_shown), points);
        Some((self.hints_shown, text))
    }

    fn charge(&mut self, at: DateTime<Utc>, charge: Charge, detail: String, points: u32) {
        if self.is_over() {
            return;
        }
        self.deductions.push(Deduction {
            at_secs: Some(self.secs(at)),
            charge,
            detail,
            points,
        });
    }

    fn charge_wrong(&mut self, at: DateTime<Utc>, wrong: Wrong, detail: String) {
        let p = &self.penalties;
        let points = match wrong {
            Wrong::HealthyRemoved => p.healthy_removed,
            Wrong::LaggingPromoted => p.lagging_promoted,
            Wrong::ErrantPromoted => p.errant_promoted,
            Wrong::OverrideUsed => p.override_used,
            Wrong::TwoMasters => p.two_masters,
            Wrong::UnneededFailover => p.unneeded_failover,
            Wrong::WrongPlaybook => p.wrong_playbook,
        };
        self.charge(at, Charge::Wrong(wrong), detail, points);
    }

    /// A record `run_id` (of `playbook`) journaled; `snap` is the fleet as the console saw it
    /// just before, what a call is judged against.
    pub fn on_record(
        &mut self,
        run_id: &str,
        playbook: &Playbook,
        rec: &Record,
        snap: Option<&FleetSnapshot>,
    ) {
        if self.is_over() {
            return;
        }
        let right = self.scenario.expect.playbooks.contains(&playbook.id);
        match rec {
            Record::Started { at, overrides, .. } => {
                self.runs.push(run_id.to_string());
                if right {
                    self.detected_at.get_or_insert(*at);
                } else if !self.scenario.expect.playbooks.is_empty() {
                    let detail = say!("{} does not answer this incident", playbook.id);
                    self.charge_wrong(*at, Wrong::WrongPlaybook, detail);
                }
                for o in overrides {
                    self.charge_wrong(*at, Wrong::OverrideUsed, say!("override {}", o.name()));
                }
            }
            Record::Vars { at, vars, .. } => {
                for key in vars.keys() {
                    if let Some(name) = key.strip_prefix("override.") {
                        self.charge_wrong(*at, Wrong::OverrideUsed, say!("override {name}"));
                    }
                }
            }
            Record::StepStarted { at, step, .. } => {
                let name = playbook.steps.get(*step).map_or("?", |s| s.name.as_str());
                self.steps
                    .entry((run_id.to_string(), *step))
                    .or_insert(StepTrace {
                        playbook: playbook.id.clone(),
                        name: name.to_string(),
                        started: *at,
                        finished: None,
                    });
            }
            Record::StepFinished {
                at, step, status, ..
            } => {
                if let Some(s) = self.steps.get_mut(&(run_id.to_string(), *step)) {
                    s.finished = Some(*at);
                }
                let mitigates = playbook.steps.get(*step).is_some_and(|s| s.mitigates);
                if right && mitigates && *status == StepStatus::Done {
                    self.mitigated_at.get_or_insert(*at);
                }
            }
            Record::Intent {
                step, index, call, ..
            } => {
                let sent = Sent {
                    wrong: snap.and_then(|s| self.judge(call, s)),
                    failover: call.is_failover_action(),
                };
                self.pending
                    .insert((run_id.to_string(), *step, *index), sent);
            }
            Record::Result {
                at,
                step,
                index,
                outcome,
            } => {
                let key = (run_id.to_string(), *step, *index);
                let Some(sent) = self.pending.remove(&key) else {
                    return;
                };
                if outcome.is_err() {
                    return;
                }
                if let Some((wrong, detail)) = sent.wrong {
                    self.charge_wrong(*at, wrong, detail);
                }
                if sent.failover
                    && self.scenario.expect.playbooks.is_empty()
                    && !self.unneeded.iter().any(|r| r == run_id)
                {
                    self.unneeded.push(run_id.to_string());
                    let detail = say!("{} acted where nothing needed a failover", playbook.id);
                    self.charge_wrong(*at, Wrong::UnneededFailover, detail);
                }
            }
            _ => {}
        }
    }

    fn judge(&self, call: &ProviderCall, snap: &FleetSnapshot) -> Option<(Wrong, String)> {
        if let Some(id) = judge::promoted(call) {
            return judge::judge_promotion(snap, id);
        }
        let id = judge::removed(call)?;
        let inst = snap.find(id)?;
        let own = inst.tags.contains_key(crate::domain::call::TAG_RUN);
        (!own && judge::healthy(inst, &self.implicated)).then(|| {
            (
                Wrong::HealthyRemoved,
                say!(
                    "{} ({}) was healthy: {}",
                    inst.name,
                    inst.id,
                    call.kind().operation()
                ),
            )
        })
    }

    /// A fresh snapshot and what detection made of it. True when this ended the drill.
    pub fn observe(
        &mut self,
        snap: &FleetSnapshot,
        incidents: &[Incident],
        run_active: bool,
    ) -> bool {
        if self.is_over() {
            return false;
        }
        let now = snap.taken_at;
        for inc in incidents {
            if !self.implicated.contains(&inc.instance_id) {
                self.implicated.push(inc.instance_id.clone());
            }
        }
        let writers = judge::writable(snap, self.heartbeat_secs);
        let split = self
            .deductions
            .iter()
            .any(|d| d.charge == Charge::Wrong(Wrong::TwoMasters));
        if writers.len() > 1 && !split {
            let names: Vec<&str> = writers.iter().map(|w| w.name.as_str()).collect();
            let detail = say!("{} took writes at once", names.join(" and "));
            self.charge_wrong(now, Wrong::TwoMasters, detail);
        }
        let begun = self.secs(now) >= self.scenario.onset_secs() as i64;
        let acted = self.mitigated_at.is_some() || self.scenario.expect.playbooks.is_empty();
        let want = &self.scenario.recovered;
        self.waiting_for = judge::not_recovered(snap, incidents.len(), want, self.heartbeat_secs);
        // Recovered only once every fault has happened and every one that passes by itself
        // has passed: a drill is not over between two, nor before a decoy has played out.
        let all_begun = self
            .scenario
            .timeline
            .iter()
            .all(|e| self.secs(now) >= (e.at_secs + e.for_secs.unwrap_or(0)) as i64);
        if begun && all_begun && acted && self.waiting_for.is_none() && !run_active {
            self.recovered_at = Some(now);
            self.finish(now, said!("recovered").into());
            return true;
        }
        if self.secs(now) >= self.scenario.limit_secs as i64 {
            let why = self
                .waiting_for
                .clone()
                .unwrap_or_else(|| said!("a run still going").into());
            self.finish(now, say!("not recovered in time: {why}"));
            return true;
        }
        false
    }

    /// Ends the drill now and scores it.
    pub fn finish(&mut self, now: DateTime<Utc>, outcome: String) {
        if self.is_over() {
            return;
        }
        let onset = self.start + chrono::Duration::seconds(self.scenario.onset_secs() as i64);
        let since = |t: Option<DateTime<Utc>>| t.map(|t| (t - onset).num_seconds().max(0));
        let par = &self.scenario.par;
        let mut traced: Vec<&StepTrace> = self.steps.values().collect();
        traced.sort_by_key(|s| s.started);
        let steps: Vec<StepScore> = traced
            .into_iter()
            .filter_map(|s| {
                Some(StepScore {
                    playbook: s.playbook.clone(),
                    step: s.name.clone(),
                    secs: (s.finished? - s.started).num_seconds(),
                    par: par.step.get(&s.name).copied(),
                })
            })
            .collect();
        let mut deductions = self.deductions.clone();
        let over = self.penalties.over_par;
        let phases = [
            (said!("detect"), since(self.detected_at), par.detect_secs),
            (
                said!("mitigate"),
                since(self.mitigated_at),
                par.mitigate_secs,
            ),
            (said!("recover"), since(self.recovered_at), par.recover_secs),
        ];
        for (phase, took, par) in phases {
            if let (Some(took), Some(par)) = (took, par)
                && took > par as i64
            {
                deductions.push(Deduction::over_par(phase, took, par, over));
            }
        }
        for s in &steps {
            if let Some(par) = s.par.filter(|&p| s.secs > p as i64) {
                deductions.push(Deduction::over_par(&s.step, s.secs, par, over));
            }
        }
        let lost: u32 = deductions.iter().map(|d| d.points).sum();
        self.scorecard = Some(Scorecard {
            scenario: self.scenario.id.clone(),
            title: self.scenario.title.clone(),
            seed: self.scenario.seed,
            operator: self.operator.clone(),
            ended_at: now,
            drill_secs: self.secs(now),
            outcome,
            detect_secs: since(self.detected_at),
            mitigate_secs: since(self.mitigated_at),
            recover_secs: since(self.recovered_at),
            par_detect_secs: par.detect_secs,
            par_mitigate_secs: par.mitigate_secs,
            par_recover_secs: par.recover_secs,
            steps,
            deductions,
            keys: self.keys,
            hints: self.hints_shown,
            score: 100u32.saturating_sub(lost),
            runs: self.runs.clone(),
            lesson: self.scenario.lesson.clone(),
        });
    }
}
