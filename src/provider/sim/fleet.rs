//! The simulated fleet: deterministic for a seed, stepped on a virtual clock in fixed sample
//! intervals, so the same seed and the same virtual time always give the same snapshot.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::{Deserialize, Serialize};

use super::actions::{Scheduled, SimVolume};
use super::rng::SimRng;
use super::server::{SimServer, Tx};
use crate::config::{Config, DbSource, FleetConfig, SimConfig, sim_web_names};
use crate::domain::call::{TAG_FLEET, TAG_ROLE, TAG_RUN, TAG_STEP};
use crate::domain::{
    CheckStatus, DbEndpoint, DbStatus, FleetSnapshot, Health, Instance, InstanceState, LagSource,
    LaunchParams, Role, StatusChecks, TargetHealth, TimeSeries, Volume,
};

/// How long (virtual seconds) a slow server takes to reach its full slowdown.
pub(super) const SLOW_RAMP_SECS: f32 = 30.0;
/// A slow server ends up this many times slower than it should be.
pub(super) const SLOW_FACTOR: f32 = 5.5;
/// Hour of the simulated day at virtual time 0: a busy afternoon.
const SIM_DAY_START_HOUR: f32 = 14.0;
/// Chance per sample of a one-off latency spike that detection must shrug off.
const SPIKE_CHANCE: f32 = 0.02;

/// Healthy (cpu %, p50 ms, p99 ms) before per-instance variation: a database answers its
/// queries far faster than a web server renders a page.
fn baseline(role: Role) -> (f32, f32, f32) {
    if role == Role::Web {
        (25.0, 45.0, 120.0)
    } else {
        (30.0, 1.5, 8.0)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SimInstance {
    pub(super) inst: Instance,
    pub(super) base_cpu: f32,
    pub(super) base_p50: f32,
    pub(super) base_p99: f32,
    /// A replica's usual distance behind the master, in seconds: how late its IO thread
    /// receives what the master wrote.
    pub(super) base_lag: f32,
    pub(super) slow_since: Option<i64>,
    /// When a slow server's latency clears by itself (a noisy neighbour moving on).
    #[serde(default)]
    pub(super) slow_until: Option<i64>,
    pub(super) down_since: Option<i64>,
    /// A replica falling behind: since when, and how far behind it ends, in seconds.
    #[serde(default)]
    pub(super) lag_growth: Option<(i64, f32)>,
    /// Its database server, on a database host.
    pub(super) server: Option<SimServer>,
}

/// Empty metric series of `history` samples, with these status checks.
pub(super) fn fresh_health(history: usize, checks: StatusChecks) -> Health {
    Health {
        checks,
        cpu: TimeSeries::new(history),
        p50_ms: TimeSeries::new(history),
        p99_ms: TimeSeries::new(history),
    }
}

/// A database's replication facts when its instance first appears: `up` for one whose MySQL
/// runs and replicates already, not for one still to boot and be started.
pub(super) fn fresh_db(history: usize, role: Role, up: bool) -> DbStatus {
    DbStatus {
        heartbeat_age_secs: 0.0,
        lag_history: TimeSeries::new(history),
        io_thread_running: up,
        sql_thread_running: up,
        binlog_enabled: true,
        no_promote: false,
        source_id: None,
        running: up,
        read_only: role == Role::DbReplica,
        lag_source: LagSource::Simulated,
        server: None,
    }
}

impl SimInstance {
    /// `inst` with its own healthy baseline (the role's, varied by the fleet's draws), neither
    /// slow nor down, with its database server if it has one.
    pub(super) fn new(inst: Instance, rng: &mut SimRng, server: Option<SimServer>) -> SimInstance {
        let (cpu, p50, p99) = baseline(inst.role);
        SimInstance {
            base_cpu: cpu * (1.0 + 0.2 * rng.signed()),
            base_p50: p50 * (1.0 + 0.1 * rng.signed()),
            base_p99: p99 * (1.0 + 0.1 * rng.signed()),
            base_lag: 0.0,
            slow_since: None,
            slow_until: None,
            down_since: None,
            lag_growth: None,
            server,
            inst,
        }
    }

    /// MySQL runs and answers: the instance is up, not hung, and the database started.
    pub(super) fn answers(&self) -> bool {
        self.inst.state == InstanceState::Running
            && self.down_since.is_none()
            && self.inst.db.as_ref().is_some_and(|d| d.running)
    }

    pub(super) fn writes_heartbeat(&self) -> bool {
        self.answers() && self.inst.db.as_ref().is_some_and(|d| !d.read_only)
    }
}

/// Serialisable whole (see `SimProvider::with_state_file`): a drill fleet outlives the console
/// process that runs it, and carries on exactly where it stopped.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimFleet {
    pub(super) fleet: FleetConfig,
    pub(super) sim: SimConfig,
    pub(super) rng: SimRng,
    epoch: DateTime<Utc>,
    /// Virtual seconds since `epoch` of the newest sample.
    pub(super) now: i64,
    pub(super) instances: Vec<SimInstance>,
    pub(super) endpoint_target: String,
    /// Which of the configured incidents have fired.
    pub(super) fired: Vec<bool>,
    /// Which of the configured database traps have been sprung.
    pub(super) sprung: Vec<bool>,
    /// How long ago an injected incident started: long enough for detection to see it.
    pub(super) present_secs: i64,
    /// The one image every role boots from.
    pub(super) image_id: String,
    /// (availability zone, subnet id), one per configured zone, in zone order.
    pub(super) subnets: Vec<(String, String)>,
    pub(super) security_group: String,
    pub(super) free_volumes: Vec<SimVolume>,
    /// Transitions started by calls, completed by the sampling step once due.
    pub(super) scheduled: Vec<Scheduled>,
    /// Calls answered so far: the request id counter.
    pub(super) requests: u64,
    /// Instances launched at run time, for their private addresses.
    pub(super) launched: u32,
    /// RunInstances client token → the instance it launched, so a retried launch is not a
    /// second instance.
    pub(super) client_tokens: BTreeMap<String, String>,
    /// Instance ids the application was told about, oldest first.
    pub(super) notified: Vec<String>,
    /// (operation, message): the next call of that operation fails with that message.
    pub(super) fail_next: Vec<(String, String)>,
    /// Leases of the fleet's tiers, when the fleet is driven without its provider.
    #[serde(default)]
    pub(super) leases: BTreeMap<String, crate::domain::lease::LeaseHolder>,
    /// How much longer than usual a launch takes to boot (a slow-boot fault).
    #[serde(default)]
    pub(super) boot_delay_secs: i64,
    /// Each tier's last failover, beside its lease.
    #[serde(default)]
    pub(super) failovers: BTreeMap<String, crate::domain::lease::FailoverRecord>,
}

impl SimFleet {
    /// Builds the fleet and fills every series with a full history ending at virtual time 0.
    pub fn new(config: &Config, epoch: DateTime<Utc>) -> SimFleet {
        let sim = config.sim.clone();
        let mut rng = SimRng::new(sim.seed);
        let image_id = rng.ec2_id("ami");
        let subnet_ids: Vec<String> = sim.zones.iter().map(|_| rng.ec2_id("subnet")).collect();
        let security_group = rng.ec2_id("sg");
        let subnets = sim
            .zones
            .iter()
            .map(|z| format!("{}{z}", config.fleet.region))
            .zip(subnet_ids)
            .collect();
        let (history, interval) = (sim.history, i64::from(sim.sample_interval_secs));
        let mut fleet = SimFleet {
            fleet: config.fleet.clone(),
            fired: vec![false; sim.incidents.len()],
            sprung: vec![false; sim.faults.len()],
            sim,
            rng,
            epoch,
            now: -(history as i64) * interval,
            instances: Vec::new(),
            endpoint_target: String::new(),
            present_secs: super::incidents::present_secs(config),
            image_id,
            subnets,
            security_group,
            free_volumes: Vec::new(),
            scheduled: Vec::new(),
            requests: 0,
            launched: 0,
            client_tokens: BTreeMap::new(),
            notified: Vec::new(),
            fail_next: Vec::new(),
            leases: BTreeMap::new(),
            failovers: BTreeMap::new(),
            boot_delay_secs: 0,
        };
        for (i, name) in sim_web_names(fleet.sim.web_servers).enumerate() {
            fleet.add_running(name, Role::Web, i, i);
        }
        let master_id = fleet.add_running("db-master".into(), Role::DbMaster, 0, 100);
        for r in 1..=fleet.sim.replicas {
            fleet.add_running(format!("db-replica-{r}"), Role::DbReplica, r, 100 + r);
            let s = fleet
                .instances
                .last_mut()
                .expect("a replica was just added");
            // The first replica keeps up; later ones trail further, as replicas on busier or
            // farther hosts do, so ranking them for promotion has something to decide.
            s.base_lag = 0.3 + 3.5 * (r as f32 - 1.0);
            if let Some(db) = s.inst.db.as_mut() {
                db.source_id = Some(master_id.clone());
            }
        }
        fleet.endpoint_target = master_id;
        for _ in 0..history {
            fleet.now += interval;
            fleet.sample();
        }
        fleet
    }

    /// One instance of the fleet as it stands before the drill: running and healthy, in zone
    /// `zone` (round-robin over the configured zones), at host address `host`. Its id.
    fn add_running(&mut self, name: String, role: Role, zone: usize, host: usize) -> String {
        let zidx = zone % self.subnets.len();
        let (az, subnet_id) = self.subnets[zidx].clone();
        let db = role != Role::Web;
        let id = self.rng.ec2_id("i");
        let mut volumes = vec![Volume {
            id: self.rng.ec2_id("vol"),
            device: "/dev/xvda".into(),
            size_gib: 16,
            sole_copy: false,
        }];
        if db {
            volumes.push(Volume {
                id: self.rng.ec2_id("vol"),
                device: "/dev/xvdf".into(),
                size_gib: 500,
                sole_copy: role == Role::DbMaster,
            });
        }
        let history = self.sim.history;
        let inst = Instance {
            id: id.clone(),
            name: name.clone(),
            role,
            az,
            state: InstanceState::Running,
            image_id: self.image_id.clone(),
            launch: LaunchParams {
                instance_type: if db {
                    self.sim.db_instance_type.clone()
                } else {
                    self.sim.web_instance_type.clone()
                },
                subnet_id,
                security_groups: vec![self.security_group.clone()],
                key_name: Some("ops".into()),
                user_data: format!("role={role}"),
            },
            volumes,
            private_ip: format!("10.0.{zidx}.{}", 10 + host),
            health: fresh_health(history, StatusChecks::OK),
            target: (role == Role::Web).then_some(TargetHealth::Healthy),
            db: db.then(|| fresh_db(history, role, true)),
            tags: [
                ("Name".to_string(), name),
                (TAG_FLEET.to_string(), self.fleet.name.clone()),
                (TAG_ROLE.to_string(), role.as_str().to_string()),
            ]
            .into_iter()
            .collect(),
        };
        // The master's first data, which every replica already holds.
        let server = db.then(|| {
            let server_id = 1 + self.instances.iter().filter(|s| s.server.is_some()).count();
            SimServer::new(
                server_id as u32,
                Tx::first(1, self.now),
                role == Role::DbReplica,
            )
        });
        let s = SimInstance::new(inst, &mut self.rng, server);
        self.instances.push(s);
        id
    }

    /// Wall time of virtual second 0.
    pub fn epoch(&self) -> DateTime<Utc> {
        self.epoch
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
            self.spring_due_faults();
            self.complete_due();
            self.sample();
        }
    }

    fn sample(&mut self) {
        let now = self.now;
        // The simulated day starts at SIM_DAY_START_HOUR whatever the wall clock says, so the
        // same seed gives the same metrics at any time of day.
        let hour = SIM_DAY_START_HOUR + now as f32 / 3600.0;
        // Busiest mid-afternoon, quietest before dawn.
        let diurnal = 1.0 + 0.2 * ((hour - 9.0) / 24.0 * std::f32::consts::TAU).sin();
        let rng = &mut self.rng;
        let mut delays = Vec::with_capacity(self.instances.len());
        for s in &mut self.instances {
            // Draws do not depend on the instance's state, so a call on one instance never
            // shifts the random numbers the rest of the fleet sees.
            let spike = if rng.unit() < SPIKE_CHANCE {
                2.0 + 2.0 * rng.unit()
            } else {
                1.0
            };
            let mut cpu = s.base_cpu * diurnal * (1.0 + 0.1 * rng.signed());
            let mut p50 = s.base_p50 * diurnal * (1.0 + 0.08 * rng.signed());
            let mut p99 = s.base_p99 * diurnal * (1.0 + 0.12 * rng.signed()) * spike;
            if s.slow_until.is_some_and(|until| now >= until) {
                s.slow_since = None;
                s.slow_until = None;
            }
            if let Some(since) = s.slow_since {
                let ramp = ((now - since) as f32 / SLOW_RAMP_SECS).clamp(0.0, 1.0);
                p99 *= 1.0 + ramp * (SLOW_FACTOR - 1.0);
                p50 *= 1.0 + ramp * 1.5;
            }
            let running = s.inst.state == InstanceState::Running;
            if s.down_since.is_some() {
                let idle = 1.0 + rng.unit();
                if running {
                    // A hung master reports nothing useful: no latency, almost no CPU.
                    cpu = idle;
                    p50 = f32::NAN;
                    p99 = f32::NAN;
                    s.inst.health.checks = StatusChecks {
                        system: CheckStatus::Ok,
                        instance: CheckStatus::Impaired,
                    };
                }
            }
            if s.inst.db.as_ref().is_some_and(|d| !d.running) {
                // No database, no queries to time.
                p50 = f32::NAN;
                p99 = f32::NAN;
            }
            if !running {
                cpu = f32::NAN;
                p50 = f32::NAN;
                p99 = f32::NAN;
            }
            // A launch that has not booted yet has no datapoints at all: its series start
            // when it does, and stay aligned with its peers' newest samples from then on.
            if s.inst.state != InstanceState::Pending {
                s.inst.health.cpu.push(cpu.clamp(0.0, 100.0));
                s.inst.health.p50_ms.push(p50);
                s.inst.health.p99_ms.push(p99);
            }
            // How late the master's own beat is at the sample; how late a replica receives.
            delays.push(match (&s.inst.db, s.inst.role) {
                (None, _) => 0.0,
                (Some(_), Role::DbMaster) => 0.5 * rng.unit(),
                (Some(_), _) => {
                    let behind = s
                        .lag_growth
                        .map_or(0.0, |(since, most)| ((now - since) as f32).clamp(0.0, most));
                    s.base_lag * (1.0 + 0.5 * rng.signed()).max(0.05) + behind
                }
            });
        }
        self.replicate(now, &delays);
    }

    /// The state of any instance the fleet still has, listed or not (a retired master).
    pub fn instance_state(&self, id: &str) -> Option<InstanceState> {
        self.instances
            .iter()
            .find(|s| s.inst.id == id)
            .map(|s| s.inst.state)
    }

    /// Ids of instances tagged with this run and step.
    pub fn find_created(&self, run_id: &str, step: usize) -> Vec<String> {
        let step = step.to_string();
        self.instances
            .iter()
            .filter(|s| {
                s.inst.tags.get(TAG_RUN).is_some_and(|r| r == run_id)
                    && s.inst.tags.get(TAG_STEP) == Some(&step)
            })
            .map(|s| s.inst.id.clone())
            .collect()
    }

    /// The fleet's instances as a snapshot shows them (`retired`: the masters a run retired,
    /// whose role tag names no role: as on AWS, not the fleet's any more), their servers read
    /// as dake reads them.
    fn listed(&self, retired: bool) -> Vec<Instance> {
        self.instances
            .iter()
            .filter(|s| {
                let role = s.inst.tags.get(TAG_ROLE);
                role.is_some_and(|r| r.parse::<Role>().is_err()) == retired
            })
            .map(|s| {
                let mut inst = s.inst.clone();
                if let Some(db) = inst.db.as_mut()
                    && (retired || self.sim.database_source == DbSource::Mysql)
                {
                    db.server = self.facts(s);
                }
                inst
            })
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
            // As on AWS, an instance whose role tag names no role is not the fleet's any more
            // (a retired master).
            instances: self.listed(false),
            free_volumes: self.free_volumes.iter().map(|v| v.vol.clone()).collect(),
            api_calls: Default::default(),
            unread: Default::default(),
            db_data_latency_secs: 0,
            deregistration_delay_secs: Some(super::actions::DRAIN_SECS as u32),
            retired: self.listed(true),
        }
    }
}
