//! The application: state, messages, the pure update step, the keymap, and where each pane goes
//! (`viewport`). It decides; the console's event loop carries out what it asks for, and `ui`
//! draws what it holds. It imports neither.

mod drill;
mod follow;
pub mod keymap;
mod mitigated;
mod prompts;
mod runs;
mod state;
mod table;
mod update;
pub mod viewport;

pub use follow::follow_read_only;
pub use prompts::Prompt;
pub use runs::Outgoing;
pub use state::{App, Arming, DataAge, EntryKind, Focus, TIMELINE_CAPACITY, TimelineEntry};
pub use table::{SortColumn, visible_order};
pub use update::{Msg, update};
