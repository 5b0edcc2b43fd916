//! `--present`: the layout for a shared screen. A banner three rows high with the incident,
//! the run's current step and how long it has been going; each key pressed shown for a moment;
//! and every account id and address on screen masked, whatever drew it.

use chrono::Duration;
use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::theme::Theme;
use crate::app::App;
use crate::i18n::{tr, trf};
use crate::runbook::engine::Phase;
use crate::text::{age, fit};

/// How long a pressed key stays on screen.
pub const KEY_SHOWN: Duration = Duration::seconds(2);

pub fn banner(app: &App, frame: &mut Frame, area: Rect, theme: &Theme) {
    let width = area.width as usize;
    let l = app.lang;
    let big = |s: ratatui::style::Style| s.add_modifier(Modifier::BOLD);
    let first = match app.incidents.first() {
        Some(inc) => {
            let more = match app.incidents.len() {
                1 => String::new(),
                n => trf(l, "  (+{n} more)", &[("n", &(n - 1))]),
            };
            let style = match inc.severity {
                crate::detect::Severity::Critical => theme.critical(),
                crate::detect::Severity::Warning => theme.warning(),
            };
            Line::styled(
                fit(
                    &format!(" ✖ {}{more}", crate::i18n::said(l, &inc.headline)),
                    width,
                ),
                big(style),
            )
        }
        None if app.snapshot.is_none() => {
            Line::styled(format!(" … {}", tr(l, "waiting for data")), theme.dim())
        }
        None => Line::styled(
            format!(" {}  {}", tr(l, "✓ OK"), tr(l, "no incidents detected")),
            big(theme.ok()),
        ),
    };
    let now = app.fleet_now();
    let second = match &app.run {
        Some(run) => {
            let step = run.current_step().map_or("—", |s| s.name.as_str());
            let state = tr(
                l,
                match &run.phase {
                    Phase::Ready => "next",
                    Phase::Confirming { .. } => "confirming",
                    Phase::Calling { .. } => "calling",
                    Phase::Waiting { .. } => "waiting",
                    Phase::Failed { .. } => "FAILED",
                    Phase::Finished { .. } => "finished",
                    Phase::Aborted { .. } => "aborted",
                },
            );
            let took = age((now - run.started_at).num_seconds());
            let at = (run.cursor + 1).min(run.steps.len());
            trf(
                l,
                " ▶ {playbook} · step {at}/{of} {step} · {state} · {took} since the run began",
                &[
                    ("playbook", &run.playbook.id),
                    ("at", &at),
                    ("of", &run.steps.len()),
                    ("step", &step),
                    ("state", &state),
                    ("took", &took),
                ],
            )
        }
        None => match &app.drill {
            Some(d) => format!(" {}", crate::drill::brief::drill_line(l, d, now)),
            None => format!(" {}", tr(l, "no run")),
        },
    };
    let key = app
        .last_key
        .as_ref()
        .filter(|(_, at)| app.now - *at < KEY_SHOWN)
        .map(|(k, _)| format!(" {} ", trf(l, "key: {key}", &[("key", k)])));
    let mut third = vec![Span::styled(
        format!(" {} UTC", now.format("%H:%M:%S")),
        theme.dim(),
    )];
    if let Some(k) = key {
        let pad = width.saturating_sub(crate::text::width(&k) + 14);
        third.push(Span::raw(" ".repeat(pad)));
        third.push(Span::styled(
            k,
            theme.key().add_modifier(Modifier::REVERSED),
        ));
    }
    let lines = vec![
        first,
        Line::styled(fit(&second, width), big(theme.title())),
        Line::from(third),
    ];
    frame.render_widget(Paragraph::new(lines), area);
}

/// Masks what a shared screen must not show, in place: 12-digit account ids keep their last
/// four digits, IPv4 addresses (also as `ip-10-0-1-23`) their last octet. Widths never change.
pub fn mask(buf: &mut Buffer) {
    let area = buf.area;
    for y in area.top()..area.bottom() {
        let cells: Vec<(u16, String)> = (area.left()..area.right())
            .map(|x| (x, buf[(x, y)].symbol().to_string()))
            .collect();
        let chars: Vec<char> = cells
            .iter()
            .map(|(_, s)| s.chars().next().unwrap_or(' '))
            .collect();
        for i in masked_positions(&chars) {
            buf[(cells[i].0, y)].set_symbol("•");
        }
    }
}

/// Which of `chars` to hide.
pub fn masked_positions(chars: &[char]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() || (i > 0 && chars[i - 1].is_ascii_alphanumeric()) {
            i += 1;
            continue;
        }
        // A run of digits and separators from here: split into groups of digits.
        let mut j = i;
        let mut groups: Vec<(usize, usize)> = Vec::new();
        let mut sep = None;
        loop {
            let start = j;
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            groups.push((start, j));
            // Another group follows one separator, the same all along, up to four groups.
            let next = chars.get(j).copied().filter(|&c| {
                (c == '.' || c == '-')
                    && sep.is_none_or(|s| s == c)
                    && groups.len() < 4
                    && chars.get(j + 1).is_some_and(|d| d.is_ascii_digit())
            });
            let Some(c) = next else { break };
            sep = Some(c);
            j += 1;
        }
        let ends_word = chars.get(j).is_none_or(|c| !c.is_ascii_alphanumeric());
        let address = groups.len() == 4 && groups.iter().all(|(s, e)| (1..=3).contains(&(e - s)));
        if address && ends_word {
            for (s, e) in &groups[..3] {
                out.extend(*s..*e);
            }
        } else if groups.len() == 1 && j - i == 12 && ends_word {
            out.extend(i..i + 8);
        }
        i = j.max(i + 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(s: &str) -> String {
        let chars: Vec<char> = s.chars().collect();
        let hide = masked_positions(&chars);
        chars
            .iter()
            .enumerate()
            .map(|(i, c)| if hide.contains(&i) { '•' } else { *c })
            .collect()
    }

    #[test]
    fn account_ids_and_addresses_are_masked_and_nothing_else() {
        assert_eq!(
            masked("arn:aws:iam::123456789012:role/dake"),
            "arn:aws:iam::••••••••9012:role/dake"
        );
        assert_eq!(masked("db 10.0.12.34:3306 up"), "db ••.•.••.34:3306 up");
        assert_eq!(
            masked("ip-10-0-1-23.ec2.internal"),
            "ip-••-•-•-23.ec2.internal"
        );
        // Instance ids, times, figures and versions stay.
        for same in [
            "i-0a7a7d6cc3a36af3e",
            "09:00:30 UTC",
            "p99 911 ms 6.7x",
            "MariaDB 10.11.14",
            "run 20261126T090030Z-db-promote-SALT",
            "1234567890123",
        ] {
            assert_eq!(masked(same), same);
        }
    }
}
