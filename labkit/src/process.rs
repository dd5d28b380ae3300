//! Daemon processes: started (optionally inside a namespace) with their
//! output in a log file, or adopted by PID; stopped by PID (SIGTERM, a
//! grace period, SIGKILL), never by name.
//!
//! A process is named by its PID *and* its start time ([`ProcId`]): a PID
//! the kernel hands to another process after ours died is never signalled.

use std::fs::{File, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{io, last_lines, Error, Result};
use crate::netns::Netns;
use crate::procfs;
use crate::wait::{wait_for, Attempt};

/// How long a process may take to die after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(2);
const EXIT_POLL: Duration = Duration::from_millis(20);
/// Lines of a log shown when a daemon fails.
pub const LOG_TAIL_LINES: usize = 30;

/// One process: its PID and its start time (`/proc/PID/stat` field 22).
/// Kept in `kroute lab`'s state file, so it serializes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcId {
    pub pid: u32,
    pub start_time: u64,
}

impl ProcId {
    /// The process running as `pid` now, if any.
    pub fn of(pid: u32) -> Option<ProcId> {
        procfs::start_time(pid).map(|start_time| ProcId { pid, start_time })
    }

    /// Still running, and still the process we mean.
    pub fn alive(&self) -> bool {
        procfs::start_time(self.pid) == Some(self.start_time)
    }

    /// Send `sig` if the process is still ours. Returns whether it was sent.
    pub fn signal(&self, sig: libc::c_int) -> bool {
        let Ok(pid) = libc::pid_t::try_from(self.pid) else {
            return false;
        };
        if !self.alive() {
            return false;
        }
        // SAFETY: kill(2) on a PID whose start time we just checked.
        unsafe { libc::kill(pid, sig) == 0 }
    }

    /// Wait up to `timeout` for the process to be gone.
    fn wait_gone(&self, timeout: Duration) -> bool {
        let start = Instant::now();
        while self.alive() {
            if start.elapsed() >= timeout {
                return false;
            }
            std::thread::sleep(EXIT_POLL);
        }
        true
    }

    /// SIGTERM; after `grace` SIGKILL. An error if it is still there after
    /// that. Nothing to do when it is already gone.
    pub fn terminate(&self, grace: Duration) -> Result<()> {
        if !self.signal(libc::SIGTERM) {
            return Ok(());
        }
        if self.wait_gone(grace) {
            return Ok(());
        }
        self.signal(libc::SIGKILL);
        if self.wait_gone(KILL_WAIT) {
            Ok(())
        } else {
            Err(Error::Other(format!(
                "pid {} does not die after SIGKILL",
                self.pid
            )))
        }
    }
}

/// How to start a process: `Spawn::new(name, argv)`, then options, then
/// [`Spawn::start`].
#[derive(Debug, Clone)]
pub struct Spawn {
    name: String,
    argv: Vec<String>,
    ns: Option<String>,
    envs: Vec<(String, String)>,
    log: Option<PathBuf>,
    append: bool,
    detached: bool,
    process_group: bool,
}

impl Spawn {
    /// `name` labels messages (e.g. "bgpd"); `argv[0]` is the program.
    pub fn new(name: &str, argv: &[&str]) -> Spawn {
        Spawn {
            name: name.to_string(),
            argv: argv.iter().map(|a| a.to_string()).collect(),
            ns: None,
            envs: Vec::new(),
            log: None,
            append: false,
            detached: false,
            process_group: false,
        }
    }

    /// Run inside `ns` (`ip netns exec`, which execs the program: the PID
    /// is the program's).
    pub fn netns(mut self, ns: &Netns) -> Spawn {
        self.ns = Some(ns.name().to_string());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Spawn {
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    /// stdout and stderr to `path` (truncated; see [`Spawn::append_log`]).
    /// Without a log they go to /dev/null.
    pub fn log(mut self, path: &Path) -> Spawn {
        self.log = Some(path.to_path_buf());
        self
    }

    /// Append to the log instead of truncating it.
    pub fn append_log(mut self) -> Spawn {
        self.append = true;
        self
    }

    /// Its own session (setsid) and not waited for, so that it can outlive
    /// this program (init adopts it when we exit). The [`Process`] is still
    /// stopped on drop until [`Process::detach`] is called: a daemon that
    /// fails to come up is not left behind.
    pub fn detached(mut self) -> Spawn {
        self.detached = true;
        self
    }

    /// Its own process group, so a Ctrl-C at the terminal reaches only
    /// this program, which then stops it in order.
    pub fn own_process_group(mut self) -> Spawn {
        self.process_group = true;
        self
    }

    fn command(&self) -> Command {
        let mut c = match &self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).args(&self.argv);
                c
            }
            None => {
                let mut c = Command::new(&self.argv[0]);
                c.args(&self.argv[1..]);
                c
            }
        };
        c.envs(self.envs.iter().map(|(k, v)| (k, v)));
        c
    }

    fn log_file(&self) -> Result<Option<File>> {
        let Some(path) = &self.log else {
            return Ok(None);
        };
        let f = if self.append {
            OpenOptions::new().create(true).append(true).open(path)
        } else {
            File::create(path)
        };
        f.map(Some).map_err(io(format!("open {}", path.display())))
    }

    /// Start it. An error if it cannot start or is gone at once.
    pub fn start(self) -> Result<Process> {
        let mut c = self.command();
        c.stdin(Stdio::null());
        match self.log_file()? {
            Some(out) => {
                let err = out.try_clone().map_err(io("clone the log fd"))?;
                c.stdout(Stdio::from(out)).stderr(Stdio::from(err));
            }
            None => {
                c.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        if self.detached {
            // SAFETY: setsid(2) is async-signal-safe and touches only the child.
            unsafe {
                c.pre_exec(|| {
                    if libc::setsid() < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        } else if self.process_group {
            c.process_group(0);
        }
        let child = c.spawn().map_err(|source| Error::Spawn {
            argv: self.argv.join(" "),
            ns: self.ns.clone(),
            source,
        })?;
        let pid = child.id();
        let logs: Vec<PathBuf> = self.log.iter().cloned().collect();
        let Some(id) = ProcId::of(pid) else {
            let mut child = child;
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            return Err(Error::Exited {
                name: self.name.clone(),
                pid,
                ns: self.ns.clone(),
                log_tail: format!("({status})\n{}", tails(&self.name, &logs, LOG_TAIL_LINES)),
            });
        };
        Ok(Process {
            name: self.name,
            id,
            ns: self.ns,
            // A detached child is not waited for: it must outlive us.
            child: if self.detached { None } else { Some(child) },
            exit: None,
            logs,
            keep: false,
        })
    }
}

/// A running daemon. Stopped (SIGTERM, 3 s, SIGKILL) on drop unless it was
/// [`Process::detach`]ed (or adopted); when dropped during a panic it
/// prints its log tails first.
#[derive(Debug)]
pub struct Process {
    name: String,
    id: ProcId,
    ns: Option<String>,
    /// Set when we spawned it and wait for it.
    child: Option<Child>,
    /// How it ended, once reaped (its PID may be someone else's then).
    exit: Option<ExitStatus>,
    logs: Vec<PathBuf>,
    /// Not stopped on drop.
    keep: bool,
}

impl Process {
    /// A process we did not start (a daemon that forked), by PID; not
    /// stopped on drop (see [`Process::stop_on_drop`]).
    pub fn adopt(name: &str, pid: u32, logs: Vec<PathBuf>) -> Result<Process> {
        let id = ProcId::of(pid).ok_or_else(|| Error::Exited {
            name: name.to_string(),
            pid,
            ns: None,
            log_tail: tails(name, &logs, LOG_TAIL_LINES),
        })?;
        Ok(Process::from_id(name, id, logs))
    }

    /// Adopt the process whose PID `pid_file` holds, waiting up to
    /// `timeout` for the file.
    pub fn adopt_pid_file(
        name: &str,
        pid_file: &Path,
        logs: Vec<PathBuf>,
        timeout: Duration,
    ) -> Result<Process> {
        let pid = wait_for(
            &format!("{name}'s pid file {}", pid_file.display()),
            timeout,
            || {
                std::fs::read_to_string(pid_file)
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok())
            },
        )?;
        Process::adopt(name, pid, logs)
    }

    /// A process recorded earlier (e.g. in a state file); not stopped on
    /// drop.
    pub fn from_id(name: &str, id: ProcId, logs: Vec<PathBuf>) -> Process {
        Process {
            name: name.to_string(),
            id,
            ns: None,
            child: None,
            exit: None,
            logs,
            keep: true,
        }
    }

    /// Stop it on drop after all (for adopted processes).
    pub fn stop_on_drop(mut self) -> Process {
        self.keep = false;
        self
    }

    /// Keep it running after this value is gone; returns its identity.
    pub fn detach(mut self) -> ProcId {
        self.keep = true;
        // Not waited for any more: init adopts it when we exit.
        self.child = None;
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn id(&self) -> ProcId {
        self.id
    }

    pub fn pid(&self) -> u32 {
        self.id.pid
    }

    pub fn logs(&self) -> &[PathBuf] {
        &self.logs
    }

    /// Another log to show in [`Process::log_tail`].
    pub fn add_log(&mut self, path: &Path) {
        self.logs.push(path.to_path_buf());
    }

    /// Reap our child if it has exited.
    fn reap(&mut self) {
        if self.exit.is_none() {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    self.exit = Some(status);
                }
            }
        }
    }

    /// Whether it still runs.
    pub fn alive(&mut self) -> bool {
        self.reap();
        self.exit.is_none() && self.id.alive()
    }

    /// How it ended, if it was our child and has been reaped.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.reap();
        self.exit
    }

    /// An error with the log tail if it is gone.
    pub fn check_alive(&mut self) -> Result<()> {
        if self.alive() {
            return Ok(());
        }
        let status = self.exit.map(|s| format!(" ({s})")).unwrap_or_default();
        Err(Error::Exited {
            name: format!("{}{status}", self.name),
            pid: self.id.pid,
            ns: self.ns.clone(),
            log_tail: self.log_tail(LOG_TAIL_LINES),
        })
    }

    /// Poll `probe` (see [`wait_for`]) until it answers, at most `timeout`;
    /// fails at once, with the log tail, if the process exits meanwhile.
    pub fn wait_ready<A: Attempt>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut probe: impl FnMut() -> A,
    ) -> Result<A::Output> {
        let answer = wait_for(what, timeout, || {
            if !self.alive() {
                return Ok(None);
            }
            probe().into_result().map(Some)
        })?;
        match answer {
            Some(v) => Ok(v),
            None => self.check_alive().and(Err(Error::Other(format!(
                "{} exited while waiting for {what}",
                self.name
            )))),
        }
    }

    /// Send a signal (if it still runs).
    pub fn signal(&self, sig: libc::c_int) -> bool {
        self.exit.is_none() && self.id.signal(sig)
    }

    /// SIGTERM, then SIGKILL after `grace`; reaps it. Returns how it ended
    /// when it was our child (`signal: 9` means it ignored SIGTERM for
    /// `grace`).
    pub fn stop(&mut self, grace: Duration) -> Result<Option<ExitStatus>> {
        self.reap();
        if self.exit.is_none() {
            self.id.terminate(grace)?;
        }
        self.wait_child()
    }

    /// SIGKILL at once (a crash, as a peer sees it); reaps it.
    pub fn kill(&mut self) -> Result<Option<ExitStatus>> {
        self.reap();
        if self.exit.is_none() && self.id.signal(libc::SIGKILL) && !self.id.wait_gone(KILL_WAIT) {
            return Err(Error::Other(format!(
                "{} (pid {}) does not die after SIGKILL",
                self.name, self.id.pid
            )));
        }
        self.wait_child()
    }

    fn wait_child(&mut self) -> Result<Option<ExitStatus>> {
        if self.exit.is_none() {
            if let Some(c) = self.child.as_mut() {
                self.exit = Some(c.wait().map_err(io(format!("wait for {}", self.name)))?);
            }
        }
        Ok(self.exit)
    }

    /// The last `n` lines of each of its logs, with headers.
    pub fn log_tail(&self, n: usize) -> String {
        tails(&self.name, &self.logs, n)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail(LOG_TAIL_LINES));
        }
        if let Err(e) = self.stop(Duration::from_secs(3)) {
            eprintln!("warning: stopping {}: {e}", self.name);
        }
    }
}

/// The last `n` lines of a file, or why it cannot be read.
pub fn tail(path: &Path, n: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => last_lines(&text, n),
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

fn tails(name: &str, logs: &[PathBuf], n: usize) -> String {
    logs.iter()
        .map(|l| {
            format!(
                "----- {name}: {} (last {n} lines) -----\n{}\n",
                l.display(),
                tail(l, n)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("labkit-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn stop_terminates_and_reaps() {
        let dir = tmp("stop");
        let log = dir.join("sleep.log");
        let mut p = Spawn::new("sleep", &["sh", "-c", "echo started; exec sleep 60"])
            .log(&log)
            .start()
            .unwrap();
        let id = p.id();
        assert!(p.alive());
        wait_for("the log line", Duration::from_secs(5), || {
            tail(&log, 1).contains("started").then_some(())
        })
        .unwrap();
        let status = p.stop(Duration::from_secs(5)).unwrap().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(15)
        );
        assert!(!id.alive());
        assert!(!p.alive());
        assert!(p.log_tail(5).contains("started"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn sigkill_after_grace_when_sigterm_is_ignored() {
        let mut p = Spawn::new("stubborn", &["sh", "-c", "trap '' TERM; sleep 60 & wait"])
            .start()
            .unwrap();
        // Let the shell install its trap.
        std::thread::sleep(Duration::from_millis(200));
        let status = p.stop(Duration::from_millis(300)).unwrap().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
    }

    #[test]
    fn exited_process_is_reported_with_its_log() {
        let dir = tmp("exit");
        let log = dir.join("fail.log");
        let mut p = Spawn::new("fail", &["sh", "-c", "echo bad config; exit 2"])
            .log(&log)
            .start();
        // It may be gone before `start` looks: either error carries the log.
        let err = match p.as_mut() {
            Ok(p) => p
                .wait_ready("never ready", Duration::from_secs(5), || None::<()>)
                .unwrap_err(),
            Err(_) => p.unwrap_err(),
        };
        let text = err.to_string();
        assert!(text.contains("bad config"), "{text}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn recycled_pid_is_not_ours() {
        let me = ProcId::of(std::process::id()).unwrap();
        assert!(me.alive());
        let other = ProcId {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!other.alive());
        // Not signalled: SIGTERM would end this test run.
        assert!(!other.signal(libc::SIGTERM));
    }

    #[test]
    fn adopt_from_pid_file() {
        let dir = tmp("adopt");
        let pid_file = dir.join("d.pid");
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        std::fs::write(&pid_file, format!("{}\n", child.id())).unwrap();
        let p = Process::adopt_pid_file("sleep", &pid_file, vec![], Duration::from_secs(2))
            .unwrap()
            .stop_on_drop();
        assert_eq!(p.pid(), child.id());
        drop(p);
        // Killed by PID; reap it here (it is this test's child).
        let status = child.wait().unwrap();
        assert!(!status.success());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn serializes_for_state_files() {
        let id = ProcId {
            pid: 7,
            start_time: 99,
        };
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, r#"{"pid":7,"startTime":99}"#);
        assert_eq!(serde_json::from_str::<ProcId>(&json).unwrap(), id);
    }
}
