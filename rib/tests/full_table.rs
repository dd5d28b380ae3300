//! Full-table memory and throughput, measured (not asserted on time).
//! Run: cargo test -p rib --release --test full_table -- --ignored --nocapture
mod common;

use std::time::Instant;

use common::*;
use ipnet::Ipv4Net;
use rib::*;
use wire::Community;

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time of this thread so far, in ns (the first field of
/// /proc/thread-self/schedstat): unlike wall time, not inflated by other
/// load on the machine.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn full_table(export_peers: u32) {
    const PREFIXES: u32 = 1_000_000;
    const SETS: u32 = 250_000;
    let per = PREFIXES / SETS;
    let mut rib = Rib::new(cfg());
    add_up(
        &mut rib,
        1,
        ebgp("upstream", "192.0.2.1", 65101),
        "192.0.2.1",
    );
    for i in 0..export_peers {
        add_up(
            &mut rib,
            10 + i,
            ebgp(
                &format!("down{i}"),
                &format!("192.0.2.{}", 10 + i),
                65200 + i,
            ),
            "192.0.2.9",
        );
    }
    reach(&mut rib, "192.0.2.1", 0);
    let before = rss_kib();
    let t = Instant::now();
    let mut n = 0u32;
    let mut sent = 0usize;
    for s in 0..SETS {
        let mut a = attrs(&[65101, 100 + (s % 1000), 4_200_000_000 + s / 1000]);
        a.communities = wire::thin_vec![Community(s % 97), Community(0xFDE8_0000 | (s % 250))];
        let nlri: Vec<Ipv4Net> = (0..per)
            .map(|_| {
                let base = 0x0B00_0000u32 + (n << 8);
                n += 1;
                Ipv4Net::new(base.into(), 24).unwrap()
            })
            .collect();
        let u = wire::Update {
            attributes: wire::PathAttributes {
                next_hop: Some("192.0.2.1".parse().unwrap()),
                ..a
            },
            nlri,
            ..Default::default()
        };
        let mut out = Outputs::default();
        rib.receive(1, u, &mut out);
        sent += out.updates.len();
    }
    let dt = t.elapsed();
    rib.compact();
    let after = rss_kib();
    let per_prefix = (after - before) as f64 * 1024.0 / f64::from(PREFIXES);
    let (attrs, paths) = rib.interned();
    println!(
        "{PREFIXES} prefixes, {SETS} attribute sets, {export_peers} export peers: {:.2}s ({:.0} prefixes/s), RSS +{} MiB = {per_prefix:.0} bytes/prefix; interned attrs {attrs}, paths {paths}; {sent} updates out",
        dt.as_secs_f64(),
        f64::from(PREFIXES) / dt.as_secs_f64(),
        (after - before) / 1024,
    );
    assert_eq!(rib.peer_counters(1).accepted, PREFIXES as usize);

    // 1000-prefix updates with shared attributes (re-announce with a new path).
    let t = Instant::now();
    let mut a = attrs_for_bench();
    a.next_hop = Some("192.0.2.1".parse().unwrap());
    for chunk in 0..(PREFIXES / 1000) {
        let nlri: Vec<Ipv4Net> = (0..1000u32)
            .map(|i| Ipv4Net::new((0x0B00_0000u32 + ((chunk * 1000 + i) << 8)).into(), 24).unwrap())
            .collect();
        let mut out = Outputs::default();
        rib.receive(
            1,
            wire::Update {
                attributes: a.clone(),
                nlri,
                ..Default::default()
            },
            &mut out,
        );
    }
    let dt = t.elapsed();
    println!(
        "re-announce in 1000-prefix updates: {:.2}s ({:.0} prefixes/s)",
        dt.as_secs_f64(),
        f64::from(PREFIXES) / dt.as_secs_f64()
    );
}

fn attrs_for_bench() -> wire::PathAttributes {
    attrs(&[65101, 65555])
}

#[test]
#[ignore]
fn full_table_one_peer() {
    full_table(0);
}

#[test]
#[ignore]
fn full_table_with_two_export_peers() {
    full_table(2);
}

/// The decision with two paths per prefix: two upstreams announce the same
/// 1M prefixes (equal AS_PATH lengths, different neighbouring ASes, so
/// the decision goes down to the router id). Measures the second
/// upstream's announcements, each of which runs a two-path decision.
#[test]
#[ignore]
fn full_table_two_upstreams() {
    const PREFIXES: u32 = 1_000_000;
    let mut rib = Rib::new(cfg());
    add_up(&mut rib, 1, ebgp("up1", "192.0.2.1", 65101), "192.0.2.1");
    add_up(&mut rib, 2, ebgp("up2", "192.0.2.2", 65102), "192.0.2.2");
    reach(&mut rib, "192.0.2.1", 0);
    reach(&mut rib, "192.0.2.2", 0);
    let announce = |rib: &mut Rib, peer: PeerId, asn: u32, nh: &str| {
        let mut a = attrs(&[asn, 65555]);
        a.next_hop = Some(nh.parse().unwrap());
        for chunk in 0..(PREFIXES / 1000) {
            let nlri: Vec<Ipv4Net> = (0..1000u32)
                .map(|i| {
                    Ipv4Net::new((0x0B00_0000u32 + ((chunk * 1000 + i) << 8)).into(), 24).unwrap()
                })
                .collect();
            let mut out = Outputs::default();
            rib.receive(
                peer,
                wire::Update {
                    attributes: a.clone(),
                    nlri,
                    ..Default::default()
                },
                &mut out,
            );
        }
    };
    announce(&mut rib, 1, 65101, "192.0.2.1");
    let (t, cpu) = (Instant::now(), thread_cpu_ns());
    announce(&mut rib, 2, 65102, "192.0.2.2");
    let (dt, cpu) = (t.elapsed(), thread_cpu_ns() - cpu);
    println!(
        "second upstream, 2-path decisions: {:.2}s wall, {:.2}s CPU ({:.0} ns CPU per prefix)",
        dt.as_secs_f64(),
        cpu as f64 / 1e9,
        cpu as f64 / f64::from(PREFIXES)
    );
    assert_eq!(rib.peer_counters(2).accepted, PREFIXES as usize);
}
