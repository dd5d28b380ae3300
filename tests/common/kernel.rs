//! The kernel's routing table in a namespace, as `ip -j route` shows it.

use super::Netns;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    /// Prefix in CIDR notation (`/32` and `/128` added for host routes).
    pub dst: String,
    /// Next hops as (gateway, dev); several for a multipath route; a route
    /// without gateway (e.g. blackhole, on-link) has one entry with "".
    pub nexthops: Vec<(String, String)>,
    pub protocol: String,
    pub kind: String,
}

fn normalize_dst(dst: &str, family: u8) -> String {
    if dst == "default" {
        return if family == 4 {
            "0.0.0.0/0".into()
        } else {
            "::/0".into()
        };
    }
    if dst.contains('/') {
        dst.to_string()
    } else if family == 4 {
        format!("{dst}/32")
    } else {
        format!("{dst}/128")
    }
}

fn s(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

/// Routes of protocol `proto` (e.g. "bgp" = 186, "bird", "all") in table main of `ns`.
pub fn kernel_routes_proto(ns: &Netns, family: u8, proto: &str) -> Vec<KernelRoute> {
    let fam = if family == 4 { "-4" } else { "-6" };
    let mut args = vec!["-j", fam, "route", "show"];
    if proto != "all" {
        args.extend_from_slice(&["proto", proto]);
    }
    let text = ns.ip(&args);
    let text = if text.trim().is_empty() {
        "[]".to_string()
    } else {
        text
    };
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("cannot parse `ip -j route` output ({e}): {text}"));
    let mut out = Vec::new();
    for r in v.as_array().cloned().unwrap_or_default() {
        let nexthops = match r.get("nexthops").and_then(Value::as_array) {
            Some(nhs) => nhs
                .iter()
                .map(|nh| (s(nh, "gateway"), s(nh, "dev")))
                .collect(),
            None => vec![(s(&r, "gateway"), s(&r, "dev"))],
        };
        out.push(KernelRoute {
            dst: normalize_dst(&s(&r, "dst"), family),
            nexthops,
            protocol: s(&r, "protocol"),
            kind: r
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("unicast")
                .to_string(),
        });
    }
    out
}

/// Routes with `proto bgp` (186) — the ones kroute installs.
pub fn kernel_routes(ns: &Netns, family: u8) -> Vec<KernelRoute> {
    kernel_routes_proto(ns, family, "bgp")
}

fn family_of(prefix: &str) -> u8 {
    if prefix.contains(':') {
        6
    } else {
        4
    }
}

/// Next hops (gateway, dev) of the `proto bgp` route for exactly `prefix`, if any.
/// IPv6 multipath routes the kernel may list as several entries with the same
/// dst; they are merged.
pub fn route_via(ns: &Netns, prefix: &str) -> Option<Vec<(String, String)>> {
    route_via_proto(ns, prefix, "bgp")
}

pub fn route_via_proto(ns: &Netns, prefix: &str, proto: &str) -> Option<Vec<(String, String)>> {
    let fam = family_of(prefix);
    let mut nhs: Vec<(String, String)> = Vec::new();
    let mut found = false;
    for r in kernel_routes_proto(ns, fam, proto) {
        if r.dst == prefix {
            found = true;
            nhs.extend(r.nexthops);
        }
    }
    found.then_some(nhs)
}

/// Human summary of a namespace's `proto bgp` routes, for failure messages.
pub fn describe(ns: &Netns) -> String {
    let mut s = String::new();
    for fam in [4u8, 6] {
        for r in kernel_routes(ns, fam) {
            s += &format!("{} via {:?}; ", r.dst, r.nexthops);
        }
    }
    if s.is_empty() {
        "no proto bgp routes".into()
    } else {
        s
    }
}
