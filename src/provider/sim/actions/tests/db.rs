//! The database calls, and the two failovers of case 2 call by call.

use super::*;

#[test]
fn restart_and_reboot_cure_only_when_the_drill_says_so() {
    let restart = |id: &str| ProviderCall::RestartApp {
        instance_id: id.into(),
    };
    let reboot = |id: &str| ProviderCall::RebootInstances {
        instance_id: id.into(),
    };
    let p99 = |f: &SimFleet| by_name(f, "web-3").latest_p99().unwrap();
    for cures in [false, true] {
        let mut c = config();
        c.sim.restart_fixes_slow_web = cures;
        c.sim.reboot_fixes_master = cures;
        let mut f = fleet_with(&c);
        f.inject(IncidentKind::SlowWeb, Some("web-3")).unwrap();
        f.inject(IncidentKind::MasterDown, None).unwrap();
        wait(&mut f, 60);
        assert!(p99(&f) > 400.0);
        let web3 = by_name(&f, "web-3").id;
        ok(&mut f, restart(&web3));
        let master = f.snapshot().master().unwrap().id.clone();
        ok(&mut f, reboot(&master));
        let down = detect_over(&mut f, &c, 5, Vec::new());
        assert!(master_down(&down));
        let after = detect_over(&mut f, &c, 90, down);
        assert_eq!(p99(&f) < 300.0, cures, "slowness cured: {cures}");
        assert_eq!(master_down(&after), !cures, "{after:?}");
        let m = by_id(&f, &master).unwrap();
        assert_eq!(m.db.unwrap().heartbeat_age_secs < 5.0, cures);
    }
    let mut f = fleet();
    let web = by_name(&f, "web-1").id;
    let replica = by_name(&f, "db-replica-1").id;
    assert!(refused(&mut f, restart(&replica)).contains("no app daemon"));
    ok(
        &mut f,
        ProviderCall::StopInstances {
            instance_id: web.clone(),
            force: true,
        },
    );
    let err = refused(&mut f, restart(&web));
    assert!(
        err.starts_with("InvalidInstanceId") && err.contains("stopping"),
        "{err}"
    );
    assert!(refused(&mut f, reboot(&web)).starts_with("IncorrectInstanceState"));
}

#[test]
fn promote_repoint_and_switch_clear_the_master_down_incident() {
    let c = config();
    let mut f = fleet_with(&c);
    f.inject(IncidentKind::MasterDown, None).unwrap();
    let prev = detect_over(&mut f, &c, 60, Vec::new());
    assert!(master_down(&prev));
    let old = f.snapshot().master().unwrap().id.clone();
    let (best, other) = (
        by_name(&f, "db-replica-1").id,
        by_name(&f, "db-replica-2").id,
    );
    let promote = |id: &str| ProviderCall::PromoteReplica {
        instance_id: id.into(),
    };
    let err = refused(&mut f, promote(&old));
    assert!(
        err.starts_with("InvalidInstanceId"),
        "the hung master: {err}"
    );
    ok(&mut f, promote(&best));
    let p = by_id(&f, &best).unwrap();
    let db = p.db.as_ref().unwrap();
    assert_eq!(p.role, Role::DbMaster);
    assert_eq!(p.tags[TAG_ROLE], "db-master");
    assert!(!db.read_only && db.source_id.is_none() && !db.io_thread_running);
    assert!(!p.disposable(), "its data is now the only copy");
    assert!(refused(&mut f, promote(&best)).contains("not a replica"));

    let repoint = |m: &str| ProviderCall::RepointReplica {
        instance_id: other.clone(),
        master_id: m.into(),
    };
    assert!(refused(&mut f, repoint(&other)).contains("from itself"));
    ok(&mut f, repoint(&best));
    let endpoint = |id: &str| ProviderCall::SetDbEndpoint {
        name: "db.drill.internal".into(),
        target_id: id.into(),
    };
    assert!(refused(&mut f, endpoint("i-0000000000000000f")).starts_with("InvalidInstanceID"));
    let web = by_name(&f, "web-1").id;
    assert!(refused(&mut f, endpoint(&web)).contains("not a database"));
    ok(&mut f, endpoint(&best));
    let snap = f.snapshot();
    assert_eq!(snap.master().unwrap().id, best);
    assert_eq!(snap.db_endpoint.as_ref().unwrap().target_id, best);

    let after = detect_over(&mut f, &c, 30, prev);
    assert!(!master_down(&after), "{after:?}");
    let r = by_id(&f, &other).unwrap();
    let db = r.db.unwrap();
    assert_eq!(db.source_id.as_deref(), Some(best.as_str()));
    assert!(
        db.io_thread_running && db.heartbeat_age_secs < 10.0,
        "{db:?}"
    );
    assert!(by_id(&f, &best).unwrap().db.unwrap().heartbeat_age_secs < 1.0);
}

#[test]
fn a_launched_replica_follows_the_current_master() {
    let mut f = fleet();
    let id = launch(&mut f, "db-replica-1", "db-replica-3", Role::DbReplica, 6);
    let r = by_id(&f, &id).unwrap();
    assert_eq!(r.volumes.len(), 2);
    assert!(r.disposable(), "a replica's data is a copy");
    assert!(!r.db.unwrap().running);
    let err = refused(
        &mut f,
        ProviderCall::PromoteReplica {
            instance_id: id.clone(),
        },
    );
    assert!(err.contains("pending"), "{err}");
    wait(&mut f, 30);
    let master = f.snapshot().master().unwrap().id.clone();
    let db = by_id(&f, &id).unwrap().db.unwrap();
    assert!(db.running && db.read_only && db.io_thread_running && db.sql_thread_running);
    assert_eq!(db.source_id, Some(master));
    assert!(db.heartbeat_age_secs < 2.0, "{db:?}");
}

#[test]
fn db_ebs_move_puts_the_old_data_under_a_new_master() {
    for forced in [false, true] {
        ebs_move(forced);
    }
}

/// Stopped first, or its volume taken by force from under the hung database, which then
/// recovers as it starts on the new master.
fn ebs_move(forced: bool) {
    let c = config();
    let mut f = fleet_with(&c);
    f.inject(IncidentKind::MasterDown, None).unwrap();
    let prev = detect_over(&mut f, &c, 60, Vec::new());
    assert!(master_down(&prev));
    let old = f.snapshot().master().unwrap().clone();
    let data = old.volumes.iter().find(|v| v.sole_copy).unwrap().clone();

    if !forced {
        ok(
            &mut f,
            ProviderCall::StopInstances {
                instance_id: old.id.clone(),
                force: false,
            },
        );
        wait(&mut f, 15);
    }
    ok(
        &mut f,
        ProviderCall::DetachVolume {
            volume_id: data.id.clone(),
            instance_id: old.id.clone(),
            force: forced,
        },
    );
    let new = launch(&mut f, "db-master", "db-master-new", Role::DbMaster, 4);
    let n = by_id(&f, &new).unwrap();
    assert_eq!((n.az.as_str(), n.volumes.len()), (old.az.as_str(), 1));
    let start = ProviderCall::StartDatabase {
        instance_id: new.clone(),
    };
    wait(&mut f, 60);
    let err = refused(&mut f, start.clone());
    assert!(err.contains("no data volume at /dev/xvdf"), "{err}");
    ok(
        &mut f,
        ProviderCall::AttachVolume {
            volume_id: data.id.clone(),
            instance_id: new.clone(),
            device: data.device.clone(),
        },
    );
    wait(&mut f, 5);
    let said = f.apply(&start).unwrap().output;
    assert_eq!(
        said.contains("InnoDB: Starting crash recovery"),
        forced,
        "forced {forced}: {said}"
    );
    assert!(said.is_empty() || said.ends_with("Crash recovery finished."));
    wait(&mut f, 10);
    let again = f.apply(&start).unwrap().output;
    assert!(again.is_empty(), "recovered once: {again}");
    ok(
        &mut f,
        ProviderCall::SetDbEndpoint {
            name: "db.drill.internal".into(),
            target_id: new.clone(),
        },
    );
    for r in ["db-replica-1", "db-replica-2"] {
        let id = by_name(&f, r).id;
        ok(
            &mut f,
            ProviderCall::RepointReplica {
                instance_id: id,
                master_id: new.clone(),
            },
        );
    }
    let after = detect_over(&mut f, &c, 10, prev);
    assert!(!master_down(&after), "{after:?}");

    let snap: FleetSnapshot = f.snapshot();
    let m = snap.master().unwrap();
    assert_eq!(m.id, new);
    let db = m.db.as_ref().unwrap();
    assert!(
        db.running && !db.read_only && db.heartbeat_age_secs < 1.0,
        "{db:?}"
    );
    let v = m.volumes.iter().find(|v| v.device == "/dev/xvdf").unwrap();
    assert!(v.id == data.id && v.sole_copy);
    assert!(snap.free_volumes.is_empty());
    if !forced {
        assert!(snap.find(&old.id).unwrap().disposable());
    }
    for r in snap.by_role(Role::DbReplica) {
        let db = r.db.as_ref().unwrap();
        assert_eq!(db.source_id.as_deref(), Some(new.as_str()));
        assert!(
            db.io_thread_running && db.heartbeat_age_secs < 10.0,
            "{db:?}"
        );
    }
}
