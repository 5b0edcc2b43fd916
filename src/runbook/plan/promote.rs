//! Promotion in the order that loses no transaction and leaves one writable master: fence the
//! old master, let the chosen replica apply all it received, promote it and prove it takes
//! writes, repoint the others, and retire the old master. Over SQL when dake reads the servers
//! (`[database] source = "mysql"`), each statement in the call, so it is shown and journaled
//! before it runs; else as host steps (SSM) and EC2 calls.

use super::{Plan, Planning, var};
use crate::domain::call::{ProviderCall, TAG_QUARANTINE, TAG_ROLE, TAG_SOURCE};
use crate::domain::{Flavour, Instance, InstanceState, Role, ServerFacts, ThreadState};
use crate::provider::mysql::sql;
use crate::replicas::held;
use crate::runbook::overrides::Override;

/// How long the catch-up waits for the relay log to be applied, in the statement itself.
pub const CATCH_UP_SECS: u64 = 300;
/// The role tag of a master the run has retired: no role dake lists, so one master shows.
pub const RETIRED_ROLE: &str = "retired";

/// What the instance's server said, when it answered over MySQL.
fn answering(i: &Instance) -> Option<(&ServerFacts, Flavour)> {
    let f = i.db.as_ref()?.server.as_ref()?;
    Some((f, f.flavour?)).filter(|(f, _)| f.answers())
}

fn sql_call(
    instance_id: &str,
    statements: Vec<sql::Statement>,
    kill_clients: bool,
) -> ProviderCall {
    ProviderCall::Sql {
        instance_id: instance_id.to_string(),
        statements: statements.into_iter().map(|s| s.shown).collect(),
        kill_clients,
    }
}

pub(super) fn fence_master(planning: &Planning, p: &mut Plan) -> Result<(), String> {
    let t = planning.target()?;
    if let Some((_, flavour)) = answering(t) {
        p.calls.push(sql_call(&t.id, sql::fence(flavour), true));
        p.finding = Some(say!(
            "{} answers over MySQL: made read-only, its client connections killed",
            t.name
        ));
        return Ok(());
    }
    let quarantine = ProviderCall::CreateTags {
        resource_id: t.id.clone(),
        tags: vec![(TAG_QUARANTINE.into(), planning.ctx.run_id.clone())],
    };
    // Read over MySQL and silent, or not read that way at all (the metrics source).
    let why = match t.db.as_ref().and_then(|d| d.server.as_ref()) {
        Some(f) if f.refused_dake() => say!(
            "cannot be fenced over MySQL ({})",
            f.unreachable.as_deref().unwrap_or_default()
        ),
        Some(f) => say!(
            "does not answer over MySQL ({})",
            f.unreachable.as_deref().unwrap_or(said!("no flavour read"))
        ),
        None => said!("is not read over MySQL here").to_string(),
    };
    match t.state {
        InstanceState::Running | InstanceState::Pending | InstanceState::Stopping => {
            p.calls.push(ProviderCall::StopInstances {
                instance_id: t.id.clone(),
                force: false,
            });
            p.calls.push(quarantine);
            p.finding = Some(say!(
                "{} {why}: stopped through EC2 (not terminated: its data stays) and tagged \
                 quarantined, so it cannot come back writable",
                t.name
            ));
        }
        InstanceState::Stopped => {
            p.calls.push(quarantine);
            p.finding = Some(say!("{} is stopped already: tagged quarantined", t.name));
        }
        InstanceState::ShuttingDown | InstanceState::Terminated => {
            p.finding = Some(say!("{} is {}: nothing to fence", t.name, t.state.as_str()));
        }
    }
    Ok(())
}

/// Why the old master could take writes again, when it could: it answers writable, or its
/// instance runs again though it was stopped. Nothing when the operator fenced it their way.
fn unfenced(planning: &Planning) -> Option<String> {
    if planning.ctx.vars.contains_key(var::FENCED_BY_OPERATOR) {
        return None;
    }
    let old = planning.snap.find(&planning.ctx.target_id)?;
    if let Some((f, _)) = answering(old) {
        return (!f.fenced()).then(|| say!("{} answers writable again", old.name));
    }
    let stopped_by_us = old.tags.contains_key(TAG_QUARANTINE);
    (stopped_by_us && old.state == InstanceState::Running)
        .then(|| say!("{} runs again after it was stopped", old.name))
}

pub(super) fn catch_up(planning: &Planning, p: &mut Plan) -> Result<(), String> {
    let new = planning.recorded(var::NEW_MASTER)?;
    let Some((facts, flavour)) = answering(new) else {
        p.finding = Some(say!(
            "{}'s relay log is not visible without the mysql database source: the promote \
             command must apply it",
            new.name
        ));
        return Ok(());
    };
    let Some(side) = facts.replica.as_ref() else {
        p.finding = Some(say!(
            "{} replicates from nothing: nothing to apply",
            new.name
        ));
        return Ok(());
    };
    // Another replica that received more would hand its transactions to a master lacking
    // them: ranking picks the one holding most, so this is a forced choice.
    let mine = held(facts).unwrap_or_default();
    let ahead: Vec<String> = planning
        .snap
        .by_role(Role::DbReplica)
        .filter(|r| r.id != new.id)
        .filter_map(|r| {
            let more = held(answering(r)?.0)?.ahead_of(&mine);
            (more > 0).then(|| say!("{} holds {more} transactions it lacks", r.name))
        })
        .collect();
    if !ahead.is_empty() {
        let why = say!(
            "{}: promoting {} would lose them",
            ahead.join(", "),
            new.name
        );
        if !planning.ctx.allows(Override::LaggingReplica) {
            return Err(Override::LaggingReplica.refusal(why));
        }
        p.warnings.push(why);
    }
    let mut statements = Vec::new();
    if side.sql != ThreadState::Running {
        statements.push(sql::start_sql_thread());
    }
    if !side.gtid_received.is_empty() {
        statements.push(sql::wait_for_position(
            flavour,
            &side.gtid_received,
            CATCH_UP_SECS,
        ));
    }
    p.finding = Some(say!(
        "{} applies what it received ({}) before it is promoted",
        new.name,
        if side.relay_log_applied {
            said!("its relay log is applied")
        } else {
            said!("its relay log has a backlog")
        }
    ));
    if !statements.is_empty() {
        p.calls.push(sql_call(&new.id, statements, false));
    }
    Ok(())
}

pub(super) fn promote_replica(planning: &Planning, p: &mut Plan) -> Result<(), String> {
    let new = planning.recorded(var::NEW_MASTER)?;
    // The old master may have come back since it was fenced (a hung process that resumed, an
    // instance started by someone else): fenced again first, in this same step.
    if let Some(why) = unfenced(planning) {
        fence_master(planning, p)?;
        p.finding = None;
        p.warnings
            .push(say!("{why}: fenced again before the promotion"));
    }
    let Some((_, flavour)) = answering(new) else {
        p.calls.push(ProviderCall::PromoteReplica {
            instance_id: new.id.clone(),
        });
        return Ok(());
    };
    let ctx = planning.ctx;
    let mut statements = vec![sql::stop_replica(), sql::reset_replica_all()];
    statements.extend(sql::set_read_only(flavour, false));
    // Writable is proved by a write: the heartbeat its replicas will receive.
    statements.push(sql::write_heartbeat(
        &ctx.heartbeat_table,
        ctx.heartbeat_utc,
    ));
    p.calls.push(sql_call(&new.id, statements, false));
    p.calls.push(ProviderCall::CreateTags {
        resource_id: new.id.clone(),
        tags: vec![(TAG_ROLE.into(), Role::DbMaster.as_str().into())],
    });
    Ok(())
}

/// A moved master proves its database came back whole: crash recovery done (it answers) and
/// writable, by a heartbeat write. Only when the servers are read over MySQL; the flavour is
/// the fleet's, as read from any server that answers (MariaDB's statement otherwise).
pub(super) fn prove_writable(planning: &Planning, new: &Instance, p: &mut Plan) {
    if new.db.as_ref().and_then(|d| d.server.as_ref()).is_none() {
        return;
    }
    let flavour = planning
        .snap
        .instances
        .iter()
        .find_map(|i| answering(i).map(|(_, f)| f))
        .unwrap_or(Flavour::MariaDb);
    let ctx = planning.ctx;
    let mut statements = sql::set_read_only(flavour, false);
    statements.push(sql::write_heartbeat(
        &ctx.heartbeat_table,
        ctx.heartbeat_utc,
    ));
    p.calls.push(sql_call(&new.id, statements, false));
}

/// Every running replica but the new master and the old one follows the new master, with its
/// own flavour's GTID auto-positioning; its replication account is kept as it is.
pub(super) fn repoint_replicas(planning: &Planning, p: &mut Plan) -> Result<(), String> {
    let new_id = planning.ctx.get(var::NEW_MASTER)?;
    let new = planning.find(new_id)?;
    let source = answering(new).map(|(f, _)| f.replication_address.clone());
    for r in planning.snap.by_role(Role::DbReplica) {
        if r.id == new.id || r.id == planning.ctx.target_id || r.state != InstanceState::Running {
            continue;
        }
        match (answering(r), source.as_deref()) {
            (Some((_, flavour)), Some(address)) => {
                let (host, port) = crate::config::host_port(address, 3306)?;
                let statements = vec![
                    sql::stop_replica(),
                    sql::change_source(flavour, &host, port, None, None),
                    sql::start_replica(),
                ];
                p.calls.push(sql_call(&r.id, statements, false));
                p.calls.push(ProviderCall::CreateTags {
                    resource_id: r.id.clone(),
                    tags: vec![(TAG_SOURCE.into(), new.id.clone())],
                });
            }
            _ if r.db.as_ref().is_some_and(|d| d.server.is_some()) => p.warnings.push(say!(
                "{} does not answer over MySQL: left as it is; repoint it once it answers",
                r.name
            )),
            _ => p.calls.push(ProviderCall::RepointReplica {
                instance_id: r.id.clone(),
                master_id: new.id.clone(),
            }),
        }
    }
    if p.calls.is_empty() {
        p.finding = Some(said!("no other replicas to repoint").into());
    }
    Ok(())
}

/// The old master leaves the fleet's listing: stopped through EC2 if it still runs (a fenced
/// server restarted would be writable again: MariaDB cannot persist read_only; its volume
/// stays), retagged (no role dake lists) and quarantined, so the fleet shows one master and
/// the instance stays for forensics.
pub(super) fn retire_old_master(planning: &Planning, p: &mut Plan) -> Result<(), String> {
    let Some(old) = planning.snap.find(&planning.ctx.target_id) else {
        p.finding = Some(say!("{} is gone already", planning.ctx.target_name));
        return Ok(());
    };
    let running = matches!(old.state, InstanceState::Running | InstanceState::Pending);
    // The operator fenced it their way because EC2 would not stop it: it is left as they left
    // it, and only retagged.
    let by_operator = planning.ctx.vars.get(var::FENCED_BY_OPERATOR);
    if let Some(who) = by_operator.filter(|_| running) {
        p.warnings.push(say!(
            "{} is left running: {who} fenced it by other means, which dake cannot see",
            old.name
        ));
    }
    let running = running && by_operator.is_none();
    if running {
        p.calls.push(ProviderCall::StopInstances {
            instance_id: old.id.clone(),
            force: false,
        });
    }
    p.calls.push(ProviderCall::CreateTags {
        resource_id: old.id.clone(),
        tags: vec![
            (TAG_ROLE.into(), RETIRED_ROLE.into()),
            (TAG_QUARANTINE.into(), planning.ctx.run_id.clone()),
        ],
    });
    p.finding = Some(if running {
        say!(
            "{} retired: stopped through EC2 (its volume stays), tagged {TAG_ROLE}={RETIRED_ROLE} \
             and quarantined",
            old.name
        )
    } else {
        say!(
            "{} retired: tagged {TAG_ROLE}={RETIRED_ROLE} and quarantined",
            old.name
        )
    });
    Ok(())
}
