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

/// How long the master of `publish_fleet(.., master_down)` has been dead: it last wrote (and
/// published) its heartbeat this long before the fleet's history ends.
const MASTER_DEAD_FOR_SECS: i64 = 600;

/// What one host publishes each minute.
#[derive(Debug, Clone, Copy)]
pub enum Host {
    Web {
        p99_ms: f64,
    },
    /// A database host publishes the newest heartbeat it holds: `lag_secs` before the master's
    /// newest beat, and the master writes no beat after `master_died_at`.
    Db {
        lag_secs: f64,
        read_only: bool,
        master_died_at: Option<i64>,
    },
}

/// Publishes `minutes` of one host's metrics, one datapoint a minute ending at `last_at`
/// (epoch seconds), as its cron script would have.
pub async fn publish(aws: &Aws, id: &str, host: Host, minutes: i64, last_at: i64) {
    let now = last_at;
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
                master_died_at,
            } => {
                let master_beat = master_died_at.map_or(t, |died| t.min(died));
                own.push(datum(
                    "HeartbeatTimestamp",
                    master_beat as f64 - lag_secs,
                    t,
                ));
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
/// Returns when the master died, when it did.
pub async fn publish_fleet(
    aws: &Aws,
    seeded: &Seeded,
    slow_web: Option<&str>,
    master_down: bool,
) -> Option<i64> {
    let now = now_secs();
    let master_died_at = master_down.then_some(now - MASTER_DEAD_FOR_SECS);
    for (name, id) in &seeded.ids {
        let host = match name.as_str() {
            n if n.starts_with("web") => Host::Web {
                p99_ms: if Some(n) == slow_web { 1500.0 } else { 150.0 },
            },
            "db-master" => Host::Db {
                lag_secs: 0.0,
                read_only: false,
                master_died_at,
            },
            n => Host::Db {
                lag_secs: if n == "db-replica-1" { 1.0 } else { 4.0 },
                read_only: true,
                master_died_at,
            },
        };
        // A dead master stopped publishing when it died.
        let last_at = match master_died_at {
            Some(died) if name == "db-master" => died,
            _ => now,
        };
        publish(aws, id, host, 10, last_at).await;
    }
    master_died_at
}

/// How often the agent's hosts publish: far more often than real ones (once a minute), so a
/// change of role shows within seconds once CloudWatch's minute turns.
const AGENT_PERIOD: Duration = Duration::from_secs(1);

/// Plays every running host of the fleet: web servers publish their latency (`slow` ten times
/// its peers'), database hosts their heartbeat and read_only as their `dake:role` tag says (a
/// master writable with its own beat, a replica read-only 1 s behind or its entry in `lag`),
/// except the `silent` ones (a dead master, dead since `publish_fleet`'s history says). While
/// no master publishes, the replicas' beats stand still, as replicated heartbeats do, at the
/// last beat of the master that died at `master_died_at`.
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
        master_died_at: Option<i64>,
    ) -> HostAgent {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let rt = runtime();
            let aws = rt.block_on(Aws::connect());
            let mut master_beat = master_died_at.unwrap_or_else(now_secs);
            while !flag.load(Ordering::Relaxed) {
                master_beat = rt.block_on(publish_running(
                    &aws,
                    slow.as_deref(),
                    &silent,
                    &lag,
                    master_beat,
                ));
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
    master_beat: i64,
) -> i64 {
    let now = now_secs();
    let live = |state: &str, id: &str| state == "running" && !silent.contains(id);
    let fleet = aws.fleet(FLEET).await;
    let master_alive = fleet.iter().any(|(id, (state, tags))| {
        live(state, id) && tags.get("dake:role").map(String::as_str) == Some("db-master")
    });
    // The newest beat the lineage holds: written now by a live master, else its last one.
    let master_died_at = (!master_alive).then_some(master_beat);
    for (id, (state, tags)) in fleet {
        if !live(&state, &id) {
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
                master_died_at,
            },
            Some("db-replica") => Host::Db {
                lag_secs: lag.get(&id).copied().unwrap_or(1.0),
                read_only: true,
                master_died_at,
            },
            _ => continue,
        };
        publish(aws, &id, host, 1, now).await;
    }
    master_died_at.unwrap_or(now)
}
