//! What the console and the headless CLI share to start or pick up a run: its id, who runs it,
//! its context, the incident it answers, the playbook a journaled run used. Neither driver
//! imports the other; both import this (and `confirm` for how a typed confirmation reads).

use chrono::{DateTime, Duration, Utc};

use super::event::Event;
use super::journal::RunSummary;
use super::model::Playbook;
use super::overrides::Override;
use super::plan::RunContext;
use crate::config::{Config, DetectConfig};
use crate::detect::{Incident, detect_once};
use crate::domain::FleetSnapshot;
use crate::text::tail;

/// Characters of the salt at the end of a run id.
const SALT_LEN: usize = 4;

/// The end of a run id that tells it from runs started in the same second: what the names of
/// instances the run creates end in.
pub fn run_salt(run_id: &str) -> &str {
    tail(run_id, SALT_LEN)
}

/// Where run ids come from. An id sorts by start time and says what ran,
/// `20261126T054400Z-web-replace-3f2a`; its last part keeps apart runs started in the same
/// second (the fleet clock may be coarse). A clash is refused when the journal is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunIds(Salt);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Salt {
    /// Counted up from a start salted by the wall clock and the process id.
    Counter(u16),
    /// The same every time: tests and benchmarks, whose screens must read alike on every run.
    Fixed(String),
}

impl RunIds {
    /// Salted from the wall clock's nanoseconds and the process id, so two processes starting
    /// runs in the same second differ; each later id of this process counts on from there.
    pub fn from_clock() -> RunIds {
        let salt = (Utc::now().timestamp_subsec_nanos() ^ std::process::id()) & 0xffff;
        RunIds(Salt::Counter(salt as u16))
    }

    /// Every id ends in `salt`, of `SALT_LEN` characters like a counted one: runs started in
    /// the same second get the same id, so a source this fixed serves one run a second.
    pub fn fixed(salt: &str) -> RunIds {
        debug_assert_eq!(
            salt.chars().count(),
            SALT_LEN,
            "a salt of {SALT_LEN} characters"
        );
        RunIds(Salt::Fixed(salt.to_string()))
    }

    /// The id of a run of `playbook` starting at `now` on the fleet's clock.
    pub fn next(&mut self, playbook: &str, now: DateTime<Utc>) -> String {
        let salt = match &mut self.0 {
            Salt::Counter(n) => {
                let salt = format!("{n:0SALT_LEN$x}");
                *n = n.wrapping_add(1);
                salt
            }
            Salt::Fixed(s) => s.clone(),
        };
        format!("{}-{playbook}-{salt}", now.format("%Y%m%dT%H%M%SZ"))
    }
}

/// `user@host`, for the journal and the postmortem.
pub fn operator() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(user_from_passwd)
        .unwrap_or_else(|| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{user}@{host}")
}

/// The login name of this process's uid, for when USER and LOGNAME are not set (cron, sudo -i).
fn user_from_passwd() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)? == uid).then(|| name.to_string())
    })
}

/// The context of a run on `target` (id, name), with this console's settings. A resumed run
/// takes its target and options from its journal instead (see `Run::replay`).
pub fn context(
    config: &Config,
    run_id: &str,
    target: (&str, &str),
    quarantine: bool,
    overrides: &[Override],
) -> RunContext {
    RunContext {
        run_id: run_id.to_string(),
        fleet: config.fleet.name.clone(),
        target_id: target.0.to_string(),
        target_name: target.1.to_string(),
        target_group: config.fleet.target_group.clone(),
        db_endpoint: config.fleet.db_endpoint.clone(),
        replica_max_lag_secs: config.detect.replica_max_lag_secs,
        master_heartbeat_secs: config.detect.master_heartbeat_secs,
        slow_web_clear_factor: config.detect.slow_web_clear_factor,
        slow_web_window_secs: config.detect.slow_web_window_secs,
        quarantine,
        overrides: overrides.iter().copied().collect(),
        operator: String::new(),
        lease_stale_secs: config.runbook.lease_stale_secs,
        anti_flap_secs: config.runbook.anti_flap_secs,
        heartbeat_table: config.database.heartbeat_table.clone(),
        heartbeat_utc: config.database.heartbeat_utc,
        vars: Default::default(),
    }
}

/// The context a journaled run is replayed with: this console's settings; its target and
/// options come from the journal.
pub fn resume_context(config: &Config, run_id: &str) -> RunContext {
    context(config, run_id, ("", ""), false, &[])
}

/// The incident a run answers, as the engine records it for the postmortem: detected when
/// detection first saw it, begun a detection window before that.
pub fn incident_event(incident: &Incident, detect: &DetectConfig) -> Event<'static> {
    let window = Duration::seconds(i64::from(detect.slow_web_window_secs));
    Event::Incident {
        summary: incident.summary.clone(),
        detected_at: incident.since,
        onset_at: incident.since - window,
    }
}

/// The incident detection sees `target_id` in on one snapshot, as [`incident_event`] records
/// it: for a run started without a console that has been watching.
pub fn incident_event_on(
    snap: &FleetSnapshot,
    detect: &DetectConfig,
    target_id: &str,
) -> Option<Event<'static>> {
    detect_once(snap, detect)
        .iter()
        .find(|i| i.instance_id == target_id)
        .map(|i| incident_event(i, detect))
}

/// The playbook a journaled run used; refused when it is no longer defined.
pub fn playbook_of<'a>(
    playbooks: &'a [Playbook],
    run: &RunSummary,
) -> Result<&'a Playbook, String> {
    super::model::find(playbooks, &run.playbook)
        .ok_or_else(|| say!("playbook {} is not defined any more", run.playbook))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_sort_by_time_and_differ_within_a_second() {
        let now = DateTime::parse_from_rfc3339("2026-11-26T05:44:00Z")
            .unwrap()
            .to_utc();
        let mut ids = RunIds(Salt::Counter(0xfffe));
        assert_eq!(
            ids.next("web-replace", now),
            "20261126T054400Z-web-replace-fffe"
        );
        assert_eq!(
            ids.next("web-replace", now),
            "20261126T054400Z-web-replace-ffff"
        );
        assert_eq!(
            ids.next("db-promote", now),
            "20261126T054400Z-db-promote-0000"
        );
        let mut fixed = RunIds::fixed("SALT");
        assert_eq!(
            fixed.next("db-promote", now),
            "20261126T054400Z-db-promote-SALT"
        );
    }
}
