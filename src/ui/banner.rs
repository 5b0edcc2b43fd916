//! The incident banner: `✓ OK`, or one line per incident with the keys of its playbooks.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::theme::Theme;
use crate::app::App;
use crate::app::viewport::WIDE;
use crate::detect::Severity;
use crate::i18n::{said, tr, trf};
use crate::runbook::model::{NO_PLAYBOOK, for_incident};
use crate::text::{self, fit};

pub fn render(app: &App, frame: &mut Frame, area: Rect, theme: &Theme) {
    if app.present {
        return super::present::banner(app, frame, area, theme);
    }
    let width = area.width as usize;
    let l = app.lang;
    let lines: Vec<Line> = if app.snapshot.is_none() {
        vec![Line::styled(
            format!(
                " … {}",
                trf(
                    l,
                    "waiting for the first snapshot from {provider}",
                    &[("provider", &app.provider_name)]
                )
            ),
            theme.dim(),
        )]
    } else if app.incidents.is_empty() {
        let drill = match (&app.drill, app.drill_epoch) {
            (Some(d), _) => Some(crate::drill::brief::drill_line(l, d, app.fleet_now())),
            (None, Some(epoch)) => Some(crate::drill::brief::upcoming(
                l,
                &app.config.sim,
                (app.fleet_now() - epoch).num_seconds(),
            )),
            (None, None) => None,
        };
        match drill {
            // What the drill has coming says more than "no incidents" on a fleet built for them.
            Some(line) => {
                let ok = format!(" {}  ", tr(l, "✓ OK"));
                let room = width.saturating_sub(crate::text::width(&ok));
                vec![Line::from(vec![
                    Span::styled(ok, theme.ok()),
                    Span::styled(fit(&line, room), theme.key()),
                ])]
            }
            None => vec![Line::styled(
                format!(" {}  {}", tr(l, "✓ OK"), tr(l, "no incidents detected")),
                theme.ok(),
            )],
        }
    } else {
        app.incidents
            .iter()
            .take(area.height as usize)
            .map(|inc| {
                let (label, style) = match inc.severity {
                    Severity::Critical => (tr(l, " ✖ CRITICAL "), theme.critical()),
                    Severity::Warning => (tr(l, " ▲ WARNING  "), theme.warning()),
                };
                // Narrow screens get the short headline, so the playbooks stay named in full.
                let wide = width >= usize::from(WIDE);
                let keyed: Vec<String> = for_incident(&app.playbooks, inc.kind)
                    .iter()
                    .map(|p| format!("{} {}", p.key, p.id))
                    .collect();
                let playbook = match app.mitigated_by(inc) {
                    Some(run) if wide => {
                        format!(" · {}", trf(l, "mitigated by run {run}", &[("run", &run)]))
                    }
                    Some(_) => format!(" · {}", tr(l, "mitigated")),
                    None if keyed.is_empty() => format!(" → {}", tr(l, NO_PLAYBOOK)),
                    None => format!(" → {}", keyed.join(if wide { " | " } else { "/" })),
                };
                let room = width.saturating_sub(text::width(label) + text::width(&playbook) + 1);
                // The whole summary where it fits; else the headline says it in fewer words.
                let (summary, headline) = (said(l, &inc.summary), said(l, &inc.headline));
                let summary = if wide && text::width(&summary) <= room {
                    summary
                } else {
                    headline
                };
                Line::from(vec![
                    Span::styled(label, style),
                    Span::raw(" "),
                    Span::raw(fit(&summary, room)),
                    Span::styled(playbook, theme.key()),
                ])
            })
            .collect()
    };
    frame.render_widget(Paragraph::new(lines), area);
}
