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

/// Makes mimalloc return freed memory to the kernel at once; the roles
/// call it when given a memory budget.
///
/// mimalloc (v3) keeps freed memory for a second before it returns it
/// (`purge_delay`, 1,000 ms), so a process's RSS runs ahead of what it
/// holds. With a 1 GiB budget, a million songs by `year-artist` peaked at
/// 2.2 GiB RSS with the delay and 1.65 GiB without it; at 200,000 songs
/// returning memory at once costs about 3 s more system time (`madvise`),
/// a second of the run's wall time, which only a budget is worth.
pub fn return_freed_memory_at_once() {
    // mimalloc.h's `mi_option_purge_delay`, which libmimalloc-sys does not
    // name (it names 14 and 16, the options around it).
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets an integer option; mimalloc reads it at each purge.
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
}

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

#[cfg(test)]
mod tests {
    /// The option set by number is mimalloc's purge delay: it starts at
    /// v3's default of 1,000 ms (unless MIMALLOC_PURGE_DELAY says
    /// otherwise) and is 0 afterwards. Another option at that number would
    /// not start at 1,000.
    #[test]
    fn freed_memory_is_returned_at_once_after_the_call() {
        // SAFETY: reads an integer option.
        let delay = || unsafe { libmimalloc_sys::mi_option_get(15) };
        let expected = std::env::var("MIMALLOC_PURGE_DELAY")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        assert_eq!(delay(), expected);
        super::return_freed_memory_at_once();
        assert_eq!(delay(), 0);
    }
}
