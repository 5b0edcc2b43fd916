//! Replication status from what the database hosts publish: each host the epoch time of the
//! newest heartbeat it holds (the master its own last write), once a minute. How far a replica
//! is behind is a difference of two such timestamps from the same minute, so it is exact to the
//! second whatever CloudWatch's minute and publishing delay; once the master is silent, the
//! replicas' frozen values are compared with the newest beat any host of the lineage holds, so
//! a dead master makes no replica look later than it is.

use std::collections::BTreeMap;

use super::metrics::{PERIOD_SECS, PUBLISH_DELAY_SECS, Points, series};
use crate::domain::call::{TAG_NO_PROMOTE, TAG_SOURCE};
use crate::domain::{DbStatus, LagSource, Role};

/// Tag an operator sets to `off` on a replica whose binary log is off.
const TAG_BINLOG: &str = "dake:binlog";

fn minute(t: i64) -> i64 {
    t.div_euclid(PERIOD_SECS)
}

/// The newest heartbeat known to have been written by each minute: the most any database host
/// of the fleet held then or before (beats only move forward). What every host is measured
/// against: the master's own beat while it publishes; once it is silent, the newer of its last
/// beat and the most advanced replica's.
#[derive(Debug, Default)]
pub struct Lineage {
    newest: BTreeMap<i64, f64>,
}

impl Lineage {
    pub fn new<'a>(hosts: impl IntoIterator<Item = &'a Points>) -> Lineage {
        let mut newest: BTreeMap<i64, f64> = BTreeMap::new();
        for &(t, beat) in hosts.into_iter().flatten() {
            let slot = newest.entry(minute(t)).or_insert(beat);
            *slot = slot.max(beat);
        }
        let mut so_far = f64::NEG_INFINITY;
        for beat in newest.values_mut() {
            so_far = so_far.max(*beat);
            *beat = so_far;
        }
        Lineage { newest }
    }

    /// Seconds of beats the lineage held at `t` that `beat` lacks.
    fn behind(&self, t: i64, beat: f64) -> f64 {
        self.newest
            .get(&minute(t))
            .map_or(0.0, |&newest| (newest - beat).max(0.0))
    }
}

/// Seconds a host has been silent beyond the publishing delay; `None` when it never published.
pub fn silence(heartbeat: Option<&Points>, now: i64) -> Option<i64> {
    let &(newest_at, _) = heartbeat?.last()?;
    Some((now - newest_at - PUBLISH_DELAY_SECS).max(0))
}

/// What one database host published, and what the fleet around it says.
pub struct Published<'a> {
    pub role: Role,
    pub heartbeat: Option<&'a Points>,
    pub read_only: Option<&'a Points>,
    pub tags: &'a BTreeMap<String, String>,
    /// The instance the endpoint names (the master replicas read from unless tagged otherwise).
    pub master_id: Option<&'a str>,
    /// The master's silence beyond the publishing delay (see [`silence`]).
    pub master_silence: i64,
}

/// Replication status of a database host. `None` when it has never published in the window:
/// no data is said as such, never read as "down" or "up".
pub fn db_status(
    host: Published<'_>,
    lineage: &Lineage,
    now: i64,
    capacity: usize,
) -> Option<DbStatus> {
    let heartbeat = host.heartbeat?;
    let &(newest_at, newest_beat) = heartbeat.last()?;
    let own_silence = silence(Some(heartbeat), now).unwrap_or(0);
    let fresh = own_silence == 0;
    let is_replica = host.role == Role::DbReplica;
    // Behind the lineage in its newest minute, and by every second it has been silent since.
    let behind = lineage.behind(newest_at, newest_beat) + own_silence as f64;
    let lags: Points = heartbeat
        .iter()
        .map(|&(t, beat)| (t, lineage.behind(t, beat)))
        .collect();
    let read_only = host
        .read_only
        .and_then(|p| p.last())
        .map_or(is_replica, |&(_, v)| v >= 0.5);
    let heartbeat_age = if is_replica {
        host.master_silence as f64 + behind
    } else {
        behind
    };
    Some(DbStatus {
        heartbeat_age_secs: heartbeat_age as f32,
        lag_history: series(&lags, now, capacity),
        // Thread state is not published: a replica that publishes is taken to replicate.
        io_thread_running: is_replica && fresh,
        sql_thread_running: is_replica && fresh,
        binlog_enabled: host.tags.get(TAG_BINLOG).is_none_or(|v| v != "off"),
        no_promote: host.tags.contains_key(TAG_NO_PROMOTE),
        source_id: if is_replica {
            host.tags
                .get(TAG_SOURCE)
                .cloned()
                .or_else(|| host.master_id.map(String::from))
        } else {
            None
        },
        running: fresh,
        read_only,
        lag_source: LagSource::Metrics,
        server: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_020;

    fn status(role: Role, beats: &Points, lineage: &Lineage, master_silence: i64) -> DbStatus {
        let tags = BTreeMap::new();
        db_status(
            Published {
                role,
                heartbeat: Some(beats),
                read_only: None,
                tags: &tags,
                master_id: Some("i-m"),
                master_silence,
            },
            lineage,
            NOW,
            5,
        )
        .unwrap()
    }

    /// One datapoint a minute for the last `minutes`, each the beat held at the minute's start
    /// as `beat(t)` says.
    fn published(minutes: i64, last_at: i64, beat: impl Fn(i64) -> f64) -> Points {
        (0..minutes)
            .rev()
            .map(|k| {
                let t = last_at - k * 60;
                (t, beat(t))
            })
            .collect()
    }

    #[test]
    fn a_live_master_measures_each_replica_in_the_same_minute() {
        let last = minute(NOW - 60) * 60;
        let master = published(5, last, |t| t as f64);
        let replica = published(5, last, |t| t as f64 - 7.0);
        // The master's newest minute is not shown yet for the other replica: compared within
        // its own minute it is still 3 s behind, not a minute.
        let late = published(5, last - 60, |t| t as f64 - 3.0);
        let lineage = Lineage::new([&master, &replica, &late]);
        let silence = silence(Some(&master), NOW).unwrap();
        assert_eq!(silence, 0);
        assert_eq!(
            status(Role::DbMaster, &master, &lineage, 0).heartbeat_age_secs,
            0.0
        );
        let r = status(Role::DbReplica, &replica, &lineage, silence);
        assert_eq!(r.heartbeat_age_secs, 7.0);
        assert_eq!(r.lag_history.latest(), Some(7.0));
        assert!(r.running && r.sql_thread_running && r.read_only);
        assert_eq!(r.source_id.as_deref(), Some("i-m"));
        assert_eq!(
            status(Role::DbReplica, &late, &lineage, 0).heartbeat_age_secs,
            3.0
        );
    }

    #[test]
    fn a_dead_master_leaves_replicas_exactly_as_far_behind_as_they_were() {
        // The master died five minutes ago after its last beat; the replicas keep publishing
        // the beats they hold, which no longer advance, and are measured against its last.
        let died = NOW - 300;
        let last = minute(NOW - 60) * 60;
        let master = published(10, minute(died) * 60, |t| t.min(died) as f64);
        let one = published(10, last, |t| (t.min(died) - 1) as f64);
        let four = published(10, last, |t| (t.min(died) - 4) as f64);
        let lineage = Lineage::new([&master, &one, &four]);
        let silence = silence(Some(&master), NOW).unwrap();
        assert!(silence > 100, "{silence}");
        let m = status(Role::DbMaster, &master, &lineage, silence);
        assert_eq!(m.heartbeat_age_secs, silence as f32);
        assert!(!m.running);
        for (beats, behind) in [(&one, 1.0), (&four, 4.0)] {
            let r = status(Role::DbReplica, beats, &lineage, silence);
            assert_eq!(r.heartbeat_age_secs - silence as f32, behind);
        }
    }

    #[test]
    fn a_silent_replica_falls_behind_by_its_silence_and_no_data_is_no_status() {
        let master = published(10, minute(NOW - 60) * 60, |t| t as f64);
        let replica = published(3, minute(NOW - 600) * 60, |t| t as f64 - 2.0);
        let lineage = Lineage::new([&master, &replica]);
        let r = status(Role::DbReplica, &replica, &lineage, 0);
        let quiet = silence(Some(&replica), NOW).unwrap();
        assert!(quiet > 400);
        assert_eq!(r.heartbeat_age_secs, 2.0 + quiet as f32);
        assert!(!r.running && !r.sql_thread_running);
        let tags = BTreeMap::new();
        let nothing = Published {
            role: Role::DbMaster,
            heartbeat: None,
            read_only: None,
            tags: &tags,
            master_id: None,
            master_silence: 0,
        };
        assert!(db_status(nothing, &lineage, NOW, 5).is_none());
    }

    #[test]
    fn a_promoted_replica_reads_writable_from_what_it_publishes() {
        let beats = published(2, minute(NOW - 60) * 60, |t| t as f64);
        let writable = vec![(NOW - 60, 0.0)];
        let tags = BTreeMap::new();
        let db = db_status(
            Published {
                role: Role::DbMaster,
                heartbeat: Some(&beats),
                read_only: Some(&writable),
                tags: &tags,
                master_id: None,
                master_silence: 0,
            },
            &Lineage::new([&beats]),
            NOW,
            5,
        )
        .unwrap();
        assert!(!db.read_only && db.source_id.is_none() && db.running);
    }
}
