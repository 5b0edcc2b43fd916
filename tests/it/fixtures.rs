//! Fixed facts every test shares, so screens, journals and timestamps read the same on every run.

use chrono::{DateTime, Utc};

/// Wall time of the simulated fleet's virtual second 0 in tests: a fixed morning.
pub fn epoch() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-26T09:00:00Z")
        .expect("a valid RFC 3339 timestamp")
        .to_utc()
}
