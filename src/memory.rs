//! The daemon's dealings with the C heap (glibc's malloc), which holds everything the daemon
//! keeps: how many arenas it may use, and handing freed memory back to the system.

/// Limits glibc to one malloc arena per CPU (at least two) unless the administrator chose
/// otherwise with `MALLOC_ARENA_MAX`. glibc's default (eight per CPU) lets the hundreds of
/// short-lived blocking-pool threads that monitor 1,000 hosts at once each leave a
/// half-empty arena behind: about 3 MB of idle RSS at 10,000 VMs and 1,000 hosts
/// (docs/performance.md); the runtime's worker threads are one per CPU, so they never wait
/// for one another's arena.
pub fn limit_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    set_arena_max(cpus.max(2));
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_arena_max(arenas: usize) {
    let arenas = libc::c_int::try_from(arenas).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt only changes a malloc tunable; M_ARENA_MAX takes any positive count.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_arena_max(_arenas: usize) {}

/// Hands the free pages in the middle of the heaps back to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn give_back_free_memory() {
    // SAFETY: malloc_trim has no preconditions; it only releases free heap pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn give_back_free_memory() {}
