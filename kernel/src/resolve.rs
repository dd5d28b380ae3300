//! Next-hop resolution: ask the kernel which FIB entry it would use for a
//! BGP next hop (`ip route get fibmatch ADDR`) and turn the answer into a
//! verdict plus the kernel next hops to install.

use std::net::IpAddr;
use std::sync::Arc;

use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::route::RouteType;
use netlink_packet_route::RouteNetlinkMessage;

use crate::msg::{self, KernelHop};
use crate::netlink::{describe, NlSocket};
use crate::NexthopState;

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
pub(crate) fn resolve(
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
        if (a.segments()[0] & 0xffc0) == 0xfe80 {
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
