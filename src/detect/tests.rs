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
        lag_source: crate::domain::LagSource::Simulated,
        server: None,
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
        api_calls: Default::default(),
        unread: Default::default(),
        db_data_latency_secs: 0,
        deregistration_delay_secs: None,
        retired: Vec::new(),
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
            let mut sorted: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
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
        "since": "2023-11-14T22:13:20Z",
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
        headline("master DB down: db-master (instance status check impaired, heartbeat 125 s old)"),
        "db-master: check impaired, silent 125s"
    );
    assert_eq!(
        headline(
            "master DB down: db-master (instance status check impaired, heartbeat 125 s old, \
             MySQL answers neither dake nor its replicas)"
        ),
        "db-master: check impaired, silent 125s"
    );
}

/// A master dake cannot reach over MySQL, its heartbeat unknown, and one replica whose IO
/// thread is in `io`.
fn unreachable_master(io: crate::domain::ThreadState) -> FleetSnapshot {
    use crate::domain::{ReplicaSide, ServerFacts};
    let mut m = master(Some(f32::NAN), Passed, Passed);
    let db = m.db.as_mut().unwrap();
    db.server = Some(ServerFacts::unreachable(
        "10.0.0.1:3306".into(),
        "Connection refused".into(),
    ));
    let mut r = inst("db-replica-1", Role::DbReplica, &[]);
    let mut facts = ServerFacts::unreachable("10.0.0.2:3306".into(), String::new());
    facts.unreachable = None;
    facts.replica = Some(ReplicaSide {
        source: "10.0.0.1:3306".into(),
        io,
        sql: crate::domain::ThreadState::Running,
        last_io_error: String::new(),
        last_sql_error: String::new(),
        seconds_behind: None,
        sql_delay_secs: 0,
        relay_log_applied: true,
        gtid_received: String::new(),
    });
    let mut rdb = m.db.clone().unwrap();
    rdb.source_id = Some(m.id.clone());
    rdb.server = Some(facts);
    r.db = Some(rdb);
    snap(0, vec![m, r])
}

#[test]
fn a_master_unreachable_from_dake_is_down_only_when_its_replicas_agree() {
    use crate::domain::ThreadState;
    let cut_off = detect(&unreachable_master(ThreadState::Connecting), &[], &cfg());
    assert_eq!(names(&cut_off), ["db-master"]);
    assert!(
        cut_off[0]
            .summary
            .contains("MySQL answers neither dake nor its replicas"),
        "{}",
        cut_off[0].summary
    );
    // Its replicas still replicate from it: dake's own path to it failed, not the master.
    let replicating = detect(&unreachable_master(ThreadState::Running), &[], &cfg());
    assert!(replicating.is_empty(), "{replicating:#?}");
    // It answered and refused dake (a missing grant): up, however its replicas are.
    let mut refused = unreachable_master(ThreadState::Connecting);
    let m = refused.instances[0]
        .db
        .as_mut()
        .unwrap()
        .server
        .as_mut()
        .unwrap();
    m.unreachable = Some(format!(
        "{}Access denied for user 'dake'",
        crate::domain::REFUSED
    ));
    assert!(detect(&refused, &[], &cfg()).is_empty());
}
