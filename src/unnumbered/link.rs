//! The edges of unnumbered peering: a raw ICMPv6 socket on one interface
//! for router discovery, and a netlink socket that wakes us when links
//! change. No decisions here (`ra.rs` checks packets, `mod.rs` decides).

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::ra;

/// All-nodes (RAs go there) and all-routers (RSs go there, so we join it
/// to hear them), RFC 4291 §2.7.1.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// <netinet/icmp6.h>'s ICMP6_FILTER (not in the libc crate).
const ICMP6_FILTER: i32 = 1;

/// Register `fd` with the reactor.
fn register<T: AsRawFd>(fd: T) -> io::Result<AsyncFd<T>> {
    // SAFETY: `fd` owns its file descriptor (a Socket or OwnedFd), which
    // stays open for as long as the AsyncFd holding it.
    unsafe { AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)
}

fn setsockopt<T>(fd: i32, level: i32, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a live T of the size we pass.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The interface's index, and whether it is up with carrier (IFF_UP and
/// IFF_RUNNING); None when there is no such interface.
pub fn link_state(ifname: &str) -> Option<(u32, bool)> {
    let name = std::ffi::CString::new(ifname).ok()?;
    // SAFETY: `name` is NUL-terminated and outlives the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return None;
    }
    let s = Socket::new(Domain::IPV6, Type::DGRAM, None).ok()?;
    // SAFETY: an all-zero ifreq is valid; the name fits (checked at
    // config load, < IFNAMSIZ), and SIOCGIFFLAGS only fills ifr_flags.
    let mut req: libc::ifreq = unsafe { zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(ifname.bytes().take(15)) {
        *dst = src as libc::c_char;
    }
    // SAFETY: `req` is a valid ifreq for SIOCGIFFLAGS.
    if unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } != 0 {
        return None;
    }
    // SAFETY: SIOCGIFFLAGS set the flags member of the union.
    let flags = i32::from(unsafe { req.ifr_ifru.ifru_flags });
    let up = flags & libc::IFF_UP != 0 && flags & libc::IFF_RUNNING != 0;
    Some((index, up))
}

/// A raw ICMPv6 socket bound to one interface, hearing only RS and RA.
pub struct RouterDiscovery {
    fd: AsyncFd<Socket>,
    ifindex: u32,
}

impl RouterDiscovery {
    pub fn open(ifname: &str, ifindex: u32) -> io::Result<RouterDiscovery> {
        let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
        s.set_nonblocking(true)?;
        s.bind_device(Some(ifname.as_bytes()))?;
        // RFC 4861 §6.1: RS and RA travel with hop limit 255, which the
        // receiver checks to know they were not forwarded.
        s.set_multicast_hops_v6(u32::from(ra::HOP_LIMIT))?;
        s.set_unicast_hops_v6(u32::from(ra::HOP_LIMIT))?;
        s.set_multicast_if_v6(ifindex)?;
        s.set_multicast_loop_v6(false)?;
        s.join_multicast_v6(&ALL_ROUTERS, ifindex)?;
        let fd = s.as_raw_fd();
        // The hop limit each packet arrived with (RFC 3542 §6.3).
        setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, &1i32)?;
        // ICMP6_FILTER (RFC 3542 §3.2): a set bit blocks that type.
        let mut filter = [u32::MAX; 8];
        for t in [ra::ROUTER_SOLICITATION, ra::ROUTER_ADVERTISEMENT] {
            filter[usize::from(t >> 5)] &= !(1u32 << (t & 31));
        }
        setsockopt(fd, libc::IPPROTO_ICMPV6, ICMP6_FILTER, &filter)?;
        Ok(RouterDiscovery {
            fd: register(s)?,
            ifindex,
        })
    }

    /// Send `packet` to `dest` on our interface (the kernel picks our
    /// link-local source and fills the checksum).
    pub async fn send(&self, packet: &[u8], dest: Ipv6Addr) -> io::Result<()> {
        let to = socket2::SockAddr::from(SocketAddrV6::new(dest, 0, 0, self.ifindex));
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|s| s.get_ref().send_to(packet, &to)) {
                Ok(r) => return r.map(|_| ()),
                Err(_would_block) => continue,
            }
        }
    }

    /// The next packet: its bytes in `buf`, length, source and hop limit.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, Ipv6Addr, u8)> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|s| recv_with_hop_limit(s.get_ref().as_raw_fd(), buf)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }
}

/// recvmsg(2) with the IPV6_HOPLIMIT control message.
fn recv_with_hop_limit(fd: i32, buf: &mut [u8]) -> io::Result<(usize, Ipv6Addr, u8)> {
    // SAFETY: all-zero sockaddr_in6 and msghdr are valid.
    let mut from: libc::sockaddr_in6 = unsafe { zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Room for one cmsg carrying an int (8-aligned, generous).
    let mut control = [0u64; 8];
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut from as *mut libc::sockaddr_in6).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 8]>();
    // SAFETY: msg points at live buffers of the sizes given.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // No hop limit given: treat as not 255, so the packet is refused.
    let mut hop_limit = 0u8;
    // SAFETY: walking the control messages recvmsg just wrote.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::IPPROTO_IPV6 && (*c).cmsg_type == libc::IPV6_HOPLIMIT {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const i32);
                hop_limit = u8::try_from(v).unwrap_or(0);
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    let source = Ipv6Addr::from(from.sin6_addr.s6_addr);
    Ok((n as usize, source, hop_limit))
}

/// A netlink socket subscribed to link changes (RTMGRP_LINK); its
/// messages only wake us up: the interface's state is read again with
/// [`link_state`], so nothing of them is parsed.
pub struct LinkEvents {
    fd: AsyncFd<OwnedFd>,
}

impl LinkEvents {
    pub fn open() -> io::Result<LinkEvents> {
        // SAFETY: plain socket(2); the fd is owned below.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh fd nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: an all-zero sockaddr_nl is valid.
        let mut addr: libc::sockaddr_nl = unsafe { zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        addr.nl_groups = libc::RTMGRP_LINK as u32;
        // SAFETY: `addr` is a sockaddr_nl of the size given.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(LinkEvents { fd: register(fd)? })
    }

    /// Wait for one or more link changes (any interface's).
    pub async fn changed(&self) -> io::Result<()> {
        let mut buf = [0u8; 8192];
        let mut guard = self.fd.readable().await?;
        let mut got = false;
        loop {
            // SAFETY: `buf` is a live buffer of the length given.
            let n = unsafe {
                libc::recv(
                    self.fd.get_ref().as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                )
            };
            if n >= 0 {
                got = true;
                continue;
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock => {
                    guard.clear_ready();
                    // ENOBUFS (messages lost) also says something changed.
                    return Ok(());
                }
                _ if e.raw_os_error() == Some(libc::ENOBUFS) => got = true,
                _ if got => return Ok(()),
                _ => return Err(e),
            }
        }
    }
}
