//! The cluster's nodes: N iBGP sessions from one process, each from its
//! own address on the one link to the route reflector. Node `i` announces
//! its two pod CIDRs (one IPv4 /24, one IPv6 /64) and counts, as it
//! decodes what the reflector sends, how many of the other nodes' pod
//! CIDRs it holds. One thread per session (blocking I/O, small stacks);
//! every moment that matters is taken by the session thread itself when
//! it decodes the UPDATE, so nothing depends on a poller's interval.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddrV4, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use wire::{
    decode_message, encode_message, Family, Message, MpReach, MpUnreach, NextHop, Origin,
    PathAttributes, Update,
};

use crate::encode::{self, CODEC};

/// The reflector's AS, and every node's (iBGP).
pub const ASN: u32 = 65001;
/// The link: the reflector is .0.1, node `i` is the (i + 2)th address.
pub const REFLECTOR_V4: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
pub const REFLECTOR_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x6b64, 0, 0, 0, 0, 0, 1);
pub const LINK_V4: &str = "10.200.0.0/16";
pub const LINK_V6_LEN: u8 = 64;
/// Nodes a /16 link can number (the reflector and the broadcast address
/// aside).
pub const MAX_NODES: usize = 65_000;

/// One node: its addresses on the link and its pod CIDRs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    pub v4: Ipv4Addr,
    pub v6: Ipv6Addr,
    pub pod4: Ipv4Net,
    pub pod6: Ipv6Net,
}

impl Node {
    pub fn new(i: usize) -> Node {
        assert!(i < MAX_NODES, "node index {i} beyond the link's addresses");
        let host = (i + 2) as u32;
        let v4 = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 200, 0, 0)) + host);
        let v6 = Ipv6Addr::from(
            u128::from(Ipv6Addr::new(0xfd00, 0x6b64, 0, 0, 0, 0, 0, 0)) + u128::from(host),
        );
        // Pod CIDRs: 100.64.0.0/10 (CGNAT space, as many clusters use) cut
        // into /24s, fd10::/16 into /64s.
        let pod4 = Ipv4Net::new(
            Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 0)) + ((i as u32) << 8)),
            24,
        )
        .expect("a /24");
        let pod6 =
            Ipv6Net::new(Ipv6Addr::new(0xfd10, 0, 0, i as u16, 0, 0, 0, 0), 64).expect("a /64");
        Node { v4, v6, pod4, pod6 }
    }

    pub fn prefixes(&self) -> [IpNet; 2] {
        [IpNet::V4(self.pod4), IpNet::V6(self.pod6)]
    }
}

/// Is `p` some node's pod CIDR (what the sessions count)?
fn is_pod(p: &IpNet) -> bool {
    match p {
        IpNet::V4(n) => {
            n.prefix_len() == 24
                && n.addr().octets()[0] == 100
                && (n.addr().octets()[1] & 0xc0) == 64
        }
        IpNet::V6(n) => n.prefix_len() == 64 && n.addr().segments()[0] == 0xfd10,
    }
}

/// The bytes node `i` sends after the handshake: one UPDATE per family
/// (ORIGIN IGP, empty AS_PATH and LOCAL_PREF 100 as an iBGP speaker
/// originates; its own address as the next hop), then End-of-RIB.
pub fn announce(node: &Node) -> Vec<u8> {
    let attributes = PathAttributes {
        origin: Some(Origin::Igp),
        local_pref: Some(100),
        ..PathAttributes::default()
    };
    let mut out = Vec::new();
    let v4 = Update {
        attributes: PathAttributes {
            next_hop: Some(node.v4),
            ..attributes.clone()
        },
        nlri: vec![node.pod4],
        ..Update::default()
    };
    encode_message(&Message::Update(v4), &CODEC, &mut out);
    let v6 = Update {
        attributes,
        mp_reach: Some(MpReach {
            family: Family::Ipv6Unicast,
            next_hop: NextHop::new(IpAddr::V6(node.v6)),
            nlri: vec![IpNet::V6(node.pod6)],
        }),
        ..Update::default()
    };
    encode_message(&Message::Update(v6), &CODEC, &mut out);
    encode::end_of_rib(&mut out);
    out
}

/// The withdrawal of both of `node`'s pod CIDRs.
pub fn withdraw(node: &Node) -> Vec<u8> {
    let mut out = Vec::new();
    let v4 = Update {
        withdrawn: vec![node.pod4],
        ..Update::default()
    };
    encode_message(&Message::Update(v4), &CODEC, &mut out);
    let v6 = Update {
        mp_unreach: Some(MpUnreach {
            family: Family::Ipv6Unicast,
            withdrawn: vec![IpNet::V6(node.pod6)],
        }),
        ..Update::default()
    };
    encode_message(&Message::Update(v6), &CODEC, &mut out);
    out
}

/// What the sessions record, each in its own slot.
pub struct Shared {
    pub nodes: Vec<Node>,
    pub established: Vec<OnceLock<Instant>>,
    /// When the session first held every other node's two pod CIDRs.
    pub complete: Vec<OnceLock<Instant>>,
    /// After the withdrawal: when the session held neither of the
    /// withdrawn node's CIDRs any more.
    pub victim_gone: Vec<OnceLock<Instant>>,
    /// The node whose CIDRs are withdrawn, once that started.
    victim: OnceLock<usize>,
    writers: Vec<OnceLock<Mutex<TcpStream>>>,
    closing: AtomicBool,
    pub errors: Mutex<Vec<String>>,
}

fn slots<T>(n: usize) -> Vec<OnceLock<T>> {
    (0..n).map(|_| OnceLock::new()).collect()
}

impl Shared {
    fn new(n: usize) -> Shared {
        Shared {
            nodes: (0..n).map(Node::new).collect(),
            established: slots(n),
            complete: slots(n),
            victim_gone: slots(n),
            victim: OnceLock::new(),
            writers: slots(n),
            closing: AtomicBool::new(false),
            errors: Mutex::new(Vec::new()),
        }
    }

    fn error(&self, i: usize, e: String) {
        if !self.closing.load(Ordering::Relaxed) {
            self.errors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(format!("node {i}: {e}"));
        }
    }

    fn write(&self, i: usize, bytes: &[u8]) -> io::Result<()> {
        let w = self.writers[i]
            .get()
            .ok_or_else(|| io::Error::other("session not up"))?;
        w.lock().unwrap_or_else(|e| e.into_inner()).write_all(bytes)
    }

    pub fn count(slots: &[OnceLock<Instant>]) -> usize {
        slots.iter().filter(|s| s.get().is_some()).count()
    }

    pub fn latest(slots: &[OnceLock<Instant>]) -> Option<Instant> {
        slots.iter().filter_map(|s| s.get().copied()).max()
    }

    pub fn earliest(slots: &[OnceLock<Instant>]) -> Option<Instant> {
        slots.iter().filter_map(|s| s.get().copied()).min()
    }
}

pub struct Fleet {
    pub shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    keepalive: Option<JoinHandle<()>>,
}

/// Hold time the nodes offer; KEEPALIVEs go every 20 s, below a third of
/// any hold time a receiver may answer with (kroute/FRR 90 s, BIRD 240 s).
const HOLD_TIME: u16 = 90;
const KEEPALIVE_EVERY: Duration = Duration::from_secs(20);
/// How long a node waits for the reflector's OPEN and KEEPALIVE.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl Fleet {
    /// Start `n` sessions from namespace `ns` to the reflector; each keeps
    /// connecting until `deadline`.
    pub fn start(n: usize, ns: &str, deadline: Instant) -> io::Result<Fleet> {
        let shared = Arc::new(Shared::new(n));
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let sh = Arc::clone(&shared);
            let ns = ns.to_string();
            let t = thread::Builder::new()
                .name(format!("node{i}"))
                .stack_size(256 * 1024)
                .spawn(move || {
                    if let Err(e) = crate::netns::enter_thread(&ns) {
                        sh.error(i, format!("entering {ns}: {e}"));
                        return;
                    }
                    if let Err(e) = session(&sh, i, deadline) {
                        sh.error(i, e);
                    }
                })?;
            threads.push(t);
        }
        let sh = Arc::clone(&shared);
        let keepalive = thread::Builder::new()
            .name("keepalive".into())
            .spawn(move || {
                let ka = encode::keepalive();
                let mut next = Instant::now() + KEEPALIVE_EVERY;
                while !sh.closing.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(200));
                    if Instant::now() < next {
                        continue;
                    }
                    for i in 0..sh.nodes.len() {
                        let _ = sh.write(i, &ka);
                    }
                    next += KEEPALIVE_EVERY;
                }
            })?;
        Ok(Fleet {
            shared,
            threads,
            keepalive: Some(keepalive),
        })
    }

    /// Node `i` withdraws its pod CIDRs; returns the moment it wrote them.
    pub fn withdraw(&self, i: usize) -> Result<Instant, String> {
        let _ = self.shared.victim.set(i);
        let at = Instant::now();
        self.shared
            .write(i, &withdraw(&self.shared.nodes[i]))
            .map_err(|e| format!("node {i} withdrawing: {e}"))?;
        Ok(at)
    }

    /// Close every session (Cease, then TCP) and wait for the threads.
    pub fn close(mut self) {
        self.shared.closing.store(true, Ordering::Relaxed);
        let cease = encode::cease();
        for w in self.shared.writers.iter().filter_map(|w| w.get()) {
            let mut s = w.lock().unwrap_or_else(|e| e.into_inner());
            let _ = s.write_all(&cease);
            let _ = s.shutdown(Shutdown::Both);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(k) = self.keepalive.take() {
            let _ = k.join();
        }
    }
}

/// A TCP connection to the reflector from `src` (bind before connect,
/// which std's TcpStream cannot do).
fn connect_from(src: Ipv4Addr, dst: SocketAddrV4) -> io::Result<TcpStream> {
    let sin = |a: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(a.octets()),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket syscalls on a descriptor we own (OwnedFd closes
    // it on every error path) with pointers to locals of the right size.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let local = sin(src, 0);
        if libc::bind(
            fd.as_raw_fd(),
            (&local as *const libc::sockaddr_in).cast(),
            len,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        let remote = sin(*dst.ip(), dst.port());
        if libc::connect(
            fd.as_raw_fd(),
            (&remote as *const libc::sockaddr_in).cast(),
            len,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(TcpStream::from(fd))
    }
}

/// Like a BGP speaker's ConnectRetry: a connection refused, or closed by
/// the reflector before Established (BIRD closes one that arrives while
/// its protocol is not ready), is tried again until `deadline`.
fn session(sh: &Shared, i: usize, deadline: Instant) -> Result<(), String> {
    let me = sh.nodes[i];
    let (s, buf) = loop {
        match handshake(&me) {
            Ok(up) => break up,
            Err(e) if Instant::now() >= deadline || sh.closing.load(Ordering::Relaxed) => {
                return Err(e)
            }
            Err(_) => thread::sleep(Duration::from_millis(200)),
        }
    };
    established(sh, i, s, buf)
}

/// TCP, OPEN and KEEPALIVE both ways: the session is Established.
fn handshake(me: &Node) -> Result<(TcpStream, Vec<u8>), String> {
    let dst = SocketAddrV4::new(REFLECTOR_V4, 179);
    let mut s = connect_from(me.v4, dst).map_err(|e| format!("connect to {dst}: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    // A reflector that accepted the connection but never answers: give
    // up and connect again (and never block the fleet's close).
    s.set_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .map_err(|e| e.to_string())?;
    s.write_all(&encode::open(ASN, me.v4, HOLD_TIME))
        .map_err(|e| format!("sending OPEN: {e}"))?;
    let mut buf = Vec::new();
    match crate::blast::read_message(&mut s, &mut buf)? {
        Message::Open(_) => {}
        Message::Notification(n) => {
            return Err(format!("refused: NOTIFICATION {}/{}", n.code, n.subcode))
        }
        other => return Err(format!("expected OPEN, got {other:?}")),
    }
    s.write_all(&encode::keepalive())
        .map_err(|e| format!("sending KEEPALIVE: {e}"))?;
    match crate::blast::read_message(&mut s, &mut buf)? {
        Message::Keepalive => {}
        Message::Notification(n) => {
            return Err(format!("closed: NOTIFICATION {}/{}", n.code, n.subcode))
        }
        other => return Err(format!("expected KEEPALIVE, got {other:?}")),
    }
    s.set_read_timeout(None).map_err(|e| e.to_string())?;
    Ok((s, buf))
}

fn established(sh: &Shared, i: usize, s: TcpStream, buf: Vec<u8>) -> Result<(), String> {
    let me = sh.nodes[i];
    let _ = sh.established[i].set(Instant::now());
    let writer = s.try_clone().map_err(|e| e.to_string())?;
    let _ = sh.writers[i].set(Mutex::new(writer));
    sh.write(i, &announce(&me))
        .map_err(|e| format!("announcing: {e}"))?;
    receive(sh, i, s, buf)
}

/// Decode what the reflector sends; keep the set of other nodes' pod
/// CIDRs held and stamp the moments the run waits for.
fn receive(sh: &Shared, i: usize, mut s: TcpStream, mut buf: Vec<u8>) -> Result<(), String> {
    let own = sh.nodes[i].prefixes();
    let want = 2 * (sh.nodes.len() - 1);
    let mut held: HashSet<IpNet> = HashSet::with_capacity(want);
    let mut chunk = vec![0u8; 16384];
    loop {
        loop {
            match decode_message(&buf, &CODEC) {
                Ok(Some((m, used))) => {
                    buf.drain(..used);
                    match m {
                        Message::Update(u) => apply(&u, &own, &mut held),
                        Message::Notification(n) => {
                            return Err(format!(
                                "reflector sent NOTIFICATION {}/{}",
                                n.code, n.subcode
                            ))
                        }
                        _ => {}
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(format!("bad message from the reflector: {e}")),
            }
        }
        let now = Instant::now();
        if held.len() >= want {
            let _ = sh.complete[i].set(now);
        }
        if let Some(&v) = sh.victim.get() {
            if v != i && sh.nodes[v].prefixes().iter().all(|p| !held.contains(p)) {
                let _ = sh.victim_gone[i].set(now);
            }
        }
        match s.read(&mut chunk) {
            Ok(0) => return Err("the reflector closed the session".into()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("reading: {e}")),
        }
    }
}

fn apply(u: &Update, own: &[IpNet; 2], held: &mut HashSet<IpNet>) {
    let treat_as_withdraw = u.treat_as_withdraw.is_some();
    for p in u.withdrawn.iter().map(|n| IpNet::V4(*n)) {
        held.remove(&p);
    }
    for p in u.mp_unreach.iter().flat_map(|m| m.withdrawn.iter()) {
        held.remove(p);
    }
    let reached = u
        .nlri
        .iter()
        .map(|n| IpNet::V4(*n))
        .chain(u.mp_reach.iter().flat_map(|m| m.nlri.iter().copied()));
    for p in reached {
        if treat_as_withdraw {
            held.remove(&p);
        } else if is_pod(&p) && !own.contains(&p) {
            held.insert(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_have_distinct_addresses_and_pods() {
        let a = Node::new(0);
        let b = Node::new(999);
        assert_eq!(a.v4, Ipv4Addr::new(10, 200, 0, 2));
        assert_eq!(b.v4, Ipv4Addr::new(10, 200, 3, 233));
        assert_eq!(a.pod4.to_string(), "100.64.0.0/24");
        assert_eq!(b.pod4.to_string(), "100.67.231.0/24");
        assert_eq!(b.pod6.to_string(), "fd10:0:0:3e7::/64");
        assert!(a.prefixes().iter().chain(b.prefixes().iter()).all(is_pod));
        assert!(!is_pod(&"10.200.0.0/16".parse().unwrap()));
    }

    #[test]
    fn announce_then_withdraw_decodes_to_the_pods() {
        let node = Node::new(7);
        let other = Node::new(1);
        let mut held = HashSet::new();
        let bytes = announce(&node);
        let mut b = &bytes[..];
        while let Some((Message::Update(u), used)) = decode_message(b, &CODEC).unwrap() {
            apply(&u, &other.prefixes(), &mut held);
            b = &b[used..];
        }
        assert_eq!(held, node.prefixes().into_iter().collect());
        let bytes = withdraw(&node);
        let mut b = &bytes[..];
        while let Some((Message::Update(u), used)) = decode_message(b, &CODEC).unwrap() {
            apply(&u, &other.prefixes(), &mut held);
            b = &b[used..];
        }
        assert!(held.is_empty());
    }
}
