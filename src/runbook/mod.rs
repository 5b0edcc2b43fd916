//! Playbooks: the data that describes them, the engine that runs them one key per step, the
//! journal that lets a run survive the console dying, and what the console and the headless
//! CLI share to start or pick up a run (`setup`).

mod answers;
pub mod confirm;
pub mod engine;
pub mod event;
pub mod executor;
pub mod journal;
pub mod model;
pub mod overrides;
pub mod plan;
pub mod record;
mod replay;
pub mod setup;
pub mod tail;
pub mod wait;

pub use replay::already_applied;
