//! One TCP connection to a peer: a reader task (framing, decoding, hold
//! timer) and a writer task (encoding). The peer task owns the FSM; it hears
//! from the reader through [`ConnEvent`]s and talks to the writer through
//! [`Outgoing`]. Once the session is Established the reader hands UPDATEs
//! straight to the RIB, so a full table never queues behind the FSM.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, watch};

use wire::notification as n;
use wire::{decode_message, encode_message, Family, Message, Notification, SessionCodec, Update};

use crate::events::RibEvent;
use rib::PeerId;

/// RFC 4271 §8.2.2: a large hold time until the OPENs are exchanged.
const OPEN_HOLD_TIME: Duration = Duration::from_secs(240);

pub type ConnId = u64;

#[derive(Debug)]
pub enum ConnEvent {
    Open(wire::Open),
    Keepalive,
    Notification(Notification),
    RouteRefresh(Family),
    /// The connection must end; send `notify` first if given.
    Failed {
        notify: Option<Notification>,
        reason: String,
    },
}

pub enum Outgoing {
    Messages(Vec<Message>),
    /// Set the codec once the OPENs are agreed.
    Codec(SessionCodec),
    /// Send this NOTIFICATION (if any) and close.
    Close(Option<Notification>),
}

/// Where the reader sends UPDATEs once the session is up: (generation, peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub peer: PeerId,
    pub generation: u64,
}

pub struct ReaderArgs {
    pub conn: ConnId,
    pub local_hold_time: u16,
    pub events: mpsc::UnboundedSender<(ConnId, ConnEvent)>,
    pub rib: mpsc::Sender<RibEvent>,
    /// `Some` once Established: UPDATEs before that wait here.
    pub established: watch::Receiver<Option<Delivery>>,
}

pub async fn run_reader(mut rd: OwnedReadHalf, a: ReaderArgs) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut codec = SessionCodec::default();
    let mut hold = OPEN_HOLD_TIME;
    let mut established = a.established;
    let fail = |notify: Option<Notification>, reason: String| ConnEvent::Failed { notify, reason };
    loop {
        // Decode every whole message in the buffer, batching UPDATEs.
        let mut updates: Vec<Update> = Vec::new();
        let mut used = 0;
        let mut stop: Option<ConnEvent> = None;
        loop {
            match decode_message(&buf[used..], &codec) {
                Ok(Some((msg, len))) => {
                    used += len;
                    match msg {
                        Message::Update(u) => updates.push(u),
                        Message::Open(o) => {
                            codec.four_octet_as =
                                o.has_capability(|c| matches!(c, wire::Capability::FourOctetAs(_)));
                            let negotiated = a.local_hold_time.min(o.hold_time);
                            hold = if negotiated == 0 {
                                Duration::MAX
                            } else {
                                Duration::from_secs(u64::from(negotiated))
                            };
                            let _ = a.events.send((a.conn, ConnEvent::Open(o)));
                        }
                        Message::Keepalive => {
                            let _ = a.events.send((a.conn, ConnEvent::Keepalive));
                        }
                        Message::Notification(nf) => {
                            stop = Some(ConnEvent::Notification(nf));
                            break;
                        }
                        Message::RouteRefresh(r) => {
                            let _ = a.events.send((a.conn, ConnEvent::RouteRefresh(r.family)));
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    stop = Some(fail(
                        Some(e.0.clone()),
                        format!("bad message from peer: {e}"),
                    ));
                    break;
                }
            }
        }
        buf.drain(..used);
        if !updates.is_empty() {
            // UPDATEs are only valid once Established (RFC 4271 §8.2.2); the
            // FSM flips `established` right after KEEPALIVE in OpenConfirm,
            // so wait for it rather than race it.
            let delivery = loop {
                if let Some(d) = *established.borrow_and_update() {
                    break Some(d);
                }
                if established.changed().await.is_err() {
                    break None;
                }
            };
            let Some(d) = delivery else { return };
            let ev = RibEvent::Updates {
                peer: d.peer,
                generation: d.generation,
                updates,
            };
            if a.rib.send(ev).await.is_err() {
                return;
            }
        }
        if let Some(ev) = stop {
            let _ = a.events.send((a.conn, ev));
            return;
        }
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(64 * 1024);
        }
        let read = if hold == Duration::MAX {
            Ok(rd.read_buf(&mut buf).await)
        } else {
            tokio::time::timeout(hold, rd.read_buf(&mut buf)).await
        };
        match read {
            Err(_) => {
                let nf = Notification {
                    code: n::HOLD_TIMER_EXPIRED,
                    subcode: 0,
                    data: vec![],
                };
                let _ = a
                    .events
                    .send((a.conn, fail(Some(nf), "hold timer expired".into())));
                return;
            }
            Ok(Ok(0)) => {
                let _ = a
                    .events
                    .send((a.conn, fail(None, "connection closed by peer".into())));
                return;
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                let _ = a
                    .events
                    .send((a.conn, fail(None, format!("read error: {e}"))));
                return;
            }
        }
    }
}

pub async fn run_writer(mut wr: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<Outgoing>) {
    let mut codec = SessionCodec::default();
    let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
    while let Some(first) = rx.recv().await {
        let mut close: Option<Option<Notification>> = None;
        let mut next = Some(first);
        // Encode everything queued, then write once.
        while let Some(cmd) = next.take() {
            match cmd {
                Outgoing::Messages(msgs) => {
                    for m in &msgs {
                        encode_message(m, &codec, &mut out);
                    }
                }
                Outgoing::Codec(c) => codec = c,
                Outgoing::Close(nf) => {
                    close = Some(nf);
                    break;
                }
            }
            if out.len() < 1 << 20 {
                next = rx.try_recv().ok();
            }
        }
        if let Some(Some(nf)) = &close {
            encode_message(&Message::Notification(nf.clone()), &codec, &mut out);
        }
        if !out.is_empty() {
            if wr.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if close.is_some() {
            let _ = wr.shutdown().await;
            return;
        }
    }
}
