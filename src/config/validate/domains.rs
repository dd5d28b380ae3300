//! `domains:` checks: names, tables, rules, and the references to them
//! from `peers[].domain` and `advertise[].domain`.

use std::collections::HashMap;

use super::super::error::KeyPath;
use super::super::schema::{Config, DEFAULT_DOMAIN};
use super::name::{check_name, Invalid};
use rib::policy::PolicyChain;

/// Tables a domain cannot use: the kernel's own (`local` 255, `main` 254,
/// `default` 253; `main` is the default domain's unless `kernel.table`
/// says otherwise).
const RESERVED_TABLES: &[(u32, &str)] = &[(253, "default"), (254, "main"), (255, "local")];

/// Rule priorities the kernel's own rules use (`ip rule` at boot: 0
/// `local`, 32766 `main`, 32767 `default`); ours go between.
const RULE_PRIORITIES: std::ops::RangeInclusive<u32> = 1..=32765;

pub(super) fn check_domains(c: &Config) -> Result<(), Invalid> {
    let root = KeyPath::default().key("domains");
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut tables: HashMap<u32, usize> = HashMap::new();
    let mut priorities: HashMap<u32, (usize, usize)> = HashMap::new();
    for (i, d) in c.domains.iter().enumerate() {
        let path = root.index(i);
        check_name(&path.key("name"), "domain", &d.name)?;
        if d.name == DEFAULT_DOMAIN {
            return Err((
                path.key("name"),
                format!("{DEFAULT_DOMAIN:?} is the default domain's name (kernel.table), as in `importFrom` and `show domains`"),
            ));
        }
        if let Some(first) = names.insert(&d.name, i) {
            return Err((
                path.key("name"),
                format!("domain {:?} is already defined at domains[{first}]", d.name),
            ));
        }
        if let Some((_, what)) = RESERVED_TABLES.iter().find(|(t, _)| *t == d.table) {
            return Err((
                path.key("table"),
                format!(
                    "table {} is the kernel's {what} table; a domain needs a table of its own",
                    d.table
                ),
            ));
        }
        if d.table == c.kernel.table {
            return Err((
                path.key("table"),
                format!(
                    "table {} is kernel.table, the default domain's table",
                    d.table
                ),
            ));
        }
        if let Some(first) = tables.insert(d.table, i) {
            return Err((
                path.key("table"),
                format!(
                    "table {} is already the table of domains[{first}] ({:?})",
                    d.table, c.domains[first].name
                ),
            ));
        }
        for (j, r) in d.rules.iter().enumerate() {
            let rpath = path.key("rules").index(j);
            if r.selectors() != 1 {
                return Err((
                    rpath,
                    "a rule needs exactly one of `from`, `to`, `fwmark`, `iif`".to_string(),
                ));
            }
            for (key, prefix) in [("from", r.from), ("to", r.to)] {
                if let Some(p) = prefix {
                    if p.trunc() != p {
                        return Err((
                            rpath.key(key),
                            format!("{p} has host bits set (did you mean {}?)", p.trunc()),
                        ));
                    }
                }
            }
            if let Some(ifname) = &r.iif {
                if ifname.is_empty()
                    || ifname.len() > 15
                    || ifname.contains(|ch: char| ch == '/' || ch.is_whitespace())
                {
                    return Err((
                        rpath.key("iif"),
                        format!("{ifname:?} is not a valid interface name"),
                    ));
                }
            }
            if !RULE_PRIORITIES.contains(&r.priority) {
                return Err((
                    rpath.key("priority"),
                    format!(
                        "priority {} is out of range (1..=32765: 0, 32766 and 32767 are the kernel's local, main and default rules)",
                        r.priority
                    ),
                ));
            }
            if let Some((fi, fj)) = priorities.insert(r.priority, (i, j)) {
                return Err((
                    rpath.key("priority"),
                    format!(
                        "priority {} is already used by domains[{fi}].rules[{fj}]",
                        r.priority
                    ),
                ));
            }
        }
    }
    let known = |name: &str| names.contains_key(name);
    let listed = || {
        let all: Vec<&str> = c.domains.iter().map(|d| d.name.as_str()).collect();
        if all.is_empty() {
            "no domains are defined".to_string()
        } else {
            format!("defined: {}", all.join(", "))
        }
    };
    for (i, p) in c.peers.iter().enumerate() {
        if let Some(d) = p.domain.as_deref().filter(|d| !known(d)) {
            return Err((
                KeyPath::default().key("peers").index(i).key("domain"),
                format!("unknown domain {d:?} ({})", listed()),
            ));
        }
    }
    check_leaks(c, &listed)?;
    for (i, a) in c.advertise.iter().enumerate() {
        if let Some(d) = a.domain.as_deref().filter(|d| !known(d)) {
            return Err((
                KeyPath::default().key("advertise").index(i).key("domain"),
                format!("unknown domain {d:?} ({})", listed()),
            ));
        }
    }
    Ok(())
}

/// `domains[].importFrom`: an existing other domain, each once, through a
/// policy that exists (leaking is never implicit).
fn check_leaks(c: &Config, listed: &dyn Fn() -> String) -> Result<(), Invalid> {
    let policies: Vec<&str> = c.policies.iter().map(|p| p.name.as_str()).collect();
    for (i, d) in c.domains.iter().enumerate() {
        let path = KeyPath::default().key("domains").index(i).key("importFrom");
        for (j, l) in d.import_from.iter().enumerate() {
            let lpath = path.index(j);
            if l.domain == d.name {
                return Err((
                    lpath.key("domain"),
                    format!("domain {:?} cannot import from itself", d.name),
                ));
            }
            if l.domain != DEFAULT_DOMAIN && !c.domains.iter().any(|x| x.name == l.domain) {
                return Err((
                    lpath.key("domain"),
                    format!(
                        "unknown domain {:?} ({}; the default domain is {DEFAULT_DOMAIN:?})",
                        l.domain,
                        listed()
                    ),
                ));
            }
            if let Some(first) = d.import_from[..j].iter().position(|x| x.domain == l.domain) {
                return Err((
                    lpath.key("domain"),
                    format!(
                        "domain {:?} is already imported from at importFrom[{first}]",
                        l.domain
                    ),
                ));
            }
            match &l.policy {
                PolicyChain::Unset => {
                    return Err((
                        lpath.key("policy"),
                        "a leak needs a policy (leaking every route is a route-leak risk; write `all` if that is really meant)".to_string(),
                    ))
                }
                PolicyChain::Named(names) if names.is_empty() => {
                    return Err((lpath.key("policy"), "empty policy list".to_string()))
                }
                PolicyChain::Named(names) => {
                    if let Some(n) = names.iter().find(|n| !policies.contains(&n.as_str())) {
                        let defined = if policies.is_empty() {
                            "no policies are defined".to_string()
                        } else {
                            format!("defined: {}", policies.join(", "))
                        };
                        return Err((
                            lpath.key("policy"),
                            format!("policy {n:?} is not defined ({defined})"),
                        ));
                    }
                }
                PolicyChain::All | PolicyChain::None => {}
            }
        }
    }
    Ok(())
}
