//! One failover per tier, whoever runs it: before a run's first destructive step it takes the
//! lease of its fleet's tier, which every console and `dake run` honour. The holder renews it
//! while the run goes on and releases it at the end; one not renewed for a while is stale, and
//! is taken over only by naming its holder's run.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Role;

/// Who holds a lease, as the lease itself records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseHolder {
    pub run_id: String,
    /// `user@host`: who is running it, and where.
    pub operator: String,
    pub started: DateTime<Utc>,
    pub renewed: DateTime<Utc>,
}

/// What taking a lease comes to, given who holds it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Take {
    /// Nobody holds it: create it.
    Create,
    /// This run holds it already (a retried or resumed step).
    Ours,
    /// A stale lease whose holder the operator named: replace it.
    TakeOver,
}

/// The tier a run on `role` fails over: one lease for the web servers, one for the databases.
pub fn tier(role: Role) -> &'static str {
    if role == Role::Web { "web" } else { "db" }
}

/// The lease's name under a provider's prefix.
pub fn lease_key(fleet: &str, role: Role) -> String {
    format!("{fleet}/{}", tier(role))
}

impl LeaseHolder {
    /// A holder taking or renewing the lease now.
    pub fn new(run_id: &str, operator: &str, now: DateTime<Utc>) -> LeaseHolder {
        LeaseHolder {
            run_id: run_id.to_string(),
            operator: operator.to_string(),
            started: now,
            renewed: now,
        }
    }

    pub fn is_stale(&self, now: DateTime<Utc>, stale_secs: u64) -> bool {
        (now - self.renewed).num_seconds() > stale_secs as i64
    }

    fn describe(&self, now: DateTime<Utc>) -> String {
        let ago = |t: DateTime<Utc>| crate::text::age((now - t).num_seconds().max(0));
        format!(
            "run {} ({}), started {} ago, renewed {} ago",
            self.run_id,
            self.operator,
            ago(self.started),
            ago(self.renewed)
        )
    }
}

/// A `TakeLease` call as a provider acts on it: the lease, who takes it at `now`, and how.
pub struct Request<'a> {
    pub key: &'a str,
    pub holder: LeaseHolder,
    pub take_over: Option<&'a str>,
    pub stale_secs: u64,
}

impl<'a> Request<'a> {
    /// `call`'s lease request, taken at `now`; `None` for any other call.
    pub fn of(call: &'a super::call::ProviderCall, now: DateTime<Utc>) -> Option<Request<'a>> {
        let super::call::ProviderCall::TakeLease {
            key,
            run_id,
            operator,
            take_over,
            stale_secs,
        } = call
        else {
            return None;
        };
        Some(Request {
            key,
            holder: LeaseHolder::new(run_id, operator, now),
            take_over: take_over.as_deref(),
            stale_secs: *stale_secs,
        })
    }

    /// How this request comes to be granted against `current`, or why not.
    pub fn decide(&self, current: Option<&LeaseHolder>) -> Result<Take, String> {
        decide(
            current,
            &self.holder,
            self.take_over,
            self.holder.started,
            self.stale_secs,
        )
    }
}

/// Whether `me` may take the lease `current` holds, and how; `Err` is the refusal, naming the
/// holder, and for a stale lease how to take it over.
pub fn decide(
    current: Option<&LeaseHolder>,
    me: &LeaseHolder,
    take_over: Option<&str>,
    now: DateTime<Utc>,
    stale_secs: u64,
) -> Result<Take, String> {
    let Some(held) = current else {
        return Ok(Take::Create);
    };
    if held.run_id == me.run_id {
        return Ok(Take::Ours);
    }
    let stale = held.is_stale(now, stale_secs);
    if stale && take_over == Some(held.run_id.as_str()) {
        return Ok(Take::TakeOver);
    }
    let how = if stale {
        format!(
            "; it has not been renewed for over {stale_secs} s: if that run is dead, take it over \
             with --take-over-lease {}",
            held.run_id
        )
    } else {
        ": one failover of a tier at a time, whoever runs it".to_string()
    };
    Err(format!("this tier is held by {}{how}", held.describe(now)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(run: &str, renewed_secs_ago: i64, now: DateTime<Utc>) -> LeaseHolder {
        LeaseHolder {
            run_id: run.into(),
            operator: "op@bastion-1".into(),
            started: now - chrono::Duration::seconds(600),
            renewed: now - chrono::Duration::seconds(renewed_secs_ago),
        }
    }

    #[test]
    fn one_holder_at_a_time_and_a_stale_one_only_by_name() {
        let now = DateTime::UNIX_EPOCH + chrono::Duration::days(1);
        let me = holder("run-b", 0, now);
        assert_eq!(decide(None, &me, None, now, 120), Ok(Take::Create));
        assert_eq!(decide(Some(&me), &me, None, now, 120), Ok(Take::Ours));
        let live = holder("run-a", 10, now);
        let err = decide(Some(&live), &me, Some("run-a"), now, 120).unwrap_err();
        assert!(err.contains("held by run run-a (op@bastion-1)"), "{err}");
        assert!(
            !err.contains("--take-over-lease"),
            "a live lease is never taken: {err}"
        );
        let dead = holder("run-a", 300, now);
        let err = decide(Some(&dead), &me, None, now, 120).unwrap_err();
        assert!(err.contains("--take-over-lease run-a"), "{err}");
        let err = decide(Some(&dead), &me, Some("run-x"), now, 120).unwrap_err();
        assert!(
            err.contains("run-a"),
            "another run's name takes nothing: {err}"
        );
        assert_eq!(
            decide(Some(&dead), &me, Some("run-a"), now, 120),
            Ok(Take::TakeOver)
        );
        assert_eq!(lease_key("shop", Role::DbMaster), "shop/db");
        assert_eq!(lease_key("shop", Role::Web), "shop/web");
    }
}
