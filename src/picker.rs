//! `dake drill` with no scenario named: pick one from a list (j/k or arrows, Enter; q or Esc
//! leaves). A small screen of its own, before the console starts on the chosen fleet.

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use crate::drill::Scenario;
use crate::i18n::{Lang, asset, tr};

/// The scenario picked, or `None` when the operator left.
pub fn pick(scenarios: &[Scenario], l: Lang) -> anyhow::Result<Option<Scenario>> {
    let mut terminal = ratatui::init();
    let picked = choose(&mut terminal, scenarios, l);
    ratatui::restore();
    picked
}

fn choose(
    terminal: &mut ratatui::DefaultTerminal,
    scenarios: &[Scenario],
    l: Lang,
) -> anyhow::Result<Option<Scenario>> {
    let mut at = 0usize;
    loop {
        terminal.draw(|f| draw(f, scenarios, at, l))?;
        let Event::Key(key) = event::read()? else {
            continue;
        };
        if key.kind == KeyEventKind::Release {
            continue;
        }
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => {
                at = (at + 1).min(scenarios.len().saturating_sub(1));
            }
            KeyCode::Up | KeyCode::Char('k') => at = at.saturating_sub(1),
            KeyCode::Enter => return Ok(scenarios.get(at).cloned()),
            KeyCode::Esc | KeyCode::Char('q') => return Ok(None),
            _ => {}
        }
    }
}

fn draw(f: &mut ratatui::Frame, scenarios: &[Scenario], at: usize, l: Lang) {
    let area = f.area();
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let mut lines = vec![Line::raw("")];
    for (i, s) in scenarios.iter().enumerate() {
        let marker = if i == at { "▶ " } else { "  " };
        let style = if i == at {
            bold.add_modifier(Modifier::REVERSED)
        } else {
            Style::new()
        };
        lines.push(Line::from(vec![
            Span::raw(marker),
            Span::styled(format!("{:<21}", s.id), style),
            Span::raw(crate::text::fit(
                &asset(l, &["scenario", &s.id, "title"], &s.title),
                usize::from(area.width).saturating_sub(28),
            )),
        ]));
    }
    lines.push(Line::raw(""));
    // What is coming, not what to do: the lesson comes with the scorecard.
    if let Some(s) = scenarios.get(at) {
        let brief = asset(l, &["scenario", &s.id, "brief"], &s.brief);
        lines.push(Line::styled(format!("  {brief}"), bold));
    }
    let block = Block::new().borders(Borders::ALL).title(format!(
        " {} ",
        tr(l, "dake drill: pick a scenario (↑/↓ Enter · q leaves)")
    ));
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        Rect { ..area },
    );
}
