//! EC2's view of an instance turned into dake's. Pure, so it is tested without a server.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    Instance as Ec2Instance, InstanceStateName, InstanceStatus, StatusType, SummaryStatus,
};
use chrono::Utc;

use std::collections::HashMap;

use super::heartbeat::{self, Lineage, Published};
use super::metrics::{self, FleetPoints, Metric};
use crate::domain::call::TAG_ROLE;
use crate::domain::{
    CheckStatus, DbEndpoint, FleetSnapshot, FreeVolume, Health, Instance, InstanceState,
    LaunchParams, Role, StatusChecks, TargetHealth, TimeSeries, Volume,
};

fn state(s: Option<&InstanceStateName>) -> InstanceState {
    match s {
        Some(InstanceStateName::Pending) => InstanceState::Pending,
        Some(InstanceStateName::Running) => InstanceState::Running,
        Some(InstanceStateName::Stopping) => InstanceState::Stopping,
        Some(InstanceStateName::Stopped) => InstanceState::Stopped,
        Some(InstanceStateName::ShuttingDown) => InstanceState::ShuttingDown,
        // Unknown future states are treated as gone rather than as healthy.
        _ => InstanceState::Terminated,
    }
}

/// ELBv2's target state; `None` for states that mean "not in this target group".
pub fn target_health(
    s: Option<&aws_sdk_elasticloadbalancingv2::types::TargetHealthStateEnum>,
) -> Option<TargetHealth> {
    use aws_sdk_elasticloadbalancingv2::types::TargetHealthStateEnum as S;
    Some(match s? {
        S::Initial => TargetHealth::Initial,
        S::Healthy => TargetHealth::Healthy,
        S::Draining | S::UnhealthyDraining => TargetHealth::Draining,
        S::Unused => TargetHealth::Unused,
        // Unhealthy, unavailable, and states newer than this build: not serving.
        _ => TargetHealth::Unhealthy,
    })
}

fn check(s: Option<&SummaryStatus>) -> CheckStatus {
    match s {
        Some(SummaryStatus::Ok) => CheckStatus::Ok,
        Some(SummaryStatus::Impaired) => CheckStatus::Impaired,
        Some(SummaryStatus::Initializing) => CheckStatus::Initializing,
        _ => CheckStatus::InsufficientData,
    }
}

fn checks(status: Option<&InstanceStatus>) -> StatusChecks {
    let summary =
        |s: Option<&aws_sdk_ec2::types::InstanceStatusSummary>| check(s.and_then(|s| s.status()));
    match status {
        Some(st) => StatusChecks {
            system: summary(st.system_status()),
            instance: summary(st.instance_status()),
        },
        None => StatusChecks {
            system: CheckStatus::InsufficientData,
            instance: CheckStatus::InsufficientData,
        },
    }
}

fn impaired_detail(status: Option<&InstanceStatus>) -> bool {
    status.is_some_and(|st| {
        [st.system_status(), st.instance_status()]
            .iter()
            .flatten()
            .flat_map(|s| s.details())
            .any(|d| d.status() == Some(&StatusType::Failed))
    })
}

/// Everything one refresh read from the APIs, before it is turned into a snapshot.
pub struct Observed<'a> {
    pub fleet: &'a str,
    pub region: &'a str,
    pub target_group: &'a str,
    pub history: usize,
    pub now: i64,
    pub instances: &'a [Ec2Instance],
    pub statuses: &'a [InstanceStatus],
    /// Target health by instance id; instances not in the target group are absent.
    pub targets: &'a HashMap<String, TargetHealth>,
    /// The DB endpoint's name and its value as read (DNS name, address or instance id).
    pub endpoint: Option<(String, String)>,
    pub free_volumes: Vec<FreeVolume>,
    pub points: &'a FleetPoints,
}

fn tags_of(i: &Ec2Instance) -> BTreeMap<String, String> {
    i.tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

/// The fleet role from `dake:role`, or `None` (logged) when it is missing or not a role.
pub fn role_of(i: &Ec2Instance) -> Option<Role> {
    let id = i.instance_id().unwrap_or("?");
    match i
        .tags()
        .iter()
        .find(|t| t.key() == Some(TAG_ROLE))
        .map(|t| t.value().unwrap_or("").parse())
    {
        Some(Ok(role)) => Some(role),
        other => {
            tracing::warn!("{id}: left out of the fleet: dake:role is {other:?}");
            None
        }
    }
}

/// One fleet member, or `None` when it carries no valid `dake:role` (it is then not acted on).
/// Metrics and replication status are filled in by [`snapshot`].
pub fn instance(
    i: &Ec2Instance,
    status: Option<&InstanceStatus>,
    history: usize,
) -> Option<Instance> {
    let tags = tags_of(i);
    let id = i.instance_id()?.to_string();
    let role = role_of(i)?;
    let root = i.root_device_name().unwrap_or("/dev/xvda");
    let volumes = i
        .block_device_mappings()
        .iter()
        .filter_map(|m| {
            let device = m.device_name()?.to_string();
            let id = m.ebs()?.volume_id()?.to_string();
            // The master's non-root volume holds the only copy of the database.
            let sole_copy = role == Role::DbMaster && device != root;
            Some(Volume {
                id,
                device,
                size_gib: 0,
                sole_copy,
            })
        })
        .collect();
    let mut checks = checks(status);
    if impaired_detail(status) && !checks.any_impaired() {
        checks.instance = CheckStatus::Impaired;
    }
    Some(Instance {
        name: tags.get("Name").cloned().unwrap_or_else(|| id.clone()),
        id,
        role,
        az: i
            .placement()
            .and_then(|p| p.availability_zone())
            .unwrap_or("")
            .to_string(),
        state: state(i.state().and_then(|s| s.name())),
        image_id: i.image_id().unwrap_or("").to_string(),
        launch: LaunchParams {
            instance_type: i
                .instance_type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
            subnet_id: i.subnet_id().unwrap_or("").to_string(),
            security_groups: i
                .security_groups()
                .iter()
                .filter_map(|g| g.group_id().map(String::from))
                .collect(),
            key_name: i.key_name().map(String::from),
            // The role is the boot parameter; the full user data is read when a launch needs it.
            user_data: format!("role={role}"),
        },
        volumes,
        private_ip: i.private_ip_address().unwrap_or("").to_string(),
        health: Health {
            checks,
            cpu: TimeSeries::new(history),
            p50_ms: TimeSeries::new(history),
            p99_ms: TimeSeries::new(history),
        },
        target: None,
        db: None,
        tags,
    })
}

/// The instance an endpoint value names: its private DNS name (a CNAME, trailing dot or
/// not), its private address (an A record or a parameter), or its id.
pub fn endpoint_target<'a>(value: &str, instances: &'a [Ec2Instance]) -> Option<&'a str> {
    let value = value.trim().trim_end_matches('.');
    instances
        .iter()
        .find(|i| {
            i.private_dns_name()
                .is_some_and(|d| !d.is_empty() && d.eq_ignore_ascii_case(value))
                || i.private_ip_address() == Some(value)
                || i.instance_id() == Some(value)
        })
        .and_then(|i| i.instance_id())
}

pub fn snapshot(seen: Observed<'_>) -> FleetSnapshot {
    let status_of = |id: Option<&str>| seen.statuses.iter().find(|s| s.instance_id() == id);
    let mut out: Vec<Instance> = seen
        .instances
        .iter()
        .filter_map(|i| instance(i, status_of(i.instance_id()), seen.history))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    let db_endpoint = seen.endpoint.as_ref().and_then(|(name, value)| {
        Some(DbEndpoint {
            name: name.clone(),
            target_id: endpoint_target(value, seen.instances)?.to_string(),
        })
    });
    let master_id = db_endpoint
        .as_ref()
        .map(|e| e.target_id.clone())
        .or_else(|| {
            out.iter()
                .find(|i| i.role == Role::DbMaster)
                .map(|i| i.id.clone())
        });
    let points = |id: &str, m: Metric| seen.points.get(&(id.to_string(), m));
    let grid = |id: &str, m: Metric| {
        metrics::series(
            points(id, m).map_or(&[][..], |p| p.as_slice()),
            seen.now,
            seen.history,
        )
    };
    let beats = |id: &str| points(id, Metric::Heartbeat);
    let lineage = Lineage::new(
        out.iter()
            .filter(|i| i.role != Role::Web)
            .filter_map(|i| beats(&i.id)),
    );
    let master_silence = master_id
        .as_deref()
        .and_then(|m| heartbeat::silence(beats(m), seen.now))
        .unwrap_or(0);
    for i in &mut out {
        i.target = seen.targets.get(&i.id).copied();
        i.health.cpu = grid(&i.id, Metric::Cpu);
        if i.role == Role::Web {
            i.health.p99_ms = grid(&i.id, Metric::LatencyP99);
            i.health.p50_ms = grid(&i.id, Metric::LatencyP50);
        } else {
            let published = Published {
                role: i.role,
                heartbeat: beats(&i.id),
                read_only: points(&i.id, Metric::ReadOnly),
                tags: &i.tags,
                master_id: master_id.as_deref(),
                master_silence,
            };
            i.db = heartbeat::db_status(published, &lineage, seen.now, seen.history);
        }
    }
    FleetSnapshot {
        fleet: seen.fleet.to_string(),
        provider: "aws".into(),
        region: seen.region.to_string(),
        taken_at: chrono::DateTime::from_timestamp(seen.now, 0).unwrap_or_else(Utc::now),
        sample_interval_secs: metrics::PERIOD_SECS as u32,
        target_group: seen.target_group.to_string(),
        db_endpoint,
        instances: out,
        free_volumes: seen.free_volumes,
        api_calls: Default::default(),
        unread: Default::default(),
        db_data_latency_secs: 0,
        deregistration_delay_secs: None,
        retired: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{
        EbsInstanceBlockDevice, InstanceBlockDeviceMapping, InstanceState as Ec2State,
        InstanceStatusSummary, Placement, Tag,
    };

    fn ec2(id: &str, role: Option<&str>, state: InstanceStateName) -> Ec2Instance {
        let mut tags = vec![Tag::builder().key("Name").value(format!("n-{id}")).build()];
        if let Some(r) = role {
            tags.push(Tag::builder().key(TAG_ROLE).value(r).build());
        }
        Ec2Instance::builder()
            .instance_id(id)
            .set_tags(Some(tags))
            .state(Ec2State::builder().name(state).build())
            .placement(
                Placement::builder()
                    .availability_zone("ap-northeast-1a")
                    .build(),
            )
            .image_id("ami-1")
            .private_dns_name(format!("ip-10-0-0-{}.ec2.internal", &id[2..]))
            .root_device_name("/dev/xvda")
            .block_device_mappings(
                InstanceBlockDeviceMapping::builder()
                    .device_name("/dev/xvdf")
                    .ebs(EbsInstanceBlockDevice::builder().volume_id("vol-1").build())
                    .build(),
            )
            .build()
    }

    fn status(id: &str, instance: SummaryStatus) -> InstanceStatus {
        InstanceStatus::builder()
            .instance_id(id)
            .system_status(
                InstanceStatusSummary::builder()
                    .status(SummaryStatus::Ok)
                    .build(),
            )
            .instance_status(InstanceStatusSummary::builder().status(instance).build())
            .build()
    }

    #[test]
    fn roles_states_checks_and_data_volumes_map_across() {
        let instances = [
            ec2("i-1", Some("web"), InstanceStateName::Running),
            ec2("i-2", Some("db-master"), InstanceStateName::Running),
            ec2("i-3", None, InstanceStateName::Running),
            ec2("i-4", Some("cache"), InstanceStateName::Stopped),
        ];
        let statuses = [
            status("i-1", SummaryStatus::Ok),
            status("i-2", SummaryStatus::Impaired),
        ];
        let targets = HashMap::from([("i-1".to_string(), TargetHealth::Healthy)]);
        let now = 1_000_000;
        let points = FleetPoints::from([
            (
                ("i-1".to_string(), Metric::LatencyP99),
                vec![(now - 60, 250.0)],
            ),
            (
                ("i-2".to_string(), Metric::Heartbeat),
                vec![(now - 60, (now - 60) as f64)],
            ),
        ]);
        let snap = snapshot(Observed {
            fleet: "shop",
            region: "ap-northeast-1",
            target_group: "tg",
            history: 10,
            now,
            instances: &instances,
            statuses: &statuses,
            targets: &targets,
            endpoint: Some((
                "db.shop.internal".into(),
                "ip-10-0-0-2.ec2.internal.".into(),
            )),
            free_volumes: Vec::new(),
            points: &points,
        });
        assert_eq!(
            snap.instances.len(),
            2,
            "instances without a valid dake:role are left out"
        );
        let web = snap.find("i-1").unwrap();
        assert_eq!(
            (web.role, web.state, web.health.checks.passed()),
            (Role::Web, InstanceState::Running, 2)
        );
        assert!(web.disposable());
        let master = snap.find("i-2").unwrap();
        assert!(master.health.checks.any_impaired());
        assert!(
            !master.disposable(),
            "a master's data volume is the only copy"
        );
        assert_eq!(master.name, "n-i-2");
        assert_eq!(web.target, Some(TargetHealth::Healthy));
        assert_eq!(web.latest_p99(), Some(250.0));
        assert_eq!(
            snap.db_endpoint.as_ref().map(|e| e.target_id.as_str()),
            Some("i-2"),
            "the CNAME names i-2's private DNS name"
        );
        let db = master.db.as_ref().unwrap();
        assert!(db.running && !db.read_only);
    }

    #[test]
    fn missing_status_is_insufficient_data_not_ok() {
        let i = ec2("i-9", Some("web"), InstanceStateName::Pending);
        let inst = instance(&i, None, 10).unwrap();
        assert_eq!(inst.state, InstanceState::Pending);
        assert_eq!(inst.health.checks.passed(), 0);
        assert!(!inst.health.checks.any_impaired());
    }
}
