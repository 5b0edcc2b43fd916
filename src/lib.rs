//! dake: a terminal incident console for small EC2 fleets.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod app;
pub mod cli;
pub mod config;
pub mod console;
pub mod detect;
pub mod domain;
pub mod headless;
pub mod provider;
pub mod replicas;
pub mod runbook;
#[cfg(test)]
mod test_support;
pub mod text;
pub mod ui;
