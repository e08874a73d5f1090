//! What a client process costs: CPU time from getrusage, memory and threads
//! from /proc/self/status.

use std::time::Duration;

/// User plus system CPU time of this whole process (every thread) so far.
pub fn cpu_time() -> Duration {
    let (user, sys) = cpu_times();
    user + sys
}

/// User and system CPU time of this whole process (every thread) so far.
pub fn cpu_times() -> (Duration, Duration) {
    // SAFETY: getrusage fills the struct we pass; RUSAGE_SELF is always valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(usage.ru_utime), tv(usage.ru_stime))
}

/// A `/proc/self/status` field as a number (kB for the Vm* fields).
pub fn status_field(name: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Peak resident set size of this process so far, in kB.
pub fn peak_rss_kb() -> u64 {
    status_field("VmHWM").unwrap_or(0)
}

/// Resident set size now, in kB.
pub fn rss_kb() -> u64 {
    status_field("VmRSS").unwrap_or(0)
}

/// Threads of this process now.
pub fn threads() -> u64 {
    status_field("Threads").unwrap_or(0)
}
