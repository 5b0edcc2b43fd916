//! Training drills: scenarios as data, what the operator did judged against the fleet, and a
//! scorecard at the end. Pure but for reading scenario files and saving attempts.

pub mod brief;
pub mod judge;
pub mod scenario;
pub mod scorecard;
pub mod trace;

pub use scenario::{Scenario, load_all};
pub use scorecard::Scorecard;
pub use trace::DrillState;

#[cfg(test)]
mod tests;
