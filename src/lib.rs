//! dake: a terminal incident console for small EC2 fleets.

pub mod config;
pub mod domain;
pub mod provider;
