//! A BIRD 2 sender: what a user actually peers with. The table becomes
//! static routes (blackhole, with the table's BGP attributes set per
//! route), exported over one eBGP session to the receiver. BIRD packs the
//! prefixes of one attribute set into one UPDATE, as our blaster does, so
//! a table whose every prefix has its own attributes (`--one-per-update`)
//! goes out as one UPDATE per prefix.
//!
//! The session starts disabled: BIRD first loads every static route, then
//! the clock starts when the session is Established (polled through
//! `birdc` every few milliseconds, so the moment is late by one poll).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::mpsc::{Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use labkit::bird::{self, Bird, BirdSpec};
use labkit::Netns;
use wire::{Origin, PathAttributes};

use crate::blast::Control;
use crate::netns::{RECEIVER_V4, SENDER_V4};
use crate::receivers::{RECEIVER_ASN, SENDER_ASN};
use crate::table::Table;

/// The BGP protocol's name in the sender's BIRD.
const SESSION: &str = "receiver";

/// How long BIRD may take to parse a full table of static routes.
pub const START_TIMEOUT: Duration = Duration::from_secs(300);

/// What the BIRD sender reports to the run.
#[derive(Debug)]
pub enum BirdEvent {
    Established(Instant),
    Closed(Instant),
}

/// The filter commands that give a static route the group's attributes.
/// The AS_PATH without its first AS: BIRD prepends its own (the sender's)
/// on eBGP export.
fn attribute_commands(a: &PathAttributes, out: &mut String) {
    let origin = match a.origin {
        Some(Origin::Egp) => "ORIGIN_EGP",
        Some(Origin::Incomplete) => "ORIGIN_INCOMPLETE",
        _ => "ORIGIN_IGP",
    };
    let _ = write!(out, "bgp_origin = {origin};");
    let asns: Vec<u32> = a.as_path.asns().collect();
    let rest = match asns.first() {
        Some(&first) if first == SENDER_ASN => &asns[1..],
        _ => &asns[..],
    };
    // prepend() puts an AS in front: the last one first.
    for asn in rest.iter().rev() {
        let _ = write!(out, " bgp_path.prepend({asn});");
    }
    if let Some(med) = a.med {
        let _ = write!(out, " bgp_med = {med};");
    }
    for c in a.communities.iter() {
        let _ = write!(out, " bgp_community.add(({},{}));", c.0 >> 16, c.0 & 0xffff);
    }
    for l in a.large_communities.iter() {
        let _ = write!(
            out,
            " bgp_large_community.add(({},{},{}));",
            l.global, l.local1, l.local2
        );
    }
}

/// The sender's bird.conf: a static protocol per family holding the
/// table, and the session to the receiver, disabled until the run starts.
pub fn config(table: &Table, log: &Path) -> String {
    let mut c = String::with_capacity(table.len() * 96 + 1024);
    let _ = writeln!(
        c,
        "log \"{}\" {{ warning, error, fatal }};\nrouter id {SENDER_V4};\nprotocol device {{ }}",
        log.display()
    );
    for (name, v6) in [("table4", false), ("table6", true)] {
        let _ = writeln!(
            c,
            "protocol static {name} {{\n  {} {{ import all; }};",
            if v6 { "ipv6" } else { "ipv4" }
        );
        let mut cmds = String::new();
        for g in &table.groups {
            let in_family = |p: &IpNet| matches!(p, IpNet::V6(_)) == v6;
            if !g.prefixes.iter().any(in_family) {
                continue;
            }
            cmds.clear();
            attribute_commands(&g.attrs, &mut cmds);
            for p in g.prefixes.iter().filter(|p| in_family(p)) {
                let _ = writeln!(c, "  route {p} blackhole {{ {cmds} }};");
            }
        }
        c += "}\n";
    }
    let _ = writeln!(
        c,
        "protocol bgp {SESSION} {{\n  disabled;\n  local {SENDER_V4} as {SENDER_ASN};\n  \
         neighbor {RECEIVER_V4} as {RECEIVER_ASN};\n  connect retry time 1;\n  \
         ipv4 {{ import none; export all; }};\n  ipv6 {{ import none; export all; }};\n}}"
    );
    c
}

/// Start BIRD in `ns` with the table, wait until it holds every route,
/// enable the session and report Established; then close the session on
/// [`Control::Close`], and stop BIRD when `ctl` is dropped.
pub fn run(
    ns: &Netns,
    dir: &Path,
    table: &Table,
    ctl: Receiver<Control>,
    ev: Sender<BirdEvent>,
) -> Result<(), String> {
    let spec = BirdSpec::new(dir, config(table, &dir.join("sender.messages.log")));
    let mut daemon =
        Bird::start_within(ns, &spec, START_TIMEOUT).map_err(|e| format!("BIRD sender: {e}"))?;
    crate::netns::register_pids(&[daemon.pid()]);
    let result = (|| {
        let expected = table.len() as u64;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let held: u64 = ["table4", "table6"]
                .iter()
                .filter_map(|p| daemon.birdc(&["show", "protocols", "all", p]).ok())
                .map(|out| bird::parse_imported(&out))
                .sum();
            if held >= expected {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("BIRD sender holds {held} of {expected} routes"));
            }
            thread::sleep(Duration::from_millis(200));
        }
        daemon
            .birdc(&["enable", SESSION])
            .map_err(|e| format!("birdc enable: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(Ok(())) = daemon.established(SESSION) {
                let _ = ev.send(BirdEvent::Established(Instant::now()));
                break;
            }
            if Instant::now() > deadline {
                return Err("the BIRD sender's session did not come up within 90 s".into());
            }
            thread::sleep(Duration::from_millis(5));
        }
        for c in ctl {
            match c {
                Control::Close => {
                    let at = Instant::now();
                    daemon
                        .birdc(&["disable", SESSION])
                        .map_err(|e| format!("birdc disable: {e}"))?;
                    let _ = ev.send(BirdEvent::Closed(at));
                }
                Control::Churn { .. } => {
                    return Err("the churn run needs the blaster as the sender".into())
                }
            }
        }
        Ok(())
    })();
    let _ = daemon.stop(Duration::from_secs(5));
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{generate, GenParams};

    #[test]
    fn bird_parses_a_table_as_static_routes_with_their_attributes() {
        let t = generate(&GenParams {
            ipv4: 200,
            ipv6: 50,
            seed: 3,
            sender_asn: SENDER_ASN,
            receiver_asn: RECEIVER_ASN,
        })
        .one_per_update();
        let dir = std::env::temp_dir().join(format!("kb-birdsend-{}", std::process::id()));
        let text = config(&t, &dir.join("log"));
        assert_eq!(text.matches("  route ").count(), 250);
        for med in [0, 124, 249] {
            assert!(text.contains(&format!(" bgp_med = {med};")), "MED {med}");
        }
        assert!(!text.contains(" bgp_med = 250;"), "one MED per prefix");
        if labkit::cmd::find_program("bird").is_none() {
            eprintln!("bird not installed; not parsed");
            return;
        }
        std::fs::create_dir_all(&dir).unwrap();
        let parsed = bird::write_config(&dir.join("bird.conf"), &text);
        let _ = std::fs::remove_dir_all(&dir);
        parsed.unwrap();
    }
}
