//! The least-privilege IAM policy for running dake on a fleet, generated from the kinds of call
//! the playbooks make (each step's action names them; `runbook::model::call_kinds` collects
//! them): each kind the API actions the AWS provider sends for it. A playbook step removed
//! takes its permissions with it.
//!
//! Mutations are scoped to the fleet: instances and volumes by their `dake:fleet` tag, tags by
//! key (dake can not retag something into the fleet), launches only with the fleet's tag, the
//! target group, the record name, the parameters and the command document by name.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Value, json};

use crate::config::{Config, EndpointKind};
use crate::domain::call::{CallKind, TAG_FLEET, TAG_QUARANTINE, TAG_ROLE, TAG_SOURCE};

/// The statements, in the order they are printed. Each groups actions that share resources
/// and conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Statement {
    /// Describe calls, which take no resource-level permissions.
    ReadFleet,
    ReadDbEndpoint,
    ActOnFleetInstances,
    TagFleetResources,
    LaunchIntoFleet,
    LaunchFromExisting,
    TagAtLaunch,
    PassInstanceRole,
    ServeFromTargetGroup,
    SwitchDbEndpoint,
    RunHostCommandDocument,
    RunHostCommandOnFleet,
    ReadCommandStatus,
    NotifyReplicas,
    HoldLease,
    /// `[journal] mirror = "cloudwatch-logs"`: the fleet's log group and its streams.
    MirrorJournal,
}

use Statement as S;

/// What one kind of call needs, as the AWS provider sends it (with the reads it makes first;
/// the blast-radius describe is among every refresh's reads).
fn grants(kind: CallKind, endpoint: EndpointKind) -> Vec<(Statement, &'static str)> {
    let mut g = match kind {
        CallKind::RunInstances => vec![
            (S::LaunchIntoFleet, "ec2:RunInstances"),
            (S::LaunchFromExisting, "ec2:RunInstances"),
            (S::TagAtLaunch, "ec2:CreateTags"),
            (S::PassInstanceRole, "iam:PassRole"),
            // The template's user data is copied.
            (S::ReadFleet, "ec2:DescribeInstanceAttribute"),
        ],
        CallKind::TerminateInstances => vec![(S::ActOnFleetInstances, "ec2:TerminateInstances")],
        CallKind::StopInstances => vec![(S::ActOnFleetInstances, "ec2:StopInstances")],
        CallKind::RebootInstances => vec![(S::ActOnFleetInstances, "ec2:RebootInstances")],
        CallKind::StartInstances => vec![(S::ActOnFleetInstances, "ec2:StartInstances")],
        CallKind::CreateTags => vec![(S::TagFleetResources, "ec2:CreateTags")],
        CallKind::DetachVolume => vec![(S::ActOnFleetInstances, "ec2:DetachVolume")],
        CallKind::AttachVolume => vec![(S::ActOnFleetInstances, "ec2:AttachVolume")],
        CallKind::RegisterTarget => {
            vec![(
                S::ServeFromTargetGroup,
                "elasticloadbalancing:RegisterTargets",
            )]
        }
        CallKind::DeregisterTarget => {
            vec![(
                S::ServeFromTargetGroup,
                "elasticloadbalancing:DeregisterTargets",
            )]
        }
        // SQL goes to the database server, not to an AWS API.
        CallKind::RestartApp | CallKind::StartDatabase | CallKind::Sql => Vec::new(),
        // The new master's role and the replica's source are tagged after the command.
        CallKind::PromoteReplica => vec![
            (S::TagFleetResources, "ec2:CreateTags"),
            (S::TagFleetResources, "ec2:DeleteTags"),
        ],
        CallKind::RepointReplica => vec![(S::TagFleetResources, "ec2:CreateTags")],
        CallKind::SetDbEndpoint => match endpoint {
            // The switch is done when its change is INSYNC.
            EndpointKind::Route53 => vec![
                (S::SwitchDbEndpoint, "route53:ChangeResourceRecordSets"),
                (S::ReadFleet, "route53:GetChange"),
            ],
            EndpointKind::Ssm => vec![(S::SwitchDbEndpoint, "ssm:PutParameter")],
        },
        // The lease of the run's tier: read, created without overwrite, renewed, deleted.
        CallKind::TakeLease | CallKind::ReleaseLease => vec![
            (S::HoldLease, "ssm:GetParameter"),
            (S::HoldLease, "ssm:PutParameter"),
            (S::HoldLease, "ssm:DeleteParameter"),
        ],
        CallKind::NotifyReplicaAdded => vec![
            (S::NotifyReplicas, "ssm:GetParameter"),
            (S::NotifyReplicas, "ssm:PutParameter"),
        ],
    };
    if kind.runs_on_host() {
        g.extend([
            (S::RunHostCommandDocument, "ssm:SendCommand"),
            (S::RunHostCommandOnFleet, "ssm:SendCommand"),
            (S::ReadCommandStatus, "ssm:GetCommandInvocation"),
            // A command dake stops waiting for is cancelled.
            (S::ReadCommandStatus, "ssm:CancelCommand"),
        ]);
    }
    g
}

/// What every refresh reads, whatever the playbooks do (DescribeInstances also serves every
/// call's blast-radius check).
fn refresh_grants(endpoint: EndpointKind) -> Vec<(Statement, &'static str)> {
    let mut g = vec![
        (S::ReadFleet, "ec2:DescribeInstances"),
        (S::ReadFleet, "ec2:DescribeInstanceStatus"),
        (S::ReadFleet, "ec2:DescribeVolumes"),
        (S::ReadFleet, "elasticloadbalancing:DescribeTargetGroups"),
        (S::ReadFleet, "elasticloadbalancing:DescribeTargetHealth"),
        // The deregistration delay a drain waits for.
        (
            S::ReadFleet,
            "elasticloadbalancing:DescribeTargetGroupAttributes",
        ),
        (S::ReadFleet, "cloudwatch:GetMetricData"),
    ];
    g.push(match endpoint {
        EndpointKind::Route53 => (S::ReadDbEndpoint, "route53:ListResourceRecordSets"),
        EndpointKind::Ssm => (S::ReadDbEndpoint, "ssm:GetParameter"),
    });
    g
}

/// The policy document for playbooks that make `kinds` of call, on the fleet `config`
/// describes. `region` narrows the resource ARNs (`*` when unknown).
pub fn policy(kinds: &BTreeSet<CallKind>, config: &Config, region: Option<&str>) -> PolicyDocument {
    let aws = &config.aws;
    let mut actions: BTreeMap<Statement, BTreeSet<&'static str>> = BTreeMap::new();
    let all = refresh_grants(aws.db_endpoint_kind)
        .into_iter()
        .chain(kinds.iter().flat_map(|k| grants(*k, aws.db_endpoint_kind)));
    for (statement, action) in all {
        // Without a replicas parameter the notification is refused before any call.
        if statement == S::NotifyReplicas && aws.replicas_parameter.is_empty() {
            continue;
        }
        actions.entry(statement).or_default().insert(action);
    }
    // The journal's mirror: writing it, and reading it back for `dake follow`.
    if config.journal.mirror == crate::config::Mirror::CloudwatchLogs {
        actions.entry(S::MirrorJournal).or_default().extend([
            "logs:CreateLogGroup",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "logs:GetLogEvents",
            "logs:DescribeLogStreams",
        ]);
    }
    let scope = Scope::new(config, region);
    let statements: Vec<PolicyStatement> = actions
        .into_iter()
        .map(|(statement, actions)| PolicyStatement {
            sid: format!("{statement:?}"),
            effect: "Allow",
            action: actions.into_iter().collect(),
            resource: scope.resources(statement),
            condition: scope.condition(statement),
        })
        .collect();
    PolicyDocument {
        version: "2012-10-17",
        statement: statements,
    }
}

/// Printed in the order IAM's own examples use, so the policy reads as people write them.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    version: &'static str,
    statement: Vec<PolicyStatement>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyStatement {
    sid: String,
    effect: &'static str,
    action: Vec<&'static str>,
    resource: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    condition: Option<Value>,
}

/// The fleet's names, as ARNs and conditions.
struct Scope<'a> {
    config: &'a Config,
    region: String,
}

impl Scope<'_> {
    fn new<'a>(config: &'a Config, region: Option<&str>) -> Scope<'a> {
        let region = region
            .filter(|r| !r.is_empty())
            .unwrap_or(&config.fleet.region);
        Scope {
            config,
            region: if region.is_empty() { "*" } else { region }.to_string(),
        }
    }

    fn ec2(&self, kind: &str) -> String {
        format!("arn:aws:ec2:{}:*:{kind}/*", self.region)
    }

    fn parameter(&self, name: &str) -> String {
        format!(
            "arn:aws:ssm:{}:*:parameter/{}",
            self.region,
            name.trim_start_matches('/')
        )
    }

    fn resources(&self, statement: Statement) -> Value {
        let c = self.config;
        let r = &self.region;
        match statement {
            S::ReadFleet | S::ReadCommandStatus | S::PassInstanceRole => json!("*"),
            S::ReadDbEndpoint | S::SwitchDbEndpoint => match c.aws.db_endpoint_kind {
                EndpointKind::Route53 => json!(format!(
                    "arn:aws:route53:::hostedzone/{}",
                    if c.aws.hosted_zone_id.is_empty() {
                        "*"
                    } else {
                        c.aws.hosted_zone_id.as_str()
                    }
                )),
                EndpointKind::Ssm => json!(self.parameter(&c.fleet.db_endpoint)),
            },
            S::ActOnFleetInstances | S::TagFleetResources | S::LaunchIntoFleet | S::TagAtLaunch => {
                json!([self.ec2("instance"), self.ec2("volume")])
            }
            S::LaunchFromExisting => json!([
                format!("arn:aws:ec2:{r}::image/*"),
                self.ec2("image"),
                self.ec2("subnet"),
                self.ec2("security-group"),
                self.ec2("network-interface"),
                self.ec2("key-pair"),
            ]),
            S::ServeFromTargetGroup => {
                let tg = &c.fleet.target_group;
                json!(if tg.starts_with("arn:") {
                    tg.clone()
                } else {
                    format!("arn:aws:elasticloadbalancing:{r}:*:targetgroup/{tg}/*")
                })
            }
            S::RunHostCommandDocument => {
                let doc = &c.aws.ssm_document;
                // AWS-owned documents have no account in their ARN.
                let account = if doc.starts_with("AWS-") { "" } else { "*" };
                json!(format!("arn:aws:ssm:{r}:{account}:document/{doc}"))
            }
            S::RunHostCommandOnFleet => json!(self.ec2("instance")),
            S::NotifyReplicas => json!(self.parameter(&c.aws.replicas_parameter)),
            S::MirrorJournal => {
                let group = format!("arn:aws:logs:{r}:*:log-group:{}", c.log_group());
                json!([group.clone(), format!("{group}:log-stream:*")])
            }
            S::HoldLease => json!(self.parameter(&format!(
                "{}/{}/*",
                c.aws.lease_prefix.trim_end_matches('/'),
                c.fleet.name
            ))),
        }
    }

    fn condition(&self, statement: Statement) -> Option<Value> {
        let fleet = &self.config.fleet.name;
        let tag = |prefix: &str| format!("{prefix}/{TAG_FLEET}");
        Some(match statement {
            S::ActOnFleetInstances => json!({"StringEquals": {tag("aws:ResourceTag"): fleet}}),
            S::TagFleetResources => json!({
                "StringEquals": {tag("aws:ResourceTag"): fleet},
                "ForAllValues:StringEquals": {
                    "aws:TagKeys": [TAG_QUARANTINE, TAG_ROLE, TAG_SOURCE],
                },
            }),
            S::LaunchIntoFleet => json!({"StringEquals": {tag("aws:RequestTag"): fleet}}),
            S::TagAtLaunch => json!({"StringEquals": {"ec2:CreateAction": "RunInstances"}}),
            S::PassInstanceRole => {
                json!({"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}})
            }
            S::RunHostCommandOnFleet => json!({"StringEquals": {tag("ssm:resourceTag"): fleet}}),
            S::SwitchDbEndpoint if self.config.aws.db_endpoint_kind == EndpointKind::Route53 => {
                let name = self.config.fleet.db_endpoint.trim_end_matches('.');
                json!({"ForAllValues:StringEquals": {
                    "route53:ChangeResourceRecordSetsNormalizedRecordNames": [name.to_lowercase()],
                }})
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::model::{Playbook, call_kinds, load_all};

    fn policy(playbooks: &[Playbook], config: &Config, region: Option<&str>) -> Value {
        serde_json::to_value(super::policy(&call_kinds(playbooks), config, region)).unwrap()
    }

    fn actions_of(policy: &Value) -> BTreeSet<String> {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["Action"].as_array().unwrap().iter())
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    }

    fn statement<'a>(policy: &'a Value, sid: &str) -> &'a Value {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == sid)
            .unwrap_or_else(|| panic!("no {sid} in {policy:#}"))
    }

    #[test]
    fn a_permission_is_there_only_while_a_playbook_step_needs_it() {
        let config = Config::builtin();
        let all = load_all(None).unwrap();
        let web: Vec<Playbook> = all
            .iter()
            .filter(|p| p.id == "web-replace")
            .cloned()
            .collect();
        let web_actions = actions_of(&policy(&web, &config, None));
        assert!(web_actions.contains("elasticloadbalancing:DeregisterTargets"));
        assert!(web_actions.contains("ec2:TerminateInstances"));
        assert!(!web_actions.contains("ec2:DetachVolume"));
        assert!(!web_actions.contains("route53:ChangeResourceRecordSets"));
        let every = actions_of(&policy(&all, &config, None));
        assert!(every.contains("ec2:DetachVolume"));
        assert!(every.contains("ec2:StartInstances"));
        assert!(every.contains("route53:ChangeResourceRecordSets"));
        // Refresh reads are there with no playbook at all.
        let none = actions_of(&policy(&[], &config, None));
        assert!(none.contains("cloudwatch:GetMetricData"));
        assert!(none.iter().all(|a| !a.contains("Terminate")));
    }

    #[test]
    fn mutations_are_scoped_to_the_fleet() {
        let mut config = Config::builtin();
        config.fleet.name = "shop-prod".into();
        config.aws.hosted_zone_id = "Z123".into();
        let p = policy(&load_all(None).unwrap(), &config, Some("eu-west-1"));
        let act = statement(&p, "ActOnFleetInstances");
        assert_eq!(
            act["Condition"]["StringEquals"]["aws:ResourceTag/dake:fleet"],
            "shop-prod"
        );
        assert_eq!(act["Resource"][0], "arn:aws:ec2:eu-west-1:*:instance/*");
        let tags = statement(&p, "TagFleetResources");
        let keys = &tags["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"];
        assert!(!keys.as_array().unwrap().iter().any(|k| k == TAG_FLEET));
        assert_eq!(
            statement(&p, "SwitchDbEndpoint")["Resource"],
            "arn:aws:route53:::hostedzone/Z123"
        );
        assert_eq!(
            statement(&p, "ServeFromTargetGroup")["Resource"],
            "arn:aws:elasticloadbalancing:eu-west-1:*:targetgroup/web-tg/*"
        );
        assert_eq!(
            statement(&p, "LaunchIntoFleet")["Condition"]["StringEquals"]["aws:RequestTag/dake:fleet"],
            "shop-prod"
        );
        // No replicas parameter configured: the notification is refused, so not granted.
        assert!(
            p["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["Sid"] != "NotifyReplicas")
        );
    }

    #[test]
    fn an_ssm_endpoint_is_read_and_written_as_its_parameter() {
        let mut config = Config::builtin();
        config.aws.db_endpoint_kind = EndpointKind::Ssm;
        config.fleet.db_endpoint = "/shop/db-endpoint".into();
        let p = policy(&load_all(None).unwrap(), &config, None);
        let switch = statement(&p, "SwitchDbEndpoint");
        assert_eq!(switch["Action"], json!(["ssm:PutParameter"]));
        assert_eq!(
            switch["Resource"],
            "arn:aws:ssm:ap-northeast-1:*:parameter/shop/db-endpoint"
        );
        assert!(!actions_of(&p).contains("route53:ChangeResourceRecordSets"));
    }

    #[test]
    fn every_kind_of_call_is_granted_something() {
        use CallKind as C;
        let kinds = [
            C::RunInstances,
            C::TerminateInstances,
            C::StopInstances,
            C::RebootInstances,
            C::StartInstances,
            C::CreateTags,
            C::RestartApp,
            C::RegisterTarget,
            C::DeregisterTarget,
            C::DetachVolume,
            C::AttachVolume,
            C::StartDatabase,
            C::PromoteReplica,
            C::RepointReplica,
            C::SetDbEndpoint,
            C::NotifyReplicaAdded,
        ];
        for k in kinds {
            let g = grants(k, EndpointKind::Route53);
            let op = k.operation();
            assert!(
                g.iter().any(|(_, a)| a.ends_with(op)),
                "{k:?} is sent as {op}, which its grants {g:?} do not name"
            );
        }
    }
}
