//! The process's own resources: real-time scheduling, locked memory, and heap trimming. The
//! daemon's only direct calls into libc outside the drivers (unsafe: each block says why it
//! is sound).
#![allow(unsafe_code)]

use tracing::warn;
use upkeep_config::Global;

/// Hands the heap's free memory back to the kernel. Parsing a config (the KDL tree keeps every
/// token and its span) peaks at several times what the daemon then keeps, and malloc would hold
/// on to that peak for the life of the process. Called after start-up and after each reload.
pub(super) fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks and trims glibc's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Real-time scheduling and locked memory, when asked for (keepalived's vrrp_rt_priority and
/// its mlockall): adverts then never wait behind other processes or page faults.
pub(super) fn tune_process(global: &Global) {
    if let Some(prio) = global.realtime_priority {
        let param = libc::sched_param {
            sched_priority: i32::from(prio),
        };
        // Reset on fork: scripts, and threads started later (the plugin host's), run under
        // SCHED_OTHER; a looping check must not starve the host, adverts included.
        let policy = libc::SCHED_RR | libc::SCHED_RESET_ON_FORK;
        // SAFETY: sched_setscheduler on this process with a valid, initialised sched_param.
        if unsafe { libc::sched_setscheduler(0, policy, &param) } != 0 {
            warn!(
                "realtime-priority {prio}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    if global.lock_memory {
        // SAFETY: plain syscall with flag constants.
        if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } != 0 {
            warn!("lock-memory: {}", std::io::Error::last_os_error());
        }
    }
}
