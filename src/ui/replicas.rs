//! The replication panel: where the application's database endpoint points, the master's
//! heartbeat, and each replica's lag with its history and whether it could be promoted.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::format::{fit, secs, sparkline};
use super::theme::Theme;
use crate::app::App;

pub fn render(app: &App, frame: &mut Frame, area: Rect, theme: &Theme) {
    let mut title = vec![Span::styled(" Replication ", theme.title())];
    let Some(snap) = app.snapshot.as_ref() else {
        frame.render_widget(
            Block::new().borders(Borders::TOP).title(Line::from(title)),
            area,
        );
        return;
    };
    let master = snap.master();
    if let Some(ep) = &snap.db_endpoint {
        let target = snap
            .find(&ep.target_id)
            .map_or(ep.target_id.as_str(), |i| i.name.as_str());
        title.push(Span::styled(
            format!("endpoint {} → {target} ", ep.name),
            theme.dim(),
        ));
    }
    let width = area.width as usize;
    let spark_width = (width.saturating_sub(72)).clamp(8, 40);
    let mut lines = Vec::new();
    match master {
        None => lines.push(Line::styled("  no master in this fleet", theme.warn())),
        Some(m) => {
            let hb = m.db.as_ref().map(|d| d.heartbeat_age_secs);
            let down = app.incidents.iter().any(|i| i.instance_id == m.id);
            let (word, style) = if down {
                ("✖ DOWN", theme.bad())
            } else {
                ("✓ up", theme.ok())
            };
            lines.push(Line::from(vec![
                Span::raw(format!("  {:<16}", fit(&m.name, 16))),
                Span::raw(format!("{:<12}", "master")),
                Span::raw(format!("heartbeat {:>6}  ", hb.map_or("—".into(), secs))),
                Span::styled(word, style),
            ]));
        }
    }
    if app.replicas.is_empty() {
        lines.push(Line::styled(
            "  └ no replicas: nothing to promote",
            theme.warn(),
        ));
    }
    // One scale for every replica, so their lags compare at a glance (at least 1 s, so a
    // healthy sub-second lag draws low instead of filling the bar).
    let lag_scale = app
        .replicas
        .iter()
        .filter_map(|c| snap.find(&c.instance_id)?.db.as_ref()?.lag_history.max())
        .filter(|v| v.is_finite())
        .fold(1.0f32, f32::max);
    for c in &app.replicas {
        let inst = snap.find(&c.instance_id);
        let db = inst.and_then(|i| i.db.as_ref());
        let history = db.map(|d| &d.lag_history);
        let spark =
            history.map_or_else(String::new, |h| sparkline(h.iter(), spark_width, lag_scale));
        let thread = |on: bool| {
            if on {
                ("✓", theme.ok())
            } else {
                ("✗", theme.bad())
            }
        };
        let (io, io_style) = thread(db.is_some_and(|d| d.io_thread_running));
        let (sql, sql_style) = thread(db.is_some_and(|d| d.sql_thread_running));
        let verdict = match &c.rejection {
            None if c.best => ("promote: yes, best".to_string(), theme.ok()),
            None => ("promote: yes".to_string(), theme.ok()),
            Some(reason) => (format!("promote: no, {reason}"), theme.warn()),
        };
        let used = 4 + 14 + 4 + 7 + spark_width + 16;
        let verdict_text = fit(&verdict.0, width.saturating_sub(used));
        lines.push(Line::from(vec![
            Span::raw(format!("  └ {:<14}", fit(&c.name, 14))),
            Span::raw("lag "),
            Span::raw(format!("{:>6} ", secs(c.heartbeat_lag_secs))),
            Span::styled(spark, theme.dim()),
            Span::raw("  io "),
            Span::styled(io, io_style),
            Span::raw(" sql "),
            Span::styled(sql, sql_style),
            Span::raw("  "),
            Span::styled(verdict_text, verdict.1),
        ]));
    }
    let block = Block::new().borders(Borders::TOP).title(Line::from(title));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
