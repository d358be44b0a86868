//! Scheduling priority for the threads that must keep real time: the audio engine and the
//! (virtual) device threads.
//!
//! On Linux the thread first asks for `SCHED_FIFO` (real-time; needs root or
//! `CAP_SYS_NICE`/`RLIMIT_RTPRIO`, as PipeWire and JACK get through rtkit); if refused, it
//! lowers its nice value as far as allowed, down to −19 (what Android's
//! `THREAD_PRIORITY_URGENT_AUDIO` is; apps may use it for their own audio threads). Elsewhere
//! nothing changes. The result is reported, never an error: a thread that stays at normal
//! priority still runs, only less reliably on a busy machine.

/// What [`raise_current_thread`] obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadPriority {
    /// `SCHED_FIFO` at this priority (1..=99).
    RealTime(i32),
    /// Normal scheduling at this nice value (< 0).
    Nice(i32),
    /// Unchanged.
    Normal,
}

impl ThreadPriority {
    pub fn is_raised(&self) -> bool {
        !matches!(self, ThreadPriority::Normal)
    }
}

impl std::fmt::Display for ThreadPriority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ThreadPriority::RealTime(p) => write!(f, "SCHED_FIFO {p}"),
            ThreadPriority::Nice(n) => write!(f, "nice {n}"),
            ThreadPriority::Normal => f.write_str("normal"),
        }
    }
}

/// `SCHED_FIFO` priority of the audio engine thread. Device threads (the hardware's callback
/// in a real phone) use [`DEVICE_RT_PRIORITY`], one above, as the platform's audio HAL does.
pub const ENGINE_RT_PRIORITY: i32 = 10;
pub const DEVICE_RT_PRIORITY: i32 = 11;
/// The nice value tried when real-time scheduling is refused.
pub const AUDIO_NICE: i32 = -19;

/// Raises the calling thread's priority as far as the platform allows (see the module docs).
/// Set `RUANG_NO_RT=1` to skip it (to compare behaviour without it).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn raise_current_thread(rt_priority: i32) -> ThreadPriority {
    if std::env::var_os("RUANG_NO_RT").is_some() {
        return ThreadPriority::Normal;
    }
    // SAFETY: plain syscalls on the calling thread with a valid, initialised argument.
    unsafe {
        #[cfg(target_os = "linux")]
        {
            let param = libc::sched_param {
                sched_priority: rt_priority.clamp(1, 99),
            };
            if libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) == 0 {
                return ThreadPriority::RealTime(param.sched_priority);
            }
        }
        #[cfg(target_os = "android")]
        let _ = rt_priority;
    }
    lower_nice(AUDIO_NICE, 4)
}

/// Sets the calling thread's nice value to `from`, or the first of `from + step`, … below 0
/// that the platform allows.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn lower_nice(from: i32, step: i32) -> ThreadPriority {
    // SAFETY: plain syscalls on the calling thread.
    let tid = unsafe { libc::gettid() };
    let mut nice = from;
    while nice < 0 {
        // SAFETY: as above; `tid` is the calling thread.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) } == 0 {
            return ThreadPriority::Nice(nice);
        }
        nice += step;
    }
    ThreadPriority::Normal
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn raise_current_thread(_rt_priority: i32) -> ThreadPriority {
    ThreadPriority::Normal
}

/// The nice value of the threads that carry packets (the client's async runtime, the SFU's
/// forwarding loops): above everything at normal priority, below the audio threads. Never
/// real-time: a loop that spins on a flood of packets must not be able to starve the machine.
pub const NETWORK_NICE: i32 = -10;

/// Lowers the calling thread's nice value to [`NETWORK_NICE`] (or as close as allowed), so a
/// busy machine — a CPU hog on a phone, backups on a small VPS — delays packets less: with
/// normal-priority hogs on every core, the packets of a talk spurt otherwise arrive in bursts
/// and the listener's jitter buffer grows. Set `RUANG_NO_RT=1` (everything) or
/// `RUANG_NO_NET_PRIORITY=1` (only this) to skip it.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn raise_network_thread() -> ThreadPriority {
    if std::env::var_os("RUANG_NO_RT").is_some()
        || std::env::var_os("RUANG_NO_NET_PRIORITY").is_some()
    {
        return ThreadPriority::Normal;
    }
    lower_nice(NETWORK_NICE, 5)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn raise_network_thread() -> ThreadPriority {
    ThreadPriority::Normal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raises_a_thread_and_reports_what_it_got() {
        let got = std::thread::spawn(|| {
            let p = raise_current_thread(ENGINE_RT_PRIORITY);
            #[cfg(target_os = "linux")]
            // SAFETY: reading the calling thread's own policy.
            unsafe {
                let policy = libc::sched_getscheduler(0);
                match p {
                    ThreadPriority::RealTime(_) => assert_eq!(policy, libc::SCHED_FIFO),
                    ThreadPriority::Nice(n) => {
                        assert_eq!(policy, libc::SCHED_OTHER);
                        assert_eq!(libc::getpriority(libc::PRIO_PROCESS, 0), n);
                    }
                    ThreadPriority::Normal => assert_eq!(policy, libc::SCHED_OTHER),
                }
            }
            p
        })
        .join()
        .unwrap();
        // Root (CI) may always use SCHED_FIFO.
        #[cfg(target_os = "linux")]
        // SAFETY: getuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 && std::env::var_os("RUANG_NO_RT").is_none() {
            assert_eq!(got, ThreadPriority::RealTime(ENGINE_RT_PRIORITY));
        }
        let _ = got.to_string();
    }

    #[test]
    fn a_network_thread_gets_a_lower_nice_value_never_real_time() {
        let (got, policy, nice) = std::thread::spawn(|| {
            let p = raise_network_thread();
            // SAFETY: reading the calling thread's own policy and nice value.
            #[cfg(target_os = "linux")]
            let seen = unsafe {
                (
                    libc::sched_getscheduler(0),
                    libc::getpriority(libc::PRIO_PROCESS, 0),
                )
            };
            #[cfg(not(target_os = "linux"))]
            let seen = (0, 0);
            (p, seen.0, seen.1)
        })
        .join()
        .unwrap();
        #[cfg(target_os = "linux")]
        {
            assert_eq!(policy, libc::SCHED_OTHER, "never real-time");
            match got {
                ThreadPriority::Nice(n) => {
                    assert!((NETWORK_NICE..0).contains(&n));
                    assert_eq!(nice, n);
                }
                ThreadPriority::Normal => assert_eq!(nice, 0),
                ThreadPriority::RealTime(_) => panic!("a network thread went real-time"),
            }
            // SAFETY: geteuid has no preconditions.
            let root = unsafe { libc::geteuid() } == 0;
            if root
                && std::env::var_os("RUANG_NO_RT").is_none()
                && std::env::var_os("RUANG_NO_NET_PRIORITY").is_none()
            {
                assert_eq!(got, ThreadPriority::Nice(NETWORK_NICE));
            }
        }
        let _ = (policy, nice);
    }
}
