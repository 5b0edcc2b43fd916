//! EBS calls: a volume leaves one instance and joins another in the same zone.

use super::transitions::{Change, DATA_DEVICE, free};
use super::{ATTACH_SECS, DETACH_SECS, state_of};
use crate::domain::{InstanceState, VolumeState};
use crate::provider::sim::SimFleet;

impl SimFleet {
    /// Where volume `vol` is: `Ok(Some(instance index, volume index))` when attached,
    /// `Ok(None)` when free.
    fn locate_volume(&self, vol: &str) -> Result<Option<(usize, usize)>, String> {
        for (i, s) in self.instances.iter().enumerate() {
            if let Some(v) = s.inst.volumes.iter().position(|v| v.id == vol) {
                return Ok(Some((i, v)));
            }
        }
        if self.free_volumes.iter().any(|v| v.vol.id == vol) {
            return Ok(None);
        }
        Err(format!(
            "InvalidVolume.NotFound: The volume '{vol}' does not exist"
        ))
    }

    fn free_volume_state(&self, vol: &str) -> &'static str {
        match self.free_volumes.iter().find(|v| v.vol.id == vol) {
            Some(v) => match v.vol.state {
                VolumeState::Available => "available",
                VolumeState::Attaching => "attaching",
                VolumeState::Detaching => "detaching",
                VolumeState::Creating => "creating",
                VolumeState::InUse => "in-use",
            },
            None => "in-use",
        }
    }

    pub(super) fn detach(&mut self, vol: &str, id: &str, force: bool) -> Result<(), String> {
        self.find(id)?;
        let Some((i, v)) = self.locate_volume(vol)? else {
            return Err(format!(
                "IncorrectState: volume {vol} is {}, not in-use",
                self.free_volume_state(vol)
            ));
        };
        let s = &mut self.instances[i];
        if s.inst.id != id {
            return Err(format!(
                "InvalidAttachment.NotFound: volume {vol} is attached to {}, not to {id}",
                s.inst.id
            ));
        }
        if !force && s.inst.state != InstanceState::Stopped {
            return Err(format!(
                "IncorrectInstanceState: instance {id} is {}; stop it before detaching {vol}, or force the detach",
                state_of(s)
            ));
        }
        let volume = s.inst.volumes.remove(v);
        let data = volume.device == DATA_DEVICE && s.inst.db.is_some();
        // MySQL still had it open: what was in memory never reached the disk.
        let crashed = data && s.inst.db.as_ref().is_some_and(|d| d.running);
        if data && let Some(db) = s.inst.db.as_mut() {
            // MySQL loses its data directory under it.
            db.running = false;
        }
        let data = s.server.as_ref().map(|d| d.applied).filter(|_| data);
        let az = s.inst.az.clone();
        let mut freed = free(volume, &az, VolumeState::Detaching, data);
        freed.crashed = crashed;
        self.free_volumes.push(freed);
        self.schedule(DETACH_SECS, Change::VolumeDetached(vol.to_string()));
        Ok(())
    }

    pub(super) fn attach(&mut self, vol: &str, id: &str, device: &str) -> Result<(), String> {
        if self.locate_volume(vol)?.is_some() || self.free_volume_state(vol) != "available" {
            return Err(format!(
                "IncorrectState: volume {vol} is {}, not available",
                self.free_volume_state(vol)
            ));
        }
        let s = self.find(id)?;
        if !matches!(
            s.inst.state,
            InstanceState::Running | InstanceState::Stopped
        ) {
            return Err(format!(
                "IncorrectInstanceState: instance {id} is {}; a volume attaches only to a running or stopped instance",
                state_of(s)
            ));
        }
        let at = self
            .free_volumes
            .iter()
            .position(|v| v.vol.id == vol)
            .ok_or_else(|| format!("InvalidVolume.NotFound: The volume '{vol}' does not exist"))?;
        let vaz = &self.free_volumes[at].vol.az;
        if vaz != &s.inst.az {
            return Err(format!(
                "InvalidParameter: volume in {vaz} cannot attach to instance in {} ({vol} → {id})",
                s.inst.az
            ));
        }
        if !device.starts_with("/dev/") {
            return Err(format!(
                "InvalidParameterValue: Value ({device}) for parameter device is invalid"
            ));
        }
        let pending_there = self.scheduled.iter().any(|p| {
            matches!(&p.change, Change::VolumeAttached { instance_id, device: d, .. }
                if instance_id == id && d == device)
        });
        if pending_there || s.inst.volumes.iter().any(|v| v.device == device) {
            return Err(format!(
                "InvalidParameterValue: Attachment point {device} is already in use on {id}"
            ));
        }
        self.free_volumes[at].vol.state = VolumeState::Attaching;
        self.schedule(
            ATTACH_SECS,
            Change::VolumeAttached {
                volume_id: vol.to_string(),
                instance_id: id.to_string(),
                device: device.to_string(),
            },
        );
        Ok(())
    }
}
