//! The `?` overlay, written from the same keymap that dispatches keys.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::theme::Theme;
use crate::app::keymap::{ARM_KEY, HINT_KEY, KEYMAP, RUN_KEYMAP};

/// Columns inside the help box's borders.
const HELP_TEXT_WIDTH: usize = 74;

pub fn render(app: &crate::app::App, frame: &mut Frame, area: Rect, theme: &Theme) {
    let mut lines: Vec<Line> = KEYMAP
        .iter()
        .map(|b| {
            Line::from(vec![
                Span::styled(format!(" {:<8}", b.label), theme.key()),
                Span::raw(b.help),
            ])
        })
        .collect();
    for p in &app.playbooks {
        lines.push(Line::from(vec![
            Span::styled(format!(" {:<8}", p.key), theme.key()),
            Span::raw(format!("start {}: {}", p.id, p.title)),
        ]));
    }
    lines.push(Line::from(vec![
        Span::styled(format!(" {:<8}", ARM_KEY), theme.key()),
        Span::raw("arm a read-only console (a drill is always armed)"),
    ]));
    lines.push(Line::from(vec![
        Span::styled(format!(" {:<8}", HINT_KEY), theme.key()),
        Span::raw("a drill's next hint (it costs points on the scorecard)"),
    ]));
    let run_keys: Vec<String> = RUN_KEYMAP
        .iter()
        .map(|b| format!("{} {}", b.label, b.hint))
        .collect();
    lines.push(Line::styled(" during a run:", theme.dim()));
    // As many keys a line as fit inside the box at 80 columns.
    let mut row = String::new();
    for key in run_keys {
        if !row.is_empty() && 3 + row.chars().count() + 3 + key.chars().count() >= HELP_TEXT_WIDTH {
            lines.push(Line::styled(format!("   {row}"), theme.dim()));
            row.clear();
        }
        if !row.is_empty() {
            row.push_str(" · ");
        }
        row.push_str(&key);
    }
    lines.push(Line::styled(format!("   {row}"), theme.dim()));
    lines.push(Line::styled(
        " ▲ warning  ✖ critical  ✓ ok  ✗ failed · DISP yes: no data only on it",
        theme.dim(),
    ));
    let r = super::centered(area, HELP_TEXT_WIDTH as u16 + 2, lines.len() as u16 + 2);
    frame.render_widget(Clear, r);
    let block = Block::new()
        .borders(Borders::ALL)
        .title(Span::styled(" Keys (any key closes) ", theme.title()));
    frame.render_widget(Paragraph::new(lines).block(block), r);
}
