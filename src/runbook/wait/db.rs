//! The database tier's waits: a fenced old master, an applied relay log, a writable new
//! master, replicas that follow it. With the servers read (`mysql` source) they ask what the
//! servers say; else what the metrics and tags show.

use super::{WaitCheck, check, var_or};
use crate::domain::{FleetSnapshot, InstanceState, Role, ThreadState};
use crate::runbook::plan::{RunContext, var};

pub(super) fn db_state(snap: &FleetSnapshot, id: &str, writable: bool) -> WaitCheck {
    match snap.find(id).and_then(|i| i.db.as_ref()) {
        None => check(false, said!("no database status yet")),
        Some(d) => {
            let ok = d.running && (!writable || !d.read_only);
            let detail = match (d.running, d.read_only) {
                (false, _) => said!("MySQL not running"),
                (true, true) => said!("MySQL running, read-only"),
                (true, false) => said!("MySQL running, writable"),
            };
            check(ok, detail)
        }
    }
}

/// The old master cannot take writes: stopped or gone, or answering read-only (MySQL's
/// super_read_only too).
pub(super) fn master_fenced(ctx: &RunContext, snap: &FleetSnapshot) -> WaitCheck {
    let Some(old) = snap.find(&ctx.target_id) else {
        return check(true, said!("gone"));
    };
    if matches!(
        old.state,
        InstanceState::Stopped | InstanceState::ShuttingDown | InstanceState::Terminated
    ) {
        return check(true, old.state.as_str());
    }
    match old.db.as_ref().and_then(|d| d.server.as_ref()) {
        Some(f) if f.answers() => {
            let fenced = f.fenced();
            check(
                fenced,
                if fenced {
                    said!("read-only")
                } else {
                    said!("still writable")
                },
            )
        }
        _ => check(false, say!("{}, not stopped yet", old.state.as_str())),
    }
}

/// The chosen replica has applied all it received; without its server read there is nothing
/// to see, and the promote command applies it.
pub(super) fn relay_log_applied(snap: &FleetSnapshot, id: &str) -> WaitCheck {
    let Some(facts) = snap
        .find(id)
        .and_then(|i| i.db.as_ref())
        .and_then(|d| d.server.as_ref())
    else {
        return check(true, said!("not visible without the mysql source"));
    };
    if let Some(why) = &facts.unreachable {
        return check(false, say!("does not answer: {why}"));
    }
    match &facts.replica {
        None => check(true, said!("no replication left")),
        Some(r) => {
            let done = r.relay_log_applied && r.sql == ThreadState::Running;
            check(
                done,
                say!(
                    "SQL thread {}, relay log {}",
                    r.sql.as_str(),
                    if r.relay_log_applied {
                        said!("applied")
                    } else {
                        said!("not applied yet")
                    }
                ),
            )
        }
    }
}

/// Every other running replica reads from the new master.
pub(super) fn replicas_following(ctx: &RunContext, snap: &FleetSnapshot) -> WaitCheck {
    let new = var_or(ctx, var::NEW_MASTER);
    let target = ctx.target_id.as_str();
    let new_server_id = snap
        .find(new)
        .and_then(|m| m.db.as_ref()?.server.as_ref())
        .filter(|f| f.answers())
        .map(|f| f.server_id);
    let mut waiting = Vec::new();
    let mut left = Vec::new();
    for r in snap
        .by_role(Role::DbReplica)
        .filter(|r| r.id != new && r.id != target && r.state == InstanceState::Running)
    {
        let Some(d) = r.db.as_ref() else {
            waiting.push(r.name.clone());
            continue;
        };
        let following = d.source_id.as_deref() == Some(new) && d.io_thread_running;
        match d.server.as_ref() {
            // The plan left it as it was: said there, and not waited for.
            Some(f) if !f.answers() => left.push(say!("{} does not answer", r.name)),
            // Verified on the replica: both threads run and the new master's beat arrived.
            Some(f) => {
                let beat_from_new = new_server_id.is_some()
                    && f.heartbeat.map(|(_, writer)| writer) == new_server_id;
                if !(following && d.sql_thread_running && beat_from_new) {
                    let error = f
                        .replica
                        .as_ref()
                        .map(|s| format!("{}{}", s.last_io_error, s.last_sql_error))
                        .filter(|e| !e.is_empty())
                        .map_or(String::new(), |e| format!(" ({e})"));
                    waiting.push(format!("{}{error}", r.name));
                }
            }
            None if !following => waiting.push(r.name.clone()),
            None => {}
        }
    }
    let left = if left.is_empty() {
        String::new()
    } else {
        format!("; {}", left.join(", "))
    };
    if waiting.is_empty() {
        check(true, format!("{}{left}", said!("all following")))
    } else {
        let waiting = say!("waiting for {}", waiting.join(", "));
        check(false, format!("{waiting}{left}"))
    }
}

/// The new replica runs MySQL and reads from the master.
pub(super) fn replica_following(snap: &FleetSnapshot, id: &str) -> WaitCheck {
    let master = snap.master().map(|m| m.id.as_str());
    let Some(r) = snap.find(id) else {
        return check(false, said!("not in the fleet yet"));
    };
    let following =
        r.db.as_ref()
            .is_some_and(|d| d.source_id.as_deref() == master && d.io_thread_running && d.running);
    let how = if following {
        said!("following")
    } else {
        said!("not following yet")
    };
    check(following, format!("{}, {how}", r.state.as_str()))
}
