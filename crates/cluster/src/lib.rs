//! What every role of a Sparkify Lake cluster shares, and how the scheduler
//! and the executor start (the client's side is the `client` crate).
//!
//! - [`object_stores`]: how `s3://` and local locations resolve, on every role;
//! - [`session`]: the session settings, runtime and plan codec of every role;
//! - [`scheduler`], [`executor`]: Ballista's scheduler and executor with our setup;
//! - [`shuffle`]: the bytes each stage shuffled, an endpoint of our
//!   scheduler that the client reads;
//! - [`logging`]: how every role logs;
//! - [`flags`]: what our scheduler and executor take beyond Ballista's flags,
//!   and [`role`]: how both start and end.

pub mod executor;
pub mod flags;
pub mod logging;
pub mod object_stores;
pub mod role;
pub mod scheduler;
pub mod session;
pub mod shuffle;

/// Every role allocates with mimalloc, as Ballista's own executor binary
/// does. A run allocates and frees small buffers at a high rate (a Parquet
/// writer per one-row partition file, a JSON decoder per song file), and
/// glibc's allocator spent 13% of the full input's run in `malloc` and `free`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process and the processes it
/// starts; every role calls it first thing in `main`.
///
/// Where the kernel's THP mode is `always`, the first touch of any 2 MiB
/// region of mimalloc's arenas zeroes a whole huge page, and mimalloc's
/// return of freed memory to the kernel makes the next touch zero it again.
/// At 200,000 songs that was 2 s of system time in `clear_page` out of 9, and
/// 80 MiB more peak memory (README, "Where the time goes"). mimalloc's own
/// `allow_thp` option does the same, but only from the environment, read
/// before `main`. A kernel without the setting keeps THP: slower, not wrong.
pub fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integers only and touches no memory.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
