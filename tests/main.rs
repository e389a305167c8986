//! The integration test binary: every test drives the real `stack` binary
//! in a temporary directory (see `harness`).

mod harness;

mod app;
mod apply;
mod atomic;
mod bad_input;
mod careless;
mod commands;
mod compose;
mod conformance;
mod crash;
mod errors;
mod expose;
mod faults;
mod groups;
mod helm;
mod import;
mod kubectl;
mod leaks;
mod promote;
mod properties;
mod pull_secrets;
mod real;
mod real_faults;
mod review;
mod secrets;
mod selection;
mod server;
mod simulator;
mod strategies;
mod values;
