//! `view(state, frame)`: draws the whole screen from `App`. Pure: no clock, no I/O.

mod fleet;
pub mod format;
mod help;
pub mod layout;
mod prompt;
mod replicas;
pub mod runbook;
pub mod theme;
mod timeline;

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::app::{App, InputMode, Mode, keymap};
use crate::detect::Severity;
use format::{age, fit};
use layout::{MIN_HEIGHT, MIN_WIDTH, areas, too_small};
use theme::Theme;

/// Data is stale once this many refresh intervals have passed without a new snapshot.
const STALE_AFTER_REFRESHES: i64 = 3;

pub fn view(app: &App, frame: &mut Frame) {
    let theme = Theme::new(app.color);
    let area = frame.area();
    if too_small(area) {
        let msg = format!(
            "terminal too small: {}x{}\ndake needs at least {MIN_WIDTH}x{MIN_HEIGHT}\n\nenlarge the window, or use `dake status`",
            area.width, area.height
        );
        let y = area.height.saturating_sub(4) / 2;
        let r = Rect {
            y: area.y + y,
            height: area.height.saturating_sub(y),
            ..area
        };
        frame.render_widget(
            Paragraph::new(msg)
                .alignment(Alignment::Center)
                .wrap(Wrap { trim: true }),
            r,
        );
        return;
    }
    let a = areas(app, area);
    header(app, frame, a.header, &theme);
    banner(app, frame, a.banner, &theme);
    fleet::render(app, frame, a.table, &theme);
    if a.run.height > 0 {
        runbook::render(app, frame, a.run, &theme);
    }
    if a.replicas.height > 0 {
        replicas::render(app, frame, a.replicas, &theme);
    }
    if a.timeline.height > 0 {
        timeline::render(app, frame, a.timeline, &theme);
    }
    if a.debug.height > 0 {
        api_calls(app, frame, a.debug, &theme);
    }
    footer(app, frame, a.footer, &theme);
    if app.show_help {
        help::render(app, frame, area, &theme);
    }
    prompt::render(app, frame, area, &theme);
}

/// What the header says about the data's freshness. A clock tick redraws only when this
/// changes, so an idle console does not repaint for nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataAge {
    Waiting,
    /// The provider's last answer was an error (throttled, timed out, refused); the screen
    /// still shows the last good data, this old, if there is any.
    Failing(Option<String>),
    Fresh(String),
    Stale(String),
}

pub fn data_age(app: &App) -> DataAge {
    match (app.fetched_at, &app.provider_error) {
        (None, None) => DataAge::Waiting,
        (t, Some(_)) => DataAge::Failing(t.map(|t| age((app.now - t).num_seconds()))),
        (Some(t), None) => {
            let secs = (app.now - t).num_seconds();
            if secs > STALE_AFTER_REFRESHES * app.refresh_secs.max(1) {
                DataAge::Stale(age(secs))
            } else {
                DataAge::Fresh(age(secs))
            }
        }
    }
}

fn header(app: &App, frame: &mut Frame, area: Rect, theme: &Theme) {
    let fleet = app
        .snapshot
        .as_ref()
        .map_or(app.config.fleet.name.as_str(), |s| s.fleet.as_str());
    let region = app
        .snapshot
        .as_ref()
        .map_or(app.config.fleet.region.as_str(), |s| s.region.as_str());
    let clock = app.snapshot.as_ref().map_or(app.now, |s| s.taken_at);
    let local = if app.local_offset.local_minus_utc() == 0 {
        String::new()
    } else {
        format!(
            " ({} local)",
            clock.with_timezone(&app.local_offset).format("%H:%M")
        )
    };
    let left = format!(
        " dake │ {fleet} │ {} {region} │ {} UTC{local} ",
        app.provider,
        clock.format("%H:%M:%S")
    );
    let badge = match app.mode {
        Mode::Drill => Span::styled(format!(" {} ", app.mode.label()), theme.badge_drill()),
        Mode::ReadOnly => Span::styled(format!(" {} ", app.mode.label()), theme.badge_read_only()),
        Mode::Armed => Span::styled(format!(" {} ", app.mode.label()), theme.badge_armed()),
    };
    let data = match data_age(app) {
        DataAge::Waiting => Span::raw(" waiting for data "),
        DataAge::Failing(None) => Span::styled(" ✗ PROVIDER ERROR ", theme.critical()),
        DataAge::Failing(Some(label)) => {
            Span::styled(format!(" ✗ STALE data {label} "), theme.critical())
        }
        DataAge::Stale(label) => Span::styled(format!(" STALE data {label} "), theme.warning()),
        DataAge::Fresh(label) => Span::raw(format!(" data {label} ")),
    };
    let right_width = badge.width() + data.width();
    let left = fit(&left, (area.width as usize).saturating_sub(right_width));
    let pad = (area.width as usize).saturating_sub(left.chars().count() + right_width);
    let line = Line::from(vec![
        Span::raw(left),
        Span::raw(" ".repeat(pad)),
        badge,
        data,
    ]);
    frame.render_widget(Paragraph::new(line).style(theme.header()), area);
}

fn banner(app: &App, frame: &mut Frame, area: Rect, theme: &Theme) {
    let width = area.width as usize;
    let lines: Vec<Line> = if app.snapshot.is_none() {
        vec![Line::styled(
            format!(" … waiting for the first snapshot from {}", app.provider),
            theme.dim(),
        )]
    } else if app.incidents.is_empty() {
        vec![Line::styled(" ✓ OK  no incidents detected", theme.ok())]
    } else {
        app.incidents
            .iter()
            .take(area.height as usize)
            .map(|inc| {
                let (label, style) = match inc.severity {
                    Severity::Critical => (" ✖ CRITICAL ", theme.critical()),
                    Severity::Warning => (" ▲ WARNING  ", theme.warning()),
                };
                // Narrow screens get the short headline, so the playbooks stay named in full.
                let wide = width >= usize::from(layout::WIDE);
                let keyed: Vec<String> = inc
                    .suggested_playbooks
                    .iter()
                    .map(|id| match app.playbooks.iter().find(|p| p.id == *id) {
                        Some(p) => format!("{} {id}", p.key),
                        None => id.to_string(),
                    })
                    .collect();
                let playbook = format!(" → {}", keyed.join(if wide { " | " } else { "/" }));
                let room =
                    width.saturating_sub(label.chars().count() + playbook.chars().count() + 1);
                let text = if wide { &inc.summary } else { &inc.headline };
                Line::from(vec![
                    Span::styled(label, style),
                    Span::raw(" "),
                    Span::raw(fit(text, room)),
                    Span::styled(playbook, theme.key()),
                ])
            })
            .collect()
    };
    frame.render_widget(Paragraph::new(lines), area);
}

/// Whether a run key does anything in the run's current phase (only those are hinted).
fn run_key_applies(action: keymap::RunAction, run: &crate::runbook::engine::Run) -> bool {
    use crate::runbook::engine::Phase;
    use keymap::RunAction;
    match action {
        RunAction::Step => matches!(run.phase, Phase::Ready | Phase::Confirming { .. }),
        RunAction::Cancel => matches!(run.phase, Phase::Confirming { .. }),
        RunAction::Retry => matches!(run.phase, Phase::Failed { .. }),
        RunAction::Abort => !run.is_over(),
        RunAction::Close => run.is_over(),
    }
}

/// `D`: what the last refresh cost in API calls, e.g. to check a large fleet stays batched.
/// Operations by their API names, packed into lines of `width`, never split inside one.
pub fn api_call_lines(app: &App, width: usize) -> Vec<String> {
    let (head, items): (String, Vec<String>) = match app.snapshot.as_ref().map(|s| &s.api_calls) {
        None => ("API calls: no refresh yet".into(), Vec::new()),
        Some(c) if c.is_empty() => (
            format!("API calls: none ({} reads no API)", app.provider),
            Vec::new(),
        ),
        Some(c) => (
            format!("API calls, last refresh: {}", c.values().sum::<u32>()),
            c.iter().map(|(op, n)| format!("{op} {n}")).collect(),
        ),
    };
    let mut lines = vec![format!(" {head}")];
    for item in items {
        let last = lines.last_mut().expect("starts with the head line");
        if last.chars().count() + 3 + item.chars().count() <= width {
            last.push_str(" · ");
            last.push_str(&item);
        } else {
            lines.push(format!("   {item}"));
        }
    }
    lines
}

fn api_calls(app: &App, frame: &mut Frame, area: Rect, theme: &Theme) {
    let width = area.width as usize;
    let mut lines = api_call_lines(app, width);
    if lines.len() > area.height as usize {
        lines.truncate(area.height as usize);
        if let Some(last) = lines.last_mut() {
            *last = fit(&format!("{last} · …"), width);
        }
    }
    let text: Vec<Line> = lines
        .into_iter()
        .map(|l| Line::styled(fit(&l, width), theme.dim()))
        .collect();
    frame.render_widget(Paragraph::new(text), area);
}

fn footer(app: &App, frame: &mut Frame, area: Rect, theme: &Theme) {
    let line = if app.input == InputMode::Filter {
        Line::from(vec![
            Span::styled(" filter: ", theme.key()),
            Span::raw(format!("{}█", app.filter)),
            Span::styled("   Enter keep · Esc clear", theme.dim()),
        ])
    } else if app.run.is_none() && app.notice.is_some() {
        let notice = app.notice.as_deref().unwrap_or_default();
        Line::styled(
            fit(&format!(" {notice}"), area.width as usize),
            theme.warn(),
        )
    } else {
        // (keys, words, rank): lower ranks are kept first when the line is too narrow, so the
        // playbook keys, help and quit survive at 80 columns.
        let mut hints: Vec<(String, String, u8)> = Vec::new();
        if let Some(run) = &app.run {
            for b in keymap::RUN_KEYMAP
                .iter()
                .filter(|b| run_key_applies(b.action, run))
            {
                hints.push((b.label.to_string(), b.hint.to_string(), 0));
            }
            let quit = if run.is_over() {
                "quit"
            } else {
                "quit (the run stays resumable)"
            };
            hints.push(("q".into(), quit.into(), 1));
        } else {
            for inc in &app.incidents {
                for id in &inc.suggested_playbooks {
                    if let Some(p) = app.playbooks.iter().find(|p| p.id == *id) {
                        hints.push((p.key.to_string(), id.to_string(), 0));
                    }
                }
            }
            for (keys, words) in keymap::footer_hints() {
                let rank = if matches!(keys, "?" | "q") { 1 } else { 2 };
                hints.push((keys.to_string(), words.to_string(), rank));
            }
        }
        let error = app
            .provider_error
            .as_deref()
            .map(|e| format!(" {}", fit(e, 30)));
        let mut room =
            (area.width as usize).saturating_sub(error.as_ref().map_or(0, |e| e.chars().count()));
        let cost = |h: &(String, String, u8)| h.0.chars().count() + h.1.chars().count() + 3;
        let mut keep = vec![false; hints.len()];
        for rank in 0..=2 {
            for (i, h) in hints.iter().enumerate().filter(|(_, h)| h.2 == rank) {
                if cost(h) <= room {
                    room -= cost(h);
                    keep[i] = true;
                }
            }
        }
        let mut spans = Vec::new();
        for (h, _) in hints.iter().zip(&keep).filter(|(_, k)| **k) {
            spans.push(Span::styled(format!(" {}", h.0), theme.key()));
            spans.push(Span::raw(format!(" {} ", h.1)));
        }
        if let Some(e) = error {
            spans.push(Span::styled(e, theme.warn()));
        }
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(line), area);
}
