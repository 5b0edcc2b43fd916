//! The fleet's replication as its servers describe it: which GTIDs came from the lineage of
//! masters and which did not (errant), how old each server's newest heartbeat is on one clock,
//! and each host's [`DbStatus`]. Pure: the servers' answers in, statuses out.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::call::{TAG_NO_PROMOTE, TAG_SOURCE};
use crate::domain::gtid::{Origin, Position};
use crate::domain::{DbStatus, Flavour, LagSource, Role, ServerFacts, ThreadState, TimeSeries};

/// One database host: its instance, and what its server answered.
pub struct HostFacts<'a> {
    pub id: &'a str,
    pub role: Role,
    /// Addresses that name this host in a replica's source (`host:port`): how dake reached it,
    /// its private address with the configured port, and the one it reports.
    pub addresses: Vec<String>,
    pub tags: &'a BTreeMap<String, String>,
    pub facts: ServerFacts,
}

/// Servers (MariaDB server ids, MySQL source uuids) whose transactions belong to the lineage:
/// the master's own, what every replica received from a source, and every heartbeat writer.
pub fn lineage(hosts: &[HostFacts<'_>], master_id: Option<&str>) -> BTreeSet<Origin> {
    let mut out = BTreeSet::new();
    for h in hosts.iter().filter(|h| h.facts.answers()) {
        let Some(flavour) = h.facts.flavour else {
            continue;
        };
        if Some(h.id) == master_id {
            out.insert(h.facts.server_id.to_string());
            let own = match flavour {
                Flavour::MariaDb => &h.facts.gtid_binlog_state,
                Flavour::MySql => &h.facts.gtid_executed,
            };
            out.extend(Position::parse(flavour, own).origins());
        }
        if let Some(r) = &h.facts.replica {
            out.extend(Position::parse(flavour, &r.gtid_received).origins());
        }
        if let Some((_, writer)) = h.facts.heartbeat {
            out.insert(writer.to_string());
        }
    }
    out
}

/// Every host's status, by instance id. `now` is dake's clock (epoch seconds) at the read.
pub fn statuses(
    mut hosts: Vec<HostFacts<'_>>,
    master_id: Option<&str>,
    now: f64,
    capacity: usize,
) -> BTreeMap<String, DbStatus> {
    let lineage = lineage(&hosts, master_id);
    let skew_of = |server_id: u32, hosts: &[HostFacts<'_>]| {
        hosts
            .iter()
            .find(|h| h.facts.answers() && h.facts.server_id == server_id)
            .map_or(0.0, |h| h.facts.clock_skew_secs)
    };
    // Each beat on dake's clock: the writer's clock minus its skew.
    let beats: Vec<Option<f64>> = hosts
        .iter()
        .map(|h| {
            let (beat, writer) = h.facts.heartbeat?;
            Some(beat - skew_of(writer, &hosts))
        })
        .collect();
    let newest_beat = beats.iter().flatten().copied().reduce(f64::max);
    for h in hosts.iter_mut().filter(|h| Some(h.id) != master_id) {
        if let Some(flavour) = h.facts.flavour {
            let own = match flavour {
                Flavour::MariaDb => &h.facts.gtid_binlog_state,
                Flavour::MySql => &h.facts.gtid_executed,
            };
            h.facts.errant = Position::parse(flavour, own).outside(&lineage);
        }
    }
    let master_age = master_id
        .and_then(|m| hosts.iter().position(|h| h.id == m))
        .map_or(f64::NAN, |i| match (beats[i], hosts[i].facts.answers()) {
            (Some(beat), _) => now - beat,
            // It answers and holds no beat: nothing writes one, and it is up.
            (None, true) => 0.0,
            // Silent: its last beat is at best the newest one any replica holds.
            (None, false) => newest_beat.map_or(f64::NAN, |b| now - b),
        });
    let by_address: BTreeMap<String, String> = hosts
        .iter()
        .flat_map(|h| h.addresses.iter().map(|a| (a.clone(), h.id.to_string())))
        .collect();
    hosts
        .into_iter()
        .zip(beats)
        .map(|(h, beat)| {
            let is_master = Some(h.id) == master_id;
            let (age, source) = match (is_master, beat, h.facts.replica.as_ref()) {
                (true, _, _) => (master_age, LagSource::Heartbeat),
                (false, Some(beat), _) => (now - beat, LagSource::Heartbeat),
                (false, None, Some(r)) => (
                    r.seconds_behind
                        .map_or(f64::NAN, |s| master_age.max(0.0) + s as f64),
                    LagSource::SecondsBehind,
                ),
                (false, None, None) => (f64::NAN, LagSource::Heartbeat),
            };
            let status = status(&h, age, source, master_id, &by_address, capacity);
            (h.id.to_string(), status)
        })
        .collect()
}

fn status(
    h: &HostFacts<'_>,
    age: f64,
    lag_source: LagSource,
    master_id: Option<&str>,
    by_address: &BTreeMap<String, String>,
    capacity: usize,
) -> DbStatus {
    let f = &h.facts;
    let replica = f.replica.as_ref();
    let thread = |pick: fn(&crate::domain::ReplicaSide) -> ThreadState| {
        replica.is_some_and(|r| pick(r) == ThreadState::Running)
    };
    let source_id = replica
        .map(|r| {
            by_address
                .get(&r.source)
                .cloned()
                .unwrap_or_else(|| r.source.clone())
        })
        .or_else(|| {
            (!f.answers() && h.role == Role::DbReplica)
                .then(|| {
                    h.tags
                        .get(TAG_SOURCE)
                        .cloned()
                        .or_else(|| master_id.map(String::from))
                })
                .flatten()
        });
    let mut lag_history = TimeSeries::new(capacity);
    if age.is_finite() && h.role == Role::DbReplica {
        lag_history.push(age as f32);
    }
    DbStatus {
        heartbeat_age_secs: age as f32,
        lag_history,
        io_thread_running: thread(|r| r.io),
        sql_thread_running: thread(|r| r.sql),
        binlog_enabled: f.log_bin || !f.answers(),
        no_promote: h.tags.contains_key(TAG_NO_PROMOTE),
        source_id,
        running: f.answers(),
        read_only: if f.answers() {
            f.read_only
        } else {
            h.role == Role::DbReplica
        },
        lag_source,
        server: Some(f.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ReplicaSide;

    const NOW: f64 = 1_000_000.0;

    fn server(server_id: u32, binlog_state: &str, received: Option<&str>) -> ServerFacts {
        let mut f = ServerFacts::unreachable(format!("10.0.0.{server_id}:3306"), String::new());
        f.unreachable = None;
        f.flavour = Some(Flavour::MariaDb);
        f.server_id = server_id;
        f.log_bin = true;
        f.gtid_binlog_state = binlog_state.into();
        f.replica = received.map(|r| ReplicaSide {
            source: "10.0.0.1:3306".into(),
            io: ThreadState::Running,
            sql: ThreadState::Running,
            last_io_error: String::new(),
            last_sql_error: String::new(),
            seconds_behind: Some(4),
            sql_delay_secs: 0,
            relay_log_applied: true,
            gtid_received: r.into(),
        });
        f
    }

    fn host<'a>(
        id: &'a str,
        role: Role,
        facts: ServerFacts,
        tags: &'a BTreeMap<String, String>,
    ) -> HostFacts<'a> {
        HostFacts {
            id,
            role,
            addresses: vec![facts.address.clone()],
            tags,
            facts,
        }
    }

    #[test]
    fn errant_transactions_are_those_no_server_of_the_lineage_wrote() {
        let tags = BTreeMap::new();
        let mut master = server(1, "0-1-50", None);
        master.heartbeat = Some((NOW - 1.0, 1));
        let mut clean = server(2, "0-1-50", Some("0-1-50"));
        clean.heartbeat = Some((NOW - 1.0, 1));
        let mut errant = server(3, "0-1-50,0-3-51", Some("0-1-50"));
        errant.heartbeat = Some((NOW - 3.0, 1));
        let out = statuses(
            vec![
                host("m", Role::DbMaster, master, &tags),
                host("r1", Role::DbReplica, clean, &tags),
                host("r2", Role::DbReplica, errant, &tags),
            ],
            Some("m"),
            NOW,
            5,
        );
        let facts = |id: &str| out[id].server.clone().unwrap();
        assert_eq!(facts("r1").errant, "");
        assert_eq!(facts("r2").errant, "0-3-51");
        assert_eq!(
            out["r1"].source_id.as_deref(),
            Some("m"),
            "its source's address is m's"
        );
        assert_eq!(out["r2"].heartbeat_age_secs, 3.0);
        assert_eq!(out["r2"].lag_source, LagSource::Heartbeat);
    }

    #[test]
    fn a_silent_master_is_as_old_as_the_newest_beat_its_replicas_hold() {
        let tags = BTreeMap::new();
        let dead = ServerFacts::unreachable("10.0.0.1:3306".into(), "refused".into());
        let mut r1 = server(2, "0-1-50", Some("0-1-50"));
        r1.heartbeat = Some((NOW - 30.0, 1));
        // No heartbeat row: Seconds_Behind_Master, labelled so, on top of the master's age.
        let r2 = server(3, "0-1-49", Some("0-1-49"));
        let out = statuses(
            vec![
                host("m", Role::DbMaster, dead, &tags),
                host("r1", Role::DbReplica, r1, &tags),
                host("r2", Role::DbReplica, r2, &tags),
            ],
            Some("m"),
            NOW,
            5,
        );
        assert_eq!(out["m"].heartbeat_age_secs, 30.0);
        assert!(!out["m"].running && !out["m"].read_only);
        assert_eq!(out["r2"].lag_source, LagSource::SecondsBehind);
        assert_eq!(out["r2"].heartbeat_age_secs, 34.0);
    }

    #[test]
    fn a_beat_is_put_on_dakes_clock_with_its_writers_skew() {
        let tags = BTreeMap::new();
        let mut master = server(1, "0-1-5", None);
        // The master's clock runs 2 s ahead: its beat "now" is 2 s in dake's future.
        master.clock_skew_secs = 2.0;
        master.heartbeat = Some((NOW + 2.0, 1));
        let mut r1 = server(2, "0-1-5", Some("0-1-5"));
        r1.heartbeat = Some((NOW - 3.0, 1));
        let out = statuses(
            vec![
                host("m", Role::DbMaster, master, &tags),
                host("r1", Role::DbReplica, r1, &tags),
            ],
            Some("m"),
            NOW,
            5,
        );
        assert_eq!(out["m"].heartbeat_age_secs, 0.0);
        assert_eq!(out["r1"].heartbeat_age_secs, 5.0);
    }
}
