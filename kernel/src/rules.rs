//! Policy routing rules (`ip rule`) kroute manages for its routing domains:
//! RTM_NEWRULE / RTM_DELRULE / RTM_GETRULE (include/uapi/linux/fib_rules.h).
//!
//! Every rule kroute writes carries its route protocol in FRA_PROTOCOL
//! (Linux 4.17+), and kroute only ever reads back, compares and deletes
//! rules of that protocol: rules others made (the boot rules, `ip rule
//! add` by hand, other daemons) are never touched. netlink-packet-route's
//! rule messages are not used so that what is written and what is
//! compared are the same bytes this module knows.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use crate::netlink::{header_of, NlError, NlSocket, NLMSG_HDRLEN};
use crate::nexthop::{push_addr, push_attr};

const RTM_NEWRULE: u16 = 32;
const RTM_DELRULE: u16 = 33;
const RTM_GETRULE: u16 = 34;

const FRA_DST: u16 = 1;
const FRA_SRC: u16 = 2;
const FRA_IIFNAME: u16 = 3;
const FRA_PRIORITY: u16 = 6;
const FRA_FWMARK: u16 = 10;
const FRA_TABLE: u16 = 15;
const FRA_FWMASK: u16 = 16;
const FRA_PROTOCOL: u16 = 21;

const FR_ACT_TO_TBL: u8 = 1;
/// `rtm_table` of a rule whose table only fits in FRA_TABLE.
const RT_TABLE_COMPAT: u8 = 252;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;

const AF_INET: u8 = libc::AF_INET as u8;
const AF_INET6: u8 = libc::AF_INET6 as u8;

/// What a rule matches.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleSelector {
    /// `from PREFIX`
    From(IpNet),
    /// `to PREFIX`
    To(IpNet),
    /// `fwmark N` (full mask)
    Fwmark(u32),
    /// `iif NAME`
    Iif(String),
}

/// One rule: `priority P <selector> lookup TABLE`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyRule {
    pub priority: u32,
    pub selector: RuleSelector,
    pub table: u32,
}

impl fmt::Display for PolicyRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.priority)?;
        match &self.selector {
            RuleSelector::From(p) => write!(f, "from {p}")?,
            RuleSelector::To(p) => write!(f, "to {p}")?,
            RuleSelector::Fwmark(m) => write!(f, "fwmark {m:#x}")?,
            RuleSelector::Iif(i) => write!(f, "iif {i}")?,
        }
        write!(f, " lookup {}", self.table)
    }
}

/// A rule as the kernel keys it: one address family. A `from`/`to` rule
/// is of its prefix's family; `fwmark` and `iif` rules exist once per
/// family, so that IPv4 and IPv6 both follow them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct KernelRule {
    family: u8,
    rule: PolicyRule,
}

fn families_of(r: &PolicyRule) -> Vec<KernelRule> {
    let of = |family| KernelRule {
        family,
        rule: r.clone(),
    };
    match &r.selector {
        RuleSelector::From(p) | RuleSelector::To(p) => match p.addr() {
            IpAddr::V4(_) => vec![of(AF_INET)],
            IpAddr::V6(_) => vec![of(AF_INET6)],
        },
        RuleSelector::Fwmark(_) | RuleSelector::Iif(_) => vec![of(AF_INET), of(AF_INET6)],
    }
}

/// What [`Rules::reconcile`] changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RuleChanges {
    pub added: Vec<PolicyRule>,
    pub removed: usize,
}

/// The rules of one route protocol in the calling thread's network
/// namespace (one netlink socket, used synchronously: rules change only at
/// start, reload and exit).
pub struct Rules {
    sock: NlSocket,
    protocol: u8,
}

fn io_error(e: NlError) -> io::Error {
    io::Error::other(e.to_string())
}

impl Rules {
    /// Opens the socket in the calling thread's network namespace.
    pub fn open(protocol: u8) -> io::Result<Rules> {
        let sock = NlSocket::open(1 << 20, Some(Duration::from_secs(10)))?;
        Ok(Rules { sock, protocol })
    }

    /// The rules of our protocol in the kernel now, as dumped (raw
    /// messages, for deleting exactly them) and as understood (None: a
    /// rule of our protocol this module does not write, e.g. made by hand
    /// with `protocol bgp`; it is removed by a reconcile).
    fn ours(&mut self) -> io::Result<Vec<(Vec<u8>, Option<KernelRule>)>> {
        let mut out = Vec::new();
        for family in [AF_INET, AF_INET6] {
            let mut req = message(RTM_GETRULE, NLM_F_REQUEST | NLM_F_DUMP, family);
            finish(&mut req);
            let protocol = self.protocol;
            self.sock
                .request_each(&mut req, true, |raw| {
                    if let Some((p, rule)) = parse(raw) {
                        if p == protocol {
                            out.push((raw.to_vec(), rule));
                        }
                    }
                })
                .map_err(io_error)?;
        }
        Ok(out)
    }

    /// The rules of ours in the kernel now.
    pub fn list(&mut self) -> io::Result<Vec<PolicyRule>> {
        let mut rules: Vec<PolicyRule> = self
            .ours()?
            .into_iter()
            .filter_map(|(_, r)| r.map(|k| k.rule))
            .collect();
        rules.sort();
        rules.dedup();
        Ok(rules)
    }

    /// Makes the kernel's rules of our protocol exactly `wanted`: adds the
    /// missing ones, deletes the others. Rules of other protocols are left
    /// alone, whatever their priority.
    pub fn reconcile(&mut self, wanted: &[PolicyRule]) -> io::Result<RuleChanges> {
        let want: Vec<KernelRule> = wanted.iter().flat_map(families_of).collect();
        let have = self.ours()?;
        let mut changes = RuleChanges::default();
        for (raw, rule) in &have {
            if rule.as_ref().is_some_and(|r| want.contains(r)) {
                continue;
            }
            self.delete_raw(raw)?;
            changes.removed += 1;
        }
        for k in &want {
            if have.iter().any(|(_, r)| r.as_ref() == Some(k)) {
                continue;
            }
            self.add(k)?;
            if !changes.added.contains(&k.rule) {
                changes.added.push(k.rule.clone());
            }
        }
        Ok(changes)
    }

    /// Deletes every rule of our protocol.
    pub fn remove_all(&mut self) -> io::Result<usize> {
        Ok(self.reconcile(&[])?.removed)
    }

    fn add(&mut self, k: &KernelRule) -> io::Result<()> {
        let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        let mut m = encode(k, self.protocol, RTM_NEWRULE, flags);
        self.sock
            .request_each(&mut m, false, |_| {})
            .map_err(|e| io::Error::other(format!("adding rule {}: {e}", k.rule)))
    }

    /// Deletes the rule a dump returned, by sending its own message back
    /// as RTM_DELRULE: the kernel matches every attribute it carries, so
    /// exactly that rule goes.
    fn delete_raw(&mut self, raw: &[u8]) -> io::Result<()> {
        let mut m = raw.to_vec();
        m[4..6].copy_from_slice(&RTM_DELRULE.to_ne_bytes());
        m[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        self.sock
            .request_each(&mut m, false, |_| {})
            .map_err(io_error)
    }
}

/// The RTM_NEWRULE (or other `kind`) message for `k`.
fn encode(k: &KernelRule, protocol: u8, kind: u16, flags: u16) -> Vec<u8> {
    let mut m = message(kind, flags, k.family);
    let r = &k.rule;
    m[NLMSG_HDRLEN + 4] = u8::try_from(r.table).unwrap_or(RT_TABLE_COMPAT);
    match &r.selector {
        RuleSelector::From(p) => {
            m[NLMSG_HDRLEN + 2] = p.prefix_len();
            push_addr(&mut m, FRA_SRC, &p.addr());
        }
        RuleSelector::To(p) => {
            m[NLMSG_HDRLEN + 1] = p.prefix_len();
            push_addr(&mut m, FRA_DST, &p.addr());
        }
        RuleSelector::Fwmark(mark) => {
            push_attr(&mut m, FRA_FWMARK, &mark.to_ne_bytes());
            push_attr(&mut m, FRA_FWMASK, &u32::MAX.to_ne_bytes());
        }
        RuleSelector::Iif(name) => {
            let mut s = name.as_bytes().to_vec();
            s.push(0);
            push_attr(&mut m, FRA_IIFNAME, &s);
        }
    }
    push_attr(&mut m, FRA_PRIORITY, &r.priority.to_ne_bytes());
    push_attr(&mut m, FRA_TABLE, &r.table.to_ne_bytes());
    push_attr(&mut m, FRA_PROTOCOL, &[protocol]);
    finish(&mut m);
    m
}

/// A netlink header and a `struct fib_rule_hdr` (family, dst_len,
/// src_len, tos, table, res1, res2, action, flags) for `family`.
fn message(kind: u16, flags: u16, family: u8) -> Vec<u8> {
    let mut buf = Vec::with_capacity(96);
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes()); // seq: set by the socket
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(&[family, 0, 0, 0, 0, 0, 0, FR_ACT_TO_TBL]);
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf
}

fn finish(buf: &mut [u8]) {
    let len = buf.len() as u32;
    buf[0..4].copy_from_slice(&len.to_ne_bytes());
}

fn addr_of(family: u8, data: &[u8]) -> Option<IpAddr> {
    match family {
        AF_INET => Some(IpAddr::from(<[u8; 4]>::try_from(data.get(..4)?).ok()?)),
        AF_INET6 => Some(IpAddr::from(<[u8; 16]>::try_from(data.get(..16)?).ok()?)),
        _ => None,
    }
}

/// (protocol, the rule if it is one this module writes) of an
/// RTM_NEWRULE message.
fn parse(raw: &[u8]) -> Option<(u8, Option<KernelRule>)> {
    if header_of(raw).kind != RTM_NEWRULE {
        return None;
    }
    let hdr = raw.get(NLMSG_HDRLEN..NLMSG_HDRLEN + 12)?;
    let (family, dst_len, src_len, table8, action) = (hdr[0], hdr[1], hdr[2], hdr[4], hdr[7]);
    let mut attrs = raw.get(NLMSG_HDRLEN + 12..)?;
    let (mut protocol, mut priority, mut table) = (0u8, 0u32, u32::from(table8));
    let (mut src, mut dst, mut mark, mut mask, mut iif) = (None, None, None, None, None);
    let mut other = action != FR_ACT_TO_TBL;
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
        if len < 4 || len > attrs.len() {
            break;
        }
        let data = &attrs[4..len];
        let u32_of = |d: &[u8]| {
            d.get(..4)
                .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        };
        match kind {
            FRA_PROTOCOL => protocol = *data.first()?,
            FRA_PRIORITY => priority = u32_of(data)?,
            FRA_TABLE => table = u32_of(data)?,
            FRA_SRC => src = addr_of(family, data),
            FRA_DST => dst = addr_of(family, data),
            FRA_FWMARK => mark = u32_of(data),
            FRA_FWMASK => mask = u32_of(data),
            FRA_IIFNAME => {
                let end = data.iter().position(|b| *b == 0).unwrap_or(data.len());
                iif = Some(String::from_utf8_lossy(&data[..end]).into_owned());
            }
            // FRA_SUPPRESS_PREFIXLEN comes back on every dumped rule;
            // anything else is a rule we do not write.
            14 => {}
            _ => other = true,
        }
        attrs = &attrs[((len + 3) & !3).min(attrs.len())..];
    }
    let mut selectors = Vec::new();
    if let Some(a) = src {
        selectors.push(RuleSelector::From(IpNet::new(a, src_len).ok()?));
    }
    if let Some(a) = dst {
        selectors.push(RuleSelector::To(IpNet::new(a, dst_len).ok()?));
    }
    if let Some(m) = mark {
        other |= mask.is_some_and(|k| k != u32::MAX);
        selectors.push(RuleSelector::Fwmark(m));
    }
    if let Some(i) = iif {
        selectors.push(RuleSelector::Iif(i));
    }
    let rule = match (other, selectors.len()) {
        (false, 1) => Some(KernelRule {
            family,
            rule: PolicyRule {
                priority,
                selector: selectors.remove(0),
                table,
            },
        }),
        _ => None,
    };
    Some((protocol, rule))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_rule_parses_back_as_itself() {
        for selector in [
            RuleSelector::From("10.244.0.0/16".parse().unwrap()),
            RuleSelector::To("2001:db8::/32".parse().unwrap()),
            RuleSelector::Fwmark(0x10),
            RuleSelector::Iif("eth1".into()),
        ] {
            let rule = PolicyRule {
                priority: 1000,
                selector,
                table: 0,
            };
            for table in [100, 70000] {
                let rule = PolicyRule {
                    table,
                    ..rule.clone()
                };
                for k in families_of(&rule) {
                    let m = encode(&k, 186, RTM_NEWRULE, 0);
                    assert_eq!(parse(&m), Some((186, Some(k))));
                }
            }
        }
    }

    #[test]
    fn rules_of_several_selectors_are_not_taken_for_ours() {
        let k = KernelRule {
            family: AF_INET,
            rule: PolicyRule {
                priority: 7,
                selector: RuleSelector::Fwmark(3),
                table: 100,
            },
        };
        let mut m = encode(&k, 186, RTM_NEWRULE, 0);
        push_attr(&mut m, FRA_IIFNAME, b"eth0\0");
        finish(&mut m);
        assert_eq!(parse(&m), Some((186, None)));
    }

    #[test]
    fn fwmark_and_iif_rules_exist_for_both_families() {
        let r = PolicyRule {
            priority: 5,
            selector: RuleSelector::Fwmark(1),
            table: 100,
        };
        assert_eq!(families_of(&r).len(), 2);
        let r = PolicyRule {
            selector: RuleSelector::From("10.0.0.0/8".parse().unwrap()),
            ..r
        };
        assert_eq!(families_of(&r).len(), 1);
    }
}
