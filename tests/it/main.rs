//! The one integration-test binary (each file under tests/ would link the whole crate again).

mod aws;
mod aws_faults;
mod aws_fleet;
mod aws_playbooks;
mod cli;
mod crash;
mod drill_traps;
mod ebs_move;
mod emulator;
mod fault_server;
mod fixtures;
mod host_metrics;
mod lease;
mod mariadb;
mod overrides;
mod permissions;
mod playbooks;
mod promotion;
mod promotion_crash;
mod replication;
mod run_cli;
mod run_ui;
mod sandbox;
mod sim_state;
mod stale_plans;
mod ui;
