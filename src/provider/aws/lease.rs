//! Leases as SSM parameters under `[aws] lease_prefix`: created without overwrite, which SSM
//! does atomically, so of two consoles racing for a tier exactly one gets it.

use aws_sdk_ssm::types::ParameterType;
use chrono::Utc;

use super::AwsProvider;
use super::actions::Execution;
use super::clients::{Calls, Clients, error_code, parameter, sdk_error};
use crate::domain::call::ProviderCall;
use crate::domain::lease::{FailoverRecord, LeaseHolder, Request, Take, failover_key};
use crate::provider::ProviderError;

impl AwsProvider {
    fn lease_name(&self, key: &str) -> String {
        format!("{}/{key}", self.aws.lease_prefix.trim_end_matches('/'))
    }

    /// A lease, or the record of a tier's last failover, as dake wrote it.
    async fn read_record<T: serde::de::DeserializeOwned>(
        &self,
        c: &Clients,
        name: &str,
    ) -> Result<Option<T>, ProviderError> {
        let Some(text) = parameter(c, name, &mut Calls::default()).await? else {
            return Ok(None);
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            ProviderError::Refused(format!(
                "SSM parameter {name} was not written by dake ({e}); delete it once no run holds the tier"
            ))
        })
    }

    async fn read_lease(
        &self,
        c: &Clients,
        name: &str,
    ) -> Result<Option<LeaseHolder>, ProviderError> {
        self.read_record(c, name).await
    }

    /// Puts a lease or a record: only if there is none without `overwrite`. `false` when one
    /// appeared.
    async fn put_lease(
        &self,
        c: &Clients,
        name: &str,
        record: &impl serde::Serialize,
        overwrite: bool,
    ) -> Result<bool, ProviderError> {
        let value =
            serde_json::to_string(record).map_err(|e| ProviderError::Other(e.to_string()))?;
        match c
            .ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(ParameterType::String)
            .overwrite(overwrite)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if error_code(&e) == Some("ParameterAlreadyExists") => Ok(false),
            Err(e) => Err(sdk_error(e)),
        }
    }

    pub(super) async fn take_lease(
        &self,
        c: &Clients,
        request: &Request<'_>,
    ) -> Result<Option<String>, ProviderError> {
        let _one_at_a_time = self.lease_ops.lock().await;
        let name = self.lease_name(request.key);
        let mine = &request.holder;
        let last: Option<FailoverRecord> = self
            .read_record(c, &self.lease_name(&failover_key(request.key)))
            .await?;
        for _ in 0..2 {
            let current = self.read_lease(c, &name).await?;
            let written = match request.decide(current.as_ref(), last.as_ref()) {
                Err(why) => return Err(ProviderError::Refused(why)),
                Ok(Take::Create) => self.put_lease(c, &name, mine, false).await?,
                Ok(Take::Ours | Take::TakeOver) => self.put_lease(c, &name, mine, true).await?,
            };
            if written {
                if let Ok(mut held) = self.leases.lock() {
                    held.insert(name.clone(), mine.run_id.clone());
                }
                return Ok(Some(name));
            }
        }
        Err(ProviderError::Refused(format!(
            "lease {name}: another console keeps taking it"
        )))
    }

    pub(super) async fn release_lease(
        &self,
        c: &Clients,
        key: &str,
        run_id: &str,
        failover: Option<&FailoverRecord>,
    ) -> Result<Option<String>, ProviderError> {
        let _one_at_a_time = self.lease_ops.lock().await;
        let name = self.lease_name(key);
        if let Ok(mut held) = self.leases.lock() {
            held.remove(&name);
        }
        // The record first: were the lease gone before it, another console could fail the tier
        // over again in between.
        if let Some(record) = failover {
            self.put_lease(c, &self.lease_name(&failover_key(key)), record, true)
                .await?;
        }
        if self
            .read_lease(c, &name)
            .await?
            .is_some_and(|h| h.run_id == run_id)
        {
            c.ssm
                .delete_parameter()
                .name(&name)
                .send()
                .await
                .map_err(sdk_error)?;
        }
        Ok(None)
    }

    /// Renews the leases this process holds and still holds; with every refresh.
    pub(super) async fn renew_leases(&self, c: &Clients) {
        let _one_at_a_time = self.lease_ops.lock().await;
        let held: Vec<(String, String)> = match self.leases.lock() {
            Ok(h) => h.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(_) => return,
        };
        for (name, run_id) in held {
            match self.read_lease(c, &name).await {
                Ok(Some(mut h)) if h.run_id == run_id => {
                    h.renewed = Utc::now();
                    if let Err(e) = self.put_lease(c, &name, &h, true).await {
                        tracing::warn!("renewing lease {name}: {e}");
                    }
                }
                Ok(_) => {
                    if let Ok(mut held) = self.leases.lock() {
                        held.remove(&name);
                    }
                }
                Err(e) => tracing::warn!("reading lease {name}: {e}"),
            }
        }
    }
}

/// Takes or gives back a tier's lease; nothing when only checked.
pub(super) async fn lease_call(
    p: &AwsProvider,
    c: &Clients,
    call: &ProviderCall,
    execution: Execution,
) -> Result<Option<String>, ProviderError> {
    if execution == Execution::DryRunOnly {
        return Ok(None);
    }
    if let Some(request) = Request::of(call, Utc::now()) {
        return p.take_lease(c, &request).await;
    }
    match call {
        ProviderCall::ReleaseLease {
            key,
            run_id,
            failover,
        } => p.release_lease(c, key, run_id, failover.as_ref()).await,
        _ => Ok(None),
    }
}
