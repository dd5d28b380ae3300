//! Waiting for the machine to be idle between runs. (The receivers' memory
//! and CPU come from labkit's `procfs`.)

use labkit::procfs::system_cpu_jiffies as cpu_jiffies;

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
