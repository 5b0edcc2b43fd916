//! The console's prompts: what each asks, and the keys that answer it. A prompt that lifts a
//! guard is answered by typing a word (an override's name, FENCED, a run id) in full.

use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::runs::Outgoing;
use super::state::{App, Arming, EntryKind};
use crate::runbook::event::Event;
use crate::runbook::journal::RunSummary;
use crate::runbook::model::find;
use crate::runbook::overrides::{FENCED_WORD, Override};

#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// Unfinished runs found at start: Enter resumes the first, Esc leaves them for later.
    Resume(Vec<RunSummary>),
    /// About to start a playbook.
    Start {
        playbook: String,
        target_id: String,
        quarantine: bool,
        flapping: Option<String>,
        typed: String,
    },
    /// Press x (or Enter) again to abort the run.
    Abort,
    /// Type FENCED to say the old master is fenced by other means.
    DeclareFenced { typed: String },
    /// Type the override's name to lift the refusal the step stopped on.
    Override { which: Override, typed: String },
    /// Type the run id of a stale lease's holder to take the lease over.
    TakeOverLease { holder: String, typed: String },
    /// Arm a read-only console.
    Arm,
    /// A drill's hint, shown whole; any key closes it.
    Hint {
        n: usize,
        total: usize,
        text: String,
    },
}

/// What a key did to a word being typed out.
#[derive(Debug, PartialEq, Eq)]
enum Typed {
    /// Enter, with the word typed in full.
    Done,
    /// A character added (in capitals, while there is room) or taken back.
    Edited,
    /// Any other key.
    Other,
}

/// A word in capitals (an override's name, FENCED): typed in any case.
fn type_word(typed: &mut String, word: &str, code: KeyCode) -> Typed {
    type_into(typed, word, code, capital)
}

fn capital(c: char) -> char {
    c.to_ascii_uppercase()
}

fn as_typed(c: char) -> char {
    c
}

fn type_into(typed: &mut String, word: &str, code: KeyCode, case: fn(char) -> char) -> Typed {
    match code {
        KeyCode::Enter if typed == word => Typed::Done,
        KeyCode::Backspace => {
            typed.pop();
            Typed::Edited
        }
        KeyCode::Char(c) if typed.chars().count() < word.chars().count() => {
            typed.push(case(c));
            Typed::Edited
        }
        _ => Typed::Other,
    }
}

impl App {
    /// Keys while a prompt is open. Returns whether the screen changed.
    pub(super) fn on_prompt_key(&mut self, key: KeyEvent) -> bool {
        let Some(prompt) = self.prompt.clone() else {
            return false;
        };
        match (prompt, key.code) {
            (_, KeyCode::Esc) => self.prompt = None,
            (Prompt::Resume(list), KeyCode::Enter) => {
                self.prompt = None;
                if let Some(first) = list.into_iter().next() {
                    self.outbox.push(Outgoing::LoadJournal(first));
                }
            }
            (
                Prompt::Start {
                    playbook,
                    target_id,
                    quarantine,
                    flapping,
                    typed,
                },
                code,
            ) => {
                // Edits change the open prompt in place; only Enter starts anything.
                let Some(Prompt::Start {
                    quarantine: q,
                    typed: t,
                    ..
                }) = self.prompt.as_mut()
                else {
                    return false;
                };
                let word = Override::AntiFlapping.word();
                match code {
                    KeyCode::Enter if flapping.is_none() || typed == word => {
                        self.prompt = None;
                        let overrides: &[Override] = if flapping.is_some() {
                            &[Override::AntiFlapping]
                        } else {
                            &[]
                        };
                        self.start_run(&playbook, &target_id, quarantine, overrides);
                    }
                    KeyCode::Tab
                        if find(&self.playbooks, &playbook).is_some_and(|p| p.disposes()) =>
                    {
                        *q = !*q
                    }
                    _ if flapping.is_some() && type_word(t, &word, code) == Typed::Edited => {}
                    _ => return false,
                }
            }
            (
                Prompt::Override { .. }
                | Prompt::TakeOverLease { .. }
                | Prompt::DeclareFenced { .. },
                code,
            ) => return self.on_typed_key(code),
            (Prompt::Hint { .. }, _) => self.prompt = None,
            (Prompt::Abort, KeyCode::Enter | KeyCode::Char('x')) => {
                self.prompt = None;
                self.advance_run(Event::Abort {
                    reason: said!("aborted by the operator (x)").into(),
                });
            }
            (Prompt::Arm, KeyCode::Enter) => {
                self.prompt = None;
                self.arming = Arming::Armed;
                let now = self.fleet_now();
                self.push_timeline(
                    now,
                    EntryKind::Info,
                    format!("console armed by {}", self.operator),
                );
            }
            _ => return false,
        }
        true
    }

    /// Keys while a word that lifts a guard is typed out: an override's name, FENCED, a stale
    /// lease's run id (as it is written). Only the word in full, then Enter, does anything.
    fn on_typed_key(&mut self, code: KeyCode) -> bool {
        let (typed, word, case): (_, _, fn(char) -> char) = match self.prompt.as_mut() {
            Some(Prompt::Override { which, typed }) => (typed, which.word(), capital),
            Some(Prompt::DeclareFenced { typed }) => (typed, FENCED_WORD.to_string(), capital),
            Some(Prompt::TakeOverLease { holder, typed }) => (typed, holder.clone(), as_typed),
            _ => return false,
        };
        match type_into(typed, &word, code, case) {
            Typed::Edited => return true,
            Typed::Other => return false,
            Typed::Done => {}
        }
        match self.prompt.take() {
            Some(Prompt::Override { which, .. }) => {
                self.advance_run(Event::Override(which));
                self.notice = Some(say!(
                    "{} overridden: Enter runs the step again",
                    which.name()
                ));
            }
            Some(Prompt::DeclareFenced { .. }) => self.advance_run(Event::DeclareFenced),
            Some(Prompt::TakeOverLease { holder, .. }) => {
                self.advance_run(Event::TakeOverLease(holder));
                self.notice = Some(said!("lease named: Enter takes it over").into());
            }
            _ => {}
        }
        true
    }
}
