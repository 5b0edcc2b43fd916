//! Where fleet data comes from. Every provider answers the same async trait; the TUI and the
//! headless commands pick one at run time and never know which.

pub mod aws;
pub mod call;
pub mod sim;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::domain::FleetSnapshot;
use call::{CallOutcome, ProviderCall};

/// No refresh may hold the console or `dake status` longer than this, unless the provider says
/// its own bound (`Provider::snapshot_timeout`).
pub const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(20);
/// No single provider call may hold a step longer than this, unless the provider says otherwise
/// for that call (`Provider::call_timeout`).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// What ran out of time, and after how long.
    #[error("provider timed out: {0}")]
    Timeout(String),
    #[error("provider throttled: {0}")]
    Throttled(String),
    /// The provider refused the call as it stands (wrong state, unknown id, not allowed).
    #[error("refused: {0}")]
    Refused(String),
    #[error("{0}")]
    Other(String),
}

/// What a preflight found for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preflight {
    /// The provider said the call would go through (on AWS: `DryRunOperation`).
    Allowed,
    /// The API has no dry run for it; what could be checked without making it passed.
    NotCheckable(String),
}

pub trait Provider: Send + Sync {
    /// Short name shown in the header and in `dake status`.
    fn name(&self) -> &'static str;

    /// How often the console asks for a fresh snapshot.
    fn refresh_interval(&self) -> Duration;

    /// The fleet's clock: wall time for a real fleet, virtual time for the simulator. Runs
    /// journal and time their waits by it.
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }

    /// How long a snapshot may take before the caller gives up on it.
    fn snapshot_timeout(&self) -> Duration {
        SNAPSHOT_TIMEOUT
    }

    /// How long `call` may take before the run gives up on it (a host command that waits for
    /// MySQL to start takes longer than an API call).
    fn call_timeout(&self, _call: &ProviderCall) -> Duration {
        CALL_TIMEOUT
    }

    /// One consistent view of the fleet now.
    fn snapshot(&self) -> BoxFuture<'_, Result<FleetSnapshot, ProviderError>>;

    /// Makes one side-effecting call.
    fn execute(&self, call: ProviderCall) -> BoxFuture<'_, Result<CallOutcome, ProviderError>>;

    /// Whether `call` would be allowed, without making it: what `dake preflight` asks. A
    /// refusal (not permitted, outside the fleet, wrong state) is an `Err`.
    fn preflight(&self, call: ProviderCall) -> BoxFuture<'_, Result<Preflight, ProviderError>>;

    /// Instances tagged `dake:run=<run_id>` and `dake:step=<step>`, in any state but gone:
    /// how a resumed run finds what it created before a crash.
    fn find_created(
        &self,
        run_id: &str,
        step: usize,
    ) -> BoxFuture<'_, Result<Vec<String>, ProviderError>>;
}

/// The providers `--provider` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderKind {
    /// The built-in simulated fleet (a drill: nothing real is touched).
    Sim,
    /// A real fleet on AWS: the instances tagged dake:fleet=<[fleet] name>.
    Aws,
}

/// Parses `--inject`: `slow-web[:<name>]` (default: the configured slow-web target, else
/// web-1), or `master-down`.
pub fn parse_injection(
    text: &str,
    config: &crate::config::Config,
) -> Result<(crate::config::IncidentKind, Option<String>), String> {
    use crate::config::IncidentKind;
    let (kind, name) = match text.split_once(':') {
        Some((k, n)) => (k, Some(n.to_string())),
        None => (text, None),
    };
    match kind {
        "slow-web" => {
            let default = config
                .sim
                .incidents
                .iter()
                .find(|i| i.kind == IncidentKind::SlowWeb)
                .and_then(|i| i.target.clone())
                .unwrap_or_else(|| "web-1".into());
            Ok((IncidentKind::SlowWeb, Some(name.unwrap_or(default))))
        }
        "master-down" if name.is_none() => Ok((IncidentKind::MasterDown, None)),
        _ => Err(format!(
            "--inject {text}: expected `slow-web`, `slow-web:<web server name>` or `master-down`"
        )),
    }
}

/// What becomes of the simulated fleet's state file ([`sim_state_path`]).
#[derive(Debug, Clone, Copy)]
pub enum SimState<'a> {
    /// Never read or written: a one-shot look (`dake status`).
    Ephemeral,
    /// A fresh fleet, saved after every call over whatever was saved before (`dake run`).
    Fresh,
    /// The saved fleet when a run in this journal dir is unfinished (the instances it made
    /// live there); otherwise a fresh one, and a stale saved fleet is removed (the console,
    /// `dake resume`).
    ResumeUnfinished(Option<&'a std::path::Path>),
}

/// `<XDG state dir>/dake/sim-<fleet name>.json` (the data dir where there is no state dir).
pub fn sim_state_path(fleet_name: &str) -> Option<std::path::PathBuf> {
    let safe: String = fleet_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let dir = dirs::state_dir().or_else(dirs::data_dir)?;
    Some(dir.join("dake").join(format!("sim-{safe}.json")))
}

/// Builds the provider `kind` names. `sim_offset_secs` starts a fresh simulated fleet that many
/// virtual seconds in (for `dake status --at`); `inject` starts a fresh one with incidents
/// present (a restored fleet carries on as it was); `state` says whether the simulated fleet
/// is restored from, and saved to, its state file.
pub fn build(
    kind: ProviderKind,
    config: &crate::config::Config,
    sim_offset_secs: f64,
    inject: &[String],
    state: SimState<'_>,
    aws: &aws::AwsOptions,
) -> Result<std::sync::Arc<dyn Provider>, String> {
    match kind {
        ProviderKind::Aws => {
            if !inject.is_empty() {
                return Err("--inject works on the simulated fleet only; a real fleet's incidents are its own".into());
            }
            Ok(std::sync::Arc::new(aws::AwsProvider::new(
                config,
                aws.clone(),
            )))
        }
        ProviderKind::Sim => {
            let path = match state {
                SimState::Ephemeral => None,
                SimState::Fresh | SimState::ResumeUnfinished(_) => {
                    sim_state_path(&config.fleet.name)
                }
            };
            if let (SimState::ResumeUnfinished(dir), Some(path)) = (state, &path)
                && let Some(provider) = restore_unfinished(config, path, dir, inject)?
            {
                return Ok(std::sync::Arc::new(provider));
            }
            use chrono::SubsecRound;
            // Whole seconds: the simulated clock then reads like the sample timestamps it makes.
            let epoch = chrono::Utc::now().trunc_subsecs(0);
            let mut provider = sim::SimProvider::new(config, epoch, sim_offset_secs);
            for text in inject {
                let (kind, target) = parse_injection(text, config)?;
                provider.with_fleet(|f| f.inject(kind, target.as_deref()))?;
            }
            if let Some(path) = path {
                provider = provider.with_state_file(path);
            }
            Ok(std::sync::Arc::new(provider))
        }
    }
}

/// The saved drill fleet when a run in `dir` is unfinished (the instances it made live there),
/// caught up with the newest record any such run journaled (see `SimProvider::resume_at`).
/// `None` when there is none to restore; with no unfinished run a saved fleet is stale and
/// removed.
fn restore_unfinished(
    config: &crate::config::Config,
    path: &std::path::Path,
    dir: Option<&std::path::Path>,
    inject: &[String],
) -> Result<Option<sim::SimProvider>, String> {
    let runs = dir.map(crate::runbook::journal::unfinished);
    let Some(last) = runs.unwrap_or_default().iter().map(|r| r.last).max() else {
        remove_stale(path);
        return Ok(None);
    };
    let Some(provider) = sim::SimProvider::restore(config, path)
        .map_err(|e| format!("{e} (delete it to start a fresh drill fleet)"))?
    else {
        return Ok(None);
    };
    if !inject.is_empty() {
        tracing::info!("--inject ignored: the restored drill fleet carries on");
    }
    Ok(Some(provider.resume_at(last)))
}

/// No run needs the saved fleet any more: the next drill starts fresh.
fn remove_stale(path: &std::path::Path) {
    match std::fs::remove_file(path) {
        Ok(()) => tracing::info!(
            "{}: no unfinished run; stale drill fleet removed",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("{}: removing the stale drill fleet: {e}", path.display()),
    }
}
