//! `dake report <run-id>`: a Markdown postmortem written from the run's journal alone.

use std::fmt::Write as _;

use chrono::{DateTime, Local, Utc};

use crate::runbook::model::Playbook;
use crate::runbook::record::{Record, StepStatus};

/// Per step: started, finished, status, note.
type StepTimes = (
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    StepStatus,
    Option<String>,
);

fn stamp(t: DateTime<Utc>) -> String {
    format!(
        "{} UTC ({} local)",
        t.format("%Y-%m-%d %H:%M:%S"),
        t.with_timezone(&Local).format("%H:%M:%S")
    )
}

fn span(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    crate::text::age((to - from).num_seconds())
}

/// Writes the postmortem. `playbook` supplies step names and which step restores service.
pub fn postmortem(records: &[Record], playbook: &Playbook) -> String {
    let mut out = String::new();
    let Some(Record::Started {
        at: started,
        run_id,
        target_id,
        target_name,
        operator,
        ..
    }) = records.first()
    else {
        return "# Postmortem\n\nThe journal has no start record.\n".into();
    };
    let ended = records.iter().find_map(|r| match r {
        Record::Finished { at, outcome } => Some((*at, format!("finished: {outcome}"))),
        Record::Aborted { at, reason } => Some((*at, format!("aborted: {reason}"))),
        _ => None,
    });
    let incident = records.iter().find_map(|r| match r {
        Record::Incident {
            summary,
            detected_at,
            onset_at,
            ..
        } => Some((summary.clone(), *detected_at, *onset_at)),
        _ => None,
    });
    let mut steps: Vec<StepTimes> = playbook
        .steps
        .iter()
        .map(|_| (None, None, StepStatus::Pending, None))
        .collect();
    for r in records {
        match r {
            Record::StepStarted { at, step, .. } => {
                if let Some(s) = steps.get_mut(*step) {
                    s.0.get_or_insert(*at);
                    s.2 = StepStatus::Active;
                }
            }
            Record::StepFinished {
                at,
                step,
                status,
                note,
            } => {
                if let Some(s) = steps.get_mut(*step) {
                    s.1 = Some(*at);
                    s.2 = *status;
                    s.3 = note.clone();
                }
            }
            _ => {}
        }
    }
    if matches!(ended, Some((_, ref o)) if o.starts_with("finished")) {
        for s in steps.iter_mut().filter(|s| s.2 == StepStatus::Pending) {
            s.2 = StepStatus::Skipped;
        }
    }
    let mitigated = playbook
        .steps
        .iter()
        .zip(&steps)
        .find(|(spec, s)| spec.mitigates && s.2 == StepStatus::Done)
        .and_then(|(_, s)| s.1);

    let _ = writeln!(out, "# Postmortem: {} on {target_name}\n", playbook.title);
    let _ = writeln!(out, "## Summary\n");
    let _ = writeln!(out, "- Run: `{run_id}` (playbook `{}`)", playbook.id);
    let _ = writeln!(out, "- Target: {target_name} (`{target_id}`)");
    let _ = writeln!(out, "- Run by: {operator}");
    if let Some((summary, _, _)) = &incident {
        let _ = writeln!(out, "- Incident: {summary}");
    }
    let _ = writeln!(out, "- Started: {}", stamp(*started));
    match &ended {
        Some((at, outcome)) => {
            let _ = writeln!(out, "- Ended: {} — {outcome}", stamp(*at));
        }
        None => {
            let _ = writeln!(
                out,
                "- Ended: not yet (the run is unfinished; `dake resume {run_id}`)"
            );
        }
    }
    let _ = writeln!(out, "\n## Times\n");
    let _ = writeln!(out, "| measure | value |\n| --- | --- |");
    match &incident {
        Some((_, detected, onset)) => {
            let _ = writeln!(
                out,
                "| time to detect (onset estimated as detection minus the sustained window) | {} |",
                span(*onset, *detected)
            );
            let _ = writeln!(
                out,
                "| time to mitigate (detection to service restored) | {} |",
                mitigated.map_or("—".into(), |m| span(*detected, m))
            );
            let recovered = ended
                .as_ref()
                .filter(|(_, o)| o.starts_with("finished"))
                .map(|(at, _)| *at);
            let _ = writeln!(
                out,
                "| time to recover (detection to run finished) | {} |",
                recovered.map_or("—".into(), |r| span(*detected, r))
            );
        }
        None => {
            let _ = writeln!(
                out,
                "| time to detect | not recorded (no incident was detected on the target when the run started) |"
            );
            let _ = writeln!(
                out,
                "| time to mitigate (run start to service restored) | {} |",
                mitigated.map_or("—".into(), |m| span(*started, m))
            );
        }
    }
    let _ = writeln!(out, "\n## Steps\n");
    let _ = writeln!(
        out,
        "| # | step | status | duration | note |\n| --- | --- | --- | --- | --- |"
    );
    for (i, (spec, (from, to, status, note))) in playbook.steps.iter().zip(&steps).enumerate() {
        let duration = match (from, to) {
            (Some(f), Some(t)) => span(*f, *t),
            _ => "—".into(),
        };
        let note = note.as_deref().unwrap_or("").replace('|', "\\|");
        let _ = writeln!(
            out,
            "| {} | {} | {} | {duration} | {note} |",
            i + 1,
            spec.name,
            status.label()
        );
    }
    let _ = writeln!(out, "\n## Timeline (UTC)\n");
    for r in records {
        let _ = writeln!(
            out,
            "- {} {}",
            r.at().format("%H:%M:%S"),
            r.describe().replace('\n', " ")
        );
    }
    out
}
