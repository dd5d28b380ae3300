//! The sender: one BGP session that replays pre-encoded UPDATEs as fast as
//! TCP takes them, so the receiver is what is measured. Blocking std I/O:
//! one thread writes, one drains what the receiver sends (KEEPALIVEs, a
//! NOTIFICATION), the caller steers it through a channel.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use wire::{decode_message, Message, Open};

use crate::encode::{self, CODEC};

#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// Connect to the receiver (retrying until it listens).
    Connect(SocketAddr),
    /// Wait for the receiver to connect.
    Listen(SocketAddr),
}

#[derive(Debug, Clone)]
pub struct SessionParams {
    pub local_asn: u32,
    pub router_id: Ipv4Addr,
    pub hold_time: u16,
    pub target: Target,
    /// How long to keep trying to connect / wait for the peer.
    pub connect_timeout: Duration,
}

#[derive(Debug)]
pub enum Event {
    /// We received the peer's KEEPALIVE after exchanging OPENs.
    Established {
        at: Instant,
        peer: Box<Open>,
    },
    /// Every UPDATE and End-of-RIB is in the kernel's send buffer.
    Sent {
        at: Instant,
        bytes: usize,
        messages: usize,
    },
    /// A churn burst started (withdraw or re-announce).
    ChurnPhase {
        at: Instant,
        withdraw: bool,
    },
    ChurnDone,
    /// Our side closed the session.
    Closed {
        at: Instant,
    },
    /// The peer sent a NOTIFICATION or closed the connection.
    PeerGone {
        at: Instant,
        why: String,
    },
}

pub enum Control {
    /// Alternate `withdraw` and `announce` every `half_period` for `duration`,
    /// ending with an announce.
    Churn {
        withdraw: Arc<Vec<u8>>,
        announce: Arc<Vec<u8>>,
        duration: Duration,
        half_period: Duration,
    },
    /// Send a Cease NOTIFICATION and close the TCP connection.
    Close,
}

fn connect(p: &SessionParams) -> io::Result<TcpStream> {
    let deadline = Instant::now() + p.connect_timeout;
    match p.target {
        Target::Connect(addr) => loop {
            match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                Ok(s) => return Ok(s),
                Err(e) if Instant::now() >= deadline => {
                    return Err(io::Error::new(e.kind(), format!("connect to {addr}: {e}")))
                }
                Err(_) => thread::sleep(Duration::from_millis(100)),
            }
        },
        Target::Listen(addr) => {
            let l = TcpListener::bind(addr)?;
            l.set_nonblocking(true)?;
            loop {
                match l.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false)?;
                        return Ok(s);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if Instant::now() >= deadline {
                            return Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                format!("no peer connected to {addr}"),
                            ));
                        }
                        thread::sleep(Duration::from_millis(50));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// Read one whole message during the handshake.
pub(crate) fn read_message(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Message, String> {
    loop {
        match decode_message(buf, &CODEC) {
            Ok(Some((m, used))) => {
                buf.drain(..used);
                return Ok(m);
            }
            Ok(None) => {}
            Err(e) => return Err(format!("peer sent a bad message: {e}")),
        }
        let mut chunk = [0u8; 4096];
        let n = s
            .read(&mut chunk)
            .map_err(|e| format!("reading from peer: {e}"))?;
        if n == 0 {
            return Err("peer closed the connection during the handshake".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Drain what the peer sends after Established; only a NOTIFICATION or the
/// end of the stream matters. Headers are walked, bodies not decoded.
fn drain(mut s: TcpStream, ev: Sender<Event>, mut buf: Vec<u8>) {
    let mut chunk = vec![0u8; 65536];
    loop {
        while buf.len() >= 19 {
            let len = usize::from(u16::from_be_bytes([buf[16], buf[17]]));
            if len < 19 {
                let _ = ev.send(Event::PeerGone {
                    at: Instant::now(),
                    why: "peer sent a bad message header".into(),
                });
                return;
            }
            if buf.len() < len {
                break;
            }
            if buf[18] == 3 && len >= 21 {
                let _ = ev.send(Event::PeerGone {
                    at: Instant::now(),
                    why: format!("peer sent NOTIFICATION {}/{}", buf[19], buf[20]),
                });
            }
            buf.drain(..len);
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => {
                let _ = ev.send(Event::PeerGone {
                    at: Instant::now(),
                    why: "peer closed the connection".into(),
                });
                return;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Run one session: handshake, replay `updates`, then keep the session up
/// (and churn on request) until told to close or the control channel drops.
pub fn run_session(
    p: &SessionParams,
    updates: &[u8],
    ctl: Receiver<Control>,
    ev: Sender<Event>,
) -> Result<(), String> {
    let mut s = connect(p).map_err(|e| e.to_string())?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    s.write_all(&encode::open(p.local_asn, p.router_id, p.hold_time))
        .map_err(|e| format!("sending OPEN: {e}"))?;
    let mut buf = Vec::new();
    let peer = match read_message(&mut s, &mut buf)? {
        Message::Open(o) => o,
        Message::Notification(n) => {
            return Err(format!(
                "peer refused the session: NOTIFICATION {}/{}",
                n.code, n.subcode
            ))
        }
        other => return Err(format!("expected OPEN, got {other:?}")),
    };
    let four = peer.has_capability(|c| matches!(c, wire::Capability::FourOctetAs(_)));
    if !four {
        return Err("peer does not speak 4-octet ASNs; the pre-encoded UPDATEs need it".into());
    }
    s.write_all(&encode::keepalive())
        .map_err(|e| format!("sending KEEPALIVE: {e}"))?;
    match read_message(&mut s, &mut buf)? {
        Message::Keepalive => {}
        Message::Notification(n) => {
            return Err(format!(
                "peer closed the session: NOTIFICATION {}/{}",
                n.code, n.subcode
            ))
        }
        other => return Err(format!("expected KEEPALIVE, got {other:?}")),
    }
    let hold = p.hold_time.min(peer.hold_time);
    let _ = ev.send(Event::Established {
        at: Instant::now(),
        peer: Box::new(peer),
    });
    let reader = s.try_clone().map_err(|e| e.to_string())?;
    let ev2 = ev.clone();
    thread::spawn(move || drain(reader, ev2, buf));

    s.write_all(updates)
        .map_err(|e| format!("sending UPDATEs: {e}"))?;
    let _ = ev.send(Event::Sent {
        at: Instant::now(),
        bytes: updates.len(),
        messages: encode::count_messages(updates),
    });

    // Hold time 0 means no KEEPALIVEs; still send one now and then.
    let keepalive_every = if hold == 0 {
        Duration::from_secs(30)
    } else {
        Duration::from_secs(u64::from(hold / 3).clamp(1, 30))
    };
    let ka = encode::keepalive();
    loop {
        match ctl.recv_timeout(keepalive_every) {
            Err(RecvTimeoutError::Timeout) => {
                s.write_all(&ka)
                    .map_err(|e| format!("sending KEEPALIVE: {e}"))?;
            }
            Ok(Control::Churn {
                withdraw,
                announce,
                duration,
                half_period,
            }) => {
                let end = Instant::now() + duration;
                let mut down = true;
                let mut next = Instant::now();
                // Always finish on an announce so the table is whole again.
                while Instant::now() < end || !down {
                    let now = Instant::now();
                    if next > now {
                        thread::sleep(next - now);
                    }
                    let at = Instant::now();
                    let _ = ev.send(Event::ChurnPhase { at, withdraw: down });
                    let b = if down { &withdraw } else { &announce };
                    s.write_all(b).map_err(|e| format!("sending churn: {e}"))?;
                    down = !down;
                    next = at + half_period;
                }
                let _ = ev.send(Event::ChurnDone);
            }
            Ok(Control::Close) | Err(RecvTimeoutError::Disconnected) => {
                let _ = s.write_all(&encode::cease());
                let _ = s.shutdown(Shutdown::Both);
                drop(s);
                let _ = ev.send(Event::Closed { at: Instant::now() });
                return Ok(());
            }
        }
    }
}
