//! CloudWatch metrics for the whole fleet in as few GetMetricData calls as the API allows (500
//! queries each), never one call per instance; and the datapoints turned into dake's series
//! and replication status. The planning and the mapping are pure and tested without a server.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_cloudwatch::primitives::DateTime as AwsDateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric as CwMetric, MetricDataQuery, MetricStat};

use super::clients::{Calls, Clients, sdk_error};
use super::reads;
use crate::config::AwsConfig;
use crate::domain::{Role, TimeSeries};
use crate::provider::ProviderError;

/// GetMetricData takes at most this many queries per call.
pub const QUERIES_PER_CALL: usize = 500;
/// CloudWatch's standard resolution: one datapoint per minute per metric.
pub const PERIOD_SECS: i64 = 60;
/// A host publishes once a minute and CloudWatch shows a minute once it is over, so the newest
/// datapoint of a healthy host is up to two periods old.
pub const PUBLISH_DELAY_SECS: i64 = 2 * PERIOD_SECS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    Cpu,
    LatencyP99,
    LatencyP50,
    Heartbeat,
    ReadOnly,
}

impl Metric {
    /// Namespace, metric name and statistic; `None` when the config leaves the name empty.
    fn source(self, cfg: &AwsConfig) -> Option<(&str, &str, &'static str)> {
        let (ns, name, stat) = match self {
            Metric::Cpu => ("AWS/EC2", "CPUUtilization", "Average"),
            Metric::LatencyP99 => (
                cfg.metrics_namespace.as_str(),
                cfg.latency_p99_metric.as_str(),
                "Maximum",
            ),
            Metric::LatencyP50 => (
                cfg.metrics_namespace.as_str(),
                cfg.latency_p50_metric.as_str(),
                "Average",
            ),
            Metric::Heartbeat => (
                cfg.metrics_namespace.as_str(),
                cfg.heartbeat_metric.as_str(),
                "Maximum",
            ),
            Metric::ReadOnly => (
                cfg.metrics_namespace.as_str(),
                cfg.read_only_metric.as_str(),
                "Maximum",
            ),
        };
        (!name.is_empty()).then_some((ns, name, stat))
    }

    fn for_role(role: Role) -> &'static [Metric] {
        match role {
            Role::Web => &[Metric::Cpu, Metric::LatencyP99, Metric::LatencyP50],
            Role::DbMaster | Role::DbReplica => &[Metric::Cpu, Metric::Heartbeat, Metric::ReadOnly],
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub instance_id: String,
    pub metric: Metric,
}

/// Every (instance, metric) the fleet needs, in a stable order; the database hosts' heartbeat
/// and read_only only when `replication` comes from the metrics.
pub fn plan(instances: &[(String, Role)], cfg: &AwsConfig, replication: bool) -> Vec<Query> {
    instances
        .iter()
        .flat_map(|(id, role)| {
            Metric::for_role(*role)
                .iter()
                .filter(|m| m.source(cfg).is_some())
                .filter(move |m| {
                    replication
                        || matches!(m, Metric::Cpu | Metric::LatencyP99 | Metric::LatencyP50)
                })
                .map(|&metric| Query {
                    instance_id: id.clone(),
                    metric,
                })
        })
        .collect()
}

/// Datapoints of one series: (epoch seconds of the period's start, value), oldest first.
pub type Points = Vec<(i64, f64)>;

/// The newest datapoints of every series, kept between metric refreshes.
pub type FleetPoints = HashMap<(String, Metric), Points>;

/// Fetches `queries` over the last `[aws] history` periods ending at `now`, 500 queries per
/// call.
pub async fn fetch(
    clients: &Clients,
    cfg: &AwsConfig,
    queries: Vec<Query>,
    now: i64,
) -> (Result<FleetPoints, ProviderError>, Calls) {
    let start = now - PERIOD_SECS * cfg.history as i64;
    // Each batch one GetMetricData (and its pages), the batches at once.
    let jobs: Vec<_> = queries
        .chunks(QUERIES_PER_CALL)
        .enumerate()
        .map(|(batch_no, batch)| {
            let by_id: BTreeMap<String, Query> = batch
                .iter()
                .enumerate()
                .map(|(n, q)| (format!("q{batch_no}_{n}"), q.clone()))
                .collect();
            let data_queries: Vec<MetricDataQuery> = by_id
                .iter()
                .filter_map(|(id, q)| query(id, q, cfg))
                .collect();
            let cloudwatch = clients.cloudwatch.clone();
            async move {
                let mut calls = Calls::default();
                let answer =
                    batch_points(&cloudwatch, &by_id, data_queries, start, now, &mut calls).await;
                (answer, calls)
            }
        })
        .collect();
    let (answer, calls) = reads::bounded(jobs, reads::CHUNKS_IN_FLIGHT).await;
    let answer = answer.map(|batches| {
        let mut out = FleetPoints::new();
        for batch in batches {
            for (key, points) in batch {
                out.entry(key).or_default().extend(points);
            }
        }
        for points in out.values_mut() {
            points.sort_by_key(|p| p.0);
            points.dedup_by_key(|p| p.0);
        }
        out
    });
    (answer, calls)
}

/// One batch's datapoints, every page of them.
async fn batch_points(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    by_id: &BTreeMap<String, Query>,
    data_queries: Vec<MetricDataQuery>,
    start: i64,
    now: i64,
    calls: &mut Calls,
) -> Result<FleetPoints, ProviderError> {
    let mut out = FleetPoints::new();
    let mut token: Option<String> = None;
    loop {
        calls.add("GetMetricData");
        let page = cloudwatch
            .get_metric_data()
            .set_metric_data_queries(Some(data_queries.clone()))
            .start_time(AwsDateTime::from_secs(start))
            .end_time(AwsDateTime::from_secs(now))
            .set_next_token(token.take())
            .send()
            .await
            .map_err(sdk_error)?;
        for result in page.metric_data_results() {
            let Some(q) = result.id().and_then(|id| by_id.get(id)) else {
                continue;
            };
            let points = out.entry((q.instance_id.clone(), q.metric)).or_default();
            points.extend(
                result
                    .timestamps()
                    .iter()
                    .map(|t| t.secs())
                    .zip(result.values().iter().copied()),
            );
        }
        token = page.next_token().map(String::from);
        if token.is_none() {
            return Ok(out);
        }
    }
}

fn query(id: &str, q: &Query, cfg: &AwsConfig) -> Option<MetricDataQuery> {
    let (namespace, name, stat) = q.metric.source(cfg)?;
    let metric = CwMetric::builder()
        .namespace(namespace)
        .metric_name(name)
        .dimensions(
            Dimension::builder()
                .name("InstanceId")
                .value(&q.instance_id)
                .build(),
        )
        .build();
    Some(
        MetricDataQuery::builder()
            .id(id)
            .metric_stat(
                MetricStat::builder()
                    .metric(metric)
                    .period(PERIOD_SECS as i32)
                    .stat(stat)
                    .build(),
            )
            .return_data(true)
            .build(),
    )
}

/// `points` on a one-per-period grid of `capacity` slots, NaN where a minute has no datapoint.
/// The grid ends at the newest datapoint while the host is publishing (so a minute CloudWatch
/// has not shown yet is not a gap), else at `now`, so silence shows as missing samples.
pub fn series(points: &[(i64, f64)], now: i64, capacity: usize) -> TimeSeries {
    let mut out = TimeSeries::new(capacity);
    let slot = |t: i64| t.div_euclid(PERIOD_SECS);
    let end = match points.last() {
        Some(&(t, _)) if now - t <= PUBLISH_DELAY_SECS => slot(t),
        _ => slot(now),
    };
    let first = end - out.capacity() as i64 + 1;
    let by_slot: HashMap<i64, f64> = points.iter().map(|&(t, v)| (slot(t), v)).collect();
    for s in first..=end {
        out.push(by_slot.get(&s).map_or(f32::NAN, |&v| v as f32));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn plan_asks_each_role_for_its_metrics_and_skips_empty_names() {
        let mut cfg = Config::builtin().aws;
        let fleet = vec![
            ("i-w".to_string(), Role::Web),
            ("i-m".to_string(), Role::DbMaster),
        ];
        let q = plan(&fleet, &cfg, true);
        assert_eq!(plan(&fleet, &cfg, false).len(), 4, "no replication metrics");
        assert_eq!(q.len(), 6);
        assert_eq!(q[1].metric, Metric::LatencyP99);
        assert_eq!(q[4].metric, Metric::Heartbeat);
        cfg.latency_p50_metric.clear();
        assert_eq!(plan(&fleet, &cfg, true).len(), 5);
    }

    #[test]
    fn series_aligns_to_minutes_and_marks_gaps() {
        let now = 10_000 * 60 + 30;
        let pts = vec![(9_997 * 60, 1.0), (9_999 * 60, 3.0)];
        let s = series(&pts, now, 4);
        let v: Vec<f32> = (0..4).rev().map(|a| s.back(a).unwrap()).collect();
        assert!(v[0].is_nan() && v[2].is_nan());
        assert_eq!((v[1], v[3]), (1.0, 3.0));
        // Silent for ten minutes: the newest samples are missing, not the old value.
        let silent = series(&pts, now + 600, 4);
        assert!(silent.latest().unwrap().is_nan());
    }
}
