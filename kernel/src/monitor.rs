//! The monitor thread: reads link/address/route/nexthop notifications and tells the
//! worker what changed. The echoes of our own writes are dropped in the
//! kernel by a socket filter (see `netlink::drop_own_writes`); anyone
//! else's change to a route in our table at our metric is passed on by
//! prefix, so that the worker can repair ours.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;

use crate::cmd::Cmd;
use crate::msg::raw_route;
use crate::netlink::{header_of, split_messages, NlSocket, RTM_DELROUTE, RTM_NEWROUTE};
use crate::nexthop;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;

pub(crate) fn link_cmd(l: &LinkMessage) -> Cmd {
    let name = l.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    });
    Cmd::Link {
        index: l.header.index,
        name,
        // Up and with carrier: the kernel flushes the nexthop objects of a
        // link that loses either (nh_netdev_event in net/ipv4/nexthop.c).
        up: l.header.flags.contains(LinkFlags::Up)
            && l.header
                .flags
                .intersects(LinkFlags::Running | LinkFlags::LowerUp),
    }
}

/// The identity of the routes we write.
#[derive(Clone, Copy)]
pub(crate) struct Ours {
    pub table: u32,
    pub protocol: u8,
    pub metric: u32,
    /// Standby routes at `metric + 1` are ours too (`kernel.backupRoutes`).
    pub standbys: bool,
}

pub(crate) fn run(mut sock: NlSocket, tx: mpsc::Sender<Cmd>, stop: Arc<AtomicBool>, ours: Ours) {
    let protocol = ours.protocol;
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let data = match sock.recv() {
            Ok(d) => d,
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                tracing::debug!("monitor socket overflowed");
                out.push(Cmd::Overrun);
                &[][..]
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => {
                tracing::warn!("netlink monitor: {e}");
                std::thread::sleep(std::time::Duration::from_millis(100));
                continue;
            }
        };
        let mut changed = false;
        let mut touched = Vec::new();
        for raw in split_messages(data) {
            match header_of(raw).kind {
                RTM_NEWLINK | RTM_DELLINK => {
                    let Ok(m) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(raw) else {
                        changed = true;
                        continue;
                    };
                    match m.payload {
                        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => {
                            out.push(link_cmd(&l))
                        }
                        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(l)) => {
                            out.push(Cmd::LinkGone(l.header.index))
                        }
                        _ => {}
                    }
                }
                RTM_NEWADDR | RTM_DELADDR => changed = true,
                nexthop::RTM_DELNEXTHOP => {
                    if let Some((id, p)) = nexthop::parse(raw) {
                        if p == protocol {
                            out.push(Cmd::ObjectGone(id));
                        }
                    }
                }
                RTM_NEWROUTE | RTM_DELROUTE => match raw_route(raw) {
                    Some(r) => {
                        // Routes of our protocol do not resolve next hops.
                        changed |= r.protocol != protocol;
                        let standby = ours.standbys && r.metric == ours.metric.wrapping_add(1);
                        if r.table == ours.table && (r.metric == ours.metric || standby) {
                            touched.push(r.prefix);
                        }
                    }
                    None => changed = true,
                },
                _ => {}
            }
        }
        if changed {
            out.push(Cmd::Changed);
        }
        if !touched.is_empty() {
            out.push(Cmd::Touched(touched));
        }
        for c in out.drain(..) {
            if tx.send(c).is_err() {
                return;
            }
        }
    }
}
