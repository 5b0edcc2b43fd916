//! RunInstances for a replacement: launched like the instance it replaces (image, type, subnet,
//! security groups, key, instance profile, user data with the role line set), tagged at
//! creation, dry-run first.

use aws_sdk_ec2::operation::RequestId;
use aws_sdk_ec2::types::{
    IamInstanceProfileSpecification, Instance as Ec2Instance, InstanceType, ResourceType,
    TagSpecification,
};

use super::AwsProvider;
use super::actions::{Execution, ec2_tags, with_preflight};
use super::clients::{Clients, sdk_error};
use crate::domain::call::{CallOutcome, ProviderCall, TAG_FLEET, TAG_ROLE};
use crate::provider::ProviderError;

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

pub(super) async fn run_instances<'a>(
    p: &AwsProvider,
    c: &Clients,
    call: &ProviderCall,
    member: impl Fn(&str) -> Result<&'a Ec2Instance, ProviderError>,
    execution: Execution,
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
    let out = with_preflight("RunInstances", execution, |dry| {
        req.clone().dry_run(dry).send()
    })
    .await?;
    Ok(out.map(|out| CallOutcome {
        created: out
            .instances()
            .iter()
            .filter_map(|i| i.instance_id().map(String::from))
            .collect(),
        request_id: out.request_id().unwrap_or("-").to_string(),
        output: String::new(),
    }))
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
