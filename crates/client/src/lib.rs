//! The client side of a Sparkify Lake cluster, as Ballista splits its own
//! client from its core: what `submit` needs and no scheduler or executor
//! process links.
//!
//! - [`engine`]: submitting jobs and following their progress;
//! - [`rest`]: the scheduler's REST API;
//! - [`explain`]: a job's stages without running it;
//! - [`embedded`]: a scheduler and an executor in the client's own process,
//!   for the zero-setup default;
//! - [`error`]: what goes wrong between the client and a cluster.

pub mod embedded;
pub mod engine;
pub mod error;
pub mod explain;
pub mod rest;
