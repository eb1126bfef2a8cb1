//! The async runtime of the long-running servers (`serve`, `authz`).

use anyhow::Context as _;

/// A current-thread runtime on one core (a container limit, or taskset):
/// the work-stealing scheduler's cross-thread wake-ups cost more than they
/// give there. The multi-threaded one otherwise.
pub(crate) fn for_this_machine() -> anyhow::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if cores == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    }
    .context("cannot start the async runtime")
}
