//! Modal questions: start a playbook, resume an unfinished run, abort, arm.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::theme::Theme;
use crate::app::{App, FORCE_WORD, Prompt};

pub fn render(app: &App, frame: &mut Frame, area: Rect, theme: &Theme) {
    let Some(prompt) = &app.prompt else { return };
    let key = |k: &str| Span::styled(format!("[{k}]"), theme.key());
    let (title, lines): (&str, Vec<Line>) = match prompt {
        Prompt::Start {
            playbook,
            target_id,
            quarantine,
            flapping,
            typed,
        } => {
            let pb = app.playbooks.iter().find(|p| &p.id == playbook);
            let target = app.snapshot.as_ref().and_then(|s| s.find(target_id));
            let mut l = vec![
                Line::styled(
                    pb.map_or(playbook.clone(), |p| format!("{} ({})", p.title, p.id)),
                    theme.title(),
                ),
                Line::raw(match target {
                    Some(t) => format!("target {} ({}) in {}", t.name, t.id, t.az),
                    None => format!("target {target_id}"),
                }),
                Line::raw(format!(
                    "{} steps, one key each; destructive steps ask again",
                    pb.map_or(0, |p| p.steps.len())
                )),
                Line::from(vec![
                    key("Tab"),
                    Span::raw(format!(
                        " dispose of the bad instance by: {}",
                        if *quarantine {
                            "QUARANTINE (stop and tag)"
                        } else {
                            "terminate"
                        }
                    )),
                ]),
            ];
            if let Some(prev) = flapping {
                l.push(Line::styled(
                    format!("⚠ refused: {prev}, inside the anti-flapping window"),
                    theme.warning(),
                ));
                l.push(Line::raw(format!(
                    "type {FORCE_WORD} to start anyway: [{typed:_<5}]"
                )));
            }
            l.push(Line::from(vec![
                key("Enter"),
                Span::raw(" start  "),
                key("Esc"),
                Span::raw(" cancel"),
            ]));
            ("Start playbook", l)
        }
        Prompt::Resume(runs) => {
            let mut l = vec![Line::raw(
                "The console stopped during a run; its journal says where:",
            )];
            for r in runs.iter().take(3) {
                l.push(Line::styled(
                    format!("{} ({} on {})", r.run_id, r.playbook, r.target_name),
                    theme.title(),
                ));
            }
            l.push(Line::from(vec![
                key("Enter"),
                Span::raw(" resume the first  "),
                key("Esc"),
                Span::raw(" later (`dake resume`)"),
            ]));
            ("Unfinished run", l)
        }
        Prompt::Abort => {
            let state = app
                .run
                .as_ref()
                .map_or(String::new(), |r| r.state_summary());
            (
                "Abort the run?",
                vec![
                    Line::raw("Nothing is undone: the fleet stays as it is now."),
                    Line::raw(state),
                    Line::from(vec![
                        key("x/Enter"),
                        Span::raw(" abort  "),
                        key("Esc"),
                        Span::raw(" keep going"),
                    ]),
                ],
            )
        }
        Prompt::Arm => (
            "Arm the console?",
            vec![
                Line::raw("Armed, playbooks act on the real fleet."),
                Line::from(vec![
                    key("Enter"),
                    Span::raw(" arm  "),
                    key("Esc"),
                    Span::raw(" stay read-only"),
                ]),
            ],
        ),
    };
    let r = super::centered(area, 72, lines.len() as u16 + 2);
    frame.render_widget(Clear, r);
    let block = Block::new()
        .borders(Borders::ALL)
        .title(Span::styled(format!(" {title} "), theme.title()));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        r,
    );
}
