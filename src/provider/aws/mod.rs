//! The real fleet through the AWS SDK. Discovery and health: the instances tagged
//! `dake:fleet=<name>` (DescribeInstances, 1,000 per page) and their status checks
//! (DescribeInstanceStatus, 100 ids per call). Side-effecting calls are refused with a reason
//! until they are implemented: nothing is ever half-done on a real fleet.

mod map;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::Filter;
use tokio::sync::OnceCell;

use super::call::{CallOutcome, ProviderCall, TAG_FLEET, TAG_RUN, TAG_STEP};
use super::{BoxFuture, Provider, ProviderError};
use crate::config::Config;
use crate::domain::FleetSnapshot;

/// A real fleet is asked less often than the simulator: EC2 status checks and CloudWatch
/// metrics change by the minute, and API calls are rate-limited per account.
pub const AWS_REFRESH: Duration = Duration::from_secs(10);
/// No single API call may take longer, retries included; a step never hangs on one.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(20);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(8);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The API's own maximum page size for DescribeInstances.
const INSTANCES_PER_PAGE: i32 = 1000;
/// DescribeInstanceStatus takes at most this many instance ids per call.
const STATUS_IDS_PER_CALL: usize = 100;

/// Connection settings from the command line; anything unset comes from the standard chain
/// (environment, profiles, SSO, instance role) and `AWS_ENDPOINT_URL_<SERVICE>`.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

pub struct AwsProvider {
    options: AwsOptions,
    fleet: String,
    target_group: String,
    history: usize,
    client: OnceCell<(Client, String)>,
    calls: AtomicU64,
}

impl AwsProvider {
    pub fn new(config: &Config, options: AwsOptions) -> AwsProvider {
        AwsProvider {
            options,
            fleet: config.fleet.name.clone(),
            target_group: config.fleet.target_group.clone(),
            history: config.sim.history,
            client: OnceCell::new(),
            calls: AtomicU64::new(0),
        }
    }

    /// API calls made so far (every page counts).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    async fn client(&self) -> Result<&(Client, String), ProviderError> {
        self.client
            .get_or_try_init(|| async {
                let mut loader = aws_config::defaults(BehaviorVersion::latest())
                    .retry_config(RetryConfig::standard())
                    .timeout_config(
                        TimeoutConfig::builder()
                            .operation_timeout(OPERATION_TIMEOUT)
                            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                            .connect_timeout(CONNECT_TIMEOUT)
                            .build(),
                    );
                if let Some(p) = &self.options.profile {
                    loader = loader.profile_name(p);
                }
                if let Some(r) = &self.options.region {
                    loader = loader.region(aws_config::Region::new(r.clone()));
                }
                if let Some(u) = &self.options.endpoint_url {
                    loader = loader.endpoint_url(u);
                }
                let shared = loader.load().await;
                // Guessing a region could act on the wrong fleet: refuse instead.
                let region = shared.region().map(|r| r.to_string()).ok_or_else(|| {
                    ProviderError::Other(
                        "no AWS region: pass --region or set AWS_REGION (or a region in your profile)".into(),
                    )
                })?;
                Ok((Client::new(&shared), region))
            })
            .await
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    async fn instances_with(
        &self,
        filters: Vec<Filter>,
    ) -> Result<Vec<aws_sdk_ec2::types::Instance>, ProviderError> {
        let (ec2, _) = self.client().await?;
        let mut pages = ec2
            .describe_instances()
            .set_filters(Some(filters))
            .max_results(INSTANCES_PER_PAGE)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            self.count();
            let page = page.map_err(sdk_error)?;
            out.extend(
                page.reservations()
                    .iter()
                    .flat_map(|r| r.instances().iter().cloned()),
            );
        }
        Ok(out)
    }
}

fn tag_filter(key: &str, value: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}

/// The SDK's error, said the way an operator reads it; throttling and timeouts keep their kind
/// so the screen can show them as stale data rather than as a failure.
fn sdk_error<E: ProvideErrorMetadata + std::fmt::Debug, R>(e: SdkError<E, R>) -> ProviderError {
    match &e {
        SdkError::TimeoutError(_) => ProviderError::Timeout(OPERATION_TIMEOUT),
        SdkError::DispatchFailure(d) => {
            ProviderError::Other(format!("cannot reach the AWS API: {d:?}"))
        }
        _ => {
            let code = e.code().unwrap_or("error").to_string();
            let message = e.message().unwrap_or("no message").to_string();
            if matches!(
                code.as_str(),
                "RequestLimitExceeded" | "Throttling" | "ThrottlingException"
            ) {
                ProviderError::Throttled(format!("{code}: {message}"))
            } else {
                ProviderError::Other(format!("{code}: {message}"))
            }
        }
    }
}

impl Provider for AwsProvider {
    fn name(&self) -> &'static str {
        "aws"
    }

    fn refresh_interval(&self) -> Duration {
        AWS_REFRESH
    }

    fn snapshot(&self) -> BoxFuture<'_, Result<FleetSnapshot, ProviderError>> {
        Box::pin(async move {
            let instances = self
                .instances_with(vec![tag_filter(TAG_FLEET, &self.fleet)])
                .await?;
            let (ec2, region) = self.client().await?;
            let ids: Vec<String> = instances
                .iter()
                .filter_map(|i| i.instance_id().map(String::from))
                .collect();
            let mut statuses = Vec::new();
            for chunk in ids.chunks(STATUS_IDS_PER_CALL) {
                self.count();
                let out = ec2
                    .describe_instance_status()
                    .set_instance_ids(Some(chunk.to_vec()))
                    .include_all_instances(true)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                statuses.extend(out.instance_statuses().iter().cloned());
            }
            Ok(map::snapshot(
                &self.fleet,
                region,
                &self.target_group,
                self.history,
                &instances,
                &statuses,
            ))
        })
    }

    fn execute(&self, call: ProviderCall) -> BoxFuture<'_, Result<CallOutcome, ProviderError>> {
        Box::pin(async move {
            Err(ProviderError::Refused(format!(
                "{} is not available on the AWS provider yet; nothing was done",
                call.operation()
            )))
        })
    }

    fn find_created(
        &self,
        run_id: &str,
        step: usize,
    ) -> BoxFuture<'_, Result<Vec<String>, ProviderError>> {
        let filters = vec![
            tag_filter(TAG_FLEET, &self.fleet),
            tag_filter(TAG_RUN, run_id),
            tag_filter(TAG_STEP, &step.to_string()),
        ];
        Box::pin(async move {
            let found = self.instances_with(filters).await?;
            Ok(found
                .iter()
                .filter(|i| {
                    !matches!(
                        i.state().and_then(|s| s.name()),
                        Some(aws_sdk_ec2::types::InstanceStateName::Terminated)
                    )
                })
                .filter_map(|i| i.instance_id().map(String::from))
                .collect())
        })
    }
}
