//! A refresh's independent reads, made at once: a refresh costs about its slowest read, not
//! their sum. Each read counts its own calls and fails on its own; what failed is named in the
//! snapshot (`unread`) and the rest is shown.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::clients::{Calls, Clients, sdk_error};
use super::{AwsProvider, STATUS_IDS_PER_CALL};
use crate::provider::ProviderError;

/// Calls of one kind in flight at once (DescribeInstanceStatus chunks, GetMetricData batches):
/// well inside the APIs' request rates, and enough that a large fleet's chunks overlap.
pub const CHUNKS_IN_FLIGHT: usize = 8;

/// Runs `jobs` with at most `limit` in flight. Their answers come back in the jobs' order with
/// the calls they made; the first failure is the answer (the rest are cancelled).
pub async fn bounded<T, F>(jobs: Vec<F>, limit: usize) -> (Result<Vec<T>, ProviderError>, Calls)
where
    F: Future<Output = (Result<T, ProviderError>, Calls)> + Send + 'static,
    T: Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limit.max(1)));
    let mut set = JoinSet::new();
    let count = jobs.len();
    for (n, job) in jobs.into_iter().enumerate() {
        let permits = permits.clone();
        set.spawn(async move {
            // The semaphore is never closed, so a permit always comes.
            let _permit = permits.acquire_owned().await;
            (n, job.await)
        });
    }
    let mut calls = Calls::default();
    let mut out: Vec<Option<T>> = (0..count).map(|_| None).collect();
    while let Some(done) = set.join_next().await {
        let (n, (answer, made)) = match done {
            Ok(done) => done,
            Err(e) => {
                return (
                    Err(ProviderError::Other(format!("a read stopped: {e}"))),
                    calls,
                );
            }
        };
        calls.absorb(made);
        match answer {
            Ok(v) => out[n] = Some(v),
            Err(e) => return (Err(e), calls),
        }
    }
    (Ok(out.into_iter().flatten().collect()), calls)
}

/// `answer`, or `fallback` with the failure recorded under `part` for the screen and `status`.
pub fn or_unread<T>(
    unread: &mut BTreeMap<String, String>,
    part: &str,
    answer: Result<T, ProviderError>,
    fallback: impl FnOnce() -> T,
) -> T {
    match answer {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!("refresh: {part} not read: {e}");
            unread.insert(part.to_string(), e.to_string());
            fallback()
        }
    }
}

/// Where a refresh's reads are gathered: their calls counted, their failures named.
pub(super) struct Read<'a> {
    pub(super) calls: &'a mut Calls,
    pub(super) unread: &'a mut std::collections::BTreeMap<String, String>,
}

impl Read<'_> {
    /// What the read of `name` answered, or nothing and its failure kept.
    pub(super) fn part<T: Default>(
        &mut self,
        name: &str,
        (answer, made): (Result<T, ProviderError>, Calls),
    ) -> T {
        self.calls.absorb(made);
        or_unread(self.unread, name, answer, T::default)
    }
}

/// Every instance's status checks, a chunk of ids a call, the chunks at once.
pub(super) async fn statuses(
    c: &Clients,
    ids: &[String],
) -> (
    Result<Vec<aws_sdk_ec2::types::InstanceStatus>, ProviderError>,
    Calls,
) {
    let jobs: Vec<_> = ids
        .chunks(STATUS_IDS_PER_CALL)
        .map(|chunk| {
            let (ec2, chunk) = (c.ec2.clone(), chunk.to_vec());
            async move {
                let mut calls = Calls::default();
                calls.add("DescribeInstanceStatus");
                let out = ec2
                    .describe_instance_status()
                    .set_instance_ids(Some(chunk))
                    .include_all_instances(true)
                    .send()
                    .await
                    .map_err(sdk_error)
                    .map(|out| out.instance_statuses().to_vec());
                (out, calls)
            }
        })
        .collect();
    let (answer, calls) = bounded(jobs, CHUNKS_IN_FLIGHT).await;
    (answer.map(|chunks| chunks.concat()), calls)
}

impl AwsProvider {
    /// `deregistration_delay.timeout_seconds` of the target group, once; `None` when there is
    /// none or it cannot be read (then the drain waits as long as its step says).
    pub(super) async fn deregistration_delay(&self) -> Option<u32> {
        if self.target_group.is_empty() {
            return None;
        }
        *self
            .deregistration_delay
            .get_or_init(|| async {
                let arn = self.target_group_arn(&mut Calls::default()).await.ok()?;
                let c = self.clients().await.ok()?;
                let out = c
                    .elb
                    .describe_target_group_attributes()
                    .target_group_arn(arn)
                    .send()
                    .await
                    .map_err(|e| tracing::warn!("target group attributes: {}", sdk_error(e)))
                    .ok()?;
                out.attributes()
                    .iter()
                    .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
                    .and_then(|a| a.value()?.parse().ok())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn answers_keep_their_order_and_no_more_than_the_limit_run_at_once() {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let jobs: Vec<_> = (0..10)
            .map(|n| {
                let (running, most) = (running.clone(), most.clone());
                async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    // Later jobs finish first: the order must come from the index.
                    tokio::time::sleep(Duration::from_millis(20 - 2 * n as u64)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    let mut calls = Calls::default();
                    calls.add("Op");
                    (Ok::<_, ProviderError>(n), calls)
                }
            })
            .collect();
        let (answer, calls) = bounded(jobs, 3).await;
        assert_eq!(answer.unwrap(), (0..10).collect::<Vec<_>>());
        assert_eq!(calls.into_map()["Op"], 10);
        assert!(most.load(Ordering::SeqCst) <= 3);
    }

    #[tokio::test]
    async fn a_failure_is_the_answer() {
        let jobs: Vec<_> = (0..3)
            .map(|n| async move {
                let answer = if n == 1 {
                    Err(ProviderError::Other("no".into()))
                } else {
                    Ok(n)
                };
                (answer, Calls::default())
            })
            .collect();
        let (answer, _) = bounded(jobs, 2).await;
        assert_eq!(answer.unwrap_err().to_string(), "no");
        let mut unread = BTreeMap::new();
        let v = or_unread(
            &mut unread,
            "target health",
            Err::<Vec<u8>, _>(ProviderError::Other("TargetGroupNotFound".into())),
            Vec::new,
        );
        assert!(v.is_empty());
        assert_eq!(unread["target health"], "TargetGroupNotFound");
    }
}
