//! The senders' BFD end for the failover run's `bfd` variant. The blast
//! sessions speak BGP only, so each sender namespace gets FRR's bfdd (with
//! an idle zebra and a bgpd without neighbors: labkit's FRR launcher
//! starts them together) holding one single-hop session with the receiver
//! (RFC 5881) at the bench's timers. Dropping every packet in the
//! namespace then silences BGP and BFD alike, as a hung or wedged router
//! would.

use std::time::{Duration, Instant};

use labkit::frr::{self, BfdPeer, BgpdConfig, FrrSpec};
use labkit::Netns;

use crate::netns;
use crate::receivers::{BFD_INTERVAL_MS, BFD_MULTIPLIER, SENDER_ASN};

pub struct Responder {
    frr: frr::Frr,
    /// The receiver's address, as bfdd names the session.
    peer: String,
}

impl Responder {
    /// bfdd in `ns` (the sender at `local`) with a session to `receiver`.
    pub fn start(ns: &Netns, local: &str, receiver: &str) -> Result<Responder, String> {
        let name = ns.name();
        netns::register_dir(frr::run_dir(name));
        let bgpd = BgpdConfig {
            hostname: name.into(),
            asn: SENDER_ASN,
            router_id: local.into(),
            ..BgpdConfig::default()
        };
        let spec = FrrSpec {
            bfdd_conf: Some(frr::bfdd_config(
                name,
                &[BfdPeer {
                    address: receiver.into(),
                    local_address: Some(local.into()),
                    receive_interval_ms: BFD_INTERVAL_MS,
                    transmit_interval_ms: BFD_INTERVAL_MS,
                    detect_multiplier: BFD_MULTIPLIER,
                }],
            )),
            own_process_group: true,
            ..FrrSpec::new(name, bgpd.render())
        };
        let frr = frr::Frr::start(ns, &spec).map_err(|e| format!("bfdd in {name}: {e}"))?;
        netns::register_pids(&frr.pids());
        Ok(Responder {
            frr,
            peer: receiver.into(),
        })
    }

    /// Is bfdd's session with the receiver Up?
    fn is_up(&self) -> Result<bool, String> {
        let v = self
            .frr
            .vtysh_json("show bfd peers json")
            .map_err(|e| e.to_string())?;
        let peers = v.as_array().cloned().unwrap_or_default();
        Ok(peers
            .iter()
            .any(|p| p["peer"] == self.peer.as_str() && p["status"] == "up"))
    }

    /// Waits until the session is Up (the receiver answers BFD).
    pub fn wait_up(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.is_up()? {
                return Ok(());
            }
            self.frr.check_alive().map_err(|e| e.to_string())?;
            if Instant::now() > deadline {
                return Err(format!(
                    "no BFD session with {} Up within {:.0} s (logs: {})",
                    self.peer,
                    timeout.as_secs_f64(),
                    self.frr.run_dir().display()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
