//! Network namespaces, processes started inside them, and cleanup that
//! happens whatever goes wrong: every namespace and process the harness
//! creates is recorded in one registry; guards remove them when dropped and a
//! SIGINT/SIGTERM handler removes whatever is left. Processes are killed by
//! the PID we started, never by name.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Registry {
    pids: Vec<i32>,
    netns: Vec<String>,
    dirs: Vec<PathBuf>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    pids: Vec::new(),
    netns: Vec::new(),
    dirs: Vec::new(),
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is a local byte.
        unsafe {
            libc::write(fd, (&b as *const u8).cast(), 1);
        }
    }
}

/// On SIGINT/SIGTERM/SIGHUP: kill every registered process, delete every
/// registered namespace and directory, exit 130. Handlers are reset by
/// exec(2), so the daemons we start keep default signal behaviour.
pub fn install_signal_cleanup() {
    let mut fds = [0; 2];
    // SAFETY: plain syscalls with valid pointers; the handler only writes.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return;
        }
        SIGNAL_PIPE.store(fds[1], Ordering::Relaxed);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
    let rd = fds[0];
    thread::spawn(move || {
        let mut b = 0u8;
        // SAFETY: reading one byte into a local.
        let n = unsafe { libc::read(rd, (&mut b as *mut u8).cast(), 1) };
        if n == 1 {
            eprintln!("kroute-bench: signal {b}, cleaning up");
            cleanup_all();
            std::process::exit(130);
        }
    });
}

/// Kill all registered processes, delete namespaces and directories.
pub fn cleanup_all() {
    let (pids, netns, dirs) = {
        let mut r = registry();
        (
            std::mem::take(&mut r.pids),
            std::mem::take(&mut r.netns),
            std::mem::take(&mut r.dirs),
        )
    };
    for pid in &pids {
        // SAFETY: a PID we started and have not reaped, so not reused.
        unsafe {
            libc::kill(*pid, libc::SIGKILL);
        }
    }
    for ns in &netns {
        let _ = Command::new("ip")
            .args(["netns", "del", ns])
            .stderr(Stdio::null())
            .status();
    }
    for d in &dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// A unique name stem for this process: `kb-<pid>-<n>`.
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "kb-{}-{}{}",
        std::process::id(),
        tag,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn run(cmd: &mut Command) -> io::Result<Output> {
    let out = cmd.stdin(Stdio::null()).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{:?} failed: {}",
            cmd,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
}

fn ip(args: &[&str]) -> io::Result<()> {
    run(Command::new("ip").args(args)).map(|_| ())
}

/// A network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn create(name: &str) -> io::Result<Netns> {
        ip(&["netns", "add", name])?;
        registry().netns.push(name.to_string());
        let ns = Netns {
            name: name.to_string(),
        };
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// A command that runs inside this namespace; see [`command_in`].
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> io::Result<Command> {
        command_in(&self.path(), program)
    }
}

/// Move the calling thread into the namespace at `ns_path` (for the threads
/// that poll its kernel or speak BGP from it).
pub fn enter_thread(ns_path: &Path) -> io::Result<()> {
    let f = File::open(ns_path)?;
    // SAFETY: valid fd; affects only the calling thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
        registry().netns.retain(|n| n != &self.name);
    }
}

/// A command that runs inside the namespace at `ns_path` (setns before
/// exec), in its own process group so a Ctrl-C reaches only the harness,
/// which then cleans up in order.
pub fn command_in(ns_path: &Path, program: impl AsRef<std::ffi::OsStr>) -> io::Result<Command> {
    let f = File::open(ns_path)?;
    let mut c = Command::new(program);
    c.process_group(0);
    // SAFETY: setns(2) is async-signal-safe; the closure owns `f`.
    unsafe {
        c.pre_exec(move || {
            if libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(c)
}

/// Addresses of the link between the sender and the receiver namespaces.
pub const SENDER_V4: &str = "10.255.255.1";
pub const RECEIVER_V4: &str = "10.255.255.2";
pub const SENDER_V6: &str = "fd00:6b62::1";
pub const RECEIVER_V6: &str = "fd00:6b62::2";
pub const RECEIVER_IF: &str = "eth-r";

/// A sender namespace and a receiver namespace joined by a veth pair.
pub struct Pair {
    pub sender: Netns,
    pub receiver: Netns,
}

impl Pair {
    pub fn create(stem: &str) -> io::Result<Pair> {
        let sender = Netns::create(&format!("{stem}-s"))?;
        let receiver = Netns::create(&format!("{stem}-r"))?;
        ip(&[
            "-n",
            &sender.name,
            "link",
            "add",
            "eth-s",
            "type",
            "veth",
            "peer",
            "name",
            RECEIVER_IF,
            "netns",
            &receiver.name,
        ])?;
        for (ns, ifname, v4, v6) in [
            (&sender, "eth-s", SENDER_V4, SENDER_V6),
            (&receiver, RECEIVER_IF, RECEIVER_V4, RECEIVER_V6),
        ] {
            let n = &ns.name;
            ip(&["-n", n, "addr", "add", &format!("{v4}/30"), "dev", ifname])?;
            // nodad: usable at once (FRR and BIRD ignore tentative addresses).
            ip(&[
                "-n",
                n,
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                ifname,
                "nodad",
            ])?;
            ip(&["-n", n, "link", "set", ifname, "up"])?;
        }
        Ok(Pair { sender, receiver })
    }
}

/// A process we started: registered for signal cleanup, killed (TERM, then
/// KILL after `grace`) and reaped on drop.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> io::Result<Proc> {
        let out = File::create(log)?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("starting {name}: {e}")))?;
        registry().pids.push(child.id() as i32);
        Ok(Proc {
            name: name.to_string(),
            child: Some(child),
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// Exit status if it has exited (and then it is reaped).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    pub fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let pid = c.id() as i32;
        if c.try_wait().ok().flatten().is_none() {
            // SAFETY: our unreaped child.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        registry().pids.retain(|p| *p != pid);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A directory removed on drop (unless `keep` is set) and on signal.
pub struct TempDir {
    pub path: PathBuf,
    pub keep: bool,
}

impl TempDir {
    pub fn create(path: PathBuf) -> io::Result<TempDir> {
        std::fs::create_dir_all(&path)?;
        registry().dirs.push(path.clone());
        Ok(TempDir { path, keep: false })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        registry().dirs.retain(|d| d != &self.path);
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
