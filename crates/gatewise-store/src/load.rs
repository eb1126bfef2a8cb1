//! How busy the CPUs are that this process runs on: the indexer waits
//! while they are busy, so that the call log does not take CPU from the
//! traffic it records.
//!
//! `SCHED_IDLE` alone is not enough: an indexer that fills every gap of a
//! saturated core is preempted at each wake-up of the gateway, and the
//! switches and the caches it cools cost the gateway about a quarter of its
//! throughput (measured with `bench/run.sh`, scenario G). So the indexer
//! asks a [`LoadProbe`] between chunks and, while the CPUs are busy, leaves
//! the records in the spool (up to half its size; past that it indexes
//! anyway, so that nothing is dropped).

use std::fmt;

/// Tells whether the CPUs are busy right now.
pub trait LoadProbe: Send {
    /// The fraction of time the CPUs were idle since the previous call
    /// (`0.0` busy .. `1.0` idle), counting the CPU time of thread
    /// `exclude` (a Linux thread id of this process; 0 for none) as idle,
    /// or `None` when it cannot be told (the first call, or no data on this
    /// platform).
    fn idle_fraction(&mut self, exclude: i32) -> Option<f64>;
}

/// Idle time of the CPUs in this process's affinity set, from Linux's
/// `/proc/stat` (`idle` and `iowait` against all columns up to `steal`).
///
/// The indexer's CPU time counts as idle: its own work must not make the
/// CPUs look busy (it would pause and resume in turn).
pub struct ProcStat {
    cpus: Vec<usize>,
    last: Option<(u64, u64)>,
}

impl fmt::Debug for ProcStat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcStat")
            .field("cpus", &self.cpus)
            .finish_non_exhaustive()
    }
}

impl ProcStat {
    /// A probe of the CPUs this process may run on (all CPUs when the
    /// affinity cannot be read).
    pub fn new() -> Self {
        ProcStat {
            cpus: affinity(),
            last: None,
        }
    }
}

impl Default for ProcStat {
    fn default() -> Self {
        ProcStat::new()
    }
}

#[cfg(target_os = "linux")]
fn affinity() -> Vec<usize> {
    match rustix::thread::sched_getaffinity(None) {
        Ok(set) => (0..rustix::thread::CpuSet::MAX_CPU)
            .filter(|&c| set.is_set(c))
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(not(target_os = "linux"))]
fn affinity() -> Vec<usize> {
    Vec::new()
}

impl LoadProbe for ProcStat {
    fn idle_fraction(&mut self, exclude: i32) -> Option<f64> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        let (idle, total) = cpu_times(&text, &self.cpus)?;
        let own = (exclude > 0)
            .then(|| std::fs::read_to_string(format!("/proc/self/task/{exclude}/stat")).ok())
            .flatten()
            .and_then(|t| thread_cpu(&t))
            .unwrap_or(0);
        let now = (idle + own, total);
        let last = self.last.replace(now)?;
        idle_between(last, now)
    }
}

/// `(idle, total)` jiffies of these CPUs (all when `cpus` is empty) in the
/// text of `/proc/stat`.
pub fn cpu_times(proc_stat: &str, cpus: &[usize]) -> Option<(u64, u64)> {
    let mut idle = 0u64;
    let mut total = 0u64;
    let mut seen = false;
    for line in proc_stat.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(name) = fields.next() else { continue };
        let Some(n) = name.strip_prefix("cpu") else {
            continue;
        };
        // "cpu" is the sum of all; "cpuN" one CPU.
        let wanted = if cpus.is_empty() {
            n.is_empty()
        } else {
            n.parse::<usize>().is_ok_and(|c| cpus.contains(&c))
        };
        if !wanted {
            continue;
        }
        // user nice system idle iowait irq softirq steal (guest time is
        // already in user).
        let v: Vec<u64> = fields.take(8).filter_map(|f| f.parse().ok()).collect();
        if v.len() < 5 {
            return None;
        }
        idle += v.iter().skip(3).take(2).sum::<u64>();
        total += v.iter().sum::<u64>();
        seen = true;
    }
    seen.then_some((idle, total))
}

/// `utime + stime` (jiffies) in the text of `/proc/<pid>/task/<tid>/stat`.
pub fn thread_cpu(stat: &str) -> Option<u64> {
    // Fields after the command name (in parentheses, which may hold
    // spaces): state is field 3, utime 14, stime 15 (man 5 proc).
    let mut rest = stat.rsplit_once(')')?.1.split_ascii_whitespace().skip(11);
    let utime: u64 = rest.next()?.parse().ok()?;
    let stime: u64 = rest.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The idle fraction between two samples of [`cpu_times`].
pub fn idle_between(before: (u64, u64), after: (u64, u64)) -> Option<f64> {
    let total = after.1.checked_sub(before.1)?;
    let idle = after.0.checked_sub(before.0)?;
    (total > 0).then(|| (idle as f64 / total as f64).clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  100 0 50 800 50 0 0 0 0 0\n\
        cpu0 90 0 40 300 20 0 0 0 0 0\n\
        cpu1 10 0 10 500 30 0 0 0 0 0\n\
        intr 12345\n";

    #[test]
    fn sums_the_cpus_asked_for() {
        assert_eq!(cpu_times(STAT, &[]), Some((850, 1000)));
        assert_eq!(cpu_times(STAT, &[0]), Some((320, 450)));
        assert_eq!(cpu_times(STAT, &[1]), Some((530, 550)));
        assert_eq!(cpu_times(STAT, &[0, 1]), Some((850, 1000)));
        assert_eq!(cpu_times(STAT, &[7]), None);
        assert_eq!(cpu_times("garbage", &[]), None);
        assert_eq!(cpu_times("cpu 1 2", &[]), None);
    }

    #[test]
    fn thread_cpu_time() {
        let stat = "4242 (calllog (idx)) S 1 1 1 0 -1 4194368 10 0 0 0 37 5 0 0 39 19 1 0";
        assert_eq!(thread_cpu(stat), Some(42));
        assert_eq!(thread_cpu("4242 (x) S 1"), None);
    }

    #[test]
    fn idle_fraction_between_samples() {
        assert_eq!(idle_between((300, 1000), (350, 1100)), Some(0.5));
        assert_eq!(idle_between((300, 1000), (300, 1100)), Some(0.0));
        assert_eq!(idle_between((300, 1000), (300, 1000)), None);
        // A counter that went backwards (CPU hot-unplugged): no answer.
        assert_eq!(idle_between((300, 1000), (200, 1100)), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_machine() {
        let mut p = ProcStat::new();
        assert!(!p.cpus.is_empty());
        assert_eq!(p.idle_fraction(0), None, "the first call has no interval");
        let mut spins = 0u64;
        // Some CPU time passes (bounded loop).
        for i in 0..5_000_000u64 {
            spins = spins.wrapping_add(i);
        }
        std::hint::black_box(spins);
        std::thread::yield_now();
        // Jiffies may not have moved yet: a value when they did.
        if let Some(f) = p.idle_fraction(0) {
            assert!((0.0..=1.0).contains(&f));
        }
    }
}
