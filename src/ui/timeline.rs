//! The timeline: what was detected, cleared or failed, newest at the bottom.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::theme::Theme;
use crate::app::viewport::WIDE;
use crate::app::{App, EntryKind};
use crate::i18n::tr;
use crate::text::fit;

pub fn render(app: &App, frame: &mut Frame, area: Rect, theme: &Theme) {
    // Local time only where it differs from UTC and there is room for it.
    let local = app.local_offset.local_minus_utc() != 0 && area.width >= WIDE;
    let title = if local {
        tr(app.lang, "Timeline (UTC, local in brackets)")
    } else {
        tr(app.lang, "Timeline (UTC)")
    };
    let block = Block::new()
        .borders(Borders::TOP)
        .title(Span::styled(format!(" {title} "), theme.title()));
    let rows = area.height.saturating_sub(1) as usize;
    let text_width = (area.width as usize).saturating_sub(if local { 21 } else { 13 });
    let lines: Vec<Line> = app
        .timeline
        .iter()
        .skip(app.timeline.len().saturating_sub(rows))
        .map(|e| {
            let (mark, style) = match e.kind {
                EntryKind::Info => ("·", theme.dim()),
                EntryKind::Detected => ("!", theme.bad()),
                EntryKind::Cleared => ("✓", theme.ok()),
                EntryKind::Error => ("✗", theme.warn()),
            };
            Line::from(vec![
                Span::styled(
                    if local {
                        let l = e.at.with_timezone(&app.local_offset).format("%H:%M");
                        format!(" {} ({l}) ", e.at.format("%H:%M:%S"))
                    } else {
                        format!(" {} ", e.at.format("%H:%M:%S"))
                    },
                    theme.dim(),
                ),
                Span::styled(format!("{mark} "), style),
                Span::raw(fit(&crate::i18n::said(app.lang, &e.text), text_width)),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
