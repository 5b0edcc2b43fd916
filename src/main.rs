//! dake: parse the command line, set up logging, run the console or a headless command.
#![deny(clippy::unwrap_used)]

use dake::{said, say};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::CommandFactory;

use dake::cli::{Cli, Command};
use dake::config::{Config, DEFAULT_CONFIG};
use dake::console;
use dake::headless::{self, commands};
use dake::provider::{self, Provider, Session};
use dake::runbook::overrides::Override;
use dake::runbook::{journal, model};

/// `status --at` steps the simulated fleet sample by sample; a week is plenty for any drill.
const MAX_AT_SECS: f64 = 7.0 * 24.0 * 3600.0;
/// Exit code for bad input: a config error or a command that cannot run here.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = dake::cli::parse();
    let _log_guard = init_logging();
    let l = lang(&cli);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dake: {}", dake::i18n::said(l, &format!("{e:#}")));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(seed) = cli.seed {
        config.sim.seed = seed;
    }
    if let Some(speed) = cli.speed {
        anyhow::ensure!(
            speed > 0.0 && speed <= 10_000.0,
            said!("--speed must be above 0 and at most 10000")
        );
        config.sim.speed = speed;
    }
    Ok(config)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Some(Command::Config { print_default }) => {
            if *print_default {
                print!("{DEFAULT_CONFIG}");
            } else {
                let config = load_config(&cli)?;
                print!(
                    "{}",
                    toml::to_string_pretty(&config).context(said!("serialising the config"))?
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Completions { shell }) => {
            clap_complete::generate(*shell, &mut Cli::command(), "dake", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Status { json, at }) => status(&cli, *json, *at),
        Some(Command::Run {
            playbook,
            target,
            dry_run,
            yes,
            overrides,
            force,
            take_over_lease,
            quarantine,
            json,
        }) => {
            if *force {
                return Err(force_is_gone());
            }
            let args = commands::RunArgs {
                playbook,
                target,
                dry_run: *dry_run,
                yes: *yes,
                overrides,
                take_over_lease: take_over_lease.as_deref(),
                quarantine: *quarantine,
                json: *json,
                mirror: None,
                lang: lang(&cli),
            };
            run_playbook(&cli, args)
        }
        Some(Command::Resume {
            run_id,
            yes,
            fenced_by_other_means,
            overrides,
            take_over_lease,
            json,
        }) => {
            let args = commands::ResumeArgs {
                yes: *yes,
                fenced_by_other_means: *fenced_by_other_means,
                overrides: overrides.clone(),
                take_over_lease: take_over_lease.clone(),
                json: *json,
                mirror: None,
                lang: lang(&cli),
            };
            resume(&cli, run_id.as_deref(), args)
        }
        Some(Command::Preflight {
            playbook,
            target,
            json,
        }) => preflight(&cli, playbook, target, *json),
        Some(Command::Heartbeat {
            host,
            every,
            create_table,
        }) => heartbeat(&cli, host, *every, *create_table),
        Some(Command::SqlGrants { flavour, from }) => sql_grants(&cli, *flavour, from),
        Some(Command::IamPolicy) => iam_policy(&cli),
        Some(Command::Report { run_id }) => report(&cli, run_id),
        Some(Command::Follow { run_id }) => follow(&cli, run_id.as_deref()),
        Some(Command::Drill {
            scenario,
            report,
            list,
        }) => drill(&cli, scenario.as_deref(), *report, *list),
        None => run_console(&cli, None),
    }
}

/// `dake follow`: a run's journal, read-only: on a terminal the console's run panel and
/// timeline, else its records as lines.
fn follow(cli: &Cli, run_id: Option<&str>) -> anyhow::Result<ExitCode> {
    use dake::mirror::{RemoteTail, Tail};
    let config = load_config(cli)?;
    let rt = runtime()?;
    let results = dake::drill::scorecard::results_path();
    // Another machine's runs come from the journal's mirror; this machine's from its disk.
    let (tail, from) = if cli.provider == provider::ProviderKind::Aws {
        let mirror = journal_mirror(cli, &config, &rt)?.context(said!(
            "dake follow --provider aws reads the journal's mirror: set [journal] mirror = \
             \"cloudwatch-logs\" (the machine running the playbook needs it too)"
        ))?;
        let from = say!("CloudWatch Logs group {}", mirror.group());
        (Tail::Remote(RemoteTail::new(mirror, run_id)), from)
    } else {
        let dir = journal_dir()?;
        if let Some(id) = run_id {
            journal::find(&dir, id)?;
        }
        let from = dir.display().to_string();
        let tail = dake::runbook::tail::JournalTail::new(&dir, run_id);
        (Tail::Local(tail), from)
    };
    if !std::io::stdout().is_terminal() {
        let code = rt.block_on(headless::follow::plain(
            tail,
            &from,
            results.as_deref(),
            lang(cli),
        ))?;
        return Ok(ExitCode::from(code));
    }
    let playbooks = model::load_all(model::user_dir().as_deref())?;
    let from = dake::follow_console::Sources { tail, results };
    let look = dake::follow_console::Look {
        present: cli.present,
        lang: lang(cli),
    };
    rt.block_on(dake::follow_console::follow(config, playbooks, from, look))?;
    Ok(ExitCode::SUCCESS)
}

/// `dake preflight`: the playbook's calls against the fleet as it is, each sent with DryRun.
fn preflight(cli: &Cli, playbook: &str, target: &str, json: bool) -> anyhow::Result<ExitCode> {
    let (config, playbooks, provider) = for_playbooks(cli, Session::Look { at_secs: 0.0 })?;
    let code = runtime()?.block_on(commands::preflight(
        provider,
        &config,
        &playbooks,
        playbook,
        target,
        json,
        lang(cli),
    ))?;
    Ok(ExitCode::from(code))
}

/// `dake report`: the run's postmortem as Markdown.
fn report(cli: &Cli, run_id: &str) -> anyhow::Result<ExitCode> {
    let playbooks = model::load_all(model::user_dir().as_deref())?;
    let dir = journal_dir()?;
    print!("{}", commands::report(&playbooks, &dir, run_id, lang(cli))?);
    Ok(ExitCode::SUCCESS)
}

/// The language on screen: `--lang`, else the locale's.
fn lang(cli: &Cli) -> dake::i18n::Lang {
    dake::i18n::Lang::detect(cli.lang, |k| std::env::var(k).ok())
}

/// `dake run`: one playbook headless, journaled (and mirrored) like the console's runs.
fn run_playbook(cli: &Cli, args: commands::RunArgs<'_>) -> anyhow::Result<ExitCode> {
    let (config, playbooks, provider) = for_playbooks(cli, Session::NewRun)?;
    let dir = journal_dir()?;
    let rt = runtime()?;
    let args = commands::RunArgs {
        mirror: journal_mirror(cli, &config, &rt)?,
        ..args
    };
    let code = rt.block_on(commands::run(provider, &config, &playbooks, &dir, args))?;
    Ok(ExitCode::from(code))
}

/// The journal mirror `[journal]` asks for, connected; `None` when journals stay here.
fn journal_mirror(
    cli: &Cli,
    config: &Config,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Option<Arc<dake::provider::aws::logs::LogsMirror>>> {
    if config.journal.mirror != dake::config::Mirror::CloudwatchLogs {
        return Ok(None);
    }
    let connected = rt.block_on(dake::provider::aws::logs::LogsMirror::connect(
        &cli.aws_options(),
        &config.aws,
        config.log_group(),
    ));
    let mirror = connected
        .map_err(|e| anyhow::anyhow!(say!("[journal] mirror = \"cloudwatch-logs\": {e}")))?;
    Ok(Some(Arc::new(mirror)))
}

/// `dake iam-policy`: what the playbooks need on this fleet, as JSON.
fn iam_policy(cli: &Cli) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    let playbooks = model::load_all(model::user_dir().as_deref())?;
    let kinds = model::call_kinds(&playbooks);
    let policy = dake::provider::aws::iam::policy(&kinds, &config, cli.region.as_deref());
    println!("{}", serde_json::to_string_pretty(&policy)?);
    Ok(ExitCode::SUCCESS)
}

/// `dake drill`: a scenario's fleet in the console, scored; or the list, or the last report.
fn drill(cli: &Cli, scenario: Option<&str>, report: bool, list: bool) -> anyhow::Result<ExitCode> {
    let scenarios = dake::drill::load_all(dake::drill::scenario::user_dir().as_deref())?;
    if list {
        print!("{}", headless::drill::list_text(&scenarios, lang(cli)));
        return Ok(ExitCode::SUCCESS);
    }
    if report {
        let results = dake::drill::scorecard::results_path().context(said!(
            "no data directory (set XDG_DATA_HOME or HOME) for drill results"
        ))?;
        print!(
            "{}",
            headless::drill::report(&results, scenario, lang(cli))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    anyhow::ensure!(
        cli.provider == provider::ProviderKind::Sim,
        said!("drills run on the simulated fleet; leave out --provider")
    );
    let interactive = std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    let mut chosen = match scenario {
        Some(id) => headless::drill::find(&scenarios, id)?,
        None if interactive => match dake::picker::pick(&scenarios, lang(cli))? {
            Some(s) => s,
            None => return Ok(ExitCode::SUCCESS),
        },
        None => {
            let ids: Vec<&str> = scenarios.iter().map(|s| s.id.as_str()).collect();
            anyhow::bail!(say!("name a scenario: dake drill <{}>", ids.join("|")));
        }
    };
    if let Some(seed) = cli.seed {
        chosen.seed = seed;
    }
    run_console(cli, Some(chosen))
}

/// `dake sql-grants`: the account dake needs, for the operator to run on the master.
fn sql_grants(cli: &Cli, flavour: dake::cli::FlavourArg, from: &str) -> anyhow::Result<ExitCode> {
    let db = load_config(cli)?.database;
    let grants =
        dake::provider::mysql::sql::grants(flavour.flavour(), &db.user, from, &db.heartbeat_table);
    println!("{}", grants.join("\n"));
    Ok(ExitCode::SUCCESS)
}

/// `dake heartbeat`: one beat, or one every `every` seconds.
/// `--force` lifted every refusal at once; each is named now.
fn force_is_gone() -> anyhow::Error {
    let names: Vec<&str> = Override::ALL.iter().map(|o| o.name()).collect();
    anyhow::anyhow!(say!(
        "--force is gone: it lifted every refusal at once. Name the one you mean: --override {}",
        names.join(" | ")
    ))
}

/// `dake resume`: the run's journal replayed against the provider it ran on.
fn resume(cli: &Cli, run_id: Option<&str>, args: commands::ResumeArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    let playbooks = model::load_all(model::user_dir().as_deref())?;
    let dir = journal_dir()?;
    let provider = resumable_provider(cli, &config, &journal::list(&dir))?;
    let rt = runtime()?;
    let args = commands::ResumeArgs {
        mirror: journal_mirror(cli, &config, &rt)?,
        ..args
    };
    let code = rt.block_on(commands::resume(
        provider, &config, &playbooks, &dir, run_id, args,
    ))?;
    Ok(ExitCode::from(code))
}

fn heartbeat(
    cli: &Cli,
    host: &str,
    every: Option<f64>,
    create_table: bool,
) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    let every = every
        .map(|secs| {
            anyhow::ensure!(
                secs.is_finite() && (0.1..=3600.0).contains(&secs),
                said!("--every must be between 0.1 and 3600 seconds")
            );
            Ok(std::time::Duration::from_secs_f64(secs))
        })
        .transpose()?;
    let code = runtime()?.block_on(commands::heartbeat(
        &config.database,
        host,
        every,
        create_table,
    ))?;
    Ok(ExitCode::from(code))
}

/// `dake status`: one snapshot, UNKNOWN (3) when the provider does not answer in time.
fn status(cli: &Cli, json: bool, at: f64) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    anyhow::ensure!(
        at.is_finite() && (0.0..=MAX_AT_SECS).contains(&at),
        say!("--at must be a number of seconds between 0 and {MAX_AT_SECS} (a week)")
    );
    // The user's own playbooks are the ones suggested for each incident.
    let playbooks = model::load_all(model::user_dir().as_deref())?;
    let provider = build(cli, &config, Session::Look { at_secs: at })?;
    let snap = match runtime()?.block_on(provider::snapshot_within_bound(provider.as_ref())) {
        Ok(s) => s,
        Err(e) => return Ok(unknown(&format!("provider {}: {e}", provider.name()), json)),
    };
    let report = headless::status_report(&snap, &config, &playbooks);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", headless::status_text(&report, lang(cli)));
    }
    Ok(ExitCode::from(report.exit_code))
}

/// What `run` and `preflight` work with: the config, the playbooks (the user's own included)
/// and the provider.
fn for_playbooks(
    cli: &Cli,
    session: Session,
) -> anyhow::Result<(Config, Vec<model::Playbook>, Arc<dyn Provider>)> {
    let config = load_config(cli)?;
    let playbooks = model::load_all(model::user_dir().as_deref())?;
    let provider = build(cli, &config, session)?;
    Ok((config, playbooks, provider))
}

fn build(cli: &Cli, config: &Config, session: Session) -> anyhow::Result<Arc<dyn Provider>> {
    let spec = cli.provider_spec().map_err(anyhow::Error::msg)?;
    provider::build(&spec, config, session).map_err(anyhow::Error::msg)
}

/// The console and `dake resume` carry on where an unfinished run left the fleet (the drill
/// fleet is restored from its saved state); with no unfinished run they start afresh.
fn resumable_provider(
    cli: &Cli,
    config: &Config,
    runs: &[journal::RunSummary],
) -> anyhow::Result<Arc<dyn Provider>> {
    let newest_unfinished = journal::newest_unfinished(runs);
    build(cli, config, Session::CarryOn { newest_unfinished })
}

fn journal_dir() -> anyhow::Result<std::path::PathBuf> {
    journal::default_dir().context(said!(
        "no data directory (set XDG_DATA_HOME or HOME) for run journals"
    ))
}

/// Monitoring plugins answer UNKNOWN (3) when they cannot tell.
fn unknown(reason: &str, json: bool) -> ExitCode {
    if json {
        println!(
            "{}",
            serde_json::json!({ "schema": headless::STATUS_SCHEMA, "status": "unknown", "exit_code": 3, "error": reason })
        );
    } else {
        println!("DAKE UNKNOWN - {reason}");
    }
    ExitCode::from(3)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context(said!("starting the async runtime"))
}

fn run_console(cli: &Cli, scenario: Option<dake::drill::Scenario>) -> anyhow::Result<ExitCode> {
    let mut config = load_config(cli)?;
    if let Some(s) = &scenario {
        config = s.apply(&config);
    }
    if !std::io::stdout().is_terminal() {
        anyhow::bail!(said!(
            "stdout is not a terminal, so the console cannot draw; for a one-shot snapshot use `dake status` (or `dake status --json`)"
        ));
    }
    let playbooks = model::load_all(model::user_dir().as_deref())?;
    let past_runs = journal::default_dir()
        .as_deref()
        .map(journal::list)
        .unwrap_or_default();
    let (provider, drill) = match scenario {
        // A drill starts on a fresh fleet, whatever an earlier one left.
        Some(scenario) => {
            let history = dake::drill::scorecard::results_path()
                .map(|p| dake::drill::scorecard::load(&p))
                .unwrap_or_default()
                .into_iter()
                .rev()
                .filter(|c| c.scenario == scenario.id)
                .take(3)
                .collect();
            let setup = console::DrillSetup { scenario, history };
            (build(cli, &config, Session::NewRun)?, Some(setup))
        }
        None => (resumable_provider(cli, &config, &past_runs)?, None),
    };
    let rt = runtime()?;
    let options = console::Options {
        mirror: journal_mirror(cli, &config, &rt)?,
        present: cli.present,
        lang: lang(cli),
        exit_after_first_frame: cli.exit_after_first_frame,
    };
    rt.block_on(console::run(
        config, playbooks, provider, past_runs, drill, options,
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// Logs go to a file in the XDG state dir, never to the screen the console draws on.
fn init_logging() -> Option<()> {
    let dir = dirs::state_dir().or_else(dirs::data_dir)?.join("dake");
    std::fs::create_dir_all(&dir).ok()?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("dake.log"))
        .ok()?;
    tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .try_init()
        .ok()
}
