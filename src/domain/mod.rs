//! The fleet as dake models it, independent of where the data comes from.

mod instance;
mod series;
mod snapshot;

pub use instance::{
    CheckStatus, DbStatus, Health, Instance, InstanceState, LaunchParams, Role, StatusChecks,
    TargetHealth, Volume,
};
pub use series::TimeSeries;
pub use snapshot::{DbEndpoint, FleetSnapshot};
