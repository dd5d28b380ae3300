//! Guard for a daemon process: killed by PID on drop (SIGTERM, then SIGKILL),
//! output in a log file, log tail printed when the test panics.

use super::{pid_alive, tail, terminate_pid, Netns};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

pub struct Proc {
    pub name: String,
    pid: u32,
    /// Set when we spawned the process ourselves (foreground daemons).
    child: Option<Child>,
    /// Logs whose tails are printed when the test fails.
    pub logs: Vec<PathBuf>,
    /// Reaped by [`Proc::stop_status`]: its PID may belong to someone else
    /// now, so it is not signalled again.
    reaped: bool,
}

impl Proc {
    /// Start `argv` in the foreground inside `ns` (`ip netns exec` execs it,
    /// so the child's PID is the daemon's), stdout+stderr to `log`.
    pub fn spawn(name: &str, ns: &Netns, argv: &[&str], envs: &[(&str, &str)], log: &Path) -> Proc {
        let out = File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let err = out.try_clone().expect("clone log fd");
        let mut c = ns.command(argv);
        for (k, v) in envs {
            c.env(k, v);
        }
        let child = c
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({argv:?}): {e}"));
        Proc {
            name: name.to_string(),
            pid: child.id(),
            child: Some(child),
            logs: vec![log.to_path_buf()],
            reaped: false,
        }
    }

    /// Adopt a daemon that forked itself, by its PID.
    pub fn adopt(name: &str, pid: u32, logs: Vec<PathBuf>) -> Proc {
        Proc {
            name: name.to_string(),
            pid,
            child: None,
            logs,
            reaped: false,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the process still runs (reaps it if it was our child).
    pub fn alive(&mut self) -> bool {
        if let Some(c) = self.child.as_mut() {
            if let Ok(Some(_)) = c.try_wait() {
                return false;
            }
        }
        pid_alive(self.pid)
    }

    /// Panic with the log tail if the process has exited.
    pub fn assert_alive(&mut self) {
        if !self.alive() {
            panic!(
                "{} (pid {}) exited:\n{}",
                self.name,
                self.pid,
                self.log_tails(40)
            );
        }
    }

    /// SIGTERM, then SIGKILL after `grace`; reap.
    pub fn stop(&mut self, grace: Duration) {
        terminate_pid(self.pid, grace);
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Like [`Proc::stop`], returning how the process ended (None when it
    /// was not our child). A status "signal: 9" means it ignored SIGTERM
    /// for `grace` and was killed.
    pub fn stop_status(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        if self.reaped {
            return None;
        }
        terminate_pid(self.pid, grace);
        let status = self.child.as_mut().and_then(|c| c.wait().ok());
        self.reaped = self.child.is_some();
        status
    }

    /// SIGKILL at once (a crash, as a peer would see it).
    pub fn kill(&mut self) {
        super::signal(self.pid, "KILL");
        if let Some(c) = self.child.as_mut() {
            let _ = c.wait();
        } else {
            let start = std::time::Instant::now();
            while pid_alive(self.pid) && start.elapsed() < Duration::from_secs(2) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    pub fn log_tails(&self, n: usize) -> String {
        let mut s = String::new();
        for l in &self.logs {
            s += &format!(
                "----- {} log {} (last {n} lines) -----\n{}\n",
                self.name,
                l.display(),
                tail(l, n)
            );
        }
        s
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tails(40));
        }
        if !self.reaped {
            self.stop(Duration::from_secs(3));
        }
    }
}
