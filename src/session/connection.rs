//! One TCP connection to a peer: a reader task (framing, decoding) and a
//! writer task (encoding). The peer task owns the FSM; it hears from the
//! reader through [`ConnEvent`]s and talks to the writer through
//! [`Outgoing`]. Once the session is Established the reader hands UPDATEs
//! straight to the RIB, so a full table never queues behind the FSM, and
//! only tells the FSM that they came (for the hold timer).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, watch};

use wire::{decode_message, encode_message, Family, Message, Notification, SessionCodec, Update};

use crate::events::RibEvent;
use rib::PeerId;

pub use super::fsm::ConnId;

/// What the reader saw, in the order it saw it.
#[derive(Debug)]
pub enum ConnEvent {
    Open(wire::Open),
    Keepalive,
    /// One or more UPDATEs. Before Established they are only reported
    /// (the FSM refuses them); after, they have gone to the RIB.
    Update,
    Notification(Notification),
    RouteRefresh(Family),
    /// A message that cannot be decoded: send this NOTIFICATION.
    Malformed(Notification, String),
    /// The peer closed the connection, or reading it failed.
    Closed(String),
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
    pub events: mpsc::UnboundedSender<(ConnId, ConnEvent)>,
    pub rib: mpsc::Sender<RibEvent>,
    /// Set by the peer task when the session is Established on this
    /// connection; dropped when the connection is closed.
    pub delivery: watch::Receiver<Option<Delivery>>,
}

pub async fn run_reader(mut rd: OwnedReadHalf, mut a: ReaderArgs) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut codec = SessionCodec::default();
    let mut delivery: Option<Delivery> = None;
    let send = |ev: ConnEvent| {
        let _ = a.events.send((a.conn, ev));
    };
    loop {
        // Decode every whole message in the buffer, batching UPDATEs.
        let mut updates: Vec<Update> = Vec::new();
        let mut used = 0;
        let mut stop: Option<ConnEvent> = None;
        while stop.is_none() {
            let msg = match decode_message(&buf[used..], &codec) {
                Ok(Some((msg, len))) => {
                    used += len;
                    msg
                }
                Ok(None) => break,
                Err(e) => {
                    stop = Some(ConnEvent::Malformed(e.0.clone(), e.to_string()));
                    break;
                }
            };
            match msg {
                Message::Update(u) if delivery.is_some() => updates.push(u),
                // Before Established: an FSM error (RFC 4271 §8.2.2); the
                // peer task closes the connection.
                Message::Update(_) => send(ConnEvent::Update),
                Message::Open(o) => {
                    codec.four_octet_as =
                        o.has_capability(|c| matches!(c, wire::Capability::FourOctetAs(_)));
                    send(ConnEvent::Open(o));
                }
                Message::Keepalive => {
                    send(ConnEvent::Keepalive);
                    if delivery.is_none() {
                        // In OpenConfirm this KEEPALIVE makes the session
                        // Established, and the UPDATEs right behind it are
                        // the RIB's, not errors: decode no further until the
                        // FSM has taken it. Its answer always comes: the
                        // FSM either establishes the session (OpenConfirm)
                        // or closes the connection, which drops the
                        // watch's sender.
                        match a.delivery.wait_for(Option::is_some).await {
                            Ok(d) => delivery = *d,
                            Err(_) => return,
                        }
                    }
                }
                Message::Notification(nf) => stop = Some(ConnEvent::Notification(nf)),
                Message::RouteRefresh(r) => send(ConnEvent::RouteRefresh(r.family)),
            }
        }
        buf.drain(..used);
        if let (Some(d), false) = (delivery, updates.is_empty()) {
            // Received now: the hold timer restarts even if the RIB makes
            // us wait.
            send(ConnEvent::Update);
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
            send(ev);
            return;
        }
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(64 * 1024);
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) => {
                send(ConnEvent::Closed("connection closed by peer".into()));
                return;
            }
            Ok(_) => {}
            Err(e) => {
                send(ConnEvent::Closed(format!("read error: {e}")));
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
