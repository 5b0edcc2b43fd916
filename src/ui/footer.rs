//! The footer: the filter being typed, a notice, or the key hints that fit, written from the
//! same keymap that dispatches keys.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::theme::Theme;
use crate::app::{App, Focus, keymap};
use crate::i18n::tr;
use crate::runbook::engine::Run;
use crate::runbook::model::for_incident;
use crate::text::{fit, width};

/// Whether a run key does anything in the run's current phase (only those are hinted).
fn run_key_applies(action: keymap::RunAction, run: &Run) -> bool {
    use crate::runbook::engine::Phase;
    use keymap::RunAction;
    match action {
        RunAction::Step => matches!(run.phase, Phase::Ready | Phase::Confirming { .. }),
        RunAction::Cancel => matches!(run.phase, Phase::Confirming { .. }),
        RunAction::Retry => matches!(run.phase, Phase::Failed { .. }),
        RunAction::DeclareFenced => run.may_declare_fenced(),
        RunAction::Override => run.may_override().is_some(),
        RunAction::TakeOverLease => run.stale_lease_holder().is_some(),
        RunAction::Abort => !run.is_over(),
        RunAction::Close => run.is_over(),
    }
}

pub fn render(app: &App, frame: &mut Frame, area: Rect, theme: &Theme) {
    let l = app.lang;
    let line = if app.focus == Focus::Filter {
        Line::from(vec![
            Span::styled(format!(" {} ", tr(l, "filter:")), theme.key()),
            Span::raw(format!("{}█", app.filter)),
            Span::styled(
                format!("   {}", tr(l, "Enter keep · Esc clear")),
                theme.dim(),
            ),
        ])
    } else if app.run.is_none() && app.notice.is_some() {
        let notice = crate::i18n::said(app.lang, app.notice.as_deref().unwrap_or_default());
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
                hints.push((b.label.to_string(), tr(l, b.hint).to_string(), 0));
            }
            let quit = if run.is_over() {
                tr(l, "quit")
            } else {
                tr(l, "quit (the run stays resumable)")
            };
            hints.push(("q".into(), quit.into(), 1));
        } else {
            for inc in app
                .incidents
                .iter()
                .filter(|i| app.mitigated_by(i).is_none())
            {
                for p in for_incident(&app.playbooks, inc.kind) {
                    hints.push((p.key.to_string(), p.id.clone(), 0));
                }
            }
            if app.drill.as_ref().is_some_and(|d| !d.is_over()) {
                hints.push((keymap::HINT_KEY.to_string(), tr(l, "hint").into(), 1));
            }
            for (keys, words) in keymap::footer_hints() {
                let rank = if matches!(keys, "?" | "q") { 1 } else { 2 };
                hints.push((keys.to_string(), tr(l, words).to_string(), rank));
            }
        }
        let error = app
            .provider_error
            .as_deref()
            .map(|e| format!(" {}", fit(e, 30)));
        let mut room =
            (area.width as usize).saturating_sub(error.as_ref().map_or(0, |e| e.chars().count()));
        let cost = |h: &(String, String, u8)| width(&h.0) + width(&h.1) + 3;
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
