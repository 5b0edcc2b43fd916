//! What the fleet's hosts publish to CloudWatch (ministack), as the README's cron line would:
//! a minute-by-minute history for a seeded fleet, and a host agent that keeps publishing for
//! whatever runs in the fleet while a playbook changes it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatch::primitives::DateTime as CwDateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};

use crate::aws_fleet::{Aws, FLEET, Seeded, runtime};

/// The wall clock in epoch seconds: what a host stamps on the metrics it publishes.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// What one host publishes each minute.
#[derive(Debug, Clone, Copy)]
pub enum Host {
    Web { p99_ms: f64 },
    Db { lag_secs: f64, read_only: bool },
}

/// Publishes `minutes` of one host's metrics, one datapoint a minute ending `ago_secs` before
/// now, as its cron script would have.
pub async fn publish(aws: &Aws, id: &str, host: Host, minutes: i64, ago_secs: i64) {
    let now = now_secs() - ago_secs;
    let dim = Dimension::builder().name("InstanceId").value(id).build();
    let datum = |name: &str, value: f64, t: i64| {
        MetricDatum::builder()
            .metric_name(name)
            .dimensions(dim.clone())
            .value(value)
            .timestamp(CwDateTime::from_secs(t))
            .build()
    };
    let mut own = Vec::new();
    let mut cpu = Vec::new();
    for k in 0..minutes {
        let t = now - k * 60;
        cpu.push(datum("CPUUtilization", 20.0, t));
        match host {
            Host::Web { p99_ms } => {
                own.push(datum("LatencyP99Ms", p99_ms, t));
                own.push(datum("LatencyP50Ms", p99_ms / 4.0, t));
            }
            Host::Db {
                lag_secs,
                read_only,
            } => {
                own.push(datum("ReplicaLagSeconds", lag_secs, t));
                own.push(datum("MysqlReadOnly", if read_only { 1.0 } else { 0.0 }, t));
            }
        }
    }
    for (namespace, data) in [("AWS/EC2", cpu), ("Dake", own)] {
        aws.cloudwatch
            .put_metric_data()
            .namespace(namespace)
            .set_metric_data(Some(data))
            .send()
            .await
            .unwrap();
    }
}

/// The seeded fleet's hosts publishing as they would while healthy, except `slow_web` (ten
/// times its peers' latency) and a silent master when `master_down`.
pub async fn publish_fleet(aws: &Aws, seeded: &Seeded, slow_web: Option<&str>, master_down: bool) {
    for (name, id) in &seeded.ids {
        let host = match name.as_str() {
            n if n.starts_with("web") => Host::Web {
                p99_ms: if Some(n) == slow_web { 1500.0 } else { 150.0 },
            },
            "db-master" => Host::Db {
                lag_secs: 0.0,
                read_only: false,
            },
            n => Host::Db {
                lag_secs: if n == "db-replica-1" { 1.0 } else { 4.0 },
                read_only: true,
            },
        };
        // A dead master stopped publishing ten minutes ago.
        let ago = if master_down && name == "db-master" {
            600
        } else {
            0
        };
        publish(aws, id, host, 10, ago).await;
    }
}

/// How often the agent's hosts publish: far more often than real ones (once a minute), so a
/// change of role shows within seconds once CloudWatch's minute turns.
const AGENT_PERIOD: Duration = Duration::from_secs(1);

/// Plays every running host of the fleet: web servers publish their latency (`slow` ten times
/// its peers'), database hosts their lag and read_only as their `dake:role` tag says (a master
/// writable at lag 0, a replica read-only at 1 s or its entry in `lag`), except the `silent`
/// ones (a dead master).
/// Instances dake launches publish too, as the image's cron line would. Stops when dropped.
pub struct HostAgent {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HostAgent {
    pub fn start(
        slow: Option<String>,
        silent: BTreeSet<String>,
        lag: BTreeMap<String, f64>,
    ) -> HostAgent {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let rt = runtime();
            let aws = rt.block_on(Aws::connect());
            while !flag.load(Ordering::Relaxed) {
                rt.block_on(publish_running(&aws, slow.as_deref(), &silent, &lag));
                std::thread::sleep(AGENT_PERIOD);
            }
        });
        HostAgent {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for HostAgent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn publish_running(
    aws: &Aws,
    slow: Option<&str>,
    silent: &BTreeSet<String>,
    lag: &BTreeMap<String, f64>,
) {
    for (id, (state, tags)) in aws.fleet(FLEET).await {
        if state != "running" || silent.contains(&id) {
            continue;
        }
        let host = match tags.get("dake:role").map(String::as_str) {
            Some("web") => Host::Web {
                p99_ms: if Some(id.as_str()) == slow {
                    1500.0
                } else {
                    150.0
                },
            },
            Some("db-master") => Host::Db {
                lag_secs: 0.0,
                read_only: false,
            },
            Some("db-replica") => Host::Db {
                lag_secs: lag.get(&id).copied().unwrap_or(1.0),
                read_only: true,
            },
            _ => continue,
        };
        publish(aws, &id, host, 1, 0).await;
    }
}
