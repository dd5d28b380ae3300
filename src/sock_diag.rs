//! Who owns the other end of a local TCP connection: one NETLINK_SOCK_DIAG
//! (inet_diag, linux/inet_diag.h) lookup of the socket by its 4-tuple,
//! answered with the socket's uid (`idiag_uid`, the creator's fsuid).
//!
//! Used for peers on a loopback address: there the connecting socket lives
//! on this host, so its owner says which local process opened it.

use std::io;
use std::net::{IpAddr, SocketAddr};

const NETLINK_SOCK_DIAG: libc::c_int = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `idiag_cookie` meaning "any socket with this 4-tuple".
const INET_DIAG_NOCOOKIE: u32 = !0;

const NLMSG_HDR_LEN: usize = 16;
/// `struct inet_diag_req_v2`: family, protocol, ext, pad, states, sockid.
const REQ_LEN: usize = 8 + SOCKID_LEN;
/// `struct inet_diag_sockid`: sport, dport, src[16], dst[16], if, cookie[2].
const SOCKID_LEN: usize = 2 + 2 + 16 + 16 + 4 + 8;
/// Offset of `idiag_uid` in `struct inet_diag_msg`: family, state, timer,
/// retrans, sockid, expires, rqueue, wqueue, then uid.
const UID_OFFSET: usize = 4 + SOCKID_LEN + 12;

/// The uid owning the TCP socket whose local end is `local` and whose
/// remote end is `remote` (both as that socket sees them).
pub fn tcp_socket_uid(local: SocketAddr, remote: SocketAddr) -> io::Result<u32> {
    let family = if local.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let request = encode_request(family as u8, local, remote);
    let fd = Netlink::open()?;
    fd.send(&request)?;
    let mut buf = [0u8; 8192];
    let n = fd.recv(&mut buf)?;
    parse_reply(&buf[..n])
}

fn put_addr(out: &mut [u8], ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out[..16].copy_from_slice(&v6.octets()),
    }
}

fn encode_request(family: u8, local: SocketAddr, remote: SocketAddr) -> Vec<u8> {
    let total = NLMSG_HDR_LEN + REQ_LEN;
    let mut m = vec![0u8; total];
    // struct nlmsghdr (host byte order): no NLM_F_DUMP, so the kernel
    // looks up exactly one socket (inet_diag_find_one_icsk).
    m[0..4].copy_from_slice(&(total as u32).to_ne_bytes());
    m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    m[8..12].copy_from_slice(&1u32.to_ne_bytes());
    let r = &mut m[NLMSG_HDR_LEN..];
    r[0] = family;
    r[1] = libc::IPPROTO_TCP as u8;
    // idiag_states: every state.
    r[4..8].copy_from_slice(&u32::MAX.to_ne_bytes());
    let id = &mut r[8..];
    // Ports and addresses in network byte order.
    id[0..2].copy_from_slice(&local.port().to_be_bytes());
    id[2..4].copy_from_slice(&remote.port().to_be_bytes());
    put_addr(&mut id[4..20], local.ip());
    put_addr(&mut id[20..36], remote.ip());
    id[40..44].copy_from_slice(&INET_DIAG_NOCOOKIE.to_ne_bytes());
    id[44..48].copy_from_slice(&INET_DIAG_NOCOOKIE.to_ne_bytes());
    m
}

fn parse_reply(buf: &[u8]) -> io::Result<u32> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("sock_diag: {what}"));
    if buf.len() < NLMSG_HDR_LEN {
        return Err(bad("short reply"));
    }
    let kind = u16::from_ne_bytes([buf[4], buf[5]]);
    let body = &buf[NLMSG_HDR_LEN..];
    if kind == libc::NLMSG_ERROR as u16 {
        let errno = body
            .get(..4)
            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| bad("short error"))?;
        return Err(io::Error::from_raw_os_error(-errno));
    }
    if kind != SOCK_DIAG_BY_FAMILY {
        return Err(bad("unexpected message type"));
    }
    body.get(UID_OFFSET..UID_OFFSET + 4)
        .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| bad("short inet_diag_msg"))
}

/// A netlink socket, closed on drop.
struct Netlink(libc::c_int);

impl Netlink {
    fn open() -> io::Result<Netlink> {
        // SAFETY: plain socket(2) call.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                NETLINK_SOCK_DIAG,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let s = Netlink(fd);
        // The kernel answers at once; a bound on the wait all the same.
        let tv = libc::timeval {
            tv_sec: 1,
            tv_usec: 0,
        };
        // SAFETY: valid fd, pointer to a timeval of the given size.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        Ok(s)
    }

    fn send(&self, msg: &[u8]) -> io::Result<()> {
        // SAFETY: all-zero sockaddr_nl is the kernel (pid 0) address.
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: valid fd, buffer and address of the given lengths.
        let rc = unsafe {
            libc::sendto(
                self.0,
                msg.as_ptr() as *const libc::c_void,
                msg.len(),
                0,
                &kernel as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: valid fd, `buf` writable for its length.
        let n = unsafe { libc::recv(self.0, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}

impl Drop for Netlink {
    fn drop(&mut self) {
        // SAFETY: we own the fd.
        unsafe { libc::close(self.0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both ends of a loopback connection made by this process belong to
    /// our uid; the lookup must find the connecting end by its 4-tuple.
    #[test]
    fn finds_the_uid_of_a_local_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, from) = listener.accept().unwrap();
        let uid = tcp_socket_uid(from, client.peer_addr().unwrap()).unwrap();
        // SAFETY: geteuid has no preconditions.
        assert_eq!(uid, unsafe { libc::geteuid() });
    }

    #[test]
    fn a_tuple_without_a_socket_is_not_found() {
        let e = tcp_socket_uid(
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        )
        .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{e}");
    }
}
