//! Modal questions: start a playbook, resume an unfinished run, abort, arm, lift a refusal,
//! declare a master fenced, take over a lease, a drill's hint.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::theme::Theme;
use crate::app::{App, Prompt};
use crate::i18n::{Lang, asset, said, tr, trf};
use crate::runbook::model::find;
use crate::runbook::overrides::{FENCED_WORD, Override};

/// Columns of a prompt, borders included.
const PROMPT_WIDTH: u16 = 72;

pub fn render(app: &App, frame: &mut Frame, area: Rect, theme: &Theme) {
    let Some(prompt) = &app.prompt else { return };
    let l = app.lang;
    let (title, lines): (&str, Vec<Line>) = match prompt {
        Prompt::Start {
            playbook,
            target_id,
            quarantine,
            flapping,
            typed,
        } => {
            let start = Start {
                playbook,
                target_id,
                quarantine: *quarantine,
                flapping: flapping.as_deref(),
                typed,
            };
            (tr(l, "Start playbook"), start_lines(app, theme, start))
        }
        Prompt::Resume(runs) => (tr(l, "Unfinished run"), resume_lines(l, theme, runs)),
        Prompt::Abort => {
            let state = app
                .run
                .as_ref()
                .map_or(String::new(), |r| r.state_summary());
            (
                tr(l, "Abort the run?"),
                vec![
                    Line::raw(tr(l, "Nothing is undone: the fleet stays as it is now.")),
                    Line::raw(said(l, &state).into_owned()),
                    keys(
                        theme,
                        &[("x/Enter", tr(l, "abort")), ("Esc", tr(l, "keep going"))],
                    ),
                ],
            )
        }
        Prompt::Override { which, typed } => (
            tr(l, "Override the refusal?"),
            override_lines(app, theme, *which, typed),
        ),
        Prompt::TakeOverLease { holder, typed } => (
            tr(l, "Take over the lease?"),
            take_over_lines(l, theme, holder, typed),
        ),
        Prompt::DeclareFenced { typed } => (
            tr(l, "Fenced by other means?"),
            fenced_lines(app, theme, typed),
        ),
        Prompt::Hint { n, total, text } => (
            tr(l, "Hint"),
            vec![
                Line::styled(
                    trf(
                        l,
                        "{n} of {total} (each costs points)",
                        &[("n", n), ("total", total)],
                    ),
                    theme.dim(),
                ),
                Line::raw(text.clone()),
                keys(theme, &[(tr(l, "any key"), tr(l, "back"))]),
            ],
        ),
        Prompt::Arm => (
            tr(l, "Arm the console?"),
            vec![
                Line::raw(tr(l, "Armed, playbooks act on the real fleet.")),
                keys(
                    theme,
                    &[("Enter", tr(l, "arm")), ("Esc", tr(l, "stay read-only"))],
                ),
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
    super::clear(frame, r);
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

/// The start prompt's question.
struct Start<'p> {
    playbook: &'p str,
    target_id: &'p str,
    quarantine: bool,
    flapping: Option<&'p str>,
    typed: &'p str,
}

/// About to start a playbook: what, on which instance, how the bad one is disposed of, and
/// inside the anti-flapping window what must be typed to start anyway.
fn start_lines<'a>(app: &App, theme: &Theme, s: Start<'_>) -> Vec<Line<'a>> {
    let l = app.lang;
    let pb = find(&app.playbooks, s.playbook);
    let target = app
        .snapshot
        .as_ref()
        .and_then(|snap| snap.find(s.target_id));
    let title = pb.map_or(s.playbook.to_string(), |p| {
        let title = asset(l, &["playbook", &p.id, "title"], &p.title);
        trf(l, "{name} ({id})", &[("name", &title), ("id", &p.id)])
    });
    let dispose = if s.quarantine {
        tr(l, "QUARANTINE (stop and tag)")
    } else {
        tr(l, "terminate")
    };
    let mut out = vec![
        Line::styled(title, theme.title()),
        Line::raw(match target {
            Some(t) => trf(
                l,
                "target {name} ({id}) in {az}",
                &[("name", &t.name), ("id", &t.id), ("az", &t.az)],
            ),
            None => trf(l, "target {id}", &[("id", &s.target_id)]),
        }),
        Line::raw(trf(
            l,
            "{n} steps, one key each; destructive steps ask again",
            &[("n", &pb.map_or(0, |p| p.steps.len()))],
        )),
    ];
    if pb.is_some_and(|p| p.disposes()) {
        out.push(Line::from(vec![
            Span::styled("[Tab]", theme.key()),
            Span::raw(format!(
                " {}",
                trf(
                    l,
                    "dispose of the bad instance by: {how}",
                    &[("how", &dispose)]
                )
            )),
        ]));
    }
    if let Some(prev) = s.flapping {
        out.push(Line::styled(
            format!(
                "⚠ {}",
                trf(
                    l,
                    "refused: {prev}, inside the anti-flapping window",
                    &[("prev", &said(l, prev))]
                )
            ),
            theme.warning(),
        ));
        let o = Override::AntiFlapping;
        let (word, n) = (o.word(), o.word().len());
        out.push(Line::raw(trf(
            l,
            "going on anyway means {consequence}",
            &[("consequence", &said(l, o.consequence()))],
        )));
        let typed = format!("[{:_<n$}]", s.typed);
        out.push(Line::raw(trf(
            l,
            "type {word} to start anyway: {typed}",
            &[("word", &word), ("typed", &typed)],
        )));
    }
    out.push(keys(
        theme,
        &[("Enter", tr(l, "start")), ("Esc", tr(l, "cancel"))],
    ));
    out
}

/// A failed fence: what dake could not do, and what typing the word means.
fn fenced_lines<'a>(app: &App, theme: &Theme, typed: &str) -> Vec<Line<'a>> {
    let l = app.lang;
    let run = app.run.as_ref();
    let target = run.map_or(tr(l, "the old master"), |r| r.ctx.target_name.as_str());
    let error = match run.map(|r| &r.phase) {
        Some(crate::runbook::engine::Phase::Failed { error }) => error.as_str(),
        _ => "",
    };
    vec![
        Line::raw(trf(
            l,
            "dake could not fence {target}: {error}",
            &[("target", &target), ("error", &error)],
        )),
        Line::raw(tr(
            l,
            "Only if it cannot take writes any more (its network cut, MySQL stopped from a \
             console, the power pulled): the failover goes on, and the journal records it as \
             yours.",
        )),
        Line::from(vec![
            Span::raw(trf(l, "type {word}: ", &[("word", &FENCED_WORD)])),
            Span::styled(format!("{typed}█"), theme.key()),
        ]),
        keys(
            theme,
            &[("Enter", tr(l, "declare fenced")), ("Esc", tr(l, "back"))],
        ),
    ]
}

/// A step refused for a reason the operator may know better: what going on anyway means, and
/// the name to type.
fn override_lines<'a>(app: &App, theme: &Theme, which: Override, typed: &str) -> Vec<Line<'a>> {
    let l = app.lang;
    let step = app
        .run
        .as_ref()
        .and_then(|r| r.current_step())
        .map_or(String::new(), |s| s.name.clone());
    let word = which.word();
    vec![
        Line::raw(trf(
            l,
            "{step} refused; override `{name}`.",
            &[("step", &step), ("name", &which.name())],
        )),
        Line::raw(trf(
            l,
            "Going on anyway means {consequence}.",
            &[("consequence", &said(l, which.consequence()))],
        )),
        Line::raw(tr(l, "It is journaled on your name, for this run only.")),
        Line::from(vec![
            Span::raw(trf(l, "type {word}: ", &[("word", &word)])),
            Span::styled(format!("{typed}█"), theme.key()),
        ]),
        keys(
            theme,
            &[("Enter", tr(l, "override")), ("Esc", tr(l, "back"))],
        ),
    ]
}

/// A stale lease's holder, named: what taking it over means, and its run id to type.
fn take_over_lines<'a>(l: Lang, theme: &Theme, holder: &str, typed: &str) -> Vec<Line<'a>> {
    vec![
        Line::raw(trf(
            l,
            "Run {holder} holds this tier's lease and has stopped renewing it: its console is \
             gone, or cut off.",
            &[("holder", &holder)],
        )),
        Line::raw(tr(
            l,
            "Take it over only if that run is dead: two failovers of one tier at once undo \
             each other.",
        )),
        Line::raw(tr(l, "Journaled on your name.")),
        Line::from(vec![
            Span::raw(tr(l, "type its run id: ")),
            Span::styled(format!("{typed}█"), theme.key()),
        ]),
        keys(
            theme,
            &[("Enter", tr(l, "take over")), ("Esc", tr(l, "back"))],
        ),
    ]
}

/// Unfinished runs found at start: which, and how to resume them.
fn resume_lines<'a>(
    l: Lang,
    theme: &Theme,
    runs: &[crate::runbook::journal::RunSummary],
) -> Vec<Line<'a>> {
    let mut out = vec![Line::raw(tr(
        l,
        "The console stopped during a run; its journal says where:",
    ))];
    for r in runs.iter().take(3) {
        out.push(Line::styled(
            trf(
                l,
                "{run} ({playbook} on {target})",
                &[
                    ("run", &r.run_id),
                    ("playbook", &r.playbook),
                    ("target", &r.target_name),
                ],
            ),
            theme.title(),
        ));
    }
    out.push(keys(
        theme,
        &[
            ("Enter", tr(l, "resume the first")),
            ("Esc", tr(l, "later (`dake resume`)")),
        ],
    ));
    out
}
