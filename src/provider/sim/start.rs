//! Starting the drill fleet for a command: fresh, with incidents already present, or restored
//! from the file an earlier process saved it to while a run was unfinished.

use std::path::{Path, PathBuf};

use chrono::{DateTime, SubsecRound, Utc};

use super::SimProvider;
use crate::config::{Config, IncidentKind};
use crate::provider::Session;

/// The simulated fleet's own command-line options.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    /// `--inject`: incidents present from the start (`slow-web[:<name>]`, `master-down`).
    pub inject: Vec<String>,
}

/// Parses `--inject`: `slow-web[:<name>]` (default: the configured slow-web target, else
/// web-1), or `master-down`.
pub fn parse_injection(
    text: &str,
    config: &Config,
) -> Result<(IncidentKind, Option<String>), String> {
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

/// `<XDG state dir>/dake/sim-<fleet name>.json` (the data dir where there is no state dir).
pub fn state_path(fleet_name: &str) -> Option<PathBuf> {
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

/// The drill fleet for `session`: a look stands still at its moment and is never saved; a run's
/// fleet is saved after every call over whatever was saved before; carrying on restores the
/// saved fleet an unfinished run made (a restored fleet carries on as it was, so `--inject` is
/// ignored then).
pub fn start(
    config: &Config,
    options: &SimOptions,
    session: Session,
) -> Result<SimProvider, String> {
    let (offset_secs, path) = match session {
        Session::Look { at_secs } => (at_secs, None),
        Session::NewRun | Session::CarryOn { .. } => (0.0, state_path(&config.fleet.name)),
    };
    if let (Session::CarryOn { newest_unfinished }, Some(path)) = (session, &path)
        && let Some(provider) = restore_unfinished(config, path, newest_unfinished, options)?
    {
        return Ok(provider);
    }
    // Whole seconds: the simulated clock then reads like the sample timestamps it makes.
    let epoch = Utc::now().trunc_subsecs(0);
    let mut provider = SimProvider::new(config, epoch, offset_secs);
    for text in &options.inject {
        let (kind, target) = parse_injection(text, config)?;
        provider.with_fleet(|f| f.inject(kind, target.as_deref()))?;
    }
    match (session, path) {
        (Session::Look { .. }, _) => provider = provider.frozen(),
        (_, Some(path)) => provider = provider.with_state_file(path),
        (_, None) => {}
    }
    Ok(provider)
}

/// The saved drill fleet when a run is unfinished (the instances it made live there), caught up
/// with the newest record any such run journaled (see `SimProvider::resume_at`). `None` when
/// there is none to restore; with no unfinished run a saved fleet is stale and removed.
fn restore_unfinished(
    config: &Config,
    path: &Path,
    newest_unfinished: Option<DateTime<Utc>>,
    options: &SimOptions,
) -> Result<Option<SimProvider>, String> {
    let Some(last) = newest_unfinished else {
        remove_stale(path);
        return Ok(None);
    };
    let Some(provider) = SimProvider::restore(config, path)
        .map_err(|e| format!("{e} (delete it to start a fresh drill fleet)"))?
    else {
        return Ok(None);
    };
    if !options.inject.is_empty() {
        tracing::info!("--inject ignored: the restored drill fleet carries on");
    }
    Ok(Some(provider.resume_at(last)))
}

/// No run needs the saved fleet any more: the next drill starts fresh.
fn remove_stale(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => tracing::info!(
            "{}: no unfinished run; stale drill fleet removed",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("{}: removing the stale drill fleet: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_look_stands_still_at_its_moment() {
        let mut config = Config::builtin();
        // At this speed any time passing at all would move the clock.
        config.sim.speed = 10_000.0;
        let look = start(
            &config,
            &SimOptions::default(),
            Session::Look { at_secs: 240.0 },
        )
        .unwrap();
        assert_eq!(look.virtual_now(), 240.0);
        assert_eq!(look.with_fleet(|f| f.now_secs()), 240);
    }

    #[test]
    fn injections_name_a_kind_and_maybe_a_server() {
        let config = Config::builtin();
        let parse = |t: &str| parse_injection(t, &config);
        assert_eq!(
            parse("slow-web"),
            Ok((IncidentKind::SlowWeb, Some("web-3".into())))
        );
        assert_eq!(
            parse("slow-web:web-1"),
            Ok((IncidentKind::SlowWeb, Some("web-1".into())))
        );
        assert_eq!(parse("master-down"), Ok((IncidentKind::MasterDown, None)));
        assert!(parse("master-down:db-1").is_err());
        assert!(parse("disk-full").unwrap_err().contains("expected"));
    }
}
