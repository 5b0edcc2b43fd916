//! The drill's scorecard, opened when the drill ends: the times against par, what cost points,
//! and the trainee's earlier attempts. Any key closes it; `dake drill --report` prints it all.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::theme::Theme;
use crate::app::App;
use crate::drill::scorecard::{against, took};
use crate::text::{age, fit};

/// Columns of the overlay, borders included.
const WIDTH: u16 = 76;

pub fn render(app: &App, frame: &mut Frame, area: Rect, theme: &Theme) {
    let card = app.drill.as_ref().and_then(|d| d.scorecard.as_ref());
    let Some(card) = card.or(app.followed_card.as_ref()) else {
        return;
    };
    let inner = usize::from(WIDTH - 2);
    let mut lines = vec![
        Line::styled(
            fit(
                &format!(
                    " {} · {} of drill · keys {} · hints {}",
                    card.outcome,
                    age(card.drill_secs),
                    card.keys,
                    card.hints
                ),
                inner,
            ),
            theme.dim(),
        ),
        Line::styled(
            format!(" {:<32}{:>10}{:>12}", "from the first fault", "took", "par"),
            theme.title(),
        ),
    ];
    for (name, secs, par) in card.phases() {
        lines.push(Line::raw(format!(
            " {:<32}{:>10}{:>12}",
            name,
            took(secs),
            against(secs, par)
        )));
    }
    lines.push(Line::styled(" cost points:", theme.title()));
    if card.deductions.is_empty() {
        lines.push(Line::styled("  nothing", theme.ok()));
    }
    // The most costly first, as many as fit.
    let mut costly: Vec<_> = card.deductions.iter().collect();
    costly.sort_by_key(|d| std::cmp::Reverse(d.points));
    let room = usize::from(area.height)
        .saturating_sub(lines.len() + 6)
        .max(1);
    for d in costly.iter().take(room) {
        lines.push(Line::from(vec![
            Span::styled(format!("  −{:<3}", d.points), theme.warn()),
            Span::raw(fit(
                &format!("{}: {}", d.charge.label(), d.detail),
                inner - 7,
            )),
        ]));
    }
    if costly.len() > room {
        lines.push(Line::styled(
            format!("  … {} more in the report", costly.len() - room),
            theme.dim(),
        ));
    }
    if !app.drill_history.is_empty() {
        let earlier: Vec<String> = app
            .drill_history
            .iter()
            .take(3)
            .map(|c| format!("{} ({})", c.score, c.ended_at.format("%m-%d %H:%M")))
            .collect();
        lines.push(Line::raw(fit(
            &format!(" earlier: {}", earlier.join(" · ")),
            inner,
        )));
    }
    lines.push(Line::styled(
        " any key closes · dake drill --report prints it in full",
        theme.dim(),
    ));
    let r = super::centered(area, WIDTH, lines.len() as u16 + 2);
    frame.render_widget(Clear, r);
    let title = format!(" Drill {}: {}/100 ", card.scenario, card.score);
    let block = Block::new()
        .borders(Borders::ALL)
        .title(Span::styled(title, theme.title()));
    frame.render_widget(Paragraph::new(lines).block(block), r);
}
