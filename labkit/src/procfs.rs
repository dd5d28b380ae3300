//! What /proc says about a process: state, start time, CPU and memory.
//! See proc(5).

use std::fs;

/// The fields of `/proc/PID/stat` the kit uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Field 3: `R`, `S`, `D`, `Z` (zombie), `X` (dead), ...
    pub state: char,
    /// Fields 14-17, in clock ticks: user and system time of the process
    /// and of its reaped children.
    pub utime: u64,
    pub stime: u64,
    pub cutime: u64,
    pub cstime: u64,
    /// Field 22: clock ticks after boot at which it started. With the PID
    /// it names one process: a PID reused later has another start time.
    pub start_time: u64,
}

impl Stat {
    /// Parse the text of `/proc/PID/stat`.
    pub fn parse(text: &str) -> Option<Stat> {
        // `pid (comm) state ...`: comm may hold spaces and parentheses, so
        // the fields start after the *last* `)`.
        let rest = text.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        // f[0] is field 3 (state), so field N is f[N - 3].
        let num = |field: usize| f.get(field - 3)?.parse::<u64>().ok();
        Some(Stat {
            state: f.first()?.chars().next()?,
            utime: num(14)?,
            stime: num(15)?,
            cutime: num(16)?,
            cstime: num(17)?,
            start_time: num(22)?,
        })
    }

    pub fn read(pid: u32) -> Option<Stat> {
        Stat::parse(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    /// Running (or sleeping, ...): neither a zombie nor dead.
    pub fn is_running(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }

    /// CPU seconds of the process and its reaped children.
    pub fn cpu_seconds(&self) -> f64 {
        (self.utime + self.stime + self.cutime + self.cstime) as f64 / clock_ticks() as f64
    }
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`).
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(hz).ok().filter(|h| *h > 0).unwrap_or(100)
}

/// The start time of a running process (field 22), None when it is gone
/// or a zombie.
pub fn start_time(pid: u32) -> Option<u64> {
    Stat::read(pid)
        .filter(Stat::is_running)
        .map(|s| s.start_time)
}

/// Whether a process with this PID runs (not gone, not a zombie).
pub fn pid_running(pid: u32) -> bool {
    start_time(pid).is_some()
}

/// CPU seconds of a process and its reaped children.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    Stat::read(pid).map(|s| s.cpu_seconds())
}

/// Resident set size now and at its peak (VmRSS, VmHWM of
/// `/proc/PID/status`), KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mem {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

impl Mem {
    pub fn parse(status: &str) -> Option<Mem> {
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        };
        Some(Mem {
            rss_kib: field("VmRSS:")?,
            hwm_kib: field("VmHWM:")?,
        })
    }

    pub fn read(pid: u32) -> Option<Mem> {
        Mem::parse(&fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
    }
}

/// Sum of [`Mem`] over processes; None if any is gone.
pub fn sum_mem(pids: &[u32]) -> Option<Mem> {
    pids.iter().try_fold(Mem::default(), |acc, p| {
        let m = Mem::read(*p)?;
        Some(Mem {
            rss_kib: acc.rss_kib + m.rss_kib,
            hwm_kib: acc.hwm_kib + m.hwm_kib,
        })
    })
}

/// Sum of CPU seconds over processes; None if any is gone.
pub fn sum_cpu(pids: &[u32]) -> Option<f64> {
    pids.iter()
        .try_fold(0.0, |acc, p| Some(acc + cpu_seconds(*p)?))
}

/// (idle, total) jiffies of all CPUs since boot, from the first line of
/// `/proc/stat` (idle counts iowait too).
pub fn system_cpu_jiffies() -> Option<(u64, u64)> {
    parse_system_cpu(&fs::read_to_string("/proc/stat").ok()?)
}

fn parse_system_cpu(proc_stat: &str) -> Option<(u64, u64)> {
    let line = proc_stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is
    // already in user and nice).
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((idle, v.iter().take(8).sum()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real line, with a comm that holds a space and a parenthesis.
    const LINE: &str = "4242 (my (d) x) S 1 4242 4242 0 -1 4194560 2103 0 0 0 \
        17 9 3 1 20 0 4 0 987654 22953984 2047 18446744073709551615 1 1 0 0 0 0 0 \
        4096 17667 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn parses_stat_after_the_last_parenthesis() {
        let s = Stat::parse(LINE).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!((s.utime, s.stime, s.cutime, s.cstime), (17, 9, 3, 1));
        assert_eq!(s.start_time, 987654);
        assert!(s.is_running());
    }

    #[test]
    fn zombie_is_not_running() {
        let z = LINE.replace(") S ", ") Z ");
        assert!(!Stat::parse(&z).unwrap().is_running());
    }

    #[test]
    fn truncated_stat_is_none() {
        assert_eq!(Stat::parse("12 (x) S 1 2 3"), None);
        assert_eq!(Stat::parse("garbage"), None);
    }

    #[test]
    fn parses_status_memory() {
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(
            Mem::parse(status),
            Some(Mem {
                rss_kib: 1024,
                hwm_kib: 2048
            })
        );
        assert_eq!(Mem::parse("Name:\tkthread\n"), None);
    }

    #[test]
    fn parses_system_cpu_line() {
        let text = "cpu  10 1 5 100 4 0 2 0 7 0\ncpu0 5 0 2 50 2 0 1 0 0 0\n";
        assert_eq!(parse_system_cpu(text), Some((104, 122)));
        assert_eq!(parse_system_cpu("intr 1 2\n"), None);
        assert!(system_cpu_jiffies().is_some());
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let m = Mem::read(me).unwrap();
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib);
        assert!(cpu_seconds(me).unwrap() >= 0.0);
        assert!(start_time(me).is_some());
        assert!(pid_running(me));
    }
}
