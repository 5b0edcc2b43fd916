//! One failover per tier, whoever runs it: before a run's first destructive step it takes the
//! lease of its fleet's tier, which every console and `dake run` honour. The holder renews it
//! while the run goes on and releases it at the end; one not renewed for a while is stale, and
//! is taken over only by naming its holder's run.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Role;
use super::overrides::Override;

/// Who holds a lease, as the lease itself records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseHolder {
    pub run_id: String,
    /// `user@host`: who is running it, and where.
    pub operator: String,
    pub started: DateTime<Utc>,
    pub renewed: DateTime<Utc>,
}

/// The last failover of a tier, kept beside its lease when a run gives the lease back: what
/// anti-flapping reads, so a second failover from another machine is refused as it is from this
/// one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverRecord {
    pub run_id: String,
    pub operator: String,
    pub playbook: String,
    /// When the run last performed a failover action (a launch, a stop, a promotion…).
    pub at: DateTime<Utc>,
}

/// Where a tier's last failover is kept, beside its lease `key`.
pub fn failover_key(key: &str) -> String {
    format!("{key}-last-failover")
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

/// The lease's name under a provider's prefix; see [`failover_key`] for its record.
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
        say!(
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
    /// A failover of the tier by another run less than this long ago is refused, unless
    /// `flapping_allowed`.
    pub anti_flap_secs: u64,
    pub flapping_allowed: bool,
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
            anti_flap_secs,
            flapping_allowed,
        } = call
        else {
            return None;
        };
        Some(Request {
            key,
            holder: LeaseHolder::new(run_id, operator, now),
            take_over: take_over.as_deref(),
            stale_secs: *stale_secs,
            anti_flap_secs: *anti_flap_secs,
            flapping_allowed: *flapping_allowed,
        })
    }

    /// How this request comes to be granted against `current` and the tier's `last` failover,
    /// or why not.
    pub fn decide(
        &self,
        current: Option<&LeaseHolder>,
        last: Option<&FailoverRecord>,
    ) -> Result<Take, String> {
        let now = self.holder.started;
        let take = decide(current, &self.holder, self.take_over, now, self.stale_secs)?;
        // A run that holds the lease already passed this check when it took it.
        if take != Take::Ours
            && !self.flapping_allowed
            && let Some(last) = last.filter(|l| l.run_id != self.holder.run_id)
            && (now - last.at).num_seconds() < self.anti_flap_secs as i64
        {
            return Err(Override::AntiFlapping.refusal(say!(
                "this tier was failed over {} ago by run {} ({}, {}), within the anti-flapping \
                 window of {} s; a second failover this soon is more likely flapping than a new \
                 fault",
                crate::text::age((now - last.at).num_seconds().max(0)),
                last.run_id,
                last.playbook,
                last.operator,
                self.anti_flap_secs
            )));
        }
        Ok(take)
    }
}

/// The run a refusal names as a stale lease's holder, which the operator may take over by
/// typing its id.
pub fn stale_holder_in(refusal: &str) -> Option<&str> {
    let (_, rest) = refusal.split_once(TAKE_OVER_FLAG)?;
    rest.split_whitespace()
        .next()
        .map(|id| id.trim_end_matches([')', '.', ';']))
}

const TAKE_OVER_FLAG: &str = "--take-over-lease ";

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
        say!(
            "it has not been renewed for over {stale_secs} s: if that run is dead, take it over \
             by its run id (--take-over-lease {}; in the console T, then type it)",
            held.run_id
        )
    } else {
        said!("one failover of a tier at a time, whoever runs it").to_string()
    };
    let separator = if stale { "; " } else { ": " };
    Err(format!(
        "{}{separator}{how}",
        say!("this tier is held by {}", held.describe(now))
    ))
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
        assert_eq!(stale_holder_in(&err), Some("run-a"));
        assert_eq!(
            stale_holder_in("held by run run-a: one failover at a time"),
            None
        );
        assert_eq!(lease_key("shop", Role::DbMaster), "shop/db");
        assert_eq!(lease_key("shop", Role::Web), "shop/web");
    }

    #[test]
    fn another_runs_failover_within_the_window_is_refused_unless_overridden() {
        let now = DateTime::UNIX_EPOCH + chrono::Duration::days(1);
        let call = |allowed| crate::domain::call::ProviderCall::TakeLease {
            key: "shop/db".into(),
            run_id: "run-b".into(),
            operator: "op@bastion-2".into(),
            take_over: None,
            stale_secs: 120,
            anti_flap_secs: 1800,
            flapping_allowed: allowed,
        };
        let record = |run: &str, secs_ago| FailoverRecord {
            run_id: run.into(),
            operator: "op@bastion-1".into(),
            playbook: "db-promote".into(),
            at: now - chrono::Duration::seconds(secs_ago),
        };
        let strict = call(false);
        let request = Request::of(&strict, now).expect("a lease call");
        let err = request
            .decide(None, Some(&record("run-a", 300)))
            .unwrap_err();
        assert!(err.contains("failed over 5m"), "{err}");
        assert!(
            err.contains("run run-a (db-promote, op@bastion-1)"),
            "{err}"
        );
        assert_eq!(Override::named_in(&err), Some(Override::AntiFlapping));
        assert_eq!(
            request.decide(None, Some(&record("run-a", 1801))),
            Ok(Take::Create),
            "outside the window"
        );
        assert_eq!(
            request.decide(None, Some(&record("run-b", 10))),
            Ok(Take::Create),
            "its own failover"
        );
        let mine = holder("run-b", 0, now);
        assert_eq!(
            request.decide(Some(&mine), Some(&record("run-a", 10))),
            Ok(Take::Ours),
            "checked once, when taken"
        );
        let lenient = call(true);
        let request = Request::of(&lenient, now).expect("a lease call");
        assert_eq!(
            request.decide(None, Some(&record("run-a", 10))),
            Ok(Take::Create)
        );
        assert_eq!(failover_key("shop/db"), "shop/db-last-failover");
    }
}
