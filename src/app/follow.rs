//! `dake follow`: the console showing a run as its journal says, read-only. The run is rebuilt
//! from its records each time the journal grows; no key changes anything.

use ratatui::crossterm::event::KeyEvent;

use super::keymap::{Action, action_for};
use super::state::{App, EntryKind};
use crate::runbook::engine::Run;
use crate::runbook::journal::RunSummary;
use crate::runbook::record::Record;
use crate::runbook::setup::{playbook_of, resume_context};

/// What any other key says while following.
pub const READ_ONLY: &str = "read-only: this console follows a run and changes nothing (q quits)";

/// [`READ_ONLY`], for the catalog's test.
pub fn follow_read_only() -> &'static str {
    READ_ONLY
}

impl App {
    /// The followed run's records, all of them: the run as they make it, and the new ones on
    /// the timeline.
    pub(super) fn on_followed(&mut self, summary: RunSummary, records: Vec<Record>) {
        let shown = match &self.followed {
            Some((s, n)) if s.run_id == summary.run_id => *n,
            _ => {
                self.timeline.clear();
                self.followed_card = None;
                0
            }
        };
        for rec in records.iter().skip(shown) {
            self.push_timeline(rec.at(), EntryKind::of(rec), rec.describe());
        }
        // The run's own clock: the gauge of a wait counts from its last record.
        if let Some(last) = records.last() {
            self.fleet_clock = Some(last.at());
            self.fetched_at = Some(self.now);
        }
        let replayed = playbook_of(&self.playbooks, &summary).and_then(|pb| {
            Run::replay(
                &records,
                pb.clone(),
                resume_context(&self.config, &summary.run_id),
            )
        });
        match replayed {
            Ok(run) => self.run = Some(run),
            Err(e) => self.notice = Some(say!("run {}: {e}", summary.run_id)),
        }
        self.followed = Some((summary, records.len()));
    }

    /// Keys while following: quit, help; nothing else does anything.
    pub(super) fn on_follow_key(&mut self, key: KeyEvent) -> bool {
        match action_for(&key) {
            Some(Action::Quit) => self.should_quit = true,
            Some(Action::Help) => self.show_help = true,
            _ => self.notice = Some(crate::i18n::tr(self.lang, READ_ONLY).into()),
        }
        true
    }
}
