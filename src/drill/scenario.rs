//! A drill's scenario, as data: the fleet, a timeline of faults, what counts as recovered, par
//! times and hints. Built in from `assets/scenarios/`, each replaced by a user file of the same
//! id; every error names the file, the line and the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{
    Config, ConfigError, DbSource, FaultKind, IncidentKind, SimFault, SimIncident, invalid_key,
    toml_error,
};

const BUILTIN: &[(&str, &str)] = &[
    (
        "assets/scenarios/slow-web.toml",
        include_str!("../../assets/scenarios/slow-web.toml"),
    ),
    (
        "assets/scenarios/master-down.toml",
        include_str!("../../assets/scenarios/master-down.toml"),
    ),
    (
        "assets/scenarios/master-down-lagging.toml",
        include_str!("../../assets/scenarios/master-down-lagging.toml"),
    ),
    (
        "assets/scenarios/master-comes-back.toml",
        include_str!("../../assets/scenarios/master-comes-back.toml"),
    ),
    (
        "assets/scenarios/errant-replica.toml",
        include_str!("../../assets/scenarios/errant-replica.toml"),
    ),
    (
        "assets/scenarios/noisy-neighbour.toml",
        include_str!("../../assets/scenarios/noisy-neighbour.toml"),
    ),
    (
        "assets/scenarios/double-fault.toml",
        include_str!("../../assets/scenarios/double-fault.toml"),
    ),
];

/// The points each wrong or risky action costs, and each hint; a scenario may change any.
const SCORE_DEFAULTS: &str = include_str!("../../assets/scenarios/score.toml");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub id: String,
    pub title: String,
    /// What the trainee is told is coming, without giving the answer away ("the web tier will
    /// misbehave"); the banner adds how soon.
    pub brief: String,
    /// What the drill teaches, shown with the scorecard.
    pub lesson: String,
    #[serde(default)]
    pub seed: u64,
    /// Drill seconds after which it ends, recovered or not.
    #[serde(default = "limit_secs")]
    pub limit_secs: u64,
    #[serde(default)]
    pub fleet: ScenarioFleet,
    pub timeline: Vec<TimelineEntry>,
    pub expect: Expect,
    #[serde(default)]
    pub recovered: Recovered,
    #[serde(default)]
    pub par: Par,
    #[serde(default, rename = "hint")]
    pub hints: Vec<String>,
    #[serde(default)]
    pub score: ScoreOverrides,
}

fn limit_secs() -> u64 {
    3600
}

/// The drill fleet's topology and the simulator's choices; unset ones keep `[sim]`'s.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFleet {
    pub web_servers: Option<usize>,
    pub replicas: Option<usize>,
    pub database_source: Option<DbSource>,
    pub restart_fixes_slow_web: Option<bool>,
    pub reboot_fixes_master: Option<bool>,
}

/// One thing that happens to the fleet: an incident (`slow-web`, `master-down`) or a fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineEntry {
    pub at_secs: u64,
    pub kind: String,
    pub target: Option<String>,
    /// slow-web: it clears by itself after this long.
    pub for_secs: Option<u64>,
    pub secs: Option<u64>,
    pub operation: Option<String>,
}

/// What the trainee should do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The right playbooks, any one of them; none for a decoy (nothing needs replacing).
    pub playbooks: Vec<String>,
}

/// What the fleet looks like once recovered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recovered {
    /// Detection sees nothing wrong.
    #[serde(default = "yes")]
    pub no_incident: bool,
    /// Web servers in service and healthy in the target group, at least.
    pub web_in_service: Option<usize>,
    /// One master, answering and writable, the endpoint pointing at it.
    #[serde(default)]
    pub master_writable: bool,
    /// Replicas following the master, at least.
    pub replicas_following: Option<usize>,
}

impl Default for Recovered {
    fn default() -> Self {
        Recovered {
            no_incident: true,
            web_in_service: None,
            master_writable: false,
            replicas_following: None,
        }
    }
}

fn yes() -> bool {
    true
}

/// Par times, in drill seconds from the first fault: to open the right playbook, to mitigate,
/// to recover; and for each step by name, from its start to its end.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Par {
    pub detect_secs: Option<u64>,
    pub mitigate_secs: Option<u64>,
    pub recover_secs: Option<u64>,
    #[serde(default)]
    pub step: BTreeMap<String, u64>,
}

/// Points lost for each kind of wrong or risky action, each hint and each step over par.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Penalties {
    pub healthy_removed: u32,
    pub lagging_promoted: u32,
    pub errant_promoted: u32,
    pub override_used: u32,
    pub two_masters: u32,
    pub unneeded_failover: u32,
    pub wrong_playbook: u32,
    pub hint: u32,
    pub over_par: u32,
}

/// A scenario's changes to the penalties.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreOverrides {
    pub healthy_removed: Option<u32>,
    pub lagging_promoted: Option<u32>,
    pub errant_promoted: Option<u32>,
    pub override_used: Option<u32>,
    pub two_masters: Option<u32>,
    pub unneeded_failover: Option<u32>,
    pub wrong_playbook: Option<u32>,
    pub hint: Option<u32>,
    pub over_par: Option<u32>,
}

impl Scenario {
    pub fn parse(text: &str, file: &str) -> Result<Scenario, ConfigError> {
        let s: Scenario = toml::from_str(text).map_err(|e| toml_error(&e, text, file))?;
        let fail = invalid_key(text, file);
        if s.id.is_empty() || !s.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(fail("id", said!("letters, digits and dashes only").into()));
        }
        if s.timeline.is_empty() {
            return Err(fail(
                "timeline",
                said!("a drill needs something to happen").into(),
            ));
        }
        for e in &s.timeline {
            e.kind().map_err(|m| fail("kind", m))?;
        }
        // The fleet it makes must be one `[sim]` accepts.
        s.apply(&Config::builtin()).sim.validate(&fail)?;
        Ok(s)
    }

    /// `config` with this scenario's fleet and timeline in place of `[sim]`'s: the built-in
    /// fleet with the scenario's changes, whatever the user's `[sim]` says but its speed, so a
    /// scenario plays the same everywhere.
    pub fn apply(&self, config: &Config) -> Config {
        let mut c = config.clone();
        c.sim = Config::builtin().sim;
        c.sim.speed = config.sim.speed;
        let sim = &mut c.sim;
        let f = &self.fleet;
        sim.seed = self.seed;
        sim.web_servers = f.web_servers.unwrap_or(sim.web_servers);
        sim.replicas = f.replicas.unwrap_or(sim.replicas);
        sim.database_source = f.database_source.unwrap_or(sim.database_source);
        sim.restart_fixes_slow_web = f
            .restart_fixes_slow_web
            .unwrap_or(sim.restart_fixes_slow_web);
        sim.reboot_fixes_master = f.reboot_fixes_master.unwrap_or(sim.reboot_fixes_master);
        sim.incidents.clear();
        sim.faults.clear();
        for e in &self.timeline {
            match e.kind() {
                Ok(Happening::Incident(kind)) => sim.incidents.push(SimIncident {
                    kind,
                    at_secs: e.at_secs,
                    target: e.target.clone(),
                    for_secs: e.for_secs,
                }),
                Ok(Happening::Fault(kind)) => sim.faults.push(SimFault {
                    kind,
                    at_secs: e.at_secs,
                    target: e.target.clone(),
                    secs: e.secs,
                    operation: e.operation.clone(),
                }),
                Err(_) => {}
            }
        }
        c
    }

    /// The penalties, the scenario's own over the defaults.
    pub fn penalties(&self) -> Penalties {
        // The defaults are embedded and checked by a test; a damaged build scores nothing.
        let mut p: Penalties = toml::from_str(SCORE_DEFAULTS).unwrap_or(Penalties {
            healthy_removed: 0,
            lagging_promoted: 0,
            errant_promoted: 0,
            override_used: 0,
            two_masters: 0,
            unneeded_failover: 0,
            wrong_playbook: 0,
            hint: 0,
            over_par: 0,
        });
        let o = &self.score;
        let pick = |v: Option<u32>, d: &mut u32| *d = v.unwrap_or(*d);
        pick(o.healthy_removed, &mut p.healthy_removed);
        pick(o.lagging_promoted, &mut p.lagging_promoted);
        pick(o.errant_promoted, &mut p.errant_promoted);
        pick(o.override_used, &mut p.override_used);
        pick(o.two_masters, &mut p.two_masters);
        pick(o.unneeded_failover, &mut p.unneeded_failover);
        pick(o.wrong_playbook, &mut p.wrong_playbook);
        pick(o.hint, &mut p.hint);
        pick(o.over_par, &mut p.over_par);
        p
    }

    /// When the first incident starts: what detection and recovery are timed from.
    pub fn onset_secs(&self) -> u64 {
        self.timeline
            .iter()
            .filter(|e| matches!(e.kind(), Ok(Happening::Incident(_))))
            .map(|e| e.at_secs)
            .min()
            .unwrap_or_else(|| self.timeline.iter().map(|e| e.at_secs).min().unwrap_or(0))
    }
}

/// What a timeline entry makes happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Happening {
    Incident(IncidentKind),
    Fault(FaultKind),
}

impl TimelineEntry {
    pub fn kind(&self) -> Result<Happening, String> {
        let quoted = toml::Value::String(self.kind.clone());
        if let Ok(k) = quoted.clone().try_into::<IncidentKind>() {
            return Ok(Happening::Incident(k));
        }
        quoted
            .try_into::<FaultKind>()
            .map(Happening::Fault)
            .map_err(|_| {
                say!(
                    "no incident or fault `{}`: slow-web, master-down, sql-thread-stopped, \
                 sql-thread-error, errant-transaction, master-comes-back, replica-lag, \
                 status-check-failed, instance-stops, api-error, api-throttled, slow-boot",
                    self.kind
                )
            })
    }
}

/// The built-in scenarios, each replaced by a user file of the same id in `user_dir`.
pub fn load_all(user_dir: Option<&Path>) -> Result<Vec<Scenario>, ConfigError> {
    let mut out = Vec::new();
    for (file, text) in BUILTIN {
        out.push(Scenario::parse(text, file)?);
    }
    for (file, text) in crate::config::user_files(user_dir)? {
        let s = Scenario::parse(&text, &file)?;
        match out.iter_mut().find(|o| o.id == s.id) {
            Some(slot) => *slot = s,
            None => out.push(s),
        }
    }
    Ok(out)
}

/// Where user scenarios live: `dake/scenarios/` in the XDG config dir.
pub fn user_dir() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("dake").join("scenarios"))
}

pub fn find<'a>(scenarios: &'a [Scenario], id: &str) -> Option<&'a Scenario> {
    scenarios.iter().find(|s| s.id == id)
}
