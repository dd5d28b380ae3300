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

/// Bytes of netlink messages per `sendmsg`.
const BATCH_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// Install or replace with these kernel next hops.
    Replace(IpNet, Arc<[KernelHop]>),
    /// Remove the route with this metric; `track` says whether the worker's
    /// view of installed routes follows (false for a previous run's routes).
    Delete {
        prefix: IpNet,
        metric: u32,
        track: bool,
    },
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
    batch: Vec<Op>,
    first_seq: u32,
    last_off: usize,
}

impl Writer {
    pub(crate) fn new(sock: NlSocket, key: RouteKey) -> Writer {
        Writer {
            sock,
            key,
            buf: Vec::with_capacity(BATCH_BYTES + 4096),
            batch: Vec::new(),
            first_seq: 1,
            last_off: 0,
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
            let mut m = match &op {
                Op::Replace(p, hops) => msg::new_route(p, hops, &self.key, 0),
                Op::Delete { prefix, metric, .. } => {
                    let key = RouteKey {
                        metric: *metric,
                        ..self.key
                    };
                    msg::del_route(prefix, &key, 0)
                }
            };
            let len = m.buffer_len();
            if !self.batch.is_empty() && self.buf.len() + len > BATCH_BYTES {
                self.send_batch(done, &mut stats);
            }
            if self.batch.is_empty() {
                // Keep a batch's sequence numbers contiguous (no wrap).
                if self.first_seq > u32::MAX - 1_000_000 {
                    self.first_seq = 1;
                }
            }
            m.header.sequence_number = self.first_seq + self.batch.len() as u32;
            let off = self.buf.len();
            self.buf.resize(off + len, 0);
            m.serialize(&mut self.buf[off..]);
            self.last_off = off;
            self.batch.push(op);
        }
        if !self.batch.is_empty() {
            self.send_batch(done, &mut stats);
        }
        stats
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
                    Outcome::Refused(e)
                }
                None if complete => Outcome::Done,
                None => Outcome::Unknown,
            };
            done(op, outcome);
        }
    }
}
