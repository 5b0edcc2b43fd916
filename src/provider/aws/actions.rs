//! Playbook calls on a real fleet. Before anything is sent, every instance and volume a call
//! names must carry the fleet's tag (blast radius), and an EC2 mutation is sent once with
//! `DryRun=true`, so a missing permission is named before anything changes.

use std::collections::HashMap;
use std::future::Future;

use aws_sdk_ec2::config::http::HttpResponse;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::operation::RequestId;
use aws_sdk_ec2::types::{Instance as Ec2Instance, Tag};

use super::clients::{Clients, error_code, sdk_error};
use super::{AwsProvider, endpoint, host, launch};
use crate::domain::call::{CallOutcome, ProviderCall, TAG_FLEET, TAG_ROLE, TAG_SOURCE};
use crate::provider::{Preflight, ProviderError};

/// Makes the call, after its blast-radius check and (EC2) its dry run.
pub async fn execute(p: &AwsProvider, call: ProviderCall) -> Result<CallOutcome, ProviderError> {
    perform(p, call, Execution::Real)
        .await?
        .ok_or_else(|| ProviderError::Other("the call was only checked, not made".into()))
}

/// Checks the call without making it: the blast radius, then the dry run of an EC2 mutation,
/// or what can be read about any other (its target group, record, parameter).
pub async fn preflight(p: &AwsProvider, call: ProviderCall) -> Result<Preflight, ProviderError> {
    let kind = call.kind();
    perform(p, call, Execution::DryRunOnly).await?;
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

/// How far a call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Execution {
    /// Checked, then made.
    Real,
    /// Everything up to the call itself; EC2 mutations are sent with `DryRun=true` only.
    DryRunOnly,
}

/// `None` when only checked (`Execution::DryRunOnly`).
async fn perform(
    p: &AwsProvider,
    call: ProviderCall,
    execution: Execution,
) -> Result<Option<CallOutcome>, ProviderError> {
    let c = p.clients().await?;
    let members = check_blast_radius(p, c, &call).await?;
    let member = |id: &str| {
        members
            .get(id)
            .ok_or_else(|| ProviderError::Other(format!("{id}: not described")))
    };
    let aws = &p.aws;
    let mut output = String::new();
    let out = &mut output;
    let request_id = match &call {
        ProviderCall::RunInstances { .. } => {
            return launch::run_instances(p, c, &call, member, execution).await;
        }
        ProviderCall::TerminateInstances { .. }
        | ProviderCall::StopInstances { .. }
        | ProviderCall::RebootInstances { .. }
        | ProviderCall::StartInstances { .. }
        | ProviderCall::CreateTags { .. }
        | ProviderCall::DetachVolume { .. }
        | ProviderCall::AttachVolume { .. } => ec2(c, &call, execution).await?,
        ProviderCall::RegisterTarget {
            target_group,
            instance_id,
        } => swap_target(p, c, target_group, instance_id, Swap::In, execution).await?,
        ProviderCall::DeregisterTarget {
            target_group,
            instance_id,
        } => swap_target(p, c, target_group, instance_id, Swap::Out, execution).await?,
        ProviderCall::RestartApp { instance_id } => {
            on_host(p, c, instance_id, &aws.restart_app_command, execution, out).await?
        }
        ProviderCall::StartDatabase { instance_id } => {
            on_host(p, c, instance_id, &aws.start_db_command, execution, out).await?
        }
        ProviderCall::PromoteReplica { instance_id } => {
            let id = on_host(p, c, instance_id, &aws.promote_command, execution, out).await?;
            if execution == Execution::Real {
                // MySQL now says it is the master; the tags say so to the next refresh.
                tag(c, instance_id, &[(TAG_ROLE, "db-master")]).await?;
                c.ec2
                    .delete_tags()
                    .resources(instance_id)
                    .tags(Tag::builder().key(TAG_SOURCE).build())
                    .send()
                    .await
                    .map_err(sdk_error)?;
            }
            id
        }
        ProviderCall::RepointReplica {
            instance_id,
            master_id,
        } => {
            let address = member(master_id)?.private_ip_address().unwrap_or("");
            if address.is_empty() {
                return Err(refused(format!("{master_id} has no private address")));
            }
            let command = aws.repoint_command.replace("{master}", address);
            let id = on_host(p, c, instance_id, &command, execution, out).await?;
            if execution == Execution::Real {
                tag(c, instance_id, &[(TAG_SOURCE, master_id)]).await?;
            }
            id
        }
        ProviderCall::SetDbEndpoint { name, target_id } => {
            endpoint::set_endpoint(p, c, name, member(target_id)?, execution, out).await?
        }
        ProviderCall::TakeLease { .. } | ProviderCall::ReleaseLease { .. } => {
            super::lease::lease_call(p, c, &call, execution).await?
        }
        ProviderCall::NotifyReplicaAdded { instance_id } => {
            endpoint::notify_replica_added(p, c, instance_id, execution, out).await?
        }
        ProviderCall::Sql {
            instance_id,
            statements,
            kill_clients,
        } => {
            let m = member(instance_id)?;
            Some(sql(p, instance_id, m, statements, *kill_clients, execution).await?)
        }
    };
    if execution == Execution::DryRunOnly {
        return Ok(None);
    }
    Ok(Some(CallOutcome {
        created: Vec::new(),
        request_id: request_id.unwrap_or_else(|| "-".into()),
        output,
    }))
}

/// Statements on the instance's database server, over the `mysql` source's connection; a
/// dry run only connects. What was done, for the timeline.
async fn sql(
    p: &AwsProvider,
    instance_id: &str,
    m: &Ec2Instance,
    statements: &[String],
    kill_clients: bool,
    execution: Execution,
) -> Result<String, ProviderError> {
    let Some(db) = p.database.as_ref() else {
        return Err(refused(
            "SQL statements need `[database] source = \"mysql\"`".into(),
        ));
    };
    let name = m
        .tags()
        .iter()
        .find(|t| t.key() == Some("Name"))
        .and_then(|t| t.value())
        .unwrap_or("");
    let (host, port) = db.address_for(instance_id, name, m.private_ip_address().unwrap_or(""));
    let check_only = execution == Execution::DryRunOnly;
    crate::provider::mysql::write::run(
        db.access(),
        &host,
        port,
        statements,
        kill_clients,
        check_only,
    )
    .await
    .map_err(|e| ProviderError::Other(e.to_string()))
}

/// An EC2 mutation, dry run first: its request id.
async fn ec2(
    c: &Clients,
    call: &ProviderCall,
    execution: Execution,
) -> Result<Option<String>, ProviderError> {
    let ec2 = &c.ec2;
    let op = call.operation();
    match call {
        ProviderCall::TerminateInstances { instance_id } => {
            let req = ec2.terminate_instances().instance_ids(instance_id);
            ec2_mutation(op, execution, |dry| req.clone().dry_run(dry).send()).await
        }
        ProviderCall::StopInstances { instance_id, force } => {
            let req = ec2.stop_instances().instance_ids(instance_id).force(*force);
            ec2_mutation(op, execution, |dry| req.clone().dry_run(dry).send()).await
        }
        ProviderCall::RebootInstances { instance_id } => {
            let req = ec2.reboot_instances().instance_ids(instance_id);
            ec2_mutation(op, execution, |dry| req.clone().dry_run(dry).send()).await
        }
        ProviderCall::StartInstances { instance_id } => {
            let req = ec2.start_instances().instance_ids(instance_id);
            ec2_mutation(op, execution, |dry| req.clone().dry_run(dry).send()).await
        }
        ProviderCall::CreateTags { resource_id, tags } => {
            let req = ec2
                .create_tags()
                .resources(resource_id)
                .set_tags(Some(ec2_tags(tags)));
            ec2_mutation(op, execution, |dry| req.clone().dry_run(dry).send()).await
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
            ec2_mutation(op, execution, |dry| req.clone().dry_run(dry).send()).await
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
            ec2_mutation(op, execution, |dry| req.clone().dry_run(dry).send()).await
        }
        other => Err(ProviderError::Other(format!(
            "{} is not an EC2 mutation",
            other.operation()
        ))),
    }
}

/// Which way a target moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Swap {
    In,
    Out,
}

/// Registers or deregisters a target, in this fleet's target group only.
async fn swap_target(
    p: &AwsProvider,
    c: &Clients,
    target_group: &str,
    instance_id: &str,
    swap: Swap,
    execution: Execution,
) -> Result<Option<String>, ProviderError> {
    if target_group != p.target_group {
        return Err(refused(format!(
            "{target_group} is not this fleet's target group ({})",
            p.target_group
        )));
    }
    let arn = p
        .target_group_arn(&mut Default::default())
        .await?
        .to_string();
    if execution == Execution::DryRunOnly {
        return Ok(None);
    }
    let target = aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
        .id(instance_id)
        .build();
    let id = match swap {
        Swap::In => {
            let out = c
                .elb
                .register_targets()
                .target_group_arn(arn)
                .targets(target)
                .send()
                .await
                .map_err(sdk_error)?;
            out.request_id().map(String::from)
        }
        Swap::Out => {
            let out = c
                .elb
                .deregister_targets()
                .target_group_arn(arn)
                .targets(target)
                .send()
                .await
                .map_err(sdk_error)?;
            out.request_id().map(String::from)
        }
    };
    Ok(id)
}

/// Runs `command` on the host through SSM Run Command, keeping what it printed in `output`;
/// nothing when only checked.
async fn on_host(
    p: &AwsProvider,
    c: &Clients,
    instance_id: &str,
    command: &str,
    execution: Execution,
    output: &mut String,
) -> Result<Option<String>, ProviderError> {
    if execution == Execution::DryRunOnly {
        return Ok(None);
    }
    let run = host::run_command(p, c, instance_id, command).await?;
    *output = run.output;
    Ok(Some(run.command_id))
}

pub(super) fn refused(reason: String) -> ProviderError {
    ProviderError::Refused(format!("{reason}; nothing was done"))
}

pub(super) fn ec2_tags(tags: &[(String, String)]) -> Vec<Tag> {
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

fn not_found_or<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: SdkError<E, HttpResponse>,
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
/// In `Execution::DryRunOnly` the answer is `None` once the dry run says allowed.
pub(super) async fn with_preflight<T, E, F, Fut>(
    operation: &str,
    execution: Execution,
    send: F,
) -> Result<Option<T>, ProviderError>
where
    F: Fn(bool) -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match send(true).await {
        Ok(done) => {
            tracing::warn!("{operation}: the endpoint ignored DryRun and did the call");
            if execution == Execution::DryRunOnly {
                return Err(ProviderError::Other(format!(
                    "{operation}: the endpoint ignored DryRun and made the call; \
                     look at the fleet before anything else"
                )));
            }
            return Ok(Some(done));
        }
        Err(e) => preflight_answer(operation, e)?,
    }
    if execution == Execution::DryRunOnly {
        return Ok(None);
    }
    send(false).await.map(Some).map_err(sdk_error)
}

/// [`with_preflight`] for a mutation whose answer is only its request id.
async fn ec2_mutation<T, E, F, Fut>(
    operation: &str,
    execution: Execution,
    send: F,
) -> Result<Option<String>, ProviderError>
where
    T: RequestId,
    F: Fn(bool) -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let out = with_preflight(operation, execution, send).await?;
    Ok(out.as_ref().and_then(|o| o.request_id()).map(String::from))
}

/// What a dry run's error means: `Ok` when the call would be allowed.
pub fn preflight_answer<E: ProvideErrorMetadata + std::error::Error + 'static>(
    operation: &str,
    e: SdkError<E, HttpResponse>,
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
