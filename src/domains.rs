//! Routing domains (`domains:`): each a RIB of its own (its peers' routes
//! decided among themselves, exported only to its peers) and a FIB of its
//! own writing into the domain's kernel table, plus the `ip rule`s that
//! send traffic there. Owned by the router task; the default domain (the
//! router task's own RIB and FIB, `kernel.table`) is not in here.
//!
//! Nothing crosses domains by itself: a domain's peers are sent what its
//! RIB holds (their own routes, reflected or re-advertised as BGP does)
//! and what `advertise[]` entries naming the domain originate. Learned
//! routes go from one domain into another only through an explicit
//! `domains[].importFrom` policy (leaking is a route-leak risk: an
//! Internet default into the cluster fabric, the cluster's routes to the
//! Internet): the source domain's best paths become paths of a pseudo-peer
//! "leaked from domain A" in the receiving RIB (`rib`'s `leak.rs`), fed
//! after every event by [`Domains::run_leaks`]. A leaked path is never
//! leaked again, so routes cannot circle between domains.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use kernel::{Fib, FibEvent, PolicyRule, RuleSelector, Rules};
use rib::attrs::Attrs;
use rib::{Outputs, PeerId, Rib, LEAK_PEERS};
use tokio::sync::mpsc;
use tracing::{info, warn};
use wire::Prefix;

use crate::config::{self, Config, DEFAULT_DOMAIN};

/// A leak source's new states, per prefix (None: no path).
type LeakChanges = Vec<(Prefix, Option<Attrs>)>;

/// Nexthop object ids of the domain with table `table`: 4096 of their own
/// (`kernel::nexthop_ids_of_table`), so that the FIBs of one namespace
/// never hand out the same id (ids are per namespace, not per table).
/// Domain tables are 1..=65535 (`config::Domain::table`).
fn nexthop_ids(table: u32) -> RangeInclusive<u32> {
    kernel::nexthop_ids_of_table(u16::try_from(table).expect("validated: 1..=65535"))
}

/// The `ip rule`s `c` asks for, over all domains.
pub fn wanted_rules(c: &Config) -> Vec<PolicyRule> {
    c.domains
        .iter()
        .flat_map(|d| {
            d.rules.iter().filter_map(|r| {
                let selector = match (&r.from, &r.to, r.fwmark, &r.iif) {
                    (Some(p), _, _, _) => RuleSelector::From(*p),
                    (_, Some(p), _, _) => RuleSelector::To(*p),
                    (_, _, Some(m), _) => RuleSelector::Fwmark(m),
                    (_, _, _, Some(i)) => RuleSelector::Iif(i.clone()),
                    _ => return None, // validation requires one
                };
                Some(PolicyRule {
                    priority: r.priority,
                    selector,
                    table: d.table,
                })
            })
        })
        .collect()
}

/// One domain: its RIB, its FIB and what its RIB produced since the last
/// flush (its FIB changes go to its FIB, its UPDATEs wait in its RIB's
/// Adj-RIB-Out like the default domain's).
pub struct Domain {
    pub cfg: config::Domain,
    pub rib: Rib,
    pub fib: Fib,
    pub pending: Outputs,
    /// What its RIB was last given to originate.
    pub originated: Vec<rib::Origination>,
    /// Its `importFrom` sources (a domain name, or `default`) and the
    /// pseudo-peer each is in its RIB.
    pub leaks: BTreeMap<String, PeerId>,
}

impl Domain {
    /// Its leaks for `show domains`: "SOURCE via POLICY: N accepted" (the
    /// paths its policy let in).
    pub fn import_views(&self) -> Vec<String> {
        self.cfg
            .import_from
            .iter()
            .map(|w| {
                let accepted = self
                    .leaks
                    .get(&w.domain)
                    .map_or(0, |id| self.rib.peer_counters(*id).accepted);
                let policy = serde_json::to_value(&w.policy)
                    .ok()
                    .map(|v| match v {
                        serde_json::Value::String(s) => s,
                        serde_json::Value::Array(a) => a
                            .iter()
                            .filter_map(|x| x.as_str())
                            .collect::<Vec<_>>()
                            .join(","),
                        other => other.to_string(),
                    })
                    .unwrap_or_default();
                format!("{} via {policy}: {accepted} accepted", w.domain)
            })
            .collect()
    }
}

/// Every configured domain by name, the rules, and the FIB events of all
/// domain FIBs tagged with the domain's name.
pub struct Domains {
    pub list: BTreeMap<String, Domain>,
    /// Domains removed by a reload, emptied and stopped at the next flush.
    pub retired: Vec<Domain>,
    events_tx: mpsc::UnboundedSender<(String, FibEvent)>,
    pub events: Option<mpsc::UnboundedReceiver<(String, FibEvent)>>,
    /// None when nothing is installed (`kernel.install: false`): no rules
    /// are written either.
    rules: Option<Rules>,
    protocol: u8,
}

impl Domains {
    /// No domains (and no rules touched): the router task's start value.
    pub fn none(protocol: u8) -> Domains {
        let (events_tx, events) = mpsc::unbounded_channel();
        Domains {
            list: BTreeMap::new(),
            retired: Vec::new(),
            events_tx,
            events: Some(events),
            rules: None,
            protocol,
        }
    }

    /// The RIB of `domain` (None: the default domain's, `default`).
    /// Every domain a peer names exists (validated, and the router task
    /// moves peers before a reload retires their domain).
    pub fn rib_ref<'a>(&'a self, default: &'a Rib, domain: Option<&str>) -> &'a Rib {
        match domain.and_then(|d| self.list.get(d)) {
            Some(d) => &d.rib,
            None => default,
        }
    }

    /// [`Domains::rib_ref`], mutable.
    pub fn rib_mut<'a>(&'a mut self, default: &'a mut Rib, domain: Option<&str>) -> &'a mut Rib {
        match domain.and_then(|d| self.list.get_mut(d)) {
            Some(d) => &mut d.rib,
            None => default,
        }
    }

    /// The FIB of `domain` (`default` for the default domain).
    pub fn fib_ref<'a>(&'a self, default: &'a Fib, domain: Option<&str>) -> &'a Fib {
        match domain.and_then(|d| self.list.get(d)) {
            Some(d) => &d.fib,
            None => default,
        }
    }

    /// The RIB of `domain` and the outputs it writes into: the domain's
    /// own (flushed to its FIB), or `default_out` for the default domain.
    pub fn rib_out<'a>(
        &'a mut self,
        default: &'a mut Rib,
        default_out: &'a mut Outputs,
        domain: Option<&str>,
    ) -> (&'a mut Rib, &'a mut Outputs) {
        match domain.and_then(|d| self.list.get_mut(d)) {
            Some(d) => (&mut d.rib, &mut d.pending),
            None => (default, default_out),
        }
    }

    /// Starts a FIB per domain of `c` and writes the rules. In the calling
    /// thread's network namespace, like `kernel::Fib::start`.
    pub fn start(c: &Config) -> Result<Domains, String> {
        let (events_tx, events) = mpsc::unbounded_channel();
        let rules = if c.kernel.install {
            Some(Rules::open(c.kernel.protocol).map_err(|e| format!("netlink (rules): {e}"))?)
        } else {
            None
        };
        let mut domains = Domains {
            list: BTreeMap::new(),
            retired: Vec::new(),
            events_tx,
            events: Some(events),
            rules,
            protocol: c.kernel.protocol,
        };
        for d in &c.domains {
            let domain = domains.start_domain(c, d)?;
            domains.list.insert(d.name.clone(), domain);
        }
        if let Err(e) = domains.reconcile_rules(c) {
            if !c.domains.is_empty() {
                return Err(e);
            }
            // Only leftovers of a run with domains to clean up: not worth
            // refusing to start over.
            warn!("{e}");
        }
        Ok(domains)
    }

    fn start_domain(&self, c: &Config, d: &config::Domain) -> Result<Domain, String> {
        let fib_cfg = kernel::FibConfig {
            table: d.table,
            nexthop_ids: nexthop_ids(d.table),
            ..fib_config(c)
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let fib = Fib::start(fib_cfg, tx)
            .map_err(|e| format!("domain {}: cannot open netlink: {e}", d.name))?;
        let (name, events) = (d.name.clone(), self.events_tx.clone());
        // Tag each event with its domain; ends when the FIB stops.
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                if events.send((name.clone(), ev)).is_err() {
                    return;
                }
            }
        });
        let mut rib = Rib::new(rib_config(c));
        rib.set_fib_confirms(true);
        rib.set_pull_exports(true);
        info!(domain = %d.name, table = d.table, "routing domain started");
        Ok(Domain {
            cfg: d.clone(),
            rib,
            fib,
            pending: Outputs::default(),
            originated: Vec::new(),
            leaks: BTreeMap::new(),
        })
    }

    /// Makes the kernel's rules those of `c`'s domains; a list of what
    /// changed, in words.
    pub fn reconcile_rules(&mut self, c: &Config) -> Result<Vec<String>, String> {
        let Some(rules) = &mut self.rules else {
            return Ok(Vec::new());
        };
        let changes = rules
            .reconcile(&wanted_rules(c))
            .map_err(|e| format!("ip rules: {e}"))?;
        let mut done: Vec<String> = changes
            .added
            .iter()
            .map(|r| format!("rule added: {r}"))
            .collect();
        if changes.removed > 0 {
            done.push(format!("{} rules removed", changes.removed));
        }
        for d in &done {
            info!("{d}");
        }
        Ok(done)
    }

    /// Starts the domains `new` adds and retires those it removes or
    /// whose table changes (their peers must have left their RIBs first:
    /// the router task moves them). Returns what it did, in words.
    pub fn reconfigure(&mut self, new: &Config) -> Result<Vec<String>, String> {
        let mut done = Vec::new();
        let names: Vec<String> = self.list.keys().cloned().collect();
        for name in names {
            let keep = new
                .domains
                .iter()
                .find(|d| d.name == name)
                .is_some_and(|d| d.table == self.list[&name].cfg.table);
            if !keep {
                let d = self.list.remove(&name).expect("listed");
                done.push(format!(
                    "domain {name} removed (table {} emptied)",
                    d.cfg.table
                ));
                self.retired.push(d);
            }
        }
        for d in &new.domains {
            match self.list.get_mut(&d.name) {
                Some(have) => have.cfg = d.clone(),
                None => {
                    let domain = self.start_domain(new, d)?;
                    self.list.insert(d.name.clone(), domain);
                    done.push(format!("domain {} added (table {})", d.name, d.table));
                }
            }
        }
        done.extend(self.reconcile_rules(new)?);
        Ok(done)
    }

    /// The RIB of domain `name` (`default`: `default`), if it exists.
    fn source<'a>(&'a self, default: &'a Rib, name: &str) -> Option<&'a Rib> {
        if name == DEFAULT_DOMAIN {
            Some(default)
        } else {
            self.list.get(name).map(|d| &d.rib)
        }
    }

    /// Makes every domain's leak sources those of `c`'s `importFrom`: a
    /// new one gets the source's whole table, a removed one's paths are
    /// withdrawn, a changed policy judges the leaked paths again. Turns on
    /// the change record of the domains leaked from. Returns what changed,
    /// in words.
    pub fn apply_leaks(&mut self, c: &Config, default: &mut Rib) -> Vec<String> {
        let mut done = Vec::new();
        let names: Vec<String> = self.list.keys().cloned().collect();
        for name in &names {
            let wanted: Vec<config::DomainImport> = c
                .domains
                .iter()
                .find(|d| &d.name == name)
                .map(|d| d.import_from.clone())
                .unwrap_or_default();
            let d = self.list.get_mut(name).expect("listed");
            let gone: Vec<String> = d
                .leaks
                .keys()
                .filter(|src| !wanted.iter().any(|w| &w.domain == *src))
                .cloned()
                .collect();
            for src in gone {
                let id = d.leaks.remove(&src).expect("listed");
                d.rib.remove_leak_source(id, &mut d.pending);
                done.push(format!("domain {name}: no longer imports from {src}"));
            }
            let mut fresh = Vec::new();
            for w in &wanted {
                let id = match d.leaks.get(&w.domain) {
                    Some(id) => *id,
                    None => {
                        let id = LEAK_PEERS
                            .clone()
                            .find(|id| !d.leaks.values().any(|x| x == id))
                            .expect("far more ids than domains");
                        d.leaks.insert(w.domain.clone(), id);
                        fresh.push((w.domain.clone(), id));
                        done.push(format!("domain {name}: imports from {}", w.domain));
                        id
                    }
                };
                d.rib
                    .set_leak_source(id, &w.domain, w.policy.clone(), &mut d.pending);
            }
            // The whole table of each new source.
            for (src, id) in fresh {
                let all = match self.source(default, &src) {
                    Some(r) => r.leakable_all(),
                    None => continue,
                };
                let changes = all.into_iter().map(|(p, a)| (p, Some(a))).collect();
                let d = self.list.get_mut(name).expect("listed");
                d.rib.leak_in(id, changes, &mut d.pending);
            }
        }
        let leaked_from = |src: &str| {
            c.domains
                .iter()
                .any(|d| d.import_from.iter().any(|w| w.domain == src))
        };
        default.set_leak_log(leaked_from(DEFAULT_DOMAIN));
        for (name, d) in self.list.iter_mut() {
            d.rib.set_leak_log(leaked_from(name));
        }
        done
    }

    /// Hands every leak its source's changes since the last call: for each
    /// prefix decided again there, the source's best path now (or none).
    /// A change a leak causes in its receiving domain may in turn be
    /// leaked from there by another domain (never the leaked path itself,
    /// only what it displaced): a few rounds, the rest waits for the next
    /// event.
    pub fn run_leaks(&mut self, default: &mut Rib) {
        if self.list.values().all(|d| d.leaks.is_empty()) {
            return;
        }
        for _round in 0..4 {
            let mut changed: BTreeMap<String, Vec<Prefix>> = BTreeMap::new();
            let v = default.take_leak_changes();
            if !v.is_empty() {
                changed.insert(DEFAULT_DOMAIN.to_string(), v);
            }
            for (name, d) in self.list.iter_mut() {
                let v = d.rib.take_leak_changes();
                if !v.is_empty() {
                    changed.insert(name.clone(), v);
                }
            }
            if changed.is_empty() {
                return;
            }
            let mut work: Vec<(String, PeerId, LeakChanges)> = Vec::new();
            for (name, d) in &self.list {
                for (src, id) in &d.leaks {
                    let (Some(prefixes), Some(rib)) = (changed.get(src), self.source(default, src))
                    else {
                        continue;
                    };
                    let v = prefixes.iter().map(|p| (*p, rib.leakable(p))).collect();
                    work.push((name.clone(), *id, v));
                }
            }
            for (name, id, changes) in work {
                if let Some(d) = self.list.get_mut(&name) {
                    d.rib.leak_in(id, changes, &mut d.pending);
                }
            }
        }
    }

    /// At exit: stop every FIB (each removes its routes unless they are
    /// kept), and remove the rules unless the routes stay (`keepOnExit`,
    /// graceful restart): then the rules stay too, so that forwarding
    /// survives the restart.
    pub async fn shutdown(&mut self, keep_routes: bool) {
        for d in self.list.values() {
            d.fib.shutdown().await;
        }
        if keep_routes {
            return;
        }
        if let Some(rules) = &mut self.rules {
            match rules.remove_all() {
                Ok(0) => {}
                Ok(n) => info!("removed {n} ip rules of protocol {}", self.protocol),
                Err(e) => warn!("removing our ip rules: {e}"),
            }
        }
    }
}

/// The RIB's settings from `c` (every domain's RIB has the same).
pub fn rib_config(c: &Config) -> rib::RibConfig {
    rib::RibConfig {
        local_asn: c.router.asn,
        router_id: c.router.router_id,
        cluster_id: c.router.cluster_id,
        max_paths: c.router.max_paths,
        multipath_relax: c.router.multipath_relax,
        always_compare_med: c.router.always_compare_med,
        install: c.kernel.install,
        policies: c.policies.clone(),
    }
}

/// The default domain's FIB settings from `c` (a domain's differ in the
/// table and the nexthop id range).
pub fn fib_config(c: &Config) -> kernel::FibConfig {
    kernel::FibConfig {
        table: c.kernel.table,
        protocol: c.kernel.protocol,
        metric: c.kernel.metric,
        install: c.kernel.install,
        // Graceful restart (RFC 4724): our forwarding state survives us.
        keep_on_exit: c.kernel.keep_on_exit || c.graceful_restart_enabled(),
        nexthop_objects: c.kernel.nexthop_objects,
        nexthop_ids: kernel::DEFAULT_NEXTHOP_IDS,
        backup_routes: c.kernel.backup_routes,
    }
}
