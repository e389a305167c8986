//! The load stage: stack files ([`config`]) → environment and values
//! ([`values`], [`resolve`]) → releases ([`release`]) → dependency graph and
//! selection ([`graph`]) → rendered objects ([`render`]); [`project`] ties
//! them together. Nothing here touches a cluster.

pub mod config;
pub mod explain;
pub mod expose;
pub mod graph;
pub mod group;
pub mod project;
pub mod release;
pub mod render;
pub mod resolve;
pub mod snapshot;
pub(crate) mod strategy;
pub mod validate;
pub mod values;

pub use project::Project;
