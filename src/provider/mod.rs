//! Where fleet data comes from. Every provider answers the same async trait; the console and
//! the headless commands are handed one built from a [`ProviderSpec`] and never ask which.

pub mod aws;
pub mod mysql;
pub mod sim;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::domain::FleetSnapshot;
use crate::domain::call::{CallOutcome, ProviderCall};

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
    #[error("{}", say!("provider timed out: {}", .0))]
    Timeout(String),
    #[error("{}", say!("provider throttled: {}", .0))]
    Throttled(String),
    /// The provider refused the call as it stands (wrong state, unknown id, not allowed).
    #[error("{}", say!("refused: {}", .0))]
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

    /// A drill: nothing real can be harmed, so the console starts armed.
    fn is_drill(&self) -> bool;

    /// How often the console asks for a fresh snapshot.
    fn refresh_interval(&self) -> Duration;

    /// The fleet's clock: wall time for a real fleet, virtual time for the simulator. Runs
    /// journal and time their waits by it.
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }

    /// When a drill fleet's clock started: its timeline counts from here. `None` for a real one.
    fn drill_epoch(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        None
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

/// Which provider, with the options of that provider alone.
#[derive(Debug, Clone)]
pub enum ProviderSpec {
    Sim(sim::SimOptions),
    Aws(aws::AwsOptions),
}

impl ProviderSpec {
    /// The provider `--provider` names, refusing an option only the other one takes.
    pub fn new(
        kind: ProviderKind,
        aws: aws::AwsOptions,
        sim: sim::SimOptions,
    ) -> Result<ProviderSpec, String> {
        match kind {
            ProviderKind::Sim => Ok(ProviderSpec::Sim(sim)),
            ProviderKind::Aws if !sim.inject.is_empty() => Err(
                "--inject works on the simulated fleet only; a real fleet's incidents are its own"
                    .into(),
            ),
            ProviderKind::Aws => Ok(ProviderSpec::Aws(aws)),
        }
    }
}

/// What a command does with the fleet, in words every provider understands: a real fleet simply
/// is where it is; the simulated one is started, saved and restored to match.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Session {
    /// One look, nothing kept (`dake status`, `dake preflight`); a fresh drill fleet stands
    /// still `at_secs` virtual seconds in (`dake status --at`).
    Look { at_secs: f64 },
    /// A new run: a fresh drill fleet, saved after every call (`dake run`).
    NewRun,
    /// Carry on where unfinished runs left the fleet (the console, `dake resume`).
    /// `newest_unfinished` is the newest record any unfinished run journaled: the drill fleet
    /// they made is restored and caught up with it. `None`: no run is unfinished, so a saved
    /// drill fleet is stale and a fresh one starts.
    CarryOn {
        newest_unfinished: Option<chrono::DateTime<chrono::Utc>>,
    },
}

/// Builds the provider `spec` names for `session`.
pub fn build(
    spec: &ProviderSpec,
    config: &crate::config::Config,
    session: Session,
) -> Result<std::sync::Arc<dyn Provider>, String> {
    Ok(match spec {
        ProviderSpec::Aws(options) => {
            std::sync::Arc::new(aws::AwsProvider::new(config, options.clone())?)
        }
        ProviderSpec::Sim(options) => std::sync::Arc::new(sim::start(config, options, session)?),
    })
}

/// A snapshot, or a timeout error once the provider's own bound has passed.
pub async fn snapshot_within_bound(
    provider: &dyn Provider,
) -> Result<FleetSnapshot, ProviderError> {
    let limit = provider.snapshot_timeout();
    tokio::time::timeout(limit, provider.snapshot())
        .await
        .unwrap_or_else(|_| {
            Err(ProviderError::Timeout(format!(
                "no snapshot within {} s",
                limit.as_secs()
            )))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_fleet_takes_no_injected_incident() {
        let inject = sim::SimOptions {
            inject: vec!["master-down".into()],
        };
        let aws = aws::AwsOptions::default();
        let err = ProviderSpec::new(ProviderKind::Aws, aws.clone(), inject.clone()).unwrap_err();
        assert!(
            err.contains("--inject works on the simulated fleet only"),
            "{err}"
        );
        assert!(matches!(
            ProviderSpec::new(ProviderKind::Sim, aws, inject),
            Ok(ProviderSpec::Sim(_))
        ));
    }
}
