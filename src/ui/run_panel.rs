//! The run panel: the playbook's steps with their state, and for the current step what it will
//! do (the exact calls), the confirmation it needs, or the wait in progress.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Gauge, Paragraph};

use super::theme::Theme;
use crate::app::{App, Arming};
use crate::domain::call::ProviderCall;
use crate::i18n::{Lang, asset, said, tr, trf};
use crate::runbook::confirm::CONFIRM_SUFFIX_LEN;
use crate::runbook::engine::{Phase, Run};
use crate::runbook::model::Confirm;
use crate::runbook::record::StepStatus;
use crate::text::{self, age, fit, pad, wrap};

fn status_mark(s: StepStatus) -> &'static str {
    match s {
        StepStatus::Pending => "·",
        StepStatus::Active => "▶",
        StepStatus::Done => "✓",
        StepStatus::TimedOut => "⏱",
        StepStatus::Failed => "✗",
        StepStatus::Skipped => "↷",
    }
}

pub fn render(app: &App, frame: &mut Frame, area: Rect, theme: &Theme) {
    let Some(run) = app.run.as_ref() else { return };
    let width = area.width as usize;
    let l = app.lang;
    let title = Line::from(vec![
        Span::styled(
            format!(" {} ", trf(l, "Playbook {id}", &[("id", &run.playbook.id)])),
            theme.title(),
        ),
        Span::raw(format!(
            "{} ",
            trf(l, "on {target}", &[("target", &run.ctx.target_name)])
        )),
        Span::styled(
            format!("· {} ", trf(l, "run {run}", &[("run", &run.ctx.run_id)])),
            theme.dim(),
        ),
    ]);
    let block = Block::new().borders(Borders::TOP).title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 {
        return;
    }
    let detail = detail_lines(app, run, theme, width);
    let reserved = detail.len() as u16;
    let step_rows = inner.height.saturating_sub(reserved).max(1) as usize;
    // Keep the current step in view when the list is longer than the room.
    let first = run
        .cursor
        .saturating_sub(step_rows / 2)
        .min(run.steps.len().saturating_sub(step_rows));
    let mut lines: Vec<Line> = (first..run.steps.len().min(first + step_rows))
        .map(|i| step_line(l, run, i, width, theme))
        .collect();
    let list_height = lines.len() as u16;
    lines.extend(detail);
    frame.render_widget(Paragraph::new(lines), inner);
    if let Phase::Waiting {
        since,
        deadline,
        detail,
        longer,
        ..
    } = &run.phase
    {
        let y = inner.y + (list_height + 1).min(inner.height.saturating_sub(1));
        let r = Rect {
            x: inner.x + 1,
            y,
            width: inner.width.saturating_sub(2),
            height: 1,
        };
        let now = app.fleet_now();
        frame.render_widget(
            wait_gauge(
                l,
                now,
                (*since, *deadline),
                detail,
                longer.as_deref(),
                r.width,
                theme,
            ),
            r,
        );
    }
}

/// Step `i`: its mark, number, destructive flag, name, status and note (or, for the next
/// step, why it is there).
fn step_line<'a>(l: Lang, run: &Run, i: usize, width: usize, theme: &Theme) -> Line<'a> {
    let (spec, state) = (&run.playbook.steps[i], &run.steps[i]);
    let current = i == run.cursor && !run.is_over();
    // A step the run was aborted in is not running any more: its calls were made, its wait
    // was given up.
    let stopped = matches!(run.phase, Phase::Aborted { .. }) && state.status == StepStatus::Active;
    let status = tr(
        l,
        if current && state.status == StepStatus::Pending {
            "next"
        } else if stopped {
            "aborted"
        } else {
            state.status.label()
        },
    );
    let mark = if stopped {
        "✗"
    } else {
        status_mark(state.status)
    };
    let style = match state.status {
        _ if stopped => theme.warn(),
        StepStatus::Done => theme.ok(),
        StepStatus::Failed => theme.bad(),
        StepStatus::TimedOut => theme.warn(),
        _ if current => theme.key(),
        _ => theme.dim(),
    };
    let flag = if spec.destructive { "!" } else { " " };
    let why = asset(
        l,
        &["playbook", &run.playbook.id, "step", &spec.name],
        &spec.why,
    );
    let note = match (&state.note, current) {
        (Some(n), _) => said(l, n),
        (None, true) => why,
        (None, false) => "".into(),
    };
    let head = format!(
        " {mark} {:>2} {flag}{:<19} {} ",
        i + 1,
        fit(&spec.name, 19),
        pad(&fit(status, 9), 9)
    );
    let room = width.saturating_sub(text::width(&head));
    Line::from(vec![
        Span::styled(head, style),
        Span::styled(fit(&note, room), theme.dim()),
    ])
}

/// How long the step has waited of its timeout, and what the fleet shows now.
fn wait_gauge<'a>(
    l: Lang,
    now: DateTime<Utc>,
    (since, deadline): (DateTime<Utc>, DateTime<Utc>),
    detail: &str,
    longer: Option<&str>,
    width: u16,
    theme: &Theme,
) -> Gauge<'a> {
    let total = (deadline - since).num_seconds().max(1);
    let elapsed = (now - since).num_seconds().clamp(0, total);
    let detail = if detail.is_empty() {
        tr(l, "checking").into()
    } else {
        said(l, detail)
    };
    // Why the wait is longer than its step says: the gauge's total is that long for a reason.
    let longer = longer.map_or(String::new(), |why| format!(" ({})", said(l, why)));
    let label = trf(
        l,
        "waiting {elapsed} / {total}{longer} · {detail}",
        &[
            ("elapsed", &age(elapsed)),
            ("total", &age(total)),
            ("longer", &longer),
            ("detail", &detail),
        ],
    );
    Gauge::default()
        .gauge_style(theme.warn())
        .ratio(elapsed as f64 / total as f64)
        .label(fit(&label, width as usize))
}

/// The exact calls, whole: an operator must be able to read what a step will do before
/// pressing the key, so they wrap instead of being cut.
fn call_lines<'a>(calls: &[ProviderCall], width: usize, theme: &Theme) -> Vec<Line<'a>> {
    calls
        .iter()
        .take(3)
        .flat_map(|c| wrap(&c.to_string(), width.saturating_sub(4), "     "))
        .map(|l| Line::styled(format!("   {l}"), theme.key()))
        .collect()
}

/// What Enter will do next: the calls the step makes, its warnings, or why it would be
/// refused now.
fn next_step_lines<'a>(app: &App, run: &Run, theme: &Theme, width: usize) -> Vec<Line<'a>> {
    let l = app.lang;
    let name = run.current_step().map_or("", |s| s.name.as_str());
    let mut out = Vec::new();
    match app.snapshot.as_ref().and_then(|s| run.preview(s)) {
        Some(Ok(plan)) => {
            if plan.calls.is_empty() {
                out.push(Line::raw(fit(
                    &format!(
                        " {}",
                        trf(
                            l,
                            "Enter runs {name}: looks and decides, no API calls",
                            &[("name", &name)]
                        )
                    ),
                    width,
                )));
            } else {
                out.push(Line::raw(fit(
                    &format!(
                        " {}",
                        trf(l, "Enter runs {name}, which calls:", &[("name", &name)])
                    ),
                    width,
                )));
                out.extend(call_lines(&plan.calls, width, theme));
            }
            for w in plan.warnings.iter().take(2) {
                let w = said(l, w);
                out.push(Line::styled(fit(&format!(" ⚠ {w}"), width), theme.warn()));
            }
        }
        Some(Err(why)) => out.push(Line::styled(
            fit(
                &format!(
                    " ✗ {}",
                    trf(
                        l,
                        "{name} would be refused: {why}",
                        &[("name", &name), ("why", &said(l, &why))]
                    )
                ),
                width,
            ),
            theme.bad(),
        )),
        // A follower has no fleet to plan against: the operator decides when it runs.
        None if app.arming == crate::app::Arming::Following => out.push(Line::raw(format!(
            " {}",
            tr(l, "next: the operator has not run it yet")
        ))),
        None => out.push(Line::raw(format!(" {}", tr(l, "waiting for fleet data")))),
    }
    out
}

fn detail_lines<'a>(app: &App, run: &Run, theme: &Theme, width: usize) -> Vec<Line<'a>> {
    let l = app.lang;
    let mut out = vec![Line::raw("")];
    match &run.phase {
        Phase::Ready => out.extend(next_step_lines(app, run, theme, width)),
        Phase::Confirming { plan, typed } => {
            out.extend(confirming_lines(l, plan, typed, theme, width));
        }
        Phase::Calling { .. } => {
            let pending = run
                .steps
                .get(run.cursor)
                .and_then(|s| s.calls.iter().find(|c| c.outcome.is_none()));
            if let Some(c) = pending {
                out.push(Line::styled(
                    fit(
                        &format!(" {}", trf(l, "calling {call}", &[("call", &c.call)])),
                        width,
                    ),
                    theme.key(),
                ));
            }
        }
        // The gauge's own row, drawn over this blank line, so nothing below it lands there.
        Phase::Waiting { .. } => out.push(Line::raw("")),
        Phase::Failed { error } => out.extend(failed_lines(l, run, error, theme, width)),
        Phase::Finished { outcome } => {
            out.push(Line::styled(
                fit(&format!(" ✓ {}", said(l, outcome)), width),
                theme.ok(),
            ));
            // A follower cannot close the panel: it shows the run it follows.
            let close = if app.arming == Arming::Following {
                tr(l, "the postmortem:")
            } else {
                tr(l, "c closes this panel; the postmortem:")
            };
            out.push(Line::raw(format!(" {close}")));
            out.push(Line::styled(
                fit(&format!("   dake report {}", run.ctx.run_id), width),
                theme.key(),
            ));
        }
        Phase::Aborted { reason } => {
            out.push(Line::styled(
                fit(
                    &format!(
                        " {}",
                        trf(l, "aborted: {reason}", &[("reason", &said(l, reason))])
                    ),
                    width,
                ),
                theme.warn(),
            ));
            if app.arming != Arming::Following {
                out.push(Line::raw(format!(" {}", tr(l, "c closes this panel"))));
            }
        }
    }
    if let Some(n) = &app.notice {
        out.push(Line::styled(
            fit(&format!(" {}", said(l, n)), width),
            theme.warn(),
        ));
    }
    // The refusal's own text may be cut at 80 columns; what lifts it is said on its own line.
    if let Some(o) = run.may_override() {
        out.push(Line::styled(
            fit(
                &format!(
                    " {}",
                    trf(
                        l,
                        "O lifts it: override `{name}` ({consequence})",
                        &[
                            ("name", &o.name()),
                            ("consequence", &said(l, o.consequence())),
                        ]
                    )
                ),
                width,
            ),
            theme.key(),
        ));
    }
    out
}

/// A destructive step waiting for its confirmation: the calls, and what confirms them.
fn confirming_lines<'a>(
    l: Lang,
    plan: &crate::runbook::plan::Plan,
    typed: &str,
    theme: &Theme,
    width: usize,
) -> Vec<Line<'a>> {
    let mut out = Vec::new();
    out.push(Line::styled(
        format!(" {}", tr(l, "DESTRUCTIVE: this step will call")),
        theme.critical(),
    ));
    out.extend(call_lines(&plan.calls, width, theme));
    for w in plan.warnings.iter().take(1) {
        let w = said(l, w);
        out.push(Line::styled(fit(&format!(" ⚠ {w}"), width), theme.warn()));
    }
    let prompt = if plan.confirm == Confirm::TypeId {
        let id = plan.confirm_id.as_deref().unwrap_or("");
        let n = CONFIRM_SUFFIX_LEN;
        let typed = format!("[{typed:_<n$}]");
        format!(
            " {}",
            trf(
                l,
                "Type the last {n} of {id}: {typed}  Enter confirms · Esc cancels",
                &[("n", &n), ("id", &id), ("typed", &typed)]
            )
        )
    } else {
        format!(" {}", tr(l, "Enter again confirms · Esc cancels"))
    };
    out.push(Line::styled(fit(&prompt, width), theme.warning()));
    out
}

/// A failed step: why, and what the operator can do about it.
fn failed_lines<'a>(l: Lang, run: &Run, error: &str, theme: &Theme, width: usize) -> Vec<Line<'a>> {
    let mut out = Vec::new();
    out.push(Line::styled(
        fit(
            &format!(
                " ✗ {}",
                trf(l, "failed: {error}", &[("error", &said(l, error))])
            ),
            width,
        ),
        theme.bad(),
    ));
    out.push(Line::raw(format!(
        " {}",
        tr(
            l,
            "r retries the step (calls that succeeded are not repeated); x aborts the run"
        )
    )));
    if run.may_declare_fenced() {
        out.push(Line::raw(fit(
            &format!(
                " {}",
                tr(
                    l,
                    "F: you fenced it another way (network cut, MySQL stopped by hand)"
                )
            ),
            width,
        )));
    }
    if let Some(holder) = run.stale_lease_holder() {
        out.push(Line::styled(
            fit(
                &format!(
                    " {}",
                    trf(
                        l,
                        "T takes the lease over if run {holder} is dead (type its id)",
                        &[("holder", &holder)]
                    )
                ),
                width,
            ),
            theme.key(),
        ));
    }
    out
}
