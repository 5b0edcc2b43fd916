//! Playbooks: the data that describes them, the engine that runs them one key per step, and
//! the journal that lets a run survive the console dying.

pub mod model;
