//! The host's interface addresses (getifaddrs(3)): used to pick our next
//! hop of the other family for a session, and for `advertise.interfaces`.

use std::ffi::CStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    pub interface: String,
    pub address: IpAddr,
    /// The on-link prefix length (from the netmask; the full length when
    /// the kernel gives none).
    pub prefix_len: u8,
}

pub fn all() -> Vec<IfAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a valid node of the list returned by getifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: ifa_addr points to a sockaddr whose family says its type.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        let Some(address) = sockaddr_ip(ifa.ifa_addr, family) else {
            continue;
        };
        let full = if address.is_ipv4() { 32 } else { 128 };
        // SAFETY: ifa_netmask is null or a sockaddr of the address' family.
        let prefix_len = (!ifa.ifa_netmask.is_null())
            .then(|| sockaddr_ip(ifa.ifa_netmask, family))
            .flatten()
            .map_or(full, |m| match m {
                IpAddr::V4(m) => u32::from(m).count_ones() as u8,
                IpAddr::V6(m) => u128::from(m).count_ones() as u8,
            });
        out.push(IfAddr {
            interface: name,
            address,
            prefix_len,
        });
    }
    // SAFETY: `head` came from getifaddrs.
    unsafe { libc::freeifaddrs(head) };
    out
}

/// The address in `sa`, a sockaddr of `family` (AF_INET or AF_INET6).
fn sockaddr_ip(sa: *const libc::sockaddr, family: i32) -> Option<IpAddr> {
    match family {
        libc::AF_INET => {
            // SAFETY: the caller's sockaddr is a sockaddr_in for AF_INET.
            let sa = unsafe { &*(sa as *const libc::sockaddr_in) };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr))))
        }
        libc::AF_INET6 => {
            // SAFETY: the caller's sockaddr is a sockaddr_in6 for AF_INET6.
            let sa = unsafe { &*(sa as *const libc::sockaddr_in6) };
            Some(IpAddr::V6(Ipv6Addr::from(sa.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

/// Global addresses of interface `name` (no IPv6 link-local).
pub fn of_interface(name: &str) -> Vec<IpAddr> {
    all()
        .into_iter()
        .filter(|a| a.interface == name)
        .map(|a| a.address)
        .filter(|a| match a {
            IpAddr::V6(v6) => !v6.is_unicast_link_local(),
            IpAddr::V4(_) => true,
        })
        .collect()
}

fn interface_of(ip: IpAddr) -> Option<String> {
    all()
        .into_iter()
        .find(|a| a.address == ip)
        .map(|a| a.interface)
}

/// An IPv4 address to use as our next hop when the session runs from `ip`.
pub fn sibling_v4(ip: IpAddr) -> Option<Ipv4Addr> {
    if let IpAddr::V4(v4) = ip {
        return Some(v4);
    }
    let ifname = interface_of(ip)?;
    of_interface(&ifname).into_iter().find_map(|a| match a {
        IpAddr::V4(v4) => Some(v4),
        _ => None,
    })
}

/// An IPv6 address to use as our next hop when the session runs from `ip`.
pub fn sibling_v6(ip: IpAddr) -> Option<Ipv6Addr> {
    if let IpAddr::V6(v6) = ip {
        if !v6.is_unicast_link_local() {
            return Some(v6);
        }
    }
    let ifname = interface_of(ip)?;
    of_interface(&ifname).into_iter().find_map(|a| match a {
        IpAddr::V6(v6) => Some(v6),
        _ => None,
    })
}

/// The link a session runs over when it runs over one shared link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedLink {
    pub ifindex: NonZeroU32,
    /// Our link-local address on it, if it has one.
    pub link_local: Option<Ipv6Addr>,
}

/// The link shared by a session from `local` to `peer`: the local
/// address' interface when the local address is link-local or the peer's
/// address is on-link (inside a prefix of that interface). RFC 2545 §3:
/// the link-local next hop is sent beside the global one only to a peer
/// on the same link, and a link-local next hop received is an address on
/// that link.
pub fn shared_link(local: IpAddr, peer: IpAddr) -> Option<SharedLink> {
    let addrs = all();
    let ifname = &addrs.iter().find(|a| a.address == local)?.interface;
    let local_is_ll = matches!(local, IpAddr::V6(v6) if v6.is_unicast_link_local());
    let on_link = local_is_ll
        || addrs
            .iter()
            .filter(|a| &a.interface == ifname)
            .any(|a| same_prefix(a.address, peer, a.prefix_len));
    if !on_link {
        return None;
    }
    let name = std::ffi::CString::new(ifname.as_str()).ok()?;
    // SAFETY: `name` is a NUL-terminated string that outlives the call.
    let ifindex = NonZeroU32::new(unsafe { libc::if_nametoindex(name.as_ptr()) })?;
    let link_local = addrs.iter().find_map(|a| match a.address {
        IpAddr::V6(v6) if &a.interface == ifname && v6.is_unicast_link_local() => Some(v6),
        _ => None,
    });
    Some(SharedLink {
        ifindex,
        link_local,
    })
}

/// `a` and `b` share their first `len` bits (false across families).
fn same_prefix(a: IpAddr, b: IpAddr, len: u8) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_listed() {
        let lo = of_interface("lo");
        assert!(lo.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)), "{lo:?}");
    }

    #[test]
    fn sibling_of_ipv4_loopback_is_ipv6_loopback() {
        let v6 = sibling_v6(IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(v6, Some(Ipv6Addr::LOCALHOST));
    }

    #[test]
    fn prefixes_compare_by_their_first_bits() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(same_prefix(ip("fd00:1::1"), ip("fd00:1::2"), 64));
        assert!(!same_prefix(ip("fd00:1::1"), ip("fd00:2::2"), 64));
        assert!(same_prefix(ip("10.0.0.1"), ip("10.0.0.254"), 24));
        assert!(!same_prefix(ip("10.0.0.1"), ip("10.0.1.1"), 24));
        assert!(same_prefix(ip("10.0.0.1"), ip("192.0.2.1"), 0));
        assert!(!same_prefix(ip("10.0.0.1"), ip("::1"), 0));
    }

    #[test]
    fn loopback_sessions_have_no_link_local() {
        // ::1 is on lo and on-link, but lo has no link-local address.
        let lo = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let link = shared_link(lo, lo).expect("::1 is on lo");
        assert_eq!(link.link_local, None);
    }
}
