//! The kinds of call a playbook makes, without their arguments.

/// What kind of call a [`super::call::ProviderCall`] is, without its arguments: what a playbook action may
/// make, and what the IAM policy must allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallKind {
    RunInstances,
    TerminateInstances,
    StopInstances,
    RebootInstances,
    StartInstances,
    CreateTags,
    RestartApp,
    RegisterTarget,
    DeregisterTarget,
    DetachVolume,
    AttachVolume,
    StartDatabase,
    PromoteReplica,
    RepointReplica,
    SetDbEndpoint,
    NotifyReplicaAdded,
    Sql,
    TakeLease,
    ReleaseLease,
}

impl CallKind {
    pub const ALL: [CallKind; 19] = [
        CallKind::RunInstances,
        CallKind::TerminateInstances,
        CallKind::StopInstances,
        CallKind::RebootInstances,
        CallKind::StartInstances,
        CallKind::CreateTags,
        CallKind::RestartApp,
        CallKind::RegisterTarget,
        CallKind::DeregisterTarget,
        CallKind::DetachVolume,
        CallKind::AttachVolume,
        CallKind::StartDatabase,
        CallKind::PromoteReplica,
        CallKind::RepointReplica,
        CallKind::SetDbEndpoint,
        CallKind::NotifyReplicaAdded,
        CallKind::Sql,
        CallKind::TakeLease,
        CallKind::ReleaseLease,
    ];

    /// The AWS API operation this call is, for the timeline.
    pub fn operation(self) -> &'static str {
        match self {
            CallKind::RunInstances => "RunInstances",
            CallKind::TerminateInstances => "TerminateInstances",
            CallKind::StopInstances => "StopInstances",
            CallKind::RebootInstances => "RebootInstances",
            CallKind::StartInstances => "StartInstances",
            CallKind::CreateTags => "CreateTags",
            CallKind::RegisterTarget => "RegisterTargets",
            CallKind::DeregisterTarget => "DeregisterTargets",
            CallKind::DetachVolume => "DetachVolume",
            CallKind::AttachVolume => "AttachVolume",
            CallKind::RestartApp
            | CallKind::StartDatabase
            | CallKind::PromoteReplica
            | CallKind::RepointReplica => "SendCommand",
            CallKind::SetDbEndpoint => "ChangeResourceRecordSets",
            CallKind::NotifyReplicaAdded | CallKind::TakeLease => "PutParameter",
            CallKind::ReleaseLease => "DeleteParameter",
            CallKind::Sql => "SQL",
        }
    }

    /// Host steps, sent through SSM Run Command: they wait on the host, not only on an API.
    pub fn runs_on_host(self) -> bool {
        self.operation() == "SendCommand"
    }

    /// EC2 mutations: the ones AWS can check with `DryRun` before doing them.
    pub fn has_dry_run(self) -> bool {
        matches!(
            self,
            CallKind::RunInstances
                | CallKind::TerminateInstances
                | CallKind::StopInstances
                | CallKind::RebootInstances
                | CallKind::StartInstances
                | CallKind::CreateTags
                | CallKind::DetachVolume
                | CallKind::AttachVolume
        )
    }
}
