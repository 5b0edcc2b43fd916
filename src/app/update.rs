//! `update(state, msg)`: the only place state changes. Never awaits, never blocks.

use chrono::{DateTime, Utc};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::keymap::{ARM_KEY, Action, HINT_KEY, action_for};
use super::prompts::Prompt;
use super::state::{App, Arming, EntryKind, Focus};
use super::table::visible_order;
use super::viewport::fleet_table_rows;
use crate::detect::detect;
use crate::domain::FleetSnapshot;
use crate::replicas::rank_replicas;
use crate::runbook::executor::Answer;
use crate::runbook::journal::RunSummary;
use crate::runbook::model::{for_incident, incident_line};
use crate::runbook::record::Record;

#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    /// `dake follow`: the followed run's journal, grown (or another run followed now).
    Followed {
        summary: Box<RunSummary>,
        records: Vec<Record>,
    },
    /// `dake follow`: the scorecard of the drill the followed run belongs to.
    FollowedCard(Box<crate::drill::Scorecard>),
    /// Where a finished drill's scorecard was kept, or why it was not.
    DrillSaved(Result<std::path::PathBuf, String>),
    Resize(u16, u16),
    /// The once-a-second clock.
    Tick(DateTime<Utc>),
    Snapshot {
        snapshot: Box<FleetSnapshot>,
        fetched_at: DateTime<Utc>,
    },
    ProviderFailed {
        error: String,
        at: DateTime<Utc>,
    },
    /// The run executor's answer to a call or a journal write.
    RunAnswer(Answer),
    /// Runs in the journal: at start (unfinished ones are offered for resume) and after a run.
    Runs(Vec<RunSummary>),
    /// A journal read for resuming.
    Resumed {
        summary: RunSummary,
        records: Result<Vec<Record>, String>,
    },
}

/// Applies one message; returns whether the screen needs a redraw.
pub fn update(app: &mut App, msg: Msg) -> bool {
    match msg {
        Msg::Key(key) => on_key(app, key),
        Msg::Resize(w, h) => {
            app.size = (w, h);
            clamp_scroll(app);
            true
        }
        Msg::Tick(now) => {
            let before = app.data_age();
            app.now = now;
            app.data_age() != before
        }
        Msg::Snapshot {
            snapshot,
            fetched_at,
        } => {
            on_snapshot(app, *snapshot, fetched_at);
            true
        }
        Msg::RunAnswer(answer) => {
            app.on_answer(answer);
            true
        }
        Msg::Runs(runs) => {
            let unfinished: Vec<RunSummary> =
                runs.iter().filter(|r| r.ended.is_none()).cloned().collect();
            // Offer a resume once, at start, and never over a run already on screen.
            if app.past_runs.is_empty()
                && app.run.is_none()
                && !unfinished.is_empty()
                && app.prompt.is_none()
            {
                app.prompt = Some(Prompt::Resume(unfinished));
            }
            app.past_runs = runs;
            true
        }
        Msg::Resumed { summary, records } => {
            app.on_resumed(summary, records);
            true
        }
        Msg::Followed { summary, records } => {
            app.on_followed(*summary, records);
            true
        }
        Msg::FollowedCard(card) => {
            let new = app.followed_card.as_ref() != Some(&*card);
            if new {
                app.followed_card = Some(*card);
                app.show_scorecard = true;
            }
            new
        }
        Msg::DrillSaved(saved) => {
            let now = app.fleet_clock.unwrap_or(app.now);
            match saved {
                Ok(path) => app.push_timeline(
                    now,
                    EntryKind::Info,
                    say!(
                        "scorecard saved to {} (dake drill --report)",
                        path.display()
                    ),
                ),
                Err(e) => {
                    app.push_timeline(now, EntryKind::Error, say!("scorecard not saved: {e}"))
                }
            }
            true
        }
        Msg::ProviderFailed { error, at } => {
            if app.provider_error.as_deref() != Some(error.as_str()) {
                app.push_timeline(at, EntryKind::Error, say!("provider: {error}"));
            }
            app.provider_error = Some(error);
            true
        }
    }
}

fn on_snapshot(app: &mut App, snap: FleetSnapshot, fetched_at: DateTime<Utc>) {
    let at = snap.taken_at;
    if app.snapshot.is_none() {
        app.push_timeline(
            at,
            EntryKind::Info,
            say!(
                "watching fleet {} on {} ({} instances)",
                snap.fleet,
                snap.provider,
                snap.instances.len()
            ),
        );
    }
    if app.provider_error.take().is_some() {
        app.push_timeline(at, EntryKind::Info, said!("provider answering again"));
    }
    // A part the refresh could not read is said once, when it starts and when it ends.
    let before = app
        .snapshot
        .as_ref()
        .map(|s| s.unread.clone())
        .unwrap_or_default();
    for (part, why) in &snap.unread {
        if before.get(part) != Some(why) {
            app.push_timeline(at, EntryKind::Error, say!("{part} not read: {why}"));
        }
    }
    for part in before.keys().filter(|p| !snap.unread.contains_key(*p)) {
        app.push_timeline(at, EntryKind::Info, say!("{part} read again"));
    }
    let incidents = detect(&snap, &app.incidents, &app.config.detect);
    let mut new_detections = Vec::new();
    for inc in &incidents {
        if !app
            .incidents
            .iter()
            .any(|p| p.kind == inc.kind && p.instance_id == inc.instance_id)
        {
            let playbooks = for_incident(&app.playbooks, inc.kind);
            let text = incident_line(&inc.summary, playbooks.iter().map(|p| p.id.as_str()));
            app.push_timeline(at, EntryKind::Detected, text.clone());
            new_detections.push(text);
        }
    }
    let previous = std::mem::replace(&mut app.incidents, incidents);
    for old in &previous {
        let still = app
            .incidents
            .iter()
            .any(|n| n.kind == old.kind && n.instance_id == old.instance_id);
        if !still {
            let text = say!("cleared: {} {}", old.kind.as_str(), old.instance_name);
            app.push_timeline(at, EntryKind::Cleared, text);
        }
    }
    app.replicas = rank_replicas(&snap, app.config.detect.replica_max_lag_secs);
    // Keep the same instance selected across refreshes, even if its row moved.
    let selected_id = app.selected_instance().map(|i| i.id.clone());
    app.fleet_clock = Some(snap.taken_at);
    app.db_index = Some(super::state::DbIndex::new(&snap, &app.replicas));
    app.snapshot = Some(snap);
    app.fetched_at = Some(fetched_at);
    recompute_rows(app, selected_id.as_deref());
    app.observe_run();
    app.drill_observe();
    // What happens in the fleet during a run belongs in its journal and its postmortem.
    if app.run.as_ref().is_some_and(|r| !r.is_over()) {
        for text in new_detections {
            app.advance_run(crate::runbook::event::Event::Note(say!("detected: {text}")));
        }
    }
}

fn recompute_rows(app: &mut App, keep: Option<&str>) {
    let Some(snap) = app.snapshot.as_ref() else {
        return;
    };
    app.rows = visible_order(&snap.instances, &app.filter, app.sort, app.reverse);
    if let Some(pos) = keep.and_then(|id| app.rows.iter().position(|&i| snap.instances[i].id == id))
    {
        app.selected = pos;
    }
    clamp_scroll(app);
}

fn page(app: &App) -> usize {
    fleet_table_rows(app).max(1)
}

fn clamp_scroll(app: &mut App) {
    let len = app.rows.len();
    app.selected = app.selected.min(len.saturating_sub(1));
    let page = page(app);
    if app.selected < app.offset {
        app.offset = app.selected;
    } else if app.selected >= app.offset + page {
        app.offset = app.selected + 1 - page;
    }
    app.offset = app.offset.min(len.saturating_sub(page));
}

fn on_key(app: &mut App, key: KeyEvent) -> bool {
    // Terminals that report releases would otherwise act twice per press.
    if key.kind == KeyEventKind::Release {
        return false;
    }
    if let Some(d) = app.drill.as_mut() {
        d.on_key();
    }
    app.last_key = Some((key_label(&key), app.now));
    if app.arming == Arming::Following && !app.show_scorecard && !app.show_help {
        return app.on_follow_key(key);
    }
    if app.show_scorecard {
        // Any key closes the scorecard; q still quits.
        app.show_scorecard = false;
        if action_for(&key) == Some(Action::Quit) {
            app.should_quit = true;
        }
        return true;
    }
    if app.prompt.is_some() {
        return app.on_prompt_key(key);
    }
    if app.focus == Focus::Filter {
        return on_filter_key(app, key);
    }
    if app.show_help {
        // Any key closes help; q still quits so nobody is trapped.
        app.show_help = false;
        if action_for(&key) == Some(Action::Quit) {
            app.should_quit = true;
        }
        return true;
    }
    let had_notice = app.notice.take().is_some();
    if let Some(changed) = app.on_run_key(key) {
        return changed || had_notice;
    }
    if let KeyCode::Char(c) = key.code
        && key.modifiers.difference(KeyModifiers::SHIFT).is_empty()
    {
        if c == HINT_KEY {
            app.drill_hint();
            return true;
        }
        if c == ARM_KEY {
            match app.arming {
                Arming::ReadOnly => app.prompt = Some(Prompt::Arm),
                Arming::Drill => app.notice = Some(said!("the drill fleet is always armed").into()),
                Arming::Armed => app.notice = Some(said!("already armed").into()),
                Arming::Following => app.notice = Some(super::follow::READ_ONLY.into()),
            }
            return true;
        }
        if app.begin_playbook(c) {
            return true;
        }
    }
    let Some(action) = action_for(&key) else {
        return had_notice;
    };
    let keep = app.selected_instance().map(|i| i.id.clone());
    match action {
        Action::Quit => {
            app.end_drill(said!("ended by the operator before the fleet recovered"));
            app.should_quit = true;
        }
        Action::Down => app.selected = app.selected.saturating_add(1),
        Action::Up => app.selected = app.selected.saturating_sub(1),
        Action::PageDown => app.selected = app.selected.saturating_add(page(app)),
        Action::PageUp => app.selected = app.selected.saturating_sub(page(app)),
        Action::Top => app.selected = 0,
        Action::Bottom => app.selected = app.rows.len().saturating_sub(1),
        Action::Filter => app.focus = Focus::Filter,
        Action::SortNext => {
            app.sort = app.sort.next();
            recompute_rows(app, keep.as_deref());
        }
        Action::SortReverse => {
            app.reverse = !app.reverse;
            recompute_rows(app, keep.as_deref());
        }
        Action::Help => app.show_help = true,
        Action::ApiCalls => {
            app.show_api_calls = !app.show_api_calls;
            clamp_scroll(app);
        }
        Action::Cancel => {
            if app.filter.is_empty() {
                return false;
            }
            app.filter.clear();
            recompute_rows(app, keep.as_deref());
        }
    }
    clamp_scroll(app);
    true
}

/// How a key is shown on a shared screen: `Enter`, `Esc`, `↓`, `Ctrl-C`, `P`.
fn key_label(key: &KeyEvent) -> String {
    let name = match key.code {
        KeyCode::Char(' ') => "Space".to_string(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Enter => "Enter".into(),
        KeyCode::Esc => "Esc".into(),
        KeyCode::Tab => "Tab".into(),
        KeyCode::Backspace => "Backspace".into(),
        KeyCode::Up => "↑".into(),
        KeyCode::Down => "↓".into(),
        KeyCode::Left => "←".into(),
        KeyCode::Right => "→".into(),
        KeyCode::PageUp => "PgUp".into(),
        KeyCode::PageDown => "PgDn".into(),
        KeyCode::Home => "Home".into(),
        KeyCode::End => "End".into(),
        other => format!("{other:?}"),
    };
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        format!("Ctrl-{name}")
    } else {
        name
    }
}

fn on_filter_key(app: &mut App, key: KeyEvent) -> bool {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        app.should_quit = true;
        return true;
    }
    let keep = app.selected_instance().map(|i| i.id.clone());
    match key.code {
        KeyCode::Enter => app.focus = Focus::Normal,
        KeyCode::Esc => {
            app.focus = Focus::Normal;
            app.filter.clear();
        }
        KeyCode::Backspace => {
            app.filter.pop();
        }
        KeyCode::Char(c) => app.filter.push(c),
        _ => return false,
    }
    recompute_rows(app, keep.as_deref());
    true
}
