//! The drill's scorecard, opened when the drill ends: the times against par, what cost points,
//! and the trainee's earlier attempts. Any key closes it; `dake drill --report` prints it all.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::theme::Theme;
use crate::app::App;
use crate::drill::scorecard::{against, took};
use crate::i18n::{said, tr, trf};
use crate::text::{age, fit, pad, pad_left};

/// Columns of the overlay, borders included.
const WIDTH: u16 = 76;

pub fn render(app: &App, frame: &mut Frame, area: Rect, theme: &Theme) {
    let card = app.drill.as_ref().and_then(|d| d.scorecard.as_ref());
    let Some(card) = card.or(app.followed_card.as_ref()) else {
        return;
    };
    let inner = usize::from(WIDTH - 2);
    let l = app.lang;
    let mut lines = head_lines(l, card, theme, inner);
    lines.push(Line::styled(
        format!(" {}", tr(l, "cost points:")),
        theme.title(),
    ));
    if card.deductions.is_empty() {
        lines.push(Line::styled(format!("  {}", tr(l, "nothing")), theme.ok()));
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
                &trf(
                    l,
                    "{charge}: {detail}",
                    &[
                        ("charge", &tr(l, d.charge.label())),
                        ("detail", &said(l, &d.detail)),
                    ],
                ),
                inner - 7,
            )),
        ]));
    }
    if costly.len() > room {
        lines.push(Line::styled(
            format!(
                "  … {}",
                trf(
                    l,
                    "{n} more in the report",
                    &[("n", &(costly.len() - room))]
                )
            ),
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
        let earlier = trf(
            l,
            "earlier: {attempts}",
            &[("attempts", &earlier.join(" · "))],
        );
        lines.push(Line::raw(fit(&format!(" {earlier}"), inner)));
    }
    lines.push(Line::styled(
        format!(
            " {}",
            tr(l, "any key closes · dake drill --report prints it in full")
        ),
        theme.dim(),
    ));
    let r = super::centered(area, WIDTH, lines.len() as u16 + 2);
    super::clear(frame, r);
    let title = format!(
        " {} ",
        trf(
            l,
            "Drill {id}: {score}/100",
            &[("id", &card.scenario), ("score", &card.score)]
        )
    );
    let block = Block::new()
        .borders(Borders::ALL)
        .title(Span::styled(title, theme.title()));
    frame.render_widget(Paragraph::new(lines).block(block), r);
}

/// How the drill ended, and its times against par.
fn head_lines<'a>(
    l: crate::i18n::Lang,
    card: &crate::drill::Scorecard,
    theme: &Theme,
    inner: usize,
) -> Vec<Line<'a>> {
    let row = |a: &str, b: &str, c: &str| {
        format!(" {}{}{}", pad(a, 32), pad_left(b, 10), pad_left(c, 12))
    };
    let summary = trf(
        l,
        "{outcome} · {took} of drill · keys {keys} · hints {hints}",
        &[
            ("outcome", &said(l, &card.outcome)),
            ("took", &age(card.drill_secs)),
            ("keys", &card.keys),
            ("hints", &card.hints),
        ],
    );
    let mut lines = vec![
        Line::styled(fit(&format!(" {summary}"), inner), theme.dim()),
        Line::styled(
            row(tr(l, "from the first fault"), tr(l, "took"), tr(l, "par")),
            theme.title(),
        ),
    ];
    for (name, secs, par) in card.phases() {
        lines.push(Line::raw(row(
            tr(l, name),
            &took(secs),
            &against(secs, par),
        )));
    }
    lines
}
