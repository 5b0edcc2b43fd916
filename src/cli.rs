//! Command-line interface (clap). `dake` alone opens the console.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::provider::aws::AwsOptions;
use crate::provider::sim::SimOptions;
use crate::provider::{ProviderKind, ProviderSpec};
use crate::runbook::overrides::Override;

#[derive(Debug, Parser)]
#[command(name = "dake", version, about = "Terminal incident console for small EC2 fleets", long_about = None)]
pub struct Cli {
    /// Config file (default: dake/config.toml in the XDG config dir, else built-in defaults).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Where fleet data comes from.
    #[arg(long, global = true, value_enum, default_value_t = ProviderKind::Sim)]
    pub provider: ProviderKind,

    /// AWS profile (default: the standard credential chain).
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,

    /// AWS region (default: AWS_REGION or the profile's).
    #[arg(long, global = true)]
    pub region: Option<String>,

    /// AWS API endpoint for every service, e.g. an emulator; AWS_ENDPOINT_URL_<SERVICE> also works.
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// Seed of the simulated fleet (overrides [sim] seed).
    #[arg(long, global = true)]
    pub seed: Option<u64>,

    /// Virtual seconds per real second for the simulated fleet (overrides [sim] speed).
    #[arg(long, global = true)]
    pub speed: Option<f64>,

    /// Simulated fleet only: start with an incident already present: `slow-web[:<name>]` or
    /// `master-down`.
    #[arg(long, global = true, value_name = "INCIDENT")]
    pub inject: Vec<String>,

    /// The language on screen (default: the locale's, from LC_ALL, LC_MESSAGES or LANG).
    #[arg(long, global = true, value_enum)]
    pub lang: Option<crate::i18n::Lang>,

    /// A layout for a shared screen (a war room): a large banner with the incident, the current
    /// step and the time, each key pressed shown for a moment, account ids and addresses masked.
    #[arg(long, global = true)]
    pub present: bool,

    /// Quit right after the first frame is drawn (used to measure startup).
    #[arg(long, hide = true)]
    pub exit_after_first_frame: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The AWS options of the command line: for the AWS provider, and for the journal's mirror
    /// whatever the provider.
    pub fn aws_options(&self) -> AwsOptions {
        AwsOptions {
            profile: self.profile.clone(),
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
        }
    }

    /// The provider `--provider` names, with its own options from the command line.
    pub fn provider_spec(&self) -> Result<ProviderSpec, String> {
        let aws = self.aws_options();
        let sim = SimOptions {
            inject: self.inject.clone(),
        };
        ProviderSpec::new(self.provider, aws, sim)
    }
}

/// An override by its name, or the list of names.
fn parse_override(name: &str) -> Result<Override, String> {
    Override::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Override::ALL.iter().map(|o| o.name()).collect();
        say!("no override `{name}`: one of {}", names.join(", "))
    })
}

/// A database flavour on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FlavourArg {
    Mariadb,
    Mysql,
}

impl FlavourArg {
    pub fn flavour(self) -> crate::domain::Flavour {
        match self {
            FlavourArg::Mariadb => crate::domain::Flavour::MariaDb,
            FlavourArg::Mysql => crate::domain::Flavour::MySql,
        }
    }
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
    /// Run a playbook headless: one step after another, journaled like the console's runs.
    Run {
        /// web-replace, db-ebs-move or db-promote.
        playbook: String,
        /// Instance id or name the playbook acts on.
        #[arg(long)]
        target: String,
        /// Print the plan and the calls each step would make; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Take destructive steps too (without it they are refused and the run left resumable).
        #[arg(long)]
        yes: bool,
        /// Lift one refusal, named (repeat for more): anti-flapping, master-answers,
        /// lagging-replica, not-an-outlier. Each is journaled on your name.
        #[arg(long = "override", value_name = "NAME", value_parser = parse_override)]
        overrides: Vec<Override>,
        /// Gone: it lifted every refusal at once. Name the one you mean with --override.
        #[arg(long, hide = true)]
        force: bool,
        /// Take over the tier's lease from this run, if it is stale (its console is dead).
        #[arg(long, value_name = "RUN_ID")]
        take_over_lease: Option<String>,
        /// Quarantine the bad instance (stop and tag it) instead of terminating it.
        #[arg(long)]
        quarantine: bool,
        /// Print the run id and each step's outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Resume an unfinished run from its journal.
    Resume {
        /// The run to resume (default: the only unfinished one).
        run_id: Option<String>,
        #[arg(long)]
        yes: bool,
        /// The run stopped because dake could not fence the old master, and you have (its
        /// network cut, MySQL stopped from a console): say so, on your name in the journal,
        /// and the failover goes on.
        #[arg(long)]
        fenced_by_other_means: bool,
        /// Lift a refusal the run stopped on, named (see `dake run --override`).
        #[arg(long = "override", value_name = "NAME", value_parser = parse_override)]
        overrides: Vec<Override>,
        /// Take over the tier's lease from this run, if it is stale (its console is dead).
        #[arg(long, value_name = "RUN_ID")]
        take_over_lease: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Check a playbook's permissions on the fleet before an incident: plan every step against
    /// the fleet as it is and send each EC2 call with DryRun; nothing changes.
    Preflight {
        /// web-replace, db-ebs-move or db-promote.
        playbook: String,
        /// Instance id or name the playbook would act on.
        #[arg(long)]
        target: String,
        /// Print each call's verdict as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a heartbeat on the master (pt-heartbeat compatible: only `ts` and `server_id` of
    /// `[database] heartbeat_table`): one, or one every --every seconds until interrupted.
    Heartbeat {
        /// The master as host[:port] (default: this host, at `[database] port`).
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Keep writing: one beat every SECS seconds.
        #[arg(long, value_name = "SECS")]
        every: Option<f64>,
        /// Create the heartbeat table first when it is missing (pt-heartbeat's definition).
        #[arg(long)]
        create_table: bool,
    },
    /// Print the SQL that creates dake's database account with the privileges it needs
    /// (`[database] user`, the heartbeat table); run it on the master, the replicas copy it.
    SqlGrants {
        /// The servers' flavour.
        #[arg(long, value_enum, default_value_t = FlavourArg::Mariadb)]
        flavour: FlavourArg,
        /// The host part of the account (where dake connects from).
        #[arg(long, default_value = "%")]
        from: String,
    },
    /// Print the least-privilege IAM policy the playbooks need on this fleet (JSON).
    IamPolicy,
    /// Write a Markdown postmortem of a run.
    Report {
        /// The run to write the postmortem of.
        run_id: String,
    },
    /// Watch a run in progress, read-only, as its journal grows (a war room's second screen):
    /// the run named, or the newest unfinished one and each one started after it. Without a
    /// terminal, its records are printed as lines until it ends.
    Follow {
        /// The run to follow (default: the newest unfinished run, then the next started).
        run_id: Option<String>,
    },
    /// A training drill on the simulated fleet, scored at the end: a scenario by id, or
    /// picked from the list.
    Drill {
        /// slow-web, master-down, master-down-lagging, master-comes-back, errant-replica,
        /// noisy-neighbour, double-fault (or one of your own in dake/scenarios/).
        scenario: Option<String>,
        /// Print the scenario's last scorecard (or the last of any) as Markdown.
        #[arg(long)]
        report: bool,
        /// List the scenarios.
        #[arg(long)]
        list: bool,
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

mod lang;
pub use lang::{command, help_texts, parse, say_error};
