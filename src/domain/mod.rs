//! The fleet as dake models it, independent of where the data comes from, and the vocabulary
//! of the calls a playbook makes: what both the runbook engine and the providers speak.

pub mod call;
mod call_kind;
pub mod gtid;
mod instance;
pub mod lease;
pub mod overrides;
mod series;
mod server;
mod snapshot;

pub use instance::{
    CheckStatus, DbStatus, FreeVolume, Health, Instance, InstanceState, LaunchParams, Role,
    StatusChecks, TargetHealth, Volume, VolumeState,
};
pub use series::TimeSeries;
pub use server::{Flavour, LagSource, REFUSED, ReplicaSide, ServerFacts, ThreadState};
pub use snapshot::{DbEndpoint, FleetSnapshot};
