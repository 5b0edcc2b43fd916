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
    /// Addresses that name this host in a replica's source (`host:port`): how dake reached it
    /// and its private address with the configured port.
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
