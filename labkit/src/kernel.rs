//! A namespace's kernel routing table, as `ip -j route show` prints it.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::Afi;

/// One route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    /// Prefix in CIDR notation (`/32` or `/128` added for host routes,
    /// `default` spelled out).
    pub dst: String,
    /// Next hops as (gateway, dev); several for a multipath route; a route
    /// without gateway (blackhole, on-link) has one entry with gateway "".
    pub nexthops: Vec<(String, String)>,
    /// `bgp` (186), `bird`, `kernel`, ...
    pub protocol: String,
    /// `unicast`, `blackhole`, ...
    pub kind: String,
}

impl KernelRoute {
    pub fn gateways(&self) -> Vec<&str> {
        self.nexthops.iter().map(|(g, _)| g.as_str()).collect()
    }
}

/// Routes of family `afi` in table main of `ns`; only protocol `proto`
/// (e.g. `bgp`, `bird`) when given.
pub fn routes(ns: &Netns, afi: Afi, proto: Option<&str>) -> Result<Vec<KernelRoute>> {
    let fam = match afi {
        Afi::Ipv4 => "-4",
        Afi::Ipv6 => "-6",
    };
    let mut args = vec!["-j", fam, "route", "show"];
    if let Some(p) = proto {
        args.extend(["proto", p]);
    }
    let text = ns.ip(&args)?;
    parse_routes(&text, afi).map_err(|detail| Error::Parse {
        what: format!("ip {} in {}", args.join(" "), ns.name()),
        detail,
        text,
    })
}

/// Routes of both families (IPv4 first).
pub fn all_routes(ns: &Netns, proto: Option<&str>) -> Result<Vec<KernelRoute>> {
    let mut v = routes(ns, Afi::Ipv4, proto)?;
    v.extend(routes(ns, Afi::Ipv6, proto)?);
    Ok(v)
}

/// Next hops of the route(s) for exactly `prefix` of protocol `proto`, if
/// any. The kernel may list an IPv6 multipath route as several entries
/// with the same dst; they are merged.
pub fn route_via(
    ns: &Netns,
    prefix: &str,
    proto: Option<&str>,
) -> Result<Option<Vec<(String, String)>>> {
    let mut found = None::<Vec<(String, String)>>;
    for r in routes(ns, Afi::of(prefix), proto)? {
        if r.dst == prefix {
            found.get_or_insert_with(Vec::new).extend(r.nexthops);
        }
    }
    Ok(found)
}

fn normalize_dst(dst: &str, afi: Afi) -> String {
    match (dst, afi) {
        ("default", Afi::Ipv4) => "0.0.0.0/0".into(),
        ("default", Afi::Ipv6) => "::/0".into(),
        (d, _) if d.contains('/') => d.to_string(),
        (d, Afi::Ipv4) => format!("{d}/32"),
        (d, Afi::Ipv6) => format!("{d}/128"),
    }
}

/// Parse `ip -j route show` output of family `afi`.
pub fn parse_routes(json: &str, afi: Afi) -> std::result::Result<Vec<KernelRoute>, String> {
    if json.trim().is_empty() {
        return Ok(Vec::new());
    }
    let v: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    // A gateway of the other family (`via inet6 fe80::1`, RFC 5549 /
    // RTA_VIA) is `"via": {"family": "inet6", "host": ADDR}`.
    let gw = |v: &Value| match v.pointer("/via/host").and_then(Value::as_str) {
        Some(h) => h.to_string(),
        None => s(v, "gateway"),
    };
    let list = v.as_array().ok_or("not a JSON array")?;
    Ok(list
        .iter()
        .map(|r| KernelRoute {
            dst: normalize_dst(&s(r, "dst"), afi),
            nexthops: match r.get("nexthops").and_then(Value::as_array) {
                Some(nhs) => nhs.iter().map(|nh| (gw(nh), s(nh, "dev"))).collect(),
                None => vec![(gw(r), s(r, "dev"))],
            },
            protocol: s(r, "protocol"),
            kind: r
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("unicast")
                .to_string(),
        })
        .collect())
}

/// One line per route, for failure messages.
pub fn describe(routes: &[KernelRoute]) -> String {
    if routes.is_empty() {
        return "no routes".into();
    }
    routes
        .iter()
        .map(|r| format!("{} via {:?}", r.dst, r.nexthops))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_multipath_host_and_default_routes() {
        let json = r#"[
          {"dst":"10.100.0.0/24","gateway":"10.1.0.2","dev":"v1a","protocol":"bgp","flags":[]},
          {"dst":"10.200.0.0/24","protocol":"bgp","flags":[],"nexthops":[
             {"gateway":"10.1.0.2","dev":"v1a"},{"gateway":"10.2.0.2","dev":"v2a"}]},
          {"dst":"10.9.9.9","type":"blackhole","protocol":"bird","flags":[]},
          {"dst":"default","gateway":"10.1.0.254","dev":"v1a","protocol":"boot"}]"#;
        let r = parse_routes(json, Afi::Ipv4).unwrap();
        assert_eq!(r[0].nexthops, vec![("10.1.0.2".into(), "v1a".into())]);
        assert_eq!(r[0].kind, "unicast");
        assert_eq!(r[1].gateways(), vec!["10.1.0.2", "10.2.0.2"]);
        assert_eq!(r[2].dst, "10.9.9.9/32");
        assert_eq!(r[2].kind, "blackhole");
        assert_eq!(r[2].nexthops, vec![(String::new(), String::new())]);
        assert_eq!(r[3].dst, "0.0.0.0/0");
        assert_eq!(parse_routes("  ", Afi::Ipv6).unwrap(), vec![]);
        assert_eq!(normalize_dst("fd00::1", Afi::Ipv6), "fd00::1/128");
        assert!(parse_routes("{}", Afi::Ipv4).is_err());
    }
}
