//! Test support shared by Periscope's crates.
//!
//! - [`MemStore`]: an in-memory [`periscope_storage::Queryable`], the simplest store the query
//!   engine can run over (the test kit is one of the two places allowed to name concrete
//!   stores).
//! - [`promqltest`]: a runner for Prometheus's PromQL test scripts (`*.test`), executed over a
//!   `MemStore` with `periscope-promql`, with a checked-in list of known failures.

mod error;
pub mod memstore;
pub mod promqltest;

pub use error::TestkitError;
pub use memstore::MemStore;
