//! What a drill says in one line on the banner: that it is a drill, and what is coming.

use chrono::{DateTime, Utc};

use super::trace::DrillState;
use crate::config::{IncidentKind, SimConfig};
use crate::text::age;

/// The plain console on the drill fleet: its next scheduled incident, without naming the
/// server, and how soon.
pub fn upcoming(sim: &SimConfig, elapsed_secs: i64) -> String {
    let next = sim
        .incidents
        .iter()
        .filter(|i| i.at_secs as i64 > elapsed_secs)
        .min_by_key(|i| i.at_secs);
    let what = match next {
        Some(i) => {
            let thing = match i.kind {
                IncidentKind::SlowWeb => "a web server will slow down",
                IncidentKind::MasterDown => "the master database will go down",
            };
            format!("{thing} in ~{}", age(i.at_secs as i64 - elapsed_secs))
        }
        None => "nothing more is scheduled".into(),
    };
    format!("DRILL: {what} · scored drills: dake drill")
}

/// A scored drill: its scenario, and what it is waiting for.
pub fn drill_line(d: &DrillState, now: DateTime<Utc>) -> String {
    let id = &d.scenario.id;
    if let Some(card) = &d.scorecard {
        return format!("DRILL {id} over: {}/100, {}", card.score, card.outcome);
    }
    let elapsed = d.secs(now);
    let hints = d.scenario.hints.len().saturating_sub(d.hints_shown);
    let hint = if hints > 0 {
        format!(" · h hint ({hints} left)")
    } else {
        String::new()
    };
    let onset = d.scenario.onset_secs() as i64;
    if elapsed < onset {
        let soon = age(onset - elapsed);
        return format!("DRILL {id}: {} in ~{soon}{hint}", d.scenario.brief);
    }
    format!("DRILL {id} · {} in{hint}", age(elapsed))
}
