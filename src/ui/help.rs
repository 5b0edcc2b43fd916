//! The `?` overlay, written from the same keymap that dispatches keys.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::theme::Theme;
use crate::app::keymap::KEYMAP;

pub fn render(frame: &mut Frame, area: Rect, theme: &Theme) {
    let mut lines: Vec<Line> = KEYMAP
        .iter()
        .map(|b| {
            Line::from(vec![
                Span::styled(format!(" {:<8}", b.label), theme.key()),
                Span::raw(b.help),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        " ▲ warning  ✖ critical  ✓ ok  ✗ failed",
        theme.dim(),
    ));
    lines.push(Line::styled(
        " DISP yes: holds no data that exists only on it",
        theme.dim(),
    ));
    lines.push(Line::styled(" any key closes this help", theme.dim()));
    let width = 66.min(area.width);
    let height = (lines.len() as u16 + 2).min(area.height);
    let r = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, r);
    let block = Block::new()
        .borders(Borders::ALL)
        .title(Span::styled(" Keys ", theme.title()));
    frame.render_widget(Paragraph::new(lines).block(block), r);
}
