//! The database endpoint switch (a Route53 UPSERT of the existing record, or an SSM parameter
//! put) and the replica list the application watches.

use aws_sdk_ec2::types::Instance as Ec2Instance;

use super::AwsProvider;
use super::actions::{Execution, refused};
use super::clients::{Calls, Clients, find_record, parameter, sdk_error};
use crate::config::EndpointKind;
use crate::provider::ProviderError;

pub(super) async fn set_endpoint(
    p: &AwsProvider,
    c: &Clients,
    name: &str,
    target: &Ec2Instance,
    execution: Execution,
    output: &mut String,
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
            if execution == Execution::DryRunOnly {
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
        EndpointKind::Route53 => set_record(p, c, name, target, execution, output).await,
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
    execution: Execution,
    output: &mut String,
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
    if execution == Execution::DryRunOnly {
        return Ok(None);
    }
    let ttl = current.ttl().unwrap_or(60);
    let record = ResourceRecordSet::builder()
        .name(current.name())
        .r#type(current.r#type().clone())
        .ttl(ttl)
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
    let Some(change) = out.change_info() else {
        return Ok(Some("-".into()));
    };
    let id = change.id().to_string();
    let took = in_sync(c, &id, change.status().clone()).await?;
    *output = format!(
        "INSYNC after {took} s; clients may resolve the old master for up to the TTL, {ttl} s more"
    );
    Ok(Some(id))
}

/// Waits until the change `id` is INSYNC: every Route 53 server answers with it, not only the
/// API that accepted it. The seconds that took.
async fn in_sync(
    c: &Clients,
    id: &str,
    mut status: aws_sdk_route53::types::ChangeStatus,
) -> Result<u64, ProviderError> {
    let started = std::time::Instant::now();
    while status != aws_sdk_route53::types::ChangeStatus::Insync {
        tokio::time::sleep(INSYNC_POLL).await;
        status = c
            .route53
            .get_change()
            .id(id)
            .send()
            .await
            .map_err(sdk_error)?
            .change_info()
            .map(|i| i.status().clone())
            .unwrap_or(status);
    }
    Ok(started.elapsed().as_secs())
}

/// How often a record change's status is asked for until it is INSYNC.
const INSYNC_POLL: std::time::Duration = std::time::Duration::from_secs(5);

/// Adds the replica to the parameter the application watches (a comma-separated id list).
pub(super) async fn notify_replica_added(
    p: &AwsProvider,
    c: &Clients,
    instance_id: &str,
    execution: Execution,
    output: &mut String,
) -> Result<Option<String>, ProviderError> {
    let name = &p.aws.replicas_parameter;
    if name.is_empty() {
        // As the config says: with nowhere to write it, the step only records it; the
        // failover it follows succeeded, and the run must not fail on it.
        *output = format!(
            "recorded only: no [aws] replicas_parameter is configured; tell the application \
             about {instance_id} yourself"
        );
        return Ok(None);
    }
    if execution == Execution::DryRunOnly {
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
