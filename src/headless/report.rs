//! `dake report <run-id>`: a Markdown postmortem written from the run's journal alone.

use std::fmt::Write as _;

use chrono::{DateTime, Local, Utc};

use crate::i18n::{Lang, asset, said, tr, trf};
use crate::runbook::model::Playbook;
use crate::runbook::record::{Record, StepStatus};

/// Per step: started, finished, status, note.
type StepTimes = (
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    StepStatus,
    Option<String>,
);

fn stamp(t: DateTime<Utc>, l: Lang) -> String {
    trf(
        l,
        "{utc} UTC ({local} local)",
        &[
            ("utc", &t.format("%Y-%m-%d %H:%M:%S")),
            ("local", &t.with_timezone(&Local).format("%H:%M:%S")),
        ],
    )
}

fn span(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    crate::text::age((to - from).num_seconds())
}

/// What the journal says about the run, read once for every section.
struct Facts<'a> {
    run_id: &'a str,
    target_id: &'a str,
    target_name: &'a str,
    operator: &'a str,
    started: DateTime<Utc>,
    /// When and how it ended: "finished: …" or "aborted: …".
    ended: Option<(DateTime<Utc>, String)>,
    /// When it finished, if it did (not aborted).
    recovered: Option<DateTime<Utc>>,
    /// The incident's summary, when it was detected and when it began.
    incident: Option<(String, DateTime<Utc>, DateTime<Utc>)>,
    steps: Vec<StepTimes>,
    /// When the step that restores service finished.
    mitigated: Option<DateTime<Utc>>,
}

impl<'a> Facts<'a> {
    fn read(records: &'a [Record], playbook: &Playbook) -> Option<Facts<'a>> {
        let Some(Record::Started {
            at: started,
            run_id,
            target_id,
            target_name,
            operator,
            ..
        }) = records.first()
        else {
            return None;
        };
        // The first record that ends the run, and whether it finished it.
        let end = records.iter().find_map(|r| match r {
            Record::Finished { at, outcome } => Some((*at, format!("finished: {outcome}"), true)),
            Record::Aborted { at, reason } => Some((*at, format!("aborted: {reason}"), false)),
            _ => None,
        });
        let recovered = end.as_ref().filter(|e| e.2).map(|e| e.0);
        let ended = end.map(|(at, text, _)| (at, text));
        let incident = records.iter().find_map(|r| match r {
            Record::Incident {
                summary,
                detected_at,
                onset_at,
                ..
            } => Some((summary.clone(), *detected_at, *onset_at)),
            _ => None,
        });
        let steps = step_times(records, playbook, recovered.is_some());
        let mitigated = playbook
            .steps
            .iter()
            .zip(&steps)
            .find(|(spec, s)| spec.mitigates && s.2 == StepStatus::Done)
            .and_then(|(_, s)| s.1);
        Some(Facts {
            run_id,
            target_id,
            target_name,
            operator,
            started: *started,
            ended,
            recovered,
            incident,
            steps,
            mitigated,
        })
    }
}

/// Each step's times, status and note from its records; a finished run's unreached steps
/// were skipped.
fn step_times(records: &[Record], playbook: &Playbook, finished: bool) -> Vec<StepTimes> {
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
    if finished {
        for s in steps.iter_mut().filter(|s| s.2 == StepStatus::Pending) {
            s.2 = StepStatus::Skipped;
        }
    }
    steps
}

/// Writes the postmortem, in `l`. `playbook` supplies step names and which step restores
/// service.
pub fn postmortem(records: &[Record], playbook: &Playbook, l: Lang) -> String {
    let Some(facts) = Facts::read(records, playbook) else {
        return format!(
            "# {}\n\n{}\n",
            tr(l, "Postmortem"),
            tr(l, "The journal has no start record.")
        );
    };
    let mut out = String::new();
    summary(&mut out, &facts, playbook, l);
    times(&mut out, &facts, l);
    steps(&mut out, &facts, playbook, l);
    let _ = writeln!(out, "\n## {}\n", tr(l, "Timeline (UTC)"));
    for r in records {
        let _ = writeln!(
            out,
            "- {} {}",
            r.at().format("%H:%M:%S"),
            said(l, &r.describe().replace('\n', " "))
        );
    }
    out
}

fn summary(out: &mut String, f: &Facts, playbook: &Playbook, l: Lang) {
    let target = f.target_name;
    let run = f.run_id;
    let title = asset(l, &["playbook", &playbook.id, "title"], &playbook.title);
    let line = |out: &mut String, text: String| {
        let _ = writeln!(out, "{text}");
    };
    line(
        out,
        format!(
            "# {}\n",
            trf(
                l,
                "Postmortem: {title} on {target}",
                &[("title", &title), ("target", &target)]
            )
        ),
    );
    line(out, format!("## {}\n", tr(l, "Summary")));
    line(
        out,
        trf(
            l,
            "- Run: `{run}` (playbook `{id}`)",
            &[("run", &run), ("id", &playbook.id)],
        ),
    );
    line(
        out,
        trf(
            l,
            "- Target: {target} (`{id}`)",
            &[("target", &target), ("id", &f.target_id)],
        ),
    );
    line(
        out,
        trf(l, "- Run by: {operator}", &[("operator", &f.operator)]),
    );
    if let Some((summary, _, _)) = &f.incident {
        let summary = said(l, summary);
        line(
            out,
            trf(l, "- Incident: {summary}", &[("summary", &summary)]),
        );
    }
    line(
        out,
        trf(l, "- Started: {at}", &[("at", &stamp(f.started, l))]),
    );
    line(
        out,
        match &f.ended {
            Some((at, outcome)) => trf(
                l,
                "- Ended: {at} — {outcome}",
                &[("at", &stamp(*at, l)), ("outcome", &said(l, outcome))],
            ),
            None => trf(
                l,
                "- Ended: not yet (the run is unfinished; `dake resume {run}`)",
                &[("run", &run)],
            ),
        },
    );
}

fn times(out: &mut String, f: &Facts, l: Lang) {
    let _ = writeln!(out, "\n## {}\n", tr(l, "Times"));
    let _ = writeln!(
        out,
        "| {} | {} |\n| --- | --- |",
        tr(l, "measure"),
        tr(l, "value")
    );
    let since =
        |from: DateTime<Utc>, to: Option<DateTime<Utc>>| to.map_or("—".into(), |t| span(from, t));
    let row = |out: &mut String, measure: &str, value: String| {
        let _ = writeln!(out, "| {measure} | {value} |");
    };
    match &f.incident {
        Some((_, detected, onset)) => {
            row(
                out,
                tr(
                    l,
                    "time to detect (onset estimated as detection minus the sustained window)",
                ),
                span(*onset, *detected),
            );
            row(
                out,
                tr(l, "time to mitigate (detection to service restored)"),
                since(*detected, f.mitigated),
            );
            row(
                out,
                tr(l, "time to recover (detection to run finished)"),
                since(*detected, f.recovered),
            );
        }
        None => {
            row(
                out,
                tr(l, "time to detect"),
                tr(
                    l,
                    "not recorded (no incident was detected on the target when the run started)",
                )
                .to_string(),
            );
            row(
                out,
                tr(l, "time to mitigate (run start to service restored)"),
                since(f.started, f.mitigated),
            );
        }
    }
}

fn steps(out: &mut String, f: &Facts, playbook: &Playbook, l: Lang) {
    let _ = writeln!(out, "\n## {}\n", tr(l, "Steps"));
    let _ = writeln!(
        out,
        "| # | {} | {} | {} | {} |\n| --- | --- | --- | --- | --- |",
        tr(l, "step"),
        tr(l, "status"),
        tr(l, "duration"),
        tr(l, "note")
    );
    for (i, (spec, (from, to, status, note))) in playbook.steps.iter().zip(&f.steps).enumerate() {
        let duration = match (from, to) {
            (Some(f), Some(t)) => span(*f, *t),
            _ => "—".into(),
        };
        let note = said(l, note.as_deref().unwrap_or("")).replace('|', "\\|");
        let _ = writeln!(
            out,
            "| {} | {} | {} | {duration} | {note} |",
            i + 1,
            spec.name,
            tr(l, status.label())
        );
    }
}
