//! Modal questions: start a playbook, resume an unfinished run, abort, arm.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::theme::Theme;
use crate::app::{App, Prompt};
use crate::runbook::model::find;
use crate::runbook::overrides::{FENCED_WORD, Override};

/// Columns of a prompt, borders included.
const PROMPT_WIDTH: u16 = 72;

pub fn render(app: &App, frame: &mut Frame, area: Rect, theme: &Theme) {
    let Some(prompt) = &app.prompt else { return };
    let (title, lines): (&str, Vec<Line>) = match prompt {
        Prompt::Start {
            playbook,
            target_id,
            quarantine,
            flapping,
            typed,
        } => {
            let lines = start_lines(
                app,
                theme,
                playbook,
                target_id,
                *quarantine,
                flapping.as_deref(),
                typed,
            );
            ("Start playbook", lines)
        }
        Prompt::Resume(runs) => ("Unfinished run", resume_lines(theme, runs)),
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
                    keys(theme, &[("x/Enter", "abort"), ("Esc", "keep going")]),
                ],
            )
        }
        Prompt::Override { which, typed } => (
            "Override the refusal?",
            override_lines(app, theme, *which, typed),
        ),
        Prompt::TakeOverLease { holder, typed } => (
            "Take over the lease?",
            take_over_lines(theme, holder, typed),
        ),
        Prompt::DeclareFenced { typed } => {
            ("Fenced by other means?", fenced_lines(app, theme, typed))
        }
        Prompt::Hint { n, total, text } => (
            "Hint",
            vec![
                Line::styled(format!("{n} of {total} (each costs points)"), theme.dim()),
                Line::raw(text.clone()),
                keys(theme, &[("any key", "back")]),
            ],
        ),
        Prompt::Arm => (
            "Arm the console?",
            vec![
                Line::raw("Armed, playbooks act on the real fleet."),
                keys(theme, &[("Enter", "arm"), ("Esc", "stay read-only")]),
            ],
        ),
    };
    // Wrapped lines take more than one row each inside the borders.
    let inner = usize::from(PROMPT_WIDTH - 2);
    let rows: usize = lines
        .iter()
        .map(|l| {
            let text: String = l.spans.iter().map(|s| s.content.as_ref()).collect();
            crate::text::wrap(&text, inner, "").len().max(1)
        })
        .sum();
    let r = super::centered(area, PROMPT_WIDTH, rows as u16 + 2);
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

/// `[key] words  [key] words`: what the prompt's keys do.
fn keys<'a>(theme: &Theme, pairs: &[(&str, &str)]) -> Line<'a> {
    let mut spans = Vec::new();
    for (i, (key, words)) in pairs.iter().enumerate() {
        let gap = if i + 1 < pairs.len() { "  " } else { "" };
        spans.push(Span::styled(format!("[{key}]"), theme.key()));
        spans.push(Span::raw(format!(" {words}{gap}")));
    }
    Line::from(spans)
}

/// About to start a playbook: what, on which instance, how the bad one is disposed of, and
/// inside the anti-flapping window what must be typed to start anyway.
fn start_lines<'a>(
    app: &App,
    theme: &Theme,
    playbook: &str,
    target_id: &str,
    quarantine: bool,
    flapping: Option<&str>,
    typed: &str,
) -> Vec<Line<'a>> {
    let pb = find(&app.playbooks, playbook);
    let target = app.snapshot.as_ref().and_then(|s| s.find(target_id));
    let mut l = vec![
        Line::styled(
            pb.map_or(playbook.to_string(), |p| format!("{} ({})", p.title, p.id)),
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
            Span::styled("[Tab]", theme.key()),
            Span::raw(format!(
                " dispose of the bad instance by: {}",
                if quarantine {
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
        let o = Override::AntiFlapping;
        let (word, n) = (o.word(), o.word().len());
        l.push(Line::raw(format!(
            "going on anyway means {}",
            o.consequence()
        )));
        l.push(Line::raw(format!(
            "type {word} to start anyway: [{typed:_<n$}]"
        )));
    }
    l.push(keys(theme, &[("Enter", "start"), ("Esc", "cancel")]));
    l
}

/// A failed fence: what dake could not do, and what typing the word means.
fn fenced_lines<'a>(app: &App, theme: &Theme, typed: &str) -> Vec<Line<'a>> {
    let run = app.run.as_ref();
    let target = run.map_or("the old master", |r| r.ctx.target_name.as_str());
    let error = match run.map(|r| &r.phase) {
        Some(crate::runbook::engine::Phase::Failed { error }) => error.as_str(),
        _ => "",
    };
    vec![
        Line::raw(format!("dake could not fence {target}: {error}")),
        Line::raw(
            "Only if it cannot take writes any more (its network cut, MySQL stopped from a \
             console, the power pulled): the failover goes on, and the journal records it as \
             yours.",
        ),
        Line::from(vec![
            Span::raw(format!("type {FENCED_WORD}: ")),
            Span::styled(format!("{typed}█"), theme.key()),
        ]),
        keys(theme, &[("Enter", "declare fenced"), ("Esc", "back")]),
    ]
}

/// A step refused for a reason the operator may know better: what going on anyway means, and
/// the name to type.
fn override_lines<'a>(app: &App, theme: &Theme, which: Override, typed: &str) -> Vec<Line<'a>> {
    let step = app
        .run
        .as_ref()
        .and_then(|r| r.current_step())
        .map_or(String::new(), |s| s.name.clone());
    let word = which.word();
    vec![
        Line::raw(format!("{step} refused; override `{}`.", which.name())),
        Line::raw(format!("Going on anyway means {}.", which.consequence())),
        Line::raw("It is journaled on your name, for this run only."),
        Line::from(vec![
            Span::raw(format!("type {word}: ")),
            Span::styled(format!("{typed}█"), theme.key()),
        ]),
        keys(theme, &[("Enter", "override"), ("Esc", "back")]),
    ]
}

/// A stale lease's holder, named: what taking it over means, and its run id to type.
fn take_over_lines<'a>(theme: &Theme, holder: &str, typed: &str) -> Vec<Line<'a>> {
    vec![
        Line::raw(format!(
            "Run {holder} holds this tier's lease and has stopped renewing it: its console is \
             gone, or cut off."
        )),
        Line::raw(
            "Take it over only if that run is dead: two failovers of one tier at once undo \
             each other.",
        ),
        Line::raw("Journaled on your name."),
        Line::from(vec![
            Span::raw("type its run id: "),
            Span::styled(format!("{typed}█"), theme.key()),
        ]),
        keys(theme, &[("Enter", "take over"), ("Esc", "back")]),
    ]
}

/// Unfinished runs found at start: which, and how to resume them.
fn resume_lines<'a>(theme: &Theme, runs: &[crate::runbook::journal::RunSummary]) -> Vec<Line<'a>> {
    let mut l = vec![Line::raw(
        "The console stopped during a run; its journal says where:",
    )];
    for r in runs.iter().take(3) {
        l.push(Line::styled(
            format!("{} ({} on {})", r.run_id, r.playbook, r.target_name),
            theme.title(),
        ));
    }
    l.push(keys(
        theme,
        &[
            ("Enter", "resume the first"),
            ("Esc", "later (`dake resume`)"),
        ],
    ));
    l
}
