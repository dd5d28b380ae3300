//! The kernel's routing table in a namespace (`labkit::kernel`), in the
//! tests' error style.

use labkit::kernel as k;
pub use labkit::kernel::KernelRoute;
use labkit::{Afi, Netns};

use super::{wait_until, CONVERGE};

fn afi(family: u8) -> Afi {
    if family == 4 {
        Afi::Ipv4
    } else {
        Afi::Ipv6
    }
}

/// Routes of protocol `proto` (e.g. "bgp" = 186, "bird", "all") in table main of `ns`.
pub fn kernel_routes_proto(ns: &Netns, family: u8, proto: &str) -> Vec<KernelRoute> {
    let proto = (proto != "all").then_some(proto);
    k::routes(ns, afi(family), proto).unwrap_or_else(|e| panic!("{e}"))
}

/// Routes with `proto bgp` (186) — the ones kroute installs.
pub fn kernel_routes(ns: &Netns, family: u8) -> Vec<KernelRoute> {
    kernel_routes_proto(ns, family, "bgp")
}

/// Next hops (gateway, dev) of the `proto bgp` route for exactly `prefix`, if any.
pub fn route_via(ns: &Netns, prefix: &str) -> Option<Vec<(String, String)>> {
    route_via_proto(ns, prefix, "bgp")
}

pub fn route_via_proto(ns: &Netns, prefix: &str, proto: &str) -> Option<Vec<(String, String)>> {
    k::route_via(ns, prefix, Some(proto)).unwrap_or_else(|e| panic!("{e}"))
}

/// Human summary of a namespace's `proto bgp` routes, for failure messages.
pub fn describe(ns: &Netns) -> String {
    let routes = k::all_routes(ns, Some("bgp")).unwrap_or_else(|e| panic!("{e}"));
    if routes.is_empty() {
        "no proto bgp routes".into()
    } else {
        k::describe(&routes)
    }
}

/// Wait until kroute's kernel (namespace `ns`) has no `proto bgp` route
/// for `prefix`.
pub fn wait_absent(ns: &Netns, prefix: &str) {
    wait_until(
        CONVERGE,
        &format!("{prefix} to leave kroute's kernel"),
        || match route_via(ns, prefix) {
            None => Ok(()),
            Some(nhs) => Err(format!("still routed via {nhs:?}")),
        },
    )
}
