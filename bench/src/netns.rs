//! The benchmark's two namespaces, and cleanup that happens whatever goes
//! wrong. Namespaces and processes are labkit's: owned values that delete
//! the namespace or stop the process (by PID) when dropped. What a Ctrl-C
//! interrupts is not dropped, so every namespace, process and scratch
//! directory is also recorded here, and a SIGINT/SIGTERM handler removes
//! whatever is left.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;
use std::thread;

use labkit::{veth, Netns, ProcId, ScratchDir, Setup};

/// What exists until its owner drops it. Entries stay listed after that:
/// each is unique to this run (names carry our PID, a process is named by
/// PID *and* start time), so cleaning up one that is already gone does
/// nothing. A directory kept for its logs leaves the list (`keep_dir`).
struct Registry {
    processes: Vec<ProcId>,
    netns: Vec<String>,
    dirs: Vec<PathBuf>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    processes: Vec::new(),
    netns: Vec::new(),
    dirs: Vec::new(),
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Record the processes of a receiver for the signal handler.
pub fn register_pids(pids: &[u32]) {
    let ids = pids.iter().filter_map(|p| ProcId::of(*p));
    registry().processes.extend(ids);
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
fn cleanup_all() {
    let (processes, netns, dirs) = {
        let mut r = registry();
        (
            std::mem::take(&mut r.processes),
            std::mem::take(&mut r.netns),
            std::mem::take(&mut r.dirs),
        )
    };
    for p in &processes {
        p.signal(libc::SIGKILL);
    }
    for ns in netns.into_iter().filter(|n| Netns::exists(n)) {
        if let Ok(ns) = Netns::open(&ns) {
            let _ = ns.delete();
        }
    }
    for d in &dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// A unique name stem for this process: `kb-<pid>-<n>-<tag>`.
pub fn unique(tag: &str) -> String {
    labkit::netns::unique_name("kb", tag)
}

/// Addresses of the link between the sender and the receiver namespaces.
pub const SENDER_V4: &str = "10.255.255.1";
pub const RECEIVER_V4: &str = "10.255.255.2";
pub const SENDER_V6: &str = "fd00:6b62::1";
pub const RECEIVER_V6: &str = "fd00:6b62::2";
pub const RECEIVER_IF: &str = "eth-r";
const SENDER_IF: &str = "eth-s";
/// The failover run's second sender, on a second link to the receiver.
pub const SENDER2_V4: &str = "10.255.254.1";
pub const RECEIVER2_V4: &str = "10.255.254.2";
pub const SENDER2_V6: &str = "fd00:6b63::1";
pub const RECEIVER2_V6: &str = "fd00:6b63::2";
pub const RECEIVER2_IF: &str = "eth-r2";
const SENDER2_IF: &str = "eth-s2";

/// A sender namespace and a receiver namespace joined by a veth pair.
pub struct Pair {
    pub sender: Netns,
    pub receiver: Netns,
}

impl Pair {
    pub fn create(stem: &str) -> labkit::Result<Pair> {
        let sender = create_netns(&format!("{stem}-s"))?;
        let receiver = create_netns(&format!("{stem}-r"))?;
        veth(&sender, SENDER_IF, &receiver, RECEIVER_IF)?;
        for (ns, dev, v4, v6) in [
            (&sender, SENDER_IF, SENDER_V4, SENDER_V6),
            (&receiver, RECEIVER_IF, RECEIVER_V4, RECEIVER_V6),
        ] {
            ns.add_addr(dev, &format!("{v4}/30"))?;
            // labkit adds IPv6 addresses `nodad`: usable at once (FRR and
            // BIRD ignore tentative addresses).
            ns.add_addr(dev, &format!("{v6}/64"))?;
        }
        Ok(Pair { sender, receiver })
    }
}

/// The failover run: two senders, each on its own link to the receiver.
pub struct Trio {
    pub sender: Netns,
    pub sender2: Netns,
    pub receiver: Netns,
}

impl Trio {
    pub fn create(stem: &str) -> labkit::Result<Trio> {
        let Pair { sender, receiver } = Pair::create(stem)?;
        let sender2 = create_netns(&format!("{stem}-s2"))?;
        veth(&sender2, SENDER2_IF, &receiver, RECEIVER2_IF)?;
        sender2.add_addr(SENDER2_IF, &format!("{SENDER2_V4}/30"))?;
        sender2.add_addr(SENDER2_IF, &format!("{SENDER2_V6}/64"))?;
        receiver.add_addr(RECEIVER2_IF, &format!("{RECEIVER2_V4}/30"))?;
        receiver.add_addr(RECEIVER2_IF, &format!("{RECEIVER2_V6}/64"))?;
        Ok(Trio {
            sender,
            sender2,
            receiver,
        })
    }

    /// The first sender's end of its link, whose carrier the failover
    /// takes away.
    pub fn sender_if() -> &'static str {
        SENDER_IF
    }
}

/// Record a namespace for the signal handler (before creating it).
pub fn register_netns(name: &str) {
    registry().netns.push(name.to_string());
}

fn create_netns(name: &str) -> labkit::Result<Netns> {
    register_netns(name);
    Netns::create(name, &Setup::BARE)
}

/// A scratch directory (labkit's: removed on drop), also removed on signal.
pub fn scratch_dir(path: PathBuf) -> labkit::Result<ScratchDir> {
    register_dir(path.clone());
    ScratchDir::create(path)
}

/// Keep a scratch directory for its logs, also on a later signal.
pub fn keep_dir(dir: &mut ScratchDir) {
    dir.keep(true);
    registry().dirs.retain(|d| d != dir.path());
}

/// A directory to remove on signal (FRR's run directory, which labkit
/// removes when the instance is dropped).
pub fn register_dir(path: PathBuf) {
    registry().dirs.push(path);
}

/// Move the calling thread into namespace `name` (for the threads that
/// poll its kernel or speak BGP from it).
pub fn enter_thread(name: &str) -> io::Result<()> {
    Netns::open(name)
        .and_then(|ns| ns.enter_thread())
        .map_err(io::Error::other)
}
