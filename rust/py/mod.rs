//! Thin PyO3 wrappers, one file per hot path. Each copies its inputs out of Python objects while
//! attached, releases the interpreter (`py.detach`) for the work, and hands numpy arrays back.

pub mod advantage;
pub mod behaviour;
pub mod errors;
pub mod pack;
pub mod parallel;
pub mod verify;
