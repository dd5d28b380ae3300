//! Interop test harness: network namespaces, veth links, process guards and
//! drivers for the real peer daemons (BIRD 2, FRR, GoBGP) and for kroute.
//!
//! Requirements on the test machine (CI installs them):
//! * run as root (namespaces, veth, binding port 179);
//! * Debian packages `bird2`, `frr`, `gobgpd`, `iproute2`;
//! * `root` in group `frrvty` for `vtysh` (`usermod -a -G frrvty root`).
//!
//! Every test gets its own namespaces (`kt-<pid>-<n>-<tag>`) and its own temp
//! dir, so `cargo test` may run them in parallel. All processes are killed by
//! PID and all namespaces deleted on drop, also when the test panics; on a
//! panic the tail of every daemon log is printed and the temp dir is kept.
#![allow(dead_code)]

pub mod bird;
pub mod frr;
pub mod gobgp;
pub mod kernel;
pub mod kroute;
pub mod netns;
pub mod peer;
pub mod process;
pub mod scenarios;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use kernel::{kernel_routes, route_via, KernelRoute};
pub use netns::{veth, Lan, Netns};
#[allow(unused_imports)]
pub use peer::{PeerDaemon, PeerNeighbor, PeerRoute, PeerSpec};
pub use process::Proc;

/// How long convergence may take before a test fails. Generous: the peers'
/// timers are shortened (connect retry 2 s), so a healthy run needs a few
/// seconds; the bound only matters when something is broken.
pub const CONVERGE: Duration = Duration::from_secs(30);

/// Polling interval for [`wait_until`].
const POLL: Duration = Duration::from_millis(300);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A process-unique small number, for names of namespaces and interfaces.
pub fn unique() -> usize {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

/// Poll `check` until it returns `Ok`, at most `timeout`. `Err(state)` is the
/// last observed state; it is part of the panic message on timeout.
pub fn wait_until<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        match check() {
            Ok(v) => return v,
            Err(state) => {
                if start.elapsed() >= timeout {
                    panic!(
                        "timed out after {timeout:?} waiting for {what}; last observed: {state}"
                    );
                }
            }
        }
        std::thread::sleep(POLL);
    }
}

/// Panic, naming the Debian package, if `bin` is not on PATH (or not an
/// existing absolute path).
pub fn require_bin(bin: &str, debian_package: &str) {
    let found = if bin.starts_with('/') {
        Path::new(bin).exists()
    } else {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
            .unwrap_or(false)
    };
    assert!(
        found,
        "required binary `{bin}` not found: install the Debian package `{debian_package}` \
         (apt-get install {debian_package})"
    );
}

/// Panic unless running as root (namespaces need it).
pub fn require_root() {
    let out = Command::new("id").arg("-u").output().expect("run id -u");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "interop tests must run as root (network namespaces, port 179)"
    );
}

/// Run a command (no namespace), returning its output.
pub fn cmd(argv: &[&str]) -> Output {
    Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {argv:?}: {e}"))
}

/// Run a command and panic with its stderr if it fails; returns stdout.
pub fn cmd_ok(argv: &[&str]) -> String {
    let out = cmd(argv);
    check_output(argv, &out)
}

pub fn check_output(argv: &[&str], out: &Output) -> String {
    if !out.status.success() {
        panic!(
            "command {argv:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A per-test temporary directory under `/tmp/kroute-tests/`. Removed on drop
/// unless the test panicked (then its path is printed, logs are kept).
pub struct TestDir {
    pub path: PathBuf,
}

impl TestDir {
    pub fn new(tag: &str) -> TestDir {
        let path = PathBuf::from(format!(
            "/tmp/kroute-tests/{}-{}-{}",
            tag,
            std::process::id(),
            unique()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create test dir");
        TestDir { path }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The last `n` lines of a file, for failure reports.
pub fn tail(path: &Path, n: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(s) => {
            let lines: Vec<&str> = s.lines().collect();
            let from = lines.len().saturating_sub(n);
            lines[from..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Whether a process with this PID exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // pid (comm) STATE ...; comm may contain spaces and parentheses.
            let state = stat.rsplit_once(')').map(|(_, r)| r.trim_start());
            !matches!(
                state.and_then(|s| s.chars().next()),
                Some('Z') | Some('X') | None
            )
        }
        Err(_) => false,
    }
}

/// Send a signal to a PID with kill(1) (by PID only, never by name).
pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .output();
}

/// SIGTERM, wait up to `grace` for exit, then SIGKILL and wait a little more.
pub fn terminate_pid(pid: u32, grace: Duration) {
    if !pid_alive(pid) {
        return;
    }
    signal(pid, "TERM");
    let start = Instant::now();
    while pid_alive(pid) && start.elapsed() < grace {
        std::thread::sleep(Duration::from_millis(50));
    }
    if pid_alive(pid) {
        signal(pid, "KILL");
        let start = Instant::now();
        while pid_alive(pid) && start.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
