//! What a step will do, decided against the fleet as it is now: the exact provider calls, the
//! guards that refuse unsafe moves, and what the operator must confirm. Pure. One function per
//! action: `web` for the web tier's, `db` for the database's; `guards` for the guards.

mod db;
mod guards;
mod promote;
mod web;

use serde::{Deserialize, Serialize};

use super::model::{ActionKind, Confirm, Step, WaitKind};
use super::overrides::Override;
use super::setup::run_salt;
use crate::domain::call::{ProviderCall, TAG_FLEET, TAG_ROLE, TAG_RUN, TAG_STEP};
use crate::domain::lease::lease_key;
use crate::domain::{FleetSnapshot, Instance, Role};

/// Names under which steps record the ids later steps act on.
pub mod var {
    pub const REPLACEMENT: &str = "replacement_id";
    pub const VOLUME: &str = "volume_id";
    pub const DEVICE: &str = "device";
    pub const NEW_MASTER: &str = "new_master_id";
    pub const NEW_REPLICA: &str = "new_replica_id";
    /// Set when the data volume was detached by force (its database needs crash recovery).
    pub const FORCED_DETACH: &str = "forced_detach";
    /// The operator who declared the old master fenced by other means, when dake could not.
    pub const FENCED_BY_OPERATOR: &str = "fenced_by_operator";
    /// The lease of the run's tier, once taken.
    pub const LEASE: &str = "lease";
    /// The run whose stale lease the operator named to take over.
    pub const TAKE_OVER_LEASE: &str = "lease.take-over";
}

/// Everything a step needs to know about its run to plan itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunContext {
    pub run_id: String,
    pub fleet: String,
    pub target_id: String,
    pub target_name: String,
    pub target_group: String,
    pub db_endpoint: String,
    pub replica_max_lag_secs: f32,
    /// A master whose heartbeat is older than this is down.
    pub master_heartbeat_secs: f32,
    /// p99 below this multiple of the peers' median for this long counts as recovered.
    pub slow_web_clear_factor: f32,
    pub slow_web_window_secs: u32,
    /// Quarantine (stop and tag) instead of terminating.
    pub quarantine: bool,
    /// Refusals the operator lifted when the run started (each given later is in `vars`).
    #[serde(default)]
    pub overrides: std::collections::BTreeSet<Override>,
    /// Where a promoted master proves it takes writes (`[database]`).
    #[serde(default = "default_heartbeat_table")]
    pub heartbeat_table: String,
    #[serde(default = "yes")]
    pub heartbeat_utc: bool,
    /// Who runs it (`user@host`), as the lease of its tier records.
    #[serde(default)]
    pub operator: String,
    #[serde(default = "lease_stale_secs")]
    pub lease_stale_secs: u64,
    /// Another run's failover of the tier less than this long ago refuses the lease.
    #[serde(default = "anti_flap_secs")]
    pub anti_flap_secs: u64,
    pub vars: std::collections::BTreeMap<String, String>,
}

fn default_heartbeat_table() -> String {
    "dake.heartbeat".into()
}

fn yes() -> bool {
    true
}

fn lease_stale_secs() -> u64 {
    120
}

fn anti_flap_secs() -> u64 {
    1800
}

impl RunContext {
    /// Whether the operator lifted the refusal `o`, at the start or since.
    pub fn allows(&self, o: Override) -> bool {
        self.overrides.contains(&o) || self.vars.contains_key(&o.var())
    }

    pub fn get(&self, name: &str) -> Result<&str, String> {
        self.vars
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| say!("an earlier step did not record `{name}`"))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub calls: Vec<ProviderCall>,
    /// Said before the step runs; never blocks it.
    pub warnings: Vec<String>,
    /// What the step found, for steps that only look (compare, confirm, rank).
    pub finding: Option<String>,
    /// Ids this step decides on (not ones it creates: those come back from the calls).
    pub decided: Vec<(String, String)>,
    pub confirm: Confirm,
    /// For `Confirm::TypeId`: the id whose end must be typed (`confirm::confirm_suffix`).
    pub confirm_id: Option<String>,
    /// Which var a created resource's id is stored in.
    pub creates_var: Option<String>,
    /// How long the step's wait may take, when its data or its resource needs longer than
    /// the step's own timeout, and why.
    #[serde(default)]
    pub wait_secs: Option<u64>,
    #[serde(default)]
    pub wait_why: Option<String>,
}

/// What an action plans against: the run, the fleet now, and the step's number.
struct Planning<'a> {
    ctx: &'a RunContext,
    snap: &'a FleetSnapshot,
    step: usize,
}

impl<'a> Planning<'a> {
    fn find(&self, id: &str) -> Result<&'a Instance, String> {
        self.snap
            .find(id)
            .ok_or_else(|| say!("{id} is not in the fleet any more"))
    }

    /// The instance the run is on.
    fn target(&self) -> Result<&'a Instance, String> {
        self.find(&self.ctx.target_id)
    }

    /// The instance an earlier step recorded under `var`.
    fn recorded(&self, var: &str) -> Result<&'a Instance, String> {
        self.find(self.ctx.get(var)?)
    }

    /// Launches one instance like `template` (same image, type, subnet, groups, key), named
    /// `name` and booting as `role`, tagged with this run and step.
    fn launch_like(&self, template: &Instance, name: String, role: Role) -> ProviderCall {
        let (ctx, step) = (self.ctx, self.step);
        ProviderCall::RunInstances {
            name: name.clone(),
            role,
            image_id: template.image_id.clone(),
            instance_type: template.launch.instance_type.clone(),
            subnet_id: template.launch.subnet_id.clone(),
            az: template.az.clone(),
            security_groups: template.launch.security_groups.clone(),
            key_name: template.launch.key_name.clone(),
            // The role is a boot parameter of the one image, never a different image.
            user_data: format!("role={role}"),
            tags: vec![
                ("Name".into(), name),
                (TAG_FLEET.into(), ctx.fleet.clone()),
                (TAG_ROLE.into(), role.as_str().into()),
                (TAG_RUN.into(), ctx.run_id.clone()),
                (TAG_STEP.into(), step.to_string()),
            ],
            client_token: format!("{}-{step}", ctx.run_id),
            template_id: template.id.clone(),
        }
    }

    /// A short, stable suffix for names of instances a run creates.
    fn name_suffix(&self) -> &'a str {
        run_salt(&self.ctx.run_id)
    }
}

/// Room a drain is given beyond the target group's own deregistration delay.
const DRAIN_MARGIN_SECS: u64 = 60;

/// A wait as long as what it watches needs: the target group's own deregistration delay for
/// a drain; for what the database tier shows, the step's timeout plus how late that state
/// reaches dake (CloudWatch's minute and publishing delay on the metrics source). `None` when
/// the step's own timeout is enough.
fn wait_timeout(step: &Step, snap: &FleetSnapshot) -> Option<(u64, String)> {
    let wait = step.wait?;
    let (secs, why) = match wait {
        WaitKind::TargetDrained => {
            let delay = u64::from(snap.deregistration_delay_secs?);
            (
                delay + DRAIN_MARGIN_SECS,
                say!("the target group's deregistration delay is {delay} s"),
            )
        }
        WaitKind::DbAnswering
        | WaitKind::DbWritable
        | WaitKind::MasterAnswering
        | WaitKind::MasterFenced
        | WaitKind::RelayLogApplied
        | WaitKind::ReplicasFollowing
        | WaitKind::ReplicaFollowing => {
            let late = u64::from(snap.db_data_latency_secs);
            (
                step.timeout_secs + late,
                say!("the database's state reaches dake up to {late} s late"),
            )
        }
        _ => return None,
    };
    (secs > step.timeout_secs).then_some((secs, why))
}

/// Plans `step` (number `index` in its playbook) against `snap`. `Err` is a refusal, with the
/// reason; nothing has been done.
pub fn plan(
    step: &Step,
    index: usize,
    ctx: &RunContext,
    snap: &FleetSnapshot,
) -> Result<Plan, String> {
    let mut p = Plan {
        calls: Vec::new(),
        warnings: Vec::new(),
        finding: None,
        decided: Vec::new(),
        confirm: step.confirmation(),
        confirm_id: None,
        creates_var: None,
        wait_secs: None,
        wait_why: None,
    };
    if let Some((secs, why)) = wait_timeout(step, snap) {
        p.wait_secs = Some(secs);
        p.wait_why = Some(why);
    }
    let planning = Planning {
        ctx,
        snap,
        step: index,
    };
    for guard in &step.guards {
        guards::check(*guard, &planning, &mut p)?;
    }
    let action: fn(&Planning, &mut Plan) -> Result<(), String> = match step.action {
        ActionKind::ComparePeers => web::compare_peers,
        ActionKind::RestartApp => web::restart_app,
        ActionKind::LaunchReplacement => web::launch_replacement,
        ActionKind::RegisterTarget => web::register_target,
        ActionKind::DeregisterTarget => web::deregister_target,
        ActionKind::DisposeInstance => web::dispose_instance,
        ActionKind::ConfirmMasterDown => db::confirm_master_down,
        ActionKind::RebootInstance => db::reboot_instance,
        ActionKind::StopInstance => db::stop_instance,
        ActionKind::DetachVolume => db::detach_volume,
        ActionKind::LaunchDbInstance => db::launch_db_instance,
        ActionKind::AttachVolume => db::attach_volume,
        ActionKind::StartDatabase => db::start_database,
        ActionKind::SwitchEndpoint => db::switch_endpoint,
        ActionKind::RepointReplicas => promote::repoint_replicas,
        ActionKind::RankReplicas => db::rank_replicas,
        ActionKind::FenceMaster => promote::fence_master,
        ActionKind::CatchUp => promote::catch_up,
        ActionKind::PromoteReplica => promote::promote_replica,
        ActionKind::RetireOldMaster => promote::retire_old_master,
        ActionKind::LaunchReplica => db::launch_replica,
        ActionKind::NotifyApp => db::notify_app,
    };
    action(&planning, &mut p)?;
    // One failover of a tier at a time, whoever runs it: the run's first destructive call is
    // preceded by taking its tier's lease.
    if step.destructive && !p.calls.is_empty() && !ctx.vars.contains_key(var::LEASE) {
        let role = planning.target()?.role;
        p.calls.insert(
            0,
            ProviderCall::TakeLease {
                key: lease_key(&ctx.fleet, role),
                run_id: ctx.run_id.clone(),
                operator: ctx.operator.clone(),
                take_over: ctx.vars.get(var::TAKE_OVER_LEASE).cloned(),
                stale_secs: ctx.lease_stale_secs,
                anti_flap_secs: ctx.anti_flap_secs,
                flapping_allowed: ctx.allows(Override::AntiFlapping),
            },
        );
    }
    Ok(p)
}
