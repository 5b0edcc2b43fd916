//! The side-effecting calls a playbook step makes, as data: shown to the operator before the
//! step runs, journaled before and after, executed by whichever provider is in use.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Role;

/// Tags every resource dake creates carries, so a resumed run finds what it already made.
pub const TAG_RUN: &str = "dake:run";
pub const TAG_STEP: &str = "dake:step";
pub const TAG_ROLE: &str = "dake:role";
pub const TAG_FLEET: &str = "dake:fleet";
pub const TAG_QUARANTINE: &str = "dake:quarantine";
/// The master a replica follows, set by dake when it repoints one (on AWS; MySQL knows it too).
pub const TAG_SOURCE: &str = "dake:source";
/// Set by an operator on a replica that must never be promoted.
pub const TAG_NO_PROMOTE: &str = "dake:no-promote";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "kebab-case")]
pub enum ProviderCall {
    /// Launch one instance. `client_token` makes a retried request idempotent where the API
    /// honours it; the tags let a resumed run find the instance where it does not.
    RunInstances {
        name: String,
        role: Role,
        image_id: String,
        instance_type: String,
        subnet_id: String,
        az: String,
        security_groups: Vec<String>,
        key_name: Option<String>,
        user_data: String,
        tags: Vec<(String, String)>,
        client_token: String,
        /// The instance it is launched like: on AWS its user data and instance profile are
        /// copied (the role line set to `role`).
        #[serde(default)]
        template_id: String,
    },
    TerminateInstances {
        instance_id: String,
    },
    StopInstances {
        instance_id: String,
        force: bool,
    },
    RebootInstances {
        instance_id: String,
    },
    /// Boot a stopped instance (AWS refuses to reboot one).
    StartInstances {
        instance_id: String,
    },
    CreateTags {
        resource_id: String,
        tags: Vec<(String, String)>,
    },
    /// Restart the application daemon on the host (SSM Run Command).
    RestartApp {
        instance_id: String,
    },
    RegisterTarget {
        target_group: String,
        instance_id: String,
    },
    DeregisterTarget {
        target_group: String,
        instance_id: String,
    },
    DetachVolume {
        volume_id: String,
        instance_id: String,
        force: bool,
    },
    AttachVolume {
        volume_id: String,
        instance_id: String,
        device: String,
    },
    /// Start MySQL on the host and wait for it to accept connections (SSM Run Command).
    StartDatabase {
        instance_id: String,
    },
    /// Make a replica the master: stop replication, forget its source, allow writes.
    PromoteReplica {
        instance_id: String,
    },
    /// Point a replica at a (new) master.
    RepointReplica {
        instance_id: String,
        master_id: String,
    },
    /// Change the setting the application reads to find its database.
    SetDbEndpoint {
        name: String,
        target_id: String,
    },
    /// Tell the application that a replica was added.
    NotifyReplicaAdded {
        instance_id: String,
    },
    /// Statements run in order on the instance's database server over the MySQL protocol (the
    /// `mysql` database source), as they were shown: never a secret among them. A statement
    /// that returns a value is a check: 0 passes, anything else fails the call with it (a GTID
    /// wait that timed out). With `kill_clients`, every client connection is then killed (a
    /// fenced master must not keep serving what it already holds open).
    /// Take the lease of a fleet's tier before the run's first destructive call (see
    /// `domain::lease`): refused while another run holds it.
    TakeLease {
        key: String,
        run_id: String,
        /// `user@host` of the run; the provider stamps when it takes and renews it.
        operator: String,
        /// The run id the operator named to take a stale lease over.
        take_over: Option<String>,
        stale_secs: u64,
        /// Refused when another run failed the tier over less than this long ago (its record
        /// beside the lease), unless the operator lifted anti-flapping.
        #[serde(default)]
        anti_flap_secs: u64,
        #[serde(default)]
        flapping_allowed: bool,
    },
    /// Give the lease back at the end of the run, when this run still holds it; a run that
    /// failed the tier over leaves the record of it for every console's anti-flapping.
    ReleaseLease {
        key: String,
        run_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failover: Option<super::lease::FailoverRecord>,
    },
    Sql {
        instance_id: String,
        statements: Vec<String>,
        #[serde(default)]
        kill_clients: bool,
    },
}

pub use super::call_kind::CallKind;

impl ProviderCall {
    /// A call that fails a tier over, or takes a server out of it: what anti-flapping counts,
    /// whatever became of the run that made it. Launches, deregistrations, terminations,
    /// stops, detaches, promotions (by command or by SQL that resets replication) and
    /// endpoint switches; SQL that fences a master (read-only on) too.
    pub fn is_failover_action(&self) -> bool {
        match self {
            ProviderCall::Sql { statements, .. } => statements.iter().any(|s| {
                let s = s.to_ascii_uppercase();
                s.starts_with("RESET REPLICA") || s.starts_with("RESET SLAVE") || {
                    let s = s.replace(' ', "");
                    s.contains("READ_ONLY=ON") || s.contains("READ_ONLY=1")
                }
            }),
            call => matches!(
                call.kind(),
                CallKind::RunInstances
                    | CallKind::DeregisterTarget
                    | CallKind::TerminateInstances
                    | CallKind::StopInstances
                    | CallKind::DetachVolume
                    | CallKind::PromoteReplica
                    | CallKind::SetDbEndpoint
            ),
        }
    }

    pub fn kind(&self) -> CallKind {
        match self {
            ProviderCall::RunInstances { .. } => CallKind::RunInstances,
            ProviderCall::TerminateInstances { .. } => CallKind::TerminateInstances,
            ProviderCall::StopInstances { .. } => CallKind::StopInstances,
            ProviderCall::RebootInstances { .. } => CallKind::RebootInstances,
            ProviderCall::StartInstances { .. } => CallKind::StartInstances,
            ProviderCall::CreateTags { .. } => CallKind::CreateTags,
            ProviderCall::RestartApp { .. } => CallKind::RestartApp,
            ProviderCall::RegisterTarget { .. } => CallKind::RegisterTarget,
            ProviderCall::DeregisterTarget { .. } => CallKind::DeregisterTarget,
            ProviderCall::DetachVolume { .. } => CallKind::DetachVolume,
            ProviderCall::AttachVolume { .. } => CallKind::AttachVolume,
            ProviderCall::StartDatabase { .. } => CallKind::StartDatabase,
            ProviderCall::PromoteReplica { .. } => CallKind::PromoteReplica,
            ProviderCall::RepointReplica { .. } => CallKind::RepointReplica,
            ProviderCall::SetDbEndpoint { .. } => CallKind::SetDbEndpoint,
            ProviderCall::NotifyReplicaAdded { .. } => CallKind::NotifyReplicaAdded,
            ProviderCall::TakeLease { .. } => CallKind::TakeLease,
            ProviderCall::ReleaseLease { .. } => CallKind::ReleaseLease,
            ProviderCall::Sql { .. } => CallKind::Sql,
        }
    }

    /// The AWS API operation this call is, for the timeline.
    pub fn operation(&self) -> &'static str {
        self.kind().operation()
    }

    /// Instance and volume ids a call names (templates and masters included).
    pub fn resources(&self) -> (Vec<&str>, Vec<&str>) {
        let mut instances = Vec::new();
        let mut volumes = Vec::new();
        match self {
            ProviderCall::RunInstances { template_id, .. } => instances.push(template_id.as_str()),
            ProviderCall::TerminateInstances { instance_id }
            | ProviderCall::StopInstances { instance_id, .. }
            | ProviderCall::RebootInstances { instance_id }
            | ProviderCall::StartInstances { instance_id }
            | ProviderCall::RestartApp { instance_id }
            | ProviderCall::RegisterTarget { instance_id, .. }
            | ProviderCall::DeregisterTarget { instance_id, .. }
            | ProviderCall::StartDatabase { instance_id }
            | ProviderCall::PromoteReplica { instance_id }
            | ProviderCall::Sql { instance_id, .. }
            | ProviderCall::NotifyReplicaAdded { instance_id } => instances.push(instance_id),
            ProviderCall::RepointReplica {
                instance_id,
                master_id,
            } => instances.extend([instance_id.as_str(), master_id.as_str()]),
            ProviderCall::SetDbEndpoint { target_id, .. } => instances.push(target_id),
            // A lease names no instance or volume: nothing of the fleet's to check.
            ProviderCall::TakeLease { .. } | ProviderCall::ReleaseLease { .. } => {}
            ProviderCall::CreateTags { resource_id, .. } if resource_id.starts_with("vol-") => {
                volumes.push(resource_id.as_str())
            }
            ProviderCall::CreateTags { resource_id, .. } => instances.push(resource_id),
            ProviderCall::DetachVolume {
                volume_id,
                instance_id,
                ..
            }
            | ProviderCall::AttachVolume {
                volume_id,
                instance_id,
                ..
            } => {
                instances.push(instance_id);
                volumes.push(volume_id);
            }
        }
        instances.retain(|id| !id.is_empty());
        (instances, volumes)
    }

    /// True for calls that create a resource: on resume they are looked up by tag, never
    /// simply sent again.
    pub fn creates(&self) -> bool {
        matches!(self, ProviderCall::RunInstances { .. })
    }
}

/// Statements as they run, one after another, and the kill that follows a fence.
fn sql_text(statements: &[String], kill_clients: bool) -> String {
    let mut out = format!("\"{}\"", statements.join("; "));
    if kill_clients {
        out.push_str(", then KILL every client connection");
    }
    out
}

fn tags(t: &[(String, String)]) -> String {
    t.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl ProviderCall {
    fn write_launch(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ProviderCall::RunInstances {
            image_id,
            instance_type,
            subnet_id,
            az,
            user_data,
            tags: t,
            ..
        } = self
        else {
            return Ok(());
        };
        write!(
            f,
            "{} image={image_id} type={instance_type} subnet={subnet_id} az={az} user-data {user_data}, tags {}",
            self.operation(),
            tags(t)
        )
    }

    fn write_release(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ProviderCall::ReleaseLease {
            key,
            run_id,
            failover,
        } = self
        else {
            return Ok(());
        };
        write!(f, "{} lease {key} of run {run_id}", self.operation())?;
        match failover {
            Some(r) => write!(f, " (failed over at {})", r.at.format("%H:%M:%S")),
            None => Ok(()),
        }
    }
}

impl fmt::Display for ProviderCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = self.operation();
        match self {
            ProviderCall::RunInstances { .. } => self.write_launch(f),
            ProviderCall::TerminateInstances { instance_id } => write!(f, "{op} {instance_id}"),
            ProviderCall::StopInstances { instance_id, force } => {
                write!(
                    f,
                    "{op} {instance_id}{}",
                    if *force { " force" } else { "" }
                )
            }
            ProviderCall::RebootInstances { instance_id }
            | ProviderCall::StartInstances { instance_id } => write!(f, "{op} {instance_id}"),
            ProviderCall::CreateTags {
                resource_id,
                tags: t,
            } => {
                write!(f, "{op} {resource_id} {}", tags(t))
            }
            ProviderCall::RestartApp { instance_id } => {
                write!(
                    f,
                    "{op} {instance_id} AWS-RunShellScript \"systemctl restart app\""
                )
            }
            ProviderCall::RegisterTarget {
                target_group,
                instance_id,
            } => {
                write!(f, "{op} {target_group} {instance_id}")
            }
            ProviderCall::DeregisterTarget {
                target_group,
                instance_id,
            } => {
                write!(f, "{op} {target_group} {instance_id}")
            }
            ProviderCall::DetachVolume {
                volume_id,
                instance_id,
                force,
            } => write!(
                f,
                "{op} {volume_id} from {instance_id}{}",
                if *force { " FORCE" } else { "" }
            ),
            ProviderCall::AttachVolume {
                volume_id,
                instance_id,
                device,
            } => {
                write!(f, "{op} {volume_id} to {instance_id} as {device}")
            }
            ProviderCall::StartDatabase { instance_id } => {
                write!(
                    f,
                    "{op} {instance_id} AWS-RunShellScript \"systemctl start mysql\""
                )
            }
            ProviderCall::PromoteReplica { instance_id } => write!(
                f,
                "{op} {instance_id} \"STOP REPLICA; RESET REPLICA ALL; SET GLOBAL read_only=OFF\""
            ),
            ProviderCall::RepointReplica {
                instance_id,
                master_id,
            } => write!(
                f,
                "{op} {instance_id} \"CHANGE MASTER TO MASTER_HOST=<{master_id}>, MASTER_USE_GTID=slave_pos\""
            ),
            ProviderCall::SetDbEndpoint { name, target_id } => {
                write!(f, "{op} UPSERT {name} → {target_id}")
            }
            ProviderCall::NotifyReplicaAdded { instance_id } => {
                write!(f, "{op} replica-added {instance_id}")
            }
            ProviderCall::TakeLease { key, run_id, .. } => {
                write!(f, "{op} lease {key} for run {run_id}")
            }
            ProviderCall::ReleaseLease { .. } => self.write_release(f),
            ProviderCall::Sql {
                instance_id,
                statements,
                kill_clients,
            } => write!(
                f,
                "{op} {instance_id} {}",
                sql_text(statements, *kill_clients)
            ),
        }
    }
}

/// What a provider answered to one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallOutcome {
    /// Ids the call created (a launched instance), if any.
    pub created: Vec<String>,
    /// The provider's request id, for the timeline and a support case.
    pub request_id: String,
    /// What a command run on the host printed (its last lines), for the timeline: what the
    /// database logged as it started, for one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
}

/// At most this much of what a host command printed is kept: its last lines, where a log's
/// conclusion is.
pub const OUTPUT_KEEP_LINES: usize = 20;
pub const OUTPUT_KEEP_CHARS: usize = 2000;

/// `text`'s last [`OUTPUT_KEEP_LINES`] non-empty lines, at most [`OUTPUT_KEEP_CHARS`] characters
/// of them (the newest kept).
pub fn output_tail(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let kept = lines[lines.len().saturating_sub(OUTPUT_KEEP_LINES)..].join("\n");
    let skip = kept.chars().count().saturating_sub(OUTPUT_KEEP_CHARS);
    kept.chars().skip(skip).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failover_actions_are_those_that_move_or_remove_a_server() {
        let sql = |statements: &[&str]| ProviderCall::Sql {
            instance_id: "i-1".into(),
            statements: statements.iter().map(|s| s.to_string()).collect(),
            kill_clients: false,
        };
        assert!(sql(&["STOP REPLICA", "RESET REPLICA ALL"]).is_failover_action());
        assert!(sql(&["SET GLOBAL read_only = ON"]).is_failover_action());
        assert!(sql(&["SET PERSIST super_read_only = ON"]).is_failover_action());
        assert!(
            !sql(&[
                "START REPLICA SQL_THREAD",
                "SELECT MASTER_GTID_WAIT('0-1-5', 300)"
            ])
            .is_failover_action()
        );
        assert!(!sql(&["SET GLOBAL read_only = OFF"]).is_failover_action());
        let id = || "i-1".to_string();
        assert!(!ProviderCall::RestartApp { instance_id: id() }.is_failover_action());
        assert!(!ProviderCall::RebootInstances { instance_id: id() }.is_failover_action());
        assert!(ProviderCall::TerminateInstances { instance_id: id() }.is_failover_action());
        assert!(
            ProviderCall::SetDbEndpoint {
                name: "db".into(),
                target_id: id()
            }
            .is_failover_action()
        );
    }

    #[test]
    fn a_host_commands_output_keeps_its_last_lines() {
        let many: String = (1..=30).map(|n| format!("line {n}\n\n")).collect();
        let kept = output_tail(&many);
        assert_eq!(kept.lines().count(), OUTPUT_KEEP_LINES);
        assert!(
            kept.starts_with("line 11\n") && kept.ends_with("line 30"),
            "{kept}"
        );
        let long = "x".repeat(5000);
        assert_eq!(output_tail(&long).chars().count(), OUTPUT_KEEP_CHARS);
        assert_eq!(output_tail("  \n\n"), "");
    }

    #[test]
    fn every_resource_a_call_names_is_checked() {
        let call = ProviderCall::RepointReplica {
            instance_id: "i-r".into(),
            master_id: "i-m".into(),
        };
        assert_eq!(call.resources(), (vec!["i-r", "i-m"], vec![]));
        let call = ProviderCall::DetachVolume {
            volume_id: "vol-1".into(),
            instance_id: "i-m".into(),
            force: false,
        };
        assert_eq!(call.resources(), (vec!["i-m"], vec!["vol-1"]));
        let call = ProviderCall::CreateTags {
            resource_id: "vol-2".into(),
            tags: vec![],
        };
        assert_eq!(call.resources(), (vec![], vec!["vol-2"]));
    }
}
