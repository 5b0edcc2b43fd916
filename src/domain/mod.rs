//! The fleet as dake models it, independent of where the data comes from.

mod instance;
mod series;
mod snapshot;

pub use instance::{
    CheckStatus, DbStatus, FreeVolume, Health, Instance, InstanceState, LaunchParams, Role,
    StatusChecks, TargetHealth, Volume, VolumeState,
};
pub use series::TimeSeries;
pub use snapshot::{DbEndpoint, FleetSnapshot};
