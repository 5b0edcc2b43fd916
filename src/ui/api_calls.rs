//! The `D` line above the footer: the API calls of the last refresh, by operation.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::theme::Theme;
use crate::app::App;
use crate::text::fit;

pub fn render(app: &App, frame: &mut Frame, area: Rect, theme: &Theme) {
    let width = area.width as usize;
    let mut lines = app.api_call_lines(width);
    if lines.len() > area.height as usize {
        lines.truncate(area.height as usize);
        if let Some(last) = lines.last_mut() {
            *last = fit(&format!("{last} · …"), width);
        }
    }
    let text: Vec<Line> = lines
        .into_iter()
        .map(|l| Line::styled(fit(&crate::i18n::said(app.lang, &l), width), theme.dim()))
        .collect();
    frame.render_widget(Paragraph::new(text), area);
}
