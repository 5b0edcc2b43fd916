//! Command-line interface (clap). `dake` alone opens the console.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::provider::ProviderKind;

#[derive(Debug, Parser)]
#[command(name = "dake", version, about = "Terminal incident console for small EC2 fleets", long_about = None)]
pub struct Cli {
    /// Config file (default: dake/config.toml in the XDG config dir, else built-in defaults).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Where fleet data comes from.
    #[arg(long, global = true, value_enum, default_value_t = ProviderKind::Sim)]
    pub provider: ProviderKind,

    /// Seed of the simulated fleet (overrides [sim] seed).
    #[arg(long, global = true)]
    pub seed: Option<u64>,

    /// Virtual seconds per real second for the simulated fleet (overrides [sim] speed).
    #[arg(long, global = true)]
    pub speed: Option<f64>,

    /// Quit right after the first frame is drawn (used to measure startup).
    #[arg(long, hide = true)]
    pub exit_after_first_frame: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print one snapshot of fleet, replica lag and incidents; exit 0 OK, 1 WARNING, 2 CRITICAL,
    /// 3 UNKNOWN.
    Status {
        /// Machine-readable output (shape documented in the README).
        #[arg(long)]
        json: bool,
        /// Simulated fleet only: take the snapshot this many virtual seconds after start.
        #[arg(long, value_name = "SECS", default_value_t = 0.0)]
        at: f64,
    },
    /// Show configuration.
    Config {
        /// Print the built-in default configuration, with comments.
        #[arg(long)]
        print_default: bool,
    },
    /// Print shell completions.
    Completions { shell: clap_complete::Shell },
}
