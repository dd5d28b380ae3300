//! Memory and CPU of the receiver's processes, from /proc.

use std::fs;

/// Resident set size now and at its peak (VmRSS, VmHWM), KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mem {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

pub fn mem(pid: i32) -> Option<Mem> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    };
    Some(Mem {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

/// CPU seconds used by `pid` and its reaped children (utime + stime +
/// cutime + cstime).
pub fn cpu_seconds(pid: i32) -> Option<f64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces: state is field 3.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime is field 14 overall, i.e. index 11 after the state (field 3).
    let ticks: u64 = f
        .get(11..15)?
        .iter()
        .map(|v| v.parse::<u64>().unwrap_or(0))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(ticks as f64 / hz)
}

/// Sum over processes; None if any is gone.
pub fn sum_mem(pids: &[i32]) -> Option<Mem> {
    pids.iter().try_fold(Mem::default(), |acc, p| {
        let m = mem(*p)?;
        Some(Mem {
            rss_kib: acc.rss_kib + m.rss_kib,
            hwm_kib: acc.hwm_kib + m.hwm_kib,
        })
    })
}

pub fn sum_cpu(pids: &[i32]) -> Option<f64> {
    pids.iter()
        .try_fold(0.0, |acc, p| Some(acc + cpu_seconds(*p)?))
}

/// (idle, total) jiffies of all CPUs, from the first line of /proc/stat.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let s = fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((idle, v.iter().take(8).sum()))
}

/// Waits (at most `max`) until the machine has been at least 90 % idle for
/// half a second: the kernel tears a namespace down in the background after
/// it is deleted (a full table's routes and sockets), and a run started
/// meanwhile measured that too (seen as runs 3× slower than their
/// neighbours, for every receiver). Returns the seconds waited.
pub fn wait_idle(max: std::time::Duration) -> f64 {
    let start = std::time::Instant::now();
    let mut last = cpu_jiffies();
    while start.elapsed() < max {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let now = cpu_jiffies();
        if let (Some((i0, t0)), Some((i1, t1))) = (last, now) {
            if t1 > t0 && (i1 - i0) as f64 / (t1 - t0) as f64 >= 0.9 {
                break;
            }
        }
        last = now;
    }
    start.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_self() {
        let me = std::process::id() as i32;
        let m = mem(me).unwrap();
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib);
        assert!(cpu_seconds(me).unwrap() >= 0.0);
    }
}
