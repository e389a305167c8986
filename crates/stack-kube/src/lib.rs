//! The Kubernetes object model `stack` and its simulated cluster share:
//! objects as `stack` renders them ([`object`]), which kinds are
//! cluster-scoped ([`kinds`]), resource quantities ([`quantity`]), field
//! sets and ownership as server-side apply sees them ([`fields`]), release
//! revisions as they are kept in the cluster ([`revision`]), and the clock
//! ([`clock`]). Pure data and encodings: no I/O, no cluster.

pub mod clock;
pub mod fields;
pub mod hex;
pub mod kinds;
pub mod object;
pub mod quantity;
pub mod revision;
