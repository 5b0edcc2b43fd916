//! Playbooks as data: embedded from assets/runbooks/, overridable by files in the XDG config dir
//! (`dake/runbooks/<id>.toml`). Steps name an action implemented in the engine; parsing is strict
//! and errors name the file, line and key.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, IncidentKind, toml_error};
use crate::domain::Role;
use crate::domain::call::CallKind;

pub const BUILTIN: &[(&str, &str)] = &[
    (
        "assets/runbooks/web-replace.toml",
        include_str!("../../assets/runbooks/web-replace.toml"),
    ),
    (
        "assets/runbooks/db-ebs-move.toml",
        include_str!("../../assets/runbooks/db-ebs-move.toml"),
    ),
    (
        "assets/runbooks/db-promote.toml",
        include_str!("../../assets/runbooks/db-promote.toml"),
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    ComparePeers,
    RestartApp,
    LaunchReplacement,
    RegisterTarget,
    DeregisterTarget,
    DisposeInstance,
    ConfirmMasterDown,
    RebootInstance,
    StopInstance,
    DetachVolume,
    LaunchDbInstance,
    AttachVolume,
    StartDatabase,
    SwitchEndpoint,
    RepointReplicas,
    RankReplicas,
    /// Make sure the old master cannot take writes: read-only with its clients cut off when it
    /// answers, else stopped through EC2 and tagged quarantined.
    FenceMaster,
    /// The chosen replica applies everything it received before it is promoted.
    CatchUp,
    PromoteReplica,
    /// Take the old master out of the fleet (retagged, quarantined), so one master shows.
    RetireOldMaster,
    LaunchReplica,
    NotifyApp,
}

impl ActionKind {
    /// Every kind of call the action may make (a quarantine, a stopped instance and so on
    /// included): what the IAM policy is generated from.
    pub fn makes(self) -> &'static [CallKind] {
        use CallKind as C;
        match self {
            ActionKind::ComparePeers | ActionKind::ConfirmMasterDown | ActionKind::RankReplicas => {
                &[]
            }
            ActionKind::RestartApp => &[C::RestartApp],
            ActionKind::LaunchReplacement
            | ActionKind::LaunchDbInstance
            | ActionKind::LaunchReplica => &[C::RunInstances],
            ActionKind::RegisterTarget => &[C::RegisterTarget],
            ActionKind::DeregisterTarget => &[C::DeregisterTarget],
            ActionKind::DisposeInstance => {
                &[C::TerminateInstances, C::StopInstances, C::CreateTags]
            }
            ActionKind::RebootInstance => &[C::RebootInstances, C::StartInstances],
            ActionKind::StopInstance => &[C::StopInstances],
            ActionKind::DetachVolume => &[C::DetachVolume],
            ActionKind::AttachVolume => &[C::AttachVolume],
            ActionKind::StartDatabase => &[C::StartDatabase, C::Sql],
            ActionKind::SwitchEndpoint => &[C::SetDbEndpoint],
            ActionKind::RepointReplicas => &[C::RepointReplica, C::Sql, C::CreateTags],
            ActionKind::FenceMaster => &[C::Sql, C::StopInstances, C::CreateTags],
            ActionKind::CatchUp => &[C::Sql],
            ActionKind::PromoteReplica => &[C::PromoteReplica, C::Sql, C::CreateTags],
            ActionKind::RetireOldMaster => &[C::StopInstances, C::CreateTags],
            ActionKind::NotifyApp => &[C::NotifyReplicaAdded],
        }
    }
}

/// What success looks like for a step, checked against each new snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitKind {
    /// The target's latency is back among its peers.
    LatencyRecovered,
    /// Running with both status checks passing.
    InstanceReady,
    TargetHealthy,
    /// Out of the target group, connections drained.
    TargetDrained,
    /// Terminated and gone, or stopped and tagged when quarantined.
    InstanceGone,
    /// The master's heartbeat is fresh and its checks pass.
    MasterAnswering,
    InstanceStopped,
    VolumeAvailable,
    VolumeAttached,
    /// MySQL runs on the new instance.
    DbAnswering,
    /// The promoted replica accepts writes.
    DbWritable,
    /// The old master cannot take writes: stopped or gone, or answering read-only.
    MasterFenced,
    /// The chosen replica has applied all it received (its relay log is empty).
    RelayLogApplied,
    EndpointSwitched,
    /// Every other replica follows the new master.
    ReplicasFollowing,
    /// The new replica follows the master.
    ReplicaFollowing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GuardKind {
    /// Never take the last healthy target out of the load balancer.
    KeepsAHealthyTarget,
    /// Warn (not refuse) when a zone would be left without a healthy web server.
    ZoneBalance,
    /// A database instance for a volume must be in the volume's zone.
    SameZoneAsVolume,
    /// Some replica is promotable (lag, SQL thread, binary log, no-promote tag).
    PromotableReplica,
    /// The master is still down, checked again right before the step (it may have come back
    /// since the run started): the same test as confirm-down, with its override.
    MasterStillDown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Confirm {
    /// Decided by `destructive`: a second key for destructive steps, none otherwise.
    #[default]
    Auto,
    /// A second key press.
    Key,
    /// Type the last characters of the instance or volume id (`confirm::confirm_suffix`).
    TypeId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnTimeout {
    /// The run stops with the step failed; retry or abort.
    #[default]
    Fail,
    /// Give up on this step's hope and go on: "cut your losses".
    Continue,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: String,
    pub why: String,
    pub action: ActionKind,
    #[serde(default)]
    pub wait: Option<WaitKind>,
    #[serde(default)]
    pub guards: Vec<GuardKind>,
    #[serde(default)]
    pub destructive: bool,
    #[serde(default)]
    pub confirm: Confirm,
    pub timeout_secs: u64,
    #[serde(default)]
    pub on_timeout: OnTimeout,
    /// When the wait succeeds the incident is over and the remaining steps are skipped.
    #[serde(default)]
    pub finish_on_success: bool,
    /// Service is restored once this step is done (the postmortem's time to mitigate).
    #[serde(default)]
    pub mitigates: bool,
}

impl Step {
    /// The confirmation this step needs, after `Confirm::Auto` is resolved.
    pub fn confirmation(&self) -> Confirm {
        match self.confirm {
            Confirm::Auto if self.destructive => Confirm::Key,
            Confirm::Auto => Confirm::Auto,
            other => other,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    pub id: String,
    pub title: String,
    /// The console key that starts it (upper case, so no single slip of a finger does).
    pub key: char,
    /// The incident it answers: the banner suggests it when detection sees one.
    pub incident: IncidentKind,
    /// Among the playbooks for the same incident, the lowest rank is offered first. A file
    /// without one keeps the rank of the built-in playbook it replaces, else comes last.
    #[serde(default)]
    pub rank: Option<u8>,
    pub target_role: Role,
    #[serde(rename = "step")]
    pub steps: Vec<Step>,
}

impl Playbook {
    pub fn parse(text: &str, file: &str) -> Result<Playbook, ConfigError> {
        let pb: Playbook = toml::from_str(text).map_err(|e| toml_error(&e, text, file))?;
        let fail = crate::config::invalid_key(text, file);
        if !pb.key.is_ascii_uppercase() {
            return Err(fail(
                "key",
                say!("`{}` must be an upper-case letter", pb.key),
            ));
        }
        if pb.steps.is_empty() {
            return Err(fail(
                "step",
                said!("a playbook needs at least one step").into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for s in &pb.steps {
            if !seen.insert(s.name.as_str()) {
                return Err(fail("name", say!("step name `{}` is used twice", s.name)));
            }
            if s.timeout_secs == 0 {
                return Err(fail(
                    "timeout_secs",
                    say!("step `{}`: must be at least 1", s.name),
                ));
            }
            if s.finish_on_success && s.wait.is_none() {
                return Err(fail(
                    "finish_on_success",
                    say!(
                        "step `{}`: needs a `wait` that says what success is",
                        s.name
                    ),
                ));
            }
        }
        Ok(pb)
    }

    /// Whether a step disposes of the bad instance, terminated or quarantined as the operator
    /// chose (db-promote retires the old master its own way, so there is nothing to choose).
    pub fn disposes(&self) -> bool {
        self.steps
            .iter()
            .any(|s| s.action == ActionKind::DisposeInstance)
    }

    pub fn step_index(&self, name: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.name == name)
    }
}

/// The built-in playbooks, each replaced by a user file of the same id in `user_dir` if present.
pub fn load_all(user_dir: Option<&Path>) -> Result<Vec<Playbook>, ConfigError> {
    let mut out = Vec::new();
    for (file, text) in BUILTIN {
        out.push(Playbook::parse(text, file)?);
    }
    for (file, text) in crate::config::user_files(user_dir)? {
        let mut pb = Playbook::parse(&text, &file)?;
        match out.iter_mut().find(|p| p.id == pb.id) {
            Some(slot) => {
                pb.rank = pb.rank.or(slot.rank);
                *slot = pb;
            }
            None => out.push(pb),
        }
    }
    Ok(out)
}

/// The playbook with this id.
pub fn find<'a>(playbooks: &'a [Playbook], id: &str) -> Option<&'a Playbook> {
    playbooks.iter().find(|p| p.id == id)
}

/// The playbooks that answer `incident`, the preferred (lowest rank) first; unranked ones
/// last, in the order they were loaded.
pub fn for_incident(playbooks: &[Playbook], incident: IncidentKind) -> Vec<&Playbook> {
    let mut out: Vec<&Playbook> = playbooks
        .iter()
        .filter(|p| p.incident == incident)
        .collect();
    out.sort_by_key(|p| p.rank.unwrap_or(u8::MAX));
    out
}

/// Said where a playbook would be suggested when no playbook answers the incident.
pub const NO_PLAYBOOK: &str = "no playbook";

/// What detection found and the playbooks that answer it, as the timeline and `dake status`
/// say it: "master DB down: … → db-promote or db-ebs-move". Two playbooks, the usual case,
/// have a template of their own, so the "or" reads in Japanese too.
pub fn incident_line<'a>(summary: &str, ids: impl IntoIterator<Item = &'a str>) -> String {
    let ids: Vec<&str> = ids.into_iter().collect();
    match ids.as_slice() {
        [one, other] => say!("{summary} → {one} or {other}"),
        _ => say!("{summary} → {}", suggestion_of(ids)),
    }
}

/// "db-promote or db-ebs-move" from the playbooks' ids, or that there is none.
pub fn suggestion_of<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    let ids: Vec<&str> = ids.into_iter().collect();
    if ids.is_empty() {
        return NO_PLAYBOOK.into();
    }
    ids.join(" or ")
}

/// Every kind of call `playbooks` may make: what the IAM policy grants.
pub fn call_kinds(playbooks: &[Playbook]) -> std::collections::BTreeSet<CallKind> {
    let steps = || playbooks.iter().flat_map(|p| p.steps.iter());
    let mut kinds: std::collections::BTreeSet<CallKind> = steps()
        .flat_map(|s| s.action.makes().iter().copied())
        .collect();
    // A destructive step first takes its tier's lease; the run gives it back at its end.
    if steps().any(|s| s.destructive) {
        kinds.extend([CallKind::TakeLease, CallKind::ReleaseLease]);
    }
    kinds
}

/// Where user playbooks live: `dake/runbooks/` in the XDG config dir.
pub fn user_dir() -> Option<std::path::PathBuf> {
    dirs::config_dir().map(|d| d.join("dake").join("runbooks"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_playbooks_parse_and_match_their_incidents() {
        let all = load_all(None).unwrap();
        let ids: Vec<_> = all.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["web-replace", "db-ebs-move", "db-promote"]);
        let keys: std::collections::HashSet<_> = all.iter().map(|p| p.key).collect();
        assert_eq!(keys.len(), all.len(), "every playbook has its own key");
        let suggested = |kind| {
            let found = for_incident(&all, kind);
            found.iter().map(|p| p.id.as_str()).collect::<Vec<_>>()
        };
        assert_eq!(suggested(IncidentKind::SlowWeb), ["web-replace"]);
        assert_eq!(
            suggested(IncidentKind::MasterDown),
            ["db-promote", "db-ebs-move"],
            "the physical way first, as the talk tells it"
        );
        let web = &all[0];
        let dispose = &web.steps[web.step_index("dispose").unwrap()];
        assert_eq!(dispose.confirmation(), Confirm::TypeId);
        let dereg = &web.steps[web.step_index("deregister").unwrap()];
        assert_eq!(dereg.confirmation(), Confirm::Key);
        assert!(dereg.guards.contains(&GuardKind::KeepsAHealthyTarget));
    }

    #[test]
    fn unknown_action_names_file_line_and_key() {
        let text = "id = \"x\"\ntitle = \"t\"\nkey = \"X\"\nincident = \"slow-web\"\ntarget_role = \"web\"\n\n[[step]]\nname = \"a\"\nwhy = \"b\"\naction = \"reboot-everything\"\ntimeout_secs = 5\n";
        let err = Playbook::parse(text, "x.toml").unwrap_err().to_string();
        assert!(err.starts_with("x.toml:10: key `action`"), "{err}");
    }

    #[test]
    fn unknown_step_key_and_duplicate_names_are_refused() {
        let head = "id = \"x\"\ntitle = \"t\"\nkey = \"X\"\nincident = \"slow-web\"\ntarget_role = \"web\"\n";
        let step = |extra: &str| {
            format!(
                "[[step]]\nname = \"a\"\nwhy = \"b\"\naction = \"compare-peers\"\ntimeout_secs = 5\n{extra}"
            )
        };
        let err = Playbook::parse(&format!("{head}{}", step("colour = 1\n")), "x.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("key `colour`"), "{err}");
        let err = Playbook::parse(&format!("{head}{}{}", step(""), step("")), "x.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("used twice"), "{err}");
    }

    #[test]
    fn a_user_file_overrides_the_builtin_of_the_same_id() {
        let dir = tempfile::tempdir().unwrap();
        let text = BUILTIN[0]
            .1
            .replace("Replace a slow web server", "Our own replacement");
        std::fs::write(dir.path().join("web-replace.toml"), text).unwrap();
        let all = load_all(Some(dir.path())).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].title, "Our own replacement");
    }

    #[test]
    fn an_unranked_file_keeps_the_builtins_rank_or_comes_last() {
        let dir = tempfile::tempdir().unwrap();
        let (_, ebs) = BUILTIN[1];
        let unranked = |text: &str| {
            let lines = text.lines().filter(|l| !l.starts_with("rank ="));
            lines.collect::<Vec<_>>().join("\n")
        };
        std::fs::write(dir.path().join("ebs.toml"), unranked(ebs)).unwrap();
        let own = unranked(ebs).replace("id = \"db-ebs-move\"", "id = \"db-own\"");
        let own = own.replace("key = \"E\"", "key = \"O\"");
        std::fs::write(dir.path().join("own.toml"), own).unwrap();
        let all = load_all(Some(dir.path())).unwrap();
        let order: Vec<&str> = for_incident(&all, IncidentKind::MasterDown)
            .iter()
            .map(|p| p.id.as_str())
            .collect();
        assert_eq!(order, ["db-promote", "db-ebs-move", "db-own"]);
        let none = for_incident(&all[..1], IncidentKind::MasterDown);
        assert_eq!(
            suggestion_of(none.iter().map(|p| p.id.as_str())),
            NO_PLAYBOOK
        );
    }
}
