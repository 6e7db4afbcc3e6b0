//! What every role of a Sparkify Lake cluster shares, and how each starts.
//!
//! - [`object_stores`]: how `s3://` and local locations resolve, on every role;
//! - [`session`]: the session settings, runtime and plan codec of every role;
//! - [`scheduler`], [`executor`]: Ballista's scheduler and executor with our setup;
//! - [`embedded`]: both in the client process, for the zero-setup default;
//! - [`engine`]: submitting jobs and following their progress; [`rest`]: the
//!   scheduler's REST API; [`shuffle`]: the bytes each stage shuffled, an
//!   endpoint of our scheduler; [`explain`]: a job's stages without running it.

pub mod embedded;
pub mod engine;
pub mod error;
pub mod executor;
pub mod explain;
pub mod logging;
pub mod object_stores;
pub mod rest;
pub mod scheduler;
pub mod session;
pub mod shuffle;

/// Every role allocates with mimalloc, as Ballista's own executor binary
/// does. A run allocates and frees small buffers at a high rate (a Parquet
/// writer per one-row partition file, a JSON decoder per song file), and
/// glibc's allocator spent 13% of the full input's run in `malloc` and `free`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
