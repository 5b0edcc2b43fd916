//! The one keymap: it dispatches keys and it writes the footer hints and the help overlay, so
//! a hint can never advertise a key that does something else.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Down,
    Up,
    PageDown,
    PageUp,
    Top,
    Bottom,
    Filter,
    SortNext,
    SortReverse,
    Help,
    ApiCalls,
    Cancel,
}

pub struct Binding {
    pub keys: &'static [KeyCode],
    /// How the keys are written in the help overlay, e.g. "j/↓".
    pub label: &'static str,
    /// The sentence in the help overlay.
    pub help: &'static str,
    pub action: Action,
    /// Key and one or two words for the footer; `None` keeps it to the help overlay.
    pub footer: Option<(&'static str, &'static str)>,
}

pub const KEYMAP: &[Binding] = &[
    Binding {
        keys: &[KeyCode::Char('j'), KeyCode::Down],
        label: "j/↓",
        help: "select the next instance",
        action: Action::Down,
        footer: Some(("j/k", "move")),
    },
    Binding {
        keys: &[KeyCode::Char('k'), KeyCode::Up],
        label: "k/↑",
        help: "select the previous instance",
        action: Action::Up,
        footer: None,
    },
    Binding {
        keys: &[KeyCode::PageDown, KeyCode::Char('d')],
        label: "PgDn/d",
        help: "move down one page",
        action: Action::PageDown,
        footer: None,
    },
    Binding {
        keys: &[KeyCode::PageUp, KeyCode::Char('u')],
        label: "PgUp/u",
        help: "move up one page",
        action: Action::PageUp,
        footer: None,
    },
    Binding {
        keys: &[KeyCode::Char('g'), KeyCode::Home],
        label: "g/Home",
        help: "select the first instance",
        action: Action::Top,
        footer: None,
    },
    Binding {
        keys: &[KeyCode::Char('G'), KeyCode::End],
        label: "G/End",
        help: "select the last instance",
        action: Action::Bottom,
        footer: None,
    },
    Binding {
        keys: &[KeyCode::Char('/')],
        label: "/",
        help: "filter instances by name, id, role, zone or state",
        action: Action::Filter,
        footer: Some(("/", "filter")),
    },
    Binding {
        keys: &[KeyCode::Char('s')],
        label: "s",
        help: "sort by the next column",
        action: Action::SortNext,
        footer: Some(("s", "sort")),
    },
    Binding {
        keys: &[KeyCode::Char('S')],
        label: "S",
        help: "reverse the sort order",
        action: Action::SortReverse,
        footer: Some(("S", "reverse")),
    },
    Binding {
        keys: &[KeyCode::Esc],
        label: "Esc",
        help: "close help, clear the filter",
        action: Action::Cancel,
        footer: None,
    },
    Binding {
        keys: &[KeyCode::Char('D')],
        label: "D",
        help: "show or hide the API calls of the last refresh",
        action: Action::ApiCalls,
        footer: None,
    },
    Binding {
        keys: &[KeyCode::Char('?')],
        label: "?",
        help: "show or hide this help",
        action: Action::Help,
        footer: Some(("?", "help")),
    },
    Binding {
        keys: &[KeyCode::Char('q')],
        label: "q",
        help: "quit dake",
        action: Action::Quit,
        footer: Some(("q", "quit")),
    },
];

/// Keys while a playbook run is on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAction {
    /// Run the next step, or confirm the one waiting for confirmation.
    Step,
    Cancel,
    Abort,
    Retry,
    /// Lift the refusal the step stopped on: asked for, and typed out.
    Override,
    /// The old master is fenced by other means: asked for, and typed out.
    DeclareFenced,
    /// Take over a stale lease of the tier, by typing its holder's run id.
    TakeOverLease,
    Close,
}

pub struct RunBinding {
    pub key: KeyCode,
    pub label: &'static str,
    pub hint: &'static str,
    pub action: RunAction,
}

pub const RUN_KEYMAP: &[RunBinding] = &[
    RunBinding {
        key: KeyCode::Enter,
        label: "Enter",
        hint: "run step / confirm",
        action: RunAction::Step,
    },
    RunBinding {
        key: KeyCode::Esc,
        label: "Esc",
        hint: "cancel",
        action: RunAction::Cancel,
    },
    RunBinding {
        key: KeyCode::Char('r'),
        label: "r",
        hint: "retry",
        action: RunAction::Retry,
    },
    RunBinding {
        key: KeyCode::Char('O'),
        label: "O",
        hint: "override",
        action: RunAction::Override,
    },
    RunBinding {
        key: KeyCode::Char('F'),
        label: "F",
        hint: "fenced by other means",
        action: RunAction::DeclareFenced,
    },
    RunBinding {
        key: KeyCode::Char('T'),
        label: "T",
        hint: "take over lease",
        action: RunAction::TakeOverLease,
    },
    RunBinding {
        key: KeyCode::Char('x'),
        label: "x",
        hint: "abort run",
        action: RunAction::Abort,
    },
    RunBinding {
        key: KeyCode::Char('c'),
        label: "c",
        hint: "close",
        action: RunAction::Close,
    },
];

pub fn run_action_for(key: &KeyEvent) -> Option<RunAction> {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return None;
    }
    RUN_KEYMAP
        .iter()
        .find(|b| b.key == key.code)
        .map(|b| b.action)
}

/// Arms a read-only console (after a confirmation).
pub const ARM_KEY: char = 'A';

/// The drill's next hint (counted in its score).
pub const HINT_KEY: char = 'h';

/// The action bound to a key in normal mode. Ctrl-C always quits.
pub fn action_for(key: &KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return (key.code == KeyCode::Char('c')).then_some(Action::Quit);
    }
    KEYMAP
        .iter()
        .find(|b| b.keys.contains(&key.code))
        .map(|b| b.action)
}

/// Footer hints in keymap order, as (keys, words) pairs.
pub fn footer_hints() -> impl Iterator<Item = (&'static str, &'static str)> {
    KEYMAP.iter().filter_map(|b| b.footer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_is_bound_twice() {
        let mut seen = std::collections::HashSet::new();
        for b in KEYMAP {
            for k in b.keys {
                assert!(seen.insert(*k), "{k:?} bound twice");
            }
        }
    }

    #[test]
    fn every_footer_hint_dispatches_its_action() {
        for b in KEYMAP.iter().filter(|b| b.footer.is_some()) {
            let key = KeyEvent::new(b.keys[0], KeyModifiers::NONE);
            assert_eq!(action_for(&key), Some(b.action));
        }
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action_for(&ctrl_c), Some(Action::Quit));
    }
}
