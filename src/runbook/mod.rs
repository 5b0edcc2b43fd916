//! Playbooks: the data that describes them, the engine that runs them one key per step, and
//! the journal that lets a run survive the console dying.

pub mod engine;
pub mod executor;
pub mod journal;
pub mod model;
pub mod plan;
pub mod record;
mod replay;
pub mod wait;

pub use replay::already_applied;
