//! The drill in the console: each journal record and snapshot is shown to the drill's judge,
//! each key counted, `h` gives the next hint; at the end the scorecard opens and is saved.

use super::runs::Outgoing;
use super::state::{App, EntryKind};
use crate::runbook::record::Record;

impl App {
    /// A journal record of the run on screen, for the drill's judge: judged against the fleet
    /// as the console saw it last.
    pub(super) fn drill_record(&mut self, rec: &Record) {
        if self.drill.is_none() {
            return;
        }
        self.drill_stash.push(rec.clone());
        // A step sent on a key borrows the snapshot meanwhile: judged once it is back.
        if self.snapshot.is_some() {
            self.drill_judge();
        }
    }

    /// Shows the drill's judge the records kept for it, against the snapshot now on screen.
    pub(super) fn drill_judge(&mut self) {
        let records = std::mem::take(&mut self.drill_stash);
        let (Some(d), Some(run)) = (self.drill.as_mut(), self.run.as_ref()) else {
            return;
        };
        for rec in &records {
            d.on_record(&run.ctx.run_id, &run.playbook, rec, self.snapshot.as_ref());
        }
    }

    /// After each snapshot: the drill's judge sees the fleet and what detection made of it;
    /// the drill may end here.
    pub(super) fn drill_observe(&mut self) {
        let run_active = self.run.as_ref().is_some_and(|r| !r.is_over());
        let (Some(d), Some(snap)) = (self.drill.as_mut(), self.snapshot.as_ref()) else {
            return;
        };
        if !d.observe(snap, &self.incidents, run_active) {
            return;
        }
        let Some(card) = d.scorecard.clone() else {
            return;
        };
        let at = snap.taken_at;
        self.push_timeline(
            at,
            EntryKind::Cleared,
            say!("drill over: {}/100, {}", card.score, card.outcome),
        );
        self.show_scorecard = true;
        self.outbox.push(Outgoing::SaveDrill(Box::new(card)));
    }

    /// `h`: the drill's next hint, counted against its score.
    pub(super) fn drill_hint(&mut self) {
        let now = self.fleet_now();
        let Some(d) = self.drill.as_mut() else {
            self.notice = Some(said!("hints come with a scored drill: `dake drill`").into());
            return;
        };
        if d.is_over() {
            self.notice = Some(said!("the drill is over").into());
            return;
        }
        let total = d.scenario.hints.len();
        let id = d.scenario.id.clone();
        match d.next_hint(now) {
            Some((n, text)) => {
                let path = ["scenario", id.as_str(), "hints"];
                let text = crate::i18n::asset_item(self.lang, &path, n - 1, &text).into_owned();
                self.push_timeline(now, EntryKind::Info, say!("hint {n}/{total}: {text}"));
                self.prompt = Some(super::prompts::Prompt::Hint { n, total, text });
            }
            None => self.notice = Some(said!("no more hints").into()),
        }
    }

    /// Ends the drill by the operator's hand (quitting before it is over), scored as it stands.
    pub fn end_drill(&mut self, why: &str) {
        let now = self.fleet_now();
        if let Some(d) = self.drill.as_mut().filter(|d| !d.is_over()) {
            d.finish(now, why.to_string());
            if let Some(card) = d.scorecard.clone() {
                self.outbox.push(Outgoing::SaveDrill(Box::new(card)));
            }
        }
    }
}
