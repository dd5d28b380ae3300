//! Unit tests of the FSM: every transition, no sockets, no clock.

use super::*;
use SessionState::*;

const OUR_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
const HIGHER_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 9);
const LOWER_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const OUR_ASN: u32 = 65001;
const PEER_ASN: u32 = 65002;
const OURS: ConnId = 1;
const THEIRS: ConnId = 2;

fn config(passive: bool) -> FsmConfig {
    FsmConfig {
        local_router_id: OUR_ID,
        local_asn: OUR_ASN,
        passive,
        connect_retry: Duration::from_secs(30),
    }
}

fn negotiated(remote_id: Ipv4Addr, hold_time: u16) -> Negotiated {
    Negotiated {
        remote_router_id: remote_id,
        remote_asn: PEER_ASN,
        hold_time,
        keepalive_secs: hold_time / 3,
        families: vec![Family::Ipv4Unicast],
        codec: SessionCodec {
            four_octet_as: true,
        },
        peer_graceful_restart: None,
        extended_next_hop_v4: false,
    }
}

fn started(passive: bool) -> Fsm {
    let mut fsm = Fsm::new(config(passive), 42);
    fsm.handle(Event::ManualStart);
    fsm
}

/// Our connection OURS in OpenSent.
fn open_sent() -> Fsm {
    let mut fsm = started(false);
    fsm.handle(Event::TcpConnected(OURS));
    fsm
}

/// Our connection OURS in OpenConfirm with a peer of `remote_id`.
fn open_confirm(remote_id: Ipv4Addr) -> Fsm {
    let mut fsm = open_sent();
    fsm.handle(Event::OpenReceived(OURS, Ok(negotiated(remote_id, 90))));
    fsm
}

fn established() -> Fsm {
    let mut fsm = open_confirm(HIGHER_ID);
    fsm.handle(Event::KeepaliveReceived(OURS));
    fsm
}

/// (connection, NOTIFICATION code/subcode) of every Close.
fn closes(actions: &[Action]) -> Vec<(ConnId, Option<(u8, u8)>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Close { conn, notify, .. } => {
                Some((*conn, notify.as_ref().map(|nf| (nf.code, nf.subcode))))
            }
            _ => None,
        })
        .collect()
}

fn reasons(actions: &[Action]) -> Vec<Reason> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Close { reason, .. } | Action::Failed(reason) => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

fn retry_timer(actions: &[Action]) -> Option<Duration> {
    actions.iter().find_map(|a| match a {
        Action::StartTimer(Timer::ConnectRetry, d) => Some(*d),
        _ => None,
    })
}

fn has_session_down(actions: &[Action]) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::SessionDown { .. }))
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

// --- Idle, Connect, Active -------------------------------------------

#[test]
fn idle_until_started() {
    let fsm = Fsm::new(config(false), 1);
    assert_eq!(fsm.state(), Idle);
}

#[test]
fn start_connects_out_idle_to_connect() {
    let mut fsm = Fsm::new(config(false), 1);
    assert_eq!(fsm.handle(Event::ManualStart), vec![Action::Connect]);
    assert_eq!(fsm.state(), Connect);
    // A second start changes nothing.
    assert_eq!(fsm.handle(Event::ManualStart), vec![]);
}

#[test]
fn passive_peer_waits_in_active_and_never_connects_out() {
    let mut fsm = Fsm::new(config(true), 1);
    assert_eq!(fsm.handle(Event::ManualStart), vec![]);
    assert_eq!(fsm.state(), Active);
    assert_eq!(fsm.handle(Event::ConnectRetryExpired), vec![]);
    // The peer connects, then goes away: still no connect, no retry timer.
    fsm.handle(Event::TcpAccepted(THEIRS));
    assert_eq!(fsm.state(), OpenSent);
    let a = fsm.handle(Event::TcpClosed(THEIRS, "connection closed by peer".into()));
    assert_eq!(closes(&a), vec![(THEIRS, None)]);
    assert!(!a.contains(&Action::Connect));
    assert_eq!(retry_timer(&a), None);
    assert_eq!(fsm.state(), Active);
}

#[test]
fn failed_connect_goes_active_and_retries_after_the_backoff() {
    let mut fsm = started(false);
    let a = fsm.handle(Event::TcpConnectFailed("connection refused".into()));
    assert_eq!(
        reasons(&a),
        vec![Reason::ConnectFailed("connection refused".into())]
    );
    let d = retry_timer(&a).expect("retry timer started");
    assert!(
        d >= secs(1).mul_f64(0.75) && d < secs(1).mul_f64(1.25),
        "{d:?}"
    );
    assert_eq!(fsm.state(), Active);
    assert_eq!(
        fsm.handle(Event::ConnectRetryExpired),
        vec![Action::Connect]
    );
    assert_eq!(fsm.state(), Connect);
}

#[test]
fn connect_retry_delays_double_up_to_the_cap() {
    let mut fsm = started(false);
    let mut delays = Vec::new();
    for _ in 0..7 {
        let a = fsm.handle(Event::TcpConnectFailed("refused".into()));
        delays.push(retry_timer(&a).unwrap());
        fsm.handle(Event::ConnectRetryExpired);
    }
    let bases = [1, 2, 4, 8, 16, 30, 30];
    for (d, base) in delays.iter().zip(bases) {
        let base = secs(base);
        assert!(
            *d >= base.mul_f64(0.75) && *d < base.mul_f64(1.25),
            "{delays:?}"
        );
    }
}

#[test]
fn retry_delay_schedule_and_jitter_bounds() {
    let cap = secs(30);
    // Sample 500 is the middle of the jitter range: factor 1.
    let plain: Vec<u64> = (0..8).map(|i| retry_delay(i, cap, 500).as_secs()).collect();
    assert_eq!(plain, [1, 2, 4, 8, 16, 30, 30, 30]);
    assert_eq!(retry_delay(0, cap, 0), Duration::from_millis(750));
    assert_eq!(retry_delay(0, cap, 999), Duration::from_micros(1_249_500));
    assert_eq!(retry_delay(1000, cap, 500), cap, "no overflow");
    // A cap below the first delay still waits the first delay.
    assert_eq!(retry_delay(3, Duration::ZERO, 500), FIRST_RETRY);
}

#[test]
fn backoff_starts_over_after_an_established_session() {
    let mut fsm = started(false);
    for _ in 0..4 {
        fsm.handle(Event::TcpConnectFailed("refused".into()));
        fsm.handle(Event::ConnectRetryExpired);
    }
    fsm.handle(Event::TcpConnected(OURS));
    fsm.handle(Event::OpenReceived(OURS, Ok(negotiated(HIGHER_ID, 90))));
    fsm.handle(Event::KeepaliveReceived(OURS));
    let a = fsm.handle(Event::TcpClosed(OURS, "connection closed by peer".into()));
    let d = retry_timer(&a).unwrap();
    assert!(d < secs(1).mul_f64(1.25), "{d:?}");
}

// --- Connect -> OpenSent -> OpenConfirm -> Established --------------

#[test]
fn connection_up_sends_open_with_the_large_open_sent_hold_timer() {
    let mut fsm = started(false);
    let a = fsm.handle(Event::TcpConnected(OURS));
    assert_eq!(
        a,
        vec![
            Action::SendOpen(OURS),
            Action::StartTimer(Timer::Hold(OURS), OPEN_HOLD_TIME)
        ]
    );
    assert_eq!(OPEN_HOLD_TIME, secs(240));
    assert_eq!(fsm.state(), OpenSent);
}

#[test]
fn accepted_connection_in_active_goes_to_open_sent_and_stops_the_retry_timer() {
    let mut fsm = started(false);
    fsm.handle(Event::TcpConnectFailed("refused".into()));
    let a = fsm.handle(Event::TcpAccepted(THEIRS));
    assert_eq!(
        a,
        vec![
            Action::SendOpen(THEIRS),
            Action::StartTimer(Timer::Hold(THEIRS), OPEN_HOLD_TIME),
            Action::StopTimer(Timer::ConnectRetry),
        ]
    );
    assert_eq!(fsm.state(), OpenSent);
}

#[test]
fn valid_open_goes_to_open_confirm_with_negotiated_timers() {
    let mut fsm = open_sent();
    let neg = negotiated(HIGHER_ID, 90);
    let a = fsm.handle(Event::OpenReceived(OURS, Ok(neg.clone())));
    assert_eq!(
        a,
        vec![
            Action::UseCodec(OURS, neg.codec),
            Action::SendKeepalive(OURS),
            Action::StartTimer(Timer::Hold(OURS), secs(90)),
            Action::StartTimer(Timer::Keepalive(OURS), secs(30)),
        ]
    );
    assert_eq!(fsm.state(), OpenConfirm);
    assert_eq!(fsm.established(), None);
}

#[test]
fn keepalive_in_open_confirm_establishes_the_session() {
    let mut fsm = open_confirm(HIGHER_ID);
    let a = fsm.handle(Event::KeepaliveReceived(OURS));
    assert_eq!(
        a,
        vec![
            Action::StartTimer(Timer::Hold(OURS), secs(90)),
            Action::SessionUp {
                conn: OURS,
                generation: 1,
                negotiated: negotiated(HIGHER_ID, 90),
            },
        ]
    );
    assert_eq!(fsm.state(), Established);
    assert_eq!(fsm.established(), Some((OURS, 1)));
}

#[test]
fn each_session_gets_a_new_generation() {
    let mut fsm = established();
    let a = fsm.handle(Event::TcpClosed(OURS, "closed".into()));
    assert!(a.contains(&Action::SessionDown { generation: 1 }));
    fsm.handle(Event::ConnectRetryExpired);
    fsm.handle(Event::TcpConnected(3));
    fsm.handle(Event::OpenReceived(3, Ok(negotiated(HIGHER_ID, 90))));
    fsm.handle(Event::KeepaliveReceived(3));
    assert_eq!(fsm.established(), Some((3, 2)));
}

// --- Errors back to Active -------------------------------------------

#[test]
fn rejected_open_sends_its_notification_and_retries() {
    let mut fsm = open_sent();
    let nf = Notification::new(
        n::OPEN_MESSAGE_ERROR,
        n::open::BAD_PEER_AS,
        vec![0xfd, 0xe9],
    );
    let a = fsm.handle(Event::OpenReceived(OURS, Err(nf.clone())));
    assert_eq!(closes(&a), vec![(OURS, Some((2, 2)))]);
    assert_eq!(reasons(&a), vec![Reason::OpenRejected(nf)]);
    assert!(retry_timer(&a).is_some());
    assert_eq!(fsm.state(), Active);
}

#[test]
fn open_sent_hold_timer_expiry_sends_4_0() {
    let mut fsm = open_sent();
    let a = fsm.handle(Event::HoldTimerExpired(OURS));
    assert_eq!(closes(&a), vec![(OURS, Some((4, 0)))]);
    assert!(!has_session_down(&a));
    assert_eq!(fsm.state(), Active);
}

#[test]
fn open_confirm_hold_timer_expiry_sends_4_0() {
    let mut fsm = open_confirm(HIGHER_ID);
    let a = fsm.handle(Event::HoldTimerExpired(OURS));
    assert_eq!(closes(&a), vec![(OURS, Some((4, 0)))]);
    assert_eq!(reasons(&a), vec![Reason::HoldTimerExpired]);
    assert!(!has_session_down(&a));
}

#[test]
fn established_hold_timer_expiry_sends_4_0_and_takes_the_session_down() {
    let mut fsm = established();
    let a = fsm.handle(Event::HoldTimerExpired(OURS));
    assert_eq!(closes(&a), vec![(OURS, Some((4, 0)))]);
    assert!(a.contains(&Action::SessionDown { generation: 1 }));
    assert!(retry_timer(&a).is_some());
    assert_eq!(fsm.state(), Active);
    assert_eq!(fsm.established(), None);
}

#[test]
fn notification_received_closes_without_answering() {
    let mut fsm = established();
    let nf = Notification::new(n::CEASE, n::cease::ADMINISTRATIVE_SHUTDOWN, vec![]);
    let a = fsm.handle(Event::NotificationReceived(OURS, nf.clone()));
    assert_eq!(closes(&a), vec![(OURS, None)]);
    assert_eq!(reasons(&a), vec![Reason::NotificationReceived(nf)]);
    assert!(has_session_down(&a));
}

#[test]
fn tcp_close_in_open_sent_and_open_confirm_closes_our_side() {
    // Issue 12: the socket must not stay in CLOSE-WAIT.
    let mut fsm = open_sent();
    let a = fsm.handle(Event::TcpClosed(OURS, "connection closed by peer".into()));
    assert_eq!(closes(&a), vec![(OURS, None)]);
    assert_eq!(fsm.state(), Active);
    let mut fsm = open_confirm(HIGHER_ID);
    let a = fsm.handle(Event::TcpClosed(OURS, "connection closed by peer".into()));
    assert_eq!(closes(&a), vec![(OURS, None)]);
    assert_eq!(fsm.state(), Active);
}

#[test]
fn decode_error_sends_the_decoders_notification() {
    let mut fsm = established();
    let nf = Notification::new(
        n::UPDATE_MESSAGE_ERROR,
        n::update::MALFORMED_ATTRIBUTE_LIST,
        vec![],
    );
    let a = fsm.handle(Event::DecodeError(
        OURS,
        nf,
        "malformed attribute list".into(),
    ));
    assert_eq!(closes(&a), vec![(OURS, Some((3, 1)))]);
    assert!(has_session_down(&a));
}

#[test]
fn update_in_open_sent_is_fsm_error_5_1() {
    let mut fsm = open_sent();
    let a = fsm.handle(Event::UpdateReceived(OURS));
    assert_eq!(closes(&a), vec![(OURS, Some((5, 1)))]);
    assert_eq!(
        reasons(&a),
        vec![Reason::UnexpectedMessage {
            message: MessageKind::Update,
            state: OpenSent
        }]
    );
    assert_eq!(fsm.state(), Active);
}

#[test]
fn update_in_open_confirm_is_fsm_error_5_2() {
    let mut fsm = open_confirm(HIGHER_ID);
    let a = fsm.handle(Event::UpdateReceived(OURS));
    assert_eq!(closes(&a), vec![(OURS, Some((5, 2)))]);
    assert!(!has_session_down(&a));
    assert_eq!(fsm.established(), None);
}

#[test]
fn keepalive_and_route_refresh_before_established_are_fsm_errors() {
    let mut fsm = open_sent();
    let a = fsm.handle(Event::KeepaliveReceived(OURS));
    assert_eq!(closes(&a), vec![(OURS, Some((5, 1)))]);
    let mut fsm = open_sent();
    let a = fsm.handle(Event::RouteRefreshReceived(OURS, Family::Ipv4Unicast));
    assert_eq!(closes(&a), vec![(OURS, Some((5, 1)))]);
    let mut fsm = open_confirm(HIGHER_ID);
    let a = fsm.handle(Event::RouteRefreshReceived(OURS, Family::Ipv4Unicast));
    assert_eq!(closes(&a), vec![(OURS, Some((5, 2)))]);
}

#[test]
fn a_second_open_is_an_fsm_error_for_the_state() {
    let mut fsm = open_confirm(HIGHER_ID);
    let a = fsm.handle(Event::OpenReceived(OURS, Ok(negotiated(HIGHER_ID, 90))));
    assert_eq!(closes(&a), vec![(OURS, Some((5, 2)))]);
    let mut fsm = established();
    let a = fsm.handle(Event::OpenReceived(OURS, Ok(negotiated(HIGHER_ID, 90))));
    assert_eq!(closes(&a), vec![(OURS, Some((5, 3)))]);
    assert!(has_session_down(&a));
}

// --- Established -----------------------------------------------------

#[test]
fn keepalive_and_update_restart_the_hold_timer() {
    let mut fsm = established();
    let restart = vec![Action::StartTimer(Timer::Hold(OURS), secs(90))];
    assert_eq!(fsm.handle(Event::KeepaliveReceived(OURS)), restart);
    assert_eq!(fsm.handle(Event::UpdateReceived(OURS)), restart);
    assert_eq!(fsm.state(), Established);
}

#[test]
fn keepalive_timer_sends_a_keepalive_and_rearms() {
    for mut fsm in [open_confirm(HIGHER_ID), established()] {
        assert_eq!(
            fsm.handle(Event::KeepaliveTimerExpired(OURS)),
            vec![
                Action::SendKeepalive(OURS),
                Action::StartTimer(Timer::Keepalive(OURS), secs(30)),
            ]
        );
    }
}

#[test]
fn route_refresh_in_established_goes_to_the_rib() {
    let mut fsm = established();
    assert_eq!(
        fsm.handle(Event::RouteRefreshReceived(OURS, Family::Ipv4Unicast)),
        vec![Action::RouteRefresh {
            generation: 1,
            family: Family::Ipv4Unicast
        }]
    );
}

/// RFC 2918 §4; issue 12: a stream of these grew memory one for one.
#[test]
fn route_refresh_for_a_family_not_negotiated_is_ignored_and_counted() {
    let mut fsm = established(); // negotiated: IPv4 only
    for _ in 0..1000 {
        assert_eq!(
            fsm.handle(Event::RouteRefreshReceived(OURS, Family::Ipv6Unicast)),
            vec![]
        );
    }
    assert_eq!(fsm.refresh_counts().ignored, 1000);
    assert_eq!(fsm.state(), Established);
}

fn refresh(family: Family) -> Action {
    Action::RouteRefresh {
        generation: 1,
        family,
    }
}

#[test]
fn route_refresh_answers_are_coalesced_while_one_is_in_flight() {
    let mut fsm = established();
    let v4 = Family::Ipv4Unicast;
    assert_eq!(
        fsm.handle(Event::RouteRefreshReceived(OURS, v4)),
        vec![refresh(v4)]
    );
    // Asked again while the answer is being written: once more after it,
    // however many times it is asked.
    for _ in 0..500 {
        assert_eq!(fsm.handle(Event::RouteRefreshReceived(OURS, v4)), vec![]);
    }
    assert_eq!(fsm.refresh_counts().coalesced, 499);
    assert_eq!(
        fsm.handle(Event::RouteRefreshWritten(OURS, v4)),
        vec![refresh(v4)]
    );
    assert_eq!(fsm.handle(Event::RouteRefreshWritten(OURS, v4)), vec![]);
    // Nothing in flight: the next request is answered at once.
    assert_eq!(
        fsm.handle(Event::RouteRefreshReceived(OURS, v4)),
        vec![refresh(v4)]
    );
}

#[test]
fn a_new_session_starts_with_no_refresh_in_flight() {
    let mut fsm = established();
    fsm.handle(Event::RouteRefreshReceived(OURS, Family::Ipv4Unicast));
    fsm.handle(Event::TcpClosed(OURS, "gone".into()));
    fsm.handle(Event::TcpAccepted(THEIRS));
    fsm.handle(Event::OpenReceived(THEIRS, Ok(negotiated(HIGHER_ID, 90))));
    fsm.handle(Event::KeepaliveReceived(THEIRS));
    assert_eq!(
        fsm.handle(Event::RouteRefreshReceived(THEIRS, Family::Ipv4Unicast)),
        vec![Action::RouteRefresh {
            generation: 2,
            family: Family::Ipv4Unicast
        }]
    );
}

/// RFC 9687: error code 8, subcode 0; the session goes down.
#[test]
fn send_hold_timer_expiry_sends_8_0_and_takes_the_session_down() {
    let mut fsm = established();
    let a = fsm.handle(Event::SendHoldTimerExpired(OURS));
    assert_eq!(closes(&a), vec![(OURS, Some((8, 0)))]);
    assert_eq!(reasons(&a), vec![Reason::SendHoldTimerExpired]);
    assert!(has_session_down(&a));
    assert!(retry_timer(&a).is_some(), "reconnects: {a:?}");
    assert_eq!(fsm.state(), Active);
}

#[test]
fn a_full_send_queue_sends_cease_8_and_takes_the_session_down() {
    let mut fsm = established();
    let a = fsm.handle(Event::SendQueueFull(OURS));
    assert_eq!(closes(&a), vec![(OURS, Some((6, 8)))]);
    assert_eq!(reasons(&a), vec![Reason::SendQueueFull]);
    assert!(has_session_down(&a));
    assert_eq!(fsm.state(), Active);
}

#[test]
fn send_hold_timer_expiry_before_established_closes_too() {
    let mut fsm = open_confirm(HIGHER_ID);
    let a = fsm.handle(Event::SendHoldTimerExpired(OURS));
    assert_eq!(closes(&a), vec![(OURS, Some((8, 0)))]);
    assert!(!has_session_down(&a));
}

fn limit_exceeded(restart_after: Option<Duration>) -> Event {
    Event::PrefixLimitExceeded {
        family: Family::Ipv6Unicast,
        limit: 2000,
        restart_after,
    }
}

/// RFC 4486 §4: Cease/1 with AFI 2, SAFI 1 and the limit 2000.
#[test]
fn prefix_limit_sends_cease_1_with_afi_safi_and_limit_and_stays_down() {
    let mut fsm = established();
    let a = fsm.handle(limit_exceeded(None));
    let nf = a
        .iter()
        .find_map(|a| match a {
            Action::Close {
                notify: Some(nf), ..
            } => Some(nf.clone()),
            _ => None,
        })
        .expect("a NOTIFICATION");
    assert_eq!((nf.code, nf.subcode), (6, 1));
    assert_eq!(nf.data, vec![0, 2, 1, 0, 0, 0x07, 0xd0]);
    assert!(has_session_down(&a));
    assert_eq!(retry_timer(&a), None, "no reconnect: {a:?}");
    assert!(!a.contains(&Action::Connect));
    assert_eq!(fsm.state(), Idle);
    let why = fsm.held_down().expect("held down").to_string();
    assert!(
        why.contains("more than 2000 ipv6-unicast prefixes"),
        "{why}"
    );
    assert!(why.contains("kroute peer NAME reset"), "{why}");
    // The peer's new connections are refused while it is held down.
    let a = fsm.handle(Event::TcpAccepted(THEIRS));
    assert_eq!(closes(&a), vec![(THEIRS, Some((6, 5)))]);
    // No restart timer runs: only a reset starts it again.
    assert_eq!(fsm.handle(Event::RestartTimerExpired), vec![]);
    let a = fsm.handle(Event::Reset);
    assert!(a.contains(&Action::Connect), "{a:?}");
    assert_eq!(fsm.held_down(), None);
    assert_eq!(fsm.state(), Connect);
}

#[test]
fn prefix_limit_with_restart_after_starts_again_when_the_timer_expires() {
    let mut fsm = established();
    let a = fsm.handle(limit_exceeded(Some(secs(30))));
    assert!(
        a.contains(&Action::StartTimer(Timer::Restart, secs(30))),
        "{a:?}"
    );
    assert_eq!(fsm.state(), Idle);
    assert!(fsm
        .held_down()
        .unwrap()
        .to_string()
        .contains("restarting after 30 s"));
    let a = fsm.handle(Event::RestartTimerExpired);
    assert_eq!(a, vec![Action::Connect]);
    assert_eq!(fsm.held_down(), None);
}

#[test]
fn a_stopped_peer_ignores_a_prefix_limit_and_the_restart_timer() {
    let mut fsm = established();
    fsm.handle(Event::ManualStop(cease(n::cease::ADMINISTRATIVE_SHUTDOWN)));
    assert_eq!(fsm.handle(limit_exceeded(Some(secs(1)))), vec![]);
    assert_eq!(fsm.handle(Event::RestartTimerExpired), vec![]);
    assert_eq!(fsm.state(), Idle);
}

#[test]
fn reset_of_a_running_session_sends_cease_4_and_reconnects() {
    let mut fsm = established();
    let a = fsm.handle(Event::Reset);
    assert_eq!(closes(&a), vec![(OURS, Some((6, 4)))]);
    assert_eq!(reasons(&a), vec![Reason::Reset]);
    assert!(has_session_down(&a));
    assert!(retry_timer(&a).is_some(), "{a:?}");
    assert_eq!(fsm.state(), Active);
}

#[test]
fn hold_time_zero_runs_no_hold_or_keepalive_timer() {
    let mut fsm = open_sent();
    let neg = negotiated(HIGHER_ID, 0);
    let a = fsm.handle(Event::OpenReceived(OURS, Ok(neg.clone())));
    assert_eq!(
        a,
        vec![
            Action::UseCodec(OURS, neg.codec),
            Action::SendKeepalive(OURS),
            Action::StopTimer(Timer::Hold(OURS)),
        ]
    );
    let a = fsm.handle(Event::KeepaliveReceived(OURS));
    assert_eq!(
        a,
        vec![Action::SessionUp {
            conn: OURS,
            generation: 1,
            negotiated: neg
        }]
    );
    assert_eq!(fsm.handle(Event::KeepaliveReceived(OURS)), vec![]);
    assert_eq!(fsm.handle(Event::UpdateReceived(OURS)), vec![]);
}

#[test]
fn manual_stop_notifies_every_connection_and_goes_idle() {
    let mut fsm = established();
    fsm.handle(Event::TcpAccepted(THEIRS)); // refused: Established
    let nf = cease(n::cease::ADMINISTRATIVE_SHUTDOWN);
    let a = fsm.handle(Event::ManualStop(nf.clone()));
    assert_eq!(closes(&a), vec![(OURS, Some((6, 2)))]);
    assert!(a.contains(&Action::SessionDown { generation: 1 }));
    assert_eq!(retry_timer(&a), None);
    assert!(!a.contains(&Action::Connect));
    assert_eq!(fsm.state(), Idle);
}

#[test]
fn stop_while_waiting_to_retry_stops_the_timer() {
    let mut fsm = started(false);
    fsm.handle(Event::TcpConnectFailed("refused".into()));
    let a = fsm.handle(Event::ManualStop(cease(n::cease::PEER_DECONFIGURED)));
    assert_eq!(a, vec![Action::StopTimer(Timer::ConnectRetry)]);
    assert_eq!(fsm.state(), Idle);
}

#[test]
fn stopped_peer_refuses_connections() {
    let mut fsm = Fsm::new(config(false), 1);
    let a = fsm.handle(Event::TcpAccepted(THEIRS));
    assert_eq!(closes(&a), vec![(THEIRS, Some((6, 5)))]);
    assert_eq!(fsm.state(), Idle);
}

#[test]
fn events_of_a_closed_connection_are_ignored() {
    let mut fsm = established();
    fsm.handle(Event::HoldTimerExpired(OURS));
    for ev in [
        Event::KeepaliveReceived(OURS),
        Event::UpdateReceived(OURS),
        Event::HoldTimerExpired(OURS),
        Event::KeepaliveTimerExpired(OURS),
        Event::TcpClosed(OURS, "closed".into()),
    ] {
        assert_eq!(fsm.handle(ev), vec![]);
    }
    assert_eq!(fsm.state(), Active);
}

// --- Collisions (RFC 4271 §6.8, RFC 6286 §2.3) -----------------------

#[test]
fn collision_winner_compares_ids_then_asns() {
    let w = collision_winner;
    assert_eq!(w(OUR_ID, 1, LOWER_ID, 2), Side::Ours);
    assert_eq!(w(OUR_ID, 2, HIGHER_ID, 1), Side::Theirs);
    // Compared as numbers, not octet by octet as text.
    assert_eq!(
        w(
            Ipv4Addr::new(10, 0, 0, 10),
            1,
            Ipv4Addr::new(10, 0, 0, 9),
            1
        ),
        Side::Ours
    );
    assert_eq!(w(OUR_ID, 65010, OUR_ID, 65002), Side::Ours);
    assert_eq!(w(OUR_ID, 65001, OUR_ID, 65002), Side::Theirs);
}

/// Both connections in OpenSent; the peer's OPEN arrives on theirs.
fn both_open_sent() -> Fsm {
    let mut fsm = open_sent();
    fsm.handle(Event::TcpAccepted(THEIRS));
    assert_eq!(fsm.state(), OpenSent);
    fsm
}

#[test]
fn collision_in_open_sent_higher_local_id_keeps_ours() {
    let mut fsm = both_open_sent();
    let a = fsm.handle(Event::OpenReceived(THEIRS, Ok(negotiated(LOWER_ID, 90))));
    assert_eq!(closes(&a), vec![(THEIRS, Some((6, 7)))]);
    assert_eq!(reasons(&a), vec![Reason::Collision { kept: Side::Ours }]);
    assert_eq!(retry_timer(&a), None);
    assert_eq!(fsm.state(), OpenSent);
    // Ours carries on.
    fsm.handle(Event::OpenReceived(OURS, Ok(negotiated(LOWER_ID, 90))));
    fsm.handle(Event::KeepaliveReceived(OURS));
    assert_eq!(fsm.established(), Some((OURS, 1)));
}

#[test]
fn collision_in_open_sent_lower_local_id_keeps_theirs() {
    let mut fsm = both_open_sent();
    let a = fsm.handle(Event::OpenReceived(THEIRS, Ok(negotiated(HIGHER_ID, 90))));
    assert_eq!(closes(&a), vec![(OURS, Some((6, 7)))]);
    assert_eq!(reasons(&a), vec![Reason::Collision { kept: Side::Theirs }]);
    assert_eq!(fsm.state(), OpenConfirm);
    fsm.handle(Event::KeepaliveReceived(THEIRS));
    assert_eq!(fsm.established(), Some((THEIRS, 1)));
}

#[test]
fn collision_in_open_confirm_higher_local_id_keeps_ours() {
    let mut fsm = open_confirm(LOWER_ID);
    fsm.handle(Event::TcpAccepted(THEIRS));
    let a = fsm.handle(Event::OpenReceived(THEIRS, Ok(negotiated(LOWER_ID, 90))));
    assert_eq!(closes(&a), vec![(THEIRS, Some((6, 7)))]);
    assert_eq!(fsm.state(), OpenConfirm);
    fsm.handle(Event::KeepaliveReceived(OURS));
    assert_eq!(fsm.established(), Some((OURS, 1)));
}

#[test]
fn collision_in_open_confirm_lower_local_id_keeps_theirs() {
    let mut fsm = open_confirm(HIGHER_ID);
    fsm.handle(Event::TcpAccepted(THEIRS));
    let a = fsm.handle(Event::OpenReceived(THEIRS, Ok(negotiated(HIGHER_ID, 90))));
    assert_eq!(closes(&a), vec![(OURS, Some((6, 7)))]);
    assert_eq!(fsm.state(), OpenConfirm);
    // A late KEEPALIVE on the closed connection does nothing.
    assert_eq!(fsm.handle(Event::KeepaliveReceived(OURS)), vec![]);
    fsm.handle(Event::KeepaliveReceived(THEIRS));
    assert_eq!(fsm.established(), Some((THEIRS, 1)));
}

#[test]
fn collision_with_equal_router_ids_keeps_the_larger_asns_connection() {
    // We have the larger ASN: ours stays.
    let mut cfg = config(false);
    cfg.local_asn = 65100;
    let mut fsm = Fsm::new(cfg, 1);
    fsm.handle(Event::ManualStart);
    fsm.handle(Event::TcpConnected(OURS));
    fsm.handle(Event::TcpAccepted(THEIRS));
    let a = fsm.handle(Event::OpenReceived(THEIRS, Ok(negotiated(OUR_ID, 90))));
    assert_eq!(closes(&a), vec![(THEIRS, Some((6, 7)))]);
    // The peer has the larger ASN: theirs stays.
    let mut fsm = both_open_sent();
    let a = fsm.handle(Event::OpenReceived(THEIRS, Ok(negotiated(OUR_ID, 90))));
    assert_eq!(closes(&a), vec![(OURS, Some((6, 7)))]);
    assert_eq!(fsm.state(), OpenConfirm);
}

#[test]
fn a_connection_while_established_gets_cease_7_and_the_session_stays() {
    let mut fsm = established();
    let a = fsm.handle(Event::TcpAccepted(THEIRS));
    assert_eq!(closes(&a), vec![(THEIRS, Some((6, 7)))]);
    assert_eq!(reasons(&a), vec![Reason::CollisionWithEstablished]);
    assert!(!has_session_down(&a));
    assert_eq!(fsm.established(), Some((OURS, 1)));
    // Our own connect completing late is refused the same way.
    let mut fsm = started(false);
    fsm.handle(Event::TcpAccepted(THEIRS));
    fsm.handle(Event::OpenReceived(THEIRS, Ok(negotiated(HIGHER_ID, 90))));
    fsm.handle(Event::KeepaliveReceived(THEIRS));
    let a = fsm.handle(Event::TcpConnected(OURS));
    assert_eq!(closes(&a), vec![(OURS, Some((6, 7)))]);
    assert_eq!(fsm.established(), Some((THEIRS, 1)));
}

#[test]
fn establishing_closes_the_other_connection_still_in_open_sent() {
    let mut fsm = open_confirm(HIGHER_ID);
    fsm.handle(Event::TcpAccepted(THEIRS));
    let a = fsm.handle(Event::KeepaliveReceived(OURS));
    assert_eq!(closes(&a), vec![(THEIRS, Some((6, 7)))]);
    assert_eq!(fsm.established(), Some((OURS, 1)));
}

#[test]
fn a_newer_connection_from_the_peer_replaces_a_stale_one() {
    // Issue 12: a stale connection in OpenSent from the peer's address;
    // the real peer (lower BGP ID) connects again and must get through.
    let mut fsm = started(true);
    fsm.handle(Event::TcpAccepted(THEIRS));
    let a = fsm.handle(Event::TcpAccepted(3));
    assert_eq!(closes(&a), vec![(THEIRS, Some((6, 7)))]);
    assert_eq!(reasons(&a), vec![Reason::Replaced]);
    assert!(a.contains(&Action::SendOpen(3)));
    fsm.handle(Event::OpenReceived(3, Ok(negotiated(LOWER_ID, 90))));
    fsm.handle(Event::KeepaliveReceived(3));
    assert_eq!(fsm.established(), Some((3, 1)));
}

#[test]
fn update_before_established_does_not_block_the_next_session() {
    // Issue 12 end to end: OPEN then UPDATE before KEEPALIVE gets 5/2
    // and a close; the peer's next connection comes up.
    let mut fsm = started(true);
    fsm.handle(Event::TcpAccepted(THEIRS));
    fsm.handle(Event::OpenReceived(THEIRS, Ok(negotiated(LOWER_ID, 90))));
    let a = fsm.handle(Event::UpdateReceived(THEIRS));
    assert_eq!(closes(&a), vec![(THEIRS, Some((5, 2)))]);
    assert_eq!(fsm.state(), Active);
    fsm.handle(Event::TcpAccepted(3));
    fsm.handle(Event::OpenReceived(3, Ok(negotiated(LOWER_ID, 90))));
    fsm.handle(Event::KeepaliveReceived(3));
    assert_eq!(fsm.established(), Some((3, 1)));
}

#[test]
fn link_down_closes_without_a_notification_and_waits_for_a_start() {
    let mut fsm = established();
    let a = fsm.handle(Event::LinkDown);
    assert_eq!(closes(&a), vec![(OURS, None)]);
    assert_eq!(reasons(&a), vec![Reason::LinkDown]);
    assert!(a.contains(&Action::SessionDown { generation: 1 }));
    assert_eq!(retry_timer(&a), None);
    assert!(!a.contains(&Action::Connect));
    assert_eq!(fsm.state(), Idle);
    // The link back with a neighbour: the peer task starts it again.
    let a = fsm.handle(Event::ManualStart);
    assert!(a.contains(&Action::Connect), "{a:?}");
}
