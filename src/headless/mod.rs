//! Commands for scripts, monitoring and tests: status, run, resume, report,
//! preflight.

pub mod commands;
pub mod drill;
pub mod follow;
pub mod preflight;
pub mod report;
pub mod run;
mod status;

pub use status::{STATUS_SCHEMA, Status, StatusReport, status_report, status_text};

/// Prints a line dake says, in `l`.
fn print_said(l: crate::i18n::Lang, text: &str) {
    println!("{}", crate::i18n::said(l, text));
}
