//! Connections on their way from the listener to the router task: at most
//! one per peer address at a time (issue 12: a flood of connections from
//! one address must not queue up before the FSM sees them).

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Addresses with a connection on its way to the router task. A slot is
/// held by the [`crate::events::RibEvent::Incoming`] that carries the connection and
/// freed when that event is dropped (after the handoff to the peer task).
#[derive(Debug, Default, Clone)]
pub struct Pending(Arc<Mutex<HashSet<IpAddr>>>);

impl Pending {
    pub fn claim(&self, addr: IpAddr) -> Option<PendingSlot> {
        let mut set = self.0.lock().unwrap_or_else(|e| e.into_inner());
        set.insert(addr).then(|| PendingSlot {
            addr,
            pending: self.clone(),
        })
    }
}

/// One address's claim on [`Pending`]; released on drop.
#[derive(Debug)]
pub struct PendingSlot {
    addr: IpAddr,
    pending: Pending,
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let mut set = self.pending.0.lock().unwrap_or_else(|e| e.into_inner());
        set.remove(&self.addr);
    }
}
