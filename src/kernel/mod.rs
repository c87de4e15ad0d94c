//! The guest kernel: tasks, signals, the scheduler loop.

#![deny(unsafe_code)]

pub mod fdtable;
pub mod signal;
