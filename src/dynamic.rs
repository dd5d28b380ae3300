//! Dynamic neighbors (`router.listen.ranges`): which range a connection
//! belongs to, the peer it becomes, and the refusals over a range's limit.
//!
//! Pure: the listener asks [`range_for`] whether a stranger may be let in,
//! the router task (the one owner of the peer registry) builds the peer
//! with [`peer_for`] and counts the range's peers against its `limit`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::config::{Config, ListenRange, Peer};

/// The ranges of `c`.
pub fn ranges(c: &Config) -> &[ListenRange] {
    c.router
        .listen
        .as_ref()
        .map_or(&[], |l| l.ranges.as_slice())
}

/// The range `addr` falls in: the longest prefix that contains it (as
/// FRR's and BIRD's listen ranges).
pub fn range_for(ranges: &[ListenRange], addr: IpAddr) -> Option<&ListenRange> {
    ranges
        .iter()
        .filter(|r| r.prefix.contains(&addr))
        .max_by_key(|r| r.prefix.prefix_len())
}

/// The range with prefix `prefix`, after a reload.
pub fn range_of(ranges: &[ListenRange], prefix: IpNet) -> Option<&ListenRange> {
    ranges.iter().find(|r| r.prefix == prefix)
}

/// The peer a connection from `addr` in range `r` becomes: the range's
/// template peer, named by its address, at that address, passive.
pub fn peer_for(r: &ListenRange, addr: IpAddr) -> Peer {
    Peer {
        name: addr.to_string(),
        address: addr,
        passive: true,
        ..r.peer.clone()
    }
}

/// How often refusals over a range's limit are logged.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// Connections refused because their range was full: counted per range
/// (for `/metrics`), one log line per range and minute.
#[derive(Debug, Default)]
pub struct OverLimit {
    /// By range: refusals in all, and when the last log line was written
    /// with how many came since.
    ranges: HashMap<IpNet, Refusals>,
}

#[derive(Debug)]
struct Refusals {
    total: u64,
    logged_at: Instant,
    since_log: u64,
}

impl OverLimit {
    /// Count a refusal in `range`; `Some(n)`: log it now, `n` refusals
    /// since the previous line (this one included).
    pub fn refused(&mut self, range: IpNet, now: Instant) -> Option<u64> {
        let r = self.ranges.entry(range).or_insert(Refusals {
            total: 0,
            logged_at: now,
            since_log: 0,
        });
        let first = r.total == 0;
        r.total += 1;
        r.since_log += 1;
        if first || now.duration_since(r.logged_at) >= LOG_EVERY {
            r.logged_at = now;
            return Some(std::mem::take(&mut r.since_log));
        }
        None
    }

    /// Refusals in `range` since the start.
    pub fn total(&self, range: IpNet) -> u64 {
        self.ranges.get(&range).map_or(0, |r| r.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(ranges: &str) -> Config {
        let yaml = format!(
            "router:\n  asn: 65000\n  routerId: 10.0.0.1\n  listen:\n    ranges: {ranges}\n\
             peerTemplates:\n  - {{ name: nodes, asn: external, holdTime: 9 }}\n  - {{ name: rack, asn: internal }}\n"
        );
        crate::config::parse(&yaml, "t.yaml").unwrap()
    }

    #[test]
    fn longest_range_wins() {
        let c = config(
            "[{ prefix: 10.0.0.0/16, template: nodes }, { prefix: 10.0.5.0/24, template: rack }]",
        );
        let r = ranges(&c);
        let a: IpAddr = "10.0.5.7".parse().unwrap();
        assert_eq!(range_for(r, a).unwrap().peer.name, "rack");
        let b: IpAddr = "10.0.6.7".parse().unwrap();
        assert_eq!(range_for(r, b).unwrap().peer.name, "nodes");
        assert!(range_for(r, "10.1.0.1".parse().unwrap()).is_none());
        assert!(range_for(r, "fd00::1".parse().unwrap()).is_none());
    }

    #[test]
    fn the_peer_is_the_template_at_the_address() {
        let c = config("[{ prefix: 10.0.0.0/16, template: nodes, limit: 5 }]");
        let r = &ranges(&c)[0];
        assert_eq!(r.limit, 5);
        let a: IpAddr = "10.0.3.4".parse().unwrap();
        let p = peer_for(r, a);
        assert_eq!(
            (p.name.as_str(), p.address, p.passive),
            ("10.0.3.4", a, true)
        );
        assert_eq!(p.asn, crate::config::PeerAsn::External);
        assert_eq!(p.hold_time, Some(9));
    }

    #[test]
    fn over_limit_refusals_are_counted_and_logged_once_a_minute() {
        let mut o = OverLimit::default();
        let r: IpNet = "10.0.0.0/16".parse().unwrap();
        let t = Instant::now();
        assert_eq!(o.refused(r, t), Some(1));
        assert_eq!(o.refused(r, t), None);
        assert_eq!(o.refused(r, t), None);
        assert_eq!(o.refused(r, t + LOG_EVERY), Some(3));
        assert_eq!(o.total(r), 4);
    }
}
