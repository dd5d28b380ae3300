//! Threads that live in the receiver's namespace and report what its kernel
//! holds: a poller that counts the main table by dump, and (for the churn
//! run) a watcher that follows route events for the flapping prefixes.

use std::collections::HashSet;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::kcount::{tally_routes, Counts, RouteCounter, RouteWatch};
use labkit::Netns;

use crate::netns::enter_thread;

/// Starts a thread in namespace `ns` that sets itself up there with
/// `init` (whose error is the caller's) and then runs `body` with what it
/// made.
fn spawn_in<T, I, B>(ns: &Netns, what: &str, init: I, body: B) -> io::Result<JoinHandle<()>>
where
    I: FnOnce() -> io::Result<T> + Send + 'static,
    B: FnOnce(T) + Send + 'static,
{
    let ns = ns.name().to_string();
    let (ready_tx, ready_rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        match enter_thread(&ns).and_then(|_| init()) {
            Ok(made) => {
                let _ = ready_tx.send(Ok(()));
                body(made)
            }
            Err(err) => {
                let _ = ready_tx.send(Err(err));
            }
        };
    });
    ready_rx
        .recv()
        .map_err(|_| io::Error::other(format!("{what} thread died")))??;
    Ok(handle)
}

/// One completed dump: when it started and ended, and what it counted.
#[derive(Debug, Clone, Copy)]
pub struct Obs {
    pub start: Instant,
    pub end: Instant,
    pub counts: Counts,
}

pub struct Poller {
    latest: Arc<Mutex<Option<Obs>>>,
    error: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
    pause: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Poller {
    /// Dump the kernel table every `min_interval`, or every two dump
    /// durations if that is longer (so polling never takes more than about a
    /// third of one core from the receiver).
    pub fn start(ns: &Netns, min_interval: Duration) -> io::Result<Poller> {
        let latest = Arc::new(Mutex::new(None));
        let error = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let pause = Arc::new(AtomicBool::new(false));
        let (l, e, s, p) = (latest.clone(), error.clone(), stop.clone(), pause.clone());
        let handle = spawn_in(ns, "poller", RouteCounter::new, move |mut counter| {
            while !s.load(Ordering::Relaxed) {
                if p.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(20));
                    continue;
                }
                let start = Instant::now();
                match counter.count() {
                    Ok(counts) => {
                        let end = Instant::now();
                        *l.lock().unwrap_or_else(|x| x.into_inner()) =
                            Some(Obs { start, end, counts });
                        let wait = min_interval.max((end - start) * 2);
                        let until = end + wait;
                        while Instant::now() < until && !s.load(Ordering::Relaxed) {
                            thread::sleep(Duration::from_millis(10));
                        }
                    }
                    Err(err) => {
                        *e.lock().unwrap_or_else(|x| x.into_inner()) =
                            Some(format!("kernel route dump: {err}"));
                        thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })?;
        Ok(Poller {
            latest,
            error,
            stop,
            pause,
            handle: Some(handle),
        })
    }

    pub fn latest(&self) -> Option<Obs> {
        *self.latest.lock().unwrap_or_else(|x| x.into_inner())
    }

    pub fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|x| x.into_inner()).clone()
    }

    /// The first observation that started after `after`.
    pub fn fresh(&self, after: Instant, timeout: Duration) -> Option<Obs> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(o) = self.latest().filter(|o| o.start >= after) {
                return Some(o);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn set_paused(&self, paused: bool) {
        self.pause.store(paused, Ordering::Relaxed);
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// What a [`Tally`] waits for.
#[derive(Debug, Clone, Copy)]
pub enum Reach {
    AtLeast(u64),
    AtMost(u64),
}

#[derive(Default)]
struct TallyState {
    latest: Option<(Instant, u64)>,
    watch: Option<Reach>,
    /// When a reading first met `watch` since it was set.
    reached: Option<Instant>,
}

/// The namespace's route count from the kernel's own statistics
/// ([`tally_routes`]), read far more often than a table can be dumped: a
/// dump of a million routes takes about a second, and with the dump
/// poller's pauses a load's end was seen 1-3 s late. Local and connected
/// routes are counted too, so compare with a reading taken before the
/// load. Reads every `min_interval`, or every two reading durations if
/// that is longer (at most about a third of one core).
pub struct Tally {
    state: Arc<Mutex<TallyState>>,
    error: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Tally {
    pub fn start(ns: &Netns, min_interval: Duration) -> io::Result<Tally> {
        let state = Arc::new(Mutex::new(TallyState::default()));
        let error = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, e, s) = (state.clone(), error.clone(), stop.clone());
        let handle = spawn_in(ns, "tally", tally_routes, move |_| {
            while !s.load(Ordering::Relaxed) {
                let start = Instant::now();
                match tally_routes() {
                    Ok(n) => {
                        let end = Instant::now();
                        let mut g = st.lock().unwrap_or_else(|x| x.into_inner());
                        g.latest = Some((end, n));
                        let met = match g.watch {
                            Some(Reach::AtLeast(m)) => n >= m,
                            Some(Reach::AtMost(m)) => n <= m,
                            None => false,
                        };
                        if met && g.reached.is_none() {
                            // The reading saw it done: at the latest when
                            // it ended.
                            g.reached = Some(end);
                        }
                        drop(g);
                        let until = end + min_interval.max((end - start) * 2);
                        while Instant::now() < until && !s.load(Ordering::Relaxed) {
                            thread::sleep(Duration::from_millis(2));
                        }
                    }
                    Err(err) => {
                        *e.lock().unwrap_or_else(|x| x.into_inner()) =
                            Some(format!("kernel route statistics: {err}"));
                        return;
                    }
                }
            }
        })?;
        Ok(Tally {
            state,
            error,
            stop,
            handle: Some(handle),
        })
    }

    /// The first reading that ended after `after`.
    pub fn fresh(&self, after: Instant, timeout: Duration) -> Option<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            let latest = self.state.lock().unwrap_or_else(|x| x.into_inner()).latest;
            if let Some((_, n)) = latest.filter(|(at, _)| *at > after) {
                return Some(n);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// From now on, wait for a reading that meets `reach`.
    pub fn watch(&self, reach: Reach) {
        let mut g = self.state.lock().unwrap_or_else(|x| x.into_inner());
        g.watch = Some(reach);
        g.reached = None;
    }

    /// When a reading first met what [`Tally::watch`] waits for.
    pub fn reached(&self) -> Option<Instant> {
        self.state.lock().unwrap_or_else(|x| x.into_inner()).reached
    }

    pub fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|x| x.into_inner()).clone()
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Times at which all watched prefixes were present (`full`) or none was.
#[derive(Debug, Default, Clone)]
pub struct Transitions {
    pub full: Vec<Instant>,
    pub empty: Vec<Instant>,
}

pub struct Watcher {
    state: Arc<Mutex<(Transitions, usize)>>,
    error: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Start following route events for `watched`, all present now.
    pub fn start(ns: &Netns, watched: HashSet<IpNet>) -> io::Result<Watcher> {
        let state = Arc::new(Mutex::new((Transitions::default(), watched.len())));
        let error = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, e, s) = (state.clone(), error.clone(), stop.clone());
        let n = watched.len();
        let init = move || RouteWatch::new(watched.clone(), watched);
        let handle = spawn_in(ns, "watch", init, move |mut w| {
            while !s.load(Ordering::Relaxed) {
                match w.poll() {
                    Ok(true) => {
                        let now = Instant::now();
                        let present = w.present.len();
                        let mut g = st.lock().unwrap_or_else(|x| x.into_inner());
                        g.1 = present;
                        if present == n {
                            g.0.full.push(now);
                        } else if present == 0 {
                            g.0.empty.push(now);
                        }
                    }
                    Ok(false) => {}
                    Err(err) => {
                        *e.lock().unwrap_or_else(|x| x.into_inner()) =
                            Some(format!("route event watch: {err}"));
                        return;
                    }
                }
            }
        })?;
        Ok(Watcher {
            state,
            error,
            stop,
            handle: Some(handle),
        })
    }

    /// (transitions so far, watched prefixes present now)
    pub fn snapshot(&self) -> (Transitions, usize) {
        self.state.lock().unwrap_or_else(|x| x.into_inner()).clone()
    }

    pub fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|x| x.into_inner()).clone()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
