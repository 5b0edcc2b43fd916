//! Where fleet data comes from. Every provider answers the same async trait; the TUI and the
//! headless commands pick one at run time and never know which.

pub mod call;
pub mod sim;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::domain::FleetSnapshot;
use call::{CallOutcome, ProviderCall};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("provider timed out after {0:?}")]
    Timeout(Duration),
    #[error("provider throttled: {0}")]
    Throttled(String),
    /// The provider refused the call as it stands (wrong state, unknown id, not allowed).
    #[error("refused: {0}")]
    Refused(String),
    #[error("{0}")]
    Other(String),
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

    /// One consistent view of the fleet now.
    fn snapshot(&self) -> BoxFuture<'_, Result<FleetSnapshot, ProviderError>>;

    /// Makes one side-effecting call.
    fn execute(&self, call: ProviderCall) -> BoxFuture<'_, Result<CallOutcome, ProviderError>>;

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

/// Builds the provider `kind` names. `sim_offset_secs` starts the simulated fleet that many
/// virtual seconds in (for `dake status --at`); `inject` starts it with incidents present.
pub fn build(
    kind: ProviderKind,
    config: &crate::config::Config,
    sim_offset_secs: f64,
    inject: &[String],
) -> Result<std::sync::Arc<dyn Provider>, String> {
    match kind {
        ProviderKind::Sim => {
            use chrono::SubsecRound;
            // Whole seconds: the simulated clock then reads like the sample timestamps it makes.
            let epoch = chrono::Utc::now().trunc_subsecs(0);
            let provider = sim::SimProvider::new(config, epoch, sim_offset_secs);
            for text in inject {
                let (kind, target) = parse_injection(text, config)?;
                provider.with_fleet(|f| f.inject(kind, target.as_deref()))?;
            }
            Ok(std::sync::Arc::new(provider))
        }
    }
}
