//! The drill's leases beside the saved fleet: a file per lease created exclusively, so two dake
//! processes on one machine race for a tier as two consoles race for the SSM parameter on AWS.
//! On the wall clock: two processes' virtual clocks differ. A fleet that is not saved (a look,
//! a test in process) keeps its leases itself.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Utc;

use super::SimProvider;
use crate::domain::call::{CallOutcome, ProviderCall};
use crate::domain::lease::{FailoverRecord, LeaseHolder, Request, Take, failover_key};
use crate::provider::ProviderError;

/// Lease files this process has written aside: each gets a name of its own.
static WRITES: AtomicU64 = AtomicU64::new(0);

/// The leases this process holds, to renew: lease key → run id.
#[derive(Debug, Default)]
pub(super) struct Leases {
    pub(super) held: BTreeMap<String, String>,
}

fn outcome() -> CallOutcome {
    CallOutcome {
        created: Vec::new(),
        request_id: "sim-lease".into(),
        output: String::new(),
    }
}

impl SimProvider {
    fn lease_file(&self, key: &str) -> Result<PathBuf, ProviderError> {
        let dir = self
            .state_file
            .as_ref()
            .and_then(|f| f.parent())
            .ok_or_else(|| ProviderError::Other("the drill fleet is not saved".into()))?;
        Ok(dir.join(format!("lease-{}.json", key.replace('/', "-"))))
    }

    /// A lease, or the record of a tier's last failover, as dake wrote it.
    fn read_lease<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, ProviderError> {
        let path = self.lease_file(key)?;
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
                ProviderError::Refused(format!(
                    "{}: damaged ({e}); remove it once no run holds the tier",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ProviderError::Other(format!("{}: {e}", path.display()))),
        }
    }

    /// Writes a lease or a record: only if there is none when `exclusive`, else over the one
    /// there.
    fn write_lease(
        &self,
        key: &str,
        holder: &impl serde::Serialize,
        exclusive: bool,
    ) -> Result<bool, ProviderError> {
        let path = self.lease_file(key)?;
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)
                .map_err(|e| ProviderError::Other(format!("{}: {e}", dir.display())))?;
        }
        let text = serde_json::to_vec(holder).map_err(|e| ProviderError::Other(e.to_string()))?;
        let failed = |e: io::Error| ProviderError::Other(format!("{}: {e}", path.display()));
        // Whole or not at all: the lease is written aside, then linked in (which fails when
        // one is there: the exclusive create) or renamed over the old one. Another process
        // never reads a lease half written.
        let aside = path.with_extension(format!(
            "{}-{}.tmp",
            std::process::id(),
            WRITES.fetch_add(1, Ordering::Relaxed)
        ));
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&aside)
            .and_then(|mut f| f.write_all(&text).and_then(|()| f.sync_all()));
        if let Err(e) = written {
            let _ = fs::remove_file(&aside);
            return Err(failed(e));
        }
        let placed = if exclusive {
            let linked = fs::hard_link(&aside, &path);
            let _ = fs::remove_file(&aside);
            linked
        } else {
            fs::rename(&aside, &path)
        };
        match placed {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => {
                let _ = fs::remove_file(&aside);
                Err(failed(e))
            }
        }
    }

    /// Answers a lease call beside the saved fleet; `None` for any other call, and for every
    /// call when the fleet is not saved (it keeps its leases itself then).
    pub(super) fn lease(&self, call: &ProviderCall) -> Option<Result<CallOutcome, ProviderError>> {
        self.state_file.as_ref()?;
        if let Some(request) = Request::of(call, Utc::now()) {
            return Some(self.take(&request));
        }
        match call {
            ProviderCall::ReleaseLease {
                key,
                run_id,
                failover,
            } => Some(self.release(key, run_id, failover.as_ref())),
            _ => None,
        }
    }

    /// Lease operations of this process one at a time: a renewal that read the lease before
    /// its release must not write it back after.
    fn ops(&self) -> std::sync::MutexGuard<'_, Leases> {
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take(&self, request: &Request<'_>) -> Result<CallOutcome, ProviderError> {
        let mut held = self.ops();
        let (key, mine) = (request.key, &request.holder);
        let last: Option<FailoverRecord> = self.read_lease(&failover_key(key))?;
        for _ in 0..2 {
            let current: Option<LeaseHolder> = self.read_lease(key)?;
            let written = match request.decide(current.as_ref(), last.as_ref()) {
                Err(why) => return Err(ProviderError::Refused(why)),
                Ok(Take::Create) => self.write_lease(key, mine, true)?,
                Ok(Take::Ours) | Ok(Take::TakeOver) => self.write_lease(key, mine, false)?,
            };
            if written {
                held.held.insert(key.to_string(), mine.run_id.clone());
                return Ok(outcome());
            }
            // Another process created it between the read and the write: read it again.
        }
        Err(ProviderError::Refused(format!(
            "lease {key}: another process keeps taking it"
        )))
    }

    fn release(
        &self,
        key: &str,
        run_id: &str,
        failover: Option<&FailoverRecord>,
    ) -> Result<CallOutcome, ProviderError> {
        let mut held = self.ops();
        held.held.remove(key);
        // The record first: were the lease gone before it, another process could fail the
        // tier over again in between.
        if let Some(record) = failover {
            self.write_lease(&failover_key(key), record, false)?;
        }
        let current: Option<LeaseHolder> = self.read_lease(key)?;
        if current.is_some_and(|h| h.run_id == run_id) {
            let path = self.lease_file(key)?;
            fs::remove_file(&path)
                .map_err(|e| ProviderError::Other(format!("{}: {e}", path.display())))?;
        }
        Ok(outcome())
    }

    /// Renews every lease this process holds and still holds; one taken over meanwhile is let
    /// go. Called with every snapshot: a run that stops refreshing stops renewing.
    pub(super) fn renew_leases(&self) {
        let mut held = self.ops();
        let ours: Vec<(String, String)> = held
            .held
            .iter()
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect();
        for (key, run_id) in ours {
            match self.read_lease::<LeaseHolder>(&key) {
                Ok(Some(mut h)) if h.run_id == run_id => {
                    h.renewed = Utc::now();
                    if let Err(e) = self.write_lease(&key, &h, false) {
                        tracing::warn!("renewing lease {key}: {e}");
                    }
                }
                _ => {
                    held.held.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn take(run: &str) -> ProviderCall {
        ProviderCall::TakeLease {
            key: "drill/db".into(),
            run_id: run.into(),
            operator: format!("op@{run}"),
            take_over: None,
            stale_secs: 120,
            anti_flap_secs: 1800,
            flapping_allowed: false,
        }
    }

    /// Only whole leases are ever in the directory: another process reads a holder or nothing.
    #[test]
    fn a_lease_is_written_whole_and_leaves_nothing_aside() {
        let dir = tempfile::tempdir().unwrap();
        let epoch = chrono::DateTime::UNIX_EPOCH + chrono::Duration::days(20_000);
        let sim = SimProvider::new(&Config::builtin(), epoch, 0.0)
            .with_state_file(dir.path().join("fleet.json"));
        let files = || -> Vec<String> {
            let mut names: Vec<String> = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        sim.lease(&take("run-a")).unwrap().unwrap();
        assert_eq!(files(), ["lease-drill-db.json"]);
        let err = sim.lease(&take("run-b")).unwrap().unwrap_err().to_string();
        assert!(err.contains("held by run run-a"), "{err}");
        sim.renew_leases();
        assert_eq!(files(), ["lease-drill-db.json"], "renewed in place");
        let release = ProviderCall::ReleaseLease {
            key: "drill/db".into(),
            run_id: "run-a".into(),
            failover: None,
        };
        sim.lease(&release).unwrap().unwrap();
        assert!(files().is_empty(), "{:?}", files());
        // A renewal after the release (the next refresh) writes nothing back.
        sim.renew_leases();
        assert!(files().is_empty(), "{:?}", files());
    }
}
