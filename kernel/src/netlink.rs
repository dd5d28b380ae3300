//! Thin layer over a blocking NETLINK_ROUTE socket: open with the options we
//! need, send a buffer, receive datagrams, split them into messages, and
//! decode NLMSG_ERROR (with extended-ack text) into words.

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use netlink_packet_core::{NetlinkMessage, NLMSG_DONE, NLMSG_ERROR};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

pub(crate) const NLMSG_HDRLEN: usize = 16;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLM_F_DUMP_INTR: u16 = 0x10;
const NLMSGERR_ATTR_MSG: u16 = 1;

pub(crate) const RTM_NEWROUTE: u16 = 24;
pub(crate) const RTM_DELROUTE: u16 = 25;

/// Multicast groups (RTNLGRP_*), joined with NETLINK_ADD_MEMBERSHIP.
pub(crate) const RTNLGRP_LINK: u32 = 1;
pub(crate) const RTNLGRP_IPV4_IFADDR: u32 = 5;
pub(crate) const RTNLGRP_IPV4_ROUTE: u32 = 7;
pub(crate) const RTNLGRP_IPV6_IFADDR: u32 = 9;
pub(crate) const RTNLGRP_IPV6_ROUTE: u32 = 11;

/// A blocking rtnetlink socket plus a reusable receive buffer.
pub(crate) struct NlSocket {
    sock: Socket,
    buf: Vec<u8>,
    seq: u32,
}

impl NlSocket {
    /// Opens and binds a socket in the calling thread's network namespace.
    pub(crate) fn open(rcvbuf: usize, timeout: Option<Duration>) -> io::Result<NlSocket> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind(&SocketAddr::new(0, 0))?;
        // Errors carry only the failing message's header, plus the kernel's
        // explanation as text.
        sock.set_cap_ack(true)?;
        sock.set_ext_ack(true)?;
        let fd = sock.as_raw_fd();
        // SO_RCVBUFFORCE needs CAP_NET_ADMIN; fall back to SO_RCVBUF.
        if setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, rcvbuf as i32).is_err() {
            let _ = setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, rcvbuf as i32);
        }
        let _ = setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, 1 << 20);
        if let Some(t) = timeout {
            let tv = libc::timeval {
                tv_sec: t.as_secs() as libc::time_t,
                tv_usec: t.subsec_micros() as libc::suseconds_t,
            };
            setsockopt_raw(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)?;
        }
        Ok(NlSocket {
            sock,
            buf: vec![0; 1 << 20],
            seq: 1,
        })
    }

    pub(crate) fn fd(&self) -> i32 {
        self.sock.as_raw_fd()
    }

    /// The port id the kernel gave this socket at bind (nlmsg_pid of what
    /// it sends, and of the notifications its requests cause).
    pub(crate) fn portid(&self) -> io::Result<u32> {
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        let r = unsafe {
            libc::getsockname(
                self.fd(),
                &mut addr as *mut libc::sockaddr_nl as *mut libc::sockaddr,
                &mut len,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(addr.nl_pid)
    }

    pub(crate) fn join(&self, group: u32) -> io::Result<()> {
        self.sock.add_membership(group)
    }

    pub(crate) fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    pub(crate) fn send(&self, buf: &[u8]) -> io::Result<()> {
        let n = self.sock.send(buf, 0)?;
        if n != buf.len() {
            return Err(io::Error::other("short netlink send"));
        }
        Ok(())
    }

    /// Receives one datagram; returns its bytes (valid until the next call).
    pub(crate) fn recv(&mut self) -> io::Result<&[u8]> {
        let n = loop {
            let r = unsafe {
                libc::recv(
                    self.sock.as_raw_fd(),
                    self.buf.as_mut_ptr() as *mut libc::c_void,
                    self.buf.len(),
                    0,
                )
            };
            if r >= 0 {
                break r as usize;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        };
        Ok(&self.buf[..n.min(self.buf.len())])
    }

    /// Sends one request and collects every reply message until NLMSG_DONE
    /// (for dumps) or the first reply (otherwise). Errors come back as
    /// `Err(NlError)`.
    pub(crate) fn request(
        &mut self,
        mut msg: NetlinkMessage<RouteNetlinkMessage>,
        dump: bool,
    ) -> Result<Vec<NetlinkMessage<RouteNetlinkMessage>>, NlError> {
        msg.finalize();
        let mut out = vec![0u8; msg.buffer_len()];
        msg.serialize(&mut out);
        let replies = self.request_raw(&mut out, dump)?;
        Ok(replies
            .iter()
            .filter_map(
                |raw| match NetlinkMessage::<RouteNetlinkMessage>::deserialize(raw) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        tracing::debug!("undecodable netlink message: {e}");
                        None
                    }
                },
            )
            .collect())
    }

    /// [`NlSocket::request`] for an encoded message (its sequence number is
    /// set here); the replies come back undecoded.
    pub(crate) fn request_raw(
        &mut self,
        msg: &mut [u8],
        dump: bool,
    ) -> Result<Vec<Vec<u8>>, NlError> {
        let mut replies = Vec::new();
        self.request_each(msg, dump, |raw| replies.push(raw.to_vec()))?;
        Ok(replies)
    }

    /// [`NlSocket::request_raw`] handing each reply to `each` as it comes,
    /// so that a dump of a full table is never held whole.
    pub(crate) fn request_each(
        &mut self,
        msg: &mut [u8],
        dump: bool,
        mut each: impl FnMut(&[u8]),
    ) -> Result<(), NlError> {
        let seq = self.next_seq();
        msg[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.send(msg).map_err(NlError::from_io)?;
        let mut interrupted = false;
        loop {
            let data = self.recv().map_err(NlError::from_io)?;
            let mut done = false;
            for raw in split_messages(data) {
                let hdr = header_of(raw);
                if hdr.seq != seq {
                    continue; // a late answer to an earlier request
                }
                if hdr.flags & NLM_F_DUMP_INTR != 0 {
                    interrupted = true;
                }
                match hdr.kind {
                    NLMSG_DONE => done = true,
                    NLMSG_ERROR => {
                        let e = parse_error(raw);
                        if e.code != 0 {
                            return Err(NlError {
                                errno: e.code,
                                text: e.text,
                            });
                        }
                        done = true;
                    }
                    _ => {
                        each(raw);
                        if !dump {
                            done = true;
                        }
                    }
                }
            }
            if done {
                break;
            }
        }
        if interrupted {
            tracing::debug!("netlink dump was interrupted by a concurrent change");
        }
        Ok(())
    }
}

/// Joins or leaves multicast `group` on socket `fd` (which another thread
/// may be reading).
pub(crate) fn set_membership(fd: i32, group: u32, join: bool) -> io::Result<()> {
    let opt = if join {
        libc::NETLINK_ADD_MEMBERSHIP
    } else {
        libc::NETLINK_DROP_MEMBERSHIP
    };
    setsockopt_raw(fd, libc::SOL_NETLINK, opt, &group)
}

fn setsockopt_int(fd: i32, level: i32, name: i32, value: i32) -> io::Result<()> {
    setsockopt_raw(fd, level, name, &value)
}

pub(crate) fn setsockopt_raw<T>(fd: i32, level: i32, name: i32, value: &T) -> io::Result<()> {
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            value as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The fixed netlink header fields we look at without a full decode.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawHeader {
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    /// The sender's port id: for a notification, the socket whose request
    /// caused it; 0 when the kernel acted on its own.
    pub portid: u32,
}

pub(crate) fn header_of(raw: &[u8]) -> RawHeader {
    RawHeader {
        kind: u16::from_ne_bytes([raw[4], raw[5]]),
        flags: u16::from_ne_bytes([raw[6], raw[7]]),
        seq: u32::from_ne_bytes([raw[8], raw[9], raw[10], raw[11]]),
        portid: u32::from_ne_bytes([raw[12], raw[13], raw[14], raw[15]]),
    }
}

/// Splits a datagram into its netlink messages.
pub(crate) fn split_messages(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut off = 0usize;
    std::iter::from_fn(move || {
        if off + NLMSG_HDRLEN > data.len() {
            return None;
        }
        let len =
            u32::from_ne_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]]) as usize;
        if len < NLMSG_HDRLEN || off + len > data.len() {
            return None;
        }
        let msg = &data[off..off + len];
        off += (len + 3) & !3;
        Some(msg)
    })
}

/// A decoded NLMSG_ERROR: `code` is a positive errno, 0 for an ACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorReply {
    pub code: i32,
    /// Sequence number of the request it answers.
    pub seq: u32,
    /// The kernel's extended-ack message, if any.
    pub text: Option<String>,
}

pub(crate) fn parse_error(raw: &[u8]) -> ErrorReply {
    let outer = header_of(raw);
    let body = &raw[NLMSG_HDRLEN..];
    if body.len() < 4 + NLMSG_HDRLEN {
        return ErrorReply {
            code: if body.len() >= 4 {
                -i32::from_ne_bytes([body[0], body[1], body[2], body[3]])
            } else {
                libc::EPROTO
            },
            seq: outer.seq,
            text: None,
        };
    }
    let code = -i32::from_ne_bytes([body[0], body[1], body[2], body[3]]);
    let inner = &body[4..];
    let inner_hdr = header_of(inner);
    let mut text = None;
    if outer.flags & NLM_F_ACK_TLVS != 0 {
        let skip = if outer.flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            u32::from_ne_bytes([inner[0], inner[1], inner[2], inner[3]]) as usize
        };
        let mut tlvs = inner
            .get(((skip + 3) & !3).min(inner.len())..)
            .unwrap_or(&[]);
        while tlvs.len() >= 4 {
            let len = u16::from_ne_bytes([tlvs[0], tlvs[1]]) as usize;
            let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]) & 0x3fff;
            if len < 4 || len > tlvs.len() {
                break;
            }
            if kind == NLMSGERR_ATTR_MSG {
                let s = &tlvs[4..len];
                let s = s.split(|b| *b == 0).next().unwrap_or(&[]);
                let s = String::from_utf8_lossy(s).trim().to_string();
                if !s.is_empty() {
                    text = Some(s);
                }
            }
            tlvs = &tlvs[((len + 3) & !3).min(tlvs.len())..];
        }
    }
    ErrorReply {
        code,
        seq: inner_hdr.seq,
        text,
    }
}

/// An error answered by the kernel (or met on the socket).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(*errno, text.as_deref()))]
pub(crate) struct NlError {
    pub errno: i32,
    pub text: Option<String>,
}

impl NlError {
    pub(crate) fn from_io(e: io::Error) -> NlError {
        NlError {
            errno: e.raw_os_error().unwrap_or(libc::EIO),
            text: None,
        }
    }
}

/// "Network is unreachable (ENETUNREACH)", with the kernel's own explanation
/// appended when it gave one.
pub fn describe(errno: i32, text: Option<&str>) -> String {
    let msg = io::Error::from_raw_os_error(errno).to_string();
    let msg = match msg.find(" (os error") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    let mut s = match errno_name(errno) {
        Some(name) => format!("{msg} ({name})"),
        None => format!("{msg} (errno {errno})"),
    };
    if let Some(t) = text {
        s.push_str(": ");
        s.push_str(t);
    }
    s
}

/// The symbolic name of `errno` ("EINVAL"), for the ones netlink returns.
pub fn errno_name(errno: i32) -> Option<&'static str> {
    Some(match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::E2BIG => "E2BIG",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::ERANGE => "ERANGE",
        libc::EPROTO => "EPROTO",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::ENETDOWN => "ENETDOWN",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ENOBUFS => "ENOBUFS",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        _ => return None,
    })
}

/// Attaches a classic BPF filter that drops route notifications answering
/// a request of socket `writer_portid` (our own writes echoed back: the
/// kernel puts the requester's port id in nlmsg_pid of the notifications a
/// request causes, rtmsg_fib / inet6_rt_notify); without it a large install
/// would overflow the monitor socket.
///
/// Matching by sender, not by rtm_protocol, is what lets the monitor see a
/// route of ours that someone else deleted or replaced (`ip route del ...
/// proto bgp`): those carry the other process's port id (or 0 for the
/// kernel). Our own echoes still cost nothing per route in user space, and
/// during a large sweep the monitor leaves the route groups altogether
/// (see `quiet`), so the kernel does not even build them; what others did
/// meanwhile is found by comparing with a dump when the sweep ends.
pub(crate) fn drop_own_writes(fd: i32, writer_portid: u32) -> io::Result<()> {
    // BPF_ABS loads are converted from network byte order, while the
    // netlink header is in host order: compare against byte-swapped values.
    let h = |v: u16| -> u32 { u16::from_be_bytes(v.to_ne_bytes()) as u32 };
    let w = |v: u32| -> u32 { u32::from_be_bytes(v.to_ne_bytes()) };
    const LD_H_ABS: u16 = (libc::BPF_LD | libc::BPF_H | libc::BPF_ABS) as u16;
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let ins = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    let prog = [
        ins(LD_H_ABS, 0, 0, 4),             // 0: A = nlmsg_type
        ins(JEQ_K, 2, 0, h(RTM_NEWROUTE)),  // 1: -> 4
        ins(JEQ_K, 1, 0, h(RTM_DELROUTE)),  // 2: -> 4
        ins(RET_K, 0, 0, u32::MAX),         // 3: accept
        ins(LD_W_ABS, 0, 0, 12),            // 4: A = nlmsg_pid
        ins(JEQ_K, 0, 1, w(writer_portid)), // 5
        ins(RET_K, 0, 0, 0),                // 6: drop our echoes
        ins(RET_K, 0, 0, u32::MAX),         // 7: accept
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    setsockopt_raw(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_errno_in_words() {
        assert_eq!(
            describe(libc::ENETUNREACH, None),
            "Network is unreachable (ENETUNREACH)"
        );
        assert_eq!(
            describe(
                libc::EINVAL,
                Some("IPv6 does not support RTA_VIA attribute")
            ),
            "Invalid argument (EINVAL): IPv6 does not support RTA_VIA attribute"
        );
    }

    #[test]
    fn parses_capped_error_with_ext_ack() {
        let mut raw = Vec::new();
        let text = b"Nexthop has invalid gateway\0";
        let tlv_len = 4 + text.len();
        let total = 16 + 4 + 16 + ((tlv_len + 3) & !3);
        raw.extend_from_slice(&(total as u32).to_ne_bytes());
        raw.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        raw.extend_from_slice(&(NLM_F_CAPPED | NLM_F_ACK_TLVS).to_ne_bytes());
        raw.extend_from_slice(&7u32.to_ne_bytes());
        raw.extend_from_slice(&0u32.to_ne_bytes());
        raw.extend_from_slice(&(-libc::EINVAL).to_ne_bytes());
        // inner header: len, type, flags, seq, pid
        raw.extend_from_slice(&64u32.to_ne_bytes());
        raw.extend_from_slice(&RTM_NEWROUTE.to_ne_bytes());
        raw.extend_from_slice(&0u16.to_ne_bytes());
        raw.extend_from_slice(&42u32.to_ne_bytes());
        raw.extend_from_slice(&0u32.to_ne_bytes());
        raw.extend_from_slice(&(tlv_len as u16).to_ne_bytes());
        raw.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        raw.extend_from_slice(text);
        while raw.len() < total {
            raw.push(0);
        }
        let e = parse_error(&raw);
        assert_eq!(e.code, libc::EINVAL);
        assert_eq!(e.seq, 42);
        assert_eq!(e.text.as_deref(), Some("Nexthop has invalid gateway"));
        assert_eq!(split_messages(&raw).count(), 1);
    }
}
