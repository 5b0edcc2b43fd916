//! The drill fleet on disk. A real fleet outlives the console that changes it; the simulated
//! one must too, or a run resumed after a crash looks for instances that never existed. The
//! whole `SimFleet` is saved after every call that changed it and read back on restart.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{SimFleet, SimProvider};
use crate::config::Config;

/// Bumped whenever `SimFleet`'s serialised shape changes; a file of another format is ignored.
const FORMAT: u32 = 2;
/// A saved virtual clock further out than this (a century) is damage, not a long drill.
const MAX_VIRTUAL_SECS: i64 = 100 * 365 * 24 * 3600;
/// `resume_at` steps the fleet sample by sample; a time further ahead than this (a week) was
/// written on another fleet's clock and is not caught up with.
const MAX_CATCH_UP_SECS: f64 = 7.0 * 24.0 * 3600.0;

#[derive(Serialize)]
struct SavedRef<'a> {
    format: u32,
    fleet: &'a SimFleet,
}

#[derive(Deserialize)]
struct Header {
    format: u32,
}

#[derive(Deserialize)]
struct Saved {
    fleet: SimFleet,
}

/// `<path>.<pid>.tmp`: the file a save writes before it renames it over `path`; one per
/// process, so two processes saving the same drill fleet never write into one file.
fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{}.tmp", std::process::id()));
    PathBuf::from(name)
}

/// Writes `fleet` to `path` atomically: a reader (or a crash) sees the old file or the new one,
/// never half of one. Synchronous on purpose: the file is a few tens of KB and is written only
/// after a side-effecting call, which playbooks make seconds apart.
pub(super) fn save(fleet: &SimFleet, path: &Path) -> io::Result<()> {
    let text = serde_json::to_vec(&SavedRef {
        format: FORMAT,
        fleet,
    })
    .map_err(io::Error::other)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        fs::create_dir_all(dir)?;
    }
    let tmp = tmp_path(path);
    let mut file = File::create(&tmp)?;
    file.write_all(&text)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;
    // The rename is durable once the directory is; a filesystem that cannot sync a directory
    // still has the file, so this is best effort.
    if let Some(dir) = dir
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Why the saved fleet is not the one `config` describes, if it is not.
fn mismatch(fleet: &SimFleet, config: &Config) -> Option<String> {
    let (saved, want) = (&fleet.sim, &config.sim);
    if fleet.fleet.name != config.fleet.name {
        return Some(format!(
            "it is fleet `{}`, not `{}`",
            fleet.fleet.name, config.fleet.name
        ));
    }
    if saved.seed != want.seed {
        return Some(format!("seed {} there, {} now", saved.seed, want.seed));
    }
    if (saved.web_servers, saved.replicas) != (want.web_servers, want.replicas) {
        return Some(format!(
            "{} web servers and {} replicas there, {} and {} now",
            saved.web_servers, saved.replicas, want.web_servers, want.replicas
        ));
    }
    None
}

/// What the simulator relies on and a hand-edited or corrupted file could break.
fn check(fleet: &SimFleet) -> Result<(), String> {
    if fleet.sim.sample_interval_secs == 0 {
        return Err("sample_interval_secs is 0".into());
    }
    if fleet.now.abs() > MAX_VIRTUAL_SECS {
        return Err(format!("virtual time {} s is out of range", fleet.now));
    }
    if fleet.fired.len() != fleet.sim.incidents.len() {
        return Err(format!(
            "{} incident flags for {} incidents",
            fleet.fired.len(),
            fleet.sim.incidents.len()
        ));
    }
    if fleet.sprung.len() != fleet.sim.faults.len() {
        return Err(format!(
            "{} trap flags for {} traps",
            fleet.sprung.len(),
            fleet.sim.faults.len()
        ));
    }
    Ok(())
}

impl SimProvider {
    /// The fleet saved at `path` by an earlier process, carrying on from the virtual time it
    /// was saved at (the wall time in between is skipped, as if the drill had been paused),
    /// and saving to `path` again. `Ok(None)` when there is no file, or it holds another fleet
    /// (other name, seed or topology) or another format; `Err` names the path when the file
    /// cannot be read or is damaged.
    pub fn restore(config: &Config, path: &Path) -> Result<Option<SimProvider>, String> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(format!(
                    "{}: cannot read the saved drill fleet: {e}",
                    path.display()
                ));
            }
        };
        let damaged = |why: String| format!("{}: damaged saved drill fleet: {why}", path.display());
        let header: Header = serde_json::from_str(&text).map_err(|e| damaged(e.to_string()))?;
        if header.format != FORMAT {
            tracing::info!(
                "{}: saved drill fleet ignored: format {}, this dake reads {FORMAT}",
                path.display(),
                header.format
            );
            return Ok(None);
        }
        let Saved { mut fleet } =
            serde_json::from_str(&text).map_err(|e| damaged(e.to_string()))?;
        if let Some(why) = mismatch(&fleet, config) {
            tracing::info!(
                "{}: saved drill fleet ignored: {why}; starting a fresh one",
                path.display()
            );
            return Ok(None);
        }
        check(&fleet).map_err(damaged)?;
        // The speed is this console's choice, not part of the fleet.
        fleet.sim.speed = config.sim.speed;
        let offset_secs = fleet.now_secs() as f64;
        tracing::info!(
            "{}: restored the drill fleet at virtual second {offset_secs}",
            path.display()
        );
        Ok(Some(SimProvider {
            fleet: Mutex::new(fleet),
            started: Instant::now(),
            offset_secs,
            speed: config.sim.speed,
            delay: Duration::ZERO,
            frozen: false,
            state_file: Some(path.to_path_buf()),
            leases: Default::default(),
        }))
    }

    /// Moves the virtual clock on to `at` if it is ahead, and the fleet with it. The fleet is
    /// saved at its last call, but the process that saved it went on watching it (a launched
    /// instance booting, a target turning healthy) and journaled what it saw; a resumed run
    /// trusts that journal, so the fleet must be at least as far along as its newest record.
    /// No call happened since the save, so stepping the saved fleet to `at` gives exactly
    /// the fleet that process saw then.
    pub fn resume_at(mut self, at: DateTime<Utc>) -> SimProvider {
        let epoch = self.with_fleet(|f| f.epoch());
        let target = (at - epoch).num_milliseconds() as f64 / 1000.0;
        let now = self.virtual_now();
        if target <= now {
            return self;
        }
        if target - now > MAX_CATCH_UP_SECS {
            tracing::info!(
                "not catching the drill fleet up from virtual second {now:.0} to {target:.0}: too far ahead"
            );
            return self;
        }
        self.with_fleet(|f| f.advance_to(target));
        self.offset_secs = target;
        self.started = Instant::now();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IncidentKind;
    use crate::domain::call::ProviderCall;
    use crate::provider::Provider;
    use crate::test_support::epoch;

    fn fleet_json(p: &SimProvider) -> String {
        p.with_fleet(|f| serde_json::to_string(f).unwrap())
    }

    fn snapshot_json(p: &SimProvider) -> String {
        p.with_fleet(|f| serde_json::to_string(&f.snapshot()).unwrap())
    }

    /// A fleet 240 virtual seconds in (the master is down: its series have gaps), with a slow
    /// web server injected and a call whose transition is still pending, saved by `execute`.
    async fn saved_fleet(path: &Path) -> SimProvider {
        let config = Config::builtin();
        let sim = SimProvider::new(&config, epoch(), 240.0).with_state_file(path);
        sim.with_fleet(|f| f.inject(IncidentKind::SlowWeb, Some("web-3")))
            .unwrap();
        let web3 = sim
            .with_fleet(|f| f.snapshot())
            .instances
            .iter()
            .find(|i| i.name == "web-3")
            .map(|i| i.id.clone())
            .unwrap();
        assert!(!path.exists(), "nothing is saved before a call");
        sim.execute(ProviderCall::RestartApp { instance_id: web3 })
            .await
            .unwrap();
        assert!(path.exists(), "a call saves the fleet");
        assert!(
            !tmp_path(path).exists(),
            "the temporary file is renamed away"
        );
        sim
    }

    #[tokio::test]
    async fn save_then_restore_gives_the_same_fleet_at_the_same_virtual_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("sim-drill.json");
        let sim = saved_fleet(&path).await;
        let restored = SimProvider::restore(&Config::builtin(), &path)
            .unwrap()
            .expect("the saved fleet matches the config");
        let snap = snapshot_json(&sim);
        assert!(
            snap.contains("null"),
            "the master's gaps are in the snapshot"
        );
        assert_eq!(snapshot_json(&restored), snap);
        assert_eq!(fleet_json(&restored), fleet_json(&sim));
        // Virtual time resumes where the fleet was saved.
        let saved_now = sim.with_fleet(|f| f.now_secs());
        assert_eq!(restored.with_fleet(|f| f.now_secs()), saved_now);
        assert!(restored.virtual_now() >= saved_now as f64);
        assert!(restored.now() >= epoch() + chrono::Duration::seconds(saved_now));
        // And both go on identically: the pending restart, the rng, the incidents.
        let later = saved_now as f64 + 600.0;
        sim.with_fleet(|f| f.advance_to(later));
        restored.with_fleet(|f| f.advance_to(later));
        assert_eq!(snapshot_json(&restored), snapshot_json(&sim));
        assert_eq!(fleet_json(&restored), fleet_json(&sim));
    }

    #[tokio::test]
    async fn resume_at_catches_up_with_a_later_journal_and_never_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sim-drill.json");
        let sim = saved_fleet(&path).await;
        let saved_now = sim.with_fleet(|f| f.now_secs());
        let restore = || {
            SimProvider::restore(&Config::builtin(), &path)
                .unwrap()
                .unwrap()
        };
        let at = |secs: i64| epoch() + chrono::Duration::seconds(secs);
        // The dead process watched the fleet 300 s past its last call.
        let caught_up = restore().resume_at(at(saved_now + 300));
        assert_eq!(caught_up.with_fleet(|f| f.now_secs()), saved_now + 300);
        assert!(caught_up.virtual_now() >= (saved_now + 300) as f64);
        sim.with_fleet(|f| f.advance_to((saved_now + 300) as f64));
        assert_eq!(fleet_json(&caught_up), fleet_json(&sim));
        // A journal behind the fleet, or on another clock far ahead, leaves it where it is.
        for secs in [saved_now - 60, saved_now + 30 * 24 * 3600] {
            let p = restore().resume_at(at(secs));
            assert_eq!(p.with_fleet(|f| f.now_secs()), saved_now);
        }
    }

    #[tokio::test]
    async fn a_restored_fleet_keeps_saving_to_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sim-drill.json");
        saved_fleet(&path).await;
        let before = fs::read_to_string(&path).unwrap();
        let restored = SimProvider::restore(&Config::builtin(), &path)
            .unwrap()
            .unwrap();
        let web1 = restored
            .with_fleet(|f| f.snapshot())
            .instances
            .iter()
            .find(|i| i.name == "web-1")
            .map(|i| i.id.clone())
            .unwrap();
        restored
            .execute(ProviderCall::CreateTags {
                resource_id: web1,
                tags: vec![("owner".into(), "drill".into())],
            })
            .await
            .unwrap();
        let after = fs::read_to_string(&path).unwrap();
        assert_ne!(after, before);
        assert!(after.contains("\"owner\":\"drill\""));
    }

    #[tokio::test]
    async fn another_seed_or_topology_or_no_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sim-drill.json");
        assert!(
            SimProvider::restore(&Config::builtin(), &path)
                .unwrap()
                .is_none()
        );
        saved_fleet(&path).await;
        let mut other_seed = Config::builtin();
        other_seed.sim.seed += 1;
        assert!(SimProvider::restore(&other_seed, &path).unwrap().is_none());
        let mut bigger = Config::builtin();
        bigger.sim.replicas += 1;
        assert!(SimProvider::restore(&bigger, &path).unwrap().is_none());
        let mut renamed = Config::builtin();
        renamed.fleet.name = "elsewhere".into();
        assert!(SimProvider::restore(&renamed, &path).unwrap().is_none());
        // A faster console is the same fleet.
        let mut faster = Config::builtin();
        faster.sim.speed = 500.0;
        assert!(SimProvider::restore(&faster, &path).unwrap().is_some());
    }

    #[tokio::test]
    async fn a_damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sim-drill.json");
        saved_fleet(&path).await;
        let text = fs::read_to_string(&path).unwrap();
        let config = Config::builtin();
        let mut zero_interval: serde_json::Value = serde_json::from_str(&text).unwrap();
        zero_interval["fleet"]["sim"]["sample_interval_secs"] = 0.into();
        for damage in [
            text[..text.len() / 2].to_string(),
            "not json".to_string(),
            zero_interval.to_string(),
        ] {
            fs::write(&path, damage).unwrap();
            let err = SimProvider::restore(&config, &path).err().unwrap();
            assert!(err.contains(&path.display().to_string()), "{err}");
            assert!(err.contains("damaged"), "{err}");
        }
        fs::write(&path, r#"{"format":999,"fleet":{}}"#).unwrap();
        assert!(SimProvider::restore(&config, &path).unwrap().is_none());
    }
}
