//! TCP sockets for BGP: outgoing connects with a bound source address, TTL
//! (eBGP single-hop vs multihop) and TCP-MD5 (RFC 2385), and the listener.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// Options for one peer's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketOptions {
    pub local_address: Option<IpAddr>,
    pub ttl: u8,
    pub password: Option<String>,
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
    if let Some(pw) = &opts.password {
        set_md5(&s, remote.ip(), pw)?;
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

/// Listen on `addr` (an IPv6 wildcard also accepts IPv4).
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = new_socket(&addr)?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(false)?;
    }
    s.bind(&addr.into())?;
    s.listen(128)?;
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

pub fn listener_md5(listener: &TcpListener, peer: IpAddr, password: &str) -> io::Result<()> {
    let sock = socket2::SockRef::from(listener);
    set_md5(&sock, peer, password)
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
fn set_md5(s: &Socket, peer: IpAddr, password: &str) -> io::Result<()> {
    let key = password.as_bytes();
    if key.is_empty() || key.len() > 80 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "TCP-MD5 password must be 1..=80 bytes",
        ));
    }
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
