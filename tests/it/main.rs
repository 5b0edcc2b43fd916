//! The one integration-test binary (each file under tests/ would link the whole crate again).

mod cli;
mod crash;
mod playbooks;
mod run_ui;
mod ui;
