//! Whole-screen snapshots and the update loop, in a fixed-size TestBackend.
