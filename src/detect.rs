//! Incident detection from fleet snapshots. Pure: no I/O and no clock, so the TUI, the headless
//! status command and drills all see the same incidents for the same snapshots.

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

    /// Playbook names, preferred first.
    pub fn playbooks(&self) -> &'static [&'static str] {
        match self {
            IncidentKind::SlowWeb => &["web-replace"],
            IncidentKind::MasterDown => &["db-promote", "db-ebs-move"],
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
    pub suggested_playbooks: Vec<&'static str>,
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
            suggested_playbooks: kind.playbooks().to_vec(),
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
        return tight(&format!("{name} slow: {p99}, {ratio} peers, {dur}"));
    }
    if let Some(rest) = summary.strip_prefix("master DB down: ") {
        let (name, signals) = rest.split_once(" (").unwrap_or((rest, ""));
        let signals = signals
            .trim_end_matches(')')
            .replace("instance status check", "check")
            .replace("status check", "check")
            .replace("heartbeat ", "silent ");
        return tight(&format!("{name}: {signals}"));
    }
    summary.to_string()
}

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
            (None, None) => format!("slow web server {}", web.name),
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
    format!(
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
        (CheckStatus::Impaired, CheckStatus::Impaired) => Some("status checks impaired"),
        (CheckStatus::Impaired, _) => Some("system status check impaired"),
        (_, CheckStatus::Impaired) => Some("instance status check impaired"),
        _ => None,
    };
    signals.extend(impaired.map(String::from));
    let booted = matches!(
        master.state,
        InstanceState::Running | InstanceState::Pending
    );
    if !booted {
        signals.push(format!("instance {}", master.state.as_str()));
    }
    // A missing heartbeat is unknown, not old: a monitoring gap alone must not start a failover.
    if let Some(age) = heartbeat.filter(|&age| age > cfg.master_heartbeat_secs) {
        signals.push(format!("heartbeat {age:.0} s old"));
    }

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
            pending.push(format!("instance {}", master.state.as_str()));
        }
        match heartbeat {
            Some(age) if age < cfg.master_clear_secs => {}
            Some(age) => pending.push(format!("heartbeat {age:.0} s old")),
            None => pending.push("heartbeat unknown".into()),
        }
        signals.push(format!("not recovered yet: {}", pending.join(", ")));
    }
    let summary = format!("master DB down: {} ({})", master.name, signals.join(", "));
    Some(Incident::new(
        IncidentKind::MasterDown,
        master,
        summary,
        since,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CheckStatus::{Impaired, Ok as Passed};
    use crate::domain::{DbStatus, Health, LaunchParams, StatusChecks, TimeSeries};
    use IncidentKind::{MasterDown, SlowWeb};

    fn cfg() -> DetectConfig {
        DetectConfig {
            slow_web_factor: 3.0,
            slow_web_clear_factor: 2.0,
            slow_web_window_secs: 30,
            master_heartbeat_secs: 20.0,
            master_clear_secs: 5.0,
            replica_max_lag_secs: 10.0,
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    fn series(values: &[f32]) -> TimeSeries {
        let mut s = TimeSeries::new(120);
        values.iter().for_each(|&v| s.push(v));
        s
    }

    fn inst(name: &str, role: Role, p99: &[f32]) -> Instance {
        let launch = LaunchParams {
            instance_type: "c5.large".into(),
            subnet_id: "subnet-a".into(),
            security_groups: vec![],
            key_name: None,
            user_data: String::new(),
        };
        let health = Health {
            checks: StatusChecks::OK,
            cpu: series(&[]),
            p50_ms: series(&[]),
            p99_ms: series(p99),
        };
        Instance {
            id: format!("i-{name}"),
            name: name.into(),
            role,
            az: "ap-northeast-1a".into(),
            state: InstanceState::Running,
            image_id: "ami-1".into(),
            launch,
            volumes: vec![],
            private_ip: "10.0.0.1".into(),
            health,
            target: None,
            db: None,
            tags: Default::default(),
        }
    }

    fn web(name: &str, p99: &[f32]) -> Instance {
        inst(name, Role::Web, p99)
    }

    fn master(heartbeat: Option<f32>, system: CheckStatus, instance: CheckStatus) -> Instance {
        let mut m = inst("db-master", Role::DbMaster, &[]);
        m.health.checks = StatusChecks { system, instance };
        m.db = heartbeat.map(|heartbeat_age_secs| DbStatus {
            heartbeat_age_secs,
            lag_history: series(&[]),
            io_thread_running: false,
            sql_thread_running: false,
            binlog_enabled: true,
            no_promote: false,
            source_id: None,
            running: false,
            read_only: false,
        });
        m
    }

    fn snap(secs: i64, instances: Vec<Instance>) -> FleetSnapshot {
        FleetSnapshot {
            fleet: "drill".into(),
            provider: "sim".into(),
            region: "ap-northeast-1".into(),
            taken_at: at(secs),
            sample_interval_secs: 5,
            target_group: "web-tg".into(),
            db_endpoint: None,
            instances,
            free_volumes: Vec::new(),
        }
    }

    /// Runs of (value, count), oldest first.
    fn runs(parts: &[(f32, usize)]) -> Vec<f32> {
        parts
            .iter()
            .flat_map(|&(v, n)| std::iter::repeat_n(v, n))
            .collect()
    }

    /// web-1, web-2 and web-4 flat at 100 ms beside web-3's series.
    fn fleet(web3: &[f32]) -> Vec<Instance> {
        let peer = vec![100.0; web3.len()];
        vec![
            web("web-1", &peer),
            web("web-2", &peer),
            web("web-3", web3),
            web("web-4", &peer),
        ]
    }

    fn names(incidents: &[Incident]) -> Vec<&str> {
        incidents.iter().map(|i| i.instance_name.as_str()).collect()
    }

    #[test]
    fn sustained_latency_over_peers_is_slow_web() {
        let s = snap(0, fleet(&runs(&[(100.0, 14), (500.0, 6)])));
        let out = detect(&s, &[], &cfg());
        assert_eq!(names(&out), ["web-3"]);
        let inc = &out[0];
        assert_eq!((inc.kind, inc.severity), (SlowWeb, Severity::Warning));
        assert_eq!((inc.instance_id.as_str(), inc.since), ("i-web-3", at(0)));
        assert_eq!(inc.suggested_playbooks, ["web-replace"]);
        let summary = "slow web server web-3: p99 500 ms vs peers' median 100 ms (5.0x) for 30 s";
        assert_eq!(inc.summary, summary);
    }

    #[test]
    fn spikes_shorter_than_the_window_are_ignored() {
        let cases = [
            runs(&[(100.0, 19), (1000.0, 1)]),
            runs(&[(100.0, 15), (1000.0, 5)]),
            runs(&[(100.0, 14), (500.0, 3), (100.0, 1), (500.0, 2)]),
            vec![500.0; 5], // a fresh series shorter than the window
        ];
        for web3 in cases {
            assert_eq!(detect(&snap(0, fleet(&web3)), &[], &cfg()), [], "{web3:?}");
        }
        // 32 s at 5 s per sample needs 7 samples, not 6.
        let mut cfg = cfg();
        cfg.slow_web_window_secs = 32;
        let six = snap(0, fleet(&runs(&[(100.0, 10), (500.0, 6)])));
        assert_eq!(detect(&six, &[], &cfg), []);
        let seven = snap(0, fleet(&runs(&[(100.0, 10), (500.0, 7)])));
        assert_eq!(names(&detect(&seven, &[], &cfg)), ["web-3"]);
    }

    #[test]
    fn jitter_around_a_common_level_never_fires() {
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut jitter = || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            100.0 * (0.7 + 0.6 * ((seed >> 33) as f32 / (1u64 << 31) as f32))
        };
        let data: Vec<Vec<f32>> = (0..4)
            .map(|_| (0..100).map(|_| jitter()).collect())
            .collect();
        let mut prev = Vec::new();
        for step in 1..=100 {
            let webs = (0..4)
                .map(|w| web(&format!("web-{w}"), &data[w][..step]))
                .collect();
            prev = detect(&snap(step as i64 * 5, webs), &prev, &cfg());
            assert_eq!(prev, [], "step {step}");
        }
    }

    #[test]
    fn hysteresis_between_clear_and_enter_thresholds() {
        let run = |secs, web3: &[(f32, usize)], prev: &[Incident]| {
            detect(&snap(secs, fleet(&runs(web3))), prev, &cfg())
        };
        let entered = run(0, &[(100.0, 14), (500.0, 6)], &[]);
        assert_eq!(names(&entered), ["web-3"]);
        let held = run(30, &[(100.0, 14), (500.0, 6), (250.0, 6)], &entered);
        assert_eq!((names(&held), held[0].since), (vec!["web-3"], at(0)));
        assert!(held[0].summary.ends_with("(2.5x) for 60 s"), "{held:?}");
        // Below the clear factor for only part of the window is not a recovery.
        let partial = run(30, &[(500.0, 6), (250.0, 3), (150.0, 3)], &held);
        assert_eq!(names(&partial), ["web-3"]);
        assert_eq!(run(60, &[(500.0, 6), (150.0, 6)], &held), []);
        assert_eq!(run(90, &[(100.0, 14), (250.0, 6)], &[]), []);
    }

    #[test]
    fn fleet_wide_slowdown_is_not_one_bad_server() {
        let mut webs = fleet(&[100.0; 20]);
        webs[..3]
            .iter_mut()
            .for_each(|w| w.health.p99_ms = series(&[500.0; 20]));
        assert_eq!(detect(&snap(0, webs), &[], &cfg()), []);

        // Rotating spikes leave every held incident undecided, so only the majority guard
        // stops three of four servers from staying flagged.
        let mut webs = fleet(&[100.0; 6]);
        for (n, w) in webs[..3].iter_mut().enumerate() {
            let spike = |i: usize| if i % 3 == n { 1000.0 } else { 100.0 };
            w.health.p99_ms = series(&(0..6).map(spike).collect::<Vec<_>>());
        }
        let s = snap(0, webs);
        let was = |w: &Instance| Incident::new(SlowWeb, w, String::new(), at(-60));
        let prev: Vec<Incident> = s.instances[..3].iter().map(was).collect();
        assert_eq!(names(&detect(&s, &prev[..2], &cfg())), ["web-1", "web-2"]);
        assert_eq!(detect(&s, &prev, &cfg()), []);
    }

    #[test]
    fn master_down_enters_holds_and_clears() {
        let run = |m: Instance, prev: &[Incident]| detect(&snap(0, vec![m]), prev, &cfg());
        let out = run(master(Some(1.0), Passed, Impaired), &[]);
        assert_eq!(
            (out[0].kind, out[0].severity),
            (MasterDown, Severity::Critical)
        );
        assert_eq!(out[0].suggested_playbooks, ["db-promote", "db-ebs-move"]);
        let summary = "master DB down: db-master (instance status check impaired)";
        assert_eq!(out[0].summary, summary);
        let out = run(master(Some(42.0), Impaired, Impaired), &[]);
        let summary = "master DB down: db-master (status checks impaired, heartbeat 42 s old)";
        assert_eq!(out[0].summary, summary);
        let active = run(master(Some(42.0), Passed, Passed), &[]);
        let summary = "master DB down: db-master (heartbeat 42 s old)";
        assert_eq!(active[0].summary, summary);
        let mut stopped = master(Some(1.0), Passed, Passed);
        stopped.state = InstanceState::Stopped;
        let summary = "master DB down: db-master (instance stopped)";
        assert_eq!(run(stopped, &[])[0].summary, summary);

        let mut earlier = active.clone();
        earlier[0].since = at(-120);
        let held = run(master(Some(10.0), Passed, Passed), &earlier);
        assert_eq!((held.len(), held[0].since), (1, at(-120)));
        let summary = "master DB down: db-master (not recovered yet: heartbeat 10 s old)";
        assert_eq!(held[0].summary, summary);
        assert_eq!(run(master(Some(10.0), Passed, Passed), &[]), []);
        assert_eq!(run(master(Some(1.0), Passed, Passed), &active), []);
        // An unknown heartbeat neither raises nor clears; no master, no master incident.
        assert_eq!(run(master(None, Passed, Passed), &[]), []);
        assert_eq!(run(master(None, Passed, Passed), &active).len(), 1);
        assert_eq!(detect(&snap(0, fleet(&[100.0; 6])), &active, &cfg()), []);
    }

    #[test]
    fn critical_first_then_by_name() {
        let (slow, peer) = ([500.0; 6], [100.0; 6]);
        let mut instances = vec![web("web-5", &slow), master(Some(1.0), Impaired, Passed)];
        instances.extend(["web-2", "web-3", "web-4"].map(|n| web(n, &peer)));
        instances.push(web("web-1", &slow));
        let out = detect(&snap(0, instances), &[], &cfg());
        assert_eq!(names(&out), ["db-master", "web-1", "web-5"]);
        assert_eq!(worst_severity(&out), Some(Severity::Critical));
        assert_eq!(worst_severity(&out[1..]), Some(Severity::Warning));
        assert_eq!(worst_severity(&[]), None);
    }

    #[test]
    fn only_running_web_servers_are_suspects_or_peers() {
        let data = runs(&[(100.0, 14), (500.0, 6)]);
        let prev = detect(&snap(0, fleet(&data)), &[], &cfg());
        for state in [InstanceState::Stopped, InstanceState::Terminated] {
            let mut webs = fleet(&data);
            webs[2].state = state;
            assert_eq!(detect(&snap(5, webs.clone()), &[], &cfg()), []);
            assert_eq!(detect(&snap(5, webs), &prev, &cfg()), []);
        }
        // Counted as peers, two stopped slow servers would make web-3 look normal.
        let mut webs = fleet(&data);
        for w in [1, 3] {
            webs[w].state = InstanceState::Stopped;
            webs[w].health.p99_ms = series(&data);
        }
        assert_eq!(names(&detect(&snap(0, webs), &[], &cfg())), ["web-3"]);
    }

    /// The old per-server computation: every other server's finite sample, then `median`.
    fn brute_vs_peers(values: &[f32], x: usize) -> Option<(f32, f32)> {
        let own = Some(values[x]).filter(|v| v.is_finite())?;
        let mut peers: Vec<f32> = values
            .iter()
            .enumerate()
            .filter(|&(i, v)| i != x && v.is_finite())
            .map(|(_, &v)| v)
            .collect();
        Some((own, median(&mut peers)?))
    }

    #[test]
    fn median_excluding_matches_brute_force() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) as u32
        };
        let mut checked = 0;
        for n in 0..40 {
            for _ in 0..8 {
                // Few distinct values so ties are common; about one in five samples a gap.
                let values: Vec<f32> = (0..n)
                    .map(|_| match next() % 10 {
                        0 => f32::NAN,
                        1 => f32::INFINITY,
                        k => (next() % 7) as f32 * 10.0 + k as f32,
                    })
                    .collect();
                let webs: Vec<Instance> = values
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| web(&format!("web-{i}"), &[v]))
                    .collect();
                let refs: Vec<&Instance> = webs.iter().collect();
                let column = &AgeColumn::window(&refs, 1)[0];
                for x in 0..n {
                    assert_eq!(
                        column.vs_peers(x),
                        brute_vs_peers(&values, x),
                        "{values:?} {x}"
                    );
                    checked += 1;
                }
                let mut sorted: Vec<f32> =
                    values.iter().copied().filter(|v| v.is_finite()).collect();
                sorted.sort_by(f32::total_cmp);
                for pos in 0..sorted.len() {
                    let mut rest = sorted.clone();
                    rest.remove(pos);
                    assert_eq!(
                        median_excluding(&sorted, pos),
                        median(&mut rest),
                        "{sorted:?} {pos}"
                    );
                }
                assert_eq!(median_excluding(&sorted, sorted.len()), None);
            }
        }
        assert!(checked > 1000, "{checked}");
        assert_eq!(median_excluding(&[5.0], 0), None);
        assert_eq!(median_excluding(&[1.0, 2.0, 4.0], 1), Some(2.5));
        assert_eq!(median_excluding(&[1.0, 2.0, 4.0, 8.0], 0), Some(4.0));
        // A sample missing at one age leaves that server undecided for the whole window.
        let webs = [web("a", &[100.0, 100.0]), web("b", &[100.0, f32::NAN])];
        let refs: Vec<&Instance> = webs.iter().collect();
        let columns = AgeColumn::window(&refs, 2);
        assert_eq!(window_vs_peers(0, &columns), None);
        assert_eq!(window_vs_peers(1, &columns), None);
    }

    #[test]
    fn helpers_and_json_shape() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert!(Severity::Critical > Severity::Warning);
        assert_eq!(Severity::Critical.as_str(), "critical");
        assert_eq!(Severity::Warning.label(), "WARNING");
        assert_eq!(MasterDown.as_str(), "master-down");
        let inc = &detect(&snap(0, fleet(&[500.0; 6])), &[], &cfg())[0];
        let expected = serde_json::json!({
            "kind": "slow-web", "severity": "warning", "instance_id": "i-web-3",
            "instance_name": "web-3", "summary": inc.summary,
            "suggested_playbooks": ["web-replace"], "since": "2023-11-14T22:13:20Z",
        });
        assert_eq!(serde_json::to_value(inc).unwrap(), expected);
    }

    #[test]
    fn one_shot_detection_dates_incidents_from_history() {
        let epoch = at(0);
        let config = crate::config::Config::builtin();
        let mut fleet = crate::provider::sim::SimFleet::new(&config, epoch);
        fleet.advance_to(300.0);
        let snap = fleet.snapshot();
        let found = detect_once(&snap, &config.detect);
        let slow = found
            .iter()
            .find(|i| i.kind == IncidentKind::SlowWeb)
            .unwrap();
        // Slow from 30 s, past 3x once ramped, detected a window later: well before 300 s.
        let slow_at = (slow.since - epoch).num_seconds();
        assert!((40..=120).contains(&slow_at), "slow-web since {slow_at} s");
        assert!(!slow.summary.ends_with("for 30 s"), "{}", slow.summary);
        let down = found
            .iter()
            .find(|i| i.kind == IncidentKind::MasterDown)
            .unwrap();
        let down_at = (down.since - epoch).num_seconds();
        assert!(
            (190..=215).contains(&down_at),
            "master-down since {down_at} s"
        );
        // Same incidents as plain detection, only dated.
        let plain = detect(&snap, &[], &config.detect);
        assert_eq!(plain.len(), found.len());
        assert!(plain.iter().all(|p| p.since == snap.taken_at));
    }

    #[test]
    fn headlines_keep_the_facts_in_fewer_words() {
        assert_eq!(
            headline("slow web server web-3: p99 798 ms vs peers' median 150 ms (5.3x) for 270 s"),
            "web-3 slow: p99 798ms, 5.3x peers, 270s"
        );
        assert_eq!(
            headline(
                "master DB down: db-master (instance status check impaired, heartbeat 125 s old)"
            ),
            "db-master: check impaired, silent 125s"
        );
    }
}
