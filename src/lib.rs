//! `stack` deploys a whole Kubernetes stack from files in git.
//!
//! The pipeline has three stages joined by plain data. **Load**: stack files
//! ([`config`]) are parsed with source positions, an environment is chosen,
//! its values (and secrets) merged ([`values`]), every release's `{{ … }}`
//! evaluated ([`resolve`]), the dependency graph built and the selection made
//! ([`graph`]), and the selected releases rendered into objects ([`render`]);
//! [`project`] ties these together. **Plan** and **execute** (diff, apply,
//! wait, roll back) build on that and talk to clusters only through one seam.
//! [`commands`] holds one module per command; [`error`] owns how every problem
//! is worded and which exit code it has.

pub mod cli;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod diagnostic;
pub mod diff;
pub mod engine;
pub mod error;
pub mod graph;
pub mod mask;
pub mod output;
pub mod parallel;
pub mod plan;
pub mod project;
pub mod promote;
pub mod release;
pub mod render;
pub mod resolve;
pub mod secrets;
pub mod settings;
pub mod suggest;
pub mod validate;
pub mod values;
pub mod yaml;
