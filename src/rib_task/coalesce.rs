//! Burst coalescing of update-group output (issue 17).
//!
//! When many sessions come up at once (a cluster's nodes after a
//! reflector restart), every arriving node's routes are a change for
//! every member of the group: sent as they come, that is one small write
//! per change per member, N² writes at N nodes. Instead a group sends in
//! rounds: a change after a quiet spell goes at once (a round opens), and
//! the changes that follow within the group's delay wait for the next
//! round, where every member gets them in one batch, built and encoded
//! once and shared (members pulled together stand at the same cursor).
//!
//! Only members that are caught up wait: a session still reading its
//! table (just up, or behind by more than a batch) is handed its next
//! batch as soon as its writer has room.
//!
//! The delay grows with the group, so the cost of a round (one write per
//! member) stays a bounded share of the time: [`delay`]. It is the most
//! one change can be held back, and only while the group is busy; the
//! router wakes up for the next round on a timer of its own
//! ([`Coalescer::due`]), not its once-a-second tick.
//!
//! Pure: the caller passes the time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The shortest delay between two rounds of a group.
pub const MIN_DELAY: Duration = Duration::from_millis(5);
/// The longest: what one change can wait, at most, behind a burst.
pub const MAX_DELAY: Duration = Duration::from_millis(50);
/// Delay per member: a round at 1000 members is 1000 writes (and as many
/// wake-ups of the peers' readers), some tens of ms of CPU on a small
/// machine; 50 µs per member keeps rounds from taking all of it.
const PER_MEMBER: Duration = Duration::from_micros(50);

/// Time between two rounds of a group of `members` sessions.
pub fn delay(members: usize) -> Duration {
    let members = u32::try_from(members).unwrap_or(u32::MAX);
    PER_MEMBER
        .saturating_mul(members)
        .clamp(MIN_DELAY, MAX_DELAY)
}

/// A group: its routing domain (None: the default one) and its id in
/// that domain's RIB.
pub type GroupRef<'a> = (Option<&'a str>, u32);

/// When each group's last round opened, and the next time one is due.
#[derive(Debug, Default)]
pub struct Coalescer {
    /// Per domain, per group id: when its last round opened.
    rounds: HashMap<Option<String>, HashMap<u32, Instant>>,
    /// The earliest round a held-back member waits for.
    due: Option<Instant>,
}

/// What to do with a caught-up member that has something to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send now: a round opens, or opened at this very `now` (the same
    /// pass over the sessions).
    Send,
    /// Hold it until then.
    Hold(Instant),
}

impl Coalescer {
    /// A caught-up member of `group` (of `members` sessions) has changes
    /// to send at `now`. One pass over the sessions uses one `now`, so
    /// every member ready in the pass that opens a round goes with it.
    pub fn caught_up_member(&mut self, group: GroupRef, members: usize, now: Instant) -> Verdict {
        let (domain, gid) = group;
        let last = self
            .rounds
            .get(&domain.map(str::to_string))
            .and_then(|g| g.get(&gid));
        if let Some(&last) = last {
            let next = last + delay(members);
            if last != now && next > now {
                self.due = Some(self.due.map_or(next, |d| d.min(next)));
                return Verdict::Hold(next);
            }
        }
        self.rounds
            .entry(domain.map(str::to_string))
            .or_default()
            .insert(gid, now);
        Verdict::Send
    }

    /// The earliest time a held-back member may go; the router wakes up
    /// then and looks at every session ([`Coalescer::take_due`]).
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// At `now`, whether a round a member waited for has come: then the
    /// caller looks at every session (not only those that reported
    /// room), and the held-back ones set the next due time again.
    pub fn take_due(&mut self, now: Instant) -> bool {
        if self.due.is_some_and(|d| d <= now) {
            self.due = None;
            return true;
        }
        false
    }

    /// Forgets groups quiet for longer than any delay (groups that went
    /// away included): their next change opens a round anyway.
    pub fn forget_quiet(&mut self, now: Instant) {
        for groups in self.rounds.values_mut() {
            groups.retain(|_, last| now.saturating_duration_since(*last) <= MAX_DELAY);
        }
        self.rounds.retain(|_, groups| !groups.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_delay_grows_with_the_group_within_its_bounds() {
        assert_eq!(delay(1), MIN_DELAY);
        assert_eq!(delay(100), MIN_DELAY);
        assert_eq!(delay(400), 20 * MS);
        assert_eq!(delay(1000), MAX_DELAY);
        assert_eq!(delay(usize::MAX), MAX_DELAY);
    }

    #[test]
    fn a_change_after_a_quiet_spell_goes_at_once_and_the_burst_behind_it_waits_one_delay() {
        let mut c = Coalescer::default();
        let t0 = Instant::now();
        let g = (None, 1);
        assert_eq!(c.caught_up_member(g, 1000, t0), Verdict::Send);
        // The other members of the same pass go in the same round.
        assert_eq!(c.caught_up_member(g, 1000, t0), Verdict::Send);
        assert_eq!(c.due(), None);
        // A change right after: held until the next round, which the
        // router wakes up for.
        let t1 = t0 + 3 * MS;
        assert_eq!(
            c.caught_up_member(g, 1000, t1),
            Verdict::Hold(t0 + MAX_DELAY)
        );
        assert_eq!(c.due(), Some(t0 + MAX_DELAY));
        assert!(!c.take_due(t1));
        let t2 = t0 + MAX_DELAY;
        assert!(c.take_due(t2));
        assert_eq!(c.due(), None);
        assert_eq!(c.caught_up_member(g, 1000, t2), Verdict::Send);
        // Quiet for longer than the delay: the next change goes at once.
        let t3 = t2 + 2 * MAX_DELAY;
        c.forget_quiet(t3);
        assert_eq!(c.caught_up_member(g, 1000, t3), Verdict::Send);
    }

    #[test]
    fn groups_and_domains_have_rounds_of_their_own() {
        let mut c = Coalescer::default();
        let t0 = Instant::now();
        assert_eq!(c.caught_up_member((None, 1), 10, t0), Verdict::Send);
        let t1 = t0 + MS;
        assert_eq!(c.caught_up_member((None, 2), 10, t1), Verdict::Send);
        assert_eq!(c.caught_up_member((Some("blue"), 1), 10, t1), Verdict::Send);
        assert_eq!(
            c.caught_up_member((None, 1), 10, t1),
            Verdict::Hold(t0 + MIN_DELAY)
        );
    }
}
