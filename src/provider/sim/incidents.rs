//! The simulator's incidents: the configured timeline starts them as they happen, and
//! `inject` starts one that has already been going on long enough to be seen.

use super::SimFleet;
use super::fleet::{SLOW_FACTOR, SLOW_RAMP_SECS};
use crate::config::{Config, IncidentKind};
use crate::domain::{CheckStatus, Role, StatusChecks, TimeSeries};

/// How far back `inject` starts an incident: the slow server's ramp plus the longer of the
/// detection windows, and one sample to spare.
pub(super) fn present_secs(config: &Config) -> i64 {
    let d = &config.detect;
    let window = f64::from(d.slow_web_window_secs).max(f64::from(d.master_heartbeat_secs));
    SLOW_RAMP_SECS as i64 + window.ceil() as i64 + i64::from(config.sim.sample_interval_secs)
}

/// Rewrites `series` in place; `f` gets each sample's age in samples (0 = newest).
fn rewrite(series: &mut TimeSeries, mut f: impl FnMut(i64, f32) -> f32) {
    let len = series.len() as i64;
    let mut out = TimeSeries::new(series.capacity());
    for (i, v) in series.iter().enumerate() {
        out.push(f(len - 1 - i as i64, v));
    }
    *series = out;
}

impl SimFleet {
    /// Configured incidents not yet fired: (virtual second, kind, target).
    pub fn upcoming(&self) -> Vec<(i64, IncidentKind, Option<String>)> {
        self.sim
            .incidents
            .iter()
            .zip(&self.fired)
            .filter(|(_, fired)| !**fired)
            .map(|(i, _)| (i.at_secs as i64, i.kind, i.target.clone()))
            .collect()
    }

    /// Makes an incident present now, as if it had started a while ago (long enough for
    /// detection to see it): the recent history is rewritten to match, so a headless run or
    /// a test need not wait for it. `target` names the web server for slow-web.
    pub fn inject(&mut self, kind: IncidentKind, target: Option<&str>) -> Result<(), String> {
        let since = self.now - self.present_secs;
        let Some(at) = self.start_incident(kind, target, since)? else {
            return Ok(());
        };
        // An injected incident replaces the scheduled one of its kind: a drill that starts with
        // the master down must not see the new master die again when the timeline reaches it.
        for (i, inc) in self.sim.incidents.iter().enumerate() {
            if inc.kind == kind
                && (kind == IncidentKind::MasterDown || inc.target.as_deref() == target)
            {
                self.fired[i] = true;
            }
        }
        let (now, interval) = (self.now, self.interval());
        // Seconds the incident had been on at a sample `age` samples old, if it had started.
        let on_for = move |age: i64| Some(now - age * interval - since).filter(|&d| d >= 0);
        match kind {
            IncidentKind::SlowWeb => {
                let h = &mut self.instances[at].inst.health;
                let ramp = |age| on_for(age).map_or(0.0, |d| (d as f32 / SLOW_RAMP_SECS).min(1.0));
                rewrite(&mut h.p99_ms, |age, v| {
                    v * (1.0 + ramp(age) * (SLOW_FACTOR - 1.0))
                });
                rewrite(&mut h.p50_ms, |age, v| v * (1.0 + ramp(age) * 1.5));
            }
            IncidentKind::MasterDown => {
                let master_id = self.instances[at].inst.id.clone();
                let rewind = self.instances[at]
                    .server
                    .as_ref()
                    .map_or(0.0, |m| (m.applied.beat - since as f64).max(0.0));
                for s in &mut self.instances {
                    let is_master = s.inst.id == master_id;
                    let Some(db) = s.inst.db.as_mut() else {
                        continue;
                    };
                    if !is_master && db.source_id.as_deref() != Some(master_id.as_str()) {
                        continue;
                    }
                    // The master stopped writing heartbeats then; its replicas stopped
                    // receiving them, and their lag has grown by the silence since.
                    // Everything the master wrote since is undone, on its replicas too, so each
                    // keeps its distance behind it.
                    if let Some(server) = s.server.as_mut() {
                        let since = since as f64;
                        for tx in [&mut server.applied, &mut server.received] {
                            if tx.beat > since {
                                *tx = tx.earlier_by(rewind);
                            }
                        }
                    }
                    let silence = |age, v: f32| on_for(age).map_or(v, |d| v + d as f32);
                    rewrite(&mut db.lag_history, silence);
                    db.heartbeat_age_secs = db.lag_history.latest().unwrap_or(0.0);
                    // Nothing replicates any more: the master's own threads and its replicas'.
                    db.io_thread_running = false;
                    if !is_master {
                        continue;
                    }
                    let h = &mut s.inst.health;
                    h.checks = StatusChecks {
                        system: CheckStatus::Ok,
                        instance: CheckStatus::Impaired,
                    };
                    let gone = |age, v: f32| on_for(age).map_or(v, |_| f32::NAN);
                    rewrite(&mut h.p50_ms, gone);
                    rewrite(&mut h.p99_ms, gone);
                    // A hung host idles at 1-2 % CPU; the old value's fraction stands in for
                    // the noise the sampler would have drawn.
                    rewrite(&mut h.cpu, |age, v| {
                        on_for(age).map_or(v, |_| 1.0 + v.fract())
                    });
                }
            }
        }
        Ok(())
    }

    /// Starts an incident at virtual second `since`. The index of the instance it hit, or
    /// `None` when that instance already had it.
    fn start_incident(
        &mut self,
        kind: IncidentKind,
        target: Option<&str>,
        since: i64,
    ) -> Result<Option<usize>, String> {
        let at = match kind {
            IncidentKind::SlowWeb => {
                let name = target.ok_or("slow-web needs the name of a web server")?;
                self.instances
                    .iter()
                    .position(|s| s.inst.name == name && s.inst.role == Role::Web)
                    .ok_or_else(|| format!("no web server named `{name}` in the simulated fleet"))?
            }
            // The master is whoever the endpoint points at, after a failover too.
            IncidentKind::MasterDown => self
                .instances
                .iter()
                .position(|s| s.inst.id == self.endpoint_target)
                .or_else(|| {
                    self.instances
                        .iter()
                        .position(|s| s.inst.role == Role::DbMaster)
                })
                .ok_or("the simulated fleet has no master")?,
        };
        let s = &mut self.instances[at];
        let slot = match kind {
            IncidentKind::SlowWeb => &mut s.slow_since,
            IncidentKind::MasterDown => &mut s.down_since,
        };
        if slot.is_some() {
            return Ok(None);
        }
        *slot = Some(since);
        Ok(Some(at))
    }

    /// Starts the configured incidents whose time has come, as they happen.
    pub(super) fn fire_due_incidents(&mut self) {
        for i in 0..self.sim.incidents.len() {
            let inc = &self.sim.incidents[i];
            if !self.fired[i] && inc.at_secs as i64 <= self.now {
                let (kind, target, lasts) = (inc.kind, inc.target.clone(), inc.for_secs);
                self.fired[i] = true;
                // Targets were checked against the topology when the config was loaded.
                match self.start_incident(kind, target.as_deref(), self.now) {
                    Ok(Some(at)) => {
                        self.instances[at].slow_until = lasts.map(|secs| self.now + secs as i64);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!("simulated incident not started: {e}"),
                }
            }
        }
    }
}
