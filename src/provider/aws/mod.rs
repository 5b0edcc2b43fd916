//! The real fleet through the AWS SDK. One refresh reads the instances tagged
//! `dake:fleet=<name>` (DescribeInstances, 1,000 per page), their status checks
//! (DescribeInstanceStatus, 100 ids per call), the target group's health, the database
//! endpoint (Route53 or SSM), the fleet's free volumes and, once a minute, every metric in
//! GetMetricData batches of 500. Playbook calls are in `actions`.

mod actions;
mod clients;
mod endpoint;
mod heartbeat;
mod host;
pub mod iam;
mod launch;
mod lease;
pub mod logs;
mod map;
mod metrics;
mod reads;

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{Filter, VolumeState as Ec2VolumeState};
use tokio::sync::OnceCell;

use super::{BoxFuture, Preflight, Provider, ProviderError};
use crate::config::{AwsConfig, Config, DbSource, EndpointKind};
use crate::domain::call::{CallKind, CallOutcome, ProviderCall, TAG_FLEET, TAG_RUN, TAG_STEP};
use crate::domain::{FleetSnapshot, FreeVolume, TargetHealth, VolumeState};
use crate::provider::mysql::DbReader;
use clients::{Calls, Clients, sdk_error};

/// The API's own maximum page size for DescribeInstances.
const INSTANCES_PER_PAGE: i32 = 1000;
/// DescribeInstanceStatus takes at most this many instance ids per call.
const STATUS_IDS_PER_CALL: usize = 100;
/// How long an endpoint switch may wait for its record change to be INSYNC.
const INSYNC_WAIT: Duration = Duration::from_secs(300);

/// Connection settings from the command line; anything unset comes from the standard chain
/// (environment, profiles, SSO, instance role) and `AWS_ENDPOINT_URL_<SERVICE>`.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

#[derive(Default)]
struct MetricsCache {
    fetched_at: Option<Instant>,
    /// The instances the points were fetched for: a newcomer triggers a fetch at once.
    instances: BTreeSet<String>,
    points: metrics::FleetPoints,
}

pub struct AwsProvider {
    options: AwsOptions,
    fleet: String,
    target_group: String,
    db_endpoint: String,
    aws: AwsConfig,
    clients: OnceCell<Clients>,
    target_group_arn: OnceCell<String>,
    /// The target group's deregistration delay, read once (`None` when it could not be).
    deregistration_delay: OnceCell<Option<u32>>,
    /// Leases this process holds (SSM parameter name → run id), renewed with every refresh.
    leases: Mutex<std::collections::BTreeMap<String, String>>,
    /// Lease calls of this process one at a time: a renewal that read the lease before its
    /// release must not write it back after.
    lease_ops: tokio::sync::Mutex<()>,
    metrics: Mutex<MetricsCache>,
    /// The database hosts read over the MySQL protocol (`[database] source = "mysql"`);
    /// `None` reads their heartbeat from CloudWatch.
    database: Option<DbReader>,
}

impl AwsProvider {
    /// Fails when `[database] source = "mysql"` and its credentials cannot be read.
    pub fn new(config: &Config, options: AwsOptions) -> Result<AwsProvider, String> {
        let database = match config.database.source {
            DbSource::Metrics => None,
            DbSource::Mysql => Some(DbReader::new(&config.database).map_err(|e| e.to_string())?),
        };
        Ok(AwsProvider {
            options,
            fleet: config.fleet.name.clone(),
            target_group: config.fleet.target_group.clone(),
            db_endpoint: config.fleet.db_endpoint.clone(),
            aws: config.aws.clone(),
            clients: OnceCell::new(),
            target_group_arn: OnceCell::new(),
            deregistration_delay: OnceCell::new(),
            leases: Mutex::new(Default::default()),
            lease_ops: tokio::sync::Mutex::new(()),
            metrics: Mutex::new(MetricsCache::default()),
            database,
        })
    }

    /// Three API calls' worth of `[aws] call_timeout_secs`, retries included.
    fn three_calls(&self) -> Duration {
        Duration::from_secs(3 * self.aws.call_timeout_secs)
    }

    async fn clients(&self) -> Result<&Clients, ProviderError> {
        self.clients
            .get_or_try_init(|| Clients::load(&self.options, &self.aws))
            .await
    }

    async fn instances_with(
        &self,
        filters: Vec<Filter>,
        calls: &mut Calls,
    ) -> Result<Vec<aws_sdk_ec2::types::Instance>, ProviderError> {
        let c = self.clients().await?;
        let mut pages = c
            .ec2
            .describe_instances()
            .set_filters(Some(filters))
            .max_results(INSTANCES_PER_PAGE)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            calls.add("DescribeInstances");
            let page = page.map_err(sdk_error)?;
            out.extend(
                page.reservations()
                    .iter()
                    .flat_map(|r| r.instances().iter().cloned()),
            );
        }
        Ok(out)
    }

    /// `[fleet] target_group` as an ARN: used as is, or looked up once by name.
    async fn target_group_arn(&self, calls: &mut Calls) -> Result<&str, ProviderError> {
        if self.target_group.starts_with("arn:") {
            return Ok(&self.target_group);
        }
        let c = self.clients().await?;
        self.target_group_arn
            .get_or_try_init(|| async {
                calls.add("DescribeTargetGroups");
                let out = c
                    .elb
                    .describe_target_groups()
                    .names(&self.target_group)
                    .send()
                    .await
                    .map_err(|e| {
                        ProviderError::Other(format!(
                            "target group `{}`: {} (set [fleet] target_group to its name or ARN)",
                            self.target_group,
                            sdk_error(e)
                        ))
                    })?;
                out.target_groups()
                    .first()
                    .and_then(|g| g.target_group_arn())
                    .map(String::from)
                    .ok_or_else(|| {
                        ProviderError::Other(format!(
                            "no target group named `{}`",
                            self.target_group
                        ))
                    })
            })
            .await
            .map(String::as_str)
    }

    async fn target_health(
        &self,
        calls: &mut Calls,
    ) -> Result<HashMap<String, TargetHealth>, ProviderError> {
        if self.target_group.is_empty() {
            return Ok(HashMap::new());
        }
        let arn = self.target_group_arn(calls).await?.to_string();
        let c = self.clients().await?;
        calls.add("DescribeTargetHealth");
        let out = c
            .elb
            .describe_target_health()
            .target_group_arn(arn)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out
            .target_health_descriptions()
            .iter()
            .filter_map(|d| {
                let id = d.target()?.id()?.to_string();
                let state = d.target_health().and_then(|h| h.state());
                Some((id, map::target_health(state)?))
            })
            .collect())
    }

    /// The endpoint's name and value, or `None` when it is not configured or not there.
    async fn endpoint(&self, calls: &mut Calls) -> Result<Option<(String, String)>, ProviderError> {
        let c = self.clients().await?;
        let name = self.db_endpoint.clone();
        let value = match self.aws.db_endpoint_kind {
            EndpointKind::Route53 if self.aws.hosted_zone_id.is_empty() => return Ok(None),
            EndpointKind::Route53 => {
                clients::find_record(c, &self.aws.hosted_zone_id, &name, calls)
                    .await?
                    .and_then(|r| r.resource_records().first().map(|v| v.value().to_string()))
            }
            EndpointKind::Ssm => clients::parameter(c, &name, calls).await?,
        };
        Ok(value.map(|v| (name, v)))
    }

    /// Fleet volumes attached to nothing (detached from a master, or not yet attached).
    async fn free_volumes(&self, calls: &mut Calls) -> Result<Vec<FreeVolume>, ProviderError> {
        let c = self.clients().await?;
        let mut pages = c
            .ec2
            .describe_volumes()
            .filters(tag_filter(TAG_FLEET, &self.fleet))
            .filters(
                Filter::builder()
                    .name("status")
                    .values("available")
                    .values("creating")
                    .build(),
            )
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            calls.add("DescribeVolumes");
            let page = page.map_err(sdk_error)?;
            out.extend(page.volumes().iter().filter_map(|v| {
                Some(FreeVolume {
                    id: v.volume_id()?.to_string(),
                    az: v.availability_zone().unwrap_or("").to_string(),
                    state: match v.state()? {
                        Ec2VolumeState::Creating => VolumeState::Creating,
                        Ec2VolumeState::Available => VolumeState::Available,
                        _ => return None,
                    },
                    size_gib: v.size().unwrap_or(0).max(0) as u32,
                    // A fleet volume dake did not make could hold anything: assume the worst.
                    sole_copy: true,
                })
            }));
        }
        Ok(out)
    }

    /// The cached datapoints, fetched again when a minute has passed or an instance is new.
    async fn fleet_points(
        &self,
        fleet: &[(String, crate::domain::Role)],
        now: i64,
    ) -> (Result<metrics::FleetPoints, ProviderError>, Calls) {
        let ids: BTreeSet<String> = fleet.iter().map(|(id, _)| id.clone()).collect();
        let cached = self.metrics.lock().map_err(|_| poisoned()).map(|cache| {
            let fresh = cache
                .fetched_at
                .is_some_and(|t| t.elapsed() < Duration::from_secs(self.aws.metrics_refresh_secs));
            (fresh && ids.is_subset(&cache.instances)).then(|| cache.points.clone())
        });
        match cached {
            Err(e) => return (Err(e), Calls::default()),
            Ok(Some(points)) => return (Ok(points), Calls::default()),
            Ok(None) => {}
        }
        let queries = metrics::plan(fleet, &self.aws, self.database.is_none());
        let c = match self.clients().await {
            Ok(c) => c,
            Err(e) => return (Err(e), Calls::default()),
        };
        let (points, calls) = metrics::fetch(c, &self.aws, queries, now).await;
        let Ok(points) = points else {
            return (points, calls);
        };
        match self.metrics.lock() {
            Ok(mut cache) => {
                *cache = MetricsCache {
                    fetched_at: Some(Instant::now()),
                    instances: ids,
                    points: points.clone(),
                };
                (Ok(points), calls)
            }
            Err(_) => (Err(poisoned()), calls),
        }
    }
}

fn poisoned() -> ProviderError {
    ProviderError::Other("metrics cache poisoned by an earlier panic".into())
}

fn tag_filter(key: &str, value: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}

impl Provider for AwsProvider {
    fn name(&self) -> &'static str {
        "aws"
    }

    fn is_drill(&self) -> bool {
        false
    }

    /// `[aws] refresh_secs`: a real fleet is asked less often than the simulator, since EC2
    /// status checks change by the minute and API calls are rate-limited per account.
    fn refresh_interval(&self) -> Duration {
        Duration::from_secs(self.aws.refresh_secs)
    }

    fn snapshot(&self) -> BoxFuture<'_, Result<FleetSnapshot, ProviderError>> {
        Box::pin(async move {
            let mut calls = Calls::default();
            let now = chrono::Utc::now().timestamp();
            let instances = self
                .instances_with(vec![tag_filter(TAG_FLEET, &self.fleet)], &mut calls)
                .await?;
            let c = self.clients().await?;
            let ids: Vec<String> = instances
                .iter()
                .filter_map(|i| i.instance_id().map(String::from))
                .collect();
            let members: Vec<(String, crate::domain::Role)> = instances
                .iter()
                .filter_map(|i| Some((i.instance_id()?.to_string(), map::role_of(i)?)))
                .collect();
            // Independent of one another: read at once, each failing on its own.
            // A run's lease is renewed alongside, not before, the reads.
            let (statuses, targets, endpoint, free_volumes, points, ()) = tokio::join!(
                reads::statuses(c, &ids),
                async {
                    let mut k = Calls::default();
                    (self.target_health(&mut k).await, k)
                },
                async {
                    let mut k = Calls::default();
                    (self.endpoint(&mut k).await, k)
                },
                async {
                    let mut k = Calls::default();
                    (self.free_volumes(&mut k).await, k)
                },
                self.fleet_points(&members, now),
                self.renew_leases(c),
            );
            let mut unread = std::collections::BTreeMap::new();
            let mut read = reads::Read {
                calls: &mut calls,
                unread: &mut unread,
            };
            let statuses = read.part("status checks", statuses);
            let targets = read.part("target health", targets);
            let endpoint = read.part("database endpoint", endpoint);
            let free_volumes = read.part("free volumes", free_volumes);
            let points = read.part("metrics", points);
            let mut snap = map::snapshot(map::Observed {
                fleet: &self.fleet,
                region: &c.region,
                target_group: &self.target_group,
                history: self.aws.history,
                now,
                instances: &instances,
                statuses: &statuses,
                targets: &targets,
                endpoint,
                free_volumes,
                points: &points,
            });
            snap.api_calls = calls.into_map();
            snap.unread = unread;
            snap.deregistration_delay_secs = self.deregistration_delay().await;
            snap.db_data_latency_secs = match &self.database {
                Some(_) => self.aws.refresh_secs as u32,
                None => {
                    (metrics::PUBLISH_DELAY_SECS
                        + metrics::PERIOD_SECS
                        + self.aws.metrics_refresh_secs as i64) as u32
                }
            };
            if let Some(db) = &self.database {
                db.apply(&mut snap, self.aws.history).await;
            }
            Ok(snap)
        })
    }

    fn execute(&self, call: ProviderCall) -> BoxFuture<'_, Result<CallOutcome, ProviderError>> {
        Box::pin(async move { actions::execute(self, call).await })
    }

    /// A refresh is a few sequential calls (more on a large fleet), each bounded on its own.
    fn snapshot_timeout(&self) -> Duration {
        self.three_calls()
    }

    /// The blast-radius check, the dry run and the call; a host command also waits for SSM.
    fn call_timeout(&self, call: &ProviderCall) -> Duration {
        // A host command waits for SSM; SQL may wait for a relay log to be applied.
        if call.kind() == CallKind::SetDbEndpoint {
            // A record change is done when it is INSYNC: Route 53 says a minute or so.
            return self.three_calls() + INSYNC_WAIT;
        }
        if call.kind().runs_on_host() || call.kind() == CallKind::Sql {
            // Beyond the run's own wait and its cancellation: the host step cancels first.
            self.three_calls()
                + Duration::from_secs(
                    self.aws.host_command_timeout_secs + 2 * host::HOST_WAIT_MARGIN_SECS + 120,
                )
        } else {
            self.three_calls()
        }
    }

    fn preflight(&self, call: ProviderCall) -> BoxFuture<'_, Result<Preflight, ProviderError>> {
        Box::pin(async move { actions::preflight(self, call).await })
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
            let found = self.instances_with(filters, &mut Calls::default()).await?;
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
