//! What a drill says in one line on the banner: that it is a drill, and what is coming.

use chrono::{DateTime, Utc};

use super::trace::DrillState;
use crate::config::{IncidentKind, SimConfig};
use crate::i18n::{Lang, asset, said, tr, trf};
use crate::text::age;

/// The plain console on the drill fleet: its next scheduled incident, without naming the
/// server, and how soon.
pub fn upcoming(l: Lang, sim: &SimConfig, elapsed_secs: i64) -> String {
    let next = sim
        .incidents
        .iter()
        .filter(|i| i.at_secs as i64 > elapsed_secs)
        .min_by_key(|i| i.at_secs);
    let what = match next {
        Some(i) => {
            let soon = age(i.at_secs as i64 - elapsed_secs);
            match i.kind {
                IncidentKind::SlowWeb => trf(
                    l,
                    "a web server will slow down in ~{soon}",
                    &[("soon", &soon)],
                ),
                IncidentKind::MasterDown => trf(
                    l,
                    "the master database will go down in ~{soon}",
                    &[("soon", &soon)],
                ),
            }
        }
        None => tr(l, "nothing more is scheduled").to_string(),
    };
    trf(
        l,
        "DRILL: {what} · scored drills: dake drill",
        &[("what", &what)],
    )
}

/// A scored drill: its scenario, and what it is waiting for.
pub fn drill_line(l: Lang, d: &DrillState, now: DateTime<Utc>) -> String {
    let id = &d.scenario.id;
    if let Some(card) = &d.scorecard {
        return trf(
            l,
            "DRILL {id} over: {score}/100, {outcome}",
            &[
                ("id", id),
                ("score", &card.score),
                ("outcome", &said(l, &card.outcome)),
            ],
        );
    }
    let elapsed = d.secs(now);
    let hints = d.scenario.hints.len().saturating_sub(d.hints_shown);
    let hint = if hints > 0 {
        trf(l, " · h hint ({n} left)", &[("n", &hints)])
    } else {
        String::new()
    };
    let onset = d.scenario.onset_secs() as i64;
    if elapsed < onset {
        let soon = age(onset - elapsed);
        let brief = asset(l, &["scenario", id, "brief"], &d.scenario.brief);
        return trf(
            l,
            "DRILL {id}: {brief} in ~{soon}{hint}",
            &[
                ("id", id),
                ("brief", &brief),
                ("soon", &soon),
                ("hint", &hint),
            ],
        );
    }
    trf(
        l,
        "DRILL {id} · {took} in{hint}",
        &[("id", id), ("took", &age(elapsed)), ("hint", &hint)],
    )
}
