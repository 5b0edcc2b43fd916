//! The drill's leases beside the saved fleet: a file per lease created exclusively, so two dake
//! processes on one machine race for a tier as two consoles race for the SSM parameter on AWS.
//! On the wall clock: two processes' virtual clocks differ. A fleet that is not saved (a look,
//! a test in process) keeps its leases itself.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;

use chrono::Utc;

use super::SimProvider;
use crate::domain::call::{CallOutcome, ProviderCall};
use crate::domain::lease::{FailoverRecord, LeaseHolder, Request, Take, failover_key};
use crate::provider::ProviderError;

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
        let opened = if exclusive {
            OpenOptions::new().write(true).create_new(true).open(&path)
        } else {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
        };
        match opened {
            Ok(mut f) => f
                .write_all(&text)
                .and_then(|()| f.sync_all())
                .map(|()| true)
                .map_err(|e| ProviderError::Other(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(ProviderError::Other(format!("{}: {e}", path.display()))),
        }
    }

    fn with_leases<T>(&self, f: impl FnOnce(&mut Leases) -> T) -> T {
        let mut guard = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
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

    fn take(&self, request: &Request<'_>) -> Result<CallOutcome, ProviderError> {
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
                self.with_leases(|l| l.held.insert(key.to_string(), mine.run_id.clone()));
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
        self.with_leases(|l| l.held.remove(key));
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
        let held: Vec<(String, String)> =
            self.with_leases(|l| l.held.iter().map(|(k, r)| (k.clone(), r.clone())).collect());
        for (key, run_id) in held {
            match self.read_lease::<LeaseHolder>(&key) {
                Ok(Some(mut h)) if h.run_id == run_id => {
                    h.renewed = Utc::now();
                    if let Err(e) = self.write_lease(&key, &h, false) {
                        tracing::warn!("renewing lease {key}: {e}");
                    }
                }
                _ => {
                    self.with_leases(|l| l.held.remove(&key));
                }
            }
        }
    }
}
