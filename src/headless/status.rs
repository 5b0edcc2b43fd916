//! `dake status [--json]`: one snapshot for people, scripts and monitoring plugins.

use std::fmt::Write as _;

use serde::Serialize;

use crate::config::Config;
use crate::detect::{Incident, Severity, detect_once, worst_severity};
use crate::domain::{FleetSnapshot, Role};
use crate::i18n::{Lang, said, tr, trf};
use crate::replicas::{Candidate, rank_replicas};
use crate::runbook::model::{Playbook, for_incident, incident_line};
use crate::text::{pad, pad_left};

/// Parts of a refresh detection decides on: without them nothing can be called OK.
const DETECTION_INPUTS: &[&str] = &["metrics", "status checks"];

/// Version of the JSON shape below; bumped only on incompatible changes.
pub const STATUS_SCHEMA: u32 = 1;

/// Monitoring-plugin exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl Status {
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }

    fn from_incidents(incidents: &[Incident]) -> Status {
        match worst_severity(incidents) {
            None => Status::Ok,
            Some(Severity::Warning) => Status::Warning,
            Some(Severity::Critical) => Status::Critical,
        }
    }

    /// What the incidents say, and what a refresh that read only part of the fleet cannot: an
    /// unread part detection decides on (the metrics, the status checks) leaves the fleet
    /// UNKNOWN short of a CRITICAL already found; any other unread part is a WARNING.
    fn with_unread(self, unread: &std::collections::BTreeMap<String, String>) -> Status {
        let blind = unread
            .keys()
            .any(|p| DETECTION_INPUTS.contains(&p.as_str()));
        match self {
            Status::Critical | Status::Unknown => self,
            _ if blind => Status::Unknown,
            Status::Ok if !unread.is_empty() => Status::Warning,
            other => other,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub schema: u32,
    pub status: Status,
    pub exit_code: u8,
    pub fleet: String,
    pub provider: String,
    pub region: String,
    pub taken_at: chrono::DateTime<chrono::Utc>,
    pub incidents: Vec<IncidentReport>,
    pub instances: Vec<InstanceReport>,
    pub replication: ReplicationReport,
    /// The API calls the refresh made, by operation (real providers only).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub api_calls: std::collections::BTreeMap<String, u32>,
    /// Parts of the fleet the refresh could not read, and why; the rest is above.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub unread: std::collections::BTreeMap<String, String>,
}

/// An incident as detection saw it, with the playbooks that answer it, preferred first.
#[derive(Debug, Serialize)]
pub struct IncidentReport {
    #[serde(flatten)]
    pub incident: Incident,
    pub suggested_playbooks: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct InstanceReport {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub az: String,
    pub state: &'static str,
    pub system_check: &'static str,
    pub instance_check: &'static str,
    pub cpu_pct: Option<f32>,
    pub p50_ms: Option<f32>,
    pub p99_ms: Option<f32>,
    pub target_health: Option<&'static str>,
    pub disposable: bool,
}

#[derive(Debug, Serialize)]
pub struct ReplicationReport {
    pub endpoint: Option<String>,
    pub endpoint_target_id: Option<String>,
    pub master_id: Option<String>,
    pub master_heartbeat_age_secs: Option<f32>,
    pub replicas: Vec<Candidate>,
}

fn finite(v: Option<f32>) -> Option<f32> {
    v.filter(|v| v.is_finite())
}

pub fn status_report(
    snap: &FleetSnapshot,
    config: &Config,
    playbooks: &[Playbook],
) -> StatusReport {
    let incidents = detect_once(snap, &config.detect);
    let status = Status::from_incidents(&incidents).with_unread(&snap.unread);
    let master = snap.master();
    StatusReport {
        schema: STATUS_SCHEMA,
        status,
        exit_code: status.exit_code(),
        fleet: snap.fleet.clone(),
        provider: snap.provider.clone(),
        region: snap.region.clone(),
        taken_at: snap.taken_at,
        instances: snap
            .instances
            .iter()
            .map(|i| InstanceReport {
                id: i.id.clone(),
                name: i.name.clone(),
                role: i.role,
                az: i.az.clone(),
                state: i.state.as_str(),
                system_check: i.health.checks.system.as_str(),
                instance_check: i.health.checks.instance.as_str(),
                cpu_pct: finite(i.latest_cpu()),
                p50_ms: finite(i.health.p50_ms.latest()),
                p99_ms: finite(i.latest_p99()),
                target_health: i.target.map(|t| t.as_str()),
                disposable: i.disposable(),
            })
            .collect(),
        replication: ReplicationReport {
            endpoint: snap.db_endpoint.as_ref().map(|e| e.name.clone()),
            endpoint_target_id: snap.db_endpoint.as_ref().map(|e| e.target_id.clone()),
            master_id: master.map(|m| m.id.clone()),
            master_heartbeat_age_secs: finite(
                master
                    .and_then(|m| m.db.as_ref())
                    .map(|d| d.heartbeat_age_secs),
            ),
            replicas: rank_replicas(snap, config.detect.replica_max_lag_secs),
        },
        incidents: incidents
            .into_iter()
            .map(|incident| IncidentReport {
                suggested_playbooks: for_incident(playbooks, incident.kind)
                    .iter()
                    .map(|p| p.id.clone())
                    .collect(),
                incident,
            })
            .collect(),
        api_calls: snap.api_calls.clone(),
        unread: snap.unread.clone(),
    }
}

/// The monitoring-plugin first line, then a table an operator can read at a glance, in
/// `lang` but for the first line's "DAKE <STATUS> -", which monitoring reads.
pub fn status_text(r: &StatusReport, l: Lang) -> String {
    let mut out = String::new();
    let summary = if r.incidents.is_empty() {
        trf(
            l,
            "{n} instances, no incidents",
            &[("n", &r.instances.len())],
        )
    } else {
        r.incidents
            .iter()
            .map(|i| said(l, &i.incident.summary).into_owned())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let _ = writeln!(out, "DAKE {} - {summary}", r.status.label());
    let _ = writeln!(
        out,
        "{}",
        trf(
            l,
            "fleet {fleet} ({provider} {region}) at {at}",
            &[
                ("fleet", &r.fleet),
                ("provider", &r.provider),
                ("region", &r.region),
                ("at", &r.taken_at.format("%Y-%m-%d %H:%M:%S UTC")),
            ],
        )
    );
    for (part, why) in &r.unread {
        let why = said(l, why);
        let line = trf(
            l,
            "not read: {part}: {why}",
            &[("part", part), ("why", &why)],
        );
        let _ = writeln!(out, "  {line}");
    }
    for i in &r.incidents {
        let playbooks = i.suggested_playbooks.iter().map(String::as_str);
        let line = incident_line(&i.incident.summary, playbooks);
        let severity = tr(l, i.incident.severity.label());
        let _ = writeln!(out, "  {severity} {}", said(l, &line));
    }
    instance_table(&mut out, r, l);
    replication_lines(&mut out, r, l);
    out
}

/// One row per instance, under its header.
fn instance_table(out: &mut String, r: &StatusReport, l: Lang) {
    let _ = writeln!(out);
    let header = [
        (tr(l, "ROLE"), 8),
        (tr(l, "NAME"), 14),
        ("ID", 19),
        ("AZ", 16),
        (tr(l, "STATE"), 9),
        (tr(l, "CHECKS"), 8),
    ];
    for (h, w) in header {
        let _ = write!(out, "{} ", pad(h, w));
    }
    let _ = writeln!(
        out,
        "{} {}  {}",
        pad_left(tr(l, "CPU"), 5),
        pad_left("P99", 8),
        tr(l, "DISP")
    );
    let num = |v: Option<f32>, unit: &str| v.map_or("—".to_string(), |v| format!("{v:.0}{unit}"));
    for i in &r.instances {
        let checks = if i.system_check == "ok" && i.instance_check == "ok" {
            "ok"
        } else {
            "impaired"
        };
        let _ = writeln!(
            out,
            "{} {:<14} {:<19} {:<16} {} {} {:>5} {:>8}  {}",
            pad(tr(l, i.role.short()), 8),
            i.name,
            i.id,
            i.az,
            pad(&said(l, i.state), 9),
            pad(&said(l, checks), 8),
            num(i.cpu_pct, "%"),
            num(i.p99_ms, "ms"),
            if i.disposable {
                tr(l, "yes")
            } else {
                tr(l, "no")
            }
        );
    }
}

/// The endpoint, the master's heartbeat, and each replica's lag and verdict.
fn replication_lines(out: &mut String, r: &StatusReport, l: Lang) {
    let rep = &r.replication;
    let target = rep
        .endpoint_target_id
        .as_deref()
        .map_or("—".to_string(), |id| {
            match r.instances.iter().find(|i| i.id == id) {
                Some(i) => trf(l, "{name} ({id})", &[("name", &i.name), ("id", &id)]),
                None => trf(l, "{id} (not in the fleet)", &[("id", &id)]),
            }
        });
    let _ = writeln!(out);
    let heartbeat = rep.master_heartbeat_age_secs.map_or("—".into(), |s| {
        trf(l, "{secs}s old", &[("secs", &format!("{s:.1}"))])
    });
    let _ = writeln!(
        out,
        "{}",
        trf(
            l,
            "replication: endpoint {endpoint} → {target}; master heartbeat {heartbeat}",
            &[
                ("endpoint", &rep.endpoint.as_deref().unwrap_or("—")),
                ("target", &target),
                ("heartbeat", &heartbeat),
            ],
        )
    );
    for c in &rep.replicas {
        let verdict = match &c.rejection {
            None if c.best => tr(l, "promotable (best)").to_string(),
            None => tr(l, "promotable").to_string(),
            Some(why) => trf(l, "not promotable: {why}", &[("why", &said(l, why))]),
        };
        let line = trf(
            l,
            "lag {lag}s  behind master {behind}s  {verdict}",
            &[
                ("lag", &format!("{:>7.1}", c.heartbeat_lag_secs)),
                ("behind", &format!("{:>5.1}", c.behind_master_secs)),
                ("verdict", &verdict),
            ],
        );
        let _ = writeln!(out, "  {:<14} {line}", c.name);
    }
}
