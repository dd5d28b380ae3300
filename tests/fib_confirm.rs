//! Issue 12, "`show`/`explain` say installed when the FIB has only been
//! asked": against the running daemon, a route is reported installed only
//! once the kernel confirmed it, and a route the kernel refuses shows
//! failed with the kernel's words until a retry gets it in.
//! Needs root and GoBGP (see `common/mod.rs`).

mod common;

use common::gobgp::GoBgp;
use common::peer::PeerDaemon;
use common::scenarios::{Topo, C4, P4};
use common::{route_via, wait_until, CONVERGE};

/// The first nexthop object id the FIB hands out (kernel/src/nexthop.rs
/// `FIRST_ID`), and how many ids from it are taken: the FIB takes the
/// next id for each try, so every try within them is refused.
const FIRST_ID: u32 = 0x6b72_0000;
const SQUATTED: u32 = 16;

fn explain_until(t: &Topo<GoBgp>, prefix: &str, want: &str) -> String {
    wait_until(CONVERGE, &format!("explain {prefix}: {want}"), || {
        let text = t.kroute.explain_text(prefix);
        if text.contains(want) {
            Ok(text)
        } else {
            Err(text)
        }
    })
}

#[test]
fn a_refused_route_shows_failed_with_the_errno_and_a_written_one_installed() {
    let mut t = Topo::<GoBgp>::p2p("fc", 1, false, |_| {});
    let gw = t.links[0].p4.clone();
    let dev = t.links[0].k_dev.clone();

    // Someone else takes the ids the FIB hands out next (after it started:
    // ids in use at start are skipped): creating the nexthop object for
    // the first route fails (EEXIST), and so does the route that needs it.
    for id in FIRST_ID..FIRST_ID + SQUATTED {
        t.k_ns
            .ip(&[
                "nexthop",
                "add",
                "id",
                &id.to_string(),
                "via",
                &gw,
                "dev",
                &dev,
            ])
            .unwrap();
    }
    t.peers[0].announce(P4);
    let text = explain_until(&t, P4, "not installed: kernel error: ");
    assert!(text.contains("EEXIST"), "the kernel's errno: {text}");
    assert!(
        route_via(&t.k_ns, P4).is_none(),
        "{P4} is not in the kernel"
    );
    let routes = t.kroute.routes(P4);
    assert!(
        routes.iter().any(|r| r.best) && routes.iter().all(|r| !r.installed),
        "show routes {P4} while refused: {routes:?}"
    );

    // The ids given back, a retry gets the route in: installed.
    for id in FIRST_ID..FIRST_ID + SQUATTED {
        let _ = t.k_ns.ip(&["nexthop", "del", "id", &id.to_string()]);
    }
    t.wait_kernel_via(P4, &[1]);
    explain_until(&t, P4, &format!("kernel: installed via {gw}"));
    wait_until(CONVERGE, &format!("show routes {P4}: installed"), || {
        let routes = t.kroute.routes(P4);
        match routes.iter().any(|r| r.best && r.installed) {
            true => Ok(()),
            false => Err(format!("{routes:?}")),
        }
    });

    // A route written at the first try: installed, never failed.
    t.peers[0].announce(C4);
    t.wait_kernel_via(C4, &[1]);
    let text = explain_until(&t, C4, &format!("kernel: installed via {gw}"));
    assert!(!text.contains("error"), "{text}");
    t.kroute.assert_alive();
}
