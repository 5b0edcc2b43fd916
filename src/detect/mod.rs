//! Incident detection from fleet snapshots. Pure: no I/O and no clock, so the console, the
//! headless status command and drills all see the same incidents for the same snapshots.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::DetectConfig;
use crate::domain::{CheckStatus, FleetSnapshot, Instance, InstanceState, Role};

/// One kind names an incident everywhere: the simulator injects it, detection reports it.
pub use crate::config::IncidentKind;

impl IncidentKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            IncidentKind::SlowWeb => "slow-web",
            IncidentKind::MasterDown => "master-down",
        }
    }

    pub fn severity(&self) -> Severity {
        match self {
            IncidentKind::SlowWeb => Severity::Warning,
            IncidentKind::MasterDown => Severity::Critical,
        }
    }
}

/// Declaration order is the severity order, so `Critical > Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// Upper-case form for banners and status lines.
    pub fn label(&self) -> &'static str {
        match self {
            Severity::Warning => "WARNING",
            Severity::Critical => "CRITICAL",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    pub kind: IncidentKind,
    pub severity: Severity,
    pub instance_id: String,
    pub instance_name: String,
    pub summary: String,
    /// When it was first detected; carried over from the previous result while it stays active.
    pub since: DateTime<Utc>,
    /// The summary cut to what a banner line at 80 columns can hold. Not part of the JSON.
    #[serde(skip)]
    pub headline: String,
}

impl Incident {
    fn new(kind: IncidentKind, inst: &Instance, summary: String, since: DateTime<Utc>) -> Self {
        Incident {
            kind,
            severity: kind.severity(),
            instance_id: inst.id.clone(),
            instance_name: inst.name.clone(),
            since,
            headline: headline(&summary),
            summary,
        }
    }
}

/// A summary in fewer words, for a banner line at 80 columns: "slow web server web-3: p99
/// 798 ms vs peers' median 150 ms (5.3x) for 270 s" becomes "web-3 slow: p99 798ms, 5.3x
/// peers, 270s".
pub fn headline(summary: &str) -> String {
    let tight = |s: &str| join_units(&s.replace(" s old", " s"));
    if let Some(rest) = summary.strip_prefix("slow web server ") {
        let (name, facts) = rest.split_once(": ").unwrap_or((rest, ""));
        let p99 = facts.split(" vs ").next().unwrap_or("");
        let ratio = facts
            .split_once('(')
            .and_then(|(_, r)| r.split_once(')'))
            .map_or("", |(r, _)| r);
        let dur = facts.rsplit_once(" for ").map_or("", |(_, d)| d);
        return tight(&say!("{name} slow: {p99}, {ratio} peers, {dur}"));
    }
    if let Some(rest) = summary.strip_prefix("master DB down: ") {
        let (name, signals) = rest.split_once(" (").unwrap_or((rest, ""));
        // Beside "silent" the server's unreachability says nothing more; alone, it stays.
        let signals: Vec<String> = signals
            .trim_end_matches(')')
            .split(", ")
            .enumerate()
            .filter(|&(i, s)| i == 0 || s != MYSQL_SILENT)
            .map(|(_, s)| short_signal(s))
            .collect();
        return tight(&format!("{name}: {}", signals.join(", ")));
    }
    summary.to_string()
}

/// One of a master's signals in fewer words: "instance status check impaired" becomes "check
/// impaired", "heartbeat 125 s old" becomes "silent 125 s old".
fn short_signal(signal: &str) -> String {
    let (lead, last) = signal.rsplit_once(": ").unwrap_or(("", signal));
    let short = match last {
        "instance status check impaired" => said!("check impaired").to_string(),
        "system status check impaired" => said!("system check impaired").to_string(),
        "status checks impaired" => said!("checks impaired").to_string(),
        _ => match last.strip_prefix("heartbeat ") {
            Some(age) => say!("silent {age}"),
            None => last.to_string(),
        },
    };
    if lead.is_empty() {
        short
    } else {
        format!("{lead}: {short}")
    }
}

/// The signal of a master that neither dake nor any replica reaches over MySQL (the reason
/// is on the master's row of the replication panel).
const MYSQL_SILENT: &str = said!("MySQL answers neither dake nor its replicas");

/// "798 ms" → "798ms" and "125 s" → "125s": a unit glued to its number, nothing else.
fn join_units(s: &str) -> String {
    let words: Vec<&str> = s.split(' ').collect();
    let mut out = String::with_capacity(s.len());
    for (i, w) in words.iter().enumerate() {
        let unit = matches!(w.trim_end_matches([',', ')']), "ms" | "s");
        let after_number = i > 0 && words[i - 1].ends_with(|c: char| c.is_ascii_digit());
        if i > 0 && !(unit && after_number) {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// The incidents active in `snap`, given the result for the previous snapshot (`prev`).
/// Critical first, then by instance name, so the order is stable from one refresh to the next.
pub fn detect(snap: &FleetSnapshot, prev: &[Incident], cfg: &DetectConfig) -> Vec<Incident> {
    let mut out = slow_web(snap, prev, cfg);
    out.extend(master_down(snap, prev, cfg));
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.instance_name.cmp(&b.instance_name))
    });
    out
}

/// Detection for a single snapshot with no earlier results (`dake status`, a headless run):
/// each incident's start is read back from the history the snapshot carries, instead of
/// being "now" as a first detection would say.
pub fn detect_once(snap: &FleetSnapshot, cfg: &DetectConfig) -> Vec<Incident> {
    let mut found = detect(snap, &[], cfg);
    let interval = i64::from(snap.sample_interval_secs.max(1));
    for inc in &mut found {
        let Some(inst) = snap.find(&inc.instance_id) else {
            continue;
        };
        match inc.kind {
            IncidentKind::SlowWeb => {
                let webs: Vec<&Instance> = snap
                    .by_role(Role::Web)
                    .filter(|i| i.state == InstanceState::Running)
                    .collect();
                let Some(x) = webs.iter().position(|w| w.id == inst.id) else {
                    continue;
                };
                let history = inst.health.p99_ms.len();
                let columns = AgeColumn::window(&webs, history);
                // Consecutive samples, newest first, in which it was above the entry threshold.
                let above = columns
                    .iter()
                    .take_while(|c| {
                        c.vs_peers(x)
                            .is_some_and(|(own, base)| own > cfg.slow_web_factor * base)
                    })
                    .count() as i64;
                let window = i64::from(cfg.slow_web_window_secs.div_ceil(interval as u32).max(1));
                // Detection enters once a whole window is above; it would have, this long ago.
                let entered = (above - window).max(0) * interval;
                inc.since = snap.taken_at - chrono::Duration::seconds(entered);
                if let Some((own, base)) = columns.first().and_then(|c| c.vs_peers(x)) {
                    inc.summary = slow_web_summary(&inst.name, own, base, above * interval);
                    inc.headline = headline(&inc.summary);
                }
            }
            IncidentKind::MasterDown => {
                // Silent for `age` seconds; detection enters once the silence passes the limit.
                if let Some(age) = inst
                    .db
                    .as_ref()
                    .map(|d| d.heartbeat_age_secs)
                    .filter(|a| a.is_finite())
                {
                    let over = (age - cfg.master_heartbeat_secs).max(0.0);
                    inc.since = snap.taken_at - chrono::Duration::seconds(over as i64);
                }
            }
        }
    }
    found
}

/// Median of the values (sorts them in place); the mean of the middle two for an even count.
pub fn median(values: &mut [f32]) -> Option<f32> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f32::total_cmp);
    // For an odd count both indices name the middle value.
    let n = values.len();
    Some(values[(n - 1) / 2].midpoint(values[n / 2]))
}

pub fn worst_severity(incidents: &[Incident]) -> Option<Severity> {
    incidents.iter().map(|i| i.severity).max()
}

fn was_active<'a>(prev: &'a [Incident], kind: IncidentKind, id: &str) -> Option<&'a Incident> {
    prev.iter().find(|i| i.kind == kind && i.instance_id == id)
}

/// Median of `sorted` (ascending by `total_cmp`) without the element at `pos`: the median of
/// "everyone but x" read by index arithmetic, so each server's peer baseline costs O(1) instead
/// of a collect and sort of all other servers. Same value as `median` on the other elements,
/// including the mean of the middle two for an even count; `None` when no other element is left.
fn median_excluding(sorted: &[f32], pos: usize) -> Option<f32> {
    if pos >= sorted.len() || sorted.len() < 2 {
        return None;
    }
    let m = sorted.len() - 1;
    // Index `j` of the remaining elements: positions after `pos` shift down by one.
    let at = |j: usize| sorted[if j < pos { j } else { j + 1 }];
    Some(at((m - 1) / 2).midpoint(at(m / 2)))
}

/// Every running web server's p99 at one sample age, sorted once for all servers.
struct AgeColumn {
    sorted: Vec<f32>,
    /// Per server, its value's index in `sorted`; `None` for a missing or non-finite sample.
    rank: Vec<Option<usize>>,
}

impl AgeColumn {
    /// One column per sample age of the window, newest first. Each server's series is read
    /// once for the whole window: its samples sit together in memory, the servers do not.
    fn window(webs: &[&Instance], window: usize) -> Vec<AgeColumn> {
        let mut values = vec![Vec::with_capacity(webs.len()); window];
        for w in webs {
            for (age, column) in values.iter_mut().enumerate() {
                column.push(w.health.p99_ms.back(age).filter(|v| v.is_finite()));
            }
        }
        values.iter().map(|v| AgeColumn::new(v)).collect()
    }

    fn new(values: &[Option<f32>]) -> AgeColumn {
        let mut order: Vec<(f32, usize)> = values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| Some(((*v)?, i)))
            .collect();
        // Unstable is enough: values equal under `total_cmp` are the same bits, so which of
        // them a server is ranked at does not change the median of the others.
        order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let mut rank = vec![None; values.len()];
        for (r, &(_, i)) in order.iter().enumerate() {
            rank[i] = Some(r);
        }
        AgeColumn {
            sorted: order.into_iter().map(|(v, _)| v).collect(),
            rank,
        }
    }

    /// `(own p99, peers' median p99)` for server `x`; `None` when its own sample is missing or
    /// no peer has one.
    fn vs_peers(&self, x: usize) -> Option<(f32, f32)> {
        let pos = (*self.rank.get(x)?)?;
        Some((self.sorted[pos], median_excluding(&self.sorted, pos)?))
    }
}

/// `(own p99, peers' median p99)` at each age of the window, newest first. `None` when any
/// sample is missing or not finite: a window with gaps is not sustained evidence either way.
fn window_vs_peers(x: usize, columns: &[AgeColumn]) -> Option<Vec<(f32, f32)>> {
    columns.iter().map(|c| c.vs_peers(x)).collect()
}

fn slow_web(snap: &FleetSnapshot, prev: &[Incident], cfg: &DetectConfig) -> Vec<Incident> {
    // Stopped or terminated servers serve no traffic: they are neither suspects nor a baseline.
    let webs: Vec<&Instance> = snap
        .by_role(Role::Web)
        .filter(|i| i.state == InstanceState::Running)
        .collect();
    let interval = snap.sample_interval_secs.max(1);
    let window = cfg.slow_web_window_secs.div_ceil(interval).max(1);
    let window_secs = i64::from(window) * i64::from(interval);

    // One sort per sample age for the whole fleet: comparing each server with all the others
    // separately made a refresh quadratic in the number of web servers.
    let columns = AgeColumn::window(&webs, window as usize);
    // Held incidents by id: a scan of `prev` per server is quadratic when many are held. The
    // first one per id wins, as with `was_active`.
    let mut held: HashMap<&str, &Incident> = HashMap::new();
    for inc in prev.iter().filter(|i| i.kind == IncidentKind::SlowWeb) {
        held.entry(inc.instance_id.as_str()).or_insert(inc);
    }

    let mut slow = Vec::new();
    for (x, web) in webs.iter().enumerate() {
        let before = held.get(web.id.as_str()).copied();
        // Empty when undecided; `all` on it would be vacuously true, hence the length checks.
        let pairs = window_vs_peers(x, &columns).unwrap_or_default();
        let (enter_at, clear_at) = (cfg.slow_web_factor, cfg.slow_web_clear_factor);
        let enter = !pairs.is_empty() && pairs.iter().all(|&(own, base)| own > enter_at * base);
        let leave = !pairs.is_empty() && pairs.iter().all(|&(own, base)| own < clear_at * base);
        let since = match before {
            Some(b) if !leave => b.since,
            None if enter => snap.taken_at,
            _ => continue,
        };
        let slow_for = window_secs + (snap.taken_at - since).num_seconds().max(0);
        let summary = match (pairs.first(), before) {
            (Some(&(own, base)), _) => slow_web_summary(&web.name, own, base, slow_for),
            // No fresh numbers to quote: the last description is still the best one.
            (None, Some(b)) => b.summary.clone(),
            (None, None) => say!("slow web server {}", web.name),
        };
        slow.push(Incident::new(IncidentKind::SlowWeb, web, summary, since));
    }

    // When more than half of the web servers look slow, the common cause is upstream of them
    // (the database, a dependency, a traffic surge) and replacing servers one by one would only
    // shrink capacity in the middle of it. Peer medians already make this rare for a single
    // snapshot, but held incidents and gaps in peer data can still add up to a majority.
    if slow.len() * 2 > webs.len() {
        return Vec::new();
    }
    slow
}

fn slow_web_summary(name: &str, own: f32, base: f32, slow_for: i64) -> String {
    let ratio = if base > 0.0 {
        format!("{:.1}x", own / base)
    } else {
        "n/a".into()
    };
    say!(
        "slow web server {name}: p99 {own:.0} ms vs peers' median {base:.0} ms ({ratio}) for {slow_for} s"
    )
}

fn master_down(snap: &FleetSnapshot, prev: &[Incident], cfg: &DetectConfig) -> Option<Incident> {
    let master = snap.master()?;
    let before = was_active(prev, IncidentKind::MasterDown, &master.id);
    let checks = master.health.checks;
    let heartbeat = master.db.as_ref().map(|d| d.heartbeat_age_secs);

    let mut signals = Vec::new();
    let impaired = match (checks.system, checks.instance) {
        (CheckStatus::Impaired, CheckStatus::Impaired) => Some(said!("status checks impaired")),
        (CheckStatus::Impaired, _) => Some(said!("system status check impaired")),
        (_, CheckStatus::Impaired) => Some(said!("instance status check impaired")),
        _ => None,
    };
    signals.extend(impaired.map(String::from));
    let booted = matches!(
        master.state,
        InstanceState::Running | InstanceState::Pending
    );
    if !booted {
        signals.push(say!("instance {}", master.state.as_str()));
    }
    // A missing heartbeat is unknown, not old: a monitoring gap alone must not start a failover.
    if let Some(age) = heartbeat.filter(|&age| age > cfg.master_heartbeat_secs) {
        signals.push(say!("heartbeat {age:.0} s old"));
    }
    signals.extend(unreachable_everywhere(snap, master));

    let recovered = !checks.any_impaired()
        && master.state == InstanceState::Running
        && heartbeat.is_some_and(|age| age < cfg.master_clear_secs);
    let since = match before {
        Some(b) if !recovered => b.since,
        None if !signals.is_empty() => snap.taken_at,
        _ => return None,
    };
    if signals.is_empty() {
        // Held between the thresholds: say why it is not cleared yet.
        let mut pending = Vec::new();
        if master.state != InstanceState::Running {
            pending.push(say!("instance {}", master.state.as_str()));
        }
        match heartbeat {
            Some(age) if age < cfg.master_clear_secs => {}
            Some(age) => pending.push(say!("heartbeat {age:.0} s old")),
            None => pending.push(said!("heartbeat unknown").into()),
        }
        signals.push(say!("not recovered yet: {}", pending.join(", ")));
    }
    let summary = say!("master DB down: {} ({})", master.name, signals.join(", "));
    Some(Incident::new(
        IncidentKind::MasterDown,
        master,
        summary,
        since,
    ))
}

/// Read over MySQL: the master does not answer dake, and no replica that dake reads is
/// connected to it either. Dake alone failing to reach it (a bastion, a tunnel) is not a
/// signal while its replicas still replicate from it.
fn unreachable_everywhere(snap: &FleetSnapshot, master: &Instance) -> Option<String> {
    let facts = master.db.as_ref()?.server.as_ref()?;
    if facts.refused_dake() {
        return None;
    }
    let why = facts.unreachable.as_ref()?;
    let replicas: Vec<_> = snap
        .by_role(Role::DbReplica)
        .filter_map(|r| r.db.as_ref())
        .filter(|d| d.source_id.as_deref() == Some(master.id.as_str()))
        .filter_map(|d| d.server.as_ref()?.replica.as_ref())
        .collect();
    let cut_off = !replicas.is_empty()
        && replicas
            .iter()
            .all(|r| r.io != crate::domain::ThreadState::Running);
    cut_off.then(|| {
        tracing::info!("master {} unreachable over MySQL: {why}", master.name);
        MYSQL_SILENT.to_string()
    })
}

#[cfg(test)]
mod tests;
