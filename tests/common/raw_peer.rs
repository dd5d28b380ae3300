//! A BGP peer spoken by hand over a TCP socket, for the tests that need
//! what no real daemon sends on demand: crafted or malformed UPDATEs,
//! floods, a peer that stops reading. The daemon under test is real.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use labkit::Netns;
use wire::{
    decode_message, encode_message, Capability, Family, Message, Notification, Open, SessionCodec,
};

/// Every raw peer negotiates 4-octet ASNs.
pub const CODEC: SessionCodec = SessionCodec {
    four_octet_as: true,
};

pub struct RawPeer {
    /// The connection, for tests that write or read past the helpers.
    pub s: TcpStream,
    buf: Vec<u8>,
}

/// OPEN for IPv4 unicast with 4-octet ASN `asn`, hold time 90.
pub fn open_v4(asn: u32, router_id: &str) -> Open {
    Open {
        version: 4,
        asn,
        hold_time: 90,
        router_id: router_id.parse().expect("router id"),
        capabilities: vec![
            Capability::Multiprotocol(Family::Ipv4Unicast),
            Capability::FourOctetAs(asn),
        ],
    }
}

/// Messages encoded back to back.
pub fn encode(msgs: &[Message]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        encode_message(m, &CODEC, &mut out);
    }
    out
}

impl RawPeer {
    /// A TCP connection from `src` inside `ns` to `dst` port 179; `rcvbuf`
    /// shrinks the receive buffer (and so the window) before connecting.
    pub fn connect(ns: &Netns, src: &str, dst: &str, rcvbuf: Option<usize>) -> RawPeer {
        let src: IpAddr = src.parse().expect("source address");
        let to = SocketAddr::new(dst.parse().expect("kroute's address"), 179);
        let s = ns
            .spawn_thread(move || {
                let domain = socket2::Domain::for_address(to);
                let sock =
                    socket2::Socket::new(domain, socket2::Type::STREAM, None).expect("socket");
                if let Some(n) = rcvbuf {
                    sock.set_recv_buffer_size(n).expect("SO_RCVBUF");
                }
                sock.bind(&SocketAddr::new(src, 0).into())
                    .expect("bind source address");
                sock.connect_timeout(&to.into(), Duration::from_secs(5))
                    .expect("connect to kroute");
                TcpStream::from(sock)
            })
            .join()
            .expect("connect thread")
            .unwrap_or_else(|e| panic!("{e}"));
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        RawPeer { s, buf: Vec::new() }
    }

    /// [`RawPeer::connect`], then OPEN and KEEPALIVE both ways.
    pub fn establish(
        ns: &Netns,
        src: &str,
        dst: &str,
        open: Open,
        rcvbuf: Option<usize>,
    ) -> RawPeer {
        let mut p = RawPeer::connect(ns, src, dst, rcvbuf);
        p.send(&[Message::Open(open), Message::Keepalive]);
        let mut got_open = false;
        loop {
            match p.recv() {
                Some(Message::Open(_)) => got_open = true,
                Some(Message::Keepalive) if got_open => return p,
                other => panic!("kroute answered the handshake with {other:?}"),
            }
        }
    }

    pub fn send(&mut self, msgs: &[Message]) {
        self.send_raw(&encode(msgs));
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("send to kroute");
    }

    /// The next message from kroute; `None` once it closed the connection.
    pub fn recv(&mut self) -> Option<Message> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Ok(Some((m, len))) = decode_message(&self.buf, &CODEC) {
                self.buf.drain(..len);
                return Some(m);
            }
            match self.s.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("reading from kroute: {e}"),
            }
        }
    }

    /// Read until kroute closes; its NOTIFICATION, if it sent one.
    pub fn notification_at_close(&mut self) -> Option<Notification> {
        let mut nf = None;
        while let Some(m) = self.recv() {
            if let Message::Notification(n) = m {
                nf = Some(n);
            }
        }
        nf
    }

    /// From now on everything kroute sends is read and dropped by a
    /// thread, so kroute's writes never block on this peer.
    pub fn discard_incoming(&self) {
        let mut r = self.s.try_clone().unwrap();
        r.set_read_timeout(None).unwrap();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 16 * 1024];
            while matches!(r.read(&mut chunk), Ok(n) if n > 0) {}
        });
    }

    /// Closes the connection now, also when a clone of it is still held
    /// (e.g. by [`RawPeer::discard_incoming`]'s thread).
    pub fn close(&self) {
        let _ = self.s.shutdown(std::net::Shutdown::Both);
    }
}
