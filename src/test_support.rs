//! Fixed facts the unit tests share, so what they assert reads the same on every run.

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::domain::FleetSnapshot;
use crate::provider::sim::SimFleet;

/// Wall time of the simulated fleet's virtual second 0 in tests: a fixed morning.
pub fn epoch() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-26T09:00:00Z")
        .expect("a valid RFC 3339 timestamp")
        .to_utc()
}

/// The built-in drill fleet `t` virtual seconds in.
pub fn fleet_at(t: f64) -> FleetSnapshot {
    let mut fleet = SimFleet::new(&Config::builtin(), epoch());
    fleet.advance_to(t);
    fleet.snapshot()
}
