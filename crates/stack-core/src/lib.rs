//! The library behind the `stack` command: load a stack, plan what applying
//! it would change, execute the plan against a cluster.
//!
//! The pipeline has three stages joined by plain data, each a module:
//!
//! - [`load`]: stack files are parsed with source positions, an environment
//!   is chosen, its values (and secrets) merged, every release's `{{ … }}`
//!   evaluated, the dependency graph built, the selection made and the
//!   selected releases rendered into objects. [`load::Project`] is the
//!   result; nothing in this stage touches a cluster.
//! - [`plan`]: the live objects are read and compared with the rendered
//!   ones, release by release ([`plan::Plan`]) — what `stack diff` prints.
//! - [`execute`]: a plan is applied, waited for, tested and rolled back on
//!   failure ([`execute::deploy::deploy`], [`execute::apply()`],
//!   [`execute::rollback`]), reporting through typed [`execute::event::Event`]s.
//!
//! [`cluster`] is the one place that talks to Kubernetes. [`secrets`] reads
//! and writes SOPS files, [`promote`] copies versions between environments,
//! and [`error`] owns how every problem is worded and which exit code it has.

pub mod cluster;
pub mod diagnostic;
pub mod error;
pub mod execute;
pub mod import;
pub mod load;
pub mod mask;
pub mod parallel;
pub mod plan;
pub mod promote;
pub mod secrets;
pub mod suggest;
pub mod yaml;
