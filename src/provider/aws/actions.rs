//! Playbook calls on a real fleet. Before anything is sent, every instance and volume a call
//! names must carry the fleet's tag (blast radius), and an EC2 mutation is sent once with
//! `DryRun=true`, so a missing permission is named before anything changes.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::operation::RequestId;
use aws_sdk_ec2::types::{
    IamInstanceProfileSpecification, Instance as Ec2Instance, InstanceType, ResourceType, Tag,
    TagSpecification,
};

use super::AwsProvider;
use super::clients::{Calls, Clients, error_code, find_record, parameter, sdk_error};
use crate::config::EndpointKind;
use crate::provider::call::{CallOutcome, ProviderCall, TAG_FLEET, TAG_ROLE, TAG_SOURCE};
use crate::provider::{Preflight, ProviderError};

/// How often a Run Command's status is asked for while it runs.
const SSM_POLL: Duration = Duration::from_secs(2);
/// A host command that has not finished by then is failed (SSM cancels it on the host too).
pub const SSM_COMMAND_TIMEOUT_SECS: i32 = 600;

/// Makes the call, after its blast-radius check and (EC2) its dry run.
pub async fn execute(p: &AwsProvider, call: ProviderCall) -> Result<CallOutcome, ProviderError> {
    perform(p, call, Mode::Execute)
        .await?
        .ok_or_else(|| ProviderError::Other("the call was only checked, not made".into()))
}

/// Checks the call without making it: the blast radius, then the dry run of an EC2 mutation,
/// or what can be read about any other (its target group, record, parameter).
pub async fn preflight(p: &AwsProvider, call: ProviderCall) -> Result<Preflight, ProviderError> {
    let kind = call.kind();
    perform(p, call, Mode::DryRunOnly).await?;
    Ok(if kind.has_dry_run() {
        Preflight::Allowed
    } else {
        Preflight::NotCheckable(format!(
            "{} has no dry run; its target and settings check out, and `dake iam-policy` \
             lists the permission it needs",
            kind.operation()
        ))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Execute,
    /// Everything up to the call itself; EC2 mutations are sent with `DryRun=true` only.
    DryRunOnly,
}

/// `None` when only checked (`Mode::DryRunOnly`).
async fn perform(
    p: &AwsProvider,
    call: ProviderCall,
    mode: Mode,
) -> Result<Option<CallOutcome>, ProviderError> {
    let c = p.clients().await?;
    let members = check_blast_radius(p, c, &call).await?;
    let member = |id: &str| {
        members
            .get(id)
            .ok_or_else(|| ProviderError::Other(format!("{id}: not described")))
    };
    let ec2 = &c.ec2;
    let op = call.operation();
    let (request_id, created) = match &call {
        ProviderCall::RunInstances { .. } => {
            return run_instances(p, c, &call, member, mode).await;
        }
        ProviderCall::TerminateInstances { instance_id } => {
            let req = ec2.terminate_instances().instance_ids(instance_id);
            let out = with_preflight(op, mode, |dry| req.clone().dry_run(dry).send()).await?;
            (
                out.as_ref().and_then(|o| o.request_id()).map(String::from),
                Vec::new(),
            )
        }
        ProviderCall::StopInstances { instance_id, force } => {
            let req = ec2.stop_instances().instance_ids(instance_id).force(*force);
            let out = with_preflight(op, mode, |dry| req.clone().dry_run(dry).send()).await?;
            (
                out.as_ref().and_then(|o| o.request_id()).map(String::from),
                Vec::new(),
            )
        }
        ProviderCall::RebootInstances { instance_id } => {
            let req = ec2.reboot_instances().instance_ids(instance_id);
            let out = with_preflight(op, mode, |dry| req.clone().dry_run(dry).send()).await?;
            (
                out.as_ref().and_then(|o| o.request_id()).map(String::from),
                Vec::new(),
            )
        }
        ProviderCall::StartInstances { instance_id } => {
            let req = ec2.start_instances().instance_ids(instance_id);
            let out = with_preflight(op, mode, |dry| req.clone().dry_run(dry).send()).await?;
            (
                out.as_ref().and_then(|o| o.request_id()).map(String::from),
                Vec::new(),
            )
        }
        ProviderCall::CreateTags { resource_id, tags } => {
            let req = ec2
                .create_tags()
                .resources(resource_id)
                .set_tags(Some(ec2_tags(tags)));
            let out = with_preflight(op, mode, |dry| req.clone().dry_run(dry).send()).await?;
            (
                out.as_ref().and_then(|o| o.request_id()).map(String::from),
                Vec::new(),
            )
        }
        ProviderCall::DetachVolume {
            volume_id,
            instance_id,
            force,
        } => {
            let req = ec2
                .detach_volume()
                .volume_id(volume_id)
                .instance_id(instance_id)
                .force(*force);
            let out = with_preflight(op, mode, |dry| req.clone().dry_run(dry).send()).await?;
            (
                out.as_ref().and_then(|o| o.request_id()).map(String::from),
                Vec::new(),
            )
        }
        ProviderCall::AttachVolume {
            volume_id,
            instance_id,
            device,
        } => {
            let req = ec2
                .attach_volume()
                .volume_id(volume_id)
                .instance_id(instance_id)
                .device(device);
            let out = with_preflight(op, mode, |dry| req.clone().dry_run(dry).send()).await?;
            (
                out.as_ref().and_then(|o| o.request_id()).map(String::from),
                Vec::new(),
            )
        }
        ProviderCall::RegisterTarget {
            target_group,
            instance_id,
        }
        | ProviderCall::DeregisterTarget {
            target_group,
            instance_id,
        } => {
            if target_group != &p.target_group {
                return Err(refused(format!(
                    "{target_group} is not this fleet's target group ({})",
                    p.target_group
                )));
            }
            let arn = p
                .target_group_arn(&mut Default::default())
                .await?
                .to_string();
            if mode == Mode::DryRunOnly {
                return Ok(None);
            }
            let target = aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                .id(instance_id)
                .build();
            let id = if matches!(call, ProviderCall::RegisterTarget { .. }) {
                let out = c
                    .elb
                    .register_targets()
                    .target_group_arn(arn)
                    .targets(target)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                out.request_id().map(String::from)
            } else {
                let out = c
                    .elb
                    .deregister_targets()
                    .target_group_arn(arn)
                    .targets(target)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                out.request_id().map(String::from)
            };
            (id, Vec::new())
        }
        ProviderCall::RestartApp { .. }
        | ProviderCall::StartDatabase { .. }
        | ProviderCall::PromoteReplica { .. }
            if mode == Mode::DryRunOnly =>
        {
            return Ok(None);
        }
        ProviderCall::RestartApp { instance_id } => {
            let id = run_command(p, c, instance_id, &p.aws.restart_app_command).await?;
            (Some(id), Vec::new())
        }
        ProviderCall::StartDatabase { instance_id } => {
            let id = run_command(p, c, instance_id, &p.aws.start_db_command).await?;
            (Some(id), Vec::new())
        }
        ProviderCall::PromoteReplica { instance_id } => {
            let id = run_command(p, c, instance_id, &p.aws.promote_command).await?;
            // MySQL now says it is the master; the tags say so to the next refresh.
            tag(c, instance_id, &[(TAG_ROLE, "db-master")]).await?;
            ec2.delete_tags()
                .resources(instance_id)
                .tags(Tag::builder().key(TAG_SOURCE).build())
                .send()
                .await
                .map_err(sdk_error)?;
            (Some(id), Vec::new())
        }
        ProviderCall::RepointReplica {
            instance_id,
            master_id,
        } => {
            let address = member(master_id)?.private_ip_address().unwrap_or("");
            if address.is_empty() {
                return Err(refused(format!("{master_id} has no private address")));
            }
            if mode == Mode::DryRunOnly {
                return Ok(None);
            }
            let command = p.aws.repoint_command.replace("{master}", address);
            let id = run_command(p, c, instance_id, &command).await?;
            tag(c, instance_id, &[(TAG_SOURCE, master_id)]).await?;
            (Some(id), Vec::new())
        }
        ProviderCall::SetDbEndpoint { name, target_id } => {
            let Some(id) = set_endpoint(p, c, name, member(target_id)?, mode).await? else {
                return Ok(None);
            };
            (Some(id), Vec::new())
        }
        ProviderCall::NotifyReplicaAdded { instance_id } => {
            let Some(id) = notify_replica_added(p, c, instance_id, mode).await? else {
                return Ok(None);
            };
            (Some(id), Vec::new())
        }
    };
    if mode == Mode::DryRunOnly {
        return Ok(None);
    }
    Ok(Some(CallOutcome {
        created,
        request_id: request_id.unwrap_or_else(|| "-".into()),
    }))
}

fn refused(reason: String) -> ProviderError {
    ProviderError::Refused(format!("{reason}; nothing was done"))
}

fn ec2_tags(tags: &[(String, String)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

async fn tag(c: &Clients, id: &str, tags: &[(&str, &str)]) -> Result<(), ProviderError> {
    let owned: Vec<(String, String)> = tags
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    c.ec2
        .create_tags()
        .resources(id)
        .set_tags(Some(ec2_tags(&owned)))
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(())
}

/// Every instance and volume the call names must carry `dake:fleet=<this fleet>`: dake never
/// touches what it was not given. Returns the named instances as EC2 describes them.
async fn check_blast_radius(
    p: &AwsProvider,
    c: &Clients,
    call: &ProviderCall,
) -> Result<HashMap<String, Ec2Instance>, ProviderError> {
    let (instance_ids, volume_ids) = call.resources();
    let outside = |kind: &str, id: &str, tags: &[Tag]| {
        let in_fleet = tags
            .iter()
            .any(|t| t.key() == Some(TAG_FLEET) && t.value() == Some(p.fleet.as_str()));
        (!in_fleet).then(|| {
            refused(format!(
                "{kind} {id} is not tagged {TAG_FLEET}={}: dake acts only on its own fleet",
                p.fleet
            ))
        })
    };
    let mut members = HashMap::new();
    if !instance_ids.is_empty() {
        let out = c
            .ec2
            .describe_instances()
            .set_instance_ids(Some(instance_ids.iter().map(|s| s.to_string()).collect()))
            .send()
            .await
            .map_err(|e| not_found_or(e, "instance"))?;
        for i in out.reservations().iter().flat_map(|r| r.instances()) {
            let id = i.instance_id().unwrap_or("?");
            if let Some(e) = outside("instance", id, i.tags()) {
                return Err(e);
            }
            members.insert(id.to_string(), i.clone());
        }
        if let Some(missing) = instance_ids.iter().find(|id| !members.contains_key(**id)) {
            return Err(refused(format!("no instance {missing}")));
        }
    }
    if !volume_ids.is_empty() {
        let out = c
            .ec2
            .describe_volumes()
            .set_volume_ids(Some(volume_ids.iter().map(|s| s.to_string()).collect()))
            .send()
            .await
            .map_err(|e| not_found_or(e, "volume"))?;
        for v in out.volumes() {
            if let Some(e) = outside("volume", v.volume_id().unwrap_or("?"), v.tags()) {
                return Err(e);
            }
        }
    }
    Ok(members)
}

fn not_found_or<E: ProvideErrorMetadata + std::fmt::Debug, R>(
    e: SdkError<E, R>,
    kind: &str,
) -> ProviderError {
    match error_code(&e) {
        Some(code) if code.contains("NotFound") || code.contains("Malformed") => {
            refused(format!("no such {kind}: {}", e.message().unwrap_or(code)))
        }
        _ => sdk_error(e),
    }
}

/// Sends an EC2 mutation with `DryRun=true` first. `DryRunOperation` means allowed and the
/// call is sent for real; `UnauthorizedOperation` is a refusal naming what is missing. An
/// endpoint that ignores DryRun has already done the call: its answer is kept, never sent twice.
/// In `Mode::DryRunOnly` the answer is `None` once the dry run says allowed.
async fn with_preflight<T, E, R, F, Fut>(
    operation: &str,
    mode: Mode,
    send: F,
) -> Result<Option<T>, ProviderError>
where
    F: Fn(bool) -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, R>>>,
    E: ProvideErrorMetadata + std::fmt::Debug,
{
    match send(true).await {
        Ok(done) => {
            tracing::warn!("{operation}: the endpoint ignored DryRun and did the call");
            if mode == Mode::DryRunOnly {
                return Err(ProviderError::Other(format!(
                    "{operation}: the endpoint ignored DryRun and made the call; \
                     look at the fleet before anything else"
                )));
            }
            return Ok(Some(done));
        }
        Err(e) => preflight_answer(operation, e)?,
    }
    if mode == Mode::DryRunOnly {
        return Ok(None);
    }
    send(false).await.map(Some).map_err(sdk_error)
}

/// What a dry run's error means: `Ok` when the call would be allowed.
pub fn preflight_answer<E: ProvideErrorMetadata + std::fmt::Debug, R>(
    operation: &str,
    e: SdkError<E, R>,
) -> Result<(), ProviderError> {
    match error_code(&e) {
        Some("DryRunOperation") => Ok(()),
        Some("UnauthorizedOperation") => Err(ProviderError::Refused(format!(
            "{operation} is not allowed for these credentials ({}); nothing was done. \
             `dake iam-policy` prints the policy the playbooks need",
            e.message().unwrap_or("no detail")
        ))),
        _ => Err(sdk_error(e)),
    }
}

/// The template's user data with its `role=` line set to `role` (added when it has none).
pub fn user_data_for(template: Option<&str>, role: &str) -> String {
    let Some(text) = template.filter(|t| !t.trim().is_empty()) else {
        return format!("role={role}\n");
    };
    let mut found = false;
    let mut out: Vec<String> = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("role=") {
                found = true;
                format!("role={role}")
            } else {
                l.to_string()
            }
        })
        .collect();
    if !found {
        out.push(format!("role={role}"));
    }
    out.join("\n") + "\n"
}

async fn run_instances<'a>(
    p: &AwsProvider,
    c: &Clients,
    call: &ProviderCall,
    member: impl Fn(&str) -> Result<&'a Ec2Instance, ProviderError>,
    mode: Mode,
) -> Result<Option<CallOutcome>, ProviderError> {
    let ProviderCall::RunInstances {
        role,
        image_id,
        instance_type,
        subnet_id,
        security_groups,
        key_name,
        tags,
        client_token,
        template_id,
        ..
    } = call
    else {
        return Err(ProviderError::Other("not a RunInstances call".into()));
    };
    let template = member(template_id)?;
    let current = c
        .ec2
        .describe_instance_attribute()
        .instance_id(template_id)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await
        .map_err(sdk_error)?;
    let old = current
        .user_data()
        .and_then(|v| v.value())
        .and_then(|b64| aws_smithy_types::base64::decode(b64).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok());
    let user_data = user_data_for(old.as_deref(), role.as_str());
    // Whatever the call says, what dake launches belongs to this fleet, in this role.
    let mut tags: Vec<(String, String)> = tags
        .iter()
        .filter(|(k, _)| k != TAG_FLEET && k != TAG_ROLE)
        .cloned()
        .collect();
    tags.push((TAG_FLEET.into(), p.fleet.clone()));
    tags.push((TAG_ROLE.into(), role.as_str().into()));
    let spec = |kind| {
        TagSpecification::builder()
            .resource_type(kind)
            .set_tags(Some(ec2_tags(&tags)))
            .build()
    };
    let req = c
        .ec2
        .run_instances()
        .image_id(image_id)
        .instance_type(InstanceType::from(instance_type.as_str()))
        .subnet_id(subnet_id)
        .set_security_group_ids(Some(security_groups.clone()))
        .set_key_name(key_name.clone())
        .set_iam_instance_profile(template.iam_instance_profile().and_then(|ip| {
            Some(
                IamInstanceProfileSpecification::builder()
                    .arn(ip.arn()?)
                    .build(),
            )
        }))
        .user_data(aws_smithy_types::base64::encode(user_data))
        .min_count(1)
        .max_count(1)
        .client_token(client_token)
        .tag_specifications(spec(ResourceType::Instance))
        .tag_specifications(spec(ResourceType::Volume));
    let out = with_preflight("RunInstances", mode, |dry| req.clone().dry_run(dry).send()).await?;
    Ok(out.map(|out| CallOutcome {
        created: out
            .instances()
            .iter()
            .filter_map(|i| i.instance_id().map(String::from))
            .collect(),
        request_id: out.request_id().unwrap_or("-").to_string(),
    }))
}

/// Runs `command` on the host through SSM Run Command and waits for it to succeed. The
/// command id is the call's request id, so the timeline and the journal can name it.
async fn run_command(
    p: &AwsProvider,
    c: &Clients,
    instance_id: &str,
    command: &str,
) -> Result<String, ProviderError> {
    let sent = c
        .ssm
        .send_command()
        .document_name(&p.aws.ssm_document)
        .instance_ids(instance_id)
        .parameters("commands", vec![command.to_string()])
        .timeout_seconds(SSM_COMMAND_TIMEOUT_SECS)
        .comment(format!("dake fleet {}", p.fleet))
        .send()
        .await
        .map_err(sdk_error)?;
    let id = sent
        .command()
        .and_then(|cmd| cmd.command_id())
        .ok_or_else(|| ProviderError::Other("SendCommand answered without a command id".into()))?
        .to_string();
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(SSM_COMMAND_TIMEOUT_SECS as u64 + 60);
    loop {
        let status = match c
            .ssm
            .get_command_invocation()
            .command_id(&id)
            .instance_id(instance_id)
            .send()
            .await
        {
            Ok(out) => out,
            // The invocation is registered a moment after the command is accepted.
            Err(e) if error_code(&e) == Some("InvocationDoesNotExist") => {
                tokio::time::sleep(SSM_POLL).await;
                continue;
            }
            Err(e) => return Err(sdk_error(e)),
        };
        use aws_sdk_ssm::types::CommandInvocationStatus as S;
        match status.status() {
            Some(S::Success) => return Ok(id),
            Some(S::Failed | S::Cancelled | S::TimedOut | S::Cancelling) => {
                return Err(ProviderError::Other(format!(
                    "command {id} on {instance_id}: {} {}",
                    status.status_details().unwrap_or("failed"),
                    status.standard_error_content().unwrap_or("").trim()
                )));
            }
            _ if tokio::time::Instant::now() > deadline => {
                return Err(ProviderError::Timeout(format!(
                    "command {id} on {instance_id} not finished after {SSM_COMMAND_TIMEOUT_SECS} s"
                )));
            }
            _ => tokio::time::sleep(SSM_POLL).await,
        }
    }
}

async fn set_endpoint(
    p: &AwsProvider,
    c: &Clients,
    name: &str,
    target: &Ec2Instance,
    mode: Mode,
) -> Result<Option<String>, ProviderError> {
    if name != p.db_endpoint {
        return Err(refused(format!(
            "{name} is not this fleet's database endpoint ({})",
            p.db_endpoint
        )));
    }
    let address = target.private_ip_address().unwrap_or("").to_string();
    match p.aws.db_endpoint_kind {
        EndpointKind::Ssm => {
            if address.is_empty() {
                return Err(refused("the new master has no private address".into()));
            }
            if mode == Mode::DryRunOnly {
                return Ok(None);
            }
            let out = c
                .ssm
                .put_parameter()
                .name(name)
                .value(address)
                .overwrite(true)
                .send()
                .await
                .map_err(sdk_error)?;
            Ok(Some(format!("version {}", out.version())))
        }
        EndpointKind::Route53 => set_record(p, c, name, target, mode).await,
    }
}

/// UPSERTs the record with its own type and TTL: a CNAME gets the master's private DNS name,
/// an A record its private address. A record that does not exist is not created: its name
/// may be wrong, and the application would not read it.
async fn set_record(
    p: &AwsProvider,
    c: &Clients,
    name: &str,
    target: &Ec2Instance,
    mode: Mode,
) -> Result<Option<String>, ProviderError> {
    use aws_sdk_route53::types::{
        Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
    };
    if p.aws.hosted_zone_id.is_empty() {
        return Err(refused(
            "no [aws] hosted_zone_id: dake cannot switch a record it cannot find".into(),
        ));
    }
    let zone = &p.aws.hosted_zone_id;
    let Some(current) = find_record(c, zone, name, &mut Calls::default()).await? else {
        return Err(refused(format!("no record {name} in hosted zone {zone}")));
    };
    let value = match current.r#type() {
        RrType::Cname => target.private_dns_name().unwrap_or(""),
        RrType::A => target.private_ip_address().unwrap_or(""),
        other => {
            return Err(refused(format!(
                "{name} is a {} record; dake switches CNAME or A records",
                other.as_str()
            )));
        }
    };
    if value.is_empty() {
        return Err(refused(format!(
            "{} has no private {}",
            target.instance_id().unwrap_or("?"),
            if current.r#type() == &RrType::A {
                "address"
            } else {
                "DNS name"
            }
        )));
    }
    if mode == Mode::DryRunOnly {
        return Ok(None);
    }
    let record = ResourceRecordSet::builder()
        .name(current.name())
        .r#type(current.r#type().clone())
        .ttl(current.ttl().unwrap_or(60))
        .resource_records(
            ResourceRecord::builder()
                .value(value)
                .build()
                .map_err(|e| ProviderError::Other(e.to_string()))?,
        )
        .build()
        .map_err(|e| ProviderError::Other(e.to_string()))?;
    let change = Change::builder()
        .action(ChangeAction::Upsert)
        .resource_record_set(record)
        .build()
        .map_err(|e| ProviderError::Other(e.to_string()))?;
    let out = c
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(
            ChangeBatch::builder()
                .comment(format!("dake: {name} to the new master"))
                .changes(change)
                .build()
                .map_err(|e| ProviderError::Other(e.to_string()))?,
        )
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(Some(
        out.change_info()
            .map(|i| i.id().to_string())
            .unwrap_or_else(|| "-".into()),
    ))
}

/// Adds the replica to the parameter the application watches (a comma-separated id list).
async fn notify_replica_added(
    p: &AwsProvider,
    c: &Clients,
    instance_id: &str,
    mode: Mode,
) -> Result<Option<String>, ProviderError> {
    let name = &p.aws.replicas_parameter;
    if name.is_empty() {
        return Err(refused(
            "no [aws] replicas_parameter is configured: tell the application about the new \
             replica yourself"
                .into(),
        ));
    }
    if mode == Mode::DryRunOnly {
        return Ok(None);
    }
    let current = parameter(c, name, &mut Calls::default())
        .await?
        .unwrap_or_default();
    let mut ids: Vec<&str> = current.split(',').filter(|s| !s.is_empty()).collect();
    if !ids.contains(&instance_id) {
        ids.push(instance_id);
    }
    let out = c
        .ssm
        .put_parameter()
        .name(name)
        .value(ids.join(","))
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(Some(format!("version {}", out.version())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_keeps_the_template_and_sets_the_role() {
        let t = "#!/bin/bash\nrole=db-master\nexport APP=shop\n";
        assert_eq!(
            user_data_for(Some(t), "db-replica"),
            "#!/bin/bash\nrole=db-replica\nexport APP=shop\n"
        );
        assert_eq!(
            user_data_for(Some("#!/bin/bash\necho hi"), "web"),
            "#!/bin/bash\necho hi\nrole=web\n"
        );
        assert_eq!(user_data_for(None, "web"), "role=web\n");
    }
}
