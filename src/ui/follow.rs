//! `dake follow`: the followed run's panel and its timeline, nothing of the fleet (the follower
//! may have no access to it), and a footer that says it is read-only.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::theme::Theme;
use crate::app::App;
use crate::app::viewport::RUN_DETAIL_LINES;
use crate::i18n::{said, tr, trf};
use crate::text::fit;

pub fn render(app: &App, frame: &mut Frame, area: Rect, theme: &Theme) {
    let row = |y: u16, height: u16| Rect {
        x: area.x,
        y: area.y + y,
        width: area.width,
        height,
    };
    super::header::render(app, frame, row(0, 1), theme);
    let width = area.width as usize;
    let l = app.lang;
    let banner = match &app.followed {
        Some((run, _)) => trf(
            l,
            " FOLLOWING run {run} · {playbook} on {target} · journal {path}",
            &[
                ("run", &run.run_id),
                ("playbook", &run.playbook),
                ("target", &run.target_name),
                ("path", &run.path.display()),
            ],
        ),
        None => format!(
            " {}",
            tr(
                l,
                "waiting for a run to start (its journal appears in the runs directory)"
            )
        ),
    };
    frame.render_widget(
        Paragraph::new(Line::styled(fit(&banner, width), theme.key())),
        row(1, 1),
    );
    let body = area.height.saturating_sub(3);
    let steps = app.run.as_ref().map_or(0, |r| r.steps.len() as u16);
    // The panel: its title, every step and its detail; the timeline keeps the rest.
    let panel = (steps + 1 + RUN_DETAIL_LINES).min(body.saturating_sub(4));
    if app.run.is_some() {
        super::run_panel::render(app, frame, row(2, panel), theme);
    }
    super::timeline::render(app, frame, row(2 + panel, body - panel), theme);
    let footer = match &app.notice {
        Some(n) => Line::styled(fit(&format!(" {}", said(l, n)), width), theme.warn()),
        None => Line::from(vec![
            Span::styled(format!(" {}", tr(l, "read-only")), theme.dim()),
            Span::styled("  ? ", theme.key()),
            Span::raw(format!("{} ", tr(l, "help"))),
            Span::styled(" q ", theme.key()),
            Span::raw(tr(l, "quit")),
        ]),
    };
    frame.render_widget(Paragraph::new(footer), row(area.height - 1, 1));
}
