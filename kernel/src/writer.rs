//! The batch writer: packs many RTM_NEWROUTE/RTM_DELROUTE messages into one
//! buffer per `sendmsg`, without NLM_F_ACK except on the last message of the
//! batch. rtnetlink processes a socket's messages in order (synchronously,
//! inside `sendmsg`), so that last ACK proves the whole batch is done; every
//! failing message before it produced an NLMSG_ERROR carrying its sequence
//! number, which maps back to the operation.

use std::io;
use std::sync::Arc;

use ipnet::IpNet;
use netlink_packet_core::{NLMSG_ERROR, NLM_F_ACK};

use crate::msg::{self, KernelHop, RouteKey};
use crate::netlink::{header_of, parse_error, split_messages, NlError, NlSocket};
use crate::nexthop::{self, ObjOp};
use crate::report::FibCounters;

/// Bytes of netlink messages per `sendmsg`.
const BATCH_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// Install or replace with these kernel next hops: through nexthop
    /// object `nhid`, or written into the route when `nhid` is 0.
    Replace(IpNet, Arc<[KernelHop]>, u32),
    /// Remove the route with this metric; `track` says whether and how the
    /// worker's view of installed routes follows.
    Delete {
        prefix: IpNet,
        metric: u32,
        track: Track,
    },
    /// Install or replace the prefix's standby route (`kernel.backupRoutes`),
    /// at the metric after ours, as `Replace` does.
    Standby(IpNet, Arc<[KernelHop]>, u32),
    /// Remove the prefix's standby route.
    StandbyDelete(IpNet),
    /// Create or delete a nexthop object.
    Object(ObjOp),
}

/// How the route table follows a deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Track {
    /// Not at all: not a route of its own (a previous run's, a stray).
    No,
    /// By its outcome (the removals at shutdown).
    Outcome,
    /// Taken as done when a sweep planned it; only a lost acknowledgement
    /// changes the table.
    Planned,
}

#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Done,
    Refused(NlError),
    /// The batch's final ACK never came (socket error or timeout): the
    /// kernel may or may not have applied it.
    Unknown,
}

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Stats {
    pub messages: usize,
    pub batches: usize,
    pub refused: usize,
    /// ENOBUFS seen: some error reports may have been lost.
    pub lost_reports: bool,
}

pub(crate) struct Writer {
    sock: NlSocket,
    key: RouteKey,
    buf: Vec<u8>,
    /// One message, encoded before it is known whether it fits the batch.
    scratch: Vec<u8>,
    batch: Vec<Op>,
    first_seq: u32,
    last_off: usize,
    counters: Arc<FibCounters>,
}

impl Writer {
    pub(crate) fn new(sock: NlSocket, key: RouteKey, counters: Arc<FibCounters>) -> Writer {
        Writer {
            sock,
            key,
            buf: Vec::with_capacity(BATCH_BYTES + 4096),
            scratch: Vec::with_capacity(256),
            batch: Vec::new(),
            first_seq: 1,
            last_off: 0,
            counters,
        }
    }

    /// Writes every op; `done` learns each op's outcome, in order.
    pub(crate) fn write(
        &mut self,
        ops: impl IntoIterator<Item = Op>,
        done: &mut dyn FnMut(Op, Outcome),
    ) -> Stats {
        let mut stats = Stats::default();
        for op in ops {
            self.scratch.clear();
            self.encode(&op);
            let len = self.scratch.len();
            if !self.batch.is_empty() && self.buf.len() + len > BATCH_BYTES {
                self.send_batch(done, &mut stats);
            }
            if self.batch.is_empty() {
                // Keep a batch's sequence numbers contiguous (no wrap).
                if self.first_seq > u32::MAX - 1_000_000 {
                    self.first_seq = 1;
                }
            }
            let seq = self.first_seq + self.batch.len() as u32;
            self.scratch[8..12].copy_from_slice(&seq.to_ne_bytes());
            let off = self.buf.len();
            self.buf.extend_from_slice(&self.scratch);
            self.last_off = off;
            self.batch.push(op);
        }
        if !self.batch.is_empty() {
            self.send_batch(done, &mut stats);
        }
        stats
    }

    /// One op as one netlink message (sequence number 0) in `scratch`.
    fn encode(&mut self, op: &Op) {
        let b = &mut self.scratch;
        let m = match op {
            Op::Replace(p, _, nhid) if *nhid != 0 => {
                return nexthop::push_route(b, p, &self.key, *nhid);
            }
            Op::Replace(p, hops, _) => msg::new_route(p, hops, &self.key, 0),
            Op::Standby(p, hops, nhid) => {
                let key = self.key.standby();
                if *nhid != 0 {
                    return nexthop::push_route(b, p, &key, *nhid);
                }
                msg::new_route(p, hops, &key, 0)
            }
            Op::StandbyDelete(p) => msg::del_route(p, &self.key.standby(), 0),
            Op::Delete { prefix, metric, .. } => {
                let key = RouteKey {
                    metric: *metric,
                    ..self.key
                };
                msg::del_route(prefix, &key, 0)
            }
            Op::Object(ObjOp::Single { id, hop }) => {
                return nexthop::push_new_single(b, *id, hop, self.key.protocol);
            }
            Op::Object(ObjOp::Group { id, members }) => {
                return nexthop::push_group(b, *id, members, self.key.protocol, false);
            }
            Op::Object(ObjOp::Regroup { id, members }) => {
                return nexthop::push_group(b, *id, members, self.key.protocol, true);
            }
            Op::Object(ObjOp::Delete { id }) => return nexthop::push_del(b, *id),
        };
        b.resize(m.buffer_len(), 0);
        m.serialize(&mut b[..]);
    }

    fn send_batch(&mut self, done: &mut dyn FnMut(Op, Outcome), stats: &mut Stats) {
        let n = self.batch.len();
        let first = self.first_seq;
        let last = first + n as u32 - 1;
        self.first_seq = last + 1;
        // NLM_F_ACK on the last message only.
        let fl = self.last_off + 6;
        let flags = u16::from_ne_bytes([self.buf[fl], self.buf[fl + 1]]) | NLM_F_ACK;
        self.buf[fl..fl + 2].copy_from_slice(&flags.to_ne_bytes());
        stats.messages += n;
        stats.batches += 1;
        self.counters.wrote(n as u64);

        let mut results: Vec<Option<NlError>> = vec![None; n];
        let mut complete = false;
        match self.sock.send(&self.buf) {
            Err(e) => {
                let err = NlError::from_io(e);
                results.iter_mut().for_each(|r| *r = Some(err.clone()));
                complete = true;
            }
            Ok(()) => loop {
                match self.sock.recv() {
                    Ok(data) => {
                        for raw in split_messages(data) {
                            if header_of(raw).kind != NLMSG_ERROR {
                                continue;
                            }
                            let e = parse_error(raw);
                            let idx = e.seq.wrapping_sub(first) as usize;
                            if idx >= n {
                                continue; // stale answer of an earlier batch
                            }
                            if e.code != 0 {
                                results[idx] = Some(NlError {
                                    errno: e.code,
                                    text: e.text,
                                });
                            }
                            if e.seq == last {
                                complete = true;
                            }
                        }
                        if complete {
                            break;
                        }
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        stats.lost_reports = true;
                        tracing::warn!(
                            "netlink receive buffer overflowed: some route errors were lost"
                        );
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::warn!("no acknowledgement for a batch of {n} route changes: {e}");
                        break;
                    }
                }
            },
        }
        self.buf.clear();
        for (op, r) in self.batch.drain(..).zip(results) {
            let outcome = match r {
                Some(e) => {
                    stats.refused += 1;
                    self.counters.refused(e.errno);
                    Outcome::Refused(e)
                }
                None if complete => Outcome::Done,
                None => Outcome::Unknown,
            };
            done(op, outcome);
        }
    }
}
