//! TCP sockets for BGP: outgoing connects with a bound source address, TTL
//! (eBGP single-hop vs multihop), GTSM (RFC 5082) and TCP-MD5 (RFC 2385),
//! and the listener.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::config::Password;

/// Options for one peer's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketOptions {
    pub local_address: Option<IpAddr>,
    pub ttl: u8,
    /// GTSM: drop segments from the peer that arrive with a lower TTL.
    pub min_ttl: Option<u8>,
    pub password: Option<Password>,
}

fn new_socket(domain_of: &SocketAddr) -> io::Result<Socket> {
    let domain = if domain_of.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let s = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    s.set_nonblocking(true)?;
    s.set_tcp_nodelay(true)?;
    Ok(s)
}

fn set_ttl(s: &Socket, ipv4: bool, ttl: u8) -> io::Result<()> {
    if ipv4 {
        s.set_ttl_v4(u32::from(ttl))
    } else {
        s.set_unicast_hops_v6(u32::from(ttl))
    }
}

/// Connect to `remote` with `opts`, giving up after `timeout`.
pub async fn connect(
    remote: SocketAddr,
    opts: &SocketOptions,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let s = new_socket(&remote)?;
    set_ttl(&s, remote.is_ipv4(), opts.ttl)?;
    if let Some(min) = opts.min_ttl {
        // Before connect: a SYN-ACK from farther away is dropped too.
        set_min_ttl(&s, remote.ip(), min)?;
    }
    if let Some(pw) = &opts.password {
        set_md5(&s, remote.ip(), pw.as_bytes())?;
    }
    if let Some(local) = opts.local_address {
        s.bind(&SocketAddr::new(local, 0).into())?;
    }
    let std_stream: std::net::TcpStream = s.into();
    let sock = TcpSocket::from_std_stream(std_stream);
    match tokio::time::timeout(timeout, sock.connect(remote)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "connection attempt timed out",
        )),
    }
}

/// Connections accepted by the kernel and not yet by kroute.
const LISTEN_BACKLOG: i32 = 4096;

/// Listen on `addr` (an IPv6 wildcard also accepts IPv4).
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = new_socket(&addr)?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(false)?;
    }
    s.bind(&addr.into())?;
    // Keep each connection's SYN headers, so GTSM can check the TTL the
    // peer's first segment arrived with (`syn_ttl`).
    setsockopt_int(&s, libc::IPPROTO_TCP, libc::TCP_SAVE_SYN, 1)?;
    // A cluster's nodes connect at once after the reflector restarts: with
    // room for 128 the accept queue overflowed at 1000 nodes, the kernel
    // dropped the SYNs beyond it and the nodes' TCP tried again only after
    // its 1 s and 3 s retransmission timeouts (issue 17: sessions up spread
    // over ~3 s). The kernel caps this at net.core.somaxconn (4096 since
    // Linux 5.4).
    s.listen(LISTEN_BACKLOG)?;
    let std_listener: std::net::TcpListener = s.into();
    TcpListener::from_std(std_listener)
}

/// Apply per-peer options to an accepted connection (TTL for replies) and
/// register a peer's MD5 key on the listener so its SYNs are accepted.
pub fn configure_accepted(stream: &TcpStream, opts: &SocketOptions) -> io::Result<()> {
    let sock = socket2::SockRef::from(stream);
    let ipv4 = stream.peer_addr()?.is_ipv4();
    set_ttl(&sock, ipv4, opts.ttl)
}

/// Set (`Some`) or remove (`None`) the TCP-MD5 key for `peer` on the
/// listener, so that peer's signed SYNs are accepted (and unsigned ones
/// dropped).
pub fn listener_md5(
    listener: &TcpListener,
    peers: ipnet::IpNet,
    password: Option<&Password>,
) -> io::Result<()> {
    let sock = socket2::SockRef::from(listener);
    let key = password.map_or(&[][..], |pw| pw.as_bytes());
    if password.is_some() && (key.is_empty() || key.len() > 80) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "TCP-MD5 password must be 1..=80 bytes",
        ));
    }
    if peers.prefix_len() == peers.max_prefix_len() {
        return md5sig(&sock, peers.addr(), key);
    }
    md5sig_prefix(&sock, peers, key)
}

/// TCP_MD5SIG_EXT with TCP_MD5SIG_FLAG_PREFIX (Linux 4.13+): one key for
/// every peer address in `peers` (dynamic neighbors); an empty `key`
/// removes it.
fn md5sig_prefix(s: &Socket, peers: ipnet::IpNet, key: &[u8]) -> io::Result<()> {
    // SAFETY: all-zero is a valid bit pattern for this plain C struct.
    let mut sig: TcpMd5Sig = unsafe { std::mem::zeroed() };
    // An IPv6 socket takes IPv4 peers as mapped addresses, with the
    // prefix length still the IPv4 one (the kernel keys them as IPv4).
    let addr = match (peers.addr(), s.domain()?) {
        (IpAddr::V4(v4), d) if d == Domain::IPV6 => IpAddr::V6(v4.to_ipv6_mapped()),
        (a, _) => a,
    };
    let len = peers.prefix_len();
    let sa: socket2::SockAddr = SocketAddr::new(addr, 0).into();
    // SAFETY: copying `sa.len()` bytes (≤ sizeof sockaddr_storage) into the
    // storage field.
    unsafe {
        std::ptr::copy_nonoverlapping(
            sa.as_ptr() as *const u8,
            &mut sig.addr as *mut _ as *mut u8,
            sa.len() as usize,
        );
    }
    sig.flags = TCP_MD5SIG_FLAG_PREFIX;
    sig.prefixlen = len;
    sig.keylen = key.len() as u16;
    sig.key[..key.len()].copy_from_slice(key);
    // SAFETY: valid fd, pointer to a properly sized struct.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            TCP_MD5SIG_EXT,
            &sig as *const _ as *const libc::c_void,
            std::mem::size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// linux/tcp.h.
const TCP_MD5SIG_EXT: libc::c_int = 32;
const TCP_MD5SIG_FLAG_PREFIX: u8 = 1;

/// The TTL of the listener's own segments (its SYN-ACKs): 255 while any
/// peer uses GTSM, whose side drops a SYN-ACK that arrives with less; the
/// system default (`None`) otherwise. Accepted connections get each peer's
/// own TTL (`configure_accepted`).
pub fn listener_ttl(listener: &TcpListener, ttl: Option<u8>) -> io::Result<()> {
    let s = socket2::SockRef::from(listener);
    // -1: back to the default.
    let v = ttl.map_or(-1, libc::c_int::from);
    // IP_TTL also covers IPv4-mapped connections of a dual-stack listener.
    setsockopt_int(&s, libc::IPPROTO_IP, libc::IP_TTL, v)?;
    if s.domain()? == Domain::IPV6 {
        setsockopt_int(&s, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, v)?;
    }
    Ok(())
}

/// GTSM on an accepted connection: from now on the kernel drops the
/// peer's segments that arrive with a TTL (hop limit) below `min`.
pub fn stream_min_ttl(stream: &TcpStream, peer: IpAddr, min: u8) -> io::Result<()> {
    set_min_ttl(&socket2::SockRef::from(stream), peer, min)
}

/// The TTL (IPv4) or hop limit (IPv6) of the SYN that opened an accepted
/// connection (the listener saves SYNs: TCP_SAVE_SYN). The kernel hands
/// the saved headers out once; a second call fails.
pub fn syn_ttl(stream: &TcpStream) -> io::Result<u8> {
    let mut buf = [0u8; 512];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: valid fd; `buf` has `len` writable bytes.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_SAVED_SYN,
            buf.as_mut_ptr() as *mut libc::c_void,
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let headers = &buf[..len as usize];
    // The saved bytes start at the IP header: TTL is byte 8 of an IPv4
    // header (RFC 791), the hop limit byte 7 of an IPv6 one (RFC 8200).
    match headers.first().map(|b| b >> 4) {
        Some(4) if headers.len() > 8 => Ok(headers[8]),
        Some(6) if headers.len() > 7 => Ok(headers[7]),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "saved SYN has no IP header",
        )),
    }
}

fn setsockopt_int(
    s: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: valid fd, pointer to a c_int of the given size.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            name,
            &v as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// RFC 5082 §3: accept only packets from `peer` with TTL >= `min`.
/// IP_MINTTL covers IPv4 (also IPv4-mapped on a dual-stack socket),
/// IPV6_MINHOPCOUNT native IPv6.
fn set_min_ttl(s: &Socket, peer: IpAddr, min: u8) -> io::Result<()> {
    let v = libc::c_int::from(min);
    match unmap(peer) {
        IpAddr::V4(_) => setsockopt_int(s, libc::IPPROTO_IP, libc::IP_MINTTL, v),
        IpAddr::V6(_) => setsockopt_int(s, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT, v),
    }
}

/// The kernel's `struct tcp_md5sig` (linux/tcp.h).
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; 80],
}

/// RFC 2385 TCP MD5 signature for segments to/from `peer`.
fn set_md5(s: &Socket, peer: IpAddr, key: &[u8]) -> io::Result<()> {
    if key.is_empty() || key.len() > 80 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "TCP-MD5 password must be 1..=80 bytes",
        ));
    }
    md5sig(s, peer, key)
}

/// TCP_MD5SIG for `peer`: an empty `key` removes the peer's key.
fn md5sig(s: &Socket, peer: IpAddr, key: &[u8]) -> io::Result<()> {
    // SAFETY: all-zero is a valid bit pattern for this plain C struct.
    let mut sig: TcpMd5Sig = unsafe { std::mem::zeroed() };
    let sa: socket2::SockAddr = SocketAddr::new(peer, 0).into();
    // An IPv6 socket talking to an IPv4 peer needs the mapped form.
    let sa = match (peer, s.domain()?) {
        (IpAddr::V4(v4), d) if d == Domain::IPV6 => {
            socket2::SockAddr::from(SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), 0))
        }
        _ => sa,
    };
    // SAFETY: copying `sa.len()` bytes (≤ sizeof sockaddr_storage) into the
    // storage field.
    unsafe {
        std::ptr::copy_nonoverlapping(
            sa.as_ptr() as *const u8,
            &mut sig.addr as *mut _ as *mut u8,
            sa.len() as usize,
        );
    }
    sig.keylen = key.len() as u16;
    sig.key[..key.len()].copy_from_slice(key);
    // SAFETY: valid fd, pointer to a properly sized struct.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            &sig as *const _ as *const libc::c_void,
            std::mem::size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Map `::ffff:a.b.c.d` (an IPv4 peer on a dual-stack listener) back to IPv4.
pub fn unmap(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => addr,
        },
        v4 => v4,
    }
}
