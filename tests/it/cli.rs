//! Command-line behaviour of the real binary.
