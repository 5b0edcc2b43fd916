//! The application: state, messages and the pure update step.

pub mod keymap;
mod runs;
mod state;
mod table;
mod update;
pub mod viewport;

pub use runs::{FORCE_WORD, Outgoing, Prompt};
pub use state::{App, Arming, DataAge, EntryKind, Focus, TIMELINE_CAPACITY, TimelineEntry};
pub use table::{SortColumn, visible_order};
pub use update::{Msg, update};
