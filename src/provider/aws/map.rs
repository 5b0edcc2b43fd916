//! EC2's view of an instance turned into dake's. Pure, so it is tested without a server.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    Instance as Ec2Instance, InstanceStateName, InstanceStatus, StatusType, SummaryStatus,
};
use chrono::Utc;

use crate::domain::{
    CheckStatus, FleetSnapshot, Health, Instance, InstanceState, LaunchParams, Role, StatusChecks,
    TimeSeries, Volume,
};
use crate::provider::call::TAG_ROLE;

/// CloudWatch's finest standard resolution, the interval of every series a real fleet reports.
const SAMPLE_INTERVAL_SECS: u32 = 60;

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

/// One fleet member, or `None` when it carries no valid `dake:role` (it is then not acted on).
pub fn instance(
    i: &Ec2Instance,
    status: Option<&InstanceStatus>,
    history: usize,
) -> Option<Instance> {
    let tags: BTreeMap<String, String> = i
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect();
    let id = i.instance_id()?.to_string();
    let role: Role = match tags.get(TAG_ROLE).map(|r| r.parse()) {
        Some(Ok(role)) => role,
        other => {
            tracing::warn!("{id}: left out of the fleet: dake:role is {other:?}");
            return None;
        }
    };
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

pub fn snapshot(
    fleet: &str,
    region: &str,
    target_group: &str,
    history: usize,
    instances: &[Ec2Instance],
    statuses: &[InstanceStatus],
) -> FleetSnapshot {
    let status_of = |id: Option<&str>| statuses.iter().find(|s| s.instance_id() == id);
    let mut out: Vec<Instance> = instances
        .iter()
        .filter_map(|i| instance(i, status_of(i.instance_id()), history))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    FleetSnapshot {
        fleet: fleet.to_string(),
        provider: "aws".into(),
        region: region.to_string(),
        taken_at: Utc::now(),
        sample_interval_secs: SAMPLE_INTERVAL_SECS,
        target_group: target_group.to_string(),
        db_endpoint: None,
        instances: out,
        free_volumes: Vec::new(),
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
        let snap = snapshot("shop", "ap-northeast-1", "tg", 10, &instances, &statuses);
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
