//! The simulated fleet: deterministic for a seed, stepped on a virtual clock in fixed sample
//! intervals, so the same seed and the same virtual time always give the same snapshot.

use chrono::{DateTime, Duration as ChronoDuration, Utc};

use super::rng::SimRng;
use crate::config::{Config, FleetConfig, IncidentKind, SimConfig, sim_web_names};
use crate::domain::{
    CheckStatus, DbEndpoint, DbStatus, FleetSnapshot, Health, Instance, InstanceState,
    LaunchParams, Role, StatusChecks, TargetHealth, TimeSeries, Volume,
};

/// How long (virtual seconds) a slow server takes to reach its full slowdown.
const SLOW_RAMP_SECS: f32 = 30.0;
/// A slow server ends up this many times slower than it should be.
const SLOW_FACTOR: f32 = 5.5;
/// Hour of the simulated day at virtual time 0: a busy afternoon.
const SIM_DAY_START_HOUR: f32 = 14.0;
/// Chance per sample of a one-off latency spike that detection must shrug off.
const SPIKE_CHANCE: f32 = 0.02;

#[derive(Debug, Clone)]
struct SimInstance {
    inst: Instance,
    base_cpu: f32,
    base_p50: f32,
    base_p99: f32,
    /// A replica's usual distance behind the master, in seconds.
    base_lag: f32,
    slow_since: Option<i64>,
    down_since: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct SimFleet {
    fleet: FleetConfig,
    sim: SimConfig,
    rng: SimRng,
    epoch: DateTime<Utc>,
    /// Virtual seconds since `epoch` of the newest sample.
    now: i64,
    instances: Vec<SimInstance>,
    endpoint_target: String,
    master_last_heartbeat: i64,
    /// Which of the configured incidents have fired.
    fired: Vec<bool>,
}

impl SimFleet {
    /// Builds the fleet and fills every series with a full history ending at virtual time 0.
    pub fn new(config: &Config, epoch: DateTime<Utc>) -> SimFleet {
        let sim = config.sim.clone();
        let mut rng = SimRng::new(sim.seed);
        let image_id = rng.ec2_id("ami");
        let subnets: Vec<String> = sim.zones.iter().map(|_| rng.ec2_id("subnet")).collect();
        let sg = rng.ec2_id("sg");
        let zone = |i: usize| {
            (
                format!("{}{}", config.fleet.region, sim.zones[i % sim.zones.len()]),
                i % sim.zones.len(),
            )
        };
        let history = sim.history;
        let mut instances = Vec::new();
        let make = |rng: &mut SimRng, name: String, role: Role, zi: usize, n: usize| {
            let (az, zidx) = zone(zi);
            let db = role != Role::Web;
            let id = rng.ec2_id("i");
            let mut volumes = vec![Volume {
                id: rng.ec2_id("vol"),
                device: "/dev/xvda".into(),
                size_gib: 16,
                sole_copy: false,
            }];
            if db {
                volumes.push(Volume {
                    id: rng.ec2_id("vol"),
                    device: "/dev/xvdf".into(),
                    size_gib: 500,
                    sole_copy: role == Role::DbMaster,
                });
            }
            let inst = Instance {
                id,
                name: name.clone(),
                role,
                az,
                state: InstanceState::Running,
                image_id: image_id.clone(),
                launch: LaunchParams {
                    instance_type: if db {
                        sim.db_instance_type.clone()
                    } else {
                        sim.web_instance_type.clone()
                    },
                    subnet_id: subnets[zidx].clone(),
                    security_groups: vec![sg.clone()],
                    key_name: Some("ops".into()),
                    user_data: format!("role={role}"),
                },
                volumes,
                private_ip: format!("10.0.{}.{}", zidx, 10 + n),
                health: Health {
                    checks: StatusChecks::OK,
                    cpu: TimeSeries::new(history),
                    p50_ms: TimeSeries::new(history),
                    p99_ms: TimeSeries::new(history),
                },
                target: (role == Role::Web).then_some(TargetHealth::Healthy),
                db: db.then(|| DbStatus {
                    heartbeat_age_secs: 0.0,
                    lag_history: TimeSeries::new(history),
                    io_thread_running: true,
                    sql_thread_running: true,
                    binlog_enabled: true,
                    no_promote: false,
                    source_id: None,
                    running: true,
                    read_only: role == Role::DbReplica,
                }),
                tags: [
                    ("Name".to_string(), name.clone()),
                    (
                        crate::provider::call::TAG_FLEET.to_string(),
                        config.fleet.name.clone(),
                    ),
                    (
                        crate::provider::call::TAG_ROLE.to_string(),
                        role.as_str().to_string(),
                    ),
                ]
                .into_iter()
                .collect(),
            };
            let (cpu, p50, p99) = if db {
                (30.0, 1.5, 8.0)
            } else {
                (25.0, 45.0, 120.0)
            };
            SimInstance {
                inst,
                base_cpu: cpu * (1.0 + 0.2 * rng.signed()),
                base_p50: p50 * (1.0 + 0.1 * rng.signed()),
                base_p99: p99 * (1.0 + 0.1 * rng.signed()),
                base_lag: 0.0,
                slow_since: None,
                down_since: None,
            }
        };
        for (i, name) in sim_web_names(sim.web_servers).enumerate() {
            let s = make(&mut rng, name, Role::Web, i, i);
            instances.push(s);
        }
        let master = make(&mut rng, "db-master".into(), Role::DbMaster, 0, 100);
        let master_id = master.inst.id.clone();
        instances.push(master);
        for r in 1..=sim.replicas {
            let mut s = make(
                &mut rng,
                format!("db-replica-{r}"),
                Role::DbReplica,
                r,
                100 + r,
            );
            // The first replica keeps up; later ones trail further, as replicas on busier or
            // farther hosts do, so ranking them for promotion has something to decide.
            s.base_lag = 0.3 + 3.5 * (r as f32 - 1.0);
            if let Some(db) = s.inst.db.as_mut() {
                db.source_id = Some(master_id.clone());
            }
            instances.push(s);
        }
        let fired = vec![false; sim.incidents.len()];
        let interval = i64::from(sim.sample_interval_secs);
        let mut fleet = SimFleet {
            fleet: config.fleet.clone(),
            sim,
            rng,
            epoch,
            now: -(history as i64) * interval,
            instances,
            endpoint_target: master_id,
            master_last_heartbeat: 0,
            fired,
        };
        fleet.master_last_heartbeat = fleet.now;
        for _ in 0..history {
            fleet.now += interval;
            fleet.sample();
        }
        fleet
    }

    pub fn interval(&self) -> i64 {
        i64::from(self.sim.sample_interval_secs)
    }

    /// Virtual seconds since start of the newest sample.
    pub fn now_secs(&self) -> i64 {
        self.now
    }

    /// Steps the fleet sample by sample up to virtual time `t` (seconds since start).
    pub fn advance_to(&mut self, t: f64) {
        while (self.now + self.interval()) as f64 <= t {
            self.now += self.interval();
            self.fire_due_incidents();
            self.sample();
        }
    }

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

    /// Starts an incident now. `target` names the web server for slow-web.
    pub fn inject(&mut self, kind: IncidentKind, target: Option<&str>) -> Result<(), String> {
        let now = self.now;
        match kind {
            IncidentKind::SlowWeb => {
                let name = target.ok_or("slow-web needs the name of a web server")?;
                let s = self
                    .instances
                    .iter_mut()
                    .find(|s| s.inst.name == name && s.inst.role == Role::Web)
                    .ok_or_else(|| {
                        format!("no web server named `{name}` in the simulated fleet")
                    })?;
                s.slow_since.get_or_insert(now);
            }
            IncidentKind::MasterDown => {
                let s = self
                    .instances
                    .iter_mut()
                    .find(|s| s.inst.role == Role::DbMaster)
                    .ok_or("the simulated fleet has no master")?;
                s.down_since.get_or_insert(now);
            }
        }
        Ok(())
    }

    fn fire_due_incidents(&mut self) {
        for i in 0..self.sim.incidents.len() {
            let inc = &self.sim.incidents[i];
            if !self.fired[i] && inc.at_secs as i64 <= self.now {
                let (kind, target) = (inc.kind, inc.target.clone());
                self.fired[i] = true;
                // Targets were checked against the topology when the config was loaded.
                if let Err(e) = self.inject(kind, target.as_deref()) {
                    tracing::warn!("simulated incident not injected: {e}");
                }
            }
        }
    }

    fn sample(&mut self) {
        let now = self.now;
        // The simulated day starts at SIM_DAY_START_HOUR whatever the wall clock says, so the
        // same seed gives the same metrics at any time of day.
        let hour = SIM_DAY_START_HOUR + now as f32 / 3600.0;
        // Busiest mid-afternoon, quietest before dawn.
        let diurnal = 1.0 + 0.2 * ((hour - 9.0) / 24.0 * std::f32::consts::TAU).sin();
        let master_down = self
            .instances
            .iter()
            .any(|s| s.inst.role == Role::DbMaster && s.down_since.is_some());
        if !master_down {
            self.master_last_heartbeat = now;
        }
        let rng = &mut self.rng;
        for s in &mut self.instances {
            let spike = if rng.unit() < SPIKE_CHANCE {
                2.0 + 2.0 * rng.unit()
            } else {
                1.0
            };
            let mut cpu = s.base_cpu * diurnal * (1.0 + 0.1 * rng.signed());
            let mut p50 = s.base_p50 * diurnal * (1.0 + 0.08 * rng.signed());
            let mut p99 = s.base_p99 * diurnal * (1.0 + 0.12 * rng.signed()) * spike;
            if let Some(since) = s.slow_since {
                let ramp = ((now - since) as f32 / SLOW_RAMP_SECS).clamp(0.0, 1.0);
                p99 *= 1.0 + ramp * (SLOW_FACTOR - 1.0);
                p50 *= 1.0 + ramp * 1.5;
            }
            let down = s.down_since.is_some();
            if down {
                // A hung master reports nothing useful: no latency, almost no CPU.
                cpu = 1.0 + rng.unit();
                p50 = f32::NAN;
                p99 = f32::NAN;
                s.inst.health.checks = StatusChecks {
                    system: CheckStatus::Ok,
                    instance: CheckStatus::Impaired,
                };
            }
            s.inst.health.cpu.push(cpu.clamp(0.0, 100.0));
            s.inst.health.p50_ms.push(p50);
            s.inst.health.p99_ms.push(p99);
            if let Some(db) = s.inst.db.as_mut() {
                let silence = (now - self.master_last_heartbeat) as f32;
                db.heartbeat_age_secs = match s.inst.role {
                    Role::DbMaster => silence + 0.5 * rng.unit(),
                    // While the master is down a replica keeps what it had received; its lag
                    // grows with the master's silence from where it stood.
                    _ => silence + s.base_lag * (1.0 + 0.5 * rng.signed()).max(0.05),
                };
                db.io_thread_running = !master_down;
                db.lag_history.push(db.heartbeat_age_secs);
            }
        }
    }

    /// Applies one side-effecting call at the current virtual time.
    pub fn apply(
        &mut self,
        call: &crate::provider::call::ProviderCall,
    ) -> Result<crate::provider::call::CallOutcome, String> {
        Err(format!(
            "{} is not supported by the simulator",
            call.operation()
        ))
    }

    /// Ids of instances tagged with this run and step.
    pub fn find_created(&self, run_id: &str, step: usize) -> Vec<String> {
        let step = step.to_string();
        self.instances
            .iter()
            .filter(|s| {
                s.inst
                    .tags
                    .get(crate::provider::call::TAG_RUN)
                    .is_some_and(|r| r == run_id)
                    && s.inst.tags.get(crate::provider::call::TAG_STEP) == Some(&step)
            })
            .map(|s| s.inst.id.clone())
            .collect()
    }

    pub fn snapshot(&self) -> FleetSnapshot {
        FleetSnapshot {
            fleet: self.fleet.name.clone(),
            provider: "sim".into(),
            region: self.fleet.region.clone(),
            taken_at: self.epoch + ChronoDuration::seconds(self.now),
            sample_interval_secs: self.sim.sample_interval_secs,
            target_group: self.fleet.target_group.clone(),
            db_endpoint: Some(DbEndpoint {
                name: self.fleet.db_endpoint.clone(),
                target_id: self.endpoint_target.clone(),
            }),
            instances: self.instances.iter().map(|s| s.inst.clone()).collect(),
            free_volumes: Vec::new(),
        }
    }
}
