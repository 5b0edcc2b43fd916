//! dake: a terminal incident console for small EC2 fleets.
//!
//! Dependencies point one way, from the faces down to the fleet's vocabulary: `console` and
//! `headless` drive `app` and `runbook`; `ui` draws `app`; `runbook` plans playbooks over
//! `detect`, `replicas` and `domain` and carries out their calls through a `provider`, which
//! reads and acts on the fleet in `domain`'s terms; `config` is read by every layer below the
//! faces; `domain` and `text` import nothing else of the crate.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

/// `format!` for a text dake says to the operator (a finding, a refusal, a note of the run).
/// It is made and journaled in English; where it is shown, `i18n::said` matches it against the
/// catalog's `[said]` templates and puts it in the operator's language. A test checks every
/// `say!` has its template.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => { format!($($arg)*) };
}

/// A fixed text dake says, as `say!` marks a formatted one.
#[macro_export]
macro_rules! said {
    ($text:literal) => {
        $text
    };
}

pub mod app;
pub mod cli;
pub mod config;
pub mod console;
pub mod detect;
pub mod domain;
pub mod drill;
pub mod follow_console;
pub mod headless;
pub mod i18n;
pub mod mirror;
pub mod picker;
pub mod provider;
pub mod replicas;
pub mod runbook;
#[cfg(test)]
mod test_support;
pub mod text;
pub mod ui;
