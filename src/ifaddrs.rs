//! The host's interface addresses (getifaddrs(3)): used to pick our next
//! hop of the other family for a session, and for `advertise.interfaces`.

use std::ffi::CStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    pub interface: String,
    pub address: IpAddr,
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
        let address = match family {
            libc::AF_INET => {
                let sa = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                IpAddr::V4(Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)))
            }
            libc::AF_INET6 => {
                let sa = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                IpAddr::V6(Ipv6Addr::from(sa.sin6_addr.s6_addr))
            }
            _ => continue,
        };
        out.push(IfAddr {
            interface: name,
            address,
        });
    }
    // SAFETY: `head` came from getifaddrs.
    unsafe { libc::freeifaddrs(head) };
    out
}

fn is_link_local_v6(a: &Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

/// Global addresses of interface `name` (no IPv6 link-local).
pub fn of_interface(name: &str) -> Vec<IpAddr> {
    all()
        .into_iter()
        .filter(|a| a.interface == name)
        .map(|a| a.address)
        .filter(|a| match a {
            IpAddr::V6(v6) => !is_link_local_v6(v6),
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
        if !is_link_local_v6(&v6) {
            return Some(v6);
        }
    }
    let ifname = interface_of(ip)?;
    of_interface(&ifname).into_iter().find_map(|a| match a {
        IpAddr::V6(v6) => Some(v6),
        _ => None,
    })
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
}
