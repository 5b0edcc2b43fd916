//! The `?` overlay, written from the same keymap that dispatches keys.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::theme::Theme;
use crate::app::Arming;
use crate::app::keymap::{ARM_KEY, Action, HINT_KEY, KEYMAP, RUN_KEYMAP};
use crate::i18n::{asset, tr, trf};
use crate::text::{fit, width};

/// Columns inside the help box's borders.
const HELP_TEXT_WIDTH: usize = 74;

pub fn render(app: &crate::app::App, frame: &mut Frame, area: Rect, theme: &Theme) {
    let l = app.lang;
    let line = |key: String, text: String| {
        Line::from(vec![
            Span::styled(format!(" {key:<8}"), theme.key()),
            Span::raw(fit(&text, HELP_TEXT_WIDTH - 9)),
        ])
    };
    // A follower takes only these two keys: the others would only say it is read-only.
    if app.arming == Arming::Following {
        let mut lines: Vec<Line> = (KEYMAP.iter())
            .filter(|b| matches!(b.action, Action::Quit | Action::Help))
            .map(|b| line(b.label.to_string(), tr(l, b.help).to_string()))
            .collect();
        let read_only = tr(l, crate::app::follow_read_only());
        lines.push(Line::styled(
            format!(" {}", fit(read_only, HELP_TEXT_WIDTH - 1)),
            theme.dim(),
        ));
        return boxed(frame, area, lines, theme, l);
    }
    let mut lines: Vec<Line> = KEYMAP
        .iter()
        .map(|b| line(b.label.to_string(), tr(l, b.help).to_string()))
        .collect();
    for p in &app.playbooks {
        let title = asset(l, &["playbook", &p.id, "title"], &p.title);
        let text = trf(
            l,
            "start {id}: {title}",
            &[("id", &p.id), ("title", &title)],
        );
        lines.push(line(p.key.to_string(), text));
    }
    let arm = tr(l, "arm a read-only console (a drill is always armed)");
    lines.push(line(ARM_KEY.to_string(), arm.to_string()));
    let hint = tr(l, "a drill's next hint (it costs points on the scorecard)");
    lines.push(line(HINT_KEY.to_string(), hint.to_string()));
    let run_keys: Vec<String> = RUN_KEYMAP
        .iter()
        .map(|b| format!("{} {}", b.label, tr(l, b.hint)))
        .collect();
    lines.push(Line::styled(
        format!(" {}", tr(l, "during a run:")),
        theme.dim(),
    ));
    // As many keys a line as fit inside the box at 80 columns.
    let mut row = String::new();
    for key in run_keys {
        if !row.is_empty() && 3 + width(&row) + 3 + width(&key) >= HELP_TEXT_WIDTH {
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
        format!(
            " {}",
            tr(
                l,
                "▲ warning  ✖ critical  ✓ ok  ✗ failed · DISP yes: no data only on it"
            )
        ),
        theme.dim(),
    ));
    boxed(frame, area, lines, theme, l);
}

/// The overlay's box, centred, around `lines`.
fn boxed(frame: &mut Frame, area: Rect, lines: Vec<Line>, theme: &Theme, l: crate::i18n::Lang) {
    let r = super::centered(area, HELP_TEXT_WIDTH as u16 + 2, lines.len() as u16 + 2);
    super::clear(frame, r);
    let block = Block::new().borders(Borders::ALL).title(Span::styled(
        format!(" {} ", tr(l, "Keys (any key closes)")),
        theme.title(),
    ));
    frame.render_widget(Paragraph::new(lines).block(block), r);
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use crate::app::{App, Arming};
    use crate::config::Config;
    use crate::test_support::epoch;

    fn help_screen(arming: Arming) -> String {
        let mut app = App::new(Config::builtin(), "sim", arming, epoch());
        app.show_help = true;
        let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
        term.draw(|f| super::render(&app, f, f.area(), &crate::ui::theme::Theme::new(false)))
            .unwrap();
        let buf = term.backend().buffer();
        (0..24)
            .map(|y| (0..80).map(|x| buf[(x, y)].symbol()).collect::<String>() + "\n")
            .collect()
    }

    #[test]
    fn a_follower_is_shown_only_the_keys_it_takes() {
        let console = help_screen(Arming::ReadOnly);
        assert!(console.contains("during a run:"), "{console}");
        assert!(console.contains("select the next instance"), "{console}");
        let follower = help_screen(Arming::Following);
        assert!(follower.contains("quit"), "{follower}");
        assert!(
            follower.contains("read-only: this console follows a run"),
            "{follower}"
        );
        for absent in ["select the next instance", "during a run", "hint"] {
            assert!(!follower.contains(absent), "{absent}: {follower}");
        }
    }
}
