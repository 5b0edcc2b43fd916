//! The simulated provider: the built-in drill fleet on a virtual clock.

mod actions;
mod faults;
mod fleet;
mod incidents;
mod lease;
mod rng;
mod server;
mod start;
mod state;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

pub use fleet::SimFleet;
pub use rng::SimRng;
pub use start::{SimOptions, start};

use super::{BoxFuture, Preflight, Provider, ProviderError};
use crate::config::Config;
use crate::domain::FleetSnapshot;
use crate::domain::call::{CallOutcome, ProviderCall};

/// The simulator makes a new sample every sample interval; asking more often only copies the
/// same fleet again (at 1,000 instances that copy is most of an idle console's CPU). This caps
/// the wait between two snapshots when the interval is long.
pub const SIM_REFRESH: Duration = Duration::from_secs(5);
/// At high speeds a second of real time is many samples; never poll faster than this, though.
const SIM_REFRESH_FLOOR: Duration = Duration::from_millis(20);

pub struct SimProvider {
    fleet: Mutex<SimFleet>,
    started: Instant,
    /// Virtual seconds already elapsed when the provider starts (`dake status --at`).
    offset_secs: f64,
    speed: f64,
    /// Artificial latency per call, to rehearse a slow API.
    delay: Duration,
    /// The clock stands still at `offset_secs`: a one-shot look sees exactly that moment.
    frozen: bool,
    /// Where the fleet is saved after every call that changed it, so that it outlives this
    /// process as a real fleet outlives its console (see [`SimProvider::restore`]).
    state_file: Option<PathBuf>,
    leases: Mutex<lease::Leases>,
}

impl SimProvider {
    pub fn new(config: &Config, epoch: DateTime<Utc>, offset_secs: f64) -> SimProvider {
        let mut fleet = SimFleet::new(config, epoch);
        fleet.advance_to(offset_secs);
        SimProvider {
            fleet: Mutex::new(fleet),
            started: Instant::now(),
            offset_secs,
            speed: config.sim.speed,
            delay: Duration::ZERO,
            frozen: false,
            state_file: None,
            leases: Default::default(),
        }
    }

    /// Stops the virtual clock where it is: every snapshot is of the same moment.
    pub fn frozen(mut self) -> SimProvider {
        self.frozen = true;
        self
    }

    /// Saves the whole fleet to `path` after every successful `execute`, atomically
    /// (`<path>.tmp`, fsync, rename). Snapshots are not saved: between calls the fleet only
    /// moves on with the clock, which the saved fleet replays (see [`SimProvider::resume_at`]).
    pub fn with_state_file(mut self, path: impl Into<PathBuf>) -> SimProvider {
        self.state_file = Some(path.into());
        self
    }

    pub fn with_delay(mut self, delay: Duration) -> SimProvider {
        self.delay = delay;
        self
    }

    pub fn virtual_now(&self) -> f64 {
        if self.frozen {
            return self.offset_secs;
        }
        self.offset_secs + self.started.elapsed().as_secs_f64() * self.speed
    }

    /// Runs `f` on the fleet with the lock held; never across an await.
    pub fn with_fleet<T>(&self, f: impl FnOnce(&mut SimFleet) -> T) -> T {
        // A poisoned lock means a panic mid-step; the fleet data is still the best we have.
        let mut guard = self.fleet.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

impl Provider for SimProvider {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn is_drill(&self) -> bool {
        true
    }

    /// One sample interval of virtual time, between the floor and the cap: nothing new exists
    /// sooner, and a drill at --speed 100 must not see its waits in steps of 100 seconds.
    fn refresh_interval(&self) -> Duration {
        let interval = self.with_fleet(|f| f.interval()) as f64 / self.speed;
        Duration::from_secs_f64(interval).clamp(SIM_REFRESH_FLOOR, SIM_REFRESH)
    }

    fn drill_epoch(&self) -> Option<DateTime<Utc>> {
        Some(self.with_fleet(|f| f.epoch()))
    }

    fn now(&self) -> DateTime<Utc> {
        let epoch = self.with_fleet(|f| f.epoch());
        epoch + chrono::Duration::milliseconds((self.virtual_now() * 1000.0) as i64)
    }

    fn snapshot(&self) -> BoxFuture<'_, Result<FleetSnapshot, ProviderError>> {
        Box::pin(async move {
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            let t = self.virtual_now();
            self.renew_leases();
            Ok(self.with_fleet(|f| {
                f.advance_to(t);
                f.snapshot()
            }))
        })
    }

    fn execute(&self, call: ProviderCall) -> BoxFuture<'_, Result<CallOutcome, ProviderError>> {
        Box::pin(async move {
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            if let Some(answer) = self.lease(&call) {
                return answer;
            }
            let t = self.virtual_now();
            self.with_fleet(|f| {
                f.advance_to(t);
                let outcome = f.apply(&call)?;
                // Saved under the lock, so saves land in the order the calls were made. The
                // write is synchronous file I/O in an async fn, which is acceptable here: a few
                // tens of KB, once per side-effecting call, and playbooks make those seconds
                // apart. A failed save does not undo the call, which has happened; it is
                // logged, and the next call saves again.
                if let Some(path) = &self.state_file
                    && let Err(e) = state::save(f, path)
                {
                    tracing::warn!("saving the drill fleet to {}: {e}", path.display());
                }
                Ok(outcome)
            })
            .map_err(ProviderError::Refused)
        })
    }

    /// The drill fleet grants every permission; what it can refuse is a call naming an
    /// instance or volume it does not have. Whether the state allows the call is the run's
    /// business on the day, as it is on AWS.
    fn preflight(&self, call: ProviderCall) -> BoxFuture<'_, Result<Preflight, ProviderError>> {
        Box::pin(async move {
            let t = self.virtual_now();
            self.with_fleet(|f| {
                f.advance_to(t);
                let snap = f.snapshot();
                let (instances, volumes) = call.resources();
                for id in instances {
                    if snap.find(id).is_none() {
                        return Err(ProviderError::Refused(format!("no instance {id}")));
                    }
                }
                for id in volumes {
                    let attached = snap
                        .instances
                        .iter()
                        .any(|i| i.volumes.iter().any(|v| v.id == id));
                    if !attached && !snap.free_volumes.iter().any(|v| v.id == id) {
                        return Err(ProviderError::Refused(format!("no volume {id}")));
                    }
                }
                Ok(Preflight::Allowed)
            })
        })
    }

    fn find_created(
        &self,
        run_id: &str,
        step: usize,
    ) -> BoxFuture<'_, Result<Vec<String>, ProviderError>> {
        let run_id = run_id.to_string();
        Box::pin(async move { Ok(self.with_fleet(|f| f.find_created(&run_id, step))) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;
    use crate::test_support::epoch;

    #[test]
    fn topology_matches_the_default_config() {
        let snap = SimFleet::new(&Config::builtin(), epoch()).snapshot();
        assert_eq!(snap.by_role(Role::Web).count(), 4);
        assert_eq!(snap.by_role(Role::DbMaster).count(), 1);
        assert_eq!(snap.by_role(Role::DbReplica).count(), 2);
        let zones: std::collections::BTreeSet<_> = snap.by_role(Role::Web).map(|i| &i.az).collect();
        assert_eq!(zones.len(), 2, "web servers span two zones");
        let images: std::collections::BTreeSet<_> =
            snap.instances.iter().map(|i| &i.image_id).collect();
        assert_eq!(images.len(), 1, "one image for every role");
        assert!(
            snap.instances
                .iter()
                .all(|i| i.id.starts_with("i-0") && i.health.p99_ms.len() == 120)
        );
        let master = snap.master().unwrap();
        assert!(!master.disposable());
        assert!(snap.by_role(Role::Web).all(|i| i.disposable()));
        assert_eq!(snap.db_endpoint.as_ref().unwrap().target_id, master.id);
    }

    #[test]
    fn same_seed_same_snapshots_other_seed_differs() {
        let c = Config::builtin();
        let run = |c: &Config| {
            let mut f = SimFleet::new(c, epoch());
            f.advance_to(240.0);
            // NaN marks a missing datapoint and never equals itself; compare the serialised form.
            serde_json::to_string(&f.snapshot()).unwrap()
        };
        assert_eq!(run(&c), run(&c));
        let mut other = c.clone();
        other.sim.seed = 2;
        assert_ne!(run(&c), run(&other));
    }

    #[test]
    fn incidents_fire_on_the_virtual_clock() {
        let mut f = SimFleet::new(&Config::builtin(), epoch());
        f.advance_to(25.0);
        let web3 = |f: &SimFleet| {
            f.snapshot()
                .instances
                .iter()
                .find(|i| i.name == "web-3")
                .unwrap()
                .clone()
        };
        assert!(web3(&f).health.p99_ms.latest().unwrap() < 300.0);
        f.advance_to(120.0);
        assert!(web3(&f).health.p99_ms.latest().unwrap() > 400.0);
        assert!(!f.snapshot().master().unwrap().health.checks.any_impaired());
        f.advance_to(240.0);
        let snap = f.snapshot();
        let master = snap.master().unwrap();
        assert!(master.health.checks.any_impaired());
        assert!(master.db.as_ref().unwrap().heartbeat_age_secs > 50.0);
        assert!(
            snap.by_role(Role::DbReplica)
                .all(|r| !r.db.as_ref().unwrap().io_thread_running)
        );
        assert!(f.upcoming().is_empty());
    }
}
