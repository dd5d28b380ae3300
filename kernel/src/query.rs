//! The FIB's questions to the kernel, on a socket of their own (apart from
//! the writer's batches): the link table, the nexthop objects, our routes,
//! and next-hop lookups: which FIB entry the kernel would use for a BGP
//! next hop (`ip route get fibmatch ADDR`), turned into a verdict plus the
//! kernel next hops to install.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::route::RouteType;
use netlink_packet_route::RouteNetlinkMessage;
use tables::fib::NexthopState;

use crate::cmd::Cmd;
use crate::msg::{self, KernelHop};
use crate::netlink::{describe, NlError, NlSocket};
use crate::nexthop;

/// A link as the FIB needs it: its name for messages, and whether routes
/// can use it (up, with carrier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    pub name: String,
    pub up: bool,
}

pub(crate) struct Query {
    sock: NlSocket,
    /// The routes asked about: of this protocol in this table.
    table: u32,
    protocol: u8,
}

impl Query {
    pub(crate) fn new(sock: NlSocket, table: u32, protocol: u8) -> Query {
        Query {
            sock,
            table,
            protocol,
        }
    }

    /// Every link, by index.
    pub(crate) fn links(&mut self) -> io::Result<HashMap<u32, Link>> {
        let replies = self
            .sock
            .request(msg::dump_links(), true)
            .map_err(|e| io::Error::from_raw_os_error(e.errno))?;
        let mut links = HashMap::new();
        for m in replies {
            if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) = m.payload {
                if let Cmd::Link { index, name, up } = crate::monitor::link_cmd(&l) {
                    let name = name.unwrap_or_else(|| format!("if{index}"));
                    links.insert(index, Link { name, up });
                }
            }
        }
        Ok(links)
    }

    /// Every nexthop object in the kernel, (id, protocol); an error on a
    /// kernel without them (before Linux 5.3).
    pub(crate) fn objects(&mut self) -> Result<Vec<(u32, u8)>, NlError> {
        let replies = self.sock.request_raw(&mut nexthop::dump_request(0), true)?;
        Ok(replies.iter().filter_map(|r| nexthop::parse(r)).collect())
    }

    /// Our protocol's routes in our table: (prefix, metric).
    pub(crate) fn our_routes(&mut self) -> io::Result<Vec<(IpNet, u32)>> {
        let replies = self
            .sock
            .request(msg::dump_routes(), true)
            .map_err(|e| io::Error::from_raw_os_error(e.errno))?;
        let mut out = Vec::new();
        for m in replies {
            if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) = m.payload {
                if u8::from(r.header.protocol) != self.protocol {
                    continue;
                }
                let info = msg::route_info(&r);
                if info.table != self.table {
                    continue;
                }
                if let Some(p) = info.prefix {
                    out.push((p, info.metric));
                }
            }
        }
        Ok(out)
    }

    /// Hands each route of our protocol in our table to `each`, read in
    /// place as the dump comes (a resync reads a full table: no full
    /// decode, nothing held but the socket's buffer).
    pub(crate) fn each_our_route(
        &mut self,
        mut each: impl FnMut(&msg::RawRoute),
    ) -> Result<(), NlError> {
        let mut m = msg::dump_routes();
        m.finalize();
        let mut buf = vec![0u8; m.buffer_len()];
        m.serialize(&mut buf);
        let (table, protocol) = (self.table, self.protocol);
        self.sock.request_each(&mut buf, true, |raw| {
            if let Some(r) = msg::raw_route(raw) {
                if r.protocol == protocol && r.table == table {
                    each(&r);
                }
            }
        })
    }

    /// How the kernel would reach `addr` (see `resolve`).
    pub(crate) fn resolve(&mut self, addr: IpAddr, link_name: &dyn Fn(u32) -> String) -> Resolved {
        resolve(&mut self.sock, addr, self.protocol, link_name)
    }
}

/// A next hop's resolution: the verdict reported to the RIB and, when
/// reachable, the kernel next hops that routes using it are installed with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub state: NexthopState,
    pub hops: Arc<[KernelHop]>,
}

impl Resolved {
    pub(crate) fn unreachable(reason: impl Into<String>) -> Resolved {
        Resolved {
            state: NexthopState::Unreachable(reason.into()),
            hops: Arc::from(Vec::new()),
        }
    }

    fn local() -> Resolved {
        Resolved {
            state: NexthopState::Local,
            hops: Arc::from(Vec::new()),
        }
    }
}

/// Resolves `addr` in the namespace of `sock`. `own_protocol` routes do not
/// count (a BGP next hop resolved through a BGP route would loop).
fn resolve(
    sock: &mut NlSocket,
    addr: IpAddr,
    own_protocol: u8,
    link_name: &dyn Fn(u32) -> String,
) -> Resolved {
    if addr.is_loopback() {
        return Resolved::local();
    }
    if addr.is_unspecified() {
        return Resolved::unreachable("unspecified address");
    }
    if let IpAddr::V6(a) = addr {
        if a.is_unicast_link_local() {
            return Resolved::unreachable("link-local next hop without interface");
        }
    }
    let replies = match sock.request(msg::get_route(addr), false) {
        Ok(r) => r,
        Err(e) => {
            let why = match e.errno {
                libc::EHOSTUNREACH => " (unreachable route)",
                libc::EACCES => " (prohibit route)",
                libc::EINVAL => " (blackhole route)",
                _ => "",
            };
            return Resolved::unreachable(format!("{}{}", describe(e.errno, None), why));
        }
    };
    let Some(route) = replies.into_iter().find_map(|m| match m.payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) => Some(r),
        _ => None,
    }) else {
        return Resolved::unreachable("no answer from the kernel");
    };
    let info = msg::route_info(&route);
    match info.kind {
        Some(RouteType::Local) => return Resolved::local(),
        Some(RouteType::Unicast) => {}
        Some(other) => {
            return Resolved::unreachable(format!("resolves to a {other:?} route").to_lowercase())
        }
        None => return Resolved::unreachable("route of unknown type"),
    }
    if info.protocol == own_protocol {
        return Resolved::unreachable("resolves only through a BGP route");
    }
    let mut hops: Vec<KernelHop> = Vec::new();
    let mut down = Vec::new();
    for (gw, ifindex, usable) in &info.paths {
        if !usable {
            down.push(link_name(*ifindex));
            continue;
        }
        hops.push(KernelHop {
            gateway: gw.unwrap_or(addr),
            ifindex: *ifindex,
        });
    }
    hops.sort();
    hops.dedup();
    if hops.is_empty() {
        return Resolved::unreachable(if down.is_empty() {
            "matching route has no usable path".to_string()
        } else {
            format!("interface {} is down", down.join(", "))
        });
    }
    Resolved {
        state: NexthopState::Reachable {
            metric: info.metric,
        },
        hops: Arc::from(hops),
    }
}
