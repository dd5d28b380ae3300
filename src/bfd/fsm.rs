//! One BFD session's state machine (RFC 5880 §6.8), asynchronous mode,
//! without sockets or clocks: the driver feeds it received packets and
//! timer expiries and carries out the [`Action`]s it returns.

use std::time::Duration;

use super::packet::{diag, ControlPacket, State};

/// RFC 5880 §6.8.3: while the session is not Up, bfd.DesiredMinTxInterval
/// must be at least one second.
pub const SLOW_TX: Duration = Duration::from_secs(1);

/// The timers we ask for (config `bfd: {interval, multiplier}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Our Desired Min TX and Required Min RX interval once Up.
    pub interval: Duration,
    /// bfd.DetectMult.
    pub multiplier: u8,
}

impl Default for Timers {
    fn default() -> Timers {
        Timers {
            interval: Duration::from_millis(300),
            multiplier: 3,
        }
    }
}

/// What the driver must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// bfd.SessionState changed.
    StateChanged { from: State, to: State, diag: u8 },
    /// Send a packet now, outside the periodic schedule (Final answers,
    /// Poll starts, state changes); [`Session::packet`] builds it.
    SendNow { final_: bool },
    /// (Re)start the detection timer: it fires after this long unless a
    /// packet comes first.
    ArmDetect(Duration),
}

/// The RFC 5880 §6.8.1 state variables of one session.
#[derive(Debug, Clone)]
pub struct Session {
    pub state: State,
    pub remote_state: State,
    pub local_discr: u32,
    pub remote_discr: u32,
    /// The remote's C bit (RFC 5880 §4.1): its BFD does not share fate
    /// with its control plane, so its failure is a forwarding failure.
    pub remote_control_plane_independent: bool,
    pub local_diag: u8,
    timers: Timers,
    /// bfd.DesiredMinTxInterval as we send it, µs.
    desired_min_tx: u32,
    /// bfd.RemoteMinRxInterval, µs.
    remote_min_rx: u32,
    /// The remote's Desired Min TX, µs (for the detection time).
    remote_desired_tx: u32,
    /// The remote's Detect Mult; 0 until a packet came.
    remote_detect_mult: u8,
    /// A Poll Sequence (§6.5) is running: our packets carry P.
    poll: bool,
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

impl Session {
    /// A session in Down with our discriminator (nonzero, unique per node).
    pub fn new(local_discr: u32, timers: Timers) -> Session {
        assert_ne!(
            local_discr, 0,
            "RFC 5880 §6.8.1: the discriminator is nonzero"
        );
        Session {
            state: State::Down,
            remote_state: State::Down,
            local_discr,
            remote_discr: 0,
            local_diag: diag::NONE,
            timers,
            desired_min_tx: micros(timers.interval.max(SLOW_TX)),
            // §6.8.1: initialized to 1 (µs).
            remote_min_rx: 1,
            remote_desired_tx: 0,
            remote_detect_mult: 0,
            remote_control_plane_independent: false,
            poll: false,
        }
    }

    pub fn timers(&self) -> Timers {
        self.timers
    }

    /// The Desired Min TX we send now (1 s until Up, §6.8.3).
    pub fn desired_min_tx(&self) -> Duration {
        Duration::from_micros(u64::from(self.desired_min_tx))
    }

    /// Our Required Min RX interval.
    pub fn required_min_rx(&self) -> Duration {
        self.timers.interval
    }

    /// The remote's Required Min RX, once heard.
    pub fn remote_min_rx(&self) -> Duration {
        Duration::from_micros(u64::from(self.remote_min_rx))
    }

    pub fn poll_active(&self) -> bool {
        self.poll
    }

    /// The agreed transmit interval (§6.8.7): the larger of what we
    /// desire and what the remote can receive.
    pub fn tx_interval(&self) -> Duration {
        Duration::from_micros(u64::from(self.desired_min_tx.max(self.remote_min_rx)))
    }

    /// The agreed receive interval: the larger of our Required Min RX and
    /// the remote's Desired Min TX.
    pub fn rx_interval(&self) -> Duration {
        self.required_min_rx()
            .max(Duration::from_micros(u64::from(self.remote_desired_tx)))
    }

    /// The detection time (§6.8.4, asynchronous mode): the remote's Detect
    /// Mult times the agreed receive interval; `None` before the remote
    /// was heard.
    pub fn detection_time(&self) -> Option<Duration> {
        (self.remote_detect_mult > 0)
            .then(|| self.rx_interval() * u32::from(self.remote_detect_mult))
    }

    /// Whether periodic packets may be sent (§6.8.7: not while the remote's
    /// Required Min RX is zero; we are always the active role).
    pub fn may_transmit(&self) -> bool {
        self.remote_min_rx != 0
    }

    /// The delay until the next periodic packet: the agreed interval less
    /// 0–25 % jitter, 10–25 % when Detect Mult is 1 (§6.8.7). `random` is
    /// any value, uniformly distributed.
    pub fn next_tx_delay(&self, random: u32) -> Duration {
        let interval = self.tx_interval();
        let (lo, span) = if self.timers.multiplier == 1 {
            (75u64, 15u64)
        } else {
            (75, 25)
        };
        let pct_x100 = lo * 100 + u64::from(random) % (span * 100 + 1);
        Duration::from_nanos((interval.as_nanos() as u64).saturating_mul(pct_x100) / 10_000)
    }

    /// The packet to send now (§6.8.7); `final_` answers a Poll.
    pub fn packet(&self, final_: bool) -> ControlPacket {
        ControlPacket {
            diag: self.local_diag,
            state: self.state,
            // §6.8.7: never P and F in one packet.
            poll: self.poll && !final_,
            final_,
            control_plane_independent: false,
            auth_present: false,
            demand: false,
            multipoint: false,
            detect_mult: self.timers.multiplier,
            my_discr: self.local_discr,
            your_discr: self.remote_discr,
            desired_min_tx: self.desired_min_tx,
            required_min_rx: micros(self.timers.interval),
            required_min_echo_rx: 0,
        }
    }

    fn set_state(&mut self, to: State, diag: u8, out: &mut Vec<Action>) {
        if self.state == to {
            return;
        }
        let from = self.state;
        self.state = to;
        self.local_diag = diag;
        // §6.8.3: slow transmission until Up; the configured rate once Up.
        // The configured interval is at most the slow one when it differs,
        // so going Up lowers it (which takes effect at once) and leaving Up
        // raises it while not Up (no Poll needed for either); the Poll
        // Sequence tells the remote about the new value (§6.8.3).
        let desired = if to == State::Up {
            micros(self.timers.interval)
        } else {
            micros(self.timers.interval.max(SLOW_TX))
        };
        if desired != self.desired_min_tx {
            self.desired_min_tx = desired;
            self.poll = to == State::Up;
        }
        if to != State::Up {
            self.poll = false;
        }
        out.push(Action::StateChanged { from, to, diag });
        out.push(Action::SendNow { final_: false });
    }

    /// A packet that passed [`ControlPacket::decode`]'s checks and was
    /// matched to this session (§6.8.6).
    pub fn receive(&mut self, p: &ControlPacket) -> Vec<Action> {
        let mut out = Vec::new();
        if p.your_discr != 0 && p.your_discr != self.local_discr {
            // The demultiplexer should not have chosen us.
            return out;
        }
        self.remote_discr = p.my_discr;
        self.remote_state = p.state;
        self.remote_min_rx = p.required_min_rx;
        self.remote_desired_tx = p.desired_min_tx;
        self.remote_detect_mult = p.detect_mult;
        self.remote_control_plane_independent = p.control_plane_independent;
        if p.final_ && self.poll {
            self.poll = false;
        }
        if self.state == State::AdminDown {
            return out;
        }
        if let Some(t) = self.detection_time() {
            out.push(Action::ArmDetect(t));
        }
        if p.state == State::AdminDown {
            if self.state != State::Down {
                self.set_state(State::Down, diag::NEIGHBOR_SIGNALED_DOWN, &mut out);
            }
        } else {
            match (self.state, p.state) {
                (State::Down, State::Down) => self.set_state(State::Init, diag::NONE, &mut out),
                (State::Down, State::Init) => self.set_state(State::Up, diag::NONE, &mut out),
                (State::Init, State::Init | State::Up) => {
                    self.set_state(State::Up, diag::NONE, &mut out)
                }
                (State::Up, State::Down) => {
                    self.set_state(State::Down, diag::NEIGHBOR_SIGNALED_DOWN, &mut out)
                }
                _ => {}
            }
        }
        if p.poll {
            // §6.8.6: answer a Poll with a Final at once.
            out.push(Action::SendNow { final_: true });
        }
        out
    }

    /// No packet for a detection time (§6.8.4).
    pub fn detection_time_expired(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        // §6.8.1: bfd.RemoteDiscr is zeroed when the detection time passes.
        self.remote_discr = 0;
        self.remote_state = State::Down;
        self.remote_detect_mult = 0;
        if matches!(self.state, State::Init | State::Up) {
            self.set_state(State::Down, diag::DETECTION_TIME_EXPIRED, &mut out);
        }
        out
    }

    /// The session is being removed (§6.8.16): tell the remote AdminDown.
    pub fn admin_down(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        self.set_state(State::AdminDown, diag::ADMIN_DOWN, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: u32 = 0x1111;
    const REMOTE: u32 = 0x2222;

    fn session() -> Session {
        Session::new(LOCAL, Timers::default())
    }

    /// A packet from the remote in `state`, 300 ms × 3 like us.
    fn from_remote(state: State) -> ControlPacket {
        ControlPacket {
            diag: 0,
            state,
            poll: false,
            final_: false,
            control_plane_independent: false,
            auth_present: false,
            demand: false,
            multipoint: false,
            detect_mult: 3,
            my_discr: REMOTE,
            your_discr: if state == State::Down { 0 } else { LOCAL },
            desired_min_tx: 300_000,
            required_min_rx: 300_000,
            required_min_echo_rx: 0,
        }
    }

    fn changes(actions: &[Action]) -> Vec<(State, State)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::StateChanged { from, to, .. } => Some((*from, *to)),
                _ => None,
            })
            .collect()
    }

    fn up() -> Session {
        let mut s = session();
        s.receive(&from_remote(State::Down));
        s.receive(&from_remote(State::Up));
        assert_eq!(s.state, State::Up);
        s
    }

    #[test]
    fn starts_down_sending_slowly() {
        let s = session();
        assert_eq!(s.state, State::Down);
        let p = s.packet(false);
        assert_eq!(p.state, State::Down);
        assert_eq!(p.your_discr, 0);
        assert_eq!(p.my_discr, LOCAL);
        assert_eq!(p.desired_min_tx, 1_000_000, "§6.8.3 slow start");
        assert_eq!(p.required_min_rx, 300_000);
        assert_eq!(s.tx_interval(), SLOW_TX);
        assert_eq!(s.detection_time(), None);
    }

    #[test]
    fn down_then_remote_down_goes_init() {
        let mut s = session();
        let a = s.receive(&from_remote(State::Down));
        assert_eq!(changes(&a), vec![(State::Down, State::Init)]);
        assert_eq!(s.remote_discr, REMOTE);
        assert_eq!(s.packet(false).your_discr, REMOTE);
    }

    #[test]
    fn down_then_remote_init_goes_up() {
        let mut s = session();
        let a = s.receive(&from_remote(State::Init));
        assert_eq!(changes(&a), vec![(State::Down, State::Up)]);
    }

    #[test]
    fn down_ignores_remote_up() {
        let mut s = session();
        let a = s.receive(&from_remote(State::Up));
        assert!(changes(&a).is_empty());
        assert_eq!(s.state, State::Down);
    }

    #[test]
    fn init_then_remote_init_or_up_goes_up() {
        for remote in [State::Init, State::Up] {
            let mut s = session();
            s.receive(&from_remote(State::Down));
            let a = s.receive(&from_remote(remote));
            assert_eq!(changes(&a), vec![(State::Init, State::Up)], "{remote}");
        }
    }

    #[test]
    fn init_stays_on_remote_down() {
        let mut s = session();
        s.receive(&from_remote(State::Down));
        let a = s.receive(&from_remote(State::Down));
        assert!(changes(&a).is_empty());
        assert_eq!(s.state, State::Init);
    }

    #[test]
    fn up_goes_down_when_the_remote_says_down() {
        let mut s = up();
        let a = s.receive(&from_remote(State::Down));
        assert_eq!(changes(&a), vec![(State::Up, State::Down)]);
        assert_eq!(s.local_diag, diag::NEIGHBOR_SIGNALED_DOWN);
    }

    #[test]
    fn remote_admin_down_takes_us_down_with_diag_3() {
        let mut s = up();
        let a = s.receive(&from_remote(State::AdminDown));
        assert_eq!(changes(&a), vec![(State::Up, State::Down)]);
        assert_eq!(s.local_diag, diag::NEIGHBOR_SIGNALED_DOWN);
        // Already Down: stays, no change reported.
        let a = s.receive(&from_remote(State::AdminDown));
        assert!(changes(&a).is_empty());
    }

    #[test]
    fn detection_time_is_remote_mult_times_agreed_interval() {
        let mut s = session();
        let mut p = from_remote(State::Down);
        p.detect_mult = 5;
        p.desired_min_tx = 1_000_000; // the remote's slow start
        let a = s.receive(&p);
        assert!(a.contains(&Action::ArmDetect(Duration::from_secs(5))));
        p.state = State::Up;
        p.your_discr = LOCAL;
        p.desired_min_tx = 200_000; // lower than our 300 ms RX: ours counts
        s.receive(&p);
        assert_eq!(s.detection_time(), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn detection_timer_expiry_takes_up_down_with_diag_1() {
        let mut s = up();
        let a = s.detection_time_expired();
        assert_eq!(changes(&a), vec![(State::Up, State::Down)]);
        assert_eq!(s.local_diag, diag::DETECTION_TIME_EXPIRED);
        assert_eq!(s.remote_discr, 0, "§6.8.1");
        assert_eq!(s.packet(false).your_discr, 0);
        assert_eq!(s.tx_interval(), SLOW_TX, "back to slow start");
    }

    #[test]
    fn detection_timer_expiry_while_down_changes_nothing() {
        let mut s = session();
        assert!(changes(&s.detection_time_expired()).is_empty());
        assert_eq!(s.state, State::Down);
    }

    #[test]
    fn going_up_polls_for_the_faster_rate() {
        let s = up();
        assert_eq!(s.desired_min_tx(), Duration::from_millis(300));
        assert!(s.poll_active());
        let p = s.packet(false);
        assert!(p.poll && !p.final_);
        assert_eq!(p.desired_min_tx, 300_000);
        assert_eq!(s.tx_interval(), Duration::from_millis(300));
    }

    #[test]
    fn a_final_ends_our_poll() {
        let mut s = up();
        let mut p = from_remote(State::Up);
        p.final_ = true;
        s.receive(&p);
        assert!(!s.poll_active());
        assert!(!s.packet(false).poll);
    }

    #[test]
    fn a_poll_is_answered_with_a_final_at_once() {
        let mut s = up();
        let mut p = from_remote(State::Up);
        p.poll = true;
        let a = s.receive(&p);
        assert!(a.contains(&Action::SendNow { final_: true }));
        let f = s.packet(true);
        assert!(f.final_ && !f.poll, "never P and F together");
    }

    #[test]
    fn no_poll_when_the_configured_interval_is_slow_already() {
        let mut s = Session::new(
            LOCAL,
            Timers {
                interval: Duration::from_secs(2),
                multiplier: 3,
            },
        );
        s.receive(&from_remote(State::Init));
        assert_eq!(s.state, State::Up);
        assert!(!s.poll_active());
        assert_eq!(s.desired_min_tx(), Duration::from_secs(2));
    }

    #[test]
    fn tx_interval_respects_the_remotes_min_rx() {
        let mut s = up();
        let mut p = from_remote(State::Up);
        p.required_min_rx = 500_000;
        s.receive(&p);
        assert_eq!(s.tx_interval(), Duration::from_millis(500));
        p.required_min_rx = 0;
        s.receive(&p);
        assert!(!s.may_transmit(), "§6.8.7: remote wants no packets");
    }

    #[test]
    fn jitter_stays_within_75_to_100_percent() {
        let s = up();
        let iv = s.tx_interval();
        let mut seen_low = false;
        let mut seen_high = false;
        for r in (0..5000u32).map(|i| i.wrapping_mul(2_654_435_761)) {
            let d = s.next_tx_delay(r);
            assert!(d >= iv * 3 / 4 && d <= iv, "{d:?}");
            seen_low |= d < iv * 80 / 100;
            seen_high |= d > iv * 95 / 100;
        }
        assert!(seen_low && seen_high);
    }

    #[test]
    fn jitter_is_at_most_90_percent_with_multiplier_1() {
        let s = Session::new(
            LOCAL,
            Timers {
                interval: Duration::from_millis(100),
                multiplier: 1,
            },
        );
        for r in (0..5000u32).map(|i| i.wrapping_mul(2_654_435_761)) {
            let d = s.next_tx_delay(r);
            assert!(d >= s.tx_interval() * 3 / 4 && d <= s.tx_interval() * 9 / 10);
        }
    }

    #[test]
    fn admin_down_is_sent_and_then_ignores_packets() {
        let mut s = up();
        let a = s.admin_down();
        assert_eq!(changes(&a), vec![(State::Up, State::AdminDown)]);
        assert_eq!(s.packet(false).diag, diag::ADMIN_DOWN);
        let a = s.receive(&from_remote(State::Down));
        assert!(a.is_empty());
        assert_eq!(s.state, State::AdminDown);
    }

    #[test]
    fn a_packet_for_another_discriminator_is_ignored() {
        let mut s = up();
        let mut p = from_remote(State::Down);
        p.your_discr = LOCAL + 1;
        assert!(s.receive(&p).is_empty());
        assert_eq!(s.state, State::Up);
    }

    #[test]
    fn state_changes_send_a_packet_at_once() {
        let mut s = session();
        let a = s.receive(&from_remote(State::Down));
        assert!(a.contains(&Action::SendNow { final_: false }));
    }
}
